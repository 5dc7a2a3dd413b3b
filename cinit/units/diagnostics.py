"""Diagnostics: what cinit says about a unit file, in `file:line: severity: message` form."""

from __future__ import annotations

from cinit.units.frozen import Frozen, QuickStrEnum, quick_enum


@quick_enum
class Severity(QuickStrEnum):
    """How bad a diagnostic is. Hints and notes never fail a load, even under
    --strict-units; a note says what cinit accepts and does not do (`not applied`)."""

    ERROR = "error"
    WARNING = "warning"
    HINT = "hint"
    NOTE = "note"


class Diagnostic(Frozen):
    """One finding about one place in one unit file (or about the unit set as a whole)."""

    severity: Severity
    message: str
    path: str = ""
    line: int | None = None
    section: str | None = None
    directive: str | None = None

    def format(self) -> str:
        """Render as `path:line: severity: message`, like `systemd-analyze verify`."""
        where = _visible(self.path) or "<units>"
        if self.line is not None:
            where = f"{where}:{self.line}"
        return f"{where}: {self.severity.value}: {_visible(self.message)}"

    def to_json(self) -> dict[str, object]:
        """A plain dict for `cinit validate --json`."""
        return {
            "severity": self.severity.value,
            "message": self.message,
            "path": self.path,
            "line": self.line,
            "section": self.section,
            "directive": self.directive,
        }


def _visible(text: str) -> str:
    """`text` with control and other invisible characters escaped: one line, always."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


class UnitError(Exception):
    """The only exception `cinit.units` raises for bad input: carries the diagnostics."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        self.diagnostics = diagnostics
        super().__init__("\n".join(d.format() for d in diagnostics))


class ValueFormError(ValueError):
    """A value that does not have the form its directive needs; the message says why."""
