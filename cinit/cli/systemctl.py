"""`systemctl` inside the image: systemctl(1)'s verbs, answered by cinit.

Reached as `cinit systemctl ARGS...` and when cinit's executable is called as `systemctl`
(a symlink: see `cinit.cli.main`). This module is the front end only: it parses
systemctl's options (anywhere on the line, as systemctl takes them), picks the verb's
handler from `VERBS` and runs it on a `Call`. The handlers live in their own modules,
imported only when their verb is used (`systemctl is-active` runs as a whole process, often:
it must stay cheap). Two kinds of verbs:

- unit-file verbs (enable, disable, mask, is-enabled, cat, ...) work on the files, with or
  without a running cinit (`RUN systemctl enable nginx` at image build time, `--root=DIR`);
- the others ask the running cinit over its control socket; without one they print
  "cinit is not running" and exit 1 (`status`: 3, as systemctl(1) says for status).

Exit codes are systemctl(1)'s: 0 ok; 1 failed, or a usage error (systemctl says 1 there, not
2); 3 inactive / not running; 4 no such unit.
"""

from __future__ import annotations

import os
import sys

from cinit.boot_path import TYPE_CHECKING
from cinit.cli.args import APPEND, Command, Option, Parsed, UsageError, parse, render_help

if TYPE_CHECKING:
    from collections.abc import Callable

PROG = "systemctl"
EXIT_OK, EXIT_FAILED, EXIT_INACTIVE, EXIT_NO_UNIT = 0, 1, 3, 4
DEFAULT_RUNTIME_DIR = "/run/cinit"

OPTIONS = (
    Option("-t, --type", "list only units of these types (comma-separated)", "TYPES", kind=APPEND),
    Option("--state", "list only units in these states (comma-separated)", "STATES", kind=APPEND),
    Option("-p, --property", "show only these properties (comma-separated)", "NAMES", kind=APPEND),
    Option("-P", "show only this property's value (= --value -p NAME)", "NAME", kind=APPEND),
    Option("-a, --all", "list every unit, and every property (also empty ones)"),
    Option("--value", "show: print only the values, not NAME="),
    Option("-s, --signal", "kill: the signal to send (default SIGTERM)", "SIG"),
    Option("--kill-whom", "kill: main, control or all (default all)", "WHOM"),
    Option("-n, --lines", "status: how many output lines to show (default 10)", "N"),
    Option("-o, --output", "status: journal output format (short, cat, json)", "FORMAT"),
    Option("--now", "enable/disable/mask: also start/stop the units"),
    Option("--root", "work on the unit files below DIR (offline verbs only)", "DIR"),
    Option("-q, --quiet", "print less (nothing for is-active, is-enabled, ...)"),
    Option("--no-pager", "accepted (cinit never pages)"),
    Option("--no-block", "do not wait for start/stop/restart to finish"),
    Option("--no-legend", "list verbs: no header and no footer"),
    Option("--plain", "list-dependencies: a plain list, not a tree"),
    Option("-l, --full", "do not shorten anything"),
    Option("-r, --recursive", "accepted"),
    Option("--reverse", "list-dependencies: the units that depend on UNIT"),
    Option("-f, --force", "enable/link: overwrite links that exist"),
    Option("--no-ask-password", "accepted (cinit never asks)"),
    Option("--no-reload", "accepted"),
    Option("--system", "accepted (cinit runs the system's units)"),
    Option("--user", "not supported: cinit runs no per-user manager"),
    Option(
        "--runtime-dir",
        "cinit's runtime directory (default $CINIT_RUNTIME_DIR or /run/cinit)",
        "DIR",
    ),
    Option("--timeout", "how long to wait for cinit's answer (seconds)", "SECS"),
    Option("--version", "print cinit's version"),
)
SYSTEMCTL = Command(
    "systemctl",
    "systemctl(1)'s verbs, answered by cinit.",
    ("systemctl [OPTIONS...] VERB [UNIT...]",),
    """\
Control the units of the running cinit, and the unit files (enable, disable, mask, ...)
with or without it, as systemctl(1) does. Verbs: see the list below.
Exit: 0 ok; 1 failed or bad usage; 3 not active / not running; 4 no such unit.""",
    OPTIONS,
)


class Call:
    """One systemctl invocation as a verb handler sees it."""

    __slots__ = ("parsed", "units", "verb")

    def __init__(self, verb: str, units: list[str], parsed: Parsed) -> None:
        self.verb = verb
        self.units = units  # the words after the verb (units, or a verb's arguments)
        self.parsed = parsed  # every option's value, by dest (see OPTIONS)

    def flag(self, dest: str) -> bool:
        """Whether the flag option `dest` (e.g. "quiet", "all", "now") was given."""
        return bool(self.parsed.values.get(dest))

    def text(self, dest: str) -> str | None:
        """A VALUE option's text (e.g. "root", "signal"), or None."""
        return self.parsed.text(dest)

    def listed(self, dest: str) -> list[str]:
        """An APPEND option's values, comma lists split: `-p A,B -p C` -> [A, B, C]."""
        held = self.parsed.values.get(dest)
        if not isinstance(held, list):
            return []
        return [part for value in held for part in str(value).split(",") if part]

    @property
    def runtime_dir(self) -> str:
        """Where the running cinit's control socket is."""
        return (
            self.text("runtime_dir") or os.environ.get("CINIT_RUNTIME_DIR") or (DEFAULT_RUNTIME_DIR)
        )

    def fail(self, message: str, status: int = EXIT_FAILED) -> int:
        """Say `message` on stderr as systemctl does (no prefix) and return `status`."""
        sys.stderr.write(message.rstrip("\n") + "\n")
        return status


class Verb:
    """A verb's row: where its handler is, how many words it takes, whether it is offline."""

    __slots__ = ("fewest", "function", "module", "most", "summary")

    def __init__(self, target: str, summary: str, fewest: int = 0, most: int | None = None) -> None:
        self.module, _, self.function = target.partition(":")
        self.summary = summary
        self.fewest = fewest  # words after the verb, at least
        self.most = most  # at most (None: any number)

    def handler(self) -> Callable[[Call], int]:
        """The handler function (imported now: only the verb used is ever imported)."""
        import importlib

        found: Callable[[Call], int] = getattr(importlib.import_module(self.module), self.function)
        return found


UNITS, FILES = "cinit.cli.systemctl_units", "cinit.cli.systemctl_files"
RELOAD, TIMERS = "cinit.cli.systemctl_reload", "cinit.cli.systemctl_timers"

# Verb -> its row. Handlers: systemctl_units (the running cinit's units), systemctl_files
# (unit files, offline too), systemctl_reload, systemctl_timers. A verb not listed is unknown.
VERBS: dict[str, Verb] = {
    "list-units": Verb(f"{UNITS}:list_units", "list the units (PATTERN... filters)"),
    "list-sockets": Verb(f"{UNITS}:list_sockets", "list the socket units and what they listen on"),
    "list-timers": Verb(f"{TIMERS}:list_timers", "list the timers: next and last elapse"),
    "list-dependencies": Verb(f"{UNITS}:list_dependencies", "a unit's dependency tree", 0, 1),
    "start": Verb(f"{UNITS}:start", "start UNIT...", 1),
    "stop": Verb(f"{UNITS}:stop", "stop UNIT...", 1),
    "restart": Verb(f"{UNITS}:restart", "stop, then start UNIT...", 1),
    "try-restart": Verb(f"{UNITS}:try_restart", "restart UNIT... that are running", 1),
    "reload": Verb(f"{RELOAD}:reload", "run UNIT...'s ExecReload=", 1),
    "reload-or-restart": Verb(f"{RELOAD}:reload_or_restart", "reload, or restart if it cannot", 1),
    "try-reload-or-restart": Verb(
        f"{RELOAD}:try_reload_or_restart", "reload-or-restart UNIT... that are running", 1
    ),
    "daemon-reload": Verb(f"{RELOAD}:daemon_reload", "re-read every unit file", 0, 0),
    "kill": Verb(f"{UNITS}:kill", "send a signal (-s) to UNIT...'s processes", 1),
    "reset-failed": Verb(f"{UNITS}:reset_failed", "forget the failed state of UNIT... (or all)"),
    "status": Verb(f"{UNITS}:status", "UNIT...'s state, processes and last output lines"),
    "show": Verb(f"{UNITS}:show", "UNIT...'s properties (-p NAME, --value)"),
    "cat": Verb(f"{FILES}:cat", "print UNIT...'s files (with drop-ins)", 1),
    "is-active": Verb(f"{UNITS}:is_active", "0 when some UNIT is active, else 3", 1),
    "is-failed": Verb(f"{UNITS}:is_failed", "0 when some UNIT failed, else 1", 1),
    "is-system-running": Verb(f"{UNITS}:is_system_running", "running, starting, degraded...", 0, 0),
    "is-enabled": Verb(f"{FILES}:is_enabled", "enabled, disabled, static, masked...", 1),
    "list-unit-files": Verb(f"{FILES}:list_unit_files", "list the unit files and their state"),
    "enable": Verb(f"{FILES}:enable", "make UNIT...'s [Install] links (--now: and start)", 1),
    "disable": Verb(f"{FILES}:disable", "remove UNIT...'s [Install] links (--now: and stop)", 1),
    "reenable": Verb(f"{FILES}:reenable", "disable, then enable UNIT...", 1),
    "mask": Verb(f"{FILES}:mask", "link UNIT... to /dev/null (--now: and stop)", 1),
    "unmask": Verb(f"{FILES}:unmask", "remove UNIT...'s /dev/null link", 1),
    "preset": Verb(f"{FILES}:preset", "enable or disable UNIT... as the presets say", 1),
    "get-default": Verb(f"{FILES}:get_default", "the default target", 0, 0),
    "set-default": Verb(f"{FILES}:set_default", "set the default target", 1, 1),
    "show-environment": Verb(f"{UNITS}:show_environment", "the environment units start with", 0, 0),
    "set-environment": Verb(f"{UNITS}:set_environment", "set VAR=VALUE... for later starts", 1),
    "unset-environment": Verb(f"{UNITS}:unset_environment", "unset VAR... for later starts", 1),
}

# --now turns these file verbs into file verb + this verb on the same units.
NOW_FOLLOWERS = {"enable": "start", "disable": "stop", "mask": "stop", "reenable": "restart"}


def main(args: list[str]) -> int:
    """`systemctl ARGS...` (args without the program name); returns the exit status."""
    try:
        parsed = parse(SYSTEMCTL, args)
    except UsageError as exc:
        return _usage(str(exc))
    if parsed.help:
        sys.stdout.write(render_help(SYSTEMCTL) + _verb_list())
        return EXIT_OK
    if parsed.values.get("version"):
        from cinit import __version__

        sys.stdout.write(f"cinit {__version__} (systemctl verbs)\n")
        return EXIT_OK
    if parsed.values.get("user"):
        return _usage("--user is not supported: cinit runs the system's units, no user manager")
    shown = parsed.values.get("P")
    if isinstance(shown, list):  # -P NAME is --value --property=NAME
        held = parsed.values.get("property")
        parsed.values["property"] = [*(held if isinstance(held, list) else []), *shown]
        parsed.values["value"] = True
    words = parsed.words or ["list-units"]  # no verb: list-units, as systemctl does
    verb_name, units = words[0], words[1:]
    verb = VERBS.get(verb_name)
    if verb is None:
        return _unknown_verb(verb_name)
    if len(units) < verb.fewest:
        return _usage(f"too few arguments for '{verb_name}'")
    if verb.most is not None and len(units) > verb.most:
        return _usage(f"too many arguments for '{verb_name}'")
    status = verb.handler()(Call(verb_name, units, parsed))
    follower = NOW_FOLLOWERS.get(verb_name)
    if status == EXIT_OK and follower and parsed.values.get("now") and follower in VERBS:
        status = VERBS[follower].handler()(Call(follower, units, parsed))
    return status


def _usage(message: str) -> int:
    sys.stderr.write(f"{PROG}: {message} (see {PROG} --help)\n")
    return EXIT_FAILED


def _unknown_verb(word: str) -> int:
    import difflib

    close = difflib.get_close_matches(word, list(VERBS), n=1, cutoff=0.6)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    sys.stderr.write(f"Unknown command verb '{word}'{hint} (see {PROG} --help)\n")
    return EXIT_FAILED


def _verb_list() -> str:
    rows = [f"  {name:<24}{verb.summary}" for name, verb in VERBS.items()]
    return "\nverbs:\n" + "\n".join(rows) + "\n"
