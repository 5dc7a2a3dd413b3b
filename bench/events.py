"""Benchmark the event stream and the control endpoint (issue 6 §6), cinit as PID 1.

Run as root from the repository: `python -m bench.events` (or `python bench/events.py`);
`--runs N` (default 3), `--storm-seconds S` (default 3). `CINIT_BIN` selects the build.

Scenarios (each cinit is PID 1 of a fresh `unshare --pid --fork --mount-proc`):
  storm   10 units `ExecStart=/bin/true`, `Restart=always`, `RestartSec=0`, no start limit:
          a restart storm (5 events per cycle). Measured over S seconds once it runs:
          produced = events cinit stamped per second (seq delta of two `cinit status`),
          delivered = events each subscriber received per second (median over them),
          with 0 and with 10 subscribers (each its own process, a pyzmq SUB that reads
          everything; gaps = seqs a subscriber missed inside the window).
  boot    10 services (`/bin/sleep`) and a oneshot probe ordered after them that stamps
          the time: boot = probe stamp - the stamp a wrapper takes just before it execs
          cinit. With no subscriber, and with 10 subscribers connecting from before cinit
          starts. Runs interleaved; the ratio is the issue's "within 10%" number.
  is-ready  `cinit is-ready` as a whole process against a booted cinit, timed with
          hyperfine (-N, 5 warm-ups, 40 runs), next to `python -I -S -c pass` as the floor.
Medians throughout; no assertions: numbers are for the note.
`--json PATH` also writes the medians, ratios and targets for bench/report.py.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._util import (
    UNSHARE,
    add_json_option,
    cinit_command,
    fmt,
    median,
    print_table,
    ratio,
    result_row,
    write_json,
)

SUBSCRIBERS = 10
STORM_UNITS = 10
BOOT_UNITS = 10

SUBSCRIBER = r"""
import json, signal, sys, zmq
ctx = zmq.Context(); sub = ctx.socket(zmq.SUB)
sub.setsockopt(zmq.SUBSCRIBE, b""); sub.setsockopt(zmq.RCVHWM, 100000)
sub.connect(sys.argv[1])
print("connecting", flush=True)
seqs = []
def done(*_):
    print(json.dumps(seqs)); sys.stdout.flush(); raise SystemExit(0)
signal.signal(signal.SIGTERM, done)
while True:
    if sub.poll(100):
        _, body = sub.recv_multipart()
        seqs.append(int(body[8:body.index(b",")]))  # '{"seq": N, ...': cheaper than json
"""


def wrapper(stamp: Path) -> list[str]:
    return ["/bin/sh", "-c", f'date +%s%N > {stamp}; exec "$@"', "bench-events-wrapper"]


def start_cinit(run_dir: Path, units: dict[str, str]) -> tuple[subprocess.Popen[bytes], Path]:
    unit_dir = run_dir / "units"
    unit_dir.mkdir(parents=True)
    for name, text in units.items():
        (unit_dir / name).write_text(text)
    runtime = run_dir / "run"
    argv = [
        *UNSHARE, *wrapper(run_dir / "exec-stamp"), *cinit_command(),
        "--units", str(unit_dir), "--drop-in", str(run_dir / "none"),
        "--runtime-dir", str(runtime),
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CINIT_", "CONTAINER_INIT"))}
    proc = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env=env,
    )  # fmt: skip
    return proc, runtime


def stop_cinit(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the namespace's PID 1 (unshare's child), then wait; SIGKILL if stuck."""
    from bench._util import children

    for pid in children(proc.pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        for pid in children(proc.pid):
            os.kill(pid, signal.SIGKILL)
        proc.wait(5)


def start_subscribers(count: int, runtime: Path) -> list[subprocess.Popen[str]]:
    """`count` subscriber processes, returned once each has its SUB connecting."""
    endpoint = f"ipc://{runtime / 'events'}"
    subs = [
        subprocess.Popen(
            [sys.executable, "-c", SUBSCRIBER, endpoint], stdout=subprocess.PIPE, text=True
        )
        for _ in range(count)
    ]
    for sub in subs:
        assert sub.stdout is not None
        sub.stdout.readline()  # "connecting": its start-up is over, it will not compete
    return subs


def collect(subscribers: list[subprocess.Popen[str]]) -> list[list[int]]:
    for sub in subscribers:
        sub.send_signal(signal.SIGTERM)
    got = []
    for sub in subscribers:
        out, _ = sub.communicate(timeout=20)
        lines = out.strip().splitlines()
        got.append(json.loads(lines[-1]) if lines and lines[-1].startswith("[") else [])
    return got


def status_seq(runtime: Path) -> int:
    done = subprocess.run(
        [*cinit_command(), "status", "--json", "--runtime-dir", str(runtime)],
        capture_output=True, text=True, timeout=20,
    )  # fmt: skip
    return int(json.loads(done.stdout)["seq"])


def wait_for(path: Path, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


# ---- the restart storm ---------------------------------------------------------------------


def storm_units() -> dict[str, str]:
    unit = (
        "[Unit]\nStartLimitIntervalSec=0\n\n[Service]\nExecStart=/bin/true\n"
        "Restart=always\nRestartSec=0\n"
    )
    return {f"storm{i:02d}.service": unit for i in range(STORM_UNITS)}


def storm_run(scratch: Path, label: str, subscribers: int, seconds: float) -> dict[str, Any]:
    run_dir = Path(tempfile.mkdtemp(prefix=f"{label}-", dir=scratch))
    subs = start_subscribers(subscribers, run_dir / "run")
    proc, runtime = start_cinit(run_dir, storm_units())
    try:
        if not wait_for(runtime / "control", 10):
            return {"error": "no control socket"}
        time.sleep(1.0)  # the stream is up and every subscriber connected
        seq0, t0 = status_seq(runtime), time.monotonic()
        time.sleep(seconds)
        seq1, t1 = status_seq(runtime), time.monotonic()
        time.sleep(0.5)  # what was in flight arrives
        got = collect(subs)
    finally:
        stop_cinit(proc)
        for sub in subs:
            if sub.poll() is None:
                sub.kill()
    window = t1 - t0
    delivered, gaps = [], []
    for seqs in got:
        inside = {s for s in seqs if seq0 <= s <= seq1}
        delivered.append(len(inside) / window)
        gaps.append((seq1 - seq0 + 1) - len(inside))
    return {
        "produced": (seq1 - seq0) / window,
        "delivered": median(delivered) if delivered else None,
        "gaps": max(gaps) if gaps else 0,
    }


# ---- boot with and without subscribers ---------------------------------------------------------


def boot_units(run_dir: Path) -> dict[str, str]:
    units = {f"s{i:02d}.service": "[Service]\nExecStart=/bin/sleep 60\n" for i in range(BOOT_UNITS)}
    after = " ".join(units)
    probe = run_dir / "probe.sh"
    probe.write_text(f"#!/bin/sh\ndate +%s%N > {run_dir / 'probe'}\n")
    probe.chmod(0o755)
    units["probe.service"] = (
        f"[Unit]\nAfter={after}\n\n[Service]\nType=oneshot\nRemainAfterExit=yes\n"
        f"ExecStart=/bin/sh {probe}\n"
    )
    return units


def boot_run(scratch: Path, label: str, subscribers: int) -> float | None:
    run_dir = Path(tempfile.mkdtemp(prefix=f"{label}-", dir=scratch))
    subs = start_subscribers(subscribers, run_dir / "run")
    proc, _ = start_cinit(run_dir, boot_units(run_dir))
    try:
        probe_file = run_dir / "probe"
        deadline = time.monotonic() + 20
        while not probe_file.exists() or not probe_file.read_text().strip().isdigit():
            if time.monotonic() > deadline:
                return None
            time.sleep(0.005)
        probe = int(probe_file.read_text().strip())
        started = int((run_dir / "exec-stamp").read_text().strip())
        return (probe - started) / 1e6
    finally:
        time.sleep(0.7)  # let the stream come up and reach the subscribers before stopping
        stop_cinit(proc)
        if subs:
            collect(subs)


# ---- is-ready with hyperfine ----------------------------------------------------------------


def is_ready_run(scratch: Path) -> dict[str, float] | None:
    if shutil.which("hyperfine") is None:
        return None
    run_dir = Path(tempfile.mkdtemp(prefix="ready-", dir=scratch))
    proc, runtime = start_cinit(run_dir, boot_units(run_dir))
    try:
        if not wait_for(runtime / "control", 10):
            return None
        command = " ".join([*cinit_command(), "is-ready", "--runtime-dir", str(runtime)])
        export = run_dir / "hyperfine.json"
        subprocess.run(
            [
                "hyperfine", "-N", "-i", "--warmup", "5", "--runs", "40",
                "--export-json", str(export), command, f"{sys.executable} -I -S -c pass",
            ],
            capture_output=True, timeout=300, check=False,
        )  # fmt: skip
        results = json.loads(export.read_text())["results"]
        return {
            "median_ms": results[0]["median"] * 1000,
            "mean_ms": results[0]["mean"] * 1000,
            "max_ms": results[0]["max"] * 1000,
            "floor_ms": results[1]["median"] * 1000,
        }
    finally:
        stop_cinit(proc)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--storm-seconds", type=float, default=3.0)
    add_json_option(parser)
    args = parser.parse_args()
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        print("bench/events: needs root and unshare (util-linux) to run cinit as PID 1")
        return 1
    scratch = Path(tempfile.mkdtemp(prefix="cinit-bench-events-"))
    began = time.monotonic()
    storms: dict[int, list[dict[str, Any]]] = {0: [], SUBSCRIBERS: []}
    boots: dict[int, list[float]] = {0: [], SUBSCRIBERS: []}
    try:
        for index in range(args.runs):
            for count in (0, SUBSCRIBERS):
                result = storm_run(scratch, f"storm{count}-{index}", count, args.storm_seconds)
                if "error" not in result:
                    storms[count].append(result)
            for _ in range(2):  # boots are short: two per round, interleaved
                for count in (0, SUBSCRIBERS):
                    took = boot_run(scratch, f"boot{count}-{index}", count)
                    if took is not None:
                        boots[count].append(took)
        ready = is_ready_run(scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(
        f"bench/events: {os.cpu_count()} CPUs; {args.runs} rounds, interleaved; "
        f"{time.monotonic() - began:.0f} s; medians"
    )

    def med(items: list[dict[str, Any]], key: str) -> float | None:
        values = [item[key] for item in items if item.get(key) is not None]
        return median(values) if values else None

    quiet, busy = storms[0], storms[SUBSCRIBERS]
    print_table(
        f"restart storm: {STORM_UNITS} units Restart=always RestartSec=0, "
        f"{args.storm_seconds:g} s window",
        ["subscribers", "produced ev/s", "delivered ev/s (each)", "max gap", "runs"],
        [
            [
                "0", fmt(med(quiet, "produced"), digits=0), "n/a", "n/a", str(len(quiet)),
            ],
            [
                str(SUBSCRIBERS),
                fmt(med(busy, "produced"), digits=0),
                fmt(med(busy, "delivered"), digits=0),
                str(max((b["gaps"] for b in busy), default=0)),
                str(len(busy)),
            ],
        ],
    )  # fmt: skip
    print(
        f"produced with {SUBSCRIBERS} subscribers / with 0: "
        f"{ratio(med(busy, 'produced'), med(quiet, 'produced'))}"
    )
    plain = median(boots[0]) if boots[0] else None
    watched = median(boots[SUBSCRIBERS]) if boots[SUBSCRIBERS] else None
    print_table(
        f"boot: {BOOT_UNITS} services + probe (exec -> probe ran)",
        ["subscribers", "boot ms", "runs"],
        [
            ["0", fmt(plain), str(len(boots[0]))],
            [str(SUBSCRIBERS), fmt(watched), str(len(boots[SUBSCRIBERS]))],
        ],
    )
    print(f"boot with {SUBSCRIBERS} subscribers / none: {ratio(watched, plain)} (target <= 1.10x)")
    if ready is None:
        print("\nis-ready: hyperfine not installed (apt-get install hyperfine)")
    else:
        print(
            f"\nis-ready (hyperfine, whole process): median {ready['median_ms']:.1f} ms, "
            f"mean {ready['mean_ms']:.1f} ms, max {ready['max_ms']:.1f} ms (target <= 60 ms); "
            f"python -I -S -c pass: {ready['floor_ms']:.1f} ms "
            f"({ratio(ready['median_ms'], ready['floor_ms'])})"
        )
    produced_quiet, produced_busy = med(quiet, "produced"), med(busy, "produced")
    rows = [
        result_row(f"restart storm, events produced/s with {SUBSCRIBERS} subscribers", "/s",
                   produced_busy, {"0 subscribers": produced_quiet}, ratio_to="0 subscribers",
                   digits=0),
        result_row(f"  delivered to each of {SUBSCRIBERS} subscribers", "/s",
                   med(busy, "delivered"), digits=0),
        result_row(f"boot {BOOT_UNITS} services with {SUBSCRIBERS} subscribers", "ms", watched,
                   {"0 subscribers": plain}, ratio_to="0 subscribers", target="<= 1.10x",
                   met=None if watched is None or not plain else watched / plain <= 1.10),
    ]
    if ready is not None:
        rows.append(result_row("`cinit is-ready`, whole process (hyperfine)", "ms",
                               ready["median_ms"], {"python -I -S -c pass": ready["floor_ms"]},
                               ratio_to="python -I -S -c pass", target="<= 60 ms",
                               met=ready["median_ms"] <= 60))
    write_json(
        args.json, "events", rows,
        notes=[] if ready is not None else ["is-ready: hyperfine not installed; not measured"],
        params={"runs": args.runs, "storm_seconds": args.storm_seconds},
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
