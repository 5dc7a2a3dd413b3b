"""The typer application: `cinit --help` (every command), `cinit help [COMMAND]`, `version`.

The commands parse their options with `cinit.cli.args` (typer costs ~100 ms to import, too
much for PID 1 and for an exec probe), from a table each declares (`cinit.cli.run.RUN`, ...),
and `cinit.cli.main` sends them there without coming here. They are registered here too,
passing their words through, so that the help lists each with the summary of its table and
a command given to this app runs the same code.
"""

from __future__ import annotations

from collections.abc import Callable

import typer

from cinit import PROG, __version__
from cinit.cli.args import Command


def _commands() -> tuple[Command, ...]:
    """Every command but `version`, in the order --help lists them: their own tables."""
    from cinit.cli.analyze import ANALYZE
    from cinit.cli.control import COMMANDS as CONTROL
    from cinit.cli.journalctl import JOURNALCTL
    from cinit.cli.logs import LOGS
    from cinit.cli.run import RUN
    from cinit.cli.systemctl import SYSTEMCTL
    from cinit.cli.tmpfiles import TMPFILES
    from cinit.cli.validate import VALIDATE
    from cinit.cli.watch import WATCH

    return (
        RUN, VALIDATE, *CONTROL.values(), LOGS, WATCH, ANALYZE, TMPFILES, SYSTEMCTL, JOURNALCTL
    )  # fmt: skip


COMMANDS = _commands()

HELP = f"""\
{PROG}: a PID 1 supervisor for container images, driven by systemd unit files.

Boot: {PROG} [run] [--units DIR] [--drop-in DIR] [--strict-units] [--validate]
[--stop-timeout S] [-- CMD ARGS... | --then-exec PATH ARGS...]. A bare word is a
command, never the main command: give that after `--` ({PROG} -- sleep 100).

`{PROG} COMMAND -h` (or `{PROG} help COMMAND`) shows a command's options.

Exit status of status, start, stop, restart, reload and is-ready: 0 done / ready; 1 the
action failed; 2 usage; 3 not ready, UNIT not up, or cinit not running (every one of these
commands: systemctl exits 1 when it cannot reach systemd, which cannot be told from a
failed action); 4 unknown unit, or permission denied.
"""

# A command's words go through untouched: the command parses them itself.
_PASS_THROUGH = {
    "allow_extra_args": True,
    "ignore_unknown_options": True,
    "help_option_names": [],
}

app = typer.Typer(
    name=PROG,
    help=HELP,
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain text like every other help of cinit's (and no odd rows)
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _root() -> None:
    """cinit's commands."""


def _forward(name: str) -> Callable[[typer.Context], None]:
    def command(ctx: typer.Context) -> None:
        from cinit.cli import run_tool

        if name == "run":
            from cinit.cli.run import main as run_main

            raise typer.Exit(run_main(list(ctx.args)))
        raise typer.Exit(run_tool([name, *ctx.args]))

    return command


for _command in COMMANDS:
    app.command(
        name=_command.name,
        help=_command.summary,
        context_settings=_PASS_THROUGH,
        add_help_option=False,
    )(_forward(_command.name))


@app.command()
def version() -> None:
    """Print cinit's version."""
    print(f"{PROG} {__version__}")


def run_app(args: list[str]) -> int:
    """Run the typer app on `args`; return its exit status instead of raising SystemExit."""
    if args and args[0] == "--version":
        args = ["version"]
    elif args and args[0] == "help":  # `cinit help [COMMAND]`: that command's own help
        args = [args[1], "--help"] if len(args) > 1 and args[1][:1] != "-" else ["--help"]
        if args[0] not in {command.name for command in COMMANDS} | {"version", "--help"}:
            from cinit.cli import unknown_command

            return unknown_command(args[0])
    try:
        app(args=args, prog_name=PROG, standalone_mode=True)
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    return 0
