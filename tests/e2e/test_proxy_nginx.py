"""An unmodified nginx-light behind cinit's proxy relay engine (cinit.io.proxy.ProxyRelay).

The relay runs in this process, as the socket actor runs it in cinit; its on_demand starts
nginx, as the actor would start nginx.service. The same scenarios with cinit as PID 1 are in
test_proxy_pid1.py.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from proxy_support import fd_count, free_port, http_get, nginx_missing, nginx_site

from cinit.io.proxy import ProxyRelay, RelayState
from cinit.units.addresses import parse_proxy_target

pytestmark = [
    pytest.mark.timeout(90),
    pytest.mark.skipif(nginx_missing() is not None, reason=nginx_missing() or ""),
]

FILES = {f"f{i}.bin": os.urandom(1000 + i * 811) for i in range(10)}


class Nginx:
    """nginx in the foreground on 127.0.0.1:port; started on demand, killed with SIGKILL."""

    def __init__(self, root: Path) -> None:
        self.port = free_port()
        self.argv = nginx_site(root, f"127.0.0.1:{self.port}", FILES)
        self.proc: subprocess.Popen[bytes] | None = None
        self.lock = threading.Lock()

    def start(self) -> None:
        with self.lock:
            if self.proc is None or self.proc.poll() is not None:
                self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL)

    def kill(self) -> None:
        with self.lock:
            if self.proc is not None and self.proc.poll() is None:
                self.proc.send_signal(signal.SIGKILL)
                self.proc.wait(10)


@pytest.fixture
def proxied_nginx(tmp_path: Path) -> Iterator[tuple[Nginx, ProxyRelay, tuple[str, int]]]:
    server = Nginx(tmp_path / "nginx")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4096)
    relay = ProxyRelay(
        "web.socket", [listener], parse_proxy_target(f"127.0.0.1:{server.port}"),
        on_demand=server.start, on_give_up=lambda reason: None, connect_timeout=10,
    )  # fmt: skip
    relay.start()
    yield server, relay, listener.getsockname()
    relay.stop()
    listener.close()
    server.kill()


def fetch_all(address: tuple[str, int], count: int) -> list[bool]:
    names = sorted(FILES)

    def one(index: int) -> bool:
        name = names[index % len(names)]
        status, body = http_get(address, f"/{name}")
        return status == 200 and body == FILES[name]

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(one, range(count)))


def test_200_concurrent_http_requests_through_the_proxy_are_byte_exact(
    proxied_nginx: tuple[Nginx, ProxyRelay, tuple[str, int]],
) -> None:
    server, relay, address = proxied_nginx
    assert server.proc is None, "nginx is not started before the first connection"
    assert fetch_all(address, 200).count(True) == 200
    stats = relay.stats()
    assert stats["total"] == 200 and stats["refused"] == 0


def test_nginx_sigkilled_and_restarted_refuses_no_client(
    proxied_nginx: tuple[Nginx, ProxyRelay, tuple[str, int]],
) -> None:
    server, relay, address = proxied_nginx
    assert fetch_all(address, 20).count(True) == 20
    server.kill()
    relay.service_stopped()  # what the socket actor says when the service exits
    results: list[list[bool]] = []
    clients = threading.Thread(target=lambda: results.append(fetch_all(address, 50)))
    clients.start()  # they wait for nginx: on_demand starts it again
    clients.join(60)
    assert results and results[0].count(True) == 50
    assert relay.stats()["refused"] == 0
    assert relay.state is RelayState.UP


def test_nginx_killed_without_notice_new_clients_wait_for_its_restart(
    proxied_nginx: tuple[Nginx, ProxyRelay, tuple[str, int]],
) -> None:
    server, relay, address = proxied_nginx
    assert fetch_all(address, 5).count(True) == 5
    server.kill()  # no service_stopped(): the refused connect itself makes clients wait
    results: list[list[bool]] = []
    clients = threading.Thread(target=lambda: results.append(fetch_all(address, 30)))
    clients.start()
    clients.join(60)
    assert results and results[0].count(True) == 30
    assert relay.stats()["refused"] == 0


def test_1000_held_http_connections_then_fds_back_to_baseline(
    proxied_nginx: tuple[Nginx, ProxyRelay, tuple[str, int]],
) -> None:
    _, relay, address = proxied_nginx
    assert fetch_all(address, 1) == [True]
    deadline = time.monotonic() + 5
    while relay.stats()["active"] and time.monotonic() < deadline:
        time.sleep(0.01)
    baseline = fd_count()
    socks = [socket.create_connection(address, timeout=20) for _ in range(1000)]
    request = b"GET /f3.bin HTTP/1.1\r\nHost: t\r\n\r\n"  # keep-alive: nginx keeps them open
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
    assert exact == 1000
    assert relay.stats()["active"] == 1000
    for sock in socks:
        sock.close()
    deadline = time.monotonic() + 20
    while fd_count() > baseline and time.monotonic() < deadline:
        time.sleep(0.01)
    assert fd_count() <= baseline and relay.stats()["active"] == 0
