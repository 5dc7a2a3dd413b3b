"""One pykka actor per unit: feeds the unit's state machine and carries out its actions.

`UnitActor` turns every message (a supervisor request, a `ProcessExit` from the reaper,
a `NotifyMessage` from the notify hub, a timer) into events for
`cinit.machines.unit_state.step`, and performs the actions that come back through the
unit's `UnitIO`. Actions that ask the OS a question are answered at once (the answer
is the next event), so the actor never waits on anything and never sleeps; timers come
from the scheduler as messages.

Supervision (pykka has none): everything that must outlive an actor lives in the unit's
`UnitSlot`, which is also the unit's address for everybody else (reaper, notify hub,
scheduler, supervisor). When the actor raises anywhere (a message, on_start, even
SystemExit), it moves the messages still in its inbox back into the slot, stops, and
tells the supervisor `UnitActorCrashed`; the supervisor starts a new actor on the same
slot, which resumes with the model, the queued events and actions, and re-delivers the
exits of processes that ended meanwhile. The action that was being performed when the
actor broke is tried once more if doing it twice is harmless (signals, timers, checks);
otherwise, or if it breaks again, its failure answer is fed instead (a Spawn becomes a
failed spawn), so the state machine always moves on. Messages told while no actor is attached
wait in the slot: nothing is lost across a restart.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import pykka

from cinit.actors.unit_slot import UnitSlot
from cinit.io.log import log
from cinit.io.reaper import ProcessExit
from cinit.machines.record import Record
from cinit.machines.unit_events import (
    Action,
    CancelTimer,
    CheckConditions,
    CheckEmpty,
    ConditionChecked,
    DependenciesSettled,
    DependencyFailed,
    Event,
    FindMainPid,
    GroupChecked,
    KillRequested,
    KillUnit,
    Log,
    MainPidFound,
    MainPidMissing,
    ProcessExited,
    SignalMain,
    SignalRequested,
    SignalUnit,
    Spawn,
    SpawnFailed,
    StartRequested,
    StartTimer,
    StopRequested,
    TimerFired,
    Transition,
    notify_events,
)
from cinit.machines.unit_model import ExitInfo, State
from cinit.machines.unit_state import monotonic_usec, step

if TYPE_CHECKING:
    from cinit.actors.unit_slot import Tellable


class Scheduling(Protocol):
    """The part of `cinit.actors.scheduler.Scheduler` a unit uses."""

    def call_later(self, delay: float, target: Any, message: object) -> Any: ...

    def cancel(self, timer: Any) -> bool: ...


class UnitReport(Record):
    """From a unit actor to the supervisor: a Transition, ReportSettled, ReportStopped,
    RequestOnFailure or RequestContainerExit of unit `unit`."""

    __slots__ = ("item", "unit")

    def __init__(self, unit: str, item: Action) -> None:
        self.unit = unit
        self.item = item


class UnitActorCrashed(Record):
    """From a unit actor to the supervisor: it broke and stopped; start another."""

    __slots__ = ("error", "unit", "where")

    def __init__(self, unit: str, where: str, error: str) -> None:
        self.unit = unit
        self.where = where
        self.error = error


class UnitActor(pykka.ThreadingActor):
    """The actor of one unit. Start with `UnitActor.start(slot, supervisor, scheduler)`."""

    use_daemon_thread = True  # a stuck unit must never keep PID 1 from exiting

    def __init__(
        self,
        slot: UnitSlot,
        supervisor: Tellable,
        scheduler: Scheduling,
        clock: Callable[[], int] = monotonic_usec,
        closing: threading.Event | None = None,
    ) -> None:
        super().__init__()
        self.slot = slot
        self.supervisor = supervisor
        self.scheduler = scheduler
        self.clock = clock
        self.closing = closing or threading.Event()
        self._crashed = False

    # ---- pykka hooks: nothing escapes ----------------------------------------------------

    def on_start(self) -> None:
        try:
            self.slot.attach(self.actor_ref)
            self._resume()
        except BaseException as exc:  # even SystemExit: pykka would stop every actor
            self._crash(exc, "on_start")

    def on_receive(self, message: Any) -> None:
        try:
            self._handle(message)
        except BaseException as exc:
            self._crash(exc, f"handling {message!r}")

    def on_stop(self) -> None:
        if self._crashed or self.closing.is_set():
            return
        # Stopped from outside (ActorRef.stop, ActorRegistry.stop_all): keep the messages
        # and let the supervisor decide, as for any other failure.
        self.slot.detach(self.actor_inbox)
        self._report_crash("on_stop", "the actor was stopped from outside")

    # ---- the work ------------------------------------------------------------------------

    def _resume(self) -> None:
        """After a restart: feed what the previous actor left unfinished, then carry on."""
        slot = self.slot
        culprit, slot.current = slot.current, None
        if culprit is not None:
            if isinstance(culprit, _REPEATABLE) and not slot.retried:
                slot.retried = True  # once: a deterministic failure must not loop forever
                slot.actions.appendleft(culprit)
            else:
                answer = _failure_answer(culprit)
                if answer is not None:
                    slot.events.append(answer)
        for exit_message in slot.io.pending_exits():
            self._take_exit(exit_message)
        self._run()

    def _handle(self, message: Any) -> None:
        slot = self.slot
        if isinstance(message, ProcessExit):
            self._take_exit(message)
        elif isinstance(message, TimerFired):
            slot.timers.pop((message.kind, message.token), None)
            slot.events.append(message)
        elif isinstance(message, _SUPERVISOR_EVENTS):
            slot.events.append(message)
        elif _is_notification(message):
            if slot.io.accepts_notification(message.sender_pid):
                slot.events.extend(notify_events(message.fields))
        else:
            log(f"{slot.name}: unexpected message {message!r}")
            return
        self._run()

    def _take_exit(self, message: ProcessExit) -> None:
        if self.slot.io.take_exit(message):
            exit_info = ExitInfo(message.code, message.signal, message.core_dumped)
            self.slot.events.append(ProcessExited(message.pid, exit_info))

    def _run(self) -> None:
        """Perform queued actions, feed queued events, until both queues are empty."""
        slot = self.slot
        while True:
            if slot.actions:
                action = slot.actions.popleft()
                slot.current = action
                answer = self._perform(action)
                slot.current = None
                slot.retried = False
                if answer is not None:
                    slot.events.append(answer)
            elif slot.events:
                event = slot.events.popleft()
                slot.model, actions = step(slot.model, event, self.clock())
                slot.actions.extend(actions)
            else:
                return

    def _perform(self, action: Action) -> Event | None:
        """Carry out one action; the answer, for those that ask something."""
        io = self.slot.io
        if isinstance(action, Log | Spawn | CheckConditions):
            return self.slot.start_step(action)
        if isinstance(action, StartTimer):
            message = TimerFired(action.kind, action.token)
            timer = self.scheduler.call_later(action.delay_usec / 1e6, self.slot, message)
            self.slot.timers[(action.kind, action.token)] = timer
        elif isinstance(action, CancelTimer):
            timer = self.slot.timers.pop((action.kind, action.token), None)
            if timer is not None:
                self.scheduler.cancel(timer)
        elif isinstance(action, SignalMain | SignalUnit | KillUnit | CheckEmpty | FindMainPid):
            return self._perform_os(action)
        else:  # Transition and the reports: for the supervisor
            if isinstance(action, Transition) and _cancels_start(action):
                io.discard_prepared()  # skipped or cancelled: no command will run
            self.supervisor.tell(UnitReport(self.slot.name, action))
        return None

    def _perform_os(self, action: Action) -> Event | None:
        """Signals and lookups; an OSError is logged and answered as a failure."""
        io = self.slot.io
        try:
            if isinstance(action, SignalMain):
                io.signal_main(action.pid, action.signo)
            elif isinstance(action, SignalUnit):
                io.signal_unit(action.signo)
            elif isinstance(action, KillUnit):
                io.kill_unit()
            elif isinstance(action, CheckEmpty):
                return GroupChecked(io.unit_empty())
            elif isinstance(action, FindMainPid):
                found = io.find_main_pid(action.hint, action.pid_file)
                if isinstance(found, int):
                    return MainPidFound(found)
                return MainPidMissing(found)
        except OSError as exc:
            log(f"{self.slot.name}: {type(action).__name__} failed: {exc}")
            return _failure_answer(action)
        return None

    # ---- failure -------------------------------------------------------------------------

    def _crash(self, exc: BaseException, where: str) -> None:
        self._crashed = True
        self.slot.detach(self.actor_inbox)
        # Stop taking messages, as pykka does after a failure (but without its stop_all).
        pykka.ActorRegistry.unregister(self.actor_ref)
        self.actor_stopped.set()
        text = "".join(traceback.format_exception(exc)).rstrip()
        self._report_crash(where, text)

    def _report_crash(self, where: str, text: str) -> None:
        try:
            self.supervisor.tell(UnitActorCrashed(self.slot.name, where, text))
        except Exception:  # the supervisor is gone: cinit is going down anyway
            log(f"{self.slot.name}: its actor broke ({where}) and nobody restarts it:\n{text}")


_SUPERVISOR_EVENTS = (
    StartRequested,
    DependenciesSettled,
    DependencyFailed,
    StopRequested,
    KillRequested,
    SignalRequested,
)


def _cancels_start(transition: Transition) -> bool:
    """A waiting unit goes anywhere but starting/running: it will not run a command now."""
    started = (State.STARTING, State.RUNNING)
    return transition.old is State.WAITING and transition.new not in started


def _is_notification(message: Any) -> bool:
    """A `cinit.io.notify.NotifyMessage` (checked by shape: the hub imports lazily)."""
    return hasattr(message, "fields") and hasattr(message, "sender_pid")


# Actions that may simply be done again after the actor broke while doing them (a
# signal twice is better than none); the others get their failure answer instead.
_REPEATABLE = (SignalMain, SignalUnit, KillUnit, CheckEmpty, StartTimer, CancelTimer, Log)


def _failure_answer(action: Action) -> Event | None:
    """What to feed the state machine when `action` could not be carried out."""
    if isinstance(action, Spawn):
        return SpawnFailed(action.role, action.index, None)
    if isinstance(action, CheckConditions):
        return ConditionChecked(None)
    if isinstance(action, CheckEmpty):
        return GroupChecked(False)  # look again later (the poll timer)
    if isinstance(action, FindMainPid):
        return MainPidMissing("internal error while looking for it")
    return None
