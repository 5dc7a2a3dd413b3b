"""`cinit analyze calendar` against the real `systemd-analyze calendar` (issue 17's proof).

The corpus (tests/data/calendar_corpus.txt, over 200 expressions: every example of
systemd.time(7), the OnCalendar= lines of Debian's packaged timers, shorthands, weekdays,
`~`, `/`, fractions, leap days, ranges, time zones, invalid ones) is run through both, from
fixed base times (around the DST changes of Europe/Berlin and America/New_York, the end of
a leap February, a year's last second, the epoch) and under several local zones ($TZ).
For each expression the table must be the same (original and normalized form, the next 5
elapses and their "(in UTC)" rows; only "From now", which depends on the clock, is left
out), and an expression systemd rejects must be rejected.

systemd 252 (Debian 12) is the reference; the test skips when systemd-analyze is missing
(.ci/run installs the `systemd` package).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from cinit.cli.analyze import calendar_rows, format_rows
from cinit.units.calendar import CalendarError, parse_calendar

CORPUS = Path(__file__).resolve().parents[1] / "data" / "calendar_corpus.txt"
ITERATIONS = 5

# (local zone, base time in epoch seconds, what it is)
CASES = [
    ("Europe/Berlin", 1790000000, "an ordinary September afternoon"),
    ("Europe/Berlin", 1806193800, "half an hour before the spring-forward gap (2027-03-28)"),
    ("Europe/Berlin", 1792887600, "40 min before the fall-back overlap (2026-10-25)"),
    ("Europe/Berlin", 1835352000, "noon of 2028-02-28, before a leap day"),
    ("America/New_York", 1805005800, "30 min before the spring-forward gap (2027-03-14)"),
    ("America/New_York", 1793509800, "50 min before the fall-back overlap (2026-11-01)"),
    ("America/New_York", 0, "the epoch (19:00 the evening before, locally)"),
    ("UTC", 1798761599, "the last second of 2026"),
    ("UTC", 1790000000, "an ordinary September afternoon"),
    ("Australia/Lord_Howe", 1806193800, "a zone whose daylight time is half an hour"),
]


def corpus() -> list[str]:
    """The expressions: every line verbatim, but comments and empty lines."""
    lines = CORPUS.read_text(encoding="utf-8").split("\n")
    return [line for line in lines if line and not line.startswith("#")]


def test_the_corpus_is_large_enough() -> None:
    expressions = corpus()
    assert len(expressions) >= 200
    assert len(set(expressions)) == len(expressions), "an expression is listed twice"


def systemd_tables(expressions: list[str], zone: str, base: int) -> list[list[str] | None]:
    """systemd-analyze's table of each expression (lines without "From now"), None for a
    rejected one. One run for all: it prints a blank line between expressions, and
    nothing on stdout for one it rejects."""
    result = subprocess.run(
        [
            "systemd-analyze",
            "calendar",
            f"--iterations={ITERATIONS}",
            f"--base-time=@{base}",
            "--",
            *expressions,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TZ": zone, "SYSTEMD_COLORS": "0", "SYSTEMD_PAGER": "", "LC_ALL": "C"},
        check=False,
    )
    out, pos, tables = result.stdout, 0, []
    for index in range(len(expressions)):
        if index:
            assert out[pos] == "\n", f"no separator before {expressions[index]!r}"
            pos += 1
        if pos == len(out) or out[pos] == "\n":
            tables.append(None)
            continue
        end = out.find("\n\n", pos)
        end = len(out) - 1 if end < 0 else end
        tables.append(_without_now(out[pos : end + 1]))
        pos = end + 1
    assert pos == len(out), "systemd-analyze printed more than expected"
    return tables


def _without_now(table: str) -> list[str]:
    return [line for line in table.splitlines() if not line.lstrip().startswith("From now:")]


def cinit_table(expression: str, base: int) -> list[str] | None:
    try:
        spec = parse_calendar(expression)
    except CalendarError:
        return None
    rows, ok = calendar_rows(expression, spec, base * 1_000_000, ITERATIONS)
    return _without_now(format_rows(rows)) if ok else None


def systemd_version() -> int | None:
    """systemd-analyze's major version, None when it is not installed."""
    if shutil.which("systemd-analyze") is None:
        return None
    done = subprocess.run(
        ["systemd-analyze", "--version"], capture_output=True, text=True, timeout=30, check=False
    )
    found = re.match(r"systemd (\d+)", done.stdout)
    return int(found.group(1)) if found else 0


VERSION = systemd_version()


@pytest.mark.skipif(VERSION is None, reason="systemd-analyze not here (apt-get install systemd)")
@pytest.mark.skipif(
    VERSION not in (None, 252),
    reason=f"the reference is systemd 252 (Debian 12); this is systemd {VERSION}",
)
@pytest.mark.parametrize(("zone", "base", "what"), CASES, ids=[f"{c[0]}@{c[1]}" for c in CASES])
def test_cinit_agrees_with_systemd_analyze(
    zone: str, base: int, what: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    expressions = corpus()
    theirs = systemd_tables(expressions, zone, base)
    monkeypatch.setenv("TZ", zone)
    differences = []
    for expression, expected in zip(expressions, theirs, strict=True):
        got = cinit_table(expression, base)
        if got != expected:
            differences.append(
                f"{expression!r}:\n  systemd: {expected}\n  cinit:   {got}"
                if expected is not None and got is not None
                else f"{expression!r}: systemd {'rejects' if expected is None else 'accepts'}"
                f" it, cinit {'rejects' if got is None else 'accepts'} it"
            )
    assert not differences, f"TZ={zone}, base @{base} ({what}):\n" + "\n".join(differences)
    # the corpus has both kinds in every case
    assert any(table is None for table in theirs)
    assert sum(table is not None for table in theirs) >= 150
