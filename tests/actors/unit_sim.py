"""A driver for the pure unit state machine: a fake clock, fake pids, scripted answers.

`UnitSim` plays the part of the unit's actor without any OS: it feeds events to
`unit_state.step`, answers the actions that ask the OS something (conditions, spawn,
group emptiness, main pid discovery) from what the test scripted, and keeps timers on a
fake microsecond clock that `advance` moves. Everything the machine emitted is kept
for assertions: transitions, log lines, reports, signals.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

from cinit.machines import unit_events as ev
from cinit.machines.unit_model import ExitInfo, Role, State, UnitModel, initial_model
from cinit.machines.unit_state import step
from cinit.units import parse_unit
from cinit.units.model import Unit

SEC = 1_000_000


def make_unit(text: str, name: str = "a.service") -> Unit:
    unit, diagnostics = parse_unit(name, text, environ={}, hostname="host")
    assert unit is not None, diagnostics
    errors = [d.format() for d in diagnostics if d.severity.value == "error"]
    assert not errors, errors
    return unit


@dataclass
class UnitSim:
    """Drive one unit's state machine the way its actor would, with scripted answers."""

    unit: Unit
    now: int = 0
    model: UnitModel = field(init=False)
    unmet: str | None = None  # the answer to CheckConditions
    failed_assert: str | None = None  # ... and its Assert*= part, when every condition holds
    group_empty: bool = True  # the answer to CheckEmpty
    spawn_failure: Callable[[Role, int], int | bool | None] | None = None  # exit code/None
    main_pid_answer: int | None = None  # FindMainPid's answer (None: missing)
    actions: list[ev.Action] = field(default_factory=list)
    timers: dict[tuple[ev.TimerKind, int], int] = field(default_factory=dict)  # -> deadline
    spawned: list[tuple[Role, int, int]] = field(default_factory=list)  # role, index, pid
    _pids: itertools.count[int] = field(default_factory=lambda: itertools.count(100))

    def __post_init__(self) -> None:
        self.model = initial_model(self.unit)

    @classmethod
    def of(cls, text: str, name: str = "a.service") -> UnitSim:
        return cls(make_unit(text, name))

    # ---- driving -----------------------------------------------------------------------

    def feed(self, *events: ev.Event) -> UnitSim:
        pending = list(events)
        while pending:
            before = self.model.state
            self.model, actions = step(self.model, pending.pop(0), self.now)
            changes = [a for a in actions if isinstance(a, ev.Transition)]
            # Exactly one Transition per state change, chained old -> new.
            for change in changes:
                assert change.old is before and change.new is not before, changes
                before = change.new
            assert before is self.model.state, (changes, self.model.state)
            for action in actions:
                self.actions.append(action)
                answer = self._answer(action)
                if answer is not None:
                    pending.append(answer)
        return self

    def _answer(self, action: ev.Action) -> ev.Event | None:
        if isinstance(action, ev.CheckConditions):
            failed = self.failed_assert if self.unmet is None else None
            return ev.ConditionChecked(self.unmet, failed)
        if isinstance(action, ev.Spawn):
            failure = self.spawn_failure(action.role, action.index) if self.spawn_failure else False
            if failure is not False:
                code = failure if isinstance(failure, int) else None
                return ev.SpawnFailed(action.role, action.index, code)
            if action.role is Role.START:  # a unit never has two live main processes
                assert self.model.main_pid is None, f"second main process: {self.model}"
            pid = next(self._pids)
            self.spawned.append((action.role, action.index, pid))
            return ev.Spawned(action.role, action.index, pid)
        if isinstance(action, ev.CheckEmpty):
            return ev.GroupChecked(self.group_empty)
        if isinstance(action, ev.FindMainPid):
            if self.main_pid_answer is not None:
                return ev.MainPidFound(self.main_pid_answer)
            return ev.MainPidMissing("nothing found")
        if isinstance(action, ev.StartTimer):
            self.timers[(action.kind, action.token)] = self.now + action.delay_usec
        if isinstance(action, ev.CancelTimer):
            self.timers.pop((action.kind, action.token), None)
        return None

    def boot(self) -> UnitSim:
        """Start request and settled dependencies: what the supervisor does at boot."""
        return self.feed(ev.StartRequested(), ev.DependenciesSettled())

    def advance(self, usec: int) -> UnitSim:
        """Move the clock, firing every timer that falls due on the way, in order."""
        target = self.now + usec
        while True:
            due = [(d, k) for k, d in self.timers.items() if d <= target]
            if not due:
                break
            deadline, key = min(due)
            del self.timers[key]
            self.now = max(self.now, deadline)
            self.feed(ev.TimerFired(*key))
        self.now = target
        return self

    def exit(self, pid: int, code: int | None = 0, signal: int | None = None) -> UnitSim:
        info = ExitInfo(code=None if signal is not None else code, signal=signal)
        return self.feed(ev.ProcessExited(pid, info))

    def exit_main(self, code: int | None = 0, signal: int | None = None) -> UnitSim:
        pid = self.model.main_pid
        assert pid is not None, f"no main process ({self.model})"
        return self.exit(pid, code, signal)

    def exit_control(self, code: int | None = 0, signal: int | None = None) -> UnitSim:
        pid = self.model.control_pid
        assert pid is not None, f"no control process ({self.model})"
        return self.exit(pid, code, signal)

    # ---- looking -----------------------------------------------------------------------

    @property
    def state(self) -> State:
        return self.model.state

    def of_type(self, kind: type) -> list:
        return [a for a in self.actions if isinstance(a, kind)]

    def logs(self) -> list[str]:
        return [a.text for a in self.of_type(ev.Log)]

    def states(self) -> list[State]:
        """Every state entered, in order (from the transitions)."""
        return [t.new for t in self.of_type(ev.Transition)]

    def roles(self) -> list[str]:
        """What was spawned, as `ExecStart[0]`-style names."""
        return [f"{role.value}[{index}]" for role, index, _ in self.spawned]

    def clear(self) -> UnitSim:
        self.actions.clear()
        return self
