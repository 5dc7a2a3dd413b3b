"""`cinit watch [--json] [--runtime-dir DIR] [--events ENDPOINT]`: watch cinit live.

On a terminal: a rich view with one row per unit (state, pid, uptime, restarts, CPU, RSS,
last event) and a scrolling event pane. The view subscribes to the event stream first,
then asks the control endpoint for a status snapshot (its reply names the `seq` it
reflects) and applies the events after it by seq (`cinit.tools.watch_model`); a gap or an
`events-dropped` event fetches a fresh snapshot. CPU and RSS come from a status request
every few seconds. Started before cinit, it waits; when cinit goes away and comes back,
it reconnects. Ctrl-C (or SIGTERM/SIGHUP) leaves with status 0 and the terminal restored.

With `--json`, or when stdout is not a terminal: the events as JSON Lines, each once and
in seq order; missed seqs are reported on stderr.

An ipc endpoint whose directory another user could change is refused (status 3, as
`cinit status` when cinit is not running: cinit never listens there), as the other
clients refuse it (`cinit.io.runtime.check_trusted_dir`).

Exit status: 0 after Ctrl-C/SIGTERM (or a closed pipe), 2 usage errors, 3 an untrusted
socket directory.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from types import FrameType
from typing import Any

from cinit import PROG
from cinit.cli.args import Command, Option, read_command_line
from cinit.io.runtime import UntrustedDirectory, check_trusted_dir, runtime_dir

EVENTS_ENV = "CINIT_EVENTS"
EXIT_OK, EXIT_USAGE, EXIT_UNTRUSTED = 0, 2, 3
STATUS_INTERVAL_S = 2.0  # how often CPU/RSS are refreshed (and cinit's presence checked)
REPLY_TIMEOUT_S = 1.0  # a control request unanswered this long: cinit is not there
RETRY_INTERVAL_S = 0.5  # pause between snapshot attempts while cinit is away
FRAME_INTERVAL_S = 0.1  # at most this often a redraw; at least once a second


WATCH = Command(
    "watch",
    "A live table of the units and their events.",
    [f"{PROG} watch [--json] [--runtime-dir DIR] [--events ENDPOINT]"],
    "Watch cinit's units and events live (a terminal view, or JSON Lines).",
    [
        Option(
            "--json",
            "print the events as JSON Lines (the default when stdout\nis not a terminal)",
        ),
        Option(
            "--runtime-dir",
            "cinit's runtime directory (default: $CINIT_RUNTIME_DIR,\nelse /run/cinit)",
            "DIR",
        ),
        Option(
            "--events",
            "event stream endpoint (default: $CINIT_EVENTS,\nelse ipc://<runtime dir>/events)",
            "ENDPOINT",
        ),
    ],
)


def main(args: list[str]) -> int:
    """Entry point of `cinit watch` (args without the command name)."""
    parsed = read_command_line(WATCH, args)
    if isinstance(parsed, int):
        return parsed
    directory = runtime_dir(parsed.text("runtime_dir"))
    events = connect_endpoint(parsed.text("events") or os.environ.get(EVENTS_ENV) or "")
    events = events or f"ipc://{os.path.join(directory, 'events')}"
    control = f"ipc://{os.path.join(directory, 'control')}"
    refusal = untrusted_endpoint(events, control)
    if refusal:
        print(f"{PROG} watch: {refusal}", file=sys.stderr)
        return EXIT_UNTRUSTED
    _stop_on_signals()
    try:
        if parsed.values["json"] or not sys.stdout.isatty():
            return _watch_json(events, directory)
        return _watch_live(events, control, directory)
    except KeyboardInterrupt:
        return EXIT_OK


def untrusted_endpoint(*endpoints: str) -> str:
    """Why one of the ipc `endpoints` must not be used (its directory could be changed by
    another user), or "" when none is. A directory not there yet (cinit creates it) or
    closed to this user is not a refusal: the watch waits, or says so."""
    for endpoint in endpoints:
        if not endpoint.startswith("ipc://"):
            continue  # tcp: whoever may bind the port; the user chose it
        path = endpoint[len("ipc://") :]
        try:
            check_trusted_dir(os.path.dirname(os.path.abspath(path)))
        except UntrustedDirectory as exc:
            return f"refusing {endpoint}: {exc}; cinit never listens there"
        except OSError:
            continue
    return ""


def connect_endpoint(value: str) -> str:
    """The endpoint to connect to for a `--events` value given as cinit binds it:
    `tcp://PORT` and `tcp://*:PORT` mean the loopback; a bare path means ipc."""
    if not value:
        return ""
    if "://" not in value:
        return f"ipc://{os.path.abspath(value)}"
    scheme, _, rest = value.partition("://")
    if scheme == "tcp":
        if rest.isdigit():
            return f"tcp://127.0.0.1:{rest}"
        host, _, port = rest.rpartition(":")
        if host in ("*", "0.0.0.0", ""):
            return f"tcp://127.0.0.1:{port}"
    return value


def _stop_on_signals() -> None:
    """SIGTERM and SIGHUP (a closed terminal) end the watch like Ctrl-C does."""

    def interrupt(signo: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGHUP, interrupt)
    signal.signal(signal.SIGINT, interrupt)


def _subscriber(context: Any, endpoint: str) -> Any:
    import zmq

    socket = context.socket(zmq.SUB)
    socket.setsockopt(zmq.LINGER, 0)
    socket.setsockopt(zmq.RCVHWM, 100_000)
    socket.setsockopt(zmq.SUBSCRIBE, b"")
    socket.connect(endpoint)
    return socket


def _receive_events(socket: Any, limit: int = 2000) -> list[dict[str, Any]]:
    """Every event waiting on the SUB socket (up to `limit`), decoded; others skipped."""
    import zmq

    found: list[dict[str, Any]] = []
    while len(found) < limit:
        try:
            frames = socket.recv_multipart(zmq.NOBLOCK)
        except zmq.Again:
            break
        try:
            event = json.loads(frames[-1])
        except (ValueError, UnicodeDecodeError):
            continue
        if isinstance(event, dict):
            found.append(event)
    return found


def _watch_json(events_endpoint: str, directory: str = "") -> int:
    import zmq

    from cinit.tools.watch_model import SeqFilter

    context = zmq.Context()
    socket = _subscriber(context, events_endpoint)
    seqs = SeqFilter()
    if directory and _no_access(directory):
        print(f"{PROG} watch: no access to {directory}: waiting anyway", file=sys.stderr)
    try:
        while True:
            if not socket.poll(500):
                continue
            for event in _receive_events(socket):
                accepted, missed = seqs.accept(event)
                if not accepted:
                    continue
                if missed:
                    print(f"{PROG} watch: missed events {missed[0]}..{missed[1]}", file=sys.stderr)
                sys.stdout.write(json.dumps(event) + "\n")
            sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (`| head`): done; keep Python from complaining at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    finally:
        socket.close(0)
        context.term()


def _no_access(directory: str) -> bool:
    """Whether the runtime dir (or a parent) exists but is closed to this user."""
    try:
        os.stat(directory)
    except PermissionError:
        return True
    except OSError:
        return False  # not there (yet): cinit creates it
    return not os.access(directory, os.X_OK)


def _waiting_note(directory: str) -> str:
    """The header while cinit does not answer (rich markup): waiting, or why it cannot."""
    if _no_access(directory):
        return f"[red]no access to {directory} (cinit's runtime dir is for root or its group)[/]"
    return f"[yellow]waiting for cinit ({directory})[/]"


class _Control:
    """A REQ socket to the control endpoint that gives up on a missing reply.

    REQ allows one request at a time; when a reply does not come in time the socket is
    thrown away and a new one made (otherwise it stays stuck waiting forever).
    """

    def __init__(self, context: Any, endpoint: str) -> None:
        self._context = context
        self._endpoint = endpoint
        self.socket: Any = None
        self.sent_at: float | None = None
        self._open()

    def _open(self) -> None:
        import zmq

        self.socket = self._context.socket(zmq.REQ)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.connect(self._endpoint)

    def send(self, request: dict[str, Any]) -> None:
        self.socket.send(json.dumps(request).encode())
        self.sent_at = time.monotonic()

    @property
    def busy(self) -> bool:
        return self.sent_at is not None

    def reply(self) -> dict[str, Any] | None:
        """The reply, if one has come; resets the socket if it is overdue (None then)."""
        import zmq

        if self.sent_at is None:
            return None
        try:
            raw = self.socket.recv(zmq.NOBLOCK)
        except zmq.Again:
            if time.monotonic() - self.sent_at > REPLY_TIMEOUT_S:
                self.close()
                self._open()
                self.sent_at = None
                raise TimeoutError(self._endpoint) from None
            return None
        self.sent_at = None
        try:
            answer = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return {"ok": False, "error": "unreadable reply from cinit"}
        return answer if isinstance(answer, dict) else {"ok": False, "error": "bad reply"}

    def close(self) -> None:
        self.socket.close(0)


def _watch_live(events_endpoint: str, control_endpoint: str, directory: str) -> int:
    import zmq
    from rich.console import Console
    from rich.live import Live

    if getattr(sys, "frozen", False):
        # The standalone build ships rich's cell widths for the latest Unicode version only
        # (packaging/cinit.spec): an older one asked for here would be a missing module.
        os.environ.pop("UNICODE_VERSION", None)
    console = Console(emoji=False)  # see cinit.tools.watch_view._header
    context = zmq.Context()
    # Subscribe first: then no event after the snapshot's seq can be missed.
    subscriber = _subscriber(context, events_endpoint)
    control = _Control(context, control_endpoint)
    view = _LiveView(directory)
    try:
        with Live(console=console, screen=True, auto_refresh=False, transient=True) as live:
            while True:
                view.step(subscriber, control)
                frame = view.frame(console.size.height)
                if frame is not None:
                    live.update(frame, refresh=True)
    finally:
        control.close()
        subscriber.close(0)
        context.term()


class _LiveView:
    """The terminal view's loop body: ask for status, take events and replies, redraw."""

    def __init__(self, directory: str) -> None:
        from cinit.tools.watch_model import WatchModel

        self.model = WatchModel()
        self.directory = directory
        self.connection = _waiting_note(directory)  # the header's note, rich markup
        self.next_status = 0.0  # when the periodic status request is due
        self.retry_after = 0.0  # no request before this (cinit away or refusing)
        self.last_frame = 0.0
        self.changed = True

    def step(self, subscriber: Any, control: _Control) -> None:
        now = time.monotonic()
        due = now >= self.next_status or self.model.needs_snapshot
        if not control.busy and due and now >= self.retry_after:
            control.send({"cmd": "status"})
        # The control reply is looked for at least every 50 ms, without a poller
        # (its socket is replaced whenever a request times out).
        if subscriber.poll(50):
            for event in _receive_events(subscriber):
                self.model.offer(event)
                self.changed = True
        try:
            reply = control.reply()
        except TimeoutError:
            if self.connection.startswith("[green]"):
                self.model.note("cinit does not answer: waiting for it")
            self.connection = _waiting_note(self.directory)
            self.retry_after = time.monotonic() + RETRY_INTERVAL_S
            self.changed = True
            return
        if reply is not None:
            self._take_reply(reply)

    def _take_reply(self, reply: dict[str, Any]) -> None:
        self.changed = True
        self.next_status = time.monotonic() + STATUS_INTERVAL_S
        if not reply.get("ok"):
            self.connection = f"[red]status refused: {reply.get('error', '?')}[/]"
            self.retry_after = time.monotonic() + STATUS_INTERVAL_S
            return
        self.connection = "[green]connected[/]"
        if self.model.needs_snapshot:
            self.model.load_snapshot(reply)
        else:
            self.model.refresh_metrics(reply)

    def frame(self, height: int) -> Any:
        """A new screen when something changed (at most 10 a second) or a second passed
        (uptimes move on); None otherwise."""
        from cinit.tools.watch_view import render

        now = time.monotonic()
        since = now - self.last_frame
        if (self.changed and since >= FRAME_INTERVAL_S) or since >= 1.0:
            self.last_frame, self.changed = now, False
            return render(self.model, self.connection, height)
        return None
