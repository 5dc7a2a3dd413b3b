#!/usr/bin/env python3
"""Leave a background process behind, then exit.

usage: leftover.py MARKER [--ignore-term]

Forks a child that stays behind after this process exits (it is orphaned to the init).
The child appends `ready` to MARKER once its SIGTERM disposition is set, then either
records `got SIGTERM` and exits 0 on SIGTERM, or (with --ignore-term) ignores SIGTERM;
it sleeps 60 s at most. This process exits 0 as soon as the child is ready.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time


def append(path: str, text: str) -> None:
    with open(path, "a") as marker:
        marker.write(text + "\n")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("marker")
    parser.add_argument("--ignore-term", action="store_true")
    args = parser.parse_args()

    ready_read, ready_write = os.pipe()
    if os.fork() == 0:
        os.close(ready_read)
        if args.ignore_term:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        else:

            def on_term(_number: int, _frame: object) -> None:
                append(args.marker, "got SIGTERM")
                os._exit(0)

            signal.signal(signal.SIGTERM, on_term)
        append(args.marker, "ready")
        os.write(ready_write, b"r")
        os.close(ready_write)
        time.sleep(60)
        os._exit(0)
    os.close(ready_write)
    os.read(ready_read, 1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
