"""The scheduler: ordering and cancelling with a fake clock, delivery with a real thread."""

from __future__ import annotations

import queue
import time

import pytest
from sortedcontainers import SortedKeyList

from cinit.actors.scheduler import Scheduler, TimerQueue

pytestmark = pytest.mark.timeout(30)


class Inbox:
    def __init__(self) -> None:
        self.messages: queue.Queue[object] = queue.Queue()

    def tell(self, message: object) -> None:
        self.messages.put(message)

    def drain(self) -> list[object]:
        out = []
        while not self.messages.empty():
            out.append(self.messages.get_nowait())
        return out


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("sorted_list", [False, True], ids=["early list", "SortedKeyList"])
def test_timer_queue_orders_by_deadline_then_by_scheduling(sorted_list: bool) -> None:
    q = TimerQueue()
    if sorted_list:
        q.use_sorted_list(SortedKeyList)
    inbox = Inbox()
    q.add(5.0, inbox, "late")
    q.add(1.0, inbox, "early")
    q.add(1.0, inbox, "early-second")
    cancelled = q.add(2.0, inbox, "cancelled")
    assert q.cancel(cancelled) and not q.cancel(cancelled)
    assert q.next_deadline() == 1.0
    assert [t.message for t in q.pop_due(0.5)] == []
    assert [t.message for t in q.pop_due(2.0)] == ["early", "early-second"]
    fired = q.pop_due(10.0)
    assert [t.message for t in fired] == ["late"]
    assert not q.cancel(fired[0])  # already fired
    assert q.next_deadline() is None and len(q) == 0


def test_scheduler_with_a_fake_clock() -> None:
    clock = FakeClock()
    scheduler = Scheduler(clock=clock)  # not started: driven by hand
    inbox = Inbox()
    scheduler.call_later(8.0, inbox, "stop-deadline")
    keep = scheduler.call_later(1.0, inbox, "restart")
    gone = scheduler.call_later(0.5, inbox, "cancelled")
    scheduler.cancel(gone)
    assert scheduler.run_due() == 0
    clock.now += 1.0
    assert scheduler.run_due() == 1
    assert inbox.drain() == ["restart"]
    assert not scheduler.cancel(keep)
    clock.now += 7.0
    scheduler.run_due()
    assert inbox.drain() == ["stop-deadline"]
    assert scheduler.pending() == 0


def test_thread_delivers_in_deadline_order_and_wakes_for_earlier_timers() -> None:
    scheduler = Scheduler().start()
    inbox = Inbox()
    try:
        start = time.monotonic()
        scheduler.call_later(0.30, inbox, "third")
        scheduler.call_later(0.05, inbox, "first")  # earlier than the one being waited for
        scheduler.call_later(0.15, inbox, "second")
        dropped = scheduler.call_later(0.10, inbox, "cancelled")
        assert scheduler.cancel(dropped)
        got = [inbox.messages.get(timeout=5) for _ in range(3)]
        elapsed = time.monotonic() - start
        assert got == ["first", "second", "third"]
        assert elapsed >= 0.3
        time.sleep(0.05)
        assert inbox.drain() == []
    finally:
        scheduler.stop()


def test_a_target_that_raises_does_not_stop_delivery() -> None:
    class Dead:
        def tell(self, message: object) -> None:
            raise RuntimeError("actor is dead")

    scheduler = Scheduler().start()
    inbox = Inbox()
    try:
        scheduler.call_later(0.0, Dead(), "lost")
        scheduler.call_later(0.02, inbox, "delivered")
        assert inbox.messages.get(timeout=5) == "delivered"
    finally:
        scheduler.stop()


def test_timers_armed_before_the_sorted_list_keep_their_order_after() -> None:
    q = TimerQueue()
    inbox = Inbox()
    for deadline, name in ((3.0, "c"), (1.0, "a"), (2.0, "b")):
        q.add(deadline, inbox, name)  # the first wave's timers, before the thread took over
    q.use_sorted_list(SortedKeyList)
    q.add(1.5, inbox, "a2")
    assert [t.message for t in q.pop_due(10.0)] == ["a", "a2", "b", "c"]


def test_a_precise_timer_is_delivered_once_its_clock_reads_the_deadline() -> None:
    """A precise timer's last PRECISE_LEAD is spent awake: the thread spins on the clock
    instead of sleeping past the deadline; the message still comes only once it is due."""
    from cinit.actors.scheduler import PRECISE_LEAD

    q = TimerQueue()
    inbox = Inbox()
    q.add(5.0, inbox, "plain")
    assert not q.next_is_precise()
    q.add(1.0, inbox, "precise", precise=True)
    assert q.next_is_precise()

    readings: list[float] = []
    start = time.monotonic()

    def clock() -> float:  # the real clock, recorded, shifted so the deadline is near
        now = 100.0 + time.monotonic() - start
        readings.append(now)
        return now

    scheduler = Scheduler(clock=clock).start()
    try:
        deadline = 100.0 + 3 * PRECISE_LEAD
        scheduler.call_at(deadline, inbox, "due", precise=True)
        scheduler.call_at(deadline + 0.5, inbox, "dropped", precise=True)
        assert inbox.messages.get(timeout=5) == "due"
        delivered = readings[-1]
        assert delivered >= deadline  # never early
        # Awake before the deadline: the clock was read repeatedly within the lead.
        assert sum(deadline - PRECISE_LEAD <= r < deadline for r in readings) >= 2
    finally:
        scheduler.stop()
    assert inbox.drain() == []  # the later one was dropped with the stop
