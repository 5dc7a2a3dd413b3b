"""Taking a unit down, and where a run ends up: the stop side of a unit's machine.

The stop sequence (ExecStop=, KillSignal=, TimeoutStopSec=, SIGKILL, ExecStopPost=), the
stop and kill requests, the timeouts that end a run (start, watchdog, stop), and
`finalize`, which decides where a unit with no process left ends up (inactive, exited,
auto-restart, failed).
"""

from __future__ import annotations

import signal

from cinit.machines.restart import Result, seconds_to_usec, should_restart
from cinit.machines.unit_events import (
    CheckEmpty,
    KillRequested,
    KillUnit,
    RequestContainerExit,
    RequestOnFailure,
    SignalMain,
    SignalUnit,
    StopRequested,
    TimerFired,
)
from cinit.machines.unit_model import Outcome, Phase, Role, State, TimerKind
from cinit.machines.unit_step import UnitStep
from cinit.units.model import KillMode

# ---- requests ----------------------------------------------------------------------------


def _stop_wanted(step: UnitStep, event: StopRequested) -> None:
    step.update(owes_stopped=True, stop_requested=True, restarting=event.restart)


def on_stop_at_rest(step: UnitStep, event: StopRequested) -> None:
    """Nothing runs: the stop is done at once."""
    _stop_wanted(step, event)
    step.report_stopped()


def on_stop_exited(step: UnitStep, event: StopRequested) -> None:
    """A finished oneshot may have left daemons behind: those are taken down."""
    if not step.model.teardown_pending:
        on_stop_at_rest(step, event)
        return
    _stop_wanted(step, event)
    step.log_stopping()
    enter_stop(step, False, "stop requested")


def on_stop_pending_start(step: UnitStep, event: StopRequested) -> None:
    """Waiting, or waiting to restart: nothing runs, the start is called off."""
    _stop_wanted(step, event)
    waiting = step.model.state is State.WAITING
    step.disarm(TimerKind.RESTART)
    step.enter(State.INACTIVE, "start cancelled" if waiting else "stopped")
    step.settle(Outcome.STOPPED)
    step.report_stopped()


def on_stop_up(step: UnitStep, event: StopRequested) -> None:
    _stop_wanted(step, event)
    step.log_stopping()
    # ExecStop= runs for a unit that got ready (a reload under way is cut short).
    up = step.model.state in (State.ACTIVE, State.RELOADING)
    enter_stop(step, up, "stop requested")


def on_stop_stopping(step: UnitStep, event: StopRequested) -> None:
    """Already on its way down; a service winding down by itself is hurried on."""
    _stop_wanted(step, event)
    step.log_stopping()
    if step.model.phase is Phase.NOTIFIED:
        enter_sigterm(step, step.kill_signal())


def on_kill(step: UnitStep, _event: KillRequested) -> None:
    """The global stop timeout ran out: SIGKILL everything of the unit now."""
    step.update(killing=True, owes_stopped=True, stop_requested=True)
    step.log_stopping()
    step.disarm(TimerKind.START, TimerKind.WATCHDOG, TimerKind.RESTART)
    step.enter(State.STOPPING, "killed", Phase.SIGKILL)
    enter_sigkill(step, everything=True)


def on_kill_at_rest(step: UnitStep, event: KillRequested) -> None:
    """Nothing runs but maybe a finished oneshot's daemons: kill those, else just stop."""
    if step.model.teardown_pending:
        on_kill(step, event)
        return
    step.update(killing=True)
    state, stop = step.model.state, StopRequested()
    if state in (State.WAITING, State.AUTO_RESTART):
        on_stop_pending_start(step, stop)
    else:
        on_stop_at_rest(step, stop)


# ---- timers that end a run -----------------------------------------------------------------


def on_start_timeout(step: UnitStep, _event: TimerFired) -> None:
    step.update(start_deadline=None)
    step.say(f"start-up timed out after {step.svc.timeout_start_sec:g}s")
    step.record(Result.TIMEOUT)
    enter_stop(step, False, "start timeout")


def on_watchdog_timeout(step: UnitStep, _event: TimerFired) -> None:
    watchdog_expired(step, f"no WATCHDOG=1 for {step.svc.watchdog_sec:g}s")


def on_poll(step: UnitStep, _event: TimerFired) -> None:
    check_progress(step)


def on_stop_timeout(step: UnitStep, _event: TimerFired) -> None:
    """TimeoutStopSec= ran out in the current stop phase: on to the next, harder one."""
    phase, seconds = step.model.phase, f"{step.svc.timeout_stop_sec:g}s"
    if phase is Phase.STOP:
        step.say(f"ExecStop= did not finish within {seconds}")
        enter_sigterm(step, step.kill_signal())
    elif phase in (Phase.SIGTERM, Phase.NOTIFIED):
        if phase is Phase.NOTIFIED and not step.model.stop_requested:
            step.record(Result.TIMEOUT)
        if not step.svc.send_sigkill:
            step.say(f"did not stop within {seconds}; SendSIGKILL=no: leaving its processes")
            step.update(main_pid=None, control_pid=None)
            enter_stop_post(step)
            return
        final = _signal_name(step.svc.final_kill_signal)
        step.say(f"did not stop within {seconds}; sending {final}")
        enter_sigkill(step)
    elif phase is Phase.SIGKILL:
        step.say(f"processes still left {seconds} after SIGKILL; giving up on them")
        step.update(main_pid=None, control_pid=None)
        enter_stop_post(step)
    elif phase is Phase.STOP_POST:
        step.say(f"ExecStopPost= did not finish within {seconds}")
        step.actions.append(KillUnit())
        step.update(control_pid=None)
        finalize(step)


def watchdog_expired(step: UnitStep, why: str) -> None:
    step.say(f"watchdog timeout ({why}); sending SIGABRT")
    step.record(Result.WATCHDOG)
    step.disarm(TimerKind.START, TimerKind.WATCHDOG)
    step.enter(State.STOPPING, "watchdog timeout", Phase.SIGTERM)
    enter_sigterm(step, signal.SIGABRT)


def _signal_name(signo: int) -> str:
    from cinit.signal_policy import signal_name

    return signal_name(signo)


# ---- the stop sequence ---------------------------------------------------------------------


def enter_stop(step: UnitStep, exec_stop: bool, reason: str) -> None:
    """Begin the stop sequence: ExecStop= (only after ready), then the kill phases."""
    step.disarm(TimerKind.START, TimerKind.WATCHDOG, TimerKind.RELOAD)
    step.update(main_exit=None, main_pid_hint=None)
    if exec_stop and step.svc.exec_stop and not step.model.killing:
        step.enter(State.STOPPING, reason, Phase.STOP)
        step.arm(TimerKind.STOP, step.stop_timeout())
        step.spawn(Role.STOP, 0)
    else:
        step.enter(State.STOPPING, reason, Phase.SIGTERM)
        enter_sigterm(step, step.kill_signal())


def enter_sigterm(step: UnitStep, signo: int) -> None:
    """The first kill phase: `signo` (KillSignal=), and SIGHUP after it with SendSIGHUP=,
    to the processes KillMode= names."""
    step.enter_phase(Phase.SIGTERM)
    step.arm(TimerKind.STOP, step.stop_timeout())
    svc = step.svc
    if svc.kill_mode is KillMode.NONE:
        # systemd: nothing is signalled and nothing waited for; what runs is left alone.
        step.update(main_pid=None, control_pid=None)
        enter_stop_post(step)
        return
    signals = [signo]
    if svc.send_sighup and signo != signal.SIGHUP:
        signals.append(signal.SIGHUP)  # tells shells their terminal is gone
    for number in signals:
        _send(step, number, whole=svc.kill_mode is KillMode.CONTROL_GROUP)
    check_progress(step)


def enter_sigkill(step: UnitStep, everything: bool = False) -> None:
    """The last kill phase: FinalKillSignal= (SIGKILL) to the processes KillMode= names;
    `everything` (the global stop timeout ran out): SIGKILL to every process of the unit."""
    step.enter_phase(Phase.SIGKILL)
    step.arm(TimerKind.STOP, step.stop_timeout())
    final = step.svc.final_kill_signal
    if everything or (final == signal.SIGKILL and step.svc.kill_mode in _GROUP_MODES):
        step.actions.append(KillUnit())
    else:
        _send(step, final, whole=step.svc.kill_mode in _GROUP_MODES)
    check_progress(step)


# KillModes whose last kill phase reaches every process of the unit.
_GROUP_MODES = (KillMode.CONTROL_GROUP, KillMode.MIXED)


def _send(step: UnitStep, signo: int, whole: bool) -> None:
    """`signo` to the whole unit, or only to its main and control processes."""
    if whole:
        step.actions.append(SignalUnit(signo))
        return
    for pid in (step.model.main_pid, step.model.control_pid):
        if pid is not None:
            step.actions.append(SignalMain(pid, signo))


def check_progress(step: UnitStep) -> None:
    """In a kill phase with no main or control process left: is anything else left?

    KillMode=process leaves the rest alone (the stop goes on); KillMode=mixed sends the
    rest the last kill signal now; control-group waits until the unit is empty."""
    model = step.model
    if model.state is not State.STOPPING or model.phase not in (Phase.SIGTERM, Phase.SIGKILL):
        return
    if model.main_pid is None and model.control_pid is None:
        mode = step.svc.kill_mode
        if mode is KillMode.PROCESS and not model.killing:
            enter_stop_post(step)
        elif mode is KillMode.MIXED and model.phase is Phase.SIGTERM:
            enter_sigkill(step)
        else:
            step.actions.append(CheckEmpty())


def enter_stop_post(step: UnitStep) -> None:
    step.disarm(TimerKind.STOP, TimerKind.POLL)
    if step.svc.exec_stop_post and not step.model.killing:
        step.enter_phase(Phase.STOP_POST)
        step.arm(TimerKind.STOP, step.stop_timeout())
        step.spawn(Role.STOP_POST, 0)
    else:
        finalize(step)


# ---- the end of a run ------------------------------------------------------------------------


def finalize(step: UnitStep) -> None:
    """The unit has no process left: decide where it ends up."""
    step.disarm(*TimerKind)
    step.update(main_pid=None, control_pid=None, main_pid_hint=None, teardown_pending=False)
    model, svc = step.model, step.svc
    if model.stop_requested:
        step.say("stopped")
        step.enter(State.INACTIVE, "stopped")
        step.settle(Outcome.STOPPED)
        step.report_stopped()
        return
    result = model.result
    last = model.last_exit  # how the main process ended, if this run's end was its exit
    code, signo = (last.code, last.signal) if last is not None else (None, None)
    prevent, force = svc.restart_prevent_exit_status, svc.restart_force_exit_status
    if should_restart(svc.restart, result, code, signo, prevent=prevent, force=force):
        step.say(f"restarting in {svc.restart_sec:g}s")
        step.enter(State.AUTO_RESTART, f"{result.value}; Restart={svc.restart.value}")
        step.arm(TimerKind.RESTART, seconds_to_usec(svc.restart_sec) or 0)
    elif result is Result.SUCCESS:
        step.enter(State.EXITED, "finished")
        step.settle(Outcome.EXITED)
    else:
        enter_failed(step, result.value)


def enter_failed(step: UnitStep, reason: str, log_reason: bool = False) -> None:
    """Failed for good: answer the start request, run OnFailure=, maybe end the container."""
    model = step.model
    result = model.result
    step.say(f"failed ({result.value})" + (f": {reason}" if log_reason else ""))
    step.enter(State.FAILED, reason)
    step.settle(Outcome.FAILED, result)
    step.actions.append(RequestOnFailure(result))
    if step.svc.exit_container_on_failure:
        code = model.failure_code
        status = code if result is Result.EXIT_CODE and code else 1
        step.actions.append(RequestContainerExit(status, result))
