"""The root of the actor tree: owns the main command, decides forwarding and shutdown.

The main thread turns signals and exits into messages for this actor (`SignalArrived`,
`ProcessExit`, `ChildrenGone`); the scheduler brings its timers (`StopDeadline`,
`KillDeadline`). Each message becomes a lifecycle event, `lifecycle.step` decides, and the
actor carries out the resulting actions through `cinit.io`. When it is done it settles the
`RootOutcome`, which wakes the main thread to exit with that status.

Failure policy: PID 1 must never die of an actor exception. Any exception while handling a
message (even SystemExit) is caught, logged with its traceback, and reported through
`RootOutcome.fail`; the main thread then stops everything itself and exits with
`cinit.boot.EXIT_INTERNAL_ERROR` (70). If the actor is stopped from outside (pykka's stop_all after
another actor raised SystemExit), `on_stop` reports that the same way.

With `handoff=True` (`cinit --then-exec`), `BootSettled` from the unit supervisor starts the
same ordered stop, which ends with `RootOutcome.hand_off` instead of `settle`; the main
thread then execs the program (`cinit.io.handoff`). Its shutdown events carry `handoff: true`.

Unit supervision (issue 4) plugs in as `units`: any `tell`-able object that accepts
`StopAllUnits`, `KillAllUnits`, `ForwardSignal` and `ReloadAllUnits` (SIGHUP), and answers
with `UnitsStopped` (and `ExitRequested` for ExitContainerOnFailure) sent to this actor.
"""

from __future__ import annotations

import signal
import threading
import traceback
from collections.abc import Callable
from types import TracebackType
from typing import Any, Protocol

import pykka

from cinit.actors.scheduler import Scheduler, Timer
from cinit.actors.unit_ports import Tellable
from cinit.io import sweep
from cinit.io.log import info, log
from cinit.io.reaper import Process, ProcessExit
from cinit.machines import lifecycle as lc
from cinit.machines.record import Record


# Messages for the unit supervisor (issue 4).
class StopAllUnits(Record):
    """Stop every unit in reverse dependency order, then tell the root UnitsStopped."""


class KillAllUnits(Record):
    """The global stop timeout expired: SIGKILL every unit's processes now."""


class ForwardSignal(Record):
    """Pass `signo` to every running unit's main process (see cinit.io.signals)."""

    signo: int


class ReloadAllUnits(Record):
    """SIGHUP: read the unit files again (daemon-reload without apply)."""


class EventSink(Protocol):
    """Where the shutdown phases go (`cinit.events.hub.EventHub`)."""

    def emit(self, event: str, unit: str | None = None, **fields: object) -> int: ...


class RootOutcome:
    """The root's result, handed to the main thread (settled once, then it wakes it)."""

    def __init__(self, wake: Callable[[], None]) -> None:
        self._lock = threading.Lock()
        self._wake = wake
        self.status: int | None = None
        self.failure: str | None = None
        self.handoff = False  # settled by a handoff: the main thread execs --then-exec

    @property
    def done(self) -> bool:
        return self.status is not None or self.failure is not None

    def settle(self, status: int) -> None:
        """The root finished cleanly: cinit exits with `status`."""
        with self._lock:
            if self.done:
                return
            self.status = status
        self._wake()

    def hand_off(self) -> None:
        """Everything is stopped: the main thread hands PID 1 over (status 0 meanwhile)."""
        with self._lock:
            if self.done:
                return
            self.handoff = True
            self.status = 0
        self._wake()

    def fail(self, reason: str) -> None:
        """The root broke: the main thread must stop everything itself."""
        with self._lock:
            if self.done:
                return
            self.failure = reason
        self._wake()


class Effects:
    """The OS actions the root performs beyond its own processes (replaceable in tests)."""

    def signal_leftovers(self, signo: int) -> int:
        return sweep.signal_leftovers(signo)

    def children_remain(self) -> bool:
        return sweep.children_remain()


class RootSupervisor(pykka.ThreadingActor):
    """The root actor. Create with `RootSupervisor.start(...)`; talk to it with `tell` only."""

    def __init__(
        self,
        *,
        scheduler: Scheduler,
        outcome: RootOutcome,
        timeouts: lc.Timeouts,
        main: Process | None = None,
        units: Tellable | None = None,
        effects: Effects | None = None,
        events: EventSink | None = None,
        handoff: bool = False,
    ) -> None:
        super().__init__()
        self.scheduler = scheduler
        self.outcome = outcome
        self.timeouts = timeouts
        self.main = main
        self.units = units
        self.effects = effects or Effects()
        self.events = events  # the EventHub: shutdown phases go there (None: nowhere)
        self.model = lc.initial(main_alive=main is not None and main.alive, handoff=handoff)
        self._timers: list[Timer] = []

    # ---- pykka hooks ----------------------------------------------------------------

    def on_receive(self, message: object) -> None:
        try:
            self._handle(message)
        except BaseException as exc:  # PID 1 must survive its own bugs, even SystemExit
            self._broken(exc)

    def on_failure(
        self,
        exception_type: type[BaseException] | None,
        exception_value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.outcome.fail(f"root supervisor failed: {exception_value!r}")

    def on_stop(self) -> None:
        if not self.outcome.done:
            self.outcome.fail("root supervisor stopped unexpectedly")

    # ---- handling -------------------------------------------------------------------

    def _handle(self, message: object) -> None:
        pending: list[lc.Event] = []
        event = self._to_event(message)
        if event is not None:
            pending.append(event)
        while pending:
            self.model, actions = lc.step(self.model, pending.pop(0), self.timeouts)
            for action in actions:
                follow_up = self._perform(action)
                if follow_up is not None:
                    pending.append(follow_up)

    def _to_event(self, message: object) -> lc.Event | None:
        if isinstance(message, ProcessExit):
            if self.main is not None and message.pid == self.main.pid:
                return lc.MainExited(message.status, message.describe())
            info(f"exit of a process the root does not own: {message!r}")
            return None
        if isinstance(message, lc.EVENT_TYPES):
            return message  # type: ignore[return-value]  # EVENT_TYPES are the Event members
        log(f"root supervisor: unexpected message {message!r}")
        return None

    def _perform(self, action: lc.Action) -> lc.Event | None:
        """Carry out one action; OS errors are logged, never fatal to the shutdown."""
        try:
            return self._PERFORMERS[type(action)](self, action)
        except OSError as exc:
            log(f"root supervisor: {type(action).__name__} failed: {exc}")
            return None

    # ---- the actions, one method each (dispatched by `_PERFORMERS`) --------------------

    def _signal_main(self, action: lc.SignalMain) -> None:
        if self.main is not None:
            self.main.send_signal(action.signo)

    def _kill_main_group(self, _action: lc.KillMainGroup) -> None:
        if self.main is not None:
            self.main.send_signal(signal.SIGKILL)
            self.main.signal_group(signal.SIGKILL)

    def _tell_units(
        self, action: lc.ForwardToUnits | lc.ReloadUnits | lc.StopUnits | lc.KillUnits
    ) -> None:
        if self.units is None:
            return
        if isinstance(action, lc.ForwardToUnits):
            self.units.tell(ForwardSignal(action.signo))
        elif isinstance(action, lc.ReloadUnits):
            self.units.tell(ReloadAllUnits())
        else:
            self.units.tell(StopAllUnits() if isinstance(action, lc.StopUnits) else KillAllUnits())

    def _signal_leftovers(self, action: lc.SignalLeftovers) -> None:
        self.effects.signal_leftovers(action.signo)

    def _start_timer(self, action: lc.StartTimer) -> None:
        self._timers.append(self.scheduler.call_later(action.delay, self.actor_ref, action.event))

    def _check_children(self, _action: lc.CheckChildren) -> lc.Event | None:
        return None if self.effects.children_remain() else lc.ChildrenGone()

    def _log(self, action: lc.Log) -> None:
        (info if action.routine else log)(action.text)

    def _end(self, action: lc.Finish | lc.HandOff) -> None:
        for timer in self._timers:
            self.scheduler.cancel(timer)
        if isinstance(action, lc.HandOff):
            self.outcome.hand_off()
        else:
            self.outcome.settle(action.status)

    def _announce(self, action: lc.PhaseEntered) -> None:
        """A shutdown phase began: `shutdown-started`, -draining, -killing, -finished."""
        if self.events is None or action.new is lc.Phase.RUNNING:
            return
        names = {lc.Phase.STOPPING: "started", lc.Phase.EXITED: "finished"}
        phase = names.get(action.new, str(action.new))
        fields: dict[str, object] = {"old": str(action.old), "new": str(action.new)}
        if action.new is lc.Phase.STOPPING:
            fields["reason"] = self.model.stop_reason
        if action.new is lc.Phase.EXITED:
            fields["status"] = self.model.exit_status
        if self.model.handing_off:  # --then-exec: this stop ends in the exec, not an exit
            fields["handoff"] = True
        self.events.emit(f"shutdown-{phase}", None, **fields)

    _PERFORMERS: dict[type, Callable[[RootSupervisor, Any], lc.Event | None]] = {
        lc.SignalMain: _signal_main,
        lc.KillMainGroup: _kill_main_group,
        lc.ForwardToUnits: _tell_units,
        lc.ReloadUnits: _tell_units,
        lc.StopUnits: _tell_units,
        lc.KillUnits: _tell_units,
        lc.SignalLeftovers: _signal_leftovers,
        lc.StartTimer: _start_timer,
        lc.CheckChildren: _check_children,
        lc.Log: _log,
        lc.Finish: _end,
        lc.HandOff: _end,
        lc.PhaseEntered: _announce,
    }

    def _broken(self, exc: BaseException) -> None:
        text = "".join(traceback.format_exception(exc)).rstrip()
        log(f"internal error in the root supervisor:\n{text}")
        self.outcome.fail(f"root supervisor failed: {exc!r}")
        # Stop taking messages (as pykka does for a failure); the main thread takes over.
        pykka.ActorRegistry.unregister(self.actor_ref)
        self.actor_stopped.set()
