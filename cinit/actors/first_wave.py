"""The first wave of boot: units that wait for nothing, started before the actor tree exists.

Importing pykka and creating the supervisor and one actor per unit costs PID 1 tens of
milliseconds, and until now no service could start before all of it. The units the
supervisor would release at once (boot units ordered after nothing that is in play) need
none of it to start: `cinit.boot` starts them here, in the main thread, right after
loading the units and preparing their children.

For each such unit this runs the unit's own state machine (`unit_state.step`, the pure
function its actor runs) from the start request to its first spawn, performing only what
starting needs now (the condition check, spawns, log lines). The outputs meant for others
(transitions and reports for the supervisor, timers) are queued in the unit's slot ahead
of whatever is left (a question only the actor may ask, such as a cgroup check); the actor
the supervisor later creates on that slot performs them first, in the order the state
machine emitted them, and carries on. Exits and notifications arriving meanwhile wait in
the slot (`UnitSlot.tell`): the actor sees them after the spawn, as it would have.

Not with socket units loaded: every socket is bound before any service starts, and
binding belongs to the supervisor; such a unit set boots entirely through the actors.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from cinit.actors.unit_io import UnitSpawnError
from cinit.actors.unit_slot import UnitSlot
from cinit.boot_path import TYPE_CHECKING
from cinit.io.log import log
from cinit.machines.ordering import StartBook
from cinit.machines.unit_events import (
    Action,
    CancelTimer,
    CheckConditions,
    DependenciesSettled,
    Event,
    Log,
    Notice,
    ReportSettled,
    ReportStopped,
    RequestContainerExit,
    RequestOnFailure,
    Spawn,
    Spawned,
    SpawnFailed,
    StartRequested,
    StartTimer,
    Transition,
)
from cinit.machines.unit_state import monotonic_usec, step
from cinit.units.loader import UnitSet
from cinit.units.model import Unit, UnitKind

if TYPE_CHECKING:
    from cinit.actors.unit_slot import Launching, Tellable, UnitPort

# Actions with no answer that only others consume: the actor performs them later.
_OUTPUTS = (
    Transition,
    Notice,
    ReportSettled,
    ReportStopped,
    RequestOnFailure,
    RequestContainerExit,
    StartTimer,
    CancelTimer,
)


def first_wave(unit_set: UnitSet) -> list[str]:
    """The services the supervisor releases as soon as boot begins, in start order; none
    when socket units are loaded (see the module docstring)."""
    units = unit_set.units
    if any(unit.kind is UnitKind.SOCKET for unit in units.values()):
        return []
    book = StartBook(unit_set.graph)
    order = book.request(unit_set.graph.boot_units())
    released = {name for name, failed in book.releasable() if not failed}
    return [name for name in order if name in released and units[name].service is not None]


def start_first_wave(
    unit_set: UnitSet,
    io_factory: Callable[[Unit, Tellable], UnitPort],
    clock: Callable[[], int] = monotonic_usec,
    open_gate: Callable[[], None] | None = None,
) -> dict[str, UnitSlot]:
    """Start the first wave; the slot of each unit, for the supervisor to put actors on.

    Every unit's first command is handed to its child before any exec is waited for (see
    `cinit.io.spawn.Launch`), then `open_gate` lets the prepared children exec together
    (`cinit.io.spawn.prepared`): none competes for the CPUs with cinit handing out the rest."""
    wave = [
        _EarlyStart(UnitSlot.for_unit(unit_set.units[name], io_factory), clock)
        for name in first_wave(unit_set)
    ]
    for early in wave:
        early.run(wait_for_exec=False)
    if open_gate is not None:
        open_gate()
    for early in wave:
        early.finish_launch()
        early.run(wait_for_exec=True)
        early.hand_over()
    return {early.slot.name: early.slot for early in wave}


class _EarlyStart:
    """One unit of the first wave: `UnitActor._run` in the calling thread, performing only
    checks, spawns and log lines; it stops at any other question (the actor asks it, in
    order) and holds the outputs back, to put them first in the slot's queue. An action
    that raises is left in `slot.current`, as in a crashed actor: the actor's resume deals
    with it."""

    def __init__(self, slot: UnitSlot, clock: Callable[[], int]) -> None:
        self.slot = slot
        self.clock = clock
        self.outputs: deque[Action] = deque()
        self.launching: tuple[Spawn, Launching] | None = None
        self.broken = False
        slot.events.extend((StartRequested(), DependenciesSettled()))

    def run(self, *, wait_for_exec: bool) -> None:
        """Work the queues off; without `wait_for_exec`, stop at a spawn once it started."""
        slot = self.slot
        try:
            while not self.broken and self.launching is None:
                if slot.actions:
                    action = slot.actions[0]
                    if isinstance(action, _OUTPUTS):
                        self.outputs.append(slot.actions.popleft())
                    elif isinstance(action, Spawn) and not wait_for_exec:
                        slot.current = slot.actions.popleft()
                        self._launch(action)
                    elif isinstance(action, CheckConditions | Spawn | Log):
                        slot.current = slot.actions.popleft()
                        self._answer(slot.start_step(action))
                    else:
                        return  # the actor asks it, in order
                elif slot.events:
                    slot.model, actions = step(slot.model, slot.events.popleft(), self.clock())
                    slot.actions.extend(actions)
                else:
                    return
        except Exception as exc:  # a bug must not stop the boot: the unit's actor takes over
            self._broke(exc)

    def _launch(self, action: Spawn) -> None:
        try:
            io, main_pid = self.slot.io, self.slot.model.main_pid
            launching = io.launch(action.role, action.index, main_pid)
            launching.start()
            self.launching = (action, launching)
        except UnitSpawnError as exc:
            self._answer(SpawnFailed(action.role, action.index, exc.exit_code))

    def finish_launch(self) -> None:
        """Wait for the exec of the command started by `run`; feed the answer."""
        if self.launching is None:
            return
        action, launching = self.launching
        self.launching = None
        try:
            pid = launching.finish()
        except UnitSpawnError as exc:
            self._answer(SpawnFailed(action.role, action.index, exc.exit_code))
        except Exception as exc:
            self._broke(exc)
        else:
            self._answer(Spawned(action.role, action.index, pid))

    def _answer(self, event: Event | None) -> None:
        self.slot.current = None
        if event is not None:
            self.slot.events.append(event)

    def _broke(self, exc: Exception) -> None:
        self.broken = True
        log(f"internal error starting {self.slot.name} early ({exc!r}); its actor takes over")

    def hand_over(self) -> None:
        """The held-back outputs go first in the slot's queue, for its actor."""
        self.slot.actions.extendleft(reversed(self.outputs))
        self.outputs.clear()

