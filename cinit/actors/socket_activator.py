"""Socket activation: one `SocketActivator` actor per bound `.socket` unit.

The supervisor binds every socket at boot, before any service starts (`SocketSupport.bind`),
and starts one activator per socket with its listeners. The activator never blocks: the
readiness poller thread (`cinit.io.sockets.ReadinessPoller`) or the proxy relay thread tell
it what happened, and it tells the supervisor what to do.

Native, Accept=no (the listeners are inherited by the service, sd_listen_fds):

    listening --a listener readable--> running   (SocketTriggered: the supervisor starts the
                                                  service; polling stops, every listener)
    running   --ServiceDown-->         listening (the service ended for whatever reason: poll
                                                  again; queued connections trigger the next)
    any       --more than TriggerLimitBurst= triggers within TriggerLimitIntervalSec=--> failed

Native, Accept=yes: every readable event accepts one connection and spawns one instance of
the service, named `<service stem>@<N>.service` (N counts from 0 per socket), with the
connection at fd 3 (LISTEN_FDS=1, LISTEN_FDNAMES=connection, REMOTE_ADDR/REMOTE_PORT for IP
peers). An instance runs only the service's ExecStart= main command (no ExecStartPre=, no
Restart=), with the service's user, environment and output. At MaxConnections= running
instances the socket stops accepting (connections wait in the backlog) until one exits.

Proxy: a `cinit.io.proxy.ProxyRelay` owns the listeners' polling; its first client while
the target is not known up calls `on_demand` (a trigger), `ServiceDown` becomes
`service_stopped()`, and a target that does not accept within the service's
TimeoutStartSec= fails the socket (result timeout; the supervisor stops the service).

A failed socket closes its listeners (RemoveOnStop= unlinks unix nodes) and stays failed
until a start request: the supervisor then stops this actor and binds the socket anew with
a new one. A stop (`StopSocket`) closes cinit's copies of the listeners; a service that
inherited them keeps them and runs on, as with systemd.
Every message is handled inside a try: an error is logged and the actor carries on.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import socket
import time
import traceback
from collections.abc import Callable
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import pykka

from cinit.actors.unit import Scheduling, UnitReport
from cinit.io.log import info, log
from cinit.io.reaper import ProcessExit
from cinit.io.sockets import (
    Listener,
    ListenerRegistry,
    ReadinessPoller,
    bind_socket_unit,
    close_listeners,
)
from cinit.machines.record import Record
from cinit.machines.restart import Result
from cinit.machines.unit_events import Notice, Transition
from cinit.machines.unit_model import Role, State
from cinit.units.model import ActivationMode, Unit

if TYPE_CHECKING:
    from cinit.actors.unit_slot import Tellable

# ---- messages ---------------------------------------------------------------------------


class ListenerReadable(Record):
    """Poller -> activator: listener `fd` has a connection (or datagram) waiting."""

    __slots__ = ("fd",)

    def __init__(self, fd: int) -> None:
        self.fd = fd


class ServiceUp(Record):
    """Supervisor -> activator: the service started (by this or another path): stop polling."""

    __slots__ = ()


class ServiceDown(Record):
    """Supervisor -> activator: the service ended: poll again (native) / re-demand (proxy)."""

    __slots__ = ("restarting", "start_limit_hit")

    def __init__(self, restarting: bool = False, start_limit_hit: bool = False) -> None:
        self.restarting = restarting  # auto-restart: a native service gets the fds again
        self.start_limit_hit = start_limit_hit  # it cannot start again: the socket fails


class StopSocket(Record):
    """Supervisor -> activator: stop listening, end Accept=yes instances, close listeners."""

    __slots__ = ()


class ProxyDemand(Record):
    """Relay -> activator: a client waits and the target is not known up."""

    __slots__ = ()


class ProxyGaveUp(Record):
    """Relay -> activator: the target did not accept in time; `reason` says why."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


class KillInstances(Record):
    """Timer: Accept=yes instances did not end within TimeoutStopSec= of the stop."""

    __slots__ = ()


class SocketTriggered(Record):
    """Activator -> supervisor: start `service` (the first connection arrived)."""

    __slots__ = ("service", "socket")

    def __init__(self, socket: str, service: str) -> None:
        self.socket = socket
        self.service = service


class SocketFailed(Record):
    """Activator -> supervisor: the socket failed after it was bound (already logged).

    `stop_service`: the service is useless now (a proxy target that never came up)."""

    __slots__ = ("reason", "result", "socket", "stop_service")

    def __init__(self, socket: str, result: Result, reason: str, stop_service: bool) -> None:
        self.socket = socket
        self.result = result
        self.reason = reason
        self.stop_service = stop_service


class SocketStopped(Record):
    """Activator -> supervisor: the socket is stopped (listeners closed)."""

    __slots__ = ("socket",)

    def __init__(self, socket: str) -> None:
        self.socket = socket


# ---- what the actors need from the OS side ----------------------------------------------


class SocketSupport:
    """Shared by every socket actor: binding, the poller, the listener registry, and
    the io of Accept=yes instances. Built by `cinit.actors.unit_services`."""

    def __init__(
        self,
        context: Any,  # cinit.actors.unit_io.UnitContext
        registry: ListenerRegistry,
        poller: ReadinessPoller,
    ) -> None:
        self.context = context
        self.registry = registry
        self.poller = poller

    def unmet_condition(self, unit: Unit) -> str | None:
        from cinit.io.environ import unmet_condition

        return unmet_condition(unit, self.context.base_env, self.context.userdb_root)

    def bind(self, unit: Unit) -> list[Listener]:
        """Bind every listener of `unit` (raises BindError)."""
        return bind_socket_unit(unit, self.context.userdb_root)

    def instance_io(self, unit: Unit, owner: Tellable) -> Any:
        """A UnitIO for one Accept=yes instance: process groups, not cgroups (an instance
        per connection must not leave a cgroup directory behind)."""
        from cinit.actors.unit_io import UnitIO

        return UnitIO(unit, self.context.without_cgroups(), owner)

    def proxy(
        self,
        name: str,
        listeners: list[Listener],
        unit: Unit,
        service: Unit,
        on_demand: Callable[[], None],
        on_give_up: Callable[[str], None],
    ) -> Any:
        from cinit.io.proxy import DEFAULT_MAX_CONNECTIONS, ProxyRelay

        section = unit.socket
        assert section is not None and section.proxy_target is not None
        timeout = service.service.timeout_start_sec if service.service is not None else 90.0
        # In proxy mode MaxConnections= caps relayed connections when set; its default (64)
        # is Accept=yes's, so an unset one leaves the relay's own (4096).
        explicit = "MaxConnections" in unit.directive_lines
        cap = section.max_connections if explicit else DEFAULT_MAX_CONNECTIONS
        return ProxyRelay(
            name,
            [listener.sock for listener in listeners],
            section.proxy_target,
            on_demand=on_demand,
            on_give_up=on_give_up,
            connect_timeout=timeout,
            max_connections=cap,
        )

    def close(self) -> None:
        self.poller.stop()


def remote_environment(peer: Any, family: int) -> dict[str, str]:
    """REMOTE_ADDR/REMOTE_PORT for an IP peer (IPv4-mapped IPv6 shown as IPv4)."""
    if family not in (socket.AF_INET, socket.AF_INET6) or not isinstance(peer, tuple):
        return {}
    host = str(peer[0])
    if host.startswith("::ffff:") and "." in host:
        host = host[7:]
    return {"REMOTE_ADDR": host, "REMOTE_PORT": str(peer[1])}


class _Phase(StrEnum):
    LISTENING = "listening"
    RUNNING = "running"  # the service has the listeners; not polled
    FAILED = "failed"
    STOPPED = "stopped"


class SocketActivator(pykka.ThreadingActor):
    """`SocketActivator.start(unit, service, listeners, support, supervisor, scheduler)`."""

    use_daemon_thread = True

    def __init__(
        self,
        unit: Unit,
        service: Unit,
        listeners: list[Listener],
        support: SocketSupport,
        supervisor: Tellable,
        scheduler: Scheduling,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        assert unit.socket is not None
        self.unit = unit
        self.name = unit.name
        self.section = unit.socket
        self.service = service
        self.listeners = listeners
        self.by_fd = {listener.fileno(): listener for listener in listeners}
        self.support = support
        self.supervisor = supervisor
        self.scheduler = scheduler
        self.clock = clock
        self.phase = _Phase.LISTENING
        self.triggers: collections.deque[float] = collections.deque()
        self.relay: Any = None
        self.instances: dict[int, tuple[str, Any]] = {}  # pid -> (instance name, its io)
        self.next_instance = 0
        self.at_cap = False
        self.cap_logged = False
        self.stopping = False
        self.kill_timer: Any = None
        self.errors = 0
        if self.native and not self.section.accept:
            # Here, in the supervisor's thread: a service pulled in at boot (Requires=)
            # may start before this actor runs, and must inherit the listeners.
            support.registry.set(self.name, service.name, listeners)

    @property
    def native(self) -> bool:
        return self.section.activation_mode is ActivationMode.NATIVE

    # ---- pykka hooks ---------------------------------------------------------------------

    def on_start(self) -> None:
        try:
            self._listen()
        except BaseException as exc:
            self._internal_error("on_start", exc)

    def on_receive(self, message: Any) -> None:
        try:
            self._handle(message)
        except BaseException as exc:  # never let it escape: pykka would stop the actor
            self._internal_error(repr(message), exc)

    def _internal_error(self, where: str, exc: BaseException) -> None:
        self.errors += 1
        text = "".join(traceback.format_exception(exc)).rstrip()
        log(f"internal error in the socket actor of {self.name} ({where}):\n{text}")

    # ---- start ---------------------------------------------------------------------------

    def _listen(self) -> None:
        me = self.actor_ref
        if self.native:
            for fd, listener in self.by_fd.items():
                if self.section.accept:
                    listener.sock.setblocking(False)  # accepted here; never handed over
                self.support.poller.watch(fd, me, ListenerReadable(fd))
        else:
            self.relay = self.support.proxy(
                self.name,
                self.listeners,
                self.unit,
                self.service,
                lambda: me.tell(ProxyDemand()),
                lambda reason: me.tell(ProxyGaveUp(reason)),
            )
            self.relay.start()

    # ---- dispatch ------------------------------------------------------------------------

    def _handle(self, message: Any) -> None:
        if isinstance(message, ListenerReadable):
            self._on_readable(message.fd)
        elif isinstance(message, ProcessExit):
            self._on_instance_exit(message)
        elif isinstance(message, ServiceUp):
            if self.phase is _Phase.LISTENING and self.native and not self.section.accept:
                self.phase = _Phase.RUNNING
                self._disarm()
        elif isinstance(message, ServiceDown):
            if message.start_limit_hit:
                self._service_start_limit_hit()
            else:
                self._on_service_down(message.restarting)
        elif isinstance(message, ProxyDemand):
            if self.phase is _Phase.LISTENING:
                self._trigger("")
        elif isinstance(message, ProxyGaveUp):
            if self.phase is _Phase.LISTENING:
                text = f"proxy target {self._target_text()} did not accept: {message.reason}"
                self._fail(Result.TIMEOUT, text, stop_service=True)
        elif isinstance(message, StopSocket):
            self._stop()
        elif isinstance(message, KillInstances):
            self.kill_timer = None
            for _, io in list(self.instances.values()):
                with contextlib.suppress(OSError):
                    io.kill_unit()
        else:
            log(f"{self.name}: unexpected message {message!r}")

    # ---- triggering ----------------------------------------------------------------------

    def _on_readable(self, fd: int) -> None:
        listener = self.by_fd.get(fd)
        if listener is None or self.phase is not _Phase.LISTENING or self.stopping:
            return  # stale: already stopped, failed or running
        if self.section.accept:
            self._accept(listener)
            return
        self._trigger(listener.bound)

    def _trigger(self, where: str) -> bool:
        """Count a trigger; False (and the socket failed) past the trigger limit."""
        if not self._within_trigger_limit():
            return False
        if self.native and not self.section.accept:
            self.phase = _Phase.RUNNING  # the service takes the listeners: stop polling
            self._disarm()
        fields: dict[str, object] = {"service": self.service.name, "triggers": len(self.triggers)}
        if where:
            fields["listener"] = where
        self._report(Notice(self.name, "socket-triggered", fields))
        on = f" on {where}" if where else ""
        info(f"{self.name}: triggered{on}; starting {self.service.name}")
        if not self.section.accept:
            self.supervisor.tell(SocketTriggered(self.name, self.service.name))
        return True

    def _within_trigger_limit(self) -> bool:
        now = self.clock()
        interval = self.section.trigger_limit_interval_sec
        burst = self.section.trigger_limit_burst
        while self.triggers and now - self.triggers[0] > interval:
            self.triggers.popleft()
        self.triggers.append(now)
        if interval > 0 and burst > 0 and len(self.triggers) > burst:
            self._fail(
                Result.TRIGGER_LIMIT_HIT,
                f"trigger limit hit: more than {burst} triggers within {interval:g}s",
                stop_service=False,
            )
            return False
        return True

    def _service_start_limit_hit(self) -> None:
        if self.stopping or self.phase in (_Phase.FAILED, _Phase.STOPPED):
            return
        reason = f"{self.service.name} hit its start limit and cannot be started again"
        self._fail(Result.SERVICE_START_LIMIT_HIT, reason, stop_service=False)

    def _disarm(self) -> None:
        for fd in self.by_fd:
            self.support.poller.disarm(fd)

    def _rearm(self) -> None:
        for fd in self.by_fd:
            self.support.poller.rearm(fd)

    def _on_service_down(self, restarting: bool) -> None:
        if self.stopping or self.phase in (_Phase.FAILED, _Phase.STOPPED):
            return
        if self.relay is not None:
            self.relay.service_stopped()
            return
        if self.phase is _Phase.RUNNING and not restarting:
            self.phase = _Phase.LISTENING
            info(f"{self.name}: {self.service.name} is down; listening again")
            self._rearm()

    # ---- Accept=yes ----------------------------------------------------------------------

    def _accept(self, listener: Listener) -> None:
        try:
            connection, peer = listener.sock.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            self.support.poller.rearm(listener.fileno())  # the client went away meanwhile
            return
        except OSError as exc:
            if exc.errno in (errno.EOPNOTSUPP, errno.EINVAL):  # a datagram listener
                reason = f"Accept=yes cannot accept on {listener.directive}={listener.bound}"
                self._fail(Result.RESOURCES, reason, stop_service=False)
                return
            log(f"{self.name}: cannot accept a connection: {exc}")
            self.support.poller.rearm(listener.fileno())
            return
        try:
            if not self._trigger(listener.bound):
                return
            self._spawn_instance(connection, peer, listener)
        finally:
            connection.close()  # the instance has its own copy
        if len(self.instances) >= self.section.max_connections:
            if not self.cap_logged:
                self.cap_logged = True
                log(
                    f"{self.name}: MaxConnections={self.section.max_connections} reached; "
                    "new connections wait until an instance exits"
                )
            self.at_cap = True
        elif self.phase is _Phase.LISTENING:
            self.support.poller.rearm(listener.fileno())

    def _spawn_instance(self, connection: socket.socket, peer: Any, listener: Listener) -> None:
        from cinit.actors.unit_io import UnitSpawnError

        connection.setblocking(True)  # O_NONBLOCK cleared: the instance expects a plain fd
        name = f"{self.service.stem}@{self.next_instance}.service"
        self.next_instance += 1
        instance = self.service.replace(name=name)
        io = self.support.instance_io(instance, self.actor_ref)
        io.connection = (connection.fileno(), remote_environment(peer, connection.family))
        try:
            pid = io.spawn(Role.START, 0, None)
        except UnitSpawnError:
            log(f"{name}: failed to start for a connection on {listener.bound}")
            return
        self.instances[pid] = (name, io)
        info(f"{name}: started (pid {pid}) for a connection on {listener.bound}")

    def _on_instance_exit(self, message: ProcessExit) -> None:
        for pid, (name, io) in list(self.instances.items()):
            if io.take_exit(message):
                del self.instances[pid]
                how = f"signal {message.signal}" if message.signal else f"status={message.code}"
                info(f"{name}: exited ({how})")
                break
        if self.at_cap and len(self.instances) < self.section.max_connections:
            self.at_cap = False
            if self.phase is _Phase.LISTENING and not self.stopping:
                self._rearm()
        if self.stopping and not self.instances:
            self._finish_stop()

    # ---- failing and stopping ------------------------------------------------------------

    def _fail(self, result: Result, reason: str, *, stop_service: bool) -> None:
        old = self.phase
        self.phase = _Phase.FAILED
        self._close()
        log(f"{self.name}: failed ({result.value}): {reason}")
        self._report(Transition(self.name, _state(old), State.FAILED, reason, result))
        fields: dict[str, object] = {"result": result.value, "reason": reason}
        self._report(Notice(self.name, "socket-failed", fields))
        self.supervisor.tell(SocketFailed(self.name, result, reason, stop_service))

    def _stop(self) -> None:
        if self.stopping:
            return
        self.stopping = True
        old = self.phase
        if old is not _Phase.FAILED:
            self._report(Transition(self.name, _state(old), State.STOPPING, "stop requested"))
        self._close()
        if not self.instances:
            self._finish_stop()
            return
        for _, io in list(self.instances.values()):
            with contextlib.suppress(OSError):
                io.signal_unit(self.service.service.kill_signal if self.service.service else 15)
        timeout = self.service.service.timeout_stop_sec if self.service.service else 10.0
        self.kill_timer = self.scheduler.call_later(timeout, self.actor_ref, KillInstances())

    def _finish_stop(self) -> None:
        if self.kill_timer is not None:
            self.scheduler.cancel(self.kill_timer)
            self.kill_timer = None
        if self.phase is not _Phase.FAILED:
            self._report(Transition(self.name, State.STOPPING, State.INACTIVE, "stopped"))
            self.phase = _Phase.STOPPED
        self.supervisor.tell(SocketStopped(self.name))

    def _close(self) -> None:
        """Stop polling and close cinit's copies of the listeners (once)."""
        if not self.by_fd:
            return
        self.support.registry.remove(self.name)
        if self.relay is not None:
            with contextlib.suppress(Exception):
                self.relay.stop()
        for fd in self.by_fd:
            self.support.poller.forget(fd)
        close_listeners(self.unit, self.listeners, remove=self.section.remove_on_stop)
        self.by_fd = {}

    def _report(self, item: Any) -> None:
        self.supervisor.tell(UnitReport(self.name, item))

    def _target_text(self) -> str:
        target = self.section.proxy_target
        return target.render() if target is not None else "?"


def _state(phase: str) -> State:
    """The unit state a socket phase is shown as (systemd: listening and running are active)."""
    if phase == _Phase.FAILED:
        return State.FAILED
    if phase == _Phase.STOPPED:
        return State.INACTIVE
    return State.ACTIVE


def describe_listeners(listeners: list[Listener]) -> str:
    """`[::]:8080, /run/app.sock`: what a socket listens on, for logs and events."""
    return ", ".join(listener.bound for listener in listeners)
