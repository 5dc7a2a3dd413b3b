"""Benchmark the units' log rings: memory with 30 full rings, and what reading them costs.

Run from the repository: `python bench/log_ring.py [units] [line-bytes]` (default 30 units
of 2000-byte lines: each writes 2 MiB, so each ring ends at its 1 MiB bound).

One `OutputRelay` (cinit's, with the default bounds: 1000 lines or 1 MiB per unit) serves
`units` writer processes started with cinit's spawn; each writes twice its ring's worth of
lines. Printed: the process's RSS before the writers and after they are done (the rings
full), the bytes the rings hold, and how long `read_logs` takes for the last 10 lines of
one unit (`cinit status UNIT`), the last 1000 of all units, and everything (paged as
`cinit logs` pages, 5000 lines a request). First, the relay's hot path alone: CPU time
to prefix, write (to /dev/null) and keep 64 KiB reads of 100-byte lines, with the ring
and without (`--log-lines 0`), in lines per CPU second (best of 5).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._util import add_json_option, median, result_row, write_json
from cinit.io import output
from cinit.io.reaper import ProcessTable
from cinit.io.spawn import SpawnRequest, spawn


class Quiet:
    def tell(self, message: object) -> None:
        pass


def rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def hot_path(ring: bool, reads: int = 2000) -> float:
    """Lines per CPU second through `OutputRelay._relay` (the thread's work per read)."""
    null = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
    relay = output.OutputRelay(null, null, log_lines=output.LOG_LINES if ring else 0)
    os.close(relay.open_pipe("web.service", 1, True))
    pipe = relay._pending[0]
    block = b"".join(b"%010d " % n + b"x" * 88 + b"\n" for n in range(656))[:65536]
    best = []
    for _ in range(5):
        begun = time.process_time()
        for _ in range(reads):
            relay._relay(pipe, block)
        best.append(time.process_time() - begun)
    os.close(pipe.fd)
    os.close(null)
    return reads * block.count(b"\n") / min(best)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("units", type=int, nargs="?", default=30)
    parser.add_argument("line_bytes", type=int, nargs="?", default=2000)
    add_json_option(parser)
    args = parser.parse_args()
    rows: list[dict[str, object]] = []
    speeds = {}
    for ring in (True, False):
        name = "with the ring" if ring else "without (--log-lines 0)"
        speeds[ring] = hot_path(ring) / 1e6
        print(f"hot path {name}: {speeds[ring]:.1f} M lines per CPU second")
    rows.append(
        result_row(
            "relay hot path with the log ring (M lines per CPU second)",
            "M/s",
            speeds[True],
            {"without the ring": speeds[False]},
            ratio_to="without the ring",
        )
    )
    null = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
    relay = output.OutputRelay(null, null)
    relay.start()
    count = 2 * output.LOG_BYTES // args.line_bytes + 1
    body = "x" * (args.line_bytes - 8)
    code = (
        "import os\n"
        f"block = b''.join(b'%07d ' % i + b'{body}\\n' for i in range({count}))\n"
        "os.write(1, block)\n"
    )
    before = rss_kib()
    started = time.perf_counter()
    processes = []
    for n in range(args.units):
        write_end = relay.open_pipe(f"unit{n}.service", 1, True)
        request = SpawnRequest([sys.executable, "-c", code], label="w", stdout=write_end)
        processes.append(spawn(request, ProcessTable(), Quiet()))
        os.close(write_end)
    for process in processes:
        os.waitpid(process.pid, 0)
    while relay.open_pipes:
        time.sleep(0.001)
    seconds = time.perf_counter() - started
    after = rss_kib()
    rings = relay._rings.values()
    held = sum(ring.size for ring in rings)
    lines = sum(ring.lines for ring in rings)
    written = args.units * count * args.line_bytes / 2**20
    print(f"log rings: {args.units} units x {count} lines of {args.line_bytes} bytes")
    print(f"relayed {written:.0f} MiB in {seconds:.2f} s ({written / seconds:.0f} MiB/s)")
    print(f"rings hold {held / 2**20:.1f} MiB in {lines} lines")
    print(f"RSS before {before / 1024:.1f} MiB, after {after / 1024:.1f} MiB")
    print(f"RSS growth {(after - before) / 1024:.1f} MiB for {held / 2**20:.1f} MiB kept")
    rows.append(
        result_row(
            f"RSS growth, {args.units} units' full rings ({held / 2**20:.1f} MiB of lines kept)",
            "MiB",
            (after - before) / 1024,
        )
    )

    def timed(what: str, call: object) -> None:
        times = []
        for _ in range(5):
            begun = time.perf_counter()
            call()  # type: ignore[operator]
            times.append(time.perf_counter() - begun)
        print(f"read_logs {what}: {median(times) * 1000:.1f} ms")
        rows.append(result_row(f"read the kept lines: {what}", "ms", median(times) * 1000))

    def everything() -> None:
        cursor = 0
        while True:
            page, cursor = relay.read_logs(None, 5000, None, cursor, 4 << 20)
            if not page:
                return

    timed("last 10 of one unit", lambda: relay.read_logs(["unit0.service"], 10))
    timed("last 1000 of all units", lambda: relay.read_logs(None, 1000))
    timed("everything, paged", everything)
    relay.stop()
    os.close(null)
    write_json(args.json, "log_ring", rows, params={"units": args.units})


if __name__ == "__main__":
    main()
