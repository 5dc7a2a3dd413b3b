"""Table-driven tests of the value forms in cinit.units.values (systemd's documented examples
first, then the edge cases and every error path)."""

from __future__ import annotations

import math
import signal
from pathlib import Path

import pytest

from cinit.units.addresses import parse_listen_address, parse_proxy_target
from cinit.units.commands import (
    expand_exec_words,
    parse_exec_line,
    render_exec_line,
    split_words,
    tokenize_words,
)
from cinit.units.diagnostics import ValueFormError
from cinit.units.environment import (
    expand_vars,
    parse_env_file,
    parse_environment,
    read_env_file,
    render_environment,
)
from cinit.units.model import (
    ExecCommand,
    ExitStatusSet,
    ListenAddress,
    ListenKind,
    Output,
    OutputTarget,
)
from cinit.units.specifiers import HostFacts, expand
from cinit.units.values import (
    parse_bool,
    parse_exit_status_set,
    parse_octal_mode,
    parse_output,
    parse_signal,
    parse_timespan,
    parse_unit_names,
    render_bool,
    render_timespan,
)


def assert_error(func: object, text: str, *fragments: str) -> None:
    """`func(text)` raises ValueFormError naming the value (or the given fragments)."""
    assert callable(func)
    with pytest.raises(ValueFormError) as info:
        func(text)
    message = str(info.value)
    for fragment in fragments or (text.strip(),):
        assert fragment in message, f"{fragment!r} not in {message!r}"


# --- booleans ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        *((word, True) for word in ["1", "yes", "y", "true", "t", "on", "YES", "True", "On"]),
        *((word, False) for word in ["0", "no", "n", "false", "f", "off", "NO", "False", "OFF"]),
        (" yes ", True),
        ("\toff\n", False),
    ],
)
def test_parse_bool(text: str, expected: bool) -> None:
    assert parse_bool(text) is expected


@pytest.mark.parametrize("text", ["", "maybe", "2", "yess", "o", "tru e", "ja"])
def test_parse_bool_errors(text: str) -> None:
    assert_error(parse_bool, text, f"'{text}'", "invalid boolean")


def test_render_bool() -> None:
    assert (render_bool(True), render_bool(False)) == ("yes", "no")
    assert parse_bool(render_bool(True)) is True
    assert parse_bool(render_bool(False)) is False


# --- time spans -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        # systemd.time's examples
        ("2 h", 7200),
        ("2hours", 7200),
        ("48hr", 48 * 3600),
        ("1y 12month", 2 * 31_557_600),
        ("55s500ms", 55.5),
        ("300ms20s 5day", 5 * 86400 + 20.3),
        # the contract's forms
        ("500ms", 0.5),
        ("2s", 2),
        ("1min 30s", 90),
        ("1min30s", 90),
        ("1h", 3600),
        ("2.5s", 2.5),
        ("10", 10),
        ("0", 0),
        ("infinity", math.inf),
        ("  infinity  ", math.inf),
        # every unit
        ("1us", 1e-6),
        ("1usec", 1e-6),
        ("1µs", 1e-6),
        ("1μs", 1e-6),
        ("1ms", 0.001),
        ("1msec", 0.001),
        ("1s", 1),
        ("1sec", 1),
        ("1second", 1),
        ("2seconds", 2),
        ("1m", 60),
        ("1min", 60),
        ("1minute", 60),
        ("2minutes", 120),
        ("1h", 3600),
        ("1hr", 3600),
        ("1hour", 3600),
        ("2hours", 7200),
        ("1d", 86400),
        ("1day", 86400),
        ("2days", 172800),
        ("1w", 604800),
        ("1week", 604800),
        ("2weeks", 1209600),
        ("1M", 2_629_800),
        ("1month", 2_629_800),
        ("2months", 5_259_600),
        ("1y", 31_557_600),
        ("1year", 31_557_600),
        ("2years", 63_115_200),
        # spacing and fractions as systemd reads them
        (" 5 ", 5),
        ("5 5", 10),
        ("1 min 30 s", 90),
        (".5", 0.5),
        ("0.5s", 0.5),
        ("1.5min", 90),
        ("12.34s.56", 12.9),
        ("1.5us", 1e-6),  # finer than a microsecond is dropped
        ("0.0000019s", 1e-6),
        ("007s", 7),
        ("0" * 5000 + "1s", 1),  # leading zeros do not count towards "too large"
        ("1.000000000000000000000000001s", 1),
        ("1d 2h 3min 4s 5ms 6us", 93784.005006),
    ],
)
def test_parse_timespan(text: str, seconds: float) -> None:
    assert parse_timespan(text) == pytest.approx(seconds, rel=1e-12, abs=0)


def test_parse_timespan_exact_microseconds() -> None:
    assert parse_timespan("1s 1us") == 1_000_001 / 1_000_000
    assert parse_timespan("0.1s") == 0.1
    assert parse_timespan("100ms") == 0.1


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("5x", "unknown unit 'x'"),
        ("5 x", "unknown unit 'x'"),
        ("1min 30q", "unknown unit 'q'"),
        ("5S", "unknown unit 'S'"),
        ("5MIN", "unknown unit 'MIN'"),
        ("-1", "negative"),
        ("-0", "negative"),
        ("1s -1s", "negative"),
        ("3.", "digits after '.'"),
        ("3.s", "digits after '.'"),
        ("3. 1", "digits after '.'"),
        ("1.2.3", "unexpected"),
        ("x", "expected a number"),
        ("s", "expected a number"),
        ("+5s", "expected a number"),
        ("infinity 5", "nothing may follow"),
        ("infinityx", "nothing may follow"),
        ("Infinity", "expected a number"),
        ("\u0661s", "expected a number"),  # an Arabic-Indic digit is not a number here
        ("99999999999999999999999s", "too large"),
        ("18446744073709551616us", "too large"),
        ("600000y", "too large"),
        ("1" * 5000, "too large"),
    ],
)
def test_parse_timespan_errors(text: str, fragment: str) -> None:
    assert_error(parse_timespan, text, f"'{text[:50]}", "invalid time span", fragment)


def test_parse_timespan_largest() -> None:
    assert parse_timespan("18446744073709551614us") == (2**64 - 2) / 1e6
    assert_error(parse_timespan, "18446744073709551615us", "too large")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0"),
        (0.0, "0"),
        (math.inf, "infinity"),
        (0.1, "100ms"),
        (1, "1s"),
        (90, "1min 30s"),
        (90.5, "1min 30s 500ms"),
        (7200, "2h"),
        (86400 + 1e-6, "1d 1us"),
        (93784.005006, "1d 2h 3min 4s 5ms 6us"),
    ],
)
def test_render_timespan(seconds: float, text: str) -> None:
    assert render_timespan(seconds) == text
    assert parse_timespan(text) == seconds


@pytest.mark.parametrize("seconds", [-1.0, -1e-9, math.nan, -math.inf, 1e30])
def test_render_timespan_errors(seconds: float) -> None:
    with pytest.raises(ValueFormError, match="invalid time span"):
        render_timespan(seconds)


# --- word splitting -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", []),
        ("   \t ", []),
        ("a b  c", ["a", "b", "c"]),
        ("  a\tb\n c\r", ["a", "b", "c"]),
        ('"a b" c', ["a b", "c"]),
        ("'a b' c", ["a b", "c"]),
        ('"it\'s" \'say "hi"\'', ["it's", 'say "hi"']),
        ('""', [""]),
        ("a '' b", ["a", "", "b"]),
        # quotes may open mid-word, as in systemd's extract_first_word()
        ('--name="a b"', ["--name=a b"]),
        ("a'b c'd", ["ab cd"]),
        ('"a""b"', ["ab"]),
        # C escapes, inside and outside quotes
        (r"a\ b", ["a\\ b"]),  # "\ " is no C escape: kept, and the blank does not split
        (r'"a\"b"', ['a"b']),
        (r"'a\'b'", ["a'b"]),
        (r"\\", ["\\"]),
        (r"\n\t\r\a\b\f\v", ["\n\t\r\a\b\f\v"]),
        (r'"\n"', ["\n"]),
        (r"'\t'", ["\t"]),  # single quotes do not stop escapes in systemd
        (r"\s", [" "]),
        (r"\x41\x62", ["Ab"]),
        (r"\101", ["A"]),
        (r"\u00e9", ["é"]),
        (r"\U0001F600", ["\U0001f600"]),
        (r"\xc3\xa9", ["é"]),  # escaped bytes decode as UTF-8
        (r"\303\251", ["é"]),
        (r"\xff", ["\udcff"]),  # an invalid byte survives as a surrogate escape
        ("é ü", ["é", "ü"]),
        ("$VAR ${VAR}", ["$VAR", "${VAR}"]),
        # unknown escapes and a trailing backslash are kept verbatim, as systemd does
        (r"\d", ["\\d"]),
        (r"a\$b", ["a\\$b"]),
        (r"\x4g", ["\\x4g"]),
        (r"\x00", ["\\x00"]),
        (r"\000", ["\\000"]),
        (r"\u0000", ["\\u0000"]),
        (r"\ud800", ["\\ud800"]),
        (r"\U00110000", ["\\U00110000"]),
        (r"\UFFFFFFFF", ["\\UFFFFFFFF"]),
        (r"\777", ["\\777"]),
        ("a\\", ["a\\"]),
        ("\\;", ["\\;"]),
    ],
)
def test_split_words(text: str, words: list[str]) -> None:
    assert split_words(text) == words


@pytest.mark.parametrize(
    ("text", "words"),
    [
        # Quotes without a backslash: each quote closes at the next one of its own kind.
        ("a'b \"c\"'d \"e'f\" ''", ['ab "c"d', "e'f", ""]),
        ("x='1 2'\"3 4\"y\t'\n'", ["x=1 23 4y", "\n"]),
        ("sh -c 'echo \"hi there\"'", ["sh", "-c", 'echo "hi there"']),
        ("'a' 'b'c'd' \u2028x", ["a", "bcd", "\u2028x"]),  # U+2028 is no separator
    ],
)
def test_split_words_with_quotes_and_no_escapes(text: str, words: list[str]) -> None:
    assert split_words(text) == words
    tokens = tokenize_words(text, cunescape=True, relax=False, what="v")
    assert [raw.replace("'", "").replace('"', "") for _word, raw in tokens] == [
        word.replace("'", "").replace('"', "") for word in words
    ]  # each raw token is the word as written


def test_split_words_reports_kept_escapes() -> None:
    warnings: list[str] = []
    assert split_words(r"grep \d+ x\\", warnings=warnings) == ["grep", "\\d+", "x\\"]
    assert len(warnings) == 1
    assert "unknown escape sequence '\\d'" in warnings[0]
    warnings.clear()
    assert split_words("end\\", warnings=warnings) == ["end\\"]
    assert warnings == ["trailing backslash in 'end\\' kept as is"]
    warnings.clear()
    split_words(r'"\n" a\sb \x41', warnings=warnings)
    assert warnings == []


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('"abc', 'unterminated " quote'),
        ("a 'bc", "unterminated ' quote"),
        ('"abc\\', 'unterminated " quote'),
        ("a\0b", "NUL"),
    ],
)
def test_split_words_errors(text: str, fragment: str) -> None:
    assert_error(split_words, text, fragment, "invalid value")


# --- Exec lines ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/bin/true", ExecCommand(("/bin/true",))),
        ("  /bin/echo  a   b ", ExecCommand(("/bin/echo", "a", "b"))),
        ("echo hi", ExecCommand(("echo", "hi"))),  # a plain name is looked up in PATH
        ("-/bin/false", ExecCommand(("/bin/false",), ignore_failure=True)),
        ("@/bin/sh mysh -c x", ExecCommand(("/bin/sh", "mysh", "-c", "x"), argv0_separate=True)),
        (":/bin/echo $X", ExecCommand(("/bin/echo", "$X"), no_env_expansion=True)),
        ("+/bin/id", ExecCommand(("/bin/id",), privilege_prefix="+")),
        ("!/bin/id", ExecCommand(("/bin/id",), privilege_prefix="!")),
        ("!!/bin/id", ExecCommand(("/bin/id",), privilege_prefix="!!")),
        (
            "-@/bin/sh sh",
            ExecCommand(("/bin/sh", "sh"), ignore_failure=True, argv0_separate=True),
        ),
        (
            "@-:+/bin/sh sh",
            ExecCommand(
                ("/bin/sh", "sh"),
                ignore_failure=True,
                argv0_separate=True,
                no_env_expansion=True,
                privilege_prefix="+",
            ),
        ),
        (":!!-/bin/x", ExecCommand(("/bin/x",), True, False, True, "!!")),
        ('"-/bin/my prog" a', ExecCommand(("/bin/my prog", "a"), ignore_failure=True)),
        ("-'/bin/x'", ExecCommand(("/bin/x",), ignore_failure=True)),
        # systemd.service's quoting examples
        (
            "/bin/echo \"a b\" 'c d' e\\sf",
            ExecCommand(("/bin/echo", "a b", "c d", "e f")),
        ),
        (
            "/bin/echo $ONE $TWO $THREE ${TWO}",
            ExecCommand(("/bin/echo", "$ONE", "$TWO", "$THREE", "${TWO}")),
        ),
        # ";" as an argument: escaped or quoted
        ("/bin/echo \\; x", ExecCommand(("/bin/echo", ";", "x"))),
        ("/bin/echo ';'", ExecCommand(("/bin/echo", ";"))),
        ("/bin/echo a;b ;x", ExecCommand(("/bin/echo", "a;b", ";x"))),
        ("/bin/sh -c 'echo \\$HOME'", ExecCommand(("/bin/sh", "-c", "echo \\$HOME"))),
        ("/usr//bin/env", ExecCommand(("/usr//bin/env",))),
    ],
)
def test_parse_exec_line(text: str, expected: ExecCommand) -> None:
    assert parse_exec_line(text) == expected


def test_parse_exec_line_reports_kept_escapes() -> None:
    warnings: list[str] = []
    command = parse_exec_line(r"/bin/grep \d+", warnings=warnings)
    assert command.words == ("/bin/grep", "\\d+")
    assert len(warnings) == 1 and "'\\d'" in warnings[0]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty command"),
        ("   ", "empty command"),
        ("-", "empty executable path"),
        ("@", "empty executable path"),
        ("-@:+", "empty executable path"),
        ('""', "empty executable path"),
        ("@/bin/true", "'@' needs argv[0]"),
        ("bin/x", "relative path"),
        ("./x", "relative path"),
        ("..", "invalid executable name"),
        ("/usr/bin/", "is a directory"),
        ("--/bin/x", "relative path"),  # each prefix at most once
        ("+!/bin/x", "relative path"),  # one privilege prefix
        ("!!!/bin/x", "relative path"),
        ("/bin/echo a ; /bin/echo b", "';' command separator is not supported"),
        ("/bin/echo ;", "';' command separator is not supported"),
        (";", "';' command separator is not supported"),
        ('/bin/echo "unterminated', 'unterminated " quote'),
        ("/bin/echo 'x", "unterminated ' quote"),
        ('"/bin/a\\"b"', "contains quotes"),
        ("/bin/a\\\\b", "contains quotes"),
        ("/bin/a\\tb", "control characters"),
        ("/bin/x\0", "'/bin/x\\x00': contains a NUL"),
        ("/" + "a" * 256, "too long"),
        ("/a" * 2100, "too long"),
        ("a" * 256, "invalid executable name"),
    ],
)
def test_parse_exec_line_errors(text: str, fragment: str) -> None:
    shown = text.strip()[:40].replace("\0", "\\x00")
    assert_error(parse_exec_line, text, "invalid command line", fragment, shown)


@pytest.mark.parametrize(
    "command",
    [
        ExecCommand(("/bin/true",)),
        ExecCommand(("/bin/echo", "a b", "", "it's", 'say "hi"', "back\\slash", "$X", "${Y}")),
        ExecCommand(("/bin/echo", ";", "a;b", "\\;", "tab\there", "nl\n", "\x01\x7f", "é")),
        ExecCommand(("/bin/my prog", "x"), ignore_failure=True, privilege_prefix="!!"),
        ExecCommand(("/bin/sh", "argv0", "-c", "x"), True, True, True, "+"),
        ExecCommand(("echo", "hi")),
        ExecCommand(("/bin/echo", "\udcff", "\ud800")),
    ],
)
def test_render_exec_line_round_trip(command: ExecCommand) -> None:
    text = render_exec_line(command)
    assert parse_exec_line(text) == command


def test_render_exec_line_plain_words_stay_plain() -> None:
    command = parse_exec_line("-/usr/bin/env FOO=1 ${X} $Y --opt=v")
    assert render_exec_line(command) == "-/usr/bin/env FOO=1 ${X} $Y --opt=v"
    assert render_exec_line(ExecCommand(("/bin/echo", "a b"))) == '/bin/echo "a b"'


@pytest.mark.parametrize(
    "command",
    [
        ExecCommand(()),
        ExecCommand(("bin/x",)),
        ExecCommand(("-x",)),  # would read back as the "-" prefix
        ExecCommand(("/bin/echo", "a\0b")),
        ExecCommand(("/bin/sh",), argv0_separate=True),
    ],
)
def test_render_exec_line_errors(command: ExecCommand) -> None:
    with pytest.raises(ValueFormError):
        render_exec_line(command)


# --- Exec expansion at start time ---------------------------------------------------------

MAN_ENV = {"ONE": "one", "TWO": "two two", "THREE": "three"}


@pytest.mark.parametrize(
    ("line", "env", "argv"),
    [
        # systemd.service: Environment="ONE=one" 'TWO=two two' / ExecStart=echo $ONE $TWO $THREE
        ("/bin/echo $ONE $TWO $THREE", MAN_ENV, ["/bin/echo", "one", "two", "two", "three"]),
        ("/bin/echo ${ONE} ${TWO} ${THREE}", MAN_ENV, ["/bin/echo", "one", "two two", "three"]),
        ("/bin/echo x${TWO}y", MAN_ENV, ["/bin/echo", "xtwo twoy"]),
        ("/bin/echo ${ONE}${THREE}", MAN_ENV, ["/bin/echo", "onethree"]),
        ("/bin/echo $ONE$TWO", MAN_ENV, ["/bin/echo"]),  # invalid whole-word name: dropped
        ("/bin/echo a$ONE", MAN_ENV, ["/bin/echo", "a$ONE"]),  # $NAME only as a whole word
        ("/bin/echo $UNSET end", MAN_ENV, ["/bin/echo", "end"]),
        ("/bin/echo ${UNSET} end", MAN_ENV, ["/bin/echo", "", "end"]),
        ("/bin/echo $EMPTY end", {"EMPTY": ""}, ["/bin/echo", "end"]),
        ("/bin/echo $$ONE $${ONE} a$$b", MAN_ENV, ["/bin/echo", "$ONE", "${ONE}", "a$b"]),
        ("/bin/echo $$$", {}, ["/bin/echo", "$$"]),
        ("/bin/echo $ $1 $A.b", {"A": "x"}, ["/bin/echo"]),  # systemd drops invalid names
        ("/bin/echo ${ONE:-x} ${ONE", MAN_ENV, ["/bin/echo", "${ONE:-x}", "${ONE"]),
        ("/bin/echo ${A:${ONE}}", MAN_ENV, ["/bin/echo", "${A:one}"]),
        ("/bin/echo $Q", {"Q": "'a b' \"c d\" e\\ f"}, ["/bin/echo", "a b", "c d", "e f"]),
        ("/bin/echo $Q", {"Q": "'unterminated"}, ["/bin/echo", "unterminated"]),
        ("/bin/echo $Q", {"Q": "  \t "}, ["/bin/echo"]),
        ("/bin/echo $Q", {"Q": r"\n"}, ["/bin/echo", "n"]),  # no C escapes in values
        ("/bin/$ONE x", MAN_ENV, ["/bin/$ONE", "x"]),  # the executed path is literal
        ("@/bin/sh $ONE -c x", MAN_ENV, ["/bin/sh", "one", "-c", "x"]),
        (":/bin/echo $ONE ${TWO} $$", MAN_ENV, ["/bin/echo", "$ONE", "${TWO}", "$$"]),
    ],
)
def test_expand_exec_words(line: str, env: dict[str, str], argv: list[str]) -> None:
    assert expand_exec_words(parse_exec_line(line), env) == argv


# --- Environment= ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "pairs"),
    [
        ("", []),
        ("A=1", [("A", "1")]),
        ('"A=1 2" B=3', [("A", "1 2"), ("B", "3")]),
        # systemd.exec's example
        (
            '"VAR1=word1 word2" VAR2=word3 "VAR3=$word 5 6"',
            [("VAR1", "word1 word2"), ("VAR2", "word3"), ("VAR3", "$word 5 6")],
        ),
        ("ONE=one 'TWO=two two'", [("ONE", "one"), ("TWO", "two two")]),
        ("A= B==", [("A", ""), ("B", "=")]),
        ("_x9=1", [("_x9", "1")]),
        ("A=1 A=2", [("A", "1"), ("A", "2")]),
        (r'A="q\"uote" B=tab\tx', [("A", 'q"uote'), ("B", "tab\tx")]),
        ('A="multi"word', [("A", "multiword")]),
        ("PATH=/usr/bin:/bin", [("PATH", "/usr/bin:/bin")]),
    ],
)
def test_parse_environment(text: str, pairs: list[tuple[str, str]]) -> None:
    assert parse_environment(text) == pairs


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("A", "expected NAME=VALUE"),
        ("A=1 B", "expected NAME=VALUE"),
        ("=1", "invalid environment variable name ''"),
        ("1A=x", "invalid environment variable name '1A'"),
        ("A-B=x", "invalid environment variable name 'A-B'"),
        ("'A B=x'", "invalid environment variable name 'A B'"),
        ("É=x", "invalid environment variable name"),
        ('"A=1', 'unterminated " quote'),
        (r"A=\d", "unknown escape sequence '\\d'"),
        ("A=x\\", "trailing backslash"),
        ("A=a\0b", "NUL"),
    ],
)
def test_parse_environment_errors(text: str, fragment: str) -> None:
    assert_error(parse_environment, text, fragment, text[:3])


@pytest.mark.parametrize(
    "pairs",
    [
        [],
        [("A", "1")],
        [("A", "1 2"), ("B", "")],
        [("Q", 'it\'s "quoted"'), ("B", "back\\slash"), ("D", "$x ${y}"), ("N", "l1\nl2")],
        [("A", "1"), ("A", "2")],
    ],
)
def test_render_environment_round_trip(pairs: list[tuple[str, str]]) -> None:
    assert parse_environment(render_environment(pairs)) == pairs


def test_render_environment_form() -> None:
    assert render_environment([("A", "1 2"), ("B", "3")]) == '"A=1 2" B=3'


@pytest.mark.parametrize("pairs", [[("1A", "x")], [("", "x")], [("A", "nul\0")]])
def test_render_environment_errors(pairs: list[tuple[str, str]]) -> None:
    with pytest.raises(ValueFormError):
        render_environment(pairs)


# --- environment files --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "pairs"),
    [
        ("", []),
        ("A=1\nB=2\n", [("A", "1"), ("B", "2")]),
        ("A=1", [("A", "1")]),  # no final newline
        ("  A  =  spaced value  \n", [("A", "spaced value")]),
        ("A=\nB=", [("A", ""), ("B", "")]),
        ("# comment\n; also\n  # indented\nA=1\n", [("A", "1")]),
        ("A=1 # not a comment\n", [("A", "1 # not a comment")]),
        ("# comment \\\nA=1\n", [("A", "1")]),  # a comment never continues (systemd >= 254)
        # unquoted: backslash takes the next char, backslash-newline continues
        ("A=one\\\ntwo\n", [("A", "onetwo")]),
        ("A=a\\ \n", [("A", "a ")]),  # an escaped trailing blank is kept
        ("A=a\\#b\\\\c\n", [("A", "a#b\\c")]),
        ("A=x\\", [("A", "x")]),
        ("A=\\", [("A", "")]),
        # single quotes: literal, may span lines
        ("A='a b'\n", [("A", "a b")]),
        ("A='x\\ny\\'\n", [("A", "x\\ny\\")]),
        ("A='line1\nline2'\nB=2", [("A", "line1\nline2"), ("B", "2")]),
        # double quotes: \" \\ \` \$ and newline escapes, others keep their backslash
        ('A="a \\"b\\" \\\\ \\` \\$ \\n"\n', [("A", 'a "b" \\ ` $ \\n')]),
        ('A="one\\\ntwo"\n', [("A", "onetwo")]),
        ('A="two\nlines"\n', [("A", "two\nlines")]),
        ('A="x"y\n', [("A", "xy")]),
        ("A=\"x\" 'y'\n", [("A", "xy")]),
        ('A=x "y"\n', [("A", 'x "y"')]),  # quotes only count right after '='
        ('A=  "  padded  "  \n', [("A", "  padded  ")]),
        # later duplicates win, in the first position
        ("A=1\nB=2\nA=3\n", [("A", "3"), ("B", "2")]),
        # CR counts as a line end
        ("A=1\r\nB=2\r\n", [("A", "1"), ("B", "2")]),
        # skipped lines
        ("export A=1\nB=2\n", [("B", "2")]),
        ("NOEQUALS\nB=2\n", [("B", "2")]),
        ("1BAD=x\nA-B=y\n=z\nC=3", [("C", "3")]),
        ("A B=1\n", []),
        ("=\n", []),
        ("A=é\n", [("A", "é")]),
        ("A=\udcff\n", [("A", "\udcff")]),
    ],
)
def test_parse_env_file(text: str, pairs: list[tuple[str, str]]) -> None:
    assert parse_env_file(text) == pairs


def test_parse_env_file_warnings_name_lines() -> None:
    warnings: list[str] = []
    text = "A=1\nexport B=2\n\nNOEQUALS\n# c\nC-D=3\nLAST"
    assert parse_env_file(text, warnings=warnings) == [("A", "1")]
    assert warnings == [
        "line 2: invalid variable name 'export B' ('export' is not supported); line ignored",
        "line 4: 'NOEQUALS' has no '='; line ignored",
        "line 6: invalid variable name 'C-D'; line ignored",
        "line 7: 'LAST' has no '='; line ignored",
    ]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("A='open\n", "unterminated single quote in the value of 'A' (line 1)"),
        ('B=1\nA="open\n', "unterminated double quote in the value of 'A' (line 2)"),
        ('A="open\\', "unterminated double quote"),
    ],
)
def test_parse_env_file_errors(text: str, fragment: str) -> None:
    assert_error(parse_env_file, text, fragment)


def test_read_env_file(tmp_path: Path) -> None:
    path = tmp_path / "env"
    path.write_bytes(b"# settings\nA='x y'\nB=\xff\xfe\nC=caf\xc3\xa9\n")
    assert read_env_file(str(path)) == [("A", "x y"), ("B", "\udcff\udcfe"), ("C", "café")]
    assert "\udcff".encode("utf-8", "surrogateescape") == b"\xff"


def test_read_env_file_missing_raises_oserror(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_env_file(str(tmp_path / "missing"))


# --- specifiers and ${VAR} ------------------------------------------------------------------


def _expand(text: str, name: str = "web.service") -> tuple[str, list[str]]:
    return expand(text, name, f"/units/{name}", lambda: HostFacts(hostname="box"))


@pytest.mark.parametrize(
    ("text", "expanded", "warnings"),
    [
        ("plain", "plain", []),
        ("%n", "web.service", []),
        ("%N", "web", []),
        ("%H", "box", []),
        ("100%%", "100%", []),
        ("/run/%N/%n@%H", "/run/web/web.service@box", []),
        ("%%n", "%n", []),
        ("%i", "", []),  # not an instance: empty, as systemd has it
        ("%h/x %u", "/root/x root", []),
        ("%z", "%z", ["unsupported specifier '%z' left as is"]),
        ("50%", "50%", ["lone '%' at the end of the value left as is (write %% for a '%')"]),
    ],
)
def test_expand_specifiers(text: str, expanded: str, warnings: list[str]) -> None:
    assert _expand(text) == (expanded, warnings)


def test_expand_specifiers_stem_of_dotted_name() -> None:
    assert _expand("%N", "a.b.socket") == ("a.b", [])
    assert _expand("%N", "nodot") == ("nodot", [])


ENV = {"APP_USER": "alice", "EMPTY": "", "SPACED": "a b"}


@pytest.mark.parametrize(
    ("text", "expanded"),
    [
        ("plain", "plain"),
        ("${APP_USER}", "alice"),
        ("${UNSET}", ""),
        ("${APP_USER:-app}", "alice"),
        ("${UNSET:-app}", "app"),
        ("${EMPTY:-app}", "app"),
        ("${UNSET:-}", ""),
        ("${APP_HOME:-/home/app}", "/home/app"),
        ("${UNSET:-with spaces}", "with spaces"),
        ("${UNSET:-a:-b}", "a:-b"),
        ("${SPACED}", "a b"),
        ("/home/${APP_USER}/x${EMPTY}y", "/home/alice/xy"),
        ("$APP_USER", "$APP_USER"),  # braces are required
        ("$$", "$$"),
        ("$${APP_USER}", "$${APP_USER}"),
        ("a$", "a$"),
        ("${UNSET:-${X}", "${X"),  # the default ends at the first '}' and is literal
    ],
)
def test_expand_vars(text: str, expanded: str) -> None:
    assert expand_vars(text, ENV) == expanded


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("${APP_USER", "unterminated '${'"),
        ("x ${", "unterminated '${'"),
        ("${}", "'${}' is not ${NAME}"),
        ("${1X}", "'${1X}' is not"),
        ("${A B}", "'${A B}' is not"),
        ("${A:=x}", "'${A:=x}' is not"),
        ("${A-x}", "'${A-x}' is not"),
        ("${A:+x}", "'${A:+x}' is not"),
    ],
)
def test_expand_vars_errors(text: str, fragment: str) -> None:
    assert_error(lambda value: expand_vars(value, ENV), text, fragment, text)


# --- signals and exit statuses --------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("SIGTERM", signal.SIGTERM),
        ("TERM", signal.SIGTERM),
        ("15", 15),
        (" SIGKILL ", signal.SIGKILL),
        ("HUP", signal.SIGHUP),
        ("SIGABRT", signal.SIGABRT),
        ("SIGRTMIN", signal.SIGRTMIN),
        ("RTMIN", signal.SIGRTMIN),
        ("SIGRTMIN+3", signal.SIGRTMIN + 3),
        ("RTMIN+0", signal.SIGRTMIN),
        ("SIGRTMAX", signal.SIGRTMAX),
        ("RTMAX-1", signal.SIGRTMAX - 1),
        (f"RTMIN+{signal.SIGRTMAX - signal.SIGRTMIN}", signal.SIGRTMAX),
        ("1", 1),
        (str(signal.NSIG - 1), signal.NSIG - 1),
    ],
)
def test_parse_signal(text: str, number: int) -> None:
    assert parse_signal(text) == number


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "not a signal"),
        ("0", "not a signal"),
        (str(signal.NSIG), "not a signal"),
        ("99999999", "not a signal"),
        ("-1", "not a signal"),
        ("SIGFOO", "not a signal"),
        ("SIG", "not a signal"),
        ("sigterm", "upper case"),
        ("Term", "upper case"),
        ("RTMIN-1", "not a signal"),
        ("RTMAX+1", "not a signal"),
        ("RTMIN+", "not a signal"),
        (f"RTMIN+{signal.SIGRTMAX - signal.SIGRTMIN + 1}", "not a signal"),
        ("SIG_DFL", "not a signal"),
    ],
)
def test_parse_signal_errors(text: str, fragment: str) -> None:
    assert_error(parse_signal, text, f"'{text}'", fragment)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ExitStatusSet()),
        ("0", ExitStatusSet(codes=frozenset({0}))),
        ("1 2 255", ExitStatusSet(codes=frozenset({1, 2, 255}))),
        ("15", ExitStatusSet(codes=frozenset({15}))),  # a number is an exit code, not a signal
        ("SIGHUP TERM", ExitStatusSet(signals=frozenset({signal.SIGHUP, signal.SIGTERM}))),
        (
            "75 250 SIGKILL TEMPFAIL",
            ExitStatusSet(codes=frozenset({75, 250}), signals=frozenset({signal.SIGKILL})),
        ),
        ("NOTINSTALLED SUCCESS", ExitStatusSet(codes=frozenset({5, 0}))),
        ("  1\t2  ", ExitStatusSet(codes=frozenset({1, 2}))),
    ],
)
def test_parse_exit_status_set(text: str, expected: ExitStatusSet) -> None:
    assert parse_exit_status_set(text) == expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("256", "'256'"),
        ("1 999999999", "'999999999'"),
        ("SIGFOO", "'SIGFOO'"),
        ("1 x", "'x'"),
        ("-1", "'-1'"),
    ],
)
def test_parse_exit_status_set_errors(text: str, fragment: str) -> None:
    assert_error(parse_exit_status_set, text, "invalid exit status", fragment)


# --- socket addresses -------------------------------------------------------------------------


def inet(host: str, port: int) -> ListenAddress:
    return ListenAddress(ListenKind.INET, host=host, port=port)


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("8080", inet("", 8080)),
        ("1", inet("", 1)),
        ("65535", inet("", 65535)),
        ("0080", inet("", 80)),
        ("127.0.0.1:8080", inet("127.0.0.1", 8080)),
        ("0.0.0.0:80", inet("0.0.0.0", 80)),
        ("[::1]:8080", inet("::1", 8080)),
        ("[::]:80", inet("::", 80)),
        ("[0:0:0::1]:80", inet("::1", 80)),
        ("[FE80::A]:443", inet("fe80::a", 443)),
        ("[::ffff:1.2.3.4]:80", inet("::ffff:1.2.3.4", 80)),
        (" 8080 ", inet("", 8080)),
        ("/run/x.sock", ListenAddress(ListenKind.UNIX, path="/run/x.sock")),
        ("/run//a/./b.sock/", ListenAddress(ListenKind.UNIX, path="/run/a/b.sock")),
        ("/run/with space", ListenAddress(ListenKind.UNIX, path="/run/with space")),
        ("/" + "a" * 106, ListenAddress(ListenKind.UNIX, path="/" + "a" * 106)),
        ("@name", ListenAddress(ListenKind.ABSTRACT, path="name")),
        ("@" + "b" * 106, ListenAddress(ListenKind.ABSTRACT, path="b" * 106)),
    ],
)
def test_parse_listen_address(text: str, address: ListenAddress) -> None:
    assert parse_listen_address(text) == address
    assert parse_listen_address(address.render()) == address


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "expected PORT"),
        ("0", "not in 1..65535"),
        ("65536", "not in 1..65535"),
        ("99999999999", "not in 1..65535"),
        ("127.0.0.1:0", "not in 1..65535"),
        ("127.0.0.1:", "is not a number"),
        ("127.0.0.1:http", "is not a number"),
        ("127.0.0.1:+80", "is not a number"),
        ("localhost:80", "host names are not allowed"),
        ("256.0.0.1:80", "not a numeric IPv4 address"),
        ("1.2.3:80", "not a numeric IPv4 address"),
        (":80", "not a numeric IPv4 address"),
        ("::1:80", "[ADDRESS]:PORT"),
        ("[::1]", "expected [IPV6ADDRESS]:PORT"),
        ("[::1]80", "expected [IPV6ADDRESS]:PORT"),
        ("[::1:80", "expected [IPV6ADDRESS]:PORT"),
        ("[1.2.3.4]:80", "is not an IPv6 address"),
        ("[fe80::1%eth0]:80", "is not an IPv6 address"),
        ("[::g]:80", "is not an IPv6 address"),
        ("http", "expected PORT"),
        ("run/x.sock", "expected PORT"),
        ("/run/../x", "must not contain '..'"),
        ("/", "names a directory"),
        ("//./", "names a directory"),
        ("/" + "a" * 107, "longer than 107 bytes"),
        ("/" + "é" * 54, "longer than 107 bytes"),
        ("@", "abstract socket name is empty"),
        ("@" + "b" * 107, "longer than 106 bytes"),
        ("/run/a\0b", "'/run/a\\x00b': contains a NUL"),
        ("\u0661\u0662", "expected PORT"),  # Arabic-Indic digits are no port
    ],
)
def test_parse_listen_address_errors(text: str, fragment: str) -> None:
    shown = text[:20].replace("\0", "\\x00")
    assert_error(parse_listen_address, text, "invalid listen address", fragment, shown)


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("127.0.0.1:18080", inet("127.0.0.1", 18080)),
        ("tcp:127.0.0.1:18080", inet("127.0.0.1", 18080)),
        ("localhost:80", inet("localhost", 80)),
        ("tcp:backend.internal:8080", inet("backend.internal", 8080)),
        ("my_host-1.example.com.:1", inet("my_host-1.example.com.", 1)),
        ("[::1]:80", inet("::1", 80)),
        ("tcp:[0::1]:80", inet("::1", 80)),
        ("unix:/run/app.sock", ListenAddress(ListenKind.UNIX, path="/run/app.sock")),
        ("/run//app.sock", ListenAddress(ListenKind.UNIX, path="/run/app.sock")),
        ("unix:@app", ListenAddress(ListenKind.ABSTRACT, path="app")),
        ("@app", ListenAddress(ListenKind.ABSTRACT, path="app")),
    ],
)
def test_parse_proxy_target(text: str, address: ListenAddress) -> None:
    assert parse_proxy_target(text) == address
    assert parse_proxy_target(address.render()) == address
    if address.kind is ListenKind.UNIX:
        assert parse_proxy_target("unix:" + address.path) == address


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "expected HOST:PORT"),
        ("8080", "expected HOST:PORT"),
        (":8080", "expected HOST:PORT"),
        ("tcp:8080", "expected HOST:PORT"),
        ("localhost:0", "not in 1..65535"),
        ("localhost:x", "is not a number"),
        ("bad host:80", "is not a valid host name"),
        ("-bad:80", "is not a valid host name"),
        ("a..b:80", "is not a valid host name"),
        ("999.1.1.1:80", "is not an IPv4 address"),
        ("::1:80", "[ADDRESS]:PORT"),
        ("[zz]:80", "is not an IPv6 address"),
        ("unix:relative", "unix: needs an absolute path"),
        ("unix:", "unix: needs an absolute path"),
        ("unix:@", "abstract socket name is empty"),
        ("unix:/a/../b", "must not contain '..'"),
        ("udp:1.2.3.4:5", "expected HOST:PORT"),
    ],
)
def test_parse_proxy_target_errors(text: str, fragment: str) -> None:
    assert_error(parse_proxy_target, text, "invalid proxy target", fragment, text[:20])


# --- modes, outputs, unit names ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "mode"),
    [
        ("0666", 0o666),
        ("666", 0o666),
        ("0", 0),
        ("7777", 0o7777),
        ("00600", 0o600),
        (" 644 ", 0o644),
    ],
)
def test_parse_octal_mode(text: str, mode: int) -> None:
    assert parse_octal_mode(text) == mode


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "expected octal digits"),
        ("0o666", "expected octal digits"),
        ("0x1b6", "expected octal digits"),
        ("8", "expected octal digits"),
        ("-1", "expected octal digits"),
        ("rw-r--r--", "expected octal digits"),
        ("10000", "larger than 07777"),
        ("7" * 3000, "larger than 07777"),
    ],
)
def test_parse_octal_mode_errors(text: str, fragment: str) -> None:
    assert_error(parse_octal_mode, text, "invalid file mode", fragment, text[:20])


@pytest.mark.parametrize(
    ("text", "output"),
    [
        ("inherit", Output(OutputTarget.INHERIT)),
        ("null", Output(OutputTarget.NULL)),
        ("file:/var/log/app.log", Output(OutputTarget.FILE, "/var/log/app.log")),
        ("append:/var/log/app.log", Output(OutputTarget.APPEND, "/var/log/app.log")),
        (" null ", Output(OutputTarget.NULL)),
        ("file:/a b", Output(OutputTarget.FILE, "/a b")),
    ],
)
def test_parse_output(text: str, output: Output) -> None:
    assert parse_output(text) == output


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("journal", "use inherit, null, file:/path or append:/path"),
        ("journal+console", "use inherit"),
        ("tty", "use inherit"),
        ("kmsg", "use inherit"),
        ("socket", "use inherit"),
        ("truncate:/x", "use inherit"),
        ("fd:name", "use inherit"),
        ("", "use inherit"),
        ("Inherit", "use inherit"),
        ("file:relative.log", "file: needs an absolute path"),
        ("append:", "append: needs an absolute path"),
        ("file:/a\0", "'file:/a\\x00': contains a NUL"),
    ],
)
def test_parse_output_errors(text: str, fragment: str) -> None:
    assert_error(parse_output, text, fragment, text[:10].replace("\0", "\\x00"))


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("", []),
        ("a.service", ["a.service"]),
        ("a.service  b.socket\tmulti-user.target", ["a.service", "b.socket", "multi-user.target"]),
        ("sockets.target", ["sockets.target"]),
        (
            "getty@tty1.service x:y_z.service a\\x2db.service",
            ["getty@tty1.service", "x:y_z.service", "a\\x2db.service"],
        ),
        ("a.b.service", ["a.b.service"]),
        # Other unit types are names too (basic.target: After=tmp.mount); never loaded.
        ("tmp.mount apt-daily.timer -.slice", ["tmp.mount", "apt-daily.timer", "-.slice"]),
    ],
)
def test_parse_unit_names(text: str, names: list[str]) -> None:
    assert parse_unit_names(text) == names


@pytest.mark.parametrize(
    ("text", "bad"),
    [
        ("a", "'a'"),
        ("a.service b", "'b'"),
        ("a.mounts", "'a.mounts'"),
        (".service", "'.service'"),
        ("a.Service", "'a.Service'"),
        ("a/b.service", "'a/b.service'"),
        ("é.service", "'é.service'"),
        ("a.service,b.service", "'a.service,b.service'"),
        ("x" * 250 + ".service", "invalid unit name"),
    ],
)
def test_parse_unit_names_errors(text: str, bad: str) -> None:
    assert_error(parse_unit_names, text, "invalid unit name", bad)


# --- error messages never show raw control characters ------------------------------------------


def test_messages_make_control_characters_visible() -> None:
    with pytest.raises(ValueFormError) as info:
        parse_timespan("5\nx")
    assert "\n" not in str(info.value)
    assert "'5\\nx'" in str(info.value)
