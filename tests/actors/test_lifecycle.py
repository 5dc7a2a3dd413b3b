"""The root's lifecycle: pure transitions, no processes, no clock."""

from __future__ import annotations

import signal

from hypothesis import given, settings
from hypothesis import strategies as st

from cinit.machines import lifecycle as lc
from cinit.machines.lifecycle import Phase

T = lc.Timeouts(stop_timeout=8.0, kill_grace=1.0)
TERM, INT, KILL = signal.SIGTERM, signal.SIGINT, signal.SIGKILL
RTMIN3 = signal.SIGRTMIN + 3


def run(model: lc.RootModel, *events: lc.Event) -> tuple[lc.RootModel, list[lc.Action]]:
    """Feed `events`; the actions but `PhaseEntered` (checked on its own below)."""
    actions: list[lc.Action] = []
    for event in events:
        model, more = lc.step(model, event, T)
        actions.extend(a for a in more if not isinstance(a, lc.PhaseEntered))
    return model, actions


def running(main: bool = True) -> lc.RootModel:
    model, _ = lc.step(lc.initial(main_alive=main), lc.Booted(), T)
    assert model.phase is Phase.RUNNING
    return model


def kinds(actions: list[lc.Action]) -> list[type]:
    return [type(a) for a in actions if not isinstance(a, lc.Log)]


def test_sigterm_stops_main_with_the_same_signal_and_arms_the_deadline() -> None:
    model, actions = run(running(), lc.SignalArrived(TERM, 77))
    assert model.phase is Phase.STOPPING
    assert lc.SignalMain(TERM) in actions
    assert lc.StartTimer(lc.StopDeadline(), 8.0) in actions
    for signo in (INT, RTMIN3):
        _, actions = run(running(), lc.SignalArrived(signo))
        assert lc.SignalMain(signo) in actions


def test_orderly_stop_exits_with_the_main_commands_status() -> None:
    model, actions = run(
        running(), lc.SignalArrived(TERM), lc.MainExited(143, "killed by SIGTERM")
    )
    assert model.phase is Phase.DRAINING
    assert actions[-2:] == [lc.SignalLeftovers(TERM), lc.CheckChildren()]
    model, actions = run(model, lc.ChildrenGone())
    assert model.phase is Phase.EXITED
    assert actions == [lc.Finish(143)]


def test_main_command_that_ignores_sigterm_is_killed_at_the_deadline() -> None:
    model, _ = run(running(), lc.SignalArrived(TERM))
    model, actions = run(model, lc.StopDeadline())
    assert model.phase is Phase.KILLING
    assert kinds(actions) == [
        lc.KillMainGroup,
        lc.SignalLeftovers,
        lc.StartTimer,
        lc.CheckChildren,
    ]
    assert lc.SignalLeftovers(KILL) in actions
    assert lc.StartTimer(lc.KillDeadline(), 1.0) in actions
    model, actions = run(model, lc.MainExited(137), lc.ChildrenGone())
    assert actions[-1] == lc.Finish(137)


def test_second_sigterm_is_passed_on_and_changes_nothing_else() -> None:
    stopping, _ = run(running(), lc.SignalArrived(TERM))
    model, actions = run(stopping, lc.SignalArrived(TERM))
    assert model == stopping
    assert kinds(actions) == [lc.SignalMain]
    assert any(isinstance(a, lc.Log) and "shutdown continues" in a.text for a in actions)
    model, actions = run(stopping, lc.SignalArrived(INT))
    assert lc.SignalMain(INT) in actions and model == stopping
    # Once the main command is gone a repeated signal is only logged.
    draining, _ = run(stopping, lc.MainExited(143))
    _, actions = run(draining, lc.SignalArrived(TERM))
    assert kinds(actions) == []


def test_forwarded_signals_go_to_the_main_command_only_while_it_runs() -> None:
    for signo in (signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2, signal.SIGWINCH,
                  signal.SIGQUIT, signal.SIGALRM):
        model, actions = run(running(), lc.SignalArrived(signo))
        assert model.phase is Phase.RUNNING
        assert actions == [lc.SignalMain(signo)]
    _, actions = run(running(main=False), lc.SignalArrived(signal.SIGHUP))
    assert actions == []


def test_units_get_hup_usr1_usr2_and_are_stopped_then_killed() -> None:
    model, _ = run(lc.initial(main_alive=False), lc.Booted(units=True))
    _, actions = run(model, lc.SignalArrived(signal.SIGUSR1))
    assert actions == [lc.ForwardToUnits(signal.SIGUSR1)]
    _, actions = run(model, lc.SignalArrived(signal.SIGWINCH))
    assert actions == []
    _, actions = run(model, lc.SignalArrived(signal.SIGHUP))  # SIGHUP is daemon-reload
    assert actions == [lc.ReloadUnits()]
    _, actions = run(running(), lc.SignalArrived(signal.SIGHUP))  # cinit -- CMD: forwarded
    assert actions == [lc.SignalMain(signal.SIGHUP)]
    both, _ = run(lc.initial(main_alive=True), lc.Booted(units=True))  # units and -- CMD
    _, actions = run(both, lc.SignalArrived(signal.SIGHUP))
    assert actions == [lc.SignalMain(signal.SIGHUP), lc.ReloadUnits()]
    stopping, actions = run(model, lc.SignalArrived(TERM))
    assert lc.StopUnits() in actions and stopping.phase is Phase.STOPPING
    killing, actions = run(stopping, lc.StopDeadline())
    assert lc.KillUnits() in actions and killing.phase is Phase.KILLING
    drained, actions = run(stopping, lc.UnitsStopped())
    assert drained.phase is Phase.DRAINING
    assert lc.Finish(0) in run(drained, lc.ChildrenGone())[1]


def test_main_command_exiting_by_itself_stops_the_rest_with_its_status() -> None:
    model, actions = run(running(), lc.MainExited(3, "exited with status 3"))
    assert model.phase is Phase.DRAINING
    assert lc.SignalLeftovers(TERM) in actions
    assert lc.StartTimer(lc.StopDeadline(), 8.0) in actions
    model, actions = run(model, lc.ChildrenGone())
    assert actions == [lc.Finish(3)]


def test_stop_without_main_command_exits_zero() -> None:
    model, _ = run(running(main=False), lc.SignalArrived(TERM))
    assert model.phase is Phase.DRAINING
    assert run(model, lc.ChildrenGone())[1] == [lc.Finish(0)]


def test_exit_requested_forces_the_status() -> None:
    model, actions = run(running(), lc.ExitRequested(4, "db.service failed"))
    assert lc.SignalMain(TERM) in actions
    model, actions = run(model, lc.MainExited(143), lc.ChildrenGone())
    assert actions[-1] == lc.Finish(4)


def test_leftovers_that_survive_sigkill_do_not_keep_cinit_alive() -> None:
    model, _ = run(running(), lc.MainExited(0), lc.StopDeadline())
    assert model.phase is Phase.KILLING
    model, actions = run(model, lc.KillDeadline())
    assert model.phase is Phase.EXITED
    assert actions[-1] == lc.Finish(0)


def test_signal_during_boot_starts_the_stop() -> None:
    model, actions = run(lc.initial(main_alive=True), lc.SignalArrived(TERM))
    assert model.phase is Phase.STOPPING
    assert lc.SignalMain(TERM) in actions
    model, _ = run(model, lc.Booted())  # a late Booted does not resurrect the run
    assert model.phase is Phase.STOPPING


EVENTS = st.one_of(
    st.sampled_from(
        [
            lc.Booted(),
            lc.MainExited(3),
            lc.UnitsStopped(),
            lc.StopDeadline(),
            lc.KillDeadline(),
            lc.ChildrenGone(),
            lc.ExitRequested(9, "x"),
        ]
    ),
    st.sampled_from([TERM, INT, RTMIN3, signal.SIGHUP, signal.SIGQUIT, signal.SIGCHLD]).map(
        lc.SignalArrived
    ),
)


@settings(max_examples=300, deadline=None)
@given(main=st.booleans(), units=st.booleans(), events=st.lists(EVENTS, max_size=25))
def test_any_history_finishes_at_most_once_and_can_always_finish(
    main: bool, units: bool, events: list[lc.Event]
) -> None:
    model = lc.initial(main_alive=main)
    model, _ = lc.step(model, lc.Booted(units=units), T)
    finishes = 0
    stop_timers = 0
    for event in events:
        before = model
        model, actions = lc.step(model, event, T)
        # One PhaseEntered per phase change, chained from the old phase to the new one.
        entered = [a for a in actions if isinstance(a, lc.PhaseEntered)]
        phases = [before.phase, *(a.new for a in entered)]
        assert [a.old for a in entered] == phases[:-1] and phases[-1] is model.phase
        assert len(set(phases)) == len(phases)
        finishes += sum(isinstance(a, lc.Finish) for a in actions)
        stop_timers += sum(
            isinstance(a, lc.StartTimer) and isinstance(a.event, lc.StopDeadline) for a in actions
        )
        if model.phase is Phase.EXITED:
            assert lc.step(model, event, T) == (model, [])
    assert finishes <= 1
    assert stop_timers <= 1  # the shutdown deadline is armed once, never restarted
    # Whatever happened, a stop request followed by the timers always ends in EXITED.
    for event in (lc.SignalArrived(TERM), lc.StopDeadline(), lc.KillDeadline()):
        model, _ = lc.step(model, event, T)
    assert model.phase is Phase.EXITED


def test_the_table_has_a_cell_for_every_event_and_phase() -> None:
    assert set(lc.EVENT_TYPES) == set(lc.Event.__args__)  # type: ignore[attr-defined]
    for row in lc.TABLE.values():
        assert set(row) == set(Phase)
    # Nothing moves an exited root.
    assert all(row[Phase.EXITED] is lc._ignored for row in lc.TABLE.values())


def test_stop_without_units_or_main_announces_every_phase_it_passes() -> None:
    model, actions = lc.step(running(main=False), lc.SignalArrived(TERM), T)
    entered = [(a.old, a.new) for a in actions if isinstance(a, lc.PhaseEntered)]
    assert model.phase is Phase.DRAINING
    assert entered == [(Phase.RUNNING, Phase.STOPPING), (Phase.STOPPING, Phase.DRAINING)]
