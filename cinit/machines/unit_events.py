"""What goes into a unit's state machine (events) and what comes out of it (actions).

Events come from the supervisor (start, stop, dependencies), from the unit's processes
(spawned, exited), from sd_notify datagrams, from timers, and as answers to the actions
that ask the OS something (CheckConditions -> ConditionChecked, Spawn -> Spawned or
SpawnFailed, CheckEmpty -> GroupChecked, FindMainPid -> MainPidFound or MainPidMissing).
Actions are carried out by the unit's actor; `Transition` is the one event every state
change emits, for the supervisor and the event stream. A change of phase alone emits a
`PhaseChanged` instead, which is no action: `unit_state.trace_step` hands it out, the
stream does not carry it.
"""

from __future__ import annotations

from cinit.machines.record import Record
from cinit.machines.restart import Result
from cinit.machines.unit_model import ExitInfo, Outcome, Phase, Role, State, TimerKind
from cinit.units.frozen import field

# ---- events ---------------------------------------------------------------------------


class StartRequested(Record):
    """The supervisor wants the unit up (boot, OnFailure=, a control command)."""


class DependenciesSettled(Record):
    """Every unit this one is ordered after is ready, exited, skipped or failed."""


class DependencyFailed(Record):
    """A unit this one Requires= (or BindsTo=) failed, or one it has Requisite= on is not
    active (`inactive`): it must not start."""

    units: tuple[str, ...]
    inactive: tuple[str, ...] = ()


class ConditionChecked(Record):
    """Answer to CheckConditions: the first unmet condition as written, or None; when
    every condition holds, the first Assert*= that does not (`failed_assert`), or None."""

    unmet: str | None
    failed_assert: str | None = None


class Spawned(Record):
    """Answer to Spawn: the command runs (exec succeeded) as `pid`."""

    role: Role
    index: int
    pid: int


class SpawnFailed(Record):
    """Answer to Spawn: the command could not be started.

    `exit_code` is set when the failure is the command's own (exec, user, chdir: what
    systemd reports as 203/EXEC, 217/USER...), None when cinit lacked resources (fork,
    cgroup, EnvironmentFile=): result `resources`, which no `-` prefix excuses.
    """

    role: Role
    index: int
    exit_code: int | None


class ProcessExited(Record):
    """A process of the unit ended (the model knows which role the pid has)."""

    pid: int
    exit: ExitInfo


class MainPidFound(Record):
    """Answer to FindMainPid: this process is the unit's main process now."""

    pid: int


class MainPidMissing(Record):
    """Answer to FindMainPid: no main process could be found (or adopted)."""

    reason: str


class GroupChecked(Record):
    """Answer to CheckEmpty: whether any process of the unit is left."""

    empty: bool


class NotifyReceived(Record):
    """One sd_notify datagram: its sender's pid (None: the kernel gave none), whether that
    process belongs to the unit, and its fields. NotifyAccess= decides whether it counts;
    then its fields act as the events `notify_events` makes of them, in that order."""

    sender: int | None
    in_unit: bool
    fields: dict[str, str] = field(default_factory=dict)


class NotifyReady(Record):
    """READY=1"""


class NotifyStopping(Record):
    """STOPPING=1"""


class NotifyReloading(Record):
    """RELOADING=1: the service reloads by itself; READY=1 says it is done."""


class NotifyStatus(Record):
    text: str


class NotifyMainPid(Record):
    pid: int


class NotifyWatchdog(Record):
    """WATCHDOG=1 (or WATCHDOG=trigger: fail now, as if the watchdog expired)."""

    trigger: bool = False


class NotifyExtendTimeout(Record):
    usec: int


class TimerFired(Record):
    kind: TimerKind
    token: int


class CannotStart(Record):
    """The unit cannot run (its socket could not be bound): it fails, result `dependency`,
    without a start attempt."""

    reason: str


class StopRequested(Record):
    """The supervisor wants the unit down; it answers with ReportStopped once it is.
    `restart`: the stop half of a restart (RestartKillSignal= replaces KillSignal=)."""

    restart: bool = False


class ReloadRequested(Record):
    """Reload the unit's configuration (`cinit reload UNIT`): ExecReload=, with $MAINPID.
    The `reloading -> active` Transition that ends it says how it went (its reason)."""


class KillRequested(Record):
    """The global stop timeout ran out: SIGKILL everything of the unit now."""


class SignalRequested(Record):
    """Pass `signo` on to the main process (SIGHUP/SIGUSR1/SIGUSR2 forwarding)."""

    signo: int


Event = (
    StartRequested
    | DependenciesSettled
    | DependencyFailed
    | CannotStart
    | ConditionChecked
    | Spawned
    | SpawnFailed
    | ProcessExited
    | MainPidFound
    | MainPidMissing
    | GroupChecked
    | NotifyReceived
    | NotifyReady
    | NotifyStopping
    | NotifyStatus
    | NotifyMainPid
    | NotifyWatchdog
    | NotifyExtendTimeout
    | TimerFired
    | StopRequested
    | ReloadRequested
    | NotifyReloading
    | KillRequested
    | SignalRequested
)


def notify_events(fields: dict[str, str]) -> list[Event]:
    """Typed events for one sd_notify datagram, in the order they must be applied:
    MAINPID first (READY may refer to the new main process), RELOADING before READY,
    STOPPING last."""
    found: list[Event] = []
    mainpid = fields.get("MAINPID", "")
    if mainpid.isdigit() and int(mainpid) > 0:
        found.append(NotifyMainPid(int(mainpid)))
    if "STATUS" in fields:
        found.append(NotifyStatus(fields["STATUS"]))
    extend = fields.get("EXTEND_TIMEOUT_USEC", "")
    if extend.isdigit():
        found.append(NotifyExtendTimeout(int(extend)))
    if fields.get("RELOADING") == "1":
        found.append(NotifyReloading())  # before READY=1: both in one datagram is a reload done
    watchdog = fields.get("WATCHDOG")
    if watchdog in ("1", "trigger"):
        found.append(NotifyWatchdog(trigger=watchdog == "trigger"))
    if fields.get("READY") == "1":
        found.append(NotifyReady())
    if fields.get("STOPPING") == "1":
        found.append(NotifyStopping())
    return found


# ---- actions --------------------------------------------------------------------------


class Transition(Record):
    """The one event every state change emits (the event stream and trace consume it)."""

    unit: str
    old: State
    new: State
    reason: str
    result: Result = Result.SUCCESS
    pid: int | None = None  # the main pid at the change (None: no main process)
    code: int | None = None  # how the last main process ended, when it has: exit code ...
    signal: int | None = None  # ... or signal number
    # When it happened (time.monotonic() seconds), if not when it is reported: the
    # first wave's transitions reach the event stream only once the actors run.
    at: float | None = None


class PhaseChanged(Record):
    """The one event a change of phase inside a state emits (a change of state emits a
    Transition, whatever its phase). Not an action, and not on the event stream."""

    unit: str
    state: State
    old: Phase
    new: Phase


class Notice(Record):
    """An event for the stream that is not a state change (socket bound, actor crashed ...).

    `event` is its name in the stream (`socket-bound`, `actor-crashed` ...); `fields` are
    JSON-able extras. Whoever sees one passes it to the supervisor's `events` like a
    Transition.
    """

    unit: str
    event: str
    fields: dict[str, object] = field(default_factory=dict)


class CheckConditions(Record):
    """Evaluate the Condition*= directives, then the Assert*= ones, now; answer
    ConditionChecked."""


class Spawn(Record):
    """Start command `index` of `role`; answer Spawned or SpawnFailed."""

    role: Role
    index: int


class SignalMain(Record):
    pid: int
    signo: int


class SignalUnit(Record):
    """Send `signo` to every process of the unit (its cgroup, else its process groups)."""

    signo: int


class KillUnit(Record):
    """SIGKILL every process of the unit (cgroup.kill, else its process groups)."""


class CheckEmpty(Record):
    """Find out whether any process of the unit is left; answer GroupChecked."""


class FindMainPid(Record):
    """Find and adopt the main process: `hint` (MAINPID=), else PIDFile=, else (when
    `guess`: GuessMainPID=) the one process left in the unit. Answer MainPidFound or
    MainPidMissing."""

    hint: int | None
    pid_file: str
    guess: bool = True


class RemoveRuntimeDirectories(Record):
    """The run ended: remove the unit's RuntimeDirectory= (RuntimeDirectoryPreserve=
    decided it goes now). Answers nothing; a failure is logged."""


class StartTimer(Record):
    kind: TimerKind
    token: int
    delay_usec: int


class CancelTimer(Record):
    kind: TimerKind
    token: int


class Log(Record):
    """One of cinit's own lines, without the `cinit: ` prefix."""

    text: str


class ReportSettled(Record):
    """Tell the supervisor how the current start request ended (once per request)."""

    outcome: Outcome
    result: Result = Result.SUCCESS


class ReportStopped(Record):
    """Tell the supervisor the unit is down (once per stop request, however many came)."""


class RequestOnFailure(Record):
    """The unit entered failed: start its OnFailure= units (once per failure)."""

    result: Result


class RequestContainerExit(Record):
    """The unit entered failed with ExitContainerOnFailure=yes: stop the container."""

    status: int
    result: Result


Action = (
    Transition
    | Notice
    | CheckConditions
    | Spawn
    | SignalMain
    | SignalUnit
    | KillUnit
    | CheckEmpty
    | FindMainPid
    | RemoveRuntimeDirectories
    | StartTimer
    | CancelTimer
    | Log
    | ReportSettled
    | ReportStopped
    | RequestOnFailure
    | RequestContainerExit
)
