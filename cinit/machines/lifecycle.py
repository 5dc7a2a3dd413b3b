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
microseconds. The actor in `root.py` feeds it and performs the actions.

The whole shutdown is bounded: `stop_timeout` from the first stop request to SIGKILL
(covering the main command, the units and the SIGTERM to leftovers), then at most
`kill_grace` to reap what SIGKILL left before cinit exits anyway.
"""

from __future__ import annotations

import signal
from enum import StrEnum

from cinit.machines.record import Record
from cinit.signal_policy import (
    FORWARDED_SIGNALS,
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


Action = (
    SignalMain
    | KillMainGroup
    | ForwardToUnits
    | StopUnits
    | KillUnits
    | SignalLeftovers
    | StartTimer
    | CheckChildren
    | Log
    | Finish
    | HandOff
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


def step(model: RootModel, event: Event, timeouts: Timeouts) -> tuple[RootModel, list[Action]]:
    """The one place where the root's state changes."""
    phase = model.phase
    if phase is Phase.EXITED:
        return model, []

    if isinstance(event, Booted):
        if phase is Phase.BOOTING:
            model = model.replace(phase=Phase.RUNNING, units_alive=event.units)
            if model.handoff and not event.units:  # nothing to wait for
                return _begin_handoff(model, timeouts)
            return model, []
        return model, []

    if isinstance(event, BootSettled):
        if model.handoff and phase is Phase.RUNNING:
            return _begin_handoff(model, timeouts)
        return model, []

    if isinstance(event, SignalArrived):
        return _on_signal(model, event, timeouts)

    if isinstance(event, MainExited):
        model = model.replace(main_alive=False, main_status=event.status)
        if phase in (Phase.BOOTING, Phase.RUNNING):
            text = f"main command {event.description or 'exited'}; stopping"
            return _begin_stop(model, text, None, timeouts, routine=True)
        return _after_progress(model, timeouts)

    if isinstance(event, UnitsStopped):
        model = model.replace(units_alive=False)
        if phase in (Phase.BOOTING, Phase.RUNNING):
            return model, []
        return _after_progress(model, timeouts)

    if isinstance(event, ExitRequested):
        if model.forced_status is None:
            model = model.replace(forced_status=event.status)
        if model.handing_off:  # a unit decided the container must end: no handoff
            model = model.replace(handing_off=False)
            return model, [Log(f"{event.reason}; not handing off")]
        if phase in (Phase.BOOTING, Phase.RUNNING):
            return _begin_stop(model, event.reason, SIGTERM, timeouts)
        return model, []

    if isinstance(event, StopDeadline):
        if phase in (Phase.STOPPING, Phase.DRAINING):
            return _escalate(model, timeouts)
        return model, []

    if isinstance(event, ChildrenGone):
        if phase in (Phase.DRAINING, Phase.KILLING) and not model.main_alive:
            return _finish(model)
        return model, []

    if isinstance(event, KillDeadline):
        if phase is Phase.KILLING:
            model, actions = _finish(model)
            text = f"processes still present {timeouts.kill_grace:g}s after SIGKILL; exiting anyway"
            return model, [Log(text), *actions]
        return model, []

    return model, []


def _on_signal(
    model: RootModel, event: SignalArrived, timeouts: Timeouts
) -> tuple[RootModel, list[Action]]:
    signo, name = event.signo, signal_name(event.signo)
    phase = model.phase
    if signo in SHUTDOWN_SIGNALS:
        if phase in (Phase.BOOTING, Phase.RUNNING):
            sender = f" from pid {event.sender_pid}" if event.sender_pid else ""
            return _begin_stop(model, f"{name}{sender}: stopping", signo, timeouts, routine=True)
        actions: list[Action] = []
        if model.handing_off:
            model = model.replace(handing_off=False)
            return model, [Log(f"{name} during the handoff: not handing off; cinit exits")]
        if model.main_alive:
            actions.append(SignalMain(main_stop_signal(signo)))
            text = f"{name} while stopping: passed on to the main command; shutdown continues"
        else:
            text = f"{name} while stopping: shutdown continues"
        return model, [Log(text), *actions]
    if signo in FORWARDED_SIGNALS:
        actions = []
        if model.main_alive and phase is not Phase.KILLING:
            actions.append(SignalMain(signo))
        if model.units_alive and signo in UNIT_FORWARDED_SIGNALS and phase is Phase.RUNNING:
            actions.append(ForwardToUnits(signo))
        return model, actions
    return model, []


def _begin_stop(
    model: RootModel, reason: str, signo: int | None, timeouts: Timeouts, routine: bool = False
) -> tuple[RootModel, list[Action]]:
    """Enter STOPPING: stop the main command (with `signo`) and the units, arm the deadline."""
    model = model.replace(phase=Phase.STOPPING, stop_reason=reason)
    actions: list[Action] = [Log(reason, routine=routine)]
    actions.append(StartTimer(StopDeadline(), timeouts.stop_timeout))
    if model.main_alive:
        actions.append(SignalMain(main_stop_signal(signo if signo is not None else SIGTERM)))
    if model.units_alive:
        actions.append(StopUnits())
    model, more = _after_progress(model, timeouts)
    return model, actions + more


def _after_progress(model: RootModel, timeouts: Timeouts) -> tuple[RootModel, list[Action]]:
    """In STOPPING: once the main command and the units are gone, SIGTERM the leftovers."""
    if model.phase is Phase.STOPPING and not model.main_alive and not model.units_alive:
        model = model.replace(phase=Phase.DRAINING)
        return model, [SignalLeftovers(SIGTERM), CheckChildren()]
    if model.phase in (Phase.DRAINING, Phase.KILLING) and not model.main_alive:
        return model, [CheckChildren()]
    return model, []


def _escalate(model: RootModel, timeouts: Timeouts) -> tuple[RootModel, list[Action]]:
    """The stop timeout expired: SIGKILL whatever is left, then reap for `kill_grace`."""
    actions: list[Action] = []
    waiting = []
    if model.main_alive:
        waiting.append("the main command")
        actions.append(KillMainGroup())
    if model.units_alive:
        waiting.append("units")
        actions.append(KillUnits())
    what = " and ".join(waiting) or "leftover processes"
    text = f"{what} did not stop within {timeouts.stop_timeout:g}s; sending SIGKILL"
    model = model.replace(phase=Phase.KILLING)
    return model, [
        Log(text),
        *actions,
        SignalLeftovers(SIGKILL),
        StartTimer(KillDeadline(), timeouts.kill_grace),
        CheckChildren(),
    ]


def _begin_handoff(model: RootModel, timeouts: Timeouts) -> tuple[RootModel, list[Action]]:
    """The boot settled: stop what still runs (the usual ordered stop), then hand off."""
    model = model.replace(handing_off=True)
    reason = "boot settled: stopping what still runs, then handing off"
    return _begin_stop(model, reason, None, timeouts, routine=True)


def _finish(model: RootModel) -> tuple[RootModel, list[Action]]:
    model = model.replace(phase=Phase.EXITED)
    if model.handing_off:
        return model, [HandOff()]
    return model, [Finish(model.exit_status)]
