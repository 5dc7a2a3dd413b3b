"""The systemd unit-file syntax: sections, assignments, comments and continuation lines.

This layer knows nothing about directives: it turns text into `Assignment`s with their
line numbers, and reports what is not well-formed (see systemd.syntax(7)).
"""

from __future__ import annotations

from cinit.units._text import LazyPattern
from cinit.units.diagnostics import Diagnostic, Severity
from cinit.units.frozen import Frozen

# systemd refuses lines longer than this (LONG_LINE_MAX); so do we, with a diagnostic.
MAX_LINE_BYTES = 1024 * 1024
# systemd's WHITESPACE: what it strips around keys and values (not all of Unicode's spaces).
WHITESPACE = " \t\n\r"
_LINE_END = LazyPattern(r"\r\n|\r|\n")
# A unit file larger than this is not a unit file.
MAX_FILE_BYTES = 4 * 1024 * 1024


class Assignment:
    """`Key=Value` in `[Section]`, starting on `line` (continuations are joined)."""

    __slots__ = ("key", "line", "section", "value")

    def __init__(self, section: str, key: str, value: str, line: int) -> None:
        self.section = section
        self.key = key
        self.value = value
        self.line = line

    def __repr__(self) -> str:
        return f"Assignment({self.section!r}, {self.key!r}, {self.value!r}, {self.line})"


class ParsedFile(Frozen):
    """The syntactic content of one unit file."""

    path: str
    sections: tuple[tuple[str, int], ...]  # (name, line) in file order, repeats allowed
    assignments: tuple[Assignment, ...]
    diagnostics: tuple[Diagnostic, ...]


def decode_unit_bytes(data: bytes, path: str) -> tuple[str | None, list[Diagnostic]]:
    """Decode a unit file's bytes as UTF-8, or explain (with the line) why it is not text."""
    if len(data) > MAX_FILE_BYTES:
        message = f"file is too large for a unit file ({len(data)} bytes)"
        return None, [Diagnostic(Severity.ERROR, message, path)]
    if b"\0" in data:
        line = data.count(b"\n", 0, data.index(b"\0")) + 1
        message = "file contains NUL bytes: not a text unit file"
        return None, [Diagnostic(Severity.ERROR, message, path, line)]
    try:
        return data.decode("utf-8"), []
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        message = f"invalid UTF-8 at byte {exc.start}: unit files must be UTF-8 text"
        return None, [Diagnostic(Severity.ERROR, message, path, line)]


# One assignment as the loader reads it: (section, key, value, line).
AssignmentRow = tuple[str, str, str, int]


def parse_syntax(text: str, path: str = "") -> ParsedFile:
    """Split unit-file text into sections and assignments.

    Rules (systemd.syntax): `#` and `;` start comment lines; a trailing backslash joins
    the next line with a space (comment lines inside a continuation are skipped);
    whitespace around keys and values is stripped; assignments before the first section
    header, lines without `=`, and malformed headers are errors.
    """
    sections, rows, diagnostics = scan_syntax(text, path)
    assignments = tuple([Assignment(*row) for row in rows])
    return ParsedFile(path, tuple(sections), assignments, tuple(diagnostics))


def scan_syntax(
    text: str, path: str = ""
) -> tuple[list[tuple[str, int]], list[AssignmentRow], list[Diagnostic]]:
    """`parse_syntax` as plain lists and tuples: (sections, assignment rows, diagnostics).

    The loader's form: it reads every row once, so an object per assignment is waste.
    """
    diagnostics: list[Diagnostic] = []
    sections: list[tuple[str, int]] = []
    rows: list[AssignmentRow] = []
    section: str | None = None
    pending: list[str] = []  # pieces of a continued assignment
    pending_line = 0
    # systemd ends lines only at \n, \r\n and \r: not at the other breaks splitlines() knows.
    lines = _LINE_END.split(text) if "\r" in text else text.split("\n")
    if lines[-1] == "":
        lines.pop()
    # No line can be too long in a text that is not: skip the per-line check then.
    long_lines = len(text) > MAX_LINE_BYTES
    number = 0
    for raw in lines:
        number += 1
        if long_lines and len(raw) > MAX_LINE_BYTES:
            message = f"line is longer than {MAX_LINE_BYTES} bytes"
            diagnostics.append(Diagnostic(Severity.ERROR, message, path, number, section))
            pending = []
            continue
        stripped = raw.strip(WHITESPACE)
        if not stripped:
            continue
        first = stripped[0]
        if first == "#" or first == ";":  # comment lines are skipped inside a continuation too
            continue
        if pending:
            if stripped[-1] == "\\":
                pending.append(stripped[:-1])
                continue
            pending.append(stripped)
            _finish(" ".join(pending), pending_line, section, path, rows, diagnostics)
            pending = []
            continue
        if first == "[":
            if stripped[-1] != "]" or len(stripped) < 3 or "]" in stripped[1:-1]:
                message = f"malformed section header {_quote(stripped)}"
                diagnostics.append(Diagnostic(Severity.ERROR, message, path, number, section))
                section = None
                continue
            section = stripped[1:-1]
            sections.append((section, number))
            continue
        if stripped[-1] == "\\":
            pending = [stripped[:-1]]
            pending_line = number
            continue
        # The common line, `Key=value` in a section, without a call; the rest in _finish.
        key, sep, value = stripped.partition("=")
        if sep and section is not None:
            key = key.rstrip(WHITESPACE)  # the left end and the value's right end are stripped
            if key:
                rows.append((section, key, value.lstrip(WHITESPACE), number))
                continue
        _finish(stripped, number, section, path, rows, diagnostics)
    if pending:
        # A continuation at end of file: systemd takes what it has.
        _finish(" ".join(pending), pending_line, section, path, rows, diagnostics)
    return sections, rows, diagnostics


def _finish(
    text: str,
    line: int,
    section: str | None,
    path: str,
    out: list[AssignmentRow],
    diagnostics: list[Diagnostic],
) -> None:
    """Turn one logical `Key=Value` line into an assignment row, or report why it is not one."""
    message = ""
    if section is None:
        key, sep, _value = text.partition("=")
        if sep:  # the key names the line; the value (a password in a .env file?) stays out
            message = f"assignment outside of any section: {_quote(key, suffix='=...')}"
        else:
            message = f"line outside of any section: {_quote(text)}"
    else:
        key, sep, value = text.partition("=")
        key = key.strip(WHITESPACE)
        if not sep:
            message = f"line is not an assignment (missing '='): {_quote(text)}"
        elif not key:
            message = f"assignment without a directive name: {_quote(text)}"
        else:
            out.append((section, key, value.strip(WHITESPACE), line))
            return
    diagnostics.append(Diagnostic(Severity.ERROR, message, path, line, section))


# How much of a line that is not unit syntax a message quotes. A unit path may be a
# symlink to any file (/etc/shadow): 20 characters name the line without its secrets
# (a shadow line's hash starts past them for SHA-512, yescrypt and bcrypt).
QUOTED_LINE_MAX = 20


def _quote(text: str, limit: int = QUOTED_LINE_MAX, suffix: str = "") -> str:
    """Short repr of the start of a line for messages (control characters escaped)."""
    shown = text if len(text) <= limit else text[:limit] + "..."
    return repr(shown + suffix)
