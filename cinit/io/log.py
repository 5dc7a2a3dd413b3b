"""cinit's own log lines: `cinit: ...` on standard error.

Lines are written with one `os.write` each so that they never interleave mid-line with other
threads, and a closed or broken stderr never raises into the caller (PID 1 must not die of a
log line). Routine lifecycle lines are quiet unless `CINIT_VERBOSE` is set, so that
`cinit -- CMD` is as silent as tini and a main command's stderr passes through unchanged.

Targets (`--log-target` or `$CINIT_LOG_TARGET`, see `configure_target`): `console` is fd 2;
`kmsg` writes each line as one kernel log record `<6>cinit: ...` (`<3>` for `error`) to
/dev/kmsg (`$CINIT_KMSG_PATH` overrides the path, for tests), for a PID 1 started without a
console; `auto` picks kmsg only when fd 2 is not open for writing and /dev/kmsg is writable.
"""

from __future__ import annotations

import os

PREFIX = "cinit: "

_verbose = bool(os.environ.get("CINIT_VERBOSE"))


TARGETS = ("auto", "console", "kmsg")
TARGET_ENV = "CINIT_LOG_TARGET"
KMSG_PATH_ENV = "CINIT_KMSG_PATH"
DEFAULT_KMSG_PATH = "/dev/kmsg"
KMSG_INFO = 6  # syslog severities: LOG_INFO for routine lines and warnings
KMSG_ERROR = 3  # LOG_ERR
# The kernel refuses larger /dev/kmsg writes (~1 KiB records): longer lines are split.
KMSG_RECORD_MAX = 900

_kmsg_fd: int | None = None  # set while the kmsg target is in use


def log(message: str) -> None:
    """Write one `cinit: message` line to fd 2; every line is kept (warnings, errors)."""
    if _kmsg_fd is not None:
        _write_kmsg(_kmsg_fd, KMSG_INFO, message)
        return
    data = (PREFIX + message.rstrip("\n") + "\n").encode("utf-8", "backslashreplace")
    try:
        while data:
            written = os.write(2, data)
            data = data[written:]
    except OSError:
        pass  # stderr closed or a broken pipe: nowhere left to say it


def error(message: str) -> None:
    """Like `log`, for errors: severity `<3>` on the kmsg target, the same line on fd 2."""
    if _kmsg_fd is not None:
        _write_kmsg(_kmsg_fd, KMSG_ERROR, message)
    else:
        log(message)


def kmsg_records(severity: int, message: str) -> list[bytes]:
    """The /dev/kmsg records of one message: one `<N>cinit: ...` per line (split when long)."""
    records = []
    for line in message.rstrip("\n").split("\n"):
        data = line.encode("utf-8", "backslashreplace")
        while True:
            chunk, data = data[:KMSG_RECORD_MAX], data[KMSG_RECORD_MAX:]
            records.append(b"<%d>%s%s\n" % (severity, PREFIX.encode(), chunk))
            if not data:
                break
    return records


def _write_kmsg(fd: int, severity: int, message: str) -> None:
    for record in kmsg_records(severity, message):
        try:
            os.write(fd, record)  # one write is one kernel log record
        except OSError:  # ratelimited or refused: a log line must never take PID 1 down
            continue


def stderr_usable() -> bool:
    """Whether fd 2 is open for writing (a PID 1 started without a console has no fd 2)."""
    import fcntl

    try:
        flags = fcntl.fcntl(2, fcntl.F_GETFL)
    except OSError:
        return False
    return flags & os.O_ACCMODE != os.O_RDONLY


def configure_target(target: str | None = None) -> str:
    """Select where cinit's own lines go: `target`, else `$CINIT_LOG_TARGET`, else auto.

    Returns the target in use (`console` or `kmsg`). An unknown name, or a kmsg device
    that cannot be opened, falls back to the console with a line saying why.
    """
    global _kmsg_fd
    wanted = (target or os.environ.get(TARGET_ENV) or "auto").strip().lower()
    problem = None
    if wanted not in TARGETS:
        problem = f"unknown log target {wanted!r} (expected one of {', '.join(TARGETS)})"
        wanted = "auto"
    path = os.environ.get(KMSG_PATH_ENV) or DEFAULT_KMSG_PATH
    if wanted == "auto":
        wanted = "console" if stderr_usable() else "kmsg"
    fill_closed_std_fds()
    chosen = "console"
    if wanted == "kmsg":
        try:
            _kmsg_fd = _open_kmsg(path)
            chosen = "kmsg"
        except OSError as exc:
            problem = f"cannot open {path} for the kmsg log target ({exc.strerror}); using stderr"
    else:
        close_target()
    if problem:
        log(problem)
    return chosen


def fill_closed_std_fds() -> None:
    """Open /dev/null on fds 0-2 that are closed (a PID 1 started without a console):
    otherwise the next files cinit opens take those numbers, and services and the
    --then-exec program would get cinit's own pipes as their stdio."""
    import fcntl

    for fd in (0, 1, 2):
        try:
            fcntl.fcntl(fd, fcntl.F_GETFD)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)  # the lowest free number: `fd` itself
            if null != fd:
                os.dup2(null, fd)  # inheritable
                os.close(null)
            else:
                os.set_inheritable(fd, True)  # os.open's are close-on-exec


def _open_kmsg(path: str) -> int:
    # Blocking, as /dev/kmsg never blocks: a test's FIFO is opened once its reader is there.
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC | os.O_NOCTTY | os.O_APPEND)
    if fd <= 2:  # fds 0-2 were closed: they are for the programs cinit starts
        import fcntl

        high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3)
        os.close(fd)
        fd = high
    close_target()
    return fd


def kmsg_fd() -> int | None:
    """The kmsg target's fd (close-on-exec), or None on the console target."""
    return _kmsg_fd


def close_target() -> None:
    """Back to the console target (closes the kmsg fd, if any)."""
    global _kmsg_fd
    fd, _kmsg_fd = _kmsg_fd, None
    if fd is not None:
        try:
            os.close(fd)
        except OSError:
            return  # already closed (a handoff closes every fd): nothing to undo


def info(message: str) -> None:
    """A routine lifecycle line, written only when `CINIT_VERBOSE` is set."""
    if _verbose:
        log(message)


def set_verbose(enabled: bool) -> None:
    """Turn routine lines on or off (tests, future CLI flags)."""
    global _verbose
    _verbose = enabled
