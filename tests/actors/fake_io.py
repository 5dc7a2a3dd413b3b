"""Honcho-style fakes for the unit supervisor's tests: processes that are only bookkeeping.

A `FakeWorld` stands in for the OS of every unit: `FakeIO` (one per unit, the same
methods as `cinit.actors.unit_io.UnitIO`) "spawns" a command by recording it and
scheduling what the command does, read from its words:

    run                  runs until signalled (dies of any signal but SIGCONT)
    exit N [MS]          exits with status N after MS milliseconds (default 0)
    notify MS            sends READY=1 after MS milliseconds, then runs
    stubborn             ignores SIGTERM; only SIGKILL ends it

Exits and notifications reach the unit the way the real ones do: `owner.tell(...)` with
a `ProcessExit` / a NotifyMessage-shaped object, from the scheduler's thread. The world
keeps one ordered log of what happened (`spawn`, `signal`, `exit`, `ready`), so tests
assert on order without timing anything.
"""

from __future__ import annotations

import itertools
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from cinit.io.log import log
from cinit.io.reaper import ProcessExit
from cinit.machines.unit_model import Role, role_commands
from cinit.units.model import Unit


@dataclass
class FakeNotify:
    """Shaped like cinit.io.notify.NotifyMessage."""

    unit: str
    sender_pid: int | None
    fields: dict[str, str]


@dataclass
class FakeProcess:
    pid: int
    unit: str
    words: list[str]
    owner: Any
    alive: bool = True
    signals: list[int] = field(default_factory=list)
    exit: ProcessExit | None = None


class FakeWorld:
    """The OS of all fake units: pids, a log, and delayed behaviour via a scheduler."""

    def __init__(self, scheduler: Any) -> None:
        self.scheduler = scheduler
        self.lock = threading.Lock()
        self.log: list[tuple[str, str, Any]] = []  # (what, unit, detail)
        self.pids = itertools.count(1000)
        self.processes: dict[int, FakeProcess] = {}
        self.unmet: dict[str, str] = {}  # unit -> the unmet condition to report
        self.failed_asserts: dict[str, str] = {}  # unit -> the failed Assert*= to report
        self.ios: dict[str, FakeIO] = {}
        self.failures: dict[str, dict[str, BaseException]] = {}  # unit -> method -> raise once
        self.changed = threading.Condition(self.lock)

    def record(self, what: str, unit: str, detail: Any = None) -> None:
        with self.lock:
            self.log.append((what, unit, detail))
            self.changed.notify_all()

    def entries(self, what: str, unit: str | None = None) -> list[tuple[str, str, Any]]:
        with self.lock:
            return [e for e in self.log if e[0] == what and (unit is None or e[1] == unit)]

    def index(self, what: str, unit: str) -> int:
        """Position of the first `what` entry of `unit` in the log (-1 if none)."""
        with self.lock:
            for i, entry in enumerate(self.log):
                if entry[0] == what and entry[1] == unit:
                    return i
        return -1

    def wait_for(self, what: str, unit: str, count: int = 1, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        with self.lock:
            while sum(1 for e in self.log if e[0] == what and e[1] == unit) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no {count}x {what} of {unit}; log: {self.log}")
                self.changed.wait(left)

    def factory(self, unit: Unit, owner: Any) -> FakeIO:
        io = FakeIO(self, unit, owner)
        io.fail_next.update(self.failures.get(unit.name, {}))
        self.ios[unit.name] = io
        return io

    # ---- process behaviour -------------------------------------------------------------

    def start(self, unit: str, words: list[str], owner: Any) -> int:
        pid = next(self.pids)
        process = FakeProcess(pid, unit, words, owner)
        with self.lock:
            self.processes[pid] = process
        self.record("spawn", unit, " ".join(words))
        verb = words[1] if len(words) > 1 else "run"
        if verb == "exit":
            code = int(words[2])
            delay = int(words[3]) / 1000 if len(words) > 3 else 0.0
            self.scheduler.call_later(delay, _Call(lambda: self.end(process, code, None)), None)
        elif verb == "notify":
            delay = int(words[2]) / 1000
            self.scheduler.call_later(delay, _Call(lambda: self.notify_ready(process)), None)
        return pid

    def notify_ready(self, process: FakeProcess) -> None:
        if process.alive:
            self.record("ready", process.unit)
            process.owner.tell(FakeNotify(process.unit, process.pid, {"READY": "1"}))

    def deliver(self, process: FakeProcess, signo: int) -> None:
        self.record("signal", process.unit, signo)
        process.signals.append(signo)
        if signo == signal.SIGCONT or not process.alive:
            return
        verb = process.words[1] if len(process.words) > 1 else "run"
        if verb == "stubborn" and signo != signal.SIGKILL:
            return
        self.end(process, None, signo)

    def end(self, process: FakeProcess, code: int | None, signo: int | None) -> None:
        with self.lock:
            if not process.alive:
                return
            process.alive = False
        process.exit = ProcessExit(process.pid, process.unit, code, signo, False)
        self.record("exit", process.unit, code if signo is None else -signo)
        process.owner.tell(process.exit)


class _Call:
    """A scheduler target that runs a function when told (the message is ignored)."""

    def __init__(self, function: Any) -> None:
        self.function = function

    def tell(self, _message: object) -> None:
        self.function()


class FakeLaunch:
    """A launched fake command; `finish` logs that its exec was waited for."""

    def __init__(self, world: FakeWorld, unit: str, pid: int) -> None:
        self.world = world
        self.unit = unit
        self.pid = pid

    def start(self) -> None:
        self.world.record("launch-started", self.unit)

    def finish(self) -> int:
        self.world.record("exec-confirmed", self.unit)
        return self.pid


class FakeIO:
    """One unit's fake OS side, with the methods the UnitActor calls."""

    def __init__(self, world: FakeWorld, unit: Unit, owner: Any) -> None:
        assert unit.service is not None
        self.world = world
        self.unit = unit
        self.owner = owner
        self.mine: dict[int, FakeProcess] = {}
        self.fail_next: dict[str, BaseException] = {}  # method name -> raise it once

    def _maybe_fail(self, method: str) -> None:
        failure = self.fail_next.pop(method, None)
        if failure is not None:
            raise failure

    def say(self, text: str) -> None:
        log(text)

    def unmet_condition(self) -> str | None:
        self._maybe_fail("unmet_condition")
        return self.world.unmet.get(self.unit.name)

    def failed_assertion(self) -> str | None:
        return self.world.failed_asserts.get(self.unit.name)

    def spawn(self, role: Role, index: int, main_pid: int | None) -> int:
        self._maybe_fail("spawn")
        service = self.unit.service
        assert service is not None
        words = list(role_commands(service, role)[index].words)
        if len(words) > 1 and words[1] == "fail-spawn":
            from cinit.actors.unit_io import UnitSpawnError

            self.world.record("spawn-failed", self.unit.name, words[2])
            raise UnitSpawnError(int(words[2]))
        pid = self.world.start(self.unit.name, words, self.owner)
        with self.world.lock:
            self.mine[pid] = self.world.processes[pid]
        return pid

    def launch(self, role: Role, index: int, main_pid: int | None) -> FakeLaunch:
        """As `spawn`; the fake exec is confirmed at once."""
        self.world.record("launch", self.unit.name)
        return FakeLaunch(self.world, self.unit.name, self.spawn(role, index, main_pid))

    def take_exit(self, message: ProcessExit) -> bool:
        return self.mine.pop(message.pid, None) is not None

    def pending_exits(self) -> list[ProcessExit]:
        return [p.exit for p in self.mine.values() if p.exit is not None]

    def signal_main(self, pid: int, signo: int) -> None:
        self._maybe_fail("signal_main")
        process = self.mine.get(pid)
        if process is not None:
            self.world.deliver(process, signo)

    def signal_unit(self, signo: int) -> None:
        self._maybe_fail("signal_unit")
        for process in list(self.mine.values()):
            self.world.deliver(process, signo)

    def kill_unit(self) -> None:
        self._maybe_fail("kill_unit")
        for process in list(self.mine.values()):
            self.world.deliver(process, signal.SIGKILL)

    def discard_prepared(self) -> None:
        self.world.record("discard_prepared", self.unit.name)

    def start_not_before(self, at: float) -> None:
        self.world.record("start_not_before", self.unit.name, at)

    def prepare_start(self, role: Role, index: int, main_pid: int | None) -> bool:
        self.world.record("prepare_start", self.unit.name, (role, index, main_pid))
        return True

    def remove_runtime_directories(self) -> None:
        self.world.record("remove_runtime_directories", self.unit.name)

    def unit_empty(self) -> bool:
        self._maybe_fail("unit_empty")
        return not any(p.alive for p in self.mine.values())

    def find_main_pid(self, hint: int | None, pid_file: str, guess: bool = True) -> int | str:
        self._maybe_fail("find_main_pid")
        return "no main process in the fake world"

    def redefine(self, unit: Unit) -> None:
        self.unit = unit

    def accepts_notification(self, sender: int | None) -> bool:
        return True
