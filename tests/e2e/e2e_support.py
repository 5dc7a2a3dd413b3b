"""Helpers of the end-to-end suite (tests/e2e): unit files, scripts, logs, a booted cinit.

Observations come from side effects the services make themselves (marker files with
CLOCK_REALTIME ns stamps, counters) and from cinit's stderr lines in the exact forms of the
issue 4 contract (`cinit: <unit>: started (pid N)`, ...). The process helpers (output
readers, finding and signalling PID 1, teardown) are the PID 1 suite's, in
tests/pid1/conftest.py.
"""

from __future__ import annotations

import importlib.util
import re
import signal
import sys
import textwrap
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TESTS = Path(__file__).resolve().parent.parent
PROGRAMS = TESTS / "programs"
SEED = TESTS / "data" / "seed"
PYTHON = sys.executable
UNSHARE = ["unshare", "--pid", "--fork", "--mount-proc", "--propagation", "private"]


def _load_pid1_helpers() -> Any:
    """tests/pid1/conftest.py as a module of its own (conftests are not importable by name)."""
    spec = importlib.util.spec_from_file_location(
        "cinit_pid1_suite_helpers", TESTS / "pid1" / "conftest.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


pid1_helpers = _load_pid1_helpers()
LineReader = pid1_helpers.LineReader
Pid1Run = pid1_helpers.Pid1Run


def python_exec(program: str, *args: object) -> str:
    """An ExecStart= value running a tests/programs script (stdlib only: `-I -S` is quicker)."""
    words = [PYTHON, "-I", "-S", str(PROGRAMS / program), *(str(a) for a in args)]
    return " ".join(words)


def notify_exec(name: str, log: Path, delay: float = 0.0, *extra: object) -> str:
    """ExecStart= of a notify_ready.py service named `name` logging to `log`."""
    return python_exec("notify_ready.py", "--name", name, "--log", log, "--delay", delay, *extra)


def write_units(directory: Path, units: Mapping[str, str]) -> Path:
    """Write unit files (text dedented) into `directory`; returns it."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in units.items():
        (directory / name).write_text(textwrap.dedent(text).lstrip())
    return directory


def shell_script(path: Path, body: str) -> Path:
    """Write an executable /bin/sh script (body dedented); returns its path.

    Scripts keep `$`, `%` and quotes out of unit files, where they would be specifiers or
    variable references.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n" + textwrap.dedent(body).lstrip())
    path.chmod(0o755)
    return path


def events(log: Path) -> list[tuple[str, str, int]]:
    """The `<event> <name> <ns>` lines of a notify_ready.py (or script) log, in file order."""
    if not log.exists():
        return []
    found = []
    for line in log.read_text().splitlines():
        words = line.split()
        if len(words) == 3 and words[2].isdigit():
            found.append((words[0], words[1], int(words[2])))
    return found


def stamp_of(log: Path, event: str, name: str) -> int:
    """ns stamp of the one `event name` line in `log`; fails the test if there is not one."""
    stamps = [ns for ev, who, ns in events(log) if ev == event and who == name]
    assert len(stamps) == 1, f"expected one `{event} {name}` in {log}: {log.read_text()!r}"
    return stamps[0]


def cinit_line(unit: str, what: str) -> str:
    """Regex for one of cinit's contract lines: `cinit: <unit>: <what>` (what is a regex)."""
    return rf"^cinit: {re.escape(unit)}: {what}$"


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `predicate` every 10 ms; fail the test saying `what` did not happen in time."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


@dataclass
class Boot:
    """One cinit run as PID 1: the unshare process, its output, and the exec stamp."""

    run: Any  # Pid1Run from tests/pid1/conftest.py
    stamp_file: Path

    def exec_ns(self) -> int:
        """CLOCK_REALTIME ns stamped by the wrapper just before it exec'd cinit."""
        return int(self.stamp_file.read_text().strip())

    def stderr(self) -> str:
        return str(self.run.err.data.decode(errors="replace"))

    def stdout(self) -> str:
        return str(self.run.out.data.decode(errors="replace"))

    def _wait(self, reader: Any, pattern: str, timeout: float, stream: str) -> re.Match[str]:
        regex = re.compile(pattern, re.MULTILINE)
        deadline = time.monotonic() + timeout
        while True:
            ended = reader.closed.is_set()
            found = regex.search(reader.data.decode(errors="replace"))
            if found:
                return found
            if ended or time.monotonic() > deadline:
                why = "cinit's output ended" if ended else f"{timeout} s passed"
                raise AssertionError(
                    f"no {stream} line matching {pattern!r} ({why}; exit {self.run.proc.poll()})"
                    f"\nstderr:\n{self.stderr()}\nstdout:\n{self.stdout()}"
                )
            time.sleep(0.01)

    def wait_err(self, pattern: str, timeout: float = 10.0) -> re.Match[str]:
        """First match of `pattern` (multiline regex) in cinit's stderr, waiting for it."""
        return self._wait(self.run.err, pattern, timeout, "stderr")

    def wait_out(self, pattern: str, timeout: float = 10.0) -> re.Match[str]:
        """First match of `pattern` (multiline regex) in cinit's stdout, waiting for it."""
        return self._wait(self.run.out, pattern, timeout, "stdout")

    def count_err(self, pattern: str) -> int:
        return len(re.findall(pattern, self.stderr(), re.MULTILINE))

    def alive(self) -> bool:
        return self.run.proc.poll() is None

    def terminate(self, timeout: float = 15.0) -> int:
        """SIGTERM to PID 1; its exit status, after both output streams have ended."""
        self.run.send(signal.SIGTERM)
        return self.finish(timeout)

    def finish(self, timeout: float = 15.0) -> int:
        """Wait for cinit to exit (bounded) and for its output to be read; the status."""
        status = int(self.run.wait(timeout))
        self.run.out.closed.wait(5)
        self.run.err.closed.wait(5)
        return status

    def report(self) -> str:
        """Both streams, for assertion messages."""
        return f"\nstderr:\n{self.stderr()}\nstdout:\n{self.stdout()}"


