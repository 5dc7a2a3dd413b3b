"""Benchmark cinit's spawn primitive: spawns per second and fork -> exec-confirmed latency.

Run from the repository: `python bench/spawn.py [N]` (default N = 2000 per method).

Each method starts `/bin/true` N times, one after the other, and reaps each child before
the next. Latency is the time until the parent knows the exec succeeded (for cinit: the
error pipe reached EOF; `subprocess.Popen` waits for the same kind of pipe; glibc's
`posix_spawn` returns after the exec in the vfork'd child). Throughput counts spawn + reap.
Peers measured in the same run: a bare `os.fork` + exec (the floor of any fork-based
spawn in Python: no set-up at all), `os.posix_spawn` (vfork: faster, but it cannot chdir,
setuid, join a cgroup or set LISTEN_PID) and `subprocess.Popen` (what cinit must not use
for supervised processes, but a familiar yardstick). cinit is measured from the main
thread and from a second thread (as unit actors will call it).
`--json PATH` also writes the medians, ratios and targets for bench/report.py.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._util import add_json_option, result_row, write_json
from cinit.io.reaper import ProcessTable
from cinit.io.spawn import SpawnRequest, spawn

TRUE = "/bin/true"


def bench_cinit(n: int) -> list[float]:
    table = ProcessTable()
    request = SpawnRequest([TRUE], label="bench.service")
    latencies: list[float] = []
    for _ in range(n):
        started = time.perf_counter_ns()
        process = spawn(request, table)
        latencies.append(time.perf_counter_ns() - started)
        # Sleep until it has exited (without reaping), then reap through the table as
        # cinit's main loop does; no busy loop stealing the child's CPU.
        os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT)
        table.reap_all()
    return latencies


def bench_cinit_in_thread(n: int) -> list[float]:
    result: list[float] = []
    worker = threading.Thread(target=lambda: result.extend(bench_cinit(n)))
    worker.start()
    worker.join()
    return result


def bench_bare_fork(n: int) -> list[float]:
    """The floor of any fork-based spawn in Python: fork, exec at once, pipe EOF."""
    latencies: list[float] = []
    for _ in range(n):
        read_end, write_end = os.pipe()
        started = time.perf_counter_ns()
        pid = os.fork()
        if pid == 0:
            try:
                os.execv(TRUE, [TRUE])
            finally:
                os._exit(127)
        os.close(write_end)
        while os.read(read_end, 64):
            pass
        latencies.append(time.perf_counter_ns() - started)
        os.close(read_end)
        os.waitpid(pid, 0)
    return latencies


def bench_posix_spawn(n: int) -> list[float]:
    latencies: list[float] = []
    env = dict(os.environ)
    for _ in range(n):
        started = time.perf_counter_ns()
        pid = os.posix_spawn(TRUE, [TRUE], env, setsid=True, setsigmask=())
        latencies.append(time.perf_counter_ns() - started)
        os.waitpid(pid, 0)
    return latencies


def bench_popen(n: int) -> list[float]:
    latencies: list[float] = []
    for _ in range(n):
        started = time.perf_counter_ns()
        child = subprocess.Popen([TRUE], start_new_session=True)
        latencies.append(time.perf_counter_ns() - started)
        child.wait()
    return latencies


def measure(name: str, run: Callable[[int], list[float]], n: int) -> dict[str, float | str]:
    run(min(50, n))  # warm-up
    started = time.perf_counter()
    latencies = run(n)
    elapsed = time.perf_counter() - started
    ordered = sorted(latencies)
    return {
        "method": name,
        "per_s": n / elapsed,
        "median_us": statistics.median(ordered) / 1000,
        "p95_us": ordered[int(0.95 * (len(ordered) - 1))] / 1000,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", type=int, nargs="?", default=2000, help="spawns per method")
    add_json_option(parser)
    args = parser.parse_args()
    n = args.n
    rows = [
        measure("cinit spawn (main thread)", bench_cinit, n),
        measure("cinit spawn (other thread)", bench_cinit_in_thread, n),
        measure("bare os.fork + exec", bench_bare_fork, n),
        measure("os.posix_spawn", bench_posix_spawn, n),
        measure("subprocess.Popen", bench_popen, n),
    ]
    vfork = next(r for r in rows if r["method"] == "os.posix_spawn")
    fork = next(r for r in rows if r["method"] == "bare os.fork + exec")
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"spawn benchmark: {n} x {TRUE}, spawn + reap one at a time; "
          f"bench process peak RSS {rss_mib:.1f} MiB, {os.cpu_count()} CPUs")
    header = (
        f"{'method':28} {'spawns/s':>10} {'median µs':>10} {'p95 µs':>10} "
        f"{'vs bare fork':>13} {'vs posix_spawn':>15}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        median_us = float(row["median_us"])
        print(f"{row['method']:28} {row['per_s']:10.0f} {median_us:10.1f} "
              f"{row['p95_us']:10.1f} {median_us / float(fork['median_us']):12.2f}x "
              f"{median_us / float(vfork['median_us']):14.2f}x")
    by_name = {str(row["method"]): row for row in rows}
    peer_names = ("bare os.fork + exec", "os.posix_spawn", "subprocess.Popen")

    def spawn_row(metric: str, key: str, unit: str, method: str) -> dict[str, object]:
        peers = {name: float(by_name[name][key]) for name in peer_names}
        return result_row(metric, unit, float(by_name[method][key]), peers,
                          ratio_to="bare os.fork + exec", digits=0)

    write_json(
        args.json,
        "spawn",
        [
            spawn_row("spawn /bin/true, fork -> exec confirmed (median)", "median_us", "µs",
                      "cinit spawn (main thread)"),
            spawn_row("  the same from a second thread", "median_us", "µs",
                      "cinit spawn (other thread)"),
            spawn_row("spawns + reaps per second (higher is better)", "per_s", "/s",
                      "cinit spawn (main thread)"),
        ],
        notes=["posix_spawn (vfork) cannot chdir, setuid, join a cgroup or set LISTEN_PID; "
               "the bare fork is the floor of any fork-based spawn in Python"],
        params={"n": n},
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
