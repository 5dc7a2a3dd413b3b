"""A unit's lifecycle as one pure function over a table: `step(model, event, now)`.

All of a unit's decisions happen here, s6-style: the actor (`cinit.actors.unit`) feeds
events in and carries the actions out through `cinit.io`; timers are actions too, and
`now` (microseconds, any monotonic clock) is the only clock. `TABLE` says, for each event
type and each state, which handler runs (or that the event is ignored there). Handlers
(the functions named `on_...`) live by concern in `unit_start` (bringing a unit up),
`unit_run` (its processes and notifications), `unit_reload` (ExecReload=, RELOADING=1)
and `unit_stop` (taking it down, and where a
run ends up); each takes the step's working copy (`unit_step.UnitStep`) and the event,
and changes state and phase only through its one mutator, which emits one event per
change: a `Transition` for a state, a `PhaseChanged` for a phase alone. The words are in
`vocabulary` and `unit_model`, the events and actions in `unit_events`.

The paths, in short (systemd's, see systemd.service):

    inactive ─StartRequested→ waiting ─DependenciesSettled→ (conditions) ─┬→ condition-skipped
                                      ─DependencyFailed→ failed(dependency)  │
    starting (start limit counted; ExecStartPre= in order) ←────────────────┘
      → running (main spawned)  ready when: simple/exec at spawn, notify READY=1, forking
        parent exit 0 + main found, oneshot every ExecStart= exit 0
      → ExecStartPost= → active   (a oneshot without RemainAfterExit=: exited)
    active ─ReloadRequested→ reloading (ExecReload=; or RELOADING=1 … READY=1) → active
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
from collections.abc import Callable, Iterable

from cinit.boot_path import TYPE_CHECKING
from cinit.machines import unit_events as ev
from cinit.machines import unit_reload as reload
from cinit.machines import unit_run as run
from cinit.machines import unit_start as start
from cinit.machines import unit_stop as stop
from cinit.machines.unit_events import Action, Event, NotifyReceived, TimerFired
from cinit.machines.unit_model import State, TimerKind, UnitModel
from cinit.machines.unit_step import StepChange, UnitStep
from cinit.machines.vocabulary import FRESH_START_STATES, UP_STATES

if TYPE_CHECKING:
    from typing import Any

    # A cell: a handler of the row's event type (checked by the table's test, not by mypy:
    # a dict cannot tie each key's type to its handler's argument).
    Handler = Callable[[UnitStep, Any], None]


def IGNORED(_step: UnitStep, _event: object) -> None:
    """The cell of an event that means nothing in that state."""


ALL_STATES = tuple(State)
UP_AND_RUNNING = (State.RUNNING, State.ACTIVE, State.RELOADING)  # a main process runs
STARTING_OR_RUNNING = (State.STARTING, State.RUNNING)
PENDING_START = (State.WAITING, State.AUTO_RESTART)  # asked to start, nothing runs yet
SETTLED_NOT_FAILED = (State.INACTIVE, State.CONDITION_SKIPPED, State.EXITED)


def _row(
    cells: dict[Iterable[State], Handler], otherwise: Handler = IGNORED
) -> dict[State, Handler]:
    """One row of the table: a handler for every state (`otherwise` where none is named)."""
    row = dict.fromkeys(ALL_STATES, otherwise)
    for states, handler in cells.items():
        for state in states:
            row[state] = handler
    return row


def _always(handler: Handler) -> dict[State, Handler]:
    """A row whose event means the same in every state (its handler looks further)."""
    return _row({}, otherwise=handler)


def on_notify_received(step: UnitStep, event: NotifyReceived) -> None:
    """A datagram NotifyAccess= lets through acts field by field (each by its own row of
    the table, in the state the previous one left); a refused one is dropped."""
    if not run.notify_allowed(step, event):
        if any(key in event.fields for key in run.TOLD_FIELDS):
            access = run.notify_access(step.svc).value
            step.say(f"notification from pid {event.sender} ignored (NotifyAccess={access})")
        return
    for inner in ev.notify_events(event.fields):
        TABLE[type(inner)][step.model.state](step, inner)


# Event type (a timer by its kind) x state -> handler. Every state has a cell in every row.
TABLE: dict[type | TimerKind, dict[State, Handler]] = {
    # ---- requests from the supervisor ----
    ev.StartRequested: _row(
        {
            tuple(FRESH_START_STATES): start.on_start_fresh,
            (State.ACTIVE, State.RELOADING): start.on_start_while_active,
        },
        otherwise=start.on_start_under_way,
    ),
    ev.DependenciesSettled: _row({(State.WAITING,): start.on_dependencies_settled}),
    ev.DependencyFailed: _row({(State.WAITING,): start.on_dependency_failed}),
    ev.CannotStart: _row({(*SETTLED_NOT_FAILED, *PENDING_START): start.on_cannot_start}),
    ev.StopRequested: _row(
        {
            (State.INACTIVE, State.FAILED, State.CONDITION_SKIPPED): stop.on_stop_at_rest,
            (State.EXITED,): stop.on_stop_exited,
            PENDING_START: stop.on_stop_pending_start,
            UP_STATES: stop.on_stop_up,
            (State.STOPPING,): stop.on_stop_stopping,
        }
    ),
    ev.KillRequested: _row(
        {(*UP_STATES, State.STOPPING): stop.on_kill}, otherwise=stop.on_kill_at_rest
    ),
    ev.SignalRequested: _row({UP_AND_RUNNING: run.on_signal_requested}),
    ev.ReloadRequested: _row({(State.ACTIVE,): reload.on_reload_requested}),
    ev.ResetFailed: _row({(State.FAILED,): stop.on_reset_failed}),
    # ---- answers to actions, and processes (a late answer may meet any state) ----
    ev.ConditionChecked: _row({PENDING_START: start.on_condition_checked}),
    ev.Spawned: _always(start.on_spawned),
    ev.SpawnFailed: _always(run.on_spawn_failed),
    ev.ProcessExited: _always(run.on_process_exited),
    ev.MainPidFound: _always(run.on_main_pid_found),
    ev.MainPidMissing: _always(run.on_main_pid_missing),
    ev.GroupChecked: _row(
        {
            (State.ACTIVE,): run.on_group_checked_active,
            (State.STOPPING,): run.on_group_checked_stopping,
        }
    ),
    # ---- sd_notify ----
    ev.NotifyReceived: _always(on_notify_received),
    ev.NotifyReady: _row(
        {(State.RUNNING,): run.on_notify_ready, (State.RELOADING,): reload.on_reload_ready}
    ),
    ev.NotifyReloading: _row({(State.ACTIVE,): reload.on_notify_reloading}),
    ev.NotifyStatus: _always(run.on_notify_status),
    ev.NotifyMainPid: _row({UP_AND_RUNNING: run.on_notify_main_pid}),
    ev.NotifyStopping: _row({UP_AND_RUNNING: run.on_notify_stopping}),
    ev.NotifyWatchdog: _row({UP_AND_RUNNING: run.on_notify_watchdog}),
    ev.NotifyExtendTimeout: _row(
        {
            STARTING_OR_RUNNING: run.on_extend_start_timeout,
            (State.STOPPING,): run.on_extend_stop_timeout,
        }
    ),
    # ---- timers (a fired timer leaves the model first; stale ones never get here) ----
    TimerKind.START: _row({STARTING_OR_RUNNING: stop.on_start_timeout}),
    TimerKind.WATCHDOG: _row({UP_AND_RUNNING: stop.on_watchdog_timeout}),
    TimerKind.RELOAD: _row({(State.RELOADING,): reload.on_reload_timeout}),
    TimerKind.RESTART: _row({(State.AUTO_RESTART,): start.on_restart_delay_over}),
    TimerKind.STOP: _row({(State.STOPPING,): stop.on_stop_timeout}),
    TimerKind.POLL: _row({(State.STOPPING,): stop.on_poll}),
}


def monotonic_usec() -> int:
    """The state machine's clock: CLOCK_MONOTONIC in whole microseconds."""
    return time.monotonic_ns() // 1000


def step(model: UnitModel, event: Event, now: int) -> tuple[UnitModel, list[Action]]:
    """The one place where a unit's state changes; pure."""
    work = _run(model, event, now)
    return work.model, work.actions


def trace_step(
    model: UnitModel, event: Event, now: int
) -> tuple[UnitModel, list[Action], list[StepChange]]:
    """`step`, and every change of state or phase it made, in order, with its one event."""
    work = _run(model, event, now)
    return work.model, work.actions, work.changes


def _run(model: UnitModel, event: Event, now: int) -> UnitStep:
    work = UnitStep(model, now)
    key: type | TimerKind = type(event)
    if isinstance(event, TimerFired):
        entry = (event.kind, event.token)
        if entry not in model.timers:
            return work  # cancelled, or replaced by a newer one: a stale message
        work.update(timers=tuple(t for t in model.timers if t != entry))
        key = event.kind
    row = TABLE.get(key)
    if row is not None:  # every Event has a row (see the table's test)
        row[model.state](work, event)
    return work
