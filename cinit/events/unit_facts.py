"""What a unit's definition says, for systemctl's status, show and list verbs.

The status book knows what events told (state, pids, exits); the rest of what systemctl
shows comes from the loaded unit set: the unit's type and Restart=, its files (systemd's
FragmentPath and DropInPaths), the names it answers to, its dependencies both ways, and a
socket's listen addresses. `describe` gives them as one JSON-able dict whose keys the
control reply adds to the unit's status (`cinit.events.control_desk`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cinit.units.graph import DependencyGraph
    from cinit.units.loader import UnitSet


def _names(found: frozenset[str] | tuple[str, ...]) -> list[str]:
    return sorted(found)


_REVERSE: list[tuple[UnitSet, dict[str, dict[str, list[str]]]]] = []  # the last set's


def _reverse(unit_set: UnitSet, name: str, relation: str) -> list[str]:
    """The units whose `relation` (a DependencyGraph method: requires, wants) names `name`;
    the index is built once per unit set (a status of every unit asks for each)."""
    if not _REVERSE or _REVERSE[0][0] is not unit_set:
        graph: DependencyGraph = unit_set.graph
        index: dict[str, dict[str, list[str]]] = {"requires": {}, "wants": {}}
        for kind, found in index.items():
            for other in sorted(unit_set.units):
                for target in getattr(graph, kind)(other):
                    if target != other:
                        found.setdefault(target, []).append(other)
        _REVERSE[:] = [(unit_set, index)]
    return list(_REVERSE[0][1][relation].get(name, ()))


def unit_file_state(unit_set: UnitSet, name: str) -> str:
    """systemd's UnitFileState, as cinit reads the files: a unit with [Install] links that
    cinit starts at boot is "enabled", one without [Install] "static", else "disabled"."""
    unit = unit_set.units[name]
    install = unit.install
    if not (install.wanted_by or install.required_by or install.alias or install.also):
        return "static"
    return "enabled" if name in _boot_units(unit_set) else "disabled"


_BOOT_UNITS: list[tuple[UnitSet, frozenset[str]]] = []  # the last unit set's boot units


def _boot_units(unit_set: UnitSet) -> frozenset[str]:
    """The boot set of `unit_set`, computed once per unit set (a status of every unit asks
    for each of them; a daemon-reload brings a new set)."""
    if not _BOOT_UNITS or _BOOT_UNITS[0][0] is not unit_set:
        _BOOT_UNITS[:] = [(unit_set, frozenset(unit_set.graph.boot_units()))]
    return _BOOT_UNITS[0][1]


def describe(unit_set: UnitSet, name: str) -> dict[str, Any]:
    """The definition of the loaded unit `name` (see the module doc)."""
    unit = unit_set.units[name]
    graph = unit_set.graph
    facts: dict[str, Any] = {
        "load_state": "loaded",
        "fragment_path": unit.path,
        "dropins": list(unit.snippets),
        "names": [name, *sorted(unit.aliases)],
        "unit_file_state": unit_file_state(unit_set, name),
        "requires": _names(graph.requires(name)),
        "wants": _names(graph.wants(name)),
        "binds_to": _names(graph.binds_to(name)),
        "part_of": _names(unit.unit.part_of),
        "conflicts": _names(graph.conflicts(name)),
        "after": _names(graph.ordered_after(name)),
        "before": _names(graph.ordered_before(name)),
        "required_by": _reverse(unit_set, name, "requires"),
        "wanted_by": _reverse(unit_set, name, "wants"),
        "bound_by": _names(graph.bound_by(name)),
        "on_failure": list(graph.on_failure(name)),
        "triggered_by": list(graph.activated_by(name)),
    }
    service = unit.service
    if service is not None:
        facts["type"] = str(service.type)
        facts["restart"] = str(service.restart)
    socket = unit.socket
    if socket is not None:
        listens = [("Stream", address) for address in socket.listen_stream]
        listens += [("Datagram", address) for address in socket.listen_datagram]
        facts["listen"] = [[kind, address.render()] for kind, address in listens]
        facts["triggers"] = [found] if (found := graph.activates(name)) else []
    return facts
