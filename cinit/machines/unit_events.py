"""What goes into a unit's state machine (events) and what comes out of it (actions).

Events come from the supervisor (start, stop, dependencies), from the unit's processes
(spawned, exited), from sd_notify datagrams, from timers, and as answers to the actions
that ask the OS something (CheckConditions -> ConditionChecked, Spawn -> Spawned or
SpawnFailed, CheckEmpty -> GroupChecked, FindMainPid -> MainPidFound or MainPidMissing).
Actions are carried out by the unit's actor; `Transition` is the one event every state
change emits, for the supervisor and (issue 6) the event stream.
"""

from __future__ import annotations

from cinit.machines.record import Record
from cinit.machines.restart import Result
from cinit.machines.unit_model import ExitInfo, Outcome, Role, State, TimerKind

# ---- events ---------------------------------------------------------------------------


class StartRequested(Record):
    """The supervisor wants the unit up (boot, OnFailure=, a control command)."""

    __slots__ = ()


class DependenciesSettled(Record):
    """Every unit this one is ordered after is ready, exited, skipped or failed."""

    __slots__ = ()


class DependencyFailed(Record):
    """A unit this one Requires= failed: it must not start."""

    __slots__ = ("units",)

    def __init__(self, units: tuple[str, ...]) -> None:
        self.units = units


class ConditionChecked(Record):
    """Answer to CheckConditions: the first unmet condition as written, or None."""

    __slots__ = ("unmet",)

    def __init__(self, unmet: str | None) -> None:
        self.unmet = unmet


class Spawned(Record):
    """Answer to Spawn: the command runs (exec succeeded) as `pid`."""

    __slots__ = ("index", "pid", "role")

    def __init__(self, role: Role, index: int, pid: int) -> None:
        self.role = role
        self.index = index
        self.pid = pid


class SpawnFailed(Record):
    """Answer to Spawn: the command could not be started.

    `exit_code` is set when the failure is the command's own (exec, user, chdir: what
    systemd reports as 203/EXEC, 217/USER...), None when cinit lacked resources (fork,
    cgroup, EnvironmentFile=): result `resources`, which no `-` prefix excuses.
    """

    __slots__ = ("exit_code", "index", "role")

    def __init__(self, role: Role, index: int, exit_code: int | None) -> None:
        self.role = role
        self.index = index
        self.exit_code = exit_code


class ProcessExited(Record):
    """A process of the unit ended (the model knows which role the pid has)."""

    __slots__ = ("exit", "pid")

    def __init__(self, pid: int, exit: ExitInfo) -> None:
        self.pid = pid
        self.exit = exit


class MainPidFound(Record):
    """Answer to FindMainPid: this process is the unit's main process now."""

    __slots__ = ("pid",)

    def __init__(self, pid: int) -> None:
        self.pid = pid


class MainPidMissing(Record):
    """Answer to FindMainPid: no main process could be found (or adopted)."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


class GroupChecked(Record):
    """Answer to CheckEmpty: whether any process of the unit is left."""

    __slots__ = ("empty",)

    def __init__(self, empty: bool) -> None:
        self.empty = empty


class NotifyReady(Record):
    """READY=1"""

    __slots__ = ()


class NotifyStopping(Record):
    """STOPPING=1"""

    __slots__ = ()


class NotifyStatus(Record):
    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


class NotifyMainPid(Record):
    __slots__ = ("pid",)

    def __init__(self, pid: int) -> None:
        self.pid = pid


class NotifyWatchdog(Record):
    """WATCHDOG=1 (or WATCHDOG=trigger: fail now, as if the watchdog expired)."""

    __slots__ = ("trigger",)

    def __init__(self, trigger: bool = False) -> None:
        self.trigger = trigger


class NotifyExtendTimeout(Record):
    __slots__ = ("usec",)

    def __init__(self, usec: int) -> None:
        self.usec = usec


class TimerFired(Record):
    __slots__ = ("kind", "token")

    def __init__(self, kind: TimerKind, token: int) -> None:
        self.kind = kind
        self.token = token


class StopRequested(Record):
    """The supervisor wants the unit down; it answers with ReportStopped once it is."""

    __slots__ = ()


class KillRequested(Record):
    """The global stop timeout ran out: SIGKILL everything of the unit now."""

    __slots__ = ()


class SignalRequested(Record):
    """Pass `signo` on to the main process (SIGHUP/SIGUSR1/SIGUSR2 forwarding)."""

    __slots__ = ("signo",)

    def __init__(self, signo: int) -> None:
        self.signo = signo


class SocketBindFailed(Record):
    """The socket that activates this service could not be bound at boot: the service
    fails (dependency) without starting."""

    __slots__ = ("socket",)

    def __init__(self, socket: str) -> None:
        self.socket = socket


Event = (
    StartRequested
    | DependenciesSettled
    | DependencyFailed
    | ConditionChecked
    | Spawned
    | SpawnFailed
    | ProcessExited
    | MainPidFound
    | MainPidMissing
    | GroupChecked
    | NotifyReady
    | NotifyStopping
    | NotifyStatus
    | NotifyMainPid
    | NotifyWatchdog
    | NotifyExtendTimeout
    | TimerFired
    | StopRequested
    | KillRequested
    | SignalRequested
    | SocketBindFailed
)


def notify_events(fields: dict[str, str]) -> list[Event]:
    """Typed events for one sd_notify datagram, in the order they must be applied:
    MAINPID first (READY may refer to the new main process), STOPPING last."""
    found: list[Event] = []
    mainpid = fields.get("MAINPID", "")
    if mainpid.isdigit() and int(mainpid) > 0:
        found.append(NotifyMainPid(int(mainpid)))
    if "STATUS" in fields:
        found.append(NotifyStatus(fields["STATUS"]))
    extend = fields.get("EXTEND_TIMEOUT_USEC", "")
    if extend.isdigit():
        found.append(NotifyExtendTimeout(int(extend)))
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

    __slots__ = ("at", "code", "new", "old", "pid", "reason", "result", "signal", "unit")

    def __init__(
        self,
        unit: str,
        old: State,
        new: State,
        reason: str,
        result: Result = Result.SUCCESS,
        *,
        pid: int | None = None,
        code: int | None = None,
        signal: int | None = None,
        at: float | None = None,
    ) -> None:
        self.unit = unit
        self.old = old
        self.new = new
        self.reason = reason
        self.result = result
        self.pid = pid  # the main pid at the change (None: no main process)
        self.code = code  # how the last main process ended, when it has: exit code ...
        self.signal = signal  # ... or signal number
        # When it happened (time.monotonic() seconds), if not when it is reported: the
        # first wave's transitions reach the event stream only once the actors run.
        self.at = at


class Notice(Record):
    """An event for the stream that is not a state change (socket bound, actor crashed ...).

    `event` is its name in the stream (`socket-bound`, `actor-crashed` ...); `fields` are
    JSON-able extras. Whoever sees one passes it to the supervisor's `events` like a
    Transition.
    """

    __slots__ = ("event", "fields", "unit")

    def __init__(self, unit: str, event: str, fields: dict[str, object] | None = None) -> None:
        self.unit = unit
        self.event = event
        self.fields = fields or {}


class CheckConditions(Record):
    """Evaluate the Condition*= directives now; answer ConditionChecked."""

    __slots__ = ()


class Spawn(Record):
    """Start command `index` of `role`; answer Spawned or SpawnFailed."""

    __slots__ = ("index", "role")

    def __init__(self, role: Role, index: int) -> None:
        self.role = role
        self.index = index


class SignalMain(Record):
    __slots__ = ("pid", "signo")

    def __init__(self, pid: int, signo: int) -> None:
        self.pid = pid
        self.signo = signo


class SignalUnit(Record):
    """Send `signo` to every process of the unit (its cgroup, else its process groups)."""

    __slots__ = ("signo",)

    def __init__(self, signo: int) -> None:
        self.signo = signo


class KillUnit(Record):
    """SIGKILL every process of the unit (cgroup.kill, else its process groups)."""

    __slots__ = ()


class CheckEmpty(Record):
    """Find out whether any process of the unit is left; answer GroupChecked."""

    __slots__ = ()


class FindMainPid(Record):
    """Find and adopt the main process: `hint` (MAINPID=), else PIDFile=, else the one
    process left in the unit. Answer MainPidFound or MainPidMissing."""

    __slots__ = ("hint", "pid_file")

    def __init__(self, hint: int | None, pid_file: str) -> None:
        self.hint = hint
        self.pid_file = pid_file


class StartTimer(Record):
    __slots__ = ("delay_usec", "kind", "token")

    def __init__(self, kind: TimerKind, token: int, delay_usec: int) -> None:
        self.kind = kind
        self.token = token
        self.delay_usec = delay_usec


class CancelTimer(Record):
    __slots__ = ("kind", "token")

    def __init__(self, kind: TimerKind, token: int) -> None:
        self.kind = kind
        self.token = token


class Log(Record):
    """One of cinit's own lines, without the `cinit: ` prefix."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


class ReportSettled(Record):
    """Tell the supervisor how the current start request ended (once per request)."""

    __slots__ = ("outcome", "result")

    def __init__(self, outcome: Outcome, result: Result = Result.SUCCESS) -> None:
        self.outcome = outcome
        self.result = result


class ReportStopped(Record):
    """Tell the supervisor the unit is down (once per stop request, however many came)."""

    __slots__ = ()


class RequestOnFailure(Record):
    """The unit entered failed: start its OnFailure= units (once per failure)."""

    __slots__ = ("result",)

    def __init__(self, result: Result) -> None:
        self.result = result


class RequestContainerExit(Record):
    """The unit entered failed with ExitContainerOnFailure=yes: stop the container."""

    __slots__ = ("result", "status")

    def __init__(self, status: int, result: Result) -> None:
        self.status = status
        self.result = result


Action = (
    Transition
    | CheckConditions
    | Spawn
    | SignalMain
    | SignalUnit
    | KillUnit
    | CheckEmpty
    | FindMainPid
    | StartTimer
    | CancelTimer
    | Log
    | ReportSettled
    | ReportStopped
    | RequestOnFailure
    | RequestContainerExit
)
