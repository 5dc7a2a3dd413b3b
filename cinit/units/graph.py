"""The unit dependency graph: relations between loaded units, start and stop orders.

Pure code: loaded units in, a `DependencyGraph` out (the checks that need every unit at
once are in `cross_checks`).

Vocabulary: "X is ordered after Y" (X has After=Y, or Y has Before=X, or Y is the
socket that activates service X) means Y must be ready, failed or skipped before X
starts, and X must have stopped before Y stops. Requires= and Wants= never imply
ordering (systemd semantics), except from a `.target`: as systemd.target(5) says, a
target is ordered after every unit it wants or requires (unless that unit is already
ordered after the target, or the target says DefaultDependencies=no), so that reaching
it means they were dealt with. References
to units that are not loaded add no edge (the loader gives every named `.target` a
unit, so targets are always loaded when loaded through it).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from cinit.units.frozen import Frozen
from cinit.units.model import Unit, UnitKind

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
    # issue 15 (lifecycle): BindsTo=, PartOf=, Conflicts=, Requisite=.
    _binds_to: Mapping[str, frozenset[str]]
    _bound_by: Mapping[str, frozenset[str]]
    _parts: Mapping[str, frozenset[str]]
    _conflicts: Mapping[str, frozenset[str]]
    _requisite: Mapping[str, frozenset[str]]
    _on_failure: Mapping[str, tuple[str, ...]]
    _activates: Mapping[str, str]
    _activated_by: Mapping[str, tuple[str, ...]]
    _start_order: tuple[str, ...]
    _start_levels: tuple[tuple[str, ...], ...]
    _trigger_only: frozenset[str]
    _bound_later: frozenset[str] = frozenset()
    _timer_of: Mapping[str, str] = {}  # timer -> the loaded service it starts (issue 17)
    _timed_by: Mapping[str, tuple[str, ...]] = {}  # service -> the timers that start it

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

    def binds_to(self, name: str) -> frozenset[str]:
        """Loaded units `name` has BindsTo= on (pulled in like Requires=, and `name` stops
        whenever one of them goes down)."""
        return self._binds_to.get(name, _EMPTY)

    def bound_by(self, name: str) -> frozenset[str]:
        """Loaded units that have BindsTo= on `name`."""
        return self._bound_by.get(name, _EMPTY)

    def parts(self, name: str) -> frozenset[str]:
        """Loaded units that are PartOf= `name` (they stop when it is stopped)."""
        return self._parts.get(name, _EMPTY)

    def conflicts(self, name: str) -> frozenset[str]:
        """Loaded units `name` conflicts with, in either direction (Conflicts= is mutual)."""
        return self._conflicts.get(name, _EMPTY)

    def requisite(self, name: str) -> frozenset[str]:
        """Loaded units `name` has Requisite= on (they must be active already)."""
        return self._requisite.get(name, _EMPTY)

    def stops_with(self, name: str) -> frozenset[str]:
        """Loaded units a stop of `name` stops too: Requires=, BindsTo= and PartOf= on it."""
        return self.required_by(name) | self.bound_by(name) | self.parts(name)

    def on_failure(self, name: str) -> tuple[str, ...]:
        """Loaded units to start when `name` enters failed, in the order written."""
        return self._on_failure.get(name, ())

    def activates(self, socket: str) -> str | None:
        """The loaded service a socket activates, if any."""
        return self._activates.get(socket)

    def activated_by(self, service: str) -> tuple[str, ...]:
        """Sockets that activate `service`, in name order."""
        return self._activated_by.get(service, ())

    def timer_starts(self, timer: str) -> str | None:
        """The loaded service timer `timer` starts (Unit=), if any."""
        return self._timer_of.get(timer)

    def timed_by(self, service: str) -> tuple[str, ...]:
        """Timers that start `service`, in name order."""
        return self._timed_by.get(service, ())

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
        """Units not started at boot: socket-activated and timer-started services (unless
        wanted at boot, see `build_graph`), every unit in an OnFailure=, and, when the boot
        set was given, every unit outside it."""
        return self._trigger_only

    def binds_at_boot(self, name: str) -> bool:
        """Whether socket `name` is bound before the first service starts: every socket,
        but, when the boot set was given, those outside it (bound when started: ssh.socket
        beside an enabled ssh.service that binds port 22 itself)."""
        return name not in self._bound_later

    def boot_units(self) -> list[str]:
        """`start_order` without the trigger-only units."""
        return [name for name in self._start_order if name not in self._trigger_only]


def timer_service(unit: Unit) -> str:
    """The service a timer unit starts: Unit=, or the timer's own name with .service."""
    if unit.timer is not None and unit.timer.unit:
        return unit.timer.unit
    return unit.stem + ".service"


def activated_service(unit: Unit) -> str:
    """The service a socket unit activates: Service=, or the socket's own name with .service."""
    if unit.socket is not None and unit.socket.service:
        return unit.socket.service
    return unit.stem + ".service"


# The targets a container's boot reaches, for the --units mode's reading of [Install]: a
# service a socket activates still starts at boot when it is WantedBy=/RequiredBy= one of
# them (rsyslog.service, WantedBy=multi-user.target, beside syslog.socket), as it would
# once `systemctl enable`d.
BOOT_TARGETS = frozenset(
    {"default.target", "multi-user.target", "graphical.target", "basic.target", "sysinit.target"}
)


# systemd.special(7) targets a boot never reaches: shutdown, rescue, sleep. Units name them
# for ordering (syslog.socket: Before=shutdown.target); in --units mode, where every loaded
# unit starts, they stay inactive (in --systemd mode nothing pulls them in).
NOT_AT_BOOT = frozenset(
    f"{name}.target"
    for name in (
        "shutdown", "final", "umount", "halt", "poweroff", "reboot", "kexec", "exit",
        "rescue", "emergency", "sleep", "suspend", "hibernate", "hybrid-sleep",
        "suspend-then-hibernate",
    )
)  # fmt: skip


def wanted_at_boot(unit: Unit) -> bool:
    """Whether [Install] links `unit` to a boot target (see `BOOT_TARGETS`)."""
    install = unit.install
    return any(t in BOOT_TARGETS for t in install.wanted_by + install.required_by)


def _freeze(relation: dict[str, set[str]]) -> dict[str, frozenset[str]]:
    return {name: frozenset(members) for name, members in relation.items()}


def build_graph(units: Mapping[str, Unit], boot: Collection[str] | None = None) -> DependencyGraph:
    """The dependency graph of `units` (keyed by unit name).

    References to units that are not loaded are ignored; cycles are tolerated (see
    `DependencyGraph`). `boot` is the set of units that start at boot (`cinit --systemd`
    computes it from default.target); without it, every unit does but the services a
    socket activates or a timer starts (unless `wanted_at_boot`) and the units named in an
    OnFailure=.
    """
    names = sorted(units)
    after: dict[str, set[str]] = {}
    before: dict[str, set[str]] = {}
    requires: dict[str, set[str]] = {}
    required_by: dict[str, set[str]] = {}
    wants: dict[str, set[str]] = {}
    binds_to: dict[str, set[str]] = {}
    bound_by: dict[str, set[str]] = {}
    parts: dict[str, set[str]] = {}
    conflicts: dict[str, set[str]] = {}
    requisite: dict[str, set[str]] = {}
    on_failure: dict[str, tuple[str, ...]] = {}
    activates: dict[str, str] = {}
    activated_by: dict[str, list[str]] = {}
    timer_of: dict[str, str] = {}
    timed_by: dict[str, list[str]] = {}

    def order(later: str, earlier: str) -> None:
        after.setdefault(later, set()).add(earlier)
        before.setdefault(earlier, set()).add(later)

    for name in names:
        unit = units[name]
        section = unit.unit
        for other in section.after:
            if other in units:
                order(name, other)
        for other in section.before:
            if other in units:
                order(other, name)
        for other in section.requires:
            if other in units:
                requires.setdefault(name, set()).add(other)
                required_by.setdefault(other, set()).add(name)
        for other in section.wants:
            if other in units:
                wants.setdefault(name, set()).add(other)
        for other in section.binds_to:
            if other in units:
                binds_to.setdefault(name, set()).add(other)
                bound_by.setdefault(other, set()).add(name)
        for other in section.part_of:
            if other in units:
                parts.setdefault(other, set()).add(name)
        for other in section.conflicts:
            if other in units and other != name:
                conflicts.setdefault(name, set()).add(other)
                conflicts.setdefault(other, set()).add(name)
        for other in section.requisite:
            if other in units:
                requisite.setdefault(name, set()).add(other)
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
                order(service, name)  # the socket binds before the service it activates runs
        elif unit.kind is UnitKind.TIMER:
            # No ordering edge: systemd adds none either (a timer is up as soon as armed).
            service = timer_service(unit)
            target = units.get(service)
            if target is not None and target.kind is UnitKind.SERVICE:
                timer_of[name] = service
                timed_by.setdefault(service, []).append(name)

    for name in names:
        if units[name].kind is UnitKind.TARGET and units[name].unit.default_dependencies:
            # systemd.target(5): a target waits for what it pulls in, unless that unit is
            # ordered after the target already (no loop is made).
            for other in wants.get(name, set()) | requires.get(name, set()):
                if other != name and name not in after.get(other, ()):
                    order(name, other)

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
    bound_later: frozenset[str] = frozenset()
    if boot is None:
        triggered = set(activated_by) | set(timed_by)
        trigger_only = {s for s in triggered if not wanted_at_boot(units[s])}
        for handlers in on_failure.values():
            trigger_only.update(handlers)
        trigger_only.update(n for n in NOT_AT_BOOT if n in units)
    else:
        trigger_only = set(names).difference(boot)
        bound_later = frozenset(n for n in trigger_only if units[n].kind is UnitKind.SOCKET)
    return DependencyGraph(
        names=tuple(names),
        cycle_groups=cycle_groups,
        _after=frozen_after,
        _before=frozen_before,
        _requires=_freeze(requires),
        _required_by=_freeze(required_by),
        _wants=_freeze(wants),
        _binds_to=_freeze(binds_to),
        _bound_by=_freeze(bound_by),
        _parts=_freeze(parts),
        _conflicts=_freeze(conflicts),
        _requisite=_freeze(requisite),
        _on_failure=on_failure,
        _activates=activates,
        _activated_by={service: tuple(sockets) for service, sockets in activated_by.items()},
        _timer_of=timer_of,
        _timed_by={service: tuple(timers) for service, timers in timed_by.items()},
        _start_order=tuple(name for level in levels for name in level),
        _start_levels=tuple(tuple(level) for level in levels),
        _trigger_only=frozenset(trigger_only),
        _bound_later=bound_later,
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
