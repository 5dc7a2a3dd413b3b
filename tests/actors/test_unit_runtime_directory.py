"""When a unit's machine asks for its RuntimeDirectory= to go (RemoveRuntimeDirectories):
when a run ends, as RuntimeDirectoryPreserve= says (systemd.exec(5)). Pure, through UnitSim."""

from __future__ import annotations

import signal

import pytest
from unit_sim import UnitSim

from cinit.machines import unit_events as ev
from cinit.machines.unit_model import State

S = State


def removals_before_each_change(sim: UnitSim) -> list[tuple[str, State]]:
    """("remove", state) for each removal, placed before the Transition that follows it."""
    found = []
    for index, action in enumerate(sim.actions):
        if isinstance(action, ev.RemoveRuntimeDirectories):
            following = sim.actions[index + 1]
            assert isinstance(following, ev.Transition), sim.actions  # told before the change
            found.append(("remove", following.new))
    return found


def unit(preserve: str = "", directory: str = "RuntimeDirectory=web\n") -> str:
    extra = f"RuntimeDirectoryPreserve={preserve}\n" if preserve else ""
    return f"[Service]\nExecStart=/bin/app\nRestart=on-failure\n{directory}{extra}"


@pytest.mark.parametrize(
    ("preserve", "expected"),
    [
        ("", [("remove", S.AUTO_RESTART), ("remove", S.INACTIVE)]),
        ("no", [("remove", S.AUTO_RESTART), ("remove", S.INACTIVE)]),
        ("restart", [("remove", S.INACTIVE)]),  # kept while it waits to restart
        ("yes", []),
    ],
)
def test_the_runtime_directory_goes_when_the_run_ends(
    preserve: str, expected: list[tuple[str, State]]
) -> None:
    sim = UnitSim.of(unit(preserve)).boot()
    assert sim.state is S.ACTIVE and removals_before_each_change(sim) == []
    sim.exit_main(1)  # a failure: Restart=on-failure waits, then starts again
    assert sim.state is S.AUTO_RESTART
    sim.advance(100_000)
    assert sim.state is S.ACTIVE
    sim.feed(ev.StopRequested()).exit_main(signal=signal.SIGTERM)
    assert sim.state is S.INACTIVE
    assert removals_before_each_change(sim) == expected


def test_a_unit_without_runtime_directory_asks_nothing() -> None:
    sim = UnitSim.of(unit(directory="StateDirectory=web\n")).boot()
    sim.feed(ev.StopRequested()).exit_main(signal=signal.SIGTERM)
    assert sim.of_type(ev.RemoveRuntimeDirectories) == []


def test_a_failed_start_removes_it_too() -> None:
    sim = UnitSim.of("[Service]\nExecStart=/bin/app\nRuntimeDirectory=web\n")
    sim.spawn_failure = lambda role, index: 127
    sim.boot()
    assert sim.state is S.FAILED
    assert removals_before_each_change(sim) == [("remove", S.FAILED)]
