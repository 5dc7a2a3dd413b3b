"""The `cinit` command: a thin dispatcher that keeps heavy imports off the boot path.

`cinit`, `cinit run ...` and `cinit -- CMD` go to `cinit.cli.run` and `cinit validate` to
`cinit.cli.validate`; each imports only what it needs (PID 1 must reach its first exec
quickly, and CI runs validate often). Tooling commands (`version`, later `status`,
`watch`, `analyze` ...) go to the typer application in `cinit.cli.app`.
"""

from __future__ import annotations

import sys

from cinit.io import signals

# Commands served by the typer app (tooling, off the boot path); `validate` has its own
# fast path because CI and image builds run it often; everything else is the boot path.
APP_COMMANDS = frozenset({"version", "--version", "--help", "-h", "help"})


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `cinit` console script; returns the process exit status."""
    # First of all: as PID 1, a signal arriving before cinit has a way to take it is lost
    # (the kernel drops signals PID 1 does not handle), so block them before any import.
    signals.block_owned()
    args = sys.argv[1:] if argv is None else argv
    if args and (args[0] == "validate" or args[0] in APP_COMMANDS):
        signals.release_owned()
    if args and args[0] == "validate":
        from cinit.cli.validate import main as validate_main

        return validate_main(args[1:])
    if args and args[0] in APP_COMMANDS:
        from cinit.cli.app import run_app

        return run_app(args)
    from cinit.cli.run import main as run_main

    return run_main(args)
