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
* Each unit's lines are also kept in a bounded ring (`LogRing`: the last LOG_LINES lines
  or LOG_BYTES bytes, whichever bound comes first) with the wall-clock time of the read
  that brought them and their stream, for `cinit logs`, `journalctl` and `cinit status
  UNIT`. A ring holds whole reads (one small entry per read and nothing per line on the
  relay's hot path: the bytes kept are those it wrote); lines are split only when asked.
  A line that is written in pieces (longer than 64 KiB) is kept as its first LINE_MAX
  bytes; `read_logs` cuts every line to LINE_MAX.
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
TAIL_LINES = 10  # last lines shown by `cinit status UNIT`
TAIL_LINE_MAX = 512  # bytes of each of them shown there
LOG_LINES = 1000  # default bound of a unit's log ring, in lines ...
LOG_BYTES = 1024 * 1024  # ... and in bytes: whichever is reached first
LINE_MAX = 48 * 1024  # bytes of one line kept or shown (journald's LineMax= default)
HOLD_MAX = 16 * 1024 * 1024  # bytes of one long line served before others get a turn
MARK_READS = 64  # reads per pipe for a mark (4 MiB): a writer still going cannot hold it
_WAIT_SLICE_MS = 200  # poll slice while cinit's stdout is full (checks for stop)


_NO_PID = [0]  # the owner of lines whose writer is not known (never filled in)


class LogRing:
    """The last lines of one unit's output: whole reads, bounded in lines and bytes.

    Each entry is (number of its first line, wall-clock time, stream 1|2, line count,
    bytes ending with a newline, [the writer's pid] as its spawner fills it in). Line
    numbers come from one counter of the relay for all units, so they order lines across
    units in the order the relay read them (`cursor`s of `cinit logs -f` are such
    numbers). Only the relay thread adds; readers take a `snapshot` under the relay's ring
    lock.

    Adding is O(1) on the relay's hot path: whole reads are dropped from the front while
    the others alone reach a bound; the oldest read kept may hold lines beyond the bounds
    (at most one read, 64 KiB and a partial line), which `visible` leaves out. So the
    memory held is the bound plus at most one read.
    """

    __slots__ = ("entries", "lines", "max_bytes", "max_lines", "size")

    def __init__(self, max_lines: int, max_bytes: int) -> None:
        self.entries: deque[tuple[int, float, int, int, bytes, list[int]]] = deque()
        self.lines = 0
        self.size = 0
        self.max_lines = max(1, max_lines)
        self.max_bytes = max(1, max_bytes)

    def add(
        self,
        first: int,
        when: float,
        stream: int,
        count: int,
        data: bytes,
        owner: list[int] | None = None,
    ) -> None:
        """Keep `count` lines (`data` ends with a newline), dropping reads no longer shown."""
        entries = self.entries
        entries.append((first, when, stream, count, data, owner or _NO_PID))
        self.lines += count
        self.size += len(data)
        front = entries[0]
        while (
            self.lines - front[3] >= self.max_lines or self.size - len(front[4]) >= self.max_bytes
        ):
            entries.popleft()  # never the last one: alone it is under both bounds
            self.lines -= front[3]
            self.size -= len(front[4])
            front = entries[0]

    def snapshot(self) -> tuple[list[tuple[int, float, int, int, bytes, list[int]]], int, int]:
        """The entries, and how many lines and bytes over the bounds they are (call under
        the ring lock; give the result to `visible` outside it)."""
        return list(self.entries), self.lines - self.max_lines, self.size - self.max_bytes

    @staticmethod
    def visible(
        snapshot: tuple[list[tuple[int, float, int, int, bytes, list[int]]], int, int],
    ) -> list[tuple[int, float, int, int, bytes, list[int]]]:
        """The entries of a `snapshot` with the oldest one's lines beyond the bounds cut."""
        entries, extra_lines, extra_bytes = snapshot
        if not entries or (extra_lines <= 0 and extra_bytes <= 0):
            return entries
        first, when, stream, count, data, owner = entries[0]
        cut, dropped = 0, 0
        while dropped < extra_lines or cut < extra_bytes:
            cut = data.index(b"\n", cut) + 1
            dropped += 1
        if dropped >= count:
            return entries[1:]
        rest = data[cut:]
        return [(first + dropped, when, stream, count - dropped, rest, owner), *entries[1:]]


class LogLine:
    """One line of a unit's output as `read_logs` returns it."""

    __slots__ = ("number", "pid", "stream", "text", "time", "unit")

    def __init__(
        self, number: int, unit: str, when: float, stream: int, text: bytes, pid: int = 0
    ) -> None:
        self.number = number  # the relay's line number (orders lines across units)
        self.pid = pid  # the process that wrote it (0: not known)
        self.unit = unit
        self.time = when  # wall clock (seconds since the epoch) of the read that brought it
        self.stream = stream  # 1 stdout, 2 stderr
        self.text = text  # without its newline, cut to LINE_MAX

    def as_dict(self) -> dict[str, object]:
        """The control reply's form of the line."""
        return {
            "unit": self.unit,
            "time": self.time,
            "stream": "stderr" if self.stream == 2 else "stdout",
            "text": self.text.decode("utf-8", "replace"),
            "pid": self.pid or None,
        }


class _Pipe:
    """The relay's side of one service stream."""

    __slots__ = (
        "continuing",
        "dest",
        "fd",
        "held",
        "label",
        "owner",
        "partial",
        "prefix",
        "registered",
        "ring",
        "stream",
    )

    def __init__(
        self,
        fd: int,
        label: str,
        prefix: bytes,
        dest: int,
        ring: LogRing | None,
        stream: int,
        owner: list[int],
    ) -> None:
        self.fd = fd  # read end, non-blocking
        self.label = label  # the unit
        self.ring = ring  # the unit's log ring (shared by its pipes); None: not kept
        self.stream = stream  # 1 stdout, 2 stderr
        self.owner = owner  # [the writer's pid], 0 until the spawner knows it
        self.prefix = prefix  # b"" when unprefixed
        self.dest = dest  # cinit's fd to write to
        self.partial = b""  # bytes after the last newline
        self.continuing = False  # pieces of the current line were already written
        self.held = 0  # bytes of the current long line written while exclusive
        self.registered = False  # in the thread's selector


class OutputRelay:
    """One thread copying services' stdout/stderr pipes to cinit's own fds, line by line."""

    def __init__(
        self,
        out_fd: int = 1,
        err_fd: int = 2,
        log_lines: int = LOG_LINES,
        log_bytes: int = LOG_BYTES,
    ) -> None:
        """`log_lines`/`log_bytes` bound each unit's log ring; either 0: no rings at all."""
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
        self._log_lines = log_lines
        self._log_bytes = log_bytes
        self._rings: dict[str, LogRing] = {}  # label -> its ring (added under _ring_lock)
        self._ring_lock = threading.Lock()  # the relay adds, the control thread reads
        self._next_line = 1  # number of the next line kept (0 is "before everything")
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

    def open_pipe(
        self,
        label: str,
        stream: int,
        prefix: bool,
        identifier: str = "",
        owner: list[int] | None = None,
    ) -> int:
        """A pipe for a service's stream 1 (stdout) or 2 (stderr); returns its write end.

        `owner`: a one-item list the caller fills with the writer's pid once it is known
        (after the pipe is handed out); the lines kept are shown with it.

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
            ring = self._ring(label)
            self._pending.append(_Pipe(read_end, label, tag, dest, ring, stream, owner or [0]))
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

    def _ring(self, label: str) -> LogRing | None:
        if self._log_lines <= 0 or self._log_bytes <= 0:
            return None
        with self._ring_lock:
            ring = self._rings.get(label)
            if ring is None:
                ring = self._rings[label] = LogRing(self._log_lines, self._log_bytes)
        return ring

    def tail(self, label: str) -> list[str]:
        """The last complete lines (at most TAIL_LINES) a unit wrote, oldest first."""
        lines, _cursor = self.read_logs([label], TAIL_LINES)
        return [line.text[:TAIL_LINE_MAX].decode("utf-8", "replace") for line in lines]

    def read_logs(
        self,
        units: list[str] | None = None,
        count: int | None = None,
        since: float | None = None,
        after: int | None = None,
        budget: int = 0,
    ) -> tuple[list[LogLine], int]:
        """Kept lines of `units` (None: every unit), in the order they were read, and the
        cursor to give as `after` for the lines that follow them.

        `since`: only lines read at or after that wall-clock time. `after` (a cursor): only
        lines from there on, the oldest first: at most `count` lines (and about `budget`
        bytes of text, when given), the cursor then pointing past the last one returned.
        Without `after`: the last `count` lines (None: all), the newest kept within
        `budget`, and the cursor points past everything kept.

        Reads of different units never overlap in line numbers, so the reads of all rings
        sorted by their first line are in order; only the reads that hold the lines
        returned are split into lines.
        """
        with self._ring_lock:
            chosen = list(self._rings) if units is None else units
            snapshots = [
                (self._rings[name].snapshot(), name) for name in chosen if name in self._rings
            ]
            cursor = self._next_line
        if count == 0 and after is None:
            return [], cursor
        reads = [(entry, name) for snap, name in snapshots for entry in LogRing.visible(snap)]
        reads.sort(key=lambda read: read[0][0])  # runs already in order: a merge
        limit = -1 if count is None else count
        found: list[LogLine] = []
        used = 0
        if after is None:
            for (first, when, stream, _lines, data, owner), name in reversed(reads):
                if len(found) == limit or (budget and used > budget):
                    break
                if since is not None and when < since:
                    continue
                pieces = data[:-1].split(b"\n")
                for index in range(len(pieces) - 1, -1, -1):
                    text = pieces[index][:LINE_MAX]
                    used += len(text) + 64
                    if len(found) == limit or (budget and used > budget and found):
                        break
                    found.append(LogLine(first + index, name, when, stream, text, owner[0]))
            found.reverse()
            return found, cursor
        for (first, when, stream, lines, data, owner), name in reads:
            if first + lines <= after or (since is not None and when < since):
                continue
            for index, piece in enumerate(data[:-1].split(b"\n")):
                if first + index < after:
                    continue
                text = piece[:LINE_MAX]
                used += len(text) + 64
                if len(found) == limit or (budget and used > budget and found):
                    return found, first + index
                found.append(LogLine(first + index, name, when, stream, text, owner[0]))
        return found, cursor

    def _keep(self, pipe: _Pipe, block: bytes, count: int = -1) -> None:
        """Keep `block` (`count` whole lines, ending with a newline; -1: count them) in the
        pipe's unit's ring."""
        ring = pipe.ring
        if ring is None or not block:
            return
        if count < 0:
            count = block.count(b"\n")
        when = time.time()
        with self._ring_lock:
            first = self._next_line
            self._next_line = first + count
            ring.add(first, when, pipe.stream, count, block, pipe.owner)

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
            if not pipe.continuing:  # the ring keeps its beginning only
                self._keep(pipe, buffer[:LINE_MAX] + b"\n")
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
        count = -1  # lines in `block`, when the prefixing tells it for free
        lines = block
        if pipe.prefix:
            head = b"" if pipe.continuing else pipe.prefix
            body = block[:-1].replace(b"\n", b"\n" + pipe.prefix)
            # bytes.count is a slow byte loop (~50 us per 64 KiB); replace's growth is not
            count = (len(body) - len(lines) + 1) // len(pipe.prefix) + 1
            block = head + body + b"\n"
        if pipe.ring is not None:
            if pipe.continuing:  # the end of a line written in pieces: kept with its start
                lines = lines[lines.index(b"\n") + 1 :]
                count -= 1 if count > 0 else 0
            self._keep(pipe, lines, count)
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
            if not pipe.continuing:
                self._keep(pipe, pipe.partial[:LINE_MAX] + b"\n")
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
