"""`cinit --example`: the README's first command boots the unit set shipped inside cinit.

As PID 1 of a PID and network namespace of its own (its socket, 127.0.0.1:8080, cannot
clash with the host's): the drop-in override is logged, the oneshot, the ticker of the
derived image and the added drop-in run, the proxy socket starts the unmodified HTTP
server on the first connection, and SIGTERM stops everything in reverse order, exit 0.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_support import LineReader, Pid1Run, pid1_helpers

pytestmark = [pytest.mark.pid1, pytest.mark.timeout(120)]


@pytest.fixture
def example(tmp_path: Path, cinit_cmd: list[str]) -> Iterator[Pid1Run]:
    problem = pid1_helpers._unshare_problem()
    if problem:
        pytest.skip(problem)
    argv = [
        "unshare", "--pid", "--fork", "--mount-proc", "--net",
        "/bin/sh", "-c", 'ip link set lo up && exec "$@"', "example",
        *cinit_cmd, "--example", "--runtime-dir", str(tmp_path / "run"),
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("CINIT_")}
    proc = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    run = Pid1Run(proc, LineReader(proc.stdout), LineReader(proc.stderr), time.monotonic())
    yield run
    run.kill()


def fetch_inside(run: Pid1Run, url: str) -> subprocess.CompletedProcess[str]:
    """GET `url` from inside the booted namespace's network."""
    client = f"import urllib.request; print(urllib.request.urlopen({url!r}, timeout=15).status)"
    return subprocess.run(
        ["nsenter", "--net", "--target", str(run.init_pid()), sys.executable, "-c", client],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip


def test_example_boots_the_embedded_units_and_stops_in_order(example: Pid1Run) -> None:
    run = example

    def wait_err(line: str) -> None:
        found = run.err.wait_line(lambda text: re.fullmatch(line, text) is not None, 30)
        assert found, f"no stderr line {line!r}: {run.err.text(0)!r}"

    # The example's files: in the source tree, or inside a standalone build (CINIT_BIN).
    wait_err(
        r"cinit: drop-in override: ticker\.service replaces (/\S+)/examples/units/ticker\.service"
        r" with \1/examples/container-init\.d/ticker\.service"
    )
    wait_err(r"cinit: ticker\.service: ready")
    out = run.out
    for line in ("hello from hello.service", "report: running as root", "tick from the derived"):
        assert out.wait_line(lambda text, want=line: want in text, 20), out.text(0)

    reply = fetch_inside(run, "http://127.0.0.1:8080/")
    assert reply.stdout.strip() == "200", reply.stderr  # web.service started on demand
    wait_err(r"cinit: web\.service: ready")

    run.send(signal.SIGTERM)
    assert run.wait(30) == 0, run.err.text(5)
    err = run.err.text(5)
    # Reverse dependency order: ticker (After=hello.service) stops before hello.
    assert err.index("cinit: ticker.service: stopped") < err.index("cinit: hello.service: stopped")


def test_example_takes_no_unit_directories(cinit_cmd: list[str], tmp_path: Path) -> None:
    done = subprocess.run(
        [*cinit_cmd, "--example", "--units", str(tmp_path)],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode == 2
    assert "--example boots the embedded example set" in done.stderr
