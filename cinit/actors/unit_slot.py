"""`UnitSlot`: a unit's stable address and memory, which outlive any actor of the unit.

The reaper, the notify hub, the scheduler and the supervisor all address a unit through
its slot. `tell` reaches the attached actor, or waits in the slot while none is attached:
before the unit's first actor exists (the first wave of boot, `cinit.actors.first_wave`,
starts units before pykka is even imported) and while a crashed actor is replaced (see
`cinit.actors.unit`). Nothing here imports pykka: the boot path reaches the first
service's exec without it.
"""

from __future__ import annotations

import collections
import threading

from cinit.actors.unit_io import UnitSpawnError
from cinit.boot_path import TYPE_CHECKING
from cinit.machines.unit_events import (
    Action,
    CheckConditions,
    ConditionChecked,
    Event,
    Log,
    Spawn,
    Spawned,
    SpawnFailed,
)
from cinit.machines.unit_model import TimerKind, UnitModel, initial_model

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, Protocol

    import pykka

    from cinit.io.reaper import ProcessExit
    from cinit.units.model import Unit

    class Tellable(Protocol):
        def tell(self, message: Any) -> None: ...

    class Launching(Protocol):
        """A command on its way: `start`, then `finish` for its pid (`UnitLaunch`)."""

        def start(self) -> None: ...

        def finish(self) -> int: ...

    class UnitPort(Protocol):
        """What the actor needs from the OS side of its unit (`cinit.actors.unit_io.UnitIO`)."""

        def say(self, text: str) -> None: ...

        def unmet_condition(self) -> str | None: ...

        def spawn(self, role: Any, index: int, main_pid: int | None) -> int: ...

        def launch(self, role: Any, index: int, main_pid: int | None) -> Launching: ...

        def take_exit(self, message: ProcessExit) -> bool: ...

        def pending_exits(self) -> list[ProcessExit]: ...

        def signal_main(self, pid: int, signo: int) -> None: ...

        def signal_unit(self, signo: int) -> None: ...

        def kill_unit(self) -> None: ...

        def discard_prepared(self) -> None: ...

        def unit_empty(self) -> bool: ...

        def find_main_pid(self, hint: int | None, pid_file: str) -> int | str: ...

        def accepts_notification(self, sender: int | None) -> bool: ...


class UnitSlot:
    """The unit's stable address and memory: survives restarts of its actor.

    `tell` reaches the attached actor, or waits in the slot while none is attached. The
    lock is held around each tell so that a crashing actor can take its inbox back
    without a message slipping past (see `detach`). `events` and `actions` are the
    state machine's queues: an actor that attaches works them off first.
    """

    io: UnitPort  # set right after creation (the io needs the slot as its owner)

    def __init__(self, name: str, model: UnitModel) -> None:
        self.name = name
        self.model = model
        self.events: collections.deque[Event] = collections.deque()
        self.actions: collections.deque[Action] = collections.deque()
        self.current: Action | None = None  # being performed (the culprit if it crashes)
        self.retried = False  # `current` is a culprit being tried a second time
        self.timers: dict[tuple[TimerKind, int], Any] = {}
        self.abandoned = False  # the supervisor gave up on this unit's actor
        self.has_actor = False  # the supervisor's record: an actor runs on this slot
        self._lock = threading.Lock()
        self._ref: pykka.ActorRef[Any] | None = None
        self._waiting: list[Any] = []

    @classmethod
    def for_unit(cls, unit: Unit, io_factory: Callable[[Unit, Tellable], UnitPort]) -> UnitSlot:
        """A fresh slot for `unit`, its io owned by the slot."""
        slot = cls(unit.name, initial_model(unit))
        slot.io = io_factory(unit, slot)  # the slot is the owner of the unit's processes
        return slot

    def tell(self, message: Any) -> None:
        with self._lock:
            if self.abandoned:
                return
            if self._ref is not None:
                import pykka  # loaded by now: a ref is attached (a dict lookup, not an import)

                try:
                    self._ref.tell(message)
                    return
                except pykka.ActorDeadError:
                    self._ref = None
            self._waiting.append(message)

    def attach(self, ref: pykka.ActorRef[Any]) -> None:
        """Route messages to `ref` from now on, the ones that waited first."""
        with self._lock:
            for message in self._waiting:
                ref.tell(message)
            self._waiting.clear()
            self._ref = ref

    def start_step(self, action: Log | Spawn | CheckConditions) -> Event | None:
        """Carry out one of the actions starting a unit needs, through the slot's io; the
        answer event (none for a log line). The unit's actor and the first wave of boot
        (`cinit.actors.first_wave`) both start units through here."""
        if isinstance(action, Log):
            self.io.say(action.text)
            return None
        if isinstance(action, CheckConditions):
            return ConditionChecked(self.io.unmet_condition())
        try:
            pid = self.io.spawn(action.role, action.index, self.model.main_pid)
        except UnitSpawnError as exc:
            return SpawnFailed(action.role, action.index, exc.exit_code)
        return Spawned(action.role, action.index, pid)

    def detach(self, inbox: Any) -> None:
        """Stop routing to the current actor and take back what its inbox still holds."""
        with self._lock:
            self._ref = None
            taken = []
            while not inbox.empty():
                message = inbox.get_nowait().message
                # pykka's own messages (stop, proxy calls) belong to the old actor only.
                if not type(message).__module__.startswith("pykka"):
                    taken.append(message)
            self._waiting[:0] = taken
