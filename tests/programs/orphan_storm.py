#!/usr/bin/env python3
"""Make an orphan storm inside a PID namespace and report when the init has reaped it.

usage: orphan_storm.py COUNT [--per N] [--deadline S]

Forks COUNT/N short-lived intermediates; each forks N grandchildren that exit at once
and exits itself without waiting for them, so every grandchild is re-parented to the
namespace's PID 1 (some already as zombies, some still running). This process reaps only
its own intermediates. Then it polls /proc (it must run with --mount-proc so /proc is the
namespace's) until no process other than PID 1 and itself remains, or S seconds pass.
With N = COUNT a single intermediate forks every grandchild before it exits, so
PID 1 inherits a burst of (almost all already dead) COUNT zombies at once: the tail time is
then its reap time alone.

Prints one JSON object: orphans made, processes and zombies (and zombies whose parent is
PID 1) left at the end, times in ms (spawn phase, whole storm, tail after the last fork),
PID 1's CPU time spent during the storm, and PID 1's VmHWM/VmRSS in KiB.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time


def count_others(own_pid: int) -> int:
    """Processes other than PID 1 and this one; reaped ones vanish from /proc, zombies do not."""
    return sum(1 for entry in os.listdir("/proc") if entry.isdigit()) - (2 if own_pid != 1 else 1)


def scan(own_pid: int) -> tuple[int, int, int]:
    """(other processes, zombies, zombies whose parent is PID 1) visible in /proc."""
    others = zombies = zombies_of_pid1 = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in (1, own_pid):
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited and reaped between listdir and open
        others += 1
        if fields[0] == "Z":
            zombies += 1
            if fields[1] == "1":
                zombies_of_pid1 += 1
    return others, zombies, zombies_of_pid1


def pid1_cpu_ticks() -> int:
    with open("/proc/1/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def pid1_memory_kib() -> dict[str, int]:
    found: dict[str, int] = {}
    with open("/proc/1/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmHWM", "VmRSS"):
                found[key] = int(value.split()[0])
    return found


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("count", type=int)
    parser.add_argument("--per", type=int, default=10)
    parser.add_argument("--deadline", type=float, default=30.0)
    args = parser.parse_args()
    own_pid = os.getpid()

    cpu_before = pid1_cpu_ticks()
    started = time.monotonic()
    made = 0
    while made < args.count:
        batch = min(args.per, args.count - made)
        intermediate = os.fork()
        if intermediate == 0:
            for _ in range(batch):
                if os.fork() == 0:
                    os._exit(0)
            os._exit(0)
        os.waitpid(intermediate, 0)
        made += batch
    spawned = time.monotonic()

    deadline = spawned + args.deadline
    while count_others(own_pid) and time.monotonic() < deadline:
        time.sleep(0.001)
    cleared = time.monotonic()
    others, zombies, zombies_of_pid1 = scan(own_pid)
    ticks_per_s = os.sysconf("SC_CLK_TCK")

    report = {
        "orphans": made,
        "left": others,
        "zombies": zombies,
        "zombies_of_pid1": zombies_of_pid1,
        "spawn_ms": round((spawned - started) * 1000, 1),
        "storm_ms": round((cleared - started) * 1000, 1),
        "tail_ms": round((cleared - spawned) * 1000, 1),
        "pid1_cpu_ms": round((pid1_cpu_ticks() - cpu_before) * 1000 / ticks_per_s, 1),
        **pid1_memory_kib(),
    }
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
