"""The stopping half of a unit's state machine, and the tools every step uses.

`StepBase` is one step's working copy (the model so far, the actions so far) with the
small operations every transition is made of; `StopSteps` adds everything that takes a
unit down: the stop sequence (ExecStop=, KillSignal=, TimeoutStopSec=, SIGKILL,
ExecStopPost=), timers, the stop and kill requests, and `finalize`, which decides where a
unit that has no process left ends up (inactive, exited, auto-restart, failed).
`cinit.machines.unit_state` builds the starting half on top and owns `step`.
"""

from __future__ import annotations

import signal

from cinit.machines.restart import Result, seconds_to_usec, should_restart
from cinit.machines.unit_events import (
    Action,
    CancelTimer,
    CheckConditions,
    CheckEmpty,
    KillRequested,
    KillUnit,
    Log,
    ReportSettled,
    ReportStopped,
    RequestContainerExit,
    RequestOnFailure,
    SignalUnit,
    Spawn,
    StartTimer,
    StopRequested,
    TimerFired,
    Transition,
)
from cinit.machines.unit_model import Outcome, Phase, Role, State, TimerKind, UnitModel
from cinit.units.model import ExecCommand, ServiceSection

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs the boot path ~4 ms
if TYPE_CHECKING:
    from typing import Any

POLL_USEC = 20_000  # while stopping, how often to look whether the unit's processes are gone

IDLE_STATES = (State.INACTIVE, State.FAILED, State.CONDITION_SKIPPED)
UP_STATES = (State.STARTING, State.RUNNING, State.ACTIVE)


class StepBase:
    """One step's working copy: the model so far and the actions emitted so far."""

    def __init__(self, model: UnitModel, now: int) -> None:
        if model.unit.service is None:
            raise ValueError(f"{model.unit.name} is not a service")
        self.model = model
        self.now = now
        self.actions: list[Action] = []
        self.svc: ServiceSection = model.unit.service

    # ---- small tools -------------------------------------------------------------------

    def set(self, **changes: Any) -> None:
        self.model = self.model.replace(**changes)

    def go(self, state: State, reason: str, phase: Phase = Phase.NONE) -> None:
        """Enter `state` (emitting its one Transition when it is a change) and `phase`."""
        old = self.model.state
        self.set(state=state, phase=phase)
        if old is not state:
            model, last = self.model, self.model.last_exit
            code, signo = (last.code, last.signal) if last is not None else (None, None)
            change = Transition(
                model.name,
                old,
                state,
                reason,
                model.result,
                pid=model.main_pid,
                code=code,
                signal=signo,
                at=self.now / 1e6,
            )
            self.actions.append(change)
            if state is not State.STOPPING:
                # The exit is told with the changes it causes, up to where the run ends up;
                # a later change (a new start request, say) is not about it.
                self.set(last_exit=None)

    def say(self, text: str) -> None:
        self.actions.append(Log(f"{self.model.name}: {text}"))

    def arm(self, kind: TimerKind, delay_usec: int | None) -> None:
        """(Re)start timer `kind`; None leaves it off (an infinite or disabled timeout)."""
        self.disarm(kind)
        if delay_usec is None:
            return
        token = self.model.next_token
        self.set(timers=(*self.model.timers, (kind, token)), next_token=token + 1)
        self.actions.append(StartTimer(kind, token, delay_usec))
        if kind is TimerKind.START:
            self.set(start_deadline=self.now + delay_usec)

    def disarm(self, *kinds: TimerKind) -> None:
        kept = []
        for kind, token in self.model.timers:
            if kind in kinds:
                self.actions.append(CancelTimer(kind, token))
            else:
                kept.append((kind, token))
        self.set(timers=tuple(kept))
        if TimerKind.START in kinds:
            self.set(start_deadline=None)

    def armed(self, kind: TimerKind) -> bool:
        return any(k is kind for k, _ in self.model.timers)

    def commands(self, role: Role) -> tuple[ExecCommand, ...]:
        svc = self.svc
        return {
            Role.PRE: svc.exec_start_pre,
            Role.START: svc.exec_start,
            Role.POST: svc.exec_start_post,
            Role.STOP: svc.exec_stop,
            Role.STOP_POST: svc.exec_stop_post,
        }[role]

    def spawn(self, role: Role, index: int) -> None:
        self.set(index=index)
        self.actions.append(Spawn(role, index))

    def settle(self, outcome: Outcome, result: Result = Result.SUCCESS) -> None:
        if self.model.owes_settled:
            self.set(owes_settled=False)
            self.actions.append(ReportSettled(outcome, result))

    def report_stopped(self) -> None:
        if self.model.owes_stopped:
            self.set(owes_stopped=False)
            self.actions.append(ReportStopped())

    def record(self, result: Result, code: int | None = None) -> None:
        """Note a failure of this run; the first one is the run's result."""
        if self.model.result is Result.SUCCESS and result is not Result.SUCCESS:
            self.set(result=result, failure_code=code if result is Result.EXIT_CODE else None)

    def stop_timeout(self) -> int | None:
        return seconds_to_usec(self.svc.timeout_stop_sec)

    def log_stopping(self) -> None:
        if not self.model.stopping_logged:
            self.set(stopping_logged=True)
            self.say("stopping")


class StopSteps(StepBase):
    """Taking a unit down, timers, and the end of a run."""

    def watchdog_expired(self, why: str) -> None:
        self.say(f"watchdog timeout ({why}); sending SIGABRT")
        self.record(Result.WATCHDOG)
        self.disarm(TimerKind.START, TimerKind.WATCHDOG)
        self.go(State.STOPPING, "watchdog timeout", Phase.SIGTERM)
        self.enter_sigterm(signal.SIGABRT)

    # ---- timers ------------------------------------------------------------------------

    def on_timer(self, event: TimerFired) -> None:
        entry = (event.kind, event.token)
        if entry not in self.model.timers:
            return  # cancelled, or replaced by a newer one: a stale message
        self.set(timers=tuple(t for t in self.model.timers if t != entry))
        model, kind = self.model, event.kind
        if kind is TimerKind.START and model.state in (State.STARTING, State.RUNNING):
            self.set(start_deadline=None)
            self.say(f"start-up timed out after {self.svc.timeout_start_sec:g}s")
            self.record(Result.TIMEOUT)
            self.enter_stop(False, "start timeout")
        elif kind is TimerKind.WATCHDOG and model.state in (State.RUNNING, State.ACTIVE):
            self.watchdog_expired(f"no WATCHDOG=1 for {self.svc.watchdog_sec:g}s")
        elif kind is TimerKind.RESTART and model.state is State.AUTO_RESTART:
            self.set(phase=Phase.CONDITIONS)
            self.actions.append(CheckConditions())
        elif kind is TimerKind.POLL:
            self.check_progress()
        elif kind is TimerKind.STOP and model.state is State.STOPPING:
            self.stop_timed_out()

    def stop_timed_out(self) -> None:
        phase, seconds = self.model.phase, f"{self.svc.timeout_stop_sec:g}s"
        if phase is Phase.STOP:
            self.say(f"ExecStop= did not finish within {seconds}")
            self.enter_sigterm(self.svc.kill_signal)
        elif phase in (Phase.SIGTERM, Phase.NOTIFIED):
            if phase is Phase.NOTIFIED and not self.model.stop_requested:
                self.record(Result.TIMEOUT)
            self.say(f"did not stop within {seconds}; sending SIGKILL")
            self.enter_sigkill()
        elif phase is Phase.SIGKILL:
            self.say(f"processes still left {seconds} after SIGKILL; giving up on them")
            self.set(main_pid=None, control_pid=None)
            self.enter_stop_post()
        elif phase is Phase.STOP_POST:
            self.say(f"ExecStopPost= did not finish within {seconds}")
            self.actions.append(KillUnit())
            self.set(control_pid=None)
            self.finalize()

    # ---- stopping ----------------------------------------------------------------------

    def on_stop_requested(self, _event: StopRequested) -> None:
        self.set(owes_stopped=True, stop_requested=True)
        state = self.model.state
        if state in IDLE_STATES or (state is State.EXITED and not self.model.teardown_pending):
            self.report_stopped()
        elif state in (State.WAITING, State.AUTO_RESTART):
            self.disarm(TimerKind.RESTART)
            self.go(State.INACTIVE, "start cancelled" if state is State.WAITING else "stopped")
            self.settle(Outcome.STOPPED)
            self.report_stopped()
        elif state is State.STOPPING:
            self.log_stopping()
            if self.model.phase is Phase.NOTIFIED:
                self.enter_sigterm(self.svc.kill_signal)
        else:
            self.log_stopping()
            self.enter_stop(state is State.ACTIVE, "stop requested")

    def on_kill_requested(self, _event: KillRequested) -> None:
        state = self.model.state
        self.set(killing=True)
        if state in UP_STATES or state is State.STOPPING or self.model.teardown_pending:
            self.set(owes_stopped=True, stop_requested=True)
            self.log_stopping()
            self.disarm(TimerKind.START, TimerKind.WATCHDOG, TimerKind.RESTART)
            self.go(State.STOPPING, "killed", Phase.SIGKILL)
            self.enter_sigkill()
        else:
            self.on_stop_requested(StopRequested())

    def enter_stop(self, exec_stop: bool, reason: str) -> None:
        """Begin the stop sequence: ExecStop= (only after ready), then the kill phases."""
        self.disarm(TimerKind.START, TimerKind.WATCHDOG)
        self.set(main_exit=None, main_pid_hint=None)
        self.go(State.STOPPING, reason, Phase.STOP)
        if exec_stop and self.svc.exec_stop and not self.model.killing:
            self.arm(TimerKind.STOP, self.stop_timeout())
            self.spawn(Role.STOP, 0)
        else:
            self.enter_sigterm(self.svc.kill_signal)

    def enter_sigterm(self, signo: int) -> None:
        self.set(phase=Phase.SIGTERM)
        self.arm(TimerKind.STOP, self.stop_timeout())
        self.actions.append(SignalUnit(signo))
        self.check_progress()

    def enter_sigkill(self) -> None:
        self.set(phase=Phase.SIGKILL)
        self.arm(TimerKind.STOP, self.stop_timeout())
        self.actions.append(KillUnit())
        self.check_progress()

    def check_progress(self) -> None:
        """In a kill phase with no main or control process left: is anything else left?"""
        model = self.model
        if model.state is not State.STOPPING or model.phase not in (Phase.SIGTERM, Phase.SIGKILL):
            return
        if model.main_pid is None and model.control_pid is None:
            self.actions.append(CheckEmpty())

    def enter_stop_post(self) -> None:
        self.disarm(TimerKind.STOP, TimerKind.POLL)
        if self.svc.exec_stop_post and not self.model.killing:
            self.set(phase=Phase.STOP_POST)
            self.arm(TimerKind.STOP, self.stop_timeout())
            self.spawn(Role.STOP_POST, 0)
        else:
            self.finalize()

    def finalize(self) -> None:
        """The unit has no process left: decide where it ends up."""
        self.disarm(*TimerKind)
        self.set(main_pid=None, control_pid=None, main_pid_hint=None, teardown_pending=False)
        model = self.model
        if model.stop_requested:
            self.say("stopped")
            self.go(State.INACTIVE, "stopped")
            self.settle(Outcome.STOPPED)
            self.report_stopped()
            return
        result = model.result
        if should_restart(self.svc.restart, result):
            self.say(f"restarting in {self.svc.restart_sec:g}s")
            self.go(State.AUTO_RESTART, f"{result.value}; Restart={self.svc.restart.value}")
            self.arm(TimerKind.RESTART, seconds_to_usec(self.svc.restart_sec) or 0)
        elif result is Result.SUCCESS:
            self.go(State.EXITED, "finished")
            self.settle(Outcome.EXITED)
        else:
            self.enter_failed(result.value)

    def enter_failed(self, reason: str, *, say_reason: bool = False) -> None:
        model = self.model
        result = model.result
        self.say(f"failed ({result.value}): {reason}" if say_reason else f"failed ({result.value})")
        self.go(State.FAILED, reason)
        self.settle(Outcome.FAILED, result)
        self.actions.append(RequestOnFailure(result))
        if self.svc.exit_container_on_failure:
            code = model.failure_code
            status = code if result is Result.EXIT_CODE and code else 1
            self.actions.append(RequestContainerExit(status, result))
