"""One spawn: a `SpawnRequest` made into a `ChildPlan`, carried out by a child, its exec awaited.

The plan is built in cinit (credentials, environment, exec paths, fd layout: the errors
found there need no child), then carried out either by a child prepared at boot in the
unit's cgroup (`cinit.io.spawn.prepared`) or by a fresh fork (`cinit.io.spawn.fork`).
Either way a failure the child reports raises a `SpawnError` here, and the process's exit
is then reaped silently, never reported as a unit exit.
"""

from __future__ import annotations

import _thread
import os
import resource
import stat

from cinit.boot_path import TYPE_CHECKING
from cinit.io import signals
from cinit.io.spawn.child import STAGE_EXIT_CODES
from cinit.io.spawn.fork import SpawnError, failure_from_report, fork_child, read_report
from cinit.io.spawn.plan import ChildPlan

if TYPE_CHECKING:
    import signal
    from collections.abc import Mapping, Sequence

    from cinit.io.reaper import ExitOwner, Process, ProcessTable
    from cinit.io.spawn.prepared import PreparedChild
else:  # the C half of `signal`; the wrapper's enums would cost ~5 ms before the first exec
    import _signal as signal

DEVNULL = -1  # stdin/stdout/stderr: connect to /dev/null

# systemd's default search path, used when the environment has no PATH.
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

_internal_signals_checked = False
_LISTEN_VARS = ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES")
_CATCHABLE_SIGNALS = tuple(
    int(s) for s in signal.valid_signals() if s not in (signal.SIGKILL, signal.SIGSTOP)
)

_devnull_lock = _thread.allocate_lock()
_devnull_fd = -1

# The fd limit processes cinit starts get, when cinit raised its own (`raise_fd_limit`).
_service_nofile: tuple[int, int] | None = None


class SpawnRequest:
    """Everything needed to start one process.

    `argv[0]` is the program (looked up in the environment's PATH when it has no slash)
    unless `path` names it separately (the `@` prefix of Exec lines). `stdin`, `stdout`
    and `stderr` are fds of cinit to hand over (0/1/2 to inherit) or `DEVNULL`.
    `pass_fds` become fds 3, 4, ...; with `listen_fds` the child also gets LISTEN_FDS,
    LISTEN_FDNAMES (from `fd_names`) and LISTEN_PID set to its own pid. `cwd` may be `~`
    (the user's home); with `cwd_optional` a failing chdir is ignored (systemd's `-`).
    `user`/`group` are names or numbers, resolved from `userdb_root`/etc at spawn time.
    `cgroup` is a cgroup v2 directory to join before exec. `rlimits` are Limit*= as
    (name, soft, hard) (`NOFILE`, -1 for infinity); `umask` (-1: cinit's), `nice` and
    `oom_score_adjust` (None: cinit's) and `ignore_sigpipe` are systemd.exec(5)'s
    UMask=, Nice=, OOMScoreAdjust= and IgnoreSIGPIPE=. `new_session=False` puts the
    child in a new process group of cinit's session instead and, with `foreground`, makes
    it the terminal's foreground group when stdin is a terminal (the interactive main
    command, as tini does).
    """

    __slots__ = (
        "argv",
        "cgroup",
        "cwd",
        "cwd_optional",
        "env",
        "fd_names",
        "foreground",
        "group",
        "ignore_sigpipe",
        "label",
        "listen_fds",
        "new_session",
        "nice",
        "oom_score_adjust",
        "pass_fds",
        "path",
        "rlimits",
        "stderr",
        "stdin",
        "stdout",
        "umask",
        "user",
        "userdb_root",
    )

    def __init__(
        self,
        argv: Sequence[str],
        *,
        label: str,
        path: str = "",
        env: Mapping[str, str] | None = None,
        stdin: int = DEVNULL,
        stdout: int = 1,
        stderr: int = 2,
        pass_fds: Sequence[int] = (),
        listen_fds: bool = False,
        fd_names: Sequence[str] = (),
        cwd: str = "",
        cwd_optional: bool = False,
        user: str = "",
        group: str = "",
        cgroup: str = "",
        new_session: bool = True,
        foreground: bool = False,
        userdb_root: str = "/",
        rlimits: Sequence[tuple[str, int, int]] = (),
        umask: int = -1,
        nice: int | None = None,
        oom_score_adjust: int | None = None,
        ignore_sigpipe: bool = False,
    ) -> None:
        if not argv:
            raise ValueError("SpawnRequest needs a non-empty argv")
        self.argv = list(argv)
        self.label = label
        self.path = path or self.argv[0]
        self.env = env
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr
        self.pass_fds = tuple(pass_fds)
        self.listen_fds = listen_fds
        self.fd_names = tuple(fd_names)
        self.cwd = cwd
        self.cwd_optional = cwd_optional
        self.user = user
        self.group = group
        self.cgroup = cgroup
        self.new_session = new_session
        self.foreground = foreground
        self.userdb_root = userdb_root
        self.rlimits = tuple(rlimits)
        self.umask = umask
        self.nice = nice
        self.oom_score_adjust = oom_score_adjust
        self.ignore_sigpipe = ignore_sigpipe


def exec_candidates(path: str, env: Mapping[str, str]) -> list[str]:
    """Where to look for `path`: itself when it has a slash, else each PATH entry."""
    if "/" in path:
        return [path]
    search = env.get("PATH") or DEFAULT_PATH
    return [os.path.join(d or ".", path) for d in search.split(":")]


def can_exec(program: str, env: Mapping[str, str]) -> bool:
    """Whether `program` is found where the spawn looks for it (`exec_candidates`) as an
    executable regular file."""
    for candidate in exec_candidates(program, env):
        try:
            regular = stat.S_ISREG(os.stat(candidate).st_mode)
        except OSError:
            continue
        if regular and os.access(candidate, os.X_OK):
            return True
    return False


def raise_fd_limit() -> None:
    """Raise cinit's soft RLIMIT_NOFILE to the hard limit (a proxy socket holds two fds per
    relayed connection); the processes it starts keep the limit cinit was given."""
    global _service_nofile
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == hard:
        return
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (OSError, ValueError):
        return
    _service_nofile = (soft, hard)


def service_fd_limit() -> tuple[int, int] | None:
    """The RLIMIT_NOFILE cinit was given, when `raise_fd_limit` raised its own; else None."""
    return _service_nofile


def spawn(
    request: SpawnRequest,
    table: ProcessTable,
    owner: ExitOwner | None = None,
    prepared: PreparedChild | None = None,
) -> Process:
    """Start `request` as a child of cinit owned by `owner`; returns once exec succeeded.

    Raises SpawnError when anything before or at exec fails; nothing keeps running then.
    Blocks for the fork and the child's set-up (1-2 ms here, mostly the fork itself).
    `prepared`, a child already waiting in `request.cgroup` (`cinit.io.spawn.prepared`), is
    used instead of a fork when it still can be; otherwise it is discarded.
    """
    launch = Launch(request, table, owner, prepared)
    launch.start()
    return launch.finish()


class Launch:
    """One spawn in three steps, so that several can overlap: building it (the constructor:
    the `ChildPlan`; raises SpawnError), `start` (hand the plan to the prepared child, or
    fork) and `finish` (wait for the exec). Starting several before finishing any lets
    their children set up and exec side by side instead of one after the other (the first
    wave of boot, `cinit.actors.first_wave`).

    A start known ahead (a timer's elapse) can `hold` before `start`: the prepared child
    gets the plan at once and carries it out up to its exec; `start` then only lets it
    exec (or forks afresh, when it is gone). `discard` drops a launch never started."""

    def __init__(
        self,
        request: SpawnRequest,
        table: ProcessTable,
        owner: ExitOwner | None = None,
        prepared: PreparedChild | None = None,
    ) -> None:
        global _internal_signals_checked
        if not _internal_signals_checked:  # once: an inherited SIG_IGN the child cannot undo
            signals.clear_inherited_internal_ignores()
            _internal_signals_checked = True
        try:
            self.plan = build_plan(request)
        except BaseException:
            # A prepared child nobody hands a plan to waits in the unit's cgroup for ever:
            # the unit would never be found empty after this failure.
            if prepared is not None:
                prepared.discard()
            raise
        self.request = request
        self.table = table
        self.owner = owner
        self.process: Process | None = None
        self._prepared = prepared  # until `start`
        self._handed: PreparedChild | None = None  # the prepared child carrying the plan out
        self._held: PreparedChild | None = None  # the prepared child holding the plan (`hold`)
        self._report_fd = -1  # or the forked child's report pipe

    def hold(self) -> bool:
        """Hand the plan to the prepared child now, to be carried out up to the exec, which
        waits for `start`; False (nothing changed) when there is no child that can hold it.
        Until `start` the child is nobody's: its exit is reaped silently. The request's fds
        stay open until `start` (a fresh fork takes them when the child is gone by then)."""
        prepared = self._prepared
        if prepared is None or prepared.cgroup != self.request.cgroup:
            return False
        if not prepared.wait_ready():
            return False
        self.plan.hold = True
        if not prepared.send_plan(self.plan):
            self.plan.hold = False
            return False
        self._prepared, self._held = None, prepared
        return True

    def discard(self) -> None:
        """Not started after all: its prepared child (holding the plan or not) goes."""
        for child in (self._prepared, self._held):
            if child is not None:
                child.discard()
        self._prepared = self._held = None

    def start(self) -> Process:
        """Hand the plan over (or fork); raises SpawnError when nothing could start."""
        held, self._held = self._held, None
        if held is not None:
            if self._release(held):
                return held.process
            held.discard()  # gone (its set-up failed, or it was killed): a fresh fork says why
            self.plan.hold = False
        prepared, self._prepared = self._prepared, None
        if prepared is not None:
            if prepared.cgroup == self.request.cgroup and self._hand_to(prepared):
                return prepared.process
            prepared.discard()
        self.process, self._report_fd = fork_child(self.plan, self.request, self.table, self.owner)
        return self.process

    def finish(self) -> Process:
        """The process once it exec'd; raises SpawnError (its exit is then not reported)."""
        process = self.process
        assert process is not None, "not started"
        if self._handed is not None:
            report = self._handed.read_report()
        else:
            report = read_report(self._report_fd)
        self.table.release(process, failed=bool(report))
        if report:
            raise failure_from_report(report, self.request, self.plan)
        return process

    def _release(self, held: PreparedChild) -> bool:
        """Let the child holding the plan exec; False when it cannot be used."""
        table = self.table
        if not table.hand_over(held.process, self.request.label, self.owner):
            return False
        if not held.release():
            table.release(held.process, failed=True)  # back to a silent exit
            return False
        self.process = held.process
        self._handed = held
        return True

    def _hand_to(self, prepared: PreparedChild) -> bool:
        """Give the prepared child the plan; False when it cannot be used."""
        table = self.table
        if not prepared.wait_ready() or not table.hand_over(
            prepared.process, self.request.label, self.owner
        ):
            return False
        if not prepared.send_plan(self.plan):
            table.release(prepared.process, failed=True)  # back to a silent exit
            return False
        self.process = prepared.process
        self._handed = prepared
        return True


def build_plan(request: SpawnRequest) -> ChildPlan:
    """What the child of `request` must do before exec; raises SpawnError when User=,
    Group= or a `~` directory cannot be resolved (no child is needed to find that out)."""
    label = request.label
    env = _build_env(request)
    credentials = None
    cwd = request.cwd
    stage = "user" if request.user else "group"
    try:
        if request.user or request.group:
            from cinit.io.userdb import resolve_credentials

            credentials = resolve_credentials(request.user, request.group, request.userdb_root)
        if cwd == "~" or cwd.startswith("~/"):
            from cinit.io.userdb import home_directory

            stage = "user"
            home = credentials.home if credentials else home_directory("", request.userdb_root)
            cwd = home + cwd[1:]
    except Exception as exc:  # userdb errors and unreadable files alike
        from cinit.io.userdb import UserDbError

        if isinstance(exc, UserDbError):
            stage = exc.stage  # which of User= and Group= names nobody
        code = STAGE_EXIT_CODES[stage]
        raise SpawnError(label, request.path, stage, 0, f"{label}: {exc}", code) from None
    standard = (request.stdin, request.stdout, request.stderr)
    fds = [_devnull() if fd == DEVNULL else fd for fd in standard]
    fds.extend(request.pass_fds)
    return ChildPlan(
        argv=request.argv,
        env=env,
        exec_paths=exec_candidates(request.path, env),
        fds=fds,
        reset_signals=_ignored_signals(),
        new_session=request.new_session,
        foreground=request.foreground,
        groups=list(credentials.groups) if credentials else None,
        gid=credentials.gid if credentials else -1,
        uid=credentials.uid if credentials and request.user else -1,
        cwd=cwd,
        cwd_optional=request.cwd_optional,
        listen_pid=request.listen_fds,
        fd_limit=_service_nofile,
        rlimits=[_rlimit(*limit) for limit in request.rlimits],
        umask=request.umask,
        nice=request.nice,
        oom_score_adjust=request.oom_score_adjust,
        ignore_sigpipe=request.ignore_sigpipe,
    )


RLIMIT_LOCKS = 10  # Linux's number; Python's resource module lacks it


def _rlimit(name: str, soft: int, hard: int) -> tuple[int, int, int]:
    """`name`: a resource the schema accepted (`cinit.units.model.LIMIT_NAMES`; not imported
    here: the `cinit.units` package is no part of a bare `cinit -- CMD`'s boot path)."""
    number = getattr(resource, "RLIMIT_" + name, RLIMIT_LOCKS)
    infinity = resource.RLIM_INFINITY
    return (number, infinity if soft < 0 else soft, infinity if hard < 0 else hard)


def _build_env(request: SpawnRequest) -> dict[str, str]:
    env = dict(os.environ if request.env is None else request.env)
    for name in _LISTEN_VARS:
        env.pop(name, None)
    if request.listen_fds:
        env["LISTEN_FDS"] = str(len(request.pass_fds))
        if request.fd_names:
            env["LISTEN_FDNAMES"] = ":".join(request.fd_names)
    return env


def _devnull() -> int:
    global _devnull_fd
    with _devnull_lock:
        if _devnull_fd < 0:
            _devnull_fd = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        return _devnull_fd


def _ignored_signals() -> list[int]:
    """Signals ignored in cinit: the only dispositions that survive exec, so the child resets
    them (CPython ignores SIGPIPE and SIGXFSZ; a parent may have ignored others, like nohup).
    Caught signals need nothing: exec resets them to the default by itself."""
    ignore = signal.SIG_IGN
    return [s for s in _CATCHABLE_SIGNALS if signal.getsignal(s) == ignore]
