"""Value forms of the execution environment (systemd.exec(5)) and of socket options
(systemd.socket(5)): sizes, Limit*= values, exec directory names, nice levels.

Pure parsers, like `values`: text in, typed value out, `ValueFormError` (quoting the value
and saying what is wrong) for anything else.
"""

from __future__ import annotations

from cinit.boot_path import TYPE_CHECKING
from cinit.units import values
from cinit.units._text import quoted, strip_ws
from cinit.units.diagnostics import ValueFormError
from cinit.units.model import RLIMIT_INFINITY, ResourceLimit

if TYPE_CHECKING:
    from collections.abc import Callable

# --- sizes ---------------------------------------------------------------------------------

# systemd's parse_size() with base 1024: K, M, G, T, P, E (B or nothing: bytes).
_SIZE_SUFFIXES = {
    "": 1,
    "B": 1,
    "K": 1024,
    "M": 1024**2,
    "G": 1024**3,
    "T": 1024**4,
    "P": 1024**5,
    "E": 1024**6,
}
_U64_MAX = 2**64 - 1


def parse_size(text: str) -> int:
    """A byte count: `65536`, `64K`, `1.5M`, `2G` (powers of 1024, as systemd's sizes)."""
    word = strip_ws(text)
    number = word.rstrip("BKMGTPE")
    suffix = word[len(number) :]
    if suffix not in _SIZE_SUFFIXES or not number:
        raise ValueFormError(f"invalid size {quoted(text)}: expected bytes, or K, M, G, T, P, E")
    whole, _, fraction = number.partition(".")
    digits = whole + fraction
    if not digits or not digits.isascii() or not digits.isdigit() or len(digits) > 30:
        raise ValueFormError(f"invalid size {quoted(text)}: expected a non-negative number")
    scale = _SIZE_SUFFIXES[suffix]
    size = int(whole or "0") * scale
    if fraction:
        size += int(fraction) * scale // 10 ** len(fraction)
    if size > _U64_MAX:
        raise ValueFormError(f"invalid size {quoted(text)}: too large")
    return size


def render_size(size: int) -> str:
    """The byte count as digits (parsing it gives back `size`)."""
    return str(size)


def parse_buffer_size(text: str) -> int:
    """ReceiveBuffer=/SendBuffer=: a size the kernel takes as an int."""
    size = parse_size(text)
    if size > 2**31 - 1:
        raise ValueFormError(f"invalid buffer size {quoted(text)}: too large (at most 2G - 1)")
    return size


# --- Limit*= -------------------------------------------------------------------------------

# How each resource's value reads (systemd.exec(5), "Resource limits").
_BYTES = frozenset({"FSIZE", "DATA", "STACK", "CORE", "RSS", "AS", "MEMLOCK", "MSGQUEUE"})
_COUNTS = frozenset({"NOFILE", "NPROC", "LOCKS", "SIGPENDING", "RTPRIO"})


def _limit_value(resource: str, word: str, whole: str) -> int:
    if word == "infinity":
        return RLIMIT_INFINITY
    if resource in _BYTES:
        return parse_size(word)
    if resource == "CPU":  # seconds, rounded up as systemd does
        seconds = values.parse_timespan(word)
        if seconds == float("inf"):
            return RLIMIT_INFINITY
        return int(-(-seconds // 1))
    if resource == "RTTIME":  # microseconds: a bare number is microseconds here
        if word.isascii() and word.isdigit():
            return _int(word, whole)  # bounded before int(): no 4,300-digit conversion
        seconds = values.parse_timespan(word)
        return RLIMIT_INFINITY if seconds == float("inf") else round(seconds * 1_000_000)
    if resource == "NICE":
        # "+N"/"-N" is a nice level (-20..19), stored as the kernel's 20 - N; a bare number
        # is the raw rlimit value (0..40).
        if word[:1] in "+-":
            level = _int(word[1:], whole) * (-1 if word[0] == "-" else 1)
            if not -20 <= level <= 19:
                raise ValueFormError(f"invalid limit {quoted(whole)}: nice level not in -20..19")
            return 20 - level
        raw = _int(word, whole)
        if raw > 40:
            raise ValueFormError(f"invalid limit {quoted(whole)}: at most 40 (or -20..19 signed)")
        return raw
    number = _int(word, whole)
    if resource not in _COUNTS:
        raise ValueFormError(f"unknown resource {resource}")
    return number


def _int(word: str, whole: str) -> int:
    if not word or not word.isascii() or not word.isdigit() or len(word) > 20:
        raise ValueFormError(f"invalid limit {quoted(whole)}: expected a number or infinity")
    number = int(word)
    if number > _U64_MAX:
        raise ValueFormError(f"invalid limit {quoted(whole)}: too large")
    return number


def parse_limit(resource: str, text: str) -> ResourceLimit:
    """A Limit*= value: `VALUE` (soft and hard alike) or `SOFT:HARD`, each `infinity` or a
    value in the resource's form; a soft limit above the hard one is an error."""
    word = strip_ws(text)
    soft_text, colon, hard_text = word.partition(":")
    soft = _limit_value(resource, strip_ws(soft_text), text)
    hard = _limit_value(resource, strip_ws(hard_text), text) if colon else soft
    if hard != RLIMIT_INFINITY and (soft == RLIMIT_INFINITY or soft > hard):
        raise ValueFormError(f"invalid limit {quoted(text)}: the soft limit exceeds the hard one")
    return ResourceLimit(soft, hard)


def render_limit(limit: ResourceLimit) -> str:
    """`SOFT:HARD` in raw kernel units (`infinity` for none); for every resource but CPU
    and RTTIME that reads back the same. Those two render as `Ns`/`Nus` words."""

    def word(value: int) -> str:
        return "infinity" if value == RLIMIT_INFINITY else str(value)

    return f"{word(limit.soft)}:{word(limit.hard)}"


def limit_parser(
    resource: str,
) -> tuple[Callable[[str], ResourceLimit], Callable[[ResourceLimit], str]]:
    """The parser and renderer of `Limit<resource>=`."""

    def parse(text: str) -> ResourceLimit:
        return parse_limit(resource, text)

    def render(limit: ResourceLimit) -> str:
        if resource in ("CPU", "RTTIME"):
            unit = "s" if resource == "CPU" else "us"

            def word(value: int) -> str:
                return "infinity" if value == RLIMIT_INFINITY else f"{value}{unit}"

            return f"{word(limit.soft)}:{word(limit.hard)}"
        return render_limit(limit)  # NICE: the raw 0..40 reads back as raw

    return parse, render


# --- numbers of the process ----------------------------------------------------------------


def _signed(text: str, low: int, high: int, what: str) -> int:
    word = strip_ws(text)
    digits = word[1:] if word[:1] in "+-" else word
    if not digits or not digits.isascii() or not digits.isdigit() or len(digits) > 5:
        raise ValueFormError(f"invalid {what} {quoted(text)}: expected an integer")
    number = int(word)
    if not low <= number <= high:
        raise ValueFormError(f"invalid {what} {quoted(text)}: not in {low}..{high}")
    return number


def parse_nice(text: str) -> int:
    """Nice=: -20 (most favourable) .. 19."""
    return _signed(text, -20, 19, "nice level")


def parse_oom_score_adjust(text: str) -> int:
    """OOMScoreAdjust=: -1000 .. 1000."""
    return _signed(text, -1000, 1000, "OOM score adjustment")


# --- exec directories ----------------------------------------------------------------------


def parse_directory_names(text: str) -> list[str]:
    """RuntimeDirectory= and friends: space-separated relative paths (`nginx`, `php/fpm`),
    no `..`, no `.`; systemd.exec(5) puts them under /run, /var/lib, ..."""
    names: list[str] = []
    for word in text.split():
        if word.startswith("/") or any(part in ("", ".", "..") for part in word.split("/")):
            raise ValueFormError(
                f"invalid directory {quoted(word)}: expected a relative path without . or .."
            )
        if ":" in word:  # systemd 250's `path:symlink` form: not in the units cinit reads
            raise ValueFormError(f"invalid directory {quoted(word)}: `:` is not supported")
        names.append(word)
    return names


def parse_symlinks(text: str) -> list[str]:
    """Symlinks=: space-separated absolute paths."""
    paths = text.split()
    for path in paths:
        if not path.startswith("/"):
            raise ValueFormError(f"invalid symlink {quoted(path)}: must be an absolute path")
    return paths


SOCKET_PROTOCOLS = ("udplite", "sctp", "mptcp")


def parse_socket_protocol(text: str) -> str:
    """SocketProtocol=: `udplite` (datagram), `sctp` (stream or seqpacket), `mptcp` (stream)."""
    word = strip_ws(text)
    if word not in SOCKET_PROTOCOLS:
        raise ValueFormError(
            f"invalid protocol {quoted(text)}: expected one of {', '.join(SOCKET_PROTOCOLS)}"
        )
    return word
