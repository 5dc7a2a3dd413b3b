"""daemon-reload against a real cinit as PID 1 (issue 16 §2): `cinit reload` reads the unit
directories again (a running unit keeps its process, its next start uses the new
definition; added units can be started, removed ones go once stopped), a broken new set
is refused whole, `--apply` acts on the difference, and SIGHUP to cinit is a daemon-reload
while `cinit -- CMD` still passes SIGHUP to CMD."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from e2e_support import Boot, notify_exec, python_exec, shell_script, wait_until

pytestmark = [pytest.mark.pid1, pytest.mark.timeout(150)]

Booter = Callable[..., Boot]


def cli(cinit_cmd: list[str], runtime: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CINIT_")}
    argv = [*cinit_cmd, *args, "--runtime-dir", str(runtime)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)


def units_now(cinit_cmd: list[str], runtime: Path) -> dict[str, Any]:
    done = cli(cinit_cmd, runtime, "status", "--json")
    assert done.returncode == 0, done.stderr
    units: dict[str, Any] = json.loads(done.stdout)["units"]
    return units


def service(script: Path) -> str:
    return f"[Service]\nExecStart={script}\n"


def runs_of(log: Path, expected: list[str]) -> None:
    """Wait until the web script's log says `expected` (it writes once started)."""
    wait_until(lambda: log.read_text().split() == expected, 10, f"{expected} in {log}")


def write(directory: Path, name: str, text: str) -> None:
    (directory / name).write_text(textwrap.dedent(text).lstrip())


def trace_events(path: Path) -> list[tuple[str | None, str]]:
    if not path.exists():
        return []
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [(r.get("unit"), r["event"]) for r in records]


def test_daemon_reload_takes_the_new_files_for_the_next_start_and_refuses_a_broken_set(
    boot: Booter, tmp_path: Path, cinit_cmd: list[str]
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    scripts = {
        version: shell_script(
            tmp_path / f"web-{version}.sh", f"echo {version} >> {out}/web\nexec sleep 100\n"
        )
        for version in ("v1", "v2", "v3")
    }
    trace = tmp_path / "trace.jsonl"
    env = {"CONTAINER_INIT_TRACE": "1", "CONTAINER_INIT_TRACE_FILE": str(trace)}
    run = boot(
        {
            "web.service": service(scripts["v1"]),
            "old.service": "[Service]\nExecStart=/bin/sleep 100\n",
            "keep.service": "[Service]\nExecStart=/bin/sleep 100\n",
        },
        env=env,
    )
    runtime, units_dir = tmp_path / "boot" / "run", tmp_path / "boot" / "units"
    wait_until(lambda: (runtime / "control").exists(), 20, "the control socket")
    wait_until(lambda: cli(cinit_cmd, runtime, "is-ready").returncode == 0, 20, "the boot")
    before = units_now(cinit_cmd, runtime)
    web_pid, keep_pid = before["web.service"]["main_pid"], before["keep.service"]["main_pid"]

    # Edit one, add one, remove one (running): the diff, nothing restarted.
    write(units_dir, "web.service", service(scripts["v2"]))
    added = "[Unit]\nDescription=added\n[Service]\nExecStart=/bin/sleep 100\n"
    write(units_dir, "new.service", added)
    (units_dir / "old.service").unlink()
    done = cli(cinit_cmd, runtime, "reload")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "+ new.service",
        "- old.service",
        "~ web.service: ExecStart",
    ]
    now = units_now(cinit_cmd, runtime)
    assert now["web.service"]["main_pid"] == web_pid and now["web.service"]["state"] == "active"
    assert now["keep.service"]["main_pid"] == keep_pid
    assert now["old.service"]["state"] == "active"  # removed, but runs until stopped
    assert now["new.service"]["state"] == "inactive"
    assert now["new.service"]["description"] == "added"
    runs_of(out / "web", ["v1"])
    wait_until(lambda: ("new.service", "unit-added") in trace_events(trace), 10, "unit-added")
    assert ("web.service", "unit-changed") in trace_events(trace)

    # The added unit starts; the changed one's next start runs the new ExecStart=; the
    # removed one is gone once stopped.
    assert cli(cinit_cmd, runtime, "start", "new").returncode == 0
    assert cli(cinit_cmd, runtime, "restart", "web").returncode == 0
    runs_of(out / "web", ["v1", "v2"])
    assert cli(cinit_cmd, runtime, "stop", "old").returncode == 0
    wait_until(lambda: "old.service" not in units_now(cinit_cmd, runtime), 10, "old's removal")
    assert cli(cinit_cmd, runtime, "status", "old").returncode == 4
    assert ("old.service", "unit-removed") in trace_events(trace)

    # A new set with an error is refused whole: the running set is untouched.
    write(units_dir, "bad.service", "[Service]\nType=sideways\nExecStart=/bin/true\n")
    write(units_dir, "web.service", service(scripts["v3"]))
    refused = cli(cinit_cmd, runtime, "reload")
    assert refused.returncode == 1
    assert "bad.service" in refused.stderr and "Type" in refused.stderr, refused.stderr
    assert "running units unchanged" in refused.stderr
    assert "bad.service" not in units_now(cinit_cmd, runtime)
    assert cli(cinit_cmd, runtime, "restart", "web").returncode == 0
    runs_of(out / "web", ["v1", "v2", "v2"])  # still the v2 file

    # --apply: stops removed, starts added, restarts changed (web: v3 now).
    (units_dir / "bad.service").unlink()
    (units_dir / "new.service").unlink()
    # extra.service is the first notify service: its notify socket comes with the reload.
    extra = f"[Service]\nType=notify\nExecStart={notify_exec('extra', out / 'extra.log')}\n"
    write(units_dir, "extra.service", extra)
    web_pid = units_now(cinit_cmd, runtime)["web.service"]["main_pid"]
    applied = cli(cinit_cmd, runtime, "reload", "--apply")
    assert applied.returncode == 0, applied.stderr
    assert applied.stdout.splitlines() == [
        "+ extra.service",
        "- new.service",
        "~ web.service: ExecStart",
    ]

    def applied_all() -> bool:
        units = units_now(cinit_cmd, runtime)
        return (
            "new.service" not in units
            and units.get("extra.service", {}).get("state") == "active"
            and units["web.service"]["state"] == "active"
            and units["web.service"]["main_pid"] != web_pid
        )

    assert applied_all()  # the reply waited for them
    runs_of(out / "web", ["v1", "v2", "v2", "v3"])
    assert units_now(cinit_cmd, runtime)["keep.service"]["main_pid"] == keep_pid

    # SIGHUP to cinit: a daemon-reload (nothing applied).
    write(units_dir, "hup.service", "[Service]\nExecStart=/bin/sleep 100\n")
    run.run.send(signal.SIGHUP)
    wait_until(lambda: "hup.service" in units_now(cinit_cmd, runtime), 10, "SIGHUP's reload")
    assert units_now(cinit_cmd, runtime)["hup.service"]["state"] == "inactive"
    assert units_now(cinit_cmd, runtime)["keep.service"]["main_pid"] == keep_pid

    # An ExecReload= a daemon-reload added is the next run's: a reload now fails, at once.
    write(units_dir, "keep.service", "[Service]\nExecStart=/bin/sleep 100\nExecReload=/bin/true\n")
    assert cli(cinit_cmd, runtime, "reload").returncode == 0
    now = cli(cinit_cmd, runtime, "reload", "keep")
    assert now.returncode == 1 and "restart it" in now.stderr, now.stderr
    # --apply restarts it (the difference is an earlier reload's) and says so.
    applied = cli(cinit_cmd, runtime, "reload", "--apply")
    assert applied.returncode == 0, applied.stderr
    assert applied.stdout == "~ keep.service: restarted (it ran an older definition)\n"
    assert units_now(cinit_cmd, runtime)["keep.service"]["main_pid"] != keep_pid
    assert cli(cinit_cmd, runtime, "reload", "keep").returncode == 0
    assert run.terminate() == 0, run.report()


def test_sighup_still_reaches_the_main_command_without_units(boot: Booter, tmp_path: Path) -> None:
    logger = python_exec("signal_logger.py", "--exit-after", 1, "--timeout", 30, "HUP")
    run = boot({}, options=["--", *logger.split()])
    run.wait_out(r"^READY \d+$", timeout=15)
    run.run.send(signal.SIGHUP)
    run.wait_out(r"^SIGHUP$", timeout=10)
    assert run.finish() == 0, run.report()
