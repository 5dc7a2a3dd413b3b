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

import argparse
import os
import sys
from typing import TYPE_CHECKING

from cinit import PROG

if TYPE_CHECKING:
    from cinit.tools.boot_trace import BootTrace

EXIT_OK, EXIT_USAGE, EXIT_UNKNOWN_UNIT = 0, 2, 4
UNIT_SUFFIXES = (".service", ".socket", ".target", ".timer", ".path", ".mount")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"{PROG} analyze",
        description="Analyse a boot from a JSONL trace (CONTAINER_INIT_TRACE=1).",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    blame = commands.add_parser("blame", help="units by the time their start took")
    blame.add_argument("trace", metavar="TRACE", help="JSONL trace file")
    chain = commands.add_parser(
        "critical-chain",
        help="the chain of After= units that decided the boot time",
        usage=f"{PROG} analyze critical-chain TRACE [UNIT]  (or UNIT TRACE)",
    )
    chain.add_argument("trace", metavar="TRACE", help="JSONL trace file")
    chain.add_argument(
        "unit",
        metavar="UNIT",
        nargs="?",
        help="the unit to explain (default: the one that came up last); it may come first, "
        "as in systemd-analyze: UNIT TRACE",
    )
    plot = commands.add_parser("plot", help="an SVG boot chart")
    plot.add_argument("trace", metavar="TRACE", help="JSONL trace file")
    plot.add_argument("-o", "--output", metavar="FILE", help="write the SVG here (default: stdout)")
    return parser


def main(args: list[str]) -> int:
    """Entry point of `cinit analyze` (args without the command name)."""
    try:
        options = _parser().parse_args(args)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if options.command == "critical-chain" and options.unit is not None:
        options.trace, options.unit = trace_and_unit(options.trace, options.unit)

    from cinit.tools.boot_trace import TraceError, read_trace

    try:
        trace = read_trace(options.trace)
    except TraceError as exc:
        print(f"{PROG} analyze: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if trace.runs > 1:
        print(
            f"{PROG} analyze: {trace.path} holds {trace.runs} cinit runs; analysing the last, "
            f"from line {trace.first_line}",
            file=sys.stderr,
        )
    if options.command == "blame":
        from cinit.tools.boot_analysis import format_blame

        sys.stdout.write(format_blame(trace))
        return EXIT_OK
    if options.command == "critical-chain":
        return _critical_chain(trace, options.unit)
    return _plot(trace, options.output)


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
