"""`cinit [run] [OPTIONS] [-- COMMAND ARGS...]`: the boot path's command line.

Its options are a table for `cinit.cli.args` (no argparse, no typer: every import here delays
the main command's exec). `--opt=value` and `--opt value` are both accepted; an unknown
option is an error (exit 2).

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
    BootConfig,
)
from cinit.cli.args import (
    REST,
    SWITCH,
    Command,
    Option,
    UsageError,
    parse,
    show_help,
    usage_error,
)

RUN = Command(
    "run",
    "Boot the units and/or `-- CMD` as PID 1 (the default).",
    ["cinit [run] [OPTIONS] [-- COMMAND [ARG...] | --then-exec PATH [ARG...]]"],
    """\
Run as a container's PID 1: boot the systemd units found in the unit directories,
and/or run COMMAND as the main process (like tini), reap every orphan, forward signals,
and stop everything in order on SIGTERM, SIGINT or SIGRTMIN+3.""",
    [
        Option("--units", f"core unit files (default: {DEFAULT_UNITS_DIR})", "DIR"),
        Option("--drop-in", f"drop-in unit files (default: {DEFAULT_DROP_IN_DIR})", "DIR"),
        Option("--strict-units", "treat every unit-file warning as an error"),
        Option(
            "--systemd",
            "also boot an image laid out for systemd: units from\n"
            "/etc/systemd/system, /run/systemd/system, /lib/systemd/system,\n"
            "/usr/lib/systemd/system; what default.target pulls in starts\n"
            "(see docs/systemd.md)",
        ),
        Option(
            "--systemd-root",
            "read systemd's directories under DIR instead of /\n"
            "(default: $CINIT_SYSTEMD_ROOT, else /; for tests and image builds)",
            "DIR",
        ),
        Option("--validate", "load and check the units, print a summary, and exit"),
        Option(
            "--example",
            "boot the example unit set shipped inside cinit (instead of\n"
            "--units and --drop-in): a oneshot, a ticker, a drop-in\n"
            "override and an addition, and a proxy socket on 127.0.0.1:8080",
        ),
        Option(
            "--stop-timeout",
            "bound on the whole shutdown before SIGKILL\n"
            f"(default: {DEFAULT_STOP_TIMEOUT:g}; also 500ms, 5s, 1min)",
            "SECS",
        ),
        Option(
            "--runtime-dir",
            "cinit's private runtime directory (default: $CINIT_RUNTIME_DIR,\nelse /run/cinit)",
            "DIR",
        ),
        Option(
            "--timer-state-dir",
            "where Persistent= timers keep their last-trigger stamps\n"
            "(default: $CINIT_TIMER_STATE_DIR, else /var/lib/cinit/timers)",
            "DIR",
        ),
        Option(
            "--events",
            "where the ZeroMQ event stream is published (default:\n"
            "$CINIT_EVENTS, else ipc://<runtime dir>/events); tcp://PORT\n"
            "binds loopback only",
            "ENDPOINT",
        ),
        Option(
            "--control-group",
            "members of GROUP may use the event and control sockets too\n"
            "(default: $CINIT_CONTROL_GROUP; unset: root only)",
            "GROUP",
        ),
        Option(
            "--log-prefix, --no-log-prefix",
            "prefix each line of service output with `<unit>: ` (default: on;\n"
            "CINIT_LOG_PREFIX=0 turns it off unless --log-prefix is given)",
            kind=SWITCH,
        ),
        Option(
            "--log-lines",
            "lines of each unit's output kept for `cinit logs` and status\n"
            "(default: $CINIT_LOG_LINES, else 1000; 0: none kept)",
            "N",
        ),
        Option(
            "--log-bytes",
            "bytes of each unit's output kept, whichever bound comes first\n"
            "(default: $CINIT_LOG_BYTES, else 1M; also 512K, 4M; 0: none kept)",
            "SIZE",
        ),
        Option(
            "--then-exec",
            "boot the units until the oneshots finished, stop what still\n"
            "runs, then exec PATH in place of cinit (same pid: PID 1 stays\n"
            "PID 1) with fds 0-2 only and clean signals; 127/126 when PATH\n"
            "cannot be executed",
            "PATH",
            kind=REST,
        ),
        Option(
            "--tmpfiles, --no-tmpfiles",
            "apply tmpfiles.d (--create --remove --boot) before the first\n"
            "unit; as PID 1 only (default: when cinit boots units in an\n"
            "empty /run, as a container runtime gives it)",
            kind=SWITCH,
        ),
        Option(
            "--log-target",
            "where cinit's own lines go (default: $CINIT_LOG_TARGET, else\n"
            "auto: /dev/kmsg when there is no stderr, else stderr)",
            "auto|console|kmsg",
        ),
    ],
    epilog="""\
Signals: SIGTERM/SIGINT/SIGRTMIN+3 stop cinit (COMMAND gets the same signal);
SIGHUP, SIGUSR1, SIGUSR2, SIGWINCH, SIGQUIT, SIGALRM are forwarded to COMMAND.
Exit status: COMMAND's (128+N if killed by signal N); 0 without COMMAND; a unit with
ExitContainerOnFailure=yes that failed: its exit code, or 1; 1 unit errors; 2 usage;
126/127 COMMAND not executable/not found; 70 internal error.""",
    takes_command=True,
)
_FALSE_WORDS = frozenset({"0", "no", "n", "false", "f", "off"})


class RunOptions:
    """The parsed command line."""

    __slots__ = ("config", "example", "help", "log_target", "validate")

    def __init__(
        self,
        config: BootConfig,
        validate: bool,
        help: bool,
        log_target: str | None = None,
        example: bool = False,
    ) -> None:
        self.config = config
        self.validate = validate
        self.help = help
        self.log_target = log_target  # None: $CINIT_LOG_TARGET, else auto
        self.example = example  # --example: the embedded unit set


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


_SIZE_UNITS = {"": 1, "B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def _log_bound(given: str | None, variable: str, option: str, default: int, size: bool) -> int:
    """--log-lines N / --log-bytes SIZE, else the environment variable, else `default`.

    Sizes are powers of 1024 as systemd's (`64K`, `1M`, `1.5M`); not the units' own parser:
    that package stays off the boot path."""
    text = given if given is not None else os.environ.get(variable, "").strip()
    if not text:
        return default
    where = option if given is not None else f"${variable}"
    value = text.strip().upper().removesuffix("IB") if size else text.strip()
    scale = 1
    if size and value[-1:] in _SIZE_UNITS:
        scale, value = _SIZE_UNITS[value[-1:]], value[:-1]
    try:
        number = float(value) * scale if size else int(value)
    except ValueError:
        kind = "a size (1M, 512K, 0)" if size else "a number of lines"
        raise UsageError(f"{where}: expected {kind}, not {text!r}") from None
    if not 0 <= number < 1 << 40:
        raise UsageError(f"{where}: must be 0 or more, not {text!r}")
    return int(number)


def parse_args(argv: list[str]) -> RunOptions:
    """Parse `cinit [run] ...` arguments; raises UsageError."""
    args = argv[1:] if argv and argv[0] == "run" else argv
    parsed = parse(RUN, args)
    if parsed.words:
        word = parsed.words[0]
        raise UsageError(
            f"unexpected argument {word!r}; give the main command after '--': cinit -- {word} ..."
        )
    values = parsed.values
    then_exec = values["then_exec"]
    if then_exec is not None and not (isinstance(then_exec, list) and then_exec and then_exec[0]):
        raise UsageError("--then-exec needs the path of the program to hand off to")
    # The environment gives the default; a flag on the command line wins over it.
    log_prefix = values["log_prefix"]
    if log_prefix is None:
        log_prefix = os.environ.get("CINIT_LOG_PREFIX", "").strip().lower() not in _FALSE_WORDS
    units_dir = parsed.text_or("units", DEFAULT_UNITS_DIR)
    drop_in_dir = parsed.text_or("drop_in", DEFAULT_DROP_IN_DIR)
    if values["example"]:
        if values["units"] is not None or values["drop_in"] is not None:
            raise UsageError("--example boots the embedded example set: no --units or --drop-in")
        from cinit import example_dirs

        units_dir, drop_in_dir = example_dirs()
    stop_timeout = parsed.text("stop_timeout")
    log_lines = _log_bound(parsed.text("log_lines"), "CINIT_LOG_LINES", "--log-lines", 1000, False)
    log_bytes = _log_bound(
        parsed.text("log_bytes"), "CINIT_LOG_BYTES", "--log-bytes", 1 << 20, True
    )
    config = BootConfig(
        units_dir=units_dir,
        drop_in_dir=drop_in_dir,
        strict=bool(values["strict_units"]),
        stop_timeout=DEFAULT_STOP_TIMEOUT if stop_timeout is None else parse_duration(stop_timeout),
        log_prefix=bool(log_prefix),
        log_lines=log_lines,
        log_bytes=log_bytes,
        command=parsed.command,
        runtime_dir=parsed.text("runtime_dir") or None,
        timer_state_dir=parsed.text("timer_state_dir") or None,
        events_endpoint=parsed.text("events") or None,
        control_group=parsed.text("control_group") or None,
        then_exec=then_exec if isinstance(then_exec, list) else None,
        systemd=bool(values["systemd"]),
        systemd_root=parsed.text("systemd_root") or None,
        tmpfiles=None if values["tmpfiles"] is None else bool(values["tmpfiles"]),
    )
    if config.systemd_root is not None and not config.systemd:
        raise UsageError("--systemd-root goes with --systemd")
    target = parsed.text("log_target")
    if target is not None and target.strip().lower() not in ("auto", "console", "kmsg"):
        raise UsageError(f"--log-target: expected auto, console or kmsg, not {target!r}")
    return RunOptions(config, bool(values["validate"]), parsed.help, target,
                      example=bool(values["example"]))  # fmt: skip


def _systemd_root(config: BootConfig) -> str:
    from cinit.units.systemd_layout import systemd_root

    return config.systemd_root or systemd_root(os.environ)


def _say_if_the_example_lacks_python() -> None:
    """The example's web.service runs `python3 -m http.server`: the standalone cinit needs no
    Python, so the system may have none. Say so at once, rather than let the first request
    to 127.0.0.1:8080 fail with the service (the other example units need only /bin/sh)."""
    from cinit.io.spawn import can_exec

    if not can_exec("python3", os.environ):
        from cinit.io.log import log

        log("--example: no python3 on this system (PATH): web.service, the HTTP server "
            "behind web.socket (127.0.0.1:8080), runs `python3 -m http.server` and fails "
            "when a first connection starts it; hello, ticker and the drop-ins need only "
            "/bin/sh (and an image can replace web.service by a drop-in, as the "
            "Containerfile's does with busybox httpd)")  # fmt: skip


def main(argv: list[str]) -> int:
    """`cinit [run] ...`; returns the exit status."""
    try:
        options = parse_args(argv)
    except UsageError as exc:
        return usage_error("cinit", exc, helped="cinit run")
    if options.help:
        return show_help(RUN)
    config = options.config
    from cinit.io.log import configure_target

    configure_target(options.log_target)
    if options.example and not options.validate:
        _say_if_the_example_lacks_python()
    if options.validate:
        from cinit.cli.validate import run_validate

        return run_validate(
            config.units_dir,
            config.drop_in_dir,
            config.strict,
            systemd_root=_systemd_root(config) if config.systemd else None,
        )
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
