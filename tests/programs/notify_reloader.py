#!/usr/bin/env python3
"""A Type=notify service that reloads itself on SIGHUP, saying so over $NOTIFY_SOCKET.

usage: notify_reloader.py --log FILE [--trigger PATH] [--reload-time S] [--lifetime S]

Sends READY=1 once up. On SIGHUP, or when PATH appears (it removes it: a test outside
the PID namespace cannot signal it), it sends RELOADING=1 (with MONOTONIC_USEC=, as
sd_notify(3) asks), appends `reloading <pid>` to FILE, sleeps --reload-time seconds,
appends `reloaded <pid>` and sends READY=1. Exits 0 on SIGTERM, or by itself after
--lifetime seconds (a lost signal never leaves it running for long). Stdlib only.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import time


def notify(message: str) -> None:
    address = os.environ["NOTIFY_SOCKET"]
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        sock.sendto(message.encode(), address)


def record(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{text} {os.getpid()}\n".encode())
    finally:
        os.close(fd)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--log", required=True)
    parser.add_argument("--trigger", default="")
    parser.add_argument("--reload-time", type=float, default=0.3)
    parser.add_argument("--lifetime", type=float, default=60.0)
    args = parser.parse_args()
    hups: list[int] = []
    signal.signal(signal.SIGHUP, lambda number, _frame: hups.append(number))
    signal.signal(signal.SIGTERM, lambda _number, _frame: os._exit(0))
    notify("READY=1")
    deadline = time.monotonic() + args.lifetime
    while time.monotonic() < deadline:
        if args.trigger and os.path.exists(args.trigger):
            os.unlink(args.trigger)
            hups.append(signal.SIGHUP)
        if hups:
            hups.clear()
            usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
            notify(f"RELOADING=1\nMONOTONIC_USEC={usec}")
            record(args.log, "reloading")
            time.sleep(args.reload_time)
            record(args.log, "reloaded")
            notify("READY=1")
        time.sleep(0.02)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
