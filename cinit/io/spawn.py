"""The one way cinit starts a process: fork, set the child up with `os.*` calls only, exec.

Why not `subprocess`: its exit-status bookkeeping competes with the reaper, and its
`preexec_fn` is unsafe in a threaded process. Why not `os.posix_spawn`: in Python 3.11 it
cannot change directory, user or cgroup, nor set LISTEN_PID to the child's own pid.

The child, in order: moves the error pipe out of the way, resets every signal disposition
to the default (CPython ignores SIGPIPE and SIGXFSZ, which must not leak), starts a new
session (or, for an interactive main command, a new process group that takes the terminal
foreground), joins the requested cgroup (before exec, so no descendant can escape), lays
out fds 0/1/2 and the passed fds at 3, 4, ... and closes everything else, switches groups
then gid then uid, changes directory, sets LISTEN_PID to its own pid when asked, empties
its signal mask and execs. Any failure is written to a close-on-exec pipe as
`stage:errno[:detail]` before `os._exit`; the parent reads that pipe to EOF, so EOF with no
data means the exec succeeded (the readiness signal of Type=exec). A failed spawn raises
`SpawnError`; its short-lived child is reaped silently, never reported as a unit exit.

The fork happens under `ProcessTable.lock`, which the reaper holds around each `waitpid`,
so the pid is registered (and its pidfd opened) before anybody can reap it.
"""

from __future__ import annotations

import _thread
import errno
import fcntl
import gc
import marshal
import os
import resource
import time

from cinit.boot_path import TYPE_CHECKING
from cinit.io import signals
from cinit.io.reaper import Process, ProcessTable

if TYPE_CHECKING:
    import signal
    from collections.abc import Callable, Mapping, Sequence
    from typing import NoReturn

    from cinit.io.prespawn import PreparedChild
    from cinit.io.reaper import ExitOwner
else:  # the C half of `signal`; the wrapper's enums would cost ~5 ms before the first exec
    import _signal as signal

DEVNULL = -1  # stdin/stdout/stderr: connect to /dev/null

# systemd's default search path, used when the environment has no PATH.
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Exit codes for failures before exec: a shell's 127/126 for exec itself, systemd's
# EXIT_* codes for the other stages (so `status=217/USER` reads as it does in systemd).
STAGE_EXIT_CODES = {
    "chdir": 200,
    "fds": 202,
    "signals": 207,
    "group": 216,
    "user": 217,
    "cgroup": 219,
    "session": 220,
}

_internal_signals_checked = False
_LISTEN_VARS = ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES")
_CATCHABLE_SIGNALS = tuple(
    int(s) for s in signal.valid_signals() if s not in (signal.SIGKILL, signal.SIGSTOP)
)
# Keep on trying PATH entries after these, as execvp does.
_SEARCH_ON = frozenset({errno.ENOENT, errno.ENOTDIR, errno.ESTALE, errno.ENODEV, errno.EACCES})
_MAX_FD = max(os.sysconf("SC_OPEN_MAX"), 1024)

_devnull_lock = _thread.allocate_lock()
_devnull_fd = -1


class SpawnRequest:
    """Everything needed to start one process.

    `argv[0]` is the program (looked up in the environment's PATH when it has no slash)
    unless `path` names it separately (the `@` prefix of Exec lines). `stdin`, `stdout`
    and `stderr` are fds of cinit to hand over (0/1/2 to inherit) or `DEVNULL`.
    `pass_fds` become fds 3, 4, ...; with `listen_fds` the child also gets LISTEN_FDS,
    LISTEN_FDNAMES (from `fd_names`) and LISTEN_PID set to its own pid. `cwd` may be `~`
    (the user's home); with `cwd_optional` a failing chdir is ignored (systemd's `-`).
    `user`/`group` are names or numbers, resolved from `userdb_root`/etc at spawn time.
    `cgroup` is a cgroup v2 directory to join before exec. `new_session=False` puts the
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
        "label",
        "listen_fds",
        "new_session",
        "pass_fds",
        "path",
        "stderr",
        "stdin",
        "stdout",
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


class SpawnError(Exception):
    """A process that could not be started; `str()` is the line to log.

    `stage` is where it failed (`exec`, `chdir`, `user`, `group`, `cgroup`, `fds`,
    `session`, `signals`, `fork`, `setup`; `user` and `group` also when User=/Group=
    name nobody, found before any fork), `errno` the error number (0 when
    none), `exit_code` what a shell (exec) or systemd (other stages) would report.
    """

    def __init__(
        self, label: str, path: str, stage: str, err: int, message: str, exit_code: int
    ) -> None:
        super().__init__(message)
        self.label = label
        self.path = path
        self.stage = stage
        self.errno = err
        self.exit_code = exit_code


# The fd limit processes cinit starts get, when cinit raised its own (`raise_fd_limit`).
_service_nofile: tuple[int, int] | None = None


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


def describe_errno(err: int) -> str:
    """`No such file or directory (ENOENT)`."""
    name = errno.errorcode.get(err, str(err))
    return f"{os.strerror(err)} ({name})"


def exec_candidates(path: str, env: Mapping[str, str]) -> list[str]:
    """Where to look for `path`: itself when it has a slash, else each PATH entry."""
    if "/" in path:
        return [path]
    search = env.get("PATH") or DEFAULT_PATH
    return [os.path.join(d or ".", path) for d in search.split(":")]


def _devnull() -> int:
    global _devnull_fd
    with _devnull_lock:
        if _devnull_fd < 0:
            _devnull_fd = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        return _devnull_fd


def _build_env(request: SpawnRequest) -> dict[str, str]:
    env = dict(os.environ if request.env is None else request.env)
    for name in _LISTEN_VARS:
        env.pop(name, None)
    if request.listen_fds:
        env["LISTEN_FDS"] = str(len(request.pass_fds))
        if request.fd_names:
            env["LISTEN_FDNAMES"] = ":".join(request.fd_names)
    return env


def spawn(
    request: SpawnRequest,
    table: ProcessTable,
    owner: ExitOwner | None = None,
    prepared: PreparedChild | None = None,
) -> Process:
    """Start `request` as a child of cinit owned by `owner`; returns once exec succeeded.

    Raises SpawnError when anything before or at exec fails; nothing keeps running then.
    Blocks for the fork and the child's set-up (1-2 ms here, mostly the fork itself).
    `prepared`, a child already waiting in `request.cgroup` (`cinit.io.prespawn`), is used
    instead of a fork when it still can be; otherwise it is discarded.
    """
    launch = Launch(request, table, owner, prepared)
    launch.start()
    return launch.finish()


class Launch:
    """One spawn in three steps, so that several can overlap: building it (the constructor:
    credentials, environment, the child's arguments; raises SpawnError), `start` (hand the
    command to the prepared child, or fork) and `finish` (wait for the exec). Starting
    several before finishing any lets their children set up and exec side by side instead
    of one after the other (the first wave of boot, `cinit.actors.first_wave`)."""

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
            self._build(request)
        except BaseException:
            # A prepared child nobody hands a command to waits in the unit's cgroup for
            # ever: the unit would never be found empty after this failure.
            if prepared is not None:
                prepared.discard()
            raise
        self.table = table
        self.owner = owner
        self.prepared = prepared
        self.process: Process | None = None
        self._read_report: Callable[[], bytes] | None = None

    def _build(self, request: SpawnRequest) -> None:
        """Credentials, environment and the child's arguments; raises SpawnError."""
        label = request.label
        env = _build_env(request)
        candidates = exec_candidates(request.path, env)
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
        self.sources = [_devnull() if fd == DEVNULL else fd for fd in standard]
        self.sources.extend(request.pass_fds)
        self.ignored = _ignored_signals()
        self.child_args = (
            request.new_session,
            request.foreground,
            credentials.groups if credentials else None,
            credentials.gid if credentials else -1,
            credentials.uid if credentials and request.user else -1,
            cwd,
            request.cwd_optional,
            request.listen_fds,
            env,
            request.argv,
            candidates,
        )
        self.request = request
        self._details = (cwd, candidates, credentials)  # for the error text

    def start(self) -> Process:
        """Hand the command over (or fork); raises SpawnError when nothing could start."""
        prepared, self.prepared = self.prepared, None
        if prepared is not None:
            if prepared.cgroup == self.request.cgroup and self._hand_to(prepared):
                assert self.process is not None
                return self.process
            prepared.discard()
        return self._fork()

    def finish(self) -> Process:
        """The process once it exec'd; raises SpawnError (its exit is then not reported)."""
        assert self.process is not None and self._read_report is not None, "not started"
        report = self._read_report()
        process = self.process
        process.started_at = time.monotonic()
        self.table.release(process, failed=bool(report))
        if report:
            raise _decode_failure(report, self.request, *self._details)
        return process

    def _hand_to(self, prepared: PreparedChild) -> bool:
        """Give the prepared child the command; False when it cannot be used."""
        from cinit.io.prespawn import claim_for_launch

        table = self.table
        if not prepared.wait_ready() or not claim_for_launch(
            table, prepared, self.request.label, self.owner
        ):
            return False
        payload = marshal.dumps((self.ignored, *self.child_args))
        if not prepared.send_command(payload, self.sources):
            table.release(prepared.process, failed=True)  # back to a silent exit
            return False
        self.process = prepared.process
        self._read_report = _prepared_report(prepared)
        return True

    def _fork(self) -> Process:
        request, label = self.request, self.request.label
        cgroup_fd = -1
        if request.cgroup:
            procs = os.path.join(request.cgroup, "cgroup.procs")
            try:
                cgroup_fd = os.open(procs, os.O_WRONLY | os.O_CLOEXEC)
            except OSError as exc:
                err = exc.errno or 0
                raise SpawnError(
                    label,
                    request.path,
                    "cgroup",
                    err,
                    f"{label}: cannot join cgroup {request.cgroup}: {describe_errno(err)}",
                    STAGE_EXIT_CODES["cgroup"],
                ) from None
        read_end, write_end = os.pipe()
        try:
            with self.table.lock:
                try:
                    pid = os.fork()
                except OSError as exc:
                    err = exc.errno or 0
                    raise SpawnError(
                        label, request.path, "fork", err,
                        f"{label}: cannot fork: {describe_errno(err)}", 1,
                    ) from None  # fmt: skip
                if pid == 0:
                    _child(write_end, self.ignored, self.sources, cgroup_fd, *self.child_args)
                process = _register(self.table, pid, label, self.owner)
        except BaseException:
            os.close(read_end)
            raise
        finally:
            os.close(write_end)
            if cgroup_fd >= 0:
                os.close(cgroup_fd)
        self.process = process
        self._read_report = _pipe_report(read_end)
        return process


def _pipe_report(read_end: int) -> Callable[[], bytes]:
    """What a forked child reports through its error pipe: b"" once it exec'd."""

    def read() -> bytes:
        try:
            return _read_all(read_end)
        finally:
            os.close(read_end)

    return read


def _prepared_report(prepared: PreparedChild) -> Callable[[], bytes]:
    def read() -> bytes:
        try:
            return prepared.read_report()
        finally:
            prepared.close()

    return read


def _register(table: ProcessTable, pid: int, label: str, owner: ExitOwner | None) -> Process:
    """Register a child forked under the table lock; kill it if that cannot be done."""
    try:
        return table.register_locked(pid, label, owner, pgid=pid)
    except OSError as exc:
        os.kill(pid, signal.SIGKILL)  # still unreaped (we hold the lock): pid is exact
        table.register_unhandled_locked(pid, label)
        raise SpawnError(
            label, "", "fork", exc.errno or 0, f"{label}: cannot open a pidfd: {exc}", 1
        ) from None


def _ignored_signals() -> list[int]:
    """Signals ignored in cinit: the only dispositions that survive exec, so the child resets
    them (CPython ignores SIGPIPE and SIGXFSZ; a parent may have ignored others, like nohup).
    Caught signals need nothing: exec resets them to the default by itself."""
    ignore = signal.SIG_IGN
    return [s for s in _CATCHABLE_SIGNALS if signal.getsignal(s) == ignore]


def _read_all(fd: int) -> bytes:
    chunks: list[bytes] = []
    while True:
        chunk = os.read(fd, 4096)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _decode_failure(
    report: bytes, request: SpawnRequest, cwd: str, candidates: list[str], credentials: object
) -> SpawnError:
    label = request.label
    stage, _, rest = report.decode("utf-8", "replace").partition(":")
    err_text, _, detail = rest.partition(":")
    err = int(err_text) if err_text.isdigit() else 0
    reason = describe_errno(err) if err else detail
    path = request.path
    if stage == "exec":
        if detail.isdigit() and int(detail) < len(candidates) and "/" not in request.path:
            path = candidates[int(detail)] if err == errno.EACCES else request.path
        code = 127 if err == errno.ENOENT else 126
        text = f"{label}: cannot execute {path}: {reason}"
        return SpawnError(label, path, stage, err, text, code)
    what = {
        "chdir": f"cannot change directory to {cwd}",
        "user": f"cannot switch to user {request.user}",
        "group": f"cannot switch to group {request.group or request.user}",
        "cgroup": f"cannot join cgroup {request.cgroup}",
        "fds": "cannot set up file descriptors",
        "session": "cannot start a new session",
        "signals": "cannot reset signal handling",
    }.get(stage, "cannot set up the child process")
    code = STAGE_EXIT_CODES.get(stage, 127)
    return SpawnError(label, path, stage, err, f"{label}: {what}: {reason}", code)


def _child(
    error_fd: int,
    ignored: list[int],
    sources: list[int],
    cgroup_fd: int,
    new_session: bool,
    foreground: bool,
    groups: tuple[int, ...] | None,
    gid: int,
    uid: int,
    cwd: str,
    cwd_optional: bool,
    listen_fds: bool,
    env: dict[str, str],
    argv: list[str],
    candidates: list[str],
) -> NoReturn:
    """Runs in the forked child: only os/signal calls, then exec or `_exit`. Never returns."""
    stage = "fds"
    code = 127
    try:
        gc.disable()  # no finalizers of the parent's objects may run here
        base = len(sources)  # fds below this are the child's layout
        error_fd = fcntl.fcntl(error_fd, fcntl.F_DUPFD_CLOEXEC, base)

        stage = "signals"
        for signo in ignored:
            signal.signal(signo, signal.SIG_DFL)

        stage = "session"
        if new_session:
            os.setsid()
        else:
            os.setpgid(0, 0)

        stage = "cgroup"
        if cgroup_fd >= 0:
            os.write(cgroup_fd, b"0")

        stage = "fds"
        lifted = []
        for target, fd in enumerate(sources):
            try:
                lifted.append(fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, base))
            except OSError as exc:
                if fd != target or exc.errno != errno.EBADF:
                    raise
                lifted.append(-1)  # inheriting a closed 0/1/2: it stays closed
        for target, fd in enumerate(lifted):
            if fd >= 0:
                os.dup2(fd, target)  # dup2 clears close-on-exec on the target
        os.closerange(base, error_fd)
        os.closerange(error_fd + 1, _MAX_FD)
        if foreground and os.isatty(0):
            try:  # noqa: SIM105 - contextlib would be one more import on the boot path
                os.tcsetpgrp(0, os.getpid())  # SIGTTOU is still blocked, so this is allowed
            except OSError:
                pass

        if groups is not None:
            stage = "group"
            os.setgroups(list(groups))
            os.setgid(gid)
        if uid >= 0:
            stage = "user"
            os.setuid(uid)

        if cwd:
            stage = "chdir"
            try:
                os.chdir(cwd)
            except OSError:
                if not cwd_optional:
                    raise

        if listen_fds:
            env["LISTEN_PID"] = str(os.getpid())

        if _service_nofile is not None:
            stage = "fds"
            resource.setrlimit(resource.RLIMIT_NOFILE, _service_nofile)

        stage = "signals"
        signal.pthread_sigmask(signal.SIG_SETMASK, ())

        stage = "exec"
        saved: OSError | None = None  # the error to report: EACCES wins over "not found"
        saved_index = 0
        for index, candidate in enumerate(candidates):
            try:
                os.execve(candidate, argv, env)
            except OSError as exc:
                if exc.errno not in _SEARCH_ON:
                    saved, saved_index = exc, index
                    break
                if saved is None or (exc.errno == errno.EACCES and saved.errno != errno.EACCES):
                    saved, saved_index = exc, index
        err = saved.errno if saved is not None and saved.errno else errno.ENOENT
        if len(candidates) > 1 and err in (errno.ENOTDIR, errno.ESTALE, errno.ENODEV):
            err = errno.ENOENT  # not found anywhere on PATH
        code = 127 if err == errno.ENOENT else 126
        _report(error_fd, f"exec:{err}:{saved_index}")
    except OSError as exc:
        code = STAGE_EXIT_CODES.get(stage, 127)
        _report(error_fd, f"{stage}:{exc.errno or 0}:")
    except BaseException as exc:
        _report(error_fd, f"{stage}:0:{type(exc).__name__}: {exc}")
    finally:
        os._exit(code)


def _report(fd: int, text: str) -> None:
    try:  # noqa: SIM105 - contextlib would be one more import on the boot path
        os.write(fd, text.encode("utf-8", "replace"))
    except BaseException:
        pass
