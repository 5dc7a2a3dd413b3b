"""Benchmark cinit as PID 1 against tini, side by side in one run.

Run as root from the repository: `python -m bench.pid1` (or `python bench/pid1.py`).
`CINIT_BIN` selects the cinit build. tini and dumb-init are used when installed (apt packages
`tini`, `dumb-init`), each skipped with a note when missing; nothing is installed.

Measures, each init running as PID 1 of a fresh `unshare --pid --fork --mount-proc`:
  (a) exec of the init -> exec of its child, and the whole run's wall time;
  (b) the init's peak RSS (VmHWM);
  (c) the time to reap a burst of 10,000 orphaned zombies.
Prints tables of medians (and p90) with the ratio cinit/tini and the issue's targets.
`--json PATH` also writes the medians, ratios and targets for bench/report.py.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._util import (
    PROGRAMS,
    UNSHARE,
    add_json_option,
    children,
    cinit_command,
    fmt,
    median,
    percentile,
    print_table,
    ratio,
    result_row,
    status_kib,
    wall_ms,
    write_json,
)

EXEC_RUNS = 25
RSS_RUNS = 3
STORM_RUNS = 5
STORM_SIZE = 10_000

# `date +%s%N` stamps the time just before the init is exec'd (as PID 1, by the shell's
# exec); the child, another `date`, stamps the time it started. Their difference is
# exec(init) -> exec(child) plus a little measuring cost, taken out with the "no init" row.
STAMP_THEN_EXEC = ["/bin/sh", "-c", 'date +%s%N; exec "$@"', "stamp"]
STAMP_CHILD = ["/bin/date", "+%s%N"]


def exec_to_child_ms(init: list[str]) -> float | None:
    """One run: ms from exec of `init` (as PID 1) to its child's start; None on failure."""
    argv = [*UNSHARE, *STAMP_THEN_EXEC, *init, *(["--"] if init else []), *STAMP_CHILD]
    _, result = wall_ms(argv, timeout=30)
    stamps = [int(line) for line in result.stdout.split() if line.isdigit()]
    if result.returncode != 0 or len(stamps) != 2:
        return None
    return (stamps[1] - stamps[0]) / 1e6


def whole_run_ms(init: list[str]) -> float | None:
    """One run: wall ms of `unshare ... init -- /bin/true` (start, child, shutdown, exit)."""
    elapsed, result = wall_ms([*UNSHARE, *init, *(["--"] if init else []), "/bin/true"], timeout=30)
    return elapsed if result.returncode == 0 else None


def peak_rss_kib(init: list[str]) -> int | None:
    """VmHWM of the init, polled from the host until it exits (main command: sleep 1 s)."""
    proc = subprocess.Popen(
        [*UNSHARE, *init, "--", "/bin/sleep", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    unshare_exe = os.path.realpath(shutil.which("unshare") or "/usr/bin/unshare")
    peak: int | None = None
    deadline = time.monotonic() + 20
    init_pid: int | None = None
    while proc.poll() is None and time.monotonic() < deadline:
        if init_pid is None:
            for child in children(proc.pid):
                try:
                    if os.readlink(f"/proc/{child}/exe") != unshare_exe:  # it has exec'd
                        init_pid = child
                except OSError:
                    continue
        if init_pid is not None:
            sample = status_kib(init_pid, "VmHWM")
            if sample is not None:
                peak = sample  # VmHWM only grows: the last sample is the peak so far
        time.sleep(0.002)
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    return peak if proc.returncode == 0 else None


def storm(init: list[str]) -> dict[str, float] | None:
    """One burst of STORM_SIZE orphaned zombies inherited at once; the storm program's report."""
    argv = [
        *UNSHARE, *init, "--", sys.executable, str(PROGRAMS / "orphan_storm.py"),
        str(STORM_SIZE), "--per", str(STORM_SIZE), "--deadline", "30",
    ]
    _, result = wall_ms(argv, timeout=90)
    lines = [line for line in result.stdout.decode().splitlines() if line.startswith("{")]
    if result.returncode != 0 or not lines:
        return None
    report: dict[str, float] = json.loads(lines[-1])
    return report


def usable(name: str, init: list[str]) -> bool:
    """Check the init runs at all as PID 1 here; say why not when it does not."""
    try:
        _, result = wall_ms([*UNSHARE, *init, "--", "/bin/true"], timeout=30)
    except subprocess.TimeoutExpired:
        print(f"{name}: `{' '.join(init)} -- /bin/true` did not finish in 30 s; skipped")
        return False
    if result.returncode != 0:
        err = result.stderr.decode(errors="replace").strip().splitlines()
        print(f"{name}: `{' '.join(init)} -- /bin/true` exited {result.returncode}; skipped")
        for line in err[-5:]:
            print(f"    {line}")
        return False
    return True


Sample = TypeVar("Sample")


def collect(
    inits: dict[str, list[str]], runs: int, measure: Callable[[list[str]], Sample | None]
) -> dict[str, list[Sample]]:
    """Run `measure` `runs` times per init, interleaving inits so noise hits all alike."""
    samples: dict[str, list[Sample]] = {name: [] for name in inits}
    for _ in range(runs):
        for name, init in inits.items():
            value = measure(init)
            if value is not None:
                samples[name].append(value)
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exec-runs", type=int, default=EXEC_RUNS, help="runs of (a)")
    parser.add_argument("--storm-runs", type=int, default=STORM_RUNS, help="runs of (c)")
    add_json_option(parser)
    args = parser.parse_args()
    exec_runs, storm_runs = args.exec_runs, args.storm_runs
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        print("bench/pid1: needs root and unshare (util-linux) to run inits as PID 1")
        return 1
    scratch = Path(tempfile.mkdtemp(prefix="cinit-bench-"))
    candidates = {
        "cinit": [*cinit_command(), "--units", str(scratch / "no-units"),
                  "--drop-in", str(scratch / "no-drop-in")],
    }
    tini = shutil.which("tini")
    if tini:
        candidates["tini"] = [tini]
    else:
        print("tini not installed: peer column skipped (apt package `tini`)")
    dumb_init = shutil.which("dumb-init")
    if dumb_init:
        candidates["dumb-init"] = [dumb_init]
    else:
        print("dumb-init not installed: peer column skipped (apt package `dumb-init`)")
    inits = {name: argv for name, argv in candidates.items() if usable(name, argv)}
    names = list(inits)
    print(f"inits: {', '.join(names) or 'none'}; {os.cpu_count()} CPUs; "
          "medians of interleaved runs")

    # (a) exec -> child
    baseline = collect({"no init": []}, exec_runs, exec_to_child_ms)["no init"]
    exec_samples = collect(inits, exec_runs, exec_to_child_ms)
    wall_base = collect({"no init": []}, exec_runs, whole_run_ms)["no init"]
    wall_samples = collect(inits, exec_runs, whole_run_ms)
    base_med = median(baseline) if baseline else 0.0
    wall_base_med = median(wall_base) if wall_base else None
    meds = {name: median(xs) if xs else None for name, xs in exec_samples.items()}
    rows = [["no init (sh execs date)", fmt(base_med),
             fmt(percentile(baseline, 0.9)) if baseline else "n/a", "-",
             fmt(wall_base_med), "-", str(len(baseline)), "-", "-"]]
    for name in names:
        xs, ws = exec_samples[name], wall_samples[name]
        raw = meds[name]
        wall_med = median(ws) if ws else None
        rows.append([
            name, fmt(raw), fmt(percentile(xs, 0.9)) if xs else "n/a",
            fmt(None if raw is None else raw - base_med),
            fmt(wall_med),
            fmt(None if wall_med is None or wall_base_med is None else wall_med - wall_base_med),
            str(len(xs)),
            ratio(meds.get("cinit"), meds.get("tini")) if name == "cinit" else "",
            "<= 30 ms median" if name == "cinit" else "",
        ])
    print_table(
        "(a) exec(init) -> exec(child), ms. raw = `date` stamp before the exec of the init to "
        "the child `date`'s stamp;\n    net = raw - no-init row; whole run = wall of "
        "`unshare ... init -- /bin/true`, overhead = minus `unshare ... /bin/true`",
        ["init", "raw median", "raw p90", "net median", "whole run", "overhead", "n",
         "cinit/tini", "target"],
        rows,
    )

    # (b) peak RSS
    rss = collect(inits, RSS_RUNS, peak_rss_kib)
    # (c) storm (also gives VmHWM after reaping the storm)
    storms = collect(inits, storm_runs, storm)
    rss_meds: dict[str, float | None] = {}
    rss_parts: dict[str, tuple[float | None, float | None]] = {}
    for name in names:
        idle = median(rss[name]) / 1024 if rss[name] else None
        after = max(r["VmHWM"] for r in storms[name]) / 1024 if storms[name] else None
        rss_parts[name] = (idle, after)
        seen = [v for v in (idle, after) if v is not None]
        rss_meds[name] = max(seen) if seen else None
    rss_rows = [
        [name, fmt(rss_parts[name][0], digits=2), fmt(rss_parts[name][1], digits=2),
         fmt(rss_meds[name], digits=2),
         ratio(rss_meds.get("cinit"), rss_meds.get("tini")) if name == "cinit" else "",
         "<= 25 MiB" if name == "cinit" else ""]
        for name in names
    ]
    print_table(
        "(b) peak RSS (VmHWM), MiB. idle run = polled from the host every 2 ms until the init "
        "exits\n    (main command `sleep 1`); after storm = read by the main command after (c)",
        ["init", "idle run", "after storm", "peak", "cinit/tini", "target"],
        rss_rows,
    )

    tails = {
        name: median([r["tail_ms"] for r in reports]) if reports else None
        for name, reports in storms.items()
    }
    storm_rows = []
    for name in names:
        reports = storms[name]
        cpu = median([r["pid1_cpu_ms"] for r in reports]) if reports else None
        spawn = median([r["spawn_ms"] for r in reports]) if reports else None
        left = max(r["left"] for r in reports) if reports else None
        storm_rows.append([
            name, fmt(tails[name]), fmt(cpu, digits=0), fmt(spawn, digits=0),
            fmt(left, digits=0), f"{len(reports)}/{storm_runs}",
            ratio(tails.get("cinit"), tails.get("tini")) if name == "cinit" else "",
            "<= 1.2x tini" if name == "cinit" else "",
        ])
    print_table(
        f"(c) reaping a burst of {STORM_SIZE:,} orphans: one intermediate forks them all and "
        "exits, PID 1 inherits the zombies at once;\n    reap = from that exit until /proc "
        "(seen from inside) holds only PID 1 and the main command;\n"
        "    cpu = PID 1's CPU time over the whole storm",
        ["init", "reap ms", "init cpu ms", "fork phase ms", "left", "runs", "cinit/tini",
         "target"],
        storm_rows,
    )
    shutil.rmtree(scratch, ignore_errors=True)
    peers = [name for name in names if name != "cinit"]
    whole = {name: median(wall_samples[name]) if wall_samples[name] else None for name in names}
    cinit_raw, cinit_rss, cinit_tail = meds.get("cinit"), rss_meds.get("cinit"), tails.get("cinit")
    tini_tail = tails.get("tini")
    write_json(
        args.json,
        "pid1",
        [
            result_row("exec(init) -> exec(child) (raw stamps)", "ms", cinit_raw,
                       {"no init": base_med, **{p: meds[p] for p in peers}}, ratio_to="tini",
                       target="<= 30 ms", met=None if cinit_raw is None else cinit_raw <= 30),
            result_row("whole run `init -- /bin/true` (start, child, exit)", "ms",
                       whole.get("cinit"),
                       {"no init": wall_base_med, **{p: whole[p] for p in peers}},
                       ratio_to="tini"),
            result_row("peak RSS (VmHWM)", "MiB", cinit_rss, {p: rss_meds[p] for p in peers},
                       ratio_to="tini", digits=2, target="<= 25 MiB",
                       met=None if cinit_rss is None else cinit_rss <= 25),
            result_row(f"reap a burst of {STORM_SIZE:,} orphaned zombies", "ms", cinit_tail,
                       {p: tails[p] for p in peers}, ratio_to="tini", target="<= 1.2x tini",
                       met=None if cinit_tail is None or not tini_tail
                       else cinit_tail <= 1.2 * tini_tail),
        ],
        notes=[f"{name} not installed: skipped" for name in ("tini", "dumb-init")
               if name not in inits],
        params={"exec_runs": exec_runs, "rss_runs": RSS_RUNS, "storm_runs": storm_runs},
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
