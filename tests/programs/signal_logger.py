#!/usr/bin/env python3
"""Print each signal it receives, one name per line, flushing.

usage: signal_logger.py [--exit-after N] [--exit-code C] [--timeout S] SIGNAME...

Installs a handler for each named signal (e.g. HUP USR1 TERM RTMIN+3), prints
`READY <pid>`, then prints `SIG<name>` for every signal that arrives. After N signals
(0 = never) it prints `DONE` and exits with C; if nothing ends it within S seconds it
prints `TIMEOUT` and exits 99, so a lost signal can never hang a test.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time


def parse_signal(name: str) -> int:
    name = name.upper().removeprefix("SIG")
    if name.startswith("RTMIN+"):
        return signal.SIGRTMIN + int(name.split("+", 1)[1])
    return int(getattr(signal, "SIG" + name))


def signal_name(number: int) -> str:
    if signal.SIGRTMIN <= number <= signal.SIGRTMAX:
        return f"SIGRTMIN+{number - signal.SIGRTMIN}"
    return signal.Signals(number).name


def say(text: str) -> None:
    # One write(2) per line, no Python buffering: a handler that interrupts another
    # handler's output (buffered I/O runs pending handlers) cannot split a line.
    os.write(1, (text + "\n").encode())


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--exit-after", type=int, default=0)
    parser.add_argument("--exit-code", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("signals", nargs="+")
    args = parser.parse_args()

    received: list[int] = []

    def on_signal(number: int, _frame: object) -> None:
        received.append(number)
        say(signal_name(number))

    for name in args.signals:
        signal.signal(parse_signal(name), on_signal)
    say(f"READY {os.getpid()}")

    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        if args.exit_after and len(received) >= args.exit_after:
            say("DONE")
            return int(args.exit_code)
        time.sleep(0.01)
    say("TIMEOUT")
    return 99


if __name__ == "__main__":
    sys.exit(main())
