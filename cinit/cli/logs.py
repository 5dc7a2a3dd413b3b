"""`cinit logs [UNIT...] [-n N] [-f] [--since TIME] [--json]`: the units' kept output.

cinit keeps the last lines of every unit's stdout and stderr in a ring per unit (see
`cinit.io.output`: 1,000 lines or 1 MiB by default, `cinit run --log-lines/--log-bytes`).
This command reads them over the control socket with `{"cmd": "logs"}` requests (see
`cinit.events.control_desk.ControlDesk.logs`), several units interleaved in the order cinit
read their lines, and prints them in journalctl's short format:

    Dec 07 21:04:05 HOST UNIT[PID]: text

(the unit's name stands where journalctl puts the syslog identifier; PID is the process
of the unit that wrote the line), or with `--json` one object per line: {"unit", "time"
(seconds since the epoch), "stream" ("stdout"|"stderr"), "text", "pid"}. `-f` prints the
last 10 lines (or -n N) and then polls for new ones with the reply's cursor every POLL_S
seconds (a REQ/ROUTER control socket has no push; a cursor loses nothing between two
polls while the ring holds the lines), until interrupted.

cinit's own lines about a unit (started, exited) are not kept: they are cinit's, on its
stderr. The shared machinery (`LogQuery`, `parse_since`, the formats) serves
`cinit.cli.journalctl` too.

Exit status: 0; 2 usage; 3 cinit not running (as `cinit status`); 4 an unknown unit or
permission denied; 1 cinit not answering.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import Any

from cinit.cli.args import APPEND, Command, Option, read_command_line
from cinit.io.control_client import ControlError, request

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NOT_RUNNING, EXIT_UNKNOWN = 0, 1, 2, 3, 4
PAGE = 5000  # lines asked per request when reading everything or following
POLL_S = 0.25  # how often -f asks for new lines
TIMEOUT_S = 10.0

LOGS = Command(
    "logs",
    "Show the units' kept output (like journalctl -u).",
    ("cinit logs [UNIT...] [-n N] [-f] [--since TIME] [--json] [--runtime-dir DIR]",),
    """\
Print the lines cinit kept of the units' stdout and stderr (every unit, or the UNITs:
`web` means web.service), oldest first, several units interleaved in the order cinit
read them, as `Mon DD HH:MM:SS HOST UNIT[PID]: text`. cinit keeps the last 1000 lines or
1 MiB of each unit (cinit run --log-lines/--log-bytes); lines longer than 48 KiB are cut.
TIME: seconds since the epoch (or @SECONDS), "YYYY-MM-DD [HH:MM[:SS]]", "HH:MM[:SS]"
(today), "-5min", "5 min ago", "now", "today", "yesterday" (as journalctl).
Exit: 0; 2 usage; 3 cinit not running; 4 unknown unit or permission denied.""",
    (
        Option("-n, --lines", "show the last N lines (default: all; with -f: 10)", "N"),
        Option("-f, --follow", "then print new lines as they come, until interrupted"),
        Option("--since", "only lines from TIME on", "TIME"),
        Option("--json", "one JSON object per line: unit, time, stream, text, pid"),
        Option("-u, --unit", "a unit to show (as UNIT; may be repeated)", "UNIT", kind=APPEND),
        Option(
            "--runtime-dir",
            "cinit's runtime directory (default: $CINIT_RUNTIME_DIR,\nelse /run/cinit)",
            "DIR",
        ),
    ),
)


class QueryFailed(Exception):
    """cinit refused the request; `code` is the exit status its reply names."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


# ---- times -------------------------------------------------------------------------------


def parse_since(text: str, now: float | None = None) -> float:
    """A journalctl time (systemd.time(7)'s forms, local time) -> seconds since the epoch.

    Raises ValueError with a message naming the accepted forms."""
    import datetime

    now = time.time() if now is None else now
    word = text.strip()
    lowered = word.lower()
    today = datetime.datetime.fromtimestamp(now).replace(hour=0, minute=0, second=0, microsecond=0)
    days = {"today": 0, "yesterday": -1, "tomorrow": 1}
    if lowered == "now":
        return now
    if lowered in days:
        return (today + datetime.timedelta(days=days[lowered])).timestamp()
    number = word[1:] if word.startswith("@") else word
    try:
        return float(number)
    except ValueError:
        pass
    relative = _relative(word)
    if relative is not None:
        return now + relative
    for form in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"):
        try:
            return datetime.datetime.strptime(word, form).timestamp()
        except ValueError:
            continue
    for form in ("%H:%M:%S", "%H:%M"):
        try:
            clock = datetime.datetime.strptime(word, form).time()
        except ValueError:
            continue
        return datetime.datetime.combine(today.date(), clock).timestamp()
    raise ValueError(
        f"not a time: {text!r} (expected seconds since the epoch, 'YYYY-MM-DD HH:MM[:SS]', "
        "'HH:MM[:SS]', '-5min', '5 min ago', 'today', 'yesterday' or 'now')"
    )


def _relative(word: str) -> float | None:
    """ "-5min", "+1h", "5 min ago" -> seconds from now; None when it is none of these."""
    sign, span = 0, ""
    if word[:1] in "+-" and len(word) > 1:
        sign, span = (1 if word[0] == "+" else -1), word[1:]
    elif word.endswith(" ago") or word.endswith(" left"):
        sign, span = (-1 if word.endswith("ago") else 1), word.rsplit(" ", 1)[0]
    if not sign:
        return None
    from cinit.units.diagnostics import ValueFormError
    from cinit.units.values import parse_timespan

    try:
        return sign * parse_timespan(span.strip())
    except ValueFormError:
        return None


# ---- formats -----------------------------------------------------------------------------

_HOST: list[str] = []


def host() -> str:
    """This machine's name, as journalctl prints it (the first label)."""
    if not _HOST:
        _HOST.append(os.uname().nodename.split(".")[0] or "localhost")
    return _HOST[0]


def short_line(line: dict[str, Any], hostname: bool = True) -> str:
    """journalctl's short format, with the unit where it puts the identifier."""
    stamp = time.strftime("%b %d %H:%M:%S", time.localtime(float(line.get("time") or 0)))
    pid = line.get("pid")
    writer = f"{line.get('unit')}[{pid}]" if pid else str(line.get("unit"))
    where = f" {host()}" if hostname else ""
    return f"{stamp}{where} {writer}: {line.get('text')}\n"


def json_line(line: dict[str, Any]) -> str:
    import json

    return json.dumps(line, ensure_ascii=False) + "\n"


# ---- the query ---------------------------------------------------------------------------


class LogQuery:
    """One `logs` conversation with cinit: the kept lines, then (follow) the new ones."""

    def __init__(
        self,
        path: str,
        units: list[str],
        count: int | None,
        since: float | None,
        write: Callable[[list[dict[str, Any]]], None],
    ) -> None:
        self.path = path  # the control socket
        self.units = units
        self.count = count  # None: everything kept
        self.since = since
        self.write = write  # prints a batch of lines (and flushes)
        self.cursor = 0
        self.shown = 0  # lines written

    def _ask(self, lines: int | None, after: int | None) -> dict[str, Any]:
        message = {
            "cmd": "logs",
            "units": self.units,
            "lines": lines,
            "since": self.since,
            "after": after,
        }
        reply = request(self.path, message, TIMEOUT_S)
        if not reply.get("ok"):
            code = reply.get("code")
            status = code if isinstance(code, int) and 0 < code < 256 else EXIT_FAILED
            raise QueryFailed(str(reply.get("error", "failed")), status)
        return reply

    def _take(self, reply: dict[str, Any]) -> int:
        lines = reply.get("lines") or []
        if lines:
            self.write(lines)
            self.shown += len(lines)
        self.cursor = int(reply.get("cursor") or 0)
        return len(lines)

    def kept(self) -> None:
        """Write the kept lines: the last `count`, or all of them page by page."""
        if self.count is not None:
            self._take(self._ask(self.count, None))
            return
        end: int | None = None
        while True:
            reply = self._ask(PAGE, self.cursor)
            got = self._take(reply)
            if end is None:
                end = int(reply.get("end") or 0)
            if not got or self.cursor >= end:
                return

    def follow(self) -> None:
        """Write new lines as they come (polling with the cursor), until interrupted."""
        while True:
            if self._take(self._ask(PAGE, self.cursor)) < PAGE:
                time.sleep(POLL_S)


def unreachable_status(reason: str) -> int:
    """cinit not running: 3 as `cinit status`; permission denied 4; not answering 1."""
    return {"absent": EXIT_NOT_RUNNING, "denied": EXIT_UNKNOWN}.get(reason, EXIT_FAILED)


def control_path(runtime: str | None) -> str:
    return os.path.join(runtime or os.environ.get("CINIT_RUNTIME_DIR") or "/run/cinit", "control")


def printer(form: Callable[[dict[str, Any]], str]) -> Callable[[list[dict[str, Any]]], None]:
    """Write each line of a batch in `form`, then flush (a follower sees it at once)."""

    def write(lines: list[dict[str, Any]]) -> None:
        sys.stdout.write("".join(form(line) for line in lines))
        sys.stdout.flush()

    return write


def run_query(query: LogQuery, follow: bool, prog: str, not_running: Callable[[str], int]) -> int:
    """Run `query` (then follow), turning interruptions and failures into exit statuses."""
    try:
        query.kept()
        if follow:
            query.follow()
    except ControlError as exc:
        sys.stderr.write(f"{prog}: {exc}\n")
        return not_running(exc.reason)
    except QueryFailed as exc:
        sys.stderr.write(f"{prog}: {exc}\n")
        return exc.code
    except KeyboardInterrupt:
        return EXIT_OK
    except BrokenPipeError:  # `| head`: the reader has seen enough
        _quiet_stdout()
        return EXIT_OK
    return EXIT_OK


def _quiet_stdout() -> None:
    """After EPIPE: point stdout at /dev/null so the interpreter's final flush is quiet."""
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, sys.stdout.fileno())
    os.close(null)


def main(args: list[str]) -> int:
    """`cinit logs ...`; returns the exit status."""
    parsed = read_command_line(LOGS, args, words=(0, 1 << 16))
    if isinstance(parsed, int):
        return parsed
    prog = "cinit logs"
    values = parsed.values
    count = None
    if parsed.text("lines") is not None:
        try:
            count = int(str(parsed.text("lines")))
            if count < 0:
                raise ValueError
        except ValueError:
            sys.stderr.write(
                f"{prog}: -n: expected a number of lines, not {parsed.text('lines')!r}\n"
            )
            return EXIT_USAGE
    follow = bool(values["follow"])
    if follow and count is None:
        count = 10  # as journalctl -f
    since = None
    if parsed.text("since") is not None:
        try:
            since = parse_since(str(parsed.text("since")))
        except ValueError as exc:
            sys.stderr.write(f"{prog}: --since: {exc}\n")
            return EXIT_USAGE
    given = values["unit"]
    units = [*parsed.words, *(given if isinstance(given, list) else [])]
    query = LogQuery(
        control_path(parsed.text("runtime_dir")),
        units,
        count,
        since,
        printer(json_line if values["json"] else short_line),
    )
    return run_query(query, follow, prog, unreachable_status)
