"""`cinit status|start|stop|restart|is-ready` against a real cinit as PID 1 (issue 6 §3, §6).

The CLI runs as a user would run it (the `cinit` command, `--runtime-dir`), and its exit
codes and output are checked; malformed requests are sent with pyzmq and raw sockets;
the non-root user is `nobody` through setpriv.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import zmq
from e2e_support import Boot, cinit_line, wait_until

pytestmark = [pytest.mark.pid1, pytest.mark.timeout(90)]

Booter = Callable[..., Boot]

UNITS = {
    "web.service": """
        [Unit]
        Description=the web server
        [Service]
        ExecStart=/bin/sleep 120
        """,
    "job.service": """
        [Service]
        Type=oneshot
        RemainAfterExit=yes
        ExecStart=/bin/true
        """,
    "broken.service": """
        [Service]
        Type=oneshot
        ExecStart=/bin/sh -c "echo cannot find its config >&2; exit 7"
        """,
}


def cli(cinit_cmd: list[str], runtime: Path, *args: str, user: str | None = None) -> Any:
    argv = [*cinit_cmd, *args, "--runtime-dir", str(runtime)]
    if user is not None:
        argv = ["setpriv", "--reuid", user, "--regid", "nogroup", "--clear-groups", *argv]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CINIT_")}
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, env=env)


def booted(boot: Booter, tmp_path: Path, cinit_cmd: list[str]) -> tuple[Boot, Path]:
    run = boot(UNITS)
    runtime = tmp_path / "boot" / "run"
    run.wait_err(cinit_line("broken.service", r"failed \(exit-code\)"), timeout=20)
    wait_until(lambda: (runtime / "control").exists(), 10, "the control socket")
    return run, runtime


def status_json(cinit_cmd: list[str], runtime: Path) -> dict[str, Any]:
    done = cli(cinit_cmd, runtime, "status", "--json")
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_status_start_stop_restart_and_is_ready_exit_codes(
    boot: Booter, tmp_path: Path, cinit_cmd: list[str]
) -> None:
    run, runtime = booted(boot, tmp_path, cinit_cmd)

    table = cli(cinit_cmd, runtime, "status")
    assert table.returncode == 0, table.stderr
    assert "web.service" in table.stdout and "the web server" in table.stdout
    snapshot = status_json(cinit_cmd, runtime)
    web = snapshot["units"]["web.service"]
    assert web["state"] == "active" and web["ready"] is True and web["memory"] > 0
    assert snapshot["units"]["broken.service"]["last_exit"] == {"code": 7, "signal": None}
    assert snapshot["units"]["broken.service"]["result"] == "exit-code"
    assert isinstance(snapshot["seq"], int) and snapshot["seq"] > 0

    block = cli(cinit_cmd, runtime, "status", "web")
    assert block.returncode == 0 and "Main PID: " + str(web["main_pid"]) in block.stdout
    broken = cli(cinit_cmd, runtime, "status", "broken.service")
    assert broken.returncode == 3
    assert "cannot find its config" in broken.stdout  # its last output lines, as systemctl
    unknown = cli(cinit_cmd, runtime, "status", "nope.service")
    assert unknown.returncode == 4 and "nope.service" in unknown.stderr

    ready = cli(cinit_cmd, runtime, "is-ready", "web")
    assert (ready.returncode, ready.stdout) == (0, "")
    assert cli(cinit_cmd, runtime, "is-ready", "job.service").returncode == 0
    assert cli(cinit_cmd, runtime, "is-ready", "broken").returncode == 3
    assert cli(cinit_cmd, runtime, "is-ready", "nope").returncode == 4
    assert cli(cinit_cmd, runtime, "is-ready").returncode == 3  # broken.service failed

    stop = cli(cinit_cmd, runtime, "stop", "web")
    assert stop.returncode == 0, stop.stderr
    assert status_json(cinit_cmd, runtime)["units"]["web.service"]["state"] == "inactive"
    assert cli(cinit_cmd, runtime, "is-ready", "web").returncode == 3
    start = cli(cinit_cmd, runtime, "start", "web.service")
    assert start.returncode == 0, start.stderr
    first_pid = status_json(cinit_cmd, runtime)["units"]["web.service"]["main_pid"]
    restart = cli(cinit_cmd, runtime, "restart", "web")
    assert restart.returncode == 0, restart.stderr
    after = status_json(cinit_cmd, runtime)["units"]["web.service"]
    assert after["state"] == "active" and after["main_pid"] != first_pid
    assert cli(cinit_cmd, runtime, "start", "nope").returncode == 4
    failing = cli(cinit_cmd, runtime, "start", "broken")
    assert failing.returncode == 1 and "broken.service failed (exit-code)" in failing.stderr
    assert cli(cinit_cmd, runtime, "stop").returncode == 2  # usage: needs a unit

    # Stopping a unit that is down already is done at once (it stays failed, as in systemd).
    assert cli(cinit_cmd, runtime, "stop", "broken").returncode == 0
    assert cli(cinit_cmd, runtime, "is-ready").returncode == 3
    assert run.terminate() == 0, run.report()
    assert not (runtime / "control").exists(), "the control socket outlived cinit"
    gone = cli(cinit_cmd, runtime, "is-ready")
    assert gone.returncode == 3 and "not running" in gone.stderr


def test_is_ready_is_3_while_booting_and_0_once_up(
    boot: Booter, tmp_path: Path, cinit_cmd: list[str]
) -> None:
    units = {
        "slow.service": """
            [Service]
            Type=oneshot
            RemainAfterExit=yes
            ExecStart=/bin/sleep 3
            """,
    }
    run = boot(units)
    runtime = tmp_path / "boot" / "run"
    wait_until(lambda: (runtime / "control").exists(), 10, "the control socket")
    assert cli(cinit_cmd, runtime, "is-ready").returncode == 3
    assert cli(cinit_cmd, runtime, "is-ready", "slow").returncode == 3
    run.wait_err(cinit_line("slow.service", "ready"), timeout=10)
    assert cli(cinit_cmd, runtime, "is-ready").returncode == 0
    assert run.terminate() == 0, run.report()


def test_nobody_cannot_use_the_control_endpoint(
    boot: Booter, cinit_cmd: list[str], cinit_cmd_any_user: list[str], shared_dir: Path
) -> None:
    runtime = shared_dir / "run"
    run = boot(UNITS, options=["--runtime-dir", str(runtime)])
    run.wait_err(cinit_line("web.service", "ready"), timeout=20)
    # Answering proves the socket is bound and its mode set (the pump sets it before serving).
    answers = lambda: cli(cinit_cmd, runtime, "is-ready", "web").returncode == 0  # noqa: E731
    wait_until(answers, 30, "the control socket")
    assert (runtime.stat().st_mode & 0o777, (runtime / "control").stat().st_mode & 0o777) == (
        0o700,
        0o600,
    )
    for args in (("status",), ("is-ready",), ("stop", "web")):
        denied = cli(cinit_cmd_any_user, runtime, *args, user="nobody")
        assert denied.returncode == 4, (args, denied.stdout, denied.stderr)
        assert "permission denied" in denied.stderr
    # Even with the directory opened up by mistake, the socket itself (0600) refuses.
    runtime.chmod(0o755)
    denied = cli(cinit_cmd_any_user, runtime, "stop", "web", user="nobody")
    assert denied.returncode == 4 and "permission denied" in denied.stderr
    runtime.chmod(0o700)
    assert cli(cinit_cmd, runtime, "is-ready", "web").returncode == 0, "web was stopped"
    assert run.terminate() == 0, run.report()


def test_malformed_control_messages_get_errors_and_cinit_carries_on(
    boot: Booter, tmp_path: Path, cinit_cmd: list[str]
) -> None:
    run, runtime = booted(boot, tmp_path, cinit_cmd)
    endpoint = f"ipc://{runtime / 'control'}"
    context: zmq.Context[Any] = zmq.Context()
    try:
        for raw, code in [
            (b"\x00\xffnot json", 2),
            (b"[]", 2),
            (b'{"cmd": "format-disk"}', 2),
            (b'{"cmd": "status", "unit": ["x"]}', 2),
            (b'{"cmd": ["status"]}', 2),  # issue 13 item 10: was "internal error: TypeError"
            (b'{"cmd": {"status": 1}}', 2),
            (b'{"cmd": "start"}', 2),
            (b'{"cmd": "stop", "unit": "ghost"}', 4),
        ]:
            req = context.socket(zmq.REQ)
            req.connect(endpoint)
            req.send(raw)
            assert req.poll(5000), f"no reply to {raw!r}"
            reply = json.loads(req.recv())
            assert reply["ok"] is False and reply["code"] == code, (raw, reply)
            req.close(linger=0)
        # A DEALER without the REQ delimiter is answered too.
        dealer = context.socket(zmq.DEALER)
        dealer.connect(endpoint)
        dealer.send_multipart([b"one", b"two"])
        assert dealer.poll(5000)
        assert json.loads(dealer.recv_multipart()[-1])["ok"] is False
        dealer.close(linger=0)
        # Too large: libzmq drops the connection; nothing is answered, nothing breaks.
        big = context.socket(zmq.REQ)
        big.connect(endpoint)
        big.send(b"{" + b" " * 200_000 + b"}")
        assert not big.poll(500)
        big.close(linger=0)
    finally:
        context.destroy(linger=0)
    # Not even ZeroMQ: garbage on the raw socket, and a client that connects and hangs.
    for junk in (b"GET / HTTP/1.0\r\n\r\n", b"\xff" * 100, b""):
        raw_client = socket.socket(socket.AF_UNIX)
        raw_client.settimeout(2)
        raw_client.connect(str(runtime / "control"))
        raw_client.sendall(junk)
        if junk:
            time.sleep(0.05)
        raw_client.close()
    hanging = socket.socket(socket.AF_UNIX)
    hanging.connect(str(runtime / "control"))
    try:
        started = time.monotonic()
        ready = cli(cinit_cmd, runtime, "is-ready", "web")
        assert ready.returncode == 0, ready.stderr
        assert time.monotonic() - started < 5
        assert run.alive()
    finally:
        hanging.close()
    assert run.terminate() == 0, run.report()


def test_the_control_group_may_use_the_sockets_and_others_still_may_not(
    boot: Booter, cinit_cmd_any_user: list[str], shared_dir: Path
) -> None:
    gid = 4242  # a bare number needs no /etc/group entry: setpriv --groups takes it as is
    runtime = shared_dir / "run"
    run = boot(UNITS, options=["--runtime-dir", str(runtime), "--control-group", str(gid)])
    run.wait_err(cinit_line("web.service", "ready"), timeout=20)
    wait_until(lambda: (runtime / "control").exists(), 10, "the control socket")
    # A socket node exists from bind() on, its mode and group a moment later (bind then
    # chmod/chown: in between it is root's 0755, which no one else may connect to).
    for path, mode in ((runtime, 0o750), (runtime / "control", 0o660), (runtime / "events", 0o660)):

        def settled(path: Path = path, mode: int = mode) -> bool:
            info = path.stat()
            return (info.st_mode & 0o777, info.st_gid) == (mode, gid)

        wait_until(settled, 10, f"{path}: mode {mode:o}, group {gid}")
    member = ["setpriv", "--reuid", "nobody", "--regid", "nogroup", "--groups", str(gid)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CINIT_")}
    allowed = subprocess.run(
        [*member, *cinit_cmd_any_user, "is-ready", "web", "--runtime-dir", str(runtime)],
        capture_output=True, text=True, timeout=30, env=env,
    )
    assert allowed.returncode == 0, allowed.stderr
    denied = cli(cinit_cmd_any_user, runtime, "is-ready", "web", user="nobody")
    assert denied.returncode == 4 and "permission denied" in denied.stderr
    assert run.terminate() == 0, run.report()
