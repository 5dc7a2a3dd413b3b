"""What the main command inherits from cinit: signal state, file descriptors, stdio."""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

Starter = Callable[..., Any]  # the pid1 / not_pid1 fixtures (tests/pid1/conftest.py)
Programs = Callable[..., list[str]]  # the prog fixture

pytestmark = [pytest.mark.pid1, pytest.mark.timeout(30)]


def feed_stdin(proc: subprocess.Popen[bytes], data: bytes) -> None:
    """Write `data` to the run's stdin and close it, on a thread: a stuck reader cannot hang us."""

    def write() -> None:
        assert proc.stdin is not None
        try:
            proc.stdin.write(data)
            proc.stdin.close()
        except (OSError, ValueError):  # closed by the reader side or by teardown
            pass

    threading.Thread(target=write, daemon=True).start()


def status_fields(text: str) -> dict[str, str]:
    fields = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return fields


def test_main_command_starts_with_empty_signal_mask_and_no_ignored_signals(pid1: Starter) -> None:
    # cat itself blocks and ignores nothing, so its status shows exactly what it inherited.
    run = pid1(["/bin/cat", "/proc/self/status"])
    assert run.wait(15) == 0
    fields = status_fields(run.out.text())
    assert fields["SigBlk"] == "0000000000000000"
    assert fields["SigIgn"] == "0000000000000000"


def test_main_command_inherits_only_fds_0_1_2(pid1: Starter, prog: Programs) -> None:
    run = pid1(prog("fd_report.py"))
    assert run.wait(15) == 0
    assert run.out.text().splitlines() == ["INHERITED 0 1 2", "LISTING 1"]


def test_stdin_stdout_stderr_pass_through(pid1: Starter) -> None:
    script = 'read line; echo "out:$line"; echo "err:$line" >&2'
    run = pid1(["/bin/sh", "-c", script], stdin=subprocess.PIPE)
    feed_stdin(run.proc, b"hello from the test\n")
    assert run.wait(15) == 0
    assert run.out.text() == "out:hello from the test\n"
    assert "err:hello from the test" in run.err.text().splitlines()


def test_one_mebibyte_through_stdin_to_stdout_is_not_lost(pid1: Starter) -> None:
    payload = bytes(range(256)) * 4096
    run = pid1(["/bin/cat"], stdin=subprocess.PIPE)
    feed_stdin(run.proc, payload)
    assert run.wait(15) == 0
    run.out.closed.wait(5)
    assert bytes(run.out.data) == payload


def test_one_mebibyte_to_stderr_is_not_lost(pid1: Starter) -> None:
    payload = bytes(range(256)) * 4096
    run = pid1(["/bin/sh", "-c", "cat >&2"], stdin=subprocess.PIPE)
    feed_stdin(run.proc, payload)
    assert run.wait(15) == 0
    run.err.closed.wait(5)
    assert payload in bytes(run.err.data)


def test_signals_glibc_keeps_for_itself_are_not_passed_on_ignored(
    pid1: Starter, prog: Programs, tmp_path: Path, cinit_cmd: list[str]
) -> None:
    # A launcher (seen in CI) may leave signals 32/33 ignored; signal.signal cannot reset
    # them, and an ignored disposition survives exec: cinit must clear it for its children.
    # (Requesting the pid1 fixture applies its skips: root, unshare, tini as the peer.)
    if "tini" in os.environ.get("CINIT_BIN", ""):
        pytest.skip("cinit-only: tini passes inherited dispositions on")
    argv = [
        *prog("with_glibc_signals_ignored.py"),
        "unshare", "--pid", "--fork", "--mount-proc",
        *cinit_cmd, "--units", str(tmp_path / "none"), "--drop-in", str(tmp_path / "none.d"),
        "--", "/bin/cat", "/proc/self/status",
    ]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=20)
    assert done.returncode == 0, done.stderr
    fields = status_fields(done.stdout)
    assert fields["SigIgn"] == "0000000000000000"
    assert fields["SigBlk"] == "0000000000000000"
