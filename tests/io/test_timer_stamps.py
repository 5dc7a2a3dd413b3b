"""Persistent= stamps (issue 17): the modification time of `stamp-NAME` in a state dir; a
directory that cannot be written is said once, and persistence stops."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cinit.io import log
from cinit.io.timer_stamps import DEFAULT_STATE_DIR, STATE_DIR_ENV, TimerStamps, state_dir


def test_a_stamp_round_trips_through_the_file_time(tmp_path: Path) -> None:
    stamps = TimerStamps(str(tmp_path / "timers"))  # made on the first write
    assert stamps.read("a.timer") is None
    stamps.write("a.timer", 1_700_000_000.25)
    assert stamps.read("a.timer") == pytest.approx(1_700_000_000.25, abs=1e-3)
    assert (tmp_path / "timers" / "stamp-a.timer").stat().st_size == 0


def test_an_unwritable_state_dir_is_one_warning_and_no_persistence(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")  # a file where the directory should go: nothing can be made there
    stamps = TimerStamps(str(blocker / "timers"))
    log.write_directly(True)
    try:
        stamps.write("a.timer", 1.0)
        stamps.write("b.timer", 2.0)
    finally:
        log.write_directly(False)
    err = capfd.readouterr().err
    assert err.count("cannot write the Persistent= stamp") == 1, err
    assert STATE_DIR_ENV in err and stamps.disabled
    assert stamps.read("a.timer") is None


def test_the_state_dir_comes_from_the_option_then_the_environment() -> None:
    assert state_dir("/x", {STATE_DIR_ENV: "/y"}) == "/x"
    assert state_dir(None, {STATE_DIR_ENV: "/y"}) == "/y"
    assert state_dir(None, {}) == DEFAULT_STATE_DIR
    assert os.path.isabs(DEFAULT_STATE_DIR)
