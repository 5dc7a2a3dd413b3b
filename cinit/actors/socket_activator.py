"""Socket activation: one `SocketActivator` actor per bound `.socket` unit.

The supervisor binds every socket at boot, before any service starts (`SocketSupport.bind`),
and starts one activator per socket with its listeners. The decisions are the socket's
state machine's (`cinit.machines.socket_machine`: listening, running, full, failed,
stopping, the trigger limit, MaxConnections=); this actor only feeds it what happened (the
readiness poller thread `cinit.io.sockets.ReadinessPoller`, the proxy relay thread
`cinit.io.proxy.ProxyRelay`, the supervisor's news of the service, the exits of Accept=yes
instances, the stop timer) and carries its actions out: polling, accepting, closing the
listeners, spawning and signalling instances, telling the supervisor. It never blocks.

Native, Accept=yes: every accepted connection starts one instance of the service, named
`<service stem>@<N>.service` (N counts from 0 per socket), with the connection at fd 3
(LISTEN_FDS=1, LISTEN_FDNAMES=connection, REMOTE_ADDR/REMOTE_PORT for IP peers). An
instance runs only the service's ExecStart= main command (no ExecStartPre=, no Restart=),
with the service's user, environment and output, in process groups (not a cgroup).

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
from cinit.machines import socket_machine as sm
from cinit.machines.socket_machine import (
    KillInstances,
    ListenerReadable,
    ProxyDemand,
    ProxyGaveUp,
    ServiceDown,
    ServiceUp,
    SocketFailed,
    SocketStopped,
    SocketTriggered,
    StopSocket,
)
from cinit.machines.unit_events import Log, Notice, Transition
from cinit.machines.unit_model import Role
from cinit.units.model import Unit

if TYPE_CHECKING:
    from cinit.actors.unit_slot import Tellable

# The messages this actor takes and sends are the machine's events and actions; the
# supervisor imports them from here.
__all__ = [
    "KillInstances",
    "ListenerReadable",
    "ProxyDemand",
    "ProxyGaveUp",
    "ServiceDown",
    "ServiceUp",
    "SocketActivator",
    "SocketFailed",
    "SocketStopped",
    "SocketSupport",
    "SocketTriggered",
    "StopSocket",
    "describe_listeners",
    "remote_environment",
]

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
        about = [sm.ListenerInfo(fd, item.bound, item.directive) for fd, item in self.by_fd.items()]
        self.model, self.pending = sm.start(sm.config_of(unit, service, about))
        self.relay: Any = None  # cinit.io.proxy.ProxyRelay in proxy mode
        self.instances: dict[int, Any] = {}  # Accept=yes: main pid -> its UnitIO
        self.accepted: dict[int, tuple[socket.socket, Any]] = {}  # listener fd -> conn, peer
        self.stop_timer: Any = None
        self.errors = 0
        if self.model.config.mode is sm.Mode.NATIVE:
            # Here, in the supervisor's thread: a service pulled in at boot (Requires=)
            # may start before this actor runs, and must inherit the listeners.
            support.registry.set(self.name, service.name, listeners)

    # ---- pykka hooks ---------------------------------------------------------------------

    def on_start(self) -> None:
        try:
            self._run([])
        except BaseException as exc:
            self._internal_error("on_start", exc)

    def on_receive(self, message: Any) -> None:
        try:
            event = self._event(message)
            if event is not None:
                self._run([event])
        except BaseException as exc:  # never let it escape: pykka would stop the actor
            self._internal_error(repr(message), exc)

    def _internal_error(self, where: str, exc: BaseException) -> None:
        self.errors += 1
        text = "".join(traceback.format_exception(exc)).rstrip()
        log(f"internal error in the socket actor of {self.name} ({where}):\n{text}")

    # ---- feeding the machine -------------------------------------------------------------

    def _event(self, message: Any) -> sm.SocketEvent | None:
        """The machine's event for `message`; None for what concerns nobody here."""
        if isinstance(message, ProcessExit):
            for pid, io in self.instances.items():
                if io.take_exit(message):
                    del self.instances[pid]
                    return sm.InstanceExited(pid, message.code, message.signal)
            return None
        if isinstance(message, sm.EVENT_TYPES):
            return message
        log(f"{self.name}: unexpected message {message!r}")
        return None

    def _run(self, events: list[sm.SocketEvent]) -> None:
        """Step the machine and carry out its actions (answers are fed back at once)."""
        queue = collections.deque(events)
        try:
            while self.pending or queue:
                if self.pending:
                    answer = self._perform(self.pending.pop(0))
                    if answer is not None:
                        queue.append(answer)
                else:
                    self.model, self.pending = sm.step(self.model, queue.popleft(), self.clock())
        finally:
            for connection, _ in self.accepted.values():
                connection.close()  # an instance has its own copy
            self.accepted.clear()

    def _perform(self, action: sm.SocketAction) -> sm.SocketEvent | None:
        poller = self.support.poller
        if isinstance(action, Transition | Notice):
            # UnitReport's item type leaves out Notice, which the supervisor takes too.
            self.supervisor.tell(UnitReport(self.name, action))  # type: ignore[arg-type]
        elif isinstance(action, SocketTriggered | SocketFailed | SocketStopped):
            self.supervisor.tell(action)
        elif isinstance(action, sm.Info):
            info(action.text)
        elif isinstance(action, Log):
            log(action.text)
        elif isinstance(action, sm.Disarm):
            for fd in action.fds:
                poller.disarm(fd)
        elif isinstance(action, sm.Rearm):
            for fd in action.fds:
                poller.rearm(fd)
        elif isinstance(action, sm.Listen):
            self._listen()
        elif isinstance(action, sm.CloseListeners):
            self._close()
        elif isinstance(action, sm.AcceptConnection):
            return self._accept(action.fd)
        elif isinstance(action, sm.StartInstance):
            return self._start_instance(action)
        elif isinstance(action, sm.SignalInstances | sm.KillEveryInstance):
            for io in list(self.instances.values()):
                with contextlib.suppress(OSError):
                    if isinstance(action, sm.SignalInstances):
                        io.signal_unit(action.signo)
                    else:
                        io.kill_unit()
        elif isinstance(action, sm.ProxyServiceStopped):
            if self.relay is not None:
                self.relay.service_stopped()
        elif isinstance(action, sm.StartStopTimer):
            self.stop_timer = self.scheduler.call_later(
                action.delay, self.actor_ref, sm.StopTimedOut()
            )
        elif isinstance(action, sm.CancelStopTimer):
            if self.stop_timer is not None:
                self.scheduler.cancel(self.stop_timer)
            self.stop_timer = None
        return None

    # ---- carrying out --------------------------------------------------------------------

    def _listen(self) -> None:
        me = self.actor_ref
        if self.model.config.mode is sm.Mode.PROXY:
            self.relay = self.support.proxy(
                self.name,
                self.listeners,
                self.unit,
                self.service,
                lambda: me.tell(ProxyDemand()),
                lambda reason: me.tell(ProxyGaveUp(reason)),
            )
            self.relay.start()
            return
        accept = self.model.config.mode is sm.Mode.ACCEPT
        for fd, listener in self.by_fd.items():
            if accept:
                listener.sock.setblocking(False)  # accepted here; never handed over
            self.support.poller.watch(fd, me, ListenerReadable(fd))

    def _accept(self, fd: int) -> sm.SocketEvent:
        listener = self.by_fd[fd]
        try:
            connection, peer = listener.sock.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return sm.AcceptFailed(fd)  # the client went away meanwhile
        except OSError as exc:
            if exc.errno in (errno.EOPNOTSUPP, errno.EINVAL):  # a datagram listener
                return sm.AcceptFailed(fd, str(exc), unsupported=True)
            return sm.AcceptFailed(fd, str(exc))
        self.accepted[fd] = (connection, peer)
        return sm.ConnectionAccepted(fd)

    def _start_instance(self, action: sm.StartInstance) -> sm.SocketEvent:
        from cinit.actors.unit_io import UnitSpawnError

        connection, peer = self.accepted[action.fd]
        connection.setblocking(True)  # O_NONBLOCK cleared: the instance expects a plain fd
        instance = self.service.replace(name=action.name)
        io = self.support.instance_io(instance, self.actor_ref)
        io.connection = (connection.fileno(), remote_environment(peer, connection.family))
        try:
            pid = io.spawn(Role.START, 0, None)
        except UnitSpawnError:
            return sm.InstanceFailed(action.fd, action.name)
        self.instances[pid] = io
        return sm.InstanceStarted(action.fd, action.name, pid)

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


def describe_listeners(listeners: list[Listener]) -> str:
    """`[::]:8080, /run/app.sock`: what a socket listens on, for logs and events."""
    return ", ".join(listener.bound for listener in listeners)
