"""cinit as PID 1 with unit files that are not what they claim to be."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

Starter = Callable[..., Any]  # the pid1 fixture (tests/pid1/conftest.py)

pytestmark = [pytest.mark.pid1, pytest.mark.cinit_only("unit files"), pytest.mark.timeout(60)]


def test_a_fifo_named_as_a_unit_does_not_hold_pid1(pid1: Starter, tmp_path: Path) -> None:
    # Issue 13: open() of the FIFO waited for a writer; no unit started and PID 1 ignored
    # SIGTERM for good. Now it is an error naming the path, and cinit refuses the set as
    # for any unit file it cannot read (an error in the set means no boot).
    units = tmp_path / "units"
    units.mkdir()
    os.mkfifo(units / "x.service")
    (units / "web.service").write_text("[Service]\nExecStart=/bin/sleep 30\n")
    run = pid1(["/bin/sleep", "30"], options=["--units", str(units)])
    assert run.wait(20) == 1  # bounded: a hang fails here
    stderr = run.err.text()
    assert f"{units}/x.service: error: is a FIFO (named pipe), not a unit file" in stderr
    assert "not booting" in stderr and "Traceback" not in stderr
