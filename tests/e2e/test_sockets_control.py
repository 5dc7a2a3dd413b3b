"""`cinit stop|start|restart` of socket units against a real cinit as PID 1 (issue 13 §9).

A socket stops like systemd's: its listeners close (a unix node stays unless
RemoveOnStop=), its events go out (stopping, stopped), and a service it started keeps
running with the listeners it inherited. A start binds again and listens; a restart is
both. The events are read from the trace (CONTAINER_INIT_TRACE_FILE), the listeners from
/proc/net/unix (the socket inode: a new bind is a new socket) and by connecting.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from e2e_support import PYTHON, TESTS, Boot, cinit_line, wait_until
from sockets_support import (
    fetch_unix,
    find_process,
    free_port,
    listen_server,
    running,
    wait_listening,
)

pytestmark = [pytest.mark.pid1, pytest.mark.timeout(90)]

Booter = Callable[..., Boot]
BACKEND = TESTS / "programs" / "proxy_backend.py"


def cli(cinit_cmd: list[str], runtime: Path, *args: str) -> Any:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CINIT_")}
    argv = [*cinit_cmd, *args, "--runtime-dir", str(runtime)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, env=env)


def state(cinit_cmd: list[str], runtime: Path, unit: str) -> str:
    done = cli(cinit_cmd, runtime, "status", "--json")
    assert done.returncode in (0, 3), done.stderr
    return str(json.loads(done.stdout)["units"][unit]["state"])


def socket_inode(path: Path) -> int | None:
    """The inode of the socket bound at `path` (/proc/net/unix), None when none is."""
    for line in Path("/proc/net/unix").read_text().splitlines()[1:]:
        words = line.split()
        if len(words) > 7 and words[7] == str(path):
            return int(words[6])
    return None


def traced(trace: Path, unit: str) -> list[str]:
    """The state change events of `unit` in the trace, in order."""
    if not trace.exists():
        return []
    records = [json.loads(line) for line in trace.read_text().splitlines() if line]
    return [r["event"] for r in records if r.get("unit") == unit and "new" in r]


def refused(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.settimeout(5)
        try:
            client.connect(str(path))
        except ConnectionRefusedError:
            return True
    return False


def booted(
    boot: Booter, tmp_path: Path, cinit_cmd: list[str], units: dict[str, str]
) -> tuple[Boot, Path, Path]:
    trace = tmp_path / "trace.jsonl"
    run = boot(units, env={"CONTAINER_INIT_TRACE": "1", "CONTAINER_INIT_TRACE_FILE": str(trace)})
    runtime = tmp_path / "boot" / "run"
    wait_until(lambda: (runtime / "control").exists(), 10, "the control socket" + run.report())
    wait_until(lambda: "ready" in traced(trace, "web.socket"), 10, "web.socket ready")
    return run, runtime, trace


def test_restart_stop_and_start_of_a_unix_socket_rebind_it_with_events(
    boot: Booter, tmp_path: Path, cinit_cmd: list[str]
) -> None:
    node = tmp_path / "web" / "web.sock"
    server = listen_server(tmp_path / "r.json", "--exit-after", 1)
    units = {
        "web.socket": f"[Socket]\nListenStream={node}\n",
        "web.service": f"[Service]\nExecStart={server}\n",
    }
    run, runtime, trace = booted(boot, tmp_path, cinit_cmd, units)
    first = socket_inode(node)
    assert first is not None

    restart = cli(cinit_cmd, runtime, "restart", "web.socket")
    assert restart.returncode == 0, restart.stderr + run.report()
    # The trace is written by the event thread: the last event may land just after the reply.
    wait_until(
        lambda: traced(trace, "web.socket")[-3:] == ["stopping", "stopped", "ready"],
        10,
        f"the restart's events in the trace: {traced(trace, 'web.socket')}",
    )
    second = socket_inode(node)
    assert second is not None and second != first, "the listener was not bound again"
    assert state(cinit_cmd, runtime, "web.socket") == "active"
    assert fetch_unix(str(node)).startswith(b"hello ")  # a connection starts the service
    served = ("exited", "inactive")  # it served one connection and ended
    wait_until(lambda: state(cinit_cmd, runtime, "web.service") in served, 10, "its end")

    stop = cli(cinit_cmd, runtime, "stop", "web.socket")
    assert stop.returncode == 0, stop.stderr + run.report()
    assert traced(trace, "web.socket")[-2:] == ["stopping", "stopped"]
    assert state(cinit_cmd, runtime, "web.socket") == "inactive"
    assert socket_inode(node) is None and refused(node)  # the node stays (no RemoveOnStop=)

    start = cli(cinit_cmd, runtime, "start", "web.socket")
    assert start.returncode == 0, start.stderr + run.report()
    assert traced(trace, "web.socket")[-1] == "ready"
    assert state(cinit_cmd, runtime, "web.socket") == "active"
    assert socket_inode(node) not in (None, first, second)
    assert fetch_unix(str(node)).startswith(b"hello ")
    assert run.terminate() == 0, run.report()


def test_stopping_a_socket_leaves_its_running_service_serving(
    boot: Booter, tmp_path: Path, cinit_cmd: list[str]
) -> None:
    node = tmp_path / "web" / "web.sock"
    report = tmp_path / "r.json"
    units = {
        "web.socket": f"[Socket]\nListenStream={node}\n",
        "web.service": f"[Service]\nExecStart={listen_server(report)}\n",
    }
    run, runtime, trace = booted(boot, tmp_path, cinit_cmd, units)
    answer = fetch_unix(str(node))
    server = find_process(run.run.proc.pid, str(report))

    stop = cli(cinit_cmd, runtime, "stop", "web.socket")
    assert stop.returncode == 0, stop.stderr + run.report()
    run.wait_err(cinit_line("web.socket", "stopping; web.service keeps running with its listeners"))
    assert state(cinit_cmd, runtime, "web.socket") == "inactive"
    assert state(cinit_cmd, runtime, "web.service") == "active"
    assert fetch_unix(str(node)) == answer  # the service still serves on what it inherited
    assert find_process(run.run.proc.pid, str(report)).host_pid == server.host_pid

    # Started again under the running service: a new listener at the node, the service
    # untouched (it keeps the old one, as with systemd).
    start = cli(cinit_cmd, runtime, "restart", "web.socket")
    assert start.returncode == 0, start.stderr + run.report()
    assert state(cinit_cmd, runtime, "web.socket") == "active"
    assert state(cinit_cmd, runtime, "web.service") == "active"
    assert traced(trace, "web.service").count("started") == 1  # the first connection's
    # A connection to the new listener waits for the next run, which gets the new listener.
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.settimeout(20)
        client.connect(str(node))
        assert cli(cinit_cmd, runtime, "stop", "web.service").returncode == 0
        reply = client.recv(100)
    assert reply.startswith(b"hello ") and reply != answer, (reply, answer)
    assert traced(trace, "web.service").count("started") == 2
    assert run.terminate() == 0, run.report()


def test_a_tcp_socket_that_cannot_bind_again_says_why_and_its_service_runs_on(
    boot: Booter, tmp_path: Path, cinit_cmd: list[str]
) -> None:
    port = free_port()
    report = tmp_path / "r.json"
    units = {
        "web.socket": f"[Socket]\nListenStream=127.0.0.1:{port}\n",
        "web.service": f"[Service]\nExecStart={listen_server(report)}\n",
    }
    run, runtime, trace = booted(boot, tmp_path, cinit_cmd, units)
    wait_listening(port)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
        client.settimeout(10)
        assert client.recv(100).startswith(b"hello ")
    find_process(run.run.proc.pid, str(report))

    restart = cli(cinit_cmd, runtime, "restart", "web.socket")
    assert restart.returncode == 1, restart.stdout + restart.stderr
    assert "web.socket failed (resources)" in restart.stderr
    run.wait_err(
        r"cinit: web.socket: cannot bind ListenStream=127\.0\.0\.1:\d+: Address already in use "
        r"\(EADDRINUSE\) \(web\.service still runs with the listeners of an earlier start\)"
    )
    assert state(cinit_cmd, runtime, "web.service") == "active"  # not failed with it
    assert traced(trace, "web.socket")[-3:] == ["stopping", "stopped", "failed"]
    # The failed socket binds again once the port is free (the service stopped).
    assert cli(cinit_cmd, runtime, "stop", "web.service").returncode == 0
    start = cli(cinit_cmd, runtime, "start", "web.socket")
    assert start.returncode == 0, start.stderr + run.report()
    assert traced(trace, "web.socket")[-1] == "ready"
    wait_listening(port)
    assert run.terminate() == 0, run.report()


def test_a_socket_failed_by_its_trigger_limit_starts_again(
    boot: Booter, tmp_path: Path, cinit_cmd: list[str]
) -> None:
    node = tmp_path / "web" / "web.sock"
    server = listen_server(tmp_path / "r.json", "--exit-after", 1)
    units = {
        "web.socket": f"""
            [Socket]
            ListenStream={node}
            TriggerLimitBurst=1
            TriggerLimitIntervalSec=600
            """,
        "web.service": f"[Service]\nExecStart={server}\n",
    }
    run, runtime, trace = booted(boot, tmp_path, cinit_cmd, units)
    assert fetch_unix(str(node)).startswith(b"hello ")  # trigger 1 of 1
    served = ("exited", "inactive")
    wait_until(lambda: state(cinit_cmd, runtime, "web.service") in served, 10, "its end")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.connect(str(node))  # trigger 2: over the limit
        wait_until(lambda: "failed" in traced(trace, "web.socket"), 10, "the socket failing")
    assert state(cinit_cmd, runtime, "web.socket") == "failed"

    start = cli(cinit_cmd, runtime, "start", "web.socket")
    assert start.returncode == 0, start.stderr + run.report()
    assert traced(trace, "web.socket")[-2:] == ["failed", "ready"]
    assert fetch_unix(str(node)).startswith(b"hello ")
    assert run.terminate() == 0, run.report()


def tcp_exchange(port: int, send: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
        client.settimeout(10)
        client.sendall(send)
        client.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := client.recv(4096):
            answer += chunk
    return answer


@pytest.mark.parametrize("mode", ["accept", "proxy"])
def test_restart_of_accept_and_proxy_sockets_listens_again(
    boot: Booter, tmp_path: Path, cinit_cmd: list[str], mode: str
) -> None:
    port = free_port()
    if mode == "accept":
        server = listen_server(tmp_path / "r.json", "--connection")
        units = {
            "web.socket": f"[Socket]\nListenStream=127.0.0.1:{port}\nAccept=yes\n",
            "web.service": f"[Service]\nExecStart={server}\n",
        }
        send, expect = b"", b"hello "
    else:
        backend = free_port()
        units = {
            "web.socket": f"""
                [Socket]
                ListenStream=127.0.0.1:{port}
                ActivationMode=proxy
                ProxyTarget=127.0.0.1:{backend}
                """,
            "web.service": f"[Service]\nExecStart={PYTHON} {BACKEND} --tcp 127.0.0.1:{backend}\n",
        }
        send, expect = b"ECHO\nping", b"ping"
    run, runtime, trace = booted(boot, tmp_path, cinit_cmd, units)
    assert tcp_exchange(port, send).startswith(expect)
    restart = cli(cinit_cmd, runtime, "restart", "web.socket")
    assert restart.returncode == 0, restart.stderr + run.report()
    # The trace is written by the event thread: the last event may land just after the reply.
    wait_until(
        lambda: traced(trace, "web.socket")[-3:] == ["stopping", "stopped", "ready"],
        10,
        f"the restart's events in the trace: {traced(trace, 'web.socket')}",
    )
    assert tcp_exchange(port, send).startswith(expect)
    assert run.terminate() == 0, run.report()


def test_stop_of_an_accept_socket_stops_its_running_instances_and_waits_for_them(
    boot: Booter, tmp_path: Path, cinit_cmd: list[str]
) -> None:
    # An instance is a unit of the socket's: the stop ends it (SIGTERM, its unit's own
    # stop), answers once it is gone, and instances are not on the event stream.
    port = free_port()
    units = {
        "web.socket": f"[Socket]\nListenStream=127.0.0.1:{port}\nAccept=yes\n",
        "web.service": f"[Service]\nExecStart=/bin/sleep 60 {port}\n",
    }
    run, runtime, trace = booted(boot, tmp_path, cinit_cmd, units)
    unshare = run.run.proc.pid
    with socket.create_connection(("127.0.0.1", port), timeout=10):
        instance = find_process(unshare, f"sleep 60 {port}")
        assert instance.fds()[:4] == [0, 1, 2, 3]
        stop = cli(cinit_cmd, runtime, "stop", "web.socket")
        assert stop.returncode == 0, stop.stderr + run.report()
        assert not running(unshare, f"sleep 60 {port}"), run.report()
    assert traced(trace, "web.socket")[-2:] == ["stopping", "stopped"]
    assert not [line for line in trace.read_text().splitlines() if "web@" in line]
    assert run.terminate() == 0, run.report()
