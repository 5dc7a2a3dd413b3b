"""`cinit analyze blame|critical-chain|plot TRACE`: boot analysis from a JSONL trace, offline;
`cinit analyze calendar EXPR...`: calendar events as `systemd-analyze calendar` shows them.

    cinit analyze blame TRACE                  units by the time their start took
    cinit analyze critical-chain TRACE [UNIT]  the chain of After= units that decided when
                                               UNIT (default: the last unit up) came up;
                                               `critical-chain UNIT TRACE` (systemd-analyze's
                                               order) works too
    cinit analyze plot TRACE [-o boot.svg]     an SVG boot chart (stdout without -o)

    cinit analyze calendar EXPR... [--iterations N] [--base-time TIME]
                                               the normalized form and next elapses of
                                               OnCalendar= expressions

TRACE is a file written with CONTAINER_INIT_TRACE=1. The boot ends when it settled (the
trace's `boot-settled` event): what units did later is listed apart, as after boot.
Exit status: 0 done, 2 bad usage or a trace that cannot be read (the message names file
and line), 4 UNIT not in the trace; `calendar`: 1 when an expression is not a calendar event.
"""

from __future__ import annotations

import os
import sys
import time
from decimal import Decimal
from typing import TYPE_CHECKING

from cinit import PROG
from cinit.cli.args import Command, Option, read_command_line, show_help

if TYPE_CHECKING:
    from cinit.tools.boot_trace import BootTrace
    from cinit.units.calendar import CalendarSpec

EXIT_OK, EXIT_USAGE, EXIT_UNKNOWN_UNIT = 0, 2, 4
UNIT_SUFFIXES = (".service", ".socket", ".target", ".timer", ".path", ".mount")


TRACE_HELP = "TRACE is a JSONL trace file written with CONTAINER_INIT_TRACE=1."
# Each analysis is a command of its own (its synopsis, options and `-h`); `cinit analyze -h`
# lists them.
ANALYSES = {
    "blame": Command(
        "blame",
        "units by the time their start took",
        [f"{PROG} analyze blame TRACE"],
        f"Units by the time their start took. {TRACE_HELP}",
        [],
    ),
    "critical-chain": Command(
        "critical-chain",
        "the chain of After= units that decided the boot time",
        [f"{PROG} analyze critical-chain TRACE [UNIT]  (or UNIT TRACE)"],
        "The chain of After= units that decided when UNIT (default: the one that came up\n"
        "last) came up; UNIT may come first, as in systemd-analyze: UNIT TRACE.\n" + TRACE_HELP,
        [],
    ),
    "plot": Command(
        "plot",
        "an SVG boot chart",
        [f"{PROG} analyze plot TRACE [-o FILE]"],
        f"An SVG boot chart. {TRACE_HELP}",
        [Option("-o, --output", "write the SVG here (default: stdout)", "FILE")],
    ),
    "calendar": Command(
        "calendar",
        "normalized form and next elapses of calendar events",
        [f"{PROG} analyze calendar EXPR... [--iterations N] [--base-time TIME]"],
        "Parse calendar event expressions (OnCalendar=, systemd.time(7)) and show, as\n"
        "systemd-analyze calendar does, the original and normalized form and when each\n"
        "elapses next after TIME (default: now). Exit status 1 if one is not valid.\n"
        "Words after `--` are expressions even when they start with '-'.",
        [
            Option("--iterations", "show the next N elapses (default: 1)", "N"),
            Option(
                "--base-time",
                "count from TIME: @EPOCH, now, today, +5min, 2h ago,\n"
                "[WEEKDAY] YYYY-MM-DD [HH:MM[:SS]] [UTC|ZONE] (default: now)",
                "TIME",
            ),
        ],
    ),
}
# How many words (TRACE, UNIT, EXPR) each analysis takes: at least, at most.
WORDS = {"blame": (1, 1), "critical-chain": (1, 2), "plot": (1, 1), "calendar": (1, 10**6)}
ANALYZE = Command(
    "analyze",
    "blame, critical-chain or plot a boot from a trace file; calendar events.",
    [f"{PROG} analyze COMMAND TRACE ...", f"{PROG} analyze calendar EXPR..."],
    "Analyse a boot from a JSONL trace (CONTAINER_INIT_TRACE=1), or calendar events.",
    [],
    epilog="commands:\n"
    + "\n".join(f"  {name:<19}{command.summary}" for name, command in ANALYSES.items())
    + f"\n\n`{PROG} analyze COMMAND -h` shows a command's own help.",
)


def main(args: list[str]) -> int:
    """Entry point of `cinit analyze` (args without the command name)."""
    name = args[0] if args else ""
    command = ANALYSES.get(name)
    if command is None:
        if name in ("-h", "--help"):
            return show_help(ANALYZE)
        what = f"unknown command {name!r}" if name else "a command is needed"
        print(f"{PROG} analyze: {what} (see {PROG} analyze --help)", file=sys.stderr)
        return EXIT_USAGE
    prog = f"{PROG} analyze {name}"
    if name == "calendar":
        return _calendar(command, args[1:], prog)
    parsed = read_command_line(command, args[1:], words=WORDS[name], prog=prog)
    if isinstance(parsed, int):
        return parsed
    words = parsed.words
    trace_path, unit_name = words[0], None
    if len(words) == 2:
        trace_path, unit_name = trace_and_unit(words[0], words[1])

    from cinit.tools.boot_trace import TraceError, read_trace

    try:
        trace = read_trace(trace_path)
    except TraceError as exc:
        print(f"{PROG} analyze: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if trace.runs > 1:
        print(
            f"{PROG} analyze: {trace.path} holds {trace.runs} cinit runs; analysing the last, "
            f"from line {trace.first_line}",
            file=sys.stderr,
        )
    if name == "blame":
        from cinit.tools.boot_analysis import format_blame

        sys.stdout.write(format_blame(trace))
        return EXIT_OK
    if name == "critical-chain":
        return _critical_chain(trace, unit_name)
    return _plot(trace, parsed.text("output"))


def trace_and_unit(first: str, second: str) -> tuple[str, str]:
    """Which of two words is the trace and which the unit: `TRACE UNIT` is cinit's order,
    `UNIT TRACE` systemd-analyze's. The trace is the one that is a file (or ends in
    .jsonl), else the one without a unit suffix; when neither tells, cinit's order."""

    def trace_likeness(word: str) -> int:
        if os.path.isfile(word):
            return 2
        return 1 if word.endswith(".jsonl") or not word.endswith(UNIT_SUFFIXES) else 0

    if trace_likeness(second) > trace_likeness(first):
        return second, first
    return first, second


def _critical_chain(trace: BootTrace, unit_name: str | None) -> int:
    from cinit.tools.boot_analysis import (
        critical_chain,
        default_chain_unit,
        format_after_boot,
        format_chain,
    )

    if unit_name is None:
        unit = default_chain_unit(trace)
        if unit is None:
            print(
                f"{PROG} analyze: {trace.path}: no unit settled during the trace", file=sys.stderr
            )
            return EXIT_USAGE
    else:
        found = trace.units.get(unit_name)
        if found is None:
            print(
                f"{PROG} analyze: {trace.path}: unit {unit_name} not found in the trace",
                file=sys.stderr,
            )
            return EXIT_UNKNOWN_UNIT
        unit = found
    sys.stdout.write(format_chain(critical_chain(trace, unit)) + format_after_boot(trace))
    return EXIT_OK


def _plot(trace: BootTrace, output: str | None) -> int:
    from cinit.tools.boot_plot import render_svg

    svg = render_svg(trace)
    if output is None or output == "-":
        sys.stdout.write(svg)
        return EXIT_OK
    try:
        with open(output, "w", encoding="utf-8") as stream:
            stream.write(svg)
    except OSError as exc:
        print(f"{PROG} analyze: cannot write {output}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK


# --- calendar --------------------------------------------------------------------------

EXIT_INVALID = 1  # an expression that is not a calendar event (systemd-analyze's status)
USEC = 1_000_000


def _calendar(command: Command, args: list[str], prog: str) -> int:
    """`cinit analyze calendar`: each expression's forms and next elapses, shaped like
    `systemd-analyze calendar` (a blank line between expressions; an invalid one is said
    on stderr, the others are still shown, and the status is 1)."""
    from cinit.cli.args import UsageError, usage_error
    from cinit.units._text import quoted
    from cinit.units.calendar import CalendarError, parse_calendar

    # Words after `--` are expressions, even "-5s" (systemd-analyze's getopt does the same).
    split = args.index("--") if "--" in args else len(args)
    parsed = read_command_line(command, args[:split], words=(0, 10**6), prog=prog)
    if isinstance(parsed, int):
        return parsed
    expressions = [*parsed.words, *args[split + 1 :]]
    try:
        if not expressions:
            raise UsageError(f"too few arguments; usage: {command.usage[0]}")
        iterations = _iterations(parsed.text("iterations"))
        base = _base_time(parsed.text("base_time"))
    except UsageError as exc:
        return usage_error(prog, exc)
    status = EXIT_OK
    for index, text in enumerate(expressions):
        if index:
            sys.stdout.write("\n")
        try:
            spec = parse_calendar(text)
        except CalendarError as exc:
            print(
                f"{prog}: failed to parse calendar specification {quoted(text)}: "
                f"{exc}{_hint(text)}",
                file=sys.stderr,
            )
            status = EXIT_INVALID
            continue
        rows, ok = calendar_rows(text, spec, base, iterations)
        if ok:  # systemd-analyze shows nothing of an expression whose search gave up
            sys.stdout.write(format_rows(rows))
        else:
            print(
                f"{prog}: failed to determine next elapse for {quoted(text)}: "
                "the search does not end",
                file=sys.stderr,
            )
            status = EXIT_INVALID
    sys.stdout.flush()
    return status


def format_rows(rows: list[tuple[str, str]]) -> str:
    """systemd-analyze's two-column table: labels right-aligned, then the values."""
    return "".join(f"{label:>16} {value}\n" for label, value in rows)


def calendar_rows(
    text: str, spec: CalendarSpec, base: int, iterations: int
) -> tuple[list[tuple[str, str]], bool]:
    """The table of one expression: (label, value) rows, and False when the search for an
    elapse gave up (systemd: "Resource deadlock avoided")."""
    from cinit.units.calendar import CalendarSearchError

    normalized = spec.normalized()
    rows = [] if normalized == text else [("Original form:", text)]
    rows.append(("Normalized form:", normalized))
    now = int(time.time() * USEC)
    show_utc = not _local_zone_is_utc()
    after = base
    for number in range(1, iterations + 1):
        try:
            found = spec.next_elapse_usec(after, strict=True)
        except CalendarSearchError:
            return rows, False
        if found is None:
            if number == 1:
                rows.append(("Next elapse:", "never"))
            break
        label = "Next elapse:" if number == 1 else f"Iter. #{number}:"
        rows.append((label, format_timestamp(found)))
        if show_utc:
            rows.append(("(in UTC):", format_timestamp(found, utc=True)))
        rows.append(("From now:", format_relative(found - now)))
        after = found
    return rows, True


def _iterations(text: str | None) -> int:
    if text is None:
        return 1
    if not text.isdigit():
        from cinit.cli.args import UsageError

        raise UsageError(f"--iterations needs a number, not {text!r}")
    return int(text)


def _base_time(text: str | None) -> int:
    """--base-time as systemd.time(7)'s timestamps, in microseconds: `@EPOCH[.FRACTION]`,
    `now`, `today`/`yesterday`/`tomorrow`, `+SPAN`/`-SPAN`/`SPAN ago`/`SPAN left`, or
    `[WEEKDAY] [YYYY-MM-DD] [HH:MM[:SS[.FRACTION]]]`, with an optional `UTC` or zone name at
    the end (else the local zone). The weekday is not checked against the date."""
    from cinit.cli.args import UsageError

    if text is None or text == "now":
        return int(time.time() * USEC)
    if text.startswith("@"):
        try:
            seconds = Decimal(text[1:])
        except ArithmeticError:
            seconds = Decimal(-1)
        if not text[1:2].isdigit() or not 0 <= seconds < 253402300800:
            raise UsageError(f"--base-time: not a timestamp: {text!r}")
        return int(seconds * USEC)
    relative = _relative_base(text)
    if relative is not None:
        return relative
    from datetime import datetime, timedelta

    from cinit.units.calendar import CalendarError, local_zone, zone_named

    head, _, last = text.rpartition(" ")
    if head and last.lower() == "utc":
        last = "UTC"
    try:
        zone = zone_named(last) if head and not last[:1].isdigit() else None
    except CalendarError:
        raise UsageError(f"--base-time: unknown time zone {last!r}") from None
    words = (head if zone is not None else text).split()
    if words and words[0].lower().rstrip(",") in _WEEKDAY_WORDS:
        words = words[1:]  # "Mon 2026-12-07 12:00": the weekday is only a label
    text = " ".join(words)
    now = datetime.now(zone or local_zone())
    days = {"today": 0, "yesterday": -1, "tomorrow": 1}
    if text in days:
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None)
        aware = (midnight + timedelta(days=days[text])).replace(tzinfo=now.tzinfo)
        return int(aware.timestamp()) * USEC
    if text[:1].isdigit() and ":" in text.split(" ")[0]:
        text = f"{now:%Y-%m-%d} {text}"  # a time alone is today's
    for form in ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"):
        try:
            moment = datetime.strptime(text, form)
        except ValueError:
            continue
        aware = moment.replace(tzinfo=now.tzinfo)
        return int(aware.timestamp()) * USEC + aware.microsecond
    raise UsageError(f"--base-time: not a timestamp: {text!r}")


_WEEKDAY_WORDS = {
    name
    for day in ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
    for name in (day, day[:3])
}


def _relative_base(text: str) -> int | None:
    """`+5min`, `-5s`, `11min ago`, `2h left`: now moved by the span; None if not one."""
    from cinit.units.diagnostics import ValueFormError
    from cinit.units.values import parse_timespan

    sign, span = 0, text
    if text[:1] in "+-":
        sign, span = (1 if text[0] == "+" else -1), text[1:]
    elif text.endswith((" ago", " left")):
        sign, span = (-1 if text.endswith(" ago") else 1), text.rsplit(" ", 1)[0]
    if not sign:
        return None
    try:
        seconds = parse_timespan(span)
    except ValueFormError:
        return None
    return int(time.time() * USEC) + sign * int(seconds * USEC)


def _local_zone_is_utc() -> bool:
    # systemd-analyze leaves out the "(in UTC)" rows when the local zone is UTC all year.
    from datetime import datetime

    from cinit.units.calendar import local_zone

    zone = local_zone()
    year = time.gmtime().tm_year
    return all(not (datetime(year, month, 15, tzinfo=zone).utcoffset() or 0) for month in (1, 7))


def format_timestamp(usec: int, *, utc: bool = False) -> str:
    """`Tue 2026-09-22 00:00:00 CEST`: whole seconds, in the local zone (or UTC)."""
    from datetime import UTC, datetime

    from cinit.units.calendar import local_zone

    moment = datetime.fromtimestamp(usec // USEC, UTC if utc else local_zone())
    return moment.strftime("%a %Y-%m-%d %H:%M:%S %Z")


# Units of the relative form, as systemd counts them (a month is 30.44 days, a year 365.25).
_MINUTE, _HOUR, _DAY = 60 * USEC, 3600 * USEC, 86400 * USEC
_WEEK, _MONTH, _YEAR = 7 * _DAY, 2_629_800 * USEC, 31_557_600 * USEC


def format_relative(delta: int) -> str:
    """How far a time is from now, as systemd writes it: `2 months 16 days ago`,
    `5h 3min left`, `1 day 2h left`, `now` (delta in microseconds, positive: ahead)."""
    suffix = " left" if delta >= 0 else " ago"
    d = abs(delta)

    def plural(count: int, word: str) -> str:
        return f"{count} {word}" + ("" if count == 1 else "s")

    if d >= _YEAR:
        text = f"{plural(d // _YEAR, 'year')} {plural(d % _YEAR // _MONTH, 'month')}"
    elif d >= _MONTH:
        text = f"{plural(d // _MONTH, 'month')} {plural(d % _MONTH // _DAY, 'day')}"
    elif d >= _WEEK:
        text = f"{plural(d // _WEEK, 'week')} {plural(d % _WEEK // _DAY, 'day')}"
    elif d >= 2 * _DAY:
        text = f"{d // _DAY} days"
    elif d >= 25 * _HOUR:
        text = f"1 day {(d - _DAY) // _HOUR}h"
    elif d >= 6 * _HOUR:
        text = f"{d // _HOUR}h"
    elif d >= _HOUR:
        text = f"{d // _HOUR}h {d % _HOUR // _MINUTE}min"
    elif d >= 5 * _MINUTE:
        text = f"{d // _MINUTE}min"
    elif d >= _MINUTE:
        text = f"{d // _MINUTE}min {d % _MINUTE // USEC}s"
    elif d >= USEC:
        text = f"{d // USEC}s"
    elif d >= 1000:
        text = f"{d // 1000}ms"
    elif d > 0:
        text = f"{d}us"
    else:
        return "now"
    return text + suffix


def _hint(text: str) -> str:
    """A hint for a time span given where a calendar event belongs."""
    from cinit.units.diagnostics import ValueFormError
    from cinit.units.values import parse_timespan

    try:
        parse_timespan(text)
    except ValueFormError:
        return ""
    return " (a time span: a timer that runs every SPAN uses OnUnitActiveSec=SPAN)"
