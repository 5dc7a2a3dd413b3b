"""Issue 13 item 10b: the event socket caps what a peer may send it, as the control socket does.

A peer that speaks ZMTP as a SUB and then announces a 20 GiB frame made cinit's VmSize
grow to 21.5 GB (libzmq allocated the message up front, then waited for it). With
ZMQ_MAXMSGSIZE the connection is dropped at the frame's header: the peer sees the
connection end, cinit's address space stays where it was, and cinit carries on.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable
from pathlib import Path

import pytest
from e2e_support import Boot, cinit_line, wait_until

from cinit.io.control_client import _GREETING, _frame

pytestmark = [pytest.mark.pid1, pytest.mark.timeout(60)]

Booter = Callable[..., Boot]
HUGE = 20 * 1024**3
LONG = 0x02


def vm_size_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmSize for {pid}")


def sub_handshake(sock: socket.socket) -> None:
    """ZMTP 3.0 greeting and READY as a SUB; reads the peer's greeting and READY."""
    name, value = b"Socket-Type", b"SUB"
    body = b"\x05READY" + bytes([len(name)]) + name + struct.pack(">I", len(value)) + value
    sock.sendall(_GREETING + _frame(body, 0x04))
    received = b""
    while len(received) < 64 + 2:
        chunk = sock.recv(4096)
        assert chunk, "cinit closed the connection during the handshake"
        received += chunk


def test_a_huge_frame_on_the_event_socket_drops_the_peer_not_cinit(
    boot: Booter, tmp_path: Path
) -> None:
    units = {"web.service": "[Service]\nExecStart=/bin/sleep 120\n"}
    run = boot(units)
    run.wait_err(cinit_line("web.service", "ready"), timeout=20)
    events = tmp_path / "boot" / "run" / "events"
    wait_until(events.exists, 10, "the event socket")
    pid = run.run.init_pid()
    before = vm_size_kib(pid)
    peer = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    peer.settimeout(10)
    try:
        peer.connect(str(events))
        sub_handshake(peer)
        peer.sendall(bytes([LONG]) + struct.pack(">Q", HUGE) + b"\x01" * 4096)
        try:
            ended = peer.recv(4096) == b""
        except ConnectionResetError:
            ended = True
        except TimeoutError:
            ended = False
        grown_kib = vm_size_kib(pid) - before
    finally:
        peer.close()
    assert ended, f"cinit kept the connection, waiting for a 20 GiB frame (VmSize +{grown_kib} KiB)"
    assert grown_kib < 256 * 1024, f"VmSize grew by {grown_kib} KiB"
    assert run.alive()
    assert run.terminate() == 0, run.report()
