"""Aliases and template instances: which loaded unit a name means.

A unit answers to its own name, to each `Alias=` of its [Install] section (cinit treats
every loaded unit as enabled) and to each alias symlink (`syslog.service ->
rsyslog.service`). An alias of a template is an alias of each of its instances
(`Alias=foo@.service` in `bar@.service`: `foo@a.service` is `bar@a.service`).
Dependencies, a socket's `Service=`, and control commands name a unit by any of them;
the loader rewrites every reference to the unit's own name, so the graph, the
supervisor and the events only ever see that one.

Pure code.
"""

from __future__ import annotations

from collections.abc import Mapping

from cinit.units import unit_names
from cinit.units.diagnostics import Diagnostic, Severity
from cinit.units.model import Unit, UnitKind

# The [Unit] fields that name other units.
REFERENCE_FIELDS = ("after", "before", "requires", "wants", "on_failure")
# Those whose name alone makes systemd load (and so instantiate) a unit: a pure ordering
# (After=, Before=) never does.
PULLING_FIELDS = ("requires", "wants", "on_failure")


def resolve(name: str, aliases: Mapping[str, str]) -> str:
    """The unit's own name for `name` (an alias, an instance of an aliased template, or
    already a unit's own name); `name` itself when nothing maps it."""
    seen: set[str] = set()
    while name not in seen:
        seen.add(name)
        real = aliases.get(name)
        if real is not None:
            name = real
            continue
        template = unit_names.template_of(name)
        real_template = aliases.get(template) if template else None
        if real_template is None:
            return name
        _prefix, instance, _suffix = unit_names.split_name(name)
        prefix, _none, suffix = unit_names.split_name(real_template)
        name = f"{prefix}@{instance}{suffix}"
    return name


def install_aliases(
    units: Mapping[str, Unit], aliases: dict[str, str], found: list[Diagnostic]
) -> None:
    """Add each unit's `Alias=` names to `aliases`; say why one cannot be used."""
    for name in sorted(units):
        unit = units[name]
        for alias in unit.install.alias:
            _add_alias(unit, alias, units, aliases, found)


def _add_alias(
    unit: Unit,
    alias: str,
    units: Mapping[str, Unit],
    aliases: dict[str, str],
    found: list[Diagnostic],
) -> None:
    name = unit.name
    own = name
    if unit.template and unit_names.is_template(alias):
        own = unit.template  # a template's alias: one for every instance
    suffix = name[name.rindex(".") :]
    problem = ""
    if alias in (name, own):
        return
    if not alias.endswith(suffix):
        problem = f"Alias={alias} is not a {suffix} name like the unit's own; ignored"
    elif unit_names.is_template(alias) and not unit.template:
        problem = f"Alias={alias} is a template name, and {name} is not a template; ignored"
    elif alias in units:
        problem = f"Alias={alias}: a unit of that name is loaded ({units[alias].path}); ignored"
    elif aliases.get(alias, own) != own:
        problem = f"Alias={alias} is already an alias of {aliases[alias]}; ignored"
    if problem:
        line = unit.line_of("Alias")
        where = unit.path_of("Alias")
        found.append(Diagnostic(Severity.WARNING, problem, where, line, "Install", "Alias"))
        return
    aliases[alias] = own


def pulled_names(unit: Unit) -> list[str]:
    """The names `unit` makes systemd load: Requires=, Wants=, OnFailure=, a socket's
    Service=, a timer's Unit= (the instances a template must provide)."""
    names: list[str] = []
    for field in PULLING_FIELDS:
        names.extend(getattr(unit.unit, field))
    if unit.kind is UnitKind.SOCKET and unit.socket is not None and unit.socket.service:
        names.append(unit.socket.service)
    if unit.kind is UnitKind.TIMER and unit.timer is not None and unit.timer.unit:
        names.append(unit.timer.unit)
    return names


def with_own_names(unit: Unit, aliases: Mapping[str, str]) -> Unit:
    """`unit` with every reference to another unit by its own name (aliases resolved)."""
    changes: dict[str, tuple[str, ...]] = {}
    for field in REFERENCE_FIELDS:
        named: tuple[str, ...] = getattr(unit.unit, field)
        resolved = tuple(resolve(other, aliases) for other in named)
        if resolved != named:
            changes[field] = resolved
    socket = unit.socket
    if socket is not None and socket.service:
        service = resolve(socket.service, aliases)
        if service != socket.service:
            socket = socket.replace(service=service)
    if not changes and socket is unit.socket:
        return unit
    return unit.replace(unit=unit.unit.replace(**changes), socket=socket)
