"""The reload side of the unit machine: ExecReload=, RELOADING=1 ... READY=1. Pure.

Driven by `UnitSim` (tests/actors/unit_sim.py): no processes, a fake microsecond clock.
"""

from __future__ import annotations

import signal

from unit_sim import SEC, UnitSim

from cinit.machines import unit_events as ev
from cinit.machines.unit_model import Phase, Role, State, TimerKind
from cinit.machines.vocabulary import RELOAD_FAILED_REASON, RELOADED_REASON

S = State


def service(body: str) -> str:
    return f"[Service]\n{body}\n"


def reasons(sim: UnitSim) -> list[tuple[State, State, str]]:
    return [(t.old, t.new, t.reason) for t in sim.of_type(ev.Transition)]


def test_execreload_runs_in_order_with_the_main_pid_and_goes_back_to_active() -> None:
    sim = UnitSim.of(service("ExecStart=/bin/app\nExecReload=/bin/one\nExecReload=/bin/two"))
    sim.boot().clear()
    main = sim.model.main_pid
    sim.feed(ev.ReloadRequested())
    assert sim.state is S.RELOADING and sim.model.phase is Phase.RELOAD
    assert any(kind is TimerKind.RELOAD for kind, _ in sim.model.timers)
    sim.exit_control(0)
    assert sim.state is S.RELOADING and sim.roles()[-1] == "ExecReload[1]"
    sim.exit_control(0)
    assert reasons(sim) == [
        (S.ACTIVE, S.RELOADING, "reload requested"),
        (S.RELOADING, S.ACTIVE, RELOADED_REASON),
    ]
    assert sim.model.main_pid == main and not sim.model.timers
    assert all(t.pid == main for t in sim.of_type(ev.Transition))


def test_a_failed_reload_keeps_the_service_running() -> None:
    sim = UnitSim.of(service("ExecStart=/bin/app\nExecReload=/bin/false\nExecReload=/bin/two"))
    sim.boot().clear()
    sim.feed(ev.ReloadRequested()).exit_control(1)
    assert sim.state is S.ACTIVE and sim.model.main_pid is not None
    assert sim.roles() == ["ExecStart[0]", "ExecReload[0]"]  # the second never ran
    last = sim.of_type(ev.Transition)[-1]
    assert last.reason.startswith(RELOAD_FAILED_REASON) and "status=1" in last.reason
    assert last.result.value == "success"  # the run's result is untouched


def test_a_dash_excuses_a_failed_reload_command_and_a_spawn_failure_fails_it() -> None:
    sim = UnitSim.of(service("ExecStart=/bin/app\nExecReload=-/bin/false"))
    sim.boot().feed(ev.ReloadRequested()).exit_control(3)
    assert sim.of_type(ev.Transition)[-1].reason == RELOADED_REASON
    broken = UnitSim.of(service("ExecStart=/bin/app\nExecReload=/bin/nope"))
    broken.spawn_failure = lambda role, _index: 203 if role is Role.RELOAD else False
    broken.boot().feed(ev.ReloadRequested())
    assert broken.state is S.ACTIVE
    assert broken.of_type(ev.Transition)[-1].reason.startswith(RELOAD_FAILED_REASON)


def test_a_reload_that_hangs_times_out_and_its_command_gets_sigterm() -> None:
    sim = UnitSim.of(service("ExecStart=/bin/app\nExecReload=/bin/hang\nTimeoutStartSec=5"))
    sim.boot().feed(ev.ReloadRequested())
    control = sim.model.control_pid
    sim.advance(6 * SEC)
    assert sim.state is S.ACTIVE
    assert ev.SignalMain(control, signal.SIGTERM) in sim.actions
    assert sim.of_type(ev.Transition)[-1].reason == f"{RELOAD_FAILED_REASON} (timeout)"
    sim.exit(control, signal=signal.SIGTERM)  # its late exit changes nothing
    assert sim.state is S.ACTIVE


def test_notify_reloading_then_ready() -> None:
    sim = UnitSim.of(service("Type=notify\nExecStart=/bin/app"))
    sim.boot().feed(ev.NotifyReady()).clear()
    main = sim.model.main_pid
    sim.feed(ev.NotifyReceived(main, True, {"RELOADING": "1", "MONOTONIC_USEC": "5"}))
    assert sim.state is S.RELOADING and sim.model.phase is Phase.RELOAD_NOTIFIED
    sim.feed(ev.NotifyReceived(main, True, {"READY": "1"}))
    assert reasons(sim) == [
        (S.ACTIVE, S.RELOADING, "RELOADING=1"),
        (S.RELOADING, S.ACTIVE, RELOADED_REASON),
    ]


def test_stop_during_a_reload_runs_execstop_and_a_main_exit_ends_the_run() -> None:
    text = "ExecStart=/bin/app\nExecReload=/bin/hang\nExecStop=/bin/stop"
    sim = UnitSim.of(service(text)).boot().feed(ev.ReloadRequested())
    sim.feed(ev.StopRequested())
    assert sim.state is S.STOPPING and sim.roles()[-1] == "ExecStop[0]"
    assert not any(kind is TimerKind.RELOAD for kind, _ in sim.model.timers)
    crash = UnitSim.of(service("ExecStart=/bin/app\nExecReload=/bin/hang")).boot()
    crash.feed(ev.ReloadRequested()).exit_main(1)
    assert crash.state is S.STOPPING  # the reload command is taken down with the rest
    crash.exit_control(signal=signal.SIGTERM)
    assert crash.state is S.FAILED


def test_reload_is_ignored_when_not_active_and_start_while_reloading_is_answered() -> None:
    sim = UnitSim.of(service("ExecStart=/bin/app\nExecReload=/bin/r"))
    sim.feed(ev.ReloadRequested())
    assert sim.state is S.INACTIVE and not sim.actions
    sim.boot().feed(ev.ReloadRequested()).clear()
    sim.feed(ev.StartRequested())
    assert [a.outcome.value for a in sim.of_type(ev.ReportSettled)] == ["ready"]


def test_notify_reload_sends_reload_signal_and_waits_for_ready() -> None:
    sim = UnitSim.of(service("Type=notify-reload\nExecStart=/bin/app\nReloadSignal=SIGUSR1"))
    sim.boot().feed(ev.NotifyReady()).clear()
    main = sim.model.main_pid
    sim.feed(ev.ReloadRequested())
    assert ev.SignalMain(main, signal.SIGUSR1) in sim.actions
    assert sim.state is S.RELOADING and sim.model.phase is Phase.RELOAD_NOTIFIED
    sim.feed(ev.NotifyReceived(main, True, {"RELOADING": "1"}))  # changes nothing
    assert sim.state is S.RELOADING
    sim.feed(ev.NotifyReceived(main, True, {"READY": "1"}))
    assert reasons(sim)[-1] == (S.RELOADING, S.ACTIVE, RELOADED_REASON)


def test_notify_reload_with_execreload_waits_for_both() -> None:
    text = "Type=notify-reload\nExecStart=/bin/app\nExecReload=/bin/extra"
    sim = UnitSim.of(service(text)).boot().feed(ev.NotifyReady()).clear()
    main = sim.model.main_pid
    sim.feed(ev.ReloadRequested())
    assert ev.SignalMain(main, signal.SIGHUP) in sim.actions  # ReloadSignal='s default
    sim.exit_control(0)
    assert sim.state is S.RELOADING and sim.model.phase is Phase.RELOAD_NOTIFIED
    sim.feed(ev.NotifyReady())
    assert sim.state is S.ACTIVE
    # READY=1 before the command ended: the command's end ends the reload.
    sim.feed(ev.ReloadRequested(), ev.NotifyReady())
    assert sim.state is S.RELOADING
    sim.exit_control(0)
    assert sim.state is S.ACTIVE and not sim.model.reload_awaits_ready


def test_a_reload_with_nothing_to_run_is_answered_as_failed() -> None:
    sim = UnitSim.of(service("ExecStart=/bin/app")).boot().clear()
    sim.feed(ev.ReloadRequested())
    (going, back) = sim.of_type(ev.Transition)
    assert (going.new, back.new) == (S.RELOADING, S.ACTIVE)
    assert back.reason.startswith(RELOAD_FAILED_REASON) and not sim.spawned[1:]
