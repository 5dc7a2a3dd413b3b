"""cinit: a small PID 1 supervisor for container images, driven by systemd unit files."""

__version__ = "0.1.0"
PROG = "cinit"
