"""The first wave of boot: units that wait for nothing, started before the actor tree exists.

Importing pykka and creating the supervisor and one actor per unit costs PID 1 tens of
milliseconds, and until now no service could start before all of it. The units the
supervisor would release at once (boot units ordered after nothing that is in play) need
none of it to start: `cinit.boot` starts them here, in the main thread, right after
loading the units and preparing their children.

Each such unit gets the runner its actor will use (`cinit.actors.unit_runner`) on its
slot, fed its start request: the runner carries every action out as it comes (spawns,
checks, log lines, timers on the already running scheduler), and tells its transitions
and reports to the supervisor's `Postbox`, where they wait for the supervisor. Exits and
notifications arriving meanwhile wait in the slot: the unit's actor takes them later.

Every socket unit is bound before (`cinit.io.socket_binding`, called by
`cinit.actors.unit_services`); the services a socket triggers, and those that Requires=
or are After= a socket, are left to the supervisor, which knows how the socket fared.
"""

from __future__ import annotations

from cinit.actors.unit_runner import UnitRunner
from cinit.actors.unit_slot import UnitSlot
from cinit.boot_path import TYPE_CHECKING
from cinit.io.log import log
from cinit.machines.ordering import StartBook
from cinit.machines.unit_events import DependenciesSettled, StartRequested
from cinit.machines.unit_state import monotonic_usec
from cinit.units.loader import UnitSet
from cinit.units.model import UnitKind

if TYPE_CHECKING:
    from collections.abc import Callable

    from cinit.actors.unit_ports import Scheduling, Tellable, UnitPort
    from cinit.units.model import Unit


def first_wave(unit_set: UnitSet) -> list[str]:
    """The services the supervisor releases as soon as boot begins, in start order, but
    those tied to a socket (see the module docstring)."""
    units, graph = unit_set.units, unit_set.graph
    sockets = {name for name, unit in units.items() if unit.kind is UnitKind.SOCKET}
    book = StartBook(graph)
    order = book.request(graph.boot_units())
    released = {name for name, failed in book.releasable() if not failed}
    return [
        name
        for name in order
        if name in released
        and units[name].service is not None
        and not (sockets and _tied_to_a_socket(name, unit_set, sockets))
        and not graph.conflicts(name)  # the supervisor decides which of two conflicting runs
    ]


def _tied_to_a_socket(name: str, unit_set: UnitSet, sockets: set[str]) -> bool:
    graph = unit_set.graph
    tied = graph.requires(name) | graph.ordered_after(name)
    return bool(graph.activated_by(name)) or not tied.isdisjoint(sockets)


def start_first_wave(
    unit_set: UnitSet,
    io_factory: Callable[[Unit, Tellable], UnitPort],
    *,
    reports: Tellable,
    timers: Scheduling,
    clock: Callable[[], int] = monotonic_usec,
    open_gate: Callable[[], None] | None = None,
) -> dict[str, UnitSlot]:
    """Start the first wave; the slot of each unit, for the supervisor to put actors on.

    Every unit's first command is handed to its child before any exec is waited for (see
    `cinit.io.spawn.Launch`), then `open_gate` lets the prepared children exec together
    (`cinit.io.spawn.prepared`): none competes for the CPUs with cinit handing out the rest.
    A runner that breaks (a bug) stops there: the unit's actor resumes from its slot."""
    runners = []
    for name in first_wave(unit_set):
        slot = UnitSlot.for_unit(unit_set.units[name], io_factory)
        slot.events.extend((StartRequested(), DependenciesSettled()))
        runners.append(UnitRunner(slot, reports, timers, clock))
    going = [runner for runner in runners if _guarded(runner, lambda r: r.run(launch=True))]
    if open_gate is not None:
        open_gate()
    for runner in going:
        _guarded(runner, _finish)
    return {runner.slot.name: runner.slot for runner in runners}


def _finish(runner: UnitRunner) -> None:
    runner.finish_launch()
    runner.run()


def _guarded(runner: UnitRunner, work: Callable[[UnitRunner], None]) -> bool:
    """Run `work`; False when it broke (logged; the action stays in `slot.current`)."""
    try:
        work(runner)
    except Exception as exc:  # a bug must not stop the boot: the unit's actor takes over
        runner.launching = None
        log(f"internal error starting {runner.slot.name} early ({exc!r}); its actor takes over")
        return False
    return True
