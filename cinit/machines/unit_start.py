"""Bringing a unit up: the start side of a unit's machine.

From the start request through the wait for dependencies, the condition check and the
start limit, ExecStartPre=, the main process and the readiness of its service type, to
ExecStartPost= and `active` (or `exited` for a oneshot).
"""

from __future__ import annotations

from cinit.machines.restart import Result, seconds_to_usec
from cinit.machines.unit_events import (
    CannotStart,
    CheckConditions,
    ConditionChecked,
    DependenciesSettled,
    DependencyFailed,
    FindMainPid,
    Spawned,
    StartRequested,
    TimerFired,
)
from cinit.machines.unit_model import Outcome, Phase, Role, State, TimerKind
from cinit.machines.unit_step import UnitStep
from cinit.machines.unit_stop import enter_failed
from cinit.units.model import ServiceSection, ServiceType, UnitKind

# ---- the request -------------------------------------------------------------------------


def on_start_fresh(step: UnitStep, _event: StartRequested) -> None:
    """Settled: a new run begins with the wait for the units it is ordered after."""
    step.update(
        owes_settled=True,
        stop_requested=False,
        restarting=False,
        killing=False,
        stopping_logged=False,
        result=Result.SUCCESS,
        failure_code=None,
        status_text="",
    )
    step.enter(State.WAITING, "start requested")


def on_start_while_active(step: UnitStep, _event: StartRequested) -> None:
    step.update(owes_settled=True)
    step.settle(Outcome.READY)


def on_start_under_way(step: UnitStep, _event: StartRequested) -> None:
    step.update(owes_settled=True)  # answered when the start under way settles


def on_dependencies_settled(step: UnitStep, _event: DependenciesSettled) -> None:
    if step.model.phase is Phase.NONE:
        check_conditions(step)


def on_dependency_failed(step: UnitStep, event: DependencyFailed) -> None:
    step.record(Result.DEPENDENCY)
    reasons = []
    if event.units:
        reasons.append(f"required unit failed: {', '.join(event.units)}")
    if event.inactive:
        reasons.append(f"Requisite= unit not active: {', '.join(event.inactive)}")
    enter_failed(step, "; ".join(reasons))


def on_cannot_start(step: UnitStep, event: CannotStart) -> None:
    step.disarm(TimerKind.RESTART)
    step.update(result=Result.DEPENDENCY, failure_code=None)
    enter_failed(step, event.reason, log_reason=True)


def on_restart_delay_over(step: UnitStep, _event: TimerFired) -> None:
    check_conditions(step)


def check_conditions(step: UnitStep) -> None:
    step.enter_phase(Phase.CONDITIONS)
    step.actions.append(CheckConditions())


# ---- the start attempt -------------------------------------------------------------------


def on_condition_checked(step: UnitStep, event: ConditionChecked) -> None:
    """Conditions hold (or not); then the start limit decides; then ExecStartPre=."""
    model = step.model
    if model.phase is not Phase.CONDITIONS:
        return
    if event.unmet is not None:
        step.say(f"skipped ({event.unmet} not met)")
        step.enter(State.CONDITION_SKIPPED, f"{event.unmet} not met")
        step.settle(Outcome.SKIPPED)
        return
    if event.failed_assert is not None:
        # systemd: an assertion is a condition whose failure is an error.
        step.update(result=Result.ASSERT, failure_code=None)
        enter_failed(step, f"{event.failed_assert} failed", log_reason=True)
        return
    limit, allowed = model.start_limit.attempt(step.now)
    step.update(start_limit=limit)
    if not allowed:
        step.update(result=Result.START_LIMIT_HIT, failure_code=None)
        enter_failed(step, "start limit hit")
        return
    step.update(
        result=Result.SUCCESS,
        failure_code=None,
        was_ready=False,
        main_exit=None,
        main_pid_hint=None,
        stopping_logged=False,
        last_exit=None,
    )
    step.enter(State.STARTING, "start attempt", Phase.PRE)
    step.arm(TimerKind.START, seconds_to_usec(step.svc.timeout_start_sec))
    if step.svc.exec_start_pre:
        step.spawn(Role.PRE, 0)
    else:
        start_main(step)


def first_command(service: ServiceSection) -> tuple[Role, int] | None:
    """The command a start of `service` spawns first, as `on_condition_checked` and
    `start_main` choose it: ExecStartPre='s, else ExecStart='s; None: neither (a oneshot
    may have none). What `cinit.actors` readies ahead of a timer's elapse."""
    if service.exec_start_pre:
        return Role.PRE, 0
    if service.exec_start:
        return Role.START, 0
    return None


def start_main(step: UnitStep) -> None:
    if not step.svc.exec_start:  # a oneshot may have none
        main_ready(step)
        return
    step.enter_phase(Phase.START)
    step.spawn(Role.START, 0)


def on_spawned(step: UnitStep, event: Spawned) -> None:
    if event.role is not Role.START:
        step.update(control_pid=event.pid)
        return
    svc = step.svc
    step.update(main_pid=event.pid)
    step.say(f"started (pid {event.pid})")
    if step.model.state is State.STARTING:
        step.enter(State.RUNNING, "main process started", Phase.START)
    if event.index == 0:
        step.arm(TimerKind.WATCHDOG, seconds_to_usec(svc.watchdog_sec))
    if svc.type in (ServiceType.SIMPLE, ServiceType.EXEC):
        main_ready(step)


def main_ready(step: UnitStep) -> None:
    """The readiness condition of the service type holds: ExecStartPost=, then active."""
    svc = step.svc
    if svc.exec_start_post and step.model.phase is not Phase.POST:
        step.enter_phase(Phase.POST)
        step.spawn(Role.POST, 0)
        return
    step.disarm(TimerKind.START)
    step.update(was_ready=True)
    step.say("ready")
    if svc.type is not ServiceType.ONESHOT:
        step.enter(State.ACTIVE, "ready")
        step.settle(Outcome.READY)
        if svc.pid_file and svc.type is not ServiceType.FORKING:
            # PIDFile= on any type: once ready, the process it names (if it names a live
            # one of the unit) is the main process; no file yet is no failure.
            step.actions.append(FindMainPid(None, svc.pid_file))
    elif step.model.unit.kind is UnitKind.TARGET:  # a oneshot with no command
        step.enter(State.ACTIVE, "target reached")
        step.settle(Outcome.READY)
    elif svc.remain_after_exit:
        step.enter(State.ACTIVE, "every ExecStart= succeeded; RemainAfterExit=yes")
        step.settle(Outcome.READY)
    else:
        step.update(teardown_pending=True)  # leftover daemons may live on
        step.enter(State.EXITED, "every ExecStart= succeeded")
        step.settle(Outcome.EXITED)
