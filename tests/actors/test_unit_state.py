"""The unit state table: every service type, failures, timeouts, stop, restart. Pure.

Driven by `UnitSim` (tests/actors/unit_sim.py): no processes, a fake microsecond clock.
The sim itself checks two invariants on every step: each state change emits exactly
one chained Transition, and a main process is never spawned while one is alive.
"""

from __future__ import annotations

import signal

import pytest
from unit_sim import SEC, UnitSim

from cinit.machines import unit_events as ev
from cinit.machines.restart import Result
from cinit.machines.unit_model import Outcome, Phase, Role, State, TimerKind
from cinit.machines.unit_state import step

S = State


def service(body: str, unit: str = "") -> str:
    return f"[Unit]\n{unit}\n[Service]\n{body}\n"


def settled(sim: UnitSim) -> list[tuple[Outcome, Result]]:
    return [(a.outcome, a.result) for a in sim.of_type(ev.ReportSettled)]


# ---- happy paths of each type ------------------------------------------------------------


@pytest.mark.parametrize("kind", ["simple", "exec"])
def test_simple_and_exec_are_ready_when_spawned(kind: str) -> None:
    sim = UnitSim.of(service(f"Type={kind}\nExecStart=/bin/app")).boot()
    assert sim.states() == [S.WAITING, S.STARTING, S.RUNNING, S.ACTIVE]
    assert sim.logs() == ["a.service: started (pid 100)", "a.service: ready"]
    assert settled(sim) == [(Outcome.READY, Result.SUCCESS)]
    assert sim.model.main_pid == 100
    assert not sim.timers  # the start timeout is disarmed once ready


def test_nothing_happens_before_dependencies_settle() -> None:
    sim = UnitSim.of(service("ExecStart=/bin/app")).feed(ev.StartRequested())
    assert sim.state is S.WAITING
    assert not sim.spawned
    sim.feed(ev.DependenciesSettled())
    assert sim.state is S.ACTIVE


def test_notify_is_ready_on_ready_1_only() -> None:
    sim = UnitSim.of(service("Type=notify\nExecStart=/bin/app")).boot()
    assert sim.state is S.RUNNING
    assert (TimerKind.START, 1) in sim.timers
    sim.feed(ev.NotifyStatus("warming up"))
    assert sim.state is S.RUNNING and sim.model.status_text == "warming up"
    sim.feed(ev.NotifyReady())
    assert sim.state is S.ACTIVE
    assert sim.logs()[-1] == "a.service: ready"
    assert not any(k is TimerKind.START for k, _ in sim.timers)
    sim.feed(ev.NotifyReady())  # a second READY=1 (after a reload) changes nothing
    assert sim.states().count(S.ACTIVE) == 1


def test_oneshot_runs_every_execstart_in_order_then_exits() -> None:
    text = service("Type=oneshot\nExecStart=/bin/one\nExecStart=/bin/two\nExecStart=/bin/three")
    sim = UnitSim.of(text).boot()
    for _ in range(3):
        assert sim.state is S.RUNNING
        sim.exit_main(0)
    assert sim.roles() == ["ExecStart[0]", "ExecStart[1]", "ExecStart[2]"]
    assert sim.state is S.EXITED
    assert settled(sim) == [(Outcome.EXITED, Result.SUCCESS)]
    assert sim.logs().count("a.service: ready") == 1
    assert [line for line in sim.logs() if "started" in line] == [
        "a.service: started (pid 100)",
        "a.service: started (pid 101)",
        "a.service: started (pid 102)",
    ]
    assert sim.model.teardown_pending  # leftover daemons live until the unit is stopped


def test_oneshot_remain_after_exit_stays_active() -> None:
    sim = UnitSim.of(service("Type=oneshot\nRemainAfterExit=yes\nExecStart=/bin/one")).boot()
    sim.exit_main(0)
    assert sim.state is S.ACTIVE
    assert sim.model.main_pid is None
    assert settled(sim) == [(Outcome.READY, Result.SUCCESS)]


def test_oneshot_failure_stops_the_sequence() -> None:
    text = service("Type=oneshot\nExecStart=/bin/one\nExecStart=/bin/two\nExecStart=/bin/three")
    sim = UnitSim.of(text).boot().exit_main(0).exit_main(3)
    assert sim.roles() == ["ExecStart[0]", "ExecStart[1]"]
    assert sim.state is S.FAILED
    assert sim.logs()[-2:] == ["a.service: exited (status=3)", "a.service: failed (exit-code)"]
    assert settled(sim) == [(Outcome.FAILED, Result.EXIT_CODE)]


def test_oneshot_dash_prefix_ignores_a_failure() -> None:
    sim = UnitSim.of(service("Type=oneshot\nExecStart=-/bin/one\nExecStart=/bin/two")).boot()
    sim.exit_main(1).exit_main(0)
    assert sim.state is S.EXITED


def test_oneshot_killed_by_sigterm_is_a_failure() -> None:
    # A daemon may die of SIGTERM cleanly; a oneshot command that does has not done its job.
    sim = UnitSim.of(service("Type=oneshot\nExecStart=/bin/one")).boot()
    sim.exit_main(signal=signal.SIGTERM)
    assert sim.state is S.FAILED and sim.model.result is Result.SIGNAL


def test_forking_is_ready_when_the_parent_exits_and_the_daemon_is_found() -> None:
    sim = UnitSim.of(service("Type=forking\nPIDFile=/run/d.pid\nExecStart=/bin/d")).boot()
    assert sim.state is S.RUNNING
    sim.main_pid_answer = 4242
    sim.exit_main(0)
    assert sim.of_type(ev.FindMainPid) == [ev.FindMainPid(None, "/run/d.pid")]
    assert sim.state is S.ACTIVE and sim.model.main_pid == 4242
    assert "exited" not in " ".join(sim.logs())  # the parent's exit 0 is the norm
    sim.main_pid_answer = None  # its PID file names the dead daemon: no live process
    sim.clear().exit_main(signal=signal.SIGKILL)  # the daemon dies later
    assert sim.logs()[0] == "a.service: exited (signal=SIGKILL)"
    assert sim.state is S.FAILED and sim.model.result is Result.SIGNAL


def test_forking_parent_failure_and_missing_pidfile() -> None:
    sim = UnitSim.of(service("Type=forking\nExecStart=/bin/d")).boot().exit_main(1)
    assert sim.state is S.FAILED and sim.model.result is Result.EXIT_CODE
    sim = UnitSim.of(service("Type=forking\nPIDFile=/run/d.pid\nExecStart=/bin/d")).boot()
    sim.exit_main(0)
    assert sim.state is S.FAILED and sim.model.result is Result.PROTOCOL


def test_forking_without_pidfile_and_without_a_daemon_finishes() -> None:
    sim = UnitSim.of(service("Type=forking\nExecStart=/bin/d")).boot()
    sim.group_empty = False
    sim.exit_main(0)
    assert sim.state is S.ACTIVE and sim.model.main_pid is None  # watched as a group
    sim = UnitSim.of(service("Type=forking\nExecStart=/bin/d")).boot().exit_main(0)
    assert sim.states()[-2:] == [S.STOPPING, S.EXITED]


# ---- pre/post commands -------------------------------------------------------------------


def test_pre_and_post_commands_run_in_order_around_the_main_process() -> None:
    text = service(
        "Type=notify\nExecStartPre=/bin/p1\nExecStartPre=-/bin/p2\nExecStart=/bin/app\n"
        "ExecStartPost=/bin/q1"
    )
    sim = UnitSim.of(text).boot()
    assert sim.state is S.STARTING and sim.model.phase is Phase.PRE
    sim.exit_control(0).exit_control(1)  # p2 fails, but "-" excuses it
    assert sim.state is S.RUNNING
    sim.feed(ev.NotifyReady())
    assert sim.state is S.RUNNING and sim.model.phase is Phase.POST  # ready after q1 only
    sim.exit_control(0)
    assert sim.state is S.ACTIVE
    assert sim.roles() == ["ExecStartPre[0]", "ExecStartPre[1]", "ExecStart[0]", "ExecStartPost[0]"]


def test_a_failing_pre_command_fails_the_unit_before_the_main_process() -> None:
    text = service("ExecStartPre=/bin/check\nExecStart=/bin/app\nExecStopPost=/bin/cleanup")
    sim = UnitSim.of(text).boot().exit_control(2)
    assert sim.roles() == ["ExecStartPre[0]", "ExecStopPost[0]"]  # ExecStopPost= still runs
    sim.exit_control(0)
    assert sim.state is S.FAILED and sim.model.result is Result.EXIT_CODE
    assert "a.service: ExecStartPre= command failed (status=2)" in sim.logs()


# ---- start failures ----------------------------------------------------------------------


def test_an_exec_failure_is_an_exit_code_failure_with_the_shell_status() -> None:
    sim = UnitSim.of(service("ExecStart=/missing\nExitContainerOnFailure=yes"))
    sim.spawn_failure = lambda role, index: 127
    sim.boot()
    assert sim.state is S.FAILED and sim.model.result is Result.EXIT_CODE
    assert sim.of_type(ev.RequestContainerExit) == [ev.RequestContainerExit(127, Result.EXIT_CODE)]
    assert not [line for line in sim.logs() if "started" in line]


def test_a_resources_failure_is_not_excused_by_a_dash() -> None:
    sim = UnitSim.of(service("ExecStartPre=-/bin/x\nExecStart=/bin/app"))
    sim.spawn_failure = lambda role, index: None  # e.g. EnvironmentFile= missing
    sim.boot()
    assert sim.state is S.FAILED and sim.model.result is Result.RESOURCES


def test_start_timeout_kills_and_fails_with_timeout() -> None:
    text = service("Type=notify\nExecStart=/bin/app\nTimeoutStartSec=2\nTimeoutStopSec=1")
    sim = UnitSim.of(text).boot().advance(2 * SEC)
    assert sim.logs()[-1] == "a.service: start-up timed out after 2s"
    assert sim.of_type(ev.SignalUnit) == [ev.SignalUnit(signal.SIGTERM)]
    assert sim.state is S.STOPPING
    sim.exit_main(signal=signal.SIGTERM)
    assert sim.state is S.FAILED and sim.model.result is Result.TIMEOUT
    assert sim.logs()[-1] == "a.service: failed (timeout)"


def test_extend_timeout_moves_the_start_deadline() -> None:
    text = service("Type=notify\nExecStart=/bin/app\nTimeoutStartSec=2")
    sim = UnitSim.of(text).boot().advance(SEC)
    sim.feed(ev.NotifyExtendTimeout(5 * SEC))  # now + 5 s is later than the 1 s left
    sim.advance(3 * SEC)
    assert sim.state is S.RUNNING
    sim.feed(ev.NotifyExtendTimeout(100))  # earlier than the deadline: no change
    sim.advance(1 * SEC)
    assert sim.state is S.RUNNING
    sim.advance(1 * SEC)
    assert sim.state is S.STOPPING and sim.model.result is Result.TIMEOUT


def test_notify_service_exiting_before_ready_is_a_protocol_failure() -> None:
    sim = UnitSim.of(service("Type=notify\nExecStart=/bin/app")).boot().exit_main(0)
    assert sim.state is S.FAILED and sim.model.result is Result.PROTOCOL


def test_dependency_failure_and_skipped_condition() -> None:
    sim = UnitSim.of(service("ExecStart=/bin/app")).feed(ev.StartRequested())
    sim.feed(ev.DependencyFailed(("db.service",)))
    assert sim.state is S.FAILED and sim.model.result is Result.DEPENDENCY
    assert not sim.spawned
    assert sim.logs() == ["a.service: failed (dependency)"]
    sim = UnitSim.of(service("ExecStart=/bin/app"))
    sim.unmet = "ConditionPathExists=/etc/x"
    sim.boot()
    assert sim.state is S.CONDITION_SKIPPED
    assert sim.logs() == ["a.service: skipped (ConditionPathExists=/etc/x not met)"]
    assert settled(sim) == [(Outcome.SKIPPED, Result.SUCCESS)]
    assert not sim.of_type(ev.RequestOnFailure)


# ---- results of a running service ending -------------------------------------------------


@pytest.mark.parametrize(
    ("code", "signo", "success", "state", "result"),
    [
        (0, None, "", S.EXITED, Result.SUCCESS),
        (1, None, "", S.FAILED, Result.EXIT_CODE),
        (3, None, "SuccessExitStatus=3", S.EXITED, Result.SUCCESS),
        (None, signal.SIGTERM, "", S.EXITED, Result.SUCCESS),
        (None, signal.SIGKILL, "", S.FAILED, Result.SIGNAL),
        (None, signal.SIGUSR1, "SuccessExitStatus=SIGUSR1", S.EXITED, Result.SUCCESS),
    ],
)
def test_main_exit_results(
    code: int | None, signo: int | None, success: str, state: State, result: Result
) -> None:
    sim = UnitSim.of(service(f"ExecStart=/bin/app\n{success}")).boot()
    sim.exit_main(code, signo)
    assert sim.state is state and sim.model.result is result


def test_a_dead_main_process_still_gets_execstop_and_leftovers_killed() -> None:
    text = service("ExecStart=/bin/app\nExecStop=/bin/stop\nExecStopPost=/bin/post")
    sim = UnitSim.of(text).boot()
    sim.group_empty = False
    sim.exit_main(1)
    assert sim.roles()[-1] == "ExecStop[0]"
    sim.exit_control(0)
    assert sim.of_type(ev.SignalUnit) == [ev.SignalUnit(signal.SIGTERM)]
    assert any(k is TimerKind.POLL for k, _ in sim.timers)  # leftovers: look again soon
    sim.group_empty = True
    sim.advance(30_000)
    assert sim.roles()[-1] == "ExecStopPost[0]"
    sim.exit_control(0)
    assert sim.state is S.FAILED


# ---- restart and start limits ------------------------------------------------------------


def test_restart_on_failure_until_the_start_limit() -> None:
    text = service(
        "ExecStart=/bin/crash\nRestart=on-failure\nRestartSec=100ms",
        "StartLimitBurst=3\nStartLimitIntervalSec=10s\nOnFailure=fix.service",
    )
    sim = UnitSim.of(text).boot()
    for _ in range(3):
        assert sim.state is S.ACTIVE
        sim.exit_main(1)
        assert sim.state is S.AUTO_RESTART
        assert sim.logs()[-1] == "a.service: restarting in 0.1s"
        sim.advance(100_000)
    starts = [line for line in sim.logs() if "started" in line]
    assert len(starts) == 3  # systemd counts every start: 3 in the window, the 4th refused
    assert sim.state is S.FAILED and sim.model.result is Result.START_LIMIT_HIT
    assert sim.logs()[-1] == "a.service: failed (start-limit-hit)"
    assert sim.of_type(ev.RequestOnFailure) == [ev.RequestOnFailure(Result.START_LIMIT_HIT)]
    # the boot's start request was answered once, by the first readiness
    assert settled(sim) == [(Outcome.READY, Result.SUCCESS)]


def test_the_start_limit_window_reopens() -> None:
    text = service(
        "ExecStart=/bin/crash\nRestart=always\nRestartSec=4s",
        "StartLimitBurst=2\nStartLimitIntervalSec=10s",
    )
    sim = UnitSim.of(text).boot()  # attempt 1 at t=0
    sim.exit_main(1).advance(4 * SEC)  # attempt 2 at t=4
    sim.exit_main(1).advance(4 * SEC)  # t=8: refused
    assert sim.state is S.FAILED
    text = text.replace("RestartSec=4s", "RestartSec=6s")
    sim = UnitSim.of(text).boot()  # t=0
    sim.exit_main(1).advance(6 * SEC)  # t=6
    sim.exit_main(1).advance(6 * SEC)  # t=12: a new window
    assert sim.state is S.ACTIVE


def test_restart_no_and_clean_exit_under_on_failure() -> None:
    sim = UnitSim.of(service("ExecStart=/bin/app\nRestart=on-failure")).boot().exit_main(0)
    assert sim.state is S.EXITED
    sim = UnitSim.of(service("ExecStart=/bin/app")).boot().exit_main(2)
    assert sim.state is S.FAILED


def test_restart_rechecks_conditions() -> None:
    sim = UnitSim.of(service("ExecStart=/bin/app\nRestart=always\nRestartSec=1s")).boot()
    sim.exit_main(1)
    sim.unmet = "ConditionPathExists=/x"
    sim.advance(SEC)
    assert sim.state is S.CONDITION_SKIPPED


def test_exit_container_status_is_the_exit_code_or_1() -> None:
    sim = UnitSim.of(service("ExecStart=/bin/app\nExitContainerOnFailure=yes")).boot()
    sim.exit_main(42)
    assert sim.of_type(ev.RequestContainerExit) == [ev.RequestContainerExit(42, Result.EXIT_CODE)]
    sim = UnitSim.of(service("ExecStart=/bin/app\nExitContainerOnFailure=yes")).boot()
    sim.exit_main(signal=signal.SIGSEGV)
    assert sim.of_type(ev.RequestContainerExit) == [ev.RequestContainerExit(1, Result.SIGNAL)]


# ---- watchdog ----------------------------------------------------------------------------


def test_watchdog_expiry_aborts_and_restarts() -> None:
    text = service(
        "Type=notify\nExecStart=/bin/app\nWatchdogSec=1s\nRestart=on-failure\nRestartSec=0"
    )
    sim = UnitSim.of(text).boot().feed(ev.NotifyReady())
    for _ in range(3):
        sim.advance(900_000).feed(ev.NotifyWatchdog())  # kept alive
    assert sim.state is S.ACTIVE
    sim.advance(SEC)
    assert sim.of_type(ev.SignalUnit) == [ev.SignalUnit(signal.SIGABRT)]
    assert sim.state is S.STOPPING
    sim.exit_main(signal=signal.SIGABRT)
    assert sim.model.result is Result.WATCHDOG  # not "core-dump": the first cause wins
    assert sim.state is S.AUTO_RESTART


def test_watchdog_trigger_fails_at_once() -> None:
    sim = UnitSim.of(service("Type=notify\nExecStart=/bin/app")).boot().feed(ev.NotifyReady())
    sim.feed(ev.NotifyWatchdog(trigger=True)).exit_main(signal=signal.SIGABRT)
    assert sim.state is S.FAILED and sim.model.result is Result.WATCHDOG


# ---- stopping ----------------------------------------------------------------------------


def test_stop_sequence_of_an_active_service() -> None:
    text = service("ExecStart=/bin/app\nExecStop=/bin/stop\nExecStopPost=/bin/post")
    sim = UnitSim.of(text).boot().clear().feed(ev.StopRequested())
    assert sim.logs() == ["a.service: stopping"]
    assert sim.roles()[-1] == "ExecStop[0]"
    sim.exit_control(0)  # ExecStop done, main still up: KillSignal to the unit
    assert sim.of_type(ev.SignalUnit) == [ev.SignalUnit(signal.SIGTERM)]
    sim.exit_main(signal=signal.SIGTERM)
    assert sim.roles()[-1] == "ExecStopPost[0]"
    sim.exit_control(0)
    assert sim.state is S.INACTIVE
    assert sim.logs()[-1] == "a.service: stopped"
    assert len(sim.of_type(ev.ReportStopped)) == 1
    assert not sim.of_type(ev.RequestOnFailure)


def test_kill_signal_and_sigkill_after_the_stop_timeout_is_not_a_failure() -> None:
    text = service("ExecStart=/bin/app\nKillSignal=SIGINT\nTimeoutStopSec=3\nRestart=always")
    sim = UnitSim.of(text).boot().feed(ev.StopRequested())
    assert sim.of_type(ev.SignalUnit) == [ev.SignalUnit(signal.SIGINT)]
    sim.advance(3 * SEC)
    assert sim.logs()[-1] == "a.service: did not stop within 3s; sending SIGKILL"
    assert sim.of_type(ev.KillUnit) == [ev.KillUnit()]
    sim.exit_main(signal=signal.SIGKILL)
    assert sim.state is S.INACTIVE  # stopped by cinit: neither failed nor restarted
    assert sim.states()[-1] is S.INACTIVE and S.AUTO_RESTART not in sim.states()


def test_stop_during_start_skips_execstop() -> None:
    sim = UnitSim.of(service("Type=notify\nExecStart=/bin/app\nExecStop=/bin/stop")).boot()
    sim.feed(ev.StopRequested()).exit_main(signal=signal.SIGTERM)
    assert "ExecStop[0]" not in sim.roles()
    assert sim.state is S.INACTIVE
    assert settled(sim) == [(Outcome.STOPPED, Result.SUCCESS)]


@pytest.mark.parametrize("state_of", ["never", "waiting", "failed", "skipped"])
def test_stop_of_a_unit_without_processes_answers_at_once(state_of: str) -> None:
    sim = UnitSim.of(service("ExecStart=/bin/app"))
    if state_of == "waiting":
        sim.feed(ev.StartRequested())
    elif state_of == "failed":
        sim.feed(ev.StartRequested(), ev.DependencyFailed(("x.service",)))
    elif state_of == "skipped":
        sim.unmet = "ConditionUser=!root"
        sim.boot()
    sim.clear().feed(ev.StopRequested())
    assert sim.of_type(ev.ReportStopped) == [ev.ReportStopped()]
    assert not sim.of_type(ev.Spawn) and not sim.of_type(ev.SignalUnit)
    assert sim.state in (S.INACTIVE, S.FAILED, S.CONDITION_SKIPPED)


def test_stop_cancels_a_pending_restart() -> None:
    sim = UnitSim.of(service("ExecStart=/bin/app\nRestart=always\nRestartSec=5s")).boot()
    sim.exit_main(1).feed(ev.StopRequested())
    assert sim.state is S.INACTIVE and not sim.timers
    sim.advance(10 * SEC)
    assert sim.state is S.INACTIVE


def test_exited_oneshot_is_torn_down_when_stopped() -> None:
    sim = UnitSim.of(service("Type=oneshot\nExecStart=/bin/setup\nExecStopPost=/bin/x")).boot()
    sim.exit_main(0)
    sim.group_empty = False  # a daemon it left behind
    sim.feed(ev.StopRequested())
    assert sim.of_type(ev.SignalUnit) == [ev.SignalUnit(signal.SIGTERM)]
    sim.group_empty = True
    sim.advance(50_000)
    sim.exit_control(0)
    assert sim.state is S.INACTIVE


def test_kill_request_skips_execstoppost_and_reports() -> None:
    text = service("ExecStart=/bin/app\nExecStop=/bin/stop\nExecStopPost=/bin/post")
    sim = UnitSim.of(text).boot().feed(ev.StopRequested())  # ExecStop runs...
    sim.feed(ev.KillRequested())
    assert sim.of_type(ev.KillUnit) == [ev.KillUnit()]
    sim.exit_control(signal=signal.SIGKILL).exit_main(signal=signal.SIGKILL)
    assert sim.state is S.INACTIVE
    assert "ExecStopPost[0]" not in sim.roles()
    assert len(sim.of_type(ev.ReportStopped)) == 1


def test_stopping_1_then_exit() -> None:
    sim = UnitSim.of(service("Type=notify\nExecStart=/bin/app")).boot().feed(ev.NotifyReady())
    sim.feed(ev.NotifyStopping())
    assert sim.state is S.STOPPING and sim.logs()[-1] == "a.service: stopping"
    sim.exit_main(0)
    assert sim.state is S.EXITED


# ---- main pid changes, forwarding, stale timers ------------------------------------------


def test_mainpid_switches_the_main_process() -> None:
    sim = UnitSim.of(service("Type=notify\nExecStart=/bin/wrapper")).boot()
    sim.main_pid_answer = 777
    sim.feed(ev.NotifyMainPid(777), ev.NotifyReady())
    assert sim.model.main_pid == 777 and sim.state is S.ACTIVE
    sim.exit(100, 0)  # the wrapper leaving is not the service ending
    assert sim.state is S.ACTIVE
    sim.exit(777, 1)
    assert sim.state is S.FAILED


def test_mainpid_adopted_after_the_old_main_exits() -> None:
    sim = UnitSim.of(service("Type=notify\nExecStart=/bin/wrapper")).boot()
    sim.feed(ev.NotifyMainPid(777))  # not adoptable yet (a grandchild)
    assert sim.model.main_pid == 100 and sim.model.main_pid_hint == 777
    sim.main_pid_answer = 777
    sim.exit(100, 0)
    assert sim.model.main_pid == 777 and sim.state is S.RUNNING
    sim.feed(ev.NotifyReady())
    assert sim.state is S.ACTIVE


def test_mainpid_that_cannot_be_adopted_leaves_the_old_exit_standing() -> None:
    sim = UnitSim.of(service("Type=notify\nExecStart=/bin/wrapper")).boot()
    sim.feed(ev.NotifyReady(), ev.NotifyMainPid(777))
    sim.exit(100, 3)  # the successor is gone too: the wrapper's exit is the service's
    assert sim.state is S.FAILED and sim.model.result is Result.EXIT_CODE
    assert sim.model.failure_code == 3


def test_a_transition_tells_only_the_exit_that_caused_it() -> None:
    # Issue 13 (14a): the signal of a stop showed up again on the next start's `waiting`.
    sim = UnitSim.of(service("ExecStart=/bin/app\nExecStopPost=/bin/cleanup")).boot()
    sim.feed(ev.StopRequested()).exit_main(signal=signal.SIGTERM).exit_control(0)
    told = {t.new: (t.code, t.signal) for t in sim.of_type(ev.Transition)}
    assert told[S.INACTIVE] == (None, signal.SIGTERM)
    sim.clear().feed(ev.StartRequested())
    [waiting] = sim.of_type(ev.Transition)
    assert waiting.new is S.WAITING and (waiting.code, waiting.signal) == (None, None)
    sim.feed(ev.DependenciesSettled()).exit_main(3).exit_control(0)  # a failed run ...
    assert sim.state is S.FAILED and sim.of_type(ev.Transition)[-1].code == 3
    sim.clear().boot()  # ... and a new one: nothing of the old exit
    assert [(t.code, t.signal) for t in sim.of_type(ev.Transition)] == [(None, None)] * 4


def test_the_exit_of_a_replaced_main_process_is_not_told_later() -> None:
    sim = UnitSim.of(service("Type=notify\nExecStart=/bin/wrapper")).boot()
    sim.feed(ev.NotifyMainPid(777))
    sim.main_pid_answer = 777
    sim.exit(100, 0).feed(ev.NotifyReady())  # the successor takes over: the run goes on
    sim.clear().feed(ev.StopRequested())
    [stopping] = sim.of_type(ev.Transition)
    assert (stopping.code, stopping.signal) == (None, None)
    sim.exit(777, signal=signal.SIGTERM)
    last = sim.of_type(ev.Transition)[-1]
    assert (last.new, last.code, last.signal) == (S.INACTIVE, None, signal.SIGTERM)


def test_forwarded_signal_goes_to_the_main_process() -> None:
    sim = UnitSim.of(service("ExecStart=/bin/app")).boot().feed(ev.SignalRequested(1))
    assert sim.of_type(ev.SignalMain) == [ev.SignalMain(100, 1)]


def test_stale_timer_messages_are_ignored() -> None:
    sim = UnitSim.of(service("Type=notify\nExecStart=/bin/app\nTimeoutStartSec=1")).boot()
    (token,) = [t for k, t in sim.timers if k is TimerKind.START]
    sim.feed(ev.NotifyReady())
    sim.feed(ev.TimerFired(TimerKind.START, token))  # delivered although cancelled
    assert sim.state is S.ACTIVE


def test_step_is_pure() -> None:
    sim = UnitSim.of(service("ExecStart=/bin/app"))
    before = sim.model
    first = step(before, ev.StartRequested(), 0)
    second = step(before, ev.StartRequested(), 0)
    assert first == second
    assert before.state is S.INACTIVE


def test_notify_events_order() -> None:
    fields = {"READY": "1", "MAINPID": "12", "STATUS": "ok", "STOPPING": "1", "WATCHDOG": "1"}
    assert ev.notify_events(fields) == [
        ev.NotifyMainPid(12),
        ev.NotifyStatus("ok"),
        ev.NotifyWatchdog(),
        ev.NotifyReady(),
        ev.NotifyStopping(),
    ]
    assert ev.notify_events({"MAINPID": "x", "READY": "0"}) == []


def test_role_enum_names_the_directives() -> None:
    assert [r.value for r in Role] == [
        "ExecStartPre",
        "ExecStart",
        "ExecStartPost",
        "ExecStop",
        "ExecStopPost",
        "ExecReload",
    ]


# ---- targets ------------------------------------------------------------------------------


def test_a_target_is_reached_with_no_process_and_stops_without_one() -> None:
    sim = UnitSim.of("[Unit]\nDescription=group\n", name="app.target").boot()
    assert sim.states() == [S.WAITING, S.STARTING, S.ACTIVE]
    assert not sim.spawned and not sim.timers
    assert sim.of_type(ev.Transition)[-1].reason == "target reached"
    assert settled(sim) == [(Outcome.READY, Result.SUCCESS)]
    sim.clear().feed(ev.StopRequested())
    assert sim.state is S.INACTIVE and not sim.spawned
    # Stopped at once: the (empty) unit is found empty, no timer is left waiting.
    assert len(sim.of_type(ev.ReportStopped)) == 1 and not sim.timers


def test_a_target_with_an_unmet_condition_is_skipped() -> None:
    sim = UnitSim.of("[Unit]\nConditionPathExists=/nope\n", name="t.target")
    sim.unmet = "ConditionPathExists=/nope"
    sim.boot()
    assert sim.state is S.CONDITION_SKIPPED
    assert settled(sim) == [(Outcome.SKIPPED, Result.SUCCESS)]


def test_reset_failed_forgets_the_failure_and_the_start_limit() -> None:
    """systemctl reset-failed (issue 16): failed -> inactive, one event; the start limit
    that failed it lets the next start through; any other state ignores it."""
    text = service(
        "ExecStart=/bin/crash\nRestart=on-failure\nRestartSec=100ms",
        "StartLimitBurst=1\nStartLimitIntervalSec=1h",
    )
    sim = UnitSim.of(text).boot()
    sim.exit_main(1).advance(100_000)
    assert sim.state is S.FAILED and sim.model.result is Result.START_LIMIT_HIT
    sim.clear().feed(ev.ResetFailed())
    assert sim.state is S.INACTIVE and sim.states() == [S.INACTIVE]
    sim.feed(ev.StartRequested(), ev.DependenciesSettled())
    assert sim.state is S.ACTIVE  # the limit was forgotten: the start goes ahead
    sim.clear().feed(ev.ResetFailed())
    assert sim.state is S.ACTIVE and sim.actions == []


def test_status_text_is_an_event_when_it_changes() -> None:
    sim = UnitSim.of(service("Type=notify\nExecStart=/bin/app")).boot().clear()
    sim.feed(ev.NotifyStatus("warming up"), ev.NotifyStatus("warming up"))
    notices = sim.of_type(ev.Notice)
    assert notices == [ev.Notice("a.service", "status-text", {"text": "warming up"})]


@pytest.mark.parametrize(
    "body",
    [
        "Type=oneshot\nExecStart=/bin/a\nExecStart=/bin/b",
        "ExecStartPre=/bin/check\nExecStart=/bin/app",
        "Type=oneshot\nExecStartPre=-/bin/pre\nExecStartPre=/bin/pre2\nExecStart=/bin/a",
        "Type=notify\nExecStart=/bin/d\nExecStartPost=/bin/post",
    ],
)
def test_first_command_is_what_a_start_spawns_first(body: str) -> None:
    """`first_command` (what a timer readies ahead) names the machine's first Spawn."""
    from cinit.machines.unit_start import first_command

    sim = UnitSim.of(service(body)).boot()
    assert sim.model.unit.service is not None
    first = first_command(sim.model.unit.service)
    expected = (sim.spawned[0][0], sim.spawned[0][1]) if sim.spawned else None
    assert first == expected
