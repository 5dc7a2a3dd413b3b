"""The JSONL boot trace, container-init compatible (`CONTAINER_INIT_TRACE=1`).

One line per event of the stream (same `seq`, same fields) plus the seed's keys: `phase`,
`t_start_ms` (when that phase began, ms since cinit started) and `dt_ms` (the phase's own
duration, not the time since boot). `CONTAINER_INIT_TRACE_LABELS="<unit>:<label>,..."` adds a
`mem_snapshot` (RSS of cinit and of each unit's processes, via psutil) to the record of
the moment `<unit>` comes up (ready, or exited for a oneshot).

Only the pump thread writes here. Each batch of events is flushed once, so a reader sees
whole lines; a write error is logged once and tracing stops (PID 1 never dies of it).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from typing import IO, Any

from cinit.io.log import log

TRACE_LABELS_ENV = "CONTAINER_INIT_TRACE_LABELS"
UP_EVENTS = frozenset({"ready", "exited"})


def parse_labels(text: str) -> dict[str, str]:
    """`web:warm,db.service:db-up` -> {"web.service": "warm", "db.service": "db-up"};
    malformed items are logged and skipped."""
    labels: dict[str, str] = {}
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        unit, sep, label = item.rpartition(":")
        if not sep or not unit or not label:
            log(f"{TRACE_LABELS_ENV}: ignoring {item!r} (expected <unit>:<label>)")
            continue
        if "." not in unit:
            unit += ".service"
        labels[unit] = label
    return labels


def phase_of(event: dict[str, Any]) -> str:
    """The seed's `phase`: `<unit>:<old state>` for a state change, else the event name."""
    if event["event"] == "overridden":
        return "unit_overridden"
    if event["event"] == "loaded":
        return "load"
    old, unit = event.get("old"), event.get("unit")
    if old is not None and unit:
        return f"{unit}:{old}"
    return str(event["event"])


class TraceWriter:
    """Appends trace records to one file (truncated when cinit starts)."""

    def __init__(self, path: str, labels: dict[str, str], snapshot: Callable[[], Any]) -> None:
        self.path = path
        self.labels = labels
        self.snapshot = snapshot  # () -> {"cinit_rss": int, "units": {name: int}}
        self._file: IO[str] | None = None
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
            self._file = os.fdopen(fd, "w", encoding="utf-8")
        except OSError as exc:
            log(f"cannot write the trace {path}: {exc}; tracing is off")

    def write(self, event: dict[str, Any], t_start_ms: float) -> None:
        if self._file is None:
            return
        record = dict(event)
        record["phase"] = phase_of(event)
        record["t_start_ms"] = round(t_start_ms, 3)
        # A load record's phase is the whole load; any other phase ends with its event.
        duration = event.get("load_ms", float(event["t_ms"]) - t_start_ms)
        record["dt_ms"] = round(float(duration), 3)
        label = self.labels.get(event.get("unit") or "")
        if label is not None and event["event"] in UP_EVENTS:
            snap = self.snapshot()
            if snap is not None:
                record["mem_snapshot"] = {**snap, "label": label}
        try:
            self._file.write(json.dumps(record, default=str) + "\n")
        except (OSError, ValueError) as exc:
            self._fail(exc)

    def flush(self) -> None:
        if self._file is None:
            return
        try:
            self._file.flush()
        except (OSError, ValueError) as exc:
            self._fail(exc)

    def close(self) -> None:
        self.flush()
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None

    def _fail(self, exc: Exception) -> None:
        log(f"cannot write the trace {self.path}: {exc}; tracing stops")
        try:
            if self._file is not None:
                self._file.close()
        except OSError:
            pass
        self._file = None
