"""`Wakeup`: how any thread wakes a thread that sleeps in a poll loop.

An eventfd: `wake` (any thread) makes it readable, the loop polls `fd` with its other
fds and `drain`s it when it is readable. Used by the output relay, the notify hub, the
proxy relays and the event pump. A thread that may wake the loop while another closes
the Wakeup holds a lock around both calls (a closed fd number may be reused at once).
"""

from __future__ import annotations

import os


class Wakeup:
    """An eventfd (non-blocking, close-on-exec) to wake one poll loop (see the module doc)."""

    __slots__ = ("fd",)

    def __init__(self) -> None:
        self.fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)  # -1 once closed

    def wake(self) -> None:
        """Make `fd` readable; never blocks nor raises (a saturated counter or a closed fd:
        the loop is awake, or gone)."""
        if self.fd < 0:
            return
        try:  # noqa: SIM105 - contextlib would be one more import on the boot path
            os.eventfd_write(self.fd, 1)
        except OSError:
            pass

    def drain(self) -> None:
        """Make `fd` unreadable until the next `wake` (the loop's side); never raises."""
        if self.fd < 0:
            return
        try:  # noqa: SIM105 - see wake
            os.eventfd_read(self.fd)
        except OSError:
            pass  # not woken (a spurious poll result), or closed

    def close(self) -> None:
        """Close the eventfd; later `wake`s do nothing."""
        fd, self.fd = self.fd, -1
        if fd >= 0:
            os.close(fd)
