"""systemctl's reload verbs, answered by the running cinit: `reload`, `reload-or-restart`,
`try-reload-or-restart` and `daemon-reload` (handlers of `cinit.cli.systemctl.VERBS`).

`reload UNIT...` runs each unit's ExecReload= (the control request `reload`, answered once
the unit is back active); a unit without ExecReload=, or not active, gets systemctl's
refusal and exit 1. `reload-or-restart` restarts what cannot reload (and starts what is
not running); `try-reload-or-restart` leaves units that are not running alone.
`daemon-reload` reads the unit files again (control request `daemon-reload`): silent on
success like systemctl; a new set with errors is refused (the errors on stderr, exit 1).
Without a running cinit every verb says "cinit is not running" and exits 1.
"""

from __future__ import annotations

import os

from cinit.boot_path import TYPE_CHECKING
from cinit.cli.systemctl import EXIT_FAILED, EXIT_NO_UNIT, EXIT_OK, Call
from cinit.io.control_client import ControlError, request

if TYPE_CHECKING:
    from typing import Any

DEFAULT_TIMEOUT = 240.0  # a reload or restart may take a unit's whole start timeout
# States `try-reload-or-restart` counts as running (systemd: active, activating, reloading).
_RUNNING = frozenset({"waiting", "starting", "running", "active", "reloading", "stopping"})


class _Failed(Exception):
    """A request that failed: the status to exit with (its message already said)."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def _ask(call: Call, message: dict[str, Any]) -> dict[str, Any]:
    """One control request; the reply, ok or not; raises `_Failed` when cinit is not there."""
    given = call.text("timeout")
    try:
        timeout = DEFAULT_TIMEOUT if given is None else float(given)
    except ValueError:
        raise _Failed(call.fail(f"Invalid timeout '{given}'.")) from None
    try:
        return request(os.path.join(call.runtime_dir, "control"), message, timeout)
    except ControlError as exc:
        text = "cinit is not running" if exc.reason == "absent" else str(exc)
        raise _Failed(call.fail(text)) from None


def _unit_name(word: str) -> str:
    """systemctl's reading of a bare name: `web` is `web.service`."""
    return word if "." in word else f"{word}.service"


def _failure(call: Call, verb: str, word: str, reply: dict[str, Any]) -> int:
    """Say why a request failed, as systemctl would; its exit status."""
    code = reply.get("code")
    if code == EXIT_NO_UNIT:
        name = _unit_name(word)
        return call.fail(f"Failed to {verb} {name}: Unit {name} not found.", EXIT_NO_UNIT)
    status = code if isinstance(code, int) and 0 < code < 256 else EXIT_FAILED
    return call.fail(str(reply.get("error") or f"Failed to {verb} {_unit_name(word)}."), status)


def _each(call: Call, one: Any) -> int:
    """Run `one(call, word)` for every unit word; the worst status (systemctl goes on)."""
    worst = EXIT_OK
    for word in call.units:
        try:
            status = one(call, word)
        except _Failed as failed:
            return failed.status  # cinit is not there: no use asking for the next one
        worst = max(worst, status)
    return worst


def _reload_one(call: Call, word: str) -> int:
    reply = _ask(call, {"cmd": "reload", "unit": word})
    return EXIT_OK if reply.get("ok") else _failure(call, "reload", word, reply)


def _reload_or_restart_one(call: Call, word: str, only_running: bool = False) -> int:
    if only_running:
        status = _ask(call, {"cmd": "status", "unit": word})
        if not status.get("ok"):
            return _failure(call, "try-reload-or-restart", word, status)
        units = status.get("units") or {}
        if not any(unit.get("state") in _RUNNING for unit in units.values()):
            return EXIT_OK  # not running: nothing to do
    reply = _ask(call, {"cmd": "reload", "unit": word})
    if reply.get("ok"):
        return EXIT_OK
    if reply.get("refused") is None:  # the reload itself failed: no restart instead
        return _failure(call, "reload", word, reply)
    restarted = _ask(call, {"cmd": "restart", "unit": word})
    return EXIT_OK if restarted.get("ok") else _failure(call, "restart", word, restarted)


def reload(call: Call) -> int:
    """`systemctl reload UNIT...`"""
    return _each(call, _reload_one)


def reload_or_restart(call: Call) -> int:
    """`systemctl reload-or-restart UNIT...`: reload, else restart (starting it if down)."""
    return _each(call, _reload_or_restart_one)


def try_reload_or_restart(call: Call) -> int:
    """`systemctl try-reload-or-restart UNIT...`: as reload-or-restart, for running units."""
    return _each(call, lambda c, w: _reload_or_restart_one(c, w, only_running=True))


def daemon_reload(call: Call) -> int:
    """`systemctl daemon-reload`: read the unit files again (silent when it worked)."""
    try:
        reply = _ask(call, {"cmd": "daemon-reload", "apply": False})
    except _Failed as failed:
        return failed.status
    if reply.get("ok"):
        return EXIT_OK
    return call.fail(str(reply.get("error") or "Failed to reload daemon."))
