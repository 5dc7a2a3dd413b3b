"""Native socket activation (sd_listen_fds) with cinit as PID 1: binding, triggering, the
service's fd table and environment read from /proc, re-arm, the trigger limit, bind
failures, unix socket nodes, Accept=yes."""

from __future__ import annotations

import json
import os
import pwd
import socket
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from e2e_support import PYTHON, Boot, cinit_line, shell_script, wait_until
from sockets_support import (
    fetch,
    fetch_unix,
    find_process,
    free_port,
    listen_server,
    running,
    tcp_listening,
    wait_listening,
)

pytestmark = [pytest.mark.pid1, pytest.mark.timeout(60)]

Booter = Callable[..., Boot]
O_CLOEXEC_FDINFO = 0o2000000  # fdinfo's `flags:` shows close-on-exec as O_CLOEXEC


def fdinfo_flags(host_pid: int, fd: int) -> int:
    text = Path(f"/proc/{host_pid}/fdinfo/{fd}").read_text()
    line = next(x for x in text.splitlines() if x.startswith("flags:"))
    return int(line.split()[1], 8)


def test_sockets_are_bound_before_any_service_starts(boot: Booter, tmp_path: Path) -> None:
    port = free_port()
    seen = tmp_path / "probe"
    probe = shell_script(
        tmp_path / "probe.sh",
        f"""
        exec {PYTHON} -I -S -c "
        import socket
        s = socket.create_connection(('127.0.0.1', {port}), timeout=5)
        s.settimeout(10)
        open('{seen}', 'w').write(s.recv(100).decode())
        "
        """,
    )
    run = boot(
        {
            "web.socket": f"[Socket]\nListenStream={port}\n",
            "web.service": f"[Service]\nExecStart={listen_server(tmp_path / 'r.json')}\n",
            # A boot service with no ordering at all: the port must already be bound.
            "probe.service": f"[Service]\nType=oneshot\nExecStart={probe}\n",
        }
    )
    wait_until(lambda: seen.exists() and seen.read_text().endswith("\n"), 15, "an answer")
    report = json.loads((tmp_path / "r.json").read_text())
    assert seen.read_text() == f"hello {report['pid']}\n"
    assert run.count_err(cinit_line("probe.service", r"failed.*")) == 0, run.report()


def test_service_is_not_started_before_the_first_connection(boot: Booter, tmp_path: Path) -> None:
    port = free_port()
    report = tmp_path / "r.json"
    run = boot(
        {
            "lazy.socket": f"[Socket]\nListenStream=127.0.0.1:{port}\n",
            "lazy.service": f"[Service]\nExecStart={listen_server(report)}\n",
        },
        env={"CINIT_VERBOSE": "1"},
    )
    run.wait_err(cinit_line("lazy.socket", r"listening on 127\.0\.0\.1:\d+"))
    time.sleep(0.7)
    assert not running(run.run.proc.pid, "listen_server.py"), run.report()
    assert not report.exists()
    assert run.count_err(cinit_line("lazy.service", r"started \(pid \d+\)")) == 0
    answer = fetch(port)
    assert answer.startswith(b"hello "), answer
    run.wait_err(cinit_line("lazy.service", r"started \(pid \d+\)"))
    assert run.terminate() == 0, run.report()


def test_service_fd_table_is_exactly_the_listeners_and_listen_pid_is_its_own(
    boot: Booter, tmp_path: Path, shared_dir: Path
) -> None:
    first, second = free_port(), free_port()
    path = shared_dir / "multi.sock"
    run = boot(
        {
            "a.socket": f"""
            [Socket]
            ListenStream=127.0.0.1:{first}
            ListenStream=127.0.0.1:{second}
            FileDescriptorName=http
            Service=multi.service
            """,
            "b.socket": f"[Socket]\nListenStream={path}\nService=multi.service\n",
            # A real program that is not a shell wrapper: sleep keeps what it inherits.
            "multi.service": "[Service]\nExecStart=/bin/sleep 60\n",
        }
    )
    wait_until(path.exists, 10, "the unix listener" + run.report())
    with socket.create_connection(("127.0.0.1", second), timeout=5):
        service = find_process(run.run.proc.pid, "/bin/sleep 60")
    assert service.fds() == [0, 1, 2, 3, 4, 5], run.report()
    env = service.environ()
    assert env["LISTEN_PID"] == str(service.ns_pid)
    assert env["LISTEN_FDS"] == "3"
    assert env["LISTEN_FDNAMES"] == "http:http:b.socket"
    for fd in (3, 4, 5):
        flags = fdinfo_flags(service.host_pid, fd)
        assert not flags & os.O_NONBLOCK, f"fd {fd} is non-blocking"
        assert not flags & O_CLOEXEC_FDINFO, f"fd {fd} is close-on-exec"
    kinds = [os.readlink(f"/proc/{service.host_pid}/fd/{fd}") for fd in (3, 4, 5)]
    assert all(kind.startswith("socket:") for kind in kinds), kinds
    assert run.terminate() == 0, run.report()


def test_socket_is_rearmed_and_queued_connections_are_served_by_the_next_instance(
    boot: Booter, tmp_path: Path
) -> None:
    port = free_port()
    # Each instance serves one connection slowly, then exits: the others queue meanwhile.
    server = listen_server(tmp_path / "r.json", "--exit-after", 1, "--start-delay", 0.2)
    run = boot(
        {
            "once.socket": f"[Socket]\nListenStream=127.0.0.1:{port}\n",
            "once.service": f"[Service]\nExecStart={server}\n",
        }
    )
    wait_listening(port)
    answers: list[bytes] = []
    errors: list[BaseException] = []

    def client() -> None:
        try:
            answers.append(fetch(port, timeout=20))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=client) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors, f"{errors}{run.report()}"
    pids = {answer.split()[1] for answer in answers}
    assert len(answers) == 4 and len(pids) == 4, f"{answers}{run.report()}"
    assert run.count_err(cinit_line("once.service", r"started \(pid \d+\)")) == 4
    # And again after the last instance exited.
    assert fetch(port).startswith(b"hello ")
    assert run.terminate() == 0, run.report()


def test_trigger_limit_fails_a_socket_whose_service_exits_at_once(
    boot: Booter, tmp_path: Path
) -> None:
    port = free_port()
    marker = tmp_path / "plain"
    run = boot(
        {
            "spin.socket": f"[Socket]\nListenStream=127.0.0.1:{port}\n",
            # No start limit in the way: the trigger limit is what must stop the spinning.
            "spin.service": "[Unit]\nStartLimitBurst=1000\n[Service]\nExecStart=/bin/true\n",
            "plain.service": f"[Service]\nType=oneshot\nExecStart=/usr/bin/touch {marker}\n",
        }
    )
    run.wait_err(cinit_line("plain.service", r"exited \(status=0\)"))
    client = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        run.wait_err(cinit_line("spin.socket", r"failed \(trigger-limit-hit\): .*"), timeout=15)
    finally:
        client.close()
    starts = run.count_err(cinit_line("spin.service", r"started \(pid \d+\)"))
    # 20 (TriggerLimitBurst=) within 2 s; more only if the machine is too slow for that.
    assert starts >= 20, f"{starts} starts{run.report()}"
    time.sleep(0.3)
    assert run.alive()
    with pytest.raises(OSError):  # the failed socket no longer listens
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    assert run.count_err(cinit_line("spin.service", r"started \(pid \d+\)")) == starts
    assert run.terminate() == 0, run.report()


def test_bind_failure_fails_only_that_socket_and_its_service(boot: Booter, tmp_path: Path) -> None:
    busy_port, good_port = free_port(), free_port()
    rescued = tmp_path / "rescued"
    plain = tmp_path / "plain"
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    holder.bind(("127.0.0.1", busy_port))
    holder.listen()
    try:
        run = boot(
            {
                "busy.socket": f"[Socket]\nListenStream=127.0.0.1:{busy_port}\n",
                "busy.service": f"""
                [Unit]
                OnFailure=rescue.service
                [Service]
                ExecStart={listen_server(tmp_path / "busy.json")}
                """,
                "rescue.service": f"[Service]\nType=oneshot\nExecStart=/usr/bin/touch {rescued}\n",
                "good.socket": f"[Socket]\nListenStream=127.0.0.1:{good_port}\n",
                "good.service": f"[Service]\nExecStart={listen_server(tmp_path / 'good.json')}\n",
                "plain.service": f"[Service]\nType=oneshot\nExecStart=/usr/bin/touch {plain}\n",
            }
        )
        run.wait_err(
            cinit_line(
                "busy.socket",
                rf"cannot bind ListenStream=127\.0\.0\.1:{busy_port}: "
                r"Address already in use \(EADDRINUSE\)",
            )
        )
        run.wait_err(cinit_line("busy.socket", r"failed \(resources\)"))
        run.wait_err(cinit_line("busy.service", r"failed \(dependency\): .*busy\.socket.*"))
        wait_until(rescued.exists, 10, "busy.service's OnFailure= unit" + run.report())
        wait_until(plain.exists, 10, "the other boot service" + run.report())
        assert fetch(good_port).startswith(b"hello ")
        assert run.alive()
        assert run.terminate() == 0, run.report()
    finally:
        holder.close()


def test_bind_failure_with_exit_container_on_failure_stops_the_container(
    boot: Booter, tmp_path: Path
) -> None:
    port = free_port()
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    holder.bind(("127.0.0.1", port))
    holder.listen()
    try:
        run = boot(
            {
                "gate.socket": f"[Socket]\nListenStream=127.0.0.1:{port}\n",
                "gate.service": f"""
                [Service]
                ExecStart={listen_server(tmp_path / "r.json")}
                ExitContainerOnFailure=yes
                """,
            }
        )
        status = run.finish(20)
        assert status != 0, run.report()
        assert "gate.socket: failed (resources)" in run.stderr()
    finally:
        holder.close()


def test_unix_listener_node_mode_owner_stale_replacement_and_remove_on_stop(
    boot: Booter, tmp_path: Path, shared_dir: Path
) -> None:
    path = shared_dir / "deep" / "er" / "app.sock"
    path.parent.mkdir(parents=True)
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))  # a node nobody listens on any more
    stale.close()
    nobody = pwd.getpwnam("nobody")
    run = boot(
        {
            "app.socket": f"""
            [Socket]
            ListenStream={path}
            SocketUser=nobody
            SocketMode=0640
            RemoveOnStop=yes
            """,
            "app.service": f"[Service]\nExecStart={listen_server(tmp_path / 'r.json')}\n",
        }
    )
    wait_until(lambda: fetch_ok(path), 10, "the unix socket to answer" + run.report())
    info = os.stat(path)
    assert stat.S_ISSOCK(info.st_mode)
    assert stat.S_IMODE(info.st_mode) == 0o640
    assert info.st_uid == nobody.pw_uid
    assert run.terminate() == 0, run.report()
    assert not path.exists(), "RemoveOnStop=yes left the node behind"


def fetch_ok(path: Path) -> bool:
    try:
        return fetch_unix(str(path)).startswith(b"hello ")
    except OSError:
        return False


def test_unix_listener_parent_directories_are_created_0755(
    boot: Booter, tmp_path: Path, shared_dir: Path
) -> None:
    path = shared_dir / "new" / "dir" / "x.sock"
    run = boot(
        {
            "x.socket": f"[Socket]\nListenStream={path}\n",
            "x.service": f"[Service]\nExecStart={listen_server(tmp_path / 'r.json')}\n",
        }
    )
    # The node is created with at most SocketMode=, then given exactly the default 0666.
    def with_its_mode() -> bool:
        return path.exists() and stat.S_IMODE(os.stat(path).st_mode) == 0o666

    wait_until(with_its_mode, 20, "the unix listener with SocketMode=0666" + run.report())
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o755
    assert stat.S_IMODE(os.stat(path.parent.parent).st_mode) == 0o755
    assert run.terminate() == 0, run.report()
    assert path.exists(), "without RemoveOnStop= the node stays"


def test_accept_yes_runs_one_instance_per_connection_with_the_connection_at_fd_3(
    boot: Booter, tmp_path: Path
) -> None:
    port = free_port()
    report = tmp_path / "r.json"
    run = boot(
        {
            "echo.socket": f"[Socket]\nListenStream=127.0.0.1:{port}\nAccept=yes\n",
            "echo.service": f"[Service]\nExecStart={listen_server(report, '--connection')}\n",
        }
    )
    wait_listening(port)
    seen = []
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
            client.settimeout(10)
            local_port = client.getsockname()[1]
            answer = client.recv(100)
        expected = str(local_port)

        def reported(expected: str = expected) -> bool:
            return report.exists() and json.loads(report.read_text())["remote_port"] == expected

        wait_until(reported, 10, "the instance's report")
        data = json.loads(report.read_text())
        assert answer == f"hello {data['pid']}\n".encode()
        assert data["fds"] == [0, 1, 2, 3]
        assert data["listen_fds"] == "1"
        assert data["listen_fdnames"] == "connection"
        assert data["listen_pid"] == str(data["pid"])
        assert data["remote_addr"] == "127.0.0.1"
        assert data["nonblock"] == [False] and data["cloexec"] == [False]
        seen.append(data["pid"])
    assert len(set(seen)) == 3
    assert run.terminate() == 0, run.report()


def test_accept_yes_max_connections_makes_connections_wait(boot: Booter, tmp_path: Path) -> None:
    port = free_port()
    server = listen_server(tmp_path / "r.json", "--connection", "--start-delay", 0.4)
    run = boot(
        {
            "slow.socket": (
                f"[Socket]\nListenStream=127.0.0.1:{port}\nAccept=yes\nMaxConnections=1\n"
            ),
            "slow.service": f"[Service]\nExecStart={server}\n",
        }
    )
    wait_listening(port)
    done: list[tuple[float, bytes]] = []
    start = time.monotonic()

    def client() -> None:
        answer = fetch(port, timeout=20)
        done.append((time.monotonic() - start, answer))

    threads = [threading.Thread(target=client) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(done) == 2 and all(answer.startswith(b"hello ") for _, answer in done), done
    times = sorted(t for t, _ in done)
    # One instance at a time: the second connection waited for the first instance to end.
    assert times[1] - times[0] >= 0.3, f"{times}{run.report()}"
    assert run.terminate() == 0, run.report()


def test_sigterm_stops_services_first_then_sockets(
    boot: Booter, tmp_path: Path, shared_dir: Path
) -> None:
    path = shared_dir / "order.sock"
    run = boot(
        {
            "order.socket": f"[Socket]\nListenStream={path}\nRemoveOnStop=yes\n",
            "order.service": f"[Service]\nExecStart={listen_server(tmp_path / 'r.json')}\n",
        },
        env={"CINIT_VERBOSE": "1"},
    )
    wait_until(lambda: fetch_ok(path), 10, "the service to answer" + run.report())
    assert run.terminate() == 0, run.report()
    err = run.stderr()
    service_stopped = err.index("cinit: order.service: stopped")
    socket_stopping = err.index("cinit: order.socket: active -> stopping")
    assert service_stopped < socket_stopping, run.report()
    assert "cinit: order.socket: stopping -> inactive (stopped)" in err
    assert not path.exists()


def test_restarted_service_gets_the_listeners_again_without_a_new_trigger(
    boot: Booter, tmp_path: Path
) -> None:
    port = free_port()
    run = boot(
        {
            "crashy.socket": f"[Socket]\nListenStream=127.0.0.1:{port}\n",
            "crashy.service": f"""
            [Service]
            ExecStart={listen_server(tmp_path / "r.json")}
            Restart=on-failure
            RestartSec=100ms
            """,
        }
    )
    wait_listening(port)
    first = fetch(port)
    service = find_process(run.run.proc.pid, "listen_server.py")
    os.kill(service.host_pid, 9)
    run.wait_err(cinit_line("crashy.service", r"restarting in 0\.1s"))
    wait_until(
        lambda: (
            len(running(run.run.proc.pid, "listen_server.py")) == 1
            and running(run.run.proc.pid, "listen_server.py")[0].host_pid != service.host_pid
        ),
        10,
        "the restarted service",
    )
    second = fetch(port)
    assert first != second and second.startswith(b"hello "), (first, second)
    restarted = find_process(run.run.proc.pid, "listen_server.py")
    assert restarted.fds() == [0, 1, 2, 3]
    assert restarted.environ()["LISTEN_PID"] == str(restarted.ns_pid)
    assert run.count_err(cinit_line("crashy.service", r"started \(pid \d+\)")) == 2
    assert run.terminate() == 0, run.report()


def test_service_start_limit_hit_fails_its_socket(boot: Booter, tmp_path: Path) -> None:
    port = free_port()
    run = boot(
        {
            "quick.socket": f"[Socket]\nListenStream=127.0.0.1:{port}\n",
            "quick.service": "[Unit]\nStartLimitBurst=3\n[Service]\nExecStart=/bin/true\n",
        }
    )
    wait_listening(port)
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        run.wait_err(cinit_line("quick.socket", r"failed \(service-start-limit-hit\): .*"))
    assert run.count_err(cinit_line("quick.service", r"started \(pid \d+\)")) == 3, run.report()
    assert run.count_err(cinit_line("quick.service", r"failed \(start-limit-hit\)")) == 1
    assert run.count_err(r"trigger-limit-hit") == 0
    assert run.alive()
    assert run.terminate() == 0, run.report()


def test_service_pulled_in_at_boot_by_requires_still_inherits_its_listeners(
    boot: Booter, tmp_path: Path, shared_dir: Path
) -> None:
    path = shared_dir / "bus.sock"
    seen = tmp_path / "seen"
    client = shell_script(tmp_path / "client.sh", f"""
        exec {PYTHON} -I -S -c "
        import socket
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(10)
        s.connect('{path}')
        open('{seen}', 'w').write(s.recv(100).decode())
        "
        """)  # fmt: skip
    report = tmp_path / "r.json"
    run = boot({
        "bus.socket": f"[Socket]\nListenStream={path}\n",
        "bus.service": f"[Service]\nExecStart={listen_server(report)}\n",
        # The seed README's pattern: a backend Requires= and After= the bus service.
        "backend.service": f"""
            [Unit]
            Requires=bus.service
            After=bus.service
            [Service]
            Type=oneshot
            ExecStart={client}
            """,
    })  # fmt: skip
    wait_until(lambda: seen.exists() and seen.read_text().endswith("\n"), 15, "the backend")
    data = json.loads(report.read_text())
    assert data["listen_fds"] == "1" and data["listen_pid"] == str(data["pid"])
    assert seen.read_text() == f"hello {data['pid']}\n"
    assert run.count_err(cinit_line("bus.service", r"started \(pid \d+\)")) == 1, run.report()
    assert run.terminate() == 0, run.report()


def test_datagram_listener_triggers_and_is_inherited(boot: Booter, tmp_path: Path) -> None:
    port = free_port()
    report = tmp_path / "r.json"
    run = boot({
        "dgram.socket": f"[Socket]\nListenDatagram=127.0.0.1:{port}\n",
        "dgram.service": f"[Service]\nExecStart={listen_server(report)}\n",
    })  # fmt: skip
    wait_until(lambda: udp_bound(port), 10, "the datagram listener" + run.report())
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.settimeout(10)
        client.sendto(b"ping", ("127.0.0.1", port))
        answer, _ = client.recvfrom(100)
    data = json.loads(report.read_text())
    assert answer == f"hello {data['pid']}\n".encode()
    assert data["fds"] == [0, 1, 2, 3] and data["listen_fds"] == "1"
    assert run.terminate() == 0, run.report()


def udp_bound(port: int) -> bool:
    for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
        if int(line.split()[1].rsplit(":", 1)[1], 16) == port:
            return True
    return False


def test_socket_whose_condition_fails_is_skipped_and_not_bound(
    boot: Booter, tmp_path: Path
) -> None:
    port = free_port()
    marker = tmp_path / "plain"
    run = boot({
        "cond.socket": f"""
            [Unit]
            ConditionPathExists={tmp_path / "absent"}
            [Socket]
            ListenStream=127.0.0.1:{port}
            """,
        "cond.service": f"[Service]\nExecStart={listen_server(tmp_path / 'r.json')}\n",
        "plain.service": f"[Service]\nType=oneshot\nExecStart=/usr/bin/touch {marker}\n",
    })  # fmt: skip
    run.wait_err(cinit_line("cond.socket", r"skipped \(ConditionPathExists=.*absent not met\)"))
    wait_until(marker.exists, 10, "the other boot service" + run.report())
    assert not tcp_listening(port)
    assert run.terminate() == 0, run.report()
