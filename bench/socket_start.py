"""Benchmark: native socket activation cold start, connect -> first byte served.

Run as root from the repository: `python -m bench.socket_start` (or `python bench/socket_start.py`);
`--runs N` sets the samples per mode (default 30). `CINIT_BIN` selects the cinit build.

The service is one small program (a stdlib Python script under `python -I -S`) that takes a
listener at fd 3, accepts one connection, sends one byte and exits. Two modes, interleaved:

  own start   the service's own start time: the benchmark binds a listener, connects (the
              connection waits in the backlog), then spawns the service with the listener at
              fd 3 (posix_spawn, no supervisor); measured from connect to the first byte;
  cinit       cinit as PID 1 (`unshare --pid --fork --mount-proc`) has the socket bound; each
              connect triggers a cold start of the service (it exits after one connection, so
              the socket is re-armed and the next connect starts it again); measured from
              connect to the first byte, with a pause between samples so that each one starts
              from a re-armed socket and no running instance;
  cinit, pgrp the same with cinit's cgroup v2 mounts remounted read-only inside its mount
              namespace, so it falls back to process groups: the difference to `cinit` is
              what moving the new process into its unit's cgroup costs (the kernel waits for
              an RCU grace period on that move, see cinit.io.spawn.prepared). Shown only where a
              cgroup2 mount exists.

Printed: medians and p90, and the median overhead (cinit - own start) against the issue's
target (<= 20 ms). No assertions: numbers are for the note.
`--json PATH` also writes the medians, ratios and targets for bench/report.py.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
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
    result_row,
    write_json,
)

SERVER = """\
import socket
listener = socket.socket(fileno=3)
connection, _ = listener.accept()
connection.sendall(b"x")
connection.close()
"""
TARGET_MS = 20.0


def first_byte(client: socket.socket) -> None:
    data = client.recv(1)
    if data != b"x":
        raise RuntimeError(f"unexpected answer {data!r}")


def own_start_ms(server: Path) -> float:
    """Connect -> first byte with the service spawned directly on a pre-bound listener."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        client = socket.create_connection(listener.getsockname(), timeout=10)
        with client:
            started = time.perf_counter_ns()
            pid = os.posix_spawn(
                sys.executable,
                [sys.executable, "-I", "-S", str(server)],
                {"LISTEN_FDS": "1", "PATH": os.environ.get("PATH", "/usr/bin:/bin")},
                file_actions=[(os.POSIX_SPAWN_DUP2, listener.fileno(), 3)],
            )
            first_byte(client)
            elapsed = (time.perf_counter_ns() - started) / 1e6
        os.waitpid(pid, 0)
    return elapsed


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def listening(port: int) -> bool:
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
            return True
    return False


def cgroup2_mounts() -> list[str]:
    """Mount points of cgroup v2 (from /proc/self/mountinfo)."""
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        if right.split()[:1] == ["cgroup2"]:
            found.append(left.split()[4])
    return found


class CinitRun:
    """cinit as PID 1 with one native socket in front of the one-shot server."""

    def __init__(self, base: Path, server: Path, without_cgroups: bool = False) -> None:
        self.port = free_port()
        units = base / "units"
        units.mkdir(exist_ok=True)
        (units / "cold.socket").write_text(f"[Socket]\nListenStream=127.0.0.1:{self.port}\n")
        (units / "cold.service").write_text(
            # One start per sample: no start limit (StartLimitIntervalSec=0 disables it).
            "[Unit]\nStartLimitIntervalSec=0\n"
            f"[Service]\nExecStart={sys.executable} -I -S {server}\n"
        )
        prefix: list[str] = []
        if without_cgroups:
            remounts = "; ".join(f"mount -o remount,bind,ro {m}" for m in cgroup2_mounts())
            prefix = ["sh", "-c", f'{remounts}; exec "$@"', "cinit-pgrp"]
        argv = [
            *UNSHARE,
            "--kill-child",  # never leave a PID 1 behind if the benchmark dies
            *prefix,
            *cinit_command(),
            "--units",
            str(units),
            "--drop-in",
            str(base / "none"),
            "--runtime-dir",
            str(base / ("run-pgrp" if without_cgroups else "run")),
        ]
        env = {k: v for k, v in os.environ.items() if not k.startswith("CINIT_")}
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
        )
        deadline = time.monotonic() + 20
        while not listening(self.port):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.close()
                raise RuntimeError("cinit did not bind the socket")
            time.sleep(0.01)

    def sample_ms(self) -> float:
        with socket.socket() as client:
            client.settimeout(10)
            started = time.perf_counter_ns()
            client.connect(("127.0.0.1", self.port))
            first_byte(client)
            return (time.perf_counter_ns() - started) / 1e6

    def close(self) -> None:
        if self.proc.poll() is None:
            for pid in children(self.proc.pid):  # PID 1 of the namespace: unshare forwards nothing
                os.kill(pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--pause", type=float, default=0.15, help="seconds between samples")
    add_json_option(parser)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("socket_start: run as root (cinit runs as PID 1 in a PID namespace)")
        return 2
    own: list[float] = []
    through: list[float] = []
    pgrp: list[float] = []
    with tempfile.TemporaryDirectory(prefix="cinit-bench-sock-") as tmp:
        base = Path(tmp)
        server = base / "server.py"
        server.write_text(SERVER)
        runs = [CinitRun(base, server)]
        if cgroup2_mounts():
            runs.append(CinitRun(base, server, without_cgroups=True))
        try:
            for _ in range(3):  # warm every path (page cache, cinit's lazy imports)
                own_start_ms(server)
                for run in runs:
                    run.sample_ms()
                time.sleep(args.pause)
            for _ in range(args.runs):
                own.append(own_start_ms(server))
                for run, samples in zip(runs, (through, pgrp), strict=False):
                    time.sleep(args.pause / 2)
                    samples.append(run.sample_ms())
                time.sleep(args.pause)
        finally:
            for run in runs:
                run.close()
    overhead = median(through) - median(own)
    print(f"native cold start, connect -> first byte ({args.runs} samples each, ms)")
    print(f"  {'':28}{'median':>9}{'p90':>9}")
    rows = [("service own start", own), ("through cinit (native)", through)]
    if pgrp:
        rows.append(("through cinit, no cgroups", pgrp))
    for label, samples in rows:
        print(f"  {label:28}{median(samples):9.2f}{percentile(samples, 0.9):9.2f}")
    verdict = "met" if overhead <= TARGET_MS else "NOT met"
    target = f"target <= {TARGET_MS:g} ms: {verdict}"
    print(f"  cinit overhead (median difference): {overhead:.2f} ms ({target})")
    print(f"  ratio cinit / own start: {median(through) / median(own):.2f}")
    if pgrp:
        moved = median(through) - median(pgrp)
        print(f"  of which the move into the unit's cgroup (cinit - no cgroups): {moved:.2f} ms")
    peers = {"service own start": median(own)}
    if pgrp:
        peers["cinit, no cgroups"] = median(pgrp)
    write_json(
        args.json,
        "socket_start",
        [
            result_row("native socket, cold start: connect -> first byte", "ms", median(through),
                       peers, ratio_to="service own start", digits=2),
            result_row("  cinit's overhead (median difference to own start)", "ms", overhead,
                       target=f"<= {TARGET_MS:g} ms", met=overhead <= TARGET_MS, digits=2),
        ],
        notes=["own start: the same service spawned directly on a pre-bound listener, no "
               "supervisor; no cgroups: cinit falling back to process groups"],
        params={"runs": args.runs},
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
