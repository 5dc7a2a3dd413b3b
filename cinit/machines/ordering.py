"""Who may start and who may stop now: the supervisor's ordering bookkeeping. No I/O.

`StartBook` tracks the units asked to start (the boot set, what they pull in, units
started later by OnFailure=) and how each request settled; `releasable` says which
waiting units may start now: every unit they are ordered after that is also in play has
settled (ready, exited, skipped or failed). Units that were never asked to start (a
socket-activated service, an OnFailure= handler that has not run) count as settled, so
nothing waits for them forever. A waiting unit whose Requires= or BindsTo= unit failed,
or whose Requisite= unit is not active, is released with those units, and must not start.

`StopPlan` orders a stop: a unit is asked to stop only after every member of the plan
ordered after it has stopped (reverse dependency order; independent branches together).
"""

from __future__ import annotations

from collections.abc import Container, Iterable

from cinit.machines.unit_model import Outcome
from cinit.units.graph import DependencyGraph


class StartBook:
    """Start requests and their outcomes, for one boot."""

    def __init__(self, graph: DependencyGraph) -> None:
        self.graph = graph
        self.in_play: set[str] = set()  # asked to start at some point
        self.settled: dict[str, Outcome] = {}  # latest outcome of each request
        self.waiting: set[str] = set()  # asked to start, not released yet

    def request(self, names: Iterable[str]) -> list[str]:
        """Ask `names` to start, with what they pull in (Requires=, BindsTo=, Wants=,
        transitively).

        Returns every unit to send a start request to, in start order.
        """
        wanted: set[str] = set()
        todo = list(names)
        while todo:
            name = todo.pop()
            if name in wanted or name not in self.graph.names:
                continue
            wanted.add(name)
            todo.extend(self.graph.requires(name))
            todo.extend(self.graph.binds_to(name))
            todo.extend(self.graph.wants(name))
        for name in wanted:
            self.in_play.add(name)
            self.waiting.add(name)
            self.settled.pop(name, None)
        return [name for name in self.graph.start_order() if name in wanted]

    def settle(self, name: str, outcome: Outcome) -> None:
        if name in self.in_play:
            self.settled[name] = outcome

    def releasable(
        self, among: Iterable[str] | None = None, active: Container[str] = frozenset()
    ) -> list[tuple[str, tuple[str, ...]]]:
        """Waiting units (of `among`, default all) that may go now, each with the units
        that keep it from starting: Requires=/BindsTo= units that failed, and Requisite=
        units that are not `active` (systemd: they are not started for it) but those this
        start skipped by a condition (systemd merges the check into their start job, which
        a skip ends "done")."""
        candidates = self.waiting if among is None else self.waiting.intersection(among)
        released = []
        for name in sorted(candidates):
            after = self.graph.ordered_after(name)
            if any(dep in self.in_play and dep not in self.settled for dep in after):
                continue
            needed = self.graph.requires(name) | self.graph.binds_to(name)
            failed = tuple(
                sorted(
                    {dep for dep in needed if self.settled.get(dep) is Outcome.FAILED}
                    | {
                        dep
                        for dep in self.graph.requisite(name)
                        if dep not in active and self.settled.get(dep) is not Outcome.SKIPPED
                    }
                )
            )
            released.append((name, failed))
        for name, _ in released:
            self.waiting.discard(name)
        return released


class StopPlan:
    """Stop `members` in reverse dependency order."""

    def __init__(self, graph: DependencyGraph, members: Iterable[str]) -> None:
        self.graph = graph
        self.members = set(members)
        self.asked: set[str] = set()
        self.stopped: set[str] = set()

    @property
    def finished(self) -> bool:
        return self.stopped >= self.members

    def mark_stopped(self, name: str) -> None:
        if name in self.members:
            self.stopped.add(name)

    def next(self) -> list[str]:
        """Members that may be asked to stop now (each returned once), in stop order."""
        ready = []
        for name in self.graph.stop_order():
            if name not in self.members or name in self.asked:
                continue
            later = self.graph.ordered_before(name) & self.members
            if later <= self.stopped:
                ready.append(name)
        self.asked.update(ready)
        return ready
