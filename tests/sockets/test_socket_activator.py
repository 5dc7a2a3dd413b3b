"""`SocketActivator`'s decisions with real listeners, a fake poller and a recording supervisor:
triggering, polling stopped and resumed around the service, the trigger limit, stopping."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cinit.actors.socket_activator import (
    ListenerReadable,
    ServiceDown,
    ServiceUp,
    SocketActivator,
    SocketFailed,
    SocketStopped,
    SocketSupport,
    SocketTriggered,
    StopSocket,
)
from cinit.actors.unit import UnitReport
from cinit.io.sockets import ListenerRegistry, bind_socket_unit
from cinit.machines.restart import Result
from cinit.machines.unit_events import Notice, Transition
from cinit.units.addresses import parse_listen_address
from cinit.units.model import ServiceSection, SocketSection, Unit, UnitKind

pytestmark = pytest.mark.timeout(30)


class FakePoller:
    """Records what the activator asks of the poller (readiness is sent by the test)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    def watch(self, fd: int, target: Any, message: Any, armed: bool = True) -> None:
        self.calls.append(("watch", fd))

    def rearm(self, fd: int) -> None:
        self.calls.append(("rearm", fd))

    def disarm(self, fd: int) -> None:
        self.calls.append(("disarm", fd))

    def forget(self, fd: int) -> None:
        self.calls.append(("forget", fd))


class Recorder:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    def tell(self, message: Any) -> None:
        self.messages.append(message)

    def of(self, kind: type) -> list[Any]:
        return [m for m in self.messages if isinstance(m, kind)]

    def reported(self, kind: type) -> list[Any]:
        return [m.item for m in self.of(UnitReport) if isinstance(m.item, kind)]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Harness:
    def __init__(self, path: Path, **socket_options: Any) -> None:
        section = SocketSection(
            listen_stream=(parse_listen_address(str(path)),),
            file_descriptor_name="app.socket",
            service="app.service",
            **socket_options,
        )
        self.unit = Unit("app.socket", "/x/app.socket", UnitKind.SOCKET, socket=section)
        self.service = Unit(
            "app.service", "/x/app.service", UnitKind.SERVICE, service=ServiceSection()
        )
        self.listeners = bind_socket_unit(self.unit)
        self.fd = self.listeners[0].fileno()
        self.poller = FakePoller()
        self.registry = ListenerRegistry()
        support = SocketSupport(None, self.registry, self.poller)  # type: ignore[arg-type]
        self.supervisor = Recorder()
        self.clock = Clock()
        self.ref = SocketActivator.start(
            self.unit, self.service, self.listeners, support, self.supervisor, Recorder(),
            clock=self.clock,
        )  # fmt: skip

    def send(self, message: Any) -> None:
        self.ref.ask(message)  # returns once the actor handled it


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Callable[..., Harness]]:
    created: list[Harness] = []

    def make(**options: Any) -> Harness:
        created.append(Harness(tmp_path / f"app{len(created)}.sock", **options))
        return created[-1]

    yield make
    for item in created:
        item.ref.stop()
        for listener in item.listeners:
            listener.sock.close()


def test_a_readable_listener_triggers_once_and_polling_resumes_when_the_service_ends(
    harness: Any,
) -> None:
    h = harness()
    assert h.registry.fds_for("app.service") == ((h.fd,), ("app.socket",))
    h.send(ListenerReadable(h.fd))
    h.send(ListenerReadable(h.fd))  # stale: the service has the listener now
    assert [(m.socket, m.service) for m in h.supervisor.of(SocketTriggered)] == [
        ("app.socket", "app.service")
    ]
    assert h.poller.calls == [("watch", h.fd), ("disarm", h.fd)]
    notices = h.supervisor.reported(Notice)
    assert [n.event for n in notices] == ["socket-triggered"]
    assert notices[0].fields["listener"] == str(h.listeners[0].address.path)
    h.send(ServiceDown(restarting=True))  # auto-restart: the next run takes them again
    assert h.poller.calls[-1] == ("disarm", h.fd)
    h.send(ServiceDown())
    assert h.poller.calls[-1] == ("rearm", h.fd)
    h.send(ListenerReadable(h.fd))
    assert len(h.supervisor.of(SocketTriggered)) == 2


def test_service_started_another_way_stops_the_polling(harness: Any) -> None:
    h = harness()
    h.send(ServiceUp())
    assert h.poller.calls[-1] == ("disarm", h.fd)
    h.send(ListenerReadable(h.fd))
    assert not h.supervisor.of(SocketTriggered)


def test_more_than_burst_triggers_within_the_interval_fail_the_socket(harness: Any) -> None:
    h = harness(trigger_limit_burst=3, trigger_limit_interval_sec=2.0)
    for _ in range(3):
        h.send(ListenerReadable(h.fd))
        h.clock.now += 0.5
        h.send(ServiceDown())
    assert len(h.supervisor.of(SocketTriggered)) == 3
    h.send(ListenerReadable(h.fd))  # the 4th within 2 s
    assert len(h.supervisor.of(SocketTriggered)) == 3
    [failed] = h.supervisor.of(SocketFailed)
    assert failed.result is Result.TRIGGER_LIMIT_HIT and not failed.stop_service
    [notice] = [n for n in h.supervisor.reported(Notice) if n.event == "socket-failed"]
    assert notice.fields["result"] == "trigger-limit-hit"
    assert h.supervisor.reported(Transition)[-1].new.value == "failed"
    assert h.registry.fds_for("app.service") == ((), ())
    assert ("forget", h.fd) in h.poller.calls
    assert h.listeners[0].sock.fileno() == -1  # cinit's copy closed


def test_triggers_spread_over_more_than_the_interval_are_fine(harness: Any) -> None:
    h = harness(trigger_limit_burst=2, trigger_limit_interval_sec=1.0)
    for _ in range(6):
        h.send(ListenerReadable(h.fd))
        h.clock.now += 0.6
        h.send(ServiceDown())
    assert len(h.supervisor.of(SocketTriggered)) == 6
    assert not h.supervisor.of(SocketFailed)


def test_stop_closes_removes_the_node_and_reports(harness: Any, tmp_path: Path) -> None:
    h = harness(remove_on_stop=True)
    path = Path(h.listeners[0].address.path)
    assert path.exists()
    h.send(StopSocket())
    assert [m.socket for m in h.supervisor.of(SocketStopped)] == ["app.socket"]
    assert not path.exists()
    states = [(t.old.value, t.new.value) for t in h.supervisor.reported(Transition)]
    assert states == [("active", "stopping"), ("stopping", "inactive")]
    with pytest.raises(OSError):
        socket.socket(socket.AF_UNIX).connect(str(path))
