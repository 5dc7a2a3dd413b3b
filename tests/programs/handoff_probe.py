#!/usr/bin/env python3
"""The program `cinit --then-exec` hands off to, in tests/e2e/test_handoff.py.

At start it prints, one per line on stdout (flushed):

    probe pid=<pid> ppid=<ppid>
    probe start_ns=<CLOCK_REALTIME ns>
    probe fds=<fds open at exec, comma separated>
    probe sigblk=<SigBlk hex>       (CPython leaves the mask as exec found it)
    probe others=<pids of every other process in /proc, comma separated>
    probe found=<name:yes|no for each --expect file>
    probe stdio=<what fds 0, 1 and 2 point to, comma separated>
    probe ready

(also written to the file of `--report PATH`; `--exit-now` then exits 0 at once), then
waits for SIGTERM with a handler of its own: prints `probe got SIGTERM` and exits 42
(cinit would exit 0 or 143: 42 proves that cinit is gone and the probe owns the signal).
Exits 3 after 30 s without a signal, so it never outlives a broken test.
"""

from __future__ import annotations

import argparse
import os
import signal
import time


def fds_at_start() -> list[int]:
    """Open fds, without the directory fd of the listing itself."""
    listed = sorted(int(name) for name in os.listdir("/proc/self/fd"))
    opened = []
    for fd in listed:
        try:
            os.fstat(fd)
        except OSError:
            continue  # the listing's own fd, closed by now
        opened.append(fd)
    return opened


def status_field(name: str) -> str:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(name + ":"):
                return line.split()[1]
    return "?"


def stdio_targets() -> list[str]:
    targets = []
    for fd in (0, 1, 2):
        try:
            targets.append(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            targets.append("closed")
    return targets


def other_processes() -> list[int]:
    me = os.getpid()
    return sorted(int(n) for n in os.listdir("/proc") if n.isdigit() and int(n) != me)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--expect", action="append", default=[])
    parser.add_argument("--report")
    parser.add_argument("--exit-now", action="store_true")
    options = parser.parse_args()
    fds = fds_at_start()  # first: before this program opens anything
    start_ns = time.time_ns()

    def on_term(signo: int, frame: object) -> None:
        print("probe got SIGTERM", flush=True)
        os._exit(42)

    signal.signal(signal.SIGTERM, on_term)
    found = ",".join(
        f"{os.path.basename(p)}:{'yes' if os.path.exists(p) else 'no'}" for p in options.expect
    )
    lines = [
        f"pid={os.getpid()} ppid={os.getppid()}",
        f"start_ns={start_ns}",
        f"fds={','.join(map(str, fds))}",
        f"sigblk={status_field('SigBlk')}",
        f"others={','.join(map(str, other_processes()))}",
        f"found={found}",
        f"stdio={','.join(stdio_targets())}",
        "ready",
    ]
    for line in lines:
        print("probe " + line, flush=True)
    if options.report:
        with open(options.report, "w") as report:
            report.writelines(f"probe {line}\n" for line in lines)
    if options.exit_now:
        return 0
    time.sleep(30)
    return 3


if __name__ == "__main__":
    raise SystemExit(main())
