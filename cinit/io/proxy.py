"""Proxy relay engine: `ActivationMode=proxy` sockets copy bytes between clients and ProxyTarget=.

One `ProxyRelay` per proxy socket runs one thread with one edge-triggered epoll loop for all of
its listeners and connections (no thread per connection, no pykka in here: the socket actor gives
it callbacks that only tell an actor).

Target availability is an explicit state machine (`RelayState`):

    IDLE      --client accepted-->            STARTING (on_demand(); deadline: now + timeout)
    STARTING  --a connect succeeds-->         UP (every waiting client starts its own connect)
    STARTING  --deadline passes-->            IDLE (waiting clients closed; on_give_up(reason))
    UP, IDLE  --a connect is refused-->       STARTING (that client waits; on_demand() again)
    UP        --service_stopped()-->          IDLE (relayed connections keep flowing; clients
                                              still waiting for a connect: STARTING at once)
    STARTING  --service_stopped()-->          STARTING; on_demand() again at once if clients
                                              wait, else when the next client comes
    any       --self-connect guard tripped--> REFUSING (clients closed at once; on_give_up() once)

A target that is up but busy (a unix socket whose backlog is full: EAGAIN) or a relay out of fds
is not a target going away: the client waits and retries, without a new demand.

While STARTING, one probe connect at a time is retried with a short backoff (5 ms growing to
100 ms), so clients wait for a starting or restarting service instead of being refused.
`connect_timeout` <= 0 or infinite means wait for ever (systemd's TimeoutStartSec=0/infinity).

Relaying (`cinit.io.proxy_pump`): both directions flow independently with bounded buffers
(backpressure), end of stream is forwarded as `shutdown(SHUT_WR)` (half-close), bulk directions
switch to zero-copy `os.splice`; the connection is closed when both directions have ended, and a
reset or any error on either side closes both with SO_LINGER 0 (an RST to the peer).

Connection cap (`max_connections`, default 4096, counting every accepted client still open:
waiting, connecting or relayed): at the cap the relay stops polling its listeners; new
connections stay queued in the kernel's listen backlog (Backlog=), where they wait, and accepting
resumes as soon as a connection closes. Nothing is refused by the cap itself; a client is only
refused once the backlog overflows, by the kernel (TCP clients then retry their SYN).

Out of fds (RLIMIT_NOFILE): accepting pauses for 100 ms at a time (clients wait in the backlog)
and accepted clients whose target connection cannot be opened wait and retry, first come first
served, as connections close and give fds back. Only when nothing is relayed at all (so nothing
will give an fd back) is the newest waiting client refused, one per retry round, so that the
oldest can be served. Each shortage is logged once.

A failure inside the loop never ends it: the connection concerned is logged and reset. `stop()`
closes every relayed connection and the relay's own fds; the listeners belong to the caller.
"""

from __future__ import annotations

import contextlib
import errno
import math
import os
import select
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable
from enum import Enum

from cinit.io.log import info, log
from cinit.io.proxy_pump import CLIENT, TARGET, WRITE_EVENTS, Connection, Phase, Pump
from cinit.io.proxy_target import ProxyTarget, self_connect_reason
from cinit.io.wakeup import Wakeup
from cinit.units.model import ListenAddress

__all__ = ["DEFAULT_MAX_CONNECTIONS", "ProxyRelay", "RelayState"]

DEFAULT_MAX_CONNECTIONS = 4096  # relayed at once; more wait in the listen backlog

_RETRY_FIRST = 0.005
_RETRY_MAX = 0.1
_ACCEPT_PAUSE = 0.1  # after EMFILE and friends: give fds a moment to come back

_SOCKET_EVENTS = select.EPOLLIN | select.EPOLLOUT | select.EPOLLRDHUP | select.EPOLLET
_LINGER_ZERO = struct.pack("ii", 1, 0)
_CONNECT_RETRY = frozenset({errno.EAGAIN})  # a unix target whose backlog is full: not down
_OUT_OF_FDS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


class RelayState(Enum):
    IDLE = "idle"
    STARTING = "starting"
    UP = "up"
    REFUSING = "refusing"


class ProxyRelay:
    """Relays every connection accepted on `listeners` to `target` (see the module docstring)."""

    def __init__(
        self,
        name: str,
        listeners: list[socket.socket],
        target: ListenAddress,
        *,
        on_demand: Callable[[], None],
        on_give_up: Callable[[str], None],
        connect_timeout: float,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        use_splice: bool = True,
    ) -> None:
        self.name = name
        self._listeners = list(listeners)
        self._target = ProxyTarget(target)
        self._on_demand = on_demand
        self._on_give_up = on_give_up
        timeout = float(connect_timeout)
        self._connect_timeout = timeout if 0 < timeout < math.inf else math.inf
        self._max = max(1, max_connections)
        self.refusal = self_connect_reason(self._listeners, target)
        self.state = RelayState.REFUSING if self.refusal else RelayState.IDLE

        self._epoll = select.epoll()
        self._wakeup = Wakeup()
        self._epoll.register(self._wakeup.fd, select.EPOLLIN)
        self._listener_fds = {sock.fileno(): sock for sock in self._listeners}
        self._by_fd: dict[int, tuple[Connection, int]] = {}
        self._waiting: deque[Connection] = deque()
        self._probe: Connection | None = None
        self._retry_at = math.inf
        self._retry_delay = _RETRY_FIRST
        self._deadline = math.inf
        self._demand_due = False  # STARTING after service_stopped(): the next client re-demands
        self._accepting = False
        self._resume_accept_at = math.inf
        self._to_close: list[socket.socket | int] = []
        self._last_error = ""
        self._gave_up_refusal = False
        self._cap_said = False
        self._short_of_fds = False
        self._pump = Pump(use_splice)

        self._lock = threading.Lock()
        self._stop_requested = False
        self._stopped_requested = False  # service_stopped() not yet handled by the loop
        self._thread: threading.Thread | None = None

        self._active = 0
        self._relaying = 0
        self._closes = 0
        self._closes_at_shortage = -1
        self._connects_out_of_fds = 0
        self._total = 0
        self._refused = 0

    # --- public API (any thread) ----------------------------------------------------------

    def start(self) -> None:
        """Start polling the listeners on the relay's own thread."""
        if self._thread is not None:
            return
        for sock in self._listeners:
            sock.setblocking(False)
        if self.refusal:
            log(f"{self.name}: {self.refusal}")
        self._set_accepting(True)
        self._thread = threading.Thread(target=self._run, name=f"proxy:{self.name}", daemon=True)
        self._thread.start()

    def service_stopped(self) -> None:
        """The service exited: the target is no longer known up; new traffic demands it again."""
        with self._lock:
            self._stopped_requested = True
        self._wakeup.wake()

    def stop(self) -> None:
        """Stop polling, close every relayed connection and the relay's fds; join the thread."""
        with self._lock:
            self._stop_requested = True
        self._wakeup.wake()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        if thread is None:
            self._shutdown()

    def stats(self) -> dict[str, int]:
        """Counters: active (open clients), waiting (clients waiting for the target), total
        (accepted), refused (closed without being relayed), bytes_in (client to target),
        bytes_out (target to client)."""
        return {
            "active": self._active,
            "waiting": len(self._waiting),
            "total": self._total,
            "refused": self._refused,
            "bytes_in": self._pump.bytes_in,
            "bytes_out": self._pump.bytes_out,
        }

    # --- the loop -------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._stop_requested:
                try:
                    self._iterate()
                except Exception as exc:  # never let the loop die: say it and go on
                    log(f"{self.name}: proxy loop error: {exc!r}")
                    time.sleep(0.01)
        finally:
            self._shutdown()

    def _iterate(self) -> None:
        timeout = self._next_timer() - time.monotonic()
        events = self._epoll.poll(-1 if timeout == math.inf else max(0.0, timeout))
        by_fd = self._by_fd
        for fd, mask in events:
            entry = by_fd.get(fd)
            if entry is not None:
                conn, side = entry
                try:
                    self._on_socket(conn, side, mask)
                except Exception as exc:
                    self._fail(conn, exc)
                continue
            try:
                if fd in self._listener_fds:
                    self._accept_all(self._listener_fds[fd])
                elif fd == self._wakeup.fd:
                    self._on_wake()
            except Exception as exc:  # one event's failure must not drop the rest of the batch
                log(f"{self.name}: proxy loop error: {exc!r}")
        try:
            self._run_timers()
        finally:
            self._flush_closes()

    def _next_timer(self) -> float:
        return min(self._retry_at, self._deadline, self._resume_accept_at)

    def _on_wake(self) -> None:
        self._wakeup.drain()
        with self._lock:
            stopped, self._stopped_requested = self._stopped_requested, False
        if stopped:
            if self.state is RelayState.UP:
                self.state = RelayState.IDLE
                if self._waiting:  # clients retrying a busy target: they now need a start
                    self._demand(probe_now=False)
            elif self.state is RelayState.STARTING:
                if self._waiting or self._probe is not None:
                    # A demand made while the service was still seen running may have been
                    # ignored: ask again now that it is down (the deadline stays).
                    self._call_on_demand()
                else:
                    self._demand_due = True

    def _run_timers(self) -> None:
        now = time.monotonic()
        if now >= self._resume_accept_at:
            self._resume_accept_at = math.inf
            self._set_accepting(True)
        if now >= self._deadline:
            self._give_up()
        if now >= self._retry_at:
            self._retry_at = math.inf
            self._retry_waiting()

    def _flush_closes(self) -> None:
        # Closing at the end of a batch keeps an fd number from being reused by an accept while
        # events of its previous owner are still in the batch.
        for item in self._to_close:
            with contextlib.suppress(OSError):
                if isinstance(item, int):
                    os.close(item)
                else:
                    item.close()
        self._to_close.clear()

    def _shutdown(self) -> None:
        for conn, _ in list(self._by_fd.values()):
            self._close(conn, reset=False)
        for conn in list(self._waiting):
            self._close(conn, reset=False)
        self._waiting.clear()
        self._flush_closes()
        with contextlib.suppress(OSError):
            self._epoll.close()
        self._wakeup.close()

    # --- accepting --------------------------------------------------------------------------

    def _set_accepting(self, accepting: bool) -> None:
        if accepting == self._accepting:
            return
        self._accepting = accepting
        for fd in self._listener_fds:
            # Edge-triggered: registering again reports a backlog that filled meanwhile.
            with contextlib.suppress(OSError):
                if accepting:
                    self._epoll.register(fd, select.EPOLLIN | select.EPOLLET)
                else:
                    self._epoll.unregister(fd)

    def _accept_all(self, listener: socket.socket) -> None:
        while self._accepting:
            if self._active >= self._max:
                say = info if self._cap_said else log
                self._cap_said = True
                say(f"{self.name}: connection cap {self._max} reached; new clients wait queued")
                self._set_accepting(False)
                return
            try:
                client, _ = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in (errno.ECONNABORTED, errno.EPROTO, errno.EPERM):
                    continue  # that client went away; the next one may be fine
                why = exc.strerror or exc
                self._say_short_of_fds(f"accept failed: {why}; clients wait in the backlog")
                self._pause_accepting()
                return
            self._total += 1
            try:
                self._admit(client)
            except Exception as exc:
                log(f"{self.name}: could not take a connection: {exc!r}")
                self._refused += 1
                client.close()

    def _pause_accepting(self) -> None:
        self._set_accepting(False)
        self._resume_accept_at = time.monotonic() + _ACCEPT_PAUSE

    def _refuse_if_stuck(self) -> None:
        """Two retry rounds out of fds, no close in between and nothing relayed, so nothing will
        give an fd back: the newest waiting client makes room for the oldest."""
        stuck = not self._relaying and self._closes == self._closes_at_shortage
        self._closes_at_shortage = self._closes
        if stuck and len(self._waiting) > 1:
            newest = self._waiting.pop()
            self._refused += 1
            log(f"{self.name}: out of fds with no connection relayed: refusing a waiting client")
            self._close(newest, reset=False)

    def _say_short_of_fds(self, what: str) -> None:
        """Once per shortage (until a target connection succeeds again): no log flood."""
        if not self._short_of_fds:
            self._short_of_fds = True
            log(f"{self.name}: {what}")

    def _admit(self, client: socket.socket) -> None:
        if self.state is RelayState.REFUSING:
            self._refused += 1
            self._to_close.append(client)
            if not self._gave_up_refusal:
                self._gave_up_refusal = True
                self._call_give_up(self._refusal_reason())
            return
        client.setblocking(False)
        if client.family != socket.AF_UNIX:
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = Connection(client)
        self._by_fd[conn.fds[CLIENT]] = (conn, CLIENT)
        self._epoll.register(conn.fds[CLIENT], _SOCKET_EVENTS)
        self._active += 1
        if self.state is RelayState.UP:
            self._connect(conn)
            return
        self._waiting.append(conn)
        if self.state is RelayState.IDLE or self._demand_due:
            self._demand(probe_now=True)

    # --- target availability ---------------------------------------------------------------

    def _demand(self, *, probe_now: bool) -> None:
        self.state = RelayState.STARTING
        self._demand_due = False
        self._deadline = time.monotonic() + self._connect_timeout
        self._retry_delay = _RETRY_FIRST
        self._call_on_demand()
        if probe_now and self._probe is None:
            self._retry_waiting()
        else:
            self._schedule_retry()

    def _retry_waiting(self) -> None:
        """STARTING: one probe connect; UP: every waiting client connects."""
        out_of_fds_before = self._connects_out_of_fds
        self._connect_waiting()
        if self._connects_out_of_fds != out_of_fds_before:
            self._refuse_if_stuck()

    def _connect_waiting(self) -> None:
        if self.state is RelayState.UP:
            batch = list(self._waiting)
            self._waiting.clear()
            for conn in batch:
                if self.state is RelayState.UP:
                    self._connect(conn)
                else:  # a connect was refused meanwhile: the rest wait for the next probe
                    self._waiting.append(conn)
        elif self.state is RelayState.STARTING and self._probe is None and self._waiting:
            self._probe = self._waiting.popleft()
            self._connect(self._probe)

    def _schedule_retry(self) -> None:
        if self._retry_at == math.inf:
            self._retry_at = time.monotonic() + self._retry_delay
            self._retry_delay = min(self._retry_delay * 2, _RETRY_MAX)

    def _target_up(self) -> None:
        if self.state is not RelayState.UP:
            self.state = RelayState.UP
            self._deadline = math.inf
            self._retry_at = math.inf
            self._retry_waiting()

    def _give_up(self) -> None:
        self._deadline = math.inf
        self._retry_at = math.inf
        waiting = list(self._waiting)
        self._waiting.clear()
        if self._probe is not None:
            waiting.append(self._probe)
            self._probe = None
        for conn in waiting:
            self._refused += 1
            self._close(conn, reset=False)
        if self.state is RelayState.STARTING:
            self.state = RelayState.IDLE
        timeout = self._connect_timeout
        why = f" (last error: {self._last_error})" if self._last_error else ""
        # The socket actor says which target: "proxy target X did not accept: <reason>".
        reason = f"no connection within {timeout:g} s{why}; {len(waiting)} waiting client(s) closed"
        info(f"{self.name}: proxy target {self._target.text} gave up: {reason}")
        self._call_give_up(reason)

    def _refusal_reason(self) -> str:
        """The self-connect refusal as on_give_up's reason (the actor names the target)."""
        text = self.refusal or "self-connect"
        prefix = f"proxy target {self._target.text} is "
        return "it is " + text[len(prefix) :] if text.startswith(prefix) else text

    def _call_on_demand(self) -> None:
        try:
            self._on_demand()
        except Exception as exc:
            log(f"{self.name}: on_demand callback failed: {exc!r}")

    def _call_give_up(self, reason: str) -> None:
        try:
            self._on_give_up(reason)
        except Exception as exc:
            log(f"{self.name}: on_give_up callback failed: {exc!r}")

    # --- connecting -------------------------------------------------------------------------

    def _connect(self, conn: Connection) -> None:
        if conn.phase is Phase.CLOSED:
            return
        try:
            sock, err = self._target.open()
        except OSError as exc:  # out of fds here (wait), or a name that does not resolve (yet)
            ours = exc.errno in _OUT_OF_FDS
            if ours:
                self._say_short_of_fds(f"cannot open a connection to the target: {exc.strerror}")
                self._pause_accepting()  # fds freed now go to clients already accepted
                self._connects_out_of_fds += 1
            self._connect_failed(conn, None, exc.strerror or str(exc), retry_only=ours)
            return
        if err not in (0, errno.EINPROGRESS):
            self._connect_failed(conn, sock, os.strerror(err), retry_only=err in _CONNECT_RETRY)
            return
        conn.socks[TARGET] = sock
        fd = sock.fileno()
        conn.fds[TARGET] = fd
        conn.phase = Phase.CONNECTING
        self._by_fd[fd] = (conn, TARGET)
        self._epoll.register(fd, _SOCKET_EVENTS)
        if err == 0:
            self._connected(conn)

    def _connect_done(self, conn: Connection) -> None:
        sock = conn.socks[TARGET]
        assert sock is not None
        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err == 0:
            try:
                sock.getpeername()
            except OSError:
                return  # not connected yet (an early wakeup)
            self._connected(conn)
            return
        fd = conn.fds[TARGET]
        self._by_fd.pop(fd, None)
        with contextlib.suppress(OSError):
            self._epoll.unregister(fd)
        conn.forget_target()
        self._connect_failed(conn, sock, os.strerror(err), retry_only=err in _CONNECT_RETRY)

    def _connect_failed(
        self, conn: Connection, sock: socket.socket | None, why: str, *, retry_only: bool
    ) -> None:
        if sock is not None:
            self._to_close.append(sock)
        if not retry_only:  # the address failed (not our fds, not a busy backlog): next one
            self._target.forget()
        self._last_error = why
        conn.phase = Phase.WAITING
        if conn is self._probe:
            self._probe = None
            self._waiting.appendleft(conn)  # still the oldest
        else:
            self._waiting.append(conn)  # behind the rest of its round: first come, first served
        state = self.state
        if state is RelayState.IDLE or (state is RelayState.UP and not retry_only):
            info(f"{self.name}: proxy target {self._target.text} refused ({why}); waiting for it")
            self._demand(probe_now=False)  # the service went away: wait for (and ask for) it
        else:
            self._schedule_retry()

    def _connected(self, conn: Connection) -> None:
        if conn is self._probe:
            self._probe = None
        self._retry_delay = _RETRY_FIRST
        self._short_of_fds = False
        self._relaying += 1
        conn.phase = Phase.RELAYING
        sock = conn.socks[TARGET]
        if sock is not None and sock.family != socket.AF_UNIX:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.writable[TARGET] = True
        self._target_up()
        self._relay(conn)

    # --- relaying ---------------------------------------------------------------------------

    def _on_socket(self, conn: Connection, side: int, mask: int) -> None:
        conn.note_events(side, mask)
        phase = conn.phase
        if phase is Phase.RELAYING:
            if mask & select.EPOLLERR and self._reset_seen(conn, side):
                return
            self._relay(conn)
        elif phase is Phase.CONNECTING:
            if side == TARGET and mask & WRITE_EVENTS:
                self._connect_done(conn)
        elif phase is Phase.WAITING and mask & (select.EPOLLERR | select.EPOLLHUP):
            self._forget_waiting(conn)  # the client reset while waiting for the target

    def _relay(self, conn: Connection) -> None:
        try:
            finished = self._pump.pump(conn)
        except OSError as exc:
            if exc.errno not in (errno.ECONNRESET, errno.EPIPE, errno.ENOTCONN, errno.ETIMEDOUT):
                info(f"{self.name}: connection error: {exc.strerror or exc}")
            self._close(conn, reset=True)
            return
        if finished:
            self._close(conn, reset=False)

    def _reset_seen(self, conn: Connection, side: int) -> bool:
        """A pending socket error (an RST) on `side`: tear both down, even if both directions
        have already ended there and no read or write would notice it."""
        sock = conn.socks[side]
        if sock is None or not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
            return False
        self._close(conn, reset=True)
        return True

    def _forget_waiting(self, conn: Connection) -> None:
        with contextlib.suppress(ValueError):
            self._waiting.remove(conn)
        self._close(conn, reset=False)

    # --- closing ----------------------------------------------------------------------------

    def _fail(self, conn: Connection, exc: Exception) -> None:
        log(f"{self.name}: proxy connection failed: {exc!r}; resetting it")
        try:
            if conn.phase is Phase.WAITING:
                self._forget_waiting(conn)
            else:
                self._close(conn, reset=True)
        except Exception as again:
            log(f"{self.name}: could not close a failed connection: {again!r}")

    def _close(self, conn: Connection, *, reset: bool) -> None:
        if conn.phase is Phase.CLOSED:
            return
        if conn is self._probe:
            self._probe = None
        if conn.phase is Phase.RELAYING:
            self._relaying -= 1
        self._closes += 1
        conn.phase = Phase.CLOSED
        for side in (CLIENT, TARGET):
            sock = conn.socks[side]
            if sock is None:
                continue
            conn.socks[side] = None
            fd = conn.fds[side]
            self._by_fd.pop(fd, None)
            with contextlib.suppress(OSError):
                self._epoll.unregister(fd)
            if reset and sock.family != socket.AF_UNIX:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_ZERO)
            self._to_close.append(sock)
        self._to_close += conn.pipe_fds()
        self._active -= 1
        if not self._accepting and self._active < self._max and self._resume_accept_at == math.inf:
            self._set_accepting(True)
