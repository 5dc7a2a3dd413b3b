"""The unit supervisor and unit actors with fake processes (tests/actors/fake_io.py).

Real pykka actors, the real scheduler, fake OS: boot ordering, Requires= propagation,
OnFailure= once, ExitContainerOnFailure=, reverse stop order, stop mid-boot, kill,
signal forwarding, and supervision (every way an actor can break). Each test takes
milliseconds; order is asserted from the fake world's log, never from timings.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pykka
import pytest
from fake_io import FakeNotify, FakeWorld
from supervision_support import RecordingRoot, notify, svc, unit_set

from cinit.actors.root import ForwardSignal, KillAllUnits, StopAllUnits
from cinit.actors.scheduler import Scheduler
from cinit.actors.supervisor import MAX_RESTARTS, BootUnits, StartUnit, StopUnit, UnitSupervisor
from cinit.actors.unit import UnitActor
from cinit.io import log as cinit_log
from cinit.machines import lifecycle as lc
from cinit.machines.unit_model import State

pytestmark = pytest.mark.timeout(30)


class Harness:
    """A supervisor over fake units; `boot`, `stop_all`, and what it saw."""

    def __init__(self, units: dict[str, str]) -> None:
        self.scheduler = Scheduler().start()
        self.world = FakeWorld(self.scheduler)
        self.root = RecordingRoot()
        self.closing = threading.Event()
        self.ref = UnitSupervisor.start(
            unit_set(units), self.world.factory, self.scheduler, closing=self.closing
        )

    def boot(self) -> Harness:
        self.ref.tell(BootUnits(self.root))
        return self

    def stop_all(self, timeout: float = 5.0) -> None:
        self.ref.tell(StopAllUnits())
        assert self.root.stopped.wait(timeout), f"no UnitsStopped; log: {self.world.log}"

    def state(self, name: str) -> State | None:
        states = self.ref.proxy().states.get(timeout=5)
        return states.get(name)

    def wait_state(self, name: str, state: State, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while self.state(name) is not state:
            if time.monotonic() > deadline:
                raise AssertionError(f"{name} never {state} (is {self.state(name)})")
            time.sleep(0.005)

    def attribute(self, name: str) -> Any:
        return getattr(self.ref.proxy(), name).get(timeout=5)

    def close(self) -> None:
        self.closing.set()
        pykka.ActorRegistry.stop_all(block=True, timeout=5)
        self.scheduler.stop()


@pytest.fixture
def harness() -> Iterator[Callable[[dict[str, str]], Harness]]:
    made: list[Harness] = []

    def make(units: dict[str, str]) -> Harness:
        made.append(Harness(units))
        return made[-1]

    yield make
    for one in made:
        one.close()


@pytest.fixture(autouse=True)
def quiet_logs(capfd: pytest.CaptureFixture[str]) -> None:
    cinit_log.set_verbose(False)


# ---- boot ordering -------------------------------------------------------------------------


def test_a_unit_starts_only_after_what_it_is_ordered_after_is_ready(harness: Any) -> None:
    h = harness(
        {
            "a.service": notify(30),
            "b.service": notify(30, unit="After=a.service"),
            "c.service": notify(0, unit="After=b.service"),
        }
    ).boot()
    h.wait_state("c.service", State.ACTIVE)
    w = h.world
    assert w.index("ready", "a.service") < w.index("spawn", "b.service")
    assert w.index("ready", "b.service") < w.index("spawn", "c.service")


def test_independent_units_start_together(harness: Any) -> None:
    # Notify services that get ready only when told: all ten are spawned while none is
    # ready (a start that waited for another's readiness would never spawn the rest).
    names = [f"u{i}.service" for i in range(10)]
    h = harness({name: svc("/fake run", service="Type=notify") for name in names}).boot()
    w = h.world
    for name in names:
        w.wait_for("spawn", name)
    assert not [entry for entry in w.log if entry[0] == "ready"], w.log
    for process in list(w.processes.values()):
        w.notify_ready(process)
    for name in names:
        h.wait_state(name, State.ACTIVE)


def test_requires_failure_fails_the_dependent_but_after_alone_does_not(
    harness: Any, capfd: pytest.CaptureFixture[str]
) -> None:
    h = harness(
        {
            "db.service": svc("/fake exit 1 10", service="Type=notify"),
            "app.service": notify(0, unit="After=db.service\nRequires=db.service"),
            "side.service": notify(0, unit="After=db.service"),
            "free.service": notify(0, unit="Wants=db.service\nAfter=db.service"),
        }
    ).boot()
    h.wait_state("side.service", State.ACTIVE)
    h.wait_state("free.service", State.ACTIVE)
    h.wait_state("app.service", State.FAILED)
    assert h.world.entries("spawn", "app.service") == []
    err = capfd.readouterr().err
    assert "cinit: db.service: failed (protocol)" in err or "db.service: failed" in err
    assert "cinit: app.service: failed (dependency)" in err


def test_condition_skipped_unit_lets_dependents_start(harness: Any) -> None:
    h = harness(
        {
            "opt.service": svc("/fake run", unit="ConditionPathExists=/nonexistent"),
            "app.service": notify(0, unit="After=opt.service\nRequires=opt.service"),
        }
    )
    h.world.unmet["opt.service"] = "ConditionPathExists=/nonexistent"
    h.boot()
    h.wait_state("app.service", State.ACTIVE)
    assert h.state("opt.service") is State.CONDITION_SKIPPED


def test_trigger_only_units_wait_for_their_trigger_and_do_not_block(harness: Any) -> None:
    h = harness(
        {
            "web.service": svc("/fake run", unit="OnFailure=fix.service"),
            "fix.service": svc("/fake exit 0", service="Type=oneshot"),
            "after-fix.service": notify(0, unit="After=fix.service"),
        }
    ).boot()
    h.wait_state("after-fix.service", State.ACTIVE)  # fix.service was never asked: no wait
    assert h.world.entries("spawn", "fix.service") == []


def test_wants_pulls_a_trigger_only_unit_in(harness: Any) -> None:
    h = harness(
        {
            "web.service": svc("/fake run", unit="OnFailure=fix.service"),
            "fix.service": svc("/fake run"),
            "helper.service": svc("/fake run", unit="Wants=fix.service"),
        }
    ).boot()
    h.wait_state("fix.service", State.ACTIVE)


# ---- failure handling ----------------------------------------------------------------------


def test_on_failure_runs_once_after_the_restart_policy_is_exhausted(
    harness: Any, capfd: pytest.CaptureFixture[str]
) -> None:
    h = harness(
        {
            "crash.service": svc(
                "/fake exit 1 5",
                unit="OnFailure=fix.service\nStartLimitBurst=3\nStartLimitIntervalSec=10s",
                service="Restart=on-failure\nRestartSec=10ms",
            ),
            "fix.service": svc("/fake exit 0", service="Type=oneshot"),
        }
    ).boot()
    h.wait_state("crash.service", State.FAILED)
    h.world.wait_for("exit", "fix.service")
    time.sleep(0.05)  # room for a wrong second trigger to show up
    assert len(h.world.entries("spawn", "crash.service")) == 3
    assert len(h.world.entries("spawn", "fix.service")) == 1
    err = capfd.readouterr().err
    assert err.count("cinit: crash.service: starting OnFailure= units: fix.service") == 1
    assert "cinit: crash.service: failed (start-limit-hit)" in err


def test_exit_container_on_failure_asks_the_root(harness: Any) -> None:
    h = harness({"gate.service": svc("/fake exit 42 5", service="ExitContainerOnFailure=yes")})
    h.boot()
    h.wait_state("gate.service", State.FAILED)
    deadline = time.monotonic() + 5
    while not h.root.exits() and time.monotonic() < deadline:
        time.sleep(0.005)
    (request,) = h.root.exits()
    assert request.status == 42
    assert request.reason == (
        "gate.service failed with ExitContainerOnFailure=yes (exit-code); shutting down"
    )


def test_a_spawn_failure_is_reported_as_exit_code(harness: Any) -> None:
    h = harness({"bad.service": svc("/fake fail-spawn 127", service="ExitContainerOnFailure=yes")})
    h.boot()
    h.wait_state("bad.service", State.FAILED)
    deadline = time.monotonic() + 5
    while not h.root.exits() and time.monotonic() < deadline:
        time.sleep(0.005)
    assert h.root.exits()[0].status == 127


# ---- stopping ------------------------------------------------------------------------------


def test_stop_all_goes_in_reverse_dependency_order(harness: Any) -> None:
    h = harness(
        {
            "a.service": notify(0),
            "b.service": notify(0, unit="After=a.service"),
            # c holds its branch up: it ignores SIGTERM, until SIGKILL after 1 s
            "c.service": svc("/fake stubborn", unit="After=b.service", service="TimeoutStopSec=1s"),
            "d.service": notify(0),
        }
    ).boot()
    for name in "abcd":
        h.wait_state(f"{name}.service", State.ACTIVE)
    h.ref.tell(StopAllUnits())
    h.world.wait_for("exit", "d.service")  # the independent branch stops meanwhile
    h.world.wait_for("signal", "c.service")
    assert h.world.entries("signal", "b.service") == []  # b waits for c, a for b
    assert h.world.entries("signal", "a.service") == []
    assert h.root.stopped.wait(5)
    w = h.world
    assert w.index("exit", "c.service") < w.index("signal", "b.service")
    assert w.index("exit", "b.service") < w.index("signal", "a.service")
    for name in "abcd":
        assert h.state(f"{name}.service") is State.INACTIVE
    assert [m for m in h.root.messages if isinstance(m, lc.UnitsStopped)] == [lc.UnitsStopped()]


def test_stop_during_boot_cancels_pending_starts(harness: Any) -> None:
    h = harness(
        {
            "slow.service": notify(10_000),
            "later.service": notify(0, unit="After=slow.service"),
        }
    ).boot()
    h.world.wait_for("spawn", "slow.service")
    h.stop_all()
    assert h.world.entries("spawn", "later.service") == []
    assert h.state("later.service") is State.INACTIVE
    assert h.state("slow.service") is State.INACTIVE


def test_kill_all_units_sigkills_what_ignores_the_stop_signal(harness: Any) -> None:
    h = harness({"stubborn.service": svc("/fake stubborn")}).boot()
    h.wait_state("stubborn.service", State.ACTIVE)
    h.ref.tell(StopAllUnits())
    h.world.wait_for("signal", "stubborn.service")
    assert not h.root.stopped.is_set()
    h.ref.tell(KillAllUnits())
    assert h.root.stopped.wait(5)
    assert (signal.SIGKILL) in [d for _, _, d in h.world.entries("signal", "stubborn.service")]


def test_stopping_a_required_unit_stops_its_dependents_first(harness: Any) -> None:
    h = harness(
        {
            "db.service": notify(0),
            "app.service": notify(0, unit="Requires=db.service\nAfter=db.service"),
            "other.service": notify(0),
        }
    ).boot()
    for name in ("db", "app", "other"):
        h.wait_state(f"{name}.service", State.ACTIVE)
    h.ref.tell(StopUnit("db.service"))
    h.wait_state("db.service", State.INACTIVE)
    assert h.state("app.service") is State.INACTIVE
    assert h.world.index("exit", "app.service") < h.world.index("signal", "db.service")
    assert h.state("other.service") is State.ACTIVE


def test_forward_signal_reaches_every_main_process(harness: Any) -> None:
    h = harness({"a.service": svc("/fake stubborn"), "b.service": svc("/fake stubborn")}).boot()
    h.wait_state("a.service", State.ACTIVE)
    h.wait_state("b.service", State.ACTIVE)
    h.ref.tell(ForwardSignal(signal.SIGHUP))
    h.world.wait_for("signal", "a.service")
    h.world.wait_for("signal", "b.service")
    assert h.world.entries("signal", "a.service") == [("signal", "a.service", signal.SIGHUP)]


def test_start_unit_runs_a_unit_on_request(harness: Any) -> None:
    h = harness(
        {
            "web.service": svc("/fake run", unit="OnFailure=fix.service"),
            "fix.service": svc("/fake run"),
        }
    ).boot()
    h.ref.tell(StartUnit("fix.service"))
    h.wait_state("fix.service", State.ACTIVE)


# ---- supervision: every way an actor can break ---------------------------------------------


def crashes(h: Harness) -> int:
    return int(h.attribute("crash_count"))


def test_exception_while_handling_a_message_restarts_the_actor(
    harness: Any, capfd: pytest.CaptureFixture[str]
) -> None:
    h = harness({"a.service": notify(0)}).boot()
    h.wait_state("a.service", State.ACTIVE)
    h.world.ios["a.service"].fail_next["signal_unit"] = RuntimeError("injected")
    h.stop_all()  # the stop's SignalUnit raises: the actor breaks, is restarted, goes on
    assert crashes(h) == 1
    assert h.state("a.service") is State.INACTIVE
    err = capfd.readouterr().err
    assert "internal error in the actor of a.service" in err
    assert "RuntimeError: injected" in err


def test_system_exit_in_an_actor_does_not_stop_the_others(harness: Any) -> None:
    h = harness({"a.service": svc("/fake run"), "b.service": notify(50)})
    h.world.failures["a.service"] = {"spawn": SystemExit("injected")}
    h.boot()
    h.wait_state("b.service", State.ACTIVE)  # pykka would have stopped every actor
    h.wait_state("a.service", State.FAILED)  # the broken spawn counts as a failed start
    assert crashes(h) == 1
    assert h.ref.is_alive()


def test_exception_in_on_start_restarts_the_actor(
    harness: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = UnitActor._resume
    broken = {"left": 1}

    def resume(self: UnitActor) -> None:
        if broken["left"]:
            broken["left"] -= 1
            raise RuntimeError("on_start broke")
        original(self)

    monkeypatch.setattr(UnitActor, "_resume", resume)
    h = harness({"a.service": notify(0)}).boot()
    h.wait_state("a.service", State.ACTIVE)  # the StartRequested waited in the slot
    assert crashes(h) == 1


def test_exception_in_the_actors_constructor_is_retried(
    harness: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = UnitActor.__init__
    broken = {"left": 2}

    def init(self: UnitActor, *args: Any, **kwargs: Any) -> None:
        if broken["left"]:
            broken["left"] -= 1
            raise RuntimeError("constructor broke")
        original(self, *args, **kwargs)

    monkeypatch.setattr(UnitActor, "__init__", init)
    h = harness({"a.service": notify(0)}).boot()
    h.wait_state("a.service", State.ACTIVE)
    assert crashes(h) == 2


def test_an_actor_stopped_from_outside_is_restarted_and_loses_nothing(harness: Any) -> None:
    h = harness({"a.service": svc("/fake run", service="Restart=no")}).boot()
    h.wait_state("a.service", State.ACTIVE)
    (ref,) = pykka.ActorRegistry.get_by_class(UnitActor)
    ref.stop()
    # The process exits while the actor is being replaced: the exit must still arrive.
    (process,) = [p for p in h.world.processes.values() if p.unit == "a.service"]
    h.world.end(process, 3, None)
    h.wait_state("a.service", State.FAILED)
    assert crashes(h) == 1


def test_no_message_is_lost_when_an_actor_breaks(
    harness: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = UnitActor._handle
    gate = threading.Event()

    def handle(self: UnitActor, message: Any) -> None:
        if isinstance(message, FakeNotify) and message.fields.get("POISON"):
            gate.wait(5)  # hold the actor while more messages queue up behind this one
            raise ValueError("poisoned")
        original(self, message)

    monkeypatch.setattr(UnitActor, "_handle", handle)
    h = harness({"a.service": svc("/fake run")}).boot()
    h.wait_state("a.service", State.ACTIVE)
    io = h.world.ios["a.service"]
    (process,) = io.mine.values()
    io.owner.tell(FakeNotify("a.service", process.pid, {"POISON": "1"}))
    h.world.end(process, 7, None)  # queued behind the poison
    gate.set()
    h.wait_state("a.service", State.FAILED)
    assert crashes(h) == 1


def test_an_actor_that_keeps_breaking_is_given_up_and_counts_as_failed(
    harness: Any, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    def resume(self: UnitActor) -> None:
        raise RuntimeError("always broken")

    monkeypatch.setattr(UnitActor, "_resume", resume)
    h = harness(
        {
            "bad.service": svc("/fake run"),
            "dep.service": svc("/fake run", unit="Requires=bad.service\nAfter=bad.service"),
        }
    ).boot()
    deadline = time.monotonic() + 5
    while crashes(h) < MAX_RESTARTS + 1 and time.monotonic() < deadline:
        time.sleep(0.005)
    h.stop_all()  # abandoned units count as stopped: the shutdown completes
    err = capfd.readouterr().err
    assert "giving up on bad.service" in err
    assert "cinit: bad.service: failed (resources)" in err
    assert h.world.entries("spawn") == []


def test_the_supervisor_survives_its_own_exceptions(
    harness: Any, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    broken = {"left": 1}
    original = UnitSupervisor._on_report

    def on_report(self: UnitSupervisor, name: str, item: Any) -> None:
        if broken["left"]:
            broken["left"] -= 1
            raise KeyboardInterrupt("injected into the supervisor")
        original(self, name, item)

    monkeypatch.setattr(UnitSupervisor, "_on_report", on_report)
    h = harness({"a.service": svc("/fake run"), "b.service": notify(20)}).boot()
    h.wait_state("b.service", State.ACTIVE)
    assert h.attribute("internal_errors") == 1
    h.stop_all()
    assert "internal error in the unit supervisor" in capfd.readouterr().err


# ---- timers (issue 17) ---------------------------------------------------------------------


def test_without_timer_support_a_timer_only_counts_and_its_service_waits(harness: Any) -> None:
    h = harness(
        {
            "t.timer": "[Timer]\nOnBootSec=0\n",
            "t.service": svc("/fake ok"),
            "other.service": notify(0, unit="After=t.timer"),
        }
    ).boot()
    h.wait_state("other.service", State.ACTIVE)  # the timer settled: what waits for it goes on
    assert h.state("t.service") is None  # a timer's service is not started at boot
    assert h.attribute("timer_keeper") is None
    h.stop_all()


def test_a_timer_starts_its_service_again_and_again_and_a_stop_disarms_it(
    tmp_path: Any,
) -> None:
    from cinit.actors.timer_keeper import TimerSupport
    from cinit.io.timer_stamps import TimerStamps

    scheduler = Scheduler().start()
    world = FakeWorld(scheduler)
    units = {
        "t.timer": "[Timer]\nOnBootSec=0\nOnUnitInactiveSec=50ms\nAccuracySec=1ms\n",
        "t.service": svc("/fake exit 3", service="Type=oneshot"),  # fails each time
    }
    support = TimerSupport(TimerStamps(str(tmp_path)), time.monotonic())
    root = RecordingRoot()
    ref = UnitSupervisor.start(unit_set(units), world.factory, scheduler, timers=support)
    try:
        ref.tell(BootUnits(root))

        def spawns() -> int:
            return sum(1 for entry in world.log if entry[0] == "spawn")

        deadline = time.monotonic() + 10
        while spawns() < 3:
            assert time.monotonic() < deadline, world.log
            time.sleep(0.01)
        ref.tell(StopUnit("t.timer"))
        time.sleep(0.3)
        settled = spawns()
        time.sleep(0.3)  # six intervals: a live timer would have started it again
        assert spawns() <= settled + 1
        assert ref.proxy().states.get(timeout=5).get("t.timer") is State.INACTIVE
    finally:
        pykka.ActorRegistry.stop_all(block=True, timeout=5)
        scheduler.stop()
