"""Addresses that outlive actors: a unit's `UnitSlot`, and the supervisor's `Postbox`.

The reaper, the notify hub, the scheduler and the supervisor all address a unit through
its slot. `tell` puts the message in the slot's own inbox and wakes the attached actor,
if any; messages wait there while no actor is attached: before the unit's first actor
exists (the first wave of boot, `cinit.actors.first_wave`, starts units before pykka is
even imported) and while a crashed actor is replaced (see `cinit.actors.unit`). The
slot's inbox, not pykka's, holds the messages: an actor that breaks leaves them in place
for the next one. Nothing here imports pykka: the boot path reaches the first service's
exec without it.
"""

from __future__ import annotations

import collections
import threading

from cinit.boot_path import TYPE_CHECKING
from cinit.machines.unit_events import Action, Event
from cinit.machines.unit_model import TimerKind, UnitModel, initial_model

if TYPE_CHECKING:
    from collections.abc import Callable

    from cinit.actors.scheduler import Timer
    from cinit.actors.unit_ports import Tellable as Tellable
    from cinit.actors.unit_ports import UnitPort
    from cinit.units.model import Unit


class Wake:
    """To a unit's actor: its slot's inbox has messages."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "Wake()"


WAKE = Wake()


class UnitSlot:
    """The unit's stable address and memory: survives restarts of its actor.

    `tell` queues in the slot's inbox and wakes the attached actor once (until it takes
    the inbox empty). `events` and `actions` are the state machine's queues: the unit's
    runner works them off (`cinit.actors.unit_runner`).
    """

    io: UnitPort  # set right after creation (the io needs the slot as its owner)

    def __init__(self, name: str, model: UnitModel) -> None:
        self.name = name
        self.model = model
        self.events: collections.deque[Event] = collections.deque()
        self.actions: collections.deque[Action] = collections.deque()
        self.current: Action | None = None  # being performed (the culprit if it crashes)
        self.retried = False  # `current` is a culprit being tried a second time
        self.timers: dict[tuple[TimerKind, int], Timer] = {}
        self.abandoned = False  # the supervisor gave up on this unit's actor
        self.has_actor = False  # the supervisor's record: an actor runs on this slot
        # daemon-reload: the unit's new definition, taken on once nothing of it runs
        self.next_unit: Unit | None = None
        self._lock = threading.Lock()
        self._inbox: collections.deque[object] = collections.deque()
        self._actor: Tellable | None = None
        self._woken = False  # a Wake is on its way to the actor

    @classmethod
    def for_unit(cls, unit: Unit, io_factory: Callable[[Unit, Tellable], UnitPort]) -> UnitSlot:
        """A fresh slot for `unit`, its io owned by the slot."""
        slot = cls(unit.name, initial_model(unit))
        slot.io = io_factory(unit, slot)  # the slot is the owner of the unit's processes
        return slot

    def tell(self, message: object) -> None:
        """Queue `message` for the unit; wake its actor."""
        with self._lock:
            if self.abandoned:
                return
            self._inbox.append(message)
            self._wake()

    def take(self) -> object | None:
        """The oldest waiting message, or None (and the next `tell` wakes the actor again)."""
        with self._lock:
            if self._inbox:
                return self._inbox.popleft()
            self._woken = False
            return None

    def attach(self, actor: Tellable) -> None:
        """Wake `actor` for the unit's messages from now on (at once if some wait)."""
        with self._lock:
            self._actor = actor
            self._woken = False
            if self._inbox:
                self._wake()

    def detach(self) -> None:
        """No actor from now on: messages wait in the slot."""
        with self._lock:
            self._actor = None
            self._woken = False

    def _wake(self) -> None:
        if self._actor is None or self._woken:
            return
        try:
            self._actor.tell(WAKE)
            self._woken = True
        except Exception:  # its actor is dead (pykka.ActorDeadError): wait for the next
            self._actor = None


class Postbox:
    """An address whose actor comes later: messages wait, in order, until `attach`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: list[object] = []
        self._actor: Tellable | None = None

    def tell(self, message: object) -> None:
        with self._lock:
            if self._actor is None:
                self._waiting.append(message)
                return
            actor = self._actor
        actor.tell(message)

    def attach(self, actor: Tellable) -> None:
        """Deliver what waited, then route every message to `actor` directly."""
        with self._lock:
            for message in self._waiting:
                actor.tell(message)
            self._waiting.clear()
            self._actor = actor
