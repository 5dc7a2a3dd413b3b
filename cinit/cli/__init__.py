"""The `cinit` command: a thin dispatcher that keeps heavy imports off the boot path.

`cinit`, `cinit run ...` and `cinit -- CMD` go to `cinit.cli.run` and `cinit validate` to
`cinit.cli.validate`; each imports only what it needs (PID 1 must reach its first exec
quickly, CI runs validate often, and Kubernetes runs `cinit is-ready` as an exec probe).
The control commands (`status`, `start`, `stop`, `restart`, `reload`, `is-ready`) go to
`cinit.cli.control`, `watch` to `cinit.cli.watch`, `analyze` to `cinit.cli.analyze`,
`tmpfiles` to `cinit.cli.tmpfiles`, `logs` to `cinit.cli.logs`, `systemctl` and
`journalctl` (also cinit called as `systemctl` or `journalctl`, see `PROGRAM_NAMES`) to
`cinit.cli.systemctl` and `cinit.cli.journalctl`, and
`version`, `help` and `--help`/`-h` to the typer application in `cinit.cli.app` (which
lists every command). Any other first word that is not an option is an unknown command
(exit 2, with a "did you mean"): the main command goes after `--`.
"""

from __future__ import annotations

import os
import sys

from cinit import PROG
from cinit.io import signals

# Commands served by the typer app (tooling, off the boot path); `validate` has its own
# fast path because CI and image builds run it often; everything else is the boot path.
APP_COMMANDS = frozenset({"version", "--version", "--help", "-h", "help"})
RUN_COMMAND = "run"  # the boot path's own name (`cinit run ...` is `cinit ...`)
EXIT_USAGE = 2

# Tool commands: name -> the module whose `main(args: list[str]) -> int` serves it.
TOOL_COMMANDS = {
    "validate": "cinit.cli.validate",
    "status": "cinit.cli.control",
    "start": "cinit.cli.control",
    "stop": "cinit.cli.control",
    "restart": "cinit.cli.control",
    "reload": "cinit.cli.control",
    "is-ready": "cinit.cli.control",
    "watch": "cinit.cli.watch",
    "analyze": "cinit.cli.analyze",
    "tmpfiles": "cinit.cli.tmpfiles",
    "logs": "cinit.cli.logs",
    "systemctl": "cinit.cli.systemctl",
    "journalctl": "cinit.cli.journalctl",
}
# cinit called by another name (a symlink): that name's command, on all of the arguments.
PROGRAM_NAMES = {"systemctl": "systemctl", "journalctl": "journalctl"}


def run_tool(args: list[str]) -> int:
    """Run the tool command `args[0]` (a key of TOOL_COMMANDS) on the rest of `args`."""
    import importlib

    module = importlib.import_module(TOOL_COMMANDS[args[0]])
    # The control module serves several commands: it gets the command name too.
    rest = args if TOOL_COMMANDS[args[0]] == "cinit.cli.control" else args[1:]
    status: int = module.main(rest)
    return status


def command_names() -> list[str]:
    """Every command `cinit` takes as its first word."""
    return [RUN_COMMAND, *TOOL_COMMANDS, "version", "help"]


def unknown_command(word: str) -> int:
    """Say that `word` is no command (naming the closest one) and return the usage status."""
    import difflib

    close = difflib.get_close_matches(word, command_names(), n=1, cutoff=0.75)
    if close:
        hint = f"did you mean '{close[0]}'?"
    else:
        hint = f"to run it as the main command: {PROG} -- {word} ..."
    sys.stderr.write(f"{PROG}: unknown command '{word}'; {hint} (see {PROG} --help)\n")
    return EXIT_USAGE


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `cinit` console script; returns the process exit status."""
    # First of all: as PID 1, a signal arriving before cinit has a way to take it is lost
    # (the kernel drops signals PID 1 does not handle), so block them before any import.
    signals.block_owned()
    if getattr(sys, "frozen", False):  # a standalone build: what its bootloader added to the
        # environment must reach neither the services nor the main command
        from cinit.io.handoff import program_environment

        cleaned = program_environment(os.environ)
        os.environ.clear()
        os.environ.update(cleaned)
    args = sys.argv[1:] if argv is None else argv
    called_as = os.path.basename(sys.argv[0]) if argv is None and sys.argv else ""
    if called_as in PROGRAM_NAMES:
        signals.release_owned()
        return run_tool([PROGRAM_NAMES[called_as], *args])
    if args and (args[0] in TOOL_COMMANDS or args[0] in APP_COMMANDS):
        signals.release_owned()
    if args and args[0] in TOOL_COMMANDS:
        return run_tool(args)
    if args and args[0] in APP_COMMANDS:
        from cinit.cli.app import run_app

        return run_app(args)
    if args and args[0] != RUN_COMMAND and not args[0].startswith("-"):
        signals.release_owned()
        return unknown_command(args[0])
    import gc

    # The boot path allocates much and frees little until the actors run: collecting
    # meanwhile costs ~5 ms for nothing (cinit.boot turns the collector back on).
    gc.disable()
    from cinit.cli.run import main as run_main

    return run_main(args)
