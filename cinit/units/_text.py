"""Small text helpers shared by the value-form parsers (private to cinit.units)."""

from __future__ import annotations

from cinit.boot_path import TYPE_CHECKING
from cinit.units.diagnostics import ValueFormError

if TYPE_CHECKING:
    import re
    from typing import Any


class LazyPattern:
    """A regular expression compiled, and `re` imported, when it is first used.

    Importing `re` and compiling the fifteen patterns of the unit parsers cost PID 1 ~4 ms
    before its first exec; a unit set of plain words (the common case) needs none of them
    (the checks it does need are string methods: `is_unit_filename`, `parse_unit_names`,
    the plain-command test of `split_words`). The methods are the `re.Pattern` ones used
    here; flags go inline (`(?a)` for re.ASCII)."""

    __slots__ = ("_compiled", "_source")

    def __init__(self, source: str) -> None:
        self._source = source
        self._compiled: re.Pattern[str] | None = None

    def compiled(self) -> re.Pattern[str]:
        """The compiled pattern (compiled on the first call)."""
        pattern = self._compiled
        if pattern is None:
            import re

            pattern = self._compiled = re.compile(self._source)
        return pattern

    def match(self, text: str, *pos: int) -> re.Match[str] | None:
        return self.compiled().match(text, *pos)

    def fullmatch(self, text: str, *pos: int) -> re.Match[str] | None:
        return self.compiled().fullmatch(text, *pos)

    def split(self, text: str) -> list[Any]:
        return self.compiled().split(text)

    def sub(self, replacement: str, text: str) -> str:
        return self.compiled().sub(replacement, text)

    def findall(self, text: str) -> list[Any]:
        return self.compiled().findall(text)


# systemd's WHITESPACE: the only characters that separate words (not Python's str.isspace()).
WHITESPACE = " \t\n\r"
NEWLINE = "\n\r"
ENV_NAME = LazyPattern(r"[A-Za-z_][A-Za-z0-9_]*")
ASCII_DIGITS = LazyPattern(r"[0-9]*")
# The characters of a unit name (systemd's alphabet; `@` is the template's separator).
UNIT_NAME_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789:_.\\-")


def quoted(text: str) -> str:
    """Quote a value for a message: control characters made visible, very long values cut."""
    if len(text) > 160:
        text = text[:160] + "..."
    shown = "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)
    return f"'{shown}'"


def strip_ws(text: str) -> str:
    return text.strip(WHITESPACE)


def check_no_nul(text: str, what: str) -> None:
    if "\0" in text:
        raise ValueFormError(f"invalid {what} {quoted(text)}: contains a NUL character")


def fs_length(text: str) -> int:
    """Length in bytes once encoded for the file system (surrogate escapes are bytes)."""
    try:
        return len(text.encode("utf-8", "surrogateescape"))
    except UnicodeEncodeError:  # a lone surrogate that is not an escaped byte
        return len(text.encode("utf-8", "surrogatepass"))


def skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in WHITESPACE:
        pos += 1
    return pos


OCTAL_DIGITS = frozenset("01234567")
