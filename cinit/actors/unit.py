"""One pykka actor per unit: carries messages from the unit's slot to its runner.

The reaper, the notify hub, the scheduler and the supervisor tell the unit's `UnitSlot`;
the slot wakes the actor, which takes the messages one by one and hands them to the
unit's `UnitRunner` (`cinit.actors.unit_runner`), the same driver of the state machine
the first wave of boot uses. The actor never waits on anything and never sleeps.

Supervision (pykka has none): everything that must outlive an actor lives in the slot,
messages included. When the actor raises anywhere (a message, on_start, even
SystemExit), it detaches from the slot, tells the supervisor `UnitActorCrashed` and stops
through pykka's public `ActorRef.stop`; the supervisor starts a new actor on the same
slot, which resumes with the model, the queued events and actions and the waiting
messages, and re-delivers the exits of processes that ended meanwhile. The action that
was being performed when the actor broke is tried once more if doing it twice is harmless
(signals, timers, checks); otherwise, or if it breaks again, its failure answer is fed
instead (a Spawn becomes a failed spawn), so the state machine always moves on.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable

import pykka

from cinit.actors.unit_ports import Scheduling, Tellable
from cinit.actors.unit_runner import Retire, UnitReport, UnitRunner
from cinit.actors.unit_slot import UnitSlot, Wake
from cinit.io.log import log
from cinit.machines.record import Record
from cinit.machines.unit_state import monotonic_usec

__all__ = ["Scheduling", "UnitActor", "UnitActorCrashed", "UnitReport"]


class UnitActorCrashed(Record):
    """From a unit actor to the supervisor: it broke and stopped; start another."""

    unit: str
    where: str
    error: str


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
        self.runner = UnitRunner(slot, supervisor, scheduler, clock)
        self.closing = closing or threading.Event()
        self._crashed = False

    # ---- pykka hooks: nothing escapes ----------------------------------------------------

    def on_start(self) -> None:
        try:
            self._resume()
            self.slot.attach(self.actor_ref)
        except BaseException as exc:  # even SystemExit: pykka would stop every actor
            self._crash(exc, "on_start")

    def on_receive(self, message: object) -> None:
        if self._crashed or not isinstance(message, Wake):
            return  # a wake-up that reached a broken actor: the next one takes the inbox
        while not self._crashed and (taken := self.slot.take()) is not None:
            try:
                self._handle(taken)
            except BaseException as exc:
                self._crash(exc, f"handling {taken!r}")
                return

    def on_stop(self) -> None:
        if self._crashed or self.closing.is_set():
            return
        # Stopped from outside (ActorRef.stop, ActorRegistry.stop_all): the messages stay
        # in the slot; the supervisor decides, as for any other failure.
        self.slot.detach()
        self._report_crash("on_stop", "the actor was stopped from outside")

    # ---- the work ------------------------------------------------------------------------

    def _resume(self) -> None:
        """After a restart: feed what the previous actor left unfinished, then carry on."""
        self.runner.resume()

    def _handle(self, message: object) -> None:
        if isinstance(message, Retire):  # daemon-reload removed the unit: its actor ends
            self._crashed = True  # nothing more is taken, and on_stop reports nothing
            self.slot.detach()
            self.actor_ref.stop(block=False)
            return
        if not self.runner.take(message):
            log(f"{self.slot.name}: unexpected message {message!r}")
            return
        self.runner.run()

    # ---- failure -------------------------------------------------------------------------

    def _crash(self, exc: BaseException, where: str) -> None:
        self._crashed = True
        self.slot.detach()
        text = "".join(traceback.format_exception(exc)).rstrip()
        self._report_crash(where, text)
        self.actor_ref.stop(block=False)  # on_stop sees _crashed: nothing more to do

    def _report_crash(self, where: str, text: str) -> None:
        try:
            self.supervisor.tell(UnitActorCrashed(self.slot.name, where, text))
        except Exception:  # the supervisor is gone: cinit is going down anyway
            log(f"{self.slot.name}: its actor broke ({where}) and nobody restarts it:\n{text}")
