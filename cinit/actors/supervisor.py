"""The unit supervisor: one actor under the root that boots, watches and stops the units.

It creates one `UnitActor` per service (each on its own thread, so independent units
start concurrently), asks the boot units to start, and releases each one when every unit
it is ordered after has settled (`cinit.machines.ordering`). It reacts to what the units
report: OnFailure= (start the handlers, once per failure), ExitContainerOnFailure=
(`ExitRequested` to the root), and it runs the ordered shutdown (`StopAllUnits` from the
root, at any moment, also mid-boot: pending starts are cancelled and units stop in
reverse dependency order; `UnitsStopped` goes back to the root). `KillAllUnits` SIGKILLs
every unit now; `ForwardSignal` passes SIGUSR1/SIGUSR2 to every main process.

daemon-reload (`DaemonReload` from the control desk, `ReloadAllUnits` on SIGHUP): the
unit directories are read again by the boot's reader; a new set with errors is refused
whole; otherwise the supervisor takes it on (systemd's semantics: a running unit keeps its
processes and gets its new definition, `Redefined`, for its next start; added units can be
started; a removed unit that runs stays until it is stopped, then its actor ends,
`Retire`), tells `unit-added`/`unit-changed`/`unit-removed`, and with `apply` stops the
removed, starts the added and restarts the changed units. `daemon-reloaded` says how it
went. `ReloadUnit` asks one unit for its ExecReload= (the unit machine's reload).
`LoadInstance` (`systemctl start x@a` of an instance not loaded) reads the directories with
that instance asked for and takes on only the new instances, by the same path as a
daemon-reload's added units (`_take_on`); `instance-loaded` says how it went.

Socket units (`cinit.actors.socket_activator`): every socket whose conditions hold is
bound before any service starts, before the first wave (`cinit.io.socket_binding`); on
BootUnits each gets its `SocketActivator` with its listeners; a socket that could not be
bound fails (result resources) together with the service it activates (result
dependency), with their OnFailure= and the service's ExitContainerOnFailure=. What a socket
becomes at its bind (listening, failed, condition-skipped) is a step of its own machine
(`cinit.machines.socket_machine`) that the supervisor feeds and tells on; other units
boot normally. Socket-activated services are not started at boot (the graph's
`boot_units` leaves them out): `SocketTriggered` starts one. The supervisor tells a
service's sockets when it comes up (`ServiceUp`: they stop polling) and when it ends
(`ServiceDown`: they poll again, so connections queued meanwhile start the next run).
A socket stopped later (`cinit stop`) closes its listeners and its actor ends; its service
runs on with what it inherited. A start binds it again (a failed socket too, once its old
actor stopped), with a new actor; under a running service the new one waits, unpolled,
until the service ends. A bind failure after boot fails the socket alone. Without a
`SocketSupport` (unit tests of the supervisor alone) a socket counts as ready at once and
nothing is bound.

Timer units (`cinit.actors.timer_keeper`, issue 17): one keeper actor runs every timer's
machine. A timer's start arms it and settles it at once (ready); a stop disarms it. An
elapse comes back as `TimerTriggered`, which starts the service like a socket's trigger;
the supervisor tells the keeper when a timer's service goes up and comes to rest. Timer-
started services are not started at boot (`boot_units` leaves them out). Without a
`TimerSupport` (unit tests of the supervisor alone) a timer only counts as started.

Supervision: a unit actor that breaks is restarted on the same `UnitSlot` (nothing is
lost, see `cinit.actors.unit`), logged and counted. More than `MAX_RESTARTS` crashes of
one unit's actor within `RESTART_WINDOW` seconds (OTP's restart intensity) and the
supervisor gives up on that unit: its processes are killed and it counts as failed.
The supervisor itself never lets an exception escape: a message it fails to handle is
logged and counted, and it carries on with its state.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import TYPE_CHECKING

import pykka

from cinit.actors.root import ForwardSignal, KillAllUnits, ReloadAllUnits, StopAllUnits
from cinit.actors.unit import Scheduling, UnitActor, UnitActorCrashed, UnitReport
from cinit.actors.unit_runner import PrepareStart, Redefined, Retire, StartNotBefore
from cinit.actors.unit_slot import Postbox, UnitSlot
from cinit.io.log import info, log
from cinit.machines import lifecycle as lc
from cinit.machines.ordering import StartBook, StopPlan
from cinit.machines.record import Record
from cinit.machines.requests import (
    DaemonReload,
    LoadInstance,
    ReloadUnit,
    ResetFailedUnit,
    StartUnit,
    StopUnit,
)
from cinit.machines.restart import Result
from cinit.machines.unit_events import (
    CannotStart,
    DependenciesSettled,
    DependencyFailed,
    KillRequested,
    Log,
    Notice,
    ReloadRequested,
    ReportSettled,
    ReportStopped,
    RequestContainerExit,
    RequestOnFailure,
    ResetFailed,
    SignalRequested,
    StartRequested,
    StopRequested,
    Transition,
)
from cinit.machines.unit_model import Outcome, State
from cinit.machines.unit_state import monotonic_usec
from cinit.machines.vocabulary import (
    AT_REST_STATES,
    DAEMON_RELOADED_EVENT,
    FRESH_START_STATES,
    INSTANCE_LOADED_EVENT,
    NO_PROCESS_STATES,
    UNIT_ADDED_EVENT,
    UNIT_CHANGED_EVENT,
    UNIT_REMOVED_EVENT,
)
from cinit.units.diagnostics import Diagnostic, Severity
from cinit.units.graph import build_graph
from cinit.units.loader import UnitSet
from cinit.units.model import Unit, UnitKind
from cinit.units.unit_diff import diff_units, unit_summary
from cinit.units.unit_names import is_instance, template_of

MAX_RESTARTS = 5
RESTART_WINDOW = 10.0  # seconds
RETRY_DELAY = 0.1  # seconds before starting an actor again when creating it failed

if TYPE_CHECKING:
    from cinit.actors.socket_activator import SocketActivator, SocketSupport
    from cinit.actors.timer_keeper import TimerKeeper, TimerSupport
    from cinit.actors.unit_ports import Tellable, UnitPort
    from cinit.io.socket_binding import SocketBinding
    from cinit.machines.socket_machine import SocketEvent

    IoFactory = Callable[[Unit, Tellable], UnitPort]

_SERVICE_UP = (State.STARTING, State.RUNNING, State.ACTIVE, State.RELOADING)
# Up, or about to be: a conflicting or bound unit in one of these states is stopped.
_UP_OR_PENDING = (*_SERVICE_UP, State.WAITING, State.AUTO_RESTART)


_SAID = (Severity.ERROR, Severity.WARNING)  # findings that say why a unit was left out


def _fatal(unit_set: UnitSet) -> list[Diagnostic]:
    """What makes a unit set not ok: its errors (and warnings, when strict)."""
    return unit_set.errors + (unit_set.warnings if unit_set.strict else [])


# Where a unit goes down to, and where it was up (BindsTo= stops the units bound to it).
_DOWN = (State.INACTIVE, State.FAILED, State.EXITED)
_WAS_UP = (*_SERVICE_UP, State.STOPPING)
_SERVICE_DOWN = (State.INACTIVE, State.EXITED, State.FAILED, State.CONDITION_SKIPPED)
# A timer's service counts as running (an elapse is skipped) from its start to its rest;
# an auto-restart is still the same run.
_TIMER_SERVICE_UP = frozenset(
    {State.STARTING, State.RUNNING, State.ACTIVE, State.STOPPING, State.AUTO_RESTART}
)


class BootUnits(Record):
    """Start the boot units; `root` receives UnitsStopped and ExitRequested."""

    root: Tellable


class RetryActor(Record):
    """Timer: try again to start the actor of `name`."""

    name: str


class _ActiveUnits:
    """The units that are active now, as a container `StartBook.releasable` asks."""

    def __init__(self, supervisor: UnitSupervisor) -> None:
        self.supervisor = supervisor

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.supervisor._active(name)


class UnitSupervisor(pykka.ThreadingActor):
    """Create with `UnitSupervisor.start(unit_set, io_factory, scheduler)`; talk with tell."""

    use_daemon_thread = True

    def __init__(
        self,
        unit_set: UnitSet,
        io_factory: IoFactory,
        scheduler: Scheduling,
        *,
        events: Tellable | None = None,
        clock: Callable[[], float] = time.monotonic,
        unit_clock: Callable[[], int] | None = None,
        closing: threading.Event | None = None,
        sockets: SocketSupport | None = None,
        started: Mapping[str, UnitSlot] | None = None,
        reports: Postbox | None = None,
        bound: Mapping[str, SocketBinding] | None = None,
        timers: TimerSupport | None = None,
        reloader: Callable[[Collection[str]], UnitSet] | None = None,
        published: Callable[[UnitSet], None] | None = None,
        late_sockets: Callable[[], SocketSupport] | None = None,
    ) -> None:
        super().__init__()
        self.units: dict[str, Unit] = dict(unit_set.units)
        self.graph = unit_set.graph
        self.io_factory = io_factory
        self.scheduler = scheduler
        self.events = events  # where Transitions go too (the event stream, issue 6)
        self.clock = clock
        self.unit_clock = unit_clock
        self.closing = closing
        self.root: Tellable | None = None
        self.book = StartBook(self.graph)
        self.slots: dict[str, UnitSlot] = dict(started or {})
        # Where unit runners report: what the first wave reported waits there until
        # BootUnits took the first wave over (before that, `book` knows none of it).
        self.reports = reports if reports is not None else Postbox()
        # Boot units the first wave already started (`cinit.actors.first_wave`): at boot
        # they get an actor but no start request.
        self.started_early: set[str] = set(self.slots)
        self.states: dict[str, State] = {}
        self.stop_plans: list[StopPlan] = []
        # A restart's stop under way: the unit -> the units stopped with it, started again
        # with it (Requires=, BindsTo=, PartOf=: systemd propagates restarts too).
        self.restarting: dict[str, tuple[str, ...]] = {}
        self.restart_when_down: set[str] = set()  # ... those still stopping at the start
        self.restart_stops: set[str] = set()  # units whose stop is a restart's, not yet told
        self.shutdown: StopPlan | None = None
        self.units_stopped_sent = False
        self.boot_set: set[str] | None = None  # the boot units, until they all settled
        self.crashes: dict[str, list[float]] = {}
        self.crash_count = 0  # actor crashes, all units
        self.internal_errors = 0  # messages the supervisor itself failed to handle
        self.sockets = sockets
        # Sets socket activation up when the first socket units come after the boot.
        self.late_sockets = late_sockets
        self.socket_actors: dict[str, pykka.ActorRef[SocketActivator]] = {}  # bound socket -> actor
        self.socket_outcomes: dict[str, Outcome] = {}  # sockets not bound: failed, skipped
        self.socket_rebinds: set[str] = set()  # failed sockets to bind once their actor stopped
        self.bound: dict[str, SocketBinding] = dict(bound or {})  # bound at boot, not handed over
        self.timers = timers
        self.timer_keeper: pykka.ActorRef[TimerKeeper] | None = None  # with timer units
        # daemon-reload: reads the unit directories again, as the boot did (None: cannot),
        # with the instances named (those made on demand, read again by each reload)
        self.reloader = reloader
        self.published = published  # told each unit set taken on (what `status` describes)
        self.demanded: set[str] = set()  # instances made on demand (`systemctl start x@a`)
        self.boot_names: frozenset[str] | None = None  # --systemd's boot set, if it was given
        self.retired: set[str] = set()  # removed by a daemon-reload, still running
        self.apply_restarts: set[str] = set()  # --apply: changed units to start once down
        # Changed by a daemon-reload while up: they still run the older definition (the
        # next --apply restarts them too, as `supervisorctl update` compares what runs).
        self.outdated: set[str] = set()

    # ---- pykka hooks ---------------------------------------------------------------------

    def on_start(self) -> None:
        if not self.slots:  # no first wave: nothing waits for BootUnits
            self.reports.attach(self.actor_ref)
        timers = {n: u for n, u in self.units.items() if u.kind is UnitKind.TIMER}
        if timers and self.timers is not None:
            from cinit.actors.timer_keeper import TimerKeeper

            self.timer_keeper = TimerKeeper.start(
                timers, self.timers, self.actor_ref, self.scheduler
            )

    def on_stop(self) -> None:
        if self.timer_keeper is not None:
            self.timer_keeper.stop(block=False)

    def on_receive(self, message: object) -> None:
        try:
            self._handle(message)
            self._check_boot_settled()
        except BaseException as exc:  # never let it escape: pykka would stop the actor
            self.internal_errors += 1
            text = "".join(traceback.format_exception(exc)).rstrip()
            log(f"internal error in the unit supervisor handling {message!r}:\n{text}")

    # ---- dispatch ------------------------------------------------------------------------

    def _handle(self, message: object) -> None:
        if isinstance(message, UnitReport):
            self._on_report(message.unit, message.item)
        elif isinstance(message, UnitActorCrashed):
            self._on_crash(message)
        elif isinstance(message, BootUnits):
            self.root = message.root
            self._bind_sockets()
            self._start_units(self.graph.boot_units())
            self.reports.attach(self.actor_ref)  # the first wave's reports, in order
            self.socket_outcomes.clear()  # a later start of an unbound socket binds again
            self.boot_set = set(self.book.in_play)  # with what they pulled in
        elif isinstance(message, StartUnit):
            if self.shutdown is None:
                self._start_restarted(message.name)
        elif isinstance(message, StopUnit):
            self._stop_unit(message.name, restart=message.restart)
        elif isinstance(message, ReloadUnit):
            if self.shutdown is None and message.name in self.units:
                self._tell(message.name, ReloadRequested())
        elif isinstance(message, LoadInstance):
            self._load_instance(message.name)
        elif isinstance(message, DaemonReload):
            self._daemon_reload(message.apply, requested=True)
        elif isinstance(message, ReloadAllUnits):
            self._daemon_reload(False, requested=False)
        elif isinstance(message, ResetFailedUnit):
            if message.name in self.book.in_play:
                self._tell(message.name, ResetFailed())
        elif isinstance(message, StopAllUnits):
            self._stop_all()
        elif isinstance(message, KillAllUnits):
            for name in sorted(self.book.in_play):
                self._tell(name, KillRequested())
        elif isinstance(message, ForwardSignal):
            for name in sorted(self.book.in_play):
                self._tell(name, SignalRequested(message.signo))
        elif isinstance(message, RetryActor):
            self._ensure_actor(message.name)
        elif not self._handle_timer(message) and not self._handle_socket_report(message):
            log(f"unit supervisor: unexpected message {message!r}")

    def _check_boot_settled(self) -> None:
        """Tell the root `BootSettled` once every boot unit settled (for --then-exec)."""
        boot = self.boot_set
        if boot is None or self.root is None or self.shutdown is not None:
            return
        if all(name in self.book.settled for name in boot):
            self.boot_set = None
            if not any(self._exits_container(name) for name in boot):
                self.root.tell(lc.BootSettled())  # else its ExitRequested decides

    def _exits_container(self, name: str) -> bool:
        """Whether `name` failed with ExitContainerOnFailure=yes."""
        service = self.units[name].service
        failed = self.book.settled.get(name) is Outcome.FAILED
        return failed and service is not None and service.exit_container_on_failure

    # ---- starting ------------------------------------------------------------------------

    def _start_units(self, names: list[str]) -> None:
        requested = self._without_conflicts(self.book.request(names))
        for name in requested:
            if name in self.started_early:  # asked and released by the first wave
                self.started_early.discard(name)
                self.book.waiting.discard(name)
                self._ensure_actor(name)
                continue
            self._tell(name, StartRequested())
            # Release it at once when it waits for nothing: its actor starts work while
            # the next actors are still being created.
            self._release([name])
        self._release()

    def _start_restarted(self, name: str) -> None:
        """Start `name`, and what the stop of its restart took along: at once when at rest,
        else once it is (a start request meeting a unit still stopping would be lost)."""
        now = [name]
        for other in self.restarting.pop(name, ()):
            if self.states.get(other, State.INACTIVE) in AT_REST_STATES:
                now.append(other)
            else:
                self.restart_when_down.add(other)
        self._start_units(now)

    def _without_conflicts(self, requested: list[str]) -> list[str]:
        """Conflicts= (systemd.unit): starting a unit stops the units it conflicts with.
        Of two conflicting units asked to start together, the later in start order runs
        (the earlier is not started); a conflicting unit already up is stopped."""
        position = {name: index for index, name in enumerate(requested)}
        dropped: set[str] = set()
        for name in reversed(requested):
            if name in dropped:
                continue
            for other in sorted(self.graph.conflicts(name)):
                if other in dropped:
                    continue
                if other in position:
                    dropped.add(other)
                    log(f"{other}: not started: it conflicts with {name}")
                    self.book.waiting.discard(other)
                    self.book.settle(other, Outcome.STOPPED)  # nothing waits for it
                    self.started_early.discard(other)
                    if self.states.get(other, State.INACTIVE) in _UP_OR_PENDING:
                        self._stop_unit(other)  # the first wave started it already
                elif self.states.get(other, State.INACTIVE) in _UP_OR_PENDING:
                    log(f"{other}: stopping: {name} conflicts with it")
                    self._stop_unit(other)
        return [name for name in requested if name not in dropped]

    def _release(self, among: list[str] | None = None) -> None:
        """Let every waiting unit (of `among`) whose ordering dependencies settled go on."""
        if self.shutdown is not None:
            return  # stopping: pending starts are cancelled, not released
        active = _ActiveUnits(self)  # asked only about Requisite= units: no set built
        for name, failed in self.book.releasable(among, active):
            if failed:
                requisite = self.graph.requisite(name)
                needed = tuple(dep for dep in failed if dep not in requisite or dep in active)
                inactive = tuple(dep for dep in failed if dep in requisite and dep not in active)
                self._tell(name, DependencyFailed(needed, inactive))
                continue
            down = self._bound_down(name)
            if down is not None:
                log(f"{name}: not started: bound to {down}, which is not active")
                self._stop_unit(name)
                continue
            self._tell(name, DependenciesSettled())

    def _bound_down(self, name: str) -> str | None:
        """A BindsTo= unit `name` is ordered after that did not become active, if any
        (systemd: with After=, the unit bound to must be active for `name` to start)."""
        for dep in sorted(self.graph.binds_to(name) & self.graph.ordered_after(name)):
            if not self._active(dep):
                return dep
        return None

    def _active(self, name: str) -> bool:
        """Whether `name` is active now (a socket without `SocketSupport`: once started)."""
        if self.states.get(name) in (State.ACTIVE, State.RELOADING):
            return True
        unsupported_socket = self.sockets is None and self.units[name].kind is UnitKind.SOCKET
        return unsupported_socket and self.book.settled.get(name) is Outcome.READY

    def _tell(self, name: str, message: object) -> None:
        """Send to a unit; sockets (issue 5) answer for themselves here."""
        unit = self.units[name]
        if unit.kind is UnitKind.SOCKET:
            self._socket(name, message)
            return
        if unit.kind is UnitKind.TIMER:
            self._timer(name, message)
            return
        slot = self._ensure_actor(name)
        if slot is None:
            return
        if slot.abandoned:  # its actor is gone for good: answer for it
            if isinstance(message, StartRequested):
                self.book.settle(name, Outcome.FAILED)
            elif isinstance(message, StopRequested | KillRequested):
                self._on_stopped(name)
            return
        slot.tell(message)

    def _socket(self, name: str, message: object) -> None:
        if self.sockets is None:  # nothing is bound: ready at once, stopped at once
            if isinstance(message, StartRequested):
                self.book.settle(name, Outcome.READY)
            elif isinstance(message, StopRequested | KillRequested):
                self._on_stopped(name)
            return
        from cinit.actors.socket_activator import KillInstances, StopSocket

        actor = self.socket_actors.get(name)
        if isinstance(message, StartRequested):
            if actor is not None and self.states.get(name) is State.FAILED:
                # Its listeners are closed: its actor ends first (Accept=yes instances
                # too), then SocketStopped binds it again.
                self.socket_rebinds.add(name)
                actor.tell(StopSocket())
                return
            if actor is None and name not in self.socket_outcomes:
                self._bind_socket(name)  # started again after a stop or a failure
            self.book.settle(name, self.socket_outcomes.pop(name, Outcome.READY))
        elif isinstance(message, StopRequested | KillRequested):
            self.socket_rebinds.discard(name)
            if actor is None:
                self.socket_outcomes.pop(name, None)  # a later start tries again
                self._on_stopped(name)
                return
            if isinstance(message, KillRequested):
                actor.tell(KillInstances())
            service = self.graph.activates(name)
            if service is not None and self.shutdown is None and self._service_up(service):
                # As systemd: the service goes on, with the listeners it inherited.
                log(f"{name}: stopping; {service} keeps running with its listeners")
            actor.tell(StopSocket())  # answered by SocketStopped

    # ---- timers (issue 17) ---------------------------------------------------------------

    def _timer(self, name: str, message: object) -> None:
        """A timer is up once armed and down once disarmed: both at once (its machine, in
        the keeper, says the Transitions). Without `TimerSupport` it only counts."""
        from cinit.actors.timer_keeper import StartTimer, StopTimer

        keeper = self.timer_keeper
        if isinstance(message, StartRequested):
            if keeper is not None:
                service = self.graph.timer_starts(name)
                up = service is not None and self._timer_service_up(service)
                keeper.tell(StartTimer(name, up))
            self.book.settle(name, Outcome.READY)
        elif isinstance(message, StopRequested | KillRequested):
            if keeper is not None:
                keeper.tell(StopTimer(name))
            self._on_stopped(name)

    def _redefine_timers(self, new: UnitSet) -> None:
        """A daemon-reload's timers reach the keeper (started now if the first ones came)."""
        from cinit.actors.timer_keeper import RedefineTimers, TimerKeeper

        timers = {n: u for n, u in new.units.items() if u.kind is UnitKind.TIMER}
        if not timers or self.timers is None:
            return
        if self.timer_keeper is None:
            self.timer_keeper = TimerKeeper.start(
                timers, self.timers, self.actor_ref, self.scheduler
            )
        else:
            self.timer_keeper.tell(RedefineTimers(timers))

    def _timer_service_up(self, service: str) -> bool:
        return self.states.get(service, State.INACTIVE) in _TIMER_SERVICE_UP

    def _handle_timer(self, message: object) -> bool:
        """TimerTriggered and PrepareService; False for anything else."""
        if self.timer_keeper is None:
            return False  # no keeper, no TimerTriggered (and timer_keeper stays unimported)
        from cinit.actors.timer_keeper import PrepareService, TimerTriggered

        if isinstance(message, PrepareService):
            self._prepare_start(message.service)
            return True
        if not isinstance(message, TimerTriggered):
            return False
        if self.shutdown is None:
            if message.not_before is not None:  # before the start request, in its slot
                self._tell_not_before(message.service, message.not_before)
            self._start_units([message.service])
        for report in message.reports:
            self._on_report(message.timer, report)
        return True

    def _tell_not_before(self, service: str, at: float) -> None:
        self._tell_service_actor(service, StartNotBefore(at))

    def _prepare_start(self, service: str) -> None:
        """A timer of `service` elapses soon: its actor (made now if need be) readies the
        start's first command while the service is at rest."""
        at_rest = self.states.get(service, State.INACTIVE) in FRESH_START_STATES
        if self.shutdown is None and at_rest:
            self._tell_service_actor(service, PrepareStart())

    def _tell_service_actor(self, service: str, message: object) -> None:
        """Tell the actor of `service` (made now if need be), when it is a service unit."""
        unit = self.units.get(service)
        if unit is None or unit.kind is not UnitKind.SERVICE:
            return
        slot = self._ensure_actor(service)
        if slot is not None and not slot.abandoned:
            slot.tell(message)

    def _tell_timers(self, service: str, state: State) -> None:
        """A timer-started service went up or came to rest: its timers' bases move."""
        from cinit.actors.timer_keeper import ServiceChanged

        if self.timer_keeper is not None and self.graph.timed_by(service):
            self.timer_keeper.tell(ServiceChanged(service, state in _TIMER_SERVICE_UP))

    # ---- sockets -------------------------------------------------------------------------

    def _bind_sockets(self) -> None:
        """Bind every socket unit that binds at boot (before any service starts)."""
        if self.sockets is None:
            return
        for name in sorted(self.units):
            if (
                self.units[name].kind is UnitKind.SOCKET
                and name not in self.socket_actors
                and self.graph.binds_at_boot(name)
            ):
                self._bind_socket(name, at_boot=True)

    def _service_up(self, service: str) -> bool:
        return self.states.get(service) in _SERVICE_UP

    def _bind_socket(self, name: str, at_boot: bool = False) -> None:
        """Hand `name`'s listeners to a new activator; `at_boot`: a failure fails its
        service too. At boot they were bound before the first wave (`bound`); a socket
        started again later is bound now (`cinit.io.socket_binding`). What the socket
        becomes (listening, skipped, failed) is its machine's step, told here."""
        from cinit.actors.socket_activator import (
            ServiceUp,
            SocketActivator,
            describe_listeners,
            listener_infos,
        )
        from cinit.io.sockets import close_listeners
        from cinit.machines import socket_machine as sm

        assert self.sockets is not None
        unit = self.units[name]
        service = self.graph.activates(name)
        binding = self.bound.pop(name, None) or self._bind_now(unit)
        if binding.unmet is not None:
            self.socket_outcomes[name] = Outcome.SKIPPED
            self._step_unbound(name, sm.ConditionUnmet(binding.unmet))
            return
        cascade = service if at_boot else None
        if binding.error is not None:
            reason = binding.error
            if service is not None and self._service_up(service):
                reason += f" ({service} still runs with the listeners of an earlier start)"
            self._socket_bind_failed(name, cascade, reason)
            return
        listeners = binding.listeners
        if service is None:  # check_units refuses this; be safe anyway
            close_listeners(unit, listeners)
            self._socket_bind_failed(name, service, f"{name}: activates no loaded service")
            return
        where = describe_listeners(listeners)
        config = sm.config_of(unit, self.units[service], listener_infos(listeners))
        shown = self.states.get(name, State.INACTIVE)
        model, actions = sm.step(sm.at_rest(config, shown), sm.Bound(where), self.clock())
        says = (sm.Info, Log, Transition, Notice)  # told here; the rest is the actor's
        said = [action for action in actions if isinstance(action, says)]
        left = [action for action in actions if not isinstance(action, says)]
        try:
            ref = SocketActivator.start(
                unit, self.units[service], listeners, self.sockets, self.actor_ref,
                self.scheduler, opened=(model, left),
            )  # fmt: skip
        except Exception as exc:
            self.sockets.registry.remove(name)
            close_listeners(unit, listeners)
            self._socket_bind_failed(name, service, f"{name}: cannot start its actor: {exc!r}")
            return
        self.socket_actors[name] = ref
        if self._service_up(service):
            ref.tell(ServiceUp())  # systemd: running (not polled) until the service ends
        self._tell_said(name, said)

    def _bind_now(self, unit: Unit) -> SocketBinding:
        from cinit.io.socket_binding import bind_socket

        assert self.sockets is not None
        context = self.sockets.context
        return bind_socket(unit, context.base_env, context.userdb_root)

    def _socket_bind_failed(self, name: str, service: str | None, reason: str) -> None:
        """`name` could not be bound; `service` (when given) fails with it (dependency)."""
        from cinit.machines.socket_machine import BindFailed

        self.socket_outcomes[name] = Outcome.FAILED
        self._step_unbound(name, BindFailed(reason))
        self._on_failure(name)
        if service is None:
            return
        self._tell(service, CannotStart(f"its socket {name} could not be bound"))  # it fails

    def _step_unbound(self, name: str, event: SocketEvent) -> None:
        """Feed `event` to the machine of socket `name`, which has no actor (nothing is
        bound): it starts from the state the socket shows, and what it says is told."""
        from cinit.machines import socket_machine as sm

        unit = self.units[name]
        service = self.graph.activates(name)
        config = sm.config_of(unit, self.units[service] if service is not None else None)
        shown = self.states.get(name, State.INACTIVE)
        _, actions = sm.step(sm.at_rest(config, shown), event, self.clock())
        self._tell_said(name, actions)

    def _tell_said(self, name: str, actions: Sequence[object]) -> None:
        """Carry out what a socket machine's step said: its lines, Transitions, Notices."""
        from cinit.machines.socket_machine import Info

        for action in actions:
            if isinstance(action, Info):
                info(action.text)
            elif isinstance(action, Log):
                log(action.text)
            elif isinstance(action, Transition | Notice):
                self._on_report(name, action)
            else:
                log(f"{name}: unexpected socket action {action!r}")

    def _handle_socket_report(self, message: object) -> bool:
        """SocketTriggered, SocketFailed, SocketStopped; False for anything else."""
        if self.sockets is None:
            # No socket support, so no socket actor to send these: and socket_activator's
            # imports (socket, dataclasses with inspect: ~2 MiB) stay out of PID 1.
            return False
        from cinit.actors.socket_activator import (
            ServiceUp,
            SocketFailed,
            SocketStopped,
            SocketTriggered,
        )

        if isinstance(message, SocketTriggered):
            if self.shutdown is None and message.socket in self.socket_actors:
                for other in self.graph.activated_by(message.service):
                    if other != message.socket and other in self.socket_actors:
                        self.socket_actors[other].tell(ServiceUp())
                self._start_units([message.service])
        elif isinstance(message, SocketFailed):
            self.book.settle(message.socket, Outcome.FAILED)
            self._on_failure(message.socket)
            service = self.graph.activates(message.socket)
            if message.stop_service and service is not None and self.shutdown is None:
                self._stop_unit(service)
        elif isinstance(message, SocketStopped):
            name = message.socket
            ref = self.socket_actors.pop(name, None)
            if ref is not None:
                ref.stop(block=False)  # its work is done: its thread ends
            self.socket_outcomes.pop(name, None)
            self._on_stopped(name)
            if name in self.socket_rebinds and self.shutdown is None:
                self.socket_rebinds.discard(name)
                self._bind_socket(name)
                self.book.settle(name, self.socket_outcomes.pop(name, Outcome.READY))
                self._release()
        else:
            return False
        return True

    def _tell_sockets(self, service: str, state: State, result: Result) -> None:
        """A socket-activated service changed state: its sockets stop or resume polling."""
        from cinit.actors.socket_activator import ServiceDown, ServiceUp

        sockets = [s for s in self.graph.activated_by(service) if s in self.socket_actors]
        if not sockets:
            return
        message: ServiceUp | ServiceDown
        if state in _SERVICE_UP:
            message = ServiceUp()
        elif state is State.FAILED and result is Result.START_LIMIT_HIT:
            message = ServiceDown(start_limit_hit=True)
        elif state in _SERVICE_DOWN:
            message = ServiceDown()
        elif state is State.AUTO_RESTART:
            message = ServiceDown(restarting=True)
        else:
            return
        for name in sockets:
            self.socket_actors[name].tell(message)

    def _ensure_actor(self, name: str) -> UnitSlot | None:
        slot = self.slots.get(name)
        if slot is None:
            slot = UnitSlot.for_unit(self.units[name], self.io_factory)
            self.slots[name] = slot
        if not slot.abandoned and not slot.has_actor:
            self._start_actor(slot)
        return slot

    def _start_actor(self, slot: UnitSlot) -> None:
        try:
            clock = self.unit_clock or monotonic_usec
            UnitActor.start(slot, self.reports, self.scheduler, clock, self.closing)
            slot.has_actor = True
        except Exception as exc:  # __init__ runs here, in the supervisor's thread
            self._count_crash(slot.name, "creating its actor", repr(exc))
            if not slot.abandoned:
                self.scheduler.call_later(RETRY_DELAY, self.actor_ref, RetryActor(slot.name))

    # ---- what units report ---------------------------------------------------------------

    def _on_report(self, name: str, item: object) -> None:
        if name not in self.units:
            return  # a unit a daemon-reload removed, whose actor ended
        if isinstance(item, Transition):
            self.states[name] = item.new
            info(f"{name}: {item.old} -> {item.new} ({item.reason})")
            if self.events is not None:
                self.events.tell(item)
            if self.socket_actors and self.units[name].kind is UnitKind.SERVICE:
                self._tell_sockets(name, item.new, item.result)
            if self.timer_keeper is not None:
                self._tell_timers(name, item.new)
            if item.new in _DOWN and item.old in _WAS_UP:
                self._stop_bound(name)
            if name in self.restart_when_down and item.new in AT_REST_STATES:
                self.restart_when_down.discard(name)
                if self.shutdown is None:
                    self._start_units([name])
            if item.new in NO_PROCESS_STATES:
                self.outdated.discard(name)  # its next run takes the new definition
            if item.new in AT_REST_STATES and self.shutdown is None:
                if name in self.apply_restarts:
                    self.apply_restarts.discard(name)
                    self._start_restarted(name)
                elif name in self.retired:
                    self._drop_removed([name])
        elif isinstance(item, Notice):
            if self.events is not None:
                self.events.tell(item)
        elif isinstance(item, ReportSettled):
            self.book.settle(name, item.outcome)
            self._release()
        elif isinstance(item, ReportStopped):
            self._on_stopped(name)
        elif isinstance(item, RequestOnFailure):
            self._on_failure(name)
        elif isinstance(item, RequestContainerExit):
            self._exit_container(name, item)

    def _exit_container(self, name: str, request: RequestContainerExit) -> None:
        if self.shutdown is not None or self.root is None:
            return  # already going down: the first reason stands
        reason = (
            f"{name} failed with ExitContainerOnFailure=yes ({request.result.value}); shutting down"
        )
        self.root.tell(lc.ExitRequested(request.status, reason))  # the root logs the reason

    def _on_failure(self, name: str) -> None:
        handlers = list(self.graph.on_failure(name))
        if not handlers or self.shutdown is not None:
            return
        log(f"{name}: starting OnFailure= units: {' '.join(handlers)}")
        self._start_units(handlers)

    # ---- stopping ------------------------------------------------------------------------

    def _stop_all(self) -> None:
        if self.shutdown is not None:
            return
        self.shutdown = StopPlan(self.graph, self.book.in_play)
        self.stop_plans.append(self.shutdown)
        self._advance_stops()

    def _stop_bound(self, name: str) -> None:
        """`name` went down: the units bound to it (BindsTo=) stop too (systemd.unit)."""
        if self.shutdown is not None:
            return
        for binder in sorted(self.graph.bound_by(name)):
            if self.states.get(binder, State.INACTIVE) in _UP_OR_PENDING:
                log(f"{binder}: stopping: bound to {name}, which went down")
                self._stop_unit(binder)

    def _stop_unit(self, name: str, restart: bool = False) -> None:
        if name not in self.units:
            return
        members = {name}
        todo = [name]
        while todo:  # the units that require it, are bound to it or part of it stop with it
            for dependent in self.graph.stops_with(todo.pop()):
                if dependent not in members and dependent in self.book.in_play:
                    members.add(dependent)
                    todo.append(dependent)
        if restart:  # what is up now comes back with the restart's start
            self.restart_stops.update(members)
            self.restarting[name] = tuple(
                sorted(
                    member
                    for member in members - {name}
                    if self.states.get(member, State.INACTIVE) in _UP_OR_PENDING
                )
            )
        for member in members:
            self.book.waiting.discard(member)
        self.stop_plans.append(StopPlan(self.graph, members))
        self._advance_stops()

    def _on_stopped(self, name: str) -> None:
        for plan in self.stop_plans:
            plan.mark_stopped(name)
        self._advance_stops()

    def _advance_stops(self) -> None:
        # Iterative: a unit that is already down answers (and so advances a plan) at once.
        progress = True
        while progress:
            progress = False
            for plan in list(self.stop_plans):
                for name in plan.next():
                    progress = True
                    restart = name in self.restart_stops
                    self.restart_stops.discard(name)
                    self._tell(name, StopRequested(restart=restart))
                if plan.finished and plan is not self.shutdown:
                    self.stop_plans.remove(plan)
        shutdown = self.shutdown
        if shutdown is not None and shutdown.finished and not self.units_stopped_sent:
            self.units_stopped_sent = True
            if self.root is not None:
                self.root.tell(lc.UnitsStopped())

    # ---- daemon-reload -------------------------------------------------------------------

    def _daemon_reload(self, apply: bool, requested: bool) -> None:
        """Read the unit directories again and take the new set on (`_take_on`), or refuse
        it whole.

        systemd's semantics: a running unit keeps its processes and gets its new definition
        for its next start; an added unit can be started; a removed one that runs stays
        until it is stopped (then it is gone). `apply` (supervisorctl update): also stop
        the removed units, start the added ones that start at boot, and restart the changed
        ones that are up; in dependency order (the stop plans and the start book's). The
        outcome is one `daemon-reloaded` event (the control desk answers from it)."""
        told: dict[str, object] = {"requested": requested, "apply": apply}
        if self.shutdown is not None or self.reloader is None:
            why = "cinit is shutting down" if self.shutdown is not None else "cannot reload"
            self._tell_reloaded({**told, "ok": False, "errors": [why]})
            return
        try:
            new = self.reloader(sorted(self.demanded))
        except Exception as exc:  # the loader reports bad input per file; this is a bug
            self._tell_reloaded({**told, "ok": False, "errors": [f"cannot load: {exc!r}"]})
            return
        if not new.ok:
            errors = [d.format() for d in _fatal(new)]
            log(f"daemon-reload refused: the new unit set has {len(errors)} errors")
            self._tell_reloaded({**told, "ok": False, "errors": errors})
            return
        self.demanded &= set(new.units)  # an instance whose template went goes with it
        actions = self._take_on(new, apply)
        if self.published is not None:
            self.published(new)
        self._tell_reloaded({**told, "ok": True, **actions})

    def _take_on(self, new: UnitSet, apply: bool, why: str = "daemon-reload") -> dict[str, object]:
        """The running set becomes `new` (a daemon-reload's, or the running one with an
        instance made on demand). Returns the diff's lines and, with `apply`, what was
        started, stopped and restarted."""
        defined = {n: u for n, u in self.units.items() if n not in self.retired}
        diff = diff_units(defined, new.units)
        for line in diff.lines():
            info(f"{why}: {line}")
        for name, unit in new.units.items():  # every unit: aliases and paths may move too
            self.units[name] = unit
            slot = self.slots.get(name)
            if slot is not None and name in diff.changed:
                slot.tell(Redefined(unit))
                if self.states.get(name, State.INACTIVE) not in NO_PROCESS_STATES:
                    self.outdated.add(name)
        self.retired.difference_update(new.units)  # removed before, back now
        self.retired.update(diff.removed)
        self.boot_names = frozenset(new.graph.boot_units())
        self._rebuild_graph(new)
        self._redefine_timers(new)
        added_socket = any(self.units[n].kind is UnitKind.SOCKET for n in diff.added)
        if self.sockets is None and self.late_sockets is not None and added_socket:
            self.sockets = self.late_sockets()
        for name in diff.added:
            self._tell_unit_event(UNIT_ADDED_EVENT, name)
        for name, directives in diff.changed.items():
            self._tell_unit_event(UNIT_CHANGED_EVENT, name, directives=list(directives))
        at_rest = [n for n in diff.removed if self.states.get(n, State.INACTIVE) in AT_REST_STATES]
        self._drop_removed(at_rest)
        actions = self._apply(diff.added, diff.removed, diff.changed) if apply else {}
        return {"diff": diff.lines(), **actions}

    # ---- instances made on demand --------------------------------------------------------

    def _load_instance(self, name: str) -> None:
        """`systemctl start x@a` of an instance no link named: the unit directories are
        read with it (its template, snippets, the instances it names in turn), and it joins
        the running set as a daemon-reload adds a unit (`_take_on`); nothing else of that
        reading is taken on. One `instance-loaded` event says how it went: code 4 when its
        template is not loaded, 1 with the diagnostics of its files when they have errors."""
        told: dict[str, object] = {"instance": name}
        if name in self.units and name not in self.retired:  # a request before made it
            self._tell_instance({**told, "ok": True})
            return
        if self.shutdown is not None or self.reloader is None:
            why = "cinit is shutting down" if self.shutdown is not None else "cannot load units"
            self._tell_instance({**told, "ok": False, "code": 1, "errors": [why]})
            return
        try:
            read = self.reloader(sorted({*self.demanded, name}))
        except Exception as exc:  # the loader reports bad input per file; this is a bug
            errors = [f"cannot load: {exc!r}"]
            self._tell_instance({**told, "ok": False, "code": 1, "errors": errors})
            return
        unit = read.units.get(name)
        if unit is None or not is_instance(name):
            # --systemd leaves a unit whose file has errors out (its findings as warnings):
            # those of its template say why; none, or no template: not found.
            template = read.templates.get(template_of(name), "")
            said = [
                d.format()
                for d in read.diagnostics
                if template and d.path == template and d.severity in _SAID
            ]
            code = 1 if said else 4
            self._tell_instance({**told, "ok": False, "code": code, "errors": said})
            return
        # The new instances: this one and those it names (Requires=y@%i.service).
        added = {
            n: u
            for n, u in read.units.items()
            if is_instance(n) and (n not in self.units or n in self.retired)
        }
        files = {p for each in added.values() for p in (each.path, *each.snippets) if p}
        errors = [d.format() for d in _fatal(read) if d.path in files]
        if errors:
            log(f"cannot load {name}: its unit file has {len(errors)} errors")
            self._tell_instance({**told, "ok": False, "code": 1, "errors": errors})
            return
        units = {n: u for n, u in self.units.items() if n not in self.retired}
        units.update(added)
        new = read.replace(units=units, graph=build_graph(units, self.boot_names))
        self.demanded.update(added)
        self._take_on(new, apply=False, why=f"instance of {unit.template}")
        if self.published is not None:
            self.published(new)
        self._tell_instance({**told, "ok": True})

    def _tell_instance(self, fields: dict[str, object]) -> None:
        if self.events is not None:
            self.events.tell(Notice("", INSTANCE_LOADED_EVENT, fields))

    def _rebuild_graph(self, new: UnitSet) -> None:
        """The new set's graph, or (removed units still running) one over both."""
        if self.retired:
            self.graph = build_graph(self.units, self.boot_names)
        else:
            self.graph = new.graph
        self.book.graph = self.graph

    def _drop_removed(self, names: list[str]) -> None:
        """Removed units now at rest: gone (their actors end)."""
        if not names:
            return
        for name in names:
            self.retired.discard(name)
            self.outdated.discard(name)
            self.units.pop(name, None)
            self.states.pop(name, None)
            self.book.in_play.discard(name)
            self.book.waiting.discard(name)
            self.book.settled.pop(name, None)
            slot = self.slots.pop(name, None)
            if slot is not None:
                slot.tell(Retire())
            ref = self.socket_actors.pop(name, None)
            if ref is not None:
                ref.stop(block=False)
            self._tell_unit_event(UNIT_REMOVED_EVENT, name)
        self.graph = build_graph(self.units, self.boot_names)
        self.book.graph = self.graph

    def _apply(
        self, added: Sequence[str], removed: Sequence[str], changed: Mapping[str, object]
    ) -> dict[str, list[str]]:
        """--apply: what the new set asks of the running one; returns what was done."""
        stop = [n for n in removed if n in self.units]  # the ones still running
        boot = set(self.graph.boot_units())
        start = [n for n in added if n in boot]
        older = sorted(self.outdated - set(changed))  # changed by an earlier reload
        restart = [
            n
            for n in [*changed, *older]
            if n in self.units and self.states.get(n, State.INACTIVE) in _UP_OR_PENDING
        ]
        for name in stop:
            self._stop_unit(name)
        for name in restart:
            self.apply_restarts.add(name)
            self._stop_unit(name, restart=True)
        if start:
            self._start_units(start)
        return {"started": start, "stopped": stop, "restarted": restart}

    def _tell_unit_event(self, event: str, name: str, **fields: object) -> None:
        if self.events is None:
            return
        unit = self.units.get(name)
        summary = unit_summary(unit, self.graph) if unit is not None else {}
        self.events.tell(Notice(name, event, {**summary, **fields}))

    def _tell_reloaded(self, fields: dict[str, object]) -> None:
        if fields.get("ok") is False:
            for line in fields.get("errors") or ():  # type: ignore[attr-defined]
                log(f"daemon-reload: {line}")
        if self.events is not None:
            self.events.tell(Notice("", DAEMON_RELOADED_EVENT, fields))

    # ---- supervision ---------------------------------------------------------------------

    def _on_crash(self, message: UnitActorCrashed) -> None:
        slot = self.slots.get(message.unit)
        if slot is None:
            return
        slot.has_actor = False
        self._count_crash(message.unit, message.where, message.error)
        if not slot.abandoned and not (self.closing is not None and self.closing.is_set()):
            self._start_actor(slot)

    def _count_crash(self, name: str, where: str, error: str) -> None:
        now = self.clock()
        recent = [t for t in self.crashes.get(name, []) if now - t <= RESTART_WINDOW]
        recent.append(now)
        self.crashes[name] = recent
        self.crash_count += 1
        gives_up = len(recent) > MAX_RESTARTS
        self._on_report(
            name,
            Notice(
                name,
                "actor-crashed",
                {
                    "where": where,
                    "error": (error.strip().splitlines() or [""])[-1],  # the exception line
                    "crashes": len(recent),
                    "restarting": not gives_up,
                },
            ),
        )
        if gives_up:
            log(
                f"internal error in the actor of {name} ({where}); it broke {len(recent)} "
                f"times within {RESTART_WINDOW:g}s: giving up on {name}\n{error}"
            )
            self._abandon(name)
            return
        log(
            f"internal error in the actor of {name} ({where}); restarting it "
            f"(crash {len(recent)} of {name}, {self.crash_count} in all)\n{error}"
        )

    def _abandon(self, name: str) -> None:
        """Give up on a unit whose actor keeps breaking: kill it, count it as failed."""
        slot = self.slots[name]
        slot.abandoned = True
        try:
            slot.io.kill_unit()  # its actor is gone: nobody else uses the io now
        except Exception as exc:
            log(f"{name}: cannot kill its processes: {exc!r}")
        log(f"{name}: failed (resources)")
        self.book.settle(name, Outcome.FAILED)
        self._on_stopped(name)
        self._on_report(name, RequestOnFailure(Result.RESOURCES))
        service = self.units[name].service
        if service is not None and service.exit_container_on_failure:
            self._on_report(name, RequestContainerExit(1, Result.RESOURCES))
        self._release()
