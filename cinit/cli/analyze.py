"""`cinit analyze blame|critical-chain|plot TRACE`: boot analysis from a JSONL trace, offline.

    cinit analyze blame TRACE                  units by the time their start took
    cinit analyze critical-chain TRACE [UNIT]  the chain of After= units that decided when
                                               UNIT (default: the last unit up) came up;
                                               `critical-chain UNIT TRACE` (systemd-analyze's
                                               order) works too
    cinit analyze plot TRACE [-o boot.svg]     an SVG boot chart (stdout without -o)

TRACE is a file written with CONTAINER_INIT_TRACE=1. The boot ends when it settled (the
trace's `boot-settled` event): what units did later is listed apart, as after boot.
Exit status: 0 done, 2 bad usage or a trace that cannot be read (the message names file
and line), 4 UNIT not in the trace.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from cinit import PROG
from cinit.cli.args import Command, Option, read_command_line, show_help

if TYPE_CHECKING:
    from cinit.tools.boot_trace import BootTrace

EXIT_OK, EXIT_USAGE, EXIT_UNKNOWN_UNIT = 0, 2, 4
UNIT_SUFFIXES = (".service", ".socket", ".target", ".timer", ".path", ".mount")


TRACE_HELP = "TRACE is a JSONL trace file written with CONTAINER_INIT_TRACE=1."
# Each analysis is a command of its own (its synopsis, options and `-h`); `cinit analyze -h`
# lists them.
ANALYSES = {
    "blame": Command(
        "blame",
        "units by the time their start took",
        [f"{PROG} analyze blame TRACE"],
        f"Units by the time their start took. {TRACE_HELP}",
        [],
    ),
    "critical-chain": Command(
        "critical-chain",
        "the chain of After= units that decided the boot time",
        [f"{PROG} analyze critical-chain TRACE [UNIT]  (or UNIT TRACE)"],
        "The chain of After= units that decided when UNIT (default: the one that came up\n"
        "last) came up; UNIT may come first, as in systemd-analyze: UNIT TRACE.\n" + TRACE_HELP,
        [],
    ),
    "plot": Command(
        "plot",
        "an SVG boot chart",
        [f"{PROG} analyze plot TRACE [-o FILE]"],
        f"An SVG boot chart. {TRACE_HELP}",
        [Option("-o, --output", "write the SVG here (default: stdout)", "FILE")],
    ),
}
# How many words (TRACE, UNIT) each analysis takes: at least, at most.
WORDS = {"blame": (1, 1), "critical-chain": (1, 2), "plot": (1, 1)}
ANALYZE = Command(
    "analyze",
    "blame, critical-chain or plot a boot from a trace file.",
    [f"{PROG} analyze COMMAND TRACE ..."],
    "Analyse a boot from a JSONL trace (CONTAINER_INIT_TRACE=1).",
    [],
    epilog="commands:\n"
    + "\n".join(f"  {name:<19}{command.summary}" for name, command in ANALYSES.items())
    + f"\n\n`{PROG} analyze COMMAND -h` shows a command's own help.",
)


def main(args: list[str]) -> int:
    """Entry point of `cinit analyze` (args without the command name)."""
    name = args[0] if args else ""
    command = ANALYSES.get(name)
    if command is None:
        if name in ("-h", "--help"):
            return show_help(ANALYZE)
        what = f"unknown command {name!r}" if name else "a command is needed"
        print(f"{PROG} analyze: {what} (see {PROG} analyze --help)", file=sys.stderr)
        return EXIT_USAGE
    prog = f"{PROG} analyze {name}"
    parsed = read_command_line(command, args[1:], words=WORDS[name], prog=prog)
    if isinstance(parsed, int):
        return parsed
    words = parsed.words
    trace_path, unit_name = words[0], None
    if len(words) == 2:
        trace_path, unit_name = trace_and_unit(words[0], words[1])

    from cinit.tools.boot_trace import TraceError, read_trace

    try:
        trace = read_trace(trace_path)
    except TraceError as exc:
        print(f"{PROG} analyze: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if trace.runs > 1:
        print(
            f"{PROG} analyze: {trace.path} holds {trace.runs} cinit runs; analysing the last, "
            f"from line {trace.first_line}",
            file=sys.stderr,
        )
    if name == "blame":
        from cinit.tools.boot_analysis import format_blame

        sys.stdout.write(format_blame(trace))
        return EXIT_OK
    if name == "critical-chain":
        return _critical_chain(trace, unit_name)
    return _plot(trace, parsed.text("output"))


def trace_and_unit(first: str, second: str) -> tuple[str, str]:
    """Which of two words is the trace and which the unit: `TRACE UNIT` is cinit's order,
    `UNIT TRACE` systemd-analyze's. The trace is the one that is a file (or ends in
    .jsonl), else the one without a unit suffix; when neither tells, cinit's order."""

    def trace_likeness(word: str) -> int:
        if os.path.isfile(word):
            return 2
        return 1 if word.endswith(".jsonl") or not word.endswith(UNIT_SUFFIXES) else 0

    if trace_likeness(second) > trace_likeness(first):
        return second, first
    return first, second


def _critical_chain(trace: BootTrace, unit_name: str | None) -> int:
    from cinit.tools.boot_analysis import (
        critical_chain,
        default_chain_unit,
        format_after_boot,
        format_chain,
    )

    if unit_name is None:
        unit = default_chain_unit(trace)
        if unit is None:
            print(
                f"{PROG} analyze: {trace.path}: no unit settled during the trace", file=sys.stderr
            )
            return EXIT_USAGE
    else:
        found = trace.units.get(unit_name)
        if found is None:
            print(
                f"{PROG} analyze: {trace.path}: unit {unit_name} not found in the trace",
                file=sys.stderr,
            )
            return EXIT_UNKNOWN_UNIT
        unit = found
    sys.stdout.write(format_chain(critical_chain(trace, unit)) + format_after_boot(trace))
    return EXIT_OK


def _plot(trace: BootTrace, output: str | None) -> int:
    from cinit.tools.boot_plot import render_svg

    svg = render_svg(trace)
    if output is None or output == "-":
        sys.stdout.write(svg)
        return EXIT_OK
    try:
        with open(output, "w", encoding="utf-8") as stream:
            stream.write(svg)
    except OSError as exc:
        print(f"{PROG} analyze: cannot write {output}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK
