"""What the supervisor's and the first wave's tests share: unit sets from text, a root that
records what it is told, and unit-file snippets for the fake world (tests/actors/fake_io.py)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from cinit.machines import lifecycle as lc
from cinit.units import build_graph, parse_unit
from cinit.units.loader import UnitSet


def unit_set(units: dict[str, str]) -> UnitSet:
    parsed = {}
    for name, text in units.items():
        unit, diagnostics = parse_unit(name, text, environ={}, hostname="host")
        assert unit is not None, diagnostics
        parsed[name] = unit
    return UnitSet(units=parsed, graph=build_graph(parsed))


@dataclass
class RecordingRoot:
    """Stands in for the root actor: records what the supervisor tells it."""

    messages: list[Any] = field(default_factory=list)
    stopped: threading.Event = field(default_factory=threading.Event)

    def tell(self, message: Any) -> None:
        self.messages.append(message)
        if isinstance(message, lc.UnitsStopped):
            self.stopped.set()

    def exits(self) -> list[lc.ExitRequested]:
        return [m for m in self.messages if isinstance(m, lc.ExitRequested)]


def svc(exec_start: str, *, unit: str = "", service: str = "") -> str:
    return f"[Unit]\n{unit}\n[Service]\nExecStart={exec_start}\n{service}\n"


def notify(ms: int, *, unit: str = "", service: str = "") -> str:
    return svc(f"/fake notify {ms}", unit=unit, service=f"Type=notify\n{service}")
