"""A JSONL boot trace read back into per-unit boot timelines (for `cinit analyze`).

The trace (`CONTAINER_INIT_TRACE=1`) holds one JSON object per event of cinit's stream;
what analysis needs from each is `event`, `unit`, `t_ms` (ms since cinit started), `seq`,
the unit states `old`/`new`, and the `loaded` events' `kind`, `description` and `after`.
Records without `t_ms` fall back on the seed's `t_start_ms + dt_ms`; records without a
unit (cinit-wide phases) only move the end of the trace.

A unit's boot is its first start: from the first time it entered `starting` to the first
time it was up (`active`, or `exited` for a oneshot that finished), else to the first
`failed`; a unit skipped by a condition took no time.

The boot ends at the `boot-settled` event (cinit stamps it once every boot unit settled
and nothing is starting, stopping or waiting to restart). State changes after it and
before shutdown (a socket's service started by its first connection, a later failure)
are kept apart, in `UnitBoot.later`, and count for nothing in the boot's figures. A trace
without that event (container-init's, or a boot that never settled) is boot to the end.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from cinit.machines.vocabulary import BOOT_SETTLED_EVENT, READY_STATES, STATE_OF_EVENT, State


class TraceError(Exception):
    """A trace that cannot be analysed; the message names the file (and line)."""


@dataclass
class UnitBoot:
    """How one unit came up (or did not) during boot; times in ms since cinit started."""

    name: str
    kind: str = ""
    description: str = ""
    after: tuple[str, ...] = ()
    started_ms: float | None = None  # first entered `starting`
    up_ms: float | None = None  # first `active`/`exited` after that
    failed_ms: float | None = None  # first `failed` before it was ever up
    skipped_ms: float | None = None  # condition-skipped without starting
    ended_failed_ms: float | None = None  # first `failed` at all (also after being up)
    # (from_ms, state) for every state change of the boot, in order: the chart draws these.
    changes: list[tuple[float, str]] = field(default_factory=list)
    # (at_ms, state, result) for every change after the boot settled, before shutdown.
    later: list[tuple[float, str, str]] = field(default_factory=list)

    @property
    def outcome(self) -> str:
        """`active`/`exited`, `failed`, `skipped`, `starting` (never got further) or
        `inactive` (never asked to start)."""
        if self.up_ms is not None:
            return self.changes_state_at(self.up_ms)
        if self.failed_ms is not None:
            return "failed"
        if self.skipped_ms is not None:
            return "skipped"
        return "starting" if self.started_ms is not None else "inactive"

    @property
    def settled_ms(self) -> float | None:
        """When its boot ended: up, failed or skipped (None: not during the trace)."""
        for when in (self.up_ms, self.failed_ms, self.skipped_ms):
            if when is not None:
                return when
        return None

    @property
    def took_ms(self) -> float | None:
        """How long it took to come up (or to fail), from `starting`."""
        end = self.up_ms if self.up_ms is not None else self.failed_ms
        if end is None or self.started_ms is None:
            return None
        return max(0.0, end - self.started_ms)

    def changes_state_at(self, when: float) -> str:
        """The state it entered at `when` (the last change at that time)."""
        found = ""
        for at, state in self.changes:
            if at == when:
                found = state
        return found


@dataclass
class BootTrace:
    """Every unit of a trace, and how far the trace goes."""

    path: str
    units: dict[str, UnitBoot]
    end_ms: float  # the last t_ms seen
    records: int
    runs: int = 1  # cinit runs in the file (appended traces); the last one is analysed
    first_line: int = 1  # where the analysed run begins
    settled_ms: float | None = None  # the `boot-settled` event (None: not in the trace)
    shutdown_ms: float | None = None  # the first `shutdown-*` event

    def after_boot(self) -> list[UnitBoot]:
        """Units with state changes after the boot settled, by their first such change."""
        found = [boot for boot in self.units.values() if boot.later]
        return sorted(found, key=lambda boot: (boot.later[0][0], boot.name))


def read_trace(path: str) -> BootTrace:
    """Read and check the trace at `path`; raise TraceError naming file and line."""
    try:
        with open(path, encoding="utf-8") as stream:
            text = stream.read()
    except FileNotFoundError:
        raise TraceError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise TraceError(f"{path}: is a directory, not a trace file") from None
    except UnicodeDecodeError as exc:
        raise TraceError(f"{path}: not UTF-8 text ({exc.reason})") from None
    except OSError as exc:
        raise TraceError(f"{path}: {exc.strerror or exc}") from None
    records: list[tuple[int, dict[str, Any]]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise TraceError(f"{path}:{number}: invalid JSON: {exc}") from None
        if not isinstance(record, dict):
            raise TraceError(f"{path}:{number}: expected a JSON object, got {_kind(record)}")
        records.append((number, record))
    if not records:
        raise TraceError(f"{path}: empty trace (no records)")
    runs = _run_starts(records)
    trace = _timelines(path, records[runs[-1] :])
    trace.runs = len(runs)
    trace.first_line = records[runs[-1]][0]
    return trace


def _run_starts(records: list[tuple[int, dict[str, Any]]]) -> list[int]:
    """Indexes where a cinit run begins: seq starting over means traces were appended."""
    starts = [0]
    previous: int | None = None
    for index, (_, record) in enumerate(records):
        seq = record.get("seq")
        if not isinstance(seq, int) or isinstance(seq, bool):
            continue
        if previous is not None and seq <= previous:
            starts.append(index)
        previous = seq
    return starts


def _timelines(path: str, records: list[tuple[int, dict[str, Any]]]) -> BootTrace:
    units: dict[str, UnitBoot] = {}
    timed: list[tuple[float, int, int, dict[str, Any]]] = []
    for number, record in records:
        when = _time_of(record)
        if when is None:
            raise TraceError(
                f"{path}:{number}: record has no number `t_ms` (nor `t_start_ms` and `dt_ms`)"
            )
        seq = record.get("seq")
        order = seq if isinstance(seq, int) and not isinstance(seq, bool) else number
        timed.append((when, order, number, record))
    # Stream order is seq order (file order when some record has no seq).
    by_seq = _all_have_seq(records)
    timed.sort(key=lambda item: (item[1], item[2]) if by_seq else item[2])
    end_ms = 0.0
    settled_ms = shutdown_ms = None
    for when, _, number, record in timed:
        end_ms = max(end_ms, when)
        unit = record.get("unit")
        if unit is None or unit == "":
            event = str(record.get("event") or record.get("phase") or "")
            if event.startswith("shutdown-") and shutdown_ms is None:
                shutdown_ms = when
            elif event == BOOT_SETTLED_EVENT and settled_ms is None and shutdown_ms is None:
                settled_ms = when
            continue
        if not isinstance(unit, str):
            raise TraceError(f"{path}:{number}: `unit` must be a string, got {_kind(unit)}")
        boot = units.get(unit)
        if boot is None:
            boot = units[unit] = UnitBoot(unit)
        _take(boot, record, when, _stretch(when, settled_ms, shutdown_ms))
    if not units:
        raise TraceError(f"{path}: no unit events in the trace ({len(records)} records)")
    trace = BootTrace(path, units, end_ms, len(records))
    trace.settled_ms, trace.shutdown_ms = settled_ms, shutdown_ms
    return trace


def _stretch(when: float, settled_ms: float | None, shutdown_ms: float | None) -> str:
    """`boot`, `after` (the boot settled, no shutdown yet) or `shutdown`."""
    if settled_ms is None or when <= settled_ms:
        return "boot"
    if shutdown_ms is None or when < shutdown_ms:
        return "after"
    return "shutdown"


def _take(boot: UnitBoot, record: dict[str, Any], when: float, stretch: str) -> None:
    event = record.get("event")
    if event == "loaded":
        boot.kind = str(record.get("kind") or boot.kind)
        boot.description = str(record.get("description") or boot.description)
        after = record.get("after")
        if isinstance(after, list):
            boot.after = tuple(str(name) for name in after)
    new = record.get("new")
    # Records without `new` (the contract's mapping) name the state by their event.
    state = new if isinstance(new, str) and new else STATE_OF_EVENT.get(str(event))
    if state is None:
        return
    if stretch == "after":
        boot.later.append((when, state, str(record.get("result") or "")))
        return
    if stretch == "shutdown":
        return  # the chart ends with the boot; the stop is not part of it
    boot.changes.append((when, state))
    if state == State.FAILED and boot.ended_failed_ms is None:
        boot.ended_failed_ms = when
    if state == State.STARTING and boot.started_ms is None:
        boot.started_ms = when
    elif state in READY_STATES and boot.up_ms is None and boot.started_ms is not None:
        boot.up_ms = when
    elif state == State.FAILED and boot.up_ms is None and boot.failed_ms is None:
        boot.failed_ms = when
    elif state == State.CONDITION_SKIPPED and boot.started_ms is None and boot.skipped_ms is None:
        boot.skipped_ms = when


def _time_of(record: dict[str, Any]) -> float | None:
    t_ms = _number(record.get("t_ms"))
    if t_ms is not None:
        return t_ms
    start, took = _number(record.get("t_start_ms")), _number(record.get("dt_ms"))
    if start is not None and took is not None:
        return start + took
    return None


def _all_have_seq(records: list[tuple[int, dict[str, Any]]]) -> bool:
    return all(isinstance(record.get("seq"), int) for _, record in records)


def _number(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def _kind(value: object) -> str:
    return {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )
