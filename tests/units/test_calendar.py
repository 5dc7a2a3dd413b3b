"""cinit.units.calendar: calendar events (systemd.time(7)) without the oracle.

The comparison with systemd-analyze is tests/units/test_calendar_oracle.py; these tests pin
the API the timers use and the behaviour around DST, fractions, the end of the search and
the OnCalendar= value parser, with the answers systemd 252 gives written out.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cinit.units import calendar
from cinit.units.calendar import (
    CalendarError,
    CalendarSearchError,
    CalendarSpec,
    parse_calendar,
    parse_calendar_value,
)
from cinit.units.diagnostics import ValueFormError

# systemd.time(7)'s examples and their normalized forms, as the man page lists them.
MAN_PAGE = [
    ("Sat,Thu,Mon..Wed,Sat..Sun", "Mon..Thu,Sat,Sun *-*-* 00:00:00"),
    ("Mon,Sun 12-*-* 2,1:23", "Mon,Sun 2012-*-* 01,02:23:00"),
    ("Wed *-1", "Wed *-*-01 00:00:00"),
    ("Wed..Wed,Wed *-1", "Wed *-*-01 00:00:00"),
    ("Wed, 17:48", "Wed *-*-* 17:48:00"),
    ("Wed..Sat,Tue 12-10-15 1:2:3", "Tue..Sat 2012-10-15 01:02:03"),
    ("*-*-7 0:0:0", "*-*-07 00:00:00"),
    ("10-15", "*-10-15 00:00:00"),
    ("monday *-12-* 17:00", "Mon *-12-* 17:00:00"),
    ("Mon,Fri *-*-3,1,2 *:30:45", "Mon,Fri *-*-01,02,03 *:30:45"),
    ("12,14,13,12:20,10,30", "*-*-* 12,13,14:10,20,30:00"),
    ("12..14:10,20,30", "*-*-* 12..14:10,20,30:00"),
    ("mon,fri *-1/2-1,3 *:30:45", "Mon,Fri *-01/2-01,03 *:30:45"),
    ("03-05 08:05:40", "*-03-05 08:05:40"),
    ("08:05:40", "*-*-* 08:05:40"),
    ("05:40", "*-*-* 05:40:00"),
    ("Sat,Sun 12-05 08:05:40", "Sat,Sun *-12-05 08:05:40"),
    ("Sat,Sun 08:05:40", "Sat,Sun *-*-* 08:05:40"),
    ("2003-03-05 05:40", "2003-03-05 05:40:00"),
    ("05:40:23.4200004/3.1700005", "*-*-* 05:40:23.420000/3.170001"),
    ("2003-02..04-05", "2003-02..04-05 00:00:00"),
    ("2003-03-05 05:40 UTC", "2003-03-05 05:40:00 UTC"),
    ("2003-03-05", "2003-03-05 00:00:00"),
    ("03-05", "*-03-05 00:00:00"),
    ("hourly", "*-*-* *:00:00"),
    ("daily", "*-*-* 00:00:00"),
    ("daily UTC", "*-*-* 00:00:00 UTC"),
    ("monthly", "*-*-01 00:00:00"),
    ("weekly", "Mon *-*-* 00:00:00"),
    ("weekly Pacific/Auckland", "Mon *-*-* 00:00:00 Pacific/Auckland"),
    ("yearly", "*-01-01 00:00:00"),
    ("annually", "*-01-01 00:00:00"),
    ("*:2/3", "*-*-* *:02/3:00"),
    ("minutely", "*-*-* *:*:00"),
    ("quarterly", "*-01,04,07,10-01 00:00:00"),
    ("semiannually", "*-01,07-01 00:00:00"),
]


@pytest.mark.parametrize(("text", "normalized"), MAN_PAGE)
def test_the_man_page_examples_normalize_as_documented(text: str, normalized: str) -> None:
    spec = parse_calendar(text)
    assert spec.normalized() == normalized
    assert str(spec) == normalized
    assert parse_calendar(normalized).normalized() == normalized  # a fixed point


def epoch(text: str) -> int:
    """'2027-03-27 12:00:00' (UTC) as epoch seconds."""
    import calendar as gregorian

    return gregorian.timegm(time.strptime(text, "%Y-%m-%d %H:%M:%S"))


def elapses(spec: CalendarSpec, after: int, count: int) -> list[str]:
    out, at = [], after * 1_000_000
    for _ in range(count):
        found = spec.next_elapse_usec(at)
        assert found is not None and found > at
        whole, micro = divmod(found, 1_000_000)
        out.append(time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(whole)) + f".{micro:06d}")
        at = found
    return out


def test_next_elapse_is_strictly_after_and_a_float() -> None:
    spec = parse_calendar("*-*-* 06,18:00 UTC")  # apt-daily.timer's, in UTC
    base = epoch("2026-12-07 06:00:00")
    assert spec.next_elapse(base) == epoch("2026-12-07 18:00:00")
    assert spec.next_elapse(base - 0.5) == base
    assert spec.next_elapse(base + 0.25) == epoch("2026-12-07 18:00:00")


def test_a_spec_in_the_past_never_elapses() -> None:
    assert parse_calendar("2003-03-05 05:40 UTC").next_elapse(time.time()) is None
    assert parse_calendar("*-02-30").next_elapse(0) is None  # no such day, ever
    assert parse_calendar("2199-12-31 23:59:59 UTC").next_elapse(epoch("2100-01-01 00:00:00"))
    for far in (1e12, float("inf"), float("nan")):  # after 2199, or not a time: never
        assert parse_calendar("minutely").next_elapse(far) is None
    assert parse_calendar("minutely UTC").next_elapse(-5.0) == 0.0  # before the epoch


def test_every_two_seconds_and_fractions() -> None:
    base = epoch("2026-12-07 12:00:00")
    assert elapses(parse_calendar("*:*:0/2 UTC"), base, 3) == [
        "2026-12-07 12:00:02.000000",
        "2026-12-07 12:00:04.000000",
        "2026-12-07 12:00:06.000000",
    ]
    assert elapses(parse_calendar("*:*:0/0.25 UTC"), base, 3) == [
        "2026-12-07 12:00:00.250000",
        "2026-12-07 12:00:00.500000",
        "2026-12-07 12:00:00.750000",
    ]


def test_last_days_of_the_month_and_leap_days() -> None:
    base = epoch("2027-12-31 00:00:00")
    assert elapses(parse_calendar("*-02~01 UTC"), base, 2) == [  # February's last day
        "2028-02-29 00:00:00.000000",
        "2029-02-28 00:00:00.000000",
    ]
    assert elapses(parse_calendar("*-02-29 12:00 UTC"), base, 2) == [
        "2028-02-29 12:00:00.000000",
        "2032-02-29 12:00:00.000000",
    ]
    assert elapses(parse_calendar("Mon *-05~07/1 UTC"), base, 1) == [  # May's last Monday
        "2028-05-29 00:00:00.000000"
    ]


def test_a_time_in_the_spring_gap_is_skipped_that_day() -> None:
    # 2027-03-28 in Berlin: 02:00 CET -> 03:00 CEST; 02:30 does not exist that day.
    spec = parse_calendar("*-*-* 02:30 Europe/Berlin")
    assert elapses(spec, epoch("2027-03-27 12:00:00"), 2) == [
        "2027-03-29 00:30:00.000000",  # 02:30 CEST
        "2027-03-30 00:30:00.000000",
    ]


def test_the_hour_that_repeats_in_autumn_elapses_once() -> None:
    # 2026-10-25 in Berlin: 03:00 CEST -> 02:00 CET; 02:00..02:59 happen twice.
    spec = parse_calendar("*-*-* 02:30 Europe/Berlin")
    assert elapses(spec, epoch("2026-10-24 12:00:00"), 2) == [
        "2026-10-25 00:30:00.000000",  # the first 02:30 (CEST)
        "2026-10-26 01:30:00.000000",  # the next day's (CET); the second 02:30 is not one
    ]
    every_half_hour = parse_calendar("*:00/30 Europe/Berlin")
    assert elapses(every_half_hour, epoch("2026-10-25 00:50:00"), 3) == [
        "2026-10-25 02:00:00.000000",  # 03:00 CET: the repeated 02:00 and 02:30 are not
        "2026-10-25 02:30:00.000000",
        "2026-10-25 03:00:00.000000",
    ]


def test_the_local_zone_comes_from_tz(monkeypatch: pytest.MonkeyPatch) -> None:
    base = epoch("2027-01-15 12:00:00")
    daily = parse_calendar("daily")
    monkeypatch.setenv("TZ", "America/New_York")
    assert daily.next_elapse(base) == epoch("2027-01-16 05:00:00")
    monkeypatch.setenv("TZ", ":Asia/Kolkata")
    assert daily.next_elapse(base) == epoch("2027-01-15 18:30:00")
    monkeypatch.setenv("TZ", "UTC")
    assert daily.next_elapse(base) == epoch("2027-01-16 00:00:00")
    monkeypatch.setenv("TZ", "No/Such_Zone")  # what libc does too: UTC
    assert daily.next_elapse(base) == epoch("2027-01-16 00:00:00")
    # a caller that reads no environment passes the zone it resolved
    berlin = calendar.zone_named("Europe/Berlin")
    assert daily.next_elapse(base, local=berlin) == epoch("2027-01-15 23:00:00")
    assert parse_calendar("daily UTC").next_elapse(base, local=berlin) == epoch(
        "2027-01-16 00:00:00"
    )


def test_the_local_zone_abbreviation_forces_standard_or_daylight_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TZ", "Europe/Berlin")
    winter = parse_calendar("daily CET")
    assert (winter.dst, winter.normalized()) == (0, "*-*-* 00:00:00 CET")
    assert winter.next_elapse(epoch("2027-01-15 12:00:00")) == epoch("2027-01-15 23:00:00")
    assert winter.next_elapse(epoch("2026-07-15 12:00:00")) is None  # systemd: never
    monkeypatch.setenv("TZ", "UTC")
    assert parse_calendar("daily CET").timezone == "CET"  # there, a zone of its own


def test_the_spec_is_immutable_and_hashable() -> None:
    spec = parse_calendar("Mon..Fri 9..17:00")
    with pytest.raises(AttributeError):  # Frozen (and a frozen dataclass) refuse it
        spec.utc = True  # type: ignore[misc]
    assert spec == parse_calendar("Mon-Fri 09..17:00:00")
    assert len({spec, parse_calendar("Mon-Fri 09..17:00:00")}) == 1


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "empty"),
        ("  daily", "unexpected space"),
        ("fortnightly", "unknown word 'fortnightly'"),
        ("*-*-* 24:00", "hour 24 out of range 0..23"),
        ("*-13-01", "month 13 out of range"),
        ("*:59/2", "repetition never happens"),
        ("5..3:00", "backwards"),
        ("Fri..Mon", "goes backwards"),
        ("Mon..", "open weekday range"),
        ("*-*~30", "day 30 out of range 1..28"),
        ("*:*:59.9999995", "second 60 out of range"),
        ("1969-12-31", "year 1969 out of range"),
        ("daily Mars/Olympus", "unknown time zone 'Mars/Olympus'"),
        ("*/5:00", "written 0/N"),
        ("*-*-* *:*/5", "written 0/N"),
        ("12:00:00:00", "unexpected"),
        ("@", "a number is missing"),
        ("*-*-* 99999999999999999999:00", "out of range"),
        ("daily\0", "NUL"),
    ],
)
def test_invalid_expressions_say_what_is_wrong(text: str, says: str) -> None:
    with pytest.raises(CalendarError) as caught:
        parse_calendar(text)
    assert says in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_the_oncalendar_value_parser_raises_the_schema_error() -> None:
    assert parse_calendar_value("Sun *-*-* 03:10:00").normalized() == "Sun *-*-* 03:10:00"
    with pytest.raises(ValueFormError) as caught:
        parse_calendar_value("*-*-* 25:00")
    assert str(caught.value) == ("invalid calendar event '*-*-* 25:00': hour 25 out of range 0..23")


def test_a_search_that_does_not_end_gives_up_like_systemd(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # systemd stops after 1000 rounds ("Resource deadlock avoided"); three here.
    monkeypatch.setattr(calendar, "_MAX_ITERATIONS", 3)
    spec = parse_calendar("Mon *-02-29 UTC")
    assert spec.next_elapse(epoch("2026-01-01 00:00:00")) is None
    with pytest.raises(CalendarSearchError):
        spec.next_elapse_usec(epoch("2026-01-01 00:00:00") * 1_000_000, strict=True)


def test_epoch_timestamps_and_two_digit_years() -> None:
    assert parse_calendar("@1790000000").normalized() == "2026-09-21 14:13:20 UTC"
    assert parse_calendar("69-01-01").normalized() == "2069-01-01 00:00:00"
    assert parse_calendar("70-01-01").normalized() == "1970-01-01 00:00:00"


# --- any text: a spec or a CalendarError, never another exception -----------------------

CALENDAR_ALPHABET = "0123456789*-~:.,/ @MonTueFriSatdaily UTCEurope/Berlin\0é"


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=CALENDAR_ALPHABET, max_size=30))
def test_any_text_is_a_spec_or_a_calendar_error(text: str) -> None:
    try:
        spec = parse_calendar(text)
    except CalendarError:
        return
    normalized = spec.normalized()
    again = parse_calendar(normalized)  # the normalized form is itself valid ...
    assert again.normalized() == normalized  # ... and normalizes to itself
    found = spec.next_elapse_usec(epoch("2026-12-07 12:00:00") * 1_000_000)
    assert found is None or found > epoch("2026-12-07 12:00:00") * 1_000_000


# What a timer's calendar costs PID 1 (issue 17: < 2 MiB for 100 timers): the search and the
# UTC zone import nothing beyond datetime; zoneinfo only when a zone other than UTC is used.
_HEAVY = ("dataclasses", "inspect", "calendar", "locale", "zoneinfo")
_PROBE = """
import sys
from cinit.units.calendar import local_zone, parse_calendar
for text in ("daily", "Mon..Fri *-*-* 06:00", "*:*:0/2", "*-02~01 00:00 UTC"):
    parse_calendar(text).next_elapse(1.8e9)
local_zone()
print(" ".join(name for name in HEAVY if name in sys.modules))
"""


@pytest.mark.parametrize(
    ("tz", "loaded"),
    [
        ("UTC", ""),
        (":/usr/share/zoneinfo/Etc/UTC", ""),
        ("Etc/UTC", ""),
        ("Europe/Berlin", "zoneinfo"),
    ],
)
def test_the_calendar_imports_zoneinfo_only_for_a_zone_other_than_utc(tz: str, loaded: str) -> None:
    if not os.path.isfile("/usr/share/zoneinfo/Etc/UTC"):
        pytest.skip("no zone database at /usr/share/zoneinfo")
    probe = _PROBE.replace("HEAVY", repr(_HEAVY))
    env = {**os.environ, "TZ": tz}
    done = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == loaded


def test_utc_by_its_database_names_is_utc(monkeypatch: pytest.MonkeyPatch) -> None:
    if not os.path.isfile("/usr/share/zoneinfo/Etc/UTC"):
        pytest.skip("no zone database at /usr/share/zoneinfo")
    base = epoch("2027-07-15 12:00:00")
    for tz in ("Etc/UTC", ":Etc/UTC", ":/usr/share/zoneinfo/Etc/UTC", "/usr/share/zoneinfo/UTC"):
        monkeypatch.setenv("TZ", tz)
        assert calendar.local_zone() is UTC
        assert parse_calendar("daily").next_elapse(base) == epoch("2027-07-16 00:00:00")
        assert calendar.local_zone_abbreviations() == ("UTC", "UTC")
    # named in an expression, a zone is the database's (and the normalized form keeps it)
    assert parse_calendar("daily Etc/UTC").normalized() == "*-*-* 00:00:00 Etc/UTC"
