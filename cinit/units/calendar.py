"""Calendar events (systemd.time(7) "CALENDAR EVENTS", the OnCalendar= value): parse,
normalize and compute the next elapse, as systemd 252 does.

    spec = parse_calendar("Mon..Fri *-*-* 06:00 Europe/Berlin")   # raises CalendarError
    spec.normalized()          # 'Mon..Fri *-*-* 06:00:00 Europe/Berlin'
    spec.next_elapse(time.time())  # epoch seconds of the next elapse, None if never

Pure: text in, values out. The only outside state read is the time zone database
(`zoneinfo`) and, for expressions that name no zone, which zone is local (`TZ`, else
/etc/localtime), as systemd does. The grammar, the normalization and the search for the
next elapse follow systemd's documented behaviour and, where the documentation is silent,
what `systemd-analyze calendar` (systemd 252) answers; tests/units/test_calendar_oracle.py
compares the two on a corpus. Known differences are listed in docs/calendar.md.

How the search works (systemd's): from the wall-clock time just after the base, the fields
are matched from the year down to the second; a field that matches later resets the smaller
ones to their first value, a field that cannot match carries into the larger one. A wall-clock
time that does not exist (a DST gap) or a date that does not exist (Feb 30) is skipped; a
wall-clock time that exists twice (DST ends) elapses once, at its first instance when the
search comes from before it. Years end at 2199: a spec with nothing left elapses never.
glibc's mktime is emulated where systemd relies on it (which of two equal wall-clock times,
a forced standard/daylight time), and so is a rule of Debian's systemd 252 build that the
upstream source does not show (a match before the start goes on from the next hour).
"""

from __future__ import annotations

import os
import re
import time
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Final

from cinit.units._text import quoted
from cinit.units.frozen import Frozen

__all__ = [
    "CalendarError",
    "CalendarSearchError",
    "CalendarSpec",
    "parse_calendar",
    "parse_calendar_value",
]

USEC_PER_SEC: Final = 1_000_000
MIN_YEAR: Final = 1970
MAX_YEAR: Final = 2199
# systemd refuses a chain of more components than this (CALENDARSPEC_COMPONENTS_MAX).
_COMPONENTS_MAX: Final = 240
_INT_MAX: Final = 2**31 - 1
_ALL_WEEKDAYS: Final = 0x7F
_WEEKDAY_NAMES: Final = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
# Longer names first: "Monday" must win over its prefix "Mon".
_WEEKDAY_WORDS: Final = tuple(
    (word, number)
    for number, (short, long) in enumerate(
        zip(
            _WEEKDAY_NAMES,
            ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
            strict=True,
        )
    )
    for word in (long, short)
)
_ZONE_NAME = re.compile(r"[A-Za-z0-9_+\-]+(/[A-Za-z0-9_+\-]+)*")


class CalendarError(ValueError):
    """An expression that is not a calendar event; str() says what is wrong."""


class CalendarSearchError(RuntimeError):
    """The search for the next elapse went round too often without an answer (systemd
    gives up after as many rounds, with "Resource deadlock avoided")."""


# 2200-01-01 00:00 UTC plus a day: no elapse can come after (years end at 2199).
_NEVER_AFTER: Final = 7258118400 + 86400
_EPOCH_ORDINAL: Final = 719163  # date(1970, 1, 1).toordinal()
# systemd's safety valve against a search that does not end.
_MAX_ITERATIONS: Final = 1000


# --- the parsed form -------------------------------------------------------------------


class _Component(Frozen):
    """One value of a field: `start`, a range `start..stop`, a repetition `start/repeat`
    or `start..stop/repeat`. stop is -1 without a range, repeat 0 without a repetition.
    Seconds are counted in microseconds."""

    start: int
    stop: int = -1
    repeat: int = 0


# None: the field is `*` (anything matches); else the components, sorted, no duplicates.
_Chain = tuple[_Component, ...] | None


class CalendarSpec(Frozen):
    """One parsed OnCalendar= expression (immutable). `weekdays` is a bit set (bit 0 Monday)
    or -1 for any day; `second` counts microseconds; `dst` is -1, or 0/1 when the
    expression ended in the local zone's standard/daylight abbreviation (`dst_name`)."""

    weekdays: int
    year: _Chain
    month: _Chain
    day: _Chain
    hour: _Chain
    minute: _Chain
    second: _Chain
    end_of_month: bool = False
    utc: bool = False
    timezone: str | None = None
    dst: int = -1
    dst_name: str = ""

    def normalized(self) -> str:
        """The normalized form, as systemd-analyze prints it ("Normalized form:")."""
        parts = []
        if 0 < self.weekdays < _ALL_WEEKDAYS:
            parts.append(_format_weekdays(self.weekdays) + " ")
        parts += [
            _format_chain(self.year, 4),
            "-",
            _format_chain(self.month, 2),
            "~" if self.end_of_month else "-",
            _format_chain(self.day, 2),
            " ",
            _format_chain(self.hour, 2),
            ":",
            _format_chain(self.minute, 2),
            ":",
            _format_seconds(self.second),
        ]
        if self.utc:
            parts.append(" UTC")
        elif self.timezone:
            parts.append(" " + self.timezone)
        elif self.dst in (0, 1) and self.dst_name:
            parts.append(" " + self.dst_name)
        return "".join(parts)

    def __str__(self) -> str:
        return self.normalized()

    def next_elapse(self, after: float, *, local: tzinfo | None = None) -> float | None:
        """The first elapse strictly after `after` (epoch seconds), None if there is none
        (before the year 2200). Wall-clock fields are read in the spec's zone: UTC, the
        named zone, or the local zone when none is named: `local` if given (a caller that
        must not read the environment resolves it once with `local_zone()`), else $TZ or
        /etc/localtime, read at each call."""
        if not after < _NEVER_AFTER:  # also NaN and infinity
            return None
        base = int(after * USEC_PER_SEC // 1) if after >= 0 else -1
        found = self.next_elapse_usec(base, local=local)
        return None if found is None else found / USEC_PER_SEC

    def next_elapse_usec(
        self, after: int, *, strict: bool = False, local: tzinfo | None = None
    ) -> int | None:
        """`next_elapse` in integer microseconds since the epoch (exact, no float rounding).
        A search that does not end (systemd's safety valve) is None, or CalendarSearchError
        when `strict`."""
        if after >= _NEVER_AFTER * USEC_PER_SEC:
            return None  # past the last year there is nothing (and no overflow)
        if self.utc:
            clock: _Clock = _Clock()
        elif self.timezone:
            clock = _ZoneClock(zone_named(self.timezone))
        else:
            clock = _ZoneClock(local if local is not None else local_zone())
        try:
            found = _next_usec(self, clock, max(after, -1))
        except CalendarSearchError:
            if strict:
                raise
            return None
        if found is not None and found <= after and not strict:
            # systemd can answer a time before the base for a forced standard/daylight time
            # in the hour that repeats; a timer must never be told to elapse in the past.
            return None
        return found


def _format_weekdays(bits: int) -> str:
    # Runs of three or more days are written as ranges, pairs as lists: Mon..Wed,Sat,Sun.
    out: list[str] = []
    day = 0
    while day < 7:
        if not bits & (1 << day):
            day += 1
            continue
        last = day
        while last + 1 < 7 and bits & (1 << (last + 1)):
            last += 1
        out.append(_WEEKDAY_NAMES[day])
        if last > day:
            out.append((".." if last > day + 1 else ",") + _WEEKDAY_NAMES[last])
        out.append(",")
        day = last + 1
    return "".join(out[:-1])


def _format_chain(chain: _Chain, width: int) -> str:
    if chain is None:
        return "*"
    pieces = []
    for c in chain:
        text = f"{c.start:0{width}d}"
        if c.stop > 0:
            text += f"..{c.stop:0{width}d}"
        if c.repeat > 0 and not (c.stop > 0 and c.repeat == 1):
            text += f"/{c.repeat}"
        pieces.append(text)
    return ",".join(pieces)


def _format_seconds(chain: _Chain) -> str:
    if chain is None:
        return "*"
    if any(c.start == 0 and c.stop < 0 and c.repeat == USEC_PER_SEC for c in chain):
        return "*"  # one value covers every second: the whole list is `*` (systemd's rule)

    def number(value: int, width: int) -> str:
        whole, fraction = divmod(value, USEC_PER_SEC)
        text = f"{whole:0{width}d}" if width else str(whole)
        return text + (f".{fraction:06d}" if fraction else "")

    pieces = []
    for c in chain:
        text = number(c.start, 2)
        if c.stop > 0:
            text += ".." + number(c.stop, 2)
        if c.repeat > 0 and not (c.stop > 0 and c.repeat == USEC_PER_SEC):
            text += "/" + number(c.repeat, 0)
        pieces.append(text)
    return ",".join(pieces)


# --- parsing ---------------------------------------------------------------------------

# The shorthands and the expressions they stand for (systemd.time(7)).
_SHORTHANDS: Final = {
    "minutely": "*-*-* *:*:00",
    "hourly": "*-*-* *:00:00",
    "daily": "*-*-* 00:00:00",
    "monthly": "*-*-01 00:00:00",
    "weekly": "Mon *-*-* 00:00:00",
    "yearly": "*-01-01 00:00:00",
    "quarterly": "*-01,04,07,10-01 00:00:00",
    "semiannually": "*-01,07-01 00:00:00",
}
_SHORTHAND_ALIASES: Final = {
    "annually": "yearly",
    "anually": "yearly",
    "biannually": "semiannually",
    "bi-annually": "semiannually",
    "semi-annually": "semiannually",
}


class _Draft:
    """The spec while it is parsed (mutable); `_finish` turns it into a CalendarSpec."""

    __slots__ = (
        "day",
        "dst",
        "dst_name",
        "end_of_month",
        "hour",
        "minute",
        "month",
        "second",
        "timezone",
        "utc",
        "weekdays",
        "year",
    )

    def __init__(self) -> None:
        self.weekdays = 0
        self.year: list[_Component] | None = None
        self.month: list[_Component] | None = None
        self.day: list[_Component] | None = None
        self.hour: list[_Component] | None = None
        self.minute: list[_Component] | None = None
        self.second: list[_Component] | None = None
        self.end_of_month = False
        self.utc = False
        self.timezone: str | None = None
        self.dst = -1
        self.dst_name = ""


def parse_calendar(text: str) -> CalendarSpec:
    """Parse one calendar event expression (systemd.time(7)); raises CalendarError.

    Accepts what systemd 252 accepts: the shorthands (minutely ... yearly, annually,
    quarterly, semiannually), `[WEEKDAYS] [[YEAR-]MONTH-DAY] [HOUR:MINUTE[:SECOND]]` with
    `*`, lists, ranges `..`, repetitions `/`, `~` (days counted from the end of the month),
    seconds with fractions, `@EPOCH`, and at the end `UTC`, an IANA zone name or the local
    zone's abbreviation. No whitespace is stripped (systemd strips none either)."""
    if "\0" in text:
        raise CalendarError("contains a NUL character")
    if text == "":
        raise CalendarError("empty expression")
    draft = _Draft()
    rest = _take_zone(text, draft)
    if rest == "":
        raise CalendarError("nothing before the time zone")
    shorthand = rest.lower()
    shorthand = _SHORTHAND_ALIASES.get(shorthand, shorthand)
    rest = _SHORTHANDS.get(shorthand, rest)
    try:
        pos = _parse_weekdays(rest, 0, draft)
        pos, was_epoch = _parse_date(rest, pos, draft)
        if not was_epoch:
            pos = _parse_time(rest, pos, draft)
        if pos != len(rest):
            raise CalendarError(f"unexpected {quoted(rest[pos:])}")
    except CalendarError:
        last = rest.rpartition(" ")[2]
        if "/" in last and any(ch.isalpha() for ch in last):
            raise CalendarError(f"unknown time zone {quoted(last)}") from None
        raise
    return _finish(draft)


def _take_zone(text: str, draft: _Draft) -> str:
    """Take a time zone off the end of the expression: ` UTC`, the local zone's
    abbreviation (sets dst), or an IANA zone name after the last space."""
    if text.lower().endswith(" utc"):
        draft.utc = True
        return text[:-4]
    for dst, name in enumerate(local_zone_abbreviations()):
        if not name or len(text) <= len(name):
            continue
        if text.lower().endswith(name.lower()) and text[-len(name) - 1] == " ":
            draft.dst, draft.dst_name = dst, name
            return text[: -len(name) - 1]
    head, space, last = text.rpartition(" ")
    if space and zone_is_valid(last):
        draft.timezone = last
        return head
    return text


def _parse_weekdays(text: str, pos: int, draft: _Draft) -> int:
    """Weekday names, lists and ranges at `pos`; the position after them (and the spaces
    that follow). No weekday there: `pos` unchanged."""
    range_from = -1
    first = True
    while True:
        for word, number in _WEEKDAY_WORDS:
            if text[pos : pos + len(word)].lower() == word.lower():
                after = pos + len(word)
                if after < len(text) and text[after] not in "-., ":
                    raise CalendarError(f"invalid weekday {quoted(text[pos:].split(' ')[0])}")
                draft.weekdays |= 1 << number
                if range_from >= 0:
                    if range_from > number:
                        raise CalendarError(
                            f"weekday range {_WEEKDAY_NAMES[range_from]}..{word} goes "
                            "backwards (ranges run Monday to Sunday)"
                        )
                    for between in range(range_from + 1, number):
                        draft.weekdays |= 1 << between
                pos = after
                break
        else:
            if first:
                return pos
            raise CalendarError(f"weekday expected at {quoted(text[pos:])}")
        if pos == len(text):
            return pos
        if text[pos] == " ":
            return _skip_spaces(text, pos)
        if text[pos] == ".":
            if range_from >= 0 or text[pos + 1 : pos + 2] != ".":
                raise CalendarError("weekday ranges are written Mon..Fri")
            range_from = number
            pos += 2
        elif text[pos] == "-":  # old range syntax, still accepted
            if range_from >= 0:
                raise CalendarError("weekday ranges are written Mon..Fri")
            range_from = number
            pos += 1
        elif text[pos] == ",":
            range_from = -1
            pos += 1
        if pos == len(text) or text[pos] == " ":  # a trailing comma is fine, an open range not
            if range_from >= 0:
                raise CalendarError("open weekday range")
            return _skip_spaces(text, pos)
        first = False


def _skip_spaces(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] == " ":
        pos += 1
    return pos


def _parse_date(text: str, pos: int, draft: _Draft) -> tuple[int, bool]:
    """`[YEAR-]MONTH-DAY` (or `~DAY`) or `@EPOCH` at `pos`. Returns the position after it
    and whether it was `@EPOCH` (which also sets the time). Nothing that looks like a date
    (the end, or a time follows): `pos` unchanged."""
    if pos == len(text):
        return pos, False
    if text[pos] == "@":
        end, seconds = _parse_number(text, pos + 1)
        when = time.gmtime(seconds) if seconds < 2**40 else None
        if when is None or when.tm_year > MAX_YEAR:
            raise CalendarError(f"timestamp @{seconds} out of range")
        draft.year = [_Component(when.tm_year)]
        draft.month = [_Component(when.tm_mon)]
        draft.day = [_Component(when.tm_mday)]
        draft.hour = [_Component(when.tm_hour)]
        draft.minute = [_Component(when.tm_min)]
        draft.second = [_Component(when.tm_sec * USEC_PER_SEC)]
        draft.utc = True
        return end, True
    end, first = _parse_chain(text, pos, False)
    if end == len(text) or text[end] == ":":
        return pos, False  # a time, not a date
    if text[end] == "~":
        draft.end_of_month = True
    elif text[end] != "-":
        raise CalendarError(f"'-' expected in the date at {quoted(text[end:])}")
    end, second = _parse_chain(text, end + 1, False)
    if end == len(text) or text[end] == " ":
        draft.month, draft.day = first, second
        return _skip_spaces(text, end), False
    if draft.end_of_month:
        raise CalendarError("'~' only separates month and day")
    if text[end] == "~":
        draft.end_of_month = True
    elif text[end] != "-":
        raise CalendarError(f"'-' expected in the date at {quoted(text[end:])}")
    end, third = _parse_chain(text, end + 1, False)
    if end != len(text) and text[end] != " ":
        raise CalendarError(f"unexpected {quoted(text[end:])} after the date")
    draft.year, draft.month, draft.day = first, second, third
    return _skip_spaces(text, end), False


def _parse_time(text: str, pos: int, draft: _Draft) -> int:
    """`HOUR:MINUTE[:SECOND]` at `pos`; none: 00:00:00. Returns the position after it."""
    if pos == len(text):
        draft.hour, draft.minute, draft.second = [_Component(0)], [_Component(0)], [_Component(0)]
        return pos
    pos, hour = _parse_chain(text, pos, False)
    if pos == len(text) or text[pos] != ":":
        raise CalendarError(f"':' expected after the hour at {quoted(text[pos:])}")
    pos, minute = _parse_chain(text, pos + 1, False)
    second: list[_Component] | None = [_Component(0)]
    if pos < len(text):
        if text[pos] != ":":
            raise CalendarError(f"unexpected {quoted(text[pos:])} after the minute")
        pos, second = _parse_chain(text, pos + 1, True)
        if pos != len(text):
            raise CalendarError(f"unexpected {quoted(text[pos:])} after the seconds")
    draft.hour, draft.minute, draft.second = hour, minute, second
    return pos


def _parse_chain(text: str, pos: int, usec: bool) -> tuple[int, list[_Component] | None]:
    """A field: `*` or a comma-separated list of components."""
    if text[pos : pos + 1] == "*":
        if text[pos + 1 : pos + 2] == "/":
            raise CalendarError("'*/N' is not the syntax: a repetition from 0 is written 0/N")
        return pos + 1, ([_Component(0, -1, USEC_PER_SEC)] if usec else None)
    chain: list[_Component] = []
    while True:
        if len(chain) > _COMPONENTS_MAX:
            raise CalendarError(f"more than {_COMPONENTS_MAX} values in one field")
        pos, component = _parse_component(text, pos, usec)
        chain.append(component)
        if text[pos : pos + 1] != ",":
            return pos, chain
        pos += 1


def _parse_component(text: str, pos: int, usec: bool) -> tuple[int, _Component]:
    pos, start = _parse_decimal(text, pos, usec)
    stop, repeat = -1, 0
    if text[pos : pos + 2] == "..":
        pos, stop = _parse_decimal(text, pos + 2, usec)
        repeat = USEC_PER_SEC if usec else 1
    if text[pos : pos + 1] == "/":
        pos, repeat = _parse_decimal(text, pos + 1, usec)
        if repeat == 0:
            raise CalendarError("a repetition of 0")
    else:
        if start > _INT_MAX - repeat:
            raise CalendarError("value out of range")
        if usec and stop >= 0 and start + repeat > stop:
            raise CalendarError("a range of seconds shorter than one second needs a repetition")
    if pos < len(text) and text[pos] not in " ,-~:":
        raise CalendarError(f"unexpected {quoted(text[pos:])}")
    return pos, _Component(start, stop, repeat)


def _parse_decimal(text: str, pos: int, usec: bool) -> tuple[int, int]:
    """A decimal number at `pos` (in microseconds, with an optional fraction, if `usec`)."""
    end, value = _parse_number(text, pos)
    if usec:
        value *= USEC_PER_SEC
        if text[end : end + 1] == "." and text[end + 1 : end + 2] != ".":
            end, fraction = _parse_fraction(text, end + 1)
            value += fraction
    if value > _INT_MAX:
        raise CalendarError(f"value {quoted(text[pos:end])} out of range")
    return end, value


def _parse_number(text: str, pos: int) -> tuple[int, int]:
    end = pos
    while end < len(text) and text[end] in "0123456789":
        end += 1
    if end == pos:
        if pos == len(text):
            raise CalendarError("a number is missing at the end")
        if text[pos].isalpha():
            word = text[pos:].split(" ")[0]
            raise CalendarError(
                f"unknown word {quoted(word)} (not a weekday, shorthand or time zone name)"
            )
        if text[pos] == " ":
            raise CalendarError(f"unexpected space at {quoted(text[pos:])}")
        raise CalendarError(f"a number expected at {quoted(text[pos:])}")
    if end - pos > 20 or int(text[pos:end]) >= 2**64:
        raise CalendarError(f"value {quoted(text[pos:end])} out of range")
    return end, int(text[pos:end])


def _parse_fraction(text: str, pos: int) -> tuple[int, int]:
    """Digits after a decimal point as microseconds: six digits, rounded on the seventh."""
    end = pos
    while end < len(text) and text[end] in "0123456789":
        end += 1
    digits = text[pos:end]
    if not digits:
        raise CalendarError("a digit expected after the decimal point")
    value = int(digits[:6].ljust(6, "0"))
    if len(digits) > 6 and digits[6] >= "5":
        value += 1
    return end, value


def _normalize_chain(chain: list[_Component] | None) -> _Chain:
    if chain is None:
        return None
    fixed = []
    for c in chain:
        start, stop, repeat = c.start, c.stop, c.repeat
        if stop > start and repeat > 0:
            stop -= (stop - start) % repeat  # the range ends at its last repetition
        # a repetition that cannot happen even once, or a range of one value: a plain value
        if (stop > start and start + repeat > stop) or start == stop:
            repeat, stop = 0, -1
        fixed.append(_Component(start, stop, repeat))
    return tuple(sorted(set(fixed), key=lambda c: (c.start, c.stop, c.repeat)))


def _full_year(chain: list[_Component] | None) -> list[_Component] | None:
    # Two-digit years: 0..69 are 2000..2069, 70..99 are 1970..1999.
    def full(value: int) -> int:
        if 0 <= value < 70:
            return value + 2000
        if 70 <= value < 100:
            return value + 1900
        return value

    if chain is None:
        return None
    return [_Component(full(c.start), full(c.stop), c.repeat) for c in chain]


def _check_chain(chain: _Chain, low: int, high: int, what: str, end_of_month: bool = False) -> None:
    """systemd's limits: values within [low, high]; days from the month's end at most 28;
    a repetition that can happen at least once (within its range, or before the end of the
    field; counted back from the end of the month for `~`); ranges not backwards.

    For `~` systemd lowers the limit by 3 for each value in turn (its check passes the
    lowered limit on to the next value): the first (smallest) may be 28 days from the end,
    the second 25, the third 22, ... Copied, so the same expressions are refused."""
    for c in chain or ():
        if end_of_month:
            high -= 3
        span = f"{low}..{_shown(high, what)}"
        if not low <= c.start <= high:
            raise CalendarError(f"{what} {_shown(c.start, what)} out of range {span}")
        if c.repeat > high - low:
            raise CalendarError(f"{what} repetition {_shown(c.repeat, what)} too large")
        if c.stop >= 0:
            if not low <= c.stop <= high:
                raise CalendarError(f"{what} {_shown(c.stop, what)} out of range {span}")
            if c.start + c.repeat > c.stop:
                raise CalendarError(
                    f"{what} range {_shown(c.start, what)}..{_shown(c.stop, what)} is backwards"
                )
        elif end_of_month and c.start - c.repeat < low:
            raise CalendarError(
                f"{what} repetition {_shown(c.repeat, what)} goes past the start of the month"
            )
        elif not end_of_month and c.start + c.repeat > high:
            first = _shown(c.start + c.repeat, what)
            raise CalendarError(
                f"{what} repetition never happens ({first} is past {_shown(high, what)})"
            )


def _shown(value: int, what: str) -> str:
    if what != "second":
        return str(value)
    whole, fraction = divmod(value, USEC_PER_SEC)
    return f"{whole}.{fraction:06d}".rstrip("0").rstrip(".") if fraction else str(whole)


def _finish(draft: _Draft) -> CalendarSpec:
    if draft.timezone == "UTC":
        draft.utc, draft.timezone = True, None
    weekdays = draft.weekdays if 0 < draft.weekdays < _ALL_WEEKDAYS else -1
    spec = CalendarSpec(
        weekdays=weekdays,
        year=_normalize_chain(_full_year(draft.year)),
        month=_normalize_chain(draft.month),
        day=_normalize_chain(draft.day),
        hour=_normalize_chain(draft.hour),
        minute=_normalize_chain(draft.minute),
        second=_normalize_chain(draft.second),
        end_of_month=draft.end_of_month and draft.day is not None,
        utc=draft.utc,
        timezone=draft.timezone,
        dst=draft.dst,
        dst_name=draft.dst_name,
    )
    _check_chain(spec.year, MIN_YEAR, MAX_YEAR, "year")
    _check_chain(spec.month, 1, 12, "month")
    _check_chain(spec.day, 1, 31, "day", spec.end_of_month)
    _check_chain(spec.hour, 0, 23, "hour")
    _check_chain(spec.minute, 0, 59, "minute")
    _check_chain(spec.second, 0, 60 * USEC_PER_SEC - 1, "second")
    return spec


# --- time zones ------------------------------------------------------------------------


def zone_is_valid(name: str) -> bool:
    """Whether `name` is a time zone systemd accepts: an IANA name of the zone database
    (letters, digits, `-_+`, single slashes inside), or "UTC"."""
    if name == "UTC":
        return True
    if not _ZONE_NAME.fullmatch(name):
        return False
    try:
        zone_named(name)
    except CalendarError:
        return False
    return True


def zone_named(name: str) -> tzinfo:
    """The zone of an IANA name; CalendarError if the database does not have it."""
    if name == "UTC":
        return UTC
    # zoneinfo is imported here, not at the top: with its path lookup (sysconfig) it is
    # ~0.8 MiB of PID 1's memory, and a container whose timers name no zone and whose
    # local zone is UTC never needs it (`_utc_file`).
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    # ImportError: a zone the system's database lacks sends ZoneInfo to the tzdata package
    # through importlib.resources, which the standalone build leaves out (packaging/).
    except (ZoneInfoNotFoundError, ValueError, OSError, ImportError) as exc:
        raise CalendarError(f"unknown time zone {quoted(name)}") from exc


def local_zone() -> tzinfo:
    """The local zone, as libc finds it: $TZ (a zone name, `:name` or a file path), else
    /etc/localtime; UTC when neither names a zone this can read (a POSIX TZ rule string
    such as "CET-1CEST,M3.5.0" is not read: docs/calendar.md)."""
    name = os.environ.get("TZ")
    if name is None:
        return _zone_of_file("/etc/localtime")
    name = name.removeprefix(":")
    if name.startswith("/"):
        return _zone_of_file(name)
    if name in _UTC_NAMES and _utc_file(name):
        return UTC
    try:
        return zone_named(name) if name else UTC
    except CalendarError:
        return UTC


_ZONE_ROOTS: Final = ("/usr/share/zoneinfo/", "/usr/lib/zoneinfo/", "/usr/share/lib/zoneinfo/")
# The database's names of UTC itself (a zone of offset 0, abbreviation "UTC", no daylight
# time): read as datetime's UTC, which behaves the same, without importing zoneinfo.
_UTC_NAMES: Final = frozenset(("UTC", "Etc/UTC", "Etc/Universal", "Universal", "Etc/Zulu", "Zulu"))


def _utc_file(name: str) -> bool:
    """Whether the zone database holds `name` (one of _UTC_NAMES): then ZoneInfo would
    read that UTC zone, and datetime's UTC is the same zone."""
    return any(os.path.isfile(root + name) for root in _ZONE_ROOTS)


def _zone_of_file(path: str) -> tzinfo:
    # A link into the zone database names its zone (ZoneInfo caches it by name).
    target = os.path.realpath(path)
    for root in _ZONE_ROOTS:
        if target.startswith(root):
            name = target[len(root) :].removeprefix("posix/")
            if name in _UTC_NAMES and os.path.isfile(target):
                return UTC  # the usual container: /etc/localtime -> .../Etc/UTC
            try:
                return zone_named(name)
            except CalendarError:
                break
    from zoneinfo import ZoneInfo

    try:
        with open(path, "rb") as stream:
            return ZoneInfo.from_file(stream, key=path)
    except (OSError, ValueError):
        return UTC


def local_zone_abbreviations() -> tuple[str, str]:
    """The local zone's standard and daylight abbreviations (libc's tzname), e.g.
    ("CET", "CEST"); a zone without daylight time gives its one name twice."""
    zone = local_zone()
    now = datetime.now(UTC)
    standard = daylight = ""
    for month in range(0, 12):
        probe = (now + timedelta(days=30 * month)).astimezone(zone)
        if probe.dst():
            daylight = daylight or (probe.tzname() or "")
        else:
            standard = standard or (probe.tzname() or "")
    standard = standard or "UTC"
    return standard, daylight or standard


# --- the search for the next elapse ----------------------------------------------------


class _Tm:
    """Broken-down wall-clock time, like C's struct tm: the fields may be out of range
    until a clock normalizes them. mon counts from 0, wday from Monday = 0. A plain
    class with slots: the search builds and copies many."""

    __slots__ = ("hour", "isdst", "mday", "min", "mon", "sec", "wday", "year")

    def __init__(
        self, year: int, mon: int, mday: int, hour: int, min: int, sec: int,
        isdst: int = -1, wday: int = 0,
    ) -> None:  # fmt: skip
        self.year, self.mon, self.mday = year, mon, mday
        self.hour, self.min, self.sec = hour, min, sec
        self.isdst, self.wday = isdst, wday

    def __repr__(self) -> str:
        return (
            f"_Tm({self.year}, {self.mon}, {self.mday}, {self.hour}, {self.min}, {self.sec},"
            f" isdst={self.isdst}, wday={self.wday})"
        )

    def copy(self) -> _Tm:
        return _Tm(
            self.year, self.mon, self.mday, self.hour, self.min, self.sec, self.isdst, self.wday
        )

    def same_fields(self, other: _Tm) -> bool:
        return (self.year, self.mon, self.mday, self.hour, self.min, self.sec) == (
            other.year,
            other.mon,
            other.mday,
            other.hour,
            other.min,
            other.sec,
        )


def _wall_seconds(tm: _Tm) -> int:
    """The fields as seconds since the epoch read as UTC (out-of-range fields carry)."""
    year, mon = tm.year + tm.mon // 12, tm.mon % 12
    # What calendar.timegm computes, without importing `calendar` (which imports `locale`).
    days = date(year, mon + 1, 1).toordinal() - _EPOCH_ORDINAL + tm.mday - 1
    return days * 86400 + tm.hour * 3600 + tm.min * 60 + tm.sec


def _set_fields(tm: _Tm, wall: int) -> None:
    fields = time.gmtime(wall)
    tm.year, tm.mon, tm.mday = fields.tm_year, fields.tm_mon - 1, fields.tm_mday
    tm.hour, tm.min, tm.sec, tm.wday = fields.tm_hour, fields.tm_min, fields.tm_sec, fields.tm_wday


class _Clock:
    """The conversions between epoch seconds and wall-clock fields; this one is
    gmtime/timegm (the wall clock is UTC), _ZoneClock is localtime/mktime in a zone."""

    def breakdown(self, t: int) -> _Tm:
        tm = _Tm(0, 0, 0, 0, 0, 0, 0)
        _set_fields(tm, t)
        return tm

    def make(self, tm: _Tm) -> int | None:
        """mktime: the epoch seconds of `tm`; normalizes its fields. None if not representable."""
        if not -2000 < tm.year < 9000:
            return None
        wall = _wall_seconds(tm)
        if not -2 * 86400 <= wall < 253402300800 - 86400:
            return None
        _set_fields(tm, wall)
        tm.isdst = 0
        return wall


class _ZoneClock(_Clock):
    """localtime/mktime in a zone. A wall-clock time that exists twice is read as the one
    with the UTC offset of the previous conversion (glibc's mktime does the same), else the
    first; one that does not exist moves forward by the gap."""

    def __init__(self, zone: tzinfo) -> None:
        self.zone = zone
        self.last_offset: int | None = None

    def _offset(self, t: int) -> tuple[int, int]:
        """The zone's UTC offset (seconds) at `t` and whether daylight time is in use."""
        moment = datetime.fromtimestamp(t, self.zone)
        offset, dst = moment.utcoffset(), moment.dst()
        return (int(offset.total_seconds()) if offset else 0), (1 if dst else 0)

    def _offset_with_dst(self, t: int, dst: int) -> int | None:
        # glibc's probe: weekly steps, both directions, up to about eight and a half years.
        stride, bound = 601200, 536454000 // 2 + 601200
        for delta in range(stride, bound, stride):
            for probe in (t - delta, t + delta):
                offset, probe_dst = self._offset(probe)
                if probe_dst == dst:
                    return offset
        return None

    def breakdown(self, t: int) -> _Tm:
        offset, dst = self._offset(t)
        tm = _Tm(0, 0, 0, 0, 0, 0, dst)
        _set_fields(tm, t + offset)
        return tm

    def make(self, tm: _Tm) -> int | None:
        if not -2000 < tm.year < 9000:
            return None
        wall = _wall_seconds(tm)
        if not -2 * 86400 <= wall < 253402300800 - 2 * 86400:
            return None
        naive = datetime(1970, 1, 1) + timedelta(seconds=wall)
        found: list[tuple[int, int, int]] = []  # (t, offset, dst)
        tries = []
        for fold in (0, 1):
            shift = naive.replace(fold=fold, tzinfo=self.zone).utcoffset()
            guess = wall - (int(shift.total_seconds()) if shift else 0)
            tries.append(guess)
            offset, dst = self._offset(guess)
            if guess + offset == wall and all(t != guess for t, _, _ in found):
                found.append((guess, offset, dst))
        wanted = [entry for entry in found if entry[2] == tm.isdst]
        if not found:
            # In a gap: the time before the change read with the offset before the change,
            # i.e. moved forward by the size of the gap (glibc's choice).
            t = tries[0]
        elif tm.isdst in (0, 1) and wanted:
            t = wanted[0][0]
        else:
            same = [entry for entry in found if entry[1] == self.last_offset]
            t = (same or found)[0][0]
        if tm.isdst in (0, 1) and not wanted:
            # Standard (daylight) time asked for where it is not in use: glibc reads the
            # wall clock with the UTC offset of the nearest time that has it.
            moved = self._offset_with_dst(t, tm.isdst)
            if moved is None:
                return None
            t = wall - moved
        offset, dst = self._offset(t)
        self.last_offset = offset
        _set_fields(tm, t + offset)
        tm.isdst = dst
        return t


def _match(chain: _Chain, value: int, end_of_month: bool, clock: _Clock, tm: _Tm) -> int | None:
    """The earliest value >= `value` the field's chain allows; None if none (the field
    carries). `*` keeps the value. Days of an end-of-month spec count from the month's end."""
    if chain is None:
        return value
    best: int | None = None
    for c in chain:
        start, stop = c.start, c.stop
        if end_of_month:
            start, stop = _from_month_end(clock, tm, start), _from_month_end(clock, tm, stop)
            if stop > 0:
                start, stop = stop, start
        if start >= value:
            if best is None or start < best:
                best = start
        elif c.repeat > 0:
            k = start + c.repeat * (-((start - value) // c.repeat))
            if (best is None or k < best) and (stop < 0 or k <= stop):
                best = k
    return best


def _from_month_end(clock: _Clock, tm: _Tm, day: int) -> int:
    """The day of the month that is `day` days from its end (1: the last), -1 if none."""
    probe = tm.copy()
    probe.mon += 1
    probe.mday = 1 - day
    t = clock.make(probe)
    if t is None or t < 0 or probe.mon != tm.mon:
        return -1
    return probe.mday


def _within_bounds(clock: _Clock, tm: _Tm) -> int:
    """1 if `tm` exists as written. 0 if converting it moves it forward (a carry such as
    Sep 36, or a wall-clock time in a DST gap): `tm` is then set to where it moved, with
    the fields below the first one that changed reset (Sep 36 -> Oct 1, not Oct 6, so no
    day is skipped). -1 if it is past the last year, cannot be converted, or would move
    backwards (the search never goes back)."""
    if tm.year > MAX_YEAR:
        return -1
    probe = tm.copy()
    t = clock.make(probe)
    if t is None or t < 0:
        return -1
    moved = probe.year, probe.mon, probe.mday, probe.hour, probe.min, probe.sec
    written = tm.year, tm.mon, tm.mday, tm.hour, tm.min, tm.sec
    if moved == written:
        return 1
    if moved < written:
        return -1
    first_changed = next(i for i in range(6) if moved[i] != written[i])
    if first_changed < 5:
        # the field just below the first changed one starts over (mon, mday, hour, ...)
        setattr(
            probe,
            ("mon", "mday", "hour", "min", "sec")[first_changed],
            1 if first_changed == 1 else 0,
        )
    tm.year, tm.mon, tm.mday = probe.year, probe.mon, probe.mday
    tm.hour, tm.min, tm.sec, tm.isdst = probe.hour, probe.min, probe.sec, probe.isdst
    return 0


def _weekday_ok(spec: CalendarSpec, clock: _Clock, tm: _Tm) -> bool:
    if spec.weekdays < 0:
        return True
    probe = tm.copy()
    t = clock.make(probe)
    if t is None or t < 0:
        return False
    return bool(spec.weekdays & (1 << probe.wday))


def _next_usec(spec: CalendarSpec, clock: _Clock, after: int) -> int | None:
    """The first elapse at or after `after` + 1 microsecond (systemd's
    calendar_spec_next_usec), in microseconds; None if never."""
    seconds, micro = divmod(after + 1, USEC_PER_SEC)
    tm = clock.breakdown(seconds)
    found_micro = _find_next(spec, clock, tm, micro)
    if found_micro is None:
        return None
    t = clock.make(tm)
    if t is None or t < 0:
        return None
    return t * USEC_PER_SEC + found_micro


def _find_next(spec: CalendarSpec, clock: _Clock, tm: _Tm, micro: int) -> int | None:
    """Move `tm` (whole seconds; `micro` its microseconds) to the first match at or after
    it and return the match's microseconds; None if there is none.

    Each field, from the year down, is moved to its first allowed value at or after the
    current one (resetting the smaller fields) or, when it has none left, the next larger
    field is stepped and the search starts over. A moved time that does not exist as
    written starts the search over from where the conversion put it."""

    def reset(*fields: str) -> None:
        nonlocal micro
        for name in fields:
            setattr(tm, name, 1 if name == "mday" else 0)
        micro = 0

    start = (tm.year, tm.mon, tm.mday, tm.hour, tm.min, tm.sec, micro)
    force_dst = True
    for _ in range(_MAX_ITERATIONS):
        clock.make(tm)
        if force_dst:
            tm.isdst = spec.dst

        year = _match(spec.year, tm.year, False, clock, tm)
        if year is None:
            return None
        if year != tm.year:
            tm.year = year
            reset("mon", "mday", "hour", "min", "sec")
        if _within_bounds(clock, tm) <= 0:
            return None

        month = _match(spec.month, tm.mon + 1, False, clock, tm)
        if month is not None and month != tm.mon + 1:
            tm.mon = month - 1
            reset("mday", "hour", "min", "sec")
        bounds = _within_bounds(clock, tm) if month is not None else -1
        if bounds < 0:
            tm.year += 1
            reset("mon", "mday", "hour", "min", "sec")
            continue
        if bounds == 0:
            continue

        day = _match(spec.day, tm.mday, spec.end_of_month, clock, tm)
        if day is not None and day != tm.mday:
            tm.mday = day
            reset("hour", "min", "sec")
        bounds = _within_bounds(clock, tm) if day is not None else -1
        if bounds < 0:
            tm.mon += 1
            reset("mday", "hour", "min", "sec")
            continue
        if bounds == 0:
            continue

        if not _weekday_ok(spec, clock, tm):
            tm.mday += 1
            reset("hour", "min", "sec")
            continue

        hour = _match(spec.hour, tm.hour, False, clock, tm)
        if hour is not None and hour != tm.hour:
            tm.hour = hour
            reset("min", "sec")
        bounds = _within_bounds(clock, tm) if hour is not None else -1
        if bounds < 0:
            tm.mday += 1
            reset("hour", "min", "sec")
            continue
        if bounds == 0:  # the hour is missing (a DST gap): on from where it moved
            continue

        minute = _match(spec.minute, tm.min, False, clock, tm)
        if minute is not None and minute != tm.min:
            tm.min = minute
            reset("sec")
        bounds = _within_bounds(clock, tm) if minute is not None else -1
        if bounds < 0:
            tm.hour += 1
            reset("min", "sec")
            continue
        if bounds == 0:
            continue

        second = _match(spec.second, tm.sec * USEC_PER_SEC + micro, False, clock, tm)
        if second is not None:
            tm.sec, micro = divmod(second, USEC_PER_SEC)
        bounds = _within_bounds(clock, tm) if second is not None else -1
        if bounds < 0:
            tm.min += 1
            reset("sec")
            continue
        if bounds == 0:
            continue
        if (tm.year, tm.mon, tm.mday, tm.hour, tm.min, tm.sec, micro) < start:
            # A match on a wall-clock time before the start (the hour that repeats when
            # daylight time ends, or a forced standard/daylight time): on from the next
            # hour, reading the wall clock as it is (Debian's systemd 252 does this).
            tm.hour += 1
            force_dst = False
            continue
        return micro
    raise CalendarSearchError(f"no answer after {_MAX_ITERATIONS} rounds")


# --- the OnCalendar= value -------------------------------------------------------------


def parse_calendar_value(text: str) -> CalendarSpec:
    """The OnCalendar= value parser, in the style of units/values.py: the parsed spec, or
    ValueFormError (the schema's error for a bad value) quoting the value and saying what
    is wrong, e.g. `invalid calendar event '*-*-* 25:00': hour out of range`. Leading and
    trailing whitespace is already gone (the unit file parser strips it)."""
    from cinit.units.diagnostics import ValueFormError

    try:
        return parse_calendar(text)
    except CalendarError as exc:
        raise ValueFormError(f"invalid calendar event {quoted(text)}: {exc}") from None
