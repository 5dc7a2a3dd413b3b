"""tmpfiles.d(5) lines parsed (cinit.units.tmpfiles): fields, modifiers, specifiers, the
files that count, duplicates, and the order of application. Pure: no file is touched."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cinit.units.diagnostics import Severity
from cinit.units.tmpfiles import (
    CREATE_PHASE,
    REMOVE_PHASE,
    ConfigFile,
    TmpfilesEntry,
    choose_config_files,
    merge_entries,
    parse_age,
    parse_tmpfiles,
    plan,
    select_entries,
)

VALUES = {"m": "0123abcd", "H": "box.example", "l": "box", "t": "/run", "u": "root"}


def one(line: str) -> TmpfilesEntry:
    entries, diagnostics = parse_tmpfiles(line, "/etc/tmpfiles.d/t.conf", VALUES)
    assert diagnostics == [], [d.format() for d in diagnostics]
    assert len(entries) == 1
    return entries[0]


def problem(line: str) -> str:
    entries, diagnostics = parse_tmpfiles(line, "/etc/tmpfiles.d/t.conf", VALUES)
    assert entries == []
    assert [d.severity for d in diagnostics] == [Severity.ERROR]
    return diagnostics[0].format()


def test_a_full_line_gives_every_field() -> None:
    entry = one("d /run/app 2775 www :adm 10d -")
    assert (entry.kind, entry.path, entry.mode) == ("d", "/run/app", 0o2775)
    assert (entry.user, entry.user_on_create) == ("www", False)
    assert (entry.group, entry.group_on_create) == ("adm", True)
    assert entry.age == 10 * 86400
    assert entry.argument is None  # "-" is no argument
    assert entry.where == "/etc/tmpfiles.d/t.conf:1"


def test_missing_columns_are_unset_and_defaults_come_later() -> None:
    entry = one("d /run/x")
    assert (entry.mode, entry.user, entry.group, entry.age) == (None, None, None, None)


def test_the_argument_is_the_rest_of_the_line_with_its_quotes() -> None:
    entry = one('f /a - - - - "two words"  and more  ')
    assert entry.argument == '"two words"  and more'
    assert entry.data == b'"two words"  and more'


def test_quoted_fields_and_c_escapes() -> None:
    entry = one('d "/run/with space" - - - -')
    assert entry.path == "/run/with space"
    assert one(r"d /run/tab\x41b").path == "/run/tabAb"
    assert one(r"f /a - - - - one\ntwo\x20three\\").data == b"one\ntwo three\\"


def test_byte_escapes_are_bytes() -> None:
    assert one(r"f /a - - - - \xe9\303\251").data == b"\xe9\xc3\xa9"  # as systemd: raw bytes


def test_content_escapes_only_for_lines_that_write_content() -> None:
    assert one(r"L /a - - - - /x\x41").argument == r"/x\x41"


def test_modifiers() -> None:
    entry = one("f+!-= /a")
    assert (entry.plus, entry.boot, entry.lenient, entry.retype) == (True, True, True, True)
    assert one("F /a").kind == "f" and one("F /a").plus  # the old spelling of f+
    assert one("f~ /a - - - - aGVsbG8K").data == b"hello\n"
    assert one("w^ /a - - - - cred.name").credential


def test_mode_prefixes() -> None:
    entry = one("z /a ~:0640")
    assert (entry.mode, entry.mode_masked, entry.mode_on_create) == (0o640, True, True)


def test_specifiers_in_path_and_argument() -> None:
    entry = one("L /run/%m/%l - - - - %H:%u:%%")
    assert entry.path == "/run/0123abcd/box"
    assert entry.argument == "box.example:root:%"


def test_xattr_and_attribute_arguments() -> None:
    assert one('t /a - - - - user.a=1 "user.b=two words"').xattrs == (
        ("user.a", b"1"),
        ("user.b", b"two words"),
    )
    assert one("h /a - - - - +C").attributes == (0x800000, 0x800000)
    assert one("h /a - - - - -dC").attributes == (0, 0x800040)
    assert one("h /a - - - - Cd").attributes == (0x800040, 0x800040)  # `+` is the default
    assert one("h /a - - - - =").attributes == (0, 0x208BC0FF)  # every letter, all off


def test_acl_arguments() -> None:
    entry = one("a+ /d - - - - d:group::r-x,u:www:rw default:m::rx o:-")
    assert entry.plus and entry.acl == (
        (True, "group", "", 5),
        (False, "user", "www", 6),
        (True, "mask", "", 5),
        (False, "other", "", 0),
    )


def test_link_and_copy_without_argument_use_the_factory_tree() -> None:
    assert one("L /etc/issue").argument == "/usr/share/factory/etc/issue"
    assert one("C /etc/skel").argument == "/usr/share/factory/etc/skel"


def test_legacy_var_run_is_moved_to_run_with_a_hint() -> None:
    entries, diagnostics = parse_tmpfiles("d /var/run/app", "x.conf", VALUES)
    assert entries[0].path == "/run/app"
    assert [d.severity for d in diagnostics] == [Severity.HINT]
    assert one("L /var/run - - - - ../run").path == "/var/run"  # the link itself stays


def test_paths_are_normalised() -> None:
    assert one("d //run/./a//b/").path == "/run/a/b"


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("Y /a", "unknown line type 'Y'"),
        ("d", "at least a type and a path"),
        ("d relative", "is not absolute"),
        ("d /a/../b", "contains '..'"),
        ("d /a 0999", "bad mode '0999'"),
        ("d /a 17777", "bad mode"),
        ("d /a - - - 3fortnights", "unknown unit 'fortnights'"),
        ("d+ /a", "takes no '+'"),
        ("d~ /a", "'~' and '^' are for lines that write content"),
        ("d? /a", "unknown modifier '?'"),
        ("d /%q", "unknown specifier %q"),
        ("w /a", "needs an argument"),
        ("c /dev/x 0600 - - - 1", "MAJOR:MINOR"),
        ('d "/a', "unbalanced quotes"),
        (r"f /a - - - - x\q", "bad escape"),
        ("f~ /a - - - - !!!", "not base64"),
        ("t /a - - - - noequals", "namespace.name=value"),
        ("t /a - - - - plain=1", "namespace.name=value"),
        ("h /a - - - - +Q", "letters of aAcCdDeijPsStTu"),
        ("h /a - - - - +", "letters of aAcCdDeijPsStTu"),
        ("a /a - - - - staff:r", "ACL entries are"),
        ("a /a - - - - m:x:r", "ACL entries are"),
        ("a /a - - - - g:adm:rwxr", "ACL permissions are r, w, x"),
        ("a /a - - - - g:adm:rq", "ACL permissions are r, w, x"),
    ],
)
def test_bad_lines_name_file_and_line(line: str, reason: str) -> None:
    text = problem(line)
    assert text.startswith("/etc/tmpfiles.d/t.conf:1: error: ")
    assert reason in text


def test_a_specifier_without_a_value_skips_the_line_with_a_hint() -> None:
    # As systemd-tmpfiles: no /etc/machine-id (a fresh image) skips the journal's lines.
    entries, diagnostics = parse_tmpfiles("d /var/log/journal/%m\nd /b\n", "x.conf", {})
    assert [e.path for e in entries] == ["/b"]
    assert [(d.severity, d.line) for d in diagnostics] == [(Severity.HINT, 1)]
    assert "skipped: specifier %m has no value here" in diagnostics[0].message


def test_a_bad_line_leaves_the_others() -> None:
    text = "# comment\n\nd /a\nbogus\n  d /b  \n"
    entries, diagnostics = parse_tmpfiles(text, "x.conf", VALUES)
    assert [e.path for e in entries] == ["/a", "/b"]
    assert [(d.path, d.line) for d in diagnostics] == [("x.conf", 4)]


def test_parse_age_forms() -> None:
    assert parse_age("1h 30min") == 5400
    assert parse_age("~2w") == 2 * 604800
    assert parse_age("mA:1h") == 3600
    assert parse_age("10") == 10


def test_etc_hides_the_same_name_elsewhere_and_dev_null_masks() -> None:
    found = [
        ConfigFile("b.conf", "/usr/lib/tmpfiles.d/b.conf", 3),
        ConfigFile("a.conf", "/usr/lib/tmpfiles.d/a.conf", 3),
        ConfigFile("a.conf", "/etc/tmpfiles.d/a.conf", 0),
        ConfigFile("c.conf", "/run/tmpfiles.d/c.conf", 1),
        ConfigFile("c.conf", "/etc/tmpfiles.d/c.conf", 0, masked=True),
    ]
    chosen = [f.path for f in choose_config_files(found)]
    assert chosen == ["/etc/tmpfiles.d/a.conf", "/usr/lib/tmpfiles.d/b.conf"]


def entries_of(text: str) -> list[TmpfilesEntry]:
    entries, _ = parse_tmpfiles(text, "x.conf", VALUES)
    return entries


def test_boot_lines_and_prefixes() -> None:
    entries = entries_of("d /run/a\nr! /run/lock\nd /var/b\nd /varnish\n")
    assert [e.path for e in select_entries(entries, boot=False)] == ["/run/a", "/var/b", "/varnish"]
    assert len(select_entries(entries, boot=True)) == 4
    chosen = select_entries(entries, boot=True, prefixes=["/var/"])
    assert [e.path for e in chosen] == ["/var/b"]  # a prefix is a path, not a string prefix
    chosen = select_entries(entries, boot=True, exclude_prefixes=["/run"])
    assert [e.path for e in chosen] == ["/var/b", "/varnish"]


def test_a_later_line_that_disagrees_loses_with_a_hint() -> None:
    groups, diagnostics = merge_entries(entries_of("d /a 0700\nd /a 0750\nd /a 0700\nz /a 0600\n"))
    assert [[(e.kind, e.line) for e in g] for g in groups] == [[("d", 1)], [("z", 4)]]
    assert [(d.severity, d.line) for d in diagnostics] == [(Severity.HINT, 2)]
    assert "first at x.conf:1" in diagnostics[0].message


def test_a_skipped_boot_line_leaves_its_path_to_the_next() -> None:
    chosen = select_entries(entries_of("d! /a 0700\nd /a 0750\n"), boot=False)
    groups, diagnostics = merge_entries(chosen)
    assert groups[0][0].mode == 0o750 and diagnostics == []


def order(text: str, **ops: bool) -> list[tuple[str, str, str]]:
    groups, _ = merge_entries(entries_of(text))
    return [(phase, e.kind, e.path) for phase, e in plan(groups, **ops)]


def test_removal_comes_first_and_children_are_removed_before_parents() -> None:
    steps = order("D /a\nR /a/b\nd /c\n", create=True, remove=True)
    assert steps == [
        (REMOVE_PHASE, "R", "/a/b"),
        (REMOVE_PHASE, "D", "/a"),
        (CREATE_PHASE, "D", "/a"),
        (CREATE_PHASE, "d", "/c"),
    ]


def test_parents_are_created_first_and_globs_last() -> None:
    steps = order("Z /a 0700\nd /a/b/c\nd /a\n", create=True, remove=False)
    assert steps == [
        (CREATE_PHASE, "d", "/a"),
        (CREATE_PHASE, "d", "/a/b/c"),
        (CREATE_PHASE, "Z", "/a"),
    ]


def test_only_the_asked_phases() -> None:
    assert order("D /a\nr /b\n", create=False, remove=True) == [
        (REMOVE_PHASE, "D", "/a"),
        (REMOVE_PHASE, "r", "/b"),
    ]
    assert order("D /a\nr /b\n", create=True, remove=False) == [(CREATE_PHASE, "D", "/a")]


# Any text, weighted toward the characters the format gives a meaning to.
LINE_CHARS = st.one_of(
    st.sampled_from(list(" \t\"'\\%~:!-=+^#/0123456789abcdefxuUmbHtDLCrRzZwpqvQ")),
    st.characters(exclude_categories=()),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.text(LINE_CHARS, max_size=40), max_size=6))
def test_no_text_makes_the_parser_raise(lines: list[str]) -> None:
    entries, diagnostics = parse_tmpfiles("\n".join(lines), "fuzz.conf", VALUES)
    for diagnostic in diagnostics:
        assert diagnostic.path == "fuzz.conf" and diagnostic.line is not None
    for entry in entries:
        assert entry.path.startswith("/") and "/../" not in entry.path + "/"
    groups, _ = merge_entries(entries)
    plan(groups, create=True, remove=True)
