#!/usr/bin/env python3
"""A classic Type=forking daemon: the parent forks, writes the child's pid file, exits 0.

usage: forking_daemon.py --pidfile FILE --log FILE [--exit-after S] [--exit-code N]

The child starts a new session, sets its SIGTERM handler, appends `daemon <pid>` to the log
and only then lets the parent go on; the parent writes the child's pid to FILE (atomically,
through a rename) and exits 0, so the pid file exists before the parent's exit is seen.
On SIGTERM the daemon appends `got SIGTERM <pid>` and exits 0. With --exit-after it exits
by itself with --exit-code after S seconds (appending `exiting <pid> <code>`); otherwise
it lives 60 s at most.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time


def append(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (text + "\n").encode())
    finally:
        os.close(fd)


def run_daemon(args: argparse.Namespace, ready_fd: int) -> int:
    os.setsid()
    me = os.getpid()

    def on_term(_number: int, _frame: object) -> None:
        append(args.log, f"got SIGTERM {me}")
        os._exit(0)

    signal.signal(signal.SIGTERM, on_term)
    append(args.log, f"daemon {me}")
    os.write(ready_fd, b"r")
    os.close(ready_fd)
    if args.exit_after is not None:
        time.sleep(args.exit_after)
        append(args.log, f"exiting {me} {args.exit_code}")
        return int(args.exit_code)
    time.sleep(60)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pidfile", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--exit-after", type=float, default=None)
    parser.add_argument("--exit-code", type=int, default=0)
    args = parser.parse_args()

    ready_read, ready_write = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(ready_read)
        os._exit(run_daemon(args, ready_write))
    os.close(ready_write)
    if os.read(ready_read, 1) != b"r":
        return 1
    partial = args.pidfile + ".tmp"
    with open(partial, "w") as pidfile:
        pidfile.write(f"{child}\n")
    os.rename(partial, args.pidfile)
    append(args.log, f"parent-exit {os.getpid()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
