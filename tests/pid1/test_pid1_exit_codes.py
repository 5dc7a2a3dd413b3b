"""cinit as PID 1 passes on the main command's fate: exit code, death by signal, exec failure."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

Starter = Callable[..., Any]  # the pid1 / not_pid1 fixtures (tests/pid1/conftest.py)
Programs = Callable[..., list[str]]  # the prog fixture

pytestmark = [pytest.mark.pid1, pytest.mark.timeout(30)]


def assert_no_traceback(stderr: str) -> None:
    assert "Traceback" not in stderr, f"cinit printed a traceback:\n{stderr}"


@pytest.mark.parametrize("code", [0, 1, 3, 42, 255])
def test_exit_code_of_main_command_is_passed_on(pid1: Starter, code: int) -> None:
    run = pid1(["/bin/sh", "-c", f"exit {code}"])
    assert run.wait(15) == code
    assert_no_traceback(run.err.text())


@pytest.mark.parametrize(
    "sig",
    [signal.SIGTERM, signal.SIGINT, signal.SIGKILL, signal.SIGUSR1, signal.SIGABRT],
    ids=lambda s: s.name,
)
def test_death_by_signal_gives_128_plus_signal(pid1: Starter, sig: signal.Signals) -> None:
    # The child kills itself; `exit 77` shows up instead if the signal did not kill it
    # (for example because the child inherited it as ignored). No core file for ABRT.
    run = pid1(["/bin/sh", "-c", f"ulimit -c 0; kill -s {sig.name[3:]} $$; exit 77"])
    assert run.wait(15) == 128 + sig.value
    assert_no_traceback(run.err.text())


@pytest.mark.parametrize(
    "missing", ["/nonexistent/cinit-test-no-such-program", "cinit-test-no-such-command"]
)
def test_missing_command_exits_127_naming_it(pid1: Starter, missing: str) -> None:
    run = pid1([missing, "some-arg"])
    assert run.wait(15) == 127
    stderr = run.err.text()
    assert missing in stderr
    assert_no_traceback(stderr)


@pytest.mark.parametrize("kind", ["plain-file", "directory"])
def test_command_that_cannot_be_executed_exits_126_naming_it(
    pid1: Starter, tmp_path: Path, kind: str
) -> None:
    if kind == "plain-file":
        target = tmp_path / "not-executable.sh"
        target.write_text("#!/bin/sh\necho should-not-run\n")
        target.chmod(0o644)
    else:
        target = tmp_path / "a-directory"
        target.mkdir()
    run = pid1([str(target)])
    assert run.wait(15) == 126
    assert run.out.text() == ""
    stderr = run.err.text()
    assert str(target) in stderr
    assert_no_traceback(stderr)


@pytest.mark.cinit_only("`cinit: ` prefix on its own messages")
def test_exec_failure_message_is_cinit_prefixed(pid1: Starter) -> None:
    missing = "/nonexistent/cinit-test-prefixed"
    run = pid1([missing])
    assert run.wait(15) == 127
    lines = [line for line in run.err.text().splitlines() if missing in line]
    assert lines, "no stderr line names the missing path"
    assert all(line.startswith("cinit: ") for line in lines), lines
