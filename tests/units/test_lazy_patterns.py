"""The unit parsers' regular expressions are compiled on first use (`LazyPattern`), and the
three checks every plain unit set needs are string tests: each must say exactly what the
regular expression it replaced said (kept here as the reference)."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from cinit.units import addresses, commands, loader, values
from cinit.units._text import LazyPattern

# The expressions as they were (cinit.units before the boot path dropped `re`).
UNIT_FILENAME = re.compile(
    r"[A-Za-z0-9:_.\\-]+(@[A-Za-z0-9:_.\\-]*)?\.(service|socket|target|timer)"
)
UNIT_REFERENCE = re.compile(
    r"[A-Za-z0-9:_.\\@-]+\.(?:service|socket|target|timer|path|mount|automount|swap|slice"
    r"|scope|device)"
)
NOTHING_SPECIAL = re.compile(r"[^'\"\\\s]*(?:[ \t\n\r]+[^'\"\\\s]*)*")

# Names: the alphabet, its neighbours, the separators and suffix pieces, some non-ASCII.
NAME_PIECES = st.lists(
    st.sampled_from(
        ["a", "Z", "0", ":", "_", ".", "\\", "-", "@", "/", " ", "é", "٣", "service", "socket",
         "target", "mount", "automount", "device", ".service", ".target", "x@.socket"]
    ),
    max_size=8,
).map("".join)  # fmt: skip
# Command lines: quotes, backslashes and every kind of whitespace Python knows.
COMMAND_TEXT = st.text(
    st.sampled_from(list("ab/- '\"\\\t\n\r\x0b\x0c\x1c\x1f\x85\xa0\u2028\u3000\x00é$")),
    max_size=12,
)


@settings(max_examples=1000, deadline=None)
@given(NAME_PIECES)
def test_a_unit_filename_is_what_the_expression_accepted(name: str) -> None:
    assert loader.is_unit_filename(name) == (UNIT_FILENAME.fullmatch(name) is not None)


@settings(max_examples=1000, deadline=None)
@given(NAME_PIECES)
def test_a_unit_reference_is_what_the_expression_accepted(name: str) -> None:
    assert values._is_unit_name(name) == (UNIT_REFERENCE.fullmatch(name) is not None)


@settings(max_examples=1000, deadline=None)
@given(COMMAND_TEXT)
def test_a_plain_command_is_what_the_expression_accepted(text: str) -> None:
    assert commands._nothing_special(text) == (NOTHING_SPECIAL.fullmatch(text) is not None)


def test_some_names_by_hand() -> None:
    for name in ("a.service", "getty@.service", "getty@tty1.service", "a.timer", "a:d\\e.f.socket"):
        assert loader.is_unit_filename(name) and values._is_unit_name(name)
    for name in (".service", "a@b@c.service", "a.path", "a.Service", "é.service", "a service"):
        assert not loader.is_unit_filename(name)
    assert values._is_unit_name("tmp.mount") and values._is_unit_name("a@b@c.service")
    assert not values._is_unit_name("a.mount.") and not values._is_unit_name("automount")


def test_a_lazy_pattern_is_compiled_once_as_written() -> None:
    pattern = LazyPattern(r"(?a)[a-z]+\d")
    assert pattern.fullmatch("ab1") and not pattern.fullmatch("ab٣")  # (?a): ASCII digits
    assert pattern.compiled() is pattern.compiled()
    assert addresses._HOST_NAME.compiled().flags & re.ASCII
    assert LazyPattern(r"\r\n|\r|\n").split("a\r\nb\rc") == ["a", "b", "c"]
    assert LazyPattern("'([^']*)'").sub("", "x'y'z") == "xz"
    assert LazyPattern("[0-9]+").findall("a1b22") == ["1", "22"]
    assert LazyPattern("[0-9]*").match("x12", 1).group() == "12"  # type: ignore[union-attr]
