#!/usr/bin/env python3
"""A Type=notify service: start, get ready after a delay, tell $NOTIFY_SOCKET, stop on SIGTERM.

usage: notify_ready.py --name NAME --log FILE [--delay S] [--no-ready] [--stop-delay S]
                       [--lifetime S]

Appends one line per event to FILE, each `<event> <name> <CLOCK_REALTIME ns>`, written with
one O_APPEND write so that many services can share one log:
  `spawned`     the estimated time this process was forked: now minus the CPU and run-queue
                time /proc/self/schedstat counts for it (it has not slept yet), so the
                interpreter's start-up is not counted in (the bench's "own start" uses it);
  `start`       first thing after the interpreter is up;
  `ready`       just before READY=1 is sent (after sleeping --delay seconds);
  `stop-begin`  when SIGTERM arrives; then it sleeps --stop-delay seconds and writes
  `stop-end`    and exits 0.
With --no-ready it never notifies (a service stuck starting). Without $NOTIFY_SOCKET it
writes `error <name> no-NOTIFY_SOCKET` and exits 2. It exits 0 by itself after --lifetime
seconds (a safety net: a lost signal can never leave it running for long).
Runs with `python -I -S` (stdlib only) so that 30 of them start quickly.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
import time


def record(path: str, event: str, name: str, stamp: int | None = None) -> None:
    line = f"{event} {name} {time.time_ns() if stamp is None else stamp}\n".encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def spawn_time_ns() -> int | None:
    """When this process was forked, from the time the scheduler has accounted to it."""
    now = time.time_ns()
    try:
        with open("/proc/self/schedstat") as stats:
            on_cpu, waiting = (int(word) for word in stats.read().split()[:2])
    except (OSError, ValueError):
        return None
    return now - on_cpu - waiting


def notify(address: str, message: bytes) -> None:
    if address.startswith("@"):  # abstract namespace socket
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        sock.sendto(message, address)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--name", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--no-ready", action="store_true")
    parser.add_argument("--stop-delay", type=float, default=0.0)
    parser.add_argument("--lifetime", type=float, default=60.0)
    spawned = spawn_time_ns()
    args = parser.parse_args()

    def on_term(_number: int, _frame: object) -> None:
        record(args.log, "stop-begin", args.name)
        if args.stop_delay > 0:
            time.sleep(args.stop_delay)
        record(args.log, "stop-end", args.name)
        os._exit(0)

    signal.signal(signal.SIGTERM, on_term)
    if spawned is not None:
        record(args.log, "spawned", args.name, spawned)
    record(args.log, "start", args.name)
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        record(args.log, "error", args.name + " no-NOTIFY_SOCKET")
        return 2
    if args.delay > 0:
        time.sleep(args.delay)
    if not args.no_ready:
        record(args.log, "ready", args.name)
        notify(address, b"READY=1\nSTATUS=ready")
    deadline = time.monotonic() + args.lifetime
    while time.monotonic() < deadline:
        time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
