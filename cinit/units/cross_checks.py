"""Checks that need every loaded unit at once: references between units, socket
activation, ordering cycles, and (through `address_conflicts`) socket-address collisions.

Pure code: loaded units (and their `DependencyGraph`) in, `Diagnostic`s out.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping

from cinit.units.diagnostics import Diagnostic, Severity
from cinit.units.graph import DependencyGraph, activated_service, build_graph, timer_service
from cinit.units.model import (
    ActivationMode,
    RestartPolicy,
    ServiceSection,
    ServiceType,
    SocketSection,
    Unit,
    UnitKind,
)


def check_units(
    units: Mapping[str, Unit], graph: DependencyGraph | None = None
) -> list[Diagnostic]:
    """Diagnostics that need every loaded unit, sorted by file, then line.

    Errors: ordering cycles (one per group of units caught in cycles, naming a cycle in
    order, "a -> b" meaning a is ordered after b); Requires=/OnFailure= naming a unit
    that is not loaded (Requires= on a .target is met; OnFailure= on one is an error);
    a socket activating (a timer starting) a service that is not loaded; two listeners
    that would bind the same address; a ProxyTarget= that is a listen address; Accept=yes with proxy
    mode; proxy and native sockets activating one service (its contract would be both
    "inherit listeners" and "listen yourself"); Accept=yes and Accept=no sockets
    activating one service. Warnings: Restart= on a oneshot with RemainAfterExit=yes.
    Hints: After=/Before=/Wants= naming a unit that is not loaded (a no-op, as under
    systemd: ssh's After=auditd.service; targets are accepted silently).

    Pass the `graph` already built from the same `units` to avoid building it twice.
    """
    if graph is None:
        graph = build_graph(units)
    found: list[Diagnostic] = []
    sockets: list[tuple[Unit, SocketSection]] = []
    for name in sorted(units):
        unit = units[name]
        _check_references(unit, units, found)
        if unit.service is not None and unit.kind is UnitKind.SERVICE:
            _check_restart(unit, unit.service, found)
        elif unit.socket is not None and unit.kind is UnitKind.SOCKET:
            sockets.append((unit, unit.socket))
        elif unit.kind is UnitKind.TIMER:
            _check_timer_unit(unit, units, found)
    _check_activation(sockets, units, found)
    _check_dbus_daemon(sockets, units, found)
    if sockets:
        from cinit.units.address_conflicts import address_conflicts  # not for sets without sockets

        for unit, directive, message in address_conflicts(sockets):
            found.append(_at(unit, Severity.ERROR, "Socket", directive, message))
    _check_cycles(units, graph, found)
    found.sort(key=lambda d: (d.path, d.line or 0))
    return found


def _at(unit: Unit, severity: Severity, section: str, directive: str, message: str) -> Diagnostic:
    return Diagnostic(
        severity=severity,
        message=f"{unit.name}: {message}",
        path=unit.path_of(directive),
        line=unit.line_of(directive),
        section=section,
        directive=directive,
    )


def _check_references(unit: Unit, units: Mapping[str, Unit], found: list[Diagnostic]) -> None:
    section = unit.unit
    named = section.requires + section.on_failure + section.after + section.before
    named += section.binds_to + section.requisite
    for other in named + section.wants:
        if other not in units:
            break
    else:
        return  # the common case: every name is loaded
    _check_names(unit, "Requires", section.requires, Severity.ERROR, units, found)
    _check_names(unit, "OnFailure", section.on_failure, Severity.ERROR, units, found)
    # Like Requires=: under systemd the start fails when the unit named is not found.
    # Devices, mounts and the other unit types cinit does not load are not checked (a
    # container has none of them to wait for).
    _check_names(unit, "BindsTo", _loadable(section.binds_to), Severity.ERROR, units, found)
    _check_names(unit, "Requisite", _loadable(section.requisite), Severity.ERROR, units, found)
    # systemd ignores these when the unit is not there: a note, never a warning.
    _check_names(unit, "After", section.after, Severity.HINT, units, found)
    _check_names(unit, "Before", section.before, Severity.HINT, units, found)
    _check_names(unit, "Wants", section.wants, Severity.HINT, units, found)


def _loadable(names: tuple[str, ...]) -> tuple[str, ...]:
    """The names of `names` that are of a unit type cinit loads (services, sockets, targets,
    timers)."""
    loaded = (".service", ".socket", ".target", ".timer")
    return tuple(name for name in names if name.endswith(loaded))


def _check_names(
    unit: Unit,
    directive: str,
    references: tuple[str, ...],
    severity: Severity,
    units: Mapping[str, Unit],
    found: list[Diagnostic],
) -> None:
    for other in references:
        if other not in units:
            break
    else:
        return  # the common case: every name is loaded
    for other in dict.fromkeys(references):
        if other in units:
            continue
        if other.endswith(".target"):
            # Targets are always reached, so only OnFailure= (which starts one) is wrong.
            if directive != "OnFailure":
                continue
            message = f"{directive}= names {other}, which is not loaded"
        elif severity is Severity.ERROR:
            message = f"{directive}= names {other}, which is not loaded"
        else:
            message = f"{directive}= names {other}, which is not loaded (a no-op, as in systemd)"
        found.append(_at(unit, severity, "Unit", directive, message))


def _check_restart(unit: Unit, service: ServiceSection, found: list[Diagnostic]) -> None:
    if (
        service.type is ServiceType.ONESHOT
        and service.remain_after_exit
        and service.restart is not RestartPolicy.NO
    ):
        found.append(
            _at(
                unit,
                Severity.WARNING,
                "Service",
                "Restart",
                f"Restart={service.restart.value} on a Type=oneshot service with "
                "RemainAfterExit=yes: a oneshot that stays active after it exits is meant "
                "to run once",
            )
        )


def _check_timer_unit(unit: Unit, units: Mapping[str, Unit], found: list[Diagnostic]) -> None:
    """Unit= (or the timer's own name with .service) must be a loaded service."""
    service = timer_service(unit)
    target = units.get(service)
    if target is None:
        message = f"starts {service}, which is not loaded"
        found.append(_at(unit, Severity.ERROR, "Timer", "Unit", message))
    elif target.kind is not UnitKind.SERVICE:
        message = f"starts {service}, which is not a service"
        found.append(_at(unit, Severity.ERROR, "Timer", "Unit", message))


def _check_activation(
    sockets: list[tuple[Unit, SocketSection]], units: Mapping[str, Unit], found: list[Diagnostic]
) -> None:
    """Service= targets, Accept=yes with proxy, and sockets that disagree about one service."""
    by_service: dict[str, list[tuple[Unit, SocketSection]]] = {}
    for unit, section in sockets:
        service = activated_service(unit)
        target = units.get(service)
        if target is None:
            message = f"activates {service}, which is not loaded"
            found.append(_at(unit, Severity.ERROR, "Socket", "Service", message))
        elif target.kind is not UnitKind.SERVICE:
            message = f"activates {service}, which is not a service"
            found.append(_at(unit, Severity.ERROR, "Socket", "Service", message))
        else:
            by_service.setdefault(service, []).append((unit, section))
        if section.accept and section.listen_datagram:
            message = (
                "Accept=yes needs stream listeners: a ListenDatagram= socket has no "
                "connections to accept"
            )
            found.append(_at(unit, Severity.ERROR, "Socket", "Accept", message))
        if section.accept and section.activation_mode is ActivationMode.PROXY:
            message = (
                "Accept=yes cannot be combined with ActivationMode=proxy: the proxy accepts "
                "connections itself"
            )
            found.append(_at(unit, Severity.ERROR, "Socket", "Accept", message))
    for service, group in by_service.items():
        if len(group) == 1:
            continue
        natives = [u.name for u, s in group if s.activation_mode is ActivationMode.NATIVE]
        if natives and len(natives) < len(group):
            message = (
                f"ActivationMode=proxy, but {service} is also activated natively by "
                f"{', '.join(natives)}: a service is activated either natively or through "
                "proxies, not both"
            )
            proxies = [u for u, s in group if s.activation_mode is ActivationMode.PROXY]
            found += [_at(u, Severity.ERROR, "Socket", "ActivationMode", message) for u in proxies]
        shared = [u.name for u, s in group if not s.accept]
        if shared and len(shared) < len(group):
            message = (
                f"Accept=yes, but {service} is also activated with Accept=no by "
                f"{', '.join(shared)}: a service runs either once per connection or once "
                "for all its sockets"
            )
            accepting = [u for u, s in group if s.accept]
            found += [_at(u, Severity.ERROR, "Socket", "Accept", message) for u in accepting]


def _check_dbus_daemon(
    sockets: list[tuple[Unit, SocketSection]], units: Mapping[str, Unit], found: list[Diagnostic]
) -> None:
    """Hint: dbus-daemon ignores the inherited listener unless told `--address=systemd:`."""
    hinted: set[str] = set()
    for unit, section in sockets:
        service = units.get(activated_service(unit))
        if (
            section.activation_mode is not ActivationMode.NATIVE
            or service is None
            or service.service is None
            or service.name in hinted
        ):
            continue
        for command in service.service.exec_start:
            # endswith first: a cheap test that rules out almost every command.
            if not command.path.endswith("dbus-daemon"):
                continue
            if posixpath.basename(command.path) != "dbus-daemon":
                continue
            words = command.words[1:] if command.argv0_separate else command.words
            if any(word.startswith("--address=systemd:") for word in words[1:]):
                continue
            hinted.add(service.name)
            suggested = " ".join([command.path, *words[1:2], "--address=systemd:", *words[2:]])
            message = (
                f"dbus-daemon is socket-activated by {unit.name} but has no "
                "--address=systemd: argument: without it, it ignores the listener cinit "
                f"passes, unlinks the socket and binds its own; write ExecStart={suggested}"
            )
            found.append(_at(service, Severity.HINT, "Service", "ExecStart", message))


def _check_cycles(
    units: Mapping[str, Unit], graph: DependencyGraph, found: list[Diagnostic]
) -> None:
    """One error per group of units caught in ordering cycles, naming a cycle in order."""
    for group in graph.cycle_groups:
        path = _shortest_cycle(group[0], set(group), graph)
        message = "ordering cycle: " + " -> ".join(path)
        on_path = set(path)
        rest = [name for name in group if name not in on_path]
        if rest:
            message += f" (units also caught in this cycle: {', '.join(rest)})"
        unit, section, directive = _edge_origin(path[0], path[1], units)
        found.append(_at(unit, Severity.ERROR, section, directive, message))


def _shortest_cycle(start: str, members: set[str], graph: DependencyGraph) -> list[str]:
    """start -> ... -> start along "ordered after" edges, shortest first, ties by name.

    A self-loop is only taken when the group has no other member.
    """
    parent: dict[str, str] = {}
    queue = [start]
    seen = {start}
    for node in queue:
        for successor in sorted(graph.ordered_after(node) & members):
            if successor == start:
                if node == start and len(members) > 1:
                    continue
                path = [node]
                while path[-1] != start:
                    path.append(parent[path[-1]])
                path.reverse()
                path.append(start)
                return path
            if successor not in seen:
                seen.add(successor)
                parent[successor] = node
                queue.append(successor)
    return [start, start]  # unreachable for a real cycle group


def _edge_origin(later: str, earlier: str, units: Mapping[str, Unit]) -> tuple[Unit, str, str]:
    """The unit, section and directive that ordered `later` after `earlier`."""
    if earlier in units[later].unit.after:
        return units[later], "Unit", "After"
    if later in units[earlier].unit.before:
        return units[earlier], "Unit", "Before"
    return units[earlier], "Socket", "Service"  # the implicit socket-before-service edge
