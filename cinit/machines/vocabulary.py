"""The words every part of cinit uses for a unit: its states, their groups, stream event names.

The unit machine (`cinit.machines.unit_state`), the event hub, status book and control desk
(`cinit.events`) and the offline tools (`cinit.tools`) all read a unit's state; they take
the names and groups from here, so that a new state is added in one place. Import-light on
purpose (only `enum`, which `signal` loads anyway): the boot path imports it.

States (systemd's active states, split where cinit's supervisor needs to know more):

    inactive           never started, or stopped by cinit (not a failure)
    waiting            asked to start; waiting for the units it is ordered after
    condition-skipped  a Condition*= did not hold when it was about to start
    starting           a start attempt began; ExecStartPre= commands run
    running            the main process runs but is not ready yet, or it is ready and
                       ExecStartPost= commands run
    active             ready: dependents may start (a RemainAfterExit oneshot has no process)
    reloading          active, and reloading its configuration (ExecReload= runs, or a
                       notify service is between RELOADING=1 and READY=1); then active
    stopping           ExecStop=, KillSignal=, SIGKILL, ExecStopPost=
    exited             finished on its own with success (a oneshot without RemainAfterExit,
                       or a service whose main process ended cleanly): settled, not failed
    failed             ended badly and will not be restarted (its result says why)
    auto-restart       ended, and Restart= starts it again after RestartSec=
"""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    """A unit's state; a `str`, so that events and JSON carry it as its name."""

    INACTIVE = "inactive"
    WAITING = "waiting"
    CONDITION_SKIPPED = "condition-skipped"
    STARTING = "starting"
    RUNNING = "running"
    ACTIVE = "active"
    RELOADING = "reloading"
    STOPPING = "stopping"
    EXITED = "exited"
    FAILED = "failed"
    AUTO_RESTART = "auto-restart"


# ---- state groups (each a frozenset of State, which compare equal to their names) ------

# Dependents may go on: up, or finished with success (ordering, `ready` in status).
READY_STATES = frozenset({State.ACTIVE, State.RELOADING, State.EXITED})
# On its way somewhere: the boot is not settled while a unit is in one of these.
BUSY_STATES = frozenset({State.WAITING, State.STARTING, State.RUNNING, State.STOPPING})
# Settled and nothing of it runs: a stop has nothing to do, a control command is done.
AT_REST_STATES = frozenset({State.INACTIVE, State.FAILED, State.EXITED, State.CONDITION_SKIPPED})
# Where a start request begins a new run (exited too: a oneshot's run is over, though it
# may have left daemons behind).
FRESH_START_STATES = frozenset(
    {State.INACTIVE, State.FAILED, State.CONDITION_SKIPPED, State.EXITED}
)
# A run is under way and has (or is getting) processes: an uptime means something.
RUN_STATES = frozenset(
    {State.STARTING, State.RUNNING, State.ACTIVE, State.RELOADING, State.STOPPING}
)
# Up, or coming up: what a stop must take down (the machine's "up" states).
UP_STATES = frozenset({State.STARTING, State.RUNNING, State.ACTIVE, State.RELOADING})
# The main process is gone (or never was): a pid shown for the unit is stale.
NO_PROCESS_STATES = AT_REST_STATES | {State.AUTO_RESTART}
# Not settled for good: still going somewhere, failed (it may be started again) or
# waiting to restart (`cinit status` counts these as "not ok").
UNSETTLED_STATES = BUSY_STATES | {State.FAILED, State.AUTO_RESTART}

# ---- event names ---------------------------------------------------------------------

# The stream's event name for a change into each state (the contract: `ready`, not `active`).
EVENT_OF_STATE: dict[str, str] = {
    State.INACTIVE: "stopped",
    State.WAITING: "waiting",
    State.CONDITION_SKIPPED: "skipped",
    State.STARTING: "starting",
    State.RUNNING: "started",
    State.ACTIVE: "ready",
    State.RELOADING: "reloading",
    State.STOPPING: "stopping",
    State.EXITED: "exited",
    State.FAILED: "failed",
    State.AUTO_RESTART: "restarting",
}
# And back: the state an event of a unit's change names (for records without `new`).
STATE_OF_EVENT: dict[str, str] = {event: state for state, event in EVENT_OF_STATE.items()}

# A running unit's main process changed without a change of state (PIDFile=, MAINPID=).
MAIN_PID_CHANGED_EVENT = "main-pid-changed"
# A notify service sent STATUS=: its text, for `systemctl status`/`show` (StatusText=).
STATUS_TEXT_EVENT = "status-text"
# The unit set changed under a daemon-reload: a unit appeared, went, or its definition changed.
UNIT_ADDED_EVENT = "unit-added"
UNIT_REMOVED_EVENT = "unit-removed"
UNIT_CHANGED_EVENT = "unit-changed"
DAEMON_RELOADED_EVENT = "daemon-reloaded"  # cinit's: the outcome of one daemon-reload
# cinit's: the outcome of making an instance of a template on demand (`systemctl start x@a`)
INSTANCE_LOADED_EVENT = "instance-loaded"
# How a reload ends (the reason of its `reloading -> active` Transition): the control
# request that asked for it answers by the reason's first words.
RELOADED_REASON = "reloaded"
RELOAD_FAILED_REASON = "reload failed"
BOOT_SETTLED_EVENT = "boot-settled"  # stamped once, right after the change that ended the boot
FINAL_EVENT = "shutdown-finished"  # the stream's last word
# Timers (issue 17): armed with its next elapse; elapsed (its service is started); an
# elapse skipped because the service still runs.
TIMER_ARMED_EVENT = "timer-armed"
TIMER_ELAPSED_EVENT = "timer-elapsed"
TIMER_SKIPPED_EVENT = "timer-skipped"


def event_name(old: str, new: str) -> str:
    """The stream's event name for a unit's change `old -> new` (named after `new` alone)."""
    return EVENT_OF_STATE.get(new, new)
