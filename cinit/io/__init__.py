"""The parts of cinit that touch the operating system.

Only these modules fork, signal, reap, read /etc/passwd or write cgroup files. They are kept
light on imports: `spawn`, `reaper`, `signals` and `log` sit on the boot path that runs before
the first exec, so they import nothing beyond the interpreter's own core modules.
"""
