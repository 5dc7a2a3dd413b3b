#!/usr/bin/env python3
"""Orphan one grandchild and report who adopted it and whether it was reaped.

usage: orphan_reaped.py [--linger S] [--exit-code C]

Double-forks a grandchild that outlives its parent. Once orphaned, the grandchild sends
its new parent pid through a pipe, lingers S seconds, and exits. This process (the main
command) then watches /proc/<grandchild> until it is gone (reaped) or 5 s pass, and prints
one JSON object: its own parent pid (the init under test), the orphan's pid, the orphan's
parent after re-parenting, and the orphan's fate: "reaped", "zombie" or "running".
Exits with C, so a caller can also see that the init kept running and passed it on.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time


def state_of(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--linger", type=float, default=0.2)
    parser.add_argument("--exit-code", type=int, default=0)
    args = parser.parse_args()

    read_end, write_end = os.pipe()
    intermediate = os.fork()
    if intermediate == 0:
        os.close(read_end)
        parent = os.getpid()  # taken before the fork: the parent may be gone before we look
        if os.fork() == 0:
            give_up = time.monotonic() + 5
            while os.getppid() == parent and time.monotonic() < give_up:
                time.sleep(0.001)
            os.write(write_end, f"{os.getpid()} {os.getppid()}\n".encode())
            os.close(write_end)
            time.sleep(args.linger)
            os._exit(0)
        os._exit(0)
    os.close(write_end)
    os.waitpid(intermediate, 0)
    with os.fdopen(read_end) as reader:
        orphan_pid, adopted_by = (int(word) for word in reader.readline().split())

    watched_from = time.monotonic()
    give_up = watched_from + args.linger + 5
    fate = state_of(orphan_pid)
    while fate is not None and time.monotonic() < give_up:
        time.sleep(0.005)
        fate = state_of(orphan_pid)
    report = {
        "init_pid": os.getppid(),
        "orphan_pid": orphan_pid,
        "orphan_ppid": adopted_by,
        "orphan_fate": "reaped" if fate is None else ("zombie" if fate == "Z" else "running"),
        "gone_after_ms": round((time.monotonic() - watched_from) * 1000, 1),
    }
    print(json.dumps(report), flush=True)
    return int(args.exit_code)


if __name__ == "__main__":
    sys.exit(main())
