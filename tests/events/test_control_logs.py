"""The control desk's `logs` request (issue 16 §3): validation, unknown units, replies
read from a real output relay's rings (written through real pipes)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest

from cinit.events.control_desk import ControlDesk
from cinit.events.status_book import StatusBook
from cinit.io.output import OutputRelay


@pytest.fixture
def relay() -> Iterator[OutputRelay]:
    null = os.open(os.devnull, os.O_WRONLY)
    relay = OutputRelay(null, null)
    relay.start()
    yield relay
    relay.stop()
    os.close(null)


def make_desk(relay: OutputRelay | None) -> ControlDesk:
    book = StatusBook(set(), 0.0)
    for seq, name in enumerate(("web.service", "db.service"), 1):
        book.apply({"seq": seq, "event": "loaded", "unit": name, "kind": "service", "t_ms": 0})
    read = relay.read_logs if relay is not None else None
    return ControlDesk(book, lambda kind, unit: True, log_read=read)


def ask(desk: ControlDesk, **fields: Any) -> dict[str, Any]:
    reply = desk.request("c", json.dumps({"cmd": "logs", **fields}).encode())
    assert reply is not None
    return reply


def write(relay: OutputRelay, unit: str, stream: int, data: bytes) -> None:
    """Write through a real pipe and wait until the relay kept the last line."""
    pipe = relay.open_pipe(unit, stream, True)
    os.write(pipe, data)
    os.close(pipe)
    last = data.rstrip(b"\n").rsplit(b"\n", 1)[-1]
    deadline = time.monotonic() + 10
    while not any(line.text == last for line in relay.read_logs([unit])[0]):
        assert time.monotonic() < deadline, "the relay did not keep the line"
        time.sleep(0.01)


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"units": "web"}, "units must be a list"),
        ({"units": [5]}, "units must be a list"),
        ({"units": [""]}, "units must be a list"),
        ({"lines": -1}, "lines must be"),
        ({"lines": "3"}, "lines must be"),
        ({"lines": True}, "lines must be"),
        ({"lines": 2.5}, "lines must be"),
        ({"since": "today"}, "since must be"),
        ({"after": -2}, "after must be"),
    ],
)
def test_malformed_logs_requests_are_usage_errors(fields: dict[str, Any], words: str) -> None:
    reply = ask(make_desk(None), **fields)
    assert reply["ok"] is False and reply["code"] == 2 and words in reply["error"]


def test_an_unknown_unit_is_code_4() -> None:
    reply = ask(make_desk(None), units=["web", "nope"])
    assert reply["ok"] is False and reply["code"] == 4 and "nope" in reply["error"]


def test_without_a_relay_the_reply_is_empty() -> None:
    reply = ask(make_desk(None), units=["web"])
    assert reply["ok"] and reply["lines"] == [] and reply["cursor"] == 0


def test_lines_of_several_units_come_in_order_with_a_cursor(relay: OutputRelay) -> None:
    desk = make_desk(relay)
    write(relay, "web.service", 1, b"w1\nw2\n")
    write(relay, "db.service", 2, b"d1\n")
    write(relay, "web.service", 2, b"w3\n")
    reply = ask(desk)
    assert [(x["unit"], x["stream"], x["text"]) for x in reply["lines"]] == [
        ("web.service", "stdout", "w1"),
        ("web.service", "stdout", "w2"),
        ("db.service", "stderr", "d1"),
        ("web.service", "stderr", "w3"),
    ]
    assert reply["cursor"] == reply["end"]
    assert [x["text"] for x in ask(desk, units=["web"], lines=2)["lines"]] == ["w2", "w3"]
    twice = ask(desk, units=["web", "web.service"])["lines"]
    assert [x["text"] for x in twice] == ["w1", "w2", "w3"]
    page = ask(desk, lines=3, after=0)
    assert [x["text"] for x in page["lines"]] == ["w1", "w2", "d1"]
    rest = ask(desk, lines=3, after=page["cursor"])
    assert [x["text"] for x in rest["lines"]] == ["w3"]
    assert ask(desk, after=rest["cursor"])["lines"] == []
    write(relay, "db.service", 1, b"d2\n")
    assert [x["text"] for x in ask(desk, after=rest["cursor"])["lines"]] == ["d2"]
    assert ask(desk, since=time.time() + 60)["lines"] == []
