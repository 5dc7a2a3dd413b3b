"""cinit: a small PID 1 supervisor for container images, driven by systemd unit files."""

__version__ = "0.1.0"
PROG = "cinit"


def example_dirs() -> tuple[str, str]:
    """The example unit set shipped inside the package: (core units, drop-ins), for
    `cinit --example` and `cinit validate --example`."""
    import os

    base = os.path.join(os.path.dirname(os.path.abspath(__file__)), "examples")
    return os.path.join(base, "units"), os.path.join(base, "container-init.d")
