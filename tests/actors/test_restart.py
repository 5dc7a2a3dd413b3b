"""Restart decisions and start limits (cinit.machines.restart): pure, fake clock in usec."""

from __future__ import annotations

import signal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cinit.machines.restart import (
    Result,
    StartLimit,
    exit_result,
    seconds_to_usec,
    should_restart,
)
from cinit.units.model import ExitStatusSet, RestartPolicy

SEC = 1_000_000
R = Result
P = RestartPolicy


@pytest.mark.parametrize(
    ("code", "signo", "core", "oneshot", "expected"),
    [
        (0, None, False, False, R.SUCCESS),
        (1, None, False, False, R.EXIT_CODE),
        (255, None, False, True, R.EXIT_CODE),
        (None, signal.SIGTERM, False, False, R.SUCCESS),
        (None, signal.SIGHUP, False, False, R.SUCCESS),
        (None, signal.SIGINT, False, False, R.SUCCESS),
        (None, signal.SIGPIPE, False, False, R.SUCCESS),
        (None, signal.SIGTERM, False, True, R.SIGNAL),  # a oneshot command must finish
        (None, signal.SIGKILL, False, False, R.SIGNAL),
        (None, signal.SIGSEGV, True, False, R.CORE_DUMP),
        (None, signal.SIGABRT, True, True, R.CORE_DUMP),
    ],
)
def test_exit_result(
    code: int | None, signo: int | None, core: bool, oneshot: bool, expected: Result
) -> None:
    assert exit_result(code, signo, core, oneshot=oneshot) is expected


def test_success_exit_status_adds_codes_and_signals() -> None:
    extra = ExitStatusSet(codes=frozenset({3, 75}), signals=frozenset({signal.SIGUSR1}))
    assert exit_result(3, None, False, extra) is R.SUCCESS
    assert exit_result(75, None, False, extra, oneshot=True) is R.SUCCESS
    assert exit_result(4, None, False, extra) is R.EXIT_CODE
    assert exit_result(None, signal.SIGUSR1, False, extra, oneshot=True) is R.SUCCESS
    assert exit_result(None, signal.SIGUSR2, False, extra) is R.SIGNAL


# systemd.service, "Restart=": rows are results, columns the policies that restart on them.
TABLE = {
    R.SUCCESS: {P.ALWAYS, P.ON_SUCCESS},
    R.EXIT_CODE: {P.ALWAYS, P.ON_FAILURE},
    R.SIGNAL: {P.ALWAYS, P.ON_FAILURE, P.ON_ABNORMAL, P.ON_ABORT},
    R.CORE_DUMP: {P.ALWAYS, P.ON_FAILURE, P.ON_ABNORMAL, P.ON_ABORT},
    R.TIMEOUT: {P.ALWAYS, P.ON_FAILURE, P.ON_ABNORMAL},
    R.WATCHDOG: {P.ALWAYS, P.ON_FAILURE, P.ON_ABNORMAL},
    R.RESOURCES: {P.ALWAYS, P.ON_FAILURE, P.ON_ABNORMAL},
    R.PROTOCOL: {P.ALWAYS, P.ON_FAILURE, P.ON_ABNORMAL},
    R.START_LIMIT_HIT: set(),
    R.DEPENDENCY: set(),
    R.TRIGGER_LIMIT_HIT: set(),  # socket results: a socket unit never restarts
    R.SERVICE_START_LIMIT_HIT: set(),
    R.ASSERT: set(),
}


@pytest.mark.parametrize("result", list(Result))
@pytest.mark.parametrize("policy", list(RestartPolicy))
def test_restart_table(policy: RestartPolicy, result: Result) -> None:
    assert should_restart(policy, result) is (policy in TABLE[result])


def test_burst_3_allows_exactly_3_attempts_in_the_window() -> None:
    limit = StartLimit.of(3, 10.0)
    allowed = []
    for attempt in range(5):
        limit, ok = limit.attempt(attempt * 100_000)  # RestartSec=100ms
        allowed.append(ok)
    assert allowed == [True, True, True, False, False]


def test_the_window_is_fixed_and_reopens_after_the_interval() -> None:
    limit = StartLimit.of(2, 10.0)
    limit, ok1 = limit.attempt(0)
    limit, ok2 = limit.attempt(9 * SEC)
    limit, ok3 = limit.attempt(10 * SEC)  # not more than the interval since the window opened
    assert (ok1, ok2, ok3) == (True, True, False)
    limit, ok4 = limit.attempt(10 * SEC + 1)  # a new window opens at the first later attempt
    limit, ok5 = limit.attempt(11 * SEC)
    limit, ok6 = limit.attempt(12 * SEC)
    assert (ok4, ok5, ok6) == (True, True, False)


def test_zero_burst_or_interval_disables_the_limit() -> None:
    for limit in (StartLimit.of(0, 10.0), StartLimit.of(5, 0.0)):
        for now in range(100):
            limit, ok = limit.attempt(now)
            assert ok


def test_infinite_interval_never_reopens() -> None:
    limit = StartLimit.of(1, float("inf"))
    limit, first = limit.attempt(0)
    limit, later = limit.attempt(10**15)
    assert first and not later


@given(
    burst=st.integers(1, 20),
    interval=st.integers(1, 10**8),
    gaps=st.lists(st.integers(0, 10**7), min_size=1, max_size=60),
)
def test_never_more_than_burst_admitted_within_any_window(
    burst: int, interval: int, gaps: list[int]
) -> None:
    limit = StartLimit(burst, interval)
    now = 0
    admitted: list[int] = []
    for gap in gaps:
        now += gap
        limit, ok = limit.attempt(now)
        if ok:
            admitted.append(now)
    # the first attempt of each window opens it; never more than `burst` per window
    window_start = None
    count = 0
    for stamp in admitted:
        if window_start is None or stamp - window_start > interval:
            window_start, count = stamp, 0
        count += 1
        assert count <= burst


def test_seconds_to_usec() -> None:
    assert seconds_to_usec(0.1) == 100_000
    assert seconds_to_usec(90) == 90 * SEC
    assert seconds_to_usec(0) is None
    assert seconds_to_usec(float("inf")) is None
    assert seconds_to_usec(1e-9) == 1
