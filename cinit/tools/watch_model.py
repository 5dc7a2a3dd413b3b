"""What `cinit watch` shows, as a pure model: a status snapshot plus the events after it.

The stream and the snapshot meet by `seq` (see the events contract): the watcher
subscribes first, then asks for a snapshot whose reply says which `seq` it reflects, and
applies exactly the events after that one, in order, each once. This module holds that
bookkeeping without any I/O, so gaps, duplicates and reordering are unit-tested with
synthetic sequences:

* before the first snapshot every event is held back (`pending`);
* `load_snapshot` replaces the unit rows and applies the held events with a higher seq;
* an event with the next seq is applied; one with a seq already covered is a duplicate
  and ignored; one further ahead waits in `pending` and marks a gap: `needs_snapshot`
  says the caller should fetch a fresh snapshot, which fills it;
* an `events-dropped` event also asks for a fresh snapshot (cinit lost events itself);
* an event that seems old but belongs to another cinit run (its start time differs)
  means cinit restarted: the model starts over from a new snapshot.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

from cinit.machines.vocabulary import (
    NO_PROCESS_STATES,
    TIMER_ARMED_EVENT,
    TIMER_ELAPSED_EVENT,
    TIMER_SKIPPED_EVENT,
    UNIT_ADDED_EVENT,
    UNIT_CHANGED_EVENT,
    UNIT_REMOVED_EVENT,
    State,
)

# Two events of one cinit run agree on `time - t_ms/1000` (cinit's start, wall clock) to
# well within this many seconds; a bigger difference means another run.
_SAME_RUN_TOLERANCE_S = 1.0


@dataclass
class UnitRow:
    """One unit's line in the view."""

    name: str
    state: str = State.INACTIVE.value
    description: str = ""
    kind: str = ""
    main_pid: int | None = None
    since: float | None = None  # wall-clock time of the last state change
    restarts: int = 0
    cpu: float | None = None  # seconds of CPU used
    memory: int | None = None  # RSS bytes
    result: str = ""
    last_event: str = ""
    next_elapse: float | None = None  # a timer's next elapse, epoch seconds (issue 17)
    last_trigger: float | None = None  # a timer's last elapse, epoch seconds


@dataclass(frozen=True)
class EventLine:
    """One line of the event pane."""

    seq: int | None
    time: float | None
    unit: str | None
    text: str


class WatchModel:
    """Unit rows and an event log, kept consistent with cinit by `seq`."""

    def __init__(self, history: int = 500, max_pending: int = 10_000) -> None:
        self.units: dict[str, UnitRow] = {}
        self.log: deque[EventLine] = deque(maxlen=history)
        self.seq: int | None = None  # last seq reflected; None: no snapshot yet
        self.boot_time: float | None = None
        self.needs_snapshot = True
        self.resyncs = 0  # fresh snapshots taken because of a gap or a drop
        self.duplicates = 0
        self._pending: dict[int, dict[str, Any]] = {}
        self._max_pending = max_pending
        self._run_start: float | None = None
        self._reply_seq: int | None = None  # seq of the last periodic status reply
        self._logged_seq = 0  # highest seq shown in the event pane

    # ---- input ---------------------------------------------------------------------------

    def offer(self, event: dict[str, Any]) -> None:
        """Take one event from the stream (in whatever order it came)."""
        seq = event.get("seq")
        if not isinstance(seq, int) or isinstance(seq, bool):
            return  # not an event of the contract: nothing to order it by
        if self.seq is not None and seq <= self.seq:
            if self._from_another_run(event):
                self._restart(event)
            elif seq > self._logged_seq:
                # Covered by the snapshot, which overtook it: shown, not applied again.
                self._log(event)
            else:
                self.duplicates += 1
            return
        if len(self._pending) >= self._max_pending:
            # Nobody answers snapshots and events pile up: keep the newest, a snapshot
            # will cover the rest anyway.
            self._pending.pop(min(self._pending))
            self.needs_snapshot = True
        self._pending[seq] = event
        self._drain()

    def load_snapshot(self, reply: dict[str, Any]) -> None:
        """Replace the rows with a status reply (`seq`, `units`, `boot_time`), then apply
        the held events that come after it."""
        seq = reply.get("seq")
        units = reply.get("units")
        if not isinstance(seq, int) or not isinstance(units, dict):
            return
        resync = self.seq is not None and self.needs_snapshot
        self._take_rows(reply)
        if resync:
            self.resyncs += 1
            self.log.append(EventLine(None, None, None, f"resynchronised at seq {seq}"))
        self.seq = seq
        self._reply_seq = seq
        self.needs_snapshot = False
        for covered in sorted(s for s in self._pending if s <= seq):
            # Already reflected in the snapshot: shown in the pane, not applied again.
            self._log(self._pending.pop(covered))
        self._drain()

    def _take_rows(self, reply: dict[str, Any]) -> None:
        units = reply.get("units")
        self.units = {}
        for name, status in units.items() if isinstance(units, dict) else ():
            if isinstance(status, dict):
                self.units[str(name)] = _row_from_status(str(name), status)
        boot_time = reply.get("boot_time")
        self.boot_time = float(boot_time) if isinstance(boot_time, int | float) else None

    def note(self, text: str) -> None:
        """A line of the watcher's own in the event pane (lost contact, and so on)."""
        self.log.append(EventLine(None, None, None, text))

    def refresh_metrics(self, reply: dict[str, Any]) -> None:
        """Take only CPU and memory from a periodic status reply (states come from events).

        The reply's seq also tells whether events go missing at the tail, where no later
        event reveals a gap (a subscription not yet through, a lost connection): when the
        events have not caught up with the previous reply's seq by this one, the model
        asks for a fresh snapshot.
        """
        seq = reply.get("seq")
        boot_time = _number(reply.get("boot_time"))
        if (
            boot_time is not None
            and self.boot_time is not None
            and abs(boot_time - self.boot_time) > _SAME_RUN_TOLERANCE_S
        ):
            self._start_over()  # another cinit run answers (its events never came through)
            return
        if isinstance(seq, int) and self.seq is not None:
            if self._reply_seq is not None and self.seq < self._reply_seq:
                self.needs_snapshot = True
            self._reply_seq = seq
            if seq == self.seq and not self._pending:
                # The reply reflects exactly the events applied: all of it holds (pids,
                # restart counts), so take it whole.
                self._take_rows(reply)
                return
        units = reply.get("units")
        if not isinstance(units, dict):
            return
        for name, status in units.items():
            row = self.units.get(str(name))
            if row is not None and isinstance(status, dict):
                row.cpu = _number(status.get("cpu"))
                memory = status.get("memory")
                row.memory = memory if isinstance(memory, int) else None

    @property
    def pending(self) -> int:
        """How many events wait for an earlier seq or for a snapshot."""
        return len(self._pending)

    # ---- internals -----------------------------------------------------------------------

    def _drain(self) -> None:
        if self.seq is None:
            return
        while self.seq + 1 in self._pending:
            self.seq += 1
            self._apply(self._pending.pop(self.seq))
        if self._pending:
            self.needs_snapshot = True  # something after a hole: only a snapshot fills it

    def _from_another_run(self, event: dict[str, Any]) -> bool:
        start = _run_start(event)
        if start is None or self._run_start is None:
            return False
        return abs(start - self._run_start) > _SAME_RUN_TOLERANCE_S

    def _restart(self, event: dict[str, Any]) -> None:
        self._start_over()
        self.offer(event)

    def _start_over(self) -> None:
        """cinit restarted: its seqs begin again; only a new snapshot tells where we are."""
        self.log.append(EventLine(None, None, None, "cinit restarted: taking a new snapshot"))
        self.seq = None
        self._run_start = None
        self._reply_seq = None
        self._logged_seq = 0
        self._pending = {}
        self.needs_snapshot = True

    def _apply(self, event: dict[str, Any]) -> None:
        name = event.get("event")
        name = name if isinstance(name, str) else "?"
        unit = event.get("unit")
        when = _number(event.get("time"))
        if isinstance(unit, str) and unit and name == UNIT_REMOVED_EVENT:
            self.units.pop(unit, None)  # a daemon-reload removed it (and it is at rest)
        elif isinstance(unit, str) and unit:
            row = self.units.get(unit)
            if row is None:
                row = self.units[unit] = UnitRow(unit)
            _update_row(row, name, event, when)
        self._log(event)
        if name == "events-dropped":
            self.needs_snapshot = True

    def _log(self, event: dict[str, Any]) -> None:
        if self._run_start is None:
            self._run_start = _run_start(event)
        seq = event.get("seq")
        if isinstance(seq, int):
            self._logged_seq = max(self._logged_seq, seq)
        unit = event.get("unit")
        self.log.append(
            EventLine(
                event.get("seq"),
                _number(event.get("time")),
                unit if isinstance(unit, str) else None,
                describe(event),
            )
        )


def _update_row(row: UnitRow, name: str, event: dict[str, Any], when: float | None) -> None:
    new = event.get("new")
    if isinstance(new, str) and new:
        row.state = new
        row.since = when if when is not None else row.since
        if new in NO_PROCESS_STATES:
            row.main_pid = None
    pid = event.get("pid")
    if isinstance(pid, int) and not isinstance(pid, bool) and row.state not in NO_PROCESS_STATES:
        row.main_pid = pid
    restarts = event.get("restarts")
    if isinstance(restarts, int) and not isinstance(restarts, bool):
        row.restarts = restarts
    elif new == State.AUTO_RESTART:
        row.restarts += 1  # the event does not say: count it
    result = event.get("result")
    if isinstance(result, str):
        row.result = result
    if name == TIMER_ARMED_EVENT:
        row.next_elapse = _number(event.get("next_elapse"))
    elif name in (TIMER_ELAPSED_EVENT, TIMER_SKIPPED_EVENT):
        row.last_trigger = _number(event.get("at"))
    elif new == State.INACTIVE and row.next_elapse is not None:
        row.next_elapse = None  # a stopped timer is disarmed
    if name in ("loaded", UNIT_ADDED_EVENT, UNIT_CHANGED_EVENT):
        row.description = str(event.get("description") or row.description)
        row.kind = str(event.get("kind") or row.kind)
    row.last_event = name


def describe(event: dict[str, Any]) -> str:
    """One line for an event: `unit: event old -> new (details)`."""
    name = str(event.get("event", "?"))
    unit = event.get("unit")
    head = f"{unit}: {name}" if unit else name
    old, new = event.get("old"), event.get("new")
    if old or new:
        head += f" {old or '?'} -> {new or '?'}"
    details = []
    for key in ("pid", "code", "signal", "result", "restarts", "count"):
        value = event.get(key)
        if value is None or value == "" or (key == "result" and value == "success"):
            continue  # success is the usual result: only a failure's is worth a mention
        details.append(f"{key}={value}")
    reason = event.get("reason")
    if reason:
        details.append(str(reason))
    if event.get("next_elapse_iso"):  # timer-armed
        details.append(f"next {event['next_elapse_iso']}")
    return f"{head} ({', '.join(details)})" if details else head


def _row_from_status(name: str, status: dict[str, Any]) -> UnitRow:
    pid = status.get("main_pid")
    restarts = status.get("restarts")
    memory = status.get("memory")
    return UnitRow(
        name=name,
        state=str(status.get("state") or State.INACTIVE.value),
        description=str(status.get("description") or ""),
        kind=str(status.get("kind") or ""),
        main_pid=pid if isinstance(pid, int) and not isinstance(pid, bool) else None,
        since=_number(status.get("since")),
        restarts=restarts if isinstance(restarts, int) else 0,
        cpu=_number(status.get("cpu")),
        memory=memory if isinstance(memory, int) else None,
        result=str(status.get("result") or ""),
        last_event=str(status.get("last_event") or ""),
        next_elapse=_number(status.get("next_elapse")),
        last_trigger=_number(status.get("last_trigger")),
    )


def _number(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def _run_start(event: dict[str, Any]) -> float | None:
    """cinit's start on the wall clock, as this event tells it."""
    wall, since_start = _number(event.get("time")), _number(event.get("t_ms"))
    if wall is None or since_start is None:
        return None
    return wall - since_start / 1000.0


class SeqFilter:
    """Each event once, in stream order, without a snapshot (for `cinit watch --json`).

    `accept` says whether to pass an event on and which seqs (first, last) went missing
    just before it, if any; a seq at or below the last one is a duplicate unless the event
    comes from a new cinit run.
    """

    def __init__(self) -> None:
        self.seq: int | None = None
        self._run_start: float | None = None

    def accept(self, event: dict[str, Any]) -> tuple[bool, tuple[int, int] | None]:
        seq = event.get("seq")
        if not isinstance(seq, int) or isinstance(seq, bool):
            return False, None
        start = _run_start(event)
        new_run = (
            start is not None
            and self._run_start is not None
            and abs(start - self._run_start) > _SAME_RUN_TOLERANCE_S
        )
        if new_run:
            self.seq = None
        elif self.seq is not None and seq <= self.seq:
            return False, None
        missed = (self.seq + 1, seq - 1) if self.seq is not None and seq > self.seq + 1 else None
        self.seq = seq
        if start is not None and (self._run_start is None or new_run):
            self._run_start = start
        return True, missed
