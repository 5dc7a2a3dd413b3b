"""`journalctl` (cinit's executable called through a `journalctl` symlink, or `cinit
journalctl ARGS`): the units' kept output, for scripts and fingers that know journalctl.

It reads what `cinit logs` reads (`cinit.cli.logs`). journalctl's options it knows:

  -u UNIT, -uUNIT, --unit=UNIT, --unit UNIT   (repeatable; `web` means web.service)
  (short options group as journalctl's do: -xeu UNIT, -fn 20)
  -n N, -nN, --lines=N, -n (10)               the last N lines
  -f, --follow                                then new lines as they come
  -e, --pager-end                             the end: the last 1000 lines unless -n
  -S TIME, --since=TIME                       (journalctl's TIME forms, see `cinit logs -h`)
  -o cat|short|json, --output=...             json: one journal-style object per line
  --no-pager, -b/--boot [ID], -q/--quiet, -a/--all, -x/--catalog, --no-hostname, -l/--full
                                              accepted (-q drops "-- No entries --")
  -h, --help

Any other option, and matches (FIELD=VALUE): a message and exit status 1. cinit not
running: "cinit is not running" and 1. A unit cinit does not know shows no entries, as
journalctl's -u of an unknown unit does.
"""

from __future__ import annotations

import sys
from typing import Any

from cinit.cli import logs
from cinit.cli.args import Command

PROG = "journalctl"
EXIT_OK, EXIT_FAILED = 0, 1
OUTPUTS = ("short", "cat", "json")
ACCEPTED_FLAGS = frozenset(
    {
        "--no-pager",
        "-q",
        "--quiet",
        "-a",
        "--all",
        "-x",
        "--catalog",
        "--no-hostname",
        "-l",
        "--full",
        "--system",
        "-m",
        "--merge",
    }
)
HELP = f"""\
{PROG} [OPTIONS...]

Show the output cinit kept of its units (the last 1000 lines or 1 MiB of each; this is
cinit's journalctl: there is no journal, only what cinit relayed).

  -u --unit=UNIT          Show lines of UNIT (repeatable; NAME means NAME.service)
  -n --lines[=N]          Number of lines to show (default with -n: 10)
  -f --follow             Follow: show new lines as they come
  -e --pager-end          Jump to the end (the last 1000 lines unless -n)
  -S --since=TIME         Show lines not older than TIME
  -o --output=MODE        short (default), cat or json
  -q --quiet              Do not say "-- No entries --"
     --no-pager -b --boot -a -x -l --no-hostname    accepted, no effect
  -h --help               Show this help
"""


# For `cinit --help`'s list only: journalctl parses its own (journalctl's) syntax.
JOURNALCTL = Command(
    "journalctl",
    "journalctl's options over the units' kept output.",
    (f"{PROG} [-u UNIT]... [-n N] [-f] [-e] [--since TIME] [-o short|cat|json]",),
    HELP,
    (),
)


class JournalUsage(Exception):
    """A command line this journalctl does not take."""


class JournalArgs:
    """What the command line asks for."""

    def __init__(self) -> None:
        self.units: list[str] = []
        self.lines: int | None = None
        self.follow = False
        self.end = False
        self.since: float | None = None
        self.output = "short"
        self.quiet = False
        self.help = False
        self.hostname = True


def _lines_value(text: str) -> int:
    word = text.strip()
    if word.startswith("+"):
        raise JournalUsage(f"--lines={text}: counting from the start is not supported")
    try:
        value = int(word)
    except ValueError:
        raise JournalUsage(f"failed to parse lines '{text}'") from None
    if value < 0:
        raise JournalUsage(f"failed to parse lines '{text}'")
    return value


def _set(parsed: JournalArgs, key: str, value: str) -> None:
    if key == "unit":
        parsed.units.append(value)
    elif key == "lines":
        parsed.lines = _lines_value(value)
    elif key == "since":
        try:
            parsed.since = logs.parse_since(value)
        except ValueError as exc:
            raise JournalUsage(f"failed to parse timestamp: {exc}") from None
    elif key == "output":
        if value not in OUTPUTS:
            raise JournalUsage(
                f"unknown output format '{value}' (this journalctl has: {', '.join(OUTPUTS)})"
            )
        parsed.output = value


_FLAG_LETTERS = frozenset("feqaxlmb")  # short options without a value (grouped: -xe)
_VALUE_LETTERS = frozenset("unoS")  # short options with one (-xeu UNIT, -fn20)


def _ungroup(word: str) -> list[str]:
    """`-xeu` -> `-x -e -u`, `-fn20` -> `-f -n20`: journalctl's grouped short options; other
    words (`-b1`, `-uweb`, long options) as they are."""
    if word.startswith("--") or len(word) < 3 or word[1] not in _FLAG_LETTERS:
        return [word]
    if not word[2].isalpha():
        return [word]
    pieces: list[str] = []
    for index in range(1, len(word)):
        letter = word[index]
        if letter in _VALUE_LETTERS:
            return [*pieces, "-" + word[index:]]
        if letter not in _FLAG_LETTERS:
            return [word]  # an unknown letter: the whole word is reported
        pieces.append("-" + letter)
    return pieces


# option -> the value it sets: short with a value, long with a value
_SHORT_VALUE = {"-u": "unit", "-S": "since", "-o": "output"}
_LONG_VALUE = {"--unit": "unit", "--since": "since", "--output": "output"}


def parse_args(args: list[str]) -> JournalArgs:
    """journalctl's syntax for the options above; raises JournalUsage."""
    parsed = JournalArgs()
    args = list(args)
    index = 0
    while index < len(args):
        word = args[index]
        index += 1
        pieces = _ungroup(word)
        if len(pieces) > 1:
            word = pieces[0]
            args[index:index] = pieces[1:]
        name, has_value, inline = word.partition("=")
        if word in ("-h", "--help"):
            parsed.help = True
        elif word in ("-f", "--follow"):
            parsed.follow = True
        elif word in ("-e", "--pager-end"):
            parsed.end = True
        elif word in ("-q", "--quiet"):
            parsed.quiet = True
        elif word == "--no-hostname":
            parsed.hostname = False
        elif word in ACCEPTED_FLAGS:
            continue
        elif name in ("-b", "--boot"):  # the current boot is the only one: any ID is it
            if not has_value and index < len(args) and _boot_id(args[index]):
                index += 1
        elif word.startswith("-b") and not word.startswith("--") and _boot_id(word[2:]):
            continue
        elif name in _LONG_VALUE and word.startswith("--"):
            if not has_value:
                if index >= len(args):
                    raise JournalUsage(f"option '{name}' requires an argument")
                inline, index = args[index], index + 1
            _set(parsed, _LONG_VALUE[name], inline)
        elif word[:2] in _SHORT_VALUE:
            value = word[2:]
            if not value:
                if index >= len(args):
                    raise JournalUsage(f"option requires an argument -- '{word[1]}'")
                value, index = args[index], index + 1
            _set(parsed, _SHORT_VALUE[word[:2]], value)
        elif name == "--lines" or word.startswith("-n"):
            value = inline if name == "--lines" else word[2:]
            if name == "--lines" and not has_value:
                value = ""
            if not value and index < len(args) and args[index].lstrip("+").isdigit():
                value, index = args[index], index + 1  # journalctl takes `-n 20` too
            parsed.lines = _lines_value(value) if value else 10
        elif word.startswith("-"):
            raise JournalUsage(f"unrecognized option '{word}' (cinit's journalctl: see --help)")
        else:
            raise JournalUsage(
                f"matches such as '{word}' are not supported (cinit's journalctl: use -u UNIT)"
            )
    return parsed


def _boot_id(word: str) -> bool:
    """Whether `word` is a boot's designation (-b 0, -b -1, -b ID)."""
    if not word:
        return False
    if word.lstrip("+-").isdigit():
        return True
    return len(word) == 32 and all(c in "0123456789abcdef" for c in word.lower())


def _journal_json(line: dict[str, Any]) -> str:
    """A journal-style JSON entry (journalctl -o json's field names, strings)."""
    import json

    unit = str(line.get("unit") or "")
    entry = {
        "__REALTIME_TIMESTAMP": str(int(float(line.get("time") or 0) * 1_000_000)),
        "_HOSTNAME": logs.host(),
        "_SYSTEMD_UNIT": unit,
        "SYSLOG_IDENTIFIER": unit.removesuffix(".service"),
        "_PID": str(line.get("pid") or ""),
        "_TRANSPORT": "stdout",
        "PRIORITY": "6",
        "CINIT_STREAM": line.get("stream"),
        "MESSAGE": line.get("text"),
    }
    return json.dumps(entry, ensure_ascii=False) + "\n"


def _cat(line: dict[str, Any]) -> str:
    return f"{line.get('text')}\n"


def _short_no_host(line: dict[str, Any]) -> str:
    return logs.short_line(line, hostname=False)


def _not_running(reason: str) -> int:
    return EXIT_FAILED


def main(args: list[str]) -> int:
    """`journalctl ARGS`; returns the exit status."""
    try:
        parsed = parse_args(args)
    except JournalUsage as exc:
        sys.stderr.write(f"{PROG}: {exc}\n")
        return EXIT_FAILED
    if parsed.help:
        sys.stdout.write(HELP)
        return EXIT_OK
    count = parsed.lines
    if count is None and parsed.end:
        count = 1000
    if count is None and parsed.follow:
        count = 10
    if parsed.output == "json":
        form = _journal_json
    elif parsed.output == "cat":
        form = _cat
    else:
        form = logs.short_line if parsed.hostname else _short_no_host
    query = logs.LogQuery(
        logs.control_path(None), parsed.units, count, parsed.since, logs.printer(form)
    )
    status = logs.run_query(query, parsed.follow, PROG, _not_running)
    if status == logs.EXIT_UNKNOWN and not parsed.follow:
        status = EXIT_OK  # journalctl -u of a unit it never saw: no entries, status 0
    status = EXIT_FAILED if status else EXIT_OK  # journalctl's statuses are 0 and 1
    if status == EXIT_OK and not query.shown and not parsed.quiet and parsed.output != "json":
        sys.stdout.write("-- No entries --\n")
    return status
