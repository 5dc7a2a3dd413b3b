"""Decisions of the control endpoint: a request in, replies out (now, or when events come).

`ControlDesk.request` validates one raw request (a JSON object, see the events contract),
finds its handler in `handlers` (cmd -> handler: one row per command) and answers status,
is-ready, kill and the manager environment's commands at once. start/stop/restart are
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
    INSTANCE_LOADED_EVENT,
    READY_STATES,
    RELOAD_FAILED_REASON,
    UNIT_REMOVED_EVENT,
    State,
)

EXIT_FAILED = 1  # LSB: generic failure
EXIT_USAGE = 2  # malformed request
EXIT_UNKNOWN_UNIT = 4  # systemctl's "no such unit"

_RELOADABLE_STATES = (State.ACTIVE, State.RELOADING)
MAX_REQUEST = 64 * 1024
# Commands that name a unit always (the others may: status, is-ready, reset-failed).
NEEDS_UNIT = frozenset({"start", "stop", "restart", "reload", "kill"})
KILL_WHOM = frozenset({"main", "control", "all"})
# Text bytes in one `logs` reply (the client pages on): JSON may make a byte 6 (\ufffd for
# an invalid one), and the client takes frames up to 16 MiB.
LOGS_BUDGET = 2 * 1024 * 1024

Reply = dict[str, Any]
Client = Any  # whatever the server uses to route a reply (a ROUTER identity)
# A command's handler: (the request, its unit resolved (None: none given; the commands of
# NEEDS_UNIT always get one), the client) -> the reply now, or None (it comes later).
Handler = Callable[[dict[str, Any], Any, Client], "Reply | None"]


class Pending:
    """A start/stop/restart waiting for its unit's events."""

    __slots__ = ("client", "phase", "unit")

    def __init__(self, client: Client, unit: str, phase: str) -> None:
        self.client = client
        self.unit = unit
        # "start", "stop", "reload", "daemon-reload" or "restart-stop" (then "start")
        self.phase = phase


class Instancing(Pending):
    """A request naming an instance not loaded yet (`start x@a`): it waits for the
    supervisor to make it from its template (`instance-loaded`), then is handled."""

    __slots__ = ("cmd", "given", "message")

    def __init__(self, client: Client, unit: str, given: str, message: dict[str, Any]) -> None:
        super().__init__(client, unit, "instance")
        self.given = given  # the name as the request wrote it, for "not found"
        self.message = message
        self.cmd = str(message.get("cmd"))


# The kinds of unit an instance can be made of (a target template has nothing to run).
_INSTANCE_SUFFIXES = (".service", ".socket", ".timer", ".target")


def instance_name(unit: str) -> str | None:
    """`x@a` or `x@a.service` -> `x@a.service` (systemctl's default suffix); None when
    `unit` names no instance of a template."""
    full = unit if unit.endswith(_INSTANCE_SUFFIXES) else f"{unit}.service"
    stem = full.rpartition(".")[0]
    prefix, at, instance = stem.partition("@")
    return full if at and prefix and instance else None


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
        # ("start"|"stop"|"restart-stop"|"reset-failed", unit) -> False when nobody can do
        # it; "restart-stop" is a restart's stop: the units stopped along with it start
        # again with it.
        self.command = command
        self.measure = measure  # fills memory/cpu into unit statuses
        self.log_tail = log_tail  # a unit's last output lines, when cinit keeps them
        self.log_read = log_read  # `OutputRelay.read_logs`, when there is a relay
        self.pending: list[Pending] = []
        self.applying: list[Applying] = []
        # What the book cannot know, given by the pump: a unit's definition (type, paths,
        # dependencies, listen addresses: see `EventPump._describe`), signalling a unit's
        # processes (-> an error text or None), the environment units start with.
        self.describe: Callable[[str], dict[str, Any]] | None = None
        self.signal: Callable[[dict[str, Any], int, str], str | None] | None = None
        # -> the cinit.io.environ.ManagerEnvironment (None: cinit runs no units)
        self.environment: Callable[[], Any] = lambda: None
        # cmd -> its handler (message, resolved unit name or None, client). One table, so
        # that a new command is one row (reload, logs ... are added the same way).
        self.handlers: dict[str, Handler] = {
            "status": lambda message, name, _client: self.status(name, message),
            "is-ready": lambda _message, name, _client: self.is_ready(name),
            "start": lambda message, name, client: self.change(client, "start", name, message),
            "stop": lambda message, name, client: self.change(client, "stop", name, message),
            "restart": lambda message, name, client: self.change(client, "restart", name, message),
            "kill": lambda message, name, _client: self.kill(message, name),
            "reset-failed": lambda _message, name, client: self.reset_failed(client, name),
            "show-environment": lambda _message, _name, _client: self.show_environment(),
            "set-environment": lambda message, _name, _client: self.set_environment(message),
            "unset-environment": lambda message, _name, _client: self.unset_environment(message),
            "logs": lambda message, _name, _client: self.logs(message),
            "reload": lambda message, name, client: self.change(client, "reload", name, message),
            "daemon-reload": lambda message, _name, client: self.daemon_reload(
                client, message.get("apply", False)
            ),
        }

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
        # Every field's type first: a list is unhashable, and a table lookup would raise.
        if "cmd" in message and not isinstance(cmd, str):
            kind = type(cmd).__name__
            return self.error(f"malformed request: cmd must be a string, not {kind}", EXIT_USAGE)
        handler = self.handlers.get(cmd) if isinstance(cmd, str) else None
        if handler is None:
            return self.error(f"malformed request: unknown cmd {cmd!r}", EXIT_USAGE)
        if cmd == "logs":  # it names its units in `units`, checked by its handler
            return handler(message, None, client)
        if unit is not None and (not isinstance(unit, str) or not unit):
            return self.error("malformed request: unit must be a non-empty string", EXIT_USAGE)
        name = None
        if unit is not None:
            name = self.book.resolve(unit)
            if name is None:
                return self.load_instance(client, unit, message)
        if name is None and cmd in NEEDS_UNIT:
            return self.error(f"malformed request: {cmd} needs a unit", EXIT_USAGE)
        return handler(message, name, client)

    def load_instance(self, client: Client, unit: str, message: dict[str, Any]) -> Reply | None:
        """A request naming a unit the book does not know: an instance (`x@a`) is made from
        its template first, as systemd does, then the request is handled (answered after
        the supervisor's `instance-loaded`); any other name is not found."""
        full = instance_name(unit)
        if full is None or self.book.shutting_down:
            return self.error(f"unit {unit} not found", EXIT_UNKNOWN_UNIT)
        if not self.command("instance", full):
            return self.error(f"unit {unit} not found", EXIT_UNKNOWN_UNIT)
        self.pending.append(Instancing(client, full, unit, message))
        return None

    def _instance_loaded(self, event: dict[str, Any]) -> list[tuple[Client, Reply]]:
        """The requests that waited for this instance: handled now, or refused (exit 4 when
        its template is not loaded, 1 with the diagnostics when its files have errors)."""
        full = event.get("instance")
        replies: list[tuple[Client, Reply]] = []
        for item in list(self.pending):
            if not isinstance(item, Instancing) or item.unit != full:
                continue
            self.pending.remove(item)
            name = self.book.resolve(item.unit) if event.get("ok") else None
            reply: Reply | None
            if name is not None:
                reply = self.handlers[item.cmd](item.message, name, item.client)
            elif event.get("code") == EXIT_FAILED:
                errors = [str(line) for line in event.get("errors") or ()]
                text = "\n".join([f"cannot load {item.unit}:", *errors])
                reply = self.error(text, EXIT_FAILED)
            else:
                reply = self.error(f"unit {item.given} not found", EXIT_UNKNOWN_UNIT)
            if reply is not None:  # else the handler waits for the unit's events now
                replies.append((item.client, reply))
        return replies

    def status(self, name: str | None, message: dict[str, Any] | None = None) -> Reply:
        """Every unit's status (or `name`'s, with its recent events and output lines).
        `"detail": true`, implied for one unit, adds each unit's definition (`describe`);
        `"measure": false` leaves memory and CPU out (a cheap `systemctl is-active`)."""
        message = message or {}
        units = self.book.units if name is None else {name: self.book.units[name]}
        chosen = {key: dict(value) for key, value in units.items()}
        if self.measure is not None and message.get("measure", True) is not False:
            self.measure(chosen)
        if self.describe is not None and (name is not None or message.get("detail") is True):
            for key, value in chosen.items():
                value.update(self.describe(key))
        if name is not None:
            chosen[name]["recent_events"] = list(self.book.recent.get(name, []))
            if self.log_tail is not None:
                chosen[name]["log"] = self.log_tail(name)
        return {
            "ok": True,
            "seq": self.book.seq,
            "boot_time": self.book.boot_time,
            "ready": self.book.is_ready(name),
            "system_state": self.system_state(),
            "units": chosen,
        }

    def is_ready(self, name: str | None) -> Reply:
        return {"ok": True, "ready": self.book.is_ready(name), "seq": self.book.seq}

    def system_state(self) -> str:
        """systemctl is-system-running's word: starting, running, degraded or stopping."""
        if self.book.shutting_down:
            return "stopping"
        if self.book.boot_pending:
            return "starting"
        if any(status["state"] == State.FAILED for status in self.book.units.values()):
            return "degraded"
        return "running"

    def kill(self, message: dict[str, Any], name: str) -> Reply:
        """Send `signal` (a number) to the unit's main process, or all of its processes."""
        signo, whom = message.get("signal", 15), message.get("whom", "all")
        if isinstance(signo, bool) or not isinstance(signo, int) or not 0 < signo < 65:
            return self.error("malformed request: signal must be a number 1..64", EXIT_USAGE)
        if not isinstance(whom, str) or whom not in KILL_WHOM:
            return self.error("malformed request: whom must be main, control or all", EXIT_USAGE)
        if self.signal is None:
            return self.error("cinit cannot signal units here", EXIT_FAILED)
        failed = self.signal(dict(self.book.units[name]), signo, str(whom))
        if failed is not None:
            return self.error(failed, EXIT_FAILED)
        return self.done(name)

    def reset_failed(self, client: Client, name: str | None) -> Reply | None:
        """Failed units (`name`, or every one) go back to inactive. One unit: the reply
        waits for its event; every unit: answered once asked."""
        names = [name] if name is not None else sorted(self.book.units)
        failed = [each for each in names if self.book.units[each]["state"] == State.FAILED]
        if name is not None and failed and self.book.units[name]["kind"] == "socket":
            # A socket's failure ends when it is started again (its listeners bound anew).
            return self.error(f"reset-failed of socket {name}: start it again", EXIT_FAILED)
        failed = [each for each in failed if self.book.units[each]["kind"] != "socket"]
        for each in failed:
            if not self.command("reset-failed", each):
                return self.error("no unit supervisor", EXIT_FAILED)
        if name is None or not failed:
            return {"ok": True, "seq": self.book.seq, "reset": failed}
        self.pending.append(Pending(client, name, "reset"))
        return None

    def show_environment(self) -> Reply:
        environment = self.environment()
        if environment is None:
            return self.error("cinit runs no units: no manager environment", EXIT_FAILED)
        shown: dict[str, str] = environment.shown()
        return {"ok": True, "seq": self.book.seq, "environment": shown}

    def set_environment(self, message: dict[str, Any]) -> Reply:
        assign = message.get("assign")
        if not isinstance(assign, dict) or not all(
            _variable_name(key) and isinstance(value, str) for key, value in assign.items()
        ):
            return self.error("malformed request: assign must map names to strings", EXIT_USAGE)
        environment = self.environment()
        if environment is None:
            return self.error("cinit runs no units: no manager environment", EXIT_FAILED)
        environment.change(assign)
        return self.show_environment()

    def unset_environment(self, message: dict[str, Any]) -> Reply:
        names = message.get("names")
        if not isinstance(names, list) or not all(_variable_name(name) for name in names):
            return self.error("malformed request: names must be variable names", EXIT_USAGE)
        environment = self.environment()
        if environment is None:
            return self.error("cinit runs no units: no manager environment", EXIT_FAILED)
        environment.change({}, names)
        return self.show_environment()

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

    def change(
        self, client: Client, cmd: str, name: str, message: dict[str, Any] | None = None
    ) -> Reply | None:
        """start/stop/restart: the reply waits for the unit's events, unless the request
        says `"no_block": true` (systemctl --no-block): then it is answered once asked."""
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
        if message is not None and message.get("no_block") is True:
            # The pending entry stays (a restart's start is sent from it); its late reply
            # goes to a client that left, which the ROUTER drops.
            return {"ok": True, "seq": self.book.seq, "unit": name, "queued": True}
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
        if event["event"] == INSTANCE_LOADED_EVENT:
            return applied + self._instance_loaded(event)
        new, unit = event.get("new"), event.get("unit")
        if new is None or unit is None:
            return applied
        replies: list[tuple[Client, Reply]] = applied
        for item in list(self.pending):
            if item.unit != unit or isinstance(item, Instancing):
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
        if item.phase in ("stop", "reset"):
            return self.done(item.unit) if new in AT_REST_STATES else None
        if item.phase == "reload":
            return self._reloaded(item.unit, new, str(event.get("reason", "")))
        # start
        if new in READY_STATES or new == State.CONDITION_SKIPPED:
            return self.done(item.unit)
        if new == State.FAILED:
            result = event.get("result", "")
            failed = self.error(f"{item.unit} failed ({result})", EXIT_FAILED)
            failed["result"] = result  # systemctl's "Job for X failed because ..."
            return failed
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

def _variable_name(name: object) -> bool:
    """A name an environment variable can have (systemd's env_name_is_valid, in short)."""
    return (
        isinstance(name, str)
        and 0 < len(name) < 4096
        and not name[0].isdigit()
        and all(char.isascii() and (char.isalnum() or char == "_") for char in name)
    )
