"""Value forms of systemd unit syntax: pure parsers (text in, typed value out) and renderers.

Every parser raises `ValueFormError` whose message quotes the offending value and says what
is wrong; no other exception escapes for any `str` input. Semantics follow systemd's man
pages (systemd.syntax, systemd.time, systemd.service "Command lines", systemd.exec
Environment=/EnvironmentFile=, systemd.unit specifiers, systemd.socket ListenStream=) and,
where those are vague, systemd's own implementation; deviations are noted per function.

Nothing here touches the OS except `read_env_file`. Import cost matters (`cinit validate`
must start fast): stdlib only, and `_socket`/`signal` are imported lazily.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

from cinit.units.diagnostics import ValueFormError
from cinit.units.model import (
    ExecCommand,
    ExitStatusSet,
    ListenAddress,
    ListenKind,
    Output,
    OutputTarget,
)

__all__ = [
    "expand_exec_words",
    "expand_specifiers",
    "expand_vars",
    "parse_bool",
    "parse_env_file",
    "parse_environment",
    "parse_exec_line",
    "parse_exit_status_set",
    "parse_listen_address",
    "parse_octal_mode",
    "parse_output",
    "parse_proxy_target",
    "parse_signal",
    "parse_timespan",
    "parse_unit_names",
    "read_env_file",
    "render_bool",
    "render_environment",
    "render_exec_line",
    "render_timespan",
    "split_words",
]

# systemd's WHITESPACE: the only characters that separate words (not Python's str.isspace()).
_WHITESPACE = " \t\n\r"
_NEWLINE = "\n\r"
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ASCII_DIGITS = re.compile(r"[0-9]*")


def _q(text: str) -> str:
    """Quote a value for a message: control characters made visible, very long values cut."""
    if len(text) > 160:
        text = text[:160] + "..."
    shown = "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)
    return f"'{shown}'"


def _strip(text: str) -> str:
    return text.strip(_WHITESPACE)


# --- booleans -------------------------------------------------------------------------

_TRUE = frozenset({"1", "yes", "y", "true", "t", "on"})
_FALSE = frozenset({"0", "no", "n", "false", "f", "off"})


def parse_bool(text: str) -> bool:
    """`1 yes y true t on` / `0 no n false f off`, case-insensitive."""
    word = _strip(text).lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ValueFormError(f"invalid boolean {_q(text)}: use yes/no, true/false, on/off or 1/0")


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
_UNIT_WORD = re.compile(r"[^\s0-9.]+")
_RENDER_UNITS: tuple[tuple[str, int], ...] = (
    ("d", _USEC_PER_DAY),
    ("h", _USEC_PER_HOUR),
    ("min", _USEC_PER_MINUTE),
    ("s", _USEC_PER_SEC),
    ("ms", 1000),
    ("us", 1),
)


def _skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in _WHITESPACE:
        pos += 1
    return pos


def _match_time_unit(text: str, pos: int) -> tuple[str, int] | None:
    for suffix, usec in _TIME_UNITS:
        if text.startswith(suffix, pos):
            return suffix, usec
    return None


def _timespan_usec(text: str) -> int:
    """Parse a time span to integer microseconds (`_USEC_INFINITY` for "infinity")."""

    def bad(why: str) -> ValueFormError:
        return ValueFormError(f"invalid time span {_q(text)}: {why}")

    pos = _skip_ws(text, 0)
    if text.startswith("infinity", pos):
        if _skip_ws(text, pos + 8) != len(text):
            raise bad("nothing may follow 'infinity'")
        return _USEC_INFINITY
    total = 0
    seen_number = False
    unit_start = unit_end = -1  # where the last unit word began and ended
    while True:
        pos = _skip_ws(text, pos)
        if pos == len(text):
            if not seen_number:
                raise bad("empty")
            return total
        if text[pos] == "-":
            raise bad("must not be negative")
        whole_match = _ASCII_DIGITS.match(text, pos)
        assert whole_match is not None  # "[0-9]*" always matches
        whole = whole_match.group()
        end = whole_match.end()
        fraction = ""
        if end < len(text) and text[end] == ".":
            fraction_match = _ASCII_DIGITS.match(text, end + 1)
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
                raise bad(f"unknown unit {_q(unit_word.group())}")
            raise bad(f"expected a number at {_q(text[pos : pos + 20])}")
        unit_pos = _skip_ws(text, end)
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
                raise bad(f"unknown unit {_q(shown)}")
            if unit_pos == end and end < len(text):  # "12.34.56"
                raise bad(f"unexpected {_q(text[end : end + 20])}")
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
        return math.inf
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
    if math.isnan(seconds) or seconds < 0:
        raise ValueFormError(f"invalid time span {seconds!r}: must be a non-negative number")
    if math.isinf(seconds):
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


# --- word splitting with quotes and C escapes (systemd's extract_first_word) -----------

_SIMPLE_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
    '"': '"',
    "'": "'",
    "s": " ",
}
_HEX = frozenset("0123456789abcdefABCDEF")
_OCT = frozenset("01234567")


def _unescape_one(text: str, pos: int) -> tuple[str | int, int] | None:
    """Decode the C escape whose letter is at `pos` (just after the backslash).

    Returns (a character, or an int for a raw byte from \\xNN / \\NNN, and the number of
    characters consumed), or None when it is not a valid escape. NUL is never valid.
    """
    letter = text[pos]
    simple = _SIMPLE_ESCAPES.get(letter)
    if simple is not None:
        return simple, 1
    if letter == "x":
        digits = text[pos + 1 : pos + 3]
        if len(digits) == 2 and all(d in _HEX for d in digits):
            byte = int(digits, 16)
            return (byte, 3) if byte else None
        return None
    if letter in ("u", "U"):
        width = 4 if letter == "u" else 8
        digits = text[pos + 1 : pos + 1 + width]
        if len(digits) != width or not all(d in _HEX for d in digits):
            return None
        code = int(digits, 16)
        if code == 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
            return None
        if letter == "U" and (0xFDD0 <= code <= 0xFDEF or code & 0xFFFE == 0xFFFE):
            return None  # systemd's unichar_is_valid() refuses non-characters
        return chr(code), 1 + width
    if letter in _OCT:
        digits = text[pos : pos + 3]
        if len(digits) == 3 and all(d in _OCT for d in digits):
            byte = int(digits, 8)
            return (byte, 3) if 0 < byte <= 255 else None
        return None
    return None


class _WordBuilder:
    """Accumulates one word; raw bytes from \\xNN/\\NNN escapes are decoded as UTF-8 runs.

    Undecodable bytes become surrogate escapes, so `os.fsencode` gives back the exact bytes.
    """

    __slots__ = ("_bytes", "_parts")

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._bytes = bytearray()

    def _flush(self) -> None:
        if self._bytes:
            self._parts.append(self._bytes.decode("utf-8", "surrogateescape"))
            self._bytes.clear()

    def add(self, text: str) -> None:
        self._flush()
        self._parts.append(text)

    def add_byte(self, byte: int) -> None:
        self._bytes.append(byte)

    def value(self) -> str:
        self._flush()
        return "".join(self._parts)


def _tokenize(
    text: str,
    *,
    cunescape: bool,
    relax: bool,
    what: str,
    lenient_escapes: bool = False,
    warnings: list[str] | None = None,
    exec_semicolons: bool = False,
) -> list[tuple[str, str]]:
    """Split `text` into (word, raw token text) pairs, like systemd's extract_first_word.

    Quotes (single or double, equivalent) may open anywhere in a word and are removed;
    a backslash escapes the next character inside and outside quotes. With `cunescape`,
    C escapes are decoded; with `lenient_escapes` an unknown escape or a trailing
    backslash is kept verbatim and reported in `warnings` (systemd's retry with
    EXTRACT_CUNESCAPE_RELAX), otherwise it is an error. With `relax`, an unterminated
    quote or a trailing backslash just ends the word (EXTRACT_RELAX). `exec_semicolons`
    makes a bare `\\;` token the word ";" (systemd's special case in Exec lines).
    """
    tokens: list[tuple[str, str]] = []
    length = len(text)
    pos = 0
    while True:
        pos = _skip_ws(text, pos)
        if pos >= length:
            return tokens
        start = pos
        if (
            exec_semicolons
            and text.startswith("\\;", pos)
            and (pos + 2 == length or text[pos + 2] in _WHITESPACE)
        ):
            tokens.append((";", "\\;"))
            pos += 2
            continue
        word = _WordBuilder()
        quote = ""
        while pos < length:
            char = text[pos]
            if not quote and char in _WHITESPACE:
                break
            if char == quote:
                quote = ""
                pos += 1
            elif not quote and char in "'\"":
                quote = char
                pos += 1
            elif char == "\\":
                pos = _take_escape(
                    text, pos + 1, word, quote, cunescape, relax, what, lenient_escapes, warnings
                )
            else:
                word.add(char)
                pos += 1
        if quote and not relax:
            raise ValueFormError(f"invalid {what} {_q(text)}: unterminated {quote} quote")
        tokens.append((word.value(), text[start:pos]))


def _take_escape(
    text: str,
    pos: int,
    word: _WordBuilder,
    quote: str,
    cunescape: bool,
    relax: bool,
    what: str,
    lenient: bool,
    warnings: list[str] | None,
) -> int:
    """Handle the character(s) after a backslash at `pos`; return the next position."""
    if pos >= len(text):
        if lenient and cunescape and not quote:
            if warnings is not None:
                warnings.append(f"trailing backslash in {_q(text)} kept as is")
            word.add("\\")
            return pos
        if relax:
            return pos
        where = f"unterminated {quote} quote" if quote else "trailing backslash"
        raise ValueFormError(f"invalid {what} {_q(text)}: {where}")
    if not cunescape:
        word.add(text[pos])
        return pos + 1
    decoded = _unescape_one(text, pos)
    if decoded is None:
        escape = "\\" + text[pos]
        if not lenient:
            raise ValueFormError(f"invalid {what} {_q(text)}: unknown escape sequence {_q(escape)}")
        if warnings is not None:
            warnings.append(f"unknown escape sequence {_q(escape)} in {_q(text)} kept as is")
        word.add(escape)
        return pos + 1
    value, consumed = decoded
    if isinstance(value, int):
        word.add_byte(value)
    else:
        word.add(value)
    return pos + consumed


def _check_no_nul(text: str, what: str) -> None:
    if "\0" in text:
        raise ValueFormError(f"invalid {what} {_q(text)}: contains a NUL character")


def split_words(text: str, *, warnings: list[str] | None = None) -> list[str]:
    """Split a value into words with systemd quoting and C escapes.

    Single and double quotes behave alike and may open anywhere in a word (`--a="b c"` is
    one word `--a=b c`), as systemd's implementation does; `""` is an empty word. Escapes:
    \\a \\b \\f \\n \\r \\t \\v \\\\ \\" \\' \\s (space) \\xNN \\NNN (octal) \\uXXXX \\UXXXXXXXX;
    bytes from \\xNN/\\NNN are decoded as UTF-8 (invalid bytes become surrogate escapes).
    An unterminated quote or a NUL character is an error. An unknown escape (such as
    `\\d`) or a trailing backslash outside quotes is kept verbatim, as systemd does; if a
    `warnings` list is given, one message per such escape is appended to it (systemd logs
    "Ignoring unknown escape sequences").
    """
    _check_no_nul(text, "value")
    tokens = _tokenize(
        text, cunescape=True, relax=False, what="value", lenient_escapes=True, warnings=warnings
    )
    return [word for word, _raw in tokens]


# --- Exec lines (systemd.service "Command lines") --------------------------------------

_SEPARATOR_ERROR = "';' command separator is not supported, use several ExecStart= lines"
_UNSAFE_PATH_CHARS = frozenset("\"'\\\x7f") | frozenset(chr(c) for c in range(1, 32))
_PATH_MAX = 4096
_NAME_MAX = 255


def _fs_length(text: str) -> int:
    """Length in bytes once encoded for the file system (surrogate escapes are bytes)."""
    try:
        return len(text.encode("utf-8", "surrogateescape"))
    except UnicodeEncodeError:  # a lone surrogate that is not an escaped byte
        return len(text.encode("utf-8", "surrogatepass"))


def _check_exec_path(path: str, text: str) -> None:
    def bad(why: str) -> ValueFormError:
        return ValueFormError(f"invalid command line {_q(text)}: {why}")

    if not path:
        raise bad("empty executable path")
    if any(char in _UNSAFE_PATH_CHARS for char in path):
        raise bad(f"executable path {_q(path)} contains quotes, backslashes or control characters")
    if path.endswith("/"):
        raise bad(f"executable path {_q(path)} is a directory")
    if path.startswith("/"):
        too_long = _fs_length(path) >= _PATH_MAX or any(
            _fs_length(part) > _NAME_MAX for part in path.split("/")
        )
        if too_long:
            raise bad(f"executable path {_q(path)} is too long")
        return
    if "/" in path:
        raise bad(
            f"executable {_q(path)} is a relative path; use an absolute path "
            "or a plain program name looked up in PATH"
        )
    if path in (".", "..") or _fs_length(path) > _NAME_MAX:
        raise bad(f"invalid executable name {_q(path)}")


def parse_exec_line(text: str, *, warnings: list[str] | None = None) -> ExecCommand:
    """An Exec*= value: prefixes, then words split as `split_words` does.

    Prefixes `-` (failure ignored), `@` (argv[0] given as the second word), `:` (no
    environment expansion) and one privilege prefix `+`, `!` or `!!` may come in any order,
    each once, before the path (they are read from the unquoted first word, as systemd
    does). The path must be absolute or a plain program name (looked up in PATH at start).
    `$VAR`/`${VAR}` stay verbatim in the words (see `expand_exec_words`). An unquoted `;`
    word (systemd's old command separator) is an error; `\\;` or a quoted `";"` is a
    literal ";" argument. Unknown escapes are kept verbatim and reported in `warnings` if
    given (see `split_words`).
    """
    _check_no_nul(text, "command line")
    tokens = _tokenize(
        text,
        cunescape=True,
        relax=False,
        what="command line",
        lenient_escapes=True,
        warnings=warnings,
        exec_semicolons=True,
    )
    if not tokens:
        raise ValueFormError(f"invalid command line {_q(text)}: empty command")
    if any(raw == ";" for _word, raw in tokens) or tokens[0][0] == ";":
        raise ValueFormError(f"invalid command line {_q(text)}: {_SEPARATOR_ERROR}")
    first = tokens[0][0]
    ignore_failure = argv0_separate = no_env_expansion = False
    privilege = ""
    pos = 0
    while pos < len(first):
        char = first[pos]
        if char == "-" and not ignore_failure:
            ignore_failure = True
        elif char == "@" and not argv0_separate:
            argv0_separate = True
        elif char == ":" and not no_env_expansion:
            no_env_expansion = True
        elif char == "+" and not privilege:
            privilege = "+"
        elif char == "!" and privilege in ("", "!"):
            privilege += "!"
        else:
            break
        pos += 1
    path = first[pos:]
    _check_exec_path(path, text)
    words = (path, *(word for word, _raw in tokens[1:]))
    if argv0_separate and len(words) < 2:
        raise ValueFormError(
            f"invalid command line {_q(text)}: '@' needs argv[0] as the word after the path"
        )
    return ExecCommand(
        words=words,
        ignore_failure=ignore_failure,
        argv0_separate=argv0_separate,
        no_env_expansion=no_env_expansion,
        privilege_prefix=privilege,
    )


_PLAIN_WORD = re.compile(r"[^\s'\"\\\x00-\x1f\x7f]+")
_RENDER_ESCAPES = {
    "\\": "\\\\",
    '"': '\\"',
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
}


def _quote_word(word: str) -> str:
    """One word as systemd-quoted text that splits back to exactly `word`."""
    if word != ";" and _PLAIN_WORD.fullmatch(word):
        return word
    out = ['"']
    for char in word:
        escaped = _RENDER_ESCAPES.get(char)
        if escaped is not None:
            out.append(escaped)
        elif char < " " or char == "\x7f":
            out.append(f"\\x{ord(char):02x}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def render_exec_line(cmd: ExecCommand) -> str:
    """Exec*= text such that `parse_exec_line(render_exec_line(cmd)) == cmd`.

    `%` is not escaped (specifier expansion is a separate step). A command that no text
    can express (a NUL in a word, an invalid path) raises `ValueFormError`.
    """
    if not cmd.words:
        raise ValueFormError("cannot render an empty command")
    for word in cmd.words:
        _check_no_nul(word, "command word")
    prefix = (
        ("-" if cmd.ignore_failure else "")
        + ("@" if cmd.argv0_separate else "")
        + (":" if cmd.no_env_expansion else "")
        + cmd.privilege_prefix
    )
    text = " ".join([_quote_word(prefix + cmd.path), *map(_quote_word, cmd.words[1:])])
    if parse_exec_line(text) != cmd:
        raise ValueFormError(f"cannot render command {list(cmd.words)!r} as an Exec line")
    return text


def _braced_expand(word: str, env: Mapping[str, str]) -> str:
    """systemd's replace_env(): `${NAME}` -> value (unset: empty), `$$` -> `$`.

    `${NAME:...}` and an unterminated `${` stay verbatim; `$NAME` without braces is left.
    """
    out: list[str] = []
    pos = 0
    length = len(word)
    while True:
        dollar = word.find("$", pos)
        if dollar < 0 or dollar + 1 >= length:
            out.append(word[pos:])
            return "".join(out)
        following = word[dollar + 1]
        if following == "$":
            out.append(word[pos : dollar + 1])
            pos = dollar + 2
        elif following == "{":
            end = dollar + 2
            while end < length and word[end] not in ":}":
                end += 1
            if end < length and word[end] == "}":
                out.append(word[pos:dollar])
                out.append(env.get(word[dollar + 2 : end], ""))
                pos = end + 1
            else:  # "${A:-x}" is not supported in Exec lines, "${A" is unterminated: literal
                out.append(word[pos:end])
                pos = end
        else:
            out.append(word[pos : dollar + 1])
            pos = dollar + 1


def expand_exec_words(cmd: ExecCommand, env: Mapping[str, str]) -> list[str]:
    """Expand the unit's environment into an Exec line at start time, as systemd does.

    A word that is `$NAME` as a whole becomes the value split into 0..n words (on
    whitespace, honouring quotes in the value); `${NAME}` anywhere in a word becomes the
    exact value (never splits); `$$` becomes `$`; unset variables expand to nothing. As in
    systemd, a whole word `$` followed by an invalid name (`$`, `$1`, `$A.b`) yields no word.
    With `cmd.no_env_expansion` (":" prefix) nothing is expanded.

    The result's first element is always `cmd.path`, never expanded (systemd executes the
    literal path). Without "@" the whole list is the argv (argv[0] == path); with "@"
    (`cmd.argv0_separate`) the result is `[path, argv0, *args]`: execute `result[0]` with
    argv `result[1:]`.
    """
    if cmd.no_env_expansion:
        return list(cmd.words)
    result = [cmd.words[0]]
    for word in cmd.words[1:]:
        if word.startswith("$") and word[1:2] not in ("{", "$"):
            name = word[1:]
            value = env.get(name) if _ENV_NAME.fullmatch(name) else None
            if value is not None:
                tokens = _tokenize(value, cunescape=False, relax=True, what="value")
                result.extend(token for token, _raw in tokens)
            continue
        result.append(_braced_expand(word, env))
    return result


# --- Environment= -------------------------------------------------------------------------


def parse_environment(text: str) -> list[tuple[str, str]]:
    """An Environment= value: words (systemd quoting and C escapes), each `NAME=VALUE`.

    `"A=1 2" B=3` gives `[("A", "1 2"), ("B", "3")]`. NAME must match
    `[A-Za-z_][A-Za-z0-9_]*`. Every assignment is returned in order, duplicates included
    (the last one wins when applied). Unknown escapes are errors here, as in systemd.
    """
    _check_no_nul(text, "environment assignment")
    pairs: list[tuple[str, str]] = []
    for word, _raw in _tokenize(text, cunescape=True, relax=False, what="environment value"):
        name, equals, value = word.partition("=")
        if not equals:
            raise ValueFormError(
                f"invalid environment assignment {_q(word)} in {_q(text)}: expected NAME=VALUE"
            )
        if not _ENV_NAME.fullmatch(name):
            raise ValueFormError(
                f"invalid environment variable name {_q(name)} in {_q(text)}: "
                "use letters, digits and '_', not starting with a digit"
            )
        pairs.append((name, value))
    return pairs


def render_environment(pairs: Sequence[tuple[str, str]]) -> str:
    """Environment= text such that `parse_environment(render_environment(p)) == list(p)`."""
    words: list[str] = []
    for name, value in pairs:
        if not _ENV_NAME.fullmatch(name):
            raise ValueFormError(f"invalid environment variable name {_q(name)}")
        _check_no_nul(value, "environment value")
        words.append(_quote_word(f"{name}={value}"))
    return " ".join(words)


# --- EnvironmentFile= contents (systemd's load_env_file) ----------------------------------

# The states of the env-file reader (one per kind of character it may be in the middle of).
_PRE_KEY, _KEY, _PRE_VALUE, _VALUE, _VALUE_ESCAPE = range(5)
_SINGLE_QUOTED, _DOUBLE_QUOTED, _DOUBLE_QUOTED_ESCAPE, _COMMENT, _COMMENT_ESCAPE = range(5, 10)
_SHELL_ESCAPABLE = '"\\`$'


def parse_env_file(text: str, *, warnings: list[str] | None = None) -> list[tuple[str, str]]:
    """The assignments of an EnvironmentFile=, following systemd's env-file reader.

    - Lines `KEY=VALUE`; whitespace around KEY and after `=` is ignored; `\\n` and `\\r`
      end lines. Lines starting with `#` or `;` (after blanks) are comments.
    - Unquoted values: trailing whitespace is dropped, a backslash takes the next character
      literally, and a backslash at the end of a line joins the next line.
    - `'...'` is literal and may span lines; `"..."` may span lines and there a backslash
      escapes `"` `\\` `` ` `` `$` and newline (others keep their backslash). Quoted and
      unquoted pieces right after `=` join: `A="x"y` is `xy`.
    - Lines without `=` and invalid names (such as `export FOO=1`, which systemd does not
      support) are skipped, with one message each appended to `warnings` if given.
    - A key set twice keeps its first position and takes the last value.

    Only an unterminated quote raises `ValueFormError` (systemd silently takes the rest of
    the file as the value; cinit reports it instead).
    """
    result: dict[str, str] = {}
    state = _PRE_KEY
    key: list[str] = []
    value: list[str] = []
    key_blank_from = -1  # index in `key` where its trailing blanks start (-1: none)
    value_blank_from = -1
    line = 1
    entry_line = 1

    def note(message: str) -> None:
        if warnings is not None:
            warnings.append(f"line {entry_line}: {message}")

    def finish(strip_value: bool) -> None:
        name = "".join(key[:key_blank_from] if key_blank_from >= 0 else key)
        cut = value[:value_blank_from] if strip_value and value_blank_from >= 0 else value
        if not _ENV_NAME.fullmatch(name):
            hint = " ('export' is not supported)" if name.startswith("export ") else ""
            note(f"invalid variable name {_q(name)}{hint}; line ignored")
            return
        result[name] = "".join(cut)

    for char in text:
        if state == _PRE_KEY:
            if char in "#;":
                state = _COMMENT
            elif char not in _WHITESPACE:
                state = _KEY
                key = [char]
                key_blank_from = -1
                entry_line = line
        elif state == _KEY:
            if char in _NEWLINE:
                note(f"{_q(''.join(key).strip())} has no '='; line ignored")
                state = _PRE_KEY
            elif char == "=":
                state = _PRE_VALUE
                value = []
                value_blank_from = -1
            else:
                if char not in _WHITESPACE:
                    key_blank_from = -1
                elif key_blank_from < 0:
                    key_blank_from = len(key)
                key.append(char)
        elif state == _PRE_VALUE:
            if char in _NEWLINE:
                finish(strip_value=False)
                state = _PRE_KEY
            elif char == "'":
                state = _SINGLE_QUOTED
            elif char == '"':
                state = _DOUBLE_QUOTED
            elif char == "\\":
                state = _VALUE_ESCAPE
            elif char not in _WHITESPACE:
                state = _VALUE
                value.append(char)
        elif state == _VALUE:
            if char in _NEWLINE:
                finish(strip_value=True)
                state = _PRE_KEY
            elif char == "\\":
                state = _VALUE_ESCAPE
                value_blank_from = -1
            else:
                if char not in _WHITESPACE:
                    value_blank_from = -1
                elif value_blank_from < 0:
                    value_blank_from = len(value)
                value.append(char)
        elif state == _VALUE_ESCAPE:
            state = _VALUE
            if char not in _NEWLINE:  # an escaped newline joins the next line
                value.append(char)
        elif state == _SINGLE_QUOTED:
            if char == "'":
                state = _PRE_VALUE
            else:
                value.append(char)
        elif state == _DOUBLE_QUOTED:
            if char == '"':
                state = _PRE_VALUE
            elif char == "\\":
                state = _DOUBLE_QUOTED_ESCAPE
            else:
                value.append(char)
        elif state == _DOUBLE_QUOTED_ESCAPE:
            state = _DOUBLE_QUOTED
            if char in _SHELL_ESCAPABLE:
                value.append(char)
            elif char != "\n":
                value.append("\\" + char)
        elif state == _COMMENT:
            if char == "\\":
                state = _COMMENT_ESCAPE
            elif char in _NEWLINE:
                state = _PRE_KEY
        else:  # _COMMENT_ESCAPE: since systemd v254 a comment never continues a line
            state = _PRE_KEY if char in _NEWLINE else _COMMENT
        if char == "\n":
            line += 1

    if state in (_SINGLE_QUOTED, _DOUBLE_QUOTED, _DOUBLE_QUOTED_ESCAPE):
        name = "".join(key).strip(_WHITESPACE)
        kind = "single" if state == _SINGLE_QUOTED else "double"
        raise ValueFormError(
            f"unterminated {kind} quote in the value of {_q(name)} (line {entry_line})"
        )
    if state in (_PRE_VALUE, _VALUE, _VALUE_ESCAPE):
        finish(strip_value=state == _VALUE)
    elif state == _KEY:
        note(f"{_q(''.join(key).strip())} has no '='; line ignored")
    return list(result.items())


def read_env_file(path: str, *, warnings: list[str] | None = None) -> list[tuple[str, str]]:
    """Read and parse an environment file (see `parse_env_file`).

    `OSError` propagates unchanged (the caller knows whether the file was optional).
    Bytes that are not UTF-8 become surrogate escapes and reach the process unchanged.
    """
    with open(path, "rb") as handle:
        data = handle.read()
    return parse_env_file(data.decode("utf-8", "surrogateescape"), warnings=warnings)


# --- specifiers and ${VAR} ------------------------------------------------------------------


def expand_specifiers(text: str, unit_name: str, hostname: str) -> tuple[str, list[str]]:
    """Expand `%n` (unit name), `%N` (name without suffix), `%H` (hostname) and `%%`.

    Any other `%X`, and a lone `%` at the end, are left as they are; the returned list
    holds one warning message per such occurrence.
    """
    if "%" not in text:
        return text, []
    stem = unit_name.rsplit(".", 1)[0]
    table = {"n": unit_name, "N": stem, "H": hostname, "%": "%"}
    out: list[str] = []
    warnings: list[str] = []
    pos = 0
    while True:
        percent = text.find("%", pos)
        if percent < 0:
            out.append(text[pos:])
            return "".join(out), warnings
        out.append(text[pos:percent])
        if percent + 1 >= len(text):
            warnings.append("lone '%' at the end of the value left as is (write %% for a '%')")
            out.append("%")
            return "".join(out), warnings
        letter = text[percent + 1]
        replacement = table.get(letter)
        if replacement is None:
            warnings.append(f"unsupported specifier {_q('%' + letter)} left as is")
            replacement = "%" + letter
        out.append(replacement)
        pos = percent + 2


def expand_vars(text: str, environ: Mapping[str, str]) -> str:
    """Expand `${VAR}` and `${VAR:-default}` against `environ` (container-init extension).

    `${VAR}` is the value, or "" when unset. `${VAR:-default}` is the value when set and
    non-empty, else `default`, taken literally (it may be empty or hold spaces, but no `}`;
    it is not expanded again). `$VAR` without braces is left alone, and `$$` is kept
    verbatim as `$$` (so `$${VAR}` is not expanded). An unterminated `${`, an invalid name
    or another operator (`${VAR:=x}`, `${VAR-x}`) raises `ValueFormError`.
    """
    if "$" not in text:
        return text
    out: list[str] = []
    pos = 0
    while True:
        dollar = text.find("$", pos)
        if dollar < 0:
            out.append(text[pos:])
            return "".join(out)
        if text.startswith("$$", dollar):
            out.append(text[pos : dollar + 2])
            pos = dollar + 2
            continue
        if not text.startswith("${", dollar):
            out.append(text[pos : dollar + 1])
            pos = dollar + 1
            continue
        close = text.find("}", dollar + 2)
        if close < 0:
            raise ValueFormError(f"invalid value {_q(text)}: unterminated '${{'")
        out.append(text[pos:dollar])
        inner = text[dollar + 2 : close]
        name, operator, default = inner.partition(":-")
        if not _ENV_NAME.fullmatch(name):
            raise ValueFormError(
                f"invalid value {_q(text)}: {_q('${' + inner + '}')} is not ${{NAME}} "
                "or ${NAME:-default}"
            )
        found = environ.get(name, "")
        out.append(default if operator and not found else found)
        pos = close + 1


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
    word = _strip(text)
    number = _signal_number(word)
    if number is None:
        hint = " (signal names are upper case)" if word.upper() != word else ""
        raise ValueFormError(f"invalid signal {_q(text)}: not a signal name or number{hint}")
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
                    f"invalid exit status {_q(word)} in {_q(text)}: must be 0..255"
                )
            codes.add(code)
        elif word in _EXIT_STATUS_NAMES:
            codes.add(_EXIT_STATUS_NAMES[word])
        else:
            number = _signal_number(word)
            if number is None:
                raise ValueFormError(
                    f"invalid exit status {_q(word)} in {_q(text)}: "
                    "not an exit code 0..255, exit status name or signal name"
                )
            signals.add(number)
    return ExitStatusSet(codes=frozenset(codes), signals=frozenset(signals))


# --- socket addresses ---------------------------------------------------------------------

_SUN_PATH_MAX = 107  # sun_path is 108 bytes; systemd keeps room for the terminating NUL
_IPV4_CHARS = re.compile(r"[0-9.]+")
_IPV6_CHARS = re.compile(r"[0-9A-Fa-f:.]+")
_HOST_NAME = re.compile(
    r"(?=.{1,253}\.?$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
    r"(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?",
    re.ASCII,
)


def _canonical_ip(host: str, version: int) -> str | None:
    """`host` in canonical form if it is a numeric IPv4/IPv6 address, else None."""
    import _socket  # lazy, and not `socket`: that module builds enums on import

    pattern = _IPV4_CHARS if version == 4 else _IPV6_CHARS
    if not pattern.fullmatch(host):
        return None
    family = _socket.AF_INET if version == 4 else _socket.AF_INET6
    try:
        return _socket.inet_ntop(family, _socket.inet_pton(family, host))
    except OSError:
        return None


def _parse_port(port: str, text: str, what: str) -> int:
    if not (port.isascii() and port.isdigit()):
        raise ValueFormError(f"invalid {what} {_q(text)}: port {_q(port)} is not a number")
    number = int(port) if len(port) < 8 else 0
    if not 1 <= number <= 65535:
        raise ValueFormError(f"invalid {what} {_q(text)}: port {_q(port)} is not in 1..65535")
    return number


def _unix_address(path: str, text: str, what: str) -> ListenAddress:
    """A file-system socket path: absolute, normalized ("//" and "/./" collapse), no "..",
    short enough for sun_path."""
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise ValueFormError(f"invalid {what} {_q(text)}: socket path must not contain '..'")
    if not parts:
        raise ValueFormError(f"invalid {what} {_q(text)}: socket path names a directory")
    normalized = "/" + "/".join(parts)
    if _fs_length(normalized) > _SUN_PATH_MAX:
        raise ValueFormError(
            f"invalid {what} {_q(text)}: socket path longer than {_SUN_PATH_MAX} bytes"
        )
    return ListenAddress(ListenKind.UNIX, path=normalized)


def _abstract_address(name: str, text: str, what: str) -> ListenAddress:
    if not name:
        raise ValueFormError(f"invalid {what} {_q(text)}: abstract socket name is empty")
    if _fs_length(name) + 1 > _SUN_PATH_MAX:
        raise ValueFormError(
            f"invalid {what} {_q(text)}: abstract socket name longer than {_SUN_PATH_MAX - 1} bytes"
        )
    return ListenAddress(ListenKind.ABSTRACT, path=name)


def _split_bracketed(text: str, value: str, what: str) -> tuple[str, int]:
    """`[V6ADDR]:PORT` -> (canonical address, port)."""
    close = value.find("]")
    if close < 0 or not value.startswith(":", close + 1):
        raise ValueFormError(f"invalid {what} {_q(text)}: expected [IPV6ADDRESS]:PORT")
    host = _canonical_ip(value[1:close], 6)
    if host is None:
        raise ValueFormError(
            f"invalid {what} {_q(text)}: {_q(value[1:close])} is not an IPv6 address"
        )
    return host, _parse_port(value[close + 2 :], text, what)


def parse_listen_address(text: str) -> ListenAddress:
    """ListenStream=/ListenDatagram=: `PORT` (any address, dual stack), `IPV4:PORT`,
    `[IPV6]:PORT`, `/unix/path` or `@abstract`.

    Addresses must be numeric (host names are refused, as systemd does) and are stored in
    canonical form (`[0:0::1]` becomes `::1`); the port is 1..65535. Unix paths must be
    absolute, are normalized and must fit sun_path (107 bytes).
    """
    what = "listen address"
    value = _strip(text)
    _check_no_nul(value, what)
    if value.startswith("/"):
        return _unix_address(value, text, what)
    if value.startswith("@"):
        return _abstract_address(value[1:], text, what)
    if value.startswith("["):
        host, port = _split_bracketed(text, value, what)
        return ListenAddress(ListenKind.INET, host=host, port=port)
    if value.isascii() and value.isdigit():
        return ListenAddress(ListenKind.INET, port=_parse_port(value, text, what))
    host, colon, port_text = value.rpartition(":")
    if not colon:
        raise ValueFormError(
            f"invalid {what} {_q(text)}: expected PORT, ADDRESS:PORT, [IPV6]:PORT, /path or @name"
        )
    if ":" in host:
        raise ValueFormError(f"invalid {what} {_q(text)}: write IPv6 addresses as [ADDRESS]:PORT")
    canonical = _canonical_ip(host, 4)
    if canonical is None:
        raise ValueFormError(
            f"invalid {what} {_q(text)}: {_q(host)} is not a numeric IPv4 address "
            "(host names are not allowed here)"
        )
    return ListenAddress(ListenKind.INET, host=canonical, port=_parse_port(port_text, text, what))


def parse_proxy_target(text: str) -> ListenAddress:
    """ProxyTarget=: `HOST:PORT`, `tcp:HOST:PORT`, `[IPV6]:PORT`, `unix:/path`, `/path`,
    `unix:@abstract` or `@abstract`.

    HOST may be a host name (resolved when connecting), an IPv4 address or a bracketed
    IPv6 address; numeric addresses are stored canonically. `ListenAddress.render()` gives
    text this function reads back to an equal value.
    """
    what = "proxy target"
    value = _strip(text)
    _check_no_nul(value, what)
    if value.startswith("unix:"):
        rest = value[5:]
        if rest.startswith("@"):
            return _abstract_address(rest[1:], text, what)
        if not rest.startswith("/"):
            raise ValueFormError(f"invalid {what} {_q(text)}: unix: needs an absolute path")
        return _unix_address(rest, text, what)
    if value.startswith("/"):
        return _unix_address(value, text, what)
    if value.startswith("@"):
        return _abstract_address(value[1:], text, what)
    if value.startswith("tcp:"):
        value = value[4:]
    if value.startswith("["):
        host, port = _split_bracketed(text, value, what)
        return ListenAddress(ListenKind.INET, host=host, port=port)
    host, colon, port_text = value.rpartition(":")
    if not colon or not host:
        raise ValueFormError(
            f"invalid {what} {_q(text)}: expected HOST:PORT, tcp:HOST:PORT, [IPV6]:PORT, "
            "unix:/path, /path or @name"
        )
    if ":" in host:
        raise ValueFormError(
            f"invalid {what} {_q(text)}: expected HOST:PORT, tcp:HOST:PORT, unix:/path or "
            "/path (write IPv6 addresses as [ADDRESS]:PORT)"
        )
    if _IPV4_CHARS.fullmatch(host):
        canonical = _canonical_ip(host, 4)
        if canonical is None:
            raise ValueFormError(f"invalid {what} {_q(text)}: {_q(host)} is not an IPv4 address")
        host = canonical
    elif not _HOST_NAME.fullmatch(host):
        raise ValueFormError(f"invalid {what} {_q(text)}: {_q(host)} is not a valid host name")
    return ListenAddress(ListenKind.INET, host=host, port=_parse_port(port_text, text, what))


# --- modes, outputs, unit names -------------------------------------------------------------


def parse_octal_mode(text: str) -> int:
    """A file mode in octal digits (`0666`, `666`, `1777`), 0..07777; no `0o` prefix."""
    word = _strip(text)
    if not word or not all(char in _OCT for char in word):
        raise ValueFormError(f"invalid file mode {_q(text)}: expected octal digits like 0660")
    mode = int(word, 8)
    if mode > 0o7777:
        raise ValueFormError(f"invalid file mode {_q(text)}: larger than 07777")
    return mode


def parse_output(text: str) -> Output:
    """StandardOutput=/StandardError=: `inherit`, `null`, `file:/abs/path`, `append:/abs/path`."""
    word = _strip(text)
    if word == "inherit":
        return Output(OutputTarget.INHERIT)
    if word == "null":
        return Output(OutputTarget.NULL)
    kind, colon, path = word.partition(":")
    if colon and kind in ("file", "append"):
        if not path.startswith("/"):
            raise ValueFormError(f"invalid output {_q(text)}: {kind}: needs an absolute path")
        _check_no_nul(word, "output")
        target = OutputTarget.FILE if kind == "file" else OutputTarget.APPEND
        return Output(target, path)
    raise ValueFormError(
        f"unsupported output {_q(text)}: use inherit, null, file:/path or append:/path"
    )


_UNIT_NAME = re.compile(r"[A-Za-z0-9:_.\\@-]+\.(?:service|socket|target)")
_UNIT_NAME_MAX = 255


def parse_unit_names(text: str) -> list[str]:
    """A list of unit names (After=, Requires=, WantedBy=...), separated by whitespace.

    Each must be made of `[A-Za-z0-9:_.\\@-]` and end in `.service`, `.socket` or `.target`.
    """
    names = text.split()
    for name in names:
        if not _UNIT_NAME.fullmatch(name) or len(name) > _UNIT_NAME_MAX:
            raise ValueFormError(
                f"invalid unit name {_q(name)} in {_q(text)}: expected NAME.service, "
                "NAME.socket or NAME.target made of letters, digits and :_.\\@-"
            )
    return names
