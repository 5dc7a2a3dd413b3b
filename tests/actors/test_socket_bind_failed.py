"""A service whose socket could not be bound at boot fails through its own machine. Pure."""

from __future__ import annotations

from unit_sim import UnitSim

from cinit.machines import unit_events as ev
from cinit.machines.restart import Result
from cinit.machines.unit_model import State


def test_a_socket_bind_failure_fails_the_idle_service_with_one_transition() -> None:
    text = "[Unit]\nOnFailure=rescue.service\n[Service]\nExecStart=/bin/app\n"
    text += "ExitContainerOnFailure=yes\n"
    sim = UnitSim.of(text).feed(ev.CannotStart("its socket a.socket could not be bound"))
    assert sim.state is State.FAILED and sim.model.result is Result.DEPENDENCY
    (change,) = sim.of_type(ev.Transition)
    assert (change.old, change.new, change.result) == (
        State.INACTIVE,
        State.FAILED,
        Result.DEPENDENCY,
    )
    assert change.reason == "its socket a.socket could not be bound"
    assert sim.logs() == ["a.service: failed (dependency): its socket a.socket could not be bound"]
    assert [a.result for a in sim.of_type(ev.RequestOnFailure)] == [Result.DEPENDENCY]
    (exit_request,) = sim.of_type(ev.RequestContainerExit)
    assert (exit_request.status, exit_request.result) == (1, Result.DEPENDENCY)
    assert not sim.spawned


def test_a_socket_bind_failure_leaves_a_running_service_alone() -> None:
    sim = UnitSim.of("[Service]\nExecStart=/bin/app\n").boot()
    assert sim.state is State.RUNNING or sim.state is State.ACTIVE
    before = sim.state
    sim.feed(ev.CannotStart("its socket a.socket could not be bound"))
    assert sim.state is before
