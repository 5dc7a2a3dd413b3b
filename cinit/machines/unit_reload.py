"""Reloading a unit: the reload side of a unit's machine (systemd.service(5), ExecReload=).

`active -> reloading -> active`. A reload request runs the ExecReload= commands in order
($MAINPID set, like every control command); Type=notify-reload first sends ReloadSignal=
(SIGHUP) to the main process, and the reload ends once its commands (if any) are done and
the service said READY=1. A notify service may also say RELOADING=1 by itself and READY=1
once it is done. Either way the unit goes back to `active`, and the
reason of that Transition says how the reload went (`vocabulary.RELOADED_REASON` or
`RELOAD_FAILED_REASON ...`): as in systemd, a failed reload leaves the service running
(its run's result untouched), only the reload job fails. TimeoutStartSec= bounds a reload
(systemd uses the start timeout for it): on expiry the reload command gets SIGTERM and the
reload fails. The main process ending meanwhile ends the run as in `active`.
"""

from __future__ import annotations

import signal

from cinit.machines.restart import Result, exit_result, seconds_to_usec
from cinit.machines.unit_events import (
    NotifyReady,
    NotifyReloading,
    ReloadRequested,
    SignalMain,
    TimerFired,
)
from cinit.machines.unit_model import ExitInfo, Phase, Role, State, TimerKind
from cinit.machines.unit_step import UnitStep
from cinit.machines.vocabulary import RELOAD_FAILED_REASON, RELOADED_REASON
from cinit.units.model import ServiceType


def on_reload_requested(step: UnitStep, _event: ReloadRequested) -> None:
    """Active: ReloadSignal= (notify-reload), then ExecReload= number 0 (the control desk
    refuses a unit that cannot reload)."""
    svc, main = step.svc, step.model.main_pid
    signalled = svc.type is ServiceType.NOTIFY_RELOAD and main is not None
    if not svc.exec_reload and not signalled:
        # The definition it runs with has none (a daemon-reload added it: that one is
        # taken on at the next start). Still one answer, a failed reload.
        step.enter(State.RELOADING, "reload requested")
        finish(step, f"{RELOAD_FAILED_REASON} (no ExecReload= in the definition it runs with)")
        return
    phase = Phase.RELOAD if svc.exec_reload else Phase.RELOAD_NOTIFIED
    step.enter(State.RELOADING, "reload requested", phase)
    step.update(reload_awaits_ready=signalled)
    step.arm(TimerKind.RELOAD, seconds_to_usec(svc.timeout_start_sec))
    if signalled and main is not None:
        step.actions.append(SignalMain(main, svc.reload_signal))
    if svc.exec_reload:
        step.spawn(Role.RELOAD, 0)


def on_notify_reloading(step: UnitStep, _event: NotifyReloading) -> None:
    """RELOADING=1 from an active service: it reloads by itself until READY=1."""
    step.enter(State.RELOADING, "RELOADING=1", Phase.RELOAD_NOTIFIED)
    step.arm(TimerKind.RELOAD, seconds_to_usec(step.svc.timeout_start_sec))


def on_reload_ready(step: UnitStep, _event: NotifyReady) -> None:
    """READY=1 while reloading: the service's part of the reload is done (the whole, when
    no ExecReload= command runs)."""
    if step.model.phase is Phase.RELOAD_NOTIFIED:
        finish(step, RELOADED_REASON)
    else:
        step.update(reload_awaits_ready=False)


def on_reload_timeout(step: UnitStep, _event: TimerFired) -> None:
    control = step.model.control_pid
    if control is not None:
        # Its exit, when it comes, is no longer a reload command's: forgotten here.
        step.actions.append(SignalMain(control, signal.SIGTERM))
        step.update(control_pid=None)
    step.say("reload timed out")
    finish(step, f"{RELOAD_FAILED_REASON} (timeout)")


def reload_command_ended(step: UnitStep, index: int, info: ExitInfo) -> None:
    """ExecReload= number `index` ended with `info` (or could not start)."""
    model, svc = step.model, step.svc
    if model.state is not State.RELOADING or model.phase is not Phase.RELOAD:
        return  # a reload the timeout ended already
    command = svc.exec_reload[index] if index < len(svc.exec_reload) else None
    result = exit_result(
        info.code, info.signal, info.core_dumped, svc.success_exit_status, oneshot=True
    )
    if result is not Result.SUCCESS and not (command is not None and command.ignore_failure):
        finish(step, f"{RELOAD_FAILED_REASON} (ExecReload= {info.describe()})")
    elif index + 1 < len(svc.exec_reload):
        step.spawn(Role.RELOAD, index + 1)
    elif model.reload_awaits_ready:
        step.enter_phase(Phase.RELOAD_NOTIFIED)  # notify-reload: READY=1 ends it
    else:
        finish(step, RELOADED_REASON)


def finish(step: UnitStep, reason: str) -> None:
    """Back to active; `reason` tells the control request how the reload went."""
    step.disarm(TimerKind.RELOAD)
    step.update(index=0, reload_awaits_ready=False)
    if reason != RELOADED_REASON:
        step.say(reason)
    step.enter(State.ACTIVE, reason)
