"""cinit's own lines on the console: queued for one writer thread, never blocking a caller.

The writer is given a pipe of the test's own (one page: it fills at once); fd 2 of the test
process is not touched.
"""

from __future__ import annotations

import fcntl
import os
import re
import threading
import time
from collections.abc import Iterator

import pytest

from cinit.io import log as cinit_log

pytestmark = pytest.mark.timeout(60)

F_SETPIPE_SZ = 1031


@pytest.fixture
def small_pipe() -> Iterator[tuple[int, int]]:
    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    fcntl.fcntl(write_end, F_SETPIPE_SZ, 4096)
    yield read_end, write_end
    for fd in (read_end, write_end):
        os.close(fd)


def read_until(fd: int, pattern: bytes, timeout: float = 10.0) -> bytes:
    """Read `fd` until `pattern` (a regex) appears in what was read; bounded."""
    os.set_blocking(fd, False)
    data = bytearray()
    deadline = time.monotonic() + timeout
    while not re.search(pattern, data, re.MULTILINE):
        if time.monotonic() > deadline:
            raise AssertionError(f"no {pattern!r} within {timeout} s: {bytes(data[-500:])!r}")
        try:
            data.extend(os.read(fd, 65536))
        except BlockingIOError:
            time.sleep(0.005)
    return bytes(data)


def fill(fd: int) -> None:
    os.set_blocking(fd, False)
    try:
        while True:
            os.write(fd, b"#" * 4096)
    except BlockingIOError:
        pass
    os.set_blocking(fd, True)


def test_a_full_pipe_never_blocks_the_caller_and_drops_are_counted_in_place(
    small_pipe: tuple[int, int],
) -> None:
    read_end, write_end = small_pipe
    fill(write_end)
    writer = cinit_log._ConsoleWriter(write_end)
    total = cinit_log.QUEUE_LINES + 500
    for n in range(total):  # would hang here (the test's timeout) if a put blocked
        writer.put(b"cinit: line %d\n" % n, None)
    writer.put(b"cinit: after the drops\n", None)  # the queue is full: dropped too
    assert not writer.flush(0.2), "flush said done while the pipe was full"
    text = read_until(read_end, rb"lines dropped \(stderr not writable\)\n")
    lines = text.replace(b"#", b"").decode().splitlines()
    # Kept: the queue's worth, plus the line the writer may have taken before it filled.
    kept = len(lines) - 1
    assert kept in (cinit_log.QUEUE_LINES, cinit_log.QUEUE_LINES + 1)
    assert lines[:kept] == [f"cinit: line {n}" for n in range(kept)]
    dropped = total + 1 - kept
    assert lines[-1] == f"cinit: {dropped} lines dropped (stderr not writable)"
    assert writer.dropped == dropped
    writer.put(b"cinit: later\n", None)
    assert read_until(read_end, rb"^cinit: later$") == b"cinit: later\n"
    assert writer.flush(5.0)


def test_a_line_waits_for_its_barrier_and_the_lines_after_it_keep_their_order(
    small_pipe: tuple[int, int],
) -> None:
    read_end, write_end = small_pipe
    writer = cinit_log._ConsoleWriter(write_end)
    barrier = threading.Event()
    writer.put(b"cinit: first\n", None)
    writer.put(b"cinit: after the unit's output\n", barrier)
    writer.put(b"cinit: third\n", None)
    assert read_until(read_end, rb"^cinit: first$") == b"cinit: first\n"
    os.write(write_end, b"unit: its last line\n")  # what the relay writes before the mark
    barrier.set()
    text = read_until(read_end, rb"^cinit: third$")
    assert text == b"unit: its last line\ncinit: after the unit's output\ncinit: third\n"


def test_a_forked_child_writes_its_lines_itself(small_pipe: tuple[int, int]) -> None:
    read_end, write_end = small_pipe
    cinit_log.write_directly(False)  # as in cinit: lines go to the writer thread...
    try:
        pid = os.fork()
        if pid == 0:  # ...but a forked child has no such thread: its line is written at once
            try:
                os.dup2(write_end, 2)
                cinit_log.log("from the child")
            finally:
                os._exit(0)
    finally:
        cinit_log.write_directly(True)  # the suite's setting (tests/conftest.py)
    assert os.waitpid(pid, 0)[1] == 0
    assert read_until(read_end, rb"from the child") == b"cinit: from the child\n"
