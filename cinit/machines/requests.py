"""What users ask of the unit supervisor (through the control socket): its messages.

The control desk (`cinit.events`) sends them and the supervisor (`cinit.actors`) takes
them; both import them from here, so that neither part imports the other.
"""

from __future__ import annotations

from cinit.machines.record import Record


class StartUnit(Record):
    """Start one unit (and what it pulls in) as OnFailure= does; for control commands."""

    name: str


class StopUnit(Record):
    """Stop one unit, after the units that Requires= it (and are ordered after it)."""

    name: str
