"""Instances of templates made on demand (issue 16: `systemctl start openvpn@work`).

cinit boots with a template `greet@.service` and no instance of it; `systemctl start
greet@work` makes the instance from the template (as systemd does), starts it, and it
then behaves as any unit (status, logs, stop). A template missing: not found (4); a
template with an error, written after the boot: the diagnostics, exit 1. Socket and timer
templates too (no socket unit at boot: socket activation is set up with the first one).
Real processes, cinit as PID 1; the commands run as a user runs them.
"""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from e2e_support import Boot, cinit_line, wait_until

pytestmark = [pytest.mark.pid1, pytest.mark.timeout(120)]

Booter = Callable[..., Boot]

UNITS = {
    "keep.service": """
        [Service]
        ExecStart=/bin/sleep 300
        """,
    "greet@.service": """
        [Unit]
        Description=greets %i
        [Service]
        ExecStart=/bin/sh -c 'echo hello %i; exec sleep 100'
        """,
}


def command(cinit_cmd: list[str], runtime: Path, *args: str) -> Any:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CINIT_")}
    env["CINIT_RUNTIME_DIR"] = str(runtime)
    return subprocess.run([*cinit_cmd, *args], capture_output=True, text=True, timeout=60, env=env)


def test_instances_made_on_demand(boot: Booter, tmp_path: Path, cinit_cmd: list[str]) -> None:
    run = boot(UNITS)
    runtime = tmp_path / "boot" / "run"
    run.wait_err(cinit_line("keep.service", "ready"), timeout=20)
    wait_until(lambda: (runtime / "control").exists(), 10, "the control socket")
    ctl = lambda *args: command(cinit_cmd, runtime, "systemctl", *args)  # noqa: E731
    cinit = lambda *args: command(cinit_cmd, runtime, *args)  # noqa: E731

    assert ctl("is-active", "greet@work").stdout == "inactive\n"  # not loaded: inactive
    # status of an instance never started: loaded from the template, inactive (dead)
    never = ctl("status", "greet@never")
    assert never.returncode == 3, never.stderr
    assert never.stdout.startswith("\u25cb greet@never.service - greets never"), never.stdout
    assert "greet@.service" in never.stdout.splitlines()[1]  # Loaded: (the template's path)
    assert "     Active: inactive (dead)" in never.stdout

    started = ctl("start", "greet@work")
    assert started.returncode == 0, started.stderr
    assert ctl("is-active", "greet@work.service").stdout == "active\n"
    wait_until(
        lambda: "hello work" in cinit("logs", "greet@work").stdout, 10, "the instance's output"
    )
    status = ctl("status", "greet@work")
    assert status.returncode == 0, status.stderr
    assert status.stdout.startswith("\u25cf greet@work.service - greets work")
    assert "     Active: active (running) since " in status.stdout
    assert "hello work" in status.stdout  # its last output lines

    second = cinit("start", "greet@home.service")  # cinit's own verb, with the suffix
    assert second.returncode == 0, second.stderr
    wait_until(lambda: "hello home" in cinit("logs", "greet@home").stdout, 10, "home's output")
    listed = ctl("list-units", "--plain", "--no-legend", "greet@*").stdout
    assert "greet@work.service" in listed and "greet@home.service" in listed, listed

    stopped = ctl("stop", "greet@work")
    assert stopped.returncode == 0, stopped.stderr
    assert ctl("is-active", "greet@work").stdout == "inactive\n"
    assert ctl("is-active", "greet@home").stdout == "active\n"
    assert ctl("start", "greet@work").returncode == 0  # loaded now: an ordinary start

    # A template that is not there: no such unit.
    missing = ctl("start", "nosuch@work")
    assert missing.returncode == 4
    assert "Unit nosuch@work.service not found." in missing.stderr
    assert ctl("status", "nosuch@work").returncode == 4
    assert cinit("start", "nosuch@work").returncode == 4

    # A template with an error (written after the boot): its diagnostics, exit 1.
    bad_template = tmp_path / "boot" / "units" / "bad@.service"
    bad_template.write_text("[Service]\nExecStart=/bin/sleep 100\nRestart=sometimes\n")
    bad = ctl("start", "bad@one")
    assert bad.returncode == 1, (bad.stdout, bad.stderr)
    assert "bad@.service:3" in bad.stderr and "Restart" in bad.stderr, bad.stderr
    assert ctl("is-active", "greet@home").stdout == "active\n"  # the others run on

    # A daemon-reload keeps the instances made on demand (their template is still there).
    bad_template.unlink()  # else the reload is refused whole, for its error
    reload = ctl("daemon-reload")
    assert reload.returncode == 0, reload.stderr
    assert ctl("is-active", "greet@work", "greet@home").stdout == "active\nactive\n"
    assert run.terminate() == 0, run.report()


def test_socket_and_timer_instances_made_on_demand(
    boot: Booter, tmp_path: Path, cinit_cmd: list[str]
) -> None:
    sockets = tmp_path / "sock"
    sockets.mkdir()
    run = boot(
        {
            **UNITS,
            "echo@.socket": f"""
                [Socket]
                ListenStream={sockets}/echo-%i.sock
                """,
            "echo@.service": """
                [Service]
                ExecStart=/bin/sh -c 'echo serving %i; exec sleep 100'
                """,
            "tick@.timer": """
                [Timer]
                OnActiveSec=1
                AccuracySec=1us
                """,
            "tick@.service": """
                [Service]
                Type=oneshot
                ExecStart=/bin/echo tick %i
                """,
        }
    )
    runtime = tmp_path / "boot" / "run"
    run.wait_err(cinit_line("keep.service", "ready"), timeout=20)
    wait_until(lambda: (runtime / "control").exists(), 10, "the control socket")
    ctl = lambda *args: command(cinit_cmd, runtime, "systemctl", *args)  # noqa: E731

    started = ctl("start", "echo@a.socket")
    assert started.returncode == 0, started.stderr
    assert ctl("is-active", "echo@a.socket").stdout == "active\n"
    assert ctl("is-active", "echo@a.service").stdout == "inactive\n"  # until a connection
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.connect(str(sockets / "echo-a.sock"))
        wait_until(lambda: ctl("is-active", "echo@a.service").stdout == "active\n", 10, "echo@a up")

    timer = ctl("start", "tick@b.timer")
    assert timer.returncode == 0, timer.stderr
    assert ctl("is-active", "tick@b.timer").stdout == "active\n"
    run.wait_out(r"tick@b.service: tick b", timeout=20)  # its service ran, an instance too
    assert run.terminate() == 0, run.report()
