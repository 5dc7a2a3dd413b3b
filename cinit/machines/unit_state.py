"""A unit's lifecycle as one pure function: `step(model, event, now) -> (model, actions)`.

All of a unit's decisions happen here, s6-style: the actor (`cinit.actors.unit`) feeds
events in and carries the actions out through `cinit.io`; timers are actions too, and
`now` (microseconds, any monotonic clock) is the only clock. Every state change emits
exactly one `Transition`. The vocabulary is in `cinit.machines.unit_model` (states, model)
and `cinit.machines.unit_events` (events, actions); the stopping half in `unit_stop`.

The paths, in short (systemd's, see systemd.service):

    inactive ─StartRequested→ waiting ─DependenciesSettled→ (conditions) ─┬→ condition-skipped
                                      ─DependencyFailed→ failed(dependency)  │
    starting (start limit counted; ExecStartPre= in order) ←────────────────┘
      → running (main spawned)  ready when: simple/exec at spawn, notify READY=1, forking
        parent exit 0 + main found, oneshot every ExecStart= exit 0
      → ExecStartPost= → active   (a oneshot without RemainAfterExit=: exited)
    main exits / command fails / start timeout / watchdog → stopping:
      ExecStop= (only after ready) → KillSignal= (SIGABRT for the watchdog) to the whole
      unit → TimeoutStopSec= → SIGKILL → ExecStopPost= →
      stop requested: inactive · success: exited · Restart= says so: auto-restart · failed
    auto-restart ─RestartSec=→ (conditions) → starting (or failed: start-limit-hit)

Decisions where systemd leaves room: a unit stopped by cinit ends inactive whatever its
processes did (never failed, never restarted); the failures of ExecStop=/ExecStopPost=
and of stop timeouts are logged but do not change the result; a oneshot's leftover
daemons are not killed when it exits (only when it is stopped).
"""

from __future__ import annotations

import time

from cinit.machines.restart import Result, exit_result, seconds_to_usec
from cinit.machines.unit_events import (
    Action,
    CheckConditions,
    CheckEmpty,
    ConditionChecked,
    DependenciesSettled,
    DependencyFailed,
    Event,
    FindMainPid,
    GroupChecked,
    KillRequested,
    MainPidFound,
    MainPidMissing,
    NotifyExtendTimeout,
    NotifyMainPid,
    NotifyReady,
    NotifyStatus,
    NotifyStopping,
    NotifyWatchdog,
    ProcessExited,
    SignalMain,
    SignalRequested,
    SocketBindFailed,
    Spawned,
    SpawnFailed,
    StartRequested,
    StopRequested,
    TimerFired,
)
from cinit.machines.unit_model import ExitInfo, Outcome, Phase, Role, State, TimerKind, UnitModel
from cinit.machines.unit_stop import IDLE_STATES, POLL_USEC, StopSteps
from cinit.units.model import ServiceType

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs the boot path ~4 ms
if TYPE_CHECKING:
    from typing import Any

# The control command a phase runs (the main process is never a control process).
_CONTROL_ROLE = {
    Phase.PRE: Role.PRE,
    Phase.POST: Role.POST,
    Phase.STOP: Role.STOP,
    Phase.STOP_POST: Role.STOP_POST,
}


def monotonic_usec() -> int:
    """The state machine's clock: CLOCK_MONOTONIC in whole microseconds."""
    return time.monotonic_ns() // 1000


def step(model: UnitModel, event: Event, now: int) -> tuple[UnitModel, list[Action]]:
    """The one place where a unit's state changes; pure."""
    machine = _Step(model, now)
    handler = _HANDLERS.get(type(event))
    if handler is not None:
        handler(machine, event)
    return machine.model, machine.actions


class _Step(StopSteps):
    """Starting, processes and notifications; the stop side is inherited."""

    # ---- starting ----------------------------------------------------------------------

    def on_start_requested(self, _event: StartRequested) -> None:
        state = self.model.state
        if state in (*IDLE_STATES, State.EXITED):
            self.set(
                owes_settled=True,
                stop_requested=False,
                killing=False,
                stopping_logged=False,
                result=Result.SUCCESS,
                failure_code=None,
                status_text="",
            )
            self.go(State.WAITING, "start requested")
        elif state is State.ACTIVE:
            self.set(owes_settled=True)
            self.settle(Outcome.READY)
        else:
            self.set(owes_settled=True)  # answered when the start under way settles

    def on_dependencies_settled(self, _event: DependenciesSettled) -> None:
        if self.model.state is State.WAITING and self.model.phase is Phase.NONE:
            self.set(phase=Phase.CONDITIONS)
            self.actions.append(CheckConditions())

    def on_dependency_failed(self, event: DependencyFailed) -> None:
        if self.model.state is State.WAITING:
            self.record(Result.DEPENDENCY)
            self.enter_failed(f"required unit failed: {', '.join(event.units)}")

    def on_condition_checked(self, event: ConditionChecked) -> None:
        model = self.model
        if model.phase is not Phase.CONDITIONS:
            return
        if model.state not in (State.WAITING, State.AUTO_RESTART):
            return
        if event.unmet is not None:
            self.say(f"skipped ({event.unmet} not met)")
            self.go(State.CONDITION_SKIPPED, f"{event.unmet} not met")
            self.settle(Outcome.SKIPPED)
            return
        limit, allowed = model.start_limit.attempt(self.now)
        self.set(start_limit=limit)
        if not allowed:
            self.set(result=Result.START_LIMIT_HIT, failure_code=None)
            self.enter_failed("start limit hit")
            return
        self.set(
            result=Result.SUCCESS,
            failure_code=None,
            was_ready=False,
            main_exit=None,
            main_pid_hint=None,
            stopping_logged=False,
            last_exit=None,
        )
        self.go(State.STARTING, "start attempt", Phase.PRE)
        self.arm(TimerKind.START, seconds_to_usec(self.svc.timeout_start_sec))
        if self.svc.exec_start_pre:
            self.spawn(Role.PRE, 0)
        else:
            self.start_main()

    def start_main(self) -> None:
        if not self.svc.exec_start:  # a oneshot may have none
            self.main_ready()
            return
        self.set(phase=Phase.START)
        self.spawn(Role.START, 0)

    def on_spawned(self, event: Spawned) -> None:
        if event.role is not Role.START:
            self.set(control_pid=event.pid)
            return
        self.set(main_pid=event.pid)
        self.say(f"started (pid {event.pid})")
        if self.model.state is State.STARTING:
            self.go(State.RUNNING, "main process started", Phase.START)
        if event.index == 0:
            self.arm(TimerKind.WATCHDOG, seconds_to_usec(self.svc.watchdog_sec))
        if self.svc.type in (ServiceType.SIMPLE, ServiceType.EXEC):
            self.main_ready()

    def main_ready(self) -> None:
        """The readiness condition of the service type holds: ExecStartPost=, then active."""
        if self.svc.exec_start_post and self.model.phase is not Phase.POST:
            self.set(phase=Phase.POST)
            self.spawn(Role.POST, 0)
            return
        self.disarm(TimerKind.START)
        self.set(was_ready=True)
        self.say("ready")
        if self.svc.type is not ServiceType.ONESHOT:
            self.go(State.ACTIVE, "ready")
            self.settle(Outcome.READY)
        elif self.svc.remain_after_exit:
            self.go(State.ACTIVE, "every ExecStart= succeeded; RemainAfterExit=yes")
            self.settle(Outcome.READY)
        else:
            self.set(teardown_pending=True, phase=Phase.NONE)  # leftover daemons may live on
            self.go(State.EXITED, "every ExecStart= succeeded")
            self.settle(Outcome.EXITED)

    # ---- processes ---------------------------------------------------------------------

    def on_spawn_failed(self, event: SpawnFailed) -> None:
        if event.exit_code is not None:
            self.command_ended(event.role, event.index, ExitInfo(code=event.exit_code), None)
            return
        if event.role in (Role.STOP, Role.STOP_POST):
            self.command_ended(event.role, event.index, ExitInfo(code=1), None)
            return
        self.record(Result.RESOURCES)
        self.enter_stop(self.model.was_ready, "cannot start a command: resources")

    def on_process_exited(self, event: ProcessExited) -> None:
        model = self.model
        if event.pid == model.main_pid:
            self.on_main_exit(event.pid, event.exit)
        elif event.pid == model.control_pid:
            self.set(control_pid=None)
            role = _CONTROL_ROLE.get(model.phase)
            if model.state is State.STOPPING and role is None:
                self.check_progress()
            elif role is not None:
                self.command_ended(role, model.index, event.exit, event.pid)
        # any other pid: a former main process, or a forking parent's helper: no role

    def command_ended(self, role: Role, index: int, info: ExitInfo, pid: int | None) -> None:
        """Control command (or oneshot command) `index` of `role` ended with `info`."""
        commands = self.commands(role)
        command = commands[index] if index < len(commands) else None
        oneshot_like = role is not Role.START or self.svc.type is ServiceType.ONESHOT
        result = exit_result(
            info.code,
            info.signal,
            info.core_dumped,
            self.svc.success_exit_status,
            oneshot=oneshot_like,
        )
        ok = result is Result.SUCCESS or (command is not None and command.ignore_failure)
        more = index + 1 < len(commands)
        if role is Role.START:  # a spawn failure of the main process (never had a pid)
            self.set(last_exit=info)
            self.main_gone(info)
        elif role in (Role.PRE, Role.POST):
            if not ok:
                self.say(f"{role.value}= command failed ({info.describe()})")
                self.record(result, info.code)
                self.enter_stop(self.model.main_pid is not None, f"{role.value}= failed")
            elif more:
                self.spawn(role, index + 1)
            elif role is Role.PRE:
                self.start_main()
            else:
                self.main_ready()
        elif role is Role.STOP:
            if not ok:
                self.say(f"{role.value}= command failed ({info.describe()})")
            if more and not self.model.killing:
                self.spawn(role, index + 1)
            else:
                self.enter_sigterm(self.svc.kill_signal)
        else:  # STOP_POST
            if not ok:
                self.say(f"{role.value}= command failed ({info.describe()})")
            if more and not self.model.killing:
                self.spawn(role, index + 1)
            else:
                self.finalize()

    def on_main_exit(self, pid: int, info: ExitInfo) -> None:
        model = self.model
        self.set(main_pid=None, last_exit=info)
        forking_parent = self.svc.type is ServiceType.FORKING and model.phase is Phase.START
        if not (forking_parent and info.code == 0):  # a forking parent's exit 0 is the norm
            self.say(f"exited ({info.describe()})")
        if model.state is State.STOPPING:
            if model.phase is Phase.NOTIFIED:
                if not model.stop_requested:
                    self.record(self.daemon_result(info), info.code)
                self.enter_sigterm(self.svc.kill_signal)
            else:
                self.check_progress()
            return
        hint = model.main_pid_hint
        if hint is not None and hint != pid:  # MAINPID= named a successor: adopt it first
            self.set(main_exit=info)
            self.actions.append(FindMainPid(hint, ""))
            return
        self.main_gone(info)

    def daemon_result(self, info: ExitInfo) -> Result:
        return exit_result(info.code, info.signal, info.core_dumped, self.svc.success_exit_status)

    def main_gone(self, info: ExitInfo) -> None:
        """The main process is gone for good (or never started): what that means now."""
        model, svc = self.model, self.svc
        starting = model.state in (State.STARTING, State.RUNNING) and model.phase is Phase.START
        if starting and svc.type is ServiceType.ONESHOT:
            result = exit_result(
                info.code, info.signal, info.core_dumped, svc.success_exit_status, oneshot=True
            )
            command = svc.exec_start[model.index]
            if result is Result.SUCCESS or command.ignore_failure:
                if model.index + 1 < len(svc.exec_start):
                    self.spawn(Role.START, model.index + 1)
                else:
                    self.main_ready()
                return
            self.record(result, info.code)
            self.enter_stop(False, f"ExecStart= failed ({info.describe()})")
            return
        result = self.daemon_result(info)
        if starting and svc.type is ServiceType.FORKING and result is Result.SUCCESS:
            self.set(phase=Phase.FIND_MAIN)
            self.actions.append(FindMainPid(None, svc.pid_file))
            return
        if starting and svc.type is ServiceType.NOTIFY and result is Result.SUCCESS:
            self.say("main process exited before READY=1")
            result = Result.PROTOCOL
        self.record(result, info.code)
        self.enter_stop(model.was_ready, f"main process exited ({info.describe()})")

    def on_main_pid_found(self, event: MainPidFound) -> None:
        model = self.model
        # The predecessor's exit ends nothing: the run goes on with its successor.
        self.set(main_pid=event.pid, main_pid_hint=None, main_exit=None, last_exit=None)
        if model.state is State.RUNNING and model.phase is Phase.FIND_MAIN:
            self.set(phase=Phase.START)
            self.main_ready()

    def on_main_pid_missing(self, event: MainPidMissing) -> None:
        model = self.model
        if model.state is State.RUNNING and model.phase is Phase.FIND_MAIN:
            if self.svc.pid_file:
                self.say(f"no main process: {event.reason}")
                self.record(Result.PROTOCOL)
                self.enter_stop(False, "PIDFile= names no process of the unit")
                return
            self.set(phase=Phase.START)
            self.main_ready()  # supervised through its cgroup/process group only
            if self.model.state is State.ACTIVE:
                self.actions.append(CheckEmpty())
        elif model.main_exit is not None:
            info = model.main_exit
            self.set(main_exit=None, main_pid_hint=None)
            self.main_gone(info)

    def on_group_checked(self, event: GroupChecked) -> None:
        model = self.model
        if model.state is State.ACTIVE and model.main_pid is None and event.empty:
            if self.svc.type is not ServiceType.ONESHOT:  # a forking daemon that is gone
                self.enter_stop(True, "no process left")
            return
        waiting = model.phase in (Phase.SIGTERM, Phase.SIGKILL)
        if model.state is not State.STOPPING or not waiting:
            return
        if model.main_pid is not None or model.control_pid is not None:
            return
        if event.empty:
            self.disarm(TimerKind.POLL)
            self.enter_stop_post()
        else:
            self.arm(TimerKind.POLL, POLL_USEC)

    # ---- notifications -----------------------------------------------------------------

    def on_notify_ready(self, _event: NotifyReady) -> None:
        model = self.model
        starting = model.state is State.RUNNING and model.phase is Phase.START
        if starting and self.svc.type is ServiceType.NOTIFY:
            self.main_ready()

    def on_notify_status(self, event: NotifyStatus) -> None:
        self.set(status_text=event.text)

    def on_notify_main_pid(self, event: NotifyMainPid) -> None:
        model = self.model
        if model.state not in (State.RUNNING, State.ACTIVE):
            return
        if event.pid == model.main_pid:
            self.set(main_pid_hint=None)
            return
        self.set(main_pid_hint=event.pid)
        self.actions.append(FindMainPid(event.pid, ""))

    def on_notify_stopping(self, _event: NotifyStopping) -> None:
        if self.model.state in (State.RUNNING, State.ACTIVE):
            self.disarm(TimerKind.START, TimerKind.WATCHDOG)
            self.log_stopping()
            self.go(State.STOPPING, "STOPPING=1", Phase.NOTIFIED)
            self.arm(TimerKind.STOP, self.stop_timeout())

    def on_notify_watchdog(self, event: NotifyWatchdog) -> None:
        if self.model.state not in (State.RUNNING, State.ACTIVE):
            return
        if event.trigger:
            self.watchdog_expired("WATCHDOG=trigger")
        elif self.armed(TimerKind.WATCHDOG):
            self.arm(TimerKind.WATCHDOG, seconds_to_usec(self.svc.watchdog_sec))

    def on_notify_extend_timeout(self, event: NotifyExtendTimeout) -> None:
        model = self.model
        if model.state in (State.STARTING, State.RUNNING) and self.armed(TimerKind.START):
            deadline = model.start_deadline
            if deadline is None or self.now + event.usec > deadline:
                self.arm(TimerKind.START, event.usec)
        elif model.state is State.STOPPING and self.armed(TimerKind.STOP):
            self.arm(TimerKind.STOP, event.usec)

    def on_socket_bind_failed(self, event: SocketBindFailed) -> None:
        if self.model.state in IDLE_STATES:  # not running: nothing would start it now
            why = f"its socket {event.socket} could not be bound"
            self.set(result=Result.SUCCESS, failure_code=None)
            self.record(Result.DEPENDENCY)
            self.enter_failed(why, say_reason=True)

    def on_signal_requested(self, event: SignalRequested) -> None:
        pid = self.model.main_pid
        if pid is not None and self.model.state in (State.RUNNING, State.ACTIVE):
            self.actions.append(SignalMain(pid, event.signo))


_HANDLERS: dict[type, Any] = {
    SocketBindFailed: _Step.on_socket_bind_failed,
    StartRequested: _Step.on_start_requested,
    DependenciesSettled: _Step.on_dependencies_settled,
    DependencyFailed: _Step.on_dependency_failed,
    ConditionChecked: _Step.on_condition_checked,
    Spawned: _Step.on_spawned,
    SpawnFailed: _Step.on_spawn_failed,
    ProcessExited: _Step.on_process_exited,
    MainPidFound: _Step.on_main_pid_found,
    MainPidMissing: _Step.on_main_pid_missing,
    GroupChecked: _Step.on_group_checked,
    NotifyReady: _Step.on_notify_ready,
    NotifyStatus: _Step.on_notify_status,
    NotifyMainPid: _Step.on_notify_main_pid,
    NotifyStopping: _Step.on_notify_stopping,
    NotifyWatchdog: _Step.on_notify_watchdog,
    NotifyExtendTimeout: _Step.on_notify_extend_timeout,
    TimerFired: _Step.on_timer,
    StopRequested: _Step.on_stop_requested,
    KillRequested: _Step.on_kill_requested,
    SignalRequested: _Step.on_signal_requested,
}
