"""What users ask of the unit supervisor (through the control socket): its messages.

The control desk (`cinit.events`) sends them and the supervisor (`cinit.actors`) takes
them; both import them from here, so that neither part imports the other.
"""

from __future__ import annotations

from cinit.machines.record import Record


class StartUnit(Record):
    """Start one unit (and what it pulls in) as OnFailure= does; for control commands."""

    name: str


class ResetFailedUnit(Record):
    """systemctl reset-failed: a failed unit goes back to inactive (its start limit
    forgotten too); any other unit is left as it is."""

    name: str


class StopUnit(Record):
    """Stop one unit, after the units that stop with it (Requires=, BindsTo=, PartOf= on
    it). `restart`: the stop half of a restart; the next StartUnit of the unit starts
    those units again too (systemd propagates a restart as it propagates a stop)."""

    name: str
    restart: bool = False


class ReloadUnit(Record):
    """Reload one unit's configuration (ExecReload=); its `reloading -> active` Transition
    answers (the control desk checks first that the unit can reload and is active)."""

    name: str


class LoadInstance(Record):
    """Make the instance `name` (`x@a.service`) of its loaded template on demand, as
    systemd does for `systemctl start x@a`; its `instance-loaded` event answers."""

    name: str


class DaemonReload(Record):
    """Read the unit directories again (systemctl daemon-reload); `apply`: also start the
    added, stop the removed and restart the changed units (`cinit reload --apply`)."""

    apply: bool = False
