"""`cinit.io.wakeup.Wakeup`: the eventfd a poll loop sleeps on and any thread wakes it with."""

from __future__ import annotations

import select
import threading

from cinit.io.wakeup import Wakeup


def readable(fd: int) -> bool:
    return bool(select.select([fd], [], [], 0)[0])


def test_wake_makes_it_readable_and_drain_quiet_again() -> None:
    wakeup = Wakeup()
    try:
        assert not readable(wakeup.fd)
        wakeup.wake()
        wakeup.wake()  # wakes add up to one readable state
        assert readable(wakeup.fd)
        wakeup.drain()
        assert not readable(wakeup.fd)
        wakeup.drain()  # nothing to drain: no error, no block
    finally:
        wakeup.close()


def test_a_poll_loop_in_another_thread_is_woken() -> None:
    wakeup = Wakeup()
    woken = threading.Event()

    def loop() -> None:
        if select.select([wakeup.fd], [], [], 10)[0]:
            wakeup.drain()
            woken.set()

    thread = threading.Thread(target=loop)
    thread.start()
    wakeup.wake()
    thread.join(10)
    assert woken.is_set()
    wakeup.close()


def test_after_close_wake_and_drain_do_nothing() -> None:
    wakeup = Wakeup()
    wakeup.close()
    assert wakeup.fd == -1
    wakeup.wake()
    wakeup.drain()
    wakeup.close()  # twice: harmless
