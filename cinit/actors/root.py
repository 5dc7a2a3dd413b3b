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
`StopAllUnits`, `KillAllUnits` and `ForwardSignal`, and answers with `UnitsStopped` (and
`ExitRequested` for ExitContainerOnFailure) sent to this actor.
"""

from __future__ import annotations

import signal
import threading
import traceback
from collections.abc import Callable
from typing import Any, Protocol

import pykka

from cinit.actors.scheduler import Scheduler, Timer
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


class Tellable(Protocol):
    def tell(self, message: Any) -> None: ...


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
        events: Any = None,
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

    def on_receive(self, message: Any) -> None:
        try:
            self._handle(message)
        except BaseException as exc:  # PID 1 must survive its own bugs, even SystemExit
            self._broken(exc)

    def on_failure(self, exception_type: Any, exception_value: Any, tb: Any) -> None:
        self.outcome.fail(f"root supervisor failed: {exception_value!r}")

    def on_stop(self) -> None:
        if not self.outcome.done:
            self.outcome.fail("root supervisor stopped unexpectedly")

    # ---- handling -------------------------------------------------------------------

    def _handle(self, message: Any) -> None:
        pending: list[lc.Event] = []
        event = self._to_event(message)
        if event is not None:
            pending.append(event)
        while pending:
            before = self.model
            self.model, actions = lc.step(self.model, pending.pop(0), self.timeouts)
            if self.events is not None and self.model.phase is not before.phase:
                self._announce(before, self.model)
            for action in actions:
                follow_up = self._perform(action)
                if follow_up is not None:
                    pending.append(follow_up)

    def _to_event(self, message: Any) -> lc.Event | None:
        if isinstance(message, ProcessExit):
            if self.main is not None and message.pid == self.main.pid:
                return lc.MainExited(message.status, message.describe())
            info(f"exit of a process the root does not own: {message!r}")
            return None
        if isinstance(
            message,
            lc.Booted
            | lc.SignalArrived
            | lc.MainExited
            | lc.UnitsStopped
            | lc.ExitRequested
            | lc.StopDeadline
            | lc.KillDeadline
            | lc.ChildrenGone
            | lc.BootSettled,
        ):
            return message
        log(f"root supervisor: unexpected message {message!r}")
        return None

    def _perform(self, action: lc.Action) -> lc.Event | None:
        """Carry out one action; OS errors are logged, never fatal to the shutdown."""
        try:
            return self._perform_unchecked(action)
        except OSError as exc:
            log(f"root supervisor: {type(action).__name__} failed: {exc}")
            return None

    def _perform_unchecked(self, action: lc.Action) -> lc.Event | None:
        main = self.main
        if isinstance(action, lc.SignalMain):
            if main is not None:
                main.send_signal(action.signo)
        elif isinstance(action, lc.KillMainGroup):
            if main is not None:
                main.send_signal(signal.SIGKILL)
                main.signal_group(signal.SIGKILL)
        elif isinstance(action, lc.ForwardToUnits):
            if self.units is not None:
                self.units.tell(ForwardSignal(action.signo))
        elif isinstance(action, lc.StopUnits):
            if self.units is not None:
                self.units.tell(StopAllUnits())
        elif isinstance(action, lc.KillUnits):
            if self.units is not None:
                self.units.tell(KillAllUnits())
        elif isinstance(action, lc.SignalLeftovers):
            self.effects.signal_leftovers(action.signo)
        elif isinstance(action, lc.StartTimer):
            timer = self.scheduler.call_later(action.delay, self.actor_ref, action.event)
            self._timers.append(timer)
        elif isinstance(action, lc.CheckChildren):
            if not self.effects.children_remain():
                return lc.ChildrenGone()
        elif isinstance(action, lc.Log):
            (info if action.routine else log)(action.text)
        elif isinstance(action, lc.Finish | lc.HandOff):
            for timer in self._timers:
                self.scheduler.cancel(timer)
            if isinstance(action, lc.HandOff):
                self.outcome.hand_off()
            else:
                self.outcome.settle(action.status)
        return None

    def _announce(self, before: lc.RootModel, after: lc.RootModel) -> None:
        """A shutdown phase began: `shutdown-started`, -draining, -killing, -finished."""
        names = {lc.Phase.STOPPING: "started", lc.Phase.EXITED: "finished"}
        if after.phase is lc.Phase.RUNNING:
            return
        phase = names.get(after.phase, str(after.phase))
        fields: dict[str, Any] = {"old": str(before.phase), "new": str(after.phase)}
        if after.phase is lc.Phase.STOPPING:
            fields["reason"] = after.stop_reason
        if after.phase is lc.Phase.EXITED:
            fields["status"] = after.exit_status
        if after.handing_off:  # --then-exec: this stop ends in the exec, not an exit
            fields["handoff"] = True
        self.events.emit(f"shutdown-{phase}", None, **fields)

    def _broken(self, exc: BaseException) -> None:
        text = "".join(traceback.format_exception(exc)).rstrip()
        log(f"internal error in the root supervisor:\n{text}")
        self.outcome.fail(f"root supervisor failed: {exc!r}")
        # Stop taking messages (as pykka does for a failure); the main thread takes over.
        pykka.ActorRegistry.unregister(self.actor_ref)
        self.actor_stopped.set()
