"""The root supervisor's lifecycle as one pure transition function.

    BOOTING --Booted--> RUNNING
    BOOTING/RUNNING --stop signal | main command exited | exit requested--> STOPPING
    STOPPING --main command and units gone--> DRAINING   (leftovers get SIGTERM)
    STOPPING/DRAINING --StopDeadline--> KILLING           (SIGKILL to everything left)
    DRAINING/KILLING --ChildrenGone | KillDeadline--> EXITED

Handoff (`cinit --then-exec`, `handoff=True`): once every boot unit settled (`BootSettled`
from the unit supervisor; at once when there are no units) the root runs the same stop
path with `handing_off` set, and ends with `HandOff` instead of `Finish`: the main thread
then execs the program. A stop signal during that stop cancels the handoff (cinit exits).

`step(model, event, timeouts)` returns the next model and the actions to carry out; it
does no I/O and reads no clock (timers are events), so every path is tested in
microseconds. `TABLE` says, for each event type and phase, which handler runs; phases
change only through `_enter`, which emits one `PhaseEntered` per change (the root actor
publishes the shutdown phases from it). The actor in `root.py` feeds it and performs the
actions.

The whole shutdown is bounded: `stop_timeout` from the first stop request to SIGKILL
(covering the main command, the units and the SIGTERM to leftovers), then at most
`kill_grace` to reap what SIGKILL left before cinit exits anyway.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from enum import StrEnum
from typing import Any

from cinit.machines.record import Record
from cinit.signal_policy import (
    FORWARDED_SIGNALS,
    RELOAD_SIGNAL,
    SHUTDOWN_SIGNALS,
    UNIT_FORWARDED_SIGNALS,
    main_stop_signal,
    signal_name,
)
from cinit.units.frozen import Frozen

SIGTERM = signal.SIGTERM
SIGKILL = signal.SIGKILL


class Phase(StrEnum):
    BOOTING = "booting"
    RUNNING = "running"
    STOPPING = "stopping"  # main command and units are being stopped
    DRAINING = "draining"  # they are gone; leftovers got SIGTERM, waiting for them
    KILLING = "killing"  # stop timeout expired: SIGKILL sent, reaping
    EXITED = "exited"


# ---- events -------------------------------------------------------------------------


class Booted(Record):
    """Boot finished: the main command (if any) runs and units are started."""

    units: bool = False  # whether a unit supervisor is running beside the main command


class SignalArrived(Record):
    signo: int
    sender_pid: int = 0


class MainExited(Record):
    status: int  # shell convention: code, or 128+signal
    description: str = ""


class UnitsStopped(Record):
    """The unit supervisor stopped every unit (issue 4 sends it)."""


class ExitRequested(Record):
    """Something decided the container must stop with `status` (ExitContainerOnFailure)."""

    status: int
    reason: str


class StopDeadline(Record):
    """Timer: `stop_timeout` has passed since the stop began."""


class KillDeadline(Record):
    """Timer: `kill_grace` has passed since SIGKILL."""


class ChildrenGone(Record):
    """cinit has no children left at all (everything reaped)."""


class BootSettled(Record):
    """Every boot unit settled: ready, finished (oneshots), failed or skipped."""


Event = (
    Booted
    | SignalArrived
    | MainExited
    | UnitsStopped
    | ExitRequested
    | StopDeadline
    | KillDeadline
    | ChildrenGone
    | BootSettled
)

# ---- actions ------------------------------------------------------------------------


class SignalMain(Record):
    signo: int


class KillMainGroup(Record):
    """SIGKILL the main command's whole process group."""


class ForwardToUnits(Record):
    signo: int


class ReloadUnits(Record):
    """SIGHUP with units: read the unit files again (daemon-reload, nothing applied)."""


class StopUnits(Record):
    """Begin the units' ordered shutdown."""


class KillUnits(Record):
    """SIGKILL every unit's processes now."""


class SignalLeftovers(Record):
    """Signal every remaining process cinit may stop (namespace as PID 1, else descendants)."""

    signo: int


class StartTimer(Record):
    event: StopDeadline | KillDeadline
    delay: float


class CheckChildren(Record):
    """Find out whether any child is left; feed ChildrenGone back when none is."""


class Log(Record):
    text: str
    routine: bool = False  # routine lines are only shown when verbose


class Finish(Record):
    status: int


class HandOff(Record):
    """Everything is stopped: the main thread execs the --then-exec program."""


class PhaseEntered(Record):
    """The root moved from `old` to `new` (the one mutator's one event per change)."""

    old: Phase
    new: Phase


Action = (
    SignalMain
    | KillMainGroup
    | ForwardToUnits
    | ReloadUnits
    | StopUnits
    | KillUnits
    | SignalLeftovers
    | StartTimer
    | CheckChildren
    | Log
    | Finish
    | HandOff
    | PhaseEntered
)

# ---- model --------------------------------------------------------------------------


class Timeouts(Frozen):
    stop_timeout: float = 8.0
    kill_grace: float = 1.0


class RootModel(Frozen):
    phase: Phase = Phase.BOOTING
    main_alive: bool = False
    units_alive: bool = False
    main_status: int | None = None
    forced_status: int | None = None  # from ExitRequested
    stop_reason: str = ""
    handoff: bool = False  # --then-exec: hand off once the boot settled
    handing_off: bool = False  # the stop under way ends in HandOff, not Finish

    @property
    def exit_status(self) -> int:
        """cinit's exit status: a forced one, else the main command's, else 0."""
        if self.forced_status is not None:
            return self.forced_status
        return self.main_status if self.main_status is not None else 0


def initial(main_alive: bool, handoff: bool = False) -> RootModel:
    """The model at start: the main command is already running when there is one."""
    return RootModel(main_alive=main_alive, handoff=handoff)


Step = tuple[RootModel, list[Action]]
Handler = Callable[[RootModel, Any, Timeouts], Step]


def step(model: RootModel, event: Event, timeouts: Timeouts) -> Step:
    """Feed one event: the next model and the actions to carry out (see `TABLE`)."""
    return TABLE[type(event)][model.phase](model, event, timeouts)


# ---- the one mutator ----------------------------------------------------------------


def _enter(model: RootModel, phase: Phase, **changes: Any) -> Step:
    """Move to `phase` (with `changes` to the model); one `PhaseEntered` for the move."""
    moved = model.replace(phase=phase, **changes)
    return moved, [PhaseEntered(model.phase, phase)]


# ---- handlers: (model, event, timeouts) -> (model, actions) ---------------------------


def _ignored(model: RootModel, _event: object, _timeouts: Timeouts) -> Step:
    return model, []


def _booted(model: RootModel, event: Booted, timeouts: Timeouts) -> Step:
    model, actions = _enter(model, Phase.RUNNING, units_alive=event.units)
    if model.handoff and not event.units:  # nothing to wait for
        return _then(actions, _begin_handoff(model, timeouts))
    return model, actions


def _boot_settled(model: RootModel, _event: BootSettled, timeouts: Timeouts) -> Step:
    return _begin_handoff(model, timeouts) if model.handoff else (model, [])


def _stop_signal_while_up(model: RootModel, event: SignalArrived, timeouts: Timeouts) -> Step:
    sender = f" from pid {event.sender_pid}" if event.sender_pid else ""
    reason = f"{signal_name(event.signo)}{sender}: stopping"
    return _begin_stop(model, reason, event.signo, timeouts, routine=True)


def _stop_signal_while_stopping(model: RootModel, event: SignalArrived, _t: Timeouts) -> Step:
    name = signal_name(event.signo)
    if model.handing_off:
        return model.replace(handing_off=False), [
            Log(f"{name} during the handoff: not handing off; cinit exits")
        ]
    if model.main_alive:
        text = f"{name} while stopping: passed on to the main command; shutdown continues"
        return model, [Log(text), SignalMain(main_stop_signal(event.signo))]
    return model, [Log(f"{name} while stopping: shutdown continues")]


def _forward_signal(model: RootModel, event: SignalArrived, _timeouts: Timeouts) -> Step:
    signo = event.signo
    actions: list[Action] = []
    if model.main_alive and model.phase is not Phase.KILLING:
        actions.append(SignalMain(signo))
    if model.units_alive and model.phase is Phase.RUNNING:
        if signo in UNIT_FORWARDED_SIGNALS:
            actions.append(ForwardToUnits(signo))
        elif signo == RELOAD_SIGNAL:
            actions.append(ReloadUnits())
    return model, actions


def _signal_arrived(model: RootModel, event: SignalArrived, timeouts: Timeouts) -> Step:
    """Which signals stop cinit and which are passed on is `signal_policy`'s word."""
    if event.signo in SHUTDOWN_SIGNALS:
        if model.phase in UP:
            return _stop_signal_while_up(model, event, timeouts)
        return _stop_signal_while_stopping(model, event, timeouts)
    if event.signo in FORWARDED_SIGNALS:
        return _forward_signal(model, event, timeouts)
    return model, []


def _main_exited_while_up(model: RootModel, event: MainExited, timeouts: Timeouts) -> Step:
    model = model.replace(main_alive=False, main_status=event.status)
    text = f"main command {event.description or 'exited'}; stopping"
    return _begin_stop(model, text, None, timeouts, routine=True)


def _main_exited_while_stopping(model: RootModel, event: MainExited, timeouts: Timeouts) -> Step:
    model = model.replace(main_alive=False, main_status=event.status)
    return _after_progress(model, timeouts)


def _units_stopped_while_up(model: RootModel, _event: UnitsStopped, _t: Timeouts) -> Step:
    return model.replace(units_alive=False), []


def _units_stopped_while_stopping(model: RootModel, _event: UnitsStopped, t: Timeouts) -> Step:
    return _after_progress(model.replace(units_alive=False), t)


def _forced(model: RootModel, event: ExitRequested) -> RootModel:
    """The first ExitRequested decides the status."""
    return model if model.forced_status is not None else model.replace(forced_status=event.status)


def _exit_requested_while_up(model: RootModel, event: ExitRequested, timeouts: Timeouts) -> Step:
    return _begin_stop(_forced(model, event), event.reason, SIGTERM, timeouts)


def _exit_requested_while_stopping(model: RootModel, event: ExitRequested, _t: Timeouts) -> Step:
    model = _forced(model, event)
    if model.handing_off:  # a unit decided the container must end: no handoff
        return model.replace(handing_off=False), [Log(f"{event.reason}; not handing off")]
    return model, []


def _children_gone(model: RootModel, _event: ChildrenGone, _timeouts: Timeouts) -> Step:
    return _finish(model) if not model.main_alive else (model, [])


def _kill_deadline(model: RootModel, _event: KillDeadline, timeouts: Timeouts) -> Step:
    model, actions = _finish(model)
    text = f"processes still present {timeouts.kill_grace:g}s after SIGKILL; exiting anyway"
    return model, [Log(text), *actions]


# ---- shared paths ---------------------------------------------------------------------


def _then(actions: list[Action], step: Step) -> Step:
    """`step` with `actions` (already taken) before its own."""
    return step[0], actions + step[1]


def _begin_stop(
    model: RootModel, reason: str, signo: int | None, timeouts: Timeouts, routine: bool = False
) -> Step:
    """Enter STOPPING: stop the main command (with `signo`) and the units, arm the deadline."""
    model, actions = _enter(model, Phase.STOPPING, stop_reason=reason)
    actions += [Log(reason, routine=routine), StartTimer(StopDeadline(), timeouts.stop_timeout)]
    if model.main_alive:
        actions.append(SignalMain(main_stop_signal(signo if signo is not None else SIGTERM)))
    if model.units_alive:
        actions.append(StopUnits())
    return _then(actions, _after_progress(model, timeouts))


def _after_progress(model: RootModel, _timeouts: Timeouts) -> Step:
    """In STOPPING: once the main command and the units are gone, SIGTERM the leftovers."""
    if model.phase is Phase.STOPPING and not model.main_alive and not model.units_alive:
        model, actions = _enter(model, Phase.DRAINING)
        return model, [*actions, SignalLeftovers(SIGTERM), CheckChildren()]
    if model.phase in (Phase.DRAINING, Phase.KILLING) and not model.main_alive:
        return model, [CheckChildren()]
    return model, []


def _escalate(model: RootModel, _event: StopDeadline, timeouts: Timeouts) -> Step:
    """The stop timeout expired: SIGKILL whatever is left, then reap for `kill_grace`."""
    kills: list[Action] = []
    waiting = []
    if model.main_alive:
        waiting.append("the main command")
        kills.append(KillMainGroup())
    if model.units_alive:
        waiting.append("units")
        kills.append(KillUnits())
    what = " and ".join(waiting) or "leftover processes"
    text = f"{what} did not stop within {timeouts.stop_timeout:g}s; sending SIGKILL"
    model, actions = _enter(model, Phase.KILLING)
    return model, [
        *actions,
        Log(text),
        *kills,
        SignalLeftovers(SIGKILL),
        StartTimer(KillDeadline(), timeouts.kill_grace),
        CheckChildren(),
    ]


def _begin_handoff(model: RootModel, timeouts: Timeouts) -> Step:
    """The boot settled: stop what still runs (the usual ordered stop), then hand off."""
    model = model.replace(handing_off=True)
    reason = "boot settled: stopping what still runs, then handing off"
    return _begin_stop(model, reason, None, timeouts, routine=True)


def _finish(model: RootModel) -> Step:
    model, actions = _enter(model, Phase.EXITED)
    if model.handing_off:
        return model, [*actions, HandOff()]
    return model, [*actions, Finish(model.exit_status)]


# ---- the table ------------------------------------------------------------------------

UP = (Phase.BOOTING, Phase.RUNNING)
STOPPING_PHASES = (Phase.STOPPING, Phase.DRAINING, Phase.KILLING)


def _row(cells: dict[tuple[Phase, ...], Handler]) -> dict[Phase, Handler]:
    """One row: a handler for every phase (ignored where none is named; always in EXITED)."""
    row: dict[Phase, Handler] = dict.fromkeys(Phase, _ignored)
    for phases, handler in cells.items():
        for phase in phases:
            row[phase] = handler
    return row


# Event type x phase -> handler. Every phase has a cell in every row.
TABLE: dict[type, dict[Phase, Handler]] = {
    Booted: _row({(Phase.BOOTING,): _booted}),
    BootSettled: _row({(Phase.RUNNING,): _boot_settled}),
    SignalArrived: _row({(*UP, *STOPPING_PHASES): _signal_arrived}),
    MainExited: _row({UP: _main_exited_while_up, STOPPING_PHASES: _main_exited_while_stopping}),
    UnitsStopped: _row(
        {UP: _units_stopped_while_up, STOPPING_PHASES: _units_stopped_while_stopping}
    ),
    ExitRequested: _row(
        {UP: _exit_requested_while_up, STOPPING_PHASES: _exit_requested_while_stopping}
    ),
    StopDeadline: _row({(Phase.STOPPING, Phase.DRAINING): _escalate}),
    ChildrenGone: _row({(Phase.DRAINING, Phase.KILLING): _children_gone}),
    KillDeadline: _row({(Phase.KILLING,): _kill_deadline}),
}

# The event types `step` takes (for the root actor's message check).
EVENT_TYPES = tuple(TABLE)
