"""Small text helpers shared by the value-form parsers (private to cinit.units)."""

from __future__ import annotations

import re

from cinit.units.diagnostics import ValueFormError

# systemd's WHITESPACE: the only characters that separate words (not Python's str.isspace()).
WHITESPACE = " \t\n\r"
NEWLINE = "\n\r"
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
ASCII_DIGITS = re.compile(r"[0-9]*")


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
