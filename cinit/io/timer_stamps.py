"""Persistent= timers' last-trigger stamps (issue 17): one empty file per timer in a state
directory (by default /var/lib/cinit/timers), its modification time the last trigger, as
systemd keeps /var/lib/systemd/timers/stamp-NAME.timer.

A directory that cannot be written (a read-only root filesystem, no permission) is said
once, as one warning, and persistence is off from then on: the timers still run, a run
missed while cinit was down is simply not caught up.
"""

from __future__ import annotations

import contextlib
import os

from cinit.io.log import log

DEFAULT_STATE_DIR = "/var/lib/cinit/timers"
STATE_DIR_ENV = "CINIT_TIMER_STATE_DIR"


def state_dir(given: str | None, environ: dict[str, str] | os._Environ[str]) -> str:
    """The stamp directory: `given` (cinit run --timer-state-dir), else $CINIT_TIMER_STATE_DIR,
    else the default."""
    return given or environ.get(STATE_DIR_ENV) or DEFAULT_STATE_DIR


class TimerStamps:
    """Reads and writes the stamps under `directory`; never raises."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.disabled = False  # set after the one warning

    def path(self, timer: str) -> str:
        return os.path.join(self.directory, f"stamp-{timer}")

    def read(self, timer: str) -> float | None:
        """The last trigger of `timer` (epoch seconds), or None when it has no stamp."""
        try:
            return os.stat(self.path(timer)).st_mtime
        except OSError:
            return None

    def write(self, timer: str, at: float) -> None:
        """Record `at` as the last trigger of `timer`."""
        if self.disabled:
            return
        path = self.path(timer)
        try:
            os.makedirs(self.directory, mode=0o755, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
            try:
                os.utime(fd, (at, at))
            finally:
                os.close(fd)
        except OSError as exc:
            self.disabled = True
            with contextlib.suppress(Exception):
                log(
                    f"warning: timers: cannot write the Persistent= stamp {path}: "
                    f"{exc.strerror or exc}; missed runs will not be caught up (set "
                    f"--timer-state-dir or ${STATE_DIR_ENV} to a writable directory)"
                )
