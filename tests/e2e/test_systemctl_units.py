"""`cinit systemctl` verbs against a real cinit as PID 1 (issue 16 §1, the running part).

The command runs as a user runs it (`cinit systemctl ... --runtime-dir DIR`, outside the
namespace: pids in its output are cinit's, which the test reads from `show`). Exit codes
are systemctl(1)'s table: 0 ok; 1 failed; 3 not active; 4 no such unit.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from e2e_support import PYTHON, Boot, cinit_line, wait_until

pytestmark = [pytest.mark.pid1, pytest.mark.timeout(120)]

Booter = Callable[..., Boot]

NOTIFY_PROGRAM = """\
import os, socket, time
address = os.environ["NOTIFY_SOCKET"]
if address.startswith("@"):
    address = "\\0" + address[1:]
with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
    s.connect(address)
    s.send(b"READY=1\\nSTATUS=Serving 3 clients")
time.sleep(300)
"""


def units(tmp_path: Path) -> dict[str, str]:
    program = tmp_path / "notifier.py"
    program.write_text(NOTIFY_PROGRAM)
    return {
        "web.service": """
            [Unit]
            Description=the web server
            [Service]
            ExecStart=/bin/sleep 300
            """,
        "notifier.service": f"""
            [Unit]
            Description=says how it is
            [Service]
            Type=notify
            ExecStart={PYTHON} -I -S {program}
            """,
        "job.service": """
            [Service]
            Type=oneshot
            RemainAfterExit=yes
            ExecStart=/bin/true
            """,
        "broken.service": """
            [Unit]
            Wants=web.service
            After=web.service
            [Service]
            Type=oneshot
            ExecStart=/bin/sh -c "echo cannot find its config >&2; exit 7"
            """,
        "env.service": """
            [Service]
            ExecStart=/bin/sh -c "echo GREETING=$GREETING; exec sleep 300"
            """,
        "echo.socket": f"""
            [Socket]
            ListenStream={tmp_path}/sock/echo.sock
            """,
        "echo.service": """
            [Service]
            ExecStart=/bin/sleep 300
            """,
    }


def systemctl(cinit_cmd: list[str], runtime: Path, *args: str) -> Any:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CINIT_")}
    argv = [*cinit_cmd, "systemctl", "--runtime-dir", str(runtime), *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)


def booted(boot: Booter, tmp_path: Path) -> tuple[Boot, Path]:
    run = boot(units(tmp_path))
    runtime = tmp_path / "boot" / "run"
    run.wait_err(cinit_line("broken.service", r"failed \(exit-code\)"), timeout=20)
    run.wait_err(cinit_line("notifier.service", "ready"), timeout=20)
    wait_until(lambda: (runtime / "control").exists(), 10, "the control socket")
    return run, runtime


def props(cinit_cmd: list[str], runtime: Path, unit: str, *names: str) -> dict[str, str]:
    done = systemctl(cinit_cmd, runtime, "show", unit, *(f"-p{name}" for name in names))
    assert done.returncode == 0, done.stderr
    return dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)


def test_is_active_is_failed_and_status_exit_codes(
    boot: Booter, tmp_path: Path, cinit_cmd: list[str]
) -> None:
    run, runtime = booted(boot, tmp_path)
    ctl = lambda *args: systemctl(cinit_cmd, runtime, *args)  # noqa: E731

    done = ctl("is-active", "web", "broken.service", "nope")
    assert (done.returncode, done.stdout) == (0, "active\nfailed\ninactive\n")
    done = ctl("is-active", "-q", "broken")
    assert (done.returncode, done.stdout) == (3, "")
    assert ctl("is-active", "job").stdout == "active\n"  # RemainAfterExit: active (exited)
    assert ctl("is-failed", "broken").returncode == 0
    assert ctl("is-failed", "web").returncode == 1
    running = ctl("is-system-running")
    assert (running.returncode, running.stdout) == (1, "degraded\n")  # broken.service failed

    web = ctl("status", "web")
    assert web.returncode == 0, web.stderr
    lines = web.stdout.splitlines()
    assert lines[0] == "● web.service - the web server"
    assert lines[1].startswith("     Loaded: loaded (") and "web.service" in lines[1]
    assert lines[2].startswith("     Active: active (running) since ")
    assert lines[2].endswith(" ago")
    main_pid = props(cinit_cmd, runtime, "web", "MainPID")["MainPID"]
    assert f"   Main PID: {main_pid} (" in web.stdout
    broken = ctl("status", "broken")
    assert broken.returncode == 3
    assert broken.stdout.startswith("\u00d7 broken.service")  # systemctl's failed mark
    assert "     Active: failed (Result: exit-code) since " in broken.stdout
    assert "(code=exited, status=7)" in broken.stdout
    assert "cannot find its config" in broken.stdout  # its last output lines
    # ... from the log ring, as journalctl's short form ("Dec 07 20:45:01 host unit[pid]: ")
    last = broken.stdout.rstrip("\n").splitlines()[-1]
    assert re.fullmatch(
        r"\w{3} \d\d \d\d:\d\d:\d\d \S+ broken\.service\[\d+\]: cannot find its config", last
    )
    bare = ctl("status", "broken", "-o", "cat", "-n", "1")
    assert bare.stdout.endswith("\n\ncannot find its config\n"), bare.stdout
    assert "cannot find" not in ctl("status", "broken", "-n", "0").stdout
    missing = ctl("status", "nope")
    assert missing.returncode == 4 and "Unit nope.service could not be found." in missing.stderr
    assert ctl("status").returncode == 0

    notifier = ctl("status", "notifier")
    assert '     Status: "Serving 3 clients"' in notifier.stdout, notifier.stdout
    legacy = subprocess.run(
        [*cinit_cmd, "status", "notifier", "--runtime-dir", str(runtime)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert '     Status: "Serving 3 clients"' in legacy.stdout  # `cinit status UNIT` too
    shown = props(cinit_cmd, runtime, "notifier", "StatusText", "Type", "ActiveState")
    assert shown == {"StatusText": "Serving 3 clients", "Type": "notify", "ActiveState": "active"}
    assert run.terminate() == 0, run.report()


def test_show_properties_and_list_verbs(boot: Booter, tmp_path: Path, cinit_cmd: list[str]) -> None:
    run, runtime = booted(boot, tmp_path)
    ctl = lambda *args: systemctl(cinit_cmd, runtime, *args)  # noqa: E731

    broken = props(cinit_cmd, runtime, "broken")  # every non-empty property
    assert broken["Id"] == "broken.service"
    assert broken["LoadState"] == "loaded" and broken["ActiveState"] == "failed"
    assert broken["SubState"] == "failed" and broken["Result"] == "exit-code"
    assert broken["ExecMainStatus"] == "7" and broken["ExecMainCode"] == "1"
    assert broken["Type"] == "oneshot" and broken["Restart"] == "no"
    assert broken["FragmentPath"].endswith("/units/broken.service")
    assert "web.service" in broken["Wants"].split() and "web.service" in broken["After"]
    stamp = r"[A-Z][a-z]{2} \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \S+"
    assert re.fullmatch(stamp, broken["InactiveEnterTimestamp"]), broken
    web = props(cinit_cmd, runtime, "web")
    assert "broken.service" in web["WantedBy"].split()  # the reverse relation
    assert web["ActiveEnterTimestamp"] and web["MainPID"] != "0"
    value = ctl("show", "web", "-p", "ActiveState,SubState", "--value")
    assert value.stdout == "active\nrunning\n"
    assert ctl("show", "web", "-P", "Id").stdout == "web.service\n"
    two = ctl("show", "web", "job", "-p", "Id")
    assert two.stdout == "Id=web.service\n\nId=job.service\n"
    missing = props(cinit_cmd, runtime, "nope")
    assert missing["LoadState"] == "not-found"
    manager = ctl("show", "-p", "SystemState,NFailedUnits")  # no unit: the manager's
    assert manager.stdout == "SystemState=degraded\nNFailedUnits=1\n"

    listed = ctl("list-units")
    assert listed.returncode == 0
    assert "web.service" in listed.stdout and "the web server" in listed.stdout
    assert "loaded units listed." in listed.stdout
    assert "UNIT" in listed.stdout.splitlines()[0]
    plain = ctl("list-units", "--all", "--plain", "--no-legend", "--type=socket")
    assert plain.stdout.split() == ["echo.socket", "loaded", "active", "listening", "echo.socket"]
    failed = ctl("list-units", "--state=failed", "--no-legend", "--plain")
    assert [line.split()[0] for line in failed.stdout.splitlines()] == ["broken.service"]
    pattern = ctl("list-units", "--no-legend", "--plain", "web*")
    assert [line.split()[0] for line in pattern.stdout.splitlines()] == ["web.service"]

    sockets = ctl("list-sockets")
    assert sockets.stdout.splitlines()[0].split() == ["LISTEN", "UNIT", "ACTIVATES"]
    assert f"{tmp_path}/sock/echo.sock" in sockets.stdout
    assert "echo.socket" in sockets.stdout and "echo.service" in sockets.stdout
    assert "1 sockets listed." in sockets.stdout

    tree = ctl("list-dependencies", "broken")
    assert tree.stdout.splitlines()[0] == "broken.service"
    assert any(line.endswith("└─web.service") for line in tree.stdout.splitlines())
    top = ctl("list-dependencies", "--all").stdout.splitlines()  # no default.target here
    assert top[0] == "default.target" and "\u25cf \u2514\u2500notifier.service" in top
    assert "\u00d7 \u251c\u2500broken.service" in top  # x |-broken.service
    assert "\u25cf \u2502 \u2514\u2500web.service" in top  # web: wanted by broken
    reverse = ctl("list-dependencies", "--reverse", "--plain", "web")
    assert "broken.service" in reverse.stdout
    assert run.terminate() == 0, run.report()


def test_start_stop_restart_kill_reset_failed_environment(
    boot: Booter, tmp_path: Path, cinit_cmd: list[str]
) -> None:
    run, runtime = booted(boot, tmp_path)
    ctl = lambda *args: systemctl(cinit_cmd, runtime, *args)  # noqa: E731

    stop = ctl("stop", "web", "job")
    assert stop.returncode == 0, stop.stderr
    assert ctl("is-active", "web", "job").stdout == "inactive\ninactive\n"
    assert ctl("start", "web").returncode == 0
    first = props(cinit_cmd, runtime, "web", "MainPID")["MainPID"]
    assert ctl("restart", "web").returncode == 0
    assert props(cinit_cmd, runtime, "web", "MainPID")["MainPID"] not in ("0", first)
    assert ctl("try-restart", "job").returncode == 0  # not running: nothing done
    assert ctl("is-active", "job").returncode == 3

    failing = ctl("start", "broken")
    assert failing.returncode == 1
    assert failing.stderr == (
        "Job for broken.service failed because the control process exited with error code.\n"
        'See "systemctl status broken.service" and "journalctl -xeu broken.service" for'
        " details.\n"
    )
    unknown = ctl("start", "nope")
    assert unknown.returncode == 4
    assert unknown.stderr == "Failed to start nope.service: Unit nope.service not found.\n"

    # A socket restarted really closes and binds again: it leaves active (a timestamp it
    # did not have) and comes back, listening at its path.
    node = tmp_path / "sock" / "echo.sock"
    times = ("ActiveState", "ActiveExitTimestamp", "InactiveEnterTimestamp")
    before = props(cinit_cmd, runtime, "echo.socket", *times)
    assert before == {
        "ActiveState": "active",
        "ActiveExitTimestamp": "",
        "InactiveEnterTimestamp": "",
    }
    assert ctl("restart", "echo.socket").returncode == 0
    after = props(cinit_cmd, runtime, "echo.socket", *times)
    assert after["ActiveState"] == "active" and after["ActiveExitTimestamp"], after
    assert after["InactiveEnterTimestamp"], after
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.connect(str(node))  # listening again

    # kill: SIGTERM (the default) to all of web's processes ends it (Restart=no: inactive
    # after a signal systemd counts as clean for SIGTERM).
    assert ctl("kill", "web").returncode == 0
    wait_until(lambda: ctl("is-active", "web").stdout != "active\n", 10, "web to end")
    assert ctl("start", "web").returncode == 0
    assert ctl("kill", "-s", "SIGKILL", "--kill-whom=main", "web").returncode == 0
    wait_until(lambda: ctl("is-failed", "web").returncode == 0, 10, "web to fail (SIGKILL)")
    assert props(cinit_cmd, runtime, "web", "Result")["Result"] == "signal"
    assert ctl("kill", "-s", "NOPE", "web").returncode == 1
    assert ctl("kill", "nope").returncode == 4

    # reset-failed: failed -> inactive; every failed unit without a name.
    assert ctl("reset-failed", "web").returncode == 0
    assert ctl("is-active", "web").stdout == "inactive\n"
    assert ctl("is-failed", "broken").returncode == 0
    assert ctl("reset-failed").returncode == 0
    wait_until(lambda: ctl("is-failed", "broken").returncode == 1, 10, "broken reset")
    assert ctl("is-system-running").stdout == "running\n"

    # The manager environment reaches units started afterwards.
    assert ctl("set-environment", "GREETING=hello there", "OTHER=1").returncode == 0
    shown = ctl("show-environment").stdout.splitlines()
    assert "GREETING=hello there" in shown and "OTHER=1" in shown
    assert ctl("unset-environment", "OTHER").returncode == 0
    assert "OTHER=1" not in ctl("show-environment").stdout.splitlines()
    assert ctl("set-environment", "NOEQUALS").returncode == 1
    assert ctl("restart", "env").returncode == 0
    wait_until(
        lambda: "GREETING=hello there" in ctl("status", "env").stdout, 10, "env's new output"
    )
    assert run.terminate() == 0, run.report()


def test_no_block_returns_before_the_unit_is_up(
    boot: Booter, tmp_path: Path, cinit_cmd: list[str]
) -> None:
    slow = {
        "slow.service": """
            [Service]
            Type=oneshot
            RemainAfterExit=yes
            ExecStart=/bin/sleep 2
            """,
    }
    run = boot(slow)
    runtime = tmp_path / "boot" / "run"
    run.wait_err(cinit_line("slow.service", "ready"), timeout=20)
    assert systemctl(cinit_cmd, runtime, "stop", "slow").returncode == 0
    done = systemctl(cinit_cmd, runtime, "start", "--no-block", "slow")
    assert done.returncode == 0, done.stderr
    assert systemctl(cinit_cmd, runtime, "is-active", "slow").stdout == "activating\n"
    wait_until(lambda: systemctl(cinit_cmd, runtime, "is-active", "slow").returncode == 0, 10, "up")
    assert run.terminate() == 0, run.report()


def test_not_running(tmp_path: Path, cinit_cmd: list[str]) -> None:
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    for verb, code in (("start", 1), ("stop", 1), ("kill", 1), ("show", 1), ("status", 3)):
        done = systemctl(cinit_cmd, runtime, verb, "web")
        assert done.returncode == code, (verb, done)
        assert done.stderr.startswith("cinit is not running"), (verb, done.stderr)
    active = systemctl(cinit_cmd, runtime, "is-active", "web", "db")
    assert (active.returncode, active.stdout) == (3, "inactive\ninactive\n")
    assert systemctl(cinit_cmd, runtime, "is-failed", "web").returncode == 1
    running = systemctl(cinit_cmd, runtime, "is-system-running")
    assert (running.returncode, running.stdout) == (1, "offline\n")
    assert systemctl(cinit_cmd, runtime, "list-units").returncode == 1
