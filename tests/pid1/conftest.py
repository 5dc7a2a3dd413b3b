"""Run cinit as a real PID 1 in a new PID namespace, as a container runtime would.

`unshare --pid --fork --mount-proc` forks: unshare stays in the host namespace as the
parent, and its child execs cinit as PID 1 of the new namespace. Signals meant for cinit
therefore go to that child's host pid, found through `/proc/<unshare>/task/*/children`
once the child has exec'd (its /proc/<pid>/exe is no longer unshare's binary).

Every run is bounded: the fixture kills the namespace's PID 1 (which takes the whole
namespace with it) and the unshare process at teardown if they are still alive.

The suite can be pointed at tini as a reference (`CINIT_BIN=tini`, or `"tini -s"` for
the subreaper test): cinit's own options are then left out, and tests of cinit-only
behaviour skip, saying so.
"""

from __future__ import annotations

import contextlib
import os
import queue
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

PROGRAMS = Path(__file__).resolve().parent.parent / "programs"
PYTHON = sys.executable
UNSHARE = ["unshare", "--pid", "--fork", "--mount-proc"]


def peer_is_tini() -> bool:
    """True when the suite runs against tini as a reference instead of cinit."""
    words = shlex.split(os.environ.get("CINIT_BIN", ""))
    return bool(words) and Path(words[0]).name.startswith("tini")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "cinit_only(why): behaviour tini lacks; skipped when CINIT_BIN is tini"
    )


def pytest_runtest_setup(item: pytest.Item) -> None:
    marker = item.get_closest_marker("cinit_only")
    if marker is not None and peer_is_tini():
        why = marker.args[0] if marker.args else "cinit-only"
        pytest.skip(f"cinit-only behaviour ({why}); the init under test is tini")


def program(name: str, *args: str) -> list[str]:
    """argv that runs one of the test programs in tests/programs with this interpreter."""
    return [PYTHON, str(PROGRAMS / name), *args]


@pytest.fixture
def prog() -> Callable[..., list[str]]:
    """`prog("name.py", *args)`: argv of a program from tests/programs."""
    return program


class LineReader:
    """Collects a pipe's output on a thread so tests can wait for lines with a deadline."""

    def __init__(self, stream: object) -> None:
        self._stream = stream
        self._lines: queue.Queue[bytes | None] = queue.Queue()
        self.data = bytearray()
        self.closed = threading.Event()
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        read = self._stream.readline  # type: ignore[attr-defined]
        while True:
            line = read()
            if not line:
                break
            self.data.extend(line)
            self._lines.put(line)
        self._lines.put(None)
        self.closed.set()

    def wait_line(self, predicate: Callable[[str], bool], timeout: float) -> str | None:
        """Return the first new line (decoded, stripped) matching `predicate`, or None."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            try:
                raw = self._lines.get(timeout=remaining)
            except queue.Empty:
                return None
            if raw is None:
                self._lines.put(None)  # keep the end marker for later callers
                return None
            text = raw.decode(errors="replace").rstrip("\n")
            if predicate(text):
                return text

    def text(self, timeout: float = 5.0) -> str:
        """Everything read so far, after waiting (bounded) for the end of the stream."""
        self.closed.wait(timeout)
        return self.data.decode(errors="replace")


def _children(pid: int) -> list[int]:
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError):
                listing = Path(f"/proc/{pid}/task/{task}/children").read_text()
                found.extend(int(child) for child in listing.split())
    return found


def _exe(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return None


@dataclass
class Pid1Run:
    """One `unshare ... cinit -- CMD` run: the unshare process and its output."""

    proc: subprocess.Popen[bytes]
    out: LineReader
    err: LineReader
    started: float
    _init_pid: int | None = field(default=None, repr=False)

    def init_pid(self, timeout: float = 10.0) -> int:
        """Host pid of the namespace's PID 1, once it has exec'd the init under test."""
        if self._init_pid is not None:
            return self._init_pid
        # Until it execs, the forked child runs unshare's binary (its cmdline is no guide:
        # it can read empty around an exec).
        unshare_exe = os.path.realpath(shutil.which("unshare") or "/usr/bin/unshare")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for child in _children(self.proc.pid):
                exe = _exe(child)
                if exe is not None and exe != unshare_exe:
                    self._init_pid = child
                    return child
            if self.proc.poll() is not None:
                break
            time.sleep(0.002)
        raise AssertionError(
            f"namespace PID 1 never exec'd the init (unshare rc={self.proc.poll()}, "
            f"stderr={self.err.text(0.5)!r})"
        )

    def send(self, sig: int) -> None:
        """Send `sig` to the init under test (the namespace's PID 1)."""
        try:
            os.kill(self.init_pid(), sig)
        except ProcessLookupError:
            raise AssertionError(
                f"the init exited before it could be sent signal {sig} "
                f"(exit {self.proc.wait(5)}, stderr={self.err.text(1)!r})"
            ) from None

    def wait(self, timeout: float) -> int:
        """Exit status of the run; fails the test (not hangs) if it does not end in time."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"init did not exit within {timeout} s; stdout={self.out.text(0)!r} "
                f"stderr={self.err.text(0)!r}"
            ) from None

    def _running_pid1(self) -> int | None:
        if self.proc.poll() is not None:
            return None
        if self._init_pid is not None:
            return self._init_pid
        return next(iter(_children(self.proc.pid)), None)

    def terminate(self, grace: float) -> None:
        """SIGTERM to PID 1 and up to `grace` s for its orderly exit (cinit then removes its
        cgroups, which a SIGKILL leaves behind on the host), then `kill`."""
        pid1 = self._running_pid1()
        if pid1 is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid1, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(grace)
        self.kill()

    def kill(self) -> None:
        """Kill the namespace (through its PID 1) and unshare; reap unshare."""
        if self.proc.poll() is None:
            pid1 = self._running_pid1()
            if pid1 is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid1, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(5)
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(5)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


def init_argv(
    init: Sequence[str], command: Sequence[str], options: Sequence[str], state_dir: Path
) -> list[str]:
    """argv of the init under test: cinit with no unit directories, then `-- CMD`."""
    argv = list(init)
    if not peer_is_tini():
        argv += [
            "--units", str(state_dir / "no-units"),
            "--drop-in", str(state_dir / "no-drop-in"),
            *options,
        ]
    return [*argv, "--", *command]


_probe_result: str | None = None


def _unshare_problem() -> str | None:
    """Why cinit cannot be run as PID 1 here, or None when it can (checked once)."""
    global _probe_result
    if _probe_result is not None:
        return _probe_result or None
    if os.geteuid() != 0:
        _probe_result = "needs root: unshare --pid creates a PID namespace only as root here"
    elif shutil.which("unshare") is None:
        _probe_result = "unshare (util-linux) is not installed"
    else:
        probe = subprocess.run([*UNSHARE, "/bin/true"], capture_output=True, timeout=10)
        _probe_result = (
            "" if probe.returncode == 0
            else f"unshare --pid --fork --mount-proc fails here: {probe.stderr.decode().strip()}"
        )
    return _probe_result or None


@pytest.fixture
def pid1(tmp_path: Path, cinit_cmd: list[str]) -> Iterator[Callable[..., Pid1Run]]:
    """Factory: start `unshare --pid --fork --mount-proc cinit [opts] -- CMD`; cleans up."""
    problem = _unshare_problem()
    if problem:
        pytest.skip(problem)
    runs: list[Pid1Run] = []

    def start(
        command: Sequence[str],
        *,
        options: Sequence[str] = (),
        stdin: int | None = subprocess.DEVNULL,
        cwd: Path | None = None,
        before_init: Sequence[str] = (),
    ) -> Pid1Run:
        # before_init: a program that runs as PID 1 first and execs the init (its argv last)
        argv = [*UNSHARE, *before_init, *init_argv(cinit_cmd, command, options, tmp_path)]
        proc = subprocess.Popen(
            argv, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            cwd=cwd or tmp_path,
        )
        run = Pid1Run(proc, LineReader(proc.stdout), LineReader(proc.stderr), time.monotonic())
        runs.append(run)
        return run

    yield start
    for run in runs:
        run.kill()


@dataclass
class PlainRun:
    """cinit started directly by the test (not PID 1): the process and its output."""

    proc: subprocess.Popen[bytes]
    out: LineReader
    err: LineReader


@pytest.fixture
def not_pid1(tmp_path: Path, cinit_cmd: list[str]) -> Iterator[Callable[..., PlainRun]]:
    """Factory: start `cinit [opts] -- CMD` as an ordinary child of the test; cleans up."""
    runs: list[PlainRun] = []

    def start(command: Sequence[str], *, options: Sequence[str] = ()) -> PlainRun:
        proc = subprocess.Popen(
            init_argv(cinit_cmd, command, options, tmp_path),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            cwd=tmp_path,
        )
        run = PlainRun(proc, LineReader(proc.stdout), LineReader(proc.stderr))
        runs.append(run)
        return run

    yield start
    for run in runs:
        if run.proc.poll() is None:
            run.proc.kill()
        run.proc.wait(5)
        for stream in (run.proc.stdout, run.proc.stderr):
            if stream is not None:
                stream.close()
