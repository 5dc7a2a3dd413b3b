"""The unit machine's table and its one mutator. Pure.

The table must say, for every event type and every state, what happens (a handler, or
IGNORED); each handler must take the event type of its row. A long random run through
`UnitSim` (tests/actors/unit_sim.py) checks that every change of state or phase came
with exactly one event: a Transition for a state, a PhaseChanged for a phase alone.
"""

from __future__ import annotations

import inspect
import random
import typing
from collections.abc import Iterator

import pytest
import unit_sim
from unit_sim import SEC, UnitSim

from cinit.machines import unit_events as ev
from cinit.machines.restart import Result
from cinit.machines.unit_model import Phase, State, TimerKind, UnitModel
from cinit.machines.unit_state import IGNORED, TABLE, trace_step
from cinit.machines.unit_step import UnitStep

EVENT_TYPES = typing.get_args(ev.Event)


def service(body: str, unit: str = "") -> str:
    return f"[Unit]\n{unit}\n[Service]\n{body}\n"


# ---- the table -----------------------------------------------------------------------------


def _rows() -> Iterator[tuple[type | TimerKind, type]]:
    """Each row key of the table, with the event type its handlers take."""
    for event_type in EVENT_TYPES:
        if event_type is ev.TimerFired:
            yield from ((kind, ev.TimerFired) for kind in TimerKind)
        else:
            yield event_type, event_type


def test_the_table_has_a_cell_for_every_event_type_and_state() -> None:
    keys = [key for key, _ in _rows()]
    assert sorted(map(str, TABLE)) == sorted(map(str, keys))
    for key in keys:
        assert set(TABLE[key]) == set(State), key
        for state, handler in TABLE[key].items():
            assert callable(handler), (key, state)


@pytest.mark.parametrize(("key", "event_type"), list(_rows()), ids=str)
def test_each_handler_takes_the_event_type_of_its_row(key: object, event_type: type) -> None:
    for state, handler in TABLE[key].items():  # type: ignore[index]
        if handler is IGNORED:
            continue
        assert handler.__name__.startswith("on_"), handler
        _step, event = inspect.signature(handler).parameters.values()
        assert event.annotation == event_type.__name__, (key, state, handler)


def test_an_event_ignored_in_a_state_changes_nothing() -> None:
    model = UnitSim.of(service("ExecStart=/bin/app")).model
    assert TABLE[ev.NotifyReady][State.INACTIVE] is IGNORED
    after, actions, changes = trace_step(model, ev.NotifyReady(), 0)
    assert after is model and actions == [] and changes == []


def test_state_and_phase_change_only_through_the_mutator() -> None:
    work = UnitStep(UnitSim.of(service("ExecStart=/bin/app")).model, 0)
    with pytest.raises(ValueError, match="enter"):
        work.update(state=State.ACTIVE)
    with pytest.raises(ValueError, match="enter"):
        work.update(phase=Phase.START, index=1)
    work.enter(State.WAITING, "start requested")
    work.enter_phase(Phase.CONDITIONS)
    work.enter_phase(Phase.CONDITIONS)  # no change: no event
    assert [type(event) for _, _, event in work.changes] == [ev.Transition, ev.PhaseChanged]
    assert work.changes[1] == (
        State.WAITING,
        Phase.CONDITIONS,
        ev.PhaseChanged("a.service", State.WAITING, Phase.NONE, Phase.CONDITIONS),
    )


# ---- CannotStart: what the supervisor sends when a service's socket could not be bound ----


def test_a_unit_that_cannot_start_fails_as_a_dependency_failure() -> None:
    body = "ExecStart=/bin/app\nExitContainerOnFailure=yes"
    sim = UnitSim.of(service(body)).feed(ev.CannotStart("its socket a.socket could not be bound"))
    (change,) = sim.of_type(ev.Transition)
    assert (change.old, change.new, change.result) == (
        State.INACTIVE,
        State.FAILED,
        Result.DEPENDENCY,
    )
    assert change.reason == "its socket a.socket could not be bound"
    assert sim.logs() == ["a.service: failed (dependency): its socket a.socket could not be bound"]
    assert sim.of_type(ev.RequestOnFailure) == [ev.RequestOnFailure(Result.DEPENDENCY)]
    assert sim.of_type(ev.RequestContainerExit) == [ev.RequestContainerExit(1, Result.DEPENDENCY)]
    assert not sim.spawned


def test_a_waiting_unit_that_cannot_start_answers_its_start_request() -> None:
    sim = UnitSim.of(service("ExecStart=/bin/app")).feed(ev.StartRequested())
    sim.feed(ev.CannotStart("no socket"))
    assert sim.state is State.FAILED
    assert [(a.outcome.value, a.result) for a in sim.of_type(ev.ReportSettled)] == [
        ("failed", Result.DEPENDENCY)
    ]


def test_a_running_unit_ignores_cannot_start() -> None:
    sim = UnitSim.of(service("ExecStart=/bin/app")).boot().clear()
    sim.feed(ev.CannotStart("no socket"))
    assert sim.state is State.ACTIVE and sim.actions == []


# ---- one event per change, over a long random run -----------------------------------------

UNITS = [
    service(
        "ExecStartPre=/bin/pre\nExecStart=/bin/app\nExecStartPost=/bin/post\n"
        "ExecStop=/bin/stop\nExecStopPost=/bin/stop-post\nRestart=always\nRestartSec=1\n"
        "ExecReload=/bin/reload\nExecReload=-/bin/reload-more\n"
        "WatchdogSec=2\nTimeoutStartSec=3\nTimeoutStopSec=2",
        "StartLimitBurst=0",
    ),
    service(
        "Type=oneshot\nExecStart=/bin/one\nExecStart=-/bin/two\nExecStop=/bin/stop\n"
        "TimeoutStartSec=4\nTimeoutStopSec=1"
    ),
    service("Type=oneshot\nRemainAfterExit=yes\nExecStart=/bin/one\nExecStopPost=/bin/post"),
    service(
        "Type=notify\nExecStart=/bin/d\nWatchdogSec=1\nRestart=on-failure\nRestartSec=0.5\n"
        "TimeoutStartSec=2\nTimeoutStopSec=1",
        "StartLimitBurst=3\nStartLimitIntervalSec=5",
    ),
    service("Type=forking\nPIDFile=/run/d.pid\nExecStart=/bin/d\nRestart=on-abnormal"),
    service("Type=forking\nExecStart=/bin/d\nExecStop=/bin/stop\nTimeoutStopSec=1"),
]


class ChangeChecker:
    """Wraps `step` as UnitSim calls it: checks each step's changes, counts them."""

    def __init__(self) -> None:
        self.changes = 0
        self.phase_changes = 0
        self.states: set[State] = set()

    def __call__(self, model: UnitModel, event: ev.Event, now: int) -> tuple[UnitModel, list]:
        after, actions, changes = trace_step(model, event, now)
        where = (model.state, model.phase)
        for state, phase, emitted in changes:
            assert (state, phase) != where, (event, changes)
            if state is where[0]:
                assert emitted == ev.PhaseChanged(model.name, state, where[1], phase), emitted
                self.phase_changes += 1
            else:
                assert isinstance(emitted, ev.Transition), emitted
                assert (emitted.old, emitted.new) == (where[0], state), emitted
            where = (state, phase)
            self.states.add(state)
        # Nothing moved the state or phase but the mutator, and every change is told once.
        assert where == (after.state, after.phase), (event, changes, after)
        transitions = [a for a in actions if isinstance(a, ev.Transition)]
        assert transitions == [e for _, _, e in changes if isinstance(e, ev.Transition)]
        assert not any(isinstance(a, ev.PhaseChanged) for a in actions)  # not an action
        self.changes += len(changes)
        return after, actions


def random_walk(sim: UnitSim, rng: random.Random, steps: int) -> None:
    """Feed `sim` what a unit's life may bring, in any order."""
    for _ in range(steps):
        choice = rng.randrange(18)
        if choice == 0:
            sim.boot()
        elif choice == 1:
            sim.feed(ev.StopRequested())
        elif choice == 2 and rng.random() < 0.3:
            sim.feed(ev.KillRequested())
        elif choice in (3, 4) and sim.model.main_pid is not None:
            signo = rng.choice([None, None, 9, 15])
            sim.exit_main(code=rng.choice([0, 0, 1]), signal=signo)
        elif choice in (5, 6) and sim.model.control_pid is not None:
            sim.exit_control(code=rng.choice([0, 0, 2]))
        elif choice in (7, 8):
            sim.advance(rng.randrange(1, 3 * SEC))
        elif choice == 9:
            sim.feed(ev.NotifyReady())
        elif choice == 10:
            sim.feed(rng.choice([ev.NotifyStopping(), ev.NotifyWatchdog(rng.random() < 0.2)]))
        elif choice == 11:
            pids = [4242, *(pid for _, _, pid in sim.spawned[-2:])]
            sim.feed(ev.NotifyMainPid(rng.choice(pids)), ev.NotifyExtendTimeout(SEC))
        elif choice == 12:
            sim.feed(ev.NotifyStatus("busy"), ev.SignalRequested(1))
        elif choice == 13:
            sim.group_empty = rng.random() < 0.7
            sim.unmet = "ConditionPathExists=/x" if rng.random() < 0.1 else None
            sim.main_pid_answer = rng.choice([None, 4242])
        elif choice == 14:
            failing = rng.random() < 0.15
            sim.spawn_failure = (lambda _r, _i: rng.choice([None, 203])) if failing else None
        elif choice in (15, 16):
            sim.feed(rng.choice([ev.ReloadRequested(), ev.NotifyReloading()]))
        else:
            sim.feed(ev.DependenciesSettled())


@pytest.mark.parametrize("seed", range(6))
def test_every_change_in_a_long_run_comes_with_one_event(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    checker = ChangeChecker()
    monkeypatch.setattr(unit_sim, "step", checker)
    rng = random.Random(seed)
    for text in UNITS:
        random_walk(UnitSim.of(text), rng, steps=400)
    assert checker.changes > 500 and checker.phase_changes > 100  # the run went places
    assert checker.states == set(State)
