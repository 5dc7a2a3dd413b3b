"""`.timer` units load (issue 17): the [Timer] rows, defaults, checks and the graph."""

from __future__ import annotations

from pathlib import Path

from cinit.units import Severity, UnitKind
from cinit.units.loader import load_units, parse_unit

ONESHOT = "[Service]\nType=oneshot\nExecStart=/bin/true\n"


def load(tmp_path: Path, units: dict[str, str]):  # type: ignore[no-untyped-def]
    directory = tmp_path / "units"
    directory.mkdir()
    for name, text in units.items():
        (directory / name).write_text(text)
    return load_units(str(directory), str(tmp_path / "none"))


def test_timer_directives_and_defaults() -> None:
    text = (
        "[Timer]\nOnCalendar=daily\nOnCalendar=\nOnCalendar=hourly\nOnCalendar=minutely\n"
        "OnBootSec=5min\nOnUnitActiveSec=1h\nRandomizedDelaySec=30s\nPersistent=yes\n"
    )
    unit, diags = parse_unit("backup.timer", text)
    assert unit is not None and unit.kind is UnitKind.TIMER and not diags
    timer = unit.timer
    assert timer is not None
    assert timer.on_calendar == ("hourly", "minutely")  # the empty line reset the list
    assert timer.on_boot_sec == (300.0,) and timer.on_unit_active_sec == (3600.0,)
    assert timer.accuracy_sec == 60.0 and timer.randomized_delay_sec == 30.0
    assert timer.persistent and timer.remain_after_elapse and not timer.fixed_random_delay
    assert timer.unit == "backup.service"  # the same name's service by default


def test_a_bad_calendar_expression_is_said_at_its_line() -> None:
    unit, diags = parse_unit("x.timer", "[Timer]\nOnBootSec=1s\nOnCalendar=*-*-* 25:00\n")
    assert unit is not None
    (error,) = [d for d in diags if d.severity is Severity.ERROR]
    assert error.line == 3 and error.directive == "OnCalendar"
    assert "OnCalendar=*-*-* 25:00" in error.message


def test_not_applied_timer_directives_are_one_note() -> None:
    text = "[Timer]\nOnBootSec=1s\nWakeSystem=yes\nOnClockChange=yes\nOnTimezoneChange=yes\n"
    _, diags = parse_unit("x.timer", text)
    (note,) = diags
    assert note.severity is Severity.NOTE and note.line == 3
    assert "WakeSystem=, OnClockChange=, OnTimezoneChange=" in note.message


def test_a_timer_needs_a_trigger_and_a_loaded_service(tmp_path: Path) -> None:
    units = load(tmp_path, {"a.timer": "[Timer]\n", "b.timer": "[Timer]\nOnBootSec=1s\n"})
    messages = [d.format() for d in units.errors]
    assert any("a.timer" in m and "never elapse" in m for m in messages), messages
    assert any("b.timer" in m and "starts b.service, which is not loaded" in m for m in messages)


def test_a_timers_service_waits_for_the_timer_unless_wanted_at_boot(tmp_path: Path) -> None:
    units = load(
        tmp_path,
        {
            "a.timer": "[Timer]\nOnBootSec=1s\n",
            "a.service": ONESHOT,
            "b.timer": "[Timer]\nOnBootSec=1s\n",
            "b.service": ONESHOT + "[Install]\nWantedBy=multi-user.target\n",
        },
    )
    assert units.ok, [d.format() for d in units.errors]
    boot = units.graph.boot_units()
    assert "a.timer" in boot and "b.timer" in boot  # every loaded timer starts
    assert "a.service" not in boot and "b.service" in boot
    assert units.graph.timed_by("a.service") == ("a.timer",)
