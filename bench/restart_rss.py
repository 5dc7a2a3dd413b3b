"""Benchmark cinit's memory under a restart storm: RSS before, during and after N restarts.

Run as root from the repository: `python bench/restart_rss.py` (`--restarts 100000`).

cinit runs as PID 1 of a fresh `unshare --pid --fork --mount-proc` with one unit,
`ExecStart=/bin/true` with Restart=always, RestartSec=0 and StartLimitIntervalSec=0 (no start
limit, as systemd spells it): it restarts as fast as cinit can spawn and reap it. Restarts are
counted from cinit's own "started" lines on its stderr. PID 1's VmRSS (and its anonymous
part, RssAnon) is read from /proc after the first --warmup restarts (the baseline: imports,
first allocations and caches are done by then), at every --every restarts, and at the end.
The run stops at --restarts or after --max-seconds, whichever comes first. Numbers only: no
assertion. `CINIT_BIN` selects the cinit build.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._util import (
    UNSHARE,
    add_json_option,
    children,
    cinit_command,
    print_table,
    result_row,
    status_kib,
    write_json,
)

RESTARTS = 100_000
EVERY = 10_000
WARMUP = 1_000
MAX_SECONDS = 1200.0

STORM_UNIT = """\
[Unit]
Description=restart storm: exits at once, restarted at once, no start limit
StartLimitIntervalSec=0

[Service]
ExecStart=/bin/true
Restart=always
RestartSec=0
"""


class StartCounter:
    """Counts cinit's "storm.service: started" lines on its stderr (read on a thread)."""

    def __init__(self, stream: object) -> None:
        self.count = 0
        self.tail: list[bytes] = []
        self._stream = stream
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        for line in self._stream:  # type: ignore[attr-defined]
            if b"storm.service: started" in line:
                self.count += 1
            else:
                self.tail = [*self.tail[-20:], line]


def sample(pid: int, restarts: int, started: float) -> dict[str, float] | None:
    rss = status_kib(pid, "VmRSS")
    anon = status_kib(pid, "RssAnon")
    if rss is None or anon is None:
        return None
    return {
        "restarts": restarts,
        "seconds": time.monotonic() - started,
        "rss_kib": rss,
        "anon_kib": anon,
    }


def run_storm(args: argparse.Namespace, workdir: Path) -> tuple[list[dict[str, float]], str]:
    """Samples of PID 1's memory along the storm, and a note on how the run ended."""
    units = workdir / "units"
    units.mkdir()
    (units / "storm.service").write_text(STORM_UNIT)
    argv = [
        *UNSHARE, *cinit_command(), "--units", str(units), "--drop-in", str(workdir / "none"),
        "--runtime-dir", str(workdir / "run"),
    ]  # fmt: skip
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)  # fmt: skip
    counter = StartCounter(proc.stderr)
    started = time.monotonic()
    samples: list[dict[str, float]] = []
    pid1 = None
    ending = f"{args.restarts:,} restarts"
    try:
        while pid1 is None and time.monotonic() - started < 10:
            pid1 = next(iter(children(proc.pid)), None)
            time.sleep(0.01)
        if pid1 is None:
            return [], "cinit did not start"
        every = range(args.every, args.restarts + 1, args.every)
        marks = sorted({args.warmup, *every, args.restarts})
        for mark in marks:
            while counter.count < mark:
                if proc.poll() is not None:
                    tail = b"".join(counter.tail).decode(errors="replace")
                    return samples, f"cinit exited {proc.returncode}: {tail[-400:]}"
                if time.monotonic() - started > args.max_seconds:
                    ending = f"stopped after {args.max_seconds:.0f} s"
                    break
                time.sleep(0.05)
            got = sample(pid1, counter.count, started)
            if got is not None:
                samples.append(got)
                print(f"  {got['restarts']:>8,} restarts  {got['seconds']:7.1f} s  "
                      f"RSS {got['rss_kib'] / 1024:7.2f} MiB  anon "
                      f"{got['anon_kib'] / 1024:7.2f} MiB", flush=True)  # fmt: skip
            if ending.startswith("stopped"):
                break
        return samples, ending
    finally:
        if proc.poll() is None and pid1 is not None:
            os.kill(pid1, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.kill(pid1, signal.SIGKILL)
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=20)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--restarts", type=int, default=RESTARTS, help="restarts in all")
    parser.add_argument("--every", type=int, default=EVERY, help="sample every N restarts")
    parser.add_argument("--warmup", type=int, default=WARMUP, help="restarts before the baseline")
    parser.add_argument("--max-seconds", type=float, default=MAX_SECONDS, help="time bound")
    add_json_option(parser)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench/restart_rss: run as root (unshare --pid)", file=sys.stderr)
        return 2
    if shutil.which("unshare") is None:
        print("bench/restart_rss: unshare (util-linux) is needed", file=sys.stderr)
        return 2
    print(f"restart storm: /bin/true restarted at once, up to {args.restarts:,} restarts "
          f"or {args.max_seconds:.0f} s; cinit: {' '.join(cinit_command())}")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="cinit-bench-rss-") as tmp:
        samples, ending = run_storm(args, Path(tmp))
    if len(samples) < 2:
        print(f"bench/restart_rss: not measured ({ending})", file=sys.stderr)
        write_json(args.json, "restart_rss", [], notes=[f"not measured: {ending}"])
        return 1
    first, last = samples[0], samples[-1]
    restarts = last["restarts"] - first["restarts"]
    growth = (last["rss_kib"] - first["rss_kib"]) / 1024
    anon_growth = (last["anon_kib"] - first["anon_kib"]) / 1024
    rate = restarts / max(last["seconds"] - first["seconds"], 1e-9)
    print_table(
        f"PID 1 memory along the storm ({ending})",
        ["restarts", "seconds", "RSS MiB", "anon MiB"],
        [[f"{s['restarts']:,.0f}", f"{s['seconds']:.1f}", f"{s['rss_kib'] / 1024:.2f}",
          f"{s['anon_kib'] / 1024:.2f}"] for s in samples],
    )  # fmt: skip
    per_10k = growth / restarts * 10_000 if restarts else 0.0
    print(f"\nRSS {first['rss_kib'] / 1024:.2f} -> {last['rss_kib'] / 1024:.2f} MiB "
          f"({growth:+.2f} MiB, anon {anon_growth:+.2f} MiB) over {restarts:,.0f} restarts "
          f"after the first {first['restarts']:,.0f}; {per_10k:+.3f} MiB per 10,000; "
          f"{rate:.0f} restarts/s")  # fmt: skip
    rows = [
        result_row(f"PID 1 RSS after {first['restarts']:,.0f} restarts (baseline)", "MiB",
                   first["rss_kib"] / 1024, digits=2),
        result_row(f"PID 1 RSS after {last['restarts']:,.0f} restarts", "MiB",
                   last["rss_kib"] / 1024, digits=2),
        result_row("  growth per 10,000 restarts", "MiB", per_10k, digits=3),
        result_row("  restarts per second", "/s", rate, digits=0),
    ]  # fmt: skip
    write_json(args.json, "restart_rss", rows, notes=[ending], params=vars(args) | {"json": None})
    return 0


if __name__ == "__main__":
    sys.exit(main())
