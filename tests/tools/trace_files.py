"""Boot traces written the way the contract describes them, for `cinit analyze` tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

START = 1_700_000_000.0


class TraceWriter:
    """Builds trace records in seq order: `loaded` per unit, then state changes."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self._state: dict[str, tuple[str, float]] = {}

    def _record(self, t_ms: float, unit: str | None, event: str, **fields: Any) -> None:
        record = {
            "seq": len(self.records) + 1,
            "time": START + t_ms / 1000,
            "mono": 100 + t_ms / 1000,
            "t_ms": t_ms,
            "unit": unit,
            "event": event,
            **fields,
        }
        self.records.append(record)

    def cinit(self, t_ms: float, event: str) -> TraceWriter:
        self._record(t_ms, None, event, phase=event, t_start_ms=t_ms, dt_ms=0.0)
        return self

    def loaded(
        self, t_ms: float, unit: str, after: tuple[str, ...] = (), kind: str = "service"
    ) -> TraceWriter:
        self._state[unit] = ("inactive", t_ms)
        self._record(
            t_ms,
            unit,
            "loaded",
            kind=kind,
            description=f"the {unit}",
            after=list(after),
            requires=[],
            wants=[],
            source="core",
            path=f"/etc/container-init/units/{unit}",
            phase="load",
            t_start_ms=t_ms,
            dt_ms=0.0,
        )
        return self

    def change(self, t_ms: float, unit: str, event: str, new: str, **fields: Any) -> TraceWriter:
        old, since = self._state[unit]
        self._state[unit] = (new, t_ms)
        self._record(
            t_ms,
            unit,
            event,
            old=old,
            new=new,
            phase=f"{unit}:{old}",
            t_start_ms=since,
            dt_ms=t_ms - since,
            **fields,
        )
        return self

    def service(self, unit: str, start: float, started: float, ready: float) -> TraceWriter:
        """waiting -> starting -> running -> active."""
        self.change(start, unit, "waiting", "waiting")
        self.change(start, unit, "starting", "starting")
        self.change(started, unit, "started", "running", pid=100 + len(self.records))
        return self.change(ready, unit, "ready", "active")

    def write(self, path: Path) -> Path:
        records = sorted(self.records, key=lambda record: record["seq"])
        path.write_text("".join(json.dumps(record) + "\n" for record in records))
        return path


def sample_boot() -> TraceWriter:
    """base (oneshot, 120 ms) -> db (notify, 400 ms) -> web (300 ms) -> probe (oneshot);
    cache (fast, after base); flaky fails; optional is skipped; worker restarts once."""
    trace = TraceWriter().cinit(1.0, "load")
    for unit, after in (
        ("base.service", ()),
        ("db.service", ("base.service",)),
        ("cache.service", ("base.service",)),
        ("web.service", ("db.service", "cache.service")),
        ("probe.service", ("web.service",)),
        ("flaky.service", ()),
        ("optional.service", ()),
        ("worker.service", ("base.service",)),
    ):
        trace.loaded(2.0, unit, after)
    trace.change(5, "base.service", "waiting", "waiting")
    trace.change(5, "base.service", "starting", "starting")
    trace.change(6, "base.service", "started", "running", pid=11)
    trace.change(125, "base.service", "exited", "exited", code=0)
    trace.change(5, "flaky.service", "starting", "starting")
    trace.change(7, "flaky.service", "started", "running", pid=12)
    trace.change(60, "flaky.service", "failed", "failed", result="exit-code", code=1)
    trace.change(
        6, "optional.service", "skipped", "condition-skipped", reason="ConditionPathExists=/nope"
    )
    trace.service("db.service", 126, 128, 526)
    trace.service("cache.service", 126, 127, 180)
    trace.change(126, "worker.service", "starting", "starting")
    trace.change(127, "worker.service", "started", "running", pid=13)
    trace.change(150, "worker.service", "restarting", "auto-restart", restarts=1)
    trace.change(250, "worker.service", "starting", "starting")
    trace.change(251, "worker.service", "started", "running", pid=14)
    trace.change(300, "worker.service", "ready", "active")
    trace.service("web.service", 527, 529, 830)
    trace.change(831, "probe.service", "starting", "starting")
    trace.change(832, "probe.service", "started", "running", pid=15)
    trace.change(845, "probe.service", "exited", "exited", code=0)
    trace.cinit(846, "boot-finished")
    return trace
