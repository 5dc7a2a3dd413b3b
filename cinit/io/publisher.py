"""The ZeroMQ side of the event stream: one XPUB socket, used by the pump thread only.

Endpoint: `--events` / `$CINIT_EVENTS`, else `ipc://<runtime dir>/events` (mode 0600).
TCP only when asked, and on loopback unless an address is given: `tcp://PORT` and
`tcp://*:PORT` bind 127.0.0.1.

Never blocking: the socket is an XPUB with XPUB_NODROP, so a send that a subscriber's
full queue (SNDHWM) cannot take fails with EAGAIN instead of vanishing unseen. The pump
keeps such events in a bounded backlog and retries; when a subscriber stays full for
`SLOW_GRACE`, such an event goes to the others only (`send_lossy`). libzmq then skips
the full subscriber silently until it has read half its queue, so the pump counts every
event sent from then on, until every subscriber's connection is read to its end
(`drained`: the socket monitor's fds, SIOCOUTQ); then it announces the count in one
`events-dropped` notice, which every subscriber can take, as it does whatever the
backlog could not hold.
Subscriptions are the only messages the socket reads: they are capped at
`MAX_SUBSCRIPTION` bytes (ZMQ_MAXMSGSIZE, as the control socket's requests are; a longer
frame drops the connection), so a peer announcing a huge frame makes libzmq allocate
nothing. XPUB also tells us when a subscriber
arrives, which lets the pump hold the events of the boot until the first subscriber is
connected (bounded by `HOLD_SECONDS`): a `cinit watch` started before cinit misses nothing.
"""

from __future__ import annotations

import errno
import os
import stat
from typing import Any

from cinit.io.log import log

EVENTS_ENV = "CINIT_EVENTS"
SEND_HWM = 10_000  # messages queued per subscriber before sends fail
HOLD_SECONDS = 0.25  # at most this long after binding, events wait for a first subscriber
MAX_SUBSCRIPTION = 64 * 1024  # as a control request (a topic is far shorter)


def events_endpoint(explicit: str | None, runtime_dir: str) -> str:
    """The endpoint to bind (see the module doc)."""
    value = explicit or os.environ.get(EVENTS_ENV) or f"ipc://{runtime_dir}/events"
    return loopback_by_default(value)


def loopback_by_default(endpoint: str) -> str:
    """`tcp://PORT` and `tcp://*:PORT` -> `tcp://127.0.0.1:PORT`; others unchanged."""
    if not endpoint.startswith("tcp://"):
        return endpoint
    rest = endpoint[len("tcp://") :]
    if rest.isdigit():
        return f"tcp://127.0.0.1:{rest}"
    if rest.startswith("*:"):
        return f"tcp://127.0.0.1:{rest[2:]}"
    return endpoint


def bind_private(socket: Any, endpoint: str, gid: int | None = None) -> None:
    """Bind `socket`; an ipc endpoint's file is made 0600, or 0660 for group `gid` (the
    control group); a stale socket file is replaced. Raises OSError (`UntrustedDirectory`)
    for an ipc endpoint in a directory another user could change."""
    path = endpoint[len("ipc://") :] if endpoint.startswith("ipc://") else None
    if path is not None:
        from cinit.io.runtime import check_trusted_dir

        # The same check as the clients': a socket where another user could replace it is
        # one they could answer in cinit's place.
        check_trusted_dir(os.path.dirname(os.path.abspath(path)))
    if path is not None and _listened_on(path):
        # libzmq would unlink it and bind anew: another cinit would silently lose it.
        raise OSError(errno.EADDRINUSE, f"another process listens on {path}")
    socket.bind(endpoint)
    if path is not None:
        # The runtime dir is 0700 (0750 for the group), so nobody else could reach the
        # file in between.
        from cinit.io.runtime import share_with_group

        share_with_group(path, gid, 0o660)


def _listened_on(path: str) -> bool:
    """Whether a live process accepts connections on the unix socket at `path`."""
    try:
        if not stat.S_ISSOCK(os.lstat(path).st_mode):
            return False
    except FileNotFoundError:
        return False
    import socket

    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    probe.settimeout(0.5)
    try:
        probe.connect(path)
    except OSError:
        return False  # refused (left by a cinit that died) or unreachable: ours to replace
    finally:
        probe.close()
    return True


class Publisher:
    """The XPUB socket: `send` one event, `poll_subscriptions` after it is readable."""

    def __init__(self, zmq: Any, context: Any, endpoint: str, gid: int | None = None) -> None:
        self.zmq = zmq
        self.endpoint = endpoint
        self.socket = context.socket(zmq.XPUB)
        self.socket.setsockopt(zmq.SNDHWM, SEND_HWM)
        self.socket.setsockopt(zmq.MAXMSGSIZE, MAX_SUBSCRIPTION)
        self.socket.setsockopt(zmq.XPUB_NODROP, 1)
        self.socket.setsockopt(zmq.XPUB_VERBOSE, 1)  # every subscriber's arrival, not the first
        self.socket.setsockopt(zmq.LINGER, 0)
        try:
            bind_private(self.socket, endpoint, gid)
        except BaseException:
            self.socket.close(linger=0)  # an open socket would make the context's term hang
            raise
        self.subscribers = 0  # subscriptions seen minus unsubscriptions (approximate)
        # The subscribers' connections (fds, from libzmq's monitor), to see whether each
        # has read everything sent to it (`drained`).
        self.connections: set[int] = set()
        self.monitor = self.socket.get_monitor_socket(
            zmq.EVENT_ACCEPTED | zmq.EVENT_DISCONNECTED | zmq.EVENT_CLOSED
        )

    def send(self, topic: bytes, payload: bytes) -> bool:
        """Publish one event; False when a subscriber's queue is full (try again later)."""
        zmq = self.zmq
        try:
            self.socket.send_multipart((topic, payload), flags=zmq.NOBLOCK)
        except zmq.Again:
            return False
        return True

    def send_lossy(self, topic: bytes, payload: bytes) -> None:
        """Publish one event to the subscribers that have room; a full one misses it."""
        zmq = self.zmq
        self.socket.setsockopt(zmq.XPUB_NODROP, 0)
        try:
            self.socket.send_multipart((topic, payload), flags=zmq.NOBLOCK)
        except zmq.Again:
            pass  # not expected without NODROP; missed like the rest
        finally:
            self.socket.setsockopt(zmq.XPUB_NODROP, 1)

    def track_connections(self) -> None:
        """Take the monitor's connection events waiting (the pump polls the monitor, so
        that its queue never fills and drops one)."""
        import struct

        zmq = self.zmq
        while True:
            try:
                frames = self.monitor.recv_multipart(flags=zmq.NOBLOCK)
            except zmq.Again:
                return
            # zmq_socket_monitor(3): frame 1 is a 16-bit event id and a 32-bit value (here
            # the connection's fd), frame 2 the endpoint. Decoded here, not with
            # zmq.utils.monitor, which imports zmq.asyncio and so asyncio (0.7 MiB of the
            # standalone build, for nothing else).
            if len(frames) != 2 or len(frames[0]) != 6:
                continue
            event, value = struct.unpack("=hi", frames[0])
            if event == zmq.EVENT_ACCEPTED:
                self.connections.add(value)
            else:
                self.connections.discard(value)

    def drained(self) -> bool:
        """Whether every subscriber's connection has been read to its end by the peer
        (nothing written to it is left in the kernel: SIOCOUTQ is 0)."""
        import fcntl
        import struct
        import termios

        self.track_connections()
        for fd in list(self.connections):
            try:
                raw = fcntl.ioctl(fd, termios.TIOCOUTQ, b"\0" * 4)  # SIOCOUTQ
            except OSError:
                self.connections.discard(fd)  # gone before its event came
                continue
            if struct.unpack("i", raw)[0]:
                return False
        return True

    def poll_subscriptions(self) -> bool:
        """Read the (un)subscription messages waiting; True when one was a subscription."""
        zmq = self.zmq
        arrived = False
        while True:
            try:
                frame = self.socket.recv(flags=zmq.NOBLOCK)
            except zmq.Again:
                return arrived
            if frame[:1] == b"\x01":
                self.subscribers += 1
                arrived = True
            elif frame[:1] == b"\x00":
                self.subscribers = max(0, self.subscribers - 1)

    def close(self, linger_ms: int) -> None:
        try:
            self.socket.disable_monitor()
            self.monitor.close(linger=0)
            self.socket.setsockopt(self.zmq.LINGER, linger_ms)
            self.socket.close()
        except Exception as exc:  # closing must not stop cinit's exit
            log(f"events: closing {self.endpoint}: {exc!r}")
