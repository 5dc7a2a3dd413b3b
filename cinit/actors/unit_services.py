"""Setting up and tearing down what unit supervision needs, for `cinit.boot`.

`UnitServices.start` creates, in this order: the runtime directory (a failure is logged,
not fatal: nothing needs it yet), the output relay thread, the notify hub (only when a
unit needs NOTIFY_SOCKET), cinit's cgroup subtree (or the process-group fallback,
logged once by `CgroupTree.detect`), and the `UnitSupervisor` actor. `close` stops
them after the actors are gone: the relay last, so that nothing a service wrote is lost.

The notify sockets live in Linux's abstract namespace (`@cinit/...`), not in the
runtime directory: that directory is 0700 (cinit's own), and a service running as
another user (User=) could not reach a socket inside it. Abstract sockets have no file
permissions; the supervisor acts only on messages whose sender (SCM_CREDENTIALS) is a
process of the unit.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

from cinit.actors.scheduler import Scheduler
from cinit.actors.supervisor import UnitSupervisor
from cinit.actors.unit import Tellable
from cinit.actors.unit_io import UnitContext, UnitIO
from cinit.io.cgroup import CgroupTree
from cinit.io.log import log
from cinit.io.prespawn import EarlyUnits
from cinit.io.reaper import ProcessTable
from cinit.units.loader import UnitSet
from cinit.units.model import ServiceType, Unit, UnitKind

NOTIFY_DIRECTORY = "@cinit"


class UnitServices:
    """The unit supervisor and the threads it relies on."""

    def __init__(
        self, context: UnitContext, supervisor: Any, tree: Any, sockets: Any = None
    ) -> None:
        self.context = context
        self.supervisor = supervisor  # pykka ActorRef of the UnitSupervisor
        self.tree = tree
        self.sockets = sockets  # SocketSupport, when a socket unit is loaded

    @classmethod
    def start(
        cls,
        unit_set: UnitSet,
        table: ProcessTable,
        scheduler: Scheduler,
        *,
        runtime_dir: str | None,
        log_prefix: bool,
        events: Tellable | None = None,
        early: EarlyUnits | None = None,
    ) -> UnitServices:
        from cinit.io.output import OutputRelay
        from cinit.io.runtime import ensure_runtime_dir
        from cinit.io.runtime import runtime_dir as pick_runtime_dir

        directory = pick_runtime_dir(runtime_dir)
        try:
            ensure_runtime_dir(directory)
        except OSError as exc:
            log(f"cannot create the runtime directory {directory}: {exc}")
        relay = OutputRelay()
        relay.start()
        hub = None
        if any(_needs_notify(unit) for unit in unit_set.units.values()):
            from cinit.io.notify import NotifyHub

            hub = NotifyHub(NOTIFY_DIRECTORY)
            hub.start()
        tree = early.cgroups if early is not None else CgroupTree.for_instance()
        context = UnitContext(
            table=table,
            base_env=dict(os.environ),
            relay=relay,
            notify=hub,
            cgroups=tree,
            prepared=early.prepared if early is not None else {},
            log_prefix=log_prefix,
        )

        def io_factory(unit: Unit, owner: Tellable) -> UnitIO:
            return UnitIO(unit, context, owner)

        sockets = _socket_support(unit_set, context)
        supervisor = UnitSupervisor.start(
            unit_set,
            io_factory,
            scheduler,
            events=events,
            closing=context.closing,
            sockets=sockets,
        )
        return cls(context, supervisor, tree, sockets)

    def closing(self) -> None:
        """cinit is exiting: actors that stop now must not be restarted."""
        self.context.closing.set()

    def close(self) -> None:
        """After every actor stopped: notify sockets, cgroups, then the output relay."""
        self.context.closing.set()
        for prepared in self.context.prepared.values():  # units that never started
            prepared.discard()
        self.context.prepared.clear()
        if self.sockets is not None:
            self.sockets.close()
        if self.context.notify is not None:
            self.context.notify.stop()
        if self.tree is not None:
            with contextlib.suppress(OSError):
                self.tree.remove()
        if self.context.relay is not None:
            self.context.relay.stop()


def _socket_support(unit_set: UnitSet, context: UnitContext) -> Any:
    """The poller and listener registry of socket activation; None without socket units."""
    if not any(unit.kind is UnitKind.SOCKET for unit in unit_set.units.values()):
        return None
    from cinit.actors.socket_activator import SocketSupport
    from cinit.io.sockets import ListenerRegistry, ReadinessPoller

    registry = ListenerRegistry()
    context.sockets = registry
    poller = ReadinessPoller()
    poller.start()
    return SocketSupport(context, registry, poller)


def _needs_notify(unit: Unit) -> bool:
    service = unit.service
    return service is not None and (service.type is ServiceType.NOTIFY or service.watchdog_sec > 0)
