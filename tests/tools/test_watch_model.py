"""The watch model: a snapshot plus the events after it, each once, in seq order."""

from __future__ import annotations

from typing import Any

from cinit.tools.watch_model import SeqFilter, WatchModel, describe

START = 1_700_000_000.0  # cinit's start on the wall clock in these synthetic runs


def event(
    seq: int,
    unit: str | None,
    name: str,
    old: str = "",
    new: str = "",
    start: float = START,
    **fields: Any,
) -> dict[str, Any]:
    t_ms = 10.0 * seq
    found: dict[str, Any] = {
        "seq": seq,
        "time": start + t_ms / 1000,
        "mono": 5.0 + t_ms / 1000,
        "t_ms": t_ms,
        "unit": unit,
        "event": name,
        **fields,
    }
    if old:
        found["old"] = old
    if new:
        found["new"] = new
    return found


def snapshot(seq: int, **states: str) -> dict[str, Any]:
    return {
        "ok": True,
        "seq": seq,
        "boot_time": START,
        "units": {
            name.replace("_", "-") + ".service": {
                "name": name,
                "state": state,
                "main_pid": None,
                "since": START,
                "restarts": 0,
                "memory": 4096,
                "cpu": 0.5,
                "last_event": "snap",
            }
            for name, state in states.items()
        },
    }


def states(model: WatchModel) -> dict[str, str]:
    return {name: row.state for name, row in model.units.items()}


def test_events_before_the_snapshot_wait_and_only_those_after_it_apply() -> None:
    model = WatchModel()
    model.offer(event(4, "a.service", "starting", "waiting", "starting"))
    model.offer(event(5, "a.service", "started", "starting", "running", pid=42))
    assert model.units == {}  # nothing applied without a snapshot
    assert model.needs_snapshot
    # The snapshot reflects seq 4 already: only seq 5 applies on top of it.
    model.load_snapshot(snapshot(4, a="starting"))
    assert not model.needs_snapshot
    assert model.seq == 5
    assert states(model) == {"a.service": "running"}
    assert model.units["a.service"].main_pid == 42
    # Both are in the event pane: seq 4 happened too, it is just in the snapshot already.
    assert [line.seq for line in model.log] == [4, 5]


def test_next_seq_applies_in_order_and_a_duplicate_is_ignored() -> None:
    model = WatchModel()
    model.load_snapshot(snapshot(10, a="waiting"))
    model.offer(event(11, "a.service", "starting", "waiting", "starting"))
    model.offer(event(12, "a.service", "ready", "starting", "active", pid=7, restarts=0))
    model.offer(event(12, "a.service", "ready", "starting", "active", pid=7))
    model.offer(event(11, "a.service", "starting", "waiting", "starting"))
    assert model.seq == 12
    assert states(model) == {"a.service": "active"}
    assert model.duplicates == 2
    assert [line.seq for line in model.log] == [11, 12]
    assert not model.needs_snapshot


def test_a_gap_asks_for_a_snapshot_which_fills_it() -> None:
    model = WatchModel()
    model.load_snapshot(snapshot(3, a="active", b="waiting"))
    model.offer(event(4, "a.service", "stopping", "active", "stopping"))
    # seq 5 and 6 are lost on the way: seq 7 cannot be applied yet.
    model.offer(event(7, "b.service", "started", "starting", "running", pid=99))
    assert model.needs_snapshot
    assert model.seq == 4
    assert states(model) == {"a.service": "stopping", "b.service": "waiting"}
    # A fresh snapshot at seq 6 covers the hole; the held seq 7 applies on top of it.
    model.load_snapshot(snapshot(6, a="inactive", b="starting"))
    assert not model.needs_snapshot
    assert model.seq == 7
    assert states(model) == {"a.service": "inactive", "b.service": "running"}
    assert model.resyncs == 1
    assert model.pending == 0


def test_events_out_of_order_are_applied_in_seq_order() -> None:
    model = WatchModel()
    model.load_snapshot(snapshot(0, a="inactive"))
    model.offer(event(3, "a.service", "ready", "running", "active"))
    model.offer(event(2, "a.service", "started", "starting", "running", pid=5))
    assert model.seq == 0 and model.needs_snapshot  # 1 is still missing
    model.offer(event(1, "a.service", "starting", "inactive", "starting"))
    assert model.seq == 3
    assert states(model) == {"a.service": "active"}
    assert [line.seq for line in model.log] == [1, 2, 3]
    assert model.units["a.service"].main_pid == 5


def test_an_events_dropped_event_asks_for_a_fresh_snapshot() -> None:
    model = WatchModel()
    model.load_snapshot(snapshot(1, a="active"))
    model.offer(event(2, None, "events-dropped", count=3, first_seq=2, last_seq=4))
    assert model.needs_snapshot
    model.load_snapshot(snapshot(2, a="failed"))
    assert not model.needs_snapshot
    assert states(model) == {"a.service": "failed"}
    assert model.resyncs == 1


def test_an_old_seq_from_a_new_cinit_run_starts_over() -> None:
    model = WatchModel()
    model.load_snapshot(snapshot(0))
    for seq in range(1, 6):
        model.offer(event(seq, "a.service", "loaded" if seq == 1 else "starting"))
    assert model.seq == 5
    # cinit restarted 30 s later: its seq 1 is not a duplicate.
    model.offer(event(1, "b.service", "loaded", start=START + 30, kind="service"))
    assert model.needs_snapshot and model.seq is None
    model.load_snapshot(snapshot(0, b="inactive"))
    assert model.seq == 1
    assert list(model.units) == ["b.service"]
    assert model.units["b.service"].kind == "service"


def test_state_pid_restarts_and_result_follow_the_events() -> None:
    model = WatchModel()
    model.load_snapshot(snapshot(0))
    model.offer(event(1, "w.service", "loaded", kind="service", description="Web"))
    model.offer(event(2, "w.service", "started", "starting", "running", pid=31))
    model.offer(event(3, "w.service", "failed", "running", "failed", result="exit-code", code=3))
    row = model.units["w.service"]
    assert (row.state, row.main_pid, row.result, row.last_event) == (
        "failed",
        None,
        "exit-code",
        "failed",
    )
    assert row.description == "Web"
    model.offer(event(4, "w.service", "restarting", "failed", "auto-restart", restarts=1))
    assert row.restarts == 1 and row.state == "auto-restart"


def test_metrics_refresh_leaves_states_alone() -> None:
    model = WatchModel()
    model.load_snapshot(snapshot(1, a="starting"))
    model.offer(event(2, "a.service", "ready", "starting", "active"))
    stale = snapshot(1, a="starting")
    stale["units"]["a.service"].update(cpu=2.25, memory=1 << 20)
    model.refresh_metrics(stale)
    row = model.units["a.service"]
    assert (row.state, row.cpu, row.memory) == ("active", 2.25, 1 << 20)


def test_describe_names_the_transition_and_its_details() -> None:
    text = describe(
        event(9, "a.service", "exited", "running", "failed", code=1, result="exit-code")
    )
    assert text == "a.service: exited running -> failed (code=1, result=exit-code)"
    assert describe(event(1, None, "shutdown-started")) == "shutdown-started"


def test_seq_filter_passes_each_event_once_and_reports_what_went_missing() -> None:
    seqs = SeqFilter()
    assert seqs.accept(event(5, None, "loaded")) == (True, None)
    assert seqs.accept(event(6, None, "loaded")) == (True, None)
    assert seqs.accept(event(6, None, "loaded")) == (False, None)
    assert seqs.accept(event(9, None, "loaded")) == (True, (7, 8))
    assert seqs.accept(event(8, None, "loaded")) == (False, None)  # late: already past it
    assert seqs.accept({"seq": "x"}) == (False, None)
    # A new run starts from 1 again.
    assert seqs.accept(event(1, None, "loaded", start=START + 60)) == (True, None)
    assert seqs.accept(event(2, None, "loaded", start=START + 60)) == (True, None)


def test_events_missing_at_the_tail_are_noticed_by_the_next_status_reply() -> None:
    model = WatchModel()
    model.load_snapshot(snapshot(2, a="starting"))
    # Periodic status: cinit is at seq 5, events 3-5 may still be on their way.
    model.refresh_metrics(snapshot(5, a="active"))
    assert not model.needs_snapshot
    model.offer(event(3, "a.service", "started", "starting", "running"))
    # Next periodic status: the events never caught up with seq 5: a fresh snapshot.
    model.refresh_metrics(snapshot(5, a="active"))
    assert model.needs_snapshot
    model.load_snapshot(snapshot(5, a="active"))
    assert states(model) == {"a.service": "active"} and model.seq == 5


def test_events_that_caught_up_with_the_status_reply_need_no_snapshot() -> None:
    model = WatchModel()
    model.load_snapshot(snapshot(0, a="inactive"))
    model.refresh_metrics(snapshot(1, a="starting"))
    model.offer(event(1, "a.service", "starting", "inactive", "starting"))
    model.refresh_metrics(snapshot(1, a="starting"))
    assert not model.needs_snapshot


def test_events_a_snapshot_overtook_are_shown_once_but_not_applied_again() -> None:
    model = WatchModel()
    # The snapshot (seq 2) is read before the events it already reflects.
    model.load_snapshot(snapshot(2, a="active"))
    model.offer(event(1, "a.service", "starting", "inactive", "starting"))
    model.offer(event(2, "a.service", "ready", "starting", "active"))
    model.offer(event(2, "a.service", "ready", "starting", "active"))
    assert states(model) == {"a.service": "active"}
    assert model.units["a.service"].last_event == "snap"  # not applied on top of the snapshot
    assert [line.seq for line in model.log] == [1, 2]
    assert model.duplicates == 1


def test_a_status_reply_at_the_applied_seq_is_taken_whole() -> None:
    model = WatchModel()
    model.load_snapshot(snapshot(1, a="starting"))
    model.offer(event(2, "a.service", "restarting", "running", "auto-restart"))
    assert model.units["a.service"].restarts == 1  # counted from the event
    current = snapshot(2, a="auto-restart")
    current["units"]["a.service"].update(restarts=3, main_pid=None, cpu=0.75)
    model.refresh_metrics(current)
    row = model.units["a.service"]
    assert (row.state, row.restarts, row.cpu) == ("auto-restart", 3, 0.75)


def test_a_status_reply_from_another_boot_means_a_new_cinit_run() -> None:
    model = WatchModel()
    model.load_snapshot(snapshot(0, a="inactive"))
    for seq in range(1, 31):
        model.offer(event(seq, "a.service", "starting"))
    # An older reply of the same run is no news...
    model.refresh_metrics(snapshot(12, a="starting"))
    assert not model.needs_snapshot and model.seq == 30
    # ...but no event of a new run came through, and its status answers.
    newer = snapshot(12, b="active")
    newer["boot_time"] = START + 60
    model.refresh_metrics(newer)
    assert model.needs_snapshot and model.seq is None
    model.load_snapshot(newer)
    assert states(model) == {"b.service": "active"} and model.seq == 12


def test_a_timers_next_elapse_and_last_trigger_follow_its_events() -> None:
    model = WatchModel()
    model.load_snapshot(snapshot(0))
    armed = {"next_elapse": START + 60, "next_elapse_iso": "2023-11-14T22:14:20.000+00:00"}
    model.offer(event(1, "t.timer", "ready", "inactive", "active"))
    model.offer(event(2, "t.timer", "timer-armed", service="t.service", **armed))
    row = model.units["t.timer"]
    assert row.next_elapse == START + 60 and row.last_trigger is None
    assert "next 2023-11-14T22:14:20.000+00:00" in model.log[-1].text
    model.offer(event(3, "t.timer", "timer-elapsed", service="t.service", at=START + 60))
    assert row.last_trigger == START + 60
    model.offer(event(4, "t.timer", "stopped", "active", "inactive"))
    assert row.next_elapse is None and row.state == "inactive"
def test_a_daemon_reload_adds_and_removes_rows() -> None:
    model = WatchModel()
    model.load_snapshot(snapshot(3, a="active", b="inactive"))
    model.offer(event(4, "c.service", "unit-added", kind="service", description="new one"))
    model.offer(event(5, "b.service", "unit-removed"))
    model.offer(event(6, "a.service", "unit-changed", description="renamed"))
    assert states(model) == {"a.service": "active", "c.service": "inactive"}
    assert model.units["c.service"].description == "new one"
    assert model.units["a.service"].description == "renamed"
