"""Run every benchmark of bench/ and write docs/benchmarks.md from their results.

Run as root from the repository: `python bench/report.py` (what `make bench` does), or
`python bench/report.py --quick` (fewer runs and smaller loads: `make bench-quick`).
`--out PATH` writes the report elsewhere (default docs/benchmarks.md); `--json-dir DIR` keeps
each bench's JSON there. `CINIT_BIN` selects the cinit build; `DSR=path/to/systemctl3.py`
adds docker-systemctl-replacement to the boot bench, par 30 and packaged (`pip install
--target DIR docker-systemctl-replacement` gives DIR/systemctl2/systemctl3.py).

Each bench runs in a process of its own, prints its usual tables, and writes its medians,
ratios and targets with `--json`; this file only renders them, beside a description of the
machine. A bench that fails or is not applicable here leaves a note in its area, not a gap.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._util import ROOT, cinit_command


@dataclass(frozen=True)
class Bench:
    """One bench script, the area of the report it belongs to and its arguments."""

    area: str
    script: str
    title: str
    full: tuple[str, ...]
    quick: tuple[str, ...]


BENCHES = (
    Bench("validate", "validate.py", "Loading and validating unit files", (),
          ("--runs", "3", "--process-runs", "8")),
    Bench("PID 1", "pid1.py", "cinit as PID 1 beside tini and dumb-init", (),
          ("--exec-runs", "7", "--storm-runs", "2")),
    Bench("PID 1", "spawn.py", "The spawn primitive (`/bin/true`, one at a time)", (),
          ("300",)),
    Bench("PID 1", "signal_window.py", "SIGTERM right after the exec of cinit as PID 1",
          ("--runs", "3"), ("--runs", "1", "--max-ms", "12")),
    Bench("PID 1", "restart_rss.py", "PID 1 memory under a restart storm (`/bin/true`)",
          ("--restarts", "20000", "--every", "5000"),
          ("--restarts", "5000", "--every", "1000", "--warmup", "500")),
    Bench("boot", "boot.py", "Booting and stopping unit sets, beside a shell-script floor; "
          "Debian's package units (packaged)",
          ("--runs", "7"), ("--runs", "2", "--packaged-runs", "1")),
    Bench("proxy", "proxy.py", "Proxy relay on loopback, beside systemd-socket-proxyd", (),
          ("--runs", "1", "--bulk-gib", "0.5", "--wrk-seconds", "2")),
    Bench("proxy", "socket_start.py", "Native socket activation, cold start", (),
          ("--runs", "10")),
    Bench("events", "events.py", "Event stream and control endpoint", (),
          ("--runs", "1", "--storm-seconds", "2")),
    Bench("timers", "timers.py", "Timers: PID 1 idle with 100 timers, firing jitter", (),
          ("--seconds", "8")),
    Bench("output", "output.py", "Output relay, one flooding writer", (), ("16", "2")),
    Bench("output", "log_ring.py", "Kept output (log ring): relay cost, memory, reads",
          (), ("10",)),
    Bench("systemctl", "systemctl.py", "`systemctl is-active` / `status` as whole processes, "
          "beside docker-systemctl-replacement", (), ("--runs", "10")),
    Bench("standalone", "standalone.py", "The standalone bin/cinit beside the pip install",
          (), ("--runs", "7")),
    Bench("standalone", "footprint.py", "The standalone bin/cinit's size: on disk, gzip'd tar",
          (), ()),
)  # fmt: skip

AREAS = {
    "validate": "Validate",
    "PID 1": "PID 1",
    "boot": "Boot",
    "proxy": "Proxy and socket activation",
    "events": "Events",
    "timers": "Timers",
    "output": "Output relay",
    "systemctl": "systemctl",
    "standalone": "Standalone build",
}

# (bench, start of the metric): the rows quoted at the top of the report (and in the README).
HEADLINES = (
    ("pid1", "exec(init)"),
    ("pid1", "peak RSS"),
    ("pid1", "reap a burst"),
    ("validate", "load + validate 1,000"),
    ("validate", "`cinit validate"),
    ("boot", "par 30: boot -> all ready"),
    ("boot", "chain 10: boot -> all ready"),
    ("boot", "par 30: SIGTERM -> exit"),
    ("boot", "par 30: PID 1 peak RSS"),
    ("boot", "packaged: boot -> all"),
    ("boot", "packaged: boot -> the"),
    ("proxy", "bulk stream"),
    ("proxy", "wrk -t2"),
    ("events", "boot 10 services"),
    ("systemctl", "`systemctl is-active"),
    ("standalone", "exec -> first service exec"),
    ("footprint", "standalone on disk"),
    ("footprint", "standalone gzip'd tar"),
)


@dataclass
class Outcome:
    bench: Bench
    seconds: float
    status: int
    result: dict[str, Any] | None


def run_bench(bench: Bench, quick: bool, json_dir: Path) -> Outcome:
    """Run one bench with its tables going to our stdout; its JSON, or None."""
    target = json_dir / (Path(bench.script).stem + ".json")
    target.unlink(missing_ok=True)
    argv = [sys.executable, str(ROOT / "bench" / bench.script),
            *(bench.quick if quick else bench.full), "--json", str(target)]  # fmt: skip
    print(f"\n=== bench/{bench.script} {' '.join(argv[2:-2])}", flush=True)
    started = time.monotonic()
    status = subprocess.run(argv, check=False, cwd=ROOT).returncode
    seconds = time.monotonic() - started
    result = json.loads(target.read_text()) if target.exists() else None
    print(f"=== bench/{bench.script}: exit {status}, {seconds:.0f} s", flush=True)
    return Outcome(bench, seconds, status, result)


# --- the machine ------------------------------------------------------------------------------


def first_line(argv: list[str]) -> str | None:
    """The first output line of a version command, or None when it is missing or fails."""
    if shutil.which(argv[0]) is None:
        return None
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    lines = (done.stdout + done.stderr).strip().splitlines()
    return lines[0].strip() if lines else None


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def memory_gib() -> str:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return f"{int(line.split()[1]) / (1 << 20):.1f} GiB"
    return "unknown"


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def dsr_version() -> str | None:
    """`DSR`'s path and the version its source declares, or None when DSR is unset."""
    path = os.environ.get("DSR")
    if not path:
        return None
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith("__version__"):
                return f"{line.split('=', 1)[1].strip().strip(chr(34) + chr(39))} ({path})"
    except OSError:
        return f"{path} (unreadable)"
    return path


def machine(started: datetime.datetime, load_before: str) -> list[tuple[str, str]]:
    commit = first_line(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    # The report itself (an earlier run's, about to be replaced) does not count.
    changes = ["git", "-C", str(ROOT), "status", "--porcelain", "--", ".", ":!docs/benchmarks.md"]
    if commit and first_line(changes):
        commit += " plus uncommitted changes"
    proxyd_debs = sorted(
        (
            Path(os.environ.get("CINIT_BENCH_CACHE", Path.home() / ".cache" / "cinit-bench"))
            / "debs"
        ).glob("systemd_*")
    )
    peers = [
        ("tini", first_line(["tini", "--version"])),
        ("dumb-init", first_line(["dumb-init", "--version"])),
        ("systemd-socket-proxyd", proxyd_debs[0].name if proxyd_debs else None),
        ("docker-systemctl-replacement", dsr_version()),
        ("wrk", (first_line(["wrk", "--version"]) or "").split(" Copyright")[0] or None),
        ("nginx", first_line(["nginx", "-v"])),
        ("hyperfine", first_line(["hyperfine", "--version"])),
    ]  # fmt: skip
    return [
        ("date (UTC)", started.strftime("%Y-%m-%d %H:%M")),
        ("CPU", cpu_model()),
        ("cores", str(os.cpu_count())),
        ("RAM", memory_gib()),
        ("kernel", f"{platform.system()} {platform.release()} ({platform.machine()})"),
        ("Python", f"{platform.python_version()} ({sys.executable})"),
        ("cinit", " ".join(cinit_command()) + (f" at commit {commit}" if commit else "")),
        ("load average (1/5/15 min) before / after", f"{load_before} / {load_average()}"),
        ("peers", "; ".join(f"{name}: {version or 'not present'}" for name, version in peers)),
    ]


# --- rendering --------------------------------------------------------------------------------


def cell(value: float | None, unit: str, digits: int) -> str:
    if value is None:
        return "n/a"
    text = f"{value:,.{digits}f}"
    return f"{text} {unit}" if unit and unit not in ("x",) else f"{text}{unit}"


def ratio_cell(row: dict[str, Any]) -> str:
    value = row.get("ratio")
    if value is None:
        return ""
    against = row.get("ratio_to")
    return f"{value:.2f}x {against}" if against else f"{value:.2f}x"


def met_cell(met: bool | None) -> str:
    return "" if met is None else ("yes" if met else "**no**")


def escape(text: str) -> str:
    return text.replace("|", "\\|")


def render_table(rows: list[dict[str, Any]]) -> list[str]:
    peers: list[str] = []
    for row in rows:
        peers += [name for name in row["peers"] if name not in peers]
    header = ["metric", "cinit", *peers, "ratio", "target", "met?"]
    lines = [
        "| " + " | ".join(escape(h) for h in header) + " |",
        "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|",
    ]
    for row in rows:
        unit, digits = row["unit"], row["digits"]
        cells = [
            row["metric"].strip(),
            cell(row["cinit"], unit, digits),
            *(cell(row["peers"][p], unit, digits) if p in row["peers"] else "" for p in peers),
            ratio_cell(row),
            row["target"],
            met_cell(row["met"]),
        ]
        indent = "  " if row["metric"].startswith("  ") else ""
        cells[0] = ("↳ " if indent else "") + cells[0]
        lines.append("| " + " | ".join(escape(c) for c in cells) + " |")
    return lines


def headline_lines(outcomes: list[Outcome]) -> list[str]:
    by_bench = {Path(o.bench.script).stem: o.result for o in outcomes if o.result}
    lines = []
    for bench, start in HEADLINES:
        result = by_bench.get(bench)
        row = next((r for r in result["rows"] if r["metric"].strip().startswith(start)), None) \
            if result else None  # fmt: skip
        if row is None:
            lines.append(f"- {bench}: `{start}…` not measured in this run")
            continue
        text = f"- {row['metric'].strip()}: cinit {cell(row['cinit'], row['unit'], row['digits'])}"
        against = row.get("ratio_to")
        if row.get("ratio") is not None and against in row["peers"]:
            peer = cell(row["peers"][against], row["unit"], row["digits"])
            text += f", {against} {peer}: **{row['ratio']:.2f}x**"
        if row["target"]:
            text += f" (target {row['target']}: {'met' if row['met'] else 'not met'})"
        lines.append(text)
    return lines


def render(outcomes: list[Outcome], facts: list[tuple[str, str]], quick: bool,
           total: float) -> str:  # fmt: skip
    mode = "`make bench-quick` (fewer runs, smaller loads)" if quick else "`make bench`"
    out = [
        "# Benchmarks",
        "",
        f"Generated by {mode} (`bench/report.py`); do not edit by hand: run it again.",
        "Every number is a median of several runs; in each table cinit and its peers were",
        "measured side by side in the same run, their runs interleaved so that load hits all",
        "alike. The machine is shared and noisy (other jobs run beside the benches): compare the",
        "ratios, which are steadier than the absolute times, and expect a few percent of drift",
        f"between runs. The whole run took {total / 60:.1f} minutes.",
        "",
        "Peers are used when present: tini and dumb-init (Debian packages), systemd-socket-proxyd",
        "(extracted from Debian's `systemd` package by bench/proxy.py), a shell-script floor, and",
        "docker-systemctl-replacement when given (`pip install --target DIR",
        "docker-systemctl-replacement`, then `make bench DSR=DIR/systemctl2/systemctl3.py`).",
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
        *(f"| {escape(key)} | {escape(value)} |" for key, value in facts),
        "",
        "## Headline ratios",
        "",
        *headline_lines(outcomes),
        "",
        "Ratios are cinit's value over the named peer's (lower is better, except for",
        "throughputs: Gbit/s, req/s, events/s, MiB/s).",
    ]
    for area, heading in AREAS.items():
        out += ["", f"## {heading}"]
        for outcome in (o for o in outcomes if o.bench.area == area):
            bench, result = outcome.bench, outcome.result
            args = " ".join(bench.quick if quick else bench.full)
            out += ["", f"### {bench.title}", "",
                    f"`bench/{bench.script}{' ' + args if args else ''}`: "
                    f"{outcome.seconds:.0f} s, exit status {outcome.status}.", ""]  # fmt: skip
            if result is None or not result["rows"]:
                out.append(f"Not measured in this run: the bench exited {outcome.status} "
                           "without results (its printed output says why).")  # fmt: skip
                continue
            out += render_table(result["rows"])
            notes = [n for n in result.get("notes", []) if n]
            if notes:
                out.append("")
                out += [f"- {note}" for note in notes]
    return "\n".join(out) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs and smaller loads")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--json-dir", type=Path, help="keep each bench's JSON here")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="AREA",
        help=f"run only these areas (repeatable): {', '.join(AREAS)}",
    )
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench/report: run as root (the PID 1 benches use unshare)", file=sys.stderr)
        return 2
    started = datetime.datetime.now(datetime.UTC)
    load_before = load_average()
    began = time.monotonic()
    json_dir = args.json_dir or Path(tempfile.mkdtemp(prefix="cinit-bench-report-"))
    json_dir.mkdir(parents=True, exist_ok=True)
    chosen = [b for b in BENCHES if not args.only or b.area in args.only]
    try:
        outcomes = [run_bench(bench, args.quick, json_dir) for bench in chosen]
    finally:
        if args.json_dir is None:
            shutil.rmtree(json_dir, ignore_errors=True)
    total = time.monotonic() - began
    facts = machine(started, load_before)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render(outcomes, facts, args.quick, total))
    print(f"\nbench/report: wrote {args.out} ({total / 60:.1f} min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
