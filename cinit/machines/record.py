"""`Record`: the base of cinit's small message types (events, actions, actor messages).

A `Frozen` value class (`cinit.units.frozen`: fields from annotations, a keyword and
positional `__init__`, value equality, hash, repr, `replace`) that still lets a subclass
write its fields by hand, as they all did before `Frozen` was their base: `__slots__`
plus an `__init__` that assigns them (its slots are then its fields). Why not
dataclasses: each compiles its methods when it is defined (~0.5 ms apiece here), and the
unit state machine's few dozen message types alone delayed PID 1's first service by
~20 ms. Records are treated as immutable: nothing assigns to one after `__init__`.
"""

from __future__ import annotations

from cinit.units.frozen import Frozen


class Record(Frozen):
    """A message: `Frozen`, except that a hand-written `__init__` may assign its slots."""

    __slots__ = ()

    # Hand-written __init__s assign their slots (left: socket_machine's and supervisor's).
    # Once those declare annotations too, these two lines go and records refuse assignment.
    __setattr__ = object.__setattr__  # type: ignore[assignment]
    __delattr__ = object.__delattr__
