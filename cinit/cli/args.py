"""A tiny option parser for the commands on cinit's fast paths (`run`, `validate`).

argparse and typer cost 5-60 ms to import; PID 1 and `cinit validate` in CI pay that on
every start, so these commands declare their options here instead.
"""

from __future__ import annotations

from typing import NamedTuple

EXIT_USAGE = 2


class Option(NamedTuple):
    """One `--flag` (boolean) or `--name VALUE` option."""

    name: str  # "--units"
    dest: str  # key in the parsed result
    help: str
    takes_value: bool = False
    default: object = None
    metavar: str = "VALUE"


class UsageError(Exception):
    """A command line that does not fit the options; the message says why."""


def parse_options(
    args: list[str], options: list[Option], *, allow_command: bool = False
) -> tuple[dict[str, object], list[str]]:
    """Parse `args` against `options`.

    Returns the values (defaults filled in) and the words after `--` (only when
    `allow_command`). Accepts `--name value` and `--name=value`; `-h`/`--help` sets `help`.
    """
    by_name = {option.name: option for option in options}
    values: dict[str, object] = {option.dest: option.default for option in options}
    values["help"] = False
    index = 0
    while index < len(args):
        word = args[index]
        index += 1
        if word == "--" and allow_command:
            return values, args[index:]
        if word in ("-h", "--help"):
            values["help"] = True
            continue
        name, has_inline, inline = word.partition("=")
        option = by_name.get(name)
        if option is None:
            raise UsageError(f"unknown option {word!r}")
        if not option.takes_value:
            if has_inline:
                raise UsageError(f"option {name} takes no value")
            values[option.dest] = True
            continue
        if has_inline:
            values[option.dest] = inline
        elif index < len(args):
            values[option.dest] = args[index]
            index += 1
        else:
            raise UsageError(f"option {name} needs a value")
    return values, []


def format_help(synopsis: str, description: str, options: list[Option]) -> str:
    """A usage text in the usual shape: synopsis, description, one line per option."""
    lines = [f"usage: {synopsis}", "", description, "", "options:"]
    for option in options:
        left = f"{option.name} {option.metavar}" if option.takes_value else option.name
        default = f" (default: {option.default})" if option.takes_value and option.default else ""
        lines.append(f"  {left:<24} {option.help}{default}")
    lines.append(f"  {'-h, --help':<24} show this help and exit")
    return "\n".join(lines)
