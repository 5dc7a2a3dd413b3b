"""Property tests of cinit.units.values: renderers round-trip through their parsers, and no
parser lets anything but ValueFormError escape, whatever text it is given."""

from __future__ import annotations

import _socket
import math
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cinit.units.addresses import parse_listen_address, parse_proxy_target
from cinit.units.commands import expand_exec_words, parse_exec_line, render_exec_line, split_words
from cinit.units.diagnostics import ValueFormError
from cinit.units.environment import (
    expand_vars,
    parse_env_file,
    parse_environment,
    render_environment,
)
from cinit.units.model import ExecCommand, ListenAddress, ListenKind
from cinit.units.specifiers import HostFacts, expand
from cinit.units.values import (
    parse_bool,
    parse_exit_status_set,
    parse_octal_mode,
    parse_output,
    parse_signal,
    parse_timespan,
    parse_unit_names,
    render_timespan,
)

# Any code point, lone surrogates and control characters included...
ANY_CHAR = st.characters(exclude_categories=())
# ...mixed with the characters the parsers care about, so the interesting paths get hit.
SYNTAX_CHAR = st.sampled_from(list(" \t\n\r\"'\\$%{}:;=@-+!/[].#0123456789abcfnsuxUMhmy\0é"))
TEXT = st.text(st.one_of(SYNTAX_CHAR, ANY_CHAR), max_size=40)
NO_NUL_CHAR = st.one_of(SYNTAX_CHAR, ANY_CHAR).filter(lambda c: c != "\0")
WORD = st.text(NO_NUL_CHAR, max_size=12)
WHITESPACE = " \t\n\r"


# --- never anything but ValueFormError ------------------------------------------------------

PARSERS: dict[str, Callable[[str], object]] = {
    "parse_bool": parse_bool,
    "parse_timespan": parse_timespan,
    "split_words": split_words,
    "parse_exec_line": parse_exec_line,
    "parse_environment": parse_environment,
    "parse_env_file": parse_env_file,
    "expand_specifiers": lambda text: expand(
        text, "web@x.service", "/u/web@.service", lambda: HostFacts(hostname="host")
    ),
    "expand_vars": lambda text: expand_vars(text, {"A": "1", "EMPTY": ""}),
    "parse_signal": parse_signal,
    "parse_exit_status_set": parse_exit_status_set,
    "parse_listen_address": parse_listen_address,
    "parse_proxy_target": parse_proxy_target,
    "parse_octal_mode": parse_octal_mode,
    "parse_output": parse_output,
    "parse_unit_names": parse_unit_names,
}


@pytest.mark.parametrize("name", sorted(PARSERS))
@settings(max_examples=150, deadline=None)
@given(text=TEXT)
def test_parsers_raise_only_value_form_error(name: str, text: str) -> None:
    try:
        PARSERS[name](text)
    except ValueFormError as error:
        assert str(error)  # always a message
        assert "\n" not in str(error)  # one line: it becomes file:line: message


@settings(deadline=None)
@given(text=TEXT)
def test_split_words_warnings_only_for_kept_backslashes(text: str) -> None:
    warnings: list[str] = []
    try:
        words = split_words(text, warnings=warnings)
    except ValueFormError:
        return
    assert len(words) <= len(text)
    if warnings:
        assert any("\\" in word for word in words)


@settings(deadline=None)
@given(
    words=st.lists(WORD, min_size=1, max_size=5),
    env=st.dictionaries(st.sampled_from(["A", "B", "_c", "X1"]), WORD, max_size=4),
    no_expand=st.booleans(),
)
def test_expand_exec_words_never_raises(
    words: list[str], env: dict[str, str], no_expand: bool
) -> None:
    command = ExecCommand(tuple(words), no_env_expansion=no_expand)
    argv = expand_exec_words(command, env)
    assert argv[0] == words[0]  # the path is never expanded
    if no_expand:
        assert argv == words


# --- time spans -----------------------------------------------------------------------------


@given(usec=st.integers(min_value=0, max_value=2**64 - 2))
def test_timespan_round_trip_of_every_microsecond_count(usec: int) -> None:
    seconds = usec / 1_000_000  # exactly what parse_timespan returns
    assert parse_timespan(render_timespan(seconds)) == seconds


def test_timespan_round_trip_infinity() -> None:
    assert parse_timespan(render_timespan(math.inf)) == math.inf


TIME_UNIT = st.sampled_from(
    ["", "us", "ms", "s", "sec", "m", "min", "h", "hr", "d", "w", "M", "y", "usec", "minutes"]
)
TIME_PART = st.tuples(
    st.integers(0, 10**4),
    st.one_of(st.just(""), st.integers(0, 999).map(lambda n: f".{n}")),
    st.sampled_from(["", " "]),
    TIME_UNIT,
).map(lambda part: f"{part[0]}{part[1]}{part[2]}{part[3]}")


@given(parts=st.lists(TIME_PART, min_size=1, max_size=4), joiner=st.sampled_from([" ", "  "]))
def test_timespan_text_round_trip(parts: list[str], joiner: str) -> None:
    text = joiner.join(parts)
    seconds = parse_timespan(text)
    assert parse_timespan(render_timespan(seconds)) == seconds


@settings(deadline=None)
@given(text=TEXT)
def test_timespan_parse_render_parse_is_stable(text: str) -> None:
    try:
        seconds = parse_timespan(text)
    except ValueFormError:
        return
    assert seconds >= 0
    assert parse_timespan(render_timespan(seconds)) == seconds


# --- exec lines -----------------------------------------------------------------------------

PATH_CHAR = st.one_of(st.sampled_from(list("abcxyz019_-.@+!: $%é")), ANY_CHAR).filter(
    lambda c: c not in "/\"'\\\x7f\0" and not ("\x00" < c < " ")
)
COMPONENT = st.text(PATH_CHAR, min_size=1, max_size=10).filter(lambda c: c not in (".", ".."))
ABSOLUTE_PATH = st.lists(COMPONENT, min_size=1, max_size=3).map(lambda parts: "/" + "/".join(parts))
BARE_NAME = st.text(st.sampled_from(list("abcxyz019_.é")), min_size=1, max_size=8).filter(
    lambda name: name not in (".", "..")
)


@st.composite
def exec_commands(draw: st.DrawFn) -> ExecCommand:
    path = draw(st.one_of(ABSOLUTE_PATH, BARE_NAME))
    argv0_separate = draw(st.booleans())
    args = draw(st.lists(WORD, min_size=1 if argv0_separate else 0, max_size=5))
    return ExecCommand(
        words=(path, *args),
        ignore_failure=draw(st.booleans()),
        argv0_separate=argv0_separate,
        no_env_expansion=draw(st.booleans()),
        privilege_prefix=draw(st.sampled_from(["", "+", "!", "!!"])),
    )


@settings(deadline=None)
@given(command=exec_commands())
def test_exec_line_round_trip(command: ExecCommand) -> None:
    assert parse_exec_line(render_exec_line(command)) == command


@settings(deadline=None)
@given(text=TEXT)
def test_exec_line_parse_render_parse_is_stable(text: str) -> None:
    try:
        command = parse_exec_line(text)
    except ValueFormError:
        return
    assert parse_exec_line(render_exec_line(command)) == command


# --- Environment= -----------------------------------------------------------------------------

ENV_NAME = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True)


@settings(deadline=None)
@given(pairs=st.lists(st.tuples(ENV_NAME, WORD), max_size=5))
def test_environment_round_trip(pairs: list[tuple[str, str]]) -> None:
    assert parse_environment(render_environment(pairs)) == pairs


@settings(deadline=None)
@given(text=TEXT)
def test_environment_parse_render_parse_is_stable(text: str) -> None:
    try:
        pairs = parse_environment(text)
    except ValueFormError:
        return
    assert parse_environment(render_environment(pairs)) == pairs


@settings(deadline=None)
@given(pairs=st.lists(st.tuples(ENV_NAME, st.text(NO_NUL_CHAR, max_size=12)), max_size=5))
def test_env_file_reads_single_quoted_values_literally(pairs: list[tuple[str, str]]) -> None:
    safe = [(name, value.replace("'", "")) for name, value in pairs]
    text = "".join(f"{name}='{value}'\n" for name, value in safe)
    expected = dict(safe)  # the last value wins, in the first position
    assert parse_env_file(text) == list(expected.items())


# --- socket addresses ---------------------------------------------------------------------------


def canonical(address: str) -> str:
    family = _socket.AF_INET6 if ":" in address else _socket.AF_INET
    return _socket.inet_ntop(family, _socket.inet_pton(family, address))


PORT = st.integers(1, 65535)
INET = st.builds(
    lambda host, port: ListenAddress(ListenKind.INET, host=host, port=port),
    st.one_of(st.just(""), st.ip_addresses().map(lambda ip: canonical(str(ip)))),
    PORT,
)
SOCKET_CHAR = NO_NUL_CHAR.filter(lambda c: c != "/")
SOCKET_COMPONENT = st.text(SOCKET_CHAR, min_size=1, max_size=12).filter(
    lambda c: c not in (".", "..")
)


def fits_sun_path(text: str) -> bool:
    try:
        return len(text.encode("utf-8", "surrogateescape")) <= 107
    except UnicodeEncodeError:
        return len(text.encode("utf-8", "surrogatepass")) <= 107


UNIX = (
    st.lists(SOCKET_COMPONENT, min_size=1, max_size=4)
    .map(lambda parts: "/" + "/".join(parts))
    .filter(lambda path: path.rstrip(WHITESPACE) == path and fits_sun_path(path))
    .map(lambda path: ListenAddress(ListenKind.UNIX, path=path))
)
ABSTRACT = (
    st.text(NO_NUL_CHAR, min_size=1, max_size=20)
    .filter(lambda name: name.strip(WHITESPACE) == name and fits_sun_path("@" + name))
    .map(lambda name: ListenAddress(ListenKind.ABSTRACT, path=name))
)


@given(address=st.one_of(INET, UNIX, ABSTRACT))
def test_listen_address_round_trip(address: ListenAddress) -> None:
    assert parse_listen_address(address.render()) == address


@settings(deadline=None)
@given(text=TEXT)
def test_listen_address_parse_render_parse_is_stable(text: str) -> None:
    try:
        address = parse_listen_address(text)
    except ValueFormError:
        return
    assert parse_listen_address(address.render()) == address


HOST_NAME = st.from_regex(
    r"[a-z][a-z0-9-]{0,10}[a-z0-9](\.[a-z][a-z0-9]{0,5}){0,3}", fullmatch=True
)
PROXY_INET = st.builds(
    lambda host, port: ListenAddress(ListenKind.INET, host=host, port=port),
    st.one_of(HOST_NAME, st.ip_addresses().map(lambda ip: canonical(str(ip)))),
    PORT,
)


@given(address=st.one_of(PROXY_INET, UNIX, ABSTRACT))
def test_proxy_target_round_trip(address: ListenAddress) -> None:
    assert parse_proxy_target(address.render()) == address
    if address.kind is ListenKind.INET:
        assert parse_proxy_target("tcp:" + address.render()) == address
    elif address.kind is ListenKind.UNIX:
        assert parse_proxy_target("unix:" + address.path) == address


@settings(deadline=None)
@given(text=TEXT)
def test_proxy_target_parse_render_parse_is_stable(text: str) -> None:
    try:
        address = parse_proxy_target(text)
    except ValueFormError:
        return
    assert parse_proxy_target(address.render()) == address
