"""`SocketActivator` with real listeners, a fake poller and a recording supervisor:
triggering, polling stopped and resumed around the service, the trigger limit, stopping,
and Accept=yes instances run as units (their own UnitActor, a fake io)."""

from __future__ import annotations

import itertools
import signal
import socket
import time
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
from cinit.io.reaper import ProcessExit
from cinit.io.sockets import ListenerRegistry, bind_socket_unit
from cinit.machines.restart import Result
from cinit.machines.unit_events import Notice, Transition
from cinit.machines.unit_model import Role
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


class FakeInstanceIO:
    """An instance's io without processes: `spawn` records the connection it was given;
    any signal but SIGCONT ends the process (its exit told to the instance's slot)."""

    pids = itertools.count(700)

    def __init__(self, unit: Unit, owner: Any, spawned: list[tuple[str, int]]) -> None:
        self.unit = unit
        self.owner = owner
        self.spawned = spawned
        self.live: set[int] = set()
        self.connection: tuple[int, dict[str, str]] | None = None

    def say(self, text: str) -> None:
        pass

    def unmet_condition(self) -> str | None:
        return None

    def failed_assertion(self) -> str | None:
        return None

    def spawn(self, role: Role, index: int, main_pid: int | None) -> int:
        assert role is Role.START and index == 0 and self.connection is not None
        pid = next(self.pids)
        self.spawned.append((self.unit.name, self.connection[0]))
        self.live.add(pid)
        return pid

    def take_exit(self, message: ProcessExit) -> bool:
        return message.pid in self.live and not self.live.discard(message.pid)

    def pending_exits(self) -> list[ProcessExit]:
        return []

    def signal_unit(self, signo: int) -> None:
        if signo != signal.SIGCONT:
            for pid in list(self.live):
                self.owner.tell(ProcessExit(pid, self.unit.name, None, signo, False))

    def kill_unit(self) -> None:
        self.signal_unit(signal.SIGKILL)

    def signal_main(self, pid: int, signo: int) -> None:
        self.signal_unit(signo)

    def unit_empty(self) -> bool:
        return not self.live

    def discard_prepared(self) -> None:
        pass


class FakeSupport(SocketSupport):
    def __init__(self, registry: ListenerRegistry, poller: FakePoller) -> None:
        super().__init__(None, registry, poller)  # type: ignore[arg-type]
        self.spawned: list[tuple[str, int]] = []

    def instance_io(self, unit: Unit, owner: Any) -> Any:
        return FakeInstanceIO(unit, owner, self.spawned)


class Timers:
    """A scheduler that never fires (instances here need no timer to end)."""

    def call_later(self, delay: float, target: Any, message: object) -> object:
        return object()

    def cancel(self, timer: Any) -> bool:
        return True


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, f"waited 10 s for {what}"
        time.sleep(0.01)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def parse_unit_exec(command: str) -> Any:
    from cinit.units import parse_unit

    unit, _ = parse_unit("t.service", f"[Service]\nExecStart={command}\n", environ={}, hostname="h")
    assert unit is not None and unit.service is not None
    return unit.service.exec_start


class Harness:
    def __init__(self, path: Path, **socket_options: Any) -> None:
        section = SocketSection(
            listen_stream=(parse_listen_address(str(path)),),
            file_descriptor_name="app.socket",
            service="app.service",
            **socket_options,
        )
        self.unit = Unit("app.socket", "/x/app.socket", UnitKind.SOCKET, socket=section)
        exec_start = parse_unit_exec("/bin/serve")
        self.service = Unit(
            "app.service", "/x/app.service", UnitKind.SERVICE,
            service=ServiceSection(exec_start=exec_start),
        )  # fmt: skip
        self.listeners = bind_socket_unit(self.unit)
        self.fd = self.listeners[0].fileno()
        self.poller = FakePoller()
        self.registry = ListenerRegistry()
        self.support = FakeSupport(self.registry, self.poller)
        self.supervisor = Recorder()
        self.clock = Clock()
        self.ref = SocketActivator.start(
            self.unit, self.service, self.listeners, self.support, self.supervisor, Timers(),
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


def test_accept_yes_instances_are_units_that_the_stop_ends(harness: Any) -> None:
    h = harness(accept=True, max_connections=1)
    clients = [socket.socket(socket.AF_UNIX) for _ in range(2)]
    for client in clients:
        client.connect(str(h.listeners[0].address.path))
    h.send(ListenerReadable(h.fd))
    wait_for(lambda: len(h.support.spawned) == 1, "the instance's spawn")
    [(name, fd)] = h.support.spawned
    assert name == "app@0.service" and fd not in (h.fd, -1)
    assert not h.supervisor.of(SocketTriggered)
    assert [n.event for n in h.supervisor.reported(Notice)] == ["socket-triggered"]
    # MaxConnections=1: full, the listener is not polled again until the instance ends.
    assert h.poller.calls == [("watch", h.fd), ("disarm", h.fd)]
    # The instance's own states are the socket's business, not the supervisor's.
    assert all(m.unit == "app.socket" for m in h.supervisor.of(UnitReport))
    h.send(StopSocket())
    wait_for(lambda: bool(h.supervisor.of(SocketStopped)), "the stop to end")
    states = [(t.old.value, t.new.value) for t in h.supervisor.reported(Transition)]
    assert states == [("active", "stopping"), ("stopping", "inactive")]
    assert len(h.support.spawned) == 1
    for client in clients:
        client.close()


def test_accept_yes_polls_again_when_an_instance_ends(harness: Any) -> None:
    h = harness(accept=True, max_connections=1)
    client = socket.socket(socket.AF_UNIX)
    client.connect(str(h.listeners[0].address.path))
    h.send(ListenerReadable(h.fd))
    wait_for(lambda: len(h.support.spawned) == 1, "the instance's spawn")
    instance = h.ref.proxy().instances.get()["app@0.service"]
    instance.slot.io.signal_unit(signal.SIGTERM)  # as if it ended by itself
    wait_for(lambda: ("rearm", h.fd) in h.poller.calls, "the listener polled again")
    assert not h.ref.proxy().instances.get()
    client.close()
