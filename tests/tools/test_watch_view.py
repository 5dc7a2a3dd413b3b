"""The watch screen as rendered text: it fits the terminal, whatever the number of units."""

from __future__ import annotations

import pytest
from rich.console import Console

from cinit.tools.durations import elapsed
from cinit.tools.watch_model import UnitRow, WatchModel
from cinit.tools.watch_view import render, size

NOW = 1_700_000_100.0


def screen(model: WatchModel, width: int, height: int) -> list[str]:
    console = Console(width=width, height=height, record=True, color_system=None)
    console.print(render(model, "[green]connected[/]", height, now=NOW))
    return console.export_text().splitlines()


def model_with(units: int, events: int = 0) -> WatchModel:
    model = WatchModel()
    model.load_snapshot({"ok": True, "seq": 0, "units": {}})
    for index in range(units):
        name = f"unit{index:02d}.service"
        model.units[name] = UnitRow(name, "active", main_pid=100 + index, since=NOW - 75)
    for seq in range(1, events + 1):
        model.offer(
            {
                "seq": seq,
                "time": NOW,
                "t_ms": 1.0,
                "unit": "unit00.service",
                "event": "ready",
                "old": "running",
                "new": "active",
            }
        )
    return model


@pytest.mark.parametrize(("units", "height"), [(3, 40), (30, 24), (0, 24), (18, 24)])
def test_the_screen_fills_the_terminal_height_exactly(units: int, height: int) -> None:
    lines = screen(model_with(units, events=50), 120, height)
    assert len(lines) == height
    assert lines[0].startswith("cinit watch  connected")
    assert lines[-1].startswith("╰")  # the event pane's bottom edge is on screen
    assert sum("events" in line for line in lines[:-1]) == 1


def test_units_that_do_not_fit_are_counted() -> None:
    lines = screen(model_with(30), 120, 24)
    assert any("... and" in line and "more" in line for line in lines)
    shown = sum(1 for line in lines if line.startswith("unit"))
    hidden = next(line for line in lines if "... and" in line).split()[2]
    assert shown + int(hidden) == 30


def test_a_row_has_state_pid_uptime_and_the_newest_events_are_in_the_pane() -> None:
    lines = screen(model_with(2, events=40), 140, 20)
    row = next(line for line in lines if line.startswith("unit01.service")).split()
    assert row[1:5] == ["active", "101", "1min", "15s"]
    pane = [line for line in lines if line.startswith("│")]
    assert "40 unit00.service: ready running -> active" in pane[-1]


def test_uptime_and_size_read_short() -> None:
    assert [elapsed(s) for s in (5, 65, 3725, 2 * 86400 + 7200)] == [
        "5s",
        "1min 5s",
        "1h 2min",
        "2d 2h",
    ]
    assert [size(n) for n in (512, 4096, 3 * 1024**2, 5 * 1024**3)] == [
        "512B",
        "4K",
        "3.0M",
        "5.0G",
    ]


def test_an_armed_timers_row_shows_its_next_elapse() -> None:
    model = model_with(1)
    model.units["t.timer"] = UnitRow("t.timer", "active", next_elapse=NOW + 42, last_event="x")
    lines = screen(model, 140, 20)
    row = next(line for line in lines if line.startswith("t.timer"))
    assert "next in 42s" in row and " x" not in row
