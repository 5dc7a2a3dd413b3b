"""Decisions of the control endpoint: a request in, replies out (now, or when events come).

`ControlDesk.request` validates one raw request (a JSON object, see the events contract)
and answers status and is-ready from the `StatusBook` at once. start/stop/restart are
passed to the unit supervisor as its `StartUnit`/`StopUnit` messages and answered later,
when the unit's events show the outcome (`after_event`); a restart is a stop, then a start
once the unit is down; `logs` reads the output relay's rings (`OutputRelay.read_logs`).
Nothing here blocks or raises on bad input: every malformed request gets an error reply
with the exit code the CLI should use.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from cinit.events.status_book import StatusBook
from cinit.machines.vocabulary import (
    AT_REST_STATES,
    DAEMON_RELOADED_EVENT,
    READY_STATES,
    RELOAD_FAILED_REASON,
    UNIT_REMOVED_EVENT,
    State,
)

EXIT_FAILED = 1  # LSB: generic failure
EXIT_USAGE = 2  # malformed request
EXIT_UNKNOWN_UNIT = 4  # systemctl's "no such unit"

COMMANDS = frozenset(
    {"status", "start", "stop", "restart", "reload", "daemon-reload", "is-ready", "logs"}
)
_RELOADABLE_STATES = (State.ACTIVE, State.RELOADING)
MAX_REQUEST = 64 * 1024
# Text bytes in one `logs` reply (the client pages on): JSON may make a byte 6 (\ufffd for
# an invalid one), and the client takes frames up to 16 MiB.
LOGS_BUDGET = 2 * 1024 * 1024

Reply = dict[str, Any]
Client = Any  # whatever the server uses to route a reply (a ROUTER identity)


class Pending:
    """A start/stop/restart waiting for its unit's events."""

    __slots__ = ("client", "phase", "unit")

    def __init__(self, client: Client, unit: str, phase: str) -> None:
        self.client = client
        self.unit = unit
        # "start", "stop", "reload", "daemon-reload" or "restart-stop" (then "start")
        self.phase = phase


class Applying:
    """A `reload --apply` waiting for what it asked: unit -> its goal, "up" (started, or
    the start half of a restart), "restart" (not down yet) or "gone" (removed units)."""

    __slots__ = ("client", "failed", "reply", "waiting")

    def __init__(self, client: Client, reply: Reply, waiting: dict[str, str]) -> None:
        self.client = client
        self.reply = reply  # sent once nothing is waited for
        self.waiting = waiting
        self.failed: list[str] = []

    def advance(self, unit: str, event: str, new: str | None) -> None:
        goal = self.waiting.get(unit)
        if goal == "gone" and event == UNIT_REMOVED_EVENT:
            del self.waiting[unit]
        elif goal == "restart" and new in AT_REST_STATES:
            self.waiting[unit] = "up"
        elif goal == "up" and new is not None:
            if new == State.FAILED:
                self.failed.append(unit)
            if new in READY_STATES or new in AT_REST_STATES:
                del self.waiting[unit]


class ControlDesk:
    """Requests -> replies; `command(kind, unit)` tells the unit supervisor."""

    def __init__(
        self,
        book: StatusBook,
        command: Callable[[str, str], bool],
        measure: Callable[[dict[str, dict[str, Any]]], None] | None = None,
        log_tail: Callable[[str], list[str]] | None = None,
        log_read: Callable[..., tuple[list[Any], int]] | None = None,
    ) -> None:
        self.book = book
        # ("start"|"stop"|"restart-stop", unit) -> False when nobody can do it; "restart-stop"
        # is a restart's stop: the units stopped along with it start again with it.
        self.command = command
        self.measure = measure  # fills memory/cpu into unit statuses
        self.log_tail = log_tail  # a unit's last output lines, when cinit keeps them
        self.log_read = log_read  # `OutputRelay.read_logs`, when there is a relay
        self.pending: list[Pending] = []
        self.applying: list[Applying] = []

    def error(self, text: str, code: int) -> Reply:
        return {"ok": False, "error": text, "code": code, "seq": self.book.seq}

    def request(self, client: Client, raw: bytes) -> Reply | None:
        """The reply to send now, or None when it comes later from `after_event`."""
        if len(raw) > MAX_REQUEST:
            return self.error(f"request too large ({len(raw)} bytes)", EXIT_USAGE)
        try:
            message = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            return self.error(f"malformed request: not a JSON object ({exc})", EXIT_USAGE)
        except RecursionError:  # 64 KiB of "[" is deeper than the parser goes
            return self.error("malformed request: nested too deep", EXIT_USAGE)
        if not isinstance(message, dict):
            return self.error("malformed request: not a JSON object", EXIT_USAGE)
        cmd, unit = message.get("cmd"), message.get("unit")
        # Every field's type first: a list is unhashable, and `in COMMANDS` would raise.
        if "cmd" in message and not isinstance(cmd, str):
            kind = type(cmd).__name__
            return self.error(f"malformed request: cmd must be a string, not {kind}", EXIT_USAGE)
        if cmd not in COMMANDS:
            return self.error(f"malformed request: unknown cmd {cmd!r}", EXIT_USAGE)
        if cmd == "logs":
            return self.logs(message)
        if unit is not None and (not isinstance(unit, str) or not unit):
            return self.error("malformed request: unit must be a non-empty string", EXIT_USAGE)
        name = None
        if unit is not None:
            name = self.book.resolve(unit)
            if name is None:
                return self.error(f"unit {unit} not found", EXIT_UNKNOWN_UNIT)
        if cmd == "status":
            return self.status(name)
        if cmd == "is-ready":
            return {"ok": True, "ready": self.book.is_ready(name), "seq": self.book.seq}
        if cmd == "daemon-reload":
            return self.daemon_reload(client, message.get("apply", False))
        if name is None:
            return self.error(f"malformed request: {cmd} needs a unit", EXIT_USAGE)
        return self.change(client, str(cmd), name)

    def status(self, name: str | None) -> Reply:
        units = self.book.units if name is None else {name: self.book.units[name]}
        chosen = {key: dict(value) for key, value in units.items()}
        if self.measure is not None:
            self.measure(chosen)
        if name is not None:
            chosen[name]["recent_events"] = list(self.book.recent.get(name, []))
            if self.log_tail is not None:
                chosen[name]["log"] = self.log_tail(name)
        return {
            "ok": True,
            "seq": self.book.seq,
            "boot_time": self.book.boot_time,
            "ready": self.book.is_ready(name),
            "units": chosen,
        }

    def logs(self, message: dict[str, Any]) -> Reply:
        """{"cmd": "logs", "units": [...] (none: all), "lines": N|null, "since": epoch|null,
        "after": cursor|null} -> the kept lines in the order they were read, the cursor to
        ask `after` next, and `end` (the cursor past everything kept now)."""
        units = message.get("units") or []
        if not isinstance(units, list) or not all(isinstance(u, str) and u for u in units):
            return self.error("malformed request: units must be a list of unit names", EXIT_USAGE)
        names: list[str] = []
        for unit in units:
            name = self.book.resolve(unit)
            if name is None:
                return self.error(f"unit {unit} not found", EXIT_UNKNOWN_UNIT)
            if name not in names:  # `web web.service`: its lines once
                names.append(name)
        numbers: dict[str, Any] = {}
        for field in ("lines", "since", "after"):
            value = message.get(field)
            number_types = (int, float) if field == "since" else (int,)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, number_types) or value < 0
            ):
                return self.error(
                    f"malformed request: {field} must be a non-negative number", EXIT_USAGE
                )
            numbers[field] = value
        reply: Reply = {"ok": True, "seq": self.book.seq, "lines": [], "cursor": 0, "end": 0}
        if self.log_read is None:
            return reply
        chosen = names or None
        found, cursor = self.log_read(
            chosen, numbers["lines"], numbers["since"], numbers["after"], LOGS_BUDGET
        )
        reply["lines"] = [line.as_dict() for line in found]
        reply["cursor"] = cursor
        reply["end"] = self.log_read(chosen, 0)[1]
        return reply

    def change(self, client: Client, cmd: str, name: str) -> Reply | None:
        if self.book.shutting_down:
            return self.error("cinit is shutting down", EXIT_FAILED)
        if cmd == "reload":
            return self.reload(client, name)
        state = self.book.units[name]["state"]
        # Services and sockets alike: the reply waits for the unit's state events.
        if cmd == "start" and state == State.ACTIVE:
            return self.done(name)
        if cmd == "stop" and state in AT_REST_STATES:
            return self.done(name)
        if cmd == "restart" and state in AT_REST_STATES:
            cmd = "start"
        if cmd == "restart":
            phase, order = "restart-stop", "restart-stop"
        else:
            phase, order = cmd, cmd
        if not self.command(order, name):
            return self.error("no unit supervisor", EXIT_FAILED)
        self.pending.append(Pending(client, name, phase))
        return None

    def reload(self, client: Client, name: str) -> Reply | None:
        """ExecReload= of an active service; answered by the end of its reload (systemctl's
        refusals, word for word, for a unit that cannot reload or is not active)."""
        # `refused` tells reload-or-restart (systemctl) why: it restarts in both cases.
        if name not in self.book.reloadable:
            text = f"Failed to reload {name}: Job type reload is not applicable for unit {name}."
            return {**self.error(text, EXIT_FAILED), "refused": "not-applicable", "unit": name}
        if self.book.units[name]["state"] not in _RELOADABLE_STATES:
            text = f"Failed to reload {name}: Unit {name} is not active, cannot reload."
            return {**self.error(text, EXIT_FAILED), "refused": "inactive", "unit": name}
        # Already reloading: the machine ignores the order, the reload under way answers.
        if not self.command("reload", name):
            return self.error("no unit supervisor", EXIT_FAILED)
        self.pending.append(Pending(client, name, "reload"))
        return None

    def daemon_reload(self, client: Client, apply: object) -> Reply | None:
        """Read the unit files again; answered by the supervisor's `daemon-reloaded` event
        (the difference, or the new set's errors)."""
        if not isinstance(apply, bool):
            return self.error("malformed request: apply must be true or false", EXIT_USAGE)
        if self.book.shutting_down:
            return self.error("cinit is shutting down", EXIT_FAILED)
        if not self.command("daemon-reload-apply" if apply else "daemon-reload", ""):
            return self.error("no unit supervisor", EXIT_FAILED)
        self.pending.append(Pending(client, "", "daemon-reload"))
        return None

    def _daemon_reloaded(self, event: dict[str, Any]) -> list[tuple[Client, Reply]]:
        """The oldest daemon-reload request gets this outcome (SIGHUP's are nobody's)."""
        if not event.get("requested"):
            return []
        item = next((p for p in self.pending if p.phase == "daemon-reload"), None)
        if item is None:
            return []
        self.pending.remove(item)
        if not event.get("ok"):
            errors = [str(line) for line in event.get("errors") or ()]
            text = "\n".join(["the new unit set was refused; running units unchanged", *errors])
            return [(item.client, self.error(text, EXIT_FAILED))]
        reply: Reply = {"ok": True, "seq": self.book.seq, "diff": list(event.get("diff") or ())}
        waiting: dict[str, str] = {}
        for key, goal in (("started", "up"), ("stopped", "gone"), ("restarted", "restart")):
            names = [str(name) for name in event.get(key) or ()]
            if key in event:
                reply[key] = names
            for name in names:  # what happened before this event is in the book already
                state = self.book.units.get(name, {}).get("state")
                if goal == "gone" and state is None:
                    continue
                if goal == "up" and (state in READY_STATES or state == State.FAILED):
                    continue
                waiting[name] = "up" if goal == "restart" and state in AT_REST_STATES else goal
        if not waiting:
            return [(item.client, reply)]
        # --apply: answered once what it started, stopped and restarted got there.
        self.applying.append(Applying(item.client, reply, waiting))
        return []

    def _applied(self, event: dict[str, Any]) -> list[tuple[Client, Reply]]:
        unit = event.get("unit")
        if unit is None:
            return []
        replies = []
        for item in list(self.applying):
            item.advance(str(unit), event["event"], event.get("new"))
            if not item.waiting:
                self.applying.remove(item)
                reply = item.reply
                if item.failed:  # the diff first: the CLI prints only the error then
                    lines = [*reply.get("diff", ()), f"failed: {', '.join(sorted(item.failed))}"]
                    reply = {**reply, **self.error("\n".join(lines), EXIT_FAILED)}
                replies.append((item.client, reply))
        return replies

    def done(self, name: str) -> Reply:
        return {"ok": True, "seq": self.book.seq, "unit": name, "state": self.unit_state(name)}

    def unit_state(self, name: str) -> str:
        return str(self.book.units[name]["state"])

    def after_event(self, event: dict[str, Any]) -> list[tuple[Client, Reply]]:
        """Replies that this event (already applied to the book) settles."""
        if not self.pending and not self.applying:
            return []
        if event["event"] == "shutdown-started":
            stopping = self.error("cinit is shutting down", EXIT_FAILED)
            gone = [(item.client, stopping) for item in self.pending]
            gone += [(item.client, stopping) for item in self.applying]
            self.pending.clear()
            self.applying.clear()
            return gone
        applied = self._applied(event) if self.applying else []
        if event["event"] == DAEMON_RELOADED_EVENT:
            return applied + self._daemon_reloaded(event)
        new, unit = event.get("new"), event.get("unit")
        if new is None or unit is None:
            return applied
        replies: list[tuple[Client, Reply]] = applied
        for item in list(self.pending):
            if item.unit != unit:
                continue
            reply = self._advance(item, new, event)
            if reply is not None:
                self.pending.remove(item)
                replies.append((item.client, reply))
        return replies

    def _advance(self, item: Pending, new: str, event: dict[str, Any]) -> Reply | None:
        if item.phase == "restart-stop":
            if new in AT_REST_STATES:
                item.phase = "start"
                if not self.command("start", item.unit):
                    return self.error("no unit supervisor", EXIT_FAILED)
            return None
        if item.phase == "stop":
            return self.done(item.unit) if new in AT_REST_STATES else None
        if item.phase == "reload":
            return self._reloaded(item.unit, new, str(event.get("reason", "")))
        # start
        if new in READY_STATES or new == State.CONDITION_SKIPPED:
            return self.done(item.unit)
        if new == State.FAILED:
            result = event.get("result", "")
            return self.error(f"{item.unit} failed ({result})", EXIT_FAILED)
        if new == State.INACTIVE:
            return self.error(f"{item.unit} was stopped before it was up", EXIT_FAILED)
        return None

    def _reloaded(self, name: str, new: str, reason: str) -> Reply | None:
        """A reload's reply: when its unit is back active (or went down meanwhile)."""
        if new == State.RELOADING:
            return None
        if new == State.ACTIVE and not reason.startswith(RELOAD_FAILED_REASON):
            return self.done(name)
        if new != State.ACTIVE:
            why = f"the unit went {new} during the reload"
        elif "timeout" in reason:
            why = "a timeout was exceeded"
        elif "no ExecReload=" in reason:  # added by a daemon-reload: used from its next start
            why = "the definition it runs with has no ExecReload= (restart it to use the new one)"
        else:
            why = "the control process exited with error code"
        return self.error(f"Job for {name} failed because {why}.", EXIT_FAILED)
