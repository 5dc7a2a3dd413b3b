"""Whole-unit property tests of cinit.units, and a long fuzz run.

- Round trips: a generated `Unit` rendered with `render_unit` parses back (with
  `parse_unit`, and through real files with `load_units`) into an equal unit with no
  diagnostics; any text that parses renders back to text that parses to the same unit.
- Robustness: `parse_unit` on any text, and `load_units` on directories of arbitrary
  bytes (random, or mutated seed corpus files), return diagnostics and never raise.
- `test_fuzz_parse_unit_never_raises` (marked slow: `make test-slow`) pushes more than
  100,000 generated inputs through `parse_unit` with a seeded `random.Random`.

Value-level round trips (one parser and renderer at a time) live in test_values_properties.
"""

from __future__ import annotations

import _socket
import os
import random
import signal
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from cinit.units import (
    ActivationMode,
    Condition,
    ConditionKind,
    Diagnostic,
    EnvironmentFileRef,
    ExecCommand,
    ExitStatusSet,
    InstallSection,
    ListenAddress,
    ListenKind,
    Output,
    OutputTarget,
    RestartPolicy,
    ServiceSection,
    ServiceType,
    Severity,
    SocketSection,
    TimerSection,
    Unit,
    UnitKind,
    UnitSection,
    UnitSource,
    check_units,
    load_units,
    parse_unit,
    render_unit,
    schema,
)
from cinit.units.syntax import MAX_LINE_BYTES, decode_unit_bytes
from cinit.units.targets import TARGET_SERVICE
from cinit.units.values import parse_timespan

SEED = Path(__file__).resolve().parent.parent / "data" / "seed"
SEED_FILES = sorted(p for p in SEED.rglob("*") if p.suffix in (".service", ".socket"))
HOST = "h"

# --- characters ------------------------------------------------------------------------------

# What the syntax layer ends a line on (systemd's rule: \n, \r). Directives without an
# escape syntax (paths, names, Description=) cannot hold these: legitimately unrepresentable.
LINE_BREAKS = "\n\r"
# Characters the parsers treat specially, mixed in so the interesting paths get hit.
SPECIAL = list(" \t\"'\\$%{}:;=@-+!#[]*?~.,é€😀\u00a0\u3000\x1b\x7f")
# Lone surrogates are left out everywhere: a unit file is UTF-8 text, which cannot hold
# them (decode_unit_bytes refuses such bytes), so no real unit can contain one.
ANY_CHAR = st.characters(exclude_categories=["Cs"], exclude_characters="\0")
# Character-level exclusions go into st.characters() rather than .filter(): much faster.
WORD_CHAR = st.one_of(
    st.sampled_from(SPECIAL),
    st.characters(exclude_categories=["Cs"], exclude_characters="\0"),
)
RAW_CHAR = st.one_of(
    st.sampled_from(SPECIAL),
    st.characters(exclude_categories=["Cs"], exclude_characters="\0" + LINE_BREAKS),
)


def fits_in_a_line(value: str, *, expanded: bool) -> bool:
    """Whether `value` survives being written raw after `Directive=`.

    The syntax layer strips whitespace around values and joins a line ending in a
    backslash with the next one; directives read with `${VAR}` expansion turn any `${`
    into something else (there is no way to write a literal `${` in them).
    """
    if value != value.strip(" \t\n\r") or value.endswith("\\"):
        return False
    if any(char in LINE_BREAKS for char in value):
        return False
    return not (expanded and "${" in value)


def fs_length(text: str) -> int:
    return len(text.encode("utf-8"))


def raw_text(*, expanded: bool, min_size: int = 1, max_size: int = 20) -> st.SearchStrategy[str]:
    return st.text(RAW_CHAR, min_size=min_size, max_size=max_size).filter(
        lambda value: fits_in_a_line(value, expanded=expanded)
    )


COMPONENT_CHAR = st.one_of(
    st.sampled_from([c for c in SPECIAL if c != "/"]),
    st.characters(exclude_categories=["Cs"], exclude_characters="\0/" + LINE_BREAKS),
)
COMPONENT = st.text(COMPONENT_CHAR, min_size=1, max_size=10).filter(
    lambda part: part not in (".", "..")
)


def absolute_paths(max_parts: int = 3) -> st.SearchStrategy[str]:
    """Normalized absolute paths that fit raw in an expanded directive's line."""
    return (
        st.lists(COMPONENT, min_size=1, max_size=max_parts)
        .map(lambda parts: "/" + "/".join(parts))
        .filter(lambda path: fits_in_a_line(path, expanded=True))
    )


# --- value strategies --------------------------------------------------------------------------

NAME_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789_.-"
STEM = st.text(st.sampled_from(NAME_CHARS), min_size=1, max_size=10).map(lambda s: "u" + s)
# Unit names may use ':' and '\' (a socket's default FileDescriptorName= maps ':' to '_').
SERVICE_STEM = st.one_of(
    STEM, st.tuples(STEM, st.sampled_from([":", "\\", "@", "@i"]), STEM).map("".join)
)
SERVICE_NAME = SERVICE_STEM.map(lambda stem: stem + ".service")
SOCKET_NAME = SERVICE_STEM.map(lambda stem: stem + ".socket")
TARGET_NAME = SERVICE_STEM.map(lambda stem: stem + ".target")
TIMER_NAME = SERVICE_STEM.map(lambda stem: stem + ".timer")
REFERENCE = st.one_of(SERVICE_NAME, SOCKET_NAME, STEM.map(lambda stem: stem + ".target"))
REFERENCES = st.lists(REFERENCE, max_size=4).map(tuple)

# fmt: off
TIME_UNITS = ["", "us", "usec", "ms", "msec", "s", "sec", "m", "min", "minutes", "h", "hr", "d",
              "days", "w", "M", "y"]
# fmt: on
TIME_PART = st.tuples(
    st.integers(0, 100_000),
    st.one_of(st.just(""), st.integers(0, 999_999).map(lambda n: f".{n}")),
    st.sampled_from(["", " "]),
    st.sampled_from(TIME_UNITS),
).map(lambda part: f"{part[0]}{part[1]}{part[2]}{part[3]}")
TIME_TEXT = st.one_of(
    st.just("infinity"),
    st.lists(TIME_PART, min_size=1, max_size=4).map(" ".join),
)
# Seconds exactly as parse_timespan returns them: generated from systemd's unit combos,
# plus the dataclass defaults (render_unit leaves a value equal to its default out).
TIMESPAN = st.one_of(st.sampled_from([0.0, 0.1, 2.0, 10.0, 90.0]), TIME_TEXT.map(parse_timespan))

# Every signal number parse_signal can return (32 and 33 have no name glibc exposes).
SIGNALS = [n for n in range(1, signal.NSIG) if n not in (32, 33)]
UINT = st.integers(0, 2**31 - 1)
USER_NAME = raw_text(expanded=True, max_size=12).filter(
    # A user name is one word without ':' or '/'; a leading '!' or '|' on a ConditionUser=
    # value is read as negation or trigger, so a value cannot start with one.
    lambda name: (
        not any(c.isspace() or ord(c) < 32 or c in ":/" for c in name)
        and not name.startswith(("!", "|"))
    )
)
ENV_NAME = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True)
WORD = st.text(WORD_CHAR, max_size=12)

# Exec paths: no quotes, backslashes or control characters (refused by the parser); a
# bare program name must not start with a prefix character ('-', '@', ':', '+', '!'),
# which the parser reads as a prefix, exactly as systemd does.
PATH_CHAR = st.one_of(
    st.sampled_from([c for c in SPECIAL if c not in "/\"'\\\x7f\x1b\t"]),
    st.characters(exclude_categories=("Cs", "Cc"), exclude_characters="/\"'\\"),
)
EXEC_PATH = st.one_of(
    st.lists(
        st.text(PATH_CHAR, min_size=1, max_size=10).filter(lambda p: p not in (".", "..")),
        min_size=1,
        max_size=3,
    ).map(lambda parts: "/" + "/".join(parts)),
    st.text(PATH_CHAR, min_size=1, max_size=10).filter(
        lambda name: name not in (".", "..") and name[0] not in "-@:+!"
    ),
)


@st.composite
def exec_commands(draw: st.DrawFn, privileged: bool = False) -> ExecCommand:
    argv0_separate = draw(st.booleans())
    args = draw(st.lists(WORD, min_size=1 if argv0_separate else 0, max_size=5))
    return ExecCommand(
        words=(draw(EXEC_PATH), *args),
        ignore_failure=draw(st.booleans()),
        argv0_separate=argv0_separate,
        no_env_expansion=draw(st.booleans()),
        # "+", "!" and "!!" are accepted with a warning: see test_privilege_prefixes_*.
        privilege_prefix=draw(st.sampled_from(["+", "!", "!!"])) if privileged else "",
    )


EXEC_LIST = st.lists(exec_commands(), max_size=3).map(tuple)
ENVIRONMENT = st.lists(st.tuples(ENV_NAME, WORD), max_size=4).map(tuple)
OUTPUT = st.one_of(
    st.sampled_from([Output(OutputTarget.INHERIT), Output(OutputTarget.NULL)]),
    st.builds(Output, st.sampled_from([OutputTarget.FILE, OutputTarget.APPEND]), absolute_paths()),
)
WORKING_DIRECTORY = st.one_of(
    st.just(""),
    st.sampled_from(["~", "-~"]),
    absolute_paths(),
    absolute_paths().map(lambda path: "-" + path),
)


def canonical_ip(address: str) -> str:
    family = _socket.AF_INET6 if ":" in address else _socket.AF_INET
    return _socket.inet_ntop(family, _socket.inet_pton(family, address))


IP = st.ip_addresses().map(lambda ip: canonical_ip(str(ip)))
PORT = st.integers(1, 65535)
INET = st.builds(
    lambda host, port: ListenAddress(ListenKind.INET, host=host, port=port),
    st.one_of(st.just(""), IP),
    PORT,
)
UNIX = (
    absolute_paths(4)
    .filter(lambda path: fs_length(path) <= 107)
    .map(lambda path: ListenAddress(ListenKind.UNIX, path=path))
)
ABSTRACT = (
    raw_text(expanded=True, max_size=30)
    .filter(lambda name: fs_length(name) <= 106)
    .map(lambda name: ListenAddress(ListenKind.ABSTRACT, path=name))
)
LISTEN = st.one_of(INET, UNIX, ABSTRACT)
HOST_NAME = st.from_regex(
    r"[a-z][a-z0-9-]{0,10}[a-z0-9](\.[a-z][a-z0-9]{0,5}){0,3}", fullmatch=True
)
PROXY_TARGET = st.one_of(
    st.builds(
        lambda host, port: ListenAddress(ListenKind.INET, host=host, port=port),
        st.one_of(HOST_NAME, IP),
        PORT,
    ),
    UNIX,
    ABSTRACT,
)
FD_NAME = raw_text(expanded=True, max_size=16).filter(
    lambda name: all(c.isprintable() and c != ":" for c in name)
)


@st.composite
def conditions(draw: st.DrawFn) -> Condition:
    kind = draw(st.sampled_from(list(ConditionKind)))
    if kind in (ConditionKind.USER, ConditionKind.GROUP):
        value = draw(USER_NAME)
    elif kind in (ConditionKind.FIRST_BOOT, ConditionKind.AC_POWER):
        value = draw(st.sampled_from(["yes", "no"]))
    elif kind in _WORD_CONDITIONS:
        value = draw(st.sampled_from(["container", "vm", "docker", "CAP_NET_ADMIN", "x86-64"]))
    elif kind is ConditionKind.ENVIRONMENT:  # read without ${VAR} expansion
        value = draw(ENV_NAME)
        if draw(st.booleans()):
            value += "=" + draw(raw_text(expanded=False, min_size=0, max_size=10))
        value = value.strip()
    else:
        value = draw(absolute_paths())
    return Condition(kind, value, draw(st.booleans()), draw(st.booleans()))


# Checks whose value is a word (not a path, user name or environment variable).
_WORD_CONDITIONS = frozenset(
    {
        ConditionKind.VIRTUALIZATION,
        ConditionKind.CAPABILITY,
        ConditionKind.KERNEL_COMMAND_LINE,
        ConditionKind.SECURITY,
        ConditionKind.HOST,
        ConditionKind.ARCHITECTURE,
        ConditionKind.CREDENTIAL,
    }
)


@st.composite
def unit_sections(draw: st.DrawFn) -> UnitSection:
    return UnitSection(
        description=draw(st.one_of(st.just(""), raw_text(expanded=False, max_size=40))),
        after=draw(REFERENCES),
        before=draw(REFERENCES),
        requires=draw(REFERENCES),
        wants=draw(REFERENCES),
        on_failure=draw(REFERENCES),
        conditions=tuple(draw(st.lists(conditions(), max_size=4))),
        asserts=tuple(draw(st.lists(conditions(), max_size=2))),
        binds_to=draw(REFERENCES),
        part_of=draw(REFERENCES),
        conflicts=draw(REFERENCES),
        requisite=draw(REFERENCES),
        start_limit_burst=draw(UINT),
        start_limit_interval_sec=draw(TIMESPAN),
    )


@st.composite
def service_sections(draw: st.DrawFn) -> ServiceSection:
    # Only combinations parse_unit accepts without a diagnostic: one ExecStart= (several
    # for oneshot), no Restart=always/on-success on a oneshot, PIDFile= only when forking,
    # WatchdogSec= only with notify.
    kind = draw(st.sampled_from(list(ServiceType)))
    oneshot = kind is ServiceType.ONESHOT
    restarts = [
        r
        for r in RestartPolicy
        if not oneshot or r not in (RestartPolicy.ALWAYS, RestartPolicy.ON_SUCCESS)
    ]
    timeout_start = draw(TIMESPAN)
    return ServiceSection(
        type=kind,
        exec_start=tuple(draw(st.lists(exec_commands(), min_size=1, max_size=3 if oneshot else 1))),
        exec_start_pre=draw(EXEC_LIST),
        exec_start_post=draw(EXEC_LIST),
        exec_stop=draw(EXEC_LIST),
        exec_stop_post=draw(EXEC_LIST),
        restart=draw(st.sampled_from(restarts)),
        restart_sec=draw(TIMESPAN),
        timeout_start_sec=timeout_start,
        timeout_stop_sec=draw(TIMESPAN),
        kill_signal=draw(st.sampled_from(SIGNALS)),
        remain_after_exit=draw(st.booleans()),
        pid_file=draw(absolute_paths()) if kind is ServiceType.FORKING else "",
        watchdog_sec=draw(TIMESPAN) if kind is ServiceType.NOTIFY else 0.0,
        success_exit_status=ExitStatusSet(
            frozenset(draw(st.lists(st.integers(0, 255), max_size=4))),
            frozenset(draw(st.lists(st.sampled_from(SIGNALS), max_size=3))),
        ),
        environment=draw(ENVIRONMENT),
        environment_files=tuple(
            draw(
                st.lists(st.builds(EnvironmentFileRef, absolute_paths(), st.booleans()), max_size=3)
            )
        ),
        user=draw(st.one_of(st.just(""), USER_NAME)),
        group=draw(st.one_of(st.just(""), USER_NAME)),
        working_directory=draw(WORKING_DIRECTORY),
        standard_output=draw(OUTPUT),
        standard_error=draw(OUTPUT),
        exit_container_on_failure=draw(st.booleans()),
    )


@st.composite
def socket_sections(draw: st.DrawFn, name: str) -> SocketSection:
    # Only combinations parse_unit accepts: something to listen on; proxy mode with a
    # ProxyTarget=, streams only and Accept=no; a ProxyTarget= only in proxy mode.
    mode = draw(st.sampled_from(list(ActivationMode)))
    proxy = mode is ActivationMode.PROXY
    streams = draw(st.lists(LISTEN, min_size=1 if proxy else 0, max_size=3))
    datagrams = [] if proxy else draw(st.lists(LISTEN, min_size=0 if streams else 1, max_size=2))
    stem = name.rsplit(".", 1)[0]
    return SocketSection(
        listen_stream=tuple(streams),
        listen_datagram=tuple(datagrams),
        accept=False if proxy else draw(st.booleans()),
        # Unset Service= and FileDescriptorName= resolve to these defaults on parse.
        service=draw(st.one_of(st.just(stem + ".service"), SERVICE_NAME)),
        socket_user=draw(st.one_of(st.just(""), USER_NAME)),
        socket_group=draw(st.one_of(st.just(""), USER_NAME)),
        socket_mode=draw(st.integers(0, 0o7777)),
        backlog=draw(UINT),
        reuse_port=draw(st.booleans()),
        bind_ipv6_only=draw(st.sampled_from(["default", "both", "ipv6-only"])),
        file_descriptor_name=draw(st.one_of(st.just(name.replace(":", "_")), FD_NAME)),
        remove_on_stop=draw(st.booleans()),
        trigger_limit_interval_sec=draw(TIMESPAN),
        trigger_limit_burst=draw(UINT),
        max_connections=draw(st.integers(1, 2**31 - 1)),
        activation_mode=mode,
        proxy_target=draw(PROXY_TARGET) if proxy else None,
    )


@st.composite
def timer_sections(draw: st.DrawFn, name: str) -> TimerSection:
    # parse_unit wants a trigger and a .service to start (Unit= resolves to the stem's).
    spans = st.lists(TIMESPAN, max_size=2).map(tuple)
    calendar = st.lists(st.sampled_from(["daily", "hourly", "minutely"]), max_size=2).map(tuple)
    stem = name.rsplit(".", 1)[0]
    section = TimerSection(
        on_calendar=draw(calendar),
        on_active_sec=draw(spans),
        on_boot_sec=draw(spans),
        on_startup_sec=draw(spans),
        on_unit_active_sec=draw(spans),
        on_unit_inactive_sec=draw(spans),
        accuracy_sec=draw(TIMESPAN),
        randomized_delay_sec=draw(TIMESPAN),
        fixed_random_delay=draw(st.booleans()),
        persistent=draw(st.booleans()),
        unit=draw(st.one_of(st.just(stem + ".service"), SERVICE_NAME)),
        remain_after_elapse=draw(st.booleans()),
    )
    if not section.has_trigger:
        section = section.replace(on_boot_sec=(1.0,))
    return section


@st.composite
def units(draw: st.DrawFn, kind: UnitKind | None = None) -> Unit:
    if kind is None:
        kind = draw(st.sampled_from(list(UnitKind)))
    names = {
        UnitKind.SERVICE: SERVICE_NAME,
        UnitKind.SOCKET: SOCKET_NAME,
        UnitKind.TARGET: TARGET_NAME,
        UnitKind.TIMER: TIMER_NAME,
    }
    name = draw(names[kind])
    unit = Unit(
        name=name,
        path=name,
        kind=kind,
        unit=draw(unit_sections()),
        install=InstallSection(wanted_by=draw(REFERENCES), required_by=draw(REFERENCES)),
    )
    if kind is UnitKind.TARGET:
        return unit.replace(service=TARGET_SERVICE)
    if kind is UnitKind.SERVICE:
        return unit.replace(service=draw(service_sections()))
    if kind is UnitKind.TIMER:
        return unit.replace(timer=draw(timer_sections(name)))
    return unit.replace(socket=draw(socket_sections(name)))


def parse_clean(name: str, text: str) -> tuple[Unit | None, list[Diagnostic]]:
    return parse_unit(name, text, environ={}, hostname=HOST)


# --- round trips -------------------------------------------------------------------------------


@settings(max_examples=350, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(unit=units())
def test_rendered_unit_parses_back_equal_and_clean(unit: Unit) -> None:
    text = render_unit(unit)
    again, diagnostics = parse_clean(unit.name, text)
    assert [d.format() for d in diagnostics] == []
    assert again == unit
    assert render_unit(again) == text  # rendering is a function of the unit alone


DECOY = {
    UnitKind.SERVICE: "[Service]\nExecStart=/decoy\n",
    UnitKind.SOCKET: "[Socket]\nListenStream=1\n",
    UnitKind.TARGET: "[Unit]\nDescription=decoy\n",
    UnitKind.TIMER: "[Timer]\nOnBootSec=1s\n",
}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    batch=st.lists(units(), min_size=1, max_size=5, unique_by=lambda unit: unit.name),
    placement=st.lists(st.sampled_from(["core", "drop-in", "override"]), min_size=5, max_size=5),
)
def test_rendered_units_load_back_from_utf8_files(batch: list[Unit], placement: list[str]) -> None:
    """Rendered text is real file content: UTF-8, read back by load_units unchanged, from
    the core directory, the drop-in directory, or a drop-in replacing a core decoy."""
    with tempfile.TemporaryDirectory() as tmp:
        core, drop = Path(tmp, "units"), Path(tmp, "drop")
        core.mkdir()
        drop.mkdir()
        paths = {}
        for unit, where in zip(batch, placement, strict=False):
            path = (core if where == "core" else drop) / unit.name
            path.write_bytes(render_unit(unit).encode("utf-8"))
            paths[unit.name] = str(path)
            if where == "override":
                (core / unit.name).write_text(DECOY[unit.kind])
        result = load_units(str(core), str(drop), environ={}, hostname=HOST)
        # Every diagnostic is a cross-unit one (references to units not in the batch...):
        # no file produced a diagnostic of its own.
        assert list(result.diagnostics) == check_units(result.units)
        # Targets named but defined by no file are implicit, empty ones.
        implicit = {n for n, u in result.units.items() if u.source is UnitSource.IMPLICIT}
        assert set(result.units) - implicit == set(paths)
        assert all(n.endswith(".target") and n not in paths for n in implicit)
        for unit in batch:
            loaded = result.units[unit.name]
            assert loaded.path == paths[unit.name]
            assert loaded.replace(path=unit.path, source=unit.source, overrides="") == unit
        overridden = {
            u.name for u, where in zip(batch, placement, strict=False) if where == "override"
        }
        assert {o.name for o in result.overrides} == overridden
        for name in overridden:
            assert result.units[name].overrides == str(core / name)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(unit=units(UnitKind.SERVICE), data=st.data())
def test_privilege_prefixes_round_trip_with_one_warning_each(
    unit: Unit, data: st.DataObject
) -> None:
    assert unit.service is not None
    command = data.draw(exec_commands(privileged=True))
    service = unit.service.replace(exec_stop=(*unit.service.exec_stop, command))
    unit = unit.replace(service=service)
    again, diagnostics = parse_clean(unit.name, render_unit(unit))
    assert again == unit
    assert [(d.severity, d.directive) for d in diagnostics] == [(Severity.WARNING, "ExecStop")]
    assert f"prefix '{command.privilege_prefix}' accepted" in diagnostics[0].message


def _parsed_text_round_trips(name: str, text: str) -> None:
    """Whatever a text parses to (errors or not) renders to text that parses the same."""
    unit, _diagnostics = parse_clean(name, text)
    if unit is None:
        return
    rendered = render_unit(unit)
    again, _ = parse_clean(name, rendered)
    assert again == unit, rendered


# --- random unit-file text (also the generator of the slow fuzz run) -----------------------------

DIRECTIVE_NAMES = sorted({name for _section, name in schema.DIRECTIVES})
SECTION_NAMES = ["Unit", "Service", "Socket", "Install", "X-Extra", "Bogus", "service", ""]
# fmt: off
VALUE_POOL = [
    "", "yes", "no", "on", "0", "1", "true", "maybe", "5", "90", "90s", "1min 30s", "500ms",
    "2.5s", "infinity", "-1", "5x", "1.", "3 h 2min", "18446744073709551615", "simple", "exec",
    "oneshot", "forking", "notify", "on-failure", "always", "on-success", "native", "proxy",
    "SIGTERM", "TERM", "9", "SIGRTMIN+3", "RTMAX-1", "sigterm", "TEMPFAIL SIGHUP 3 255",
    "/bin/true", "-/bin/false", "@/bin/sh sh -c 'echo $HOME ${HOME} $$'", ":+/bin/env A=1",
    "!!/usr/bin/x", "/usr/bin/printf \"%s\\n\" 'a b' \\x41 \\u00e9 \\;", "/bin/echo ;",
    "/bin/x 'unterminated", "relative/path", "A=1 \"B=2 3\" C=\\\"q\\\"", "1BAD=x", "A",
    "-/etc/default/app", "/etc/env", "file:/var/log/x.log", "append:/tmp/y", "file:rel",
    "inherit", "null", "journal", "!/etc/x", "/etc/*.conf", "!A=1", "root", "!root",
    "${APP_USER:-app}", "${HOME}", "${", "${1}", "${A:=x}", "$${A}", "%n", "%N", "%H", "%%",
    "%z", "100%", "a.service b.socket c.target", "bad name", "x.mount", "8080", "0",
    "65536", "127.0.0.1:5000", "[::1]:80", "[::ffff:1.2.3.4]:9", "[fe80::1", "::1:80",
    "localhost:80", "tcp:example.com:443", "unix:/run/x.sock", "unix:@abs", "/run/y.sock",
    "/run/../x", "@abstract", "@", "0660", "0o660", "99999", "default", "both", "ipv6-only",
    "fd:name", "~", "-~", "/srv/app", "app.service", "other.socket", "\\", "\"", "'", "=",
]
# fmt: on
RANDOM_ALPHABET = (
    list("[]=\\%$\"'{};#:@-+!/ \t\n\n\n\r.,*?~_")
    + list("abcdefghijklmnopqrstuvwxyzAEST0159")
    + ["é", "€", "😀", "\x00", "\x1b", "\x7f", "\v", "\f", "\x1c", "\x85", "\u2028", "\ufeff"]
)


def random_text(rng: random.Random) -> str:
    """Text from an alphabet heavy in syntax characters, sometimes with a very long line."""
    length = rng.choice((0, 1, 5, 20, 80, 300, 2000))
    text = "".join(rng.choices(RANDOM_ALPHABET, k=length))
    if rng.random() < 0.003:  # a line longer than the syntax layer accepts
        text += "\n" + rng.choice("[=\\%$\"'a ") * (MAX_LINE_BYTES + rng.randint(1, 10))
    elif rng.random() < 0.05:
        text += "\n" + rng.choice(("[", "=", "\\", "%", "$", '"', "'", "${", "%%", "\\x")) * (
            rng.randint(100, 20_000)
        )
    return text


# Values each directive accepts (by kind of value), so that many generated files parse clean.
_BOOL = ["yes", "no", "true", "0", "on"]
_SPAN = ["5s", "500ms", "1min 30s", "90", "2h", "infinity", "0", "1.5", "3 d", "250us"]
_NAMES = ["a.service", "b.socket c.target", "f.service", "x@y.service"]
_PATHS = ["/etc/x", "!/etc/%N", "/run/${APP_USER}/x", "/var/lib/app data"]
_EXEC = [
    "/bin/true",
    "-/bin/false",
    "@/bin/sh sh -c 'echo $HOME ${HOME} $$'",
    ":/usr/bin/env A=1",
    "/usr/bin/printf \"%%s\\n\" 'a b' \\x41 \\u00e9 \\;",
    "sleep 1",
    "/bin/echo %n %N %H",
]
# fmt: off
VALID_VALUES: dict[str, list[str]] = {
    "Description": ["web server", "a %n unit", "quotes ' \" and ${NOT_EXPANDED}"],
    "After": _NAMES, "Before": _NAMES, "Requires": _NAMES, "Wants": _NAMES,
    "OnFailure": _NAMES, "WantedBy": _NAMES,
    "StartLimitBurst": ["0", "5", "100"], "StartLimitIntervalSec": _SPAN,
    "ConditionPathExists": _PATHS, "ConditionPathExistsGlob": ["/etc/*.conf", "!/x/?"],
    "ConditionEnvironment": ["A", "!A=1", "B=two words"], "ConditionUser": ["root", "!0"],
    "Type": ["simple", "exec", "oneshot", "forking", "notify"],
    "ExecStart": _EXEC, "ExecStartPre": _EXEC, "ExecStartPost": _EXEC, "ExecStop": _EXEC,
    "ExecStopPost": _EXEC,
    "Restart": ["no", "on-failure", "on-abnormal", "on-abort", "always", "on-success"],
    "RestartSec": _SPAN, "TimeoutStartSec": _SPAN, "TimeoutStopSec": _SPAN,
    "WatchdogSec": _SPAN, "TriggerLimitIntervalSec": _SPAN,
    "KillSignal": ["SIGTERM", "INT", "9", "SIGRTMIN+2"],
    "SuccessExitStatus": ["0 1", "TEMPFAIL SIGHUP", "255 SIGUSR1"],
    "RemainAfterExit": _BOOL, "ExitContainerOnFailure": _BOOL, "Accept": _BOOL,
    "ReusePort": _BOOL, "RemoveOnStop": _BOOL,
    "PIDFile": ["/run/x.pid"],
    "Environment": ["A=1", '"B=two words" C=\\x41', "D="],
    "EnvironmentFile": ["-/etc/default/%N", "/etc/env"],
    "User": ["app", "${APP_USER:-app}", "0"], "Group": ["app", "users"],
    "SocketUser": ["app"], "SocketGroup": ["app"],
    "WorkingDirectory": ["/srv", "~", "-/srv/${APP_USER}"],
    "StandardOutput": ["inherit", "null", "file:/var/log/x"],
    "StandardError": ["inherit", "append:/var/log/%N.log"],
    "ListenStream": ["8080", "127.0.0.1:81", "[::1]:82", "/run/x.sock", "@abs"],
    "ListenDatagram": ["9090", "/run/d.sock"],
    "Service": ["other.service"], "SocketMode": ["0660", "600"], "Backlog": ["128"],
    "BindIPv6Only": ["default", "both", "ipv6-only"], "FileDescriptorName": ["web"],
    "TriggerLimitBurst": ["20"], "MaxConnections": ["64"],
    "ActivationMode": ["native", "proxy"],
    "ProxyTarget": ["127.0.0.1:9000", "localhost:9001", "unix:/run/t.sock", "@t"],
}
# fmt: on


def structured_text(rng: random.Random, kind: str = "service") -> str:
    """A plausible unit file of `kind`: its sections, mostly its own directives with values
    they accept, plus misspellings, foreign sections and values from an adversarial pool."""
    main = "Service" if kind == "service" else "Socket"
    lines: list[str] = []
    if rng.random() < 0.8:  # what the kind needs to be valid at all
        lines += [f"[{main}]", "ExecStart=/bin/true" if kind == "service" else "ListenStream=80"]
    for _ in range(rng.randint(0, 4)):
        section = (
            rng.choice(("Unit", main, main, "Install"))
            if rng.random() < 0.85
            else (rng.choice(SECTION_NAMES))
        )
        lines.append(f"[{section}]")
        names = schema.NAMES_BY_SECTION.get(section) or DIRECTIVE_NAMES
        for _ in range(rng.randint(0, 6)):
            key = rng.choice(names if rng.random() < 0.9 else DIRECTIVE_NAMES)
            roll = rng.random()
            if roll < 0.03:
                key = key[:-1] + rng.choice("xse")  # a typo: "did you mean"
            elif roll < 0.05:
                key = "X-" + key
            if rng.random() < 0.8 and key in VALID_VALUES:
                value = rng.choice(VALID_VALUES[key])
            else:
                value = rng.choice(VALUE_POOL)
                if rng.random() < 0.2:
                    value += " " + rng.choice(VALUE_POOL)
            if rng.random() < 0.03:
                value += " \\"  # continuation
            lines.append(f"{key}={value}")
        if rng.random() < 0.2:
            lines.append(rng.choice(("# comment", "; comment", "", "   ", "\\")))
    return "\n".join(lines) + rng.choice(("\n", "", "\r\n"))


def mutate_text(rng: random.Random, text: str) -> str:
    """Insert, delete, duplicate or swap characters and lines."""
    for _ in range(rng.randint(1, 4)):
        roll = rng.random()
        pos = rng.randint(0, len(text))
        if roll < 0.3:
            text = text[:pos] + rng.choice(RANDOM_ALPHABET) + text[pos:]
        elif roll < 0.5:
            text = text[:pos] + text[pos + rng.randint(1, 5) :]
        else:
            lines = text.split("\n")
            index = rng.randrange(len(lines))
            if roll < 0.75:
                lines.insert(index, lines[index])
            elif roll < 0.9:
                other = rng.randrange(len(lines))
                lines[index], lines[other] = lines[other], lines[index]
            else:
                del lines[index]
            text = "\n".join(lines)
    return text


def mutate_bytes(rng: random.Random, data: bytes) -> bytes:
    """Byte insertions and deletions, and whole-line duplications."""
    buffer = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        roll = rng.random()
        pos = rng.randint(0, len(buffer))
        if roll < 0.4:
            buffer[pos:pos] = bytes([rng.randrange(256)])
        elif roll < 0.6:
            del buffer[pos : pos + rng.randint(1, 8)]
        else:
            lines = bytes(buffer).split(b"\n")
            index = rng.randrange(len(lines))
            lines[index:index] = [lines[index]] * rng.randint(1, 3)
            buffer = bytearray(b"\n".join(lines))
    return bytes(buffer)


def random_name(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.45:
        return "fuzz.service"
    if roll < 0.9:
        return "fuzz.socket"
    return rng.choice(("fuzz.mount", "", "a b.service", ".service", "x@y@z.socket", "é.socket"))


def kind_of(name: str) -> str:
    return "socket" if name.endswith(".socket") else "service"


def check_parse(name: str, text: str) -> None:
    """The property: parse_unit returns (never raises) and each diagnostic is one line."""
    unit, diagnostics = parse_unit(name, text, environ={"APP_USER": "u"}, hostname=HOST)
    assert unit is not None or diagnostics
    for diagnostic in diagnostics:
        assert len(diagnostic.format().splitlines()) == 1, diagnostic
        assert_no_internal_error(diagnostic)


def assert_no_internal_error(diagnostic: Diagnostic) -> None:
    """The loader turns a parser's bug into an error diagnostic, so the set is still read:
    for these properties such a diagnostic is the exception it stands for."""
    assert "(internal error: " not in diagnostic.message, diagnostic.format()[:500]


# --- never raises ---------------------------------------------------------------------------------

TEXT = st.text(st.one_of(st.sampled_from(RANDOM_ALPHABET), st.characters()), max_size=300)
LONG_RUN = st.tuples(
    st.sampled_from(["[", "=", "\\", "%", "$", '"', "'", "${", "%z", "a="]), st.integers(1, 20_000)
).map(lambda run: run[0] * run[1])
UNIT_TEXT = st.lists(st.one_of(TEXT, LONG_RUN), max_size=6).map("\n".join)


@settings(max_examples=500, deadline=None)
@given(name=st.sampled_from(["a.service", "a.socket", "a.mount"]), text=UNIT_TEXT)
@example(name="a.service", text="[Service]\nExecStart=/bin/" + "x" * (MAX_LINE_BYTES + 1))
@example(name="a.socket", text="[Socket]\n" + "\\" * (MAX_LINE_BYTES + 1))
@example(name="a.service", text="[" * (MAX_LINE_BYTES // 2))
def test_parse_unit_on_any_text_returns_diagnostics(name: str, text: str) -> None:
    check_parse(name, text)


@settings(max_examples=300, deadline=None)
@given(rng=st.randoms(use_true_random=False))
def test_parse_unit_on_structured_and_mutated_text_returns_diagnostics(
    rng: random.Random,
) -> None:
    name = random_name(rng)
    text = structured_text(rng, kind_of(name))
    check_parse(name, mutate_text(rng, text) if rng.random() < 0.5 else text)


@settings(max_examples=300, deadline=None)
@given(rng=st.randoms(use_true_random=False))
def test_whatever_text_parses_to_renders_back_to_the_same_unit(rng: random.Random) -> None:
    name = rng.choice(("f.service", "f.socket"))
    _parsed_text_round_trips(name, structured_text(rng, kind_of(name)))


# --- numbers of any size, in every directive of the table ------------------------------------

# What each target of the table is built from, with its defaults (the field types).
SECTION_DEFAULTS = {
    schema.UNIT: UnitSection(),
    schema.SERVICE: ServiceSection(),
    schema.SOCKET: SocketSection(),
    schema.TIMER: TimerSection(),
    schema.INSTALL: InstallSection(),
}
ALL_DIRECTIVES = sorted(schema.DIRECTIVES.values(), key=lambda row: (row.section, row.name))
# The directives whose value is a number (counts, sizes, modes, signals, time spans):
# every int or float field of the table that is not a boolean.
NUMERIC_DIRECTIVES = [
    row
    for row in ALL_DIRECTIVES
    if type(getattr(SECTION_DEFAULTS[row.target], row.field)) in (int, float)
]
# Past int()'s 4,300-digit limit, with leading zeros or not, alone or inside a value form.
HUGE_DIGITS = st.builds(
    lambda lead, digit, count: lead + digit * count,
    st.sampled_from(["", "0", "000"]),
    st.sampled_from("13579"),
    st.integers(4_301, 12_000),
)
NUMBER_FORMS = st.sampled_from(
    [
        "{}",
        "{}s",
        "{} ms",
        "1min {}",
        "0.{}",
        "{}.5",
        "-{}",
        "+{}",
        "SIGRTMIN+{}",
        "RTMAX-{}",
        "127.0.0.1:{}",
        "[::1]:{}",
        "{}:80",
        "!{}",
        "{} {}",
    ]
)


def unit_around(row: schema.Directive, value: str) -> tuple[str, str]:
    """(file name, text) of a valid unit of the row's kind with `Name=value` on line 4."""
    if row.section == "Socket":
        return "a.socket", f"[Socket]\nListenStream=80\nService=s.service\n{row.name}={value}\n"
    if row.section == "Timer":
        return "a.timer", f"[Timer]\nOnBootSec=1s\nUnit=s.service\n{row.name}={value}\n"
    return "a.service", f"[Service]\nExecStart=/bin/true\n[{row.section}]\n{row.name}={value}\n"


def test_the_numeric_directives_come_from_the_table() -> None:
    names = {(row.section, row.name) for row in NUMERIC_DIRECTIVES}
    for expected in [
        ("Unit", "StartLimitBurst"),
        ("Socket", "Backlog"),
        ("Socket", "MaxConnections"),
        ("Socket", "TriggerLimitBurst"),
        ("Service", "RestartSec"),
        ("Service", "KillSignal"),
        ("Socket", "SocketMode"),
    ]:
        assert expected in names
    assert ("Socket", "Accept") not in names  # a boolean is no number


@settings(max_examples=300, deadline=None)
@given(row=st.sampled_from(ALL_DIRECTIVES), digits=HUGE_DIGITS, form=NUMBER_FORMS)
def test_a_huge_number_in_any_directive_is_a_diagnostic(
    row: schema.Directive, digits: str, form: str
) -> None:
    name, text = unit_around(row, form.replace("{}", digits))
    unit, diagnostics = parse_unit(name, text, environ={}, hostname=HOST)
    assert unit is not None
    for diagnostic in diagnostics:
        line = diagnostic.format()
        assert len(line.splitlines()) == 1 and len(line) < 1000, line[:300]
        assert_no_internal_error(diagnostic)


@pytest.mark.parametrize("row", NUMERIC_DIRECTIVES, ids=lambda row: f"{row.section}.{row.name}")
@settings(max_examples=10, deadline=None)
@given(digits=HUGE_DIGITS)
def test_a_huge_number_in_a_numeric_directive_is_an_error_at_its_line(
    row: schema.Directive, digits: str
) -> None:
    name, text = unit_around(row, digits)
    _unit, diagnostics = parse_unit(name, text, path=f"/u/{name}", environ={}, hostname=HOST)
    errors = [d for d in diagnostics if d.severity is Severity.ERROR]
    assert [(d.line, d.directive) for d in errors] == [(4, row.name)], errors


FILE_NAMES = st.sampled_from(
    ["a.service", "b.socket", "c.service", "not-a-unit.txt", "x y.service", "é.socket"]
)


def _write_tree(root: Path, files: dict[str, bytes]) -> None:
    root.mkdir()
    for name, data in files.items():
        (root / name).write_bytes(data)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    core=st.dictionaries(FILE_NAMES, st.binary(max_size=400), max_size=4),
    drop=st.dictionaries(FILE_NAMES, st.binary(max_size=400), max_size=4),
    strict=st.booleans(),
)
def test_load_units_on_binary_files_returns_diagnostics(
    core: dict[str, bytes], drop: dict[str, bytes], strict: bool
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        _write_tree(Path(tmp, "units"), core)
        _write_tree(Path(tmp, "drop"), drop)
        result = load_units(
            str(Path(tmp, "units")),
            str(Path(tmp, "drop")),
            strict=strict,
            environ={},
            hostname=HOST,
        )
    assert set(result.units) <= set(core) | set(drop)
    for diagnostic in result.diagnostics:
        assert len(diagnostic.format().splitlines()) == 1, diagnostic
        assert_no_internal_error(diagnostic)
    result.start_order()  # the graph of whatever loaded is always buildable


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rng=st.randoms(use_true_random=False), strict=st.booleans())
def test_load_units_on_mutated_seed_files_returns_diagnostics(
    rng: random.Random, strict: bool
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        core, drop = Path(tmp, "units"), Path(tmp, "drop")
        core.mkdir()
        drop.mkdir()
        for seed_file in SEED_FILES:
            data = seed_file.read_bytes()
            if rng.random() < 0.6:
                data = mutate_bytes(rng, data)
            target = core if seed_file.parent.name == "units" else drop
            (target / seed_file.name).write_bytes(data)
        result = load_units(str(core), str(drop), strict=strict, environ={}, hostname=HOST)
    for diagnostic in result.diagnostics:
        assert len(diagnostic.format().splitlines()) == 1, diagnostic
        assert_no_internal_error(diagnostic)
    result.start_order()


# --- regressions: bugs this file found once (fixed) ---------------------------------------


def _round_trip(name: str, text: str) -> None:
    unit, diagnostics = parse_clean(name, text)
    assert unit is not None and diagnostics == []
    rendered = render_unit(unit)
    again, diagnostics = parse_clean(name, rendered)
    assert [d.format() for d in diagnostics] == []
    assert again == unit, rendered
    rendered.encode("utf-8")  # a unit file is UTF-8


def test_oneshot_with_a_90s_start_timeout_round_trips() -> None:
    _round_trip("a.service", "[Service]\nType=oneshot\nExecStart=/bin/true\nTimeoutStartSec=90\n")


@pytest.mark.parametrize("escape", ["\\u2028", "\\u0085", "\\u2029"])
def test_exec_word_with_a_unicode_line_separator_round_trips(escape: str) -> None:
    _round_trip("a.service", f'[Service]\nExecStart=/bin/echo "a{escape}b"\n')


def test_exec_word_with_a_raw_byte_renders_as_utf8() -> None:
    _round_trip("a.service", '[Service]\nExecStart=/bin/echo "\\xff"\n')


def test_socket_name_with_a_colon_round_trips() -> None:
    _round_trip("a:b.socket", "[Socket]\nListenStream=80\n")


def test_unicode_line_separator_inside_a_value_does_not_end_the_line() -> None:
    unit, diagnostics = parse_clean(
        "a.service", "[Unit]\nDescription=a\u2028b\n[Service]\nExecStart=/x\n"
    )
    assert diagnostics == [] and unit is not None and unit.unit.description == "a\u2028b"


# --- the long fuzz run ----------------------------------------------------------------------------

# Override with CINIT_FUZZ_INPUTS / CINIT_FUZZ_SEED (a failure message names the seed).
FUZZ_INPUTS = int(os.environ.get("CINIT_FUZZ_INPUTS", "250000"))
FUZZ_SEED = int(os.environ.get("CINIT_FUZZ_SEED", "20240601"))


def _seed_texts() -> list[str]:
    return [path.read_text() for path in SEED_FILES]


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_fuzz_parse_unit_never_raises() -> None:
    """>= 100,000 generated inputs through parse_unit; any exception fails the run.

    Kinds, in turn: random text, structured unit files (plain or mutated), mutated seed
    corpus files, and random or mutated bytes through decode_unit_bytes.
    """
    rng = random.Random(FUZZ_SEED)
    seeds = _seed_texts()
    seed_bytes = [text.encode() for text in seeds]

    def random_bytes() -> tuple[str, bytes]:
        if rng.random() < 0.5:
            data = rng.randbytes(rng.choice((0, 10, 100, 1000)))
        else:
            data = mutate_bytes(rng, rng.choice(seed_bytes))
        return random_name(rng), data

    def structured() -> tuple[str, str]:
        name = random_name(rng)
        return name, structured_text(rng, kind_of(name))

    def mutated_structured() -> tuple[str, str]:
        name, text = structured()
        return name, mutate_text(rng, text)

    kinds: list[tuple[str, Callable[[], tuple[str, str | bytes]]]] = [
        ("random text", lambda: (random_name(rng), random_text(rng))),
        ("structured", structured),
        ("mutated structured", mutated_structured),
        ("mutated seed", lambda: (random_name(rng), mutate_text(rng, rng.choice(seeds)))),
        ("bytes", random_bytes),
    ]
    counts = dict.fromkeys((kind for kind, _ in kinds), 0)
    decoded = with_units = diagnostics_total = 0
    started = time.perf_counter()
    for number in range(FUZZ_INPUTS):
        kind, make = kinds[number % len(kinds)]
        name, payload = make()
        try:
            if isinstance(payload, bytes):
                text, _ = decode_unit_bytes(payload, name)
                if text is None:
                    counts[kind] += 1
                    continue
                decoded += 1
                payload = text
            unit, diagnostics = parse_unit(name, payload, environ={"APP_USER": "u"}, hostname=HOST)
            for diagnostic in diagnostics:  # a parser's bug, caught by the loader
                if "(internal error: " in diagnostic.message:
                    raise AssertionError(diagnostic.message)
        except Exception as exc:  # the property under test: nothing escapes
            pytest.fail(
                f"input #{number} ({kind}, seed {FUZZ_SEED}) raised {exc!r}: "
                f"{name!r} {payload[:300]!r}"
            )
        counts[kind] += 1
        with_units += unit is not None
        diagnostics_total += len(diagnostics)
    elapsed = time.perf_counter() - started
    total = sum(counts.values())
    print(
        f"\nfuzz: {total} inputs through parse_unit in {elapsed:.1f} s "
        f"({total / elapsed:,.0f}/s), seed {FUZZ_SEED}, 0 exceptions; per kind {counts}; "
        f"{decoded} byte inputs decoded to text; {with_units} gave a unit; "
        f"{diagnostics_total} diagnostics"
    )
    assert total == FUZZ_INPUTS
    assert total >= 100_000 or "CINIT_FUZZ_INPUTS" in os.environ  # only a chosen run is shorter


def test_fuzz_generators_produce_what_they_claim() -> None:
    """The fuzz inputs are not trivially rejected: some parse clean, some have errors."""
    rng = random.Random(1)
    clean = errors = 0
    for number in range(300):
        name = ("f.service", "f.socket")[number % 2]
        _unit, diagnostics = parse_clean(name, structured_text(rng, kind_of(name)))
        if not diagnostics:
            clean += 1
        elif any(d.severity is Severity.ERROR for d in diagnostics):
            errors += 1
    assert clean > 0 and errors > 0
    assert any(len(random_text(rng)) > 10_000 for _ in range(200))
    data = SEED_FILES[0].read_bytes()
    assert mutate_bytes(rng, data) != data
