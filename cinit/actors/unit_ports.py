"""The shapes the unit's parts meet through: who can be told, the OS side of a unit, timers.

Protocols only, for the type checker: the boot-path modules import this under
TYPE_CHECKING (it needs `typing`); the modules that run after pykka may import it.
"""

from __future__ import annotations

from typing import Protocol

from cinit.boot_path import TYPE_CHECKING
from cinit.machines.unit_model import Role

if TYPE_CHECKING:
    from cinit.actors.scheduler import Timer
    from cinit.io.reaper import ProcessExit
    from cinit.units.model import Unit


class Tellable(Protocol):
    """Anything a message can be told to (an ActorRef, a slot, a postbox)."""

    def tell(self, message: object) -> None: ...


class Launching(Protocol):
    """A command on its way: `start`, then `finish` for its pid (`UnitLaunch`)."""

    def start(self) -> None: ...

    def finish(self) -> int: ...


class UnitPort(Protocol):
    """What a unit's runner needs from the OS side of its unit (`cinit.actors.unit_io.UnitIO`)."""

    def say(self, text: str) -> None: ...

    def unmet_condition(self) -> str | None: ...

    def failed_assertion(self) -> str | None: ...

    def spawn(self, role: Role, index: int, main_pid: int | None) -> int: ...

    def launch(self, role: Role, index: int, main_pid: int | None) -> Launching: ...

    def take_exit(self, message: ProcessExit) -> bool: ...

    def pending_exits(self) -> list[ProcessExit]: ...

    def signal_main(self, pid: int, signo: int) -> None: ...

    def signal_unit(self, signo: int) -> None: ...

    def kill_unit(self) -> None: ...

    def discard_prepared(self) -> None: ...

    def prepare_start(self, role: Role, index: int, main_pid: int | None) -> bool: ...

    def start_not_before(self, at: float) -> None: ...

    def remove_runtime_directories(self) -> None: ...

    def unit_empty(self) -> bool: ...

    def find_main_pid(self, hint: int | None, pid_file: str, guess: bool = True) -> int | str: ...

    def accepts_notification(self, sender: int | None) -> bool: ...

    def redefine(self, unit: Unit) -> None: ...


class Scheduling(Protocol):
    """The part of `cinit.actors.scheduler.Scheduler` a unit uses."""

    def call_later(self, delay: float, target: Tellable, message: object) -> Timer: ...

    def call_at(
        self, deadline: float, target: Tellable, message: object, *, precise: bool = False
    ) -> Timer: ...

    def cancel(self, timer: Timer) -> bool: ...
