"""The ZeroMQ side on real sockets: endpoints, the never-blocking publisher, and the
pyzmq-free control client against a real libzmq ROUTER (`cinit.io.control_server`)."""

from __future__ import annotations

import json
import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq

from cinit.io import publisher as publisher_module
from cinit.io.control_client import ControlError, request
from cinit.io.control_server import ControlServer
from cinit.io.publisher import Publisher, events_endpoint, loopback_by_default

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def context() -> Iterator[zmq.Context[Any]]:
    ctx: zmq.Context[Any] = zmq.Context()
    yield ctx
    ctx.destroy(linger=0)


def test_tcp_is_loopback_unless_an_address_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    assert loopback_by_default("tcp://5555") == "tcp://127.0.0.1:5555"
    assert loopback_by_default("tcp://*:5555") == "tcp://127.0.0.1:5555"
    assert loopback_by_default("tcp://0.0.0.0:5555") == "tcp://0.0.0.0:5555"
    assert loopback_by_default("ipc:///x/events") == "ipc:///x/events"
    monkeypatch.delenv("CINIT_EVENTS", raising=False)
    assert events_endpoint(None, "/run/c") == "ipc:///run/c/events"
    monkeypatch.setenv("CINIT_EVENTS", "tcp://7000")
    assert events_endpoint(None, "/run/c") == "tcp://127.0.0.1:7000"
    assert events_endpoint("ipc:///e", "/run/c") == "ipc:///e"


def test_publisher_socket_is_0600_and_never_blocks_on_a_stuck_subscriber(
    tmp_path: Path, context: zmq.Context[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(publisher_module, "SEND_HWM", 10)
    path = tmp_path / "events"
    import socket

    live = context.socket(zmq.PUB)  # another cinit on the same runtime dir: not stolen
    live.bind(f"ipc://{path}")
    with pytest.raises(OSError, match="another process listens"):
        Publisher(zmq, context, f"ipc://{path}")
    live.close(linger=0)
    path.unlink(missing_ok=True)
    stale = socket.socket(socket.AF_UNIX)  # a socket file left by a cinit that died
    stale.bind(str(path))
    stale.close()
    assert path.exists()
    pub = Publisher(zmq, context, f"ipc://{path}")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    sub = context.socket(zmq.SUB)
    sub.setsockopt(zmq.RCVHWM, 10)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(f"ipc://{path}")
    assert pub.socket.poll(5000), "no subscription arrived"
    assert pub.poll_subscriptions()
    payload = b"x" * 10_000
    sent = 0
    for _ in range(5000):  # the subscriber never reads: queues and kernel buffers fill up
        if not pub.send(b"unit.a.service.ready", payload):
            break
        sent += 1
    else:
        pytest.fail("send never reported a full subscriber queue")
    assert sent >= 10
    first = sub.recv_multipart()
    assert first == [b"unit.a.service.ready", payload]
    sub.close(linger=0)
    pub.close(0)


@pytest.fixture
def router(tmp_path: Path, context: zmq.Context[Any]) -> Iterator[tuple[str, list[Any]]]:
    """A ControlServer answering each request with an echo (bodies >255 bytes included)."""
    path = str(tmp_path / "control")
    server = ControlServer(zmq, context, f"ipc://{path}")
    seen: list[Any] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            if not server.socket.poll(50):
                continue
            for route, body in server.receive():
                seen.append((route, body))
                reply = {"ok": True, "echo": body.decode(errors="replace"), "pad": "p" * 400}
                server.reply(route, json.dumps(reply).encode())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield path, seen
    stop.set()
    thread.join(5)
    server.close()


def test_control_client_speaks_zmtp_with_libzmq(router: tuple[str, list[Any]]) -> None:
    path, seen = router
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    reply = request(path, {"cmd": "status"}, 5)
    assert reply["ok"] is True and json.loads(reply["echo"]) == {"cmd": "status"}
    big = {"cmd": "status", "unit": "u" * 1000}  # a long frame on the way in
    assert json.loads(request(path, big, 5)["echo"]) == big
    assert len(seen) == 2 and seen[0][0][-1] == b""  # [identity, "", body]


def test_control_client_and_pyzmq_req_are_served_alike(
    router: tuple[str, list[Any]], context: zmq.Context[Any]
) -> None:
    path, _ = router
    req = context.socket(zmq.REQ)
    req.connect(f"ipc://{path}")
    req.send(b'{"cmd": "is-ready"}')
    assert req.poll(5000)
    assert json.loads(req.recv())["ok"] is True
    req.close(linger=0)


def test_a_dealer_without_delimiter_is_still_answered(
    router: tuple[str, list[Any]], context: zmq.Context[Any]
) -> None:
    path, _ = router
    dealer = context.socket(zmq.DEALER)
    dealer.connect(f"ipc://{path}")
    dealer.send(b"garbage")
    assert dealer.poll(5000)
    assert json.loads(dealer.recv_multipart()[-1])["echo"] == "garbage"
    dealer.close(linger=0)


def test_control_client_says_why_it_cannot_connect(tmp_path: Path) -> None:
    with pytest.raises(ControlError) as absent:
        request(str(tmp_path / "missing"), {"cmd": "status"}, 1)
    assert absent.value.reason == "absent"
    stale = tmp_path / "stale"
    import socket

    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(stale))
    listener.close()  # the file stays, nobody listens: cinit died
    with pytest.raises(ControlError) as refused:
        request(str(stale), {"cmd": "status"}, 1)
    assert refused.value.reason == "absent"


def test_control_client_times_out_on_a_silent_peer(tmp_path: Path) -> None:
    import socket

    path = str(tmp_path / "silent")
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(path)
    listener.listen()
    try:
        with pytest.raises(ControlError) as silent:
            request(path, {"cmd": "status"}, 0.3)
        assert silent.value.reason == "broken" and "no answer" in str(silent.value)
    finally:
        listener.close()
