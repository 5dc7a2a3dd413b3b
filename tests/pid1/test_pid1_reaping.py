"""cinit reaps what is orphaned to it, as PID 1 and as a child subreaper, and stops leftovers."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

Starter = Callable[..., Any]  # the pid1 / not_pid1 fixtures (tests/pid1/conftest.py)
Programs = Callable[..., list[str]]  # the prog fixture

pytestmark = [pytest.mark.pid1, pytest.mark.timeout(30)]


def pid_alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def last_json(text: str) -> dict[str, object]:
    lines = [line for line in text.splitlines() if line.startswith("{")]
    assert lines, f"the main command printed no report: {text!r}"
    report: dict[str, object] = json.loads(lines[-1])
    return report


@pytest.mark.timeout(60)
def test_orphan_storm_of_2000_leaves_no_zombie(pid1: Starter, prog: Programs) -> None:
    run = pid1(prog("orphan_storm.py", "2000", "--per", "10", "--deadline", "15"))
    assert run.wait(50) == 0, run.err.text()
    report = last_json(run.out.text())
    assert report["orphans"] == 2000
    assert report["zombies"] == 0, report
    assert report["left"] == 0, report


def test_pid1_adopts_and_reaps_an_orphan_while_main_command_runs(
    pid1: Starter, prog: Programs
) -> None:
    run = pid1(prog("orphan_reaped.py", "--linger", "0.3", "--exit-code", "7"))
    # Exit code 7 comes from the main command after the orphan is gone: cinit kept running.
    assert run.wait(20) == 7, run.err.text()
    report = last_json(run.out.text())
    assert report["init_pid"] == 1
    assert report["orphan_ppid"] == 1
    assert report["orphan_fate"] == "reaped", report


def test_subreaper_when_not_pid1(not_pid1: Starter, prog: Programs) -> None:
    run = not_pid1(prog("orphan_reaped.py", "--linger", "0.3", "--exit-code", "7"))
    try:
        code = run.proc.wait(20)
    finally:
        report = last_json(run.out.text(5)) if run.out.closed.wait(5) else {}
        orphan = report.get("orphan_pid")
        if isinstance(orphan, int) and pid_alive(orphan):
            with contextlib.suppress(ProcessLookupError):
                os.kill(orphan, signal.SIGKILL)
    assert code == 7, run.err.text()
    assert report["init_pid"] == run.proc.pid
    assert report["orphan_ppid"] == run.proc.pid, "orphan was not re-parented to cinit"
    assert report["orphan_fate"] == "reaped", report


@pytest.mark.cinit_only("stops leftover processes before exiting")
def test_leftover_process_gets_sigterm_when_main_command_exits(
    pid1: Starter, prog: Programs, tmp_path: Path
) -> None:
    marker = tmp_path / "leftover.log"
    run = pid1(prog("leftover.py", str(marker)), options=["--stop-timeout", "5"])
    assert run.wait(15) == 0, run.err.text()
    # Had cinit just exited, the kernel would have SIGKILLed the leftover without a word.
    assert marker.read_text().splitlines() == ["ready", "got SIGTERM"]


@pytest.mark.cinit_only("--stop-timeout")
def test_leftover_ignoring_sigterm_does_not_hold_up_exit(
    pid1: Starter, prog: Programs, tmp_path: Path
) -> None:
    marker = tmp_path / "leftover.log"
    started = time.monotonic()
    run = pid1(prog("leftover.py", str(marker), "--ignore-term"), options=["--stop-timeout", "1"])
    assert run.wait(15) == 0, run.err.text()
    assert time.monotonic() - started <= 8.0
    assert marker.read_text().splitlines() == ["ready"]
