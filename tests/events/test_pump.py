"""The hub and its pump thread in-process, on real ZeroMQ sockets in a tmp runtime dir:
buffered events reach a subscriber that was connecting before the stream was up, the
trace matches the stream, the control endpoint answers, and a broken pump stops taking
events instead of growing without bound (cinit itself carries on)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq

from cinit.events import pump as event_pump
from cinit.events.hub import EventHub
from cinit.io.control_client import ControlError, request

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def sub_context() -> Iterator[zmq.Context[Any]]:
    ctx: zmq.Context[Any] = zmq.Context()
    yield ctx
    ctx.destroy(linger=0)


def test_buffered_events_reach_an_early_subscriber_and_the_trace(
    tmp_path: Path, sub_context: zmq.Context[Any]
) -> None:
    runtime = tmp_path / "run"
    trace = tmp_path / "trace.jsonl"
    sub = sub_context.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(f"ipc://{runtime / 'events'}")  # before anything exists, as a watcher would
    hub = EventHub(started_mono=time.monotonic(), runtime_dir=str(runtime), trace_file=str(trace))
    for i in range(100):  # before the pump exists: buffered
        hub.emit("orphans-reaped", None, count=1, total=i + 1)
    hub.start()
    received: list[tuple[bytes, dict[str, Any]]] = []
    deadline = time.monotonic() + 10
    while len(received) < 100 and time.monotonic() < deadline:
        if sub.poll(100):
            topic, body = sub.recv_multipart()
            received.append((topic, json.loads(body)))
    assert [body["seq"] for _, body in received] == list(range(1, 101))
    assert {topic for topic, _ in received} == {b"cinit.orphans-reaped"}
    assert (runtime / "control").exists()
    reply = request(str(runtime / "control"), {"cmd": "status"}, 5)
    assert reply["ok"] is True and reply["seq"] == 100 and reply["units"] == {}
    hub.close()
    assert not (runtime / "events").exists() and not (runtime / "control").exists()
    records = [json.loads(line) for line in trace.read_text().splitlines()]
    assert [r["seq"] for r in records] == list(range(1, 101))
    assert all(r["phase"] == "orphans-reaped" and r["dt_ms"] == 0 for r in records)
    with pytest.raises(ControlError):
        request(str(runtime / "control"), {"cmd": "status"}, 1)


def test_closing_before_the_pump_ran_still_writes_every_event_to_the_trace(
    tmp_path: Path,
) -> None:
    # A handoff right after a quick boot closes the hub before its pump ever looped.
    for attempt in range(5):
        trace = tmp_path / f"trace-{attempt}.jsonl"
        hub = EventHub(
            started_mono=time.monotonic(), runtime_dir=str(tmp_path / "run"), trace_file=str(trace)
        )
        for i in range(3):
            hub.emit("orphans-reaped", None, count=1, total=i + 1)
        hub.close()
        records = [json.loads(line) for line in trace.read_text().splitlines()]
        assert [r["seq"] for r in records] == [1, 2, 3], attempt


def test_a_broken_pump_stops_taking_events(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    def broken(self: Any, event: dict[str, Any]) -> float:
        raise RuntimeError("injected: status book broke")

    monkeypatch.setattr(event_pump.StatusBook, "apply", broken)
    hub = EventHub(started_mono=time.monotonic(), runtime_dir=str(tmp_path / "run"))
    hub.emit("orphans-reaped", None, count=1)
    hub.start()
    deadline = time.monotonic() + 5
    while hub.accepting and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not hub.accepting
    for _ in range(1000):
        hub.emit("orphans-reaped", None, count=1)
    assert not hub.has_queued(), "events pile up with nobody to take them"
    assert hub.last_seq == 1001  # seqs go on: the numbering never lies about what happened
    hub.close()
    assert "internal error in the event stream" in capfd.readouterr().err


def test_a_stuck_subscriber_loses_events_the_others_get_them_and_drops_are_announced(
    tmp_path: Path, sub_context: zmq.Context[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from cinit.io import publisher

    monkeypatch.setattr(publisher, "SEND_HWM", 1000)  # queue per subscriber, < the burst
    monkeypatch.setattr(event_pump, "LOSSY_PERIOD", 0.3)
    runtime = tmp_path / "run"
    endpoint = f"ipc://{runtime / 'events'}"
    stuck = sub_context.socket(zmq.SUB)
    stuck.setsockopt(zmq.RCVHWM, 1)
    stuck.setsockopt(zmq.RCVBUF, 4096)
    stuck.setsockopt(zmq.SUBSCRIBE, b"")
    stuck.connect(endpoint)  # and never reads
    healthy = sub_context.socket(zmq.SUB)
    healthy.setsockopt(zmq.RCVHWM, 0)  # it queues on its side what it has not read yet
    healthy.setsockopt(zmq.SUBSCRIBE, b"")
    healthy.connect(endpoint)
    hub = EventHub(started_mono=time.monotonic(), runtime_dir=str(runtime))
    hub.start()
    time.sleep(0.5)  # both connected, the hold is over
    padding = "x" * 4000
    seqs: list[int] = []
    dropped: list[dict[str, Any]] = []

    def read() -> None:  # the healthy subscriber keeps up, as a live `cinit watch` does
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not (len(seqs) >= 3000 and dropped):
            if healthy.poll(100):
                _, body = healthy.recv_multipart()
                event = json.loads(body)
                if event["event"] == "events-dropped":
                    dropped.append(event)
                else:
                    seqs.append(event["seq"])

    import threading

    reader = threading.Thread(target=read)
    reader.start()
    for i in range(3000):  # a storm: more than the stuck one's queue and socket buffers
        hub.emit("orphans-reaped", None, count=1, total=i, padding=padding)
        if i % 10 == 9:
            time.sleep(0.005)  # ~2000 events/s, a restart storm's rate
    # The notice waits until every subscriber can take it: here, until the stuck one left.
    stuck.close(linger=0)
    reader.join(25)
    hub.close()
    assert dropped, "the stuck subscriber's losses were not announced"
    announced = set()
    for event in dropped:
        assert event["count"] > 0 and 1 <= event["first_seq"] <= event["last_seq"] < event["seq"]
        announced.update(range(event["first_seq"], event["last_seq"] + 1))
    # The healthy subscriber got every event but a few around the switch to lossy (libzmq
    # counts its queue too), and each one it missed was announced.
    everything = set(seqs) | {event["seq"] for event in dropped}  # announcements have seqs too
    missing = set(range(1, 3001 + len(dropped))) - everything
    assert missing <= announced, f"missed and not announced: {sorted(missing - announced)}"
    assert len(missing) <= 30, f"the healthy subscriber missed {len(missing)} events"
    assert seqs == sorted(seqs)


def test_a_subscriber_that_stopped_reading_gets_the_true_count_of_what_it_missed(
    tmp_path: Path, sub_context: zmq.Context[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 13 item 10a: a subscriber that did not read for a while missed 15,422 events
    and was told of 1,980 (in a notice it never got). Now the notice waits until it can
    take it, and counts what it missed, exactly: each gap in its seqs is announced."""
    import threading

    from cinit.io import publisher

    monkeypatch.setattr(publisher, "SEND_HWM", 1000)
    monkeypatch.setattr(event_pump, "LOSSY_PERIOD", 0.3)
    runtime = tmp_path / "run"
    endpoint = f"ipc://{runtime / 'events'}"
    stuck = sub_context.socket(zmq.SUB)
    stuck.setsockopt(zmq.RCVHWM, 1)
    stuck.setsockopt(zmq.RCVBUF, 4096)
    stuck.setsockopt(zmq.SUBSCRIBE, b"")
    stuck.connect(endpoint)  # reads only once the storm is over
    healthy = sub_context.socket(zmq.SUB)
    healthy.setsockopt(zmq.RCVHWM, 0)
    healthy.setsockopt(zmq.SUBSCRIBE, b"")
    healthy.connect(endpoint)
    hub = EventHub(started_mono=time.monotonic(), runtime_dir=str(runtime))
    hub.start()
    time.sleep(0.5)  # both connected, the hold is over
    storm = 3000
    healthy_last: list[int] = []

    def read_healthy() -> None:  # keeps up; the storm is over when it has the last event
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not healthy_last:
            if healthy.poll(100):
                event = json.loads(healthy.recv_multipart()[1])
                if event.get("total") == storm - 1:
                    healthy_last.append(event["seq"])

    reader = threading.Thread(target=read_healthy)
    reader.start()
    padding = "x" * 4000
    for i in range(storm):
        hub.emit("orphans-reaped", None, count=1, total=i, padding=padding)
        if i % 10 == 9:
            time.sleep(0.005)
    reader.join(25)
    assert healthy_last, "the healthy subscriber did not get the storm's last event"
    # Now the stuck one reads: until every seq it lacks is covered by a notice it got.
    got: set[int] = set()
    notices: list[dict[str, Any]] = []

    def uncovered() -> set[int]:
        missed = set(range(1, max(got, default=0) + 1)) - got
        for notice in notices:
            missed -= set(range(notice["first_seq"], notice["last_seq"] + 1))
        return missed

    def done() -> bool:  # it has a seq after the storm's end, and every gap is announced
        return max(got, default=0) > healthy_last[0] and not uncovered()

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not done():
        if not stuck.poll(100):
            continue
        event = json.loads(stuck.recv_multipart()[1])
        got.add(event["seq"])
        if event["event"] == "events-dropped":
            notices.append(event)
    hub.close()
    assert max(got, default=0) > healthy_last[0], (
        f"nothing after seq {max(got, default=0)} reached the subscriber, no notice either"
    )
    missed = set(range(1, max(got) + 1)) - got
    assert missed, "the subscriber missed nothing: the storm did not fill its queue"
    assert notices, f"{len(missed)} events missed and no events-dropped notice received"
    assert not uncovered(), f"missed and not announced: {sorted(uncovered())[:20]}"
    announced = sum(notice["count"] for notice in notices)
    assert announced == len(missed), (announced, len(missed), notices)
