"""Benchmark the output relay: MiB/s for one flooding writer, beside C peers.

Run from the repository: `python bench/output.py [MiB] [runs]` (default 64 MiB, 5 runs).

The writer is `cat` of a file of log lines held in /dev/shm (or /tmp), so the writer is
never the bottleneck. Each row moves the same bytes to /dev/null:

* floor: `cat file > /dev/null` (no pipe at all);
* `cat | cat`: a pipe and a C copy loop, no line handling (the cost of any relay);
* `cat | sed 's/^/web.service: /'`: a line-by-line prefixing relay in C;
* cinit's `OutputRelay` with and without the prefix, writer started with cinit's spawn,
  timed from spawn to the relay closing the pipe at EOF; plus a variant writing in 64 KiB
  batches instead of PIPE_BUF ones (to show what the atomic-line batching costs), and one
  without the unit's log ring (`--log-lines 0`: what keeping the lines costs).

Medians of `runs`; the ratio column is relay time over the `cat | cat` peer's.
`--json PATH` also writes the medians, ratios and targets for bench/report.py.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._util import add_json_option, median, result_row, write_json
from cinit.io import output
from cinit.io.reaper import ProcessTable
from cinit.io.spawn import SpawnRequest, spawn

DEFAULT_BATCH = output.WRITE_BATCH  # PIPE_BUF


def make_input(mib: int, line_length: int) -> str:
    directory = "/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir()
    fd, path = tempfile.mkstemp(prefix="cinit-bench-output-", dir=directory)
    body = b"x" * (line_length - 12)
    block = b"".join(b"%010d " % n + body + b"\n" for n in range(1024))
    with os.fdopen(fd, "wb") as f:
        for _ in range(mib * 1024 * 1024 // len(block)):
            f.write(block)
    return path


def shell_seconds(command: str) -> float:
    started = time.perf_counter()
    subprocess.run(["/bin/sh", "-c", command], check=True)
    return time.perf_counter() - started


class Quiet:
    def tell(self, message: object) -> None:
        pass


def relay_seconds(path: str, prefix: bool, batch: int, ring: bool = True) -> float:
    null = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
    saved = output.WRITE_BATCH
    output.WRITE_BATCH = batch
    relay = output.OutputRelay(null, null, log_lines=output.LOG_LINES if ring else 0)
    relay.start()
    try:
        started = time.perf_counter()
        write_end = relay.open_pipe("web.service", 1, prefix)
        request = SpawnRequest(["cat", path], label="writer", stdout=write_end)
        process = spawn(request, ProcessTable(), Quiet())
        os.close(write_end)
        os.waitpid(process.pid, 0)
        while relay.open_pipes:
            time.sleep(0.0005)
        return time.perf_counter() - started
    finally:
        relay.stop()
        output.WRITE_BATCH = saved
        os.close(null)


def measure(path: str, runs: int) -> list[tuple[str, float]]:
    """(case, median seconds) for every case of the module doc, on the file `path`."""
    prefix = "sed 's/^/web.service: /'"
    shell_cases = [
        ("floor: cat > /dev/null", f"cat {path} > /dev/null"),
        ("peer: cat | cat", f"cat {path} | cat > /dev/null"),
        ("peer: cat | sed prefix", f"cat {path} | {prefix} > /dev/null"),
    ]
    relay_cases = [
        ("cinit relay, prefix", True, DEFAULT_BATCH, True),
        ("cinit relay, no prefix", False, DEFAULT_BATCH, True),
        ("cinit relay, prefix, 64 KiB batches", True, 65536, True),
        ("cinit relay, prefix, no log ring", True, DEFAULT_BATCH, False),
    ]
    rows = [
        (name, median([shell_seconds(command) for _ in range(runs)]))
        for name, command in shell_cases
    ]
    rows += [
        (name, median([relay_seconds(path, prefixed, batch, ring) for _ in range(runs)]))
        for name, prefixed, batch, ring in relay_cases
    ]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mib", type=int, nargs="?", default=64, help="MiB through the writer")
    parser.add_argument("runs", type=int, nargs="?", default=5)
    add_json_option(parser)
    args = parser.parse_args()
    mib, runs = args.mib, args.runs
    json_rows = []
    print(f"output relay: {mib} MiB through one flooding writer, median of {runs} runs")
    print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    for line_length in (100, 1000):
        path = make_input(mib, line_length)
        size_mib = os.path.getsize(path) / (1024 * 1024)
        try:
            rows = measure(path, runs)
            pipe_peer = rows[1][1]
            print(f"\n{line_length}-byte lines ({size_mib:.0f} MiB)")
            print(f"{'case':40} {'MiB/s':>9} {'lines/s':>11} {'vs cat|cat':>10}")
            lines = os.path.getsize(path) / line_length
            for name, seconds in rows:
                print(
                    f"{name:40} {size_mib / seconds:9.0f} {lines / seconds:11.0f}"
                    f" {seconds / pipe_peer:9.2f}x"
                )
            speed = {name: size_mib / seconds for name, seconds in rows}
            json_rows.append(
                result_row(
                    f"{line_length}-byte lines, prefixed relay", "MiB/s",
                    speed["cinit relay, prefix"],
                    {"cat | cat": speed["peer: cat | cat"],
                     "cat | sed prefix": speed["peer: cat | sed prefix"],
                     "cat > /dev/null": speed["floor: cat > /dev/null"]},
                    ratio_to="cat | sed prefix", digits=0,
                )
            )  # fmt: skip
        finally:
            os.unlink(path)
    write_json(args.json, "output", json_rows, params={"mib": mib, "runs": runs})


if __name__ == "__main__":
    main()
