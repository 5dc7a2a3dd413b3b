"""The control desk and status book for reload and daemon-reload, without processes.

Events are stamped by a real `EventHub` and fed to the book, then the desk, as the pump
does; the desk's supervisor is a list of the orders it was given.
"""

from __future__ import annotations

from typing import Any

import pytest
from test_status_and_control import Desk, change

from cinit.machines.unit_events import Notice, Transition
from cinit.machines.unit_model import State
from cinit.machines.vocabulary import RELOAD_FAILED_REASON, RELOADED_REASON

pytestmark = pytest.mark.timeout(30)


def reloadable_desk(tmp_path: Any) -> Desk:
    desk = Desk(tmp_path)
    desk.hub.emit("loaded", "r.service", kind="service", reloadable=True)
    desk.settle()
    return desk


def go_r(desk: Desk, old: State, new: State, reason: str = "because") -> list[Any]:
    desk.hub.tell(Transition("r.service", old, new, reason))
    return desk.settle()


def test_reload_waits_for_the_unit_back_active_and_says_how_it_went(tmp_path: Any) -> None:
    desk = reloadable_desk(tmp_path)
    go_r(desk, State.INACTIVE, State.ACTIVE)
    assert desk.ask({"cmd": "reload", "unit": "r"}) is None
    assert desk.commands == [("reload", "r.service")]
    assert go_r(desk, State.ACTIVE, State.RELOADING) == []
    assert desk.book.is_ready("r.service")  # reloading is still up
    replies = go_r(desk, State.RELOADING, State.ACTIVE, RELOADED_REASON)
    assert [(c, r["ok"], r["state"]) for c, r in replies] == [("c1", True, "active")]
    assert desk.ask({"cmd": "reload", "unit": "r"}, client="c2") is None
    go_r(desk, State.ACTIVE, State.RELOADING)
    replies = go_r(desk, State.RELOADING, State.ACTIVE, f"{RELOAD_FAILED_REASON} (timeout)")
    assert [(c, r["code"]) for c, r in replies] == [("c2", 1)]
    assert "because a timeout was exceeded" in replies[0][1]["error"]
    assert desk.ask({"cmd": "reload", "unit": "r"}, client="c3") is None
    go_r(desk, State.ACTIVE, State.RELOADING)
    replies = go_r(desk, State.RELOADING, State.STOPPING)
    assert [(c, r["ok"]) for c, r in replies] == [("c3", False)]


def test_reload_refusals_are_systemctls(tmp_path: Any) -> None:
    desk = reloadable_desk(tmp_path)
    reply = desk.ask({"cmd": "reload", "unit": "a"})  # no ExecReload=
    assert reply is not None and reply["code"] == 1
    assert reply["error"] == (
        "Failed to reload a.service: Job type reload is not applicable for unit a.service."
    )
    reply = desk.ask({"cmd": "reload", "unit": "s.socket"})
    assert reply is not None and "not applicable" in reply["error"]
    reply = desk.ask({"cmd": "reload", "unit": "r"})  # inactive
    assert reply is not None and reply["error"] == (
        "Failed to reload r.service: Unit r.service is not active, cannot reload."
    )
    assert desk.ask({"cmd": "reload", "unit": "nope"})["code"] == 4  # type: ignore[index]
    assert desk.commands == []


def test_daemon_reload_is_answered_by_its_outcome_and_the_book_follows(tmp_path: Any) -> None:
    desk = reloadable_desk(tmp_path)
    desk.go(State.INACTIVE, State.ACTIVE)
    assert desk.ask({"cmd": "daemon-reload", "apply": True}) is None
    assert desk.commands == [("daemon-reload-apply", "")]
    desk.hub.tell(Notice("b.service", "unit-added", {"kind": "service", "description": "B"}))
    desk.hub.tell(Notice("r.service", "unit-changed", {"kind": "service", "directives": ["X"]}))
    desk.hub.tell(Notice("a.service", "unit-removed", {}))
    # A SIGHUP's outcome is nobody's answer; the request's is.
    desk.hub.tell(Notice("", "daemon-reloaded", {"requested": False, "ok": True, "diff": []}))
    assert desk.settle() == []
    lines = ["+ b.service", "- a.service", "~ r.service: X"]
    desk.hub.tell(
        Notice("", "daemon-reloaded", {"requested": True, "ok": True, "diff": lines, "started": []})
    )
    ((client, reply),) = desk.settle()
    assert client == "c1" and reply["ok"] and reply["diff"] == lines and reply["started"] == []
    assert set(desk.book.units) == {"b.service", "r.service", "s.socket"}
    assert desk.book.units["b.service"]["description"] == "B"
    assert "r.service" not in desk.book.reloadable  # its new definition has no ExecReload=
    # A refused set: the errors, code 1.
    assert desk.ask({"cmd": "daemon-reload"}, client="c2") is None
    errors = ["u/bad.service:2: error: ..."]
    desk.hub.tell(Notice("", "daemon-reloaded", {"requested": True, "ok": False, "errors": errors}))
    ((client, reply),) = desk.settle()
    assert (client, reply["ok"], reply["code"]) == ("c2", False, 1)
    assert "refused" in reply["error"] and errors[0] in reply["error"]
    bad = desk.ask({"cmd": "daemon-reload", "apply": "yes"})
    assert bad is not None and bad["code"] == 2


def test_a_reloading_transition_has_its_own_event_name(tmp_path: Any) -> None:
    desk = reloadable_desk(tmp_path)
    desk.hub.tell(change("r.service", State.ACTIVE, State.RELOADING))
    desk.hub.tell(change("r.service", State.RELOADING, State.ACTIVE))
    names = [e["event"] for e in desk.hub.take() if e["unit"] == "r.service"]
    assert names == ["reloading", "ready"]


def test_apply_is_answered_once_what_it_asked_got_there(tmp_path: Any) -> None:
    desk = reloadable_desk(tmp_path)
    desk.go(State.INACTIVE, State.ACTIVE)  # a.service: restarted by the apply
    go_r(desk, State.INACTIVE, State.ACTIVE)  # r.service: removed, stopped by it
    assert desk.ask({"cmd": "daemon-reload", "apply": True}) is None
    desk.hub.tell(Notice("n.service", "unit-added", {"kind": "service"}))
    outcome = {"requested": True, "ok": True, "diff": ["+ n.service"]}
    outcome |= {"started": ["n.service"], "stopped": ["r.service"], "restarted": ["a.service"]}
    desk.hub.tell(Notice("", "daemon-reloaded", outcome))
    assert desk.settle() == []
    desk.hub.tell(Transition("n.service", State.INACTIVE, State.ACTIVE, "ready"))
    desk.go(State.ACTIVE, State.STOPPING)
    desk.go(State.STOPPING, State.INACTIVE)  # a: down; now its start
    go_r(desk, State.ACTIVE, State.INACTIVE)
    desk.hub.tell(Notice("r.service", "unit-removed", {}))
    assert desk.settle() == []
    ((client, reply),) = desk.go(State.INACTIVE, State.FAILED)  # a's start failed
    assert (client, reply["ok"], reply["code"]) == ("c1", False, 1)
    assert reply["error"] == "+ n.service\nfailed: a.service"
    assert reply["started"] == ["n.service"] and reply["diff"] == ["+ n.service"]
