"""Timers as messages: `Scheduler.call_later(delay, actor_ref, message)` tells the message later.

Actors never sleep: whoever needs a timeout (stop timeout, RestartSec=, start limits,
watchdogs) asks the scheduler, gets a `Timer` back, and receives the message when it is
due unless it cancelled the timer first. `TimerQueue` is the pure part (a sorted list of
deadlines, driven with any clock, tested with a fake one); `Scheduler` runs it in one
daemon thread that sleeps on a condition until the earliest deadline or a new timer.
"""

from __future__ import annotations

import bisect
import itertools
import threading
import time

from cinit.boot_path import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, Protocol

    class Target(Protocol):
        """Where a due timer's message goes (a pykka ActorRef, or a test double)."""

        def tell(self, message: object) -> None: ...


# A precise timer's wait ends this long before its deadline, and the rest is spent awake:
# a thread woken from its sleep on this host came ~0.6-0.9 ms late (a vCPU waking up).
PRECISE_LEAD = 0.002


class Timer:
    """A scheduled message; `cancel` it through the scheduler that made it."""

    __slots__ = ("cancelled", "deadline", "message", "precise", "seq", "target")

    def __init__(
        self, deadline: float, seq: int, target: Target, message: object, precise: bool = False
    ) -> None:
        self.deadline = deadline
        self.seq = seq  # ties at one deadline fire in scheduling order
        self.target = target
        self.message = message
        self.precise = precise  # delivered on time to the tenth of a ms (`PRECISE_LEAD`)
        self.cancelled = False

    def __repr__(self) -> str:
        return f"Timer(deadline={self.deadline:.3f}, message={self.message!r})"


class TimerQueue:
    """Pending timers ordered by deadline; no threads, no clock of its own.

    Kept in a SortedKeyList once `use_sorted_list` handed one over (importing
    sortedcontainers costs ~5 ms: it waits until the first wave's services are exec'd);
    until then in a plain list kept sorted (only the first wave's few timers)."""

    def __init__(self) -> None:
        self._timers: Any = []
        self._seq = itertools.count()

    def use_sorted_list(self, sorted_key_list: Callable[..., Any]) -> None:
        """Move the timers into a `sortedcontainers.SortedKeyList` (the class is given)."""
        self._timers = sorted_key_list(self._timers, key=_order)

    def __len__(self) -> int:
        return len(self._timers)

    def add(
        self, deadline: float, target: Target, message: object, precise: bool = False
    ) -> Timer:
        """Schedule `message` for `target` at `deadline`."""
        timer = Timer(deadline, next(self._seq), target, message, precise)
        if isinstance(self._timers, list):
            bisect.insort(self._timers, timer, key=_order)
        else:
            self._timers.add(timer)
        return timer

    def cancel(self, timer: Timer) -> bool:
        """Remove `timer`; False when it already fired or was cancelled."""
        if timer.cancelled:
            return False
        timer.cancelled = True
        self._timers.remove(timer)
        return True

    def next_deadline(self) -> float | None:
        """The earliest pending deadline, if any."""
        return self._timers[0].deadline if self._timers else None

    def next_is_precise(self) -> bool:
        """Whether the earliest pending timer is a precise one."""
        return bool(self._timers) and self._timers[0].precise

    def pop_due(self, now: float) -> list[Timer]:
        """Remove and return every timer whose deadline is at or before `now`, in order."""
        due = []
        while self._timers and self._timers[0].deadline <= now:
            timer = self._timers.pop(0)
            timer.cancelled = True  # fired: a later cancel() is a no-op
            due.append(timer)
        return due


def _order(timer: Timer) -> tuple[float, int]:
    return (timer.deadline, timer.seq)  # ties at one deadline fire in scheduling order


class Scheduler:
    """A `TimerQueue` run by one thread; safe to call from any actor."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._queue = TimerQueue()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopped = False

    def start(self) -> Scheduler:
        """Start the delivery thread; returns self."""
        self._thread = threading.Thread(target=self._run, name="cinit-scheduler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop delivering; pending timers are dropped."""
        with self._cond:
            self._stopped = True
            self._cond.notify()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=1.0)

    def call_later(self, delay: float, target: Target, message: object) -> Timer:
        """Tell `message` to `target` after `delay` seconds."""
        return self.call_at(self._clock() + max(delay, 0.0), target, message)

    def call_at(
        self, deadline: float, target: Target, message: object, *, precise: bool = False
    ) -> Timer:
        """Tell `message` to `target` at `deadline` on the scheduler's clock (a deadline
        planned from an earlier reading of the clock is not pushed back by the planning).
        `precise`: the scheduler wakes `PRECISE_LEAD` early and stays awake until it is
        due (a timer elapse with AccuracySec=1ms), instead of waking up after it."""
        with self._cond:
            earliest = self._queue.next_deadline()
            timer = self._queue.add(deadline, target, message, precise)
            if earliest is None or deadline < earliest:
                self._cond.notify()
        return timer

    def cancel(self, timer: Timer) -> bool:
        """Cancel `timer`; False when it already fired (its message may be on its way)."""
        with self._cond:
            return self._queue.cancel(timer)

    def pending(self) -> int:
        """How many timers wait."""
        with self._cond:
            return len(self._queue)

    def run_due(self, now: float | None = None) -> int:
        """Deliver every due timer now (for tests driving a fake clock); returns how many."""
        with self._cond:
            due = self._queue.pop_due(self._clock() if now is None else now)
        self._deliver(due)
        return len(due)

    def use_sorted_containers(self) -> None:
        """Keep the timers in a SortedKeyList from now on (cinit.boot calls it with the late
        imports, after the first wave's execs: the import costs ~5 ms of the GIL)."""
        from sortedcontainers import SortedKeyList

        with self._cond:
            self._queue.use_sorted_list(SortedKeyList)

    def _run(self) -> None:
        while True:
            with self._cond:
                if self._stopped:
                    return
                due = self._queue.pop_due(self._clock())
                if not due:
                    self._wait_for_next()
                    continue
            self._deliver(due)

    def _wait_for_next(self) -> None:
        """Sleep until the next deadline or a new timer (`_cond` held, released while
        waiting); the last `PRECISE_LEAD` before a precise timer is spent awake."""
        deadline = self._queue.next_deadline()
        if deadline is None:
            self._cond.wait()
            return
        timeout = max(deadline - self._clock(), 0.0)
        if not self._queue.next_is_precise():
            self._cond.wait(timeout)
        elif timeout > PRECISE_LEAD:
            self._cond.wait(timeout - PRECISE_LEAD)
        else:
            self._cond.release()  # the other threads run meanwhile
            try:
                _spin_until(deadline, self._clock)
            finally:
                self._cond.acquire()

    @staticmethod
    def _deliver(due: list[Timer]) -> None:
        for timer in due:
            try:  # noqa: SIM105 - contextlib would be one more import on the boot path
                timer.target.tell(timer.message)
            except Exception:  # a dead target must not stop the others
                pass


def wait_until(deadline: float, clock: Callable[[], float] = time.monotonic) -> None:
    """Block until `clock()` reads `deadline`, on time: asleep until `PRECISE_LEAD` before
    it, awake for the rest."""
    left = deadline - clock()
    if left > PRECISE_LEAD:
        time.sleep(left - PRECISE_LEAD)
    _spin_until(deadline, clock)


def _spin_until(deadline: float, clock: Callable[[], float]) -> None:
    """Stay awake until `deadline`, letting the other threads run (sleep(0) drops the GIL)."""
    while clock() < deadline:
        time.sleep(0)
