"""`Record`: the base of cinit's small message types (events, actions, actor messages).

A `Frozen` value class (`cinit.units.frozen`: fields declared as annotations, in the order
that is also their positional order; a keyword and positional `__init__`, value equality,
hash, repr, `replace`; assignment refused). A class of its own only to name what messages
are. Why not dataclasses: each compiles its methods when it is defined (~0.5 ms apiece
here), and the machines' few dozen message types alone delayed PID 1's first service by
~20 ms.
"""

from __future__ import annotations

from cinit.units.frozen import Frozen


class Record(Frozen):
    """A message: an immutable value with declared fields."""

    __slots__ = ()
