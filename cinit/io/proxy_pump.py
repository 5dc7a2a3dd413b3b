"""Moving the bytes of proxied connections (used by `cinit.io.proxy.ProxyRelay`'s loop).

A `Connection` is a client socket and, once connected, its target socket, with the readiness
the edge-triggered epoll loop has seen on each (`note_events`). `Pump.pump` moves whatever can
be moved now, in both directions, without blocking:

- bytes read from one side are written to the other; what the receiver cannot take yet is held
  (at most one read, 256 KiB, or one pipe, 1 MiB) and that side is not read again until it is
  written (backpressure: the sender's kernel buffers fill and it is slowed);
- end of stream on one side becomes `shutdown(SHUT_WR)` on the other once the held bytes are
  written, and the other direction keeps flowing; `pump` says when both directions have ended;
- a direction that moves a full read at a time switches to zero-copy `os.splice` through a pipe
  of its own (small request/response traffic stays on recv/send and costs no extra fds);
- a reset or any other socket error is raised as OSError: the caller resets both sides.

Readiness flags follow epoll(7) for edge-triggered stream sockets: a side stays readable until a
read comes back short (or EAGAIN) and writable until a write is short (or EAGAIN); once end of
stream or an error has been seen, it is read until recv says so.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import socket
from enum import Enum

CLIENT, TARGET = 0, 1
SCRATCH_SIZE = 256 * 1024  # one read; also the most a copying direction holds
PIPE_SIZE = 1024 * 1024  # one splice; the most a splicing direction holds

_READ_EVENTS = select.EPOLLIN | select.EPOLLRDHUP | select.EPOLLHUP | select.EPOLLERR
_GONE_EVENTS = select.EPOLLRDHUP | select.EPOLLHUP | select.EPOLLERR
WRITE_EVENTS = select.EPOLLOUT | select.EPOLLHUP | select.EPOLLERR
_SPLICE_FLAGS = os.SPLICE_F_MOVE | os.SPLICE_F_NONBLOCK


class Phase(Enum):
    WAITING = "waiting"  # accepted; no target connection yet
    CONNECTING = "connecting"
    RELAYING = "relaying"
    CLOSED = "closed"


class Leg:
    """One direction of a connection: bytes read from side `src` are written to side `dst`."""

    __slots__ = ("dst", "eof", "held", "in_pipe", "pipe_r", "pipe_w", "shut", "src")

    def __init__(self, src: int, dst: int) -> None:
        self.src = src
        self.dst = dst
        self.held = b""  # read but not yet written (copy mode)
        self.eof = False  # src reached end of stream
        self.shut = False  # eof forwarded: dst was shut down for writing
        self.pipe_r = -1  # splice mode when >= 0
        self.pipe_w = -1
        self.in_pipe = 0  # bytes spliced into the pipe, not yet out of it


class Connection:
    """A client connection and (once connected) its target connection."""

    __slots__ = ("fds", "hup", "legs", "phase", "readable", "socks", "writable")

    def __init__(self, client: socket.socket) -> None:
        self.socks: list[socket.socket | None] = [client, None]
        self.fds = [client.fileno(), -1]
        self.readable = [False, False]
        self.writable = [False, False]
        self.hup = [False, False]  # end of stream or error seen: read until recv says so
        self.legs = (Leg(CLIENT, TARGET), Leg(TARGET, CLIENT))
        self.phase = Phase.WAITING

    def note_events(self, side: int, mask: int) -> None:
        """Record an epoll event mask seen on `side`."""
        if mask & _READ_EVENTS:
            self.readable[side] = True
            if mask & _GONE_EVENTS:
                self.hup[side] = True
        if mask & WRITE_EVENTS:
            self.writable[side] = True

    def forget_target(self) -> None:
        """The target socket is gone (a failed connect): no readiness left for it."""
        self.socks[TARGET] = None
        self.fds[TARGET] = -1
        self.readable[TARGET] = self.writable[TARGET] = self.hup[TARGET] = False

    def pipe_fds(self) -> list[int]:
        """The splice pipes' fds (for closing), forgotten here."""
        fds: list[int] = []
        for leg in self.legs:
            if leg.pipe_r >= 0:
                fds += [leg.pipe_r, leg.pipe_w]
                leg.pipe_r = leg.pipe_w = -1
        return fds


class Pump:
    """Moves bytes for every connection of one relay (one thread: one shared read buffer)."""

    def __init__(self, use_splice: bool = True) -> None:
        self.use_splice = use_splice
        self.bytes_in = 0  # client to target
        self.bytes_out = 0  # target to client
        self._view = memoryview(bytearray(SCRATCH_SIZE))

    def pump(self, conn: Connection) -> bool:
        """Move what can be moved now both ways; True once both directions have ended.

        Raises OSError when a side was reset or failed.
        """
        up, down = conn.legs
        self._pump_leg(conn, up)
        self._pump_leg(conn, down)
        return up.shut and down.shut

    def _count(self, src: int, moved: int) -> None:
        if src == CLIENT:
            self.bytes_in += moved
        else:
            self.bytes_out += moved

    def _pump_leg(self, conn: Connection, leg: Leg) -> None:
        if leg.pipe_r >= 0:
            self._splice_leg(conn, leg)
            return
        src, dst = leg.src, leg.dst
        socks = conn.socks
        readable, writable, hup = conn.readable, conn.writable, conn.hup
        view = self._view
        while True:
            if leg.held:
                if not writable[dst]:
                    return
                try:
                    sent = socks[dst].send(leg.held)  # type: ignore[union-attr]
                except BlockingIOError:
                    writable[dst] = False
                    return
                if sent < len(leg.held):
                    leg.held = leg.held[sent:]
                    writable[dst] = False
                    return
                leg.held = b""
            if leg.eof:
                if not leg.shut:
                    leg.shut = True
                    socks[dst].shutdown(socket.SHUT_WR)  # type: ignore[union-attr]
                return
            if not readable[src]:
                return
            try:
                count = socks[src].recv_into(view)  # type: ignore[union-attr]
            except BlockingIOError:
                readable[src] = False
                return
            if count == 0:
                leg.eof = True
                continue
            self._count(src, count)
            if count < SCRATCH_SIZE and not hup[src]:
                readable[src] = False  # a short read from a stream drains it (epoll(7))
            sent = 0
            if writable[dst]:
                try:
                    sent = socks[dst].send(view[:count])  # type: ignore[union-attr]
                except BlockingIOError:
                    sent = 0
            if sent < count:
                leg.held = bytes(view[sent:count])
                writable[dst] = False
            elif count == SCRATCH_SIZE and self.use_splice and _open_pipe(leg):
                self._splice_leg(conn, leg)
                return

    def _splice_leg(self, conn: Connection, leg: Leg) -> None:
        src, dst = leg.src, leg.dst
        src_fd, dst_fd = conn.fds[src], conn.fds[dst]
        readable, writable = conn.readable, conn.writable
        while True:
            if leg.in_pipe:
                if not writable[dst]:
                    return
                try:
                    moved = os.splice(leg.pipe_r, dst_fd, leg.in_pipe, flags=_SPLICE_FLAGS)
                except BlockingIOError:
                    writable[dst] = False
                    return
                leg.in_pipe -= moved
                if leg.in_pipe:
                    writable[dst] = False
                    return
            if leg.eof:
                if not leg.shut:
                    leg.shut = True
                    conn.socks[dst].shutdown(socket.SHUT_WR)  # type: ignore[union-attr]
                return
            if not readable[src]:
                return
            try:
                # Not a short-read signal: a pipe fills by pages, not bytes.
                moved = os.splice(src_fd, leg.pipe_w, PIPE_SIZE, flags=_SPLICE_FLAGS)
            except BlockingIOError:
                readable[src] = False
                return
            if moved == 0:
                leg.eof = True
                continue
            leg.in_pipe = moved
            self._count(src, moved)


def _open_pipe(leg: Leg) -> bool:
    """Give `leg` a pipe for splicing; False (keep copying) when out of fds."""
    try:
        read_end, write_end = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return False
    with contextlib.suppress(OSError):
        fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
    leg.pipe_r, leg.pipe_w = read_end, write_end
    return True
