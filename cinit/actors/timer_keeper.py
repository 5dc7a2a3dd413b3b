"""Timers (issue 17): one `TimerKeeper` actor runs the machine of every `.timer` unit.

One actor for all of them (not one per timer, as sockets have): a timer does nothing
between its wakes, and a hundred timers must not cost a hundred threads. The decisions are
the timer machine's (`cinit.machines.timer_machine`); this actor feeds it what happened
(the supervisor's start and stop requests, its news of each timer's service, the
scheduler's wakes) with both clocks read now, and carries its actions out: it asks the
scheduler (`cinit.actors.scheduler`, the monotonic clock) for the next wake, tells the
supervisor to start a service (`TimerTriggered`) and passes Transitions and Notices on as
the timer's reports, and writes Persistent= stamps (`cinit.io.timer_stamps`). It never
blocks, and a message it fails to handle is logged: it carries on with the others.

An elapse's service start is readied 250 ms ahead (`PrepareService`), and an elapse asked
for on time (AccuracySec= of 10 ms or less) is decided `DECIDE_LEAD` ahead, its start
carrying the instant before which no process of it may run (docs/timers.md).
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import pykka

from cinit.actors.unit import Scheduling, UnitReport
from cinit.io.log import info, log
from cinit.machines import timer_machine as tm
from cinit.machines.record import Record
from cinit.machines.unit_events import Log, Notice, Transition
from cinit.units.model import Unit

if TYPE_CHECKING:
    from cinit.actors.scheduler import Timer
    from cinit.actors.unit_slot import Tellable
    from cinit.io.timer_stamps import TimerStamps


# How long before an elapse its service's child is prepared (`TimerKeeper._prepare`).
PREPARE_LEAD = 0.25
# How long after an elapse its timer plans the next one: its service's start (the supervisor,
# the unit's actor, the release of its child) runs first, without this thread's ~1 ms of
# calendar search competing for the interpreter.
PLAN_DELAY = 0.02
# A precise elapse (AccuracySec= of 10 ms or less) is decided this long ahead of its instant:
# the keeper's step, the supervisor's start request and the unit's actor up to its spawn run
# before it, and the spawn waits for the instant (`UnitIO.start_not_before`), so that only
# the exec is left between the elapse and the service's process running.
DECIDE_LEAD = 0.005


class TimerSupport(Record):
    """What the supervisor needs to run timers: where Persistent= stamps live, when cinit
    started on the monotonic clock (OnBootSec=, OnStartupSec=), and whether a service's
    start can be readied ahead of its timer's elapse (`prepares`: its unit has a cgroup
    for the child to wait in)."""

    stamps: TimerStamps
    boot_mono: float
    prepares: bool = False
    environ: Mapping[str, str] = {}  # what Condition*=/Assert*= see (the units' environment)
    userdb_root: str = "/"


class StartTimer(Record):
    """Supervisor -> keeper: arm timer `name`; `service_up`: its service is up now."""

    name: str
    service_up: bool = False


class StopTimer(Record):
    """Supervisor -> keeper: disarm timer `name`."""

    name: str


class ServiceChanged(Record):
    """Supervisor -> keeper: `service`, started by timers, went up (`up`) or came to rest."""

    service: str
    up: bool


class RedefineTimers(Record):
    """Supervisor -> keeper: a daemon-reload's timer units (added and changed ones take
    their new definition; a timer's armed state stays, its next plan uses the new one)."""

    timers: dict[str, Unit]


class TimerWake(Record):
    """Scheduler -> keeper: the wait numbered `armed` of timer `name` ended; `due`: the
    monotonic instant it stands for, when that is later (a precise elapse, woken
    `DECIDE_LEAD` ahead)."""

    name: str
    armed: int
    due: float | None = None


class TimerPrepare(Record):
    """Scheduler -> keeper: the elapse of wait `armed` of timer `name` is near: prepare."""

    name: str
    armed: int


class PrepareService(Record):
    """Keeper -> supervisor: the elapse of a timer of `service` is near: ready its start."""

    service: str


class TimerTriggered(Record):
    """Keeper -> supervisor: timer `timer` elapsed: start `service`, then pass the timer's
    `reports` on (its news of the elapse, in order after the start request). `not_before`:
    the monotonic instant before which no process of the start may run (a precise
    elapse, decided `DECIDE_LEAD` ahead of it)."""

    timer: str
    service: str
    reports: tuple[Transition | Notice, ...] = ()
    not_before: float | None = None


class PlanNextWake(Record):
    """Keeper -> itself, `PLAN_DELAY` after an elapse: feed timer `name` its PlanNext."""

    name: str


class TimerKeeper(pykka.ThreadingActor):
    """Create with `TimerKeeper.start(timers, services, support, supervisor, scheduler)`."""

    use_daemon_thread = True

    def __init__(
        self,
        timers: dict[str, Unit],
        support: TimerSupport,
        supervisor: Tellable,
        scheduler: Scheduling,
        *,
        mono: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self.support = support
        self.supervisor = supervisor
        self.scheduler = scheduler
        self.mono = mono
        self.wall = wall
        self.units = dict(timers)
        self.models: dict[str, tm.TimerModel] = {}
        self.waits: dict[str, Timer] = {}
        self.preparing: dict[str, Timer] = {}  # the TimerPrepare before each final wake
        self.by_service: dict[str, list[str]] = {}
        self.service_up: dict[str, bool] = {}
        self._define(timers)

    def _define(self, timers: dict[str, Unit]) -> None:
        """Take `timers`' definitions: new machines for new timers, new settings for the
        others (their state stays)."""
        for name, unit in timers.items():
            config = tm.config_of(unit, self.support.boot_mono)
            model = self.models.get(name)
            if model is None:
                self.models[name] = tm.initial(config)
            else:
                self.models[name] = model.replace(config=config)
            self.units[name] = unit
        self.by_service = {}
        for name, model in sorted(self.models.items()):
            self.by_service.setdefault(model.config.service, []).append(name)

    def on_receive(self, message: object) -> None:
        try:
            self._handle(message)
        except Exception as exc:  # never let it escape: pykka would stop the actor
            text = "".join(traceback.format_exception(exc)).rstrip()
            log(f"internal error in the timer keeper handling {message!r}:\n{text}")

    def _handle(self, message: object) -> None:
        if isinstance(message, TimerWake):
            self._feed(message.name, tm.Wake(message.armed), message.due)
        elif isinstance(message, TimerPrepare):
            self._prepare(message)
        elif isinstance(message, PlanNextWake):
            self._feed(message.name, tm.PlanNext())
        elif isinstance(message, RedefineTimers):
            self._define(message.timers)
        elif isinstance(message, StartTimer):
            model = self.models.get(message.name)
            if model is None:
                return
            stamp = None
            if model.config.persistent and not self.support.stamps.disabled:
                stamp = self.support.stamps.read(message.name)
            up = self.service_up.get(model.config.service, message.service_up)
            unmet, failed = self._checks(message.name)
            self._feed(message.name, tm.Start(stamp, up, unmet, failed))
        elif isinstance(message, StopTimer):
            self._feed(message.name, tm.Stop())
        elif isinstance(message, ServiceChanged):
            if self.service_up.get(message.service, False) == message.up:
                return  # starting -> running -> active is one "up" for the timer
            self.service_up[message.service] = message.up
            event = tm.ServiceStarted() if message.up else tm.ServiceFinished()
            for name in self.by_service.get(message.service, ()):
                self._feed(name, event)
        else:
            log(f"timer keeper: unexpected message {message!r}")

    def _checks(self, name: str) -> tuple[str | None, str | None]:
        """The timer's Condition*= that does not hold and Assert*= that fails (systemd
        checks a timer's as any unit's: fstrim.timer has ConditionVirtualization=!container)."""
        unit = self.units[name]
        section = unit.unit
        if not section.conditions and not section.asserts:
            return None, None
        from cinit.io.environ import failed_assertion, unmet_condition

        environ, root = self.support.environ, self.support.userdb_root
        unmet = unmet_condition(unit, environ, root)
        return unmet, None if unmet is not None else failed_assertion(unit, environ, root)

    def _feed(self, name: str, event: tm.TimerEvent, due: float | None = None) -> None:
        """Step timer `name`'s machine; `due`: decide as of that monotonic instant, when it
        is later than now (a precise wake, `DECIDE_LEAD` ahead: both clocks are read and
        moved forward together)."""
        model = self.models.get(name)
        if model is None:
            return
        mono, wall = self.mono(), self.wall()
        ahead = due - mono if due is not None and due > mono else 0.0
        now = tm.Now(mono + ahead, wall + ahead)
        model, actions = tm.step(model, event, now)
        self.models[name] = model
        start = next((a for a in actions if isinstance(a, tm.StartService)), None)
        if start is not None:  # the start first, the timer's news riding with it
            reports = tuple(a for a in actions if isinstance(a, Transition | Notice))
            not_before = now.mono if ahead else None
            self.supervisor.tell(TimerTriggered(start.timer, start.service, reports, not_before))
            info(f"{name}: elapsed; starting {start.service}")
            told = (tm.StartService, Transition, Notice)
            actions = [a for a in actions if not isinstance(a, told)]
        for action in actions:
            self._carry_out(name, action, now.mono)

    def _carry_out(self, name: str, action: object, mono: float) -> None:
        """Carry `action` out; `mono`: the monotonic clock its step was planned at (a wait
        is due at that reading plus its delay, however long the planning took)."""
        if isinstance(action, tm.Arm):
            self._cancel(name)
            due = mono + action.delay
            if action.precise:  # decided a moment ahead; the spawn waits for `due`
                wake = TimerWake(name, action.armed, due)
                self.waits[name] = self.scheduler.call_at(
                    due - DECIDE_LEAD, self.actor_ref, wake, precise=True
                )
            else:
                wake = TimerWake(name, action.armed)
                self.waits[name] = self.scheduler.call_at(due, self.actor_ref, wake)
            if action.final and action.delay > PREPARE_LEAD and self.support.prepares:
                self.preparing[name] = self.scheduler.call_at(
                    due - PREPARE_LEAD, self.actor_ref, TimerPrepare(name, action.armed)
                )
        elif isinstance(action, tm.Disarm):
            self._cancel(name)
        elif isinstance(action, tm.PlanLater):
            self.scheduler.call_later(PLAN_DELAY, self.actor_ref, PlanNextWake(name))
        elif isinstance(action, tm.WriteStamp):
            self.support.stamps.write(name, action.at)
        elif isinstance(action, Transition | Notice):
            self.supervisor.tell(UnitReport(name, action))
        elif isinstance(action, Log):
            log(action.text)
        else:
            log(f"{name}: unexpected timer action {action!r}")

    def _cancel(self, name: str) -> None:
        for waits in (self.waits, self.preparing):
            wait = waits.pop(name, None)
            if wait is not None:
                self.scheduler.cancel(wait)

    def _prepare(self, message: TimerPrepare) -> None:
        """Have the service's start readied now (`UnitIO.prepare_start`: its child in its
        cgroup, set up up to the exec), so that neither joining the cgroup (an RCU grace
        period, ~15-25 ms: `cinit.io.spawn.prepared`) nor building and carrying out the
        plan is paid at the elapse. Only for a service at rest: a child waiting in a
        running service's cgroup would keep it from being found empty when it stops."""
        self.preparing.pop(message.name, None)
        model = self.models.get(message.name)
        if model is None or model.armed != message.armed or not self.support.prepares:
            return
        service = model.config.service
        if self.service_up.get(service, False) or model.service_up:
            return  # the elapse will be skipped
        self.supervisor.tell(PrepareService(service))
