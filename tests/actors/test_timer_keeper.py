"""The timer keeper (issue 17): one actor feeding every timer's machine, with an unstarted
scheduler driven by hand and fake clocks (the real ones run in tests/e2e/test_e2e_timers.py)."""

from __future__ import annotations

import queue
from pathlib import Path

from cinit.actors.scheduler import Scheduler
from cinit.actors.timer_keeper import (
    ServiceChanged,
    StartTimer,
    StopTimer,
    TimerKeeper,
    TimerSupport,
    TimerTriggered,
)
from cinit.actors.unit import UnitReport
from cinit.io.timer_stamps import TimerStamps
from cinit.machines.unit_events import Notice
from cinit.units.loader import parse_unit


class Inbox:
    """The supervisor's side: what the keeper tells it."""

    def __init__(self) -> None:
        self.items: queue.Queue[object] = queue.Queue()

    def tell(self, message: object) -> None:
        self.items.put(message)

    def until(self, kind: type, what: str = "") -> object:
        while True:
            item = self.items.get(timeout=5)
            named = isinstance(item, UnitReport) and isinstance(item.item, Notice)
            if isinstance(item, kind) and (not what or (named and item.item.event == what)):
                return item


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_the_keeper_arms_fires_skips_and_disarms(tmp_path: Path) -> None:
    text = "[Timer]\nOnActiveSec=5s\nOnUnitActiveSec=5s\nAccuracySec=1ms\n"
    unit, _ = parse_unit("t.timer", text)
    assert unit is not None
    mono, wall = Clock(100.0), Clock(10_000.0)
    scheduler = Scheduler(clock=mono)  # not started: run_due delivers
    inbox = Inbox()
    support = TimerSupport(TimerStamps(str(tmp_path)), 0.0)
    keeper = TimerKeeper.start({"t.timer": unit}, support, inbox, scheduler, mono=mono, wall=wall)
    try:
        keeper.tell(StartTimer("t.timer"))
        inbox.until(UnitReport, "timer-armed")
        assert scheduler.pending() == 1
        mono.now, wall.now = 105.0, 10_005.0
        assert scheduler.run_due() == 1
        triggered = inbox.until(TimerTriggered)
        assert isinstance(triggered, TimerTriggered)
        assert (triggered.timer, triggered.service) == ("t.timer", "t.service")
        assert [r.event for r in triggered.reports if isinstance(r, Notice)] == ["timer-elapsed"]
        keeper.tell(ServiceChanged("t.service", True))  # a long run: the next elapse skips
        inbox.until(UnitReport, "timer-armed")  # OnUnitActiveSec= from the service's start
        mono.now, wall.now = 110.0, 10_010.0
        assert scheduler.run_due() == 2  # the elapse's PLAN_DELAY-late planning (moot: the
        # service's start planned it), and the wake
        inbox.until(UnitReport, "timer-skipped")
        keeper.tell(StopTimer("t.timer"))
    finally:
        keeper.stop()
    assert scheduler.pending() == 0  # the stop disarmed it


def test_a_daemon_reloads_timers_reach_the_keeper(tmp_path: Path) -> None:
    from cinit.actors.timer_keeper import RedefineTimers

    first, _ = parse_unit("a.timer", "[Timer]\nOnActiveSec=5s\nAccuracySec=1ms\n")
    added, _ = parse_unit("b.timer", "[Timer]\nOnActiveSec=7s\nAccuracySec=1ms\n")
    changed, _ = parse_unit("a.timer", "[Timer]\nOnActiveSec=3s\nAccuracySec=1ms\n")
    assert first is not None and added is not None and changed is not None
    mono, wall = Clock(100.0), Clock(10_000.0)
    scheduler = Scheduler(clock=mono)
    inbox = Inbox()
    support = TimerSupport(TimerStamps(str(tmp_path)), 0.0)
    keeper = TimerKeeper.start({"a.timer": first}, support, inbox, scheduler, mono=mono, wall=wall)
    try:
        keeper.tell(RedefineTimers({"a.timer": changed, "b.timer": added}))
        keeper.tell(StartTimer("b.timer"))  # added: it can be started now
        keeper.tell(StartTimer("a.timer"))  # changed: started with its new definition
        armed = [inbox.until(UnitReport, "timer-armed") for _ in range(2)]
        left = sorted(
            item.item.fields["left_s"]  # type: ignore[attr-defined]
            for item in armed
        )
        assert left == [3.0, 7.0]
    finally:
        keeper.stop()


def test_a_precise_elapse_is_decided_ahead_and_its_start_waits_for_the_instant(
    tmp_path: Path,
) -> None:
    """AccuracySec=1ms: the keeper wakes DECIDE_LEAD before the elapse, steps the machine as
    of the elapse's instant (both clocks moved forward together) and tells the start with
    `not_before` = that instant; with the default accuracy it wakes at the elapse."""
    from cinit.actors.timer_keeper import DECIDE_LEAD

    precise, _ = parse_unit("p.timer", "[Timer]\nOnActiveSec=5s\nAccuracySec=1ms\n")
    coarse, _ = parse_unit("c.timer", "[Timer]\nOnActiveSec=5s\nAccuracySec=1s\n")
    assert precise is not None and coarse is not None
    mono, wall = Clock(100.0), Clock(10_000.0)
    scheduler = Scheduler(clock=mono)
    inbox = Inbox()
    support = TimerSupport(TimerStamps(str(tmp_path)), 0.0)
    timers = {"p.timer": precise, "c.timer": coarse}
    keeper = TimerKeeper.start(timers, support, inbox, scheduler, mono=mono, wall=wall)
    try:
        keeper.tell(StartTimer("p.timer"))
        inbox.until(UnitReport, "timer-armed")
        keeper.tell(StartTimer("c.timer"))
        inbox.until(UnitReport, "timer-armed")
        mono.now, wall.now = 105.0 - DECIDE_LEAD, 10_005.0 - DECIDE_LEAD
        assert scheduler.run_due() == 1  # the precise one only
        triggered = inbox.until(TimerTriggered)
        assert isinstance(triggered, TimerTriggered) and triggered.timer == "p.timer"
        assert triggered.not_before == 105.0  # no process of the start before the elapse
        elapsed = [r for r in triggered.reports if isinstance(r, Notice)]
        assert elapsed[0].fields["at"] == 10_005.0  # decided as of the elapse's instant
        mono.now, wall.now = 105.0, 10_005.0
        assert scheduler.run_due() == 1
        triggered = inbox.until(TimerTriggered)
        assert isinstance(triggered, TimerTriggered) and triggered.timer == "c.timer"
        assert triggered.not_before is None  # woken at the elapse itself
    finally:
        keeper.stop()
