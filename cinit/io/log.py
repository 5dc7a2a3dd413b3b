"""cinit's own log lines: `cinit: ...` on standard error.

Lines are written with one `os.write` each so that they never interleave mid-line with other
threads, and a closed or broken stderr never raises into the caller (PID 1 must not die of a
log line). Routine lifecycle lines are quiet unless `CINIT_VERBOSE` is set, so that
`cinit -- CMD` is as silent as tini and a main command's stderr passes through unchanged.
"""

from __future__ import annotations

import os

PREFIX = "cinit: "

_verbose = bool(os.environ.get("CINIT_VERBOSE"))


def log(message: str) -> None:
    """Write one `cinit: message` line to fd 2; every line is kept (warnings, errors)."""
    data = (PREFIX + message.rstrip("\n") + "\n").encode("utf-8", "backslashreplace")
    try:
        while data:
            written = os.write(2, data)
            data = data[written:]
    except OSError:
        pass  # stderr closed or a broken pipe: nowhere left to say it


def info(message: str) -> None:
    """A routine lifecycle line, written only when `CINIT_VERBOSE` is set."""
    if _verbose:
        log(message)


def set_verbose(enabled: bool) -> None:
    """Turn routine lines on or off (tests, future CLI flags)."""
    global _verbose
    _verbose = enabled
