"""The `cinit` command: a thin dispatcher that keeps heavy imports off the boot path.

`cinit`, `cinit run ...` and `cinit -- CMD` go to `cinit.cli.run` and `cinit validate` to
`cinit.cli.validate`; each imports only what it needs (PID 1 must reach its first exec
quickly, CI runs validate often, and Kubernetes runs `cinit is-ready` as an exec probe).
The control commands (`status`, `start`, `stop`, `restart`, `is-ready`) go to
`cinit.cli.control`, `watch` to `cinit.cli.watch`, `analyze` to `cinit.cli.analyze`, and
`version`/`--help` to the typer application in `cinit.cli.app`.
"""

from __future__ import annotations

import os
import sys

from cinit.io import signals

# Commands served by the typer app (tooling, off the boot path); `validate` has its own
# fast path because CI and image builds run it often; everything else is the boot path.
APP_COMMANDS = frozenset({"version", "--version", "--help", "-h", "help"})

# Tool commands: name -> the module whose `main(args: list[str]) -> int` serves it.
TOOL_COMMANDS = {
    "validate": "cinit.cli.validate",
    "status": "cinit.cli.control",
    "start": "cinit.cli.control",
    "stop": "cinit.cli.control",
    "restart": "cinit.cli.control",
    "is-ready": "cinit.cli.control",
    "watch": "cinit.cli.watch",
    "analyze": "cinit.cli.analyze",
}


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
    if args and (args[0] in TOOL_COMMANDS or args[0] in APP_COMMANDS):
        signals.release_owned()
    if args and args[0] in TOOL_COMMANDS:
        import importlib

        module = importlib.import_module(TOOL_COMMANDS[args[0]])
        # The control module serves several commands: it gets the command name too.
        rest = args if TOOL_COMMANDS[args[0]] == "cinit.cli.control" else args[1:]
        status: int = module.main(rest)
        return status
    if args and args[0] in APP_COMMANDS:
        from cinit.cli.app import run_app

        return run_app(args)
    import gc

    # The boot path allocates much and frees little until the actors run: collecting
    # meanwhile costs ~5 ms for nothing (cinit.boot turns the collector back on).
    gc.disable()
    from cinit.cli.run import main as run_main

    return run_main(args)
