"""`systemctl list-timers` (issue 17): the table from a status reply (the PID 1 run is in
tests/e2e/test_e2e_timers.py)."""

from __future__ import annotations

from cinit.cli.systemctl_timers import render, timer_rows

NOW = 1_800_000_000.0
UNITS = {
    "b.timer": {"state": "active", "next_elapse": NOW + 65, "last_trigger": NOW - 5,
                "triggers": "b.service"},
    "a.timer": {"state": "active", "next_elapse": NOW + 3, "triggers": "backup.service"},
    "off.timer": {"state": "inactive", "next_elapse": None, "last_trigger": NOW - 100},
    "web.service": {"state": "active"},
}  # fmt: skip


def test_active_timers_soonest_first_with_systemds_columns() -> None:
    rows = timer_rows(UNITS, [], everything=False)
    assert [r["name"] for r in rows] == ["a.timer", "b.timer"]
    lines = render(rows, NOW).splitlines()
    assert lines[0].split() == ["NEXT", "LEFT", "LAST", "PASSED", "UNIT", "ACTIVATES"]
    assert "3s left" in lines[1] and lines[1].endswith("a.timer backup.service")
    assert " - " in lines[1]  # never triggered: no LAST, no PASSED
    assert "1min 5s left" in lines[2] and "5s ago" in lines[2]
    assert lines[-2:] == ["2 timers listed.", "Pass --all to see loaded but inactive timers, too."]


def test_all_and_patterns_and_no_legend() -> None:
    rows = timer_rows(UNITS, ["o*"], everything=True)
    assert [r["name"] for r in rows] == ["off.timer"]
    text = render(rows, NOW, legend=False)
    assert text.startswith("- ") and "1min 40s ago" in text and "NEXT" not in text
