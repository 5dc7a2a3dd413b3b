"""cinit's own log lines: `cinit: ...` on standard error.

Lines are written with one `os.write` each so that they never interleave mid-line with other
threads, and a closed or broken stderr never raises into the caller (PID 1 must not die of a
log line). Routine lifecycle lines are quiet unless `CINIT_VERBOSE` is set, so that
`cinit -- CMD` is as silent as tini and a main command's stderr passes through unchanged.

Targets (`--log-target` or `$CINIT_LOG_TARGET`, see `configure_target`): `console` is fd 2;
`kmsg` writes each line as one kernel log record `<6>cinit: ...` (`<3>` for `error`) to
/dev/kmsg (`$CINIT_KMSG_PATH` overrides the path, for tests), for a PID 1 started without a
console; `auto` picks kmsg only when fd 2 is not open for writing and /dev/kmsg is writable.

On the console no caller ever blocks on fd 2: a line goes into a bounded queue that one
thread ("cinit-log", started with the first line) writes out in order. A stalled log reader
(a full pipe, Ctrl-S on a terminal) then stalls only that thread, never an actor or the
main thread taking PID 1's signals. When the queue is full, lines are dropped and counted,
and once the writer gets through again it says `cinit: N lines dropped (stderr not
writable)` where they were. A forked child (a helper, a child before exec) writes directly:
it has no writer thread. The kmsg target writes directly too (/dev/kmsg never blocks).
"""

from __future__ import annotations

import _thread
import os

from cinit.boot_path import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Protocol

    class Barrier(Protocol):
        """What a line waits for before it is written (a `threading.Event`)."""

        def wait(self, timeout: float | None = None) -> bool: ...


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


QUEUE_LINES = 1024  # lines waiting for fd 2 at most; later ones are dropped and counted
QUEUE_BYTES = 1024 * 1024  # and bytes (a traceback or a diagnostic can be long)
BARRIER_WAIT = 2.0  # seconds a line waits for its barrier (a unit's output relayed first)
FLUSH_TIMEOUT = 1.0  # seconds `flush` waits at exit for a stalled stderr


class _Dropped:
    """A run of lines dropped at this place in the queue."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 1

    def line(self) -> bytes:
        return b"%s%d lines dropped (stderr not writable)\n" % (PREFIX.encode(), self.count)


class _ConsoleWriter:
    """The queue of cinit's lines for fd 2 and the one thread that writes them."""

    def __init__(self, fd: int = 2) -> None:
        import threading
        from collections import deque

        self.fd = fd
        self._lock = threading.Lock()
        self._has_lines = threading.Condition(self._lock)  # the writer waits on this
        self._idle = threading.Condition(self._lock)  # and `flush` on this
        self._queue: deque[tuple[Barrier | None, bytes] | _Dropped] = deque()
        self._queued_bytes = 0
        self._writing = False  # a line taken from the queue is being written
        self._barrier_trusted = True  # the last barrier came in time: wait for the next one
        self.dropped = 0  # lines dropped since start (all runs)
        self._thread = threading.Thread(target=self._run, name="cinit-log", daemon=True)
        self._thread.start()

    def put(self, data: bytes, after: Barrier | None) -> None:
        """Queue one line (never blocks on the fd); dropped and counted when the queue is full."""
        with self._lock:
            queue = self._queue
            full = len(queue) >= QUEUE_LINES or self._queued_bytes + len(data) > QUEUE_BYTES
            if full and queue:  # (one line however long fits in an empty queue)
                self.dropped += 1
                last = queue[-1] if queue else None
                if isinstance(last, _Dropped):
                    last.count += 1
                else:  # one marker past the bound at most: the next drops count into it
                    queue.append(_Dropped())
                return
            queue.append((after, data))
            self._queued_bytes += len(data)
            self._has_lines.notify()

    def flush(self, timeout: float) -> bool:
        """Wait (at most `timeout` s) until every queued line is written; whether they were."""
        import time

        deadline = time.monotonic() + timeout
        with self._lock:
            while self._queue or self._writing:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._queue:
                    self._writing = False
                    self._idle.notify_all()
                    self._has_lines.wait()
                item = self._queue.popleft()
                self._writing = True
                if isinstance(item, _Dropped):
                    data = item.line()
                    barrier = None
                else:
                    barrier, data = item
                    self._queued_bytes -= len(data)
            if barrier is not None:
                self._barrier_trusted = barrier.wait(BARRIER_WAIT if self._barrier_trusted else 0)
            _write_all(self.fd, data)


_writer: _ConsoleWriter | None = None
_writer_lock = _thread.allocate_lock()  # two threads' first lines at once: one writer
_direct = False  # a forked child: no writer thread there, write directly


def log(message: str, after: Barrier | None = None) -> None:
    """One `cinit: message` line for fd 2 (or the kmsg target); every line is kept
    (warnings, errors) unless the queue for a stalled stderr is full (then counted).

    `after`, when given, is waited for (briefly) before the line is written: a unit's line
    comes after the output the relay still had of it. Never blocks on fd 2.
    """
    if _kmsg_fd is not None:
        _write_kmsg(_kmsg_fd, KMSG_INFO, message)
        return
    data = (PREFIX + message.rstrip("\n") + "\n").encode("utf-8", "backslashreplace")
    if _direct:
        _write_all(2, data)
        return
    (_writer or _start_writer()).put(data, after)


def flush(timeout: float = FLUSH_TIMEOUT) -> bool:
    """Wait (at most `timeout` s) until cinit's queued lines are written; before exit or exec.
    False when fd 2 stayed stalled (the rest is lost with the process)."""
    writer = _writer
    return True if writer is None else writer.flush(timeout)


def write_directly(enabled: bool = True) -> None:
    """Write lines from the calling thread, blocking (a forked child; in-process tests that
    read fd 2 right after a call), or (False) through the writer thread again."""
    global _direct
    flush()
    _direct = enabled


def _start_writer() -> _ConsoleWriter:
    global _writer
    with _writer_lock:
        if _writer is None:
            import atexit

            _writer = _ConsoleWriter()
            atexit.register(flush)  # a normal interpreter exit (os._exit callers flush first)
        return _writer


def _write_all(fd: int, data: bytes) -> None:
    try:
        while data:
            written = os.write(fd, data)
            data = data[written:]
    except OSError:
        pass  # stderr closed or a broken pipe: nowhere left to say it


def _forked_child() -> None:
    global _writer, _writer_lock, _direct
    _writer = None  # its thread is not in the child (and its lock may be held)
    _writer_lock = _thread.allocate_lock()
    _direct = True


os.register_at_fork(after_in_child=_forked_child)


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
