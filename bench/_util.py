"""Small helpers shared by the benchmarks: finding cinit, timing runs, statistics, tables."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROGRAMS = ROOT / "tests" / "programs"
UNSHARE = ["unshare", "--pid", "--fork", "--mount-proc"]


def cinit_command() -> list[str]:
    """argv prefix of the cinit under test: `CINIT_BIN`, else the venv's console script."""
    override = os.environ.get("CINIT_BIN")
    if override:
        return shlex.split(override)
    script = Path(sys.executable).parent / "cinit"
    if script.exists():
        return [str(script)]
    found = shutil.which("cinit")
    return [found] if found else [sys.executable, "-m", "cinit"]


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (`fraction` in 0..1): an observed value, no interpolation."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * fraction // 1))  # ceil without importing math
    return ordered[int(rank) - 1]


def wall_ms(
    argv: Sequence[str], timeout: float = 60.0
) -> tuple[float, subprocess.CompletedProcess[bytes]]:
    """Run `argv` to completion; (wall time in ms, result with captured output)."""
    started = time.perf_counter_ns()
    result = subprocess.run(argv, capture_output=True, timeout=timeout, check=False)
    return (time.perf_counter_ns() - started) / 1e6, result


def children(pid: int) -> list[int]:
    """Direct children of `pid`, from /proc/<pid>/task/*/children."""
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        try:
            listing = Path(f"/proc/{pid}/task/{task}/children").read_text()
        except OSError:
            continue
        found.extend(int(child) for child in listing.split())
    return found


def status_kib(pid: int, key: str) -> int | None:
    """A `kB` field of /proc/<pid>/status (VmHWM, VmRSS, ...), or None once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def fmt(value: float | None, unit: str = "", digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}{unit}"


def ratio(ours: float | None, peer: float | None) -> str:
    if ours is None or peer is None or peer == 0:
        return "n/a"
    return f"{ours / peer:.2f}x"


def print_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Print an aligned plain-text table under `title`."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
    print(f"\n{title}")
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))


# --- machine-readable results, read by bench/report.py ----------------------------------------


def add_json_option(parser: argparse.ArgumentParser) -> None:
    """`--json PATH`: also write the bench's medians, ratios and targets there."""
    parser.add_argument(
        "--json", type=Path, metavar="PATH", help="also write medians/ratios/targets as JSON"
    )


def result_row(
    metric: str,
    unit: str,
    cinit: float | None,
    peers: dict[str, float | None] | None = None,
    *,
    ratio_to: str | None = None,
    ratio_value: float | None = None,
    target: str = "",
    met: bool | None = None,
    digits: int = 1,
) -> dict[str, object]:
    """One report row: cinit's median beside its peers', the ratio cinit/`ratio_to` (or
    `ratio_value` when the ratio is not cinit over a peer's cell), the target and whether
    it was met (None: no target)."""
    peers = peers or {}
    if ratio_value is None and ratio_to is not None:
        peer = peers.get(ratio_to)
        if cinit is not None and peer:
            ratio_value = cinit / peer
    return {
        "metric": metric, "unit": unit, "digits": digits, "cinit": cinit, "peers": peers,
        "ratio": ratio_value, "ratio_to": ratio_to, "target": target, "met": met,
    }  # fmt: skip


def write_json(
    path: Path | None,
    bench: str,
    rows: Sequence[dict[str, object]],
    *,
    notes: Sequence[str] = (),
    params: dict[str, object] | None = None,
) -> None:
    """Write a bench's rows (see `result_row`) for bench/report.py; nothing without a path."""
    if path is None:
        return
    document = {"bench": bench, "params": params or {}, "rows": list(rows), "notes": list(notes)}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=1) + "\n")
