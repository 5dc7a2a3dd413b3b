"""`Record`: the base of cinit's small message types (events, actions, actor messages).

A subclass lists its fields in `__slots__` and sets them in `__init__`; `Record` gives it
value equality, a hash and a readable repr from those slots. Why not dataclasses: each
dataclass compiles its methods when it is defined (~0.5 ms apiece here), and the unit
state machine's few dozen message types alone delayed PID 1's first service by ~20 ms.
Records are treated as immutable: nothing assigns to one after `__init__`.
"""

from __future__ import annotations

from cinit.boot_path import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any


class Record:
    """Value semantics from `__slots__` (one level of inheritance: the subclass's slots)."""

    __slots__: tuple[str, ...] = ()

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self._values() == other._values()

    def __hash__(self) -> int:
        return hash((type(self), self._values()))

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"{type(self).__name__}({fields})"
