"""A unit's processes and notifications: what its running commands tell the machine.

Spawn answers, process exits (main and control commands: what an exit means depends on
the role and the phase), the search for a forking daemon's main process, the check for
processes left, and the sd_notify messages (READY=1, MAINPID=, STOPPING=1, WATCHDOG=,
EXTEND_TIMEOUT_USEC=, STATUS=) and forwarded signals.
"""

from __future__ import annotations

from cinit.machines.restart import Result, exit_result, seconds_to_usec
from cinit.machines.unit_events import (
    CheckEmpty,
    FindMainPid,
    GroupChecked,
    MainPidFound,
    MainPidMissing,
    Notice,
    NotifyExtendTimeout,
    NotifyMainPid,
    NotifyReady,
    NotifyReceived,
    NotifyStatus,
    NotifyStopping,
    NotifyWatchdog,
    ProcessExited,
    SignalMain,
    SignalRequested,
    SpawnFailed,
)
from cinit.machines.unit_model import ExitInfo, Phase, Role, State, TimerKind, role_commands
from cinit.machines.unit_reload import reload_command_ended
from cinit.machines.unit_start import main_ready, start_main
from cinit.machines.unit_step import POLL_USEC, UnitStep
from cinit.machines.unit_stop import (
    check_progress,
    enter_sigterm,
    enter_stop,
    enter_stop_post,
    finalize,
    watchdog_expired,
)
from cinit.machines.vocabulary import MAIN_PID_CHANGED_EVENT
from cinit.units.model import NotifyAccess, ServiceSection, ServiceType

# The control command a phase runs (the main process is never a control process).
_CONTROL_ROLE = {
    Phase.PRE: Role.PRE,
    Phase.POST: Role.POST,
    Phase.STOP: Role.STOP,
    Phase.STOP_POST: Role.STOP_POST,
    Phase.RELOAD: Role.RELOAD,
}

# ---- processes ---------------------------------------------------------------------------


def on_spawn_failed(step: UnitStep, event: SpawnFailed) -> None:
    if event.exit_code is not None:
        command_ended(step, event.role, event.index, ExitInfo(code=event.exit_code))
        return
    if event.role in (Role.STOP, Role.STOP_POST, Role.RELOAD):
        command_ended(step, event.role, event.index, ExitInfo(code=1))
        return
    step.record(Result.RESOURCES)
    enter_stop(step, step.model.was_ready, "cannot start a command: resources")


def on_process_exited(step: UnitStep, event: ProcessExited) -> None:
    model = step.model
    if event.pid == model.main_pid:
        main_exited(step, event.pid, event.exit)
    elif event.pid == model.control_pid:
        step.update(control_pid=None)
        role = _CONTROL_ROLE.get(model.phase)
        if model.state is State.STOPPING and role is None:
            check_progress(step)
        elif role is not None:
            command_ended(step, role, model.index, event.exit)
    # any other pid: a former main process, or a forking parent's helper: no role


def command_ended(step: UnitStep, role: Role, index: int, info: ExitInfo) -> None:
    """Control command (or oneshot command) `index` of `role` ended with `info`."""
    svc = step.svc
    commands = role_commands(svc, role)
    command = commands[index] if index < len(commands) else None
    oneshot_like = role is not Role.START or svc.type is ServiceType.ONESHOT
    result = exit_result(
        info.code, info.signal, info.core_dumped, svc.success_exit_status, oneshot=oneshot_like
    )
    ok = result is Result.SUCCESS or (command is not None and command.ignore_failure)
    more = index + 1 < len(commands)
    if role is Role.START:  # a spawn failure of the main process (never had a pid)
        step.update(last_exit=info)
        main_gone(step, info)
        return
    if role is Role.RELOAD:  # a failed reload leaves the service running
        reload_command_ended(step, index, info)
        return
    if not ok:
        step.say(f"{role.value}= command failed ({info.describe()})")
    if role in (Role.PRE, Role.POST):
        if not ok:
            step.record(result, info.code)
            enter_stop(step, step.model.main_pid is not None, f"{role.value}= failed")
        elif more:
            step.spawn(role, index + 1)
        elif role is Role.PRE:
            start_main(step)
        else:
            main_ready(step)
    elif more and not step.model.killing:  # ExecStop=, ExecStopPost=: failures only logged
        step.spawn(role, index + 1)
    elif role is Role.STOP:
        enter_sigterm(step, step.kill_signal())
    else:
        finalize(step)


def main_exited(step: UnitStep, pid: int, info: ExitInfo) -> None:
    model, svc = step.model, step.svc
    step.update(main_pid=None, last_exit=info)
    forking_parent = svc.type is ServiceType.FORKING and model.phase is Phase.START
    if not (forking_parent and info.code == 0):  # a forking parent's exit 0 is the norm
        step.say(f"exited ({info.describe()})")
    if model.state is State.STOPPING:
        if model.phase is Phase.NOTIFIED:
            if not model.stop_requested:
                step.record(daemon_result(step, info), info.code)
            enter_sigterm(step, step.kill_signal())
        else:
            check_progress(step)
        return
    hint = model.main_pid_hint
    if hint is not None and hint != pid:  # MAINPID= named a successor: adopt it first
        step.update(main_exit=info)
        step.actions.append(FindMainPid(hint, ""))
        return
    if svc.pid_file and svc.type is not ServiceType.ONESHOT and not forking_parent:
        # systemd, for every type: a daemon may move to a new pid, if it writes the
        # PID file before its old pid exits. Only a PIDFile= naming no live process
        # (the exited one, say) ends the run.
        step.update(main_exit=info)
        step.actions.append(FindMainPid(None, svc.pid_file))
        return
    main_gone(step, info)


def daemon_result(step: UnitStep, info: ExitInfo) -> Result:
    return exit_result(info.code, info.signal, info.core_dumped, step.svc.success_exit_status)


def main_gone(step: UnitStep, info: ExitInfo) -> None:
    """The main process is gone for good (or never started): what that means now."""
    model, svc = step.model, step.svc
    starting = model.state in (State.STARTING, State.RUNNING) and model.phase is Phase.START
    if starting and svc.type is ServiceType.ONESHOT:
        result = exit_result(
            info.code, info.signal, info.core_dumped, svc.success_exit_status, oneshot=True
        )
        command = svc.exec_start[model.index]
        if result is Result.SUCCESS or command.ignore_failure:
            if model.index + 1 < len(svc.exec_start):
                step.spawn(Role.START, model.index + 1)
            else:
                main_ready(step)
            return
        step.record(result, info.code)
        enter_stop(step, False, f"ExecStart= failed ({info.describe()})")
        return
    result = daemon_result(step, info)
    if starting and svc.type is ServiceType.FORKING and result is Result.SUCCESS:
        step.enter_phase(Phase.FIND_MAIN)
        step.actions.append(FindMainPid(None, svc.pid_file, svc.guess_main_pid))
        return
    if starting and svc.type.notifies and result is Result.SUCCESS:
        step.say("main process exited before READY=1")
        result = Result.PROTOCOL
    step.record(result, info.code)
    enter_stop(step, model.was_ready, f"main process exited ({info.describe()})")


def on_main_pid_found(step: UnitStep, event: MainPidFound) -> None:
    model = step.model
    # The predecessor's exit ends nothing: the run goes on with its successor.
    step.update(main_pid=event.pid, main_pid_hint=None, main_exit=None, last_exit=None)
    if model.state is State.RUNNING and model.phase is Phase.FIND_MAIN:
        step.enter_phase(Phase.START)
        main_ready(step)
    elif event.pid != model.main_pid:
        # No change of state tells the new pid: the stream (and `cinit status`) learn it here.
        step.say(f"main process is now pid {event.pid}")
        step.actions.append(Notice(model.name, MAIN_PID_CHANGED_EVENT, {"pid": event.pid}))


def on_main_pid_missing(step: UnitStep, event: MainPidMissing) -> None:
    model = step.model
    if model.state is State.RUNNING and model.phase is Phase.FIND_MAIN:
        if step.svc.pid_file:
            step.say(f"no main process: {event.reason}")
            step.record(Result.PROTOCOL)
            enter_stop(step, False, "PIDFile= names no process of the unit")
            return
        step.enter_phase(Phase.START)
        main_ready(step)  # supervised through its cgroup/process group only
        if step.model.state is State.ACTIVE:
            step.actions.append(CheckEmpty())
    elif model.main_exit is not None:
        info = model.main_exit
        step.update(main_exit=None, main_pid_hint=None)
        main_gone(step, info)


def on_group_checked_active(step: UnitStep, event: GroupChecked) -> None:
    """A daemon supervised without a main pid: the unit ends when its last process does."""
    if step.model.main_pid is None and event.empty and step.svc.type is not ServiceType.ONESHOT:
        enter_stop(step, True, "no process left")


def on_group_checked_stopping(step: UnitStep, event: GroupChecked) -> None:
    model = step.model
    if model.phase not in (Phase.SIGTERM, Phase.SIGKILL):
        return
    if model.main_pid is not None or model.control_pid is not None:
        return
    if event.empty:
        step.disarm(TimerKind.POLL)
        enter_stop_post(step)
    else:
        step.arm(TimerKind.POLL, POLL_USEC)


# ---- notifications -------------------------------------------------------------------------


def notify_access(svc: ServiceSection) -> NotifyAccess:
    """NotifyAccess=, or systemd's default: `main` for Type=notify (and a watchdog), else
    `none`."""
    if svc.notify_access is not None:
        return svc.notify_access
    if svc.type.notifies or svc.watchdog_sec > 0:
        return NotifyAccess.MAIN
    return NotifyAccess.NONE


def notify_allowed(step: UnitStep, event: NotifyReceived) -> bool:
    """Whether NotifyAccess= lets the sender of `event` speak for the unit (systemd.service):
    `main` the main process only, `exec` also a control process (ExecStartPre=, ...),
    `all` any process of the unit, `none` nobody."""
    access, sender, model = notify_access(step.svc), event.sender, step.model
    if sender is None or access is NotifyAccess.NONE:
        return False
    if access is NotifyAccess.ALL:
        return event.in_unit
    if sender == model.main_pid:
        return True
    return access is NotifyAccess.EXEC and sender == model.control_pid


# Fields whose refusal is worth a line (STATUS=, WATCHDOG= ... are refused silently).
TOLD_FIELDS = ("READY", "MAINPID", "STOPPING", "RELOADING")


def on_notify_ready(step: UnitStep, _event: NotifyReady) -> None:
    if step.model.phase is Phase.START and step.svc.type.notifies:
        main_ready(step)


def on_notify_status(step: UnitStep, event: NotifyStatus) -> None:
    step.update(status_text=event.text)


def on_notify_main_pid(step: UnitStep, event: NotifyMainPid) -> None:
    if event.pid == step.model.main_pid:
        step.update(main_pid_hint=None)
        return
    step.update(main_pid_hint=event.pid)
    step.actions.append(FindMainPid(event.pid, ""))


def on_notify_stopping(step: UnitStep, _event: NotifyStopping) -> None:
    step.disarm(TimerKind.START, TimerKind.WATCHDOG)
    step.log_stopping()
    step.enter(State.STOPPING, "STOPPING=1", Phase.NOTIFIED)
    step.arm(TimerKind.STOP, step.stop_timeout())


def on_notify_watchdog(step: UnitStep, event: NotifyWatchdog) -> None:
    if event.trigger:
        watchdog_expired(step, "WATCHDOG=trigger")
    elif step.armed(TimerKind.WATCHDOG):
        step.arm(TimerKind.WATCHDOG, seconds_to_usec(step.svc.watchdog_sec))


def on_extend_start_timeout(step: UnitStep, event: NotifyExtendTimeout) -> None:
    if step.armed(TimerKind.START):
        deadline = step.model.start_deadline
        if deadline is None or step.now + event.usec > deadline:
            step.arm(TimerKind.START, event.usec)


def on_extend_stop_timeout(step: UnitStep, event: NotifyExtendTimeout) -> None:
    if step.armed(TimerKind.STOP):
        step.arm(TimerKind.STOP, event.usec)


def on_signal_requested(step: UnitStep, event: SignalRequested) -> None:
    pid = step.model.main_pid
    if pid is not None:
        step.actions.append(SignalMain(pid, event.signo))
