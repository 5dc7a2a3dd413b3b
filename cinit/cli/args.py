"""cinit's one argument parser: every command declares its options here as a table.

typer/click cost ~100 ms to import and argparse ~5 ms; PID 1 (`cinit`, `cinit -- CMD`) and
the exec probe (`cinit is-ready`) would pay that on every start. So each command is a
`Command` (synopsis, description, a table of `Option`s), parsed by `parse` and shown by
`render_help` (its `-h`); the typer app (`cinit.cli.app`) lists the same commands' summaries.
This module imports nothing: it is on the boot path.
"""

from __future__ import annotations

from cinit.boot_path import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

EXIT_USAGE = 2
# An option's kind: a flag (stores `const`), `--name VALUE`, `--name WORDS...` (the rest of
# the line), a switch `--name, --no-name` (True, False: the last one given wins), or
# `--name VALUE` that may be given again (a list of the values, in order).
FLAG, VALUE, REST, SWITCH, APPEND = "flag", "value", "rest", "switch", "append"
HELP_COLUMN = 21  # where option texts start (after two spaces of indent)


class UsageError(Exception):
    """A command line that does not fit the command's options; the message says why."""


class Option:
    """One row of a command's option table."""

    __slots__ = ("const", "dest", "help", "kind", "metavar", "names")

    def __init__(
        self,
        names: str,
        help: str,
        metavar: str = "",
        *,
        kind: str = "",
        dest: str = "",
        const: object = True,
    ) -> None:
        self.names = tuple(name.strip() for name in names.split(","))  # "-o, --output"
        self.help = help  # "\n" starts a continuation line in the help
        self.metavar = metavar
        self.kind = kind or (VALUE if metavar else FLAG)
        long_name = next((name for name in self.names if name[:2] == "--"), self.names[0])
        self.dest = dest or long_name.lstrip("-").replace("-", "_")
        self.const = const  # what a FLAG stores (two flags may share a dest: the last wins)


class Command:
    """A command's synopsis, description and option table (its `-h` is rendered from them)."""

    __slots__ = ("description", "epilog", "name", "options", "summary", "takes_command", "usage")

    def __init__(
        self,
        name: str,
        summary: str,
        usage: Sequence[str],
        description: str,
        options: Sequence[Option],
        *,
        epilog: str = "",
        takes_command: bool = False,
    ) -> None:
        self.name = name
        self.summary = summary  # one line, for `cinit --help`
        self.usage = tuple(usage)  # synopsis lines, each starting with the program's name
        self.description = description
        self.options = tuple(options)
        self.epilog = epilog
        self.takes_command = takes_command  # `-- COMMAND ARGS...` ends the options


class Parsed:
    """What `parse` found: option values by dest, positional words, the words after `--`."""

    __slots__ = ("command", "help", "values", "words")

    def __init__(self, values: dict[str, object], words: list[str], command: list[str]) -> None:
        self.values = values
        self.words = words
        self.command = command
        self.help = bool(values.pop("help", False))

    def text(self, dest: str) -> str | None:
        """The value of a VALUE option, or None when it was not given."""
        value = self.values.get(dest)
        return value if isinstance(value, str) else None

    def text_or(self, dest: str, default: str) -> str:
        """The value of a VALUE option, or `default` when it was not given."""
        value = self.values.get(dest)
        return value if isinstance(value, str) else default


def parse(command: Command, args: Sequence[str]) -> Parsed:
    """Parse `args` (the words after the command's name) against `command`'s options.

    `--name VALUE` and `--name=VALUE`, `-n VALUE` and `-nVALUE`, grouped short flags (`-aq`);
    `-h`/`--help` anywhere; `--` ends the options of a
    command that `takes_command`. Words that are not options are returned in order (the
    command says whether it takes any). Raises UsageError.
    """
    by_name = {name: option for option in command.options for name in option.names}
    values: dict[str, object] = {option.dest: None for option in command.options}
    words: list[str] = []
    index = 0
    while index < len(args):
        word = args[index]
        index += 1
        if word == "--" and command.takes_command:
            return Parsed(values, words, list(args[index:]))
        if word in ("-h", "--help"):
            values["help"] = True
            continue
        if word[:1] != "-" or word == "-":
            words.append(word)
            continue
        name, has_inline, inline = word.partition("=")
        option = by_name.get(name)
        if option is None and word[1] != "-" and word[:2] in by_name:
            # A short option with its value attached (`-pId`) or several short flags (`-aq`).
            option, name, inline = by_name[word[:2]], word[:2], word[2:]
            has_inline = "="
            if option.kind == FLAG:
                for letter in inline:
                    grouped = by_name.get(f"-{letter}")
                    if grouped is None or grouped.kind != FLAG:
                        raise UsageError(f"unknown option {word!r}")
                    values[grouped.dest] = grouped.const
                has_inline = ""
        if option is None:
            raise UsageError(f"unknown option {word!r}")
        if option.kind in (FLAG, SWITCH):
            if has_inline:
                raise UsageError(f"option {name} takes no value")
            values[option.dest] = option.const if option.kind == FLAG else name == option.names[0]
        elif option.kind == REST:
            values[option.dest] = ([inline] if has_inline else []) + list(args[index:])
            break
        else:
            if has_inline:
                value = inline
            elif index < len(args):
                value = args[index]
                index += 1
            else:
                raise UsageError(f"option {name} needs a value")
            if option.kind == APPEND:
                held = values[option.dest]
                values[option.dest] = [*(held if isinstance(held, list) else []), value]
            else:
                values[option.dest] = value
    return Parsed(values, words, [])


def render_help(command: Command) -> str:
    """The command's `-h` text: synopsis, description, one entry per option, epilog."""
    lines = [f"usage: {command.usage[0]}"]
    lines.extend(f"       {line}" for line in command.usage[1:])
    lines += ["", command.description.rstrip("\n"), "", "options:"]
    for option in (*command.options, Option("-h, --help", "show this help and exit")):
        left = ", ".join(option.names)
        if option.kind in (VALUE, REST, APPEND):
            left += f" {option.metavar}" + (" [ARG...]" if option.kind == REST else "")
        text = option.help.split("\n")
        if len(left) >= HELP_COLUMN - 1:  # too wide: the text starts on the next line
            lines.append(f"  {left}")
        else:
            lines.append(f"  {left.ljust(HELP_COLUMN)}{text.pop(0)}")
        lines.extend(f"  {'':{HELP_COLUMN}}{line}" for line in text)
    if command.epilog:
        lines += ["", command.epilog.rstrip("\n")]
    return "\n".join(lines) + "\n"


def read_command_line(
    command: Command, args: Sequence[str], *, words: tuple[int, int] = (0, 0), prog: str = ""
) -> Parsed | int:
    """Parse `args` for a tool command; the Parsed values, or the exit status when done.

    `-h` prints the help (status 0); a usage error, or fewer or more positional words than
    `words` (at least, at most) allows, is one line on stderr naming `prog` (default
    `cinit NAME`) and pointing at its help (status 2).
    """
    prog = prog or f"cinit {command.name}"
    try:
        parsed = parse(command, args)
        fewest, most = words
        if len(parsed.words) > most:
            raise UsageError(f"unexpected argument {parsed.words[most]!r}")
        if len(parsed.words) < fewest and not parsed.help:
            raise UsageError(f"too few arguments; usage: {command.usage[0]}")
    except UsageError as exc:
        return usage_error(prog, exc)
    return show_help(command) if parsed.help else parsed


def usage_error(prog: str, error: UsageError, helped: str = "") -> int:
    """Say on stderr why the command line is wrong, and where help is; the usage status."""
    import sys

    sys.stderr.write(f"{prog}: {error} (see {helped or prog} --help)\n")
    return EXIT_USAGE


def show_help(command: Command) -> int:
    """Print `command`'s help on stdout; the status of a command that did its work."""
    import sys

    sys.stdout.write(render_help(command))
    return 0
