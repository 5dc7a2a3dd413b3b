"""The control endpoint's socket: a ROUTER at `ipc://<runtime dir>/control`, mode 0600.

Only the pump thread uses it. A ROUTER (not a REP) so that a start/stop/restart can be
answered later, when the unit's events show the outcome, while other requests go on
being answered. Clients are REQ sockets (or `cinit.io.control_client`, which speaks the
same ZMTP): each request is [identity, "", json]. Access control is the file's: the
runtime dir is 0700 and the socket 0600, so only root (or cinit's own user) can connect.
Messages above `MAX_REQUEST` bytes make libzmq drop the connection; a request that is not
[identity, "", body] gets an error reply when it can be routed at all, and is never fatal.
"""

from __future__ import annotations

from typing import Any

from cinit.io.log import log
from cinit.io.publisher import bind_private

MAX_REQUEST = 64 * 1024


def control_endpoint(runtime_dir: str) -> str:
    return f"ipc://{runtime_dir}/control"


class ControlServer:
    """`receive` yields (route, body) pairs; `reply(route, bytes)` answers one."""

    def __init__(self, zmq: Any, context: Any, endpoint: str, gid: int | None = None) -> None:
        self.zmq = zmq
        self.endpoint = endpoint
        self.socket = context.socket(zmq.ROUTER)
        self.socket.setsockopt(zmq.MAXMSGSIZE, MAX_REQUEST)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.SNDHWM, 100)
        try:
            bind_private(self.socket, endpoint, gid)
        except BaseException:
            self.socket.close(linger=0)  # an open socket would make the context's term hang
            raise

    def receive(self) -> list[tuple[tuple[bytes, ...], bytes]]:
        """Every request waiting now, as (route frames, body)."""
        zmq = self.zmq
        found: list[tuple[tuple[bytes, ...], bytes]] = []
        while True:
            try:
                frames = self.socket.recv_multipart(flags=zmq.NOBLOCK)
            except zmq.Again:
                return found
            if b"" in frames[1:]:
                cut = frames.index(b"", 1)
                route, body = tuple(frames[: cut + 1]), b"".join(frames[cut + 1 :])
            else:  # no delimiter (a DEALER, or garbage): answer on the identity alone
                route, body = (frames[0],), b"".join(frames[1:])
            found.append((route, body))

    def reply(self, route: tuple[bytes, ...], body: bytes) -> None:
        zmq = self.zmq
        try:
            self.socket.send_multipart([*route, body], flags=zmq.NOBLOCK)
        except zmq.Again:
            pass  # the client does not read: it will time out; never wait for it
        except zmq.ZMQError as exc:
            log(f"control: cannot reply: {exc}")

    def close(self) -> None:
        try:
            self.socket.close(linger=0)
        except Exception as exc:
            log(f"control: closing {self.endpoint}: {exc!r}")
