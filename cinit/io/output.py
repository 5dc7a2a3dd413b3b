"""Services' stdout/stderr: relayed line by line to cinit's own fds, prefixed with the unit.

Each service stream gets a pipe (`OutputRelay.open_pipe`); one thread ("cinit-output")
waits on all their read ends with epoll and copies what arrives to cinit's stdout or
stderr. That thread is the only one that ever blocks on cinit's stdout/stderr: when the
container log is slow, services block on their own pipes (back-pressure, exactly as if
they wrote to the log themselves) and supervision goes on.

Guarantees:

* Lines are written whole: complete lines are coalesced into writes of at most PIPE_BUF
  bytes (atomic on a pipe, so they never interleave with cinit's own log lines); a longer
  line gets a write of its own. A partial line waits for its newline; at EOF it is
  written with a newline added, so a service that dies mid-line loses nothing.
* A line longer than 64 KiB still in progress is written in 64 KiB pieces (the prefix
  only before the first), and until it ends the relay serves only that pipe, so no other
  service's line lands inside it. That exclusivity ends after 16 MiB or when the writer
  pauses for 0.25 s mid-line: the line is then ended with a newline (what followed comes
  as a new line), so one writer can never starve the others.
* Fairness: each wake-up reads at most 64 KiB from each ready pipe.
* Bytes pass through untouched (no decoding). Writes survive partial writes, EAGAIN on a
  non-blocking stdout (waiting with poll, no busy loop) and errors such as EPIPE: the
  output is dropped, counted in `dropped_bytes` and logged once per fd.
"""

from __future__ import annotations

import fcntl
import os
import select
import threading
import time
from collections import deque

from cinit.boot_path import TYPE_CHECKING
from cinit.io.log import log
from cinit.io.wakeup import Wakeup

if TYPE_CHECKING:
    import selectors

    from cinit.units.model import Output

_EVENT_READ = 1  # selectors.EVENT_READ: the module itself loads in the thread

PIECE = 64 * 1024  # read size, and the longest run of one line written at once
WRITE_BATCH = select.PIPE_BUF  # whole lines coalesced up to this many bytes per write
HOLD_IDLE = 0.25  # seconds others wait for an unfinished long line to go on
TAIL_LINES = 10  # last lines kept per unit for `cinit status UNIT`
TAIL_LINE_MAX = 512  # bytes of each kept line
HOLD_MAX = 16 * 1024 * 1024  # bytes of one long line served before others get a turn
MARK_READS = 64  # reads per pipe for a mark (4 MiB): a writer still going cannot hold it
_WAIT_SLICE_MS = 200  # poll slice while cinit's stdout is full (checks for stop)


class _Pipe:
    """The relay's side of one service stream."""

    __slots__ = (
        "continuing",
        "dest",
        "fd",
        "held",
        "label",
        "partial",
        "prefix",
        "registered",
        "tail",
    )

    def __init__(self, fd: int, label: str, prefix: bytes, dest: int, tail: deque[bytes]) -> None:
        self.fd = fd  # read end, non-blocking
        self.label = label  # the unit
        self.tail = tail  # the unit's last lines (shared by its stdout and stderr pipes)
        self.prefix = prefix  # b"" when unprefixed
        self.dest = dest  # cinit's fd to write to
        self.partial = b""  # bytes after the last newline
        self.continuing = False  # pieces of the current line were already written
        self.held = 0  # bytes of the current long line written while exclusive
        self.registered = False  # in the thread's selector


class OutputRelay:
    """One thread copying services' stdout/stderr pipes to cinit's own fds, line by line."""

    def __init__(self, out_fd: int = 1, err_fd: int = 2) -> None:
        self._dest = {1: out_fd, 2: err_fd}
        self._lock = threading.Lock()
        self._pending: list[_Pipe] = []  # opened, not yet taken by the thread
        self._pipes: dict[int, _Pipe] = {}  # read fd -> pipe; the thread's own
        self._open = 0  # read ends held (pending + served)
        self._wakeup = Wakeup()
        self._selector: selectors.BaseSelector | None = None
        self._thread: threading.Thread | None = None
        self._holder: _Pipe | None = None  # pipe in the middle of a long line
        self._stopping = False
        self._deadline = 0.0
        self._broken: set[int] = set()  # destination fds already reported as failing
        self.dropped_bytes = 0  # output that could not be written (EPIPE, stop deadline...)
        self._tails: dict[str, deque[bytes]] = {}  # label -> last lines, for `cinit status`
        self._marks: list[tuple[str, threading.Event]] = []  # see `relayed_mark`

    @property
    def open_pipes(self) -> int:
        """Read ends the relay still holds (a pipe is closed at EOF)."""
        return self._open

    def start(self) -> None:
        """Start the relay thread (pipes opened before are served from then on)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="cinit-output", daemon=True)
            self._thread.start()

    def open_pipe(self, label: str, stream: int, prefix: bool, identifier: str = "") -> int:
        """A pipe for a service's stream 1 (stdout) or 2 (stderr); returns its write end.

        The write end is close-on-exec (spawn dups it into the child) and the caller closes
        its copy after spawn. Lines go out as `b"<label>: " + line` when `prefix` (or
        `<identifier>: `, SyslogIdentifier=, when given; `label` still names the unit's
        tail), else as they are. After `stop`, a duplicate of the destination fd itself is
        returned, so late output still reaches the log (unprefixed). Never blocks.
        """
        if stream not in self._dest:
            raise ValueError(f"stream must be 1 or 2, not {stream!r}")
        dest = self._dest[stream]
        shown = identifier or label
        tag = shown.encode("utf-8", "backslashreplace") + b": " if prefix else b""
        with self._lock:
            if self._stopping:
                try:
                    return fcntl.fcntl(dest, fcntl.F_DUPFD_CLOEXEC, 3)
                except OSError:  # cinit's own fd is closed: nowhere to write at all
                    return os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
            read_end, write_end = os.pipe2(os.O_CLOEXEC)
            os.set_blocking(read_end, False)
            tail = self._tails.setdefault(label, deque(maxlen=TAIL_LINES))
            self._pending.append(_Pipe(read_end, label, tag, dest, tail))
            self._open += 1
            self._wakeup.wake()  # under the lock: stop() closes it under the lock too
        return write_end

    def relayed_mark(self, label: str) -> threading.Event | None:
        """An event set once the relay has written what `label`'s pipes hold now (read
        until empty, bounded); None when no relay thread runs. A line about a unit that
        waits for it comes after the unit's output, e.g. `exited` after its last line."""
        with self._lock:
            if self._thread is None or self._stopping:
                return None
            mark = threading.Event()
            self._marks.append((label, mark))
            self._wakeup.wake()
        return mark

    def tail(self, label: str) -> list[str]:
        """The last complete lines (at most TAIL_LINES) a unit wrote, oldest first."""
        lines = list(self._tails.get(label, ()))
        return [line.decode("utf-8", "replace") for line in lines]

    def stop(self, timeout: float = 2.0) -> None:
        """Relay what the pipes hold now (for at most ~`timeout` seconds), write partial
        lines with a newline, close every pipe and end the thread."""
        with self._lock:
            if self._stopping:
                return
            self._stopping = True
            self._deadline = time.monotonic() + timeout * 0.8
        thread = self._thread
        if thread is None:
            self._drain_all()
        else:
            self._wakeup.wake()
            thread.join(timeout)
            if thread.is_alive():
                return  # blocked on a stuck stdout: leave it (daemon) with its fds
        with self._lock:
            self._wakeup.close()

    def wait_stopped(self, timeout: float) -> bool:
        """After `stop`: wait (at most `timeout` s) for the relay thread to end; whether it
        did. A thread stuck on a full stdout outlives `stop` until its write returns."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True

    # --- the relay thread ------------------------------------------------------------------

    def _run(self) -> None:
        import selectors  # in the thread: off the boot path (~2.5 ms)

        selector = self._selector = selectors.DefaultSelector()
        selector.register(self._wakeup.fd, _EVENT_READ, None)
        try:
            while not self._stopping:
                try:
                    self._step(selector)
                except Exception as exc:  # a relay bug must not end the relay
                    log(f"output relay: unexpected {type(exc).__name__}: {exc}")
                    time.sleep(0.1)
            self._drain_all()
            if self.dropped_bytes:  # the first drop per fd was said; the total is too
                log(f"{self.dropped_bytes} bytes of service output could not be written")
        finally:
            self._selector = None
            selector.close()

    def _step(self, selector: selectors.BaseSelector) -> None:
        """One wake-up: take new pipes, then serve the long-line holder or every ready pipe."""
        self._take_pending(selector)
        if self._marks:
            self._serve_marks()
        if self._holder is not None:
            self._serve_holder(self._holder)
            return
        for key, _events in selector.select():
            if key.data is None:
                self._wakeup.drain()
            elif self._holder is None or key.data is self._holder:
                self._serve(key.data)  # (once a long line began, the others wait)

    def _take_pending(self, selector: selectors.BaseSelector) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
        for pipe in pending:
            self._pipes[pipe.fd] = pipe
            selector.register(pipe.fd, _EVENT_READ, pipe)
            pipe.registered = True

    def _serve_marks(self) -> None:
        """Relay what the marked units' pipes hold, then set their marks (not while another
        unit's long line holds the relay: its mark waits for the line to end)."""
        with self._lock:
            marks, self._marks = self._marks, []
        waiting = []
        for label, mark in marks:
            holder = self._holder
            if holder is not None and holder.label != label:
                waiting.append((label, mark))
                continue
            for pipe in [pipe for pipe in self._pipes.values() if pipe.label == label]:
                for _ in range(MARK_READS):
                    if pipe.fd not in self._pipes or not self._serve(pipe):
                        break
            mark.set()
        if waiting:
            with self._lock:
                self._marks[:0] = waiting

    def _serve_holder(self, pipe: _Pipe) -> None:
        """Exclusive service of a pipe in the middle of a long line."""
        poller = select.poll()
        poller.register(pipe.fd, select.POLLIN)
        poller.register(self._wakeup.fd, select.POLLIN)
        ready = poller.poll(HOLD_IDLE * 1000)
        if not ready:
            self._end_long_line(pipe)  # the writer paused mid-line: others' turn
            return
        for fd, _events in ready:
            if fd == self._wakeup.fd:
                self._wakeup.drain()
            else:
                self._serve(pipe)

    def _serve(self, pipe: _Pipe) -> bool:
        """Read once from `pipe` and relay it; False when the pipe is exhausted (EOF or,
        for a non-blocking read, nothing there)."""
        try:
            data = os.read(pipe.fd, PIECE)
        except BlockingIOError:
            return False
        except OSError:
            data = b""
        if not data:
            self._finish(pipe)
            return False
        self._relay(pipe, data)
        return True

    def _relay(self, pipe: _Pipe, data: bytes) -> None:
        buffer = pipe.partial + data if pipe.partial else data
        end = buffer.rfind(b"\n") + 1
        if end:
            self._write_lines(pipe, buffer[:end] if end < len(buffer) else buffer)
            buffer = buffer[end:]
            if self._holder is pipe:
                self._holder = None
        while len(buffer) >= PIECE:  # a long line in progress: out in pieces, bounded memory
            head = b"" if pipe.continuing else pipe.prefix
            self._write(pipe.dest, head + buffer[:PIECE])
            buffer = buffer[PIECE:]
            if not pipe.continuing:
                pipe.continuing = True
                pipe.held = 0
            pipe.held += PIECE
            self._holder = pipe
        pipe.partial = buffer
        if self._holder is pipe and pipe.held >= HOLD_MAX:
            self._end_long_line(pipe)

    def _write_lines(self, pipe: _Pipe, block: bytes) -> None:
        """Write complete lines (`block` ends with a newline), prefixed, in whole-line batches."""
        last = block[:-1].rsplit(b"\n", TAIL_LINES)  # cheap: only the end is split
        pipe.tail.extend(line[:TAIL_LINE_MAX] for line in last[-TAIL_LINES:])
        if pipe.prefix:
            head = b"" if pipe.continuing else pipe.prefix
            block = head + block[:-1].replace(b"\n", b"\n" + pipe.prefix) + b"\n"
        pipe.continuing = False
        size = len(block)
        view = memoryview(block)
        start = 0
        while start < size:
            cut = size
            if size - start > WRITE_BATCH:
                cut = block.rfind(b"\n", start, start + WRITE_BATCH) + 1
                if cut <= start:  # one line longer than a batch: it goes alone
                    cut = block.index(b"\n", start + WRITE_BATCH) + 1
            self._write(pipe.dest, view[start:cut])
            start = cut

    def _end_long_line(self, pipe: _Pipe) -> None:
        """End the long line now (with what is buffered and a newline); give up exclusivity."""
        if pipe.continuing or pipe.partial:
            self._write(pipe.dest, pipe.partial + b"\n")
        pipe.partial = b""
        pipe.continuing = False
        if self._holder is pipe:
            self._holder = None

    def _finish(self, pipe: _Pipe) -> None:
        """EOF: write what is left of the last line (with a newline), close the read end."""
        if pipe.partial or pipe.continuing:
            head = b"" if pipe.continuing else pipe.prefix
            self._write(pipe.dest, head + pipe.partial + b"\n")
        pipe.partial = b""
        pipe.continuing = False
        if self._holder is pipe:
            self._holder = None
        del self._pipes[pipe.fd]
        if pipe.registered and self._selector is not None:
            self._selector.unregister(pipe.fd)
            pipe.registered = False
        os.close(pipe.fd)
        with self._lock:
            self._open -= 1

    def _drain_all(self) -> None:
        """At stop: relay whatever each pipe holds until the deadline, then close them all."""
        with self._lock:
            pending, self._pending = self._pending, []
            marks, self._marks = self._marks, []
        pipes = list(self._pipes.values()) + pending
        for pipe in pending:
            self._pipes[pipe.fd] = pipe  # never registered: _finish only pops it
        if self._holder is not None:  # let a long line end first
            pipes.remove(self._holder)
            pipes.insert(0, self._holder)
        for pipe in pipes:
            while time.monotonic() < self._deadline and pipe.fd in self._pipes:
                if not self._serve(pipe):
                    break
            if pipe.fd in self._pipes:
                self._finish(pipe)
        for _label, mark in marks:  # everything is relayed (or given up) now
            mark.set()

    def _write(self, fd: int, data: bytes | memoryview) -> None:
        """Write all of `data` to `fd`, waiting (not spinning) while it is full; on an
        error, or when stopping and the deadline has passed, drop the rest and count it."""
        view = memoryview(data)
        while view:
            try:
                written = os.write(fd, view)
            except BlockingIOError:
                if self._wait_writable(fd):
                    continue
                self._drop(fd, len(view), "still full when the stop deadline passed")
                return
            except OSError as exc:
                self._drop(fd, len(view), exc.strerror or str(exc))
                return
            view = view[written:]

    def _wait_writable(self, fd: int) -> bool:
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        while True:
            if self._stopping and time.monotonic() >= self._deadline:
                return False
            if poller.poll(_WAIT_SLICE_MS):
                return True  # writable, or an error the next write will report

    def _drop(self, fd: int, size: int, reason: str) -> None:
        self.dropped_bytes += size
        if fd not in self._broken:
            self._broken.add(fd)
            streams = ((1, "stdout"), (2, "stderr"))
            names = "/".join(name for stream, name in streams if self._dest[stream] == fd)
            where = f"{names} (fd {fd})"
            log(f"cannot write service output to cinit's {where}: {reason}; dropping it")


def open_output_file(output: Output) -> int | None:
    """The fd for StandardOutput=/StandardError= (close-on-exec; the caller closes it after
    spawn), or None for `inherit` (use the relay or cinit's own fd).

    `file:PATH` opens for writing at offset 0 without truncating, creating it 0644 (as
    systemd does); `append:PATH` opens in append mode, creating it; `null` is /dev/null.
    OSError (missing directory, permission) propagates for the caller to report.
    """
    target = output.target.value
    if target == "inherit":
        return None
    if target == "null":
        return os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
    flags = os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | os.O_NOCTTY
    if target == "append":
        flags |= os.O_APPEND
    elif target != "file":
        raise ValueError(f"unknown output target {target!r}")
    return os.open(output.path, flags, 0o644)
