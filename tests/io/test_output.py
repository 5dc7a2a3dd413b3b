"""`cinit.io.output` with real child processes writing through the relay.

Children are started with `cinit.io.spawn.spawn` (so they hold nothing but their own
pipe end) and reaped by pid here. Destinations are temporary files unless a test is
about pipes (non-blocking, full, broken).
"""

from __future__ import annotations

import errno
import fcntl
import os
import signal
import stat
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cinit.io.output import PIECE, OutputRelay, open_output_file
from cinit.io.reaper import Process, ProcessTable
from cinit.io.spawn import SpawnRequest, spawn
from cinit.units.model import Output, OutputTarget

pytestmark = pytest.mark.timeout(60)


class Inbox:
    def tell(self, message: object) -> None:
        pass


class Destination:
    """A temporary file used as cinit's stdout or stderr."""

    def __init__(self) -> None:
        self.fd, path = tempfile.mkstemp(prefix="cinit-relay-out-")
        os.unlink(path)

    def read(self) -> bytes:
        return os.pread(self.fd, os.fstat(self.fd).st_size, 0)

    def close(self) -> None:
        os.close(self.fd)


@pytest.fixture
def out() -> Iterator[Destination]:
    destination = Destination()
    yield destination
    destination.close()


@pytest.fixture
def err() -> Iterator[Destination]:
    destination = Destination()
    yield destination
    destination.close()


@pytest.fixture
def relay(out: Destination, err: Destination) -> Iterator[OutputRelay]:
    relay = OutputRelay(out.fd, err.fd)
    relay.start()
    yield relay
    relay.stop()


def start_writer(
    relay: OutputRelay, label: str, code: str, *, prefix: bool = True, both: bool = False
) -> Process:
    """Run `python -c code` with stdout (and stderr when `both`) into the relay."""
    stdout = relay.open_pipe(label, 1, prefix)
    stderr = relay.open_pipe(label, 2, prefix) if both else 2
    try:
        request = SpawnRequest(
            [sys.executable, "-c", code], label=label, stdout=stdout, stderr=stderr
        )
        return spawn(request, ProcessTable(), Inbox())
    finally:
        os.close(stdout)
        if both:
            os.close(stderr)


def reap(process: Process) -> int:
    _, status = os.waitpid(process.pid, 0)
    return os.waitstatus_to_exitcode(status)


def wait_idle(relay: OutputRelay, timeout: float = 20.0) -> None:
    """Wait until the relay has seen EOF on (and closed) every pipe."""
    deadline = time.monotonic() + timeout
    while relay.open_pipes:
        assert time.monotonic() < deadline, f"relay still holds {relay.open_pipes} pipes"
        time.sleep(0.01)


def wait_for(predicate: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


def test_lines_are_prefixed_and_a_partial_line_waits_for_its_newline(
    relay: OutputRelay, out: Destination
) -> None:
    code = (
        "import os, time\nos.write(1, b'one\\ntw')\ntime.sleep(0.3)\nos.write(1, b'o\\nthree\\n')\n"
    )
    assert reap(start_writer(relay, "web.service", code)) == 0
    wait_idle(relay)
    assert out.read() == b"web.service: one\nweb.service: two\nweb.service: three\n"


def test_stdout_and_stderr_go_to_their_own_fds(
    relay: OutputRelay, out: Destination, err: Destination
) -> None:
    code = "import os\nos.write(1, b'to out\\n')\nos.write(2, b'to err\\n')\n"
    assert reap(start_writer(relay, "a.service", code, both=True)) == 0
    wait_idle(relay)
    assert out.read() == b"a.service: to out\n"
    assert err.read() == b"a.service: to err\n"


def test_unprefixed_output_passes_through_byte_for_byte(
    relay: OutputRelay, out: Destination
) -> None:
    payload = bytes(range(256)) * 3 + b"\r\n\x00tail without newline"
    code = f"import os\nos.write(1, {payload!r})\n"
    assert reap(start_writer(relay, "raw.service", code, prefix=False)) == 0
    wait_idle(relay)
    assert out.read() == payload + b"\n"  # only the final newline is added, at EOF


def test_invalid_utf8_passes_through_untouched(relay: OutputRelay, out: Destination) -> None:
    line = b"bad \xff\xfe \xc3\x28 half \xe2\x82 end"
    data = line + b"\n"
    code = f"import os\nos.write(1, {data!r})\n"
    assert reap(start_writer(relay, "bin.service", code)) == 0
    wait_idle(relay)
    assert out.read() == b"bin.service: " + line + b"\n"


def test_a_writer_that_dies_mid_line_loses_nothing(relay: OutputRelay, out: Destination) -> None:
    code = (
        "import os, signal\n"
        "os.write(1, b'complete\\nlast words, no newline')\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    assert reap(start_writer(relay, "dying.service", code)) == -signal.SIGKILL
    wait_idle(relay)
    assert out.read() == b"dying.service: complete\ndying.service: last words, no newline\n"


def test_a_1_mib_line_arrives_whole_with_one_prefix_amid_other_writers(
    relay: OutputRelay, out: Destination
) -> None:
    # The long line is written in two halves with a pause, so the short-line writers
    # are busy while it is in progress; none of their lines may land inside it.
    long_line = b"".join(bytes([65 + i % 26]) * 1024 for i in range(1024))
    code_long = (
        "import os, time, sys\n"
        "line = b''.join(bytes([65 + i % 26]) * 1024 for i in range(1024))\n"
        "half = len(line) // 2\n"
        "data = memoryview(line)\n"
        "for chunk in (data[:half], data[half:]):\n"
        "    while chunk:\n"
        "        chunk = chunk[os.write(1, chunk):]\n"
        "    time.sleep(0.05)\n"
        "os.write(1, b'\\nafter\\n')\n"
    )
    code_short = (
        "import sys, time\n"
        "for n in range(2000):\n"
        "    print(f'short {n}', flush=True)\n"
        "    if n % 100 == 0: time.sleep(0.005)\n"
    )
    writers = [start_writer(relay, f"short{i}.service", code_short) for i in range(3)]
    writers.append(start_writer(relay, "long.service", code_long))
    for process in writers:
        assert reap(process) == 0
    wait_idle(relay)
    lines = out.read().split(b"\n")
    assert lines[-1] == b""
    longs = [line for line in lines if line.startswith(b"long.service: ")]
    assert longs == [b"long.service: " + long_line, b"long.service: after"]
    for i in range(3):
        expected = [f"short{i}.service: short {n}".encode() for n in range(2000)]
        assert [line for line in lines if line.startswith(f"short{i}.".encode())] == expected


def test_ten_concurrent_writers_of_10000_lines_each_arrive_whole_and_once(
    relay: OutputRelay, out: Destination
) -> None:
    # Buffered prints: the children's writes cut lines anywhere (8 KiB blocks).
    code = (
        "import sys\n"
        "name = sys.argv[1]\n"
        "for n in range(10000):\n"
        "    sys.stdout.write(f'{name} line {n:05d} ' + 'x' * (n % 97) + '|\\n')\n"
    )
    writers = []
    for i in range(10):
        label = f"w{i}.service"
        stdout = relay.open_pipe(label, 1, True)
        try:
            request = SpawnRequest(
                [sys.executable, "-c", code, f"w{i}"], label=label, stdout=stdout
            )
            writers.append(spawn(request, ProcessTable(), Inbox()))
        finally:
            os.close(stdout)
    for process in writers:
        assert reap(process) == 0
    wait_idle(relay)
    data = out.read()
    assert data.endswith(b"\n")
    lines = data[:-1].split(b"\n")
    assert len(lines) == 100_000
    seen: dict[str, list[int]] = {f"w{i}": [] for i in range(10)}
    for raw in lines:
        tag, sep, rest = raw.partition(b".service: ")
        assert sep, raw
        name, word, number, tail = rest.decode().split(" ", 3)
        n = int(number)
        assert name == tag.decode() and word == "line"
        assert tail == "x" * (n % 97) + "|", raw  # not torn, nothing spliced in
        seen[name].append(n)
    for numbers in seen.values():
        assert numbers == list(range(10000))  # each exactly once, in order


def fd_count() -> int:
    """Open fds of this process, leaving out the pidfds of spawned children (closed by
    the reaper, which these tests do not run) and spawn's cached /dev/null."""
    count = 0
    for name in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue  # the listing's own fd
        if target not in ("anon_inode:[pidfd]", os.devnull):
            count += 1
    return count


def settle(relay: OutputRelay) -> None:
    """Make sure the relay thread runs (its epoll fd exists) and holds no pipe."""
    os.close(relay.open_pipe("warm-up", 1, False))
    wait_idle(relay)


def test_read_ends_are_closed_at_eof_no_fd_leak_after_100_pipes(
    relay: OutputRelay, out: Destination
) -> None:
    settle(relay)
    before = fd_count()
    for batch in range(4):
        ends = [relay.open_pipe(f"p{batch}-{i}", 1 + i % 2, True) for i in range(25)]
        for i, fd in enumerate(ends):
            os.write(fd, f"line {batch}-{i}\npartial {batch}-{i}".encode())
            os.close(fd)
    wait_idle(relay)
    assert fd_count() == before
    lines = sorted(out.read().splitlines())
    expected = [  # the pipes of stream 1 (even i), two lines each, the last one completed
        f"p{batch}-{i}: {kind} {batch}-{i}".encode()
        for batch in range(4)
        for i in range(0, 25, 2)
        for kind in ("line", "partial")
    ]
    assert lines == sorted(expected)


def test_child_processes_pipes_are_all_closed_after_they_exit(relay: OutputRelay) -> None:
    settle(relay)
    before = fd_count()
    writers = [start_writer(relay, f"c{i}", "print('hi')", both=True) for i in range(20)]
    for process in writers:
        assert reap(process) == 0
    wait_idle(relay)
    assert fd_count() == before


def test_stop_relays_what_is_buffered_and_flushes_partial_lines(
    out: Destination, err: Destination
) -> None:
    relay = OutputRelay(out.fd, err.fd)
    relay.start()
    code = "import os, time\nos.write(1, b'first\\nhalf a line')\ntime.sleep(30)\n"
    process = start_writer(relay, "slow.service", code)
    try:
        wait_for(lambda: out.read() == b"slow.service: first\n")
        relay.stop()  # the writer is still alive and its pipe still open
        assert out.read() == b"slow.service: first\nslow.service: half a line\n"
        assert relay.open_pipes == 0
    finally:
        process.send_signal(signal.SIGKILL)
        reap(process)


def test_open_pipe_after_stop_hands_out_the_destination_itself(
    out: Destination, err: Destination
) -> None:
    relay = OutputRelay(out.fd, err.fd)
    relay.stop()  # never started: still fine
    fd = relay.open_pipe("late.service", 1, True)
    try:
        assert fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC
        os.write(fd, b"late output\n")
    finally:
        os.close(fd)
    assert out.read() == b"late output\n"


def test_pipes_opened_before_start_are_served(out: Destination, err: Destination) -> None:
    relay = OutputRelay(out.fd, err.fd)
    fd = relay.open_pipe("early.service", 2, True)
    os.write(fd, b"written before the relay ran\n")
    os.close(fd)
    relay.start()
    try:
        wait_idle(relay)
        assert err.read() == b"early.service: written before the relay ran\n"
    finally:
        relay.stop()


def test_open_pipe_rejects_other_streams(relay: OutputRelay) -> None:
    with pytest.raises(ValueError, match="stream must be 1 or 2"):
        relay.open_pipe("x.service", 3, True)


def test_a_full_nonblocking_stdout_is_waited_for_without_spinning(err: Destination) -> None:
    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    os.set_blocking(write_end, False)  # cinit's stdout may be non-blocking
    relay = OutputRelay(write_end, err.fd)
    relay.start()
    received = bytearray()
    try:
        code = (
            "import sys\n"
            "for n in range(20000):\n"
            "    sys.stdout.write(f'{n:06d} ' + 'y' * 50 + '\\n')\n"
        )
        process = start_writer(relay, "big.service", code)
        time.sleep(0.3)  # the 64 KiB pipe is full long before this
        cpu_before = time.process_time()
        time.sleep(1.0)  # nobody reads: the relay must sleep in poll, not spin on EAGAIN
        cpu_spent = time.process_time() - cpu_before
        expected = [f"big.service: {n:06d} ".encode() + b"y" * 50 for n in range(20000)]
        total = sum(len(line) + 1 for line in expected)
        while len(received) < total:
            received += os.read(read_end, 1 << 16)
        assert reap(process) == 0
        wait_idle(relay)
        assert cpu_spent < 0.3, f"relay used {cpu_spent:.2f} s of CPU while stdout was full"
        assert bytes(received).splitlines() == expected
        assert relay.dropped_bytes == 0
    finally:
        relay.stop()
        os.close(read_end)
        os.close(write_end)


def test_a_broken_stdout_drops_and_counts_but_stderr_keeps_flowing(err: Destination) -> None:
    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    os.close(read_end)  # nobody will ever read cinit's stdout: EPIPE
    relay = OutputRelay(write_end, err.fd)
    relay.start()
    try:
        code = (
            "import os\n"
            "for n in range(100):\n"
            "    os.write(1, b'lost %d\\n' % n)\n"
            "    os.write(2, b'kept %d\\n' % n)\n"
        )
        assert reap(start_writer(relay, "half.service", code, both=True)) == 0
        wait_idle(relay)
        lines = err.read().splitlines()
        kept = [line for line in lines if line.startswith(b"half.service: ")]
        assert kept == [b"half.service: kept %d" % n for n in range(100)]
        assert relay.dropped_bytes == sum(len(b"half.service: lost %d\n" % n) for n in range(100))
        # still alive and relaying
        assert (
            reap(start_writer(relay, "after.service", "import os; os.write(2, b'x\\n')", both=True))
            == 0
        )
        wait_idle(relay)
        assert err.read().endswith(b"after.service: x\n")
    finally:
        relay.stop()
        os.close(write_end)


def test_a_stuck_stdout_never_blocks_open_pipe_or_stop(
    err: Destination, capfd: pytest.CaptureFixture[str]
) -> None:
    read_end, write_end = os.pipe2(os.O_CLOEXEC)  # blocking, and never read
    relay = OutputRelay(write_end, err.fd)
    relay.start()
    flood = start_writer(
        relay, "flood.service", "import os\nwhile True: os.write(1, b'z' * 999 + b'\\n')"
    )
    try:
        time.sleep(0.3)  # the relay thread is now blocked writing to the full pipe
        result: list[int] = []
        opener = threading.Thread(target=lambda: result.append(relay.open_pipe("b", 1, True)))
        opener.start()
        opener.join(5.0)
        assert not opener.is_alive() and result, "open_pipe blocked behind a stuck stdout"
        os.close(result[0])
        stopper = threading.Thread(target=relay.stop, kwargs={"timeout": 0.5})
        stopper.start()
        stopper.join(5.0)
        assert not stopper.is_alive(), "stop() did not return within its timeout"
    finally:
        flood.send_signal(signal.SIGKILL)
        reap(flood)
        os.close(read_end)  # the relay's blocked write now fails with EPIPE and it ends
        # Its thread ends here, not during a later test (its line would land outside any
        # capture, and its fd number could be another test's file by then).
        ended = relay.wait_stopped(10.0)
        os.close(write_end)
    assert ended, "the relay thread outlived the EPIPE of its stuck stdout"
    said = capfd.readouterr().err
    assert f"cannot write service output to cinit's stdout (fd {write_end}): Broken pipe" in said
    assert "bytes of service output could not be written" in said


def test_a_flooding_writer_does_not_starve_a_quiet_one(err: Destination) -> None:
    null = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
    relay = OutputRelay(null, err.fd)
    relay.start()
    # One floods with short lines, one with an endless line (no newline at all).
    lines = start_writer(
        relay, "lines.service", "import os\nwhile True: os.write(1, b'f' * 99 + b'\\n' * 1)"
    )
    endless = start_writer(
        relay, "endless.service", "import os\nwhile True: os.write(1, b'e' * 65536)"
    )
    try:
        time.sleep(0.2)
        quiet = start_writer(
            relay, "quiet.service", "import os; os.write(2, b'still heard\\n')", both=True
        )
        assert reap(quiet) == 0
        wait_for(lambda: err.read() == b"quiet.service: still heard\n")
    finally:
        for process in (lines, endless):
            process.send_signal(signal.SIGKILL)
            reap(process)
        relay.stop()
        os.close(null)


def test_an_endless_line_is_cut_so_others_get_their_turn(out: Destination) -> None:
    relay = OutputRelay(out.fd, out.fd)
    relay.start()
    code = "import os, sys\nn = int(sys.argv[1])\nfor _ in range(n): os.write(1, b'e' * 65536)\n"
    stdout = relay.open_pipe("endless.service", 1, True)
    request = SpawnRequest([sys.executable, "-c", code, "400"], label="e", stdout=stdout)
    endless = spawn(request, ProcessTable(), Inbox())  # 25 MiB in one line, > HOLD_MAX
    os.close(stdout)
    other = start_writer(
        relay,
        "other.service",
        "import time\nfor n in range(50):\n    print(n, flush=True); time.sleep(0.002)",
    )
    try:
        assert reap(endless) == 0 and reap(other) == 0
        wait_idle(relay)
    finally:
        relay.stop()
    lines = out.read().split(b"\n")
    others = [line for line in lines if line.startswith(b"other.service: ")]
    assert others == [b"other.service: %d" % n for n in range(50)]
    pieces = [line for line in lines if line and not line.startswith(b"other.service: ")]
    # Everything else is the endless line, cut into prefixed lines of whole pieces.
    assert all(line.startswith(b"endless.service: e") for line in pieces)
    body = sum(len(line) - len(b"endless.service: ") for line in pieces)
    assert body == 400 * 65536
    assert all(set(line[len(b"endless.service: ") :]) == {ord("e")} for line in pieces)


def test_lines_longer_than_a_piece_keep_their_bytes(relay: OutputRelay, out: Destination) -> None:
    sizes = [PIECE - 1, PIECE, PIECE + 1, 3 * PIECE + 17]
    code = (
        "import os\n"
        f"for i, size in enumerate({sizes!r}):\n"
        "    data = memoryview(bytes([97 + i]) * size + b'\\n')\n"
        "    while data: data = data[os.write(1, data):]\n"
    )
    assert reap(start_writer(relay, "wide.service", code)) == 0
    wait_idle(relay)
    lines = out.read().split(b"\n")[:-1]
    assert lines == [b"wide.service: " + bytes([97 + i]) * size for i, size in enumerate(sizes)]


# --- StandardOutput=/StandardError= files ---------------------------------------------------


def test_file_output_creates_0644_and_does_not_truncate(tmp_path: Path) -> None:
    path = tmp_path / "out.log"
    fd = open_output_file(Output(OutputTarget.FILE, str(path)))
    assert fd is not None
    try:
        assert fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC
        os.write(fd, b"first")
    finally:
        os.close(fd)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644 & ~_umask()
    fd = open_output_file(Output(OutputTarget.FILE, str(path)))
    assert fd is not None
    os.write(fd, b"AB")  # at offset 0, over the old bytes, as systemd's file:
    os.close(fd)
    assert path.read_bytes() == b"ABrst"


def test_append_output_appends(tmp_path: Path) -> None:
    path = tmp_path / "append.log"
    path.write_bytes(b"old\n")
    for text in (b"one\n", b"two\n"):
        fd = open_output_file(Output(OutputTarget.APPEND, str(path)))
        assert fd is not None
        os.write(fd, text)
        os.close(fd)
    assert path.read_bytes() == b"old\none\ntwo\n"


def test_null_and_inherit_outputs() -> None:
    assert open_output_file(Output(OutputTarget.INHERIT)) is None
    fd = open_output_file(Output(OutputTarget.NULL))
    assert fd is not None
    try:
        assert os.path.samestat(os.fstat(fd), os.stat(os.devnull))
        assert os.write(fd, b"discarded") == 9
    finally:
        os.close(fd)


def test_output_file_errors_raise_oserror(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        open_output_file(Output(OutputTarget.FILE, str(tmp_path / "missing" / "x.log")))
    with pytest.raises(IsADirectoryError):
        open_output_file(Output(OutputTarget.APPEND, str(tmp_path)))


def test_output_file_permission_error_as_another_user(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to user nobody")
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: as nobody, the 0700 directory is out of reach
        try:
            os.setgid(65534)
            os.setuid(65534)
            try:
                open_output_file(Output(OutputTarget.FILE, str(private / "x.log")))
                result = 0
            except OSError as exc:
                result = exc.errno or 0
            os.write(write_end, str(result).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    answer = os.read(read_end, 100)
    os.close(read_end)
    os.waitpid(pid, 0)
    assert int(answer) == errno.EACCES


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_the_last_lines_of_each_unit_are_kept_for_status(relay: OutputRelay) -> None:
    code = (
        "import os\n"
        "os.write(1, b''.join(b'line %d\\n' % i for i in range(25)))\n"
        "os.write(2, b'err last\\npartial')\n"
    )
    assert reap(start_writer(relay, "web.service", code, both=True)) == 0
    wait_idle(relay)
    tail = relay.tail("web.service")
    assert len(tail) == 10
    assert tail[-1] in ("err last", "partial")  # stderr too; the partial one at EOF
    assert "err last" in tail
    assert tail[0].startswith("line ") and "line 24" in tail
    assert relay.tail("other.service") == []


def test_a_mark_is_set_once_what_the_units_pipes_held_is_written(
    relay: OutputRelay, out: Destination
) -> None:
    busy = relay.open_pipe("busy.service", 1, True)  # another unit: its pipe is left alone
    quiet = relay.open_pipe("quiet.service", 1, True)
    try:
        os.write(quiet, b"".join(b"line %d\n" % n for n in range(3000)))
        mark = relay.relayed_mark("quiet.service")
        assert mark is not None
        assert mark.wait(20), "the relay never set the mark"
        # Everything the pipe held when the mark was asked for is written by now.
        assert out.read().endswith(b"quiet.service: line 2999\n")
    finally:
        os.close(busy)
        os.close(quiet)


def test_no_mark_without_a_relay_thread(out: Destination, err: Destination) -> None:
    relay = OutputRelay(out.fd, err.fd)
    assert relay.relayed_mark("any.service") is None  # nothing to wait for: not started
    relay.start()
    relay.stop()
    assert relay.relayed_mark("any.service") is None  # stopped: lines go out as they come
