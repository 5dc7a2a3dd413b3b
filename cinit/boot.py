"""What the main thread does from start to exit: the PID 1 program.

Order matters, and is chosen so that `cinit -- CMD` reaches CMD's exec quickly:

1. block the owned signals (before any thread exists; see `cinit.io.signals`);
2. become a child subreaper when not PID 1;
3. when a unit directory exists: fork a prepared child into the cgroup of each service
   file (`cinit.io.spawn.prepared`), then load the units (printing diagnostics; refusing to boot
   a set with errors) and keep the children of the boot services;
4. spawn the main command;
5. set up what the units share (output relay, notify hub) and start the first wave, the
   units that wait for nothing (`cinit.actors.first_wave`);
6. only now import the heavier parts (pykka), start the root supervisor actor and the
   unit supervisor, which takes over the first wave (the scheduler runs since step 5
   when units are loaded, so that the first wave's timers are armed when asked for);
7. loop: take signals with `sigwaitinfo`; SIGCHLD -> reap everything, route exits to their
   owners, tell the root when no child is left; other signals -> a message to the root;
   until the root settles the outcome.

If the root breaks, or the loop itself does, the main thread stops everything on its own
(SIGTERM, then SIGKILL after the stop timeout) and exits with EXIT_INTERNAL_ERROR (70).
"""

from __future__ import annotations

import os
import time

from cinit import signal_policy
from cinit.boot_path import TYPE_CHECKING
from cinit.io import signals
from cinit.io.log import flush, info, log
from cinit.io.reaper import Process, ProcessTable
from cinit.io.spawn import SpawnError, SpawnRequest, raise_fd_limit, spawn

if TYPE_CHECKING:
    from collections.abc import Collection
    from typing import Any

    import pykka

    from cinit.actors.root import RootOutcome
    from cinit.actors.unit_services import UnitServices
    from cinit.events.hub import EventHub
    from cinit.io.spawn.prepared import EarlyUnits, Preparation
    from cinit.units.loader import UnitSet
    from cinit.units.specifiers import HostFacts

DEFAULT_UNITS_DIR = "/etc/container-init/units/"
DEFAULT_DROP_IN_DIR = "/etc/container-init.d/"
DEFAULT_STOP_TIMEOUT = 8.0
KILL_GRACE = 1.0  # after SIGKILL, how long to wait for the last exits before leaving anyway

EXIT_LOAD_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERNAL_ERROR = 70  # sysexits' EX_SOFTWARE: cinit itself broke

MAIN_LABEL = "main command"


class BootConfig:
    """What `cinit run` was asked to do (built by `cinit.cli.run`)."""

    __slots__ = (
        "command",
        "control_group",
        "drop_in_dir",
        "events_endpoint",
        "log_bytes",
        "log_lines",
        "log_prefix",
        "runtime_dir",
        "stop_timeout",
        "strict",
        "systemd",
        "systemd_root",
        "then_exec",
        "timer_state_dir",
        "tmpfiles",
        "units_dir",
    )

    def __init__(
        self,
        *,
        units_dir: str = DEFAULT_UNITS_DIR,
        drop_in_dir: str = DEFAULT_DROP_IN_DIR,
        strict: bool = False,
        stop_timeout: float = DEFAULT_STOP_TIMEOUT,
        log_prefix: bool = True,
        log_lines: int = 1000,
        log_bytes: int = 1 << 20,
        command: list[str] | None = None,
        runtime_dir: str | None = None,
        events_endpoint: str | None = None,
        then_exec: list[str] | None = None,
        control_group: str | None = None,
        tmpfiles: bool | None = None,
        systemd: bool = False,
        systemd_root: str | None = None,
        timer_state_dir: str | None = None,
    ) -> None:
        self.units_dir = units_dir
        self.drop_in_dir = drop_in_dir
        self.strict = strict
        self.stop_timeout = stop_timeout
        self.log_prefix = log_prefix  # for unit output; the main command's output is raw
        self.log_lines = log_lines  # bounds of each unit's log ring (0: none kept)
        self.log_bytes = log_bytes
        self.command = command or []
        self.runtime_dir = runtime_dir  # None: $CINIT_RUNTIME_DIR, else /run/cinit
        self.events_endpoint = events_endpoint  # None: $CINIT_EVENTS, else <runtime>/events
        self.control_group = control_group  # None: $CINIT_CONTROL_GROUP, else root only
        self.then_exec = then_exec or []  # --then-exec PATH ARGS: hand off once booted
        self.systemd = systemd  # --systemd: systemd's search path and boot set too
        self.systemd_root = systemd_root  # None: $CINIT_SYSTEMD_ROOT, else /
        self.timer_state_dir = timer_state_dir  # None: $CINIT_TIMER_STATE_DIR, else default
        self.tmpfiles = tmpfiles  # --tmpfiles / --no-tmpfiles; None: decide (see _tmpfiles_wanted)


def run(config: BootConfig) -> int:
    """Run cinit until it should exit; returns the exit status, cinit's own lines written."""
    try:
        return _run(config)
    finally:
        flush()  # queued lines (bounded: a stalled stderr does not hold the exit)


def _run(config: BootConfig) -> int:
    started = time.monotonic()  # t_ms = 0 of the event stream and the trace
    signals.block_owned()
    # Looked at before cinit itself puts anything there (its runtime directory).
    fresh_run = os.getpid() == 1 and config.tmpfiles is None and _run_is_fresh()
    units_present = (
        config.systemd or os.path.isdir(config.units_dir) or os.path.isdir(config.drop_in_dir)
    )
    if not units_present and not config.command and not config.then_exec:
        log(
            f"nothing to supervise: neither {config.units_dir} nor {config.drop_in_dir} "
            "exists and no command was given (usage: cinit [--units DIR] [--drop-in DIR] "
            "[-- COMMAND ARGS...])"
        )
        return EXIT_USAGE
    adopts = os.getpid() == 1  # orphans come to cinit
    if not adopts:
        problem = signals.become_subreaper()
        adopts = problem is None
        if problem:
            log(f"cannot become a child subreaper ({problem}); orphans will not come to cinit")
    raise_fd_limit()  # before any fork: what children get is decided here
    table = ProcessTable()
    unit_set = None
    # --systemd: which services start is known only once default.target was followed, and
    # an image has hundreds of unit files: no child is prepared per file.
    prepared_children = units_present and not config.systemd
    preparing = _prepare_children(config, table, adopts) if prepared_children else None
    load_start = load_end = time.monotonic()
    early = None
    if units_present:
        unit_set = _load_units(config)
        load_end = time.monotonic()
        early = preparing.collect() if preparing is not None else None
        if unit_set is None:
            if early is not None:  # nothing starts: the prepared children and cgroups go
                _abandon(early, table)
            return EXIT_LOAD_FAILED
        if early is not None:
            boot = unit_set.graph.boot_units()
            early.keep({name for name in boot if unit_set.units[name].service is not None})
    if _tmpfiles_wanted(config, fresh_run, units_present, pid1=os.getpid() == 1):
        _apply_tmpfiles(_tmpfiles_root(config))  # before the main command, sockets, units
    main = None
    if config.command:
        request = SpawnRequest(
            config.command, label=MAIN_LABEL, stdin=0, new_session=False, foreground=True
        )
        try:
            main = spawn(request, table)
        except SpawnError as exc:
            log(str(exc))
            if early is not None:
                _abandon(early, table)
            return exc.exit_code
    services = None
    if unit_set is not None and unit_set.units:
        try:
            services = _prepare_services(config, unit_set, table, early, adopts)
        except BaseException as exc:  # PID 1 must not die of its own bug
            log(f"cannot start the units ({exc!r}); stopping everything")
            _emergency_stop(table, config.stop_timeout)
            if early is not None:
                _abandon(early, table)
            return EXIT_INTERNAL_ERROR
    return _supervise(config, table, main, unit_set, (started, load_start, load_end), services)


def _host_facts() -> HostFacts:
    """The host's specifier values, read (and their module imported) only when a unit
    file holds a specifier that needs one."""
    from cinit.io.host_facts import read_host_facts

    return read_host_facts()


# What a container runtime itself may put in a fresh /run before init starts (podman's
# .containerenv, secrets mounted through /var/run/secrets).
_RUNTIME_ENTRIES = frozenset({".containerenv", "secrets"})


def _run_is_fresh(run: str = "/run") -> bool:
    """Whether /run is as a runtime gives a container: empty but for what the runtime adds,
    and an empty `lock` directory (Debian's images ship one). A host's /run, or one with
    other content, is not."""
    try:
        entries = set(os.listdir(run)) - _RUNTIME_ENTRIES
        if (
            "lock" in entries
            and not os.path.islink(f"{run}/lock")
            and not os.listdir(f"{run}/lock")
        ):
            entries.discard("lock")
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return not entries


def _tmpfiles_wanted(
    config: BootConfig, fresh_run: bool, units_present: bool, *, pid1: bool
) -> bool:
    """Whether cinit applies tmpfiles.d at boot: as PID 1 only, and then when asked
    (`--tmpfiles`), for a systemd image (`--systemd`), or when cinit boots units in a fresh
    /run. Never otherwise: cinit run as PID 1 of a namespace on a host's root (tests do
    that) would apply the host's lines to the host (Debian's `D /tmp` empties /tmp), and
    a bare `cinit -- CMD` stays the tini-like init it was. `--no-tmpfiles` turns it off."""
    if config.tmpfiles is False or not pid1:
        return False
    return bool(config.tmpfiles) or config.systemd or (fresh_run and units_present)


# systemd-nologin.conf's `f+! /run/nologin` keeps users other than root out while the system
# boots, and systemd-user-sessions.service removes it once it is up. cinit has no such step:
# made, the file would lock every other user out for good (ssh logins included).
BOOT_EXCLUDED = ("/run/nologin",)


def _tmpfiles_root(config: BootConfig) -> str:
    """Where tmpfiles.d is read and applied: `/`, or under `--systemd-root` (or
    $CINIT_SYSTEMD_ROOT), the fake root tests and layout checks give `--systemd`: what is
    re-rooted for the unit files is re-rooted for tmpfiles.d too, never the host's."""
    if not config.systemd:
        return "/"
    from cinit.units.systemd_layout import systemd_root

    return config.systemd_root or systemd_root(os.environ)


def _apply_tmpfiles(root: str = "/") -> None:
    """tmpfiles.d with `--create --remove --boot`, as systemd before its first service:
    one summary line, one line per problem (file:line); a failure never stops the boot."""
    begun = time.monotonic()
    try:
        # Imported only here: a boot that does not apply tmpfiles.d pays nothing for it.
        from cinit.io.tmpfiles import apply
        from cinit.units.diagnostics import Severity

        run = apply(root, create=True, remove=True, boot=True, exclude_prefixes=BOOT_EXCLUDED)
    except Exception as exc:  # PID 1 goes on: the units report what they miss
        reason = f"{type(exc).__name__}: {exc}"[:300].replace("\n", " ")
        log(f"tmpfiles: not applied (internal error: {reason})")
        return
    for diagnostic in run.diagnostics:
        if diagnostic.severity is Severity.HINT:
            info(f"tmpfiles: {diagnostic.format()}")
        else:
            log(f"tmpfiles: {diagnostic.format()}")
    (log if run.files or run.diagnostics else info)(run.summary())  # no file: nothing to say
    info(f"tmpfiles: took {(time.monotonic() - begun) * 1000:.1f} ms")


def _load_units(config: BootConfig) -> UnitSet | None:
    """Load and report the units; None when cinit must not boot them (already said why)."""
    from cinit.units.diagnostics import Severity

    dirs = _unit_dirs(config)
    try:
        unit_set = _read_units(config)
    except Exception as exc:  # the loader reports bad input (even its own bugs) per file
        reason = f"{type(exc).__name__}: {exc}"[:300].replace("\n", " ")
        log(f"cannot load units from {dirs} (internal error: {reason})")
        return None
    for override in unit_set.overrides:
        log(override.log_line("cinit").removeprefix("cinit: "))
    for line in unit_set.snippet_lines("cinit"):
        log(line.removeprefix("cinit: "))
    loud = _loud_paths(unit_set, config) if config.systemd else None
    held = 0
    for diagnostic in unit_set.diagnostics:
        if diagnostic.severity is Severity.NOTE:  # `cinit validate` lists the notes
            continue
        # --systemd: an image's many units that do not start would drown the boot's own
        # findings; they are counted here and listed by `cinit validate --systemd`.
        if (
            loud is not None
            and diagnostic.severity.value != "error"
            and diagnostic.path not in loud
            and not diagnostic.path.startswith((config.units_dir, config.drop_in_dir))
        ):
            held += 1
            continue
        log(diagnostic.format())
    if held:
        log(f"{held} findings about units that do not start at boot not shown (see validate)")
    if not unit_set.ok:
        log(f"not booting: the unit files in {dirs} have errors")
        return None
    if config.systemd:
        booted = len(unit_set.graph.boot_units())
        info(f"loaded {len(unit_set.units)} units, {booted} start at boot")
    else:
        info(f"loaded {len(unit_set.units)} units")
    return unit_set


def _unit_dirs(config: BootConfig) -> str:
    dirs = f"{config.units_dir} and {config.drop_in_dir}"
    if config.systemd:
        from cinit.units.systemd_layout import systemd_root

        root = config.systemd_root or systemd_root(os.environ)
        dirs = f"systemd's unit directories under {root}, {dirs}"
    return dirs


def _read_units(config: BootConfig, instances: Collection[str] = ()) -> UnitSet:
    """Every unit of the directories the boot reads (the same flags): at boot, and again
    for each daemon-reload (`cinit reload`, SIGHUP) and each instance made on demand
    (`instances`: `systemctl start x@a` of a template no link named)."""
    if config.systemd:
        from cinit.units.loader import load_systemd_units
        from cinit.units.systemd_layout import systemd_root

        root = config.systemd_root or systemd_root(os.environ)
        return load_systemd_units(
            root,
            config.units_dir,
            config.drop_in_dir,
            strict=config.strict,
            facts=_host_facts,
            instances=instances,
        )
    from cinit.units import load_units

    return load_units(
        config.units_dir,
        config.drop_in_dir,
        strict=config.strict,
        facts=_host_facts,
        instances=instances,
    )


def _loud_paths(unit_set: UnitSet, config: BootConfig) -> set[str]:
    """The files of the units that start at boot."""
    return {unit_set.units[name].path for name in unit_set.graph.boot_units()}


def _supervise(
    config: BootConfig,
    table: ProcessTable,
    main: Process | None,
    unit_set: UnitSet | None,
    stamps: tuple[float, float, float] | None = None,
    services: UnitServices | None = None,
) -> int:
    """Start the actor tree and run the main loop until the root settles."""
    try:
        import threading

        import pykka

        from cinit.actors.root import RootOutcome, RootSupervisor
        from cinit.actors.scheduler import Scheduler
        from cinit.machines import lifecycle
    except BaseException as exc:  # a broken install must not leave the main command orphaned
        log(f"cannot start the supervisor ({exc!r}); stopping everything")
        _emergency_stop(table, config.stop_timeout)
        return EXIT_INTERNAL_ERROR

    main_thread = threading.get_ident()
    outcome = RootOutcome(lambda: signals.wake(main_thread))
    scheduler = services.scheduler if services is not None else Scheduler().start()
    scheduler.use_sorted_containers()  # with the late imports, after the first wave's execs
    hub = _event_hub(config, unit_set, stamps)
    units = None
    try:
        if services is not None:
            boot_mono = stamps[0] if stamps is not None else None
            units = services.start_supervisor(hub, config.timer_state_dir, boot_mono)
            if hub is not None:
                hub.supervisor = units
                if services.context.relay is not None:
                    hub.log_tail = services.context.relay.tail
                    hub.log_read = services.context.relay.read_logs
                # For systemctl's set-environment and kill --kill-whom=all (control desk).
                hub.environment = services.context.base_env
                if services.context.cgroups is not None:
                    hub.cgroup_root = services.context.cgroups.root
        timeouts = lifecycle.Timeouts(stop_timeout=config.stop_timeout, kill_grace=KILL_GRACE)
        root = RootSupervisor.start(
            scheduler=scheduler,
            outcome=outcome,
            timeouts=timeouts,
            main=main,
            units=units,
            events=hub,
            handoff=bool(config.then_exec),
        )
        if main is not None:
            table.claim(main, root)
        root.tell(lifecycle.Booted(units=services is not None))
        if units is not None:
            from cinit.actors.supervisor import BootUnits

            units.tell(BootUnits(root))
        if hub is not None:
            hub.start()  # its thread imports ZeroMQ only once the boot settled
        _collect_from_now_on()
        _main_loop(table, root, outcome, hub)
    except BaseException as exc:  # PID 1 must not die of its own bug: stop things, then exit
        import traceback

        log("internal error in the main loop:\n" + "".join(traceback.format_exception(exc)))
        outcome.fail(repr(exc))
    finally:
        scheduler.stop()
    status = outcome.status
    if status is None:
        log(f"{outcome.failure}; stopping everything")
        _emergency_stop(table, config.stop_timeout)
        status = EXIT_INTERNAL_ERROR
    if services is not None:
        services.closing()  # unit actors stopped from now on are not restarted
    pykka.ActorRegistry.stop_all(block=True, timeout=1.0)
    if hub is not None:
        hub.close()  # the last events out (bounded: a stuck subscriber loses them)
    if services is not None:
        services.close()
    if outcome.handoff and config.then_exec:
        from cinit.io.handoff import hand_off

        return hand_off(config.then_exec)  # returns only when the exec failed
    info(f"exiting with status {status} ({table.orphans_reaped} orphans reaped)")
    return status


def _event_hub(
    config: BootConfig, unit_set: UnitSet | None, stamps: tuple[float, float, float] | None
) -> EventHub | None:
    """The event hub, when there is something to watch: units, or a stream or trace asked
    for (a bare `cinit -- CMD` stays as light as tini)."""
    from cinit.events.hub import TRACE_LABELS_ENV, EventHub, trace_file_from_env
    from cinit.io.runtime import runtime_dir

    trace_file = trace_file_from_env(os.environ)
    asked = config.events_endpoint or os.environ.get("CINIT_EVENTS") or trace_file
    if not asked and (unit_set is None or not unit_set.units):
        return None
    started, load_start, load_end = stamps or (time.monotonic(),) * 3
    hub = EventHub(
        started_mono=started,
        unit_set=unit_set,
        runtime_dir=runtime_dir(config.runtime_dir),
        events_endpoint=config.events_endpoint,
        trace_file=trace_file,
        trace_labels=os.environ.get(TRACE_LABELS_ENV, ""),
        control_group=config.control_group,
    )
    if unit_set is not None:
        hub.emit_loaded(unit_set, load_start, load_end)
    return hub


def _prepare_services(
    config: BootConfig,
    unit_set: UnitSet,
    table: ProcessTable,
    early: EarlyUnits | None,
    adopts: bool,
) -> UnitServices:
    """What the units share, and the first wave started (no actor yet)."""
    from cinit.actors.unit_services import UnitServices

    services = UnitServices.prepare(
        unit_set,
        table,
        runtime_dir=config.runtime_dir,
        log_prefix=config.log_prefix,
        log_ring=(config.log_lines, config.log_bytes),
        early=early,
        adopts=adopts,
    )
    # daemon-reload and instances made on demand read what the boot read
    services.reader = lambda instances=(): _read_units(config, instances)
    return services


def _prepare_children(config: BootConfig, table: ProcessTable, adopts: bool) -> Preparation | None:
    """Fork a child into the cgroup of each service now, before the units are even parsed,
    while cinit is small and has no thread (see `cinit.io.spawn.prepared`): the forks (by a
    helper when cinit `adopts` orphans) and the cgroup moves (~15-25 ms of waiting each,
    in the children) overlap the loading, and a unit then starts without a fork of the
    grown, threaded process or a cgroup move on its path. The names come from the
    directory listing; children of units that turn out not to start at boot are
    discarded once the units are loaded (`EarlyUnits.keep`)."""
    names: set[str] = set()
    for directory in (config.units_dir, config.drop_in_dir):
        try:
            names.update(
                entry
                for entry in os.listdir(directory)
                if entry.endswith(".service") and not entry.endswith("@.service")  # a template
            )
        except OSError:
            continue  # the loader reports it
    if not names:
        return None
    from cinit.io.spawn.prepared import prepare_units

    return prepare_units(sorted(names), table, adopts=adopts)


def _abandon(early: EarlyUnits, table: ProcessTable) -> None:
    """Boot stops before any unit starts: discard the prepared children, reap them, and
    remove cinit's cgroup subtree (on a host, or in tests, it would outlive cinit)."""
    early.keep(())
    _reap_until_none_left(table, KILL_GRACE)
    if early.cgroups is not None:
        early.cgroups.remove()


def _collect_from_now_on() -> None:
    """The boot path ran with the collector off (`cinit.cli.main`): what exists now (modules,
    units, actors) lives as long as PID 1, so it is frozen out of every later collection,
    which then only looks at what comes and goes."""
    import gc

    gc.freeze()
    gc.enable()


def _main_loop(
    table: ProcessTable,
    root: pykka.ActorRef[Any],
    outcome: RootOutcome,
    hub: EventHub | None = None,
) -> None:
    """Turn signals and exits into messages for the root until its outcome is settled."""
    import signal

    import pykka

    from cinit.machines.lifecycle import ChildrenGone, SignalArrived

    while not outcome.done:
        taken = signals.wait_signal()
        if taken is None:
            continue
        try:
            if taken.signo == signal.SIGCHLD:
                orphans = table.orphans_reaped
                children_left = table.reap_all()
                if hub is not None and table.orphans_reaped != orphans:
                    # Before the root hears of it: its shutdown-finished must come last.
                    count = table.orphans_reaped - orphans
                    hub.emit("orphans-reaped", None, count=count, total=table.orphans_reaped)
                if not children_left:
                    root.tell(ChildrenGone())
            elif taken.signo not in signal_policy.TERMINAL_SIGNALS:
                root.tell(SignalArrived(taken.signo, taken.sender_pid))
        except pykka.ActorDeadError:
            outcome.fail("root supervisor is gone")


def _emergency_stop(table: ProcessTable, stop_timeout: float) -> None:
    """Stop everything without the actors: SIGTERM, wait, SIGKILL, reap."""
    import signal

    from cinit.io import sweep

    sweep.signal_leftovers(signal.SIGTERM)
    if not _reap_until_none_left(table, stop_timeout):
        log(f"processes did not stop within {stop_timeout:g}s; sending SIGKILL")
        sweep.signal_leftovers(signal.SIGKILL)
        _reap_until_none_left(table, KILL_GRACE)


def _reap_until_none_left(table: ProcessTable, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while table.reap_all():
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        signals.wait_signal(min(left, 0.1))
    return True
