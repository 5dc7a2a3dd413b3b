"""Restart decisions and start-rate limits: pure, clocked by the caller in microseconds.

Three questions a unit's state machine asks, answered as systemd answers them
(systemd.service, "Restart="; systemd.unit, "StartLimitIntervalSec="):

* `exit_result`: was a process's end clean? Exit code 0 or one listed in
  SuccessExitStatus= is clean; so is death by SIGHUP, SIGINT, SIGTERM or SIGPIPE for a
  long-running service (not for a oneshot command, whose job is to finish) and by a
  signal listed in SuccessExitStatus=. Anything else is `exit-code`, `signal` or
  `core-dump`.
* `should_restart`: systemd's table of which results each Restart= value restarts on,
  after RestartPreventExitStatus= and RestartForceExitStatus= had their say.
* `StartLimit`: StartLimitBurst= starts within StartLimitIntervalSec=. Every start attempt
  counts (the first start and each automatic restart), in a fixed window that opens at
  the first attempt after the previous window ran out, exactly like systemd's ratelimit:
  with a burst of 3 the 4th attempt inside the window is refused (`start-limit-hit`).
"""

from __future__ import annotations

from cinit.boot_path import TYPE_CHECKING
from cinit.units.frozen import Frozen, QuickStrEnum, quick_enum
from cinit.units.model import ExitStatusSet, RestartPolicy

if TYPE_CHECKING:
    import signal
else:  # the C half: `signal` itself builds its enums (~1 ms before the first exec)
    import _signal as signal

USEC_PER_SEC = 1_000_000
_NO_EXTRA_STATUS = ExitStatusSet()


@quick_enum
class Result(QuickStrEnum):
    """How a unit's run went (systemd's service result); the first failure of a run wins."""

    SUCCESS = "success"
    EXIT_CODE = "exit-code"
    SIGNAL = "signal"
    CORE_DUMP = "core-dump"
    TIMEOUT = "timeout"
    WATCHDOG = "watchdog"
    START_LIMIT_HIT = "start-limit-hit"
    TRIGGER_LIMIT_HIT = "trigger-limit-hit"  # a socket triggered too often (systemd's socket)
    SERVICE_START_LIMIT_HIT = "service-start-limit-hit"  # a socket whose service hit its limit
    DEPENDENCY = "dependency"
    RESOURCES = "resources"
    PROTOCOL = "protocol"  # a notify service exited before READY=1, a PIDFile= that is wrong
    ASSERT = "assert"  # an Assert*= did not hold (systemd's job result for it)


# Signals a daemon is expected to die of when asked to stop: a clean end (systemd's
# EXIT_CLEAN_DAEMON); a oneshot command killed by one of them did not finish its job.
CLEAN_DAEMON_SIGNALS = frozenset({signal.SIGHUP, signal.SIGINT, signal.SIGTERM, signal.SIGPIPE})


def exit_result(
    code: int | None,
    signo: int | None,
    core_dumped: bool,
    success: ExitStatusSet = _NO_EXTRA_STATUS,
    *,
    oneshot: bool = False,
) -> Result:
    """The result of one process's end: SUCCESS when clean, else why not."""
    if signo is None:
        if code == 0 or code in success.codes:
            return Result.SUCCESS
        return Result.EXIT_CODE
    if signo in success.signals:
        return Result.SUCCESS
    if not oneshot and signo in CLEAN_DAEMON_SIGNALS:
        return Result.SUCCESS
    return Result.CORE_DUMP if core_dumped else Result.SIGNAL


# Every unclean result: what Restart=on-failure restarts (always adds a clean exit).
_ANY_FAILURE = frozenset(
    {
        Result.EXIT_CODE,
        Result.SIGNAL,
        Result.CORE_DUMP,
        Result.TIMEOUT,
        Result.WATCHDOG,
        Result.RESOURCES,
        Result.PROTOCOL,
    }
)

# Which results each Restart= value restarts on (systemd.service, table 2). Results that
# never restart: start-limit-hit (the limit is what stops the loop), dependency (the
# unit never ran) and success for every policy but on-success and always.
_RESTARTS_ON: dict[RestartPolicy, frozenset[Result]] = {
    RestartPolicy.NO: frozenset(),
    RestartPolicy.ALWAYS: _ANY_FAILURE | {Result.SUCCESS},
    RestartPolicy.ON_SUCCESS: frozenset({Result.SUCCESS}),
    RestartPolicy.ON_FAILURE: _ANY_FAILURE,
    # systemd: "unclean signal, timeout or watchdog" - and its other non-exit-code
    # failures (resources, protocol) - but not an unclean exit code.
    RestartPolicy.ON_ABNORMAL: _ANY_FAILURE - {Result.EXIT_CODE},
    RestartPolicy.ON_ABORT: frozenset({Result.SIGNAL, Result.CORE_DUMP}),
}


def in_status_set(statuses: ExitStatusSet, code: int | None, signo: int | None) -> bool:
    """Whether a process's end (exit `code`, or death by `signo`) is listed in `statuses`."""
    if signo is not None:
        return signo in statuses.signals
    return code is not None and code in statuses.codes


def should_restart(
    policy: RestartPolicy,
    result: Result,
    code: int | None = None,
    signo: int | None = None,
    *,
    prevent: ExitStatusSet = _NO_EXTRA_STATUS,
    force: ExitStatusSet = _NO_EXTRA_STATUS,
) -> bool:
    """Whether a unit whose run ended with `result` is restarted under `policy`.

    `code`/`signo` are how its main process ended, when it did: as systemd decides
    (systemd.service, RestartPreventExitStatus=), an end listed in `prevent`
    (RestartPreventExitStatus=) never restarts, whatever Restart= says; then one listed
    in `force` (RestartForceExitStatus=) always does; only then Restart= decides. A run
    that never got to run (start limit, dependency) restarts on neither list.
    """
    if result in (Result.START_LIMIT_HIT, Result.DEPENDENCY, Result.ASSERT):
        return False
    if (code is not None or signo is not None) and in_status_set(prevent, code, signo):
        return False
    if (code is not None or signo is not None) and in_status_set(force, code, signo):
        return True
    return result in _RESTARTS_ON[policy]


def seconds_to_usec(seconds: float) -> int | None:
    """A time span in whole microseconds; None for infinity or zero (systemd: disabled)."""
    if seconds != seconds or seconds <= 0 or seconds == float("inf"):
        return None
    return max(1, round(seconds * USEC_PER_SEC))


class StartLimit(Frozen):
    """StartLimitBurst= attempts per StartLimitIntervalSec= window; immutable.

    `attempt(now)` returns the limit after one more start attempt at `now` (microseconds
    on any monotonic clock) and whether the attempt may go ahead. A zero burst or
    interval disables the limit (systemd: "not configured").
    """

    burst: int
    interval_usec: int
    window_begin: int | None = None  # when the current window opened
    attempts: int = 0  # attempts counted in the current window (refused ones included)

    @classmethod
    def of(cls, burst: int, interval_sec: float) -> StartLimit:
        interval = seconds_to_usec(interval_sec)
        if interval_sec == float("inf"):
            interval = 2**63  # a window that never closes
        return cls(burst=burst, interval_usec=interval or 0)

    def attempt(self, now: int) -> tuple[StartLimit, bool]:
        if self.burst <= 0 or self.interval_usec <= 0:
            return self, True
        begin = self.window_begin
        if begin is None or now - begin > self.interval_usec:
            return StartLimit(self.burst, self.interval_usec, now, 1), True
        attempts = self.attempts + 1
        limited = StartLimit(self.burst, self.interval_usec, begin, attempts)
        return limited, attempts <= self.burst
