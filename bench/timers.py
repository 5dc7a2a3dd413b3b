"""Benchmark `.timer` units (issue 17): idle CPU and RSS of PID 1 with 100 timers, and the
firing jitter.

Run as root from the repository: `python bench/timers.py` (`--seconds 20`). `CINIT_BIN`
selects the cinit build. Three runs of cinit as PID 1 (`unshare --pid --fork --mount-proc`),
each with one long-running service (`sleep`) so that the container has something to run:

  no timers   that service and the 100 oneshot services of the next case, without their
              timers (each runs once, at boot);
  100 timers  plus 100 timers, from every second to every day (OnCalendar=, periods of 1 s,
              2 s, 5 s, ... 1 day, in turn), each starting a oneshot `/bin/true`, with the
              default AccuracySec=1min as packaged timers have it (cinit rounds each wake up
              to the accuracy grid: the 1 s timers fire once a minute, together);
  jitter      5 timers every 5 s, each at its own second (one elapse a second), with
              AccuracySec=1ms, each starting a oneshot `date +%s.%N` that appends its
              own clock to a file: from each elapse (the `next_elapse` of a `timer-armed`
              event in the JSONL trace) to the clock the service read once it exec'd (an
              upper bound of the exec: date's own start, ~1 ms, is in it), and, beside it,
              to its service's `started` event (cinit's stamp, once it saw the exec and
              the unit actor's report reached the event hub).

Idle CPU: PID 1's utime+stime (/proc/PID/stat) over --seconds, once the boot settled, as a
share of one core: from 5 s after a minute (between the batches), and for 100 timers also
from 10 s before a minute (the window holds one batch: ~45 of them fire then).
RSS: PID 1's VmRSS at the end; beside it, the RSS and PSS of the spawn helper that forks
the timers' services' waiting children (its own process, cinit.io.spawn.forker). Targets
(issue 17): idle < 1 % of a core,
RSS growth < 2 MiB over no timers, jitter median <= 5 ms. Numbers only: no assertion.
`--json PATH` also writes the rows for bench/report.py.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._util import (
    UNSHARE,
    add_json_option,
    children,
    cinit_command,
    median,
    percentile,
    print_table,
    result_row,
    status_kib,
    write_json,
)

PERIODS = (1, 2, 5, 10, 15, 20, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 86400)
SLEEPER = "[Service]\nExecStart=/bin/sleep 3600\n"
ONESHOT = "[Service]\nType=oneshot\nExecStart=/bin/true\n"
# The jitter case's oneshot: its clock right after its exec, appended to `STAMPS/NAME`
# (`%%`: `%` starts a specifier in a unit file).
STAMPING = "[Service]\nType=oneshot\nExecStart=/bin/date +%%s.%%N\nStandardOutput=append:{}\n"


def calendar(period: int) -> str:
    """An OnCalendar= expression elapsing every `period` seconds (a divisor of a day)."""
    if period < 60:
        return f"*:*:0/{period}"
    if period < 3600:
        return f"*:0/{period // 60}:00"
    if period < 86400:
        return f"0/{period // 3600}:00:00"
    return "daily"


def write_units(
    directory: Path,
    services: int,
    *,
    timers: bool = True,
    accuracy: str = "",
    every: int = 0,  # one period for all, each timer at its own second (`*:*:I/EVERY`)
    stamps: Path | None = None,  # the oneshots append their clock to `stamps/NAME` (jitter)
) -> None:
    """`services` oneshots, each with its timer (`timers`), beside the sleeper."""
    directory.mkdir(parents=True)
    (directory / "sleeper.service").write_text(SLEEPER)
    for index in range(services):
        name = f"t{index:03}.service"
        body = ONESHOT if stamps is None else STAMPING.format(stamps / name)
        (directory / name).write_text(body)
        if not timers:
            continue
        period = every or PERIODS[index % len(PERIODS)]
        when = f"*:*:{index % every:02}/{every}" if every else calendar(period)
        body = f"[Timer]\nOnCalendar={when}\n" + (f"AccuracySec={accuracy}\n" if accuracy else "")
        (directory / f"t{index:03}.timer").write_text(body)


def cpu_ticks(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[11]) + int(fields[12])  # utime, stime


def run_cinit(
    workdir: Path, seconds: float, trace: Path | None = None, *, batch: bool = False
) -> dict[str, float]:
    """Boot `workdir/units`, wait for it to settle, measure PID 1's CPU over `seconds`
    starting 5 s after a minute (`cpu_pct`: quiet, between AccuracySec=1min's batches) and,
    with `batch`, over `seconds` starting 10 s before a minute (`batch_cpu_pct`)."""
    argv = [
        *UNSHARE, *cinit_command(), "--units", str(workdir / "units"),
        "--drop-in", str(workdir / "none"), "--runtime-dir", str(workdir / "run"),
        "--timer-state-dir", str(workdir / "state"),
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CINIT_", "CONTAINER_INIT"))}
    if "CINIT_BIN" in os.environ:
        env["CINIT_BIN"] = os.environ["CINIT_BIN"]
    if trace is not None:
        env |= {"CONTAINER_INIT_TRACE": "1", "CONTAINER_INIT_TRACE_FILE": str(trace)}
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=env)  # fmt: skip
    pid1 = None
    try:
        deadline = time.monotonic() + 10
        while pid1 is None and time.monotonic() < deadline:
            pid1 = next(iter(children(proc.pid)), None)
            time.sleep(0.01)
        if pid1 is None:
            raise RuntimeError("cinit did not start")
        time.sleep(3.0)  # boot settled, late imports done, event pump up
        found = {"cpu_pct": cpu_share(pid1, 5.0, seconds)}
        if batch:  # the window holds the minute's batch of elapses: the worst 20 s
            found["batch_cpu_pct"] = cpu_share(pid1, 50.0, seconds)
        rss = status_kib(pid1, "VmRSS")
        if rss is None:
            raise RuntimeError(f"cinit exited early ({proc.poll()})")
        helper_rss, helper_pss = spawn_helper_kib(pid1)
        return found | {
            "rss_mib": rss / 1024,
            "helper_rss_mib": helper_rss / 1024,
            "helper_pss_mib": helper_pss / 1024,
        }
    finally:
        if pid1 is not None and proc.poll() is None:
            os.kill(pid1, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.kill(pid1, signal.SIGKILL)
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=20)


def spawn_helper_kib(pid1: int) -> tuple[int, int]:
    """RSS and PSS (kB) of cinit's spawn helper (cinit.io.spawn.forker: a child of PID 1
    forked from it, so with its command line); (0, 0) when there is none."""
    try:
        own = Path(f"/proc/{pid1}/cmdline").read_bytes()
    except OSError:
        return 0, 0
    for child in children(pid1):
        try:
            if Path(f"/proc/{child}/cmdline").read_bytes() != own:
                continue
            rollup = Path(f"/proc/{child}/smaps_rollup").read_text().splitlines()
        except OSError:
            continue
        fields = {line.split(":")[0]: int(line.split()[1]) for line in rollup[1:]}
        return fields.get("Rss", 0), fields.get("Pss", 0)
    return 0, 0


def cpu_share(pid1: int, second: float, seconds: float) -> float:
    """PID 1's CPU in % of a core over `seconds` from the next `second` of a minute."""
    time.sleep((second - time.time()) % 60.0)
    before = cpu_ticks(pid1)
    begun = time.monotonic()
    time.sleep(seconds)
    after = cpu_ticks(pid1)
    spent = time.monotonic() - begun
    if before is None or after is None:
        raise RuntimeError("cinit exited early")
    return 100.0 * (after - before) / os.sysconf("SC_CLK_TCK") / spent


def exec_jitters(trace: Path, stamps: Path) -> list[float]:
    """ms from each timer's elapse to the clock its service read after its exec (each
    stamp goes with the latest elapse of its timer before it: no stamp is left out)."""
    records = [json.loads(line) for line in trace.read_text().splitlines() if line.strip()]
    elapses: dict[str, list[float]] = {}  # service -> the elapses its timer was armed for
    for record in records:
        if record.get("event") == "timer-armed":
            elapses.setdefault(record["service"], []).append(float(record["next_elapse"]))
    found: list[float] = []
    for path in sorted(stamps.glob("*.service")):
        for word in path.read_text().split():
            stamp = float(word)
            before = [at for at in elapses.get(path.name, ()) if at <= stamp]
            if before:
                found.append((stamp - max(before)) * 1000)
    return found


def jitters(trace: Path) -> list[float]:
    """ms from each timer's elapse to its service's `started` event."""
    records = [json.loads(line) for line in trace.read_text().splitlines() if line.strip()]
    armed: dict[str, float] = {}  # timer -> its next elapse
    elapsed: dict[str, float] = {}  # service -> the elapse that started it
    found: list[float] = []
    for record in records:
        unit, event = record.get("unit"), record.get("event")
        if event == "timer-armed":
            armed[unit] = float(record["next_elapse"])
        elif event == "timer-elapsed" and unit in armed:
            elapsed[record["service"]] = armed[unit]
        elif event == "started" and unit in elapsed:
            found.append((float(record["time"]) - elapsed.pop(unit)) * 1000)
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="idle measurement span")
    parser.add_argument("--timers", type=int, default=100, help="timers in the loaded run")
    add_json_option(parser)
    args = parser.parse_args()
    print(f"timers: {args.timers} timers, {args.seconds:g} s idle; "
          f"cinit: {' '.join(cinit_command())}")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="cinit-bench-timers-") as scratch:
        base = Path(scratch)
        write_units(base / "none-run" / "units", args.timers, timers=False)
        write_units(base / "many-run" / "units", args.timers)
        stamps = base / "stamps"
        stamps.mkdir()
        write_units(base / "jitter-run" / "units", 5, accuracy="1ms", every=5, stamps=stamps)
        plain = run_cinit(base / "none-run", args.seconds)
        many = run_cinit(base / "many-run", args.seconds, batch=True)
        trace = base / "trace.jsonl"
        run_cinit(base / "jitter-run", 12.0, trace)
        found = exec_jitters(trace, stamps)
        reported = jitters(trace)
    growth = many["rss_mib"] - plain["rss_mib"]
    jitter_median = median(found) if found else None
    jitter_p90 = percentile(found, 0.9) if found else None
    started_median = median(reported) if reported else None
    print_table(
        "PID 1 with timers",
        ("case", "idle CPU", "RSS"),
        [
            ("no timers", f"{plain['cpu_pct']:.2f} %", f"{plain['rss_mib']:.1f} MiB"),
            (f"{args.timers} timers", f"{many['cpu_pct']:.2f} %", f"{many['rss_mib']:.1f} MiB"),
            (f"{args.timers} timers, with a minute's batch", f"{many['batch_cpu_pct']:.2f} %", ""),
        ],
    )
    print(f"RSS growth: {growth:+.2f} MiB (target < 2 MiB)")
    print("the spawn helper (its own process, forks the services' waiting children): "
          f"RSS {many['helper_rss_mib']:.1f} MiB, PSS {many['helper_pss_mib']:.1f} MiB")
    if found:
        print(f"jitter elapse -> exec (the service's clock): median {jitter_median:.2f} ms, "
              f"p90 {jitter_p90:.2f} ms over {len(found)} elapses "
              "(target median <= 5 ms)")  # fmt: skip
    if reported:
        print(f"elapse -> `started` event: median {started_median:.2f} ms, "
              f"p90 {percentile(reported, 0.9):.2f} ms over {len(reported)} elapses")  # fmt: skip
    else:
        print("jitter: no elapse seen in the trace")
    rows = [
        result_row(f"{args.timers} timers: PID 1 idle CPU", "%", many["cpu_pct"],
                   target="< 1 %", met=many["cpu_pct"] < 1.0, digits=2),
        result_row(f"{args.timers} timers: PID 1 CPU, 20 s holding a minute's batch", "%",
                   many["batch_cpu_pct"], digits=2),
        result_row("no timers: PID 1 idle CPU", "%", plain["cpu_pct"], digits=2),
        result_row(f"{args.timers} timers: PID 1 RSS growth over none", "MiB", growth,
                   target="< 2 MiB", met=growth < 2.0, digits=2),
        result_row(f"{args.timers} timers: the spawn helper's RSS (its own process)", "MiB",
                   many["helper_rss_mib"], digits=1),
        result_row(f"{args.timers} timers: the spawn helper's PSS", "MiB",
                   many["helper_pss_mib"], digits=1),
        result_row("timer jitter elapse -> exec (AccuracySec=1ms), median", "ms",
                   jitter_median, target="<= 5 ms",
                   met=None if jitter_median is None else jitter_median <= 5.0, digits=2),
        result_row("  p90", "ms", jitter_p90, digits=2),
        result_row("timer elapse -> `started` event, median", "ms", started_median, digits=2),
    ]  # fmt: skip
    write_json(args.json, "timers", rows, params=vars(args) | {"json": None})
    return 0


if __name__ == "__main__":
    sys.exit(main())
