"""`.target` units: grouping and synchronisation points with no process of their own.

A target runs through the same unit machine as a service: it is a oneshot with no command
and RemainAfterExit=yes (`TARGET_SERVICE`), so it becomes active once the units it is
ordered after were dealt with (`graph.build_graph` orders a target after what it wants
and requires), shows in status and events like any unit, and stops in reverse order.

A target that no file defines but that a unit names (network.target, sockets.target,
default.target, ...) is, as under systemd in a container where nothing else provides
it, an empty target that is always reached: `implicit_targets` makes one per name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from cinit.units.model import (
    INFINITY,
    ServiceSection,
    ServiceType,
    Unit,
    UnitKind,
    UnitSection,
    UnitSource,
)

# What the unit machine runs for a target: nothing, and active until stopped.
TARGET_SERVICE = ServiceSection(
    type=ServiceType.ONESHOT, remain_after_exit=True, timeout_start_sec=INFINITY
)
SUFFIX = ".target"


def target_unit(
    name: str,
    path: str = "",
    section: UnitSection | None = None,
    source: UnitSource = UnitSource.IMPLICIT,
) -> Unit:
    """A target unit named `name` (an implicit, empty one by default)."""
    return Unit(
        name=name,
        path=path,
        kind=UnitKind.TARGET,
        unit=section if section is not None else UnitSection(),
        service=TARGET_SERVICE,
        source=source,
    )


def named_targets(unit: Unit) -> Iterable[str]:
    """The `.target` names `unit`'s [Unit] section relates to."""
    section = unit.unit
    for name in section.after + section.before + section.requires + section.wants:
        if name.endswith(SUFFIX):
            yield name


def implicit_targets(units: Mapping[str, Unit], extra: Iterable[str] = ()) -> dict[str, Unit]:
    """An empty target for every `.target` named by `units` (or in `extra`) that none of
    them is, by name, in name order."""
    wanted: set[str] = {name for name in extra if name not in units}
    for unit in units.values():
        for name in named_targets(unit):
            if name not in units:
                wanted.add(name)
    return {name: target_unit(name) for name in sorted(wanted)}
