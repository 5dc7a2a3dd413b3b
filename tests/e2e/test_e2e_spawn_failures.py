"""A unit whose command cannot be started ends failed, through Restart= and the start limit.

Issue 13 (3): with `User=nosuchuser` the unit stayed in `stopping … status=217` for ever:
its child prepared at boot (cinit.io.spawn.prepared) was never handed a command nor discarded,
and waited in the unit's cgroup, so the unit was never found empty. Restart= never fired,
an After= dependent waited, `is-ready` said "booting", and SIGTERM waited out the stop
timeout. Each case here fails in cinit (User=, Group=, StandardOutput=) or in the child
(chdir, exec): the first attempt in the child prepared at boot (the first wave), the
restarts in fresh forks. Statuses are systemd's EXIT_* codes, but exec failures are a
shell's 127/126, as for the main command (the README's contract).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from e2e_support import Boot, cinit_line, wait_until

pytestmark = [pytest.mark.pid1, pytest.mark.timeout(90)]

Booter = Callable[..., Boot]

# TimeoutStopSec= far above the bound the test waits for cinit's exit (STOP_BOUND): a stop
# that waited it out fails the test instead of passing slowly.
STOP_TIMEOUT = 120
STOP_BOUND = 30.0

CASES = {
    "user": ("ExecStart=/bin/sleep 100\nUser=cinit-test-nosuchuser", 217,
             r"unknown user 'cinit-test-nosuchuser'"),
    "group": ("ExecStart=/bin/sleep 100\nGroup=cinit-test-nosuchgroup", 216,
              r"unknown group 'cinit-test-nosuchgroup'"),
    "exec": ("ExecStart=/nonexistent/cinit-test-program", 127,
             r"cannot execute /nonexistent/cinit-test-program"),
    "chdir": ("ExecStart=/bin/sleep 100\nWorkingDirectory=/nonexistent/cinit-test-dir", 200,
              r"cannot change directory to /nonexistent/cinit-test-dir"),
    "output": ("ExecStart=/bin/sleep 100\nStandardOutput=file:/nonexistent/cinit-test.log", 209,
               r"cannot open its output file"),
}  # fmt: skip


def cli(cinit_cmd: list[str], runtime: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CINIT_")}
    argv = [*cinit_cmd, *args, "--runtime-dir", str(runtime)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, env=env)


def unit_status(cinit_cmd: list[str], runtime: Path, name: str) -> dict[str, Any]:
    done = cli(cinit_cmd, runtime, "status", "--json")
    assert done.returncode == 0, done.stderr
    unit: dict[str, Any] = json.loads(done.stdout)["units"][name]
    return unit


@pytest.mark.parametrize("case", CASES)
def test_a_unit_that_cannot_start_fails_after_its_restarts_and_releases_its_dependents(
    boot: Booter, tmp_path: Path, cinit_cmd: list[str], case: str
) -> None:
    directives, status, why = CASES[case]
    run = boot({
        "bad.service": f"""
            [Unit]
            StartLimitBurst=3
            StartLimitIntervalSec=60s

            [Service]
            {directives}
            Restart=on-failure
            RestartSec=100ms
            TimeoutStopSec={STOP_TIMEOUT}
            """,
        "after.service": f"""
            [Unit]
            After=bad.service

            [Service]
            ExecStart=/bin/sleep 100
            TimeoutStopSec={STOP_TIMEOUT}
            """,
        "needs.service": """
            [Unit]
            Requires=bad.service
            After=bad.service

            [Service]
            ExecStart=/bin/sleep 100
            """,
    })
    runtime = tmp_path / "boot" / "run"
    run.wait_err(cinit_line("bad.service", r"failed \(start-limit-hit\)"), timeout=30)
    assert run.count_err(rf"^cinit: bad\.service: {why}") == 3, run.report()  # 3 attempts
    assert run.count_err(cinit_line("bad.service", r"restarting in 0\.1s")) == 3, run.report()
    # After= alone: it starts once bad.service settled; Requires=: it fails with it.
    run.wait_err(cinit_line("after.service", r"started \(pid \d+\)"), timeout=10)
    run.wait_err(cinit_line("needs.service", r"failed \(dependency\)"), timeout=10)
    assert run.count_err(cinit_line("needs.service", r"started \(pid \d+\)")) == 0

    wait_until(lambda: (runtime / "control").exists(), 10, "the control socket")
    bad = unit_status(cinit_cmd, runtime, "bad.service")
    assert (bad["state"], bad["result"]) == ("failed", "start-limit-hit"), bad
    assert bad["last_exit"] == {"code": status, "signal": None}, bad
    assert bad["restarts"] == 3, bad
    assert unit_status(cinit_cmd, runtime, "after.service")["state"] == "active"
    assert cli(cinit_cmd, runtime, "is-ready", "bad").returncode == 3
    assert cli(cinit_cmd, runtime, "is-ready", "after").returncode == 0
    assert cli(cinit_cmd, runtime, "is-ready").returncode == 3  # a unit failed

    assert run.terminate(timeout=STOP_BOUND) == 0, run.report()
    assert "Traceback" not in run.stderr(), run.report()
