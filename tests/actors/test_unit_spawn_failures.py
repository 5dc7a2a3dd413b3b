"""Commands that cannot be started: every spawn failure ends a run like an exit would. Pure.

Issue 13 (3): a unit whose User= named nobody stayed in `stopping` for ever. Whatever the io
reports for a command it could not start (systemd's EXIT_* status of the stage that failed,
or nothing for a lack of resources), the machine takes the unit down, looks once whether
anything of it is left, and ends in failed with that result, through the Restart= rules
and the start limit; the start request is answered, so that dependents are released.
Driven by `UnitSim` (tests/actors/unit_sim.py): no processes, a fake clock.
"""

from __future__ import annotations

import pytest
from unit_sim import SEC, UnitSim

from cinit.machines import unit_events as ev
from cinit.machines.restart import Result
from cinit.machines.unit_model import Outcome, Role, State, TimerKind

S = State

# What cinit's io reports for a command it could not start (cinit.io.spawn's
# STAGE_EXIT_CODES, 209 from cinit.actors.unit_io, a shell's 127/126 for exec itself).
SPAWN_STATUSES = {
    "chdir": 200,
    "fds": 202,
    "signals": 207,
    "output": 209,
    "group": 216,
    "user": 217,
    "cgroup": 219,
    "session": 220,
    "exec-not-found": 127,
    "exec-not-executable": 126,
}


def service(body: str, unit: str = "") -> str:
    return f"[Unit]\n{unit}\n[Service]\n{body}\n"


def settled(sim: UnitSim) -> list[tuple[Outcome, Result]]:
    return [(a.outcome, a.result) for a in sim.of_type(ev.ReportSettled)]


def failing(sim: UnitSim, role: Role, status: int | None) -> UnitSim:
    """Every spawn of `role` fails with `status` (None: resources); the others succeed."""
    sim.spawn_failure = lambda r, _index: status if r is role else False
    return sim


def exits(sim: UnitSim) -> list[tuple[State, int | None, int | None]]:
    """(new state, code, signal) of every transition that tells an exit."""
    return [
        (t.new, t.code, t.signal)
        for t in sim.of_type(ev.Transition)
        if t.code is not None or t.signal is not None
    ]


@pytest.mark.parametrize("status", SPAWN_STATUSES.values(), ids=SPAWN_STATUSES.keys())
def test_a_main_command_that_cannot_start_fails_with_its_status(status: int) -> None:
    sim = failing(UnitSim.of(service("ExecStart=/bin/app")), Role.START, status).boot()
    assert sim.states() == [S.WAITING, S.STARTING, S.STOPPING, S.FAILED]
    assert sim.model.result is Result.EXIT_CODE and sim.model.failure_code == status
    assert settled(sim) == [(Outcome.FAILED, Result.EXIT_CODE)]  # dependents are released
    assert sim.of_type(ev.RequestOnFailure) == [ev.RequestOnFailure(Result.EXIT_CODE)]
    assert exits(sim) == [(S.STOPPING, status, None), (S.FAILED, status, None)]
    assert sim.of_type(ev.CheckEmpty), "the unit is looked at once before it is let go"
    assert not sim.timers  # nothing left to wait for


@pytest.mark.parametrize("status", SPAWN_STATUSES.values(), ids=SPAWN_STATUSES.keys())
def test_restart_on_failure_retries_a_spawn_failure_up_to_the_start_limit(status: int) -> None:
    text = service(
        "ExecStart=/bin/app\nRestart=on-failure\nRestartSec=100ms",
        "StartLimitBurst=3\nStartLimitIntervalSec=10s",
    )
    sim = failing(UnitSim.of(text), Role.START, status).boot()
    for attempt in range(3):
        assert sim.state is S.AUTO_RESTART, (attempt, sim.states())
        assert sim.logs()[-1] == "a.service: restarting in 0.1s"
        sim.advance(100_000)
    assert sim.state is S.FAILED and sim.model.result is Result.START_LIMIT_HIT
    assert sim.states().count(S.STARTING) == 3  # the 4th attempt is refused
    assert settled(sim) == [(Outcome.FAILED, Result.START_LIMIT_HIT)]
    assert sim.of_type(ev.RequestOnFailure) == [ev.RequestOnFailure(Result.START_LIMIT_HIT)]
    restarts = [t for t in sim.of_type(ev.Transition) if t.new is S.AUTO_RESTART]
    assert [t.code for t in restarts] == [status] * 3
    assert not sim.timers


def test_restart_on_abnormal_does_not_retry_an_exit_status() -> None:
    # systemd: 217/USER is an exit code, not an abnormal end.
    text = service("ExecStart=/bin/app\nUser=nosuchuser\nRestart=on-abnormal")
    sim = failing(UnitSim.of(text), Role.START, 217).boot()
    assert sim.state is S.FAILED and sim.model.result is Result.EXIT_CODE
    assert S.AUTO_RESTART not in sim.states()


def test_a_spawn_failure_after_a_good_start_is_restarted_like_a_crash() -> None:
    # A fresh fork on restart (no prepared child any more) may fail where the first start
    # did not: the user was removed meanwhile.
    text = service(
        "ExecStart=/bin/app\nRestart=on-failure\nRestartSec=1s",
        "StartLimitBurst=2\nStartLimitIntervalSec=60s",
    )
    sim = UnitSim.of(text).boot()
    assert sim.state is S.ACTIVE
    failing(sim, Role.START, 217).exit_main(1)
    assert sim.state is S.AUTO_RESTART
    sim.advance(SEC)
    assert sim.state is S.AUTO_RESTART and sim.model.failure_code == 217
    sim.advance(SEC)
    assert sim.state is S.FAILED and sim.model.result is Result.START_LIMIT_HIT


def test_a_resources_failure_restarts_under_on_failure() -> None:
    text = service(
        "ExecStart=/bin/app\nRestart=on-failure\nRestartSec=100ms",
        "StartLimitBurst=2\nStartLimitIntervalSec=10s",
    )
    sim = failing(UnitSim.of(text), Role.START, None).boot()
    assert sim.state is S.AUTO_RESTART and sim.model.result is Result.RESOURCES
    sim.advance(100_000)
    assert sim.state is S.AUTO_RESTART
    sim.advance(100_000)
    assert sim.state is S.FAILED and sim.model.result is Result.START_LIMIT_HIT


@pytest.mark.parametrize("role", [Role.PRE, Role.POST])
def test_a_start_pre_or_post_command_that_cannot_start_fails_the_unit(role: Role) -> None:
    text = service(
        "ExecStartPre=/bin/pre\nExecStart=/bin/app\nExecStartPost=/bin/post\n"
        "ExecStopPost=/bin/cleanup"
    )
    sim = failing(UnitSim.of(text), role, 217).boot()
    if role is Role.PRE:
        assert sim.model.main_pid is None and not any(r is Role.START for r, _, _ in sim.spawned)
    else:
        sim.exit_control(0)  # ExecStartPre=
        assert sim.of_type(ev.SignalUnit), "the main process is stopped"
        sim.exit_main(signal=15)
    assert sim.state is S.STOPPING and sim.roles()[-1] == "ExecStopPost[0]"
    sim.exit_control(0)
    assert sim.state is S.FAILED and sim.model.failure_code == 217
    assert f"a.service: {role.value}= command failed (status=217)" in sim.logs()


def test_a_dash_excuses_a_start_pre_command_that_cannot_start() -> None:
    sim = UnitSim.of(service("ExecStartPre=-/bin/missing\nExecStart=/bin/app"))
    failing(sim, Role.PRE, 127).boot()
    assert sim.state is S.ACTIVE


def test_a_oneshot_command_that_cannot_start_fails_the_sequence() -> None:
    text = service("Type=oneshot\nExecStart=/bin/one\nExecStart=/bin/two\nUser=nosuchuser")
    sim = UnitSim.of(text)
    sim.spawn_failure = lambda role, index: 217 if index == 1 else False
    sim.boot().exit_main(0)
    assert sim.state is S.FAILED and sim.model.failure_code == 217
    assert settled(sim) == [(Outcome.FAILED, Result.EXIT_CODE)]


def test_a_spawn_failure_waits_for_leftovers_of_the_unit_then_fails() -> None:
    # The machine does not decide the unit is empty by itself: it asks (CheckEmpty) and
    # polls until nothing is left, then fails. A child left behind in the unit's cgroup
    # kept it polling until the stop timeout: the io must leave nothing behind.
    sim = failing(UnitSim.of(service("ExecStart=/bin/app\nTimeoutStopSec=5")), Role.START, 217)
    sim.group_empty = False
    sim.boot()
    assert sim.state is S.STOPPING
    assert any(kind is TimerKind.POLL for kind, _ in sim.timers)
    sim.group_empty = True
    sim.advance(100_000)
    assert sim.state is S.FAILED and sim.model.failure_code == 217


def test_a_stop_request_after_a_spawn_failure_is_answered_at_once() -> None:
    text = service("ExecStart=/bin/app\nRestart=on-failure\nRestartSec=10s")
    sim = failing(UnitSim.of(text), Role.START, 217).boot()
    assert sim.state is S.AUTO_RESTART
    sim.feed(ev.StopRequested())
    assert sim.state is S.INACTIVE
    assert sim.of_type(ev.ReportStopped) == [ev.ReportStopped()]
    assert not sim.timers
