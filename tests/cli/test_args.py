"""cinit's one argument parser (`cinit.cli.args`): option tables, parsing, `-h` rendering."""

from __future__ import annotations

import pytest

from cinit.cli.args import (
    REST,
    SWITCH,
    Command,
    Option,
    UsageError,
    parse,
    read_command_line,
    render_help,
)

BOOT = Command(
    "boot",
    "a test command",
    ["cinit boot [OPTIONS] [-- COMMAND]", "cinit boot --then PATH"],
    "Boots things.",
    [
        Option("--units", "unit files\n(default: /units)", "DIR"),
        Option("--strict", "every warning is an error"),
        Option("--prefix, --no-prefix", "prefix lines", kind=SWITCH),
        Option("--then", "hand off to PATH", "PATH", kind=REST),
        Option("-o, --output", "where to write", "FILE"),
        Option("--a-very-long-option-name", "explained below", "VALUE"),
    ],
    epilog="Exit status: 0.",
    takes_command=True,
)


def test_values_by_dest_with_defaults_none() -> None:
    parsed = parse(BOOT, [])
    assert parsed.values == dict.fromkeys(
        ("units", "strict", "prefix", "then", "output", "a_very_long_option_name")
    )
    assert (parsed.words, parsed.command, parsed.help) == ([], [], False)
    assert parsed.text("units") is None and parsed.text_or("units", "/units") == "/units"


@pytest.mark.parametrize("args", [["--units", "/u"], ["--units=/u"]])
def test_a_value_in_either_form(args: list[str]) -> None:
    assert parse(BOOT, args).text("units") == "/u"


def test_short_and_long_names_share_a_dest() -> None:
    assert parse(BOOT, ["-o", "x.svg"]).text("output") == "x.svg"
    assert parse(BOOT, ["--output=y.svg"]).text("output") == "y.svg"


def test_a_switch_last_one_wins() -> None:
    assert parse(BOOT, ["--no-prefix"]).values["prefix"] is False
    assert parse(BOOT, ["--no-prefix", "--prefix"]).values["prefix"] is True
    assert parse(BOOT, ["--prefix", "--no-prefix"]).values["prefix"] is False


def test_dash_dash_and_rest_take_the_remaining_words() -> None:
    parsed = parse(BOOT, ["--strict", "--", "sleep", "--units", "5"])
    assert parsed.command == ["sleep", "--units", "5"] and parsed.values["strict"] is True
    assert parse(BOOT, ["--then", "/sbin/init", "-h"]).values["then"] == ["/sbin/init", "-h"]
    assert parse(BOOT, ["--then=/sbin/init", "x"]).values["then"] == ["/sbin/init", "x"]
    assert parse(BOOT, ["--then"]).values["then"] == []


def test_words_and_help_anywhere() -> None:
    parsed = parse(BOOT, ["web", "-h", "-", "--strict"])
    assert parsed.words == ["web", "-"] and parsed.help


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--nope"], "unknown option '--nope'"),
        (["--units"], "option --units needs a value"),
        (["--strict=yes"], "option --strict takes no value"),
    ],
)
def test_usage_errors_say_why(args: list[str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse(BOOT, args)


def test_dash_dash_is_an_unknown_option_for_a_command_without_one() -> None:
    status = Command("status", "s", ["cinit status"], "d", [])
    with pytest.raises(UsageError, match="unknown option '--'"):
        parse(status, ["--", "x"])


def test_help_is_rendered_from_the_table() -> None:
    assert render_help(BOOT) == (
        "usage: cinit boot [OPTIONS] [-- COMMAND]\n"
        "       cinit boot --then PATH\n"
        "\n"
        "Boots things.\n"
        "\n"
        "options:\n"
        "  --units DIR          unit files\n"
        "                       (default: /units)\n"
        "  --strict             every warning is an error\n"
        "  --prefix, --no-prefix\n"
        "                       prefix lines\n"
        "  --then PATH [ARG...]\n"
        "                       hand off to PATH\n"
        "  -o, --output FILE    where to write\n"
        "  --a-very-long-option-name VALUE\n"
        "                       explained below\n"
        "  -h, --help           show this help and exit\n"
        "\n"
        "Exit status: 0.\n"
    )


def test_read_command_line_reports_and_returns_the_status(
    capsys: pytest.CaptureFixture[str],
) -> None:
    plot = Command("plot", "s", ["cinit plot TRACE"], "Plots.", [])
    parsed = read_command_line(plot, ["trace.jsonl"], words=(1, 1))
    assert not isinstance(parsed, int) and parsed.words == ["trace.jsonl"]
    assert read_command_line(plot, ["-h"], words=(1, 1)) == 0
    assert capsys.readouterr().out == render_help(plot)
    assert read_command_line(plot, ["a", "b"], words=(1, 1), prog="cinit x plot") == 2
    assert capsys.readouterr().err == (
        "cinit x plot: unexpected argument 'b' (see cinit x plot --help)\n"
    )
    assert read_command_line(plot, [], words=(1, 1)) == 2
    assert "too few arguments; usage: cinit plot TRACE" in capsys.readouterr().err


SHORT = Command(
    "short",
    "short options",
    ["cinit short"],
    "Short options.",
    [
        Option("-a, --all", "all"),
        Option("-q, --quiet", "quiet"),
        Option("-p, --property", "a property", "NAME", kind="append"),
        Option("-n, --lines", "lines", "N"),
    ],
)


def test_short_option_with_its_value_attached() -> None:
    parsed = parse(SHORT, ["-pId", "-n5", "-p", "Type"])
    assert parsed.values["property"] == ["Id", "Type"]
    assert parsed.values["lines"] == "5"


def test_grouped_short_flags() -> None:
    parsed = parse(SHORT, ["-aq"])
    assert parsed.values["all"] is True and parsed.values["quiet"] is True


def test_grouped_short_flags_refuse_a_letter_that_is_no_flag() -> None:
    with pytest.raises(UsageError, match="-ax"):
        parse(SHORT, ["-ax"])
