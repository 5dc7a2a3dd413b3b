"""The hub's `boot-settled` event: once, after the change that ended the boot.

The boot is over when no unit is on its way (waiting, starting, running, stopping) or
waiting to restart; `cinit analyze` counts what comes after it as after boot. Events are
stamped by a real `EventHub`, without processes or sockets.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from cinit.events.hub import EventHub
from cinit.machines.unit_events import Transition
from cinit.machines.unit_model import State

pytestmark = pytest.mark.timeout(30)


def _names(hub: EventHub) -> list[tuple[str | None, str]]:
    return [(event["unit"], event["event"]) for event in hub.take()]


def test_boot_settled_once_after_the_last_change_and_not_while_a_unit_restarts(
    tmp_path: Path,
) -> None:
    hub = EventHub(started_mono=time.monotonic(), runtime_dir=str(tmp_path / "run"))
    steps = [
        ("a.service", State.INACTIVE, State.STARTING),
        ("a.service", State.STARTING, State.AUTO_RESTART),  # not settled: it comes back
        ("a.service", State.AUTO_RESTART, State.STARTING),
        ("a.service", State.STARTING, State.ACTIVE),  # the boot is over here
        ("b.service", State.INACTIVE, State.STARTING),  # later activity: no second settle
        ("b.service", State.STARTING, State.FAILED),
    ]
    for unit, old, new in steps:
        hub.tell(Transition(unit, old, new, "because"))
    names = _names(hub)
    assert names.count((None, "boot-settled")) == 1
    assert names.index((None, "boot-settled")) == names.index(("a.service", "ready")) + 1
    hub.close()


def test_a_boot_cut_short_by_a_stop_never_settles(tmp_path: Path) -> None:
    hub = EventHub(started_mono=time.monotonic(), runtime_dir=str(tmp_path / "run"))
    hub.tell(Transition("a.service", State.INACTIVE, State.STARTING, "because"))
    hub.emit("shutdown-started", None)
    hub.tell(Transition("a.service", State.STARTING, State.INACTIVE, "because"))
    assert (None, "boot-settled") not in _names(hub)
    hub.close()
