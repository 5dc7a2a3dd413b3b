"""`cinit reload UNIT` against a real cinit as PID 1 (issue 16 §2): ExecReload= with
$MAINPID, the `reloading -> active` events in the trace, a notify service's RELOADING=1
... READY=1, and systemctl's refusals (no ExecReload=, not active, a socket)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from e2e_support import Boot, python_exec, shell_script, wait_until

pytestmark = [pytest.mark.pid1, pytest.mark.timeout(120)]

Booter = Callable[..., Boot]


def cli(cinit_cmd: list[str], runtime: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CINIT_")}
    argv = [*cinit_cmd, *args, "--runtime-dir", str(runtime)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)


def trace_of(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def changes(trace: Path, unit: str) -> list[tuple[str, str, str]]:
    """(old, new, reason) of every state change of `unit` in the trace."""
    return [
        (r["old"], r["new"], r.get("reason", ""))
        for r in trace_of(trace)
        if r.get("unit") == unit and "new" in r
    ]


def status(cinit_cmd: list[str], runtime: Path, unit: str) -> dict[str, Any]:
    done = cli(cinit_cmd, runtime, "status", unit, "--json")
    units: dict[str, Any] = json.loads(done.stdout)["units"]
    return dict(units[unit])


def test_reload_runs_execreload_with_mainpid_and_notify_reloading_is_honoured(
    boot: Booter, tmp_path: Path, cinit_cmd: list[str]
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    record = shell_script(tmp_path / "record-mainpid.sh", f'echo "$MAINPID" >> {out}/mainpid\n')
    notify_log, trigger = out / "notify.log", out / "reload-now"
    nr_log = out / "nr.log"
    trace = tmp_path / "trace.jsonl"
    units = {
        "web.service": f"""
            [Service]
            ExecStart={python_exec("signal_logger.py", "--timeout", 100, "HUP")}
            ExecReload={record}
            ExecReload=/bin/kill -HUP $MAINPID
            """,
        "broken.service": """
            [Service]
            ExecStart=/bin/sleep 100
            ExecReload=/bin/false
            """,
        "plain.service": """
            [Service]
            ExecStart=/bin/sleep 100
            """,
        "later.service": """
            [Service]
            ExecStart=/bin/sleep 100
            ExecReload=/bin/true
            """,
        "quiet.socket": """
            [Socket]
            ListenStream=%t/quiet.sock
            """,
        "quiet.service": """
            [Service]
            ExecStart=/bin/sleep 100
            """,
        "nr.service": f"""
            [Service]
            Type=notify-reload
            ExecStart={python_exec("notify_reloader.py", "--log", nr_log, "--reload-time", 0.5)}
            """,
        "self.service": f"""
            [Service]
            Type=notify
            ExecStart={python_exec("notify_reloader.py", "--log", notify_log, "--trigger", trigger)}
            """,
    }
    env = {"CONTAINER_INIT_TRACE": "1", "CONTAINER_INIT_TRACE_FILE": str(trace)}
    run = boot(units, env=env)
    runtime = tmp_path / "boot" / "run"
    try:
        wait_until(lambda: (runtime / "control").exists(), 20, "the control socket")
        wait_until(lambda: cli(cinit_cmd, runtime, "is-ready").returncode == 0, 20, "the boot")
    except AssertionError:
        raise AssertionError(run.report()) from None
    assert cli(cinit_cmd, runtime, "stop", "later").returncode == 0
    main_pid = status(cinit_cmd, runtime, "web.service")["main_pid"]

    # ExecReload= in order, with $MAINPID; the service got its SIGHUP; same main process.
    done = cli(cinit_cmd, runtime, "reload", "web")
    assert done.returncode == 0, done.stderr
    assert (out / "mainpid").read_text().split() == [str(main_pid)]
    run.wait_out(r"SIGHUP", timeout=10)
    after = status(cinit_cmd, runtime, "web.service")
    assert (after["state"], after["main_pid"]) == ("active", main_pid)
    wait_until(lambda: ("reloading", "active", "reloaded") in changes(trace, "web.service"), 10,
               "the end of the reload in the trace")  # fmt: skip
    assert changes(trace, "web.service")[-2:] == [
        ("active", "reloading", "reload requested"),
        ("reloading", "active", "reloaded"),
    ]
    names = [r["event"] for r in trace_of(trace) if r.get("unit") == "web.service"]
    assert names[-2:] == ["reloading", "ready"]

    # A failing ExecReload=: the reload fails (1), the service keeps running.
    broken_pid = status(cinit_cmd, runtime, "broken.service")["main_pid"]
    failed = cli(cinit_cmd, runtime, "reload", "broken.service")
    assert failed.returncode == 1
    assert "Job for broken.service failed because the control process exited" in failed.stderr
    again = status(cinit_cmd, runtime, "broken.service")
    assert (again["state"], again["main_pid"]) == ("active", broken_pid)

    # systemctl's refusals: no ExecReload=, not active, a socket; an unknown unit is 4.
    plain = cli(cinit_cmd, runtime, "reload", "plain")
    assert plain.returncode == 1
    assert (
        "Failed to reload plain.service: Job type reload is not applicable for unit "
        "plain.service." in plain.stderr
    )
    later = cli(cinit_cmd, runtime, "reload", "later")
    assert later.returncode == 1
    assert "Unit later.service is not active, cannot reload." in later.stderr
    assert cli(cinit_cmd, runtime, "reload", "quiet.socket").returncode == 1
    assert cli(cinit_cmd, runtime, "reload", "nope").returncode == 4
    # Several units: each one, the worst status.
    assert cli(cinit_cmd, runtime, "reload", "web", "plain").returncode == 1
    assert cli(cinit_cmd, runtime, "reload", "web", "--apply").returncode == 2

    # The systemctl verbs: reload, reload-or-restart, try-reload-or-restart, daemon-reload.
    done = cli(cinit_cmd, runtime, "systemctl", "reload", "web")
    assert (done.returncode, done.stdout) == (0, ""), done.stderr
    assert (out / "mainpid").read_text().split() == [str(main_pid)] * 3  # and web plain
    refused = cli(cinit_cmd, runtime, "systemctl", "reload", "plain")
    assert refused.returncode == 1
    assert refused.stderr.startswith("Failed to reload plain.service: Job type reload")
    missing = cli(cinit_cmd, runtime, "systemctl", "reload", "nope")
    assert missing.returncode == 4
    assert missing.stderr == "Failed to reload nope.service: Unit nope.service not found.\n"
    plain_pid = status(cinit_cmd, runtime, "plain.service")["main_pid"]
    assert cli(cinit_cmd, runtime, "systemctl", "reload-or-restart", "plain").returncode == 0
    assert status(cinit_cmd, runtime, "plain.service")["main_pid"] not in (None, plain_pid)
    assert cli(cinit_cmd, runtime, "systemctl", "try-reload-or-restart", "later").returncode == 0
    assert status(cinit_cmd, runtime, "later.service")["state"] == "inactive"
    assert cli(cinit_cmd, runtime, "systemctl", "reload-or-restart", "later").returncode == 0
    assert status(cinit_cmd, runtime, "later.service")["state"] == "active"
    tried = cli(cinit_cmd, runtime, "systemctl", "try-reload-or-restart", "later", "web")
    assert tried.returncode == 0, tried.stderr
    assert (out / "mainpid").read_text().split() == [str(main_pid)] * 4
    failing = cli(cinit_cmd, runtime, "systemctl", "reload-or-restart", "broken")
    assert failing.returncode == 1  # its reload failed: no restart instead
    assert status(cinit_cmd, runtime, "broken.service")["main_pid"] == broken_pid
    daemon = cli(cinit_cmd, runtime, "systemctl", "daemon-reload")
    assert (daemon.returncode, daemon.stdout, daemon.stderr) == (0, "", "")

    # Type=notify-reload: SIGHUP to the main process, the reply once it said READY=1.
    nr_pid = status(cinit_cmd, runtime, "nr.service")["main_pid"]
    done = cli(cinit_cmd, runtime, "reload", "nr")
    assert done.returncode == 0, done.stderr
    assert nr_log.read_text().split() == ["reloading", str(nr_pid), "reloaded", str(nr_pid)]
    wait_until(
        lambda: changes(trace, "nr.service")[-1:] == [("reloading", "active", "reloaded")],
        10,
        "the notify-reload's end in the trace",
    )

    # A notify service reloading by itself: RELOADING=1 ... READY=1 in the trace.
    trigger.touch()
    wait_until(lambda: "reloaded" in (notify_log.read_text() if notify_log.exists() else ""),
               10, "the notify service's reload")  # fmt: skip
    wait_until(lambda: ("reloading", "active", "reloaded") in changes(trace, "self.service"), 10,
               "the notify reload in the trace")  # fmt: skip
    assert ("active", "reloading", "RELOADING=1") in changes(trace, "self.service")
    assert run.terminate() == 0, run.report()
