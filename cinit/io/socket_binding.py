"""Binding socket units: the OS side of a socket's start, done before any service starts.

`bind_socket` checks one socket unit's conditions and binds its listeners
(`cinit.io.sockets.bind_socket_unit`); `bind_sockets` does it for every socket unit of a
unit set, at boot, before the first wave (`cinit.actors.unit_services`), so that a
service never starts before the sockets it could reach. The results go to the unit
supervisor, which hands the listeners to each socket's activator and reports what
happened; it calls `bind_socket` itself for a socket started again later.

Imported only when socket units are loaded: `socket` stays off the boot path otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from cinit.io.environ import failed_assertion, unmet_condition
from cinit.io.sockets import BindError, Listener, bind_socket_unit, close_listeners
from cinit.units.model import Unit, UnitKind


class SocketBinding:
    """What starting one socket unit gave: its `listeners`, or why none: the condition
    that does not hold (`unmet`), or the bind failure to log (`error`)."""

    __slots__ = ("error", "listeners", "unit", "unmet")

    def __init__(
        self,
        unit: Unit,
        listeners: list[Listener] | None = None,
        *,
        unmet: str | None = None,
        error: str | None = None,
    ) -> None:
        self.unit = unit
        self.listeners = listeners or []
        self.unmet = unmet
        self.error = error

    def close(self) -> None:
        """Close listeners nobody took over."""
        close_listeners(self.unit, self.listeners)
        self.listeners = []


def bind_socket(unit: Unit, environ: Mapping[str, str], userdb_root: str = "/") -> SocketBinding:
    """Check `unit`'s conditions and assertions, then bind every listener it declares."""
    unmet = unmet_condition(unit, environ, userdb_root)
    if unmet is not None:
        return SocketBinding(unit, unmet=unmet)
    failed = failed_assertion(unit, environ, userdb_root)
    if failed is not None:  # fails like a socket that cannot be bound
        return SocketBinding(unit, error=f"{unit.name}: {failed} failed")
    try:
        return SocketBinding(unit, bind_socket_unit(unit, userdb_root))
    except BindError as exc:
        return SocketBinding(unit, error=str(exc))


def bind_sockets(
    units: Iterable[Unit], environ: Mapping[str, str], userdb_root: str = "/"
) -> dict[str, SocketBinding]:
    """`bind_socket` for every socket unit of `units`, in name order."""
    sockets = sorted((u for u in units if u.kind is UnitKind.SOCKET), key=lambda u: u.name)
    return {unit.name: bind_socket(unit, environ, userdb_root) for unit in sockets}
