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
from cinit.io.log import log
from cinit.io.reaper import ProcessTable
from cinit.units.loader import UnitSet
from cinit.units.model import ServiceType, Unit

NOTIFY_DIRECTORY = "@cinit"


class UnitServices:
    """The unit supervisor and the threads it relies on."""

    def __init__(self, context: UnitContext, supervisor: Any, tree: Any) -> None:
        self.context = context
        self.supervisor = supervisor  # pykka ActorRef of the UnitSupervisor
        self.tree = tree

    @classmethod
    def start(
        cls,
        unit_set: UnitSet,
        table: ProcessTable,
        scheduler: Scheduler,
        *,
        runtime_dir: str | None,
        log_prefix: bool,
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
        tree = _cgroup_tree()
        context = UnitContext(
            table=table,
            base_env=dict(os.environ),
            relay=relay,
            notify=hub,
            cgroups=tree,
            log_prefix=log_prefix,
        )

        def io_factory(unit: Unit, owner: Tellable) -> UnitIO:
            return UnitIO(unit, context, owner)

        supervisor = UnitSupervisor.start(unit_set, io_factory, scheduler, closing=context.closing)
        return cls(context, supervisor, tree)

    def closing(self) -> None:
        """cinit is exiting: actors that stop now must not be restarted."""
        self.context.closing.set()

    def close(self) -> None:
        """After every actor stopped: notify sockets, cgroups, then the output relay."""
        self.context.closing.set()
        if self.context.notify is not None:
            self.context.notify.stop()
        if self.tree is not None:
            with contextlib.suppress(OSError):
                self.tree.remove()
        if self.context.relay is not None:
            self.context.relay.stop()


def _needs_notify(unit: Unit) -> bool:
    service = unit.service
    return service is not None and (service.type is ServiceType.NOTIFY or service.watchdog_sec > 0)


def _cgroup_tree() -> Any:
    """cinit's cgroup subtree, named uniquely: several cinit instances may share one cgroup
    (tests, a host without cgroup namespaces, where even "/" is shared), and one must
    never kill another's units. It is removed when cinit exits."""
    from cinit.io.cgroup import CgroupTree

    return CgroupTree.detect(subtree=f"cinit.{os.urandom(4).hex()}")
