"""A boot chart as hand-written SVG, like `systemd-analyze plot` (for `cinit analyze plot`).

One row per unit that started (or was skipped), in start order: unit names in a left
column, a bar per state from `starting` on (activating, active, restarting, stopping,
failed), coloured by state; a unit whose start failed has its activating bar in red; a
skipped unit is a grey mark. The time axis covers the boot (until the last unit settled,
plus a margin) with gridlines at round steps; a legend and a summary line sit on top.
What units did after the boot settled (`boot-settled`) is not drawn as boot: a dashed
line marks the settle, and a greyed "after boot" list under the chart says what came later.
"""

from __future__ import annotations

from html import escape

from cinit.machines.vocabulary import State
from cinit.tools.boot_analysis import (
    after_boot_heading,
    describe_after,
    startup_finished,
    timespan,
)
from cinit.tools.boot_trace import BootTrace, UnitBoot

COLOURS = {
    "activating": "#f4a259",
    "active": "#5fad56",
    "failed": "#d64545",
    "restarting": "#b388d9",
    "deactivating": "#9aa5b1",
    "skipped": "#c8ccd0",
    "down": "#f4c7c7",
}
LEGEND = (
    ("activating", "Activating (starting → ready)"),
    ("active", "Active"),
    ("failed", "Failed"),
    ("restarting", "Restarting"),
    ("deactivating", "Stopping"),
    ("skipped", "Skipped (condition)"),
    ("down", "Failed, down"),
)
# Which colour each unit state is drawn in (states not listed are not drawn).
_STATE_COLOUR: dict[str, str] = {
    State.STARTING: "activating",
    State.RUNNING: "activating",
    State.ACTIVE: "active",
    State.RELOADING: "active",
    State.AUTO_RESTART: "restarting",
    State.STOPPING: "deactivating",
    State.FAILED: "down",
}
PLOT_WIDTH = 960  # px for the time axis
ROW = 22  # px per unit
BAR = 14  # bar height
FONT = "DejaVu Sans, Verdana, Arial, sans-serif"
AFTER_BOOT_GREY = "#8a9099"
_CHAR_PX = 7.2  # average glyph width at 12px, for sizing the name column


def render_svg(trace: BootTrace) -> str:
    """The chart for `trace` as an SVG document."""
    rows = _rows(trace)
    later = [(b.name, describe_after(b)) for b in trace.after_boot()]
    later = [(name, text) for name, text in later if text]
    settled = [b.settled_ms for b in rows if b.settled_ms is not None]
    starts = [b.started_ms for b in rows if b.started_ms is not None]
    if trace.settled_ms is not None:
        settled.append(trace.settled_ms)
    last = max([*settled, *starts], default=trace.end_ms) or 1.0
    right_ms = last * 1.06 + 5
    scale = PLOT_WIDTH / right_ms
    names_px = max([len(b.name) for b in rows] + [10]) * _CHAR_PX + 24
    left = names_px
    top = 96
    chart_bottom = top + ROW * len(rows) + 48
    height = chart_bottom + (ROW * (len(later) + 1) + 8 if later else 0)
    width = left + PLOT_WIDTH + 150  # room for the duration text of bars near the end
    out: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height}" '
        f'viewBox="0 0 {width:.0f} {height}" font-family="{FONT}" font-size="12">',
        f'<rect x="0" y="0" width="{width:.0f}" height="{height}" fill="#ffffff"/>',
    ]
    out += _header(trace, rows, len(later), 20)
    out += _legend(20, 56)
    out += _axis(left, top, ROW * len(rows), scale, right_ms)
    finished = startup_finished(trace)
    if finished is not None:
        x = left + finished[0] * scale
        what = "boot settled" if trace.settled_ms is not None else "startup finished"
        out.append(
            f'<line x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{top + ROW * len(rows)}" '
            f'stroke="#333333" stroke-dasharray="4 3"><title>{what}</title></line>'
        )
    for index, boot in enumerate(rows):
        y = top + index * ROW
        if index % 2:
            out.append(
                f'<rect x="{left}" y="{y}" width="{PLOT_WIDTH}" height="{ROW}" '
                'fill="#000000" fill-opacity="0.035"/>'
            )
        out.append(
            f'<text x="{left - 8}" y="{y + ROW / 2 + 4}" text-anchor="end">'
            f"{escape(boot.name)}</text>"
        )
        out += _bars(boot, left, y, scale, right_ms)
    if later:
        out += _after_boot(trace, later, 20, chart_bottom)
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _rows(trace: BootTrace) -> list[UnitBoot]:
    shown = [
        boot
        for boot in trace.units.values()
        if boot.started_ms is not None or boot.skipped_ms is not None
    ]

    def begin(boot: UnitBoot) -> float:
        return boot.started_ms if boot.started_ms is not None else (boot.skipped_ms or 0.0)

    return sorted(shown, key=lambda boot: (begin(boot), boot.name))


def _header(trace: BootTrace, rows: list[UnitBoot], later: int, x: int) -> list[str]:
    failed = sum(1 for b in rows if b.ended_failed_ms is not None)
    skipped = sum(1 for b in rows if b.outcome == "skipped")
    finished = startup_finished(trace)
    if finished is not None:
        when, last = finished
        summary = f"Startup finished in {timespan(when)} (last up: {last.name})"
    else:
        summary = "No unit came up"
    summary += f" · {len(rows)} units, {failed} failed, {skipped} skipped"
    if later:
        summary += f" · {later} with activity after boot"
    summary += f" · trace ends at {timespan(trace.end_ms)}"
    return [
        f'<text x="{x}" y="26" font-size="16" font-weight="bold">cinit boot chart</text>',
        f'<text x="{x}" y="44" fill="#333333">{escape(summary)} · {escape(trace.path)}</text>',
    ]


def _after_boot(trace: BootTrace, later: list[tuple[str, str]], x: int, y: int) -> list[str]:
    """The greyed list of what units did after the boot settled, under the chart."""
    parts = [
        f'<text x="{x}" y="{y + 14}" fill="{AFTER_BOOT_GREY}" font-weight="bold">'
        f"{escape(after_boot_heading(trace))}</text>"
    ]
    for index, (name, text) in enumerate(later, start=1):
        parts.append(
            f'<text x="{x + 12}" y="{y + 14 + index * ROW}" fill="{AFTER_BOOT_GREY}">'
            f"{escape(f'{name}: {text}')}</text>"
        )
    return parts


def _legend(x: int, y: int) -> list[str]:
    parts = []
    for key, label in LEGEND:
        parts.append(
            f'<rect x="{x}" y="{y}" width="14" height="12" fill="{COLOURS[key]}" '
            'stroke="#555555" stroke-width="0.5"/>'
        )
        parts.append(f'<text x="{x + 19}" y="{y + 10}">{escape(label)}</text>')
        x += 30 + int(len(label) * _CHAR_PX)
    return parts


def grid_step(span_ms: float, lines: int = 10) -> float:
    """A round step (1, 2 or 5 times a power of ten, in ms) giving about `lines` lines."""
    raw = max(span_ms / lines, 0.001)
    power = 10 ** len(str(int(raw))) / 10 if raw >= 1 else 0.001
    while power * 10 <= raw:
        power *= 10
    for factor in (1, 2, 5, 10):
        if power * factor >= raw * 0.75:  # a few more lines rather than far fewer
            return power * factor
    return power * 10


def _axis(left: float, top: int, rows_px: int, scale: float, right_ms: float) -> list[str]:
    step = grid_step(right_ms)
    parts = ['<g stroke="#d0d4d8" stroke-width="1">']
    labels = []
    bottom = top + rows_px
    for index in range(int(right_ms / step) + 1):
        tick = index * step
        x = left + tick * scale
        parts.append(f'<line x1="{x:.1f}" y1="{top - 6}" x2="{x:.1f}" y2="{bottom}"/>')
        text = "0" if tick == 0 else _tick_label(tick, step)
        for y in (top - 10, bottom + 16):
            labels.append(
                f'<text x="{x:.1f}" y="{y}" text-anchor="middle" fill="#555555" '
                f'font-size="11">{text}</text>'
            )
    parts.append("</g>")
    parts.append(
        f'<line x1="{left}" y1="{bottom}" x2="{left + PLOT_WIDTH}" y2="{bottom}" stroke="#888888"/>'
    )
    parts.append(
        f'<text x="{left + PLOT_WIDTH}" y="{bottom + 34}" text-anchor="end" '
        'fill="#555555" font-size="11">time since cinit started</text>'
    )
    return parts + labels


def _tick_label(ms: float, step: float) -> str:
    if ms >= 1000 and step >= 100:
        return f"{round(ms / 1000, 3):g}s"
    return f"{round(ms, 3):g}ms"


def _bars(boot: UnitBoot, left: float, y: int, scale: float, right_ms: float) -> list[str]:
    parts = []
    bar_y = y + (ROW - BAR) / 2
    failed_start = boot.outcome == "failed"
    for since, until, colour in _segments(boot, right_ms):
        if colour == "activating" and failed_start:
            colour = "failed"
        x = left + since * scale
        width = max((until - since) * scale, 1.0)
        title = f"{boot.name}: {colour} from {timespan(since)} for {timespan(until - since)}"
        parts.append(
            f'<rect x="{x:.1f}" y="{bar_y:.1f}" width="{width:.1f}" height="{BAR}" '
            f'fill="{COLOURS[colour]}"><title>{escape(title)}</title></rect>'
        )
    if boot.outcome == "skipped" and boot.skipped_ms is not None:
        x = left + boot.skipped_ms * scale
        parts.append(
            f'<rect x="{x:.1f}" y="{bar_y:.1f}" width="6" height="{BAR}" '
            f'fill="{COLOURS["skipped"]}" stroke="#888888" stroke-width="0.5"/>'
        )
    label = _bar_label(boot)
    end = boot.settled_ms if boot.settled_ms is not None else boot.started_ms
    if label and end is not None:
        x = left + min(end, right_ms) * scale + 6
        # A light box keeps the text readable where it overlaps an Active bar.
        parts.append(
            f'<rect x="{x:.1f}" y="{y + 4}" width="{len(label) * 7.0 + 6:.1f}" '
            f'height="{ROW - 8}" rx="2" fill="#ffffff" fill-opacity="0.85"/>'
        )
        parts.append(
            f'<text x="{x + 3:.1f}" y="{y + ROW / 2 + 4}" fill="#222222">{escape(label)}</text>'
        )
    return parts


def _segments(boot: UnitBoot, right_ms: float) -> list[tuple[float, float, str]]:
    """(from, until, colour) per drawn stretch; neighbours of one colour are merged (two
    rects side by side show a seam)."""
    found: list[tuple[float, float, str]] = []
    changes = boot.changes
    for index, (since, state) in enumerate(changes):
        colour = _STATE_COLOUR.get(state)
        if colour is None or since > right_ms:
            continue
        until = changes[index + 1][0] if index + 1 < len(changes) else right_ms
        until = min(until, right_ms)
        if found and found[-1][2] == colour and found[-1][1] == since:
            found[-1] = (found[-1][0], until, colour)
        else:
            found.append((since, until, colour))
    return found


def _bar_label(boot: UnitBoot) -> str:
    outcome = boot.outcome
    if outcome == "skipped":
        return "skipped"
    took = boot.took_ms
    text = timespan(took) if took is not None else "still starting"
    return f"{text} (failed)" if boot.ended_failed_ms is not None else text
