"""The unit dependency graph, and the checks that need every loaded unit at once.

Pure code: loaded units in, a `DependencyGraph` and cross-unit `Diagnostic`s out.

Vocabulary: "X is ordered after Y" (X has After=Y, or Y has Before=X, or Y is the
socket that activates service X) means Y must be ready, failed or skipped before X
starts, and X must have stopped before Y stops. Requires= and Wants= never imply
ordering (systemd semantics). References to units that are not loaded, and to
`.target` units (cinit has none and treats them as always reached), add no edge.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping

from cinit.units.diagnostics import Diagnostic, Severity
from cinit.units.frozen import Frozen
from cinit.units.model import (
    ActivationMode,
    ListenAddress,
    ListenKind,
    RestartPolicy,
    ServiceSection,
    ServiceType,
    SocketSection,
    Unit,
    UnitKind,
)

_EMPTY: frozenset[str] = frozenset()


class DependencyGraph(Frozen, eq=False):
    """Relations between loaded units and the orders the supervisor boots and stops them in.

    Queries about a name that is not loaded answer empty. Every list and tuple is
    deterministic: ties are broken by unit name. The start order is the start levels
    one after the other (each level in name order), so both always agree.

    Ordering cycles (which `check_units` reports as errors) do not break the orders:
    the units of one cycle are kept together, in name order, at the place their group
    takes in the order; every ordering edge outside a cycle is still respected.
    """

    names: tuple[str, ...]
    cycle_groups: tuple[tuple[str, ...], ...]  # each group of units caught in a cycle, sorted
    _after: Mapping[str, frozenset[str]]
    _before: Mapping[str, frozenset[str]]
    _requires: Mapping[str, frozenset[str]]
    _required_by: Mapping[str, frozenset[str]]
    _wants: Mapping[str, frozenset[str]]
    _on_failure: Mapping[str, tuple[str, ...]]
    _activates: Mapping[str, str]
    _activated_by: Mapping[str, tuple[str, ...]]
    _start_order: tuple[str, ...]
    _start_levels: tuple[tuple[str, ...], ...]
    _trigger_only: frozenset[str]

    def ordered_after(self, name: str) -> frozenset[str]:
        """Units that must be ready (or failed, or skipped) before `name` starts."""
        return self._after.get(name, _EMPTY)

    def ordered_before(self, name: str) -> frozenset[str]:
        """Units that wait for `name` to start, and must stop before it stops."""
        return self._before.get(name, _EMPTY)

    def requires(self, name: str) -> frozenset[str]:
        """Loaded units `name` has Requires= on."""
        return self._requires.get(name, _EMPTY)

    def required_by(self, name: str) -> frozenset[str]:
        """Loaded units that have Requires= on `name` (they fail or stop with it)."""
        return self._required_by.get(name, _EMPTY)

    def wants(self, name: str) -> frozenset[str]:
        """Loaded units `name` has Wants= on."""
        return self._wants.get(name, _EMPTY)

    def on_failure(self, name: str) -> tuple[str, ...]:
        """Loaded units to start when `name` enters failed, in the order written."""
        return self._on_failure.get(name, ())

    def activates(self, socket: str) -> str | None:
        """The loaded service a socket activates, if any."""
        return self._activates.get(socket)

    def activated_by(self, service: str) -> tuple[str, ...]:
        """Sockets that activate `service`, in name order."""
        return self._activated_by.get(service, ())

    def start_order(self) -> list[str]:
        """Every unit, each after all units it is ordered after: `start_levels`, flattened."""
        return list(self._start_order)

    def start_levels(self) -> list[list[str]]:
        """Layers of units that may start concurrently; a unit's layer follows all it waits for."""
        return [list(level) for level in self._start_levels]

    def stop_order(self) -> list[str]:
        """The exact reverse of `start_order`: a unit stops after every unit ordered after it."""
        return list(reversed(self._start_order))

    def stop_levels(self) -> list[list[str]]:
        """The reverse of `start_levels`: layers that may stop concurrently."""
        return [list(level) for level in reversed(self._start_levels)]

    def trigger_only(self) -> frozenset[str]:
        """Units not started at boot: socket-activated services and every unit in an OnFailure=."""
        return self._trigger_only

    def boot_units(self) -> list[str]:
        """`start_order` without the trigger-only units."""
        return [name for name in self._start_order if name not in self._trigger_only]


def activated_service(unit: Unit) -> str:
    """The service a socket unit activates: Service=, or the socket's own name with .service."""
    if unit.socket is not None and unit.socket.service:
        return unit.socket.service
    return unit.stem + ".service"


def _is_target(name: str) -> bool:
    return name.endswith(".target")


def _freeze(relation: dict[str, set[str]]) -> dict[str, frozenset[str]]:
    return {name: frozenset(members) for name, members in relation.items()}


def build_graph(units: Mapping[str, Unit]) -> DependencyGraph:
    """The dependency graph of `units` (keyed by unit name).

    References to units that are not loaded are ignored; cycles are tolerated (see
    `DependencyGraph`).
    """
    names = sorted(units)
    after: dict[str, set[str]] = {}
    before: dict[str, set[str]] = {}
    requires: dict[str, set[str]] = {}
    required_by: dict[str, set[str]] = {}
    wants: dict[str, set[str]] = {}
    on_failure: dict[str, tuple[str, ...]] = {}
    activates: dict[str, str] = {}
    activated_by: dict[str, list[str]] = {}
    for name in names:
        unit = units[name]
        section = unit.unit
        for other in section.after:
            if other in units:
                after.setdefault(name, set()).add(other)
                before.setdefault(other, set()).add(name)
        for other in section.before:
            if other in units:
                after.setdefault(other, set()).add(name)
                before.setdefault(name, set()).add(other)
        for other in section.requires:
            if other in units:
                requires.setdefault(name, set()).add(other)
                required_by.setdefault(other, set()).add(name)
        for other in section.wants:
            if other in units:
                wants.setdefault(name, set()).add(other)
        if section.on_failure:
            handlers = tuple(dict.fromkeys(o for o in section.on_failure if o in units))
            if handlers:
                on_failure[name] = handlers
        if unit.kind is UnitKind.SOCKET:
            service = activated_service(unit)
            target = units.get(service)
            if target is not None and target.kind is UnitKind.SERVICE:
                activates[name] = service
                activated_by.setdefault(service, []).append(name)  # names are sorted
                # The socket binds before the service it activates runs.
                after.setdefault(service, set()).add(name)
                before.setdefault(name, set()).add(service)

    frozen_after = _freeze(after)
    frozen_before = _freeze(before)
    levels = _start_levels(names, frozen_after, frozen_before, ())
    cycle_groups: tuple[tuple[str, ...], ...] = ()
    if sum(map(len, levels)) < len(names):
        # Some units never became ready: they sit on a cycle or wait for one.
        placed = {name for level in levels for name in level}
        stuck = [name for name in names if name not in placed]
        cycle_groups = tuple(
            sorted(
                tuple(sorted(group))
                for group in _strongly_connected(stuck, frozen_after)
                if len(group) > 1 or group[0] in frozen_after.get(group[0], _EMPTY)
            )
        )
        levels = _start_levels(names, frozen_after, frozen_before, cycle_groups)
    trigger_only = set(activated_by)
    for handlers in on_failure.values():
        trigger_only.update(handlers)
    return DependencyGraph(
        names=tuple(names),
        cycle_groups=cycle_groups,
        _after=frozen_after,
        _before=frozen_before,
        _requires=_freeze(requires),
        _required_by=_freeze(required_by),
        _wants=_freeze(wants),
        _on_failure=on_failure,
        _activates=activates,
        _activated_by={service: tuple(sockets) for service, sockets in activated_by.items()},
        _start_order=tuple(name for level in levels for name in level),
        _start_levels=tuple(tuple(level) for level in levels),
        _trigger_only=frozenset(trigger_only),
    )


def _strongly_connected(roots: list[str], edges: Mapping[str, frozenset[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components reachable from `roots`.

    Iterative, so a 10,000-unit chain does not hit the recursion limit.
    """
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    groups: list[list[str]] = []
    for root in roots:
        if root in index:
            continue
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        work = [(root, iter(edges.get(root, _EMPTY)))]
        while work:
            node, successors = work[-1]
            descended = False
            for successor in successors:
                if successor not in index:
                    index[successor] = low[successor] = len(index)
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(edges.get(successor, _EMPTY))))
                    descended = True
                    break
                if successor in on_stack and index[successor] < low[node]:
                    low[node] = index[successor]
            if descended:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                group: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                groups.append(group)
    return groups


def _start_levels(
    names: list[str],
    after: Mapping[str, frozenset[str]],
    before: Mapping[str, frozenset[str]],
    cycle_groups: tuple[tuple[str, ...], ...],
) -> list[list[str]]:
    """Kahn's layers, each sorted by name; a unit's layer comes after all it is ordered after.

    Each cycle group acts as one node (led by its smallest name) placed whole; without
    `cycle_groups`, units on or behind a cycle are simply left out.
    """
    leader = {member: group[0] for group in cycle_groups for member in group}
    members = {group[0]: group for group in cycle_groups}
    waiting: dict[str, int] = {}  # leader -> ordering edges from outside its group still unmet
    for name, earlier in after.items():
        lead = leader.get(name, name)
        count = 0
        for other in earlier:
            # A self-loop outside a known group never clears: it holds the unit back.
            if leader.get(other, other) != lead or (other == name and name not in leader):
                count += 1
        if count:
            waiting[lead] = waiting.get(lead, 0) + count
    ready = [name for name in names if name not in waiting and leader.get(name, name) == name]
    levels: list[list[str]] = []
    while ready:
        level = [member for lead in ready for member in members.get(lead, (lead,))]
        level.sort()
        levels.append(level)
        ready = []
        for name in level:
            lead = leader.get(name, name)
            for later in before.get(name, _EMPTY):
                other = leader.get(later, later)
                if other != lead:
                    left = waiting[other] - 1
                    waiting[other] = left
                    if left == 0:
                        ready.append(other)
    return levels


# --- cross-unit checks ---


def check_units(
    units: Mapping[str, Unit], graph: DependencyGraph | None = None
) -> list[Diagnostic]:
    """Diagnostics that need every loaded unit, sorted by file, then line.

    Errors: ordering cycles (one per group of units caught in cycles, naming a cycle in
    order, "a -> b" meaning a is ordered after b); Requires=/OnFailure= naming a unit
    that is not loaded (Requires= on a .target is met; OnFailure= on one is an error);
    a socket activating a service that is not loaded; two listeners that would bind
    the same address; a ProxyTarget= that is a listen address; Accept=yes with proxy
    mode; proxy and native sockets activating one service (its contract would be both
    "inherit listeners" and "listen yourself"); Accept=yes and Accept=no sockets
    activating one service. Warnings: After=/Before=/Wants= naming a unit that is not
    loaded (targets are accepted silently); Restart= on a oneshot with RemainAfterExit=yes.

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
    _check_activation(sockets, units, found)
    _check_dbus_daemon(sockets, units, found)
    _check_addresses(sockets, found)
    _check_cycles(units, graph, found)
    found.sort(key=lambda d: (d.path, d.line or 0))
    return found


def _at(unit: Unit, severity: Severity, section: str, directive: str, message: str) -> Diagnostic:
    return Diagnostic(
        severity=severity,
        message=f"{unit.name}: {message}",
        path=unit.path,
        line=unit.line_of(directive),
        section=section,
        directive=directive,
    )


def _check_references(unit: Unit, units: Mapping[str, Unit], found: list[Diagnostic]) -> None:
    section = unit.unit
    named = section.requires + section.on_failure + section.after + section.before
    for other in named + section.wants:
        if other not in units:
            break
    else:
        return  # the common case: every name is loaded
    _check_names(unit, "Requires", section.requires, Severity.ERROR, units, found)
    _check_names(unit, "OnFailure", section.on_failure, Severity.ERROR, units, found)
    _check_names(unit, "After", section.after, Severity.WARNING, units, found)
    _check_names(unit, "Before", section.before, Severity.WARNING, units, found)
    _check_names(unit, "Wants", section.wants, Severity.WARNING, units, found)


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
        if _is_target(other):
            # Targets are always reached, so only OnFailure= (which starts one) is wrong.
            if directive != "OnFailure":
                continue
            message = f"{directive}= names {other}: cinit has no targets, nothing would start"
        elif severity is Severity.ERROR:
            message = f"{directive}= names {other}, which is not loaded"
        else:
            message = f"{directive}= names {other}, which is not loaded (ignored)"
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
            for unit, section in group:
                if section.activation_mode is ActivationMode.PROXY:
                    found.append(_at(unit, Severity.ERROR, "Socket", "ActivationMode", message))
        shared = [u.name for u, s in group if not s.accept]
        if shared and len(shared) < len(group):
            message = (
                f"Accept=yes, but {service} is also activated with Accept=no by "
                f"{', '.join(shared)}: a service runs either once per connection or once "
                "for all its sockets"
            )
            for unit, section in group:
                if section.accept:
                    found.append(_at(unit, Severity.ERROR, "Socket", "Accept", message))


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


# Where a listener binds: a bucket (protocol and port, one unix path, or one abstract
# name) and a scope in it: "*" (every address of the family) or one normalized address.
# Two binds in one bucket collide when their scopes are equal or either one is "*".
# Keys are plain strings, joined with NUL (which no path or address contains), so that
# indexing thousands of listeners creates no objects the garbage collector must track.
_ANY = "*"
_SEP = "\0"


def _inet_scopes(host: str, ipv6_only: bool) -> list[tuple[str, str]]:
    """(family, scope) pairs a bind to `host` occupies, as the kernel sees it.

    A bare port and [::] bind dual-stack (unless BindIPv6Only=ipv6-only), so they also
    take every IPv4 address; [::ffff:a.b.c.d] is the IPv4 address a.b.c.d.
    """
    if not host:
        return [("6", _ANY)] if ipv6_only else [("4", _ANY), ("6", _ANY)]
    import ipaddress  # only socket units with a host need it: off the boot path

    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return [("name", host.lower())]  # not an address: compare as written
    if isinstance(ip, ipaddress.IPv6Address):
        mapped = ip.ipv4_mapped
        if mapped is not None:
            return [("4", _ANY if mapped.is_unspecified else str(mapped))]
        if ip.is_unspecified:
            return [("6", _ANY)] if ipv6_only else [("4", _ANY), ("6", _ANY)]
        return [("6", str(ip))]
    return [("4", _ANY if ip.is_unspecified else str(ip))]


def _inet_bucket(directive: str, port: int, family: str) -> str:
    return f"{directive}{_SEP}{port}{_SEP}{family}"


def _bind_keys(
    directive: str,
    address: ListenAddress,
    ipv6_only: bool,
    memo: dict[tuple[str, bool], list[tuple[str, str]]],
) -> list[tuple[str, str]]:
    """(bucket, scope) pairs of one listener.

    Unix paths are files, so stream and datagram share them; ports and abstract names
    are per protocol. Port 0 (the kernel picks a free one) never collides.
    """
    if address.kind is ListenKind.INET:
        if address.port == 0:
            return []
        scopes = memo.get((address.host, ipv6_only))
        if scopes is None:
            scopes = memo[address.host, ipv6_only] = _inet_scopes(address.host, ipv6_only)
        return [(_inet_bucket(directive, address.port, fam), scope) for fam, scope in scopes]
    if address.kind is ListenKind.UNIX:
        return [(_unix_bucket(address.path), _ANY)]
    return [(_abstract_bucket(directive, address.path), _ANY)]


def _unix_bucket(path: str) -> str:
    return "unix" + _SEP + posixpath.normpath(path)


def _abstract_bucket(directive: str, name: str) -> str:
    return f"{directive}{_SEP}@{name}"


class _Index:
    """Listener numbers by key; almost every key has one listener, stored as a bare int."""

    def __init__(self) -> None:
        self.first: dict[str, int] = {}
        self.more: dict[str, list[int]] = {}

    def add(self, key: str, number: int) -> None:
        if self.first.setdefault(key, number) != number:
            self.more.setdefault(key, []).append(number)

    def get(self, key: str) -> list[int]:
        first = self.first.get(key)
        if first is None:
            return []
        return [first, *self.more.get(key, ())]


class _Listeners:
    """Every ListenStream=/ListenDatagram= of the sockets, numbered, and where each binds."""

    def __init__(self) -> None:
        self.units: list[Unit] = []
        self.directives: list[str] = []
        self.addresses: list[ListenAddress] = []
        self.by_bucket = _Index()
        self.by_scope = _Index()  # key: bucket + NUL + scope

    def describe(self, number: int) -> str:
        return f"{self.directives[number]}={self.addresses[number].render()}"

    def whose(self, number: int, asker: Unit) -> str:
        """`number` described for a message about `asker`, naming its file when another's."""
        unit = self.units[number]
        if unit is asker:
            return f"its own {self.describe(number)}"
        return f"{self.describe(number)} of {unit.name} ({unit.path})"


def _check_addresses(sockets: list[tuple[Unit, SocketSection]], found: list[Diagnostic]) -> None:
    """Two binds the kernel would refuse (or that would silently share an address)."""
    listeners = _Listeners()
    memo: dict[tuple[str, bool], list[tuple[str, str]]] = {}
    for unit, section in sockets:
        ipv6_only = section.bind_ipv6_only == "ipv6-only"
        for directive, addresses in (
            ("ListenStream", section.listen_stream),
            ("ListenDatagram", section.listen_datagram),
        ):
            for address in addresses:
                number = len(listeners.units)
                listeners.units.append(unit)
                listeners.directives.append(directive)
                listeners.addresses.append(address)
                clashes: list[int] = []
                for bucket, scope in _bind_keys(directive, address, ipv6_only, memo):
                    if scope == _ANY:
                        clashes += listeners.by_bucket.get(bucket)
                    else:
                        clashes += listeners.by_scope.get(bucket + _SEP + scope)
                        clashes += listeners.by_scope.get(bucket + _SEP + _ANY)
                    listeners.by_bucket.add(bucket, number)
                    listeners.by_scope.add(bucket + _SEP + scope, number)
                if not clashes:
                    continue
                for other in sorted(set(clashes) - {number}):
                    message = (
                        f"{listeners.describe(number)} conflicts with "
                        f"{listeners.whose(other, unit)}: both would bind the same address"
                    )
                    found.append(_at(unit, Severity.ERROR, "Socket", directive, message))
    _check_proxies(sockets, listeners, found)


def _connect_scopes(target: ListenAddress) -> list[tuple[str, str, bool]]:
    """(family, address, is loopback) a TCP connect to `target` reaches; host names reach none."""
    host = target.host
    if host in ("", "localhost"):
        return [("4", "127.0.0.1", True), ("6", "::1", True)]
    import ipaddress  # only proxy targets with a host need it: off the boot path

    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return []  # a name to resolve: no I/O here
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        elif ip.is_unspecified:
            return [("6", "::1", True)]  # connecting to :: reaches the local host
    if isinstance(ip, ipaddress.IPv4Address):
        if ip.is_unspecified:
            return [("4", "127.0.0.1", True)]
        return [("4", str(ip), ip.is_loopback)]
    return [("6", str(ip), ip.is_loopback)]


def _check_proxies(
    sockets: list[tuple[Unit, SocketSection]], listeners: _Listeners, found: list[Diagnostic]
) -> None:
    """A proxy whose target is an address cinit listens on would connect to itself."""
    for unit, section in sockets:
        target = section.proxy_target
        if section.activation_mode is not ActivationMode.PROXY or target is None:
            continue
        reached: list[int] = []
        if target.kind is ListenKind.INET:
            for family, address, loopback in _connect_scopes(target):
                bucket = _inet_bucket("ListenStream", target.port, family)
                reached += listeners.by_scope.get(bucket + _SEP + address)
                # A listener on every address catches loopback connections too.
                if loopback:
                    reached += listeners.by_scope.get(bucket + _SEP + _ANY)
        elif target.kind is ListenKind.UNIX:
            reached += listeners.by_bucket.get(_unix_bucket(target.path))
        else:
            reached += listeners.by_bucket.get(_abstract_bucket("ListenStream", target.path))
        for number in sorted(set(reached)):
            if listeners.directives[number] != "ListenStream":
                continue  # a stream connect cannot reach a datagram socket
            if listeners.units[number] is unit:
                whose = "its own public address"
            else:
                other = listeners.units[number]
                whose = f"a public address of {other.name} ({other.path})"
            message = (
                f"ProxyTarget={target.render()} is {listeners.describe(number)}, {whose}: "
                "the proxy would connect to a socket cinit listens on instead of its service"
            )
            found.append(_at(unit, Severity.ERROR, "Socket", "ProxyTarget", message))


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
