"""A unit's state machine, the nouns: its phases, command roles, timers and the model.

`cinit.machines.unit_state.step` is the one function that turns (model, event, now) into
(model, actions); this module defines the model, `cinit.machines.unit_events` the events
and actions, `cinit.machines.vocabulary` the states (re-exported here). Everything is
immutable and free of I/O, so the state table is tested without processes or a real clock.
A state holds phases (`Phase`): what the unit does inside it (starting: `pre`; running:
`start`, `find-main`, `post`; reloading: `reload`, `reload-notified`; stopping:
`notified`, `stop`, `sigterm`, `sigkill`, `stop-post`; waiting and auto-restart:
`conditions`).
"""

from __future__ import annotations

from enum import StrEnum

from cinit.machines.record import Record
from cinit.machines.restart import Result, StartLimit
from cinit.machines.vocabulary import State as State
from cinit.units.frozen import Frozen
from cinit.units.model import ExecCommand, ServiceSection, Unit


class Phase(StrEnum):
    """What a unit does inside its state; a change emits `PhaseChanged`, not a Transition."""

    NONE = ""
    CONDITIONS = "conditions"  # waiting/auto-restart: conditions are being checked
    PRE = "pre"  # starting: ExecStartPre= number `index` runs
    START = "start"  # running: main process (or oneshot command `index`) not ready yet
    FIND_MAIN = "find-main"  # running: forking parent exited 0, looking for the daemon
    POST = "post"  # running: ready, ExecStartPost= number `index` runs
    NOTIFIED = "notified"  # stopping: the service said STOPPING=1 and winds down itself
    STOP = "stop"  # stopping: ExecStop= number `index` runs
    SIGTERM = "sigterm"  # stopping: KillSignal= (or SIGABRT for the watchdog) sent
    SIGKILL = "sigkill"  # stopping: SIGKILL sent to the whole unit
    STOP_POST = "stop-post"  # stopping: ExecStopPost= number `index` runs
    RELOAD = "reload"  # reloading: ExecReload= number `index` runs
    RELOAD_NOTIFIED = "reload-notified"  # reloading: RELOADING=1 came, READY=1 awaited


class Role(StrEnum):
    """Which command list a process comes from."""

    PRE = "ExecStartPre"
    START = "ExecStart"
    POST = "ExecStartPost"
    STOP = "ExecStop"
    STOP_POST = "ExecStopPost"
    RELOAD = "ExecReload"  # run by the reload verb; gets $MAINPID like every control command


def role_commands(service: ServiceSection, role: Role) -> tuple[ExecCommand, ...]:
    """The command list of `service` that `role` names (the one place that pairs them)."""
    return {
        Role.PRE: service.exec_start_pre,
        Role.START: service.exec_start,
        Role.POST: service.exec_start_post,
        Role.STOP: service.exec_stop,
        Role.STOP_POST: service.exec_stop_post,
        Role.RELOAD: service.exec_reload,
    }[role]


class TimerKind(StrEnum):
    START = "start-timeout"  # TimeoutStartSec=, over pre, start and post
    STOP = "stop-timeout"  # TimeoutStopSec=, per stopping phase
    RESTART = "restart-delay"  # RestartSec=
    WATCHDOG = "watchdog"  # WatchdogSec=
    POLL = "poll"  # while stopping: look again whether the unit's processes are gone
    RELOAD = "reload-timeout"  # TimeoutStartSec= bounds a reload too (systemd.service)


class Outcome(StrEnum):
    """What the supervisor learns when a start request settles."""

    READY = "ready"  # active
    EXITED = "exited"  # finished successfully (counts as ready for ordering)
    SKIPPED = "skipped"  # condition unmet (not a failure)
    FAILED = "failed"
    STOPPED = "stopped"  # stopped by cinit before it settled


class ExitInfo(Record):
    """How a process ended: an exit code, or a signal (maybe with a core dump)."""

    code: int | None = None
    signal: int | None = None
    core_dumped: bool = False

    def describe(self) -> str:
        """`status=3` or `signal=SIGKILL`, as the contract's `exited (...)` line says it."""
        if self.signal is None:
            return f"status={self.code}"
        from cinit.signal_policy import signal_name

        return f"signal={signal_name(self.signal)}"


# ---- the model ------------------------------------------------------------------------


class UnitModel(Frozen):
    """Everything the state machine knows about one unit; replaced, never mutated."""

    unit: Unit
    start_limit: StartLimit
    state: State = State.INACTIVE
    phase: Phase = Phase.NONE
    index: int = 0  # which command of the phase's list runs
    result: Result = Result.SUCCESS  # of the current run; the first failure wins
    failure_code: int | None = None  # exit code behind an exit-code result
    main_pid: int | None = None
    control_pid: int | None = None  # the ExecStartPre/Post/Stop/StopPost process running
    main_pid_hint: int | None = None  # MAINPID= not adopted yet
    main_exit: ExitInfo | None = None  # a main exit on hold while a successor is looked for
    # How the main process ended, carried by the Transitions it causes up to the first
    # state other than stopping (then cleared: later changes are not about it).
    last_exit: ExitInfo | None = None
    was_ready: bool = False  # this run got ready (ExecStop= runs only then)
    teardown_pending: bool = False  # a finished oneshot may have left daemons behind
    stop_requested: bool = False  # cinit is stopping the unit: no restart, not a failure
    restarting: bool = False  # that stop is a restart's (RestartKillSignal=)
    killing: bool = False  # the global stop timeout ran out: no more ExecStopPost=
    owes_settled: bool = False  # a start request waits for ReportSettled
    owes_stopped: bool = False  # a stop request waits for ReportStopped
    stopping_logged: bool = False
    status_text: str = ""  # STATUS=
    reload_awaits_ready: bool = False  # Type=notify-reload: the reload waits for READY=1
    timers: tuple[tuple[TimerKind, int], ...] = ()  # armed timers and their tokens
    next_token: int = 1
    start_deadline: int | None = None  # when the armed start timeout fires (usec)

    @property
    def name(self) -> str:
        return self.unit.name


def initial_model(unit: Unit) -> UnitModel:
    """A unit that has not been asked to do anything yet."""
    section = unit.unit
    limit = StartLimit.of(section.start_limit_burst, section.start_limit_interval_sec)
    return UnitModel(unit=unit, start_limit=limit)
