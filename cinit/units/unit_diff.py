"""What a daemon-reload found: the units added, removed and changed between two loads. Pure.

`diff_units(old, new)` compares two unit mappings (`UnitSet.units`) by name; a unit is
changed when a directive's value differs (after drop-ins, specifiers and defaults: what
the supervisor would run), and the diff names those directives as written in unit files
(`Type`, `ExecStart`, `ConditionPathExists` ...). A unit whose file moved or gained an
alias but whose directives are the same is not changed. `UnitSetDiff.lines()` is what
`cinit reload` prints: `+ name`, `- name`, `~ name: Directive, ...`. `unit_summary` is
what the event stream tells of a unit (`loaded`, `unit-added`, `unit-changed`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cinit.units import schema
from cinit.units.frozen import Frozen
from cinit.units.graph import DependencyGraph
from cinit.units.model import ServiceType, Unit

_SHARED_FIELDS = {"conditions": "Condition", "asserts": "Assert"}  # one list, many names


class UnitSetDiff(Frozen):
    """Names added and removed (sorted), and each changed unit with its changed directives."""

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: Mapping[str, tuple[str, ...]] = {}

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed)

    def lines(self) -> list[str]:
        """One line per unit, in name order: `+ a`, `- b`, `~ c: ExecStart, Type`."""
        found = [(name, f"+ {name}") for name in self.added]
        found += [(name, f"- {name}") for name in self.removed]
        found += [
            (name, f"~ {name}: {', '.join(directives)}")
            for name, directives in self.changed.items()
        ]
        return [line for _, line in sorted(found)]


def diff_units(old: Mapping[str, Unit], new: Mapping[str, Unit]) -> UnitSetDiff:
    """The difference from `old` to `new` (both keyed by unit name)."""
    changed = {}
    for name in sorted(set(old) & set(new)):
        if old[name] == new[name]:
            continue
        directives = changed_directives(old[name], new[name])
        if directives:
            changed[name] = directives
    return UnitSetDiff(
        added=tuple(sorted(set(new) - set(old))),
        removed=tuple(sorted(set(old) - set(new))),
        changed=changed,
    )


def changed_directives(old: Unit, new: Unit) -> tuple[str, ...]:
    """The directives whose values differ between two definitions of one unit, sorted."""
    if old.kind is not new.kind:  # cannot happen for one name; say everything changed
        return ("Type",)
    names: set[str] = set()
    for section_name, target in schema.SECTIONS[new.kind].items():
        attribute = "unit" if target == schema.UNIT else target
        before, after = getattr(old, attribute), getattr(new, attribute)
        if before == after:
            continue
        for (section, name), row in schema.DIRECTIVES.items():
            if section != section_name or row.target != target:
                continue
            was, now = getattr(before, row.field), getattr(after, row.field)
            if was == now:
                continue
            prefix = _SHARED_FIELDS.get(row.field)
            if prefix is None:
                names.add(name)
            else:  # which Condition*= (Assert*=) lines differ, by their own names
                lines = {c.describe(prefix) for c in was} ^ {c.describe(prefix) for c in now}
                names.update(line.split("=", 1)[0] for line in lines)
    return tuple(sorted(names))


def unit_summary(unit: Unit, graph: DependencyGraph) -> dict[str, Any]:
    """What the event stream says of a unit when it is loaded (`loaded`) or a daemon-reload
    adds or changes it (`unit-added`, `unit-changed`): JSON-able fields."""
    name = unit.name
    fields: dict[str, Any] = {
        "kind": str(unit.kind),
        "description": unit.unit.description,
        "after": sorted(graph.ordered_after(name)),
        "requires": sorted(graph.requires(name)),
        "wants": sorted(graph.wants(name)),
        "source": str(unit.source),
        "path": unit.path,
    }
    if unit.aliases:  # the other names control commands may use for it
        fields["aliases"] = list(unit.aliases)
    if unit.snippets:
        fields["snippets"] = list(unit.snippets)
    service = unit.service
    if service is not None and (service.exec_reload or service.type is ServiceType.NOTIFY_RELOAD):
        fields["reloadable"] = True  # `cinit reload UNIT` applies
    return fields
