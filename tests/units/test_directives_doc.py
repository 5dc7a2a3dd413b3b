"""docs/directives.md against the directive table: every directive cinit reads is documented
in its section's table (it acts), every accepted-but-not-applied one in the list of those,
and nothing is in both. A row added to `cinit/units/schema.py` without its line in the doc
fails here."""

from __future__ import annotations

import re
from pathlib import Path

from cinit.units import schema

DOC = Path(__file__).resolve().parents[2] / "docs" / "directives.md"
NOT_APPLIED_HEADING = "## Accepted, not applied"
_SECTION_OF_TARGET = {
    schema.UNIT: "Unit",
    schema.SERVICE: "Service",
    schema.SOCKET: "Socket",
    schema.TIMER: "Timer",
    schema.INSTALL: "Install",
}


def _chapters() -> dict[str, str]:
    """The doc's `## ...` chapters by heading."""
    chapters: dict[str, str] = {}
    heading = ""
    for line in DOC.read_text().splitlines():
        if line.startswith("## "):
            heading = line.strip()
            chapters[heading] = ""
        elif heading:
            chapters[heading] += line + "\n"
    return chapters


def _table_names(text: str) -> set[str]:
    """Directive names in the first column of a chapter's table (`A, B (new)`)."""
    names: set[str] = set()
    for line in text.splitlines():
        if not line.startswith("| ") or line.startswith(("| Directive", "|---")):
            continue
        cell = line.split("|")[1]
        for word in cell.split(","):
            names.add(re.sub(r"\s*\((new|ext)\)\s*$", "", word.strip()))
    return names


def _not_applied_names() -> set[str]:
    text = _chapters()[NOT_APPLIED_HEADING]
    names: set[str] = set()
    for bullet in re.split(r"\n- ", "\n" + text.split("\n- ", 1)[1]):
        listed = bullet.split("):", 1)[1] if "):" in bullet else bullet.split(":", 1)[1]
        listed = listed.split("\n\n")[0]
        names.update(w.strip().rstrip(".") for w in listed.replace("\n", " ").split(","))
    return {name for name in names if name}


def test_every_directive_cinit_reads_is_in_its_sections_table() -> None:
    chapters = _chapters()
    tables = {
        section: _table_names(chapters.get(f"## [{section}]", ""))
        for section in ("Unit", "Service", "Socket", "Timer", "Install")
    }
    missing = []
    for (section, name), row in schema.DIRECTIVES.items():
        # [Service] StartLimitBurst= lands in [Unit]'s values: documented there.
        places = {section, _SECTION_OF_TARGET[row.target]}
        if not any(name in tables[place] for place in places):
            missing.append(f"[{section}] {name}")
    assert missing == [], f"not in docs/directives.md's tables: {missing}"


def test_the_doc_lists_exactly_the_not_applied_directives() -> None:
    listed = _not_applied_names()
    expected = {name for _section, name in schema.NOT_APPLIED}
    assert sorted(expected - listed) == [], "not-applied directives missing from the doc"
    assert sorted(listed - expected) == [], "the doc lists directives schema.NOT_APPLIED lacks"


def test_no_directive_both_acts_and_is_not_applied() -> None:
    both = sorted(set(schema.DIRECTIVES) & schema.NOT_APPLIED)
    assert both == []
