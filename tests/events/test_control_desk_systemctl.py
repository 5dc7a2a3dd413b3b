"""The control desk's commands for systemctl (issue 16): kill, reset-failed, the manager
environment, --no-block, the system state, STATUS= and the state timestamps in the book.

No processes: the desk's supervisor and signaller are lists of what they were given (the
real ones are proven in tests/e2e/test_systemctl_units.py).
"""

from __future__ import annotations

from typing import Any

import pytest
from test_status_and_control import Desk

from cinit.io.environ import ManagerEnvironment
from cinit.machines.unit_events import Notice
from cinit.machines.unit_model import State

pytestmark = pytest.mark.timeout(30)


def test_kill_checks_its_fields_and_signals_through_the_pump(tmp_path: Any) -> None:
    desk = Desk(tmp_path)
    sent: list[tuple[str, int, str]] = []
    desk.desk.signal = lambda status, signo, whom: sent.append((status["name"], signo, whom))
    desk.go(State.INACTIVE, State.ACTIVE, pid=5)
    reply = desk.ask({"cmd": "kill", "unit": "a", "signal": 1, "whom": "main"})
    assert reply is not None and reply["ok"] is True
    assert desk.ask({"cmd": "kill", "unit": "a"})["ok"] is True  # type: ignore[index]
    assert sent == [("a.service", 1, "main"), ("a.service", 15, "all")]
    for bad in (
        {"signal": 0},
        {"signal": "HUP"},
        {"signal": True},
        {"whom": "everyone"},
        {"whom": ["main"]},
    ):
        reply = desk.ask({"cmd": "kill", "unit": "a", **bad})
        assert reply is not None and reply["code"] == 2, bad
    assert desk.ask({"cmd": "kill"})["code"] == 2  # type: ignore[index]
    assert desk.ask({"cmd": "kill", "unit": "nope"})["code"] == 4  # type: ignore[index]
    desk.desk.signal = lambda _status, _signo, _whom: "No main process to kill"
    reply = desk.ask({"cmd": "kill", "unit": "a", "whom": "main"})
    assert reply is not None and (reply["code"], reply["error"]) == (1, "No main process to kill")


def test_reset_failed_waits_for_the_unit_and_all_answers_at_once(tmp_path: Any) -> None:
    desk = Desk(tmp_path)
    assert desk.ask({"cmd": "reset-failed", "unit": "a"})["ok"] is True  # type: ignore[index]
    assert desk.commands == []  # not failed: nothing to do
    desk.go(State.INACTIVE, State.FAILED)
    assert desk.ask({"cmd": "reset-failed", "unit": "a"}) is None
    assert desk.commands == [("reset-failed", "a.service")]
    replies = desk.go(State.FAILED, State.INACTIVE)
    assert [(r["ok"], r["state"]) for _, r in replies] == [(True, "inactive")]
    desk.go(State.INACTIVE, State.FAILED)
    reply = desk.ask({"cmd": "reset-failed"})
    assert reply is not None and reply["reset"] == ["a.service"]
    # A failed socket is started again, not reset (its listeners are bound anew).
    from test_status_and_control import change

    desk.hub.tell(change("s.socket", State.INACTIVE, State.FAILED))
    desk.settle()
    assert desk.ask({"cmd": "reset-failed", "unit": "s.socket"})["code"] == 1  # type: ignore[index]


def test_manager_environment_commands(tmp_path: Any) -> None:
    desk = Desk(tmp_path)
    assert desk.ask({"cmd": "show-environment"})["code"] == 1  # type: ignore[index]
    environment = ManagerEnvironment({"PATH": "/bin", "CINIT_RUNTIME_DIR": "/x"})
    desk.desk.environment = lambda: environment
    shown = desk.ask({"cmd": "show-environment"})
    assert shown is not None and shown["environment"] == {"PATH": "/bin"}  # cinit's own: out
    desk.ask({"cmd": "set-environment", "assign": {"A": "1", "B": "two words"}})
    assert dict(environment) == {
        "PATH": "/bin",
        "CINIT_RUNTIME_DIR": "/x",
        "A": "1",
        "B": "two words",
    }
    desk.ask({"cmd": "unset-environment", "names": ["A", "NEVER_SET"]})
    assert "A" not in environment and environment["B"] == "two words"
    for bad in (
        {"cmd": "set-environment", "assign": {"1A": "x"}},
        {"cmd": "set-environment", "assign": {"A=B": "x"}},
        {"cmd": "set-environment", "assign": {"A": 1}},
        {"cmd": "set-environment", "assign": ["A=1"]},
        {"cmd": "unset-environment", "names": "A"},
        {"cmd": "unset-environment", "names": [""]},
    ):
        reply = desk.ask(bad)
        assert reply is not None and reply["code"] == 2, bad


def test_a_reader_of_the_environment_keeps_its_snapshot() -> None:
    environment = ManagerEnvironment({"A": "1"})
    reading = iter(environment)
    environment.change({"B": "2"}, ["A"])
    assert list(reading) == ["A"]  # the dict it iterates was never changed
    assert dict(environment) == {"B": "2"}
    items = environment.items()
    environment.change({}, ["B"])
    assert list(items) == [("B", "2")]  # names with their values, from one dict


def test_no_block_is_answered_at_once_and_a_restart_still_finishes(tmp_path: Any) -> None:
    desk = Desk(tmp_path)
    desk.go(State.INACTIVE, State.ACTIVE)
    reply = desk.ask({"cmd": "restart", "unit": "a", "no_block": True})
    assert reply is not None and reply["ok"] is True and reply["queued"] is True
    desk.go(State.ACTIVE, State.STOPPING)
    desk.go(State.STOPPING, State.INACTIVE)
    assert desk.commands == [("restart-stop", "a.service"), ("start", "a.service")]


def test_failed_start_reply_carries_the_result(tmp_path: Any) -> None:
    desk = Desk(tmp_path)
    assert desk.ask({"cmd": "start", "unit": "a"}) is None
    desk.go(State.INACTIVE, State.WAITING)
    replies = desk.go(State.WAITING, State.FAILED, result="exit-code")
    assert [(r["code"], r["result"]) for _, r in replies] == [(1, "exit-code")]


def test_system_state_and_timestamps_and_status_text(tmp_path: Any) -> None:
    desk = Desk(tmp_path)
    status = desk.ask({"cmd": "status"})
    assert status is not None and status["system_state"] == "running"
    desk.go(State.INACTIVE, State.WAITING)
    desk.go(State.WAITING, State.ACTIVE, pid=9)
    desk.hub.tell(Notice("a.service", "status-text", {"text": "Serving"}))
    desk.settle()
    unit = desk.book.units["a.service"]
    assert unit["status_text"] == "Serving" and unit["exec_main_pid"] == 9
    assert unit["active_enter"] and unit["inactive_exit"] and unit["inactive_enter"] is None
    desk.go(State.ACTIVE, State.FAILED)
    assert unit["inactive_enter"] and unit["active_exit"] and unit["exec_main_pid"] == 9
    assert desk.ask({"cmd": "status"})["system_state"] == "degraded"  # type: ignore[index]
    desk.go(State.FAILED, State.WAITING)  # a new run: the old STATUS= no longer holds
    assert unit["status_text"] == ""
    desk.hub.emit("shutdown-started", None, reason="SIGTERM")
    desk.settle()
    assert desk.ask({"cmd": "status"})["system_state"] == "stopping"  # type: ignore[index]
