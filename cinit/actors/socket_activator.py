"""Socket activation: one `SocketActivator` actor per bound `.socket` unit.

The supervisor binds every socket at boot, before any service starts (`SocketSupport.bind`),
and starts one activator per socket with its listeners. The decisions are the socket's
state machine's (`cinit.machines.socket_machine`: listening, running, full, failed,
stopping, the trigger limit, MaxConnections=); this actor only feeds it what happened (the
readiness poller thread `cinit.io.sockets.ReadinessPoller`, the proxy relay thread
`cinit.io.proxy.ProxyRelay`, the supervisor's news of the service, the state changes of
Accept=yes instances) and carries its actions out: polling, accepting, closing the
listeners, starting and stopping instances, telling the supervisor. It never blocks.

Native, Accept=yes: every accepted connection starts one instance, the unit
`<service stem>@<N>.service` (N counts from 0 per socket; `socket_machine.instance_unit`),
with the connection at fd 3 (LISTEN_FDS=1, LISTEN_FDNAMES=connection, REMOTE_ADDR/
REMOTE_PORT for IP peers). It runs through the unit machine like every unit: its own
`UnitSlot` and `UnitActor`, which report to this actor (not to the supervisor: instances
are the socket's, not on the event stream), in process groups (not a cgroup), its lines
routine ones (CINIT_VERBOSE). Its end (inactive, failed) frees its place.

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
import threading
import time
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING

import pykka

from cinit.actors.unit import Scheduling, UnitActor, UnitActorCrashed, UnitReport
from cinit.actors.unit_io import UnitIO
from cinit.actors.unit_slot import UnitSlot
from cinit.io.log import info, log
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
from cinit.machines.unit_events import (
    DependenciesSettled,
    KillRequested,
    Log,
    Notice,
    StartRequested,
    StopRequested,
    Transition,
)
from cinit.machines.unit_model import State
from cinit.units.model import Unit

if TYPE_CHECKING:
    from cinit.actors.unit_io import UnitContext
    from cinit.actors.unit_slot import Tellable
    from cinit.io.proxy import ProxyRelay

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
    "listener_infos",
    "remote_environment",
]

# ---- what the actors need from the OS side ----------------------------------------------


class SocketSupport:
    """Shared by every socket actor: binding, the poller, the listener registry, and
    the io of Accept=yes instances. Built by `cinit.actors.unit_services`."""

    def __init__(
        self,
        context: UnitContext,
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

    def instance_io(self, unit: Unit, owner: Tellable) -> InstanceIO:
        """The io of one Accept=yes instance: process groups, not cgroups (an instance
        per connection must not leave a cgroup directory behind)."""
        return InstanceIO(unit, self.context.without_cgroups(), owner)

    def cinit_closing(self) -> threading.Event | None:
        """Set when cinit exits (None in tests without a unit context)."""
        closing: threading.Event | None = getattr(self.context, "closing", None)
        return closing

    def proxy(
        self,
        name: str,
        listeners: list[Listener],
        unit: Unit,
        service: Unit,
        on_demand: Callable[[], None],
        on_give_up: Callable[[str], None],
    ) -> ProxyRelay:
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


class InstanceIO(UnitIO):
    """A UnitIO whose lines about the instance are routine ones (CINIT_VERBOSE): one
    instance per connection must not fill the container's log."""

    def say(self, text: str) -> None:
        info(text)


class _InstanceClosing(threading.Event):
    """An instance actor's `closing`: set when its unit ended and the activator retires
    the actor, or when cinit exits (either way its stop is not a crash)."""

    def __init__(self, cinit_closing: threading.Event | None) -> None:
        super().__init__()
        self._cinit_closing = cinit_closing

    def is_set(self) -> bool:
        cinit = self._cinit_closing
        return super().is_set() or (cinit is not None and cinit.is_set())


class _Instance:
    """One Accept=yes instance: its unit's slot and actor, and the connection it gets."""

    def __init__(
        self,
        slot: UnitSlot,
        ref: pykka.ActorRef[UnitActor],
        closing: _InstanceClosing,
        connection: socket.socket,
    ) -> None:
        self.slot = slot
        self.ref = ref
        self.closing = closing
        self.connection: socket.socket | None = connection  # closed once it is spawned
        self.ran = False  # its main process started

    def drop_connection(self) -> None:
        if self.connection is not None:
            self.connection.close()  # the instance has its own copy
            self.connection = None


# The unit states in which an instance is over (it never restarts).
_ENDED = frozenset({State.INACTIVE, State.FAILED, State.CONDITION_SKIPPED, State.EXITED})


def remote_environment(peer: object, family: int) -> dict[str, str]:
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
        opened: tuple[sm.SocketModel, list[sm.SocketAction]] | None = None,
    ) -> None:
        """`opened`: the machine as the supervisor's `Bound` step left it, and the actions
        still to carry out (it told what the step said); None: a fresh listening one."""
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
        if opened is None:
            opened = sm.start(sm.config_of(unit, service, listener_infos(listeners)))
        self.model, self.pending = opened[0], list(opened[1])
        self.relay: ProxyRelay | None = None  # in proxy mode
        self.instances: dict[str, _Instance] = {}  # Accept=yes: by unit name
        self.accepted: dict[int, tuple[socket.socket, object]] = {}  # listener fd -> conn, peer
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

    def on_receive(self, message: object) -> None:
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

    def _event(self, message: object) -> sm.SocketEvent | None:
        """The machine's event for `message`; None for what concerns nobody here."""
        if isinstance(message, UnitReport | UnitActorCrashed):
            # From an instance's actor; reports after its end (settled, stopped) are moot.
            if message.unit not in self.instances:
                return None
            if isinstance(message, UnitActorCrashed):
                return self._instance_crashed(message)
            item = message.item
            return self._instance_moved(item) if isinstance(item, Transition) else None
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
        elif isinstance(action, sm.StopInstances | sm.KillEveryInstance):
            request = StopRequested() if isinstance(action, sm.StopInstances) else KillRequested()
            for instance in self.instances.values():
                instance.slot.tell(request)
        elif isinstance(action, sm.ProxyServiceStopped) and self.relay is not None:
            self.relay.service_stopped()
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
        """Create the instance's unit and start it through the unit machine (its own
        UnitActor on a UnitSlot, as the supervisor does for every unit)."""
        connection, peer = self.accepted.pop(action.fd)  # the instance's until it spawned
        connection.setblocking(True)  # O_NONBLOCK cleared: the instance expects a plain fd
        remote = remote_environment(peer, connection.family)

        def instance_io(unit: Unit, owner: Tellable) -> InstanceIO:
            io = self.support.instance_io(unit, owner)
            io.connection = (connection.fileno(), remote)
            return io

        closing = _InstanceClosing(self.support.cinit_closing())
        try:
            slot = UnitSlot.for_unit(sm.instance_unit(self.service, action.name), instance_io)
            ref = UnitActor.start(slot, self.actor_ref, self.scheduler, closing=closing)
        except Exception as exc:
            connection.close()
            log(f"{action.name}: cannot start its actor: {exc!r}")
            return sm.InstanceFailed(action.fd, action.name)
        self.instances[action.name] = _Instance(slot, ref, closing, connection)
        slot.tell(StartRequested())
        slot.tell(DependenciesSettled())
        return sm.InstanceStarted(action.fd, action.name)

    def _instance_moved(self, change: Transition) -> sm.SocketEvent | None:
        """An instance's unit changed state: its connection is handed over once it runs;
        an end retires its actor and frees its place."""
        instance = self.instances[change.unit]
        if change.new in (State.RUNNING, State.ACTIVE):
            instance.ran = True
            instance.drop_connection()
        if change.new not in _ENDED:
            return None
        del self.instances[change.unit]
        instance.drop_connection()
        instance.closing.set()
        instance.ref.stop(block=False)
        return sm.InstanceEnded(change.unit, instance.ran)

    def _instance_crashed(self, crash: UnitActorCrashed) -> sm.SocketEvent:
        """An instance's actor broke (and stopped): kill what it ran, count it ended."""
        instance = self.instances.pop(crash.unit)
        log(f"{crash.unit}: its actor broke ({crash.where}); killing it:\n{crash.error}")
        instance.drop_connection()
        with contextlib.suppress(OSError):
            instance.slot.io.kill_unit()
        return sm.InstanceEnded(crash.unit, instance.ran)

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


def listener_infos(listeners: list[Listener]) -> list[sm.ListenerInfo]:
    """What the socket machine knows of each bound listener."""
    return [sm.ListenerInfo(item.fileno(), item.bound, item.directive) for item in listeners]


def describe_listeners(listeners: list[Listener]) -> str:
    """`[::]:8080, /run/app.sock`: what a socket listens on, for logs and events."""
    return ", ".join(listener.bound for listener in listeners)
