"""cinit as PID 1 with a stderr nobody reads (a stalled log driver, Ctrl-S on a terminal).

Its own lines must never block an actor or the main thread: restarts go on while the pipe
is full, SIGTERM still stops cinit, and the lines that did not fit are counted and said
once the pipe drains. The pipe is shrunk to one page so that it fills in a moment.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import os
import re
import subprocess
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_support import UNSHARE, LineReader, Pid1Run, pid1_helpers, shell_script, wait_until
from e2e_support import write_units as write_unit_files

pytestmark = [pytest.mark.pid1, pytest.mark.timeout(90)]

F_SETPIPE_SZ = 1031  # fcntl.F_SETPIPE_SZ (Python 3.10+ on Linux; spelled out for mypy)
DROP_NOTICE = re.compile(rb"^cinit: (\d+) lines dropped \(stderr not writable\)$", re.MULTILINE)


class StalledBoot:
    """cinit as PID 1 with a restart storm beside `sleep 1000`; its stderr a small pipe
    that the test reads only when it says so."""

    def __init__(self, tmp_path: Path, cinit_cmd: list[str]) -> None:
        self.counter = tmp_path / "restarts"
        script = shell_script(tmp_path / "tick", f"printf x >> {self.counter}\n")
        units = write_unit_files(tmp_path / "units", {
            "storm.service": f"""
                [Unit]
                StartLimitBurst=0
                [Service]
                ExecStart={script}
                Restart=always
                RestartSec=0
                """,
            "sleeper.service": "[Service]\nExecStart=/bin/sleep 1000\n",
        })
        self.err_read, err_write = os.pipe2(os.O_CLOEXEC)
        fcntl.fcntl(err_write, F_SETPIPE_SZ, 4096)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CINIT_", "NOTIFY_"))}
        env["CINIT_VERBOSE"] = "1"  # more of cinit's own lines per restart
        argv = [
            *UNSHARE, *cinit_cmd, "--units", str(units), "--drop-in", str(tmp_path / "none"),
            "--runtime-dir", str(tmp_path / "run"),
        ]
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err_write,
            cwd=tmp_path, env=env,
        )
        os.close(err_write)
        # The run's stderr is the test's unread pipe: the helper's reader gets nothing.
        empty = LineReader(io.BytesIO(b""))
        self.run = Pid1Run(proc, empty, empty, time.monotonic())
        self.read_so_far = bytearray()

    def restarts(self) -> int:
        try:
            return self.counter.stat().st_size
        except FileNotFoundError:
            return 0

    def unread(self) -> int:
        """Bytes waiting in the stderr pipe."""
        return int.from_bytes(fcntl.ioctl(self.err_read, termios.FIONREAD, b"\0" * 4), "little")

    def wait_full(self) -> None:
        # A full one-page pipe: no room left for another of cinit's lines.
        wait_until(lambda: self.unread() > 4096 - 64, 30, "cinit's stderr pipe to fill")

    def read_some(self, timeout: float) -> bytes:
        """Read what comes from the pipe for up to `timeout` s (or until EOF)."""
        os.set_blocking(self.err_read, False)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = os.read(self.err_read, 65536)
            except BlockingIOError:
                time.sleep(0.01)
                continue
            if not chunk:
                break
            self.read_so_far.extend(chunk)
            if DROP_NOTICE.search(self.read_so_far):
                break
        return bytes(self.read_so_far)

    def close(self) -> None:
        self.run.terminate(5.0)
        with contextlib.suppress(OSError):
            os.close(self.err_read)


@pytest.fixture
def stalled(tmp_path: Path, cinit_cmd: list[str]) -> Iterator[StalledBoot]:
    if pid1_helpers.peer_is_tini():
        pytest.skip("unit supervision is cinit's own; the init under test is tini")
    problem = pid1_helpers._unshare_problem()
    if problem:
        pytest.skip(problem)
    started = StalledBoot(tmp_path, cinit_cmd)
    yield started
    started.close()


def test_restarts_go_on_and_sigterm_stops_cinit_while_stderr_is_full(
    stalled: StalledBoot,
) -> None:
    stalled.wait_full()
    before = stalled.restarts()
    wait_until(lambda: stalled.restarts() >= before + 50, 30,
               f"50 more restarts with stderr full (still {stalled.restarts()} after {before})")
    assert stalled.unread() > 4096 - 64, "the pipe was read: this test needs it to stay full"
    stalled.run.send(15)  # SIGTERM
    # Bounded: stopping sleep 1000 and a short flush of the stalled stderr, not its drain.
    status = stalled.run.wait(30)
    assert status == 0, f"cinit exited {status} after SIGTERM"


def test_lines_dropped_while_stderr_was_full_are_counted_once_it_drains(
    stalled: StalledBoot,
) -> None:
    stalled.wait_full()
    before = stalled.restarts()
    # Each restart is a few of cinit's lines: enough to overflow its queue.
    wait_until(lambda: stalled.restarts() >= before + 1500, 60,
               f"1500 more restarts with stderr full (still {stalled.restarts()} after {before})")
    text = stalled.read_some(20)
    found = DROP_NOTICE.search(text)
    assert found, f"no drop notice in {len(text)} bytes read after the drain: {text[-2000:]!r}"
    assert int(found.group(1)) > 0
    # Whole lines only, each cinit's own (nothing cut in the middle by the drop).
    lines = text[: found.end()].decode(errors="replace").splitlines()
    assert all(line.startswith("cinit: ") for line in lines), [
        line for line in lines if not line.startswith("cinit: ")
    ][:5]


def test_a_units_exit_line_comes_after_its_last_output_line(
    tmp_path: Path, cinit_cmd: list[str]
) -> None:
    # cinit's stdout and stderr are one small pipe the test first leaves unread: the relay
    # is stuck on it while the unit writes its lines into its own pipe and exits. Once
    # the test reads, the unit's `exited` line must still come after all of its output.
    if pid1_helpers.peer_is_tini():
        pytest.skip("unit supervision is cinit's own; the init under test is tini")
    problem = pid1_helpers._unshare_problem()
    if problem:
        pytest.skip(problem)
    done = tmp_path / "talked"
    script = shell_script(tmp_path / "talk", f"""
        i=0
        while [ $i -lt 2000 ]; do echo "line $i"; i=$((i+1)); done
        echo last-line
        touch {done}
        """)
    units = write_unit_files(tmp_path / "units", {
        "talker.service": f"[Service]\nExecStart={script}\n",
        "sleeper.service": "[Service]\nExecStart=/bin/sleep 1000\n",
    })
    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    fcntl.fcntl(write_end, F_SETPIPE_SZ, 4096)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CINIT_", "NOTIFY_"))}
    argv = [
        *UNSHARE, *cinit_cmd, "--units", str(units), "--drop-in", str(tmp_path / "none"),
        "--runtime-dir", str(tmp_path / "run"),
    ]
    proc = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=write_end, stderr=write_end, cwd=tmp_path, env=env
    )
    os.close(write_end)
    empty = LineReader(io.BytesIO(b""))
    run = Pid1Run(proc, empty, empty, time.monotonic())
    try:
        wait_until(done.exists, 30, "the unit to write its lines and exit")
        time.sleep(0.3)  # its exit reaped meanwhile, the output still unread (not asserted)
        os.set_blocking(read_end, False)
        data = bytearray()
        exited = re.compile(rb"^cinit: talker\.service: exited \(status=0\)$", re.MULTILINE)

        def read_more() -> bool:
            with contextlib.suppress(BlockingIOError):
                data.extend(os.read(read_end, 65536))
            return exited.search(data) is not None

        wait_until(read_more, 30, "the unit's exited line")
        text = data.decode(errors="replace")
        last = text.find("\ntalker.service: last-line\n")
        assert last != -1, f"the unit's last line is missing: {text[-1500:]!r}"
        assert last < exited.search(data).start(), (  # type: ignore[union-attr]
            f"exited before the unit's last output line:\n{text[-1500:]}"
        )
    finally:
        run.terminate(5.0)
        os.close(read_end)
