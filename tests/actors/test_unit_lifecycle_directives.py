"""The lifecycle directives of issue 15 in the unit machine, pure (tests/actors/unit_sim.py).

KillMode=, SendSIGHUP=, SendSIGKILL=, FinalKillSignal=, TimeoutSec=, the restart exit
statuses, SuccessExitStatus=, Assert*=, NotifyAccess=, PIDFile= on a non-forking type and
ExecReload= in the model. The same behaviours on real processes: tests/e2e/test_e2e_lifecycle.py.
"""

from __future__ import annotations

import signal

import pytest
from unit_sim import SEC, UnitSim, make_unit

from cinit.machines import unit_events as ev
from cinit.machines.restart import Result, should_restart
from cinit.machines.unit_model import Outcome, Role, State, role_commands
from cinit.units.model import ExitStatusSet, RestartPolicy

S = State


def service(body: str, unit: str = "") -> str:
    return f"[Unit]\n{unit}\n[Service]\n{body}\n"


def settled(sim: UnitSim) -> list[tuple[Outcome, Result]]:
    return [(a.outcome, a.result) for a in sim.of_type(ev.ReportSettled)]


def signals(sim: UnitSim) -> list[tuple[str, int]]:
    """Every signal action, as ("unit", signo), ("main", signo) or ("kill", 9)."""
    found: list[tuple[str, int]] = []
    for action in sim.actions:
        if isinstance(action, ev.SignalUnit):
            found.append(("unit", action.signo))
        elif isinstance(action, ev.SignalMain):
            found.append(("main", action.signo))
        elif isinstance(action, ev.KillUnit):
            found.append(("kill", signal.SIGKILL))
    return found


def stop(sim: UnitSim) -> UnitSim:
    return sim.clear().feed(ev.StopRequested())


# ---- KillMode=, SendSIGHUP=, SendSIGKILL=, FinalKillSignal= ---------------------------------


def test_control_group_signals_the_whole_unit_and_waits_until_it_is_empty() -> None:
    sim = UnitSim.of(service("ExecStart=/bin/app")).boot()
    sim.group_empty = False
    stop(sim).exit_main(signal=signal.SIGTERM)
    assert signals(sim) == [("unit", signal.SIGTERM)]
    assert sim.state is S.STOPPING  # a process of the unit is left
    sim.group_empty = True
    sim.advance(SEC)  # the poll looks again
    assert sim.state is S.INACTIVE


def test_kill_mode_process_signals_the_main_process_only_and_leaves_the_rest() -> None:
    sim = UnitSim.of(service("KillMode=process\nExecStart=/bin/app")).boot()
    sim.group_empty = False  # a child of the main process lives on
    stop(sim)
    assert signals(sim) == [("main", signal.SIGTERM)]
    sim.exit_main(signal=signal.SIGTERM)
    assert sim.state is S.INACTIVE  # not waiting for the child
    assert not sim.of_type(ev.CheckEmpty)


def test_kill_mode_mixed_terms_the_main_process_then_kills_the_rest() -> None:
    sim = UnitSim.of(service("KillMode=mixed\nExecStart=/bin/app")).boot()
    stop(sim)
    assert signals(sim) == [("main", signal.SIGTERM)]
    sim.exit_main(signal=signal.SIGTERM)
    assert signals(sim) == [("main", signal.SIGTERM), ("kill", signal.SIGKILL)]
    assert sim.state is S.INACTIVE


def test_kill_mode_none_signals_nothing_and_forgets_the_processes() -> None:
    sim = UnitSim.of(service("KillMode=none\nExecStart=/bin/app")).boot()
    stop(sim)
    assert signals(sim) == []
    assert sim.state is S.INACTIVE and sim.model.main_pid is None


def test_kill_mode_none_still_runs_exec_stop() -> None:
    sim = UnitSim.of(service("KillMode=none\nExecStart=/bin/app\nExecStop=/bin/halt")).boot()
    stop(sim)
    assert sim.roles() == ["ExecStart[0]", "ExecStop[0]"]
    sim.exit_control(0)
    assert signals(sim) == [] and sim.state is S.INACTIVE


def test_send_sighup_follows_the_kill_signal() -> None:
    sim = UnitSim.of(service("SendSIGHUP=yes\nExecStart=/bin/app")).boot()
    stop(sim)
    assert signals(sim) == [("unit", signal.SIGTERM), ("unit", signal.SIGHUP)]


def test_send_sighup_with_kill_mode_process_goes_to_the_main_process() -> None:
    sim = UnitSim.of(service("SendSIGHUP=yes\nKillMode=process\nExecStart=/bin/app")).boot()
    stop(sim)
    assert signals(sim) == [("main", signal.SIGTERM), ("main", signal.SIGHUP)]


def test_send_sigkill_no_gives_up_after_the_stop_timeout() -> None:
    sim = UnitSim.of(service("SendSIGKILL=no\nTimeoutStopSec=2\nExecStart=/bin/app")).boot()
    stop(sim).advance(2 * SEC)
    assert signals(sim) == [("unit", signal.SIGTERM)]
    assert sim.state is S.INACTIVE
    assert "SendSIGKILL=no: leaving its processes" in sim.logs()[-2]


def test_final_kill_signal_replaces_sigkill() -> None:
    sim = UnitSim.of(service("FinalKillSignal=SIGQUIT\nTimeoutStopSec=1\nExecStart=/bin/app"))
    stop(sim.boot()).advance(SEC)
    assert signals(sim) == [("unit", signal.SIGTERM), ("unit", signal.SIGQUIT)]
    assert "a.service: did not stop within 1s; sending SIGQUIT" in sim.logs()


def test_the_global_kill_kills_everything_whatever_the_kill_mode() -> None:
    sim = UnitSim.of(service("KillMode=process\nExecStart=/bin/app")).boot()
    sim.clear().feed(ev.KillRequested())
    assert signals(sim) == [("kill", signal.SIGKILL)]


def test_restart_kill_signal_is_for_a_restarts_stop_only() -> None:
    text = service("KillSignal=SIGINT\nRestartKillSignal=SIGUSR2\nExecStart=/bin/app")
    sim = UnitSim.of(text).boot()
    sim.clear().feed(ev.StopRequested(restart=True)).exit_main(signal=signal.SIGUSR2)
    assert signals(sim) == [("unit", signal.SIGUSR2)]
    sim.boot()
    stop(sim)
    assert signals(sim) == [("unit", signal.SIGINT)]


def test_timeout_sec_sets_both_timeouts_and_the_specific_ones_win() -> None:
    both = make_unit(service("TimeoutSec=7\nExecStart=/bin/app")).service
    assert both is not None
    assert (both.timeout_start_sec, both.timeout_stop_sec) == (7.0, 7.0)
    text = service("TimeoutStopSec=3\nTimeoutSec=7\nType=oneshot\nExecStart=/bin/app")
    mixed = make_unit(text).service
    assert mixed is not None
    assert (mixed.timeout_start_sec, mixed.timeout_stop_sec) == (7.0, 3.0)


# ---- exit statuses ---------------------------------------------------------------------------


def test_restart_prevent_exit_status_wins_over_restart_always() -> None:
    text = service("Restart=always\nRestartPreventExitStatus=3 SIGUSR1\nExecStart=/bin/app")
    sim = UnitSim.of(text).boot().exit_main(3)
    assert sim.state is S.FAILED and sim.model.result is Result.EXIT_CODE
    sim = UnitSim.of(text).boot().exit_main(signal=signal.SIGUSR1)
    assert sim.state is S.FAILED and sim.model.result is Result.SIGNAL
    sim = UnitSim.of(text).boot().exit_main(4)
    assert sim.state is S.AUTO_RESTART


def test_restart_force_exit_status_restarts_under_restart_no() -> None:
    text = service("RestartForceExitStatus=4\nExecStart=/bin/app")
    sim = UnitSim.of(text).boot().exit_main(4)
    assert sim.state is S.AUTO_RESTART
    sim = UnitSim.of(text).boot().exit_main(5)
    assert sim.state is S.FAILED


def test_should_restart_checks_prevent_before_force_and_never_restarts_a_limit_hit() -> None:
    both = ExitStatusSet(codes=frozenset({7}))
    no = RestartPolicy.NO
    assert not should_restart(no, Result.EXIT_CODE, 7, None, prevent=both, force=both)
    assert should_restart(no, Result.EXIT_CODE, 7, None, force=both)
    assert not should_restart(RestartPolicy.ALWAYS, Result.START_LIMIT_HIT, 7, None, force=both)
    assert not should_restart(RestartPolicy.ALWAYS, Result.ASSERT)


def test_success_exit_status_makes_an_exit_clean() -> None:
    sim = UnitSim.of(service("SuccessExitStatus=42\nExecStart=/bin/app")).boot().exit_main(42)
    assert sim.state is S.EXITED and sim.model.result is Result.SUCCESS


# ---- Assert*= ------------------------------------------------------------------------------


def test_a_failed_assertion_fails_the_unit_without_starting_it() -> None:
    sim = UnitSim.of(service("ExecStart=/bin/app", unit="AssertPathExists=/nope"))
    sim.failed_assert = "AssertPathExists=/nope"
    sim.boot()
    assert sim.state is S.FAILED and sim.model.result is Result.ASSERT
    assert not sim.spawned
    assert sim.logs() == ["a.service: failed (assert): AssertPathExists=/nope failed"]
    assert settled(sim) == [(Outcome.FAILED, Result.ASSERT)]
    assert sim.of_type(ev.RequestOnFailure) == [ev.RequestOnFailure(Result.ASSERT)]


def test_an_unmet_condition_skips_before_any_assertion() -> None:
    sim = UnitSim.of(service("ExecStart=/bin/app")).feed(ev.StartRequested())
    sim.unmet = "ConditionVirtualization=!container"
    sim.failed_assert = "AssertPathExists=/nope"
    sim.feed(ev.DependenciesSettled())
    assert sim.state is S.CONDITION_SKIPPED


def test_a_requisite_not_active_is_named_in_the_failure() -> None:
    sim = UnitSim.of(service("ExecStart=/bin/app")).feed(ev.StartRequested())
    sim.feed(ev.DependencyFailed(("db.service",), ("off.service",)))
    (failed,) = [t for t in sim.of_type(ev.Transition) if t.new is S.FAILED]
    assert failed.reason == (
        "required unit failed: db.service; Requisite= unit not active: off.service"
    )


# ---- NotifyAccess= -------------------------------------------------------------------------


def notify_from(sender: int | None, in_unit: bool = True) -> ev.NotifyReceived:
    return ev.NotifyReceived(sender, in_unit, {"READY": "1"})


def test_notify_access_main_is_the_default_and_ignores_a_child() -> None:
    sim = UnitSim.of(service("Type=notify\nExecStart=/bin/app")).boot()
    sim.feed(notify_from(999))
    assert sim.state is S.RUNNING
    assert sim.logs()[-1] == "a.service: notification from pid 999 ignored (NotifyAccess=main)"
    sim.feed(notify_from(sim.model.main_pid))
    assert sim.state is S.ACTIVE


def test_notify_access_exec_takes_a_control_process_too() -> None:
    text = "Type=notify\nNotifyAccess=exec\nExecStart=/bin/app\nExecStartPost=/bin/post"
    sim = UnitSim.of(service(text)).boot()
    sim.feed(notify_from(sim.model.main_pid))  # ready: ExecStartPost= runs
    control = sim.model.control_pid
    assert control is not None
    sim.feed(ev.NotifyReceived(control, True, {"STATUS": "from post"}))
    assert sim.model.status_text == "from post"
    sim.feed(ev.NotifyReceived(4242, True, {"STATUS": "stranger"}))
    assert sim.model.status_text == "from post"


def test_notify_access_all_takes_any_process_of_the_unit_only() -> None:
    sim = UnitSim.of(service("Type=notify\nNotifyAccess=all\nExecStart=/bin/app")).boot()
    sim.feed(notify_from(999, in_unit=False))
    assert sim.state is S.RUNNING
    sim.feed(notify_from(999, in_unit=True))
    assert sim.state is S.ACTIVE


def test_notify_access_none_ignores_even_the_main_process() -> None:
    text = "Type=notify\nNotifyAccess=none\nTimeoutStartSec=1\nExecStart=/bin/app"
    sim = UnitSim.of(service(text)).boot()
    sim.feed(notify_from(sim.model.main_pid))
    assert sim.state is S.RUNNING
    sim.advance(SEC)
    assert sim.model.result is Result.TIMEOUT


def test_one_datagram_acts_field_by_field_in_order() -> None:
    sim = UnitSim.of(service("Type=notify\nExecStart=/bin/app")).boot()
    fields = {"STATUS": "up", "READY": "1", "STOPPING": "1"}
    sim.feed(ev.NotifyReceived(sim.model.main_pid, True, fields))
    assert sim.states()[-2:] == [S.ACTIVE, S.STOPPING]
    assert sim.model.status_text == "up"


# ---- PIDFile= on any type, ExecReload= -------------------------------------------------------


def test_pid_file_on_a_simple_service_names_the_next_main_process() -> None:
    sim = UnitSim.of(service("PIDFile=/run/app.pid\nExecStart=/bin/wrapper")).boot()
    assert sim.of_type(ev.FindMainPid) == [ev.FindMainPid(None, "/run/app.pid")]
    assert sim.state is S.ACTIVE and sim.model.main_pid == 100  # no file yet: no change
    sim.main_pid_answer = 4242  # the wrapper wrote its daemon's pid, then exits
    sim.exit_main(0)
    assert sim.state is S.ACTIVE and sim.model.main_pid == 4242
    sim.main_pid_answer = None  # the file names the daemon, which dies
    sim.exit_main(signal=signal.SIGKILL)
    assert sim.state is S.FAILED and sim.model.result is Result.SIGNAL


def test_pid_file_is_not_read_for_a_oneshot() -> None:
    sim = UnitSim.of(service("Type=oneshot\nPIDFile=/run/x.pid\nExecStart=/bin/one")).boot()
    sim.exit_main(0)
    assert sim.state is S.EXITED and not sim.of_type(ev.FindMainPid)


def test_exec_reload_is_in_the_model_with_its_role() -> None:
    unit = make_unit(service("ExecStart=/bin/app\nExecReload=/bin/kill -HUP $MAINPID"))
    assert unit.service is not None
    (reload,) = role_commands(unit.service, Role.RELOAD)
    assert reload.words == ("/bin/kill", "-HUP", "$MAINPID")


@pytest.mark.parametrize(
    "line",
    [
        "KillMode=group",
        "NotifyAccess=some",
        "RestartPreventExitStatus=300",
        "SendSIGKILL=perhaps",
        "FinalKillSignal=SIGNOPE",
    ],
)
def test_bad_values_are_errors_naming_the_directive(line: str) -> None:
    from cinit.units import parse_unit

    _, diagnostics = parse_unit("a.service", service(f"ExecStart=/bin/app\n{line}"), environ={})
    errors = [d.format() for d in diagnostics if d.severity.value == "error"]
    assert len(errors) == 1 and line.split("=")[0] in errors[0], errors
    assert errors[0].startswith("a.service:5: error: [Service] "), errors


def test_guess_main_pid_no_is_passed_to_the_search() -> None:
    text = service("Type=forking\nGuessMainPID=no\nExecStart=/bin/daemon")
    sim = UnitSim.of(text).boot()
    sim.group_empty = False  # the daemon the parent left
    sim.exit_main(0)
    assert sim.of_type(ev.FindMainPid) == [ev.FindMainPid(None, "", guess=False)]
    assert sim.state is S.ACTIVE  # supervised through the unit's processes only


def test_reload_propagation_is_kept_in_the_model() -> None:
    text = service("ExecStart=/bin/app", unit="ReloadPropagatedFrom=pg.service\nPartOf=pg.service")
    unit = make_unit(text)
    assert unit.unit.reload_propagated_from == ("pg.service",)
    assert unit.unit.part_of == ("pg.service",)
