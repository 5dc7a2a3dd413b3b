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
from cinit.machines.vocabulary import AT_REST_STATES, READY_STATES, State

EXIT_FAILED = 1  # LSB: generic failure
EXIT_USAGE = 2  # malformed request
EXIT_UNKNOWN_UNIT = 4  # systemctl's "no such unit"

COMMANDS = frozenset({"status", "start", "stop", "restart", "is-ready", "logs"})
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
        self.phase = phase  # "start", "stop" or "restart-stop" (then "start")


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

    def done(self, name: str) -> Reply:
        return {"ok": True, "seq": self.book.seq, "unit": name, "state": self.unit_state(name)}

    def unit_state(self, name: str) -> str:
        return str(self.book.units[name]["state"])

    def after_event(self, event: dict[str, Any]) -> list[tuple[Client, Reply]]:
        """Replies that this event (already applied to the book) settles."""
        if not self.pending:
            return []
        if event["event"] == "shutdown-started":
            stopping = self.error("cinit is shutting down", EXIT_FAILED)
            gone = [(item.client, stopping) for item in self.pending]
            self.pending.clear()
            return gone
        new, unit = event.get("new"), event.get("unit")
        if new is None or unit is None:
            return []
        replies: list[tuple[Client, Reply]] = []
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
        # start
        if new in READY_STATES or new == State.CONDITION_SKIPPED:
            return self.done(item.unit)
        if new == State.FAILED:
            result = event.get("result", "")
            return self.error(f"{item.unit} failed ({result})", EXIT_FAILED)
        if new == State.INACTIVE:
            return self.error(f"{item.unit} was stopped before it was up", EXIT_FAILED)
        return None
