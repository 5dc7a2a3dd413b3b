"""`cinit [run] [OPTIONS] [-- COMMAND ARGS...]`: the boot path's command line.

Parsed by hand (no argparse, no typer): every import here delays the main command's exec.
`--opt=value` and `--opt value` are both accepted; an unknown option is an error (exit 2).

Behaviour by what exists:

* `-- COMMAND` and no unit directory: a tini-like init. COMMAND is the main process;
  cinit exits with its status (128+N when killed by signal N), or 127/126 with a message
  when it cannot be executed.
* a unit directory exists (either of them): the units are loaded and checked first
  (diagnostics on stderr, exit 1 when they have errors); COMMAND, if given, runs beside
  them. Without COMMAND cinit runs until a stop signal and then exits 0.
* neither a unit directory nor COMMAND: nothing to supervise. This is a broken
  container image rather than a quiet success, so cinit says so, naming both directories,
  and exits 2 (a usage error), instead of idling or exiting 0.

* `--then-exec PATH [ARGS...]` (takes the rest of the command line, like `--`): boot the
  units until every boot unit settled (the oneshots finished), stop whatever still runs,
  then exec PATH as the same process (PID 1 stays PID 1); see `cinit.io.handoff`.

Exit statuses: COMMAND's status; 0 after a clean stop without COMMAND; 1 unit files with
errors; 2 usage; 126/127 COMMAND not executable / not found; 70 internal error.
"""

from __future__ import annotations

import os
import sys

from cinit.boot import (
    DEFAULT_DROP_IN_DIR,
    DEFAULT_STOP_TIMEOUT,
    DEFAULT_UNITS_DIR,
    EXIT_USAGE,
    BootConfig,
)

USAGE = f"""\
usage: cinit [run] [OPTIONS] [-- COMMAND [ARG...] | --then-exec PATH [ARG...]]

Run as a container's PID 1: boot the systemd units found in the unit directories,
and/or run COMMAND as the main process (like tini), reap every orphan, forward signals,
and stop everything in order on SIGTERM, SIGINT or SIGRTMIN+3.

options:
  --units DIR          core unit files (default: {DEFAULT_UNITS_DIR})
  --drop-in DIR        drop-in unit files (default: {DEFAULT_DROP_IN_DIR})
  --strict-units       treat every unit-file warning as an error
  --validate           load and check the units, print a summary, and exit
  --example            boot the example unit set shipped inside cinit (instead of
                       --units and --drop-in): a oneshot, a ticker, a drop-in
                       override and an addition, and a proxy socket on 127.0.0.1:8080
  --stop-timeout SECS  bound on the whole shutdown before SIGKILL
                       (default: {DEFAULT_STOP_TIMEOUT:g}; also 500ms, 5s, 1min)
  --runtime-dir DIR    cinit's private runtime directory (default: $CINIT_RUNTIME_DIR,
                       else /run/cinit)
  --events ENDPOINT    where the ZeroMQ event stream is published (default:
                       $CINIT_EVENTS, else ipc://<runtime dir>/events); tcp://PORT
                       binds loopback only
  --control-group GROUP
                       members of GROUP may use the event and control sockets too
                       (default: $CINIT_CONTROL_GROUP; unset: root only)
  --log-prefix, --no-log-prefix
                       prefix each line of service output with `<unit>: ` (default: on;
                       CINIT_LOG_PREFIX=0 turns it off unless --log-prefix is given)
  --then-exec PATH [ARG...]
                       boot the units until the oneshots finished, stop what still
                       runs, then exec PATH in place of cinit (same pid: PID 1 stays
                       PID 1) with fds 0-2 only and clean signals; 127/126 when PATH
                       cannot be executed
  --log-target auto|console|kmsg
                       where cinit's own lines go (default: $CINIT_LOG_TARGET, else
                       auto: /dev/kmsg when there is no stderr, else stderr)
  -h, --help           show this help and exit

Signals: SIGTERM/SIGINT/SIGRTMIN+3 stop cinit (COMMAND gets the same signal);
SIGHUP, SIGUSR1, SIGUSR2, SIGWINCH, SIGQUIT, SIGALRM are forwarded to COMMAND.
Exit status: COMMAND's (128+N if killed by signal N); 0 without COMMAND; a unit with
ExitContainerOnFailure=yes that failed: its exit code, or 1; 1 unit errors; 2 usage;
126/127 COMMAND not executable/not found; 70 internal error.
"""

_VALUE_OPTIONS = frozenset(
    {
        "--units",
        "--drop-in",
        "--stop-timeout",
        "--runtime-dir",
        "--events",
        "--control-group",
        "--log-target",
    }
)
_FALSE_WORDS = frozenset({"0", "no", "n", "false", "f", "off"})
_FLAG_OPTIONS = frozenset(
    {
        "--strict-units",
        "--validate",
        "--example",
        "--log-prefix",
        "--no-log-prefix",
        "--help",
        "-h",
    }
)


class UsageError(Exception):
    """Bad command line; the message says what, the exit status is 2."""


class RunOptions:
    """The parsed command line."""

    __slots__ = ("config", "help", "log_target", "validate")

    def __init__(
        self, config: BootConfig, validate: bool, help: bool, log_target: str | None = None
    ) -> None:
        self.config = config
        self.validate = validate
        self.help = help
        self.log_target = log_target  # None: $CINIT_LOG_TARGET, else auto


def parse_duration(text: str) -> float:
    """`8`, `2.5`, `500ms`, `5s`, `1min` -> seconds."""
    value = text.strip().lower()
    scale = 1.0
    for suffix, factor in (("ms", 0.001), ("min", 60.0), ("sec", 1.0), ("s", 1.0), ("m", 60.0)):
        if value.endswith(suffix):
            value, scale = value[: -len(suffix)].strip(), factor
            break
    try:
        seconds = float(value) * scale
    except ValueError:
        raise UsageError(f"--stop-timeout: not a duration: {text!r}") from None
    if not seconds >= 0 or seconds == float("inf"):
        raise UsageError(f"--stop-timeout: must be a finite, non-negative duration: {text!r}")
    return seconds


def parse_args(argv: list[str]) -> RunOptions:
    """Parse `cinit [run] ...` arguments; raises UsageError."""
    args = list(argv)
    if args and args[0] == "run":
        args.pop(0)
    values: dict[str, str] = {}
    flags: set[str] = set()
    command: list[str] = []
    then_exec: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            command = args[i:]
            break
        if arg == "--then-exec" or arg.startswith("--then-exec="):
            then_exec = [arg.partition("=")[2]] if "=" in arg else []
            then_exec += args[i:]
            if not then_exec or not then_exec[0]:
                raise UsageError("--then-exec needs the path of the program to hand off to")
            break
        name, eq, inline = arg.partition("=")
        if name in _VALUE_OPTIONS:
            if eq:
                values[name] = inline
            elif i < len(args):
                values[name] = args[i]
                i += 1
            else:
                raise UsageError(f"option {name} needs a value")
        elif arg in _FLAG_OPTIONS:
            flags.add(arg)
        elif arg.startswith("-"):
            raise UsageError(f"unknown option {arg!r}")
        else:
            raise UsageError(
                f"unexpected argument {arg!r}; give the main command after '--': cinit -- {arg} ..."
            )
    # The environment gives the default; a flag on the command line wins over it.
    log_prefix = os.environ.get("CINIT_LOG_PREFIX", "").strip().lower() not in _FALSE_WORDS
    for arg in args[:i]:
        if arg in ("--log-prefix", "--no-log-prefix"):
            log_prefix = arg == "--log-prefix"  # the last one wins
    units_dir = values.get("--units", DEFAULT_UNITS_DIR)
    drop_in_dir = values.get("--drop-in", DEFAULT_DROP_IN_DIR)
    if "--example" in flags:
        if "--units" in values or "--drop-in" in values:
            raise UsageError("--example boots the embedded example set: no --units or --drop-in")
        from cinit import example_dirs

        units_dir, drop_in_dir = example_dirs()
    config = BootConfig(
        units_dir=units_dir,
        drop_in_dir=drop_in_dir,
        strict="--strict-units" in flags,
        stop_timeout=parse_duration(values["--stop-timeout"])
        if "--stop-timeout" in values
        else DEFAULT_STOP_TIMEOUT,
        log_prefix=log_prefix,
        command=command,
        runtime_dir=values.get("--runtime-dir") or None,
        events_endpoint=values.get("--events") or None,
        control_group=values.get("--control-group") or None,
        then_exec=then_exec or None,
    )
    target = values.get("--log-target")
    if target is not None and target.strip().lower() not in ("auto", "console", "kmsg"):
        raise UsageError(f"--log-target: expected auto, console or kmsg, not {target!r}")
    help = bool(flags & {"--help", "-h"})
    return RunOptions(config, "--validate" in flags, help, target)


def main(argv: list[str]) -> int:
    """`cinit [run] ...`; returns the exit status."""
    try:
        options = parse_args(argv)
    except UsageError as exc:
        sys.stderr.write(f"cinit: {exc} (see cinit run --help)\n")
        return EXIT_USAGE
    if options.help:
        sys.stdout.write(USAGE)
        return 0
    config = options.config
    from cinit.io.log import configure_target

    configure_target(options.log_target)
    if options.validate:
        from cinit.cli.validate import run_validate

        return run_validate(config.units_dir, config.drop_in_dir, config.strict)
    from cinit.boot import run

    status = run(config)
    # Everything is stopped, reaped and relayed by now: skip the interpreter's teardown
    # (freeing every object, joining the actors' daemon threads), ~10 ms of a container's
    # stop, as tini skips nothing it does not need.
    import contextlib

    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # closed or broken: nothing to save
            stream.flush()
    os._exit(status)
