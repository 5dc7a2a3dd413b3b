"""`cinit status|start|stop|restart|reload|is-ready`: talk to a running cinit's control endpoint.

systemctl-like, with LSB exit codes:
  status [UNIT] [--json]   0; with UNIT: 0 when it is up (active/exited), 3 when not
  start|stop|restart UNIT  0 done, 1 failed (the reason on stderr), 4 unknown unit
  reload UNIT...           ExecReload= of each: 0 done, 1 failed or not applicable, 4 unknown
  reload [--apply]         daemon-reload: read the unit directories again; prints the
                           difference ("+ added", "- removed", "~ changed: Directive, ...");
                           --apply starts added, stops removed, restarts changed units and
                           answers once they got there (1 when one failed); 1 when the new
                           set has errors (the diagnostics on stderr)
  is-ready [UNIT]          no output; 0 ready, 3 not ready (or cinit not reachable),
                           4 unknown unit
  cinit not running        3 for every command (no control socket: LSB's "not running";
                           systemctl says 1 there, which a failed action says too);
                           4 permission denied; cinit not answering: status 4 (unknown),
                           is-ready 3, actions 1
  any                      2 usage
The endpoint is `ipc://<runtime dir>/control` (`--runtime-dir`, $CINIT_RUNTIME_DIR,
/run/cinit). This module is on the exec-probe path of `is-ready`: it imports nothing
beyond the standard library's small modules (no pyzmq: see `cinit.io.control_client`).
"""

from __future__ import annotations

import os
import sys
import time

from cinit.boot_path import TYPE_CHECKING
from cinit.cli.args import Command, Option, UsageError, parse, render_help
from cinit.io.control_client import ControlError, request

if TYPE_CHECKING:
    from typing import Any

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NOT_READY, EXIT_UNKNOWN = 0, 1, 2, 3, 4
DEFAULT_TIMEOUT = {"status": 10.0, "is-ready": 5.0, "start": 120.0, "stop": 120.0}
OPTIONS = (
    Option("--json", "status: print the reply as one JSON document"),
    Option(
        "--apply", "reload without UNIT: also start added, stop removed,\nrestart changed units"
    ),
    Option(
        "--runtime-dir",
        "cinit's runtime directory (default: $CINIT_RUNTIME_DIR,\nelse /run/cinit)",
        "DIR",
    ),
    Option("--timeout", "how long to wait for the answer", "SECS"),
)
USAGE = (
    "cinit status [UNIT] [--json] [--runtime-dir DIR]",
    "cinit start|stop|restart UNIT [--runtime-dir DIR] [--timeout SECS]",
    "cinit reload [UNIT...] [--apply] [--runtime-dir DIR] [--timeout SECS]",
    "cinit is-ready [UNIT] [--runtime-dir DIR] [--timeout SECS]",
)
DESCRIPTION = """\
Ask the running cinit (its control socket in the runtime directory: --runtime-dir,
else $CINIT_RUNTIME_DIR, else /run/cinit) about its units, start/stop/restart/reload
one, or read the unit files again (reload without UNIT: daemon-reload; --apply acts
on the difference).
Exit: 0 ok; 1 failed (start/stop/restart/reload, or cinit not answering); 2 usage;
3 not ready, UNIT not up, or cinit not running (every command); 4 unknown unit,
permission denied, or status unknown.
is-ready prints nothing on stdout."""
SUMMARIES = {
    "status": "Show the running cinit's units, or one UNIT in detail.",
    "start": "Start UNIT in the running cinit.",
    "stop": "Stop UNIT in the running cinit.",
    "restart": "Restart UNIT in the running cinit.",
    "reload": "Reload UNIT (ExecReload=); without UNIT: re-read unit files.",
    "is-ready": "Exit 0 when the boot (or UNIT) is up, else 3 (a probe).",
}
# One table for the five commands: they take the same options and share one help.
COMMANDS = {
    name: Command(name, summary, USAGE, DESCRIPTION, OPTIONS) for name, summary in SUMMARIES.items()
}


def main(args: list[str]) -> int:
    """args[0] is the command name; returns the exit status."""
    command = COMMANDS[args[0]]
    name = command.name
    try:
        parsed = parse(command, args[1:])
    except UsageError as exc:
        sys.stderr.write(f"cinit {name}: {exc}\n{render_help(command)}")
        return EXIT_USAGE
    if parsed.help:
        sys.stdout.write(render_help(command))
        return EXIT_OK
    words = parsed.words
    if name == "reload":
        return _reload(command, parsed, words)
    needs_unit = name in ("start", "stop", "restart")
    if len(words) > 1 or (needs_unit and not words):
        what = "one UNIT" if needs_unit else "at most one UNIT"
        sys.stderr.write(f"cinit {name}: expected {what}\n{render_help(command)}")
        return EXIT_USAGE
    unit = words[0] if words else None
    message: dict[str, Any] = {"cmd": name}
    if unit is not None:
        message["unit"] = unit
    reply, status = _ask(name, parsed, message)
    if reply is None:
        return status
    if name == "is-ready":
        return EXIT_OK if reply.get("ready") else EXIT_NOT_READY
    if name == "status":
        return _show_status(reply, unit, bool(parsed.values["json"]))
    return EXIT_OK


def _ask(name: str, parsed: Any, message: dict[str, Any]) -> tuple[dict[str, Any] | None, int]:
    """Send `message`; (the reply, 0) when it says ok, else (None, the exit status), the
    reason written on stderr."""
    given_timeout = parsed.text("timeout")
    try:
        timeout = (
            DEFAULT_TIMEOUT.get(name, 240.0) if given_timeout is None else float(given_timeout)
        )
    except ValueError:
        sys.stderr.write(f"cinit {name}: --timeout: not a number\n")
        return None, EXIT_USAGE
    runtime = parsed.text("runtime_dir") or os.environ.get("CINIT_RUNTIME_DIR") or "/run/cinit"
    try:
        reply = request(os.path.join(runtime, "control"), message, timeout)
    except ControlError as exc:
        sys.stderr.write(f"cinit {name}: {exc}\n")
        return None, _unreachable_status(name, exc.reason)
    if not reply.get("ok"):
        sys.stderr.write(f"cinit {name}: {reply.get('error', 'failed')}\n")
        code = reply.get("code")
        return None, code if isinstance(code, int) and 0 < code < 256 else EXIT_FAILED
    return reply, EXIT_OK


def _reload(command: Command, parsed: Any, units: list[str]) -> int:
    """`reload UNIT...`: each unit's ExecReload= in turn (the worst status wins);
    `reload [--apply]`: daemon-reload, and the difference it found."""
    apply = bool(parsed.values["apply"])
    if units and apply:
        sys.stderr.write(f"cinit reload: --apply goes without UNIT\n{render_help(command)}")
        return EXIT_USAGE
    if not units:
        reply, status = _ask("reload", parsed, {"cmd": "daemon-reload", "apply": apply})
        if reply is not None:
            lines = [str(line) for line in reply.get("diff") or ()]
            named = {line.split(":")[0][2:] for line in lines}
            # --apply also restarts what an earlier reload changed while it ran.
            lines += [
                f"~ {name}: restarted (it ran an older definition)"
                for name in reply.get("restarted") or ()
                if name not in named
            ]
            sys.stdout.write("".join(f"{line}\n" for line in lines))
        return status
    worst = EXIT_OK
    for unit in units:
        _, status = _ask("reload", parsed, {"cmd": "reload", "unit": unit})
        if status == EXIT_NOT_READY:  # cinit is not running: said once
            return status
        worst = max(worst, status)
    return worst


def _unreachable_status(command: str, reason: str) -> int:
    """One rule: cinit not running is 3 for every command (LSB status' "not running", so a
    script can tell it from an action that failed, 1); 4 is "insufficient privilege" and,
    for status, "unknown" (cinit does not answer); an action not answered is 1."""
    if reason == "denied":
        return EXIT_UNKNOWN
    if reason == "absent" or command == "is-ready":
        return EXIT_NOT_READY
    return EXIT_UNKNOWN if command == "status" else EXIT_FAILED


# ---- status output ------------------------------------------------------------------------


def _show_status(reply: dict[str, Any], unit: str | None, as_json: bool) -> int:
    units: dict[str, dict[str, Any]] = reply.get("units") or {}
    if as_json:
        import json

        sys.stdout.write(json.dumps(reply, indent=2, sort_keys=True) + "\n")
    elif unit is not None:
        for status in units.values():
            sys.stdout.write(_block(status))
    else:
        sys.stdout.write(_table(units, reply))
    if unit is None:
        return EXIT_OK
    up = any(status.get("ready") for status in units.values())
    return EXIT_OK if up else EXIT_NOT_READY


def _ago(since: Any) -> str:
    if not isinstance(since, int | float):
        return "-"
    from cinit.tools.durations import elapsed

    return elapsed(time.time() - since)


def _bytes(value: Any) -> str:
    if not isinstance(value, int):
        return "-"
    for unit in ("B", "K", "M", "G"):
        if value < 1024 or unit == "G":
            return f"{value:.1f}{unit}" if unit != "B" else f"{value}B"
        value = value // 1024 if unit == "B" else value / 1024
    return "-"


def _exit_text(last: Any) -> str:
    if not isinstance(last, dict):
        return "-"
    if last.get("signal"):
        return f"signal={last['signal']}"
    return f"status={last.get('code')}"


def _table(units: dict[str, dict[str, Any]], reply: dict[str, Any]) -> str:
    header = ("UNIT", "STATE", "PID", "SINCE", "RESTARTS", "LAST EXIT", "MEMORY", "DESCRIPTION")
    rows = [header]
    for name in sorted(units):
        status = units[name]
        rows.append(
            (
                name,
                str(status.get("state", "")),
                str(status.get("main_pid") or "-"),
                _ago(status.get("since")),
                str(status.get("restarts", 0)),
                _exit_text(status.get("last_exit")),
                _bytes(status.get("memory")),
                _timer_note(status) or str(status.get("description") or ""),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    lines = []
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    ready = "ready" if reply.get("ready") else "not ready"
    lines.append(f"\n{len(units)} units, {ready} (event seq {reply.get('seq')})")
    return "\n".join(lines) + "\n"


def _timer_note(status: dict[str, Any]) -> str:
    """A timer's line in the table: `next 2026-12-07 21:04:00 (in 3s), last 2s ago`."""
    if status.get("kind") != "timer":
        return ""
    parts = []
    upcoming = status.get("next_elapse")
    if isinstance(upcoming, int | float):
        parts.append(f"next {_when(upcoming)} (in {_left(upcoming)})")
    last = status.get("last_trigger")
    if isinstance(last, int | float):
        parts.append(f"last {_ago(last)} ago")
    return ", ".join(parts) or "no elapse armed"


def _left(epoch: float) -> str:
    from cinit.tools.durations import elapsed

    return elapsed(epoch - time.time())


def _when(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))


def _timer_lines(status: dict[str, Any]) -> list[str]:
    """`systemctl status x.timer`'s Trigger:/Triggers: lines."""
    if status.get("kind") != "timer":
        return []
    lines = []
    upcoming = status.get("next_elapse")
    if isinstance(upcoming, int | float):
        lines.append(f"    Trigger: {_when(upcoming)}; {_left(upcoming)} left")
    else:
        lines.append("    Trigger: n/a")
    last = status.get("last_trigger")
    if isinstance(last, int | float):
        lines.append(f"  Triggered: {_when(last)}; {_ago(last)} ago")
    if status.get("triggers"):
        lines.append(f"   Triggers: {status['triggers']}")
    return lines


def _block(status: dict[str, Any]) -> str:
    """A `systemctl status UNIT`-style block."""
    since = status.get("since")
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(since)) if since else "-"
    dot = "●" if status.get("ready") else "○"
    description = status.get("description") or ""
    lines = [
        f"{dot} {status.get('name')}" + (f" - {description}" if description else ""),
        *(f"    Drop-In: {path}" for path in status.get("snippets") or ()),
        f"     Active: {status.get('state')} ({status.get('sub') or '-'}) since {when};"
        f" {_ago(since)} ago",
        *_timer_lines(status),
        f"   Main PID: {status.get('main_pid') or '-'}",
        *([f'     Status: "{status["status_text"]}"'] if status.get("status_text") else []),
        f"   Restarts: {status.get('restarts', 0)}",
        f"  Last exit: {_exit_text(status.get('last_exit'))}  result: {status.get('result')}",
        f"     Memory: {_bytes(status.get('memory'))}"
        + (f"  CPU: {status['cpu']:.3f}s" if isinstance(status.get("cpu"), float) else ""),
    ]
    recent = status.get("recent_events") or []
    if recent:
        lines.append("")
        lines.extend(f"  {line}" for line in recent)
    log_lines = status.get("log") or []
    if log_lines:
        lines.append("")
        lines.extend(str(line) for line in log_lines)
    return "\n".join(lines) + "\n"
