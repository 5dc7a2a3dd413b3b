"""Setting up and tearing down what unit supervision needs, for `cinit.boot`.

In two steps, so that the first services start before pykka is imported:

1. `UnitServices.prepare` creates the runtime directory (a failure is logged, not
   fatal: nothing needs it yet), the output relay, the notify hub (only when a unit
   needs NOTIFY_SOCKET) and the context every unit's io shares, with cinit's cgroup
   subtree (or the process-group fallback, logged once by `CgroupTree.detect`) and the
   children prepared at boot; then it starts the scheduler (the first wave's timers are
   armed on it), the first wave (`cinit.actors.first_wave`), and only then the relay's
   and the hub's threads.
2. `start_supervisor` starts the `UnitSupervisor` actor, which takes over the first
   wave's units and boots the rest.

`close` stops them after the actors are gone: the relay last, so that nothing a service
wrote is lost.

The notify sockets live in Linux's abstract namespace (`@cinit/...`), not in the
runtime directory: that directory is 0700 (cinit's own), and a service running as
another user (User=) could not reach a socket inside it. Abstract sockets have no file
permissions; the supervisor acts only on messages whose sender (SCM_CREDENTIALS) is a
process of the unit.
"""

from __future__ import annotations

import os

from cinit.actors.scheduler import Scheduler
from cinit.actors.unit_io import UnitContext, UnitIO
from cinit.actors.unit_slot import Postbox
from cinit.boot_path import TYPE_CHECKING
from cinit.io.cgroup import CgroupTree
from cinit.io.environ import ManagerEnvironment
from cinit.io.reaper import ProcessTable
from cinit.io.spawn.prepared import EarlyUnits
from cinit.units.loader import UnitSet
from cinit.units.model import Unit, UnitKind

if TYPE_CHECKING:
    from collections.abc import Callable, Collection

    import pykka

    from cinit.actors.socket_activator import SocketSupport
    from cinit.actors.supervisor import UnitSupervisor
    from cinit.actors.timer_keeper import TimerSupport
    from cinit.actors.unit_ports import Tellable
    from cinit.actors.unit_slot import UnitSlot
    from cinit.io.socket_binding import SocketBinding

NOTIFY_DIRECTORY = "@cinit"


class UnitServices:
    """The unit supervisor and the threads it relies on."""

    def __init__(
        self,
        unit_set: UnitSet,
        context: UnitContext,
        tree: CgroupTree | None,
        scheduler: Scheduler,
    ) -> None:
        self.unit_set = unit_set
        self.context = context
        self.tree = tree
        self.scheduler = scheduler  # started before the first wave; `cinit.boot` uses it
        self.reports = Postbox()  # the supervisor's address, before the supervisor exists
        self.bound: dict[str, SocketBinding] = {}  # socket units bound at boot, until handed over
        self.started: dict[str, UnitSlot] = {}  # the first wave, until the supervisor runs
        self.supervisor: pykka.ActorRef[UnitSupervisor] | None = None  # once started
        # daemon-reload's reading (with the instances made on demand to read again too)
        self.reader: Callable[[Collection[str]], UnitSet] | None = None
        self.sockets: SocketSupport | None = None  # when a socket unit is loaded

    @classmethod
    def prepare(
        cls,
        unit_set: UnitSet,
        table: ProcessTable,
        *,
        runtime_dir: str | None,
        log_prefix: bool,
        log_ring: tuple[int, int] = (1000, 1 << 20),
        early: EarlyUnits | None = None,
        adopts: bool = False,
    ) -> UnitServices:
        """Everything but the actors; then start the first wave. `adopts`: orphans come to
        cinit (PID 1, or a subreaper), so a helper may fork children for it."""
        from cinit.actors.first_wave import start_first_wave
        from cinit.io.output import OutputRelay
        from cinit.io.runtime import ensure_runtime_dir
        from cinit.io.runtime import runtime_dir as pick_runtime_dir

        directory = pick_runtime_dir(runtime_dir)
        # Made early for watchers that connect first; a refusal is said once, by the pump
        # (`cinit.events.pump`), when it would bind the sockets there.
        try:  # noqa: SIM105 - contextlib would be one more import on the boot path
            ensure_runtime_dir(directory)
        except OSError:
            pass
        relay = OutputRelay(log_lines=log_ring[0], log_bytes=log_ring[1])  # lines, bytes kept
        hub = None
        if any(_needs_notify(unit) for unit in unit_set.units.values()):
            from cinit.io.notify import NotifyHub

            hub = NotifyHub(NOTIFY_DIRECTORY)
        tree = early.cgroups if early is not None else CgroupTree.for_instance()
        context = UnitContext(
            table=table,
            base_env=ManagerEnvironment(os.environ),
            relay=relay,
            notify=hub,
            cgroups=tree,
            prepared=early.prepared if early is not None else {},
            log_prefix=log_prefix,
        )
        if adopts and tree is not None and _has_timers(unit_set):
            from cinit.io.spawn.forker import Forker

            context.forker = Forker.start(table)  # before any thread: a clean fork
        services = cls(unit_set, context, tree, Scheduler().start())
        if any(unit.kind is UnitKind.SOCKET for unit in unit_set.units.values()):
            from cinit.io.socket_binding import bind_sockets

            # Before the first wave: no service starts before the sockets it could reach.
            graph = unit_set.graph
            at_boot = [u for n, u in unit_set.units.items() if graph.binds_at_boot(n)]
            services.bound = bind_sockets(at_boot, context.base_env, context.userdb_root)
        gate = early.open_gate if early is not None else None
        try:
            services.started = start_first_wave(
                unit_set,
                services.io_factory,
                reports=services.reports,
                timers=services.scheduler,
                open_gate=gate,
            )
        finally:
            if gate is not None:
                gate()  # whatever happened: later units use prepared children too
        # Their threads only now: the first wave's syscalls release the GIL, and a thread
        # woken by each new pipe or socket took it for up to 5 ms each time (~8 ms per
        # unit with 30 units). Pipes and sockets opened before are served from the start.
        relay.start()
        if hub is not None:
            hub.start()
        return services

    def reread(self, instances: Collection[str] = ()) -> UnitSet:
        """daemon-reload: the unit files read again (with `instances`, those made on demand);
        what new units need that no unit at boot did (the notify socket) is set up now."""
        assert self.reader is not None
        unit_set = self.reader(instances)
        if self.context.notify is None and any(map(_needs_notify, unit_set.units.values())):
            from cinit.io.notify import NotifyHub

            hub = NotifyHub(NOTIFY_DIRECTORY)
            hub.start()
            self.context.notify = hub
        return unit_set

    def late_sockets(self) -> SocketSupport:
        """Socket activation for the first socket units that came after the boot (a
        daemon-reload's, an instance made on demand): set up now, closed with the rest."""
        if self.sockets is None:
            self.sockets = _new_socket_support(self.context)
        return self.sockets

    def io_factory(self, unit: Unit, owner: Tellable) -> UnitIO:
        return UnitIO(unit, self.context, owner)

    def start_supervisor(
        self,
        events: Tellable | None = None,
        timer_state_dir: str | None = None,
        boot_mono: float | None = None,
    ) -> pykka.ActorRef[UnitSupervisor]:
        """Start the unit supervisor (it takes over the first wave); its ActorRef.
        `timer_state_dir`: where Persistent= stamps go (None: the default); `boot_mono`:
        cinit's start on the monotonic clock (OnBootSec=; None: now)."""
        from cinit.actors.supervisor import UnitSupervisor

        self.sockets = _socket_support(self.unit_set, self.context)
        timers = _timer_support(self.context, timer_state_dir, boot_mono)
        self.supervisor = UnitSupervisor.start(
            self.unit_set,
            self.io_factory,
            self.scheduler,
            events=events,
            closing=self.context.closing,
            sockets=self.sockets,
            started=self.started,
            reports=self.reports,
            bound=self.bound,
            timers=timers,
            reloader=self.reread if self.reader is not None else None,
            published=_publisher(events),
            late_sockets=self.late_sockets,
        )
        self.bound = {}
        self.started = {}
        return self.supervisor

    def closing(self) -> None:
        """cinit is exiting: actors that stop now must not be restarted."""
        self.context.closing.set()

    def close(self) -> None:
        """After every actor stopped: notify sockets, cgroups, then the output relay."""
        self.context.closing.set()
        for prepared in self.context.prepared.values():  # units that never started
            prepared.discard()
        self.context.prepared.clear()
        self.context.discard_held()
        for binding in self.bound.values():  # bound, but no supervisor took them
            binding.close()
        self.bound.clear()
        if self.sockets is not None:
            self.sockets.close()
        if self.context.notify is not None:
            self.context.notify.stop()
        if self.tree is not None:
            try:  # noqa: SIM105 - contextlib would be one more import on the boot path
                self.tree.remove()
            except OSError:
                pass  # cinit leaves anyway
        if self.context.relay is not None:
            self.context.relay.stop()


def _socket_support(unit_set: UnitSet, context: UnitContext) -> SocketSupport | None:
    """The poller and listener registry of socket activation; None without socket units."""
    if not any(unit.kind is UnitKind.SOCKET for unit in unit_set.units.values()):
        return None
    return _new_socket_support(context)


def _new_socket_support(context: UnitContext) -> SocketSupport:
    from cinit.actors.socket_activator import SocketSupport
    from cinit.io.sockets import ListenerRegistry, ReadinessPoller

    registry = ListenerRegistry()
    context.sockets = registry
    poller = ReadinessPoller()
    poller.start()
    return SocketSupport(context, registry, poller)


def _timer_support(
    context: UnitContext, state_dir: str | None, boot_mono: float | None
) -> TimerSupport:
    """Where timers keep their stamps and when cinit started (also without timer units: a
    daemon-reload may add some)."""
    import time

    from cinit.actors.timer_keeper import TimerSupport
    from cinit.io.timer_stamps import TimerStamps
    from cinit.io.timer_stamps import state_dir as pick_state_dir

    directory = pick_state_dir(state_dir, os.environ)
    start = boot_mono if boot_mono is not None else time.monotonic()
    prepares = context.cgroups is not None
    return TimerSupport(
        TimerStamps(directory), start, prepares, context.base_env, context.userdb_root
    )


def _has_timers(unit_set: UnitSet) -> bool:
    return any(unit.kind is UnitKind.TIMER for unit in unit_set.units.values())


def _needs_notify(unit: Unit) -> bool:
    service = unit.service
    return service is not None and (service.type.notifies or service.watchdog_sec > 0)


def _publisher(events: object) -> Callable[[UnitSet], None] | None:
    """Where the supervisor hands each unit set it takes on: the event hub's `unit_set`,
    which `status`/`show` describe units from (an added unit, an instance made on demand)."""
    if events is None or not hasattr(events, "unit_set"):
        return None

    def publish(unit_set: UnitSet) -> None:
        events.unit_set = unit_set  # one reference, swapped whole

    return publish
