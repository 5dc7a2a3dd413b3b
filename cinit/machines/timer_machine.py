"""The timer unit's state machine (issue 17, systemd.timer(5)): pure, no threads, no OS.

`step(model, event, now) -> (model, actions)` looks the handler up in `TABLE` (phase x
event type); every pair is in the table, handled or explicitly ignored. `now` is both
clocks at once (`Now`: monotonic and wall, seconds), given by the caller, so tests drive
the machine with any clock, including a wall clock that jumps. Every phase change goes
through `_enter`, which emits one `Transition` when the state a user sees changes
(waiting, running and elapsed are all systemd's `active`).

Phases: inactive (never started, or stopped), skipped (a Condition*= did not hold at its
start; a failed Assert*= makes it failed), waiting (armed: the next elapse is known),
running (it elapsed and started its service, which has not finished yet; the next elapse
is armed already), elapsed (no elapse is left: RemainAfterElapse=yes keeps it active,
`no` makes it inactive), failed (it cannot elapse: nothing to elapse on).

When does it elapse (`plan`)? The monotonic triggers count from their base: OnActiveSec=
from the timer's start, OnBootSec= and OnStartupSec= from cinit's start (in a container
both are the container's start), OnUnitActiveSec= / OnUnitInactiveSec= from the last time
the service started / finished (never: no elapse). An elapse the timer fired for already
(its last trigger is at or after it) is spent. OnCalendar= counts from the last trigger
(read from the Persistent= stamp at start) or else the timer's start, on the wall clock:
an elapse missed while cinit was down is in the past, so it elapses at once, once. If the
wall clock is behind the last trigger (set back), the calendar counts from now instead.

The wake: the earliest elapse plus RandomizedDelaySec= (a fraction of it from a hash of
the timer's name and the elapse, or of the name alone with FixedRandomDelay=: pure and
stable, no random source), rounded up to the next multiple of AccuracySec= (on the epoch
for the wall clock, on the monotonic clock's zero for the monotonic triggers): timers with
one accuracy share their wakeups, as systemd batches them within the accuracy window. The
caller waits on the monotonic clock (`Arm.delay`) and feeds `Wake` back; the machine
checks both clocks again: not due yet (the wall clock went back, or was slewed) arms
again; due fires once and plans from the new last trigger (a wall clock set forward
fires once, not once per missed elapse). A wall-clock wait is never longer than
`MAX_WALL_WAIT`, so a clock set forward is seen within it.

An elapse while the service is still up starts nothing (`timer-skipped`): systemd starts
no second run of a running unit. The service failing changes nothing for the timer.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from cinit.machines.record import Record
from cinit.machines.restart import Result
from cinit.machines.unit_events import Log, Notice, Transition
from cinit.machines.unit_model import State
from cinit.machines.vocabulary import TIMER_ARMED_EVENT, TIMER_ELAPSED_EVENT, TIMER_SKIPPED_EVENT
from cinit.units.frozen import Frozen
from cinit.units.graph import timer_service
from cinit.units.model import Unit

if TYPE_CHECKING:
    from cinit.units.calendar import CalendarSpec

# The longest wait on the monotonic clock for a wall-clock elapse: a wall clock set forward
# is noticed within it (an idle timer wakes once a minute; nothing fires early).
MAX_WALL_WAIT = 60.0
# An AccuracySec= at most this fine asks for a wake on time to the tenth of a millisecond.
PRECISE_ACCURACY = 0.01
# A wake this close before its target counts as due (float rounding of the two clocks).
DUE_SLACK = 0.0005


class Now(Frozen):
    """Both clocks at one moment, in seconds: `mono` (any monotonic clock, the one the
    boot time is on) and `wall` (epoch seconds)."""

    mono: float
    wall: float


# ---- events: what the actor feeds -------------------------------------------------------


class Start(Record):
    """Arm the timer. `stamp`: the last trigger (epoch seconds) of the Persistent= stamp,
    if any; `service_up`: its service is up now; `unmet`: the timer's Condition*= that does
    not hold (it is skipped), `failed`: its Assert*= that does not (it fails), as written."""

    stamp: float | None = None
    service_up: bool = False
    unmet: str | None = None
    failed: str | None = None


class Wake(Record):
    """The wait of the `Arm` numbered `armed` ended."""

    armed: int


class ServiceStarted(Record):
    """The service left rest (starting, running or active)."""


class ServiceFinished(Record):
    """The service came to rest (exited, inactive, failed, skipped)."""


class Stop(Record):
    """Disarm: the timer is stopped."""


class PlanNext(Record):
    """Fed back for `PlanLater`, once the elapse's start is on its way: plan the next."""


TimerEvent = Start | Wake | ServiceStarted | ServiceFinished | Stop | PlanNext

# ---- actions: what the actor carries out ------------------------------------------------


class Arm(Record):
    """Feed `Wake(armed)` after `delay` seconds on the monotonic clock (replaces any earlier
    arm). `elapse`: the next elapse, epoch seconds, for the eye; `final`: the wake is the
    elapse's (False: a wall-clock re-check, `MAX_WALL_WAIT`, comes first); `precise`: it
    must not come late by the ~1 ms a sleeping thread takes to wake (`PRECISE_ACCURACY`)."""

    armed: int
    delay: float
    elapse: float
    final: bool = True
    precise: bool = False


class Disarm(Record):
    """Cancel the pending wait, if any."""


class StartService(Record):
    """Timer -> supervisor: start `service` (the timer elapsed)."""

    timer: str
    service: str


class WriteStamp(Record):
    """Persistent=: record `at` (epoch seconds) as the timer's last trigger."""

    at: float


class PlanLater(Record):
    """Feed `PlanNext` once the actions before this one are carried out: the next elapse
    (a calendar search, ~1 ms when cold) is planned after the service's start is told."""


TimerAction = Arm | Disarm | StartService | WriteStamp | PlanLater | Log | Transition | Notice

# ---- the model --------------------------------------------------------------------------


class Phase(StrEnum):
    INACTIVE = "inactive"
    WAITING = "waiting"
    RUNNING = "running"
    ELAPSED = "elapsed"
    FAILED = "failed"
    SKIPPED = "skipped"  # a Condition*= did not hold at its start (fstrim.timer's !container)


SHOWN: dict[Phase, State] = {
    Phase.SKIPPED: State.CONDITION_SKIPPED,
    Phase.INACTIVE: State.INACTIVE,
    Phase.WAITING: State.ACTIVE,
    Phase.RUNNING: State.ACTIVE,
    Phase.ELAPSED: State.ACTIVE,
    Phase.FAILED: State.FAILED,
}
_ARMED = frozenset({Phase.WAITING, Phase.RUNNING, Phase.ELAPSED})
_AT_REST = frozenset({Phase.INACTIVE, Phase.FAILED, Phase.SKIPPED})

# Monotonic trigger kinds (the directive without "Sec").
ACTIVE, BOOT, STARTUP, UNIT_ACTIVE, UNIT_INACTIVE = (
    "OnActive", "OnBoot", "OnStartup", "OnUnitActive", "OnUnitInactive"
)  # fmt: skip


class TimerConfig(Frozen):
    """The fixed part: the timer unit's settings."""

    name: str
    service: str
    calendar: tuple[CalendarSpec, ...] = ()
    monotonic: tuple[tuple[str, float], ...] = ()  # (kind, span in seconds)
    accuracy: float = 60.0
    randomized_delay: float = 0.0
    fixed_random_delay: bool = False
    persistent: bool = False
    remain_after_elapse: bool = True
    boot_mono: float = 0.0  # cinit's start, on the monotonic clock of `Now.mono`


def config_of(unit: Unit, boot_mono: float) -> TimerConfig:
    """The machine's settings for timer `unit`; `boot_mono`: when cinit started."""
    section = unit.timer
    assert section is not None
    calendar: tuple[CalendarSpec, ...] = ()
    if section.on_calendar:  # imported only then: its zoneinfo & co cost PID 1 ~2 MiB
        from cinit.units.calendar import parse_calendar

        calendar = tuple(parse_calendar(text) for text in section.on_calendar)
    monotonic = tuple(
        (directive.removesuffix("Sec"), span)
        for directive, spans in section.monotonic
        for span in spans
    )
    return TimerConfig(
        name=unit.name,
        service=timer_service(unit),
        calendar=calendar,
        monotonic=monotonic,
        accuracy=section.accuracy_sec,
        randomized_delay=section.randomized_delay_sec,
        fixed_random_delay=section.fixed_random_delay,
        persistent=section.persistent,
        remain_after_elapse=section.remain_after_elapse,
        boot_mono=boot_mono,
    )


class TimerModel(Frozen):
    """Everything the machine remembers; immutable, replaced on every step."""

    config: TimerConfig
    phase: Phase = Phase.INACTIVE
    activated: Now | None = None  # the timer's last start
    last_trigger: Now | None = None  # its last elapse (wall part from the stamp at start)
    service_up: bool = False
    service_started: float | None = None  # monotonic: the service's last start
    service_finished: float | None = None  # monotonic: the service's last end
    armed: int = 0  # the number of the current Arm (a stale Wake names an older one)
    wake: Plan | None = None  # what the current Arm waits for

    @property
    def state(self) -> State:
        """The unit state shown for this timer."""
        return SHOWN[self.phase]


class Plan(Frozen):
    """The next elapse: when it is (epoch seconds, for the eye) and the wake on each clock
    (None: that clock has no trigger pending)."""

    elapse: float
    wake_mono: float | None
    wake_wall: float | None


def initial(config: TimerConfig) -> TimerModel:
    """A timer not started yet."""
    return TimerModel(config)


Step = tuple[TimerModel, list[TimerAction]]


def step(model: TimerModel, event: TimerEvent, now: Now) -> Step:
    """Feed one event at `now`."""
    handler = TABLE[(model.phase, type(event))]
    return handler(model, event, now)


# ---- the pure schedule --------------------------------------------------------------------


def plan(model: TimerModel, now: Now) -> Plan | None:
    """The next elapse of `model` at `now` (None: no trigger is left)."""
    config = model.config
    mono_elapse = _monotonic_elapse(model)
    wall_elapse = _calendar_elapse(model, now)
    if mono_elapse is None and wall_elapse is None:
        return None
    wake_mono = wake_wall = None
    if mono_elapse is not None:
        wake_mono = _coalesce(mono_elapse + _delay(config, mono_elapse), config.accuracy)
    if wall_elapse is not None:
        wake_wall = _coalesce(wall_elapse + _delay(config, wall_elapse), config.accuracy)
    # The elapse shown: the one whose wake comes first, on the wall clock.
    as_wall = None if wake_mono is None else now.wall + (wake_mono - now.mono)
    if as_wall is not None and (wake_wall is None or as_wall <= wake_wall):
        assert mono_elapse is not None
        elapse = now.wall + (mono_elapse - now.mono)
    else:
        assert wall_elapse is not None
        elapse = wall_elapse
    return Plan(elapse, wake_mono, wake_wall)


def _monotonic_elapse(model: TimerModel) -> float | None:
    """The earliest monotonic elapse not spent yet (None: none)."""
    config = model.config
    spent = model.last_trigger.mono if model.last_trigger is not None else None
    bases = {
        ACTIVE: model.activated.mono if model.activated is not None else None,
        BOOT: config.boot_mono,
        STARTUP: config.boot_mono,  # in a container, the system's start is cinit's
        UNIT_ACTIVE: model.service_started,
        UNIT_INACTIVE: model.service_finished,
    }
    found: float | None = None
    for kind, span in config.monotonic:
        base = bases.get(kind)
        if base is None or math.isinf(span):
            continue
        elapse = base + span
        if spent is not None and spent >= elapse:
            continue  # fired for it already
        if found is None or elapse < found:
            found = elapse
    return found


def _calendar_elapse(model: TimerModel, now: Now) -> float | None:
    """The earliest OnCalendar= elapse after the last trigger (or the start)."""
    config = model.config
    if not config.calendar:
        return None
    if model.last_trigger is not None:
        base = model.last_trigger.wall
    elif model.activated is not None:
        base = model.activated.wall
    else:
        base = now.wall
    base = min(base, now.wall)  # the clock went back: count from now, not from the future
    found: float | None = None
    for spec in config.calendar:
        elapse = spec.next_elapse(base)
        if elapse is not None and (found is None or elapse < found):
            found = elapse
    return found


def _delay(config: TimerConfig, elapse: float) -> float:
    """RandomizedDelaySec=: a stable fraction of it, from a hash (no random source)."""
    if config.randomized_delay <= 0 or math.isinf(config.randomized_delay):
        return 0.0
    key = config.name if config.fixed_random_delay else f"{config.name}@{elapse:.6f}"
    return config.randomized_delay * (_fnv1a(key.encode()) / 2**64)


def _fnv1a(data: bytes) -> int:
    """FNV-1a, 64 bits: a stable spread without hashlib (its libcrypto costs PID 1 ~3 MiB
    of RSS) and without `hash()` (salted per process)."""
    value = 0xCBF29CE484222325
    for byte in data:
        value = ((value ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return value


def _coalesce(when: float, accuracy: float) -> float:
    """`when` rounded up to the next multiple of `accuracy` (the shared wakeup)."""
    if accuracy <= 0 or math.isinf(accuracy):
        return when
    rounded = math.ceil(when / accuracy - 1e-9) * accuracy
    return max(rounded, when)


def iso(epoch: float) -> str:
    """An epoch time in ISO 8601, local time with its offset, to the millisecond."""
    return datetime.fromtimestamp(epoch).astimezone().isoformat(timespec="milliseconds")


# ---- the one mutator ----------------------------------------------------------------------


def _enter(model: TimerModel, phase: Phase, reason: str, *, news: bool = False) -> Step:
    """Move to `phase`; one Transition when the state shown changes, or when `news`: a new
    verdict on a timer shown so already (skipped again at a new start)."""
    old, new = model.state, SHOWN[phase]
    moved = model.replace(phase=phase)
    if old is new and not news:
        return moved, []
    result = Result.RESOURCES if phase is Phase.FAILED else Result.SUCCESS
    return moved, [Transition(model.config.name, old, new, reason, result)]


# ---- handlers -----------------------------------------------------------------------------

Handler = Callable[[TimerModel, TimerEvent, Now], Step]


def _ignore(model: TimerModel, event: TimerEvent, now: Now) -> Step:
    """Stale or meaningless in this phase (a wake after a stop, a second start...)."""
    return model, []


def _start(model: TimerModel, event: TimerEvent, now: Now) -> Step:
    assert isinstance(event, Start)
    config = model.config
    if event.unmet is not None:
        model, entered = _enter(model, Phase.SKIPPED, event.unmet, news=True)
        return model, [Log(f"{config.name}: skipped ({event.unmet} not met)"), *entered]
    if event.failed is not None:
        reason = f"{event.failed} failed"
        model, entered = _enter(model, Phase.FAILED, reason, news=True)
        return model, [Log(f"{config.name}: failed: {reason}"), *entered]
    if not config.calendar and not config.monotonic:
        model, entered = _enter(model, Phase.FAILED, "nothing to elapse on")
        return model, [Log(f"{config.name}: failed: no OnCalendar= nor On*Sec="), *entered]
    last = model.last_trigger
    stamp = event.stamp if config.persistent else None
    if stamp is not None and (last is None or stamp > last.wall):
        last = Now(mono=-math.inf, wall=stamp)  # the stamp's wall time; its mono is unknown
    model = model.replace(activated=now, last_trigger=last, service_up=event.service_up)
    return _arm(model, now, Phase.WAITING, "waiting")


def _wake(model: TimerModel, event: TimerEvent, now: Now) -> Step:
    assert isinstance(event, Wake)
    if event.armed != model.armed or model.wake is None:
        return model, []  # an older arm's wake, on its way when it was replaced
    wake = model.wake
    due = (wake.wake_mono is not None and now.mono >= wake.wake_mono - DUE_SLACK) or (
        wake.wake_wall is not None and now.wall >= wake.wake_wall - DUE_SLACK
    )
    if not due:  # early on the wall clock (set back, or slewed): plan again from now
        return _arm(model, now, model.phase, "")
    return _elapse(model, now)


def _elapse(model: TimerModel, now: Now) -> Step:
    config = model.config
    model = model.replace(last_trigger=now)
    fields: dict[str, object] = {"service": config.service, "at": now.wall, "at_iso": iso(now.wall)}
    actions: list[TimerAction] = []
    if config.persistent:
        actions.append(WriteStamp(now.wall))
    if model.service_up:
        # systemd starts no second run of a unit that is up: this elapse is spent.
        fields["reason"] = f"{config.service} is still running"
        actions.append(Notice(config.name, TIMER_SKIPPED_EVENT, fields))
        model, armed = _arm(model, now, model.phase, "")
        return model, actions + armed
    # The start first: everything else the elapse brings waits until it is on its way.
    model = model.replace(wake=None, armed=model.armed + 1)
    model, entered = _enter(model, Phase.RUNNING, "running")
    start = StartService(config.name, config.service)
    notice = Notice(config.name, TIMER_ELAPSED_EVENT, fields)
    return model, [start, *actions, notice, *entered, PlanLater()]


def _plan_next(model: TimerModel, event: TimerEvent, now: Now) -> Step:
    if model.wake is not None:
        return model, []  # planned already: its service's news came first
    return _arm(model, now, model.phase, "")


def _service_started(model: TimerModel, event: TimerEvent, now: Now) -> Step:
    model = model.replace(service_up=True, service_started=now.mono)
    if model.phase not in _ARMED:
        return model, []
    return _arm(model, now, model.phase, "")  # OnUnitActiveSec= counts from now


def _service_finished(model: TimerModel, event: TimerEvent, now: Now) -> Step:
    model = model.replace(service_up=False, service_finished=now.mono)
    if model.phase not in _ARMED:
        return model, []
    phase = Phase.WAITING if model.phase is Phase.RUNNING else model.phase
    return _arm(model, now, phase, "waiting")


def _stop(model: TimerModel, event: TimerEvent, now: Now) -> Step:
    model = model.replace(wake=None, armed=model.armed + 1)
    model, entered = _enter(model, Phase.INACTIVE, "stopped")
    return model, [Disarm(), *entered]


def _arm(model: TimerModel, now: Now, phase: Phase, reason: str) -> Step:
    """Plan the next elapse from `now` and arm it, in `phase` (running stays running until
    its service finished); no elapse left: elapsed (RemainAfterElapse=) or inactive."""
    config = model.config
    upcoming = plan(model, now)
    armed = model.armed + 1
    if upcoming is None:
        model = model.replace(wake=None, armed=armed)
        if phase is Phase.RUNNING:
            return _enter(model, Phase.RUNNING, reason or "running")
        done = Phase.ELAPSED if config.remain_after_elapse else Phase.INACTIVE
        model, entered = _enter(model, done, "elapsed")
        return model, [Disarm(), *entered]
    if phase is Phase.ELAPSED:
        phase = Phase.WAITING  # a service event gave an elapse again (OnUnitActiveSec=)
    waits = []
    if upcoming.wake_mono is not None:
        waits.append(upcoming.wake_mono - now.mono)
    if upcoming.wake_wall is not None:
        waits.append(upcoming.wake_wall - now.wall)
    full = max(min(waits), 0.0)
    delay = min(full, MAX_WALL_WAIT) if upcoming.wake_wall is not None else full
    previous = model.wake
    model = model.replace(wake=upcoming, armed=armed)
    model, entered = _enter(model, phase, reason or phase.value)
    final = delay == full
    precise = final and config.accuracy <= PRECISE_ACCURACY
    actions: list[TimerAction] = [*entered, Arm(armed, delay, upcoming.elapse, final, precise)]
    if previous is None or previous.elapse != upcoming.elapse:  # news only when it moved
        fields = {
            "service": config.service,
            "next_elapse": upcoming.elapse,
            "next_elapse_iso": iso(upcoming.elapse),
            "left_s": round(max(upcoming.elapse - now.wall, 0.0), 6),
        }
        actions.append(Notice(config.name, TIMER_ARMED_EVENT, fields))
    return model, actions


# ---- the table ----------------------------------------------------------------------------

_ALL = frozenset(Phase)
_ROWS: dict[type[TimerEvent], tuple[Handler, frozenset[Phase]]] = {
    Start: (_start, _AT_REST | {Phase.ELAPSED}),  # armed already: a second start is moot
    Wake: (_wake, frozenset({Phase.WAITING, Phase.RUNNING})),
    ServiceStarted: (_service_started, _ALL),
    ServiceFinished: (_service_finished, _ALL),
    Stop: (_stop, _ARMED),
    PlanNext: (_plan_next, frozenset({Phase.RUNNING})),
}

TABLE: dict[tuple[Phase, type[TimerEvent]], Handler] = {
    (phase, kind): handler if phase in acts_in else _ignore
    for kind, (handler, acts_in) in _ROWS.items()
    for phase in Phase
}


def describe(config: TimerConfig) -> Sequence[str]:
    """The triggers of `config`, as systemd lists them (`OnCalendar=...`, `OnBootSec=1s`)."""
    said = [f"OnCalendar={spec.normalized()}" for spec in config.calendar]
    said += [f"{kind}Sec={span:g}s" for kind, span in config.monotonic]
    return said
