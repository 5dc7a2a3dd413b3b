"""Proxy socket activation with cinit as PID 1: a `.socket` with ActivationMode=proxy in front
of an unmodified nginx-light (and tests/programs/proxy_backend.py for the byte-level cases).

PID 1's fd table is read from outside the namespace (/proc/<cinit's host pid>/fd).
"""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from e2e_support import PYTHON, TESTS, Boot, cinit_line, wait_until
from proxy_support import fd_count, free_port, http_get, nginx_missing, nginx_site
from sockets_support import namespace_processes

pytestmark = [pytest.mark.pid1, pytest.mark.timeout(120)]

Booter = Callable[..., Boot]
FILES = {f"f{i}.bin": os.urandom(1000 + i * 811) for i in range(10)}
BACKEND = TESTS / "programs" / "proxy_backend.py"
needs_nginx = pytest.mark.skipif(nginx_missing() is not None, reason=nginx_missing() or "")


def proxy_socket(port: int, target: str, extra: str = "") -> str:
    return (
        f"[Socket]\nListenStream=127.0.0.1:{port}\nActivationMode=proxy\n"
        f"ProxyTarget={target}\n{extra}"
    )


def nginx_units(tmp_path: Path, port: int, service_extra: str = "") -> dict[str, str]:
    nginx_port = free_port()
    argv = nginx_site(tmp_path / "nginx", f"127.0.0.1:{nginx_port}", FILES)
    return {
        "web.socket": proxy_socket(port, f"127.0.0.1:{nginx_port}"),
        "web.service": f"[Service]\nExecStart={' '.join(argv)}\n{service_extra}",
    }


def cinit_host_pid(run: Boot) -> int:
    for process in namespace_processes(run.run.proc.pid):
        if process.ns_pid == 1:
            return process.host_pid
    raise AssertionError("no PID 1 in the namespace" + run.report())


def nginx_pids(run: Boot) -> list[int]:
    processes = namespace_processes(run.run.proc.pid)
    return [p.host_pid for p in processes if p.argv and p.argv[0].endswith("/nginx")]


def service_running(run: Boot, needle: str) -> bool:
    return any(needle in " ".join(p.argv) for p in namespace_processes(run.run.proc.pid))


def fetch_all(port: int, count: int) -> list[bool]:
    names = sorted(FILES)

    def one(index: int) -> bool:
        name = names[index % len(names)]
        try:
            status, body = http_get(("127.0.0.1", port), f"/{name}")
        except OSError:
            return False
        return status == 200 and body == FILES[name]

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(one, range(count)))


def wait_bound(port: int, run: Boot) -> None:
    def bound() -> bool:
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                return True
            return False

    wait_until(lambda: bound() or not run.alive(), 15, f"cinit to bind port {port}")
    assert run.alive(), run.report()


@needs_nginx
def test_200_concurrent_http_requests_through_pid1_proxy_are_byte_exact(
    boot: Booter, tmp_path: Path
) -> None:
    port = free_port()
    run = boot(nginx_units(tmp_path, port))
    wait_bound(port, run)
    time.sleep(0.3)
    assert nginx_pids(run) == [], "nginx must not start before the first connection"
    results = fetch_all(port, 200)
    assert results.count(True) == 200, run.report()
    assert len(nginx_pids(run)) == 1


@needs_nginx
def test_nginx_sigkilled_is_restarted_and_no_client_is_refused(
    boot: Booter, tmp_path: Path
) -> None:
    port = free_port()
    run = boot(nginx_units(tmp_path, port, "Restart=always\nRestartSec=200ms\n"))
    wait_bound(port, run)
    assert fetch_all(port, 20).count(True) == 20, run.report()
    [first] = nginx_pids(run)
    os.kill(first, signal.SIGKILL)
    # A request already queued at nginx when it dies is lost with it, as without a proxy;
    # clients arriving once it is dead, and until it is back, wait: none is refused.
    run.wait_err(cinit_line("web.service", r"exited \(signal=SIGKILL\)"))
    results = fetch_all(port, 100)
    assert results.count(True) == 100, run.report()
    [second] = nginx_pids(run)
    assert second != first
    assert run.alive()


@needs_nginx
def test_pid1_fd_count_back_to_baseline_after_1000_held_connections(
    boot: Booter, tmp_path: Path
) -> None:
    port = free_port()
    run = boot(nginx_units(tmp_path, port))
    wait_bound(port, run)
    assert fetch_all(port, 1) == [True], run.report()
    pid1 = cinit_host_pid(run)
    time.sleep(0.5)  # boot-time fds (event bus, log relays) settle
    baseline = fd_count(pid1)
    socks = [socket.create_connection(("127.0.0.1", port), timeout=20) for _ in range(1000)]
    try:
        request = b"GET /f3.bin HTTP/1.1\r\nHost: t\r\n\r\n"  # keep-alive: all stay open
        for sock in socks:
            sock.sendall(request)
        exact = 0
        for sock in socks:
            data = b""
            while not data.endswith(FILES["f3.bin"]) and len(data) < 20000:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
            exact += data.endswith(FILES["f3.bin"])
        assert exact == 1000, run.report()
        assert fd_count(pid1) >= baseline + 2000, "PID 1 holds both ends of all 1,000"
    finally:
        for sock in socks:
            sock.close()
    wait_until(lambda: fd_count(pid1) <= baseline, 20, f"PID 1's fd count back to {baseline}")
    assert fd_count(pid1) <= baseline  # nothing the 1,000 connections opened is left


def backend_units(tmp_path: Path, port: int, extra: str = "") -> dict[str, str]:
    sock_path = tmp_path / "backend.sock"
    exec_start = f"{PYTHON} -I -S {BACKEND} --unix {sock_path} --record {tmp_path}"
    return {
        "app.socket": proxy_socket(port, f"unix:{sock_path}"),
        "app.service": f"[Service]\nExecStart={exec_start}\n{extra}",
    }


def test_half_close_both_ways_through_pid1_proxy(boot: Booter, tmp_path: Path) -> None:
    port = free_port()
    run = boot(backend_units(tmp_path, port))
    wait_bound(port, run)
    payload = os.urandom(200_000)
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(b"COUNT\n" + payload)
        sock.shutdown(socket.SHUT_WR)  # the backend answers only once it sees this EOF
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.decode() == f"{len(payload)} {hashlib.sha256(payload).hexdigest()}\n"
    after = os.urandom(100_000)
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(b"SPEAK 5000 speak\n")
        spoken = b""
        while chunk := sock.recv(65536):  # ends with the backend's shutdown(SHUT_WR)
            spoken += chunk
        assert len(spoken) == 5000
        sock.sendall(after)
        sock.shutdown(socket.SHUT_WR)
        wait_until((tmp_path / "speak").exists, 10, "the backend's record")
    assert (tmp_path / "speak").read_text() == f"{len(after)} {hashlib.sha256(after).hexdigest()}"


def test_target_never_coming_up_closes_clients_and_fails_the_socket(
    boot: Booter, tmp_path: Path
) -> None:
    port = free_port()
    dead = tmp_path / "never.sock"
    run = boot({
        "app.socket": proxy_socket(port, f"unix:{dead}"),
        "app.service": "[Service]\nExecStart=/bin/sleep 1000\nTimeoutStartSec=1\n",
    })  # fmt: skip
    wait_bound(port, run)
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(b"hello")
        try:
            data = sock.recv(100)
        except ConnectionResetError:
            data = b""
    waited = time.monotonic() - started
    assert data == b"" and 0.8 < waited < 10, (data, waited)
    line = run.wait_err(r"^cinit: app\.socket: failed.*$", timeout=10).group(0)
    assert f"unix:{dead}" in line or str(dead) in line, line
    assert run.alive(), "a failed socket never takes PID 1 down"


def test_after_a_clean_exit_new_traffic_starts_the_service_again(
    boot: Booter, tmp_path: Path
) -> None:
    port = free_port()
    sock_path = tmp_path / "once.sock"
    starts = tmp_path / "starts"
    # Serves one ECHO connection, then exits 0 (Restart=no): only traffic can start it again.
    once = (
        f'{PYTHON} -I -S -c "import socket,os;s=socket.socket(socket.AF_UNIX);'
        f"os.path.exists('{sock_path}') and os.unlink('{sock_path}');s.bind('{sock_path}');"
        f"s.listen(8);open('{starts}','a').write('x');c,_=s.accept();"
        f'c.sendall(c.recv(100));c.close()"'
    )
    run = boot({
        "app.socket": proxy_socket(port, f"unix:{sock_path}"),
        "app.service": f"[Service]\nExecStart={once}\n",
    })  # fmt: skip
    wait_bound(port, run)
    for round_number in (1, 2):
        with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
            sock.sendall(f"ping{round_number}".encode())
            assert sock.recv(100) == f"ping{round_number}".encode(), run.report()
        wait_until(lambda: not service_running(run, str(sock_path)), 10, "the service to exit")
    assert starts.read_text() == "xx"
