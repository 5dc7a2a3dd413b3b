"""The unit-file syntax layer: sections, comments, continuations, malformed lines."""

from __future__ import annotations

from cinit.units.diagnostics import Severity
from cinit.units.syntax import MAX_FILE_BYTES, decode_unit_bytes, parse_syntax


def pairs(text: str) -> list[tuple[str, str, str, int]]:
    parsed = parse_syntax(text, "t.service")
    assert not parsed.diagnostics, [d.format() for d in parsed.diagnostics]
    return [(a.section, a.key, a.value, a.line) for a in parsed.assignments]


def test_sections_keys_values_and_lines() -> None:
    text = "[Unit]\nDescription = hello world \n\n[Service]\nExecStart=/bin/true\n"
    assert pairs(text) == [
        ("Unit", "Description", "hello world", 2),
        ("Service", "ExecStart", "/bin/true", 5),
    ]


def test_comments_with_hash_and_semicolon_are_skipped() -> None:
    text = "# top\n[Unit]\n; note\n  # indented\nDescription=x # not a comment\n"
    assert pairs(text) == [("Unit", "Description", "x # not a comment", 5)]


def test_backslash_continuation_joins_with_a_space() -> None:
    text = "[Service]\nExecStart=/bin/echo a \\\n   b \\\n   c\nType=simple\n"
    assert pairs(text) == [
        ("Service", "ExecStart", "/bin/echo a  b  c", 2),
        ("Service", "Type", "simple", 5),
    ]


def test_comment_lines_inside_a_continuation_are_skipped() -> None:
    text = "[Service]\nExecStart=/bin/echo a \\\n# comment\n b\n"
    assert pairs(text) == [("Service", "ExecStart", "/bin/echo a  b", 2)]


def test_continuation_at_end_of_file_is_kept() -> None:
    assert pairs("[Unit]\nDescription=a \\") == [("Unit", "Description", "a", 2)]


def test_value_may_contain_equals_signs() -> None:
    assert pairs("[Service]\nEnvironment=A=1 B=2\n") == [("Service", "Environment", "A=1 B=2", 2)]


def test_empty_value_is_an_assignment() -> None:
    assert pairs("[Unit]\nAfter=\n") == [("Unit", "After", "", 2)]


def test_repeated_sections_accumulate() -> None:
    assert pairs("[Unit]\nAfter=a.service\n[Unit]\nAfter=b.service\n") == [
        ("Unit", "After", "a.service", 2),
        ("Unit", "After", "b.service", 4),
    ]


def errors(text: str) -> list[tuple[int | None, str]]:
    parsed = parse_syntax(text, "bad.service")
    assert all(d.severity is Severity.ERROR for d in parsed.diagnostics)
    return [(d.line, d.message) for d in parsed.diagnostics]


def test_assignment_before_any_section_is_an_error_with_its_line() -> None:
    [(line, message)] = errors("\nExecStart=/bin/true\n[Service]\n")
    assert line == 2 and "outside of any section" in message


def test_line_without_equals_is_an_error() -> None:
    [(line, message)] = errors("[Service]\nExecStart /bin/true\n")
    assert line == 2 and "missing '='" in message


def test_malformed_section_headers_are_errors() -> None:
    found = errors("[Service\nA=1\n[]\n[a]b]\n")
    assert [line for line, _ in found] == [1, 2, 3, 4]
    assert "malformed section header" in found[0][1]


def test_assignment_with_empty_key_is_an_error() -> None:
    [(line, message)] = errors("[Unit]\n=value\n")
    assert line == 2 and "without a directive name" in message


def test_every_error_is_reported_not_just_the_first() -> None:
    assert len(errors("A=1\n[Unit]\nB\nC\n")) == 3


def test_decode_rejects_nul_bytes_with_the_line() -> None:
    text, diags = decode_unit_bytes(b"[Unit]\nA=1\n\x00\x01", "x.service")
    assert text is None and diags[0].line == 3 and "NUL" in diags[0].message


def test_decode_rejects_invalid_utf8_with_the_line() -> None:
    text, diags = decode_unit_bytes(b"[Unit]\nDescription=caf\xe9\n", "x.service")
    assert text is None and diags[0].line == 2 and "UTF-8" in diags[0].message


def test_decode_rejects_huge_files() -> None:
    text, diags = decode_unit_bytes(b"#" * (MAX_FILE_BYTES + 1), "x.service")
    assert text is None and "too large" in diags[0].message


def test_decode_accepts_utf8() -> None:
    text, diags = decode_unit_bytes("[Unit]\nDescription=café ☕\n".encode(), "x.service")
    assert text is not None and not diags


# A unit path may be a symlink to any file: a line that is not unit syntax is quoted by its
# first 20 characters only (issue 13: a link to /etc/shadow echoed whole hashes).
SHADOW_LINE = "root:$6$saltsaltsaltsalt$" + "H" * 86 + ":19000:0:99999:7:::"


def test_a_line_outside_any_section_is_quoted_by_its_start_only() -> None:
    [(line, message)] = errors(SHADOW_LINE + "\n")
    assert line == 1
    assert message == "line outside of any section: 'root:$6$saltsaltsalt...'"


def test_the_value_of_an_assignment_outside_any_section_is_not_quoted() -> None:
    [(_line, message)] = errors("DB_PASSWORD=hunter2\n")
    assert message == "assignment outside of any section: 'DB_PASSWORD=...'"
    assert "hunter2" not in message


def test_a_line_without_equals_in_a_section_is_quoted_by_its_start_only() -> None:
    [(_line, message)] = errors("[Service]\n" + SHADOW_LINE + "\n")
    assert message == "line is not an assignment (missing '='): 'root:$6$saltsaltsalt...'"
    [(_line, message)] = errors("[" + SHADOW_LINE + "\n")
    assert message == "malformed section header '[root:$6$saltsaltsal...'"
