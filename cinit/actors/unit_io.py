"""The OS side of one unit: what its actor calls to carry out the state machine's actions.

`UnitIO` turns the pure actions into `cinit.io` calls for one unit: it builds each
command's `SpawnRequest` (argv with the unit's environment expanded, NOTIFY_SOCKET for
notify units, stdout/stderr through the output relay or to StandardOutput=/
StandardError= files, user, group, directory, the unit's cgroup), owns the unit's
processes (it is their owner in the ProcessTable, through the unit's stable address),
signals and kills the whole unit (its cgroup, or its process groups where cgroups are
not available), and finds a forking daemon's main process.

The shared pieces all units use (process table, relay, notify hub, cgroup tree, cinit's
environment) come in one `UnitContext`. Tests replace `UnitIO` wholesale with a fake
that has the same methods (see tests/actors/fake_io.py).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping

from cinit.actors.scheduler import wait_until
from cinit.boot_path import TYPE_CHECKING
from cinit.io import sweep
from cinit.io.cgroup import Cgroup, CgroupTree
from cinit.io.log import info, log
from cinit.io.reaper import Process, ProcessExit, ProcessTable
from cinit.io.spawn import Launch, SpawnError, SpawnRequest
from cinit.io.spawn.prepared import PreparedChild
from cinit.machines.unit_model import Role, role_commands
from cinit.machines.unit_run import notify_access
from cinit.units.commands import expand_exec_words
from cinit.units.model import DirectoryKind, ExecCommand, NotifyAccess, Unit

if TYPE_CHECKING:
    import signal

    from cinit.actors.unit_ports import Tellable
    from cinit.io.notify import NotifyHub
    from cinit.io.output import OutputRelay
    from cinit.io.sockets import ListenerRegistry
    from cinit.io.spawn.forker import Forker

else:  # the C half: `signal` itself builds its enums (~1 ms before the first exec)
    import _signal as signal

# The longest a launch waits for its `not_before` (a precise timer's elapse, decided
# `cinit.actors.timer_keeper.DECIDE_LEAD` ahead): a stale or far instant never holds it long.
MAX_NOT_BEFORE_WAIT = 0.1

EXIT_STDOUT = 209  # systemd's exit status when StandardOutput=/StandardError= cannot be set up


class UnitSpawnError(Exception):
    """A command of the unit could not be started (already logged).

    `exit_code` is the status systemd would report for the command (127/126 for exec,
    217 for User=, 209 for output...), or None when cinit lacked resources.
    """

    def __init__(self, exit_code: int | None) -> None:
        super().__init__(exit_code)
        self.exit_code = exit_code


def _spawn_error(exc: SpawnError) -> UnitSpawnError:
    log(str(exc))
    return UnitSpawnError(None if exc.stage == "fork" else exc.exit_code)


class UnitLaunch:
    """A command of the unit on its way: `start`, then `finish` (`cinit.io.spawn.Launch`)."""

    def __init__(
        self, io: UnitIO, launch: Launch, opened: list[int], owner: list[int] | None = None
    ) -> None:
        self._io = io
        self._launch = launch
        self._opened = opened  # fds for the child (output pipes, files): closed once started
        self._owner = owner  # [pid] of its output pipes' lines in the log ring, once known
        self.not_before: float | None = None  # `UnitIO.start_not_before`

    def hold(self) -> bool:
        """Hand the command to its prepared child to hold until `start` (`Launch.hold`)."""
        return self._launch.hold()

    def start(self) -> None:
        """Hand the command to its child (or fork), not before `not_before`; raises
        UnitSpawnError."""
        if self.not_before is not None:
            wait_until(min(self.not_before, time.monotonic() + MAX_NOT_BEFORE_WAIT))
        try:
            self._launch.start()
        except SpawnError as exc:
            raise _spawn_error(exc) from None
        finally:
            _close_all(self._opened)  # the child has its own copies by now

    def discard(self) -> None:
        """Never started: its child and its fds go."""
        self._launch.discard()
        _close_all(self._opened)

    def finish(self) -> int:
        """Its pid once it exec'd; raises UnitSpawnError."""
        try:
            process = self._launch.finish()
        except SpawnError as exc:
            raise _spawn_error(exc) from None
        if self._owner is not None:
            self._owner[0] = process.pid
        self._io._started(process)
        return process.pid


def _close_all(fds: list[int]) -> None:
    for fd in fds:
        os.close(fd)
    fds.clear()


class HeldLaunch:
    """A command's launch readied ahead (`UnitIO.prepare_start`): its child holds the plan."""

    __slots__ = ("index", "launch", "main_pid", "role")

    def __init__(self, role: Role, index: int, main_pid: int | None, launch: UnitLaunch) -> None:
        self.role = role
        self.index = index
        self.main_pid = main_pid  # what $MAINPID of its environment was built from
        self.launch = launch


class UnitContext:
    """What every unit's io shares; built once by `cinit.boot`."""

    def __init__(
        self,
        table: ProcessTable,
        base_env: Mapping[str, str],
        *,
        relay: OutputRelay | None = None,
        notify: NotifyHub | None = None,
        cgroups: CgroupTree | None = None,
        log_prefix: bool = True,
        userdb_root: str = "/",
        prepared: dict[str, PreparedChild] | None = None,
    ) -> None:
        self.table = table
        self.base_env = base_env
        self.relay = relay  # None: inherit cinit's fds
        self.notify = notify  # None: notify units cannot start
        self.cgroups = cgroups  # None: process groups
        self.log_prefix = log_prefix
        self.userdb_root = userdb_root
        self.closing = threading.Event()  # cinit is exiting
        self.sockets: ListenerRegistry | None = None  # listeners of activated services
        # Children forked at boot into their unit's cgroup (cinit.io.spawn.prepared), by unit name.
        self.prepared: dict[str, PreparedChild] = prepared if prepared is not None else {}
        # Starts readied ahead (`UnitIO.prepare_start`), by unit name: its next launch takes it.
        self.held: dict[str, HeldLaunch] = {}
        # Forks their children small (cinit.io.spawn.forker); None: cinit forks them itself.
        self.forker: Forker | None = None

    def discard_held(self) -> None:
        """cinit is exiting: the starts readied ahead will not come, nor more of them."""
        for held in self.held.values():
            held.launch.discard()
        self.held.clear()
        if self.forker is not None:
            self.forker.close()

    def without_cgroups(self) -> UnitContext:
        """The same context, sharing everything, but units get process groups."""
        import copy  # Accept=yes instances only: off the boot path

        other = copy.copy(self)
        other.cgroups = None
        return other


class UnitIO:
    """The processes, cgroup, output and notify socket of one unit."""

    def __init__(self, unit: Unit, context: UnitContext, owner: Tellable) -> None:
        if unit.service is None:
            raise ValueError(f"{unit.name} is not a service")
        self.context = context
        self.owner = owner
        self.processes: dict[int, Process] = {}  # spawned or adopted, exit not handled yet
        self.pgids: set[int] = set()  # process groups of the unit (the fallback's handle)
        self.cgroup: Cgroup | None = None
        self._cgroup_failed = False
        self._notify_socket = ""
        self._warned: set[str] = set()
        self._not_before: float | None = None
        self._readying = False  # building a launch ahead (`prepare_start`): problems unsaid
        # Accept=yes instance: its connection fd and REMOTE_ADDR/REMOTE_PORT (socket activator).
        self.connection: tuple[int, dict[str, str]] | None = None
        self.redefine(unit)

    def redefine(self, unit: Unit) -> None:
        """Use `unit`'s definition for the commands spawned from now on (daemon-reload,
        between two runs: the cgroup, processes and notify socket stay)."""
        service = unit.service
        if service is None:
            raise ValueError(f"{unit.name} is not a service")
        held = self.context.held.pop(unit.name, None)
        if held is not None:  # readied from the old definition
            held.launch.discard()
        self.unit = unit
        self.service = service
        self._has_directories = any(service.directories(kind) for kind in DirectoryKind)
        # Limit*= as SpawnRequest takes them: (name, soft, hard), -1 for infinity.
        self._rlimits = tuple(
            (name, limit.soft, limit.hard) for name, limit in service.limits().items()
        )

    def say(self, text: str) -> None:
        """One of cinit's lines about the unit, written after the output of the unit the
        relay still holds (its `exited` line never precedes its last output line)."""
        relay = self.context.relay
        log(text, after=relay.relayed_mark(self.unit.name) if relay is not None else None)

    # ---- conditions and spawning --------------------------------------------------------

    def unmet_condition(self) -> str | None:
        from cinit.io.environ import unmet_condition

        return unmet_condition(self.unit, self.context.base_env, self.context.userdb_root)

    def failed_assertion(self) -> str | None:
        from cinit.io.environ import failed_assertion

        return failed_assertion(self.unit, self.context.base_env, self.context.userdb_root)

    def spawn(self, role: Role, index: int, main_pid: int | None) -> int:
        """Start command `index` of `role`; returns its pid. Raises UnitSpawnError."""
        launch = self.launch(role, index, main_pid)
        launch.start()
        return launch.finish()

    def _say_problem(self, text: str) -> None:
        """Log a problem building a command, unless readying it ahead (`prepare_start`):
        the start's own launch meets it again and says it then, once."""
        if not self._readying:
            log(text)

    def start_not_before(self, at: float) -> None:
        """The next command launched runs no earlier than `at` (time.monotonic()): a timer's
        precise elapse, decided a moment ahead of it. Its launch waits, on time, for it."""
        self._not_before = at

    def prepare_start(self, role: Role, index: int, main_pid: int | None) -> bool:
        """Ready command `index` of `role`, the first of the unit's next start, ahead of it
        (a timer's elapse is near): a child forked into the unit's cgroup now carries its
        plan out up to the exec, which `launch` of that command then lets happen. The
        command's environment (EnvironmentFile= included) is read now, not at the start.
        False when nothing was readied (no cgroups, or building it failed: the start
        itself then says why)."""
        from cinit.io.spawn.prepared import prepare

        name = self.unit.name
        if self.context.closing.is_set() or name in self.context.held:
            return False
        cgroup = self._unit_cgroup()
        if not cgroup:
            return False
        child = prepare(cgroup, self.context.table, name, self.context.forker)
        if child is None:
            return False
        stale = self.context.prepared.pop(name, None)
        if stale is not None:
            stale.discard()
        self.context.prepared[name] = child
        self._readying = True  # its start meets any problem again and says it then
        try:
            launching = self._build_launch(role, index, main_pid)
        except UnitSpawnError:
            return False
        finally:
            self._readying = False
        if not launching.hold():
            launching.discard()
            return False
        self.context.held[name] = HeldLaunch(role, index, main_pid, launching)
        info(f"{name}: its start is readied ahead (pid {child.process.pid})")
        return True

    def launch(self, role: Role, index: int, main_pid: int | None) -> UnitLaunch:
        """Build the start of command `index` of `role` (`UnitLaunch.start` and `finish` do
        it; see `cinit.io.spawn.Launch`): the one readied ahead when it is that command.
        Raises UnitSpawnError."""
        not_before, self._not_before = self._not_before, None
        held = self.context.held.pop(self.unit.name, None)
        launching: UnitLaunch | None = None
        if held is not None:
            if (held.role, held.index, held.main_pid) == (role, index, main_pid):
                launching = held.launch
            else:
                held.launch.discard()
        if launching is None:
            launching = self._build_launch(role, index, main_pid)
        launching.not_before = not_before
        return launching

    def _build_launch(self, role: Role, index: int, main_pid: int | None) -> UnitLaunch:
        """A new launch of command `index` of `role`; raises UnitSpawnError."""
        # Taken first, and discarded when this start fails before `Launch` owns it: a
        # prepared child left waiting in the unit's cgroup keeps the unit from ever being
        # found empty, and the stop that follows the failure would wait for its timeout.
        prepared = self.context.prepared.pop(self.unit.name, None)
        opened: list[int] = []
        owner = [0]  # the pid its output lines are shown with (`cinit logs`), set by finish
        try:
            command = self._command(role, index)
            env = self._environment(role, main_pid, self._directories())
            pass_fds, fd_names = self._inherited_fds(role, env)
            words = expand_exec_words(command, env)
            path, argv = (words[0], words[1:]) if command.argv0_separate else ("", words)
            stdout, stderr = self._output_fds(opened, owner)
            workdir = self.service.working_directory
            request = SpawnRequest(
                argv,
                label=self.unit.name,
                path=path,
                env=env,
                stdout=stdout,
                stderr=stderr,
                pass_fds=pass_fds,
                listen_fds=bool(pass_fds),
                fd_names=fd_names,
                cwd=workdir.removeprefix("-"),
                cwd_optional=workdir.startswith("-"),
                user=self.service.user,
                group=self.service.group,
                cgroup=self._unit_cgroup(),
                userdb_root=self.context.userdb_root,
                rlimits=self._rlimits,
                umask=self.service.umask,
                nice=self.service.nice,
                oom_score_adjust=self.service.oom_score_adjust,
                ignore_sigpipe=self.service.ignore_sigpipe,
            )
        except BaseException:
            _close_all(opened)
            if prepared is not None:
                prepared.discard()
            raise
        try:
            launch = Launch(request, self.context.table, self.owner, prepared)  # owns it now
        except SpawnError as exc:
            _close_all(opened)
            if self._readying:
                raise UnitSpawnError(None) from None
            raise _spawn_error(exc) from None
        except BaseException:
            _close_all(opened)
            raise
        return UnitLaunch(self, launch, opened, owner)

    def _started(self, process: Process) -> None:
        self.processes[process.pid] = process
        # Groups are the fallback's handle, pruned only by the fallback: with a cgroup the
        # set grew by one per start, forever (+4 MiB over 100,000 restarts).
        if self.cgroup is None:
            self.pgids.add(process.pgid)

    def _inherited_fds(
        self, role: Role, env: dict[str, str]
    ) -> tuple[tuple[int, ...], tuple[str, ...]]:
        """Socket activation: the fds ExecStart= gets at 3, 4, ... and their names."""
        if role is not Role.START:
            return (), ()
        if self.connection is not None:
            fd, remote = self.connection
            env.update(remote)
            return (fd,), ("connection",)
        registry = self.context.sockets
        if registry is None:
            return (), ()
        fds, names = registry.fds_for(self.unit.name)
        return tuple(fds), tuple(names)

    def _command(self, role: Role, index: int) -> ExecCommand:
        return role_commands(self.service, role)[index]

    def _directories(self) -> dict[str, str]:
        """Create the exec directories (RuntimeDirectory=, ...) before each command, as
        systemd does (a command may have removed one); the variables naming them."""
        if not self._has_directories:
            return {}
        from cinit.io.exec_dirs import DirectoryError, prepare_directories

        uid = gid = -1
        if self.service.user or self.service.group:
            from cinit.io.userdb import resolve_credentials

            try:
                found = resolve_credentials(
                    self.service.user, self.service.group, self.context.userdb_root
                )
            except Exception:
                found = None
            if found is not None:
                uid = found.uid if self.service.user else -1
                gid = found.gid
        try:
            return prepare_directories(self.service, uid, gid)
        except DirectoryError as exc:
            self._say_problem(f"{self.unit.name}: {exc}")
            raise UnitSpawnError(exc.exit_code) from None

    def remove_runtime_directories(self) -> None:
        """The unit stopped: its RuntimeDirectory= goes (the machine decided it should)."""
        from cinit.io.exec_dirs import remove_runtime_directories

        for problem in remove_runtime_directories(self.service):
            log(f"{self.unit.name}: {problem}")

    def _environment(
        self, role: Role, main_pid: int | None, directories: dict[str, str]
    ) -> dict[str, str]:
        from cinit.io.environ import EnvironmentFileError, unit_environment

        extra: dict[str, str] = dict(directories)
        if notify_access(self.service) is not NotifyAccess.NONE:
            extra["NOTIFY_SOCKET"] = self._notify_address()
        if self.service.watchdog_sec > 0:
            extra["WATCHDOG_USEC"] = str(round(self.service.watchdog_sec * 1_000_000))
        if main_pid is not None and role is not Role.START:
            extra["MAINPID"] = str(main_pid)  # for ExecStop= and friends, as systemd does
        try:
            env, warnings = unit_environment(self.unit, self.context.base_env, extra)
        except EnvironmentFileError as exc:
            self._say_problem(str(exc))
            raise UnitSpawnError(None) from None
        for warning in warnings:
            if warning not in self._warned and not self._readying:  # once per unit
                self._warned.add(warning)
                log(warning)
        return env

    def _notify_address(self) -> str:
        if not self._notify_socket:
            hub = self.context.notify
            if hub is None:
                self._say_problem(
                    f"{self.unit.name}: no notification socket available (NOTIFY_SOCKET)"
                )
                raise UnitSpawnError(None)
            try:
                self._notify_socket = hub.open(self.unit.name, self.owner)
            except (OSError, RuntimeError) as exc:
                self._say_problem(f"{self.unit.name}: cannot create its notification socket: {exc}")
                raise UnitSpawnError(None) from None
        return self._notify_socket

    def _output_fds(self, opened: list[int], owner: list[int] | None = None) -> tuple[int, int]:
        """stdout and stderr for a new process; fds to close after the spawn go to `opened`."""
        from cinit.io.output import open_output_file

        svc = self.service
        try:
            stdout = open_output_file(svc.standard_output)
            if stdout is not None:
                opened.append(stdout)
            # cinit's directive table: `inherit` is cinit's own stdout/stderr (the container
            # log) for each stream; not systemd's "StandardError=inherit: as stdout".
            stderr = open_output_file(svc.standard_error)
            if stderr is not None:
                opened.append(stderr)
        except OSError as exc:
            self._say_problem(f"{self.unit.name}: cannot open its output file: {exc}")
            raise UnitSpawnError(EXIT_STDOUT) from None
        return self._relayed(stdout, 1, opened, owner), self._relayed(stderr, 2, opened, owner)

    def _relayed(
        self, fd: int | None, stream: int, opened: list[int], owner: list[int] | None
    ) -> int:
        if fd is not None:
            return fd
        relay = self.context.relay
        if relay is None:
            return stream
        identifier = self.service.syslog_identifier
        prefix = self.context.log_prefix
        pipe = int(relay.open_pipe(self.unit.name, stream, prefix, identifier, owner))
        opened.append(pipe)
        return pipe

    def _unit_cgroup(self) -> str:
        tree = self.context.cgroups
        if tree is None or self._cgroup_failed:
            return ""
        if self.cgroup is None:
            try:
                self.cgroup = tree.create(self.unit.name)
            except OSError as exc:
                self._cgroup_failed = True
                log(f"{self.unit.name}: cannot create its cgroup ({exc}); using process groups")
                return ""
        return self.cgroup.path

    # ---- processes ---------------------------------------------------------------------

    def take_exit(self, message: ProcessExit) -> bool:
        """Whether `message` is the (first) exit of a process of this unit."""
        return self.processes.pop(message.pid, None) is not None

    def pending_exits(self) -> list[ProcessExit]:
        """Exits collected but not yet handled (for an actor that was restarted)."""
        return [p.exit for p in self.processes.values() if p.exit is not None]

    def signal_main(self, pid: int, signo: int) -> None:
        process = self.processes.get(pid)
        if process is not None:
            process.send_signal(signo)

    def signal_unit(self, signo: int) -> None:
        """`signo` to every process of the unit, each once (a second SIGTERM is not
        harmless: a program may take it as "quit now"), then SIGCONT so that stopped
        ones can act on it."""
        signos = (signo,) if signo in (signal.SIGKILL, signal.SIGCONT) else (signo, signal.SIGCONT)
        if self.cgroup is not None:
            self._signal_cgroup(self.cgroup, signos)
        else:
            self._signal_groups(signos)

    def discard_prepared(self) -> None:
        """The unit will not start now: its child prepared at boot (or its start readied
        ahead) is not needed."""
        prepared = self.context.prepared.pop(self.unit.name, None)
        if prepared is not None:
            prepared.discard()
        held = self.context.held.pop(self.unit.name, None)
        if held is not None:
            held.launch.discard()

    def kill_unit(self) -> None:
        if self.cgroup is not None:
            self.cgroup.kill()
            for process in list(self.processes.values()):
                process.send_signal(signal.SIGKILL)  # adopted ones may live elsewhere
        else:
            self._signal_groups((signal.SIGKILL,))

    def _signal_cgroup(self, cgroup: Cgroup, signos: tuple[int, ...]) -> None:
        # Known processes through their own pidfds; only strangers (a daemon's children)
        # need the cgroup's pid list, read a second time after their pidfds are open so a
        # reused pid is never signalled. Fewer syscalls: 30 units stop at once, each
        # syscall a chance to wait for the GIL.
        known = {p.pid: p for p in self.processes.values() if p.alive}
        members = cgroup.pids()
        for process in known.values():
            for signo in signos:
                process.send_signal(signo)
        strangers: dict[int, int] = {}
        try:
            for pid in members:
                if pid not in known:
                    try:  # noqa: SIM105 - contextlib would be one more import on the boot path
                        strangers[pid] = os.pidfd_open(pid)
                    except OSError:
                        pass  # gone already
            if strangers:
                confirmed = set(cgroup.pids())
                for pid, pidfd in strangers.items():
                    if pid in confirmed:
                        for signo in signos:
                            try:  # noqa: SIM105 - contextlib would be one more import on the boot path
                                signal.pidfd_send_signal(pidfd, signo)
                            except ProcessLookupError:
                                pass  # exited meanwhile
        finally:
            for pidfd in strangers.values():
                os.close(pidfd)

    def _signal_groups(self, signos: tuple[int, ...]) -> None:
        """The fallback: every process group the unit started, and adopted processes."""
        leaders = {p.pgid: p for p in self.processes.values() if p.pgid > 0}
        for pgid in list(self.pgids):
            leader = leaders.get(pgid)
            for signo in signos:
                if leader is not None:
                    leader.signal_group(signo)
                else:
                    sweep.signal_descendants(signo, pgid=pgid)
        for process in list(self.processes.values()):
            if process.pgid <= 0 and not self._in_groups(process.pid):
                for signo in signos:
                    process.send_signal(signo)  # adopted, outside the unit's groups

    def _in_groups(self, pid: int) -> bool:
        try:
            return os.getpgid(pid) in self.pgids
        except OSError:
            return False

    def unit_empty(self) -> bool:
        """Whether no process of the unit is left (exits not yet handled count as left)."""
        if any(p.alive for p in self.processes.values()):
            return False
        if self.cgroup is not None:
            return not self.cgroup.populated()
        live = {p.pgid for p in self.processes.values() if p.alive}
        for pgid in list(self.pgids):
            if pgid not in live and not sweep.descendants(pgid=pgid):
                self.pgids.discard(pgid)  # empty: its id may be reused by a stranger now
        return not self.pgids

    def find_main_pid(self, hint: int | None, pid_file: str, guess: bool = True) -> int | str:
        """Adopt the unit's main process; its pid, or a reason why there is none.
        Without `guess` (GuessMainPID=no), only `hint` or `pid_file` name it."""
        if hint is not None:
            candidate = hint
        elif pid_file:
            try:
                with open(pid_file) as f:
                    text = f.read().strip()
            except OSError as exc:
                return f"PIDFile={pid_file}: {exc.strerror or exc}"
            if not text.isdigit() or int(text) <= 0:
                return f"PIDFile={pid_file} does not hold a pid: {text[:40]!r}"
            candidate = int(text)
            if self._not_ours(candidate):
                # A stale file whose pid now names another unit's process (as systemd, a
                # PID file may only name a process of the unit).
                return f"PIDFile={pid_file} names pid {candidate}, not a process of the unit"
        elif not guess:
            return "no PIDFile= and GuessMainPID=no"
        else:
            left = self._unit_pids()
            if len(left) != 1:
                return f"{len(left)} processes left in the unit, and no PIDFile="
            candidate = left[0]
        known = self.processes.get(candidate)
        if known is not None and known.alive:
            return candidate
        try:
            process = self.context.table.adopt(candidate, self.unit.name, self.owner)
        except OSError:
            return f"pid {candidate} is not a live child of cinit"
        self.processes[candidate] = process
        return candidate

    def _not_ours(self, pid: int) -> bool:
        """Whether `pid` is known to be another unit's: outside the unit's cgroup, or (with
        process groups) a process another owner holds."""
        if pid in self.processes:
            return False
        if self.cgroup is not None:
            return pid not in self.cgroup.pids()
        return any(p.pid == pid and p.owner is not self.owner for p in self.context.table.live())

    def _unit_pids(self) -> list[int]:
        if self.cgroup is not None:
            return self.cgroup.pids()
        found: list[int] = []
        for pgid in self.pgids:
            found.extend(sweep.descendants(pgid=pgid))
        return sorted(set(found))

    def accepts_notification(self, sender: int | None) -> bool:
        """Whether a notification from pid `sender` comes from a process of this unit."""
        if sender is None:
            return False
        known = self.processes.get(sender)
        if known is not None and known.alive:
            return True
        if self.cgroup is not None:
            return sender in self.cgroup.pids()
        try:
            return os.getpgid(sender) in self.pgids
        except OSError:
            return False
