"""A driver for the pure socket state machine: a fake clock, a fake poller, scripted answers.

`SocketSim` plays the socket's actor without any OS: it feeds events to
`socket_machine.step`, answers the actions that ask something (accept a connection,
start an instance's unit) from what the test scripted, and keeps which listener fds the
poller would report (one-shot, as epoll's EPOLLONESHOT); the test ends instances.
After every step it checks the invariants:

* one Transition per change of the shown state, chained from the state before the step
  to the state after it (a stop without instances goes active -> stopping -> inactive);
* nothing polled once the listeners are closed, nor while the service has them (running),
  nor at MaxConnections= (full); every listener polled again once a native or Accept=yes
  socket is back to listening and every answer is in;
* never more live instances than MaxConnections=; SocketStopped at most once, and only
  in a stopped phase.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cinit.machines import socket_machine as sm
from cinit.machines.unit_events import Log, Notice, Transition
from cinit.machines.unit_model import State

FDS = (7, 8)


def config(mode: sm.Mode = sm.Mode.NATIVE, **settings: Any) -> sm.SocketConfig:
    listeners = tuple(sm.ListenerInfo(fd, f"/run/app{fd}.sock", "ListenStream") for fd in FDS)
    return sm.SocketConfig("app.socket", "app.service", "app", mode, listeners, **settings)


@dataclass
class SocketSim:
    """Drive one socket's machine the way its actor would, with scripted answers."""

    config: sm.SocketConfig
    now: float = 100.0
    accept_answer: sm.AcceptFailed | None = None  # None: a connection is accepted
    create_fails: bool = False  # StartInstance is answered InstanceFailed
    model: sm.SocketModel = field(init=False)
    actions: list[Any] = field(default_factory=list)
    armed: set[int] = field(default_factory=set)  # fds the poller would report
    closed: bool = False
    stopped_reports: int = 0

    def __post_init__(self) -> None:
        self.model, actions = sm.start(self.config)
        self._take(actions, [])

    @classmethod
    def of(cls, mode: sm.Mode = sm.Mode.NATIVE, **settings: Any) -> SocketSim:
        return cls(config(mode, **settings))

    @classmethod
    def at_rest(
        cls, shown: State = State.INACTIVE, mode: sm.Mode = sm.Mode.NATIVE, **settings: Any
    ) -> SocketSim:
        """A socket without listeners nor actor, showing `shown`: the supervisor's start."""
        sim = cls(config(mode, **settings))
        sim.model = sm.at_rest(sim.config, shown)
        sim.actions.clear()
        sim.armed.clear()
        sim.closed = True
        return sim

    # ---- driving -----------------------------------------------------------------------

    def feed(self, *events: sm.SocketEvent) -> SocketSim:
        pending = list(events)
        while pending:
            before = self.model.state
            if isinstance(pending[0], sm.Bound | sm.BindFailed | sm.ConditionUnmet):
                self.stopped_reports = 0  # the supervisor's new start: a new life
            self.model, actions = sm.step(self.model, pending.pop(0), self.now)
            # One Transition per change of the shown state, chained old -> new.
            for change in (a for a in actions if isinstance(a, Transition)):
                assert change.old is before and change.new is not before, actions
                before = change.new
            assert before is self.model.state, (actions, self.model)
            self._take(actions, pending)
        self._check()
        return self

    def _take(self, actions: list[Any], pending: list[sm.SocketEvent]) -> None:
        for action in actions:
            self.actions.append(action)
            answer = self._answer(action)
            if answer is not None:
                pending.append(answer)

    def _answer(self, action: Any) -> sm.SocketEvent | None:
        if isinstance(action, sm.Listen):
            self.closed = False  # bound anew
            if self.config.mode is not sm.Mode.PROXY:
                self.armed = set(self.config.fds)
        elif isinstance(action, sm.Disarm):
            assert not self.closed, action
            self.armed -= set(action.fds)
        elif isinstance(action, sm.Rearm):
            assert not self.closed, action
            self.armed |= set(action.fds)
        elif isinstance(action, sm.CloseListeners):
            self.closed = True
            self.armed.clear()
        elif isinstance(action, sm.AcceptConnection):
            return self.accept_answer or sm.ConnectionAccepted(action.fd)
        elif isinstance(action, sm.StartInstance):
            if self.create_fails:
                return sm.InstanceFailed(action.fd, action.name)
            return sm.InstanceStarted(action.fd, action.name)
        elif isinstance(action, sm.SocketStopped):
            self.stopped_reports += 1
        return None

    def _check(self) -> None:
        phase = self.model.phase
        assert len(self.model.instances) <= self.config.max_connections, self.model
        assert self.stopped_reports <= 1
        if self.stopped_reports:
            assert phase in (sm.Phase.INACTIVE, sm.Phase.FAILED_STOPPED), phase
        if phase is not sm.Phase.LISTENING:
            assert not self.armed, (phase, self.armed)
        elif self.config.mode is not sm.Mode.PROXY:
            assert self.armed == set(self.config.fds), self.armed
        if phase is sm.Phase.FULL:
            assert len(self.model.instances) >= self.config.max_connections

    def ready(self, fd: int = FDS[0]) -> SocketSim:
        """A connection arrives on `fd`: reported only if the poller watches it (one-shot)."""
        if fd in self.armed:
            self.armed.discard(fd)
            self.feed(sm.ListenerReadable(fd))
        return self

    def advance(self, seconds: float) -> SocketSim:
        self.now += seconds
        return self

    def end_instance(self, index: int = 0, ran: bool = True) -> SocketSim:
        """Instance number `index` (of the live ones) reached an end state."""
        name = self.model.instances[index][0]
        return self.feed(sm.InstanceEnded(name, ran))

    # ---- looking -----------------------------------------------------------------------

    @property
    def phase(self) -> sm.Phase:
        return self.model.phase

    @property
    def state(self) -> State:
        return self.model.state

    def of_type(self, kind: type | tuple[type, ...]) -> list[Any]:
        return [a for a in self.actions if isinstance(a, kind)]

    def states(self) -> list[tuple[str, str]]:
        return [(t.old.value, t.new.value) for t in self.of_type(Transition)]

    def notices(self) -> list[Notice]:
        return self.of_type(Notice)

    def logs(self) -> list[str]:
        return [a.text for a in self.of_type(Log)]

    def clear(self) -> SocketSim:
        self.actions.clear()
        return self
