"""Plain value forms of systemd unit syntax: booleans, time spans, signals, exit statuses,
modes, outputs and unit names. Pure parsers (text in, typed value out) and renderers.

Every parser raises `ValueFormError` whose message quotes the offending value and says what
is wrong; no other exception escapes for any `str` input. Semantics follow systemd's man
pages (systemd.syntax, systemd.time, systemd.kill) and, where those are vague, systemd's own
implementation; deviations are noted per function. Command lines live in `commands`, the
environment forms in `environment`, socket addresses in `addresses`.
"""

from __future__ import annotations

import functools

from cinit.units._text import (
    ASCII_DIGITS,
    OCTAL_DIGITS,
    UNIT_NAME_CHARS,
    LazyPattern,
    check_no_nul,
    quoted,
    skip_ws,
    strip_ws,
)
from cinit.units.diagnostics import ValueFormError
from cinit.units.model import (
    ExitStatusSet,
    Output,
    OutputTarget,
)

# --- booleans -------------------------------------------------------------------------

_TRUE = frozenset({"1", "yes", "y", "true", "t", "on"})
_FALSE = frozenset({"0", "no", "n", "false", "f", "off"})


def parse_bool(text: str) -> bool:
    """`1 yes y true t on` / `0 no n false f off`, case-insensitive."""
    word = strip_ws(text).lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ValueFormError(f"invalid boolean {quoted(text)}: use yes/no, true/false, on/off or 1/0")


def render_bool(value: bool) -> str:
    """`yes` or `no`."""
    return "yes" if value else "no"


# --- time spans (systemd.time) ---------------------------------------------------------

_USEC_PER_SEC = 1_000_000
_USEC_PER_MINUTE = 60 * _USEC_PER_SEC
_USEC_PER_HOUR = 60 * _USEC_PER_MINUTE
_USEC_PER_DAY = 24 * _USEC_PER_HOUR
_USEC_PER_WEEK = 7 * _USEC_PER_DAY
_USEC_PER_MONTH = 2_629_800 * _USEC_PER_SEC  # 30.44 days, as systemd
_USEC_PER_YEAR = 31_557_600 * _USEC_PER_SEC  # 365.25 days, as systemd
_USEC_INFINITY = 2**64 - 1  # systemd's usec_t "infinity"; finite spans stay below it

# Order matters: the first prefix that matches wins ("ms" before "m", "min" before "m").
_TIME_UNITS: tuple[tuple[str, int], ...] = (
    ("seconds", _USEC_PER_SEC),
    ("second", _USEC_PER_SEC),
    ("sec", _USEC_PER_SEC),
    ("s", _USEC_PER_SEC),
    ("minutes", _USEC_PER_MINUTE),
    ("minute", _USEC_PER_MINUTE),
    ("min", _USEC_PER_MINUTE),
    ("months", _USEC_PER_MONTH),
    ("month", _USEC_PER_MONTH),
    ("M", _USEC_PER_MONTH),
    ("msec", 1000),
    ("ms", 1000),
    ("m", _USEC_PER_MINUTE),
    ("hours", _USEC_PER_HOUR),
    ("hour", _USEC_PER_HOUR),
    ("hr", _USEC_PER_HOUR),
    ("h", _USEC_PER_HOUR),
    ("days", _USEC_PER_DAY),
    ("day", _USEC_PER_DAY),
    ("d", _USEC_PER_DAY),
    ("weeks", _USEC_PER_WEEK),
    ("week", _USEC_PER_WEEK),
    ("w", _USEC_PER_WEEK),
    ("years", _USEC_PER_YEAR),
    ("year", _USEC_PER_YEAR),
    ("y", _USEC_PER_YEAR),
    ("usec", 1),
    ("us", 1),
    ("\u03bcs", 1),  # GREEK SMALL LETTER MU
    ("\u00b5s", 1),  # MICRO SIGN
)
_UNIT_WORD = LazyPattern(r"[^\s0-9.]+")
_RENDER_UNITS: tuple[tuple[str, int], ...] = (
    ("d", _USEC_PER_DAY),
    ("h", _USEC_PER_HOUR),
    ("min", _USEC_PER_MINUTE),
    ("s", _USEC_PER_SEC),
    ("ms", 1000),
    ("us", 1),
)


def _match_time_unit(text: str, pos: int) -> tuple[str, int] | None:
    for suffix, usec in _TIME_UNITS:
        if text.startswith(suffix, pos):
            return suffix, usec
    return None


def _timespan_usec(text: str) -> int:
    """Parse a time span to integer microseconds (`_USEC_INFINITY` for "infinity")."""

    def bad(why: str) -> ValueFormError:
        return ValueFormError(f"invalid time span {quoted(text)}: {why}")

    pos = skip_ws(text, 0)
    if text.startswith("infinity", pos):
        if skip_ws(text, pos + 8) != len(text):
            raise bad("nothing may follow 'infinity'")
        return _USEC_INFINITY
    total = 0
    seen_number = False
    unit_start = unit_end = -1  # where the last unit word began and ended
    while True:
        pos = skip_ws(text, pos)
        if pos == len(text):
            if not seen_number:
                raise bad("empty")
            return total
        if text[pos] == "-":
            raise bad("must not be negative")
        whole_match = ASCII_DIGITS.match(text, pos)
        assert whole_match is not None  # "[0-9]*" always matches
        whole = whole_match.group()
        end = whole_match.end()
        fraction = ""
        if end < len(text) and text[end] == ".":
            fraction_match = ASCII_DIGITS.match(text, end + 1)
            assert fraction_match is not None
            fraction = fraction_match.group()
            if not fraction:  # systemd refuses "3.", "3.s", "3. 1"
                raise bad("expected digits after '.'")
            end = fraction_match.end()
        elif not whole:
            # "5MIN" reads as 5 months then "IN": name the whole glued word
            start = unit_start if unit_end == pos else pos
            unit_word = _UNIT_WORD.match(text, start)
            if unit_word is not None and pos > 0:
                raise bad(f"unknown unit {quoted(unit_word.group())}")
            raise bad(f"expected a number at {quoted(text[pos : pos + 20])}")
        unit_pos = skip_ws(text, end)
        unit = _match_time_unit(text, unit_pos)
        if unit is not None:
            multiplier = unit[1]
            pos = unit_pos + len(unit[0])
            unit_start, unit_end = unit_pos, pos
        else:
            multiplier = _USEC_PER_SEC  # a bare number is seconds
            if unit_pos < len(text) and text[unit_pos] not in "0123456789.":
                word = _UNIT_WORD.match(text, unit_pos)
                shown = word.group() if word is not None else text[unit_pos]
                raise bad(f"unknown unit {quoted(shown)}")
            if unit_pos == end and end < len(text):  # "12.34.56"
                raise bad(f"unexpected {quoted(text[end : end + 20])}")
            pos = unit_pos
        significant = whole.lstrip("0")
        if len(significant) > 20:  # also keeps int() far from its digit limit
            raise bad("too large")
        total += int(significant or "0") * multiplier
        step = multiplier // 10
        for digit in fraction:  # systemd truncates digits finer than a microsecond
            if step == 0:
                break
            total += int(digit) * step
            step //= 10
        if total >= _USEC_INFINITY:
            raise bad("too large")
        seen_number = True


# math.inf without `math` (a shared library: ~0.4 ms to load before the first exec)
_INFINITY = float("inf")


@functools.lru_cache(maxsize=256)  # unit files repeat the same few spans
def parse_timespan(text: str) -> float:
    """A systemd time span in seconds; `infinity` is `math.inf`.

    Units: us usec µs, ms msec, s sec second(s), m min minute(s), h hr hour(s), d day(s),
    w week(s), M month(s) (30.44 d), y year(s) (365.25 d); a bare number is seconds. Parts
    add up and may touch or be spaced: "1min 30s", "1min30s", "2 h", "2.5s", "5 5" (10 s).
    Precision is one microsecond (finer digits are dropped, as systemd does). Empty,
    negative and over-large (>= 2**64 µs) spans are errors; units are case-sensitive.
    """
    usec = _timespan_usec(text)
    if usec == _USEC_INFINITY:
        return _INFINITY
    return usec / _USEC_PER_SEC


def _seconds_to_usec(seconds: float) -> int:
    """The microsecond count whose float seconds value is `seconds` (nearest otherwise)."""
    numerator, denominator = seconds.as_integer_ratio()
    # Exact round-half-up of numerator * 1e6 / denominator, in integers.
    usec = (2 * numerator * _USEC_PER_SEC + denominator) // (2 * denominator)
    for candidate in (usec, usec - 1, usec + 1, _USEC_INFINITY - 1):
        if 0 <= candidate < _USEC_INFINITY and candidate / _USEC_PER_SEC == seconds:
            return candidate
    if usec >= _USEC_INFINITY:
        raise ValueFormError(f"invalid time span {seconds!r}: too large")
    return usec


def render_timespan(seconds: float) -> str:
    """Canonical text for a span: "infinity", "0" or parts like "1d 2h 1min 30s 500ms 7us".

    `parse_timespan(render_timespan(x)) == x` for every `x` that `parse_timespan` returns.
    Negative or NaN spans raise `ValueFormError`.
    """
    if seconds != seconds or seconds < 0:  # NaN is the one value unequal to itself
        raise ValueFormError(f"invalid time span {seconds!r}: must be a non-negative number")
    if seconds == _INFINITY:
        return "infinity"
    usec = _seconds_to_usec(float(seconds))  # raises when too large for systemd
    if usec == 0:
        return "0"
    parts: list[str] = []
    for suffix, size in _RENDER_UNITS:
        count, usec = divmod(usec, size)
        if count:
            parts.append(f"{count}{suffix}")
    return " ".join(parts)


# --- signals and exit statuses ------------------------------------------------------------


def _signal_number(text: str) -> int | None:
    """systemd's signal_from_string(): a number 1..NSIG-1, NAME, SIGNAME, RTMIN+n, RTMAX-n."""
    import signal  # lazy: importing it builds an enum (~1 ms)

    if text.isascii() and text.isdigit():
        number = int(text) if len(text) < 6 else 0
        return number if 0 < number < signal.NSIG else None
    name = text[3:] if text.startswith("SIG") else text
    member = signal.Signals.__members__.get("SIG" + name)
    if member is not None:
        return int(member.value)
    rt_min, rt_max = signal.SIGRTMIN, signal.SIGRTMAX
    for base, sign, anchor in (("RTMIN", "+", rt_min), ("RTMAX", "-", rt_max)):
        if name.startswith(base):
            rest = name[len(base) :]
            if not rest:
                return int(anchor)
            offset = rest[1:]
            if rest[0] != sign or not (offset.isascii() and offset.isdigit()) or len(offset) > 3:
                return None
            value = int(offset)
            if value > rt_max - rt_min:
                return None
            return int(anchor) + value if sign == "+" else int(anchor) - value
    return None


def parse_signal(text: str) -> int:
    """A signal as systemd writes it: `SIGTERM`, `TERM`, `15`, `SIGRTMIN+3`, `RTMAX-1`.

    Names are upper case as in systemd (`sigterm` is an error); numbers are 1..NSIG-1.
    """
    word = strip_ws(text)
    number = _signal_number(word)
    if number is None:
        hint = " (signal names are upper case)" if word.upper() != word else ""
        raise ValueFormError(f"invalid signal {quoted(text)}: not a signal name or number{hint}")
    return number


# Termination status names systemd accepts (LSB init-script codes and BSD sysexits.h).
_EXIT_STATUS_NAMES = {
    "SUCCESS": 0,
    "FAILURE": 1,
    "INVALIDARGUMENT": 2,
    "NOTIMPLEMENTED": 3,
    "NOPERMISSION": 4,
    "NOTINSTALLED": 5,
    "NOTCONFIGURED": 6,
    "NOTRUNNING": 7,
    "USAGE": 64,
    "DATAERR": 65,
    "NOINPUT": 66,
    "NOUSER": 67,
    "NOHOST": 68,
    "UNAVAILABLE": 69,
    "SOFTWARE": 70,
    "OSERR": 71,
    "OSFILE": 72,
    "CANTCREAT": 73,
    "IOERR": 74,
    "TEMPFAIL": 75,
    "PROTOCOL": 76,
    "NOPERM": 77,
    "CONFIG": 78,
}


def parse_exit_status_set(text: str) -> ExitStatusSet:
    """SuccessExitStatus=: whitespace-separated exit codes 0..255, status names (`TEMPFAIL`,
    `NOTINSTALLED`...) and signals (`SIGHUP`, `HUP`). Numbers are always exit codes.
    """
    codes: set[int] = set()
    signals: set[int] = set()
    for word in text.split():
        if word.isascii() and word.isdigit():
            code = int(word) if len(word) < 6 else 256
            if code > 255:
                raise ValueFormError(
                    f"invalid exit status {quoted(word)} in {quoted(text)}: must be 0..255"
                )
            codes.add(code)
        elif word in _EXIT_STATUS_NAMES:
            codes.add(_EXIT_STATUS_NAMES[word])
        else:
            number = _signal_number(word)
            if number is None:
                raise ValueFormError(
                    f"invalid exit status {quoted(word)} in {quoted(text)}: "
                    "not an exit code 0..255, exit status name or signal name"
                )
            signals.add(number)
    return ExitStatusSet(codes=frozenset(codes), signals=frozenset(signals))


# --- modes, outputs, unit names -------------------------------------------------------------


def parse_octal_mode(text: str) -> int:
    """A file mode in octal digits (`0666`, `666`, `1777`), 0..07777; no `0o` prefix."""
    word = strip_ws(text)
    if not word or not all(char in OCTAL_DIGITS for char in word):
        raise ValueFormError(f"invalid file mode {quoted(text)}: expected octal digits like 0660")
    significant = word.lstrip("0")
    # Counted before int(): a long digit run is too large, however many digits it has.
    if len(significant) > 4 or int(significant or "0", 8) > 0o7777:
        raise ValueFormError(f"invalid file mode {quoted(text)}: larger than 07777")
    return int(significant or "0", 8)


def parse_output(text: str) -> Output:
    """StandardOutput=/StandardError=: `inherit`, `null`, `file:/abs/path`, `append:/abs/path`."""
    word = strip_ws(text)
    if word == "inherit":
        return Output(OutputTarget.INHERIT)
    if word == "null":
        return Output(OutputTarget.NULL)
    kind, colon, path = word.partition(":")
    if colon and kind in ("file", "append"):
        if not path.startswith("/"):
            raise ValueFormError(f"invalid output {quoted(text)}: {kind}: needs an absolute path")
        check_no_nul(word, "output")
        target = OutputTarget.FILE if kind == "file" else OutputTarget.APPEND
        return Output(target, path)
    raise ValueFormError(
        f"unsupported output {quoted(text)}: use inherit, null, file:/path or append:/path"
    )


# Every unit type systemd has: a reference to one cinit does not load (tmp.mount in
# basic.target's After=) is a unit that is not there, not a malformed name.
_UNIT_TYPES = "service|socket|target|timer|path|mount|automount|swap|slice|scope|device"
_UNIT_TYPE_SET = frozenset(_UNIT_TYPES.split("|"))
_UNIT_REF_CHARS = UNIT_NAME_CHARS | {"@"}


def _is_unit_name(name: str) -> bool:
    """`[A-Za-z0-9:_.\\@-]+\\.(TYPE)`, a unit type of _UNIT_TYPES (string tests: no `re`)."""
    stem, _, kind = name.rpartition(".")  # a type has no dot: its own is the last one
    return bool(stem) and kind in _UNIT_TYPE_SET and _UNIT_REF_CHARS.issuperset(stem)


_UNIT_NAME_MAX = 255


def parse_unit_names(text: str) -> list[str]:
    """A list of unit names (After=, Requires=, WantedBy=...), separated by whitespace.

    Each must be made of `[A-Za-z0-9:_.\\@-]` and end in a unit type's suffix (`.service`,
    `.socket`, `.target`, `.mount`, `.timer`, ...: systemd's, see `_UNIT_TYPES`).
    """
    names = text.split()
    for name in names:
        if not _is_unit_name(name) or len(name) > _UNIT_NAME_MAX:
            raise ValueFormError(
                f"invalid unit name {quoted(name)} in {quoted(text)}: expected NAME.service, "
                "NAME.socket, NAME.target (or another unit type) made of letters, digits "
                "and :_.\\@-"
            )
    return names
