"""The unit language of issue 15 part 1 on a real cinit as PID 1: an alias in After=,
Requires= and control commands, template instances from a link and from a dependency
(their argv shows %i expanded), and a snippet that adds Environment= and resets ExecStart=.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from e2e_support import Boot, cinit_line, shell_script, wait_until

pytestmark = [pytest.mark.pid1, pytest.mark.timeout(90)]

Booter = Callable[..., Boot]


def cli(cinit_cmd: list[str], runtime: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CINIT_")}
    argv = [*cinit_cmd, *args, "--runtime-dir", str(runtime)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, env=env)


def status(cinit_cmd: list[str], runtime: Path, unit: str | None = None) -> dict[str, Any]:
    done = cli(cinit_cmd, runtime, "status", *([unit] if unit else []), "--json")
    assert done.returncode in (0, 3), done.stderr
    units: dict[str, Any] = json.loads(done.stdout)["units"]
    return units


def test_aliases_instances_and_snippets_as_pid1(
    boot: Booter, tmp_path: Path, cinit_cmd: list[str]
) -> None:
    log = tmp_path / "argv.log"
    # Each service's script appends its argv to the log, then waits to be stopped.
    record = shell_script(tmp_path / "record.sh", f'echo "$@" >> {log}\nexec sleep 300\n')
    once = shell_script(tmp_path / "once.sh", f'echo "$@" >> {log}\n')
    units_dir = tmp_path / "boot" / "units"
    (units_dir / "app.service.d").mkdir(parents=True)
    (units_dir / "app.service.d" / "10-env.conf").write_text(
        # Environment= added, ExecStart= reset and set again: the file's /bin/false would
        # fail the service (and two ExecStart= refuse the boot) if either were lost.
        f"[Service]\nEnvironment=GREETING=from-snippet\nExecStart=\n"
        f"ExecStart={record} app ${{GREETING}}\n"
    )
    os.symlink("worker@.service", units_dir / "worker@15-main.service")  # systemctl enable
    os.symlink("logger.service", units_dir / "journal.service")  # an alias link
    units = {
        "logger.service": f"""
            [Service]
            Type=oneshot
            RemainAfterExit=yes
            ExecStart={once} logger
            [Install]
            Alias=syslog.service
            """,
        "app.service": """
            [Unit]
            Requires=syslog.service worker@dep.service
            After=syslog.service journal.service
            [Service]
            ExecStart=/bin/false
            """,
        "worker@.service": f"""
            [Unit]
            Description=worker %i
            [Service]
            ExecStart={record} worker %i %I %n
            """,
    }
    run = boot(units)
    runtime = tmp_path / "boot" / "run"
    snippet = units_dir / "app.service.d" / "10-env.conf"
    run.wait_err(rf"^cinit: unit app\.service: applied snippet {snippet}$")

    def lines() -> list[str]:
        return log.read_text().splitlines() if log.exists() else []

    wait_until(lambda: len(lines()) == 4, 20, f"four services to record their argv ({lines()})")
    recorded = lines()
    assert sorted(recorded) == sorted([
        "logger",
        "app from-snippet",
        "worker 15-main 15/main worker@15-main.service",
        "worker dep dep worker@dep.service",
    ]), [*recorded, run.report()]
    assert recorded.index("logger") < recorded.index("app from-snippet")  # After=syslog.service
    wait_until(lambda: (runtime / "control").exists(), 10, "the control socket")
    # Events and status name the unit itself; its aliases reach it.
    run.wait_err(cinit_line("logger.service", ".*"))
    assert "syslog.service" not in run.stderr()
    for name in ("syslog.service", "syslog", "journal.service"):
        assert list(status(cinit_cmd, runtime, name)) == ["logger.service"], name
    worker = status(cinit_cmd, runtime, "worker@dep.service")["worker@dep.service"]
    assert worker["state"] == "active" and worker["description"] == "worker dep"
    assert "worker@.service" not in status(cinit_cmd, runtime)  # a template never runs

    block = cli(cinit_cmd, runtime, "status", "app")
    assert f"    Drop-In: {snippet}\n" in block.stdout, block.stdout

    stopped = cli(cinit_cmd, runtime, "stop", "syslog.service")
    assert stopped.returncode == 0, stopped.stderr
    assert status(cinit_cmd, runtime, "logger")["logger.service"]["state"] == "inactive"
    started = cli(cinit_cmd, runtime, "start", "syslog")
    assert started.returncode == 0, started.stderr
    assert status(cinit_cmd, runtime, "logger")["logger.service"]["state"] == "active"
    assert lines().count("logger") == 2
    assert run.terminate() == 0, run.report()
