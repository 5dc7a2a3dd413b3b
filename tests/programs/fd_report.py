#!/usr/bin/env python3
"""Report the file descriptors this process was started with.

Lists /proc/self/fd, then drops the entries that vanish once the listing is closed: those
belong to the listing itself (its directory fd), not to what the process inherited.
Prints `INHERITED 0 1 2` (the fds that stay open) and `LISTING <n>` (the listing's own fds).
"""

from __future__ import annotations

import os
import sys


def is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def main() -> int:
    listed = sorted(int(name) for name in os.listdir("/proc/self/fd"))
    inherited = [fd for fd in listed if is_open(fd)]
    print("INHERITED " + " ".join(str(fd) for fd in inherited), flush=True)
    print(f"LISTING {len(listed) - len(inherited)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
