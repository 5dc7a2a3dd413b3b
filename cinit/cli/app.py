"""The typer application for cinit's tooling commands (everything but the boot path)."""

from __future__ import annotations

import typer

from cinit import PROG, __version__

app = typer.Typer(
    name=PROG,
    help=(
        "cinit: a PID 1 supervisor for container images, driven by systemd unit files.\n\n"
        "Boot: cinit \\[run] [--units DIR] [--drop-in DIR] [--strict-units] [--validate] "
        "[--stop-timeout S] [-- CMD ARGS...]  (see `cinit run --help`).\n\n"
        "Validate: cinit validate [--units DIR] [--drop-in DIR] [--strict-units] [--json] "
        "[--example]  (see `cinit validate --help`)."
    ),
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """cinit's tooling commands."""


@app.command()
def version() -> None:
    """Print cinit's version."""
    print(f"{PROG} {__version__}")


def run_app(args: list[str]) -> int:
    """Run the typer app on `args`; return its exit status instead of raising SystemExit."""
    if args and args[0] == "--version":
        args = ["version"]
    try:
        app(args=args, prog_name=PROG, standalone_mode=True)
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    return 0
