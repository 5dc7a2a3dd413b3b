"""Benchmark loading and validating unit files (issue 2, section 6).

Run from the repository: `python bench/validate.py` (or `python -m bench.validate`).
`CINIT_BIN` selects the cinit build for the whole-process measurement.

Measures, and prints beside its target:
  (a) `load_units` + start order on 1,000 generated units (500 services, 500 sockets,
      drop-ins that override and that add), in-process: median of >= 7 runs after a
      warm-up; target <= 150 ms;
  (b) the same on 10,000 units, and its ratio to (a); target <= 10x;
  (c) `cinit validate --strict-units` on the seed corpus as a whole process: median of
      >= 20 runs; target <= 150 ms wall, beside `python -c pass` measured in the same run.
Numbers only: no assertion, no exit status from a missed target.
`--json PATH` also writes the medians, ratios and targets for bench/report.py.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._util import (
    ROOT,
    add_json_option,
    cinit_command,
    fmt,
    median,
    percentile,
    print_table,
    result_row,
    wall_ms,
    write_json,
)
from bench.make_units import ENVIRON, UnitTree, write_unit_tree
from cinit.units import Severity, load_units

SEED = ROOT / "tests" / "data" / "seed"
TARGET_1K_MS = 150.0
TARGET_SCALING = 10.0
TARGET_PROCESS_MS = 150.0


def load_once(tree: UnitTree) -> tuple[float, float, int, int, int]:
    """One load + validation + start order: (wall ms, CPU ms, units, warnings, errors)."""
    wall, cpu = time.perf_counter_ns(), time.process_time_ns()
    unit_set = load_units(
        str(tree.core), str(tree.drop_in), strict=True, environ=ENVIRON, hostname="bench"
    )
    unit_set.start_order()  # what `cinit validate` prints, and the supervisor needs
    wall_elapsed = (time.perf_counter_ns() - wall) / 1e6
    cpu_elapsed = (time.process_time_ns() - cpu) / 1e6
    warnings = sum(1 for d in unit_set.diagnostics if d.severity is Severity.WARNING)
    errors = sum(1 for d in unit_set.diagnostics if d.severity is Severity.ERROR)
    return wall_elapsed, cpu_elapsed, len(unit_set.units), warnings, errors


@dataclass
class Loads:
    wall: list[float]
    cpu: list[float]
    units: int = 0
    warnings: int = 0
    errors: int = 0


def time_loads(trees: list[UnitTree], runs: int, *, gc_paused: bool = False) -> list[Loads]:
    """`runs` timed loads of each tree after a warm-up, the trees taking turns (so drift in
    machine load hits every size alike). With `gc_paused`, the cyclic GC is off during each
    load: a peer showing what the collector costs, not how cinit runs."""
    for tree in trees:
        load_once(tree)  # warm-up: imports, page cache, regex compilation
    results = [Loads([], []) for _ in trees]
    for _ in range(runs):
        for tree, loads in zip(trees, results, strict=True):
            gc.collect()  # start each run from the same heap, not from the last run's garbage
            if gc_paused:
                gc.disable()
            try:
                wall, cpu, loads.units, loads.warnings, loads.errors = load_once(tree)
            finally:
                gc.enable()
            loads.wall.append(wall)
            loads.cpu.append(cpu)
    return results


def verdict(value: float, target: float) -> str:
    return "ok" if value <= target else "MISSED"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="in-process runs per size (>= 7)")
    parser.add_argument("--process-runs", type=int, default=25, help="process runs (>= 20)")
    parser.add_argument("--small", type=int, default=1_000, help="units in the small set")
    parser.add_argument("--large", type=int, default=10_000, help="units in the large set")
    add_json_option(parser)
    options = parser.parse_args()

    rows: list[list[str]] = []
    with tempfile.TemporaryDirectory(prefix="cinit-bench-validate-") as tmp:
        small = write_unit_tree(Path(tmp, "small"), options.small)
        large = write_unit_tree(Path(tmp, "large"), options.large)
        os.sync()  # let writeback of the new files finish before anything is timed
        small_loads, large_loads = time_loads([small, large], options.runs)
        small_paused, large_paused = time_loads([small, large], options.runs, gc_paused=True)
    for label, tree, loads in (("small", small, small_loads), ("large", large, large_loads)):
        print(
            f"{label} set: {tree.services} services + {tree.sockets} sockets in {tree.files} "
            f"files ({tree.overrides} drop-in overrides); loaded {loads.units} units, "
            f"{loads.warnings} warnings, {loads.errors} errors (strict)"
        )

    small_median, large_median = median(small_loads.wall), median(large_loads.wall)
    scaling = large_median / small_median
    paused_scaling = median(large_paused.wall) / median(small_paused.wall)

    def load_row(what: str, loads: Loads, target: str = "", result: str = "") -> list[str]:
        return [
            what,
            fmt(median(loads.wall), " ms"),
            fmt(percentile(loads.wall, 0.9), " ms"),
            fmt(median(loads.cpu), " ms"),
            target,
            result,
        ]

    rows.append(
        load_row(
            f"load+validate {options.small:,} units (in-process)",
            small_loads,
            f"<= {TARGET_1K_MS:.0f} ms",
            verdict(small_median, TARGET_1K_MS),
        )
    )
    rows.append(load_row(f"load+validate {options.large:,} units (in-process)", large_loads))
    rows.append(
        [
            f"  ratio {options.large:,} / {options.small:,}",
            f"{scaling:.2f}x",
            "",
            "",
            f"<= {TARGET_SCALING:.0f}x",
            verdict(scaling, TARGET_SCALING),
        ]
    )
    rows.append(load_row(f"  peer: {options.small:,} units, GC paused during load", small_paused))
    rows.append(load_row(f"  peer: {options.large:,} units, GC paused during load", large_paused))
    rows.append(["  peer: ratio with GC paused", f"{paused_scaling:.2f}x", "", "", "", ""])

    cinit = cinit_command()
    validate = [
        *cinit,
        "validate",
        "--units",
        str(SEED / "units"),
        "--drop-in",
        str(SEED / "container-init.d"),
        "--strict-units",
        "--no-host-checks",  # the seed's programs and users belong to its image
    ]
    baseline = [sys.executable, "-c", "pass"]
    # Interleave the two commands so machine noise hits both alike; one warm-up each
    # (page cache, .pyc files).
    cinit_ms: list[float] = []
    python_ms: list[float] = []
    wall_ms(validate)
    wall_ms(baseline)
    status = 0
    for _ in range(options.process_runs):
        elapsed, result = wall_ms(validate)
        cinit_ms.append(elapsed)
        status = status or result.returncode
        python_ms.append(wall_ms(baseline)[0])
    cinit_median, python_median = median(cinit_ms), median(python_ms)
    rows.append(
        [
            "cinit validate --strict-units, seed corpus (process)",
            fmt(cinit_median, " ms"),
            fmt(percentile(cinit_ms, 0.9), " ms"),
            "",
            f"<= {TARGET_PROCESS_MS:.0f} ms",
            verdict(cinit_median, TARGET_PROCESS_MS),
        ]
    )
    rows.append(
        [
            "  peer: python -c pass (same interpreter, same run)",
            fmt(python_median, " ms"),
            fmt(percentile(python_ms, 0.9), " ms"),
            "",
            "",
            "",
        ]
    )
    rows.append(
        [
            "  cinit validate minus python startup",
            fmt(cinit_median - python_median, " ms"),
            "",
            "",
            "",
            "",
        ]
    )
    print(f"\ncinit: {' '.join(cinit)} (exit status {status}); python: {sys.executable}")
    print(
        f"runs: {options.runs} in-process per size after a warm-up, "
        f"{options.process_runs} per process command after a warm-up"
    )
    print_table(
        "cinit validate benchmark (wall times; cpu = process CPU time, in-process only)",
        ["what", "median", "p90", "cpu median", "target", "verdict"],
        rows,
    )
    small_k, large_k = f"{options.small:,}", f"{options.large:,}"
    write_json(
        options.json,
        "validate",
        [
            result_row(f"load + validate {small_k} units, in-process", "ms", small_median,
                       {"GC paused": median(small_paused.wall)},
                       target=f"<= {TARGET_1K_MS:.0f} ms", met=small_median <= TARGET_1K_MS),
            result_row(f"load + validate {large_k} units, in-process", "ms", large_median,
                       {"GC paused": median(large_paused.wall)}),
            result_row(f"scaling {large_k} / {small_k} units", "x", scaling,
                       {"GC paused": paused_scaling}, digits=2,
                       target=f"<= {TARGET_SCALING:.0f}x", met=scaling <= TARGET_SCALING),
            result_row("`cinit validate --strict-units`, seed corpus, whole process", "ms",
                       cinit_median, {"python -c pass": python_median}, ratio_to="python -c pass",
                       target=f"<= {TARGET_PROCESS_MS:.0f} ms",
                       met=cinit_median <= TARGET_PROCESS_MS),
        ],
        notes=["peers: the same load with the cyclic GC paused (what the collector costs), and "
               "the interpreter's bare start-up (`python -c pass`)"],
        params={"runs": options.runs, "process_runs": options.process_runs},
    )  # fmt: skip


if __name__ == "__main__":
    main()
