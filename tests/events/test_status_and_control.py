"""The event hub, the status book and the control desk, without processes or sockets.

Events are stamped by a real `EventHub` (seq, clocks) and fed to the book in seq order, as
the pump thread does; the desk's supervisor is a list of the commands it was given.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from cinit.events.control_desk import ControlDesk
from cinit.events.hub import EventHub, event_name
from cinit.events.status_book import StatusBook
from cinit.machines.unit_events import Notice, Transition
from cinit.machines.unit_model import State

pytestmark = pytest.mark.timeout(30)


def make_hub(tmp_path: Any) -> EventHub:
    import time

    return EventHub(started_mono=time.monotonic(), runtime_dir=str(tmp_path / "run"))


def change(unit: str, old: State, new: State, **fields: Any) -> Transition:
    return Transition(unit, old, new, "because", **fields)


@pytest.mark.parametrize(
    ("old", "new", "name"),
    [
        ("inactive", "waiting", "waiting"),
        ("waiting", "starting", "starting"),
        ("auto-restart", "starting", "starting"),
        ("starting", "running", "started"),
        ("running", "active", "ready"),
        ("waiting", "condition-skipped", "skipped"),
        ("active", "stopping", "stopping"),
        ("stopping", "inactive", "stopped"),
        ("waiting", "inactive", "stopped"),
        ("running", "exited", "exited"),
        ("stopping", "failed", "failed"),
        ("stopping", "auto-restart", "restarting"),
    ],
)
def test_each_transition_has_one_event_name(old: str, new: str, name: str) -> None:
    assert event_name(old, new) == name


def test_hub_stamps_seq_without_gaps_across_threads(tmp_path: Any) -> None:
    hub = make_hub(tmp_path)

    def produce(n: int) -> None:
        for i in range(500):
            hub.emit("orphans-reaped", None, count=i, producer=n)

    threads = [threading.Thread(target=produce, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    taken = hub.take()
    assert [e["seq"] for e in taken] == list(range(1, 2001))
    monos = [e["mono"] for e in taken]
    assert monos == sorted(monos), "seq order and clock order disagree"
    assert all(e["t_ms"] >= 0 for e in taken)
    hub.close()


def test_hub_turns_transitions_and_notices_into_events(tmp_path: Any) -> None:
    hub = make_hub(tmp_path)
    hub.tell(change("a.service", State.RUNNING, State.STOPPING, pid=42, code=None, signal=15))
    hub.tell(Notice("web.socket", "socket-bound", {"listen": "127.0.0.1:80"}))
    first, second = hub.take()
    assert first["event"] == "stopping" and first["unit"] == "a.service"
    assert (first["old"], first["new"], first["pid"], first["signal"]) == (
        "running",
        "stopping",
        42,
        "SIGTERM",
    )
    assert "code" not in first  # absent, not null, when unknown
    assert second["event"] == "socket-bound" and second["listen"] == "127.0.0.1:80"
    json.dumps([first, second])  # every event is JSON as it is
    hub.close()


def feed(book: StatusBook, hub: EventHub) -> list[dict[str, Any]]:
    events = hub.take()
    for event in events:
        book.apply(event)
    return events


def test_book_tracks_state_pid_restarts_and_last_exit(tmp_path: Any) -> None:
    hub = make_hub(tmp_path)
    book = StatusBook({"a.service"}, 0.0)
    hub.emit("loaded", "a.service", kind="service", description="A")
    for old, new, fields in [
        (State.INACTIVE, State.WAITING, {}),
        (State.WAITING, State.STARTING, {}),
        (State.STARTING, State.RUNNING, {"pid": 10}),
        (State.RUNNING, State.ACTIVE, {"pid": 10}),
    ]:
        hub.tell(change("a.service", old, new, **fields))
    feed(book, hub)
    status = book.units["a.service"]
    assert (status["state"], status["main_pid"], status["ready"]) == ("active", 10, True)
    assert status["description"] == "A" and status["kind"] == "service"
    assert book.is_ready() and book.is_ready("a.service")
    hub.tell(change("a.service", State.ACTIVE, State.STOPPING, code=3))
    hub.tell(change("a.service", State.STOPPING, State.AUTO_RESTART, code=3))
    feed(book, hub)
    status = book.units["a.service"]
    assert status["restarts"] == 1
    assert status["last_exit"] == {"code": 3, "signal": None}
    assert status["main_pid"] is None
    assert not book.is_ready(), "a unit waiting to restart is not ready"
    assert book.seq == 8  # 6 changes, loaded, and boot-settled after `active`


def test_a_new_main_pid_without_a_change_of_state_reaches_the_book(tmp_path: Any) -> None:
    from cinit.machines.unit_events import Notice
    from cinit.machines.vocabulary import MAIN_PID_CHANGED_EVENT

    hub = make_hub(tmp_path)
    book = StatusBook({"a.service"}, 0.0)
    hub.tell(change("a.service", State.RUNNING, State.ACTIVE, pid=10))
    hub.tell(Notice("a.service", MAIN_PID_CHANGED_EVENT, {"pid": 42}))
    feed(book, hub)
    status = book.units["a.service"]
    assert (status["state"], status["main_pid"]) == ("active", 42)
    assert book.recent["a.service"][-1].endswith("main-pid-changed pid=42")


def test_a_timers_next_elapse_and_last_trigger_reach_the_book(tmp_path: Any) -> None:
    from cinit.machines.unit_events import Notice

    hub = make_hub(tmp_path)
    book = StatusBook({"t.timer"}, 0.0)
    hub.emit("loaded", "t.timer", kind="timer")
    hub.tell(change("t.timer", State.INACTIVE, State.ACTIVE))
    hub.tell(Notice("t.timer", "timer-armed", {"next_elapse": 100.0, "service": "t.service"}))
    hub.tell(Notice("t.timer", "timer-elapsed", {"at": 100.5, "service": "t.service"}))
    hub.tell(Notice("t.timer", "timer-armed", {"next_elapse": 160.0, "service": "t.service"}))
    feed(book, hub)
    status = book.units["t.timer"]
    assert (status["next_elapse"], status["last_trigger"]) == (160.0, 100.5)
    assert status["triggers"] == "t.service" and status["state"] == "active"
    hub.tell(change("t.timer", State.ACTIVE, State.INACTIVE))
    feed(book, hub)
    assert status["next_elapse"] is None and status["last_trigger"] == 100.5


def test_whole_is_not_ready_before_every_boot_unit_settled(tmp_path: Any) -> None:
    hub = make_hub(tmp_path)
    book = StatusBook({"a.service", "b.service"}, 0.0)
    hub.tell(change("a.service", State.RUNNING, State.ACTIVE))
    feed(book, hub)
    assert not book.is_ready()
    hub.tell(change("b.service", State.RUNNING, State.EXITED))
    feed(book, hub)
    assert book.is_ready()
    hub.emit("shutdown-started", None, reason="SIGTERM")
    feed(book, hub)
    assert not book.is_ready()


class Desk:
    def __init__(self, tmp_path: Any) -> None:
        self.hub = make_hub(tmp_path)
        self.book = StatusBook(set(), 0.0)
        self.commands: list[tuple[str, str]] = []
        self.desk = ControlDesk(self.book, self.command)
        self.hub.emit("loaded", "a.service", kind="service")
        self.hub.emit("loaded", "s.socket", kind="socket")
        self.settle()

    def command(self, kind: str, unit: str) -> bool:
        self.commands.append((kind, unit))
        return True

    def settle(self) -> list[tuple[Any, dict[str, Any]]]:
        replies = []
        for event in self.hub.take():
            self.book.apply(event)
            replies += self.desk.after_event(event)
        return replies

    def ask(self, raw: bytes | dict[str, Any], client: str = "c1") -> dict[str, Any] | None:
        body = raw if isinstance(raw, bytes) else json.dumps(raw).encode()
        return self.desk.request(client, body)

    def go(self, old: State, new: State, **fields: Any) -> list[tuple[Any, dict[str, Any]]]:
        self.hub.tell(change("a.service", old, new, **fields))
        return self.settle()


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b"\xff\xfe", "not a JSON object"),
        (b"[1, 2]", "not a JSON object"),
        (b"", "not a JSON object"),
        (b'{"cmd": "reboot"}', "unknown cmd"),
        (b'{"unit": "a"}', "unknown cmd"),
        (b'{"cmd": "status", "unit": 5}', "unit must be"),
        (b'{"cmd": "start"}', "needs a unit"),
        (b"{" * 70000, "too large"),
        # issue 13 item 10: each field of the wrong type is a usage error, never a TypeError
        (b'{"cmd": ["status"]}', "cmd must be a string"),
        (b'{"cmd": {"status": 1}}', "cmd must be a string"),
        (b'{"cmd": 5}', "cmd must be a string"),
        (b'{"cmd": null}', "cmd must be a string"),
        (b'{"cmd": true}', "cmd must be a string"),
        (b'{"cmd": "status", "unit": ["a"]}', "unit must be"),
        (b'{"cmd": "status", "unit": {"a": 1}}', "unit must be"),
        (b'{"cmd": "status", "unit": false}', "unit must be"),
        (b'{"cmd": "status", "unit": ""}', "unit must be"),
        (b"[" * 60000 + b"]" * 60000, "too large"),
        (b'{"cmd": "status", "x": ' + b"[" * 30000 + b"]" * 30000 + b"}", "nested too deep"),
    ],
)
def test_malformed_requests_get_error_replies(tmp_path: Any, raw: bytes, words: str) -> None:
    reply = Desk(tmp_path).ask(raw)
    assert reply is not None and reply["ok"] is False
    assert reply["code"] == 2 and words in reply["error"]


def test_unknown_unit_is_code_4_and_short_names_resolve(tmp_path: Any) -> None:
    desk = Desk(tmp_path)
    for cmd in ("status", "start", "stop", "restart", "is-ready"):
        reply = desk.ask({"cmd": cmd, "unit": "nope"})
        assert reply == {"ok": False, "error": "unit nope not found", "code": 4, "seq": 2}
    reply = desk.ask({"cmd": "status", "unit": "a"})
    assert reply is not None and list(reply["units"]) == ["a.service"]


def test_start_is_answered_when_the_unit_is_up_or_failed(tmp_path: Any) -> None:
    desk = Desk(tmp_path)
    assert desk.ask({"cmd": "start", "unit": "a"}) is None
    assert desk.commands == [("start", "a.service")]
    assert desk.go(State.INACTIVE, State.WAITING) == []
    assert desk.go(State.WAITING, State.STARTING) == []
    replies = desk.go(State.STARTING, State.ACTIVE, pid=7)
    assert [(c, r["ok"], r["state"]) for c, r in replies] == [("c1", True, "active")]
    # Already active: answered at once, nothing sent.
    assert desk.ask({"cmd": "start", "unit": "a"})["ok"] is True  # type: ignore[index]
    assert len(desk.commands) == 1
    desk.go(State.ACTIVE, State.FAILED)
    assert desk.ask({"cmd": "start", "unit": "a"}, client="c2") is None
    desk.go(State.FAILED, State.WAITING)
    replies = desk.go(State.WAITING, State.FAILED)
    assert [(c, r["ok"], r["code"]) for c, r in replies] == [("c2", False, 1)]


def test_restart_is_a_stop_then_a_start(tmp_path: Any) -> None:
    desk = Desk(tmp_path)
    desk.go(State.INACTIVE, State.ACTIVE)
    assert desk.ask({"cmd": "restart", "unit": "a.service"}) is None
    assert desk.commands == [("restart-stop", "a.service")]
    desk.go(State.ACTIVE, State.STOPPING)
    assert desk.go(State.STOPPING, State.INACTIVE) == []
    assert desk.commands == [("restart-stop", "a.service"), ("start", "a.service")]
    desk.go(State.INACTIVE, State.WAITING)
    replies = desk.go(State.WAITING, State.ACTIVE)
    assert [r["ok"] for _, r in replies] == [True]


def test_pending_requests_fail_when_shutdown_starts(tmp_path: Any) -> None:
    desk = Desk(tmp_path)
    desk.go(State.INACTIVE, State.ACTIVE)
    assert desk.ask({"cmd": "stop", "unit": "a"}) is None
    desk.hub.emit("shutdown-started", None, reason="SIGTERM")
    replies = desk.settle()
    assert [(r["ok"], r["error"]) for _, r in replies] == [(False, "cinit is shutting down")]
    reply = desk.ask({"cmd": "start", "unit": "a"})
    assert reply is not None and reply["ok"] is False and reply["code"] == 1


def test_socket_restart_is_a_stop_then_a_start_answered_by_its_events(tmp_path: Any) -> None:
    desk = Desk(tmp_path)
    desk.hub.tell(change("s.socket", State.INACTIVE, State.ACTIVE))
    desk.settle()
    assert desk.ask({"cmd": "restart", "unit": "s.socket"}) is None
    assert desk.commands == [("restart-stop", "s.socket")]
    desk.hub.tell(change("s.socket", State.ACTIVE, State.STOPPING))
    desk.hub.tell(change("s.socket", State.STOPPING, State.INACTIVE))
    assert desk.settle() == []
    assert desk.commands == [("restart-stop", "s.socket"), ("start", "s.socket")]
    desk.hub.tell(change("s.socket", State.INACTIVE, State.ACTIVE))
    assert [(r["ok"], r["state"]) for _, r in desk.settle()] == [(True, "active")]
    # Stopping a stopped socket is done at once; starting a failed one waits for its events.
    desk.hub.tell(change("s.socket", State.ACTIVE, State.FAILED))
    desk.settle()
    assert desk.ask({"cmd": "stop", "unit": "s.socket"})["ok"] is True  # type: ignore[index]
    assert desk.ask({"cmd": "start", "unit": "s.socket"}) is None
    desk.hub.tell(change("s.socket", State.FAILED, State.FAILED))
    assert [(r["ok"], r["code"]) for _, r in desk.settle()] == [(False, 1)]


def test_is_ready_and_status_reflect_the_seq(tmp_path: Any) -> None:
    desk = Desk(tmp_path)
    desk.go(State.INACTIVE, State.ACTIVE, pid=5)
    ready = desk.ask({"cmd": "is-ready", "unit": "a"})
    assert ready == {"ok": True, "ready": True, "seq": 4}  # one more: boot-settled
    status = desk.ask({"cmd": "status"})
    assert status is not None and status["seq"] == 4
    assert status["units"]["a.service"]["main_pid"] == 5
    assert status["units"]["a.service"]["state"] == "active"


def test_status_book_resolves_an_alias_from_the_loaded_event() -> None:
    book = StatusBook({"rsyslog.service"}, 0.0)
    loaded = {"seq": 1, "t_ms": 1.0, "event": "loaded", "unit": "rsyslog.service",
              "kind": "service", "aliases": ["syslog.service"]}
    book.apply(loaded)
    assert book.resolve("syslog.service") == "rsyslog.service"
    assert book.resolve("syslog") == "rsyslog.service"
    assert book.resolve("rsyslog") == "rsyslog.service"
    assert book.resolve("other.service") is None
