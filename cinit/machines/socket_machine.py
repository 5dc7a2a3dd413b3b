"""The socket unit's state machine: pure, no threads, no OS; the caller gives the clock.

`step(model, event, now) -> (model, actions)` looks the handler up in `TABLE`
(phase x event type); every pair is in the table, handled or explicitly ignored. Every
phase change goes through `_enter`, which emits one `Transition` when the state a user
sees changes (listening, running and full are all systemd's `active`, so moving between
them is not on the stream, as today). The socket's actor feeds the events (readiness,
the answers to its OS calls, the supervisor's news of the service, stop/kill requests, the
stop timer) and carries the actions out through `cinit.io` (poller, relay, listeners).

Before it has an actor, a socket's machine is at rest (`at_rest`: inactive, skipped or
failed, whatever it showed last) and the supervisor feeds it its verdict on the bind:
`Bound` (listening; the actor takes the machine over), `BindFailed` (failed, result
resources, no listeners) or `ConditionUnmet` (condition-skipped). A failed or skipped
socket started again says so again (a Transition to the same state, with the new reason).

Three ways to activate (`Mode`):

* native, Accept=no: listening --readable--> running (the service gets the listeners,
  polling stops); running --service down--> listening (queued connections trigger the
  next run). An auto-restart keeps it running: the next run takes the listeners again.
* native, Accept=yes: readable --> accept --> start instance `<stem>@N.service`, a unit of
  its own (`instance_unit`) that the unit machine runs like any other, with the connection
  as its only listener; at MaxConnections= live instances the socket is full (not polled)
  until one ends.
* proxy: the relay owns the polling; its first waiting client is a trigger, a target that
  never accepts fails the socket (result timeout) and stops the service.

Every trigger counts against TriggerLimitBurst= per TriggerLimitIntervalSec=; one more
fails the socket (trigger-limit-hit). A failure closes the listeners. A stop closes them,
stops the Accept=yes instances' units (their own stop: KillSignal=, SIGKILL after
TimeoutStopSec=) and reports `SocketStopped` once the last one ended; a failed socket
stays failed through its stop.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import get_args

from cinit.machines.record import Record
from cinit.machines.restart import Result
from cinit.machines.unit_events import Log, Notice, Transition
from cinit.machines.unit_model import State
from cinit.units.model import ActivationMode, RestartPolicy, ServiceType, Unit, UnitSection

# ---- events: what the actor feeds ------------------------------------------------------


class ListenerReadable(Record):
    """Poller -> activator: listener `fd` has a connection (or datagram) waiting."""

    fd: int


class ServiceUp(Record):
    """Supervisor -> activator: the service started (by this or another path): stop polling."""


class ServiceDown(Record):
    """Supervisor -> activator: the service ended: poll again (native) / re-demand (proxy)."""

    restarting: bool = False  # auto-restart: a native service gets the fds again
    start_limit_hit: bool = False  # it cannot start again: the socket fails


class StopSocket(Record):
    """Supervisor -> activator: stop listening, end Accept=yes instances, close listeners."""


class KillInstances(Record):
    """Supervisor -> activator: SIGKILL every Accept=yes instance now."""


class ProxyDemand(Record):
    """Relay -> activator: a client waits and the target is not known up."""


class ProxyGaveUp(Record):
    """Relay -> activator: the target did not accept in time; `reason` says why."""

    reason: str


class ConnectionAccepted(Record):
    """Answer to AcceptConnection: a connection on listener `fd` is held for an instance."""

    fd: int


class AcceptFailed(Record):
    """Answer to AcceptConnection: nothing accepted. `error` is None when the client merely
    went away; `unsupported`: the listener cannot accept at all (a datagram socket)."""

    fd: int
    error: str | None = None
    unsupported: bool = False


class InstanceStarted(Record):
    """Answer to StartInstance: unit `name` exists and was asked to start."""

    fd: int
    name: str


class InstanceFailed(Record):
    """Answer to StartInstance: unit `name` could not even be created (already logged)."""

    fd: int
    name: str


class InstanceEnded(Record):
    """Instance `name`'s unit reached an end state (inactive, failed); `ran`: its main
    process had started."""

    name: str
    ran: bool


class Bound(Record):
    """Supervisor: the socket's listeners are bound (`where`, as logged); its actor
    takes the machine from here."""

    where: str


class BindFailed(Record):
    """Supervisor: the socket could not be bound (or its actor not started); `reason`
    says why. The socket fails (result resources) without ever listening."""

    reason: str


class ConditionUnmet(Record):
    """Supervisor: a Condition*= of the socket does not hold (`condition`): not bound."""

    condition: str


SocketEvent = (
    Bound
    | BindFailed
    | ConditionUnmet
    | ListenerReadable
    | ServiceUp
    | ServiceDown
    | StopSocket
    | KillInstances
    | ProxyDemand
    | ProxyGaveUp
    | ConnectionAccepted
    | AcceptFailed
    | InstanceStarted
    | InstanceFailed
    | InstanceEnded
)
EVENT_TYPES: tuple[type[SocketEvent], ...] = get_args(SocketEvent)

# ---- actions: what the actor carries out -----------------------------------------------


class Listen(Record):
    """Start watching the listeners (native: the poller; proxy: start the relay)."""


class Disarm(Record):
    """Stop polling these listener fds (they stay open)."""

    fds: tuple[int, ...]


class Rearm(Record):
    """Poll these listener fds again."""

    fds: tuple[int, ...]


class CloseListeners(Record):
    """Stop polling, stop the relay, forget the service's inherited fds, close cinit's copies
    (RemoveOnStop= unlinks unix nodes)."""


class AcceptConnection(Record):
    """Accept one connection on listener `fd`; answer ConnectionAccepted or AcceptFailed."""

    fd: int


class StartInstance(Record):
    """Start unit `name` (`instance_unit`) through the unit machine, with the connection
    accepted on `fd` as its only listener; answer InstanceStarted or InstanceFailed."""

    fd: int
    name: str


class StopInstances(Record):
    """Ask every Accept=yes instance's unit to stop (its KillSignal=, SIGKILL after its
    TimeoutStopSec=: the unit machine's own stop); each ends with InstanceEnded."""


class KillEveryInstance(Record):
    """SIGKILL every Accept=yes instance (a kill request to each one's unit)."""


class ProxyServiceStopped(Record):
    """Tell the relay its target's service ended (the next client demands it again)."""


class Info(Record):
    """A routine line (only shown with CINIT_VERBOSE), without the `cinit: ` prefix."""

    text: str


class SocketTriggered(Record):
    """Activator -> supervisor: start `service` (the first connection arrived)."""

    socket: str
    service: str


class SocketFailed(Record):
    """Activator -> supervisor: the socket failed after it was bound (already logged).

    `stop_service`: the service is useless now (a proxy target that never came up)."""

    socket: str
    result: Result
    reason: str
    stop_service: bool


class SocketStopped(Record):
    """Activator -> supervisor: the socket is stopped (listeners closed)."""

    socket: str


SocketAction = (
    Listen
    | Disarm
    | Rearm
    | CloseListeners
    | AcceptConnection
    | StartInstance
    | StopInstances
    | KillEveryInstance
    | ProxyServiceStopped
    | Info
    | Log
    | Transition
    | Notice
    | SocketTriggered
    | SocketFailed
    | SocketStopped
)

# ---- the model ---------------------------------------------------------------------------


class Mode(StrEnum):
    NATIVE = "native"  # Accept=no: the service inherits the listeners
    ACCEPT = "accept"  # Accept=yes: one instance per connection
    PROXY = "proxy"  # a relay in cinit connects clients to the service's own listener


class Phase(StrEnum):
    SKIPPED = "skipped"  # not bound: a condition did not hold; a start binds it
    LISTENING = "listening"  # polled (or relayed): the next connection triggers
    RUNNING = "running"  # native Accept=no: the service has the listeners; not polled
    FULL = "full"  # Accept=yes at MaxConnections= instances: not polled until one exits
    STOPPING = "stopping"  # listeners closed; Accept=yes instances still ending
    INACTIVE = "inactive"  # never bound, or stopped (the supervisor ends the actor)
    FAILED = "failed"  # listeners closed; waits for a stop (a start binds anew)
    FAILED_STOPPING = "failed-stopping"  # failed, its stop waits for the instances
    FAILED_STOPPED = "failed-stopped"  # failed and stopped (or never bound): no actor left


# The unit state each phase is shown as (systemd: listening and running are both active).
SHOWN: dict[Phase, State] = {
    Phase.SKIPPED: State.CONDITION_SKIPPED,
    Phase.LISTENING: State.ACTIVE,
    Phase.RUNNING: State.ACTIVE,
    Phase.FULL: State.ACTIVE,
    Phase.STOPPING: State.STOPPING,
    Phase.INACTIVE: State.INACTIVE,
    Phase.FAILED: State.FAILED,
    Phase.FAILED_STOPPING: State.FAILED,
    Phase.FAILED_STOPPED: State.FAILED,
}
_LIVE = frozenset({Phase.LISTENING, Phase.RUNNING, Phase.FULL})  # listeners open
# Without listeners and without an actor: where a (new) bind starts from.
_AT_REST = frozenset({Phase.SKIPPED, Phase.INACTIVE, Phase.FAILED_STOPPED})


@dataclass(frozen=True, slots=True)
class ListenerInfo:
    """What the machine knows of one bound listener."""

    fd: int
    bound: str  # as logged: `[::]:8080`, `/run/x.sock`
    directive: str  # ListenStream or ListenDatagram


@dataclass(frozen=True, slots=True)
class SocketConfig:
    """The fixed part: the socket unit's settings and its listeners."""

    name: str
    service: str
    service_stem: str
    mode: Mode
    listeners: tuple[ListenerInfo, ...]
    trigger_limit_burst: int = 20
    trigger_limit_interval_sec: float = 2.0
    max_connections: int = 64
    target: str = "?"  # the proxy target, as written

    @property
    def fds(self) -> tuple[int, ...]:
        return tuple(listener.fd for listener in self.listeners)

    def bound(self, fd: int) -> str:
        return next((item.bound for item in self.listeners if item.fd == fd), "?")

    def directive(self, fd: int) -> str:
        return next((item.directive for item in self.listeners if item.fd == fd), "?")


def config_of(
    unit: Unit, service: Unit | None, listeners: Sequence[ListenerInfo] = ()
) -> SocketConfig:
    """The machine's settings for socket `unit` activating `service` (None: it activates
    no loaded service, and is never bound)."""
    section = unit.socket
    assert section is not None
    if section.activation_mode is not ActivationMode.NATIVE:
        mode = Mode.PROXY
    else:
        mode = Mode.ACCEPT if section.accept else Mode.NATIVE
    target = section.proxy_target
    return SocketConfig(
        name=unit.name,
        service=service.name if service is not None else "?",
        service_stem=service.stem if service is not None else "?",
        mode=mode,
        listeners=tuple(listeners),
        trigger_limit_burst=section.trigger_limit_burst,
        trigger_limit_interval_sec=section.trigger_limit_interval_sec,
        max_connections=section.max_connections,
        target=target.render() if target is not None else "?",
    )


def instance_unit(service: Unit, name: str) -> Unit:
    """The unit an Accept=yes connection runs: the template service's ExecStart= main
    command, ready once it runs, no other command, no Restart=, no dependencies or
    conditions (what an instance has always run; the unit machine now runs it)."""
    settings = service.service
    assert settings is not None
    main = settings.replace(
        type=ServiceType.SIMPLE,
        exec_start=settings.exec_start[:1],
        exec_start_pre=(),
        exec_start_post=(),
        exec_stop=(),
        exec_stop_post=(),
        exec_reload=(),
        pid_file="",
        restart=RestartPolicy.NO,
        remain_after_exit=False,
        watchdog_sec=0.0,
        exit_container_on_failure=False,
    )
    unit = UnitSection(description=service.unit.description)
    return service.replace(name=name, unit=unit, service=main)


@dataclass(frozen=True, slots=True)
class SocketModel:
    """Everything the machine remembers; immutable, replaced on every step."""

    config: SocketConfig
    phase: Phase = Phase.LISTENING
    triggers: tuple[float, ...] = ()  # trigger times within the limit's interval
    instances: tuple[tuple[str, int], ...] = ()  # live Accept=yes instances: (name, fd)
    next_instance: int = 0  # N of the next `<stem>@N.service`
    cap_logged: bool = False  # MaxConnections= reached was said once

    @property
    def state(self) -> State:
        """The unit state shown for this socket."""
        return SHOWN[self.phase]


def start(config: SocketConfig) -> tuple[SocketModel, list[SocketAction]]:
    """A socket bound with nothing said about it (an activator created without the
    supervisor's `Bound` step, as in its tests): listening."""
    return SocketModel(config), [Listen()]


# The phase at rest that shows each state a socket without an actor can be in.
_REST_SHOWING: dict[State, Phase] = {
    State.INACTIVE: Phase.INACTIVE,
    State.CONDITION_SKIPPED: Phase.SKIPPED,
    State.FAILED: Phase.FAILED_STOPPED,
}


def at_rest(config: SocketConfig, shown: State = State.INACTIVE) -> SocketModel:
    """The machine of a socket without listeners nor actor whose unit shows `shown`
    (never started: inactive; skipped or failed at its last bind; stopped): the
    supervisor feeds it Bound, BindFailed or ConditionUnmet."""
    return SocketModel(config, phase=_REST_SHOWING.get(shown, Phase.INACTIVE))


Step = tuple[SocketModel, list[SocketAction]]


def step(model: SocketModel, event: SocketEvent, now: float) -> Step:
    """Feed one event at `now` (seconds, any monotonic clock)."""
    handler = TABLE[(model.phase, type(event))]
    return handler(model, event, now)


# ---- the one mutator ---------------------------------------------------------------------


def _enter(
    model: SocketModel,
    phase: Phase,
    reason: str,
    result: Result = Result.SUCCESS,
    *,
    news: bool = False,
) -> Step:
    """Move to `phase`; one Transition when the state shown changes, or when `news`: a
    new verdict on a socket shown so already (failed again at a new bind, skipped again)."""
    old, new = model.state, SHOWN[phase]
    moved = replace(model, phase=phase)
    if old is new and not news:
        return moved, []
    return moved, [Transition(model.config.name, old, new, reason, result)]


# ---- handlers ----------------------------------------------------------------------------

Handler = Callable[[SocketModel, SocketEvent, float], Step]


def _ignore(model: SocketModel, event: SocketEvent, now: float) -> Step:
    """Stale or meaningless in this phase (a readiness after the service took the fds...)."""
    return model, []


def _bound(model: SocketModel, event: SocketEvent, now: float) -> Step:
    assert isinstance(event, Bound)
    config = model.config
    said = Info(f"{config.name}: listening on {event.where}")
    model, entered = _enter(model, Phase.LISTENING, f"listening on {event.where}")
    fields: dict[str, object] = {
        "listeners": [listener.bound for listener in config.listeners],
        "service": config.service,
        "mode": "proxy" if config.mode is Mode.PROXY else "native",  # ActivationMode=
        "accept": config.mode is Mode.ACCEPT,
    }
    return model, [said, *entered, Notice(config.name, "socket-bound", fields), Listen()]


def _bind_failed(model: SocketModel, event: SocketEvent, now: float) -> Step:
    assert isinstance(event, BindFailed)
    name, result = model.config.name, Result.RESOURCES
    said = [Log(event.reason), Log(f"{name}: failed ({result.value})")]
    model, entered = _enter(model, Phase.FAILED_STOPPED, event.reason, result, news=True)
    notice = Notice(name, "socket-failed", {"result": result.value, "reason": event.reason})
    return model, [*said, *entered, notice]


def _condition_unmet(model: SocketModel, event: SocketEvent, now: float) -> Step:
    assert isinstance(event, ConditionUnmet)
    said = Log(f"{model.config.name}: skipped ({event.condition} not met)")
    model, entered = _enter(model, Phase.SKIPPED, event.condition, news=True)
    return model, [said, *entered]


def _readable(model: SocketModel, event: SocketEvent, now: float) -> Step:
    assert isinstance(event, ListenerReadable)
    config = model.config
    if event.fd not in config.fds or config.mode is Mode.PROXY:
        return model, []
    if config.mode is Mode.ACCEPT:
        return model, [AcceptConnection(event.fd)]
    return _trigger(model, now, config.bound(event.fd))


def _accepted(model: SocketModel, event: SocketEvent, now: float) -> Step:
    assert isinstance(event, ConnectionAccepted)
    model, actions = _trigger(model, now, model.config.bound(event.fd))
    if model.phase is not Phase.LISTENING:  # failed: the trigger limit
        return model, actions
    name = f"{model.config.service_stem}@{model.next_instance}.service"
    model = replace(model, next_instance=model.next_instance + 1)
    where = model.config.bound(event.fd)
    said = Info(f"{name}: starting for a connection on {where}")
    return model, [*actions, said, StartInstance(event.fd, name)]


def _accept_failed(model: SocketModel, event: SocketEvent, now: float) -> Step:
    assert isinstance(event, AcceptFailed)
    config = model.config
    if event.unsupported:
        where = f"{config.directive(event.fd)}={config.bound(event.fd)}"
        return _fail(model, Result.RESOURCES, f"Accept=yes cannot accept on {where}")
    actions: list[SocketAction] = []
    if event.error is not None:
        actions.append(Log(f"{config.name}: cannot accept a connection: {event.error}"))
    return model, [*actions, Rearm((event.fd,))]


def _instance_started(model: SocketModel, event: SocketEvent, now: float) -> Step:
    assert isinstance(event, InstanceStarted)
    model = replace(model, instances=(*model.instances, (event.name, event.fd)))
    return _after_instance(model, event.fd)


def _instance_failed(model: SocketModel, event: SocketEvent, now: float) -> Step:
    assert isinstance(event, InstanceFailed)
    model, actions = _after_instance(model, event.fd)
    return model, [_failed_to_start(model, event.name, event.fd), *actions]


def _failed_to_start(model: SocketModel, name: str, fd: int) -> Log:
    return Log(f"{name}: failed to start for a connection on {model.config.bound(fd)}")


def _after_instance(model: SocketModel, fd: int) -> Step:
    """After a connection was handed on: full at MaxConnections=, else poll `fd` again."""
    cap = model.config.max_connections
    if len(model.instances) < cap:
        return model, [Rearm((fd,))]
    actions: list[SocketAction] = []
    if not model.cap_logged:
        model = replace(model, cap_logged=True)
        actions.append(
            Log(
                f"{model.config.name}: MaxConnections={cap} reached; "
                "new connections wait until an instance exits"
            )
        )
    model, entered = _enter(model, Phase.FULL, f"MaxConnections={cap} reached")
    # Every listener: another one still armed would accept past the cap.
    return model, [*actions, *entered, Disarm(model.config.fds)]


def _instance_ended(model: SocketModel, event: SocketEvent, now: float) -> Step:
    assert isinstance(event, InstanceEnded)
    fds = dict(model.instances)
    if event.name not in fds:
        return model, []
    left = tuple(item for item in model.instances if item[0] != event.name)
    model = replace(model, instances=left)
    actions: list[SocketAction] = []
    if not event.ran:
        actions.append(_failed_to_start(model, event.name, fds[event.name]))
    if model.phase is Phase.FULL and len(left) < model.config.max_connections:
        model, entered = _enter(model, Phase.LISTENING, "an instance exited")
        actions += [*entered, Rearm(model.config.fds)]
    elif model.phase in (Phase.STOPPING, Phase.FAILED_STOPPING) and not left:
        model, finished = _finish_stop(model)
        actions += finished
    return model, actions


def _service_up(model: SocketModel, event: SocketEvent, now: float) -> Step:
    if model.config.mode is not Mode.NATIVE:
        return model, []
    model, actions = _enter(model, Phase.RUNNING, f"{model.config.service} is up")
    return model, [*actions, Disarm(model.config.fds)]


def _service_down(model: SocketModel, event: SocketEvent, now: float) -> Step:
    assert isinstance(event, ServiceDown)
    config = model.config
    if event.start_limit_hit:
        reason = f"{config.service} hit its start limit and cannot be started again"
        return _fail(model, Result.SERVICE_START_LIMIT_HIT, reason)
    if config.mode is Mode.PROXY:
        return model, [ProxyServiceStopped()]
    if model.phase is not Phase.RUNNING or event.restarting:
        return model, []  # an auto-restart: the next run takes the listeners again
    model, actions = _enter(model, Phase.LISTENING, f"{config.service} is down")
    said = Info(f"{config.name}: {config.service} is down; listening again")
    return model, [*actions, said, Rearm(config.fds)]


def _proxy_demand(model: SocketModel, event: SocketEvent, now: float) -> Step:
    if model.config.mode is not Mode.PROXY:
        return model, []
    return _trigger(model, now, "")


def _proxy_gave_up(model: SocketModel, event: SocketEvent, now: float) -> Step:
    assert isinstance(event, ProxyGaveUp)
    if model.config.mode is not Mode.PROXY:
        return model, []
    reason = f"proxy target {model.config.target} did not accept: {event.reason}"
    return _fail(model, Result.TIMEOUT, reason, stop_service=True)


def _stop(model: SocketModel, event: SocketEvent, now: float) -> Step:
    failed = model.phase is Phase.FAILED
    model, actions = _enter(
        model, Phase.FAILED_STOPPING if failed else Phase.STOPPING, "stop requested"
    )
    if not failed:
        actions.append(CloseListeners())  # a failed socket closed them already
    if not model.instances:
        model, finished = _finish_stop(model)
        return model, [*actions, *finished]
    return model, [*actions, StopInstances()]


def _kill(model: SocketModel, event: SocketEvent, now: float) -> Step:
    return model, [KillEveryInstance()] if model.instances else []


def _finish_stop(model: SocketModel) -> Step:
    done = Phase.FAILED_STOPPED if model.phase is Phase.FAILED_STOPPING else Phase.INACTIVE
    model, entered = _enter(model, done, "stopped")
    return model, [*entered, SocketStopped(model.config.name)]


# ---- triggers and failure ----------------------------------------------------------------


def _trigger(model: SocketModel, now: float, where: str) -> Step:
    """Count a trigger at `now`: the socket fails past the trigger limit, else the service
    (or, for Accept=yes, the caller's instance) starts."""
    config = model.config
    interval = config.trigger_limit_interval_sec
    burst = config.trigger_limit_burst
    recent = tuple(t for t in model.triggers if now - t <= interval)
    model = replace(model, triggers=(*recent, now))
    if interval > 0 and burst > 0 and len(model.triggers) > burst:
        reason = f"trigger limit hit: more than {burst} triggers within {interval:g}s"
        return _fail(model, Result.TRIGGER_LIMIT_HIT, reason)
    actions: list[SocketAction] = []
    if config.mode is Mode.NATIVE:  # the service takes the listeners: stop polling
        model, actions = _enter(model, Phase.RUNNING, "triggered")
        actions.append(Disarm(config.fds))
    fields: dict[str, object] = {"service": config.service, "triggers": len(model.triggers)}
    if where:
        fields["listener"] = where
    on = f" on {where}" if where else ""
    actions += [
        Notice(config.name, "socket-triggered", fields),
        Info(f"{config.name}: triggered{on}; starting {config.service}"),
    ]
    if config.mode is not Mode.ACCEPT:
        actions.append(SocketTriggered(config.name, config.service))
    return model, actions


def _fail(model: SocketModel, result: Result, reason: str, *, stop_service: bool = False) -> Step:
    name = model.config.name
    actions: list[SocketAction] = [
        CloseListeners(),
        Log(f"{name}: failed ({result.value}): {reason}"),
    ]
    model, entered = _enter(model, Phase.FAILED, reason, result)
    notice = Notice(name, "socket-failed", {"result": result.value, "reason": reason})
    return model, [
        *actions,
        *entered,
        notice,
        SocketFailed(name, result, reason, stop_service),
    ]


# ---- the table ---------------------------------------------------------------------------

_ALL = frozenset(Phase)

# Each event: its handler and the phases it acts in; in every other phase it is ignored.
_ROWS: dict[type[SocketEvent], tuple[Handler, frozenset[Phase]]] = {
    Bound: (_bound, _AT_REST),  # a live or failed socket still has its actor
    BindFailed: (_bind_failed, _AT_REST),
    ConditionUnmet: (_condition_unmet, _AT_REST),
    ListenerReadable: (_readable, frozenset({Phase.LISTENING})),  # running/full: stale
    ConnectionAccepted: (_accepted, frozenset({Phase.LISTENING})),
    AcceptFailed: (_accept_failed, frozenset({Phase.LISTENING})),
    InstanceStarted: (_instance_started, frozenset({Phase.LISTENING})),
    InstanceFailed: (_instance_failed, frozenset({Phase.LISTENING})),
    InstanceEnded: (_instance_ended, _ALL),  # instances outlive a failure
    ServiceUp: (_service_up, frozenset({Phase.LISTENING})),
    ServiceDown: (_service_down, _LIVE),  # failed or stopping: nothing left to re-arm
    ProxyDemand: (_proxy_demand, frozenset({Phase.LISTENING})),
    ProxyGaveUp: (_proxy_gave_up, frozenset({Phase.LISTENING})),
    StopSocket: (_stop, _LIVE | {Phase.FAILED}),  # a second stop changes nothing
    KillInstances: (_kill, _ALL),
}

TABLE: dict[tuple[Phase, type[SocketEvent]], Handler] = {
    (phase, kind): handler if phase in acts_in else _ignore
    for kind, (handler, acts_in) in _ROWS.items()
    for phase in Phase
}
