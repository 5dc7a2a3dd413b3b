"""The proxy relay engine (cinit.io.proxy) against a real backend server in a subprocess
(tests/programs/proxy_backend.py) and real client sockets; no mocks of the kernel.

The callbacks stand in for the socket actor: on_demand records the call (and, where a test
models a restart, starts the backend), on_give_up records the reason.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from cinit.io.proxy import ProxyRelay, RelayState
from cinit.io.proxy_pump import Connection
from cinit.units.addresses import parse_proxy_target

pytestmark = pytest.mark.timeout(60)

BACKEND = Path(__file__).resolve().parents[1] / "programs" / "proxy_backend.py"


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.005)


def fd_count() -> int:
    """Open fds of this process, after collecting garbage (stray sockets of earlier tests)."""
    gc.collect()
    return len(os.listdir("/proc/self/fd"))


@dataclass
class Backend:
    """proxy_backend.py in a subprocess; `address` is what ProxyTarget= would say."""

    workdir: Path
    unix: bool = False
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    pending: threading.Timer | None = None

    @property
    def address(self) -> str:
        return f"unix:{self.workdir / 'backend.sock'}" if self.unix else f"127.0.0.1:{self.port}"

    def start(self) -> None:
        ready = self.workdir / f"ready-{time.monotonic_ns()}"
        where = (
            ["--unix", str(self.workdir / "backend.sock")]
            if self.unix
            else ["--tcp", f"127.0.0.1:{self.port}"]
        )
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-I",
                "-S",
                str(BACKEND),
                *where,
                "--record",
                str(self.workdir),
                "--ready",
                str(ready),
            ]
        )
        wait_for(ready.exists, 10, "the backend to listen")
        if not self.unix:
            self.port = int(ready.read_text())

    def start_later(self, delay: float) -> None:
        """Start after `delay` (as a supervisor would), once: later demands while a start is
        pending or the server runs are ignored, and `kill` cancels a pending one."""
        if self.pending is not None or (self.proc is not None and self.proc.poll() is None):
            return
        self.pending = threading.Timer(delay, self._start_pending)
        self.pending.start()

    def _start_pending(self) -> None:
        self.start()
        self.pending = None

    def kill(self) -> None:
        if self.pending is not None:
            self.pending.cancel()
            self.pending.join(15)
            self.pending = None
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self.proc = None


@dataclass
class Relay:
    relay: ProxyRelay
    listener: socket.socket
    demands: list[float] = field(default_factory=list)
    give_ups: list[str] = field(default_factory=list)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.listener.getsockname()[:2]
        return host, port

    def connect(self) -> socket.socket:
        return socket.create_connection(self.address, timeout=20)


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[Callable[..., Backend]]:
    started: list[Backend] = []

    def make(*, unix: bool = False, start: bool = True) -> Backend:
        server = Backend(tmp_path, unix=unix)
        if start:
            server.start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.kill()


@pytest.fixture
def relay() -> Iterator[Callable[..., Relay]]:
    made: list[Relay] = []

    def make(
        target: str,
        *,
        listener: socket.socket | None = None,
        on_demand: Callable[[], None] | None = None,
        connect_timeout: float = 10.0,
        **options: object,
    ) -> Relay:
        if listener is None:
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.bind(("127.0.0.1", 0))
            listener.listen(4096)
        holder: list[Relay] = []

        def demanded() -> None:
            holder[0].demands.append(time.monotonic())
            if on_demand is not None:
                on_demand()

        engine = ProxyRelay(
            "test.socket",
            [listener],
            parse_proxy_target(target),
            on_demand=demanded,
            on_give_up=lambda reason: holder[0].give_ups.append(reason),
            connect_timeout=connect_timeout,
            **options,  # type: ignore[arg-type]
        )
        holder.append(Relay(engine, listener))
        made.append(holder[0])
        engine.start()
        return holder[0]

    yield make
    for item in made:
        item.relay.stop()
        item.listener.close()


def recv_all(sock: socket.socket) -> bytes:
    chunks = []
    while True:
        chunk = sock.recv(1 << 16)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def recv_exact(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def count_request(relay: Relay, payload: bytes) -> str:
    """COUNT round trip: the backend's answer for `payload` sent then shut down."""
    with relay.connect() as sock:
        sock.sendall(b"COUNT\n" + payload)
        sock.shutdown(socket.SHUT_WR)
        return recv_all(sock).decode()


def expected_count(payload: bytes) -> str:
    return f"{len(payload)} {hashlib.sha256(payload).hexdigest()}\n"


# --- relaying ---------------------------------------------------------------------------------


@pytest.mark.parametrize("unix", [False, True], ids=["tcp-target", "unix-target"])
def test_200_concurrent_requests_are_relayed_byte_exact(
    backend: Callable[..., Backend], relay: Callable[..., Relay], unix: bool
) -> None:
    server = backend(unix=unix)
    proxy = relay(server.address)

    def one(index: int) -> bool:
        payload = os.urandom(1000 + index * 97)
        with proxy.connect() as sock:
            sock.sendall(b"ECHO\n" + payload)
            sock.shutdown(socket.SHUT_WR)
            return recv_all(sock) == payload

    with ThreadPoolExecutor(200) as pool:
        results = list(pool.map(one, range(200)))
    assert results.count(True) == 200
    stats = proxy.relay.stats()
    assert stats["total"] == 200 and stats["refused"] == 0
    assert len(proxy.demands) == 1, "only the first connection demands the service"


@pytest.mark.parametrize(
    ("use_splice", "unix"),
    [(True, False), (False, False), (True, True)],
    ids=["splice", "copy", "splice-unix-target"],
)
def test_bulk_transfer_both_ways_is_byte_exact(
    backend: Callable[..., Backend], relay: Callable[..., Relay], use_splice: bool, unix: bool
) -> None:
    server = backend(unix=unix)
    proxy = relay(server.address, use_splice=use_splice)
    payload = os.urandom(48 * 1024 * 1024)
    baseline = fd_count()
    with proxy.connect() as sock:
        sock.sendall(b"ECHO\n")
        received: list[bytes] = []
        reader = threading.Thread(target=lambda: received.append(recv_all(sock)))
        reader.start()
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        reader.join(30)
    assert hashlib.sha256(received[0]).digest() == hashlib.sha256(payload).digest()
    assert proxy.relay.stats()["bytes_out"] == len(payload)
    # Sockets and (with splice) the pipes of both directions are released.
    wait_for(lambda: fd_count() <= baseline, 5, f"fd count back to {baseline} (now {fd_count()})")


def test_1000_held_connections_byte_exact_and_fds_back_to_baseline(
    backend: Callable[..., Backend], relay: Callable[..., Relay]
) -> None:
    server = backend()
    proxy = relay(server.address)
    assert count_request(proxy, b"warm-up") == expected_count(b"warm-up")  # target up
    wait_for(lambda: proxy.relay.stats()["active"] == 0, 5, "the warm-up to close")
    baseline = fd_count()
    clients = [proxy.connect() for _ in range(1000)]
    payloads = [os.urandom(512) + i.to_bytes(4, "big") for i in range(1000)]
    for sock, payload in zip(clients, payloads, strict=True):
        sock.sendall(b"ECHO\n" + payload)
    echoed = [recv_exact(sock, len(p)) for sock, p in zip(clients, payloads, strict=True)]
    assert sum(e == p for e, p in zip(echoed, payloads, strict=True)) == 1000
    assert proxy.relay.stats()["active"] == 1000, "all 1,000 are held at once"
    for sock in clients:
        sock.close()
    wait_for(lambda: proxy.relay.stats()["active"] == 0, 20, "the relay to close all 1,000")
    wait_for(lambda: fd_count() <= baseline, 5, f"fd count back to {baseline} (now {fd_count()})")


def test_client_half_close_reaches_the_target_and_the_answer_still_flows(
    backend: Callable[..., Backend], relay: Callable[..., Relay]
) -> None:
    proxy = relay(backend().address)
    payload = os.urandom(300_000)
    # The backend answers only after it has seen the client's end of stream.
    assert count_request(proxy, payload) == expected_count(payload)


def test_target_half_close_reaches_the_client_and_the_client_still_sends(
    backend: Callable[..., Backend], relay: Callable[..., Relay], tmp_path: Path
) -> None:
    proxy = relay(backend().address)
    after = os.urandom(200_000)
    with proxy.connect() as sock:
        sock.sendall(b"SPEAK 70000 half\n")
        spoken = recv_all(sock)  # ends with the target's shutdown(SHUT_WR), relayed
        assert spoken == (bytes(range(256)) * 274)[:70000]
        sock.sendall(after)  # the client -> target direction is still open
        sock.shutdown(socket.SHUT_WR)
        record = tmp_path / "half"
        wait_for(record.exists, 10, "the backend to record what it read after its shutdown")
        assert record.read_text() == f"{len(after)} {hashlib.sha256(after).hexdigest()}"


def test_target_reset_resets_the_client(
    backend: Callable[..., Backend], relay: Callable[..., Relay]
) -> None:
    proxy = relay(backend().address)
    with proxy.connect() as sock:
        sock.sendall(b"RESET\n")
        with pytest.raises(ConnectionResetError):
            recv_all(sock)
    wait_for(lambda: proxy.relay.stats()["active"] == 0, 5, "both sides to be closed")


def test_client_reset_resets_the_target(
    backend: Callable[..., Backend], relay: Callable[..., Relay], tmp_path: Path
) -> None:
    proxy = relay(backend().address)
    sock = proxy.connect()
    sock.sendall(b"WATCH rst\nhello")
    assert recv_exact(sock, 5) == b"hello"
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
    sock.close()  # an RST
    wait_for((tmp_path / "rst").exists, 10, "the backend to see the end of the connection")
    assert (tmp_path / "rst").read_text() == "reset"
    wait_for(lambda: proxy.relay.stats()["active"] == 0, 5, "both sides to be closed")


def test_client_clean_close_is_a_clean_close_at_the_target(
    backend: Callable[..., Backend], relay: Callable[..., Relay], tmp_path: Path
) -> None:
    proxy = relay(backend().address)
    with proxy.connect() as sock:
        sock.sendall(b"WATCH fin\nhi")
        assert recv_exact(sock, 2) == b"hi"
    wait_for((tmp_path / "fin").exists, 10, "the backend to see the end of the connection")
    assert (tmp_path / "fin").read_text() == "eof"


# --- target availability ----------------------------------------------------------------------


def test_first_connection_demands_the_service_and_waits_for_it(
    backend: Callable[..., Backend], relay: Callable[..., Relay]
) -> None:
    server = backend(start=False)
    server.port = _free_port()
    proxy = relay(server.address, on_demand=lambda: server.start_later(0.4))
    assert proxy.demands == [], "nothing is demanded before a connection"
    started = time.monotonic()
    assert count_request(proxy, b"first") == expected_count(b"first")
    assert len(proxy.demands) == 1 and proxy.demands[0] - started < 0.4
    assert proxy.relay.state is RelayState.UP
    assert proxy.relay.stats()["refused"] == 0


def test_target_never_coming_up_closes_the_waiting_clients_and_gives_up(
    relay: Callable[..., Relay],
) -> None:
    port = _free_port()
    proxy = relay(f"127.0.0.1:{port}", connect_timeout=0.5)
    clients = [proxy.connect() for _ in range(3)]
    for sock in clients:
        sock.sendall(b"ECHO\nhello")
    started = time.monotonic()
    for sock in clients:
        # Closed with our unread bytes in its buffer, the kernel may send an RST instead of EOF.
        with contextlib.suppress(ConnectionResetError):
            assert recv_all(sock) == b""
        sock.close()
    waited = time.monotonic() - started
    assert 0.3 < waited < 5, waited
    wait_for(lambda: len(proxy.give_ups) == 1, 5, "on_give_up")
    reason = proxy.give_ups[0]
    assert reason.startswith("no connection within 0.5 s"), reason
    assert "refused" in reason.lower(), reason  # the last connect error is named
    stats = proxy.relay.stats()
    assert stats["refused"] == 3 and stats["active"] == 0
    assert proxy.relay.state is RelayState.IDLE
    # The next connection is a new demand.
    late = proxy.connect()
    wait_for(lambda: len(proxy.demands) == 2, 5, "a second on_demand")
    late.close()


def test_backend_sigkill_and_restart_refuses_no_client(
    backend: Callable[..., Backend], relay: Callable[..., Relay]
) -> None:
    server = backend()
    proxy = relay(server.address)
    assert count_request(proxy, b"before") == expected_count(b"before")
    stop = threading.Event()
    failures: list[str] = []
    done = [0]

    def client_loop(index: int) -> None:
        while not stop.is_set():
            payload = os.urandom(2000) + index.to_bytes(2, "big")
            try:
                answer = count_request(proxy, payload)
            except OSError as exc:
                failures.append(repr(exc))
                continue
            if answer != expected_count(payload):
                failures.append(f"wrong answer {answer!r}")
            done[0] += 1

    # Clients start only between requests: a request in flight when the backend dies is
    # lost with it (as without a proxy); a new one must wait, not be refused.
    server.kill()
    threads = [threading.Thread(target=client_loop, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    time.sleep(0.5)  # clients wait meanwhile
    assert done[0] == 0
    server.start()
    wait_for(lambda: done[0] >= 200, 20, "200 requests after the restart")
    stop.set()
    for thread in threads:
        thread.join(20)
    assert failures == []
    assert proxy.relay.stats()["refused"] == 0


def test_after_service_stopped_new_traffic_demands_the_service_again(
    backend: Callable[..., Backend], relay: Callable[..., Relay]
) -> None:
    server = backend()
    proxy = relay(server.address, on_demand=lambda: server.start_later(0.2))
    assert count_request(proxy, b"one") == expected_count(b"one")  # target already up
    assert len(proxy.demands) == 1
    server.kill()
    proxy.relay.service_stopped()
    wait_for(lambda: proxy.relay.state is RelayState.IDLE, 5, "the relay to forget the target")
    assert count_request(proxy, b"two") == expected_count(b"two")  # waits for the restart
    assert len(proxy.demands) == 2


# --- guards -----------------------------------------------------------------------------------


def test_self_connect_guard_refuses_with_a_clear_reason(relay: Callable[..., Relay]) -> None:
    listener = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    listener.bind(("::", 0))
    listener.listen(16)
    port = listener.getsockname()[1]
    proxy = relay(f"127.0.0.1:{port}", listener=listener)
    assert proxy.relay.state is RelayState.REFUSING
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        assert recv_all(sock) == b""
    wait_for(lambda: len(proxy.give_ups) == 1, 5, "on_give_up")
    reason = proxy.give_ups[0]
    assert reason.startswith("it is this socket's own listening address ([::]:"), reason
    assert proxy.demands == [], "a proxy to itself never starts the service"
    assert proxy.relay.stats()["refused"] == 1


def test_self_connect_guard_on_a_unix_listener(relay: Callable[..., Relay], tmp_path: Path) -> None:
    path = tmp_path / "public.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(16)
    proxy = relay(f"unix:{path}", listener=listener)
    assert proxy.relay.refusal is not None and str(path) in proxy.relay.refusal


def test_a_different_target_is_not_mistaken_for_itself(relay: Callable[..., Relay]) -> None:
    proxy = relay(f"127.0.0.1:{_free_port()}")
    assert proxy.relay.refusal is None and proxy.relay.state is RelayState.IDLE


def test_above_the_cap_clients_wait_in_the_backlog_until_one_closes(
    backend: Callable[..., Backend], relay: Callable[..., Relay]
) -> None:
    proxy = relay(backend().address, max_connections=3)
    held = [proxy.connect() for _ in range(3)]
    for sock in held:
        sock.sendall(b"ECHO\nx")
        assert recv_exact(sock, 1) == b"x"
    extra = proxy.connect()  # the kernel completes the handshake; the relay does not accept
    extra.sendall(b"ECHO\nwaiting")
    extra.settimeout(0.5)
    with pytest.raises(TimeoutError):
        extra.recv(100)
    assert proxy.relay.stats()["active"] == 3
    held.pop().close()
    extra.settimeout(10)
    assert recv_exact(extra, 7) == b"waiting"
    assert proxy.relay.stats()["refused"] == 0
    for sock in [*held, extra]:
        sock.close()


def test_stop_closes_relayed_connections_and_releases_fds(
    backend: Callable[..., Backend], tmp_path: Path
) -> None:
    server = backend()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    baseline = fd_count()
    engine = ProxyRelay(
        "stop.socket",
        [listener],
        parse_proxy_target(server.address),
        on_demand=lambda: None,
        on_give_up=lambda _: None,
        connect_timeout=5,
    )
    engine.start()
    clients = [socket.create_connection(listener.getsockname(), timeout=10) for _ in range(20)]
    for sock in clients:
        sock.sendall(b"ECHO\nz")
        assert recv_exact(sock, 1) == b"z"
    engine.stop()
    for sock in clients:
        assert recv_all(sock) == b""  # closed by the relay
        sock.close()
    assert fd_count() <= baseline
    listener.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_error_inside_the_loop_resets_that_connection_and_the_loop_goes_on(
    backend: Callable[..., Backend], relay: Callable[..., Relay]
) -> None:
    proxy = relay(backend().address)
    assert count_request(proxy, b"warm") == expected_count(b"warm")
    engine = proxy.relay
    wait_for(lambda: engine.stats()["active"] == 0, 5, "the warm-up connection to close")
    pump = engine._pump
    real_pump = pump.pump
    failed: list[bool] = []

    def pump_failing_once(conn: Connection) -> bool:
        if not failed:
            failed.append(True)
            raise RuntimeError("injected failure")
        return real_pump(conn)

    pump.pump = pump_failing_once  # type: ignore[method-assign]
    # That connection is reset (the RST may even beat the end of connect()) ...
    with contextlib.suppress(ConnectionResetError, BrokenPipeError), proxy.connect() as sock:
        sock.sendall(b"ECHO\nboom")
        assert recv_all(sock) == b""
    assert failed == [True]
    assert count_request(proxy, b"after") == expected_count(b"after")  # ... the next works
    assert engine._thread is not None and engine._thread.is_alive()


def test_a_unix_listener_relays_to_a_tcp_target(
    backend: Callable[..., Backend], relay: Callable[..., Relay], tmp_path: Path
) -> None:
    path = tmp_path / "public.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(64)
    relay(backend().address, listener=listener)
    payload = os.urandom(500_000)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(20)
        sock.connect(str(path))
        sock.sendall(b"COUNT\n" + payload)
        sock.shutdown(socket.SHUT_WR)
        assert recv_all(sock).decode() == expected_count(payload)


def test_a_busy_unix_target_with_a_full_backlog_makes_clients_wait_not_fail(
    relay: Callable[..., Relay], tmp_path: Path
) -> None:
    path = tmp_path / "busy.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)  # connects beyond the backlog fail with EAGAIN (non-blocking unix)
    stop = threading.Event()

    def serve_slowly() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            time.sleep(0.01)
            threading.Thread(target=lambda c=conn: (c.sendall(c.recv(100)), c.close())).start()

    acceptor = threading.Thread(target=serve_slowly)
    acceptor.start()
    try:
        proxy = relay(f"unix:{path}")

        def one(index: int) -> bool:
            with proxy.connect() as sock:
                sock.sendall(f"hello {index}".encode())
                return recv_all(sock) == f"hello {index}".encode()

        with ThreadPoolExecutor(40) as pool:
            assert list(pool.map(one, range(40))).count(True) == 40
        assert proxy.give_ups == [] and proxy.relay.stats()["refused"] == 0
    finally:
        stop.set()
        acceptor.join(5)
        server.close()


_LOW_FD_DRIVER = """
import resource, socket, sys, time
from cinit.io.proxy import ProxyRelay
from cinit.units.addresses import parse_proxy_target
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(512)
relay = ProxyRelay("lowfd.socket", [listener], parse_proxy_target(sys.argv[1]),
                   on_demand=lambda: None, on_give_up=print, connect_timeout=10)
relay.start()
resource.setrlimit(resource.RLIMIT_NOFILE, (64, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
print(listener.getsockname()[1], flush=True)
sys.stdin.read()  # until the test closes our stdin
print("STATS", relay.stats(), flush=True)
relay.stop()
"""


def test_out_of_fds_clients_wait_and_are_served_once_fds_come_back(
    backend: Callable[..., Backend],
) -> None:
    """The relay in a process limited to 64 fds: 60 held connections need ~120. The ones
    that do not fit wait (in the backlog, or accepted with the target connect retried) and
    are served as fds come back; none is refused while some connection is relayed."""
    server = backend()
    proc = subprocess.Popen(
        [sys.executable, "-c", _LOW_FD_DRIVER, server.address],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[2], text=True,
        env=dict(os.environ, CINIT_VERBOSE="1"),
    )  # fmt: skip
    assert proc.stdout is not None and proc.stdin is not None
    try:
        port = int(proc.stdout.readline())
        clients = [socket.create_connection(("127.0.0.1", port), timeout=20) for _ in range(60)]
        for index, sock in enumerate(clients):
            sock.sendall(f"ECHO\n{index:04d}".encode())
        time.sleep(0.5)  # what fits in 64 fds is served by now
        served = {i for i, sock in enumerate(clients) if _echoed(sock, f"{i:04d}", 0.01)}
        assert 0 < len(served) < 60, f"{len(served)} served: the fd limit did not bite"
        for index in sorted(served):
            clients[index].close()  # free fds: the others are served now
        pending = {sock: index for index, sock in enumerate(clients) if index not in served}
        while pending:  # each client closes once served (in whatever order they are)
            ready, _, _ = select.select(list(pending), [], [], 10)
            assert ready, f"{sorted(pending.values())} never served"
            for sock in ready:
                index = pending.pop(sock)
                assert _echoed(sock, f"{index:04d}", 5), f"client {index}: wrong echo"
                sock.close()
        out, err = proc.communicate(timeout=20)  # closes its stdin: it prints stats, stops
    finally:
        proc.kill()
    assert "'refused': 0" in out, out + err
    assert "Too many open files" in err, err  # said, not silent


def _echoed(sock: socket.socket, text: str, timeout: float) -> bool:
    sock.settimeout(timeout)
    try:
        return recv_exact(sock, len(text)) == text.encode()
    except TimeoutError:
        return False


def test_out_of_fds_with_nothing_relayed_refuses_the_newest_to_serve_the_oldest(
    backend: Callable[..., Backend],
) -> None:
    """Clients pile up while the target is down until they hold every fd; when it comes up
    there is no fd left even for one target connection and nothing relayed that could give
    one back: the relay refuses the newest waiting clients, one per retry round, so the
    oldest are served instead of everybody waiting for ever."""
    server = backend(start=False)
    server.port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", _LOW_FD_DRIVER, server.address],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[2], text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        port = int(proc.stdout.readline())
        clients = [socket.create_connection(("127.0.0.1", port), timeout=20) for _ in range(70)]
        for index, sock in enumerate(clients):
            sock.sendall(f"ECHO\n{index:04d}".encode())
        time.sleep(0.3)  # the relay accepts until it is out of fds
        server.start()
        assert _echoed(clients[0], "0000", 10), "the oldest client is served"
        for sock in clients:
            sock.close()
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert "no connection relayed: refusing a waiting client" in err, err
    assert "'refused': 0" not in out, out


def test_service_stopped_while_clients_wait_asks_for_the_service_again(
    backend: Callable[..., Backend], relay: Callable[..., Relay]
) -> None:
    """A demand made while the supervisor still sees the service running is ignored by it;
    when the service is then reported stopped, the waiting client must not be forgotten."""
    server = backend(start=False)
    server.port = _free_port()
    ignored_first: list[bool] = []

    def on_demand() -> None:
        if ignored_first:
            server.start_later(0.1)
        ignored_first.append(True)

    proxy = relay(server.address, on_demand=on_demand)
    waiter: list[str] = []
    client = threading.Thread(target=lambda: waiter.append(count_request(proxy, b"waiting")))
    client.start()
    wait_for(lambda: len(proxy.demands) == 1, 5, "the first (ignored) demand")
    time.sleep(0.2)
    assert waiter == []
    proxy.relay.service_stopped()
    client.join(20)
    assert waiter == [expected_count(b"waiting")]
    assert len(proxy.demands) == 2


_NAMED_TARGET_DRIVER = """
import socket, sys
from cinit.io.proxy import ProxyRelay
from cinit.units.addresses import parse_proxy_target
print([a[4] for a in socket.getaddrinfo("proxytest", 1, type=socket.SOCK_STREAM)], flush=True)
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(64)
relay = ProxyRelay("named.socket", [listener], parse_proxy_target(sys.argv[1]),
                   on_demand=lambda: None, on_give_up=print, connect_timeout=10)
relay.start()
print(listener.getsockname()[1], flush=True)
sys.stdin.read()
relay.stop()
"""


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None,
    reason="needs root and unshare to give the relay its own /etc/hosts",
)
def test_a_host_name_target_tries_each_of_its_addresses(
    backend: Callable[..., Backend], tmp_path: Path
) -> None:
    """`proxytest` resolves to ::1 first and 127.0.0.1 second (a private /etc/hosts bound in
    a mount namespace); the server listens on 127.0.0.1 only: the relay must move on."""
    server = backend()
    hosts = tmp_path / "hosts"
    hosts.write_text("::1 proxytest\n127.0.0.1 proxytest\n")
    proc = subprocess.Popen(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c",
         'mount --bind "$0" /etc/hosts && exec "$@"', str(hosts),
         sys.executable, "-c", _NAMED_TARGET_DRIVER, f"proxytest:{server.port}"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        resolved = proc.stdout.readline()
        assert "::1" in resolved.split("127.0.0.1")[0], f"::1 is not tried first: {resolved}"
        port = int(proc.stdout.readline())
        for round_number in range(3):
            payload = f"named {round_number}".encode()
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                sock.sendall(b"COUNT\n" + payload)
                sock.shutdown(socket.SHUT_WR)
                assert recv_all(sock).decode() == expected_count(payload)
        proc.communicate(timeout=20)
    finally:
        proc.kill()
