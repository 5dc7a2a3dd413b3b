"""What `cinit status` and `cinit is-ready` answer from: every unit's state, kept from events.

The book is fed the stamped events of `cinit.events.hub` in seq order (by the pump
thread only) and never looks at anything else, so a snapshot is exactly "the state after
event `seq`". Memory and CPU are not events: the control server adds them per request.
"""

from __future__ import annotations

from typing import Any

from cinit.machines.vocabulary import (
    BUSY_STATES,
    MAIN_PID_CHANGED_EVENT,
    READY_STATES,
    STATUS_TEXT_EVENT,
    TIMER_ARMED_EVENT,
    TIMER_ELAPSED_EVENT,
    TIMER_SKIPPED_EVENT,
    UNIT_ADDED_EVENT,
    UNIT_CHANGED_EVENT,
    UNIT_REMOVED_EVENT,
    UNSETTLED_STATES,
    State,
)

EventDict = dict[str, Any]
RECENT_EVENTS = 10
# systemd's ActiveState "inactive" or "failed": nothing of the unit is running or starting.
DOWN_STATES = frozenset({"inactive", "failed", "exited", "condition-skipped", ""})


def _describe(event: EventDict) -> str:
    """One line for `cinit status UNIT`: `+1.234s ready (running -> active: ready)`."""
    text = f"+{float(event['t_ms']) / 1000:.3f}s {event['event']}"
    if "new" in event:
        text += f" ({event.get('old')} -> {event['new']}: {event.get('reason', '')})"
    if event.get("code") is not None:
        text += f" code={event['code']}"
    if event.get("signal"):
        text += f" signal={event['signal']}"
    if "new" not in event and event.get("pid") is not None:
        text += f" pid={event['pid']}"  # main-pid-changed
    return text


class StatusBook:
    """Per-unit status (the contract's UnitStatus) and the readiness of the whole."""

    def __init__(self, boot_units: set[str], boot_time: float) -> None:
        self.units: dict[str, dict[str, Any]] = {}
        self.boot_pending = set(boot_units)  # boot services not settled once yet
        self.boot_time = boot_time
        self.seq = 0  # the last event applied
        self.shutting_down = False
        self.since_ms: dict[str, float] = {}  # when each unit entered its state (ms)
        self.shutdown_ms: float | None = None  # when shutdown-started was stamped
        self.recent: dict[str, list[str]] = {}  # each unit's last few events, as text
        self.aliases: dict[str, str] = {}  # Alias= and alias links -> the unit's own name
        self.reloadable: set[str] = set()  # services with ExecReload= (`cinit reload` applies)

    def unit(self, name: str) -> dict[str, Any]:
        status = self.units.get(name)
        if status is None:
            status = {
                "name": name,
                "description": "",
                "kind": name.rsplit(".", 1)[-1] if "." in name else "",
                "state": State.INACTIVE.value,
                "sub": "",
                "main_pid": None,
                "since": self.boot_time,
                "restarts": 0,
                "last_exit": None,
                "result": "success",
                "memory": None,
                "cpu": None,
                "ready": False,
                "last_event": "",
                # For systemctl status/show: STATUS= of a notify service, the main pid of
                # the last run (ExecMainPID), and when the unit last went up and down.
                "status_text": "",
                "exec_main_pid": None,
                "active_enter": None,
                "active_exit": None,
                "inactive_enter": None,
                "inactive_exit": None,
            }
            self.units[name] = status
        return status

    def apply(self, event: EventDict) -> float:
        """Take one event; returns when the phase it ends began (ms since cinit started)."""
        self.seq = event["seq"]
        name, kind = event.get("unit"), event["event"]
        t_ms = float(event["t_ms"])
        if kind.startswith("shutdown-"):
            self.shutting_down = True
            if self.shutdown_ms is None:
                self.shutdown_ms = t_ms
            return self.shutdown_ms
        if not name:
            return t_ms
        if kind == UNIT_REMOVED_EVENT:  # a daemon-reload removed it, and it is at rest
            self._forget(name)
            return t_ms
        status = self.unit(name)
        status["last_event"] = kind
        recent = self.recent.setdefault(name, [])
        recent.append(_describe(event))
        del recent[:-RECENT_EVENTS]
        if kind in ("loaded", UNIT_ADDED_EVENT, UNIT_CHANGED_EVENT):
            self.reloadable.discard(name)
            for alias in event.get("aliases", ()):
                self.aliases[alias] = name
            if event.get("snippets"):  # what `status UNIT` lists as systemctl's Drop-In:
                status["snippets"] = list(event["snippets"])
            status["description"] = event.get("description", "")
            status["kind"] = event.get("kind", status["kind"])
            if event.get("reloadable"):
                self.reloadable.add(name)
            if kind != UNIT_CHANGED_EVENT:  # a changed unit stays in its state
                self.since_ms[name] = t_ms
            return float(event.get("load_start_ms", t_ms))
        if kind == "overridden":
            return float(event.get("load_start_ms", t_ms))
        if kind == MAIN_PID_CHANGED_EVENT:
            status["main_pid"] = event.get("pid")
            status["exec_main_pid"] = event.get("pid") or status["exec_main_pid"]
            return t_ms
        if kind == STATUS_TEXT_EVENT:
            status["status_text"] = str(event.get("text", ""))
            return t_ms
        if kind == TIMER_ARMED_EVENT:  # a timer's next elapse (epoch seconds)
            status["next_elapse"] = event.get("next_elapse")
            status["triggers"] = event.get("service")
            return t_ms
        if kind in (TIMER_ELAPSED_EVENT, TIMER_SKIPPED_EVENT):
            status["last_trigger"] = event.get("at")
            status["triggers"] = event.get("service")
            return t_ms
        new = event.get("new")
        if new is None:
            return t_ms
        began = self.since_ms.get(name, 0.0)
        self.since_ms[name] = t_ms
        status["state"] = new
        status["sub"] = event.get("reason", "")
        status["since"] = event["time"]
        status["result"] = event.get("result", status["result"])
        status["ready"] = new in READY_STATES
        status["main_pid"] = event.get("pid")  # a Transition carries the main pid it has
        if status["main_pid"]:
            status["exec_main_pid"] = status["main_pid"]
        self._stamp_times(status, str(event.get("old", "")), new, event["time"])
        if "code" in event or "signal" in event:
            status["last_exit"] = {"code": event.get("code"), "signal": event.get("signal")}
        if new == State.AUTO_RESTART:
            status["restarts"] += 1
        if new == State.INACTIVE and "next_elapse" in status:
            status["next_elapse"] = None  # a stopped timer is disarmed
        if new not in BUSY_STATES:
            self.boot_pending.discard(name)
        return began

    def _forget(self, name: str) -> None:
        for table in (self.units, self.since_ms, self.recent):
            table.pop(name, None)
        self.reloadable.discard(name)
        self.boot_pending.discard(name)
        for alias in [a for a, real in self.aliases.items() if real == name]:
            del self.aliases[alias]

    @staticmethod
    def _stamp_times(status: dict[str, Any], old: str, new: str, when: float) -> None:
        """systemd's Active/InactiveEnter/ExitTimestamp: when the unit last went up, came
        down, ... (a unit is "inactive" at rest, "active" from ready to its stop)."""
        was_down, is_down = old in DOWN_STATES, new in DOWN_STATES
        if is_down and not was_down:
            status["inactive_enter"] = when
        if was_down and not is_down:
            status["inactive_exit"] = when
            status["status_text"] = ""  # a new run: the old STATUS= no longer holds
        if new == State.ACTIVE and old != State.ACTIVE:
            status["active_enter"] = when
        if old == State.ACTIVE and new != State.ACTIVE:
            status["active_exit"] = when

    def is_ready(self, name: str | None = None) -> bool:
        """One unit: active or exited. The whole: the boot settled and nothing is failed,
        on its way, or waiting to restart (and cinit is not shutting down)."""
        if name is not None:
            return bool(self.units.get(name, {}).get("ready"))
        if self.shutting_down or self.boot_pending:
            return False
        return not any(status["state"] in UNSETTLED_STATES for status in self.units.values())

    def resolve(self, name: str) -> str | None:
        """A unit name as given (`web` means `web.service`), or None when unknown."""
        if name in self.units:
            return name
        if f"{name}.service" in self.units:
            return f"{name}.service"
        real = self.aliases.get(name) or self.aliases.get(f"{name}.service")
        return real if real in self.units else None
