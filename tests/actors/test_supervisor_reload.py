"""daemon-reload in the unit supervisor, with fake processes (tests/actors/fake_io.py).

Real pykka actors and scheduler, fake OS; the reader returns the next unit set. Checks the
semantics: running units keep their processes and take their new definition at their
next start; added units start on request; removed running units stay until stopped; a
refused set changes nothing; --apply stops, starts and restarts in order.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pykka
import pytest
from fake_io import FakeWorld
from supervision_support import RecordingRoot, svc, unit_set

from cinit.actors.scheduler import Scheduler
from cinit.actors.supervisor import BootUnits, StartUnit, StopUnit, UnitSupervisor
from cinit.io import log as cinit_log
from cinit.machines.requests import DaemonReload, LoadInstance
from cinit.machines.unit_events import Notice
from cinit.machines.unit_model import State
from cinit.units.diagnostics import Diagnostic, Severity
from cinit.units.loader import UnitSet

pytestmark = pytest.mark.timeout(30)


class Events:
    """The supervisor's `events` sink: the Notices it tells (Transitions are ignored)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.notices: list[Notice] = []

    def tell(self, item: object) -> None:
        if isinstance(item, Notice):
            with self.lock:
                self.notices.append(item)

    def named(self, event: str) -> list[Notice]:
        with self.lock:
            return [n for n in self.notices if n.event == event]

    def wait(self, event: str, count: int = 1) -> list[Notice]:
        deadline = time.monotonic() + 5
        while len(found := self.named(event)) < count:
            assert time.monotonic() < deadline, f"no {count}x {event}: {self.notices}"
            time.sleep(0.005)
        return found


class Reloading:
    def __init__(self, units: dict[str, str]) -> None:
        self.scheduler = Scheduler().start()
        self.world = FakeWorld(self.scheduler)
        self.root = RecordingRoot()
        self.closing = threading.Event()
        self.events = Events()
        self.next: UnitSet | Exception = unit_set(units)
        self.asked: list[list[str]] = []  # the instances each reading was given
        self.ref = UnitSupervisor.start(
            unit_set(units), self.world.factory, self.scheduler, closing=self.closing,
            events=self.events, reloader=self.read,
        )  # fmt: skip
        self.ref.tell(BootUnits(self.root))

    def read(self, instances: Any = ()) -> UnitSet:
        self.asked.append(list(instances))
        if isinstance(self.next, Exception):
            raise self.next
        return self.next

    def reload(self, units: dict[str, str] | UnitSet, apply: bool = False) -> Notice:
        self.next = units if isinstance(units, UnitSet) else unit_set(units)
        count = len(self.events.named("daemon-reloaded"))
        self.ref.tell(DaemonReload(apply))
        return self.events.wait("daemon-reloaded", count + 1)[-1]

    def state(self, name: str) -> State | None:
        states: dict[str, State] = self.ref.proxy().states.get(timeout=5)
        return states.get(name)

    def wait_state(self, name: str, state: State | None) -> None:
        deadline = time.monotonic() + 5
        while self.state(name) is not state:
            assert time.monotonic() < deadline, f"{name} never {state} (is {self.state(name)})"
            time.sleep(0.005)

    def close(self) -> None:
        self.closing.set()
        pykka.ActorRegistry.stop_all(block=True, timeout=5)
        self.scheduler.stop()


@pytest.fixture
def reloading() -> Iterator[Any]:
    made: list[Reloading] = []

    def make(units: dict[str, str]) -> Reloading:
        made.append(Reloading(units))
        return made[-1]

    yield make
    for one in made:
        one.close()


@pytest.fixture(autouse=True)
def quiet_logs() -> None:
    cinit_log.set_verbose(False)


def test_next_start_uses_the_new_definition_and_removed_units_go_once_stopped(
    reloading: Any,
) -> None:
    r = reloading({"a.service": svc("/fake a-v1"), "c.service": svc("/fake c")})
    r.wait_state("a.service", State.ACTIVE)
    r.wait_state("c.service", State.ACTIVE)
    outcome = r.reload({"a.service": svc("/fake a-v2"), "d.service": svc("/fake d")})
    assert outcome.fields["ok"] is True and outcome.fields["requested"] is True
    assert outcome.fields["diff"] == ["~ a.service: ExecStart", "- c.service", "+ d.service"]
    assert [n.unit for n in r.events.named("unit-added")] == ["d.service"]
    assert r.events.named("unit-changed")[0].fields["directives"] == ["ExecStart"]
    assert r.state("c.service") is State.ACTIVE  # removed, still running
    assert [e[2] for e in r.world.entries("spawn", "a.service")] == ["/fake a-v1"]

    r.ref.tell(StopUnit("a.service", restart=True))
    r.wait_state("a.service", State.INACTIVE)
    r.ref.tell(StartUnit("a.service"))
    r.wait_state("a.service", State.ACTIVE)
    assert [e[2] for e in r.world.entries("spawn", "a.service")] == ["/fake a-v1", "/fake a-v2"]
    r.ref.tell(StartUnit("d.service"))
    r.wait_state("d.service", State.ACTIVE)
    r.ref.tell(StopUnit("c.service"))
    assert [n.unit for n in r.events.wait("unit-removed")] == ["c.service"]
    r.wait_state("c.service", None)
    assert "c.service" not in r.ref.proxy().units.get(timeout=5)


def test_a_broken_set_or_a_failing_reader_changes_nothing(reloading: Any) -> None:
    r = reloading({"a.service": svc("/fake a")})
    r.wait_state("a.service", State.ACTIVE)
    broken = unit_set({"b.service": svc("/fake b")})
    bad = Diagnostic(Severity.ERROR, "Type=: 'sideways' is not a service type", "u/b.service")
    outcome = r.reload(broken.replace(diagnostics=(bad,)))
    assert outcome.fields["ok"] is False and "sideways" in outcome.fields["errors"][0]
    r.next = OSError("disk gone")
    count = len(r.events.named("daemon-reloaded"))
    r.ref.tell(DaemonReload())
    outcome = r.events.wait("daemon-reloaded", count + 1)[-1]
    assert outcome.fields["ok"] is False and "disk gone" in outcome.fields["errors"][0]
    assert set(r.ref.proxy().units.get(timeout=5)) == {"a.service"}
    assert r.state("a.service") is State.ACTIVE and not r.events.named("unit-added")


def test_apply_stops_removed_starts_added_and_restarts_changed(reloading: Any) -> None:
    r = reloading(
        {"a.service": svc("/fake a-v1"), "b.service": svc("/fake b"), "c.service": svc("/fake c")}
    )
    for name in ("a.service", "b.service", "c.service"):
        r.wait_state(name, State.ACTIVE)
    new = {"a.service": svc("/fake a-v2"), "b.service": svc("/fake b"), "d.service": svc("/fake d")}
    outcome = r.reload(new, apply=True)
    fields = outcome.fields
    assert (fields["started"], fields["stopped"], fields["restarted"]) == (
        ["d.service"],
        ["c.service"],
        ["a.service"],
    )
    r.wait_state("d.service", State.ACTIVE)
    r.events.wait("unit-removed")
    deadline = time.monotonic() + 5
    while len(r.world.entries("spawn", "a.service")) < 2:
        assert time.monotonic() < deadline, r.world.log
        time.sleep(0.005)
    r.wait_state("a.service", State.ACTIVE)
    assert [e[2] for e in r.world.entries("spawn", "a.service")] == ["/fake a-v1", "/fake a-v2"]
    assert len(r.world.entries("spawn", "b.service")) == 1  # unchanged: left alone


def test_apply_also_restarts_what_an_earlier_reload_changed_while_it_ran(reloading: Any) -> None:
    r = reloading({"a.service": svc("/fake a-v1"), "b.service": svc("/fake b-v1")})
    r.wait_state("a.service", State.ACTIVE)
    r.wait_state("b.service", State.ACTIVE)
    new = {"a.service": svc("/fake a-v2"), "b.service": svc("/fake b-v2")}
    assert r.reload(new).fields["diff"] == ["~ a.service: ExecStart", "~ b.service: ExecStart"]
    r.ref.tell(StopUnit("b.service", restart=True))  # b restarts by hand: up to date again
    r.wait_state("b.service", State.INACTIVE)
    r.ref.tell(StartUnit("b.service"))
    r.wait_state("b.service", State.ACTIVE)
    outcome = r.reload(new, apply=True)
    assert outcome.fields["diff"] == [] and outcome.fields["restarted"] == ["a.service"]
    deadline = time.monotonic() + 5
    while len(r.world.entries("spawn", "a.service")) < 2:
        assert time.monotonic() < deadline, r.world.log
        time.sleep(0.005)
    assert r.world.entries("spawn", "a.service")[-1][2] == "/fake a-v2"


def test_an_instance_is_made_on_demand_and_kept_by_later_reloads(reloading: Any) -> None:
    base = {"a.service": svc("/fake a")}
    r = reloading(base)
    r.wait_state("a.service", State.ACTIVE)
    # The reading has the instance when asked for it (as the loader makes it from its
    # template), and a second one its unit file names (Wants=).
    made = {
        **base,
        "greet@work.service": svc("/fake work", unit="Wants=greet@dep.service"),
        "greet@dep.service": svc("/fake dep"),
    }
    r.next = unit_set(made)
    r.ref.tell(LoadInstance("greet@work.service"))
    loaded = r.events.wait("instance-loaded")[-1]
    assert loaded.fields == {"instance": "greet@work.service", "ok": True}
    assert r.asked[-1] == ["greet@work.service"]
    assert sorted(n.unit for n in r.events.named("unit-added")) == [
        "greet@dep.service",
        "greet@work.service",
    ]
    assert r.state("greet@work.service") is None  # loaded, not started
    r.ref.tell(StartUnit("greet@work.service"))
    r.wait_state("greet@work.service", State.ACTIVE)
    r.wait_state("greet@dep.service", State.ACTIVE)  # its Wants=, as for any unit
    assert not r.events.named("daemon-reloaded")  # no daemon-reload was told
    # A daemon-reload reads them again: they stay.
    outcome = r.reload(made)
    assert outcome.fields["ok"] is True and outcome.fields["diff"] == []
    assert r.asked[-1] == ["greet@dep.service", "greet@work.service"]
    # Asked again (a second request raced the first): loaded already, nothing read.
    count = len(r.asked)
    r.ref.tell(LoadInstance("greet@work.service"))
    assert r.events.wait("instance-loaded", 2)[-1].fields["ok"] is True
    assert len(r.asked) == count


def test_an_instance_without_template_or_with_errors_is_refused(reloading: Any) -> None:
    base = {"a.service": svc("/fake a")}
    r = reloading(base)
    r.wait_state("a.service", State.ACTIVE)
    r.next = unit_set(base)  # no template: the reading has no such instance
    r.ref.tell(LoadInstance("nosuch@x.service"))
    refused = r.events.wait("instance-loaded")[-1].fields
    assert (refused["ok"], refused["code"]) == (False, 4)
    broken = unit_set({**base, "bad@x.service": svc("/fake bad")})
    path = broken.units["bad@x.service"].path
    bad = Diagnostic(Severity.ERROR, "Restart=: invalid value 'sometimes'", path, 3)
    elsewhere = Diagnostic(Severity.ERROR, "not this instance's file", "/elsewhere/b.service")
    r.next = broken.replace(diagnostics=(bad, elsewhere))
    r.ref.tell(LoadInstance("bad@x.service"))
    refused = r.events.wait("instance-loaded", 2)[-1].fields
    assert (refused["ok"], refused["code"]) == (False, 1)
    assert refused["errors"] == [bad.format()]  # its own file's findings, not the others'
    # --systemd leaves a unit with errors out, its findings softened to warnings: said.
    soft = Diagnostic(Severity.WARNING, "Restart=: invalid value [left out]", "/u/soft@.service")
    r.next = unit_set(base).replace(
        templates={"soft@.service": "/u/soft@.service"}, diagnostics=(soft,)
    )
    r.ref.tell(LoadInstance("soft@x.service"))
    refused = r.events.wait("instance-loaded", 3)[-1].fields
    assert (refused["code"], refused["errors"]) == (1, [soft.format()])
    assert set(r.ref.proxy().units.get(timeout=5)) == {"a.service"}
    assert not r.events.named("unit-added")
