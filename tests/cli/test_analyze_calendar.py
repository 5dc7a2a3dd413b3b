"""`cinit analyze calendar EXPR...` run as a user runs it, next to `systemd-analyze calendar`.

The corpus comparison (300+ expressions, the elapses) is tests/units/test_calendar_oracle.py;
here: the command line, the layout of several expressions (a blank line between them, an
invalid one said on stderr while the others are shown), the exit statuses and --base-time.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

pytestmark = pytest.mark.timeout(60)
BASE = "--base-time=@1790000000"  # Mon 2026-09-21 14:13:20 UTC


def run(command: list[str], *args: str, zone: str = "UTC") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TZ": zone, "SYSTEMD_COLORS": "0", "SYSTEMD_PAGER": "", "LC_ALL": "C"}
    return subprocess.run(
        [*command, *args], capture_output=True, text=True, timeout=30, env=env, check=False
    )


def calendar(
    cinit_cmd: list[str], *args: str, zone: str = "UTC"
) -> subprocess.CompletedProcess[str]:
    return run([*cinit_cmd, "analyze", "calendar"], *args, zone=zone)


def without_from_now(text: str) -> str:
    return "".join(line for line in text.splitlines(True) if "From now:" not in line)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not here")
@pytest.mark.parametrize("zone", ["UTC", "America/New_York"])
def test_the_output_is_systemd_analyzes(cinit_cmd: list[str], zone: str) -> None:
    args = ["--iterations", "3", BASE, "daily", "bad", "*:0/15 Europe/Berlin", "Mon *-05~07/1 UTC"]
    ours = calendar(cinit_cmd, *args, zone=zone)
    theirs = run(["systemd-analyze", "calendar"], *args, zone=zone)
    assert (ours.returncode, theirs.returncode) == (1, 1)
    assert without_from_now(ours.stdout) == without_from_now(theirs.stdout)
    assert ours.stdout.count("From now:") == theirs.stdout.count("From now:") == 9
    assert "failed to parse calendar specification 'bad'" in ours.stderr


def test_a_valid_expression(cinit_cmd: list[str]) -> None:
    done = calendar(cinit_cmd, BASE, "Sun *-*-* 03:10:00")  # e2scrub_all.timer
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[:2] == [
        "Normalized form: Sun *-*-* 03:10:00",
        "    Next elapse: Sun 2026-09-27 03:10:00 UTC",
    ]
    assert re.fullmatch(r"       From now: .* (ago|left)", done.stdout.splitlines()[2])
    assert done.stderr == ""


def test_an_invalid_expression_is_status_1_with_the_reason(cinit_cmd: list[str]) -> None:
    done = calendar(cinit_cmd, "*-*-* 25:00")
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr == (
        "cinit analyze calendar: failed to parse calendar specification '*-*-* 25:00': "
        "hour 25 out of range 0..23\n"
    )
    span = calendar(cinit_cmd, "5min")
    assert span.returncode == 1
    assert "OnUnitActiveSec=" in span.stderr  # a time span where a calendar event belongs


def test_words_after_double_dash_are_expressions(cinit_cmd: list[str]) -> None:
    done = calendar(cinit_cmd, BASE, "--", "-5s", "hourly")
    assert done.returncode == 1
    assert "specification '-5s'" in done.stderr
    assert "Normalized form: *-*-* *:00:00" in done.stdout


def test_iterations_and_base_time(cinit_cmd: list[str]) -> None:
    done = calendar(cinit_cmd, "--iterations=12", "--base-time", "2026-12-24 12:00 UTC", "daily")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[2] == "    Next elapse: Fri 2026-12-25 00:00:00 UTC"
    assert lines[-2] == "      Iter. #12: Tue 2027-01-05 00:00:00 UTC"
    only_forms = calendar(cinit_cmd, "--iterations", "0", "daily")
    assert only_forms.stdout == "  Original form: daily\nNormalized form: *-*-* 00:00:00\n"
    for base, first in [
        ("Mon 2026-12-07 12:00 utc", "Mon 2026-12-07 13:00:00 UTC"),  # a weekday is a label
        ("2026-12-24 12:00:30.5 Europe/Berlin", "Thu 2026-12-24 12:00:00 UTC"),
    ]:
        hourly = calendar(cinit_cmd, "--base-time", base, "hourly")
        assert hourly.stdout.splitlines()[2] == f"    Next elapse: {first}", hourly.stderr
    today = calendar(cinit_cmd, "--base-time", "today", "minutely")
    assert today.stdout.splitlines()[2].endswith(" 00:01:00 UTC")
    ahead = calendar(cinit_cmd, "--base-time=+3h", "daily")
    assert ahead.returncode == 0, ahead.stderr
    never = calendar(cinit_cmd, BASE, "2003-03-05")
    assert never.stdout.splitlines()[-1] == "    Next elapse: never"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ([], "too few arguments"),
        (["--iterations", "many", "daily"], "--iterations needs a number"),
        (["--base-time", "yesterday-ish", "daily"], "--base-time: not a timestamp"),
        (["--base-time", "2026-12-24 Mars/Olympus", "daily"], "unknown time zone"),
        (["--color", "daily"], "unknown option '--color'"),
    ],
)
def test_usage_errors_are_status_2(cinit_cmd: list[str], args: list[str], says: str) -> None:
    done = calendar(cinit_cmd, *args)
    assert done.returncode == 2
    assert says in done.stderr


def test_help(cinit_cmd: list[str]) -> None:
    done = calendar(cinit_cmd, "-h")
    assert done.returncode == 0
    assert "--iterations N" in done.stdout and "--base-time TIME" in done.stdout
    listed = run([*cinit_cmd, "analyze", "-h"])
    assert "calendar" in listed.stdout
