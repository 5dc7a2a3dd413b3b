"""`systemctl list-timers [PATTERN...]` (issue 17): the running cinit's timers, as
systemctl(1) lists them: NEXT, LEFT, LAST, PASSED, UNIT, ACTIVATES, soonest first.

Read from one `status` reply of the control socket (the status book keeps each timer's
next elapse, last trigger and service: `cinit.events.status_book`). Without `--all`, only
timers that are active; PATTERNs are shell globs on the unit name.
"""

from __future__ import annotations

import fnmatch
import os
import sys
import time

from cinit.boot_path import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any

    from cinit.cli.systemctl import Call

HEADER = ("NEXT", "LEFT", "LAST", "PASSED", "UNIT", "ACTIVATES")
STATUS_TIMEOUT = 10.0


def list_timers(call: Call) -> int:
    """The handler of `list-timers`."""
    from cinit.cli.systemctl import EXIT_FAILED, EXIT_OK
    from cinit.io.control_client import ControlError, request

    path = os.path.join(call.runtime_dir, "control")
    try:
        reply = request(path, {"cmd": "status"}, _timeout(call))
    except ControlError as exc:
        if exc.reason == "absent":
            return call.fail("cinit is not running", EXIT_FAILED)
        return call.fail(f"Failed to list timers: {exc}", EXIT_FAILED)
    if not reply.get("ok"):
        return call.fail(f"Failed to list timers: {reply.get('error', 'failed')}", EXIT_FAILED)
    units = reply.get("units")
    rows = timer_rows(units if isinstance(units, dict) else {}, call.units, call.flag("all"))
    sys.stdout.write(render(rows, time.time(), legend=not call.flag("no_legend")))
    return EXIT_OK


def _timeout(call: Call) -> float:
    given = call.text("timeout")
    try:
        return float(given) if given else STATUS_TIMEOUT
    except ValueError:
        return STATUS_TIMEOUT


def timer_rows(
    units: dict[str, Any], patterns: list[str], everything: bool
) -> list[dict[str, Any]]:
    """The timers of a status reply's `units` to list: soonest next elapse first (none
    last), then by name."""
    found = []
    for name, status in units.items():
        if not isinstance(status, dict) or not str(name).endswith(".timer"):
            continue
        if patterns and not any(fnmatch.fnmatchcase(name, p) for p in patterns):
            continue
        if not everything and status.get("state") != "active":
            continue
        found.append(status | {"name": name})

    def order(status: dict[str, Any]) -> tuple[float, str]:
        upcoming = status.get("next_elapse")
        return (upcoming if isinstance(upcoming, int | float) else float("inf"), status["name"])

    return sorted(found, key=order)


def render(rows: list[dict[str, Any]], now: float, *, legend: bool = True) -> str:
    """The table (and systemctl's legend lines)."""
    from cinit.tools.durations import elapsed

    table: list[tuple[str, ...]] = [HEADER] if legend else []
    for status in rows:
        upcoming, last = _epoch(status.get("next_elapse")), _epoch(status.get("last_trigger"))
        table.append(
            (
                _when(upcoming) if upcoming is not None else "-",
                f"{elapsed(upcoming - now)} left" if upcoming is not None else "-",
                _when(last) if last is not None else "-",
                f"{elapsed(now - last)} ago" if last is not None else "-",
                str(status["name"]),
                str(status.get("triggers") or "-"),
            )
        )
    lines = []
    if table:
        widths = [max(len(row[i]) for row in table) for i in range(len(HEADER) - 1)]
        for row in table:
            cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
            lines.append(" ".join([*cells, row[-1]]).rstrip())
    if legend:
        count = len(rows)
        lines += ["", f"{count} timer{'' if count == 1 else 's'} listed."]
        lines.append("Pass --all to see loaded but inactive timers, too.")
    return "\n".join(lines) + "\n" if lines else ""


def _epoch(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def _when(epoch: float) -> str:
    """systemd's timestamp: `Mon 2026-12-07 21:04:00 UTC`."""
    return time.strftime("%a %Y-%m-%d %H:%M:%S %Z", time.localtime(epoch))
