"""BindsTo=, PartOf=, Conflicts= and Requisite= in the supervisor, with fake processes.

systemd.unit(5): BindsTo= pulls the unit in like Requires= and stops the bound unit's
dependents whenever it goes down (and, with After=, keeps them from starting unless it is
active); PartOf= propagates a stop one way; Conflicts= makes a start stop the other unit;
Requisite= starts nothing and fails the unit when the other is not active already.
The same on real processes: tests/e2e/test_e2e_lifecycle.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from supervision_support import notify, svc
from test_supervisor import Harness

from cinit.io import log as cinit_log
from cinit.machines.requests import StartUnit, StopUnit
from cinit.machines.unit_model import State

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def harness() -> Iterator[Callable[[dict[str, str]], Harness]]:
    made: list[Harness] = []

    def make(units: dict[str, str]) -> Harness:
        cinit_log.set_verbose(False)
        made.append(Harness(units))
        return made[-1]

    yield make
    for one in made:
        one.close()


def test_binds_to_stops_the_unit_when_the_bound_one_goes_down_by_itself(harness: Any) -> None:
    h = harness(
        {
            "db.service": svc("/fake exit 1 300"),
            "app.service": notify(0, unit="BindsTo=db.service\nAfter=db.service"),
            "other.service": notify(0, unit="After=db.service"),
        }
    ).boot()
    h.wait_state("app.service", State.ACTIVE)
    h.wait_state("db.service", State.FAILED)
    h.wait_state("app.service", State.INACTIVE)
    assert h.state("other.service") is State.ACTIVE  # After= alone binds nothing


def test_binds_to_pulls_the_bound_unit_in_and_an_explicit_stop_stops_both(harness: Any) -> None:
    h = harness(
        {
            "db.service": notify(0, unit="OnFailure=x.service"),
            "x.service": svc("/fake run", unit="OnFailure=db.service"),  # db: trigger-only
            "app.service": notify(0, unit="BindsTo=db.service\nAfter=db.service"),
        }
    ).boot()
    h.wait_state("app.service", State.ACTIVE)
    assert h.state("db.service") is State.ACTIVE  # started only because app binds to it
    h.ref.tell(StopUnit("db.service"))
    h.wait_state("db.service", State.INACTIVE)
    assert h.state("app.service") is State.INACTIVE
    assert h.world.index("exit", "app.service") < h.world.index("signal", "db.service")


def test_binds_to_and_after_a_skipped_unit_does_not_start(harness: Any) -> None:
    h = harness(
        {
            "db.service": notify(0),
            "app.service": notify(0, unit="BindsTo=db.service\nAfter=db.service"),
        }
    )
    h.world.unmet["db.service"] = "ConditionPathExists=/nope"
    h.boot()
    h.wait_state("db.service", State.CONDITION_SKIPPED)
    h.wait_state("app.service", State.INACTIVE)
    assert h.world.entries("spawn", "app.service") == []


def test_part_of_propagates_a_stop_one_way(harness: Any) -> None:
    h = harness(
        {
            "main.service": notify(0),
            "part.service": notify(0, unit="PartOf=main.service"),
        }
    ).boot()
    h.wait_state("main.service", State.ACTIVE)
    h.wait_state("part.service", State.ACTIVE)
    h.ref.tell(StopUnit("part.service"))
    h.wait_state("part.service", State.INACTIVE)
    assert h.state("main.service") is State.ACTIVE
    h.ref.tell(StartUnit("part.service"))
    h.wait_state("part.service", State.ACTIVE)
    h.ref.tell(StopUnit("main.service"))
    h.wait_state("main.service", State.INACTIVE)
    h.wait_state("part.service", State.INACTIVE)


def test_conflicts_the_later_unit_runs_and_a_start_stops_the_other(harness: Any) -> None:
    h = harness(
        {
            "a.service": notify(0, unit="Conflicts=b.service"),
            "b.service": notify(0),
        }
    ).boot()
    h.wait_state("b.service", State.ACTIVE)
    assert h.world.entries("spawn", "a.service") == []
    h.ref.tell(StartUnit("a.service"))
    h.wait_state("a.service", State.ACTIVE)
    h.wait_state("b.service", State.INACTIVE)
    h.ref.tell(StartUnit("b.service"))  # mutual: b's start stops a
    h.wait_state("b.service", State.ACTIVE)
    h.wait_state("a.service", State.INACTIVE)


def test_requisite_fails_when_the_unit_is_not_active_and_starts_nothing(
    harness: Any, capfd: pytest.CaptureFixture[str]
) -> None:
    h = harness(
        {
            "db.service": notify(0),
            "app.service": notify(0, unit="Requisite=db.service\nAfter=db.service"),
            "off.service": svc("/fake run"),
            "fix.service": svc("/fake run", unit="OnFailure=off.service"),  # off: trigger-only
            "lone.service": notify(0, unit="Requisite=off.service\nAfter=off.service"),
        }
    ).boot()
    h.wait_state("app.service", State.ACTIVE)
    h.wait_state("lone.service", State.FAILED)
    assert h.world.entries("spawn", "off.service") == []
    assert h.world.entries("spawn", "lone.service") == []
    err = capfd.readouterr().err
    assert "cinit: lone.service: failed (dependency)" in err


def test_requisite_of_a_unit_this_boot_skipped_by_a_condition_is_no_failure(harness: Any) -> None:
    # systemd merges the Requisite= check into the other unit's start job in the same
    # transaction; a condition skip ends that job "done" (systemd-update-utmp-runlevel).
    h = harness(
        {
            "utmp.service": svc("/fake run", unit="ConditionPathExists=/nope"),
            "runlevel.service": notify(0, unit="Requisite=utmp.service\nAfter=utmp.service"),
        }
    )
    h.world.unmet["utmp.service"] = "ConditionPathExists=/nope"
    h.boot()
    h.wait_state("utmp.service", State.CONDITION_SKIPPED)
    h.wait_state("runlevel.service", State.ACTIVE)


def test_a_restart_brings_back_what_its_stop_took_along(harness: Any) -> None:
    h = harness(
        {
            "main.service": notify(0),
            "part.service": notify(0, unit="PartOf=main.service"),
            "needs.service": notify(0, unit="Requires=main.service\nAfter=main.service"),
            "idle.service": notify(0, unit="PartOf=main.service\nOnFailure=x.service"),
            "x.service": svc("/fake run", unit="OnFailure=idle.service"),  # idle: not started
        }
    ).boot()
    for name in ("main", "part", "needs"):
        h.wait_state(f"{name}.service", State.ACTIVE)
    h.ref.tell(StopUnit("main.service", restart=True))  # what `cinit restart` sends first
    for name in ("main", "part", "needs"):
        h.wait_state(f"{name}.service", State.INACTIVE)
    h.ref.tell(StartUnit("main.service"))
    for name in ("main", "part", "needs"):
        h.wait_state(f"{name}.service", State.ACTIVE)
    assert h.world.entries("spawn", "idle.service") == []  # it was not up: it stays down
    assert len(h.world.entries("spawn", "part.service")) == 2
    h.ref.tell(StopUnit("main.service"))  # a plain stop: nothing comes back later
    h.wait_state("main.service", State.INACTIVE)
    assert h.state("part.service") is State.INACTIVE
    h.ref.tell(StartUnit("main.service"))
    h.wait_state("main.service", State.ACTIVE)
    assert h.state("part.service") is State.INACTIVE
