"""How `cinit watch` draws its model with rich: a header, one row per unit, an event pane."""

from __future__ import annotations

import time

from rich import box
from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from cinit.machines.vocabulary import RUN_STATES, State
from cinit.tools.durations import elapsed
from cinit.tools.watch_model import UnitRow, WatchModel

STATE_STYLES: dict[str, str] = {
    State.ACTIVE: "bold green",
    State.RELOADING: "green",
    State.RUNNING: "green",
    State.STARTING: "yellow",
    State.WAITING: "cyan",
    State.STOPPING: "yellow",
    State.AUTO_RESTART: "magenta",
    State.EXITED: "blue",
    State.FAILED: "bold red",
    State.CONDITION_SKIPPED: "dim",
    State.INACTIVE: "dim",
}
# Lines the header, the table's heading and the event pane's frame take.
_CHROME_LINES = 1 + 2 + 2
_MIN_PANE_LINES = 3


def render(model: WatchModel, connection: str, height: int, now: float | None = None) -> Group:
    """The whole screen for a terminal `height` lines high; `connection` is the header's
    connection note in rich markup (for example `[green]connected[/]`)."""
    now = time.time() if now is None else now
    rows = sorted(model.units.values(), key=lambda row: row.name)
    # Many units on a small terminal: the table gives way, the event pane keeps 3 lines.
    room = max(1, height - _CHROME_LINES - _MIN_PANE_LINES)
    hidden = 0
    if len(rows) > room:
        hidden = len(rows) - (room - 1)
        rows = rows[: room - 1]
    pane_lines = max(_MIN_PANE_LINES, height - _CHROME_LINES - max(len(rows) + bool(hidden), 1))
    return Group(
        _header(model, connection),
        _unit_table(rows, now, hidden),
        _event_pane(model, pane_lines),
    )


def _header(model: WatchModel, connection: str) -> Text:
    counts: dict[str, int] = {}
    for row in model.units.values():
        counts[row.state] = counts.get(row.state, 0) + 1
    # emoji=False here and below: a ":name:" stays as written, and rich's 200 KiB emoji
    # table stays out of the standalone build (packaging/cinit.spec).
    header = Text.assemble(
        ("cinit watch", "bold"), "  ", Text.from_markup(connection, emoji=False)
    )
    header.no_wrap, header.overflow = True, "ellipsis"
    header.append(f"  seq {model.seq if model.seq is not None else '-'}")
    header.append(f"  units {len(model.units)}")
    for state in (State.ACTIVE, State.FAILED, State.AUTO_RESTART):
        if counts.get(state):
            header.append(f"  {state} {counts[state]}", style=STATE_STYLES[state])
    if model.resyncs:
        header.append(f"  resyncs {model.resyncs}", style="yellow")
    header.append("   Ctrl-C quits", style="dim")
    return header


def _unit_table(rows: list[UnitRow], now: float, hidden: int = 0) -> Table:
    table = Table(box=box.SIMPLE_HEAD, expand=True, pad_edge=False, show_edge=False)
    table.add_column("UNIT", no_wrap=True, ratio=3)
    table.add_column("STATE", no_wrap=True, ratio=2, min_width=max(map(len, State)))
    table.add_column("PID", justify="right", no_wrap=True)
    table.add_column("UPTIME", justify="right", no_wrap=True)
    table.add_column("RESTARTS", justify="right", no_wrap=True)
    table.add_column("CPU", justify="right", no_wrap=True)
    table.add_column("RSS", justify="right", no_wrap=True)
    table.add_column("LAST EVENT", no_wrap=True, ratio=2)
    for row in rows:
        state = row.state + (f" ({row.result})" if row.state == State.FAILED and row.result else "")
        table.add_row(
            row.name,
            Text(state, style=STATE_STYLES.get(row.state, "")),
            str(row.main_pid) if row.main_pid else "-",
            elapsed(now - row.since) if row.since and row.state in RUN_STATES else "-",
            str(row.restarts),
            f"{row.cpu:.2f}s" if row.cpu is not None else "-",
            size(row.memory) if row.memory is not None else "-",
            _last_column(row, now),
        )
    if hidden:
        table.add_row(Text(f"... and {hidden} more", style="dim"), "", "", "", "", "", "", "")
    if not rows:
        table.add_row(Text("(no units yet)", style="dim"), "", "", "", "", "", "", "")
    return table


def _last_column(row: UnitRow, now: float) -> str:
    """LAST EVENT; for an armed timer its next elapse (`next in 42s`)."""
    if row.next_elapse is not None:
        return f"next in {elapsed(row.next_elapse - now)}"
    return row.last_event or "-"


def _event_pane(model: WatchModel, lines: int) -> RenderableType:
    shown = list(model.log)[-lines:]
    text = Text(no_wrap=True, overflow="ellipsis")
    for index, line in enumerate(shown):
        if index:
            text.append("\n")
        stamp = time.strftime("%H:%M:%S", time.localtime(line.time)) if line.time else "--:--:--"
        text.append(f"{stamp} ", style="dim")
        text.append(f"{line.seq if line.seq is not None else '':>5} ", style="dim")
        text.append(line.text, style=_line_style(line.text))
    title = Text("events")  # a str title would go through markup, emoji codes included
    return Panel(text, title=title, title_align="left", height=lines + 2, box=box.ROUNDED)


def _line_style(text: str) -> str:
    for state in (State.FAILED, State.AUTO_RESTART):
        if f"-> {state}" in text:
            return STATE_STYLES[state]
    return ""


def size(octets: int) -> str:
    """`812K`, `12.3M`, `1.2G` (binary units, like ps and top)."""
    value = float(octets)
    for unit in ("B", "K", "M", "G"):
        if value < 1024 or unit == "G":
            return f"{value:.0f}{unit}" if unit in ("B", "K") else f"{value:.1f}{unit}"
        value /= 1024
    return f"{value:.1f}G"
