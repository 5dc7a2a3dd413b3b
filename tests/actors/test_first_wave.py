"""The first wave of boot (cinit/actors/first_wave.py) with fake processes.

The units that wait for nothing are started in the calling thread before any actor
exists; the supervisor then puts actors on their slots and must carry on exactly as if it
had started them itself: one spawn per unit, every transition reported in order, exits and
readiness that arrived before the actor not lost, failures handled by the usual policy.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pykka
import pytest
from fake_io import FakeWorld
from supervision_support import RecordingRoot, notify, svc, unit_set

from cinit.actors.first_wave import first_wave, start_first_wave
from cinit.actors.scheduler import Scheduler
from cinit.actors.supervisor import BootUnits, UnitSupervisor
from cinit.actors.unit_slot import Postbox, UnitSlot
from cinit.io import log as cinit_log
from cinit.machines.unit_events import Transition
from cinit.machines.unit_model import State
from cinit.units.loader import UnitSet

pytestmark = pytest.mark.timeout(30)


class EventSink:
    """Stands in for the event hub: the transitions the supervisor passes on, in order."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.transitions: list[Transition] = []

    def tell(self, item: Any) -> None:
        if isinstance(item, Transition):
            with self.lock:
                self.transitions.append(item)

    def of(self, unit: str) -> list[tuple[State, State]]:
        with self.lock:
            return [(t.old, t.new) for t in self.transitions if t.unit == unit]


class Boot:
    """A first wave over fake units, then the supervisor that takes it over."""

    def __init__(self, units: dict[str, str]) -> None:
        self.units: UnitSet = unit_set(units)
        self.scheduler = Scheduler().start()
        self.world = FakeWorld(self.scheduler)
        self.events = EventSink()
        self.root = RecordingRoot()
        self.closing = threading.Event()
        self.slots: dict[str, UnitSlot] = {}
        self.reports = Postbox()
        self.ref: Any = None

    def first_wave(self) -> Boot:
        gate = lambda: self.world.record("gate-opened", "*")  # noqa: E731
        self.slots = start_first_wave(
            self.units,
            self.world.factory,
            reports=self.reports,
            timers=self.scheduler,
            open_gate=gate,
        )
        return self

    def supervise(self) -> Boot:
        self.ref = UnitSupervisor.start(
            self.units,
            self.world.factory,
            self.scheduler,
            events=self.events,
            closing=self.closing,
            started=self.slots,
            reports=self.reports,
        )
        self.ref.tell(BootUnits(self.root))
        return self

    def wait_state(self, name: str, state: State, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            seen = self.events.of(name)
            if seen and seen[-1][1] is state:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"{name} never {state}: {seen}; log {self.world.log}")
            time.sleep(0.005)

    def close(self) -> None:
        self.closing.set()
        pykka.ActorRegistry.stop_all(block=True, timeout=5)
        self.scheduler.stop()


@pytest.fixture
def boot() -> Iterator[Any]:
    made: list[Boot] = []

    def make(units: dict[str, str]) -> Boot:
        made.append(Boot(units))
        return made[-1]

    yield make
    for one in made:
        one.close()


@pytest.fixture(autouse=True)
def quiet_logs() -> None:
    cinit_log.set_verbose(False)


def test_the_first_wave_is_what_the_supervisor_releases_at_once() -> None:
    units = unit_set(
        {
            "a.service": svc("/fake run", unit="OnFailure=rescue.service"),
            "b.service": svc("/fake run", unit="After=a.service"),
            "c.service": svc("/fake run", unit="After=gone.service"),  # not loaded: no wait
            "rescue.service": svc("/fake run"),  # only a failure of a starts it
            "fix.service": svc("/fake run"),
            "d.service": svc("/fake run", unit="Wants=fix.service\nAfter=fix.service"),
        }
    )
    # b waits for a, d for fix; rescue waits for a failure.
    assert first_wave(units) == ["a.service", "c.service", "fix.service"]


SOCKET_UNITS = {
    "a.service": notify(0),
    "web.service": svc("/fake run"),  # the socket triggers it
    "web.socket": "[Socket]\nListenStream=127.0.0.1:0\n",
    "after.service": notify(0, unit="After=web.socket"),
    "needs.service": notify(0, unit="Requires=web.socket"),
}


def test_the_first_wave_leaves_out_only_the_services_tied_to_a_socket() -> None:
    # Every socket is bound before the first wave; whoever depends on how that went waits.
    assert first_wave(unit_set(SOCKET_UNITS)) == ["a.service"]


def test_the_first_wave_runs_with_a_socket_unit_loaded(boot: Any) -> None:
    b = boot(SOCKET_UNITS).first_wave()
    assert [e[1] for e in b.world.entries("spawn")] == ["a.service"]
    assert pykka.ActorRegistry.get_all() == []
    b.supervise()
    for name in ("a.service", "after.service", "needs.service"):
        b.wait_state(name, State.ACTIVE)
    assert len(b.world.entries("spawn", "a.service")) == 1
    assert b.world.entries("spawn", "web.service") == []  # nothing connected


def test_first_wave_spawns_before_any_actor_then_the_supervisor_takes_over(boot: Any) -> None:
    b = boot({"a.service": notify(20), "b.service": notify(0, unit="After=a.service")})
    b.first_wave()
    assert [e[1] for e in b.world.entries("spawn")] == ["a.service"]
    assert pykka.ActorRegistry.get_all() == []  # no actor exists yet
    assert b.slots["a.service"].model.state is State.RUNNING
    b.supervise()
    b.wait_state("b.service", State.ACTIVE)
    b.wait_state("a.service", State.ACTIVE)
    # One spawn each: the supervisor did not start a again.
    assert len(b.world.entries("spawn", "a.service")) == 1
    assert len(b.world.entries("spawn", "b.service")) == 1
    assert b.world.index("ready", "a.service") < b.world.index("spawn", "b.service")
    # Every transition of a reached the event stream, in order, each once.
    assert b.events.of("a.service") == [
        (State.INACTIVE, State.WAITING),
        (State.WAITING, State.STARTING),
        (State.STARTING, State.RUNNING),
        (State.RUNNING, State.ACTIVE),
    ]


def test_first_wave_starts_every_command_before_waiting_for_any_exec(boot: Any) -> None:
    names = [f"u{i}.service" for i in range(5)]
    b = boot({name: notify(0) for name in names}).first_wave()
    w = b.world

    def span(what: str) -> tuple[int, int]:
        positions = [w.index(what, name) for name in names]
        assert -1 not in positions, (what, w.log)
        return min(positions), max(positions)

    started, confirmed = span("launch-started"), span("exec-confirmed")
    assert started[1] < confirmed[0], w.log
    # The prepared children exec together: the gate opens once, between the two.
    gate = [i for i, entry in enumerate(w.log) if entry[0] == "gate-opened"]
    assert len(gate) == 1 and started[1] < gate[0] < confirmed[0], w.log


def test_transitions_of_the_first_wave_carry_when_they_happened(boot: Any) -> None:
    b = boot({"a.service": svc("/fake run")})
    before = time.monotonic()
    b.first_wave()
    after = time.monotonic()
    time.sleep(0.05)  # the actors come later
    b.supervise()
    b.wait_state("a.service", State.ACTIVE)
    with b.events.lock:
        stamps = [t.at for t in b.events.transitions if t.unit == "a.service"]
    assert all(stamp is not None and before <= stamp <= after for stamp in stamps), stamps


def test_readiness_and_exits_before_the_actor_exists_are_not_lost(boot: Any) -> None:
    b = boot(
        {
            "quick.service": notify(0),  # READY=1 at once
            "brief.service": svc("/fake exit 0", service="Type=oneshot"),
            "crash.service": svc("/fake exit 3"),
        }
    )
    b.first_wave()
    b.world.wait_for("ready", "quick.service")
    b.world.wait_for("exit", "brief.service")
    b.world.wait_for("exit", "crash.service")
    b.supervise()  # every message above waited in a slot
    b.wait_state("quick.service", State.ACTIVE)
    b.wait_state("brief.service", State.EXITED)
    b.wait_state("crash.service", State.FAILED)


def test_an_unmet_condition_skips_a_first_wave_unit_without_a_spawn(boot: Any) -> None:
    b = boot(
        {
            "opt.service": svc("/fake run", unit="ConditionPathExists=/nope"),
            "next.service": notify(0, unit="After=opt.service"),
        }
    )
    b.world.unmet["opt.service"] = "ConditionPathExists=/nope"
    b.first_wave()
    assert b.world.entries("spawn") == []
    b.supervise()
    b.wait_state("opt.service", State.CONDITION_SKIPPED)
    b.wait_state("next.service", State.ACTIVE)  # a skipped unit is not a failure
    assert b.world.entries("discard_prepared", "opt.service")  # its prepared child goes


def test_a_spawn_failure_in_the_first_wave_follows_the_restart_policy(boot: Any) -> None:
    b = boot(
        {
            "flaky.service": svc(
                "/fake fail-spawn 126",
                unit="StartLimitBurst=2\nStartLimitIntervalSec=10s",
                service="Restart=on-failure\nRestartSec=10ms",
            ),
            "bad.service": svc("/fake fail-spawn 127", service="ExitContainerOnFailure=yes"),
        }
    )
    b.first_wave()
    b.supervise()
    b.wait_state("flaky.service", State.FAILED)
    assert len(b.world.entries("spawn-failed", "flaky.service")) == 2  # start limit 2
    b.wait_state("bad.service", State.FAILED)
    deadline = time.monotonic() + 5
    while not b.root.exits() and time.monotonic() < deadline:
        time.sleep(0.005)
    assert b.root.exits()[0].status == 127


def test_a_bug_while_starting_early_leaves_the_unit_to_its_actor(
    boot: Any, capfd: pytest.CaptureFixture[str]
) -> None:
    b = boot({"a.service": notify(0, service="Restart=on-failure\nRestartSec=10ms")})
    b.world.failures["a.service"] = {"spawn": RuntimeError("spawn broke")}
    b.first_wave()  # does not raise
    assert "internal error starting a.service early" in capfd.readouterr().err
    b.supervise()
    # The actor answers the broken spawn as a failed one; the restart policy starts it again.
    b.wait_state("a.service", State.ACTIVE)
    assert len(b.world.entries("spawn", "a.service")) == 1


def test_a_first_wave_units_start_timeout_is_armed_when_its_start_runs(boot: Any) -> None:
    # Never ready: TimeoutStartSec=1s stops it. The supervisor comes 0.6 s later; a timer
    # armed only by the actor would fire ~1.6 s after the start, not ~1 s.
    b = boot({"slow.service": svc("/fake run", service="Type=notify\nTimeoutStartSec=1s")})
    b.first_wave()
    time.sleep(0.6)
    b.supervise()
    b.wait_state("slow.service", State.FAILED)
    with b.events.lock:
        seen = [t for t in b.events.transitions if t.unit == "slow.service"]
    started = next(t.at for t in seen if t.new is State.STARTING)
    timed_out = next(t.at for t in seen if t.reason == "start timeout")
    assert started is not None and timed_out is not None, seen
    assert 1.0 <= timed_out - started < 1.5, [(t.new, t.reason, t.at) for t in seen]
