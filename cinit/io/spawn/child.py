"""The code a child of cinit runs between fork and exec: it carries out a `ChildPlan`.

Only `os`/`fcntl`/`resource`/`_signal` calls run here (the child of a threaded parent
may find any lock held), then exec or `os._exit`; it never returns. A failure is reported
on `error_fd`, close-on-exec, as `stage:errno:detail` (`detail`: for `exec`, the index in
`exec_paths` of the error reported; for a non-OS error, its text), so the parent reading
that fd to end of file sees nothing once the exec succeeded. The exit code of a failure is
`STAGE_EXIT_CODES[stage]`, or a shell's 127/126 for exec itself.
"""

from __future__ import annotations

import errno
import fcntl
import gc
import os
import resource

from cinit.boot_path import TYPE_CHECKING

if TYPE_CHECKING:
    import signal
    from typing import NoReturn

    from cinit.io.spawn.plan import ChildPlan
else:  # the C half of `signal`; the wrapper's enums would cost ~5 ms before the first exec
    import _signal as signal

# systemd's EXIT_* codes for the stages before exec (`status=217/USER` reads as in systemd).
STAGE_EXIT_CODES = {
    "chdir": 200,
    "nice": 201,
    "limits": 205,
    "oom_adjust": 206,
    "fds": 202,
    "signals": 207,
    "group": 216,
    "user": 217,
    "cgroup": 219,
    "session": 220,
}

# What a held child (`ChildPlan.hold`) waits for on its channel before its exec.
GO = b"go"

# Keep on trying the next of `exec_paths` after these, as execvp does.
_SEARCH_ON = frozenset({errno.ENOENT, errno.ENOTDIR, errno.ESTALE, errno.ENODEV, errno.EACCES})
_MAX_FD = max(os.sysconf("SC_OPEN_MAX"), 1024)


def carry_out(plan: ChildPlan, error_fd: int) -> NoReturn:
    """Set the child up as `plan` says and exec; on failure report it on `error_fd`."""
    stage = "fds"
    code = 127
    try:
        gc.disable()  # no finalizers of the parent's objects may run here
        fds = plan.fds
        base = len(fds)  # fds below this are the child's layout
        error_fd = fcntl.fcntl(error_fd, fcntl.F_DUPFD_CLOEXEC, base)

        stage = "signals"
        for signo in plan.reset_signals:
            signal.signal(signo, signal.SIG_DFL)
        if plan.ignore_sigpipe:
            signal.signal(signal.SIGPIPE, signal.SIG_IGN)

        stage = "session"
        if plan.new_session:
            os.setsid()
        else:
            os.setpgid(0, 0)

        stage = "cgroup"
        if plan.cgroup_fd >= 0:
            os.write(plan.cgroup_fd, b"0")

        stage = "fds"
        _lay_out(fds, base, error_fd)
        if plan.foreground and os.isatty(0):
            try:  # noqa: SIM105 - contextlib would be one more import on the boot path
                os.tcsetpgrp(0, os.getpid())  # SIGTTOU is still blocked, so this is allowed
            except OSError:
                pass

        # Before the credentials change: a lower nice level, a lower OOM score and a higher
        # hard limit each need privileges the service's user lacks.
        if plan.nice is not None:
            stage = "nice"
            _set_nice_closest(plan.nice)
        if plan.oom_score_adjust is not None:
            stage = "oom_adjust"
            _write_oom_score_adjust(plan.oom_score_adjust)
        if plan.fd_limit is not None:
            stage = "fds"
            resource.setrlimit(resource.RLIMIT_NOFILE, plan.fd_limit)
        if plan.rlimits:
            stage = "limits"
            for which, soft, hard in plan.rlimits:
                _set_limit_closest(which, soft, hard)

        if plan.groups is not None:
            stage = "group"
            os.setgroups(plan.groups)
            os.setgid(plan.gid)
        if plan.uid >= 0:
            stage = "user"
            os.setuid(plan.uid)

        if plan.umask >= 0:
            os.umask(plan.umask)

        if plan.cwd:
            stage = "chdir"
            try:
                os.chdir(plan.cwd)
            except OSError:
                if not plan.cwd_optional:
                    raise

        if plan.listen_pid:
            plan.env["LISTEN_PID"] = str(os.getpid())

        if plan.hold:  # set up ahead of the start: exec once it comes
            stage = "hold"
            if os.read(error_fd, len(GO)) != GO:
                os._exit(0)  # not needed after all (discarded, or cinit went away)

        stage = "signals"
        signal.pthread_sigmask(signal.SIG_SETMASK, ())

        stage = "exec"
        err, index = _exec(plan)
        code = 127 if err == errno.ENOENT else 126
        report_failure(error_fd, f"exec:{err}:{index}")
    except OSError as exc:
        code = STAGE_EXIT_CODES.get(stage, 127)
        report_failure(error_fd, f"{stage}:{exc.errno or 0}:")
    except BaseException as exc:
        report_failure(error_fd, f"{stage}:0:{type(exc).__name__}: {exc}")
    finally:
        os._exit(code)


def _set_nice_closest(nice: int) -> None:
    """Nice=, or as close as allowed, as systemd's setpriority_closest(): a lower level
    needs CAP_SYS_NICE, which Docker drops; refused, the child goes as low as its
    RLIMIT_NICE lets it (or stays where it is, when that is lower already)."""
    try:
        os.setpriority(os.PRIO_PROCESS, 0, nice)
        return
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EACCES):
            raise
        refused = exc
    current = os.getpriority(os.PRIO_PROCESS, 0)
    if nice >= current:  # raising the level is always allowed: the call itself is blocked
        raise refused
    target = max(nice, _lowest_nice(resource.getrlimit(resource.RLIMIT_NICE)[0]))
    if target < current:
        os.setpriority(os.PRIO_PROCESS, 0, target)


def _lowest_nice(soft: int) -> int:
    """The lowest nice level RLIMIT_NICE `soft` allows (the kernel's 20 - N encoding)."""
    if soft == resource.RLIM_INFINITY:
        return -20
    return 19 if soft <= 1 else max(20 - soft, -20)


def _set_limit_closest(which: int, soft: int, hard: int) -> None:
    """setrlimit, or as close as allowed, as systemd's setrlimit_closest(): raising a hard
    limit needs CAP_SYS_RESOURCE, which a container seldom has (redis ships
    LimitNOFILE=65535): refused, both limits are capped at the hard limit cinit has."""
    infinity = resource.RLIM_INFINITY
    try:
        resource.setrlimit(which, (soft, hard))
        return
    except ValueError:  # Python's word for EPERM when raising the hard limit
        pass
    except OSError as exc:
        if exc.errno != errno.EPERM:
            raise
    highest = resource.getrlimit(which)[1]
    if highest == infinity:  # nothing to cap at: refused for another reason
        raise OSError(errno.EPERM, "")

    def capped(value: int) -> int:
        return highest if value == infinity else min(value, highest)

    try:
        resource.setrlimit(which, (capped(soft), capped(hard)))
    except ValueError:
        raise OSError(errno.EPERM, "") from None


def _write_oom_score_adjust(value: int) -> None:
    """OOMScoreAdjust=. Lowering the score needs CAP_SYS_RESOURCE, which a container seldom
    has (Docker drops it): refused for want of privilege, it is ignored, as systemd does
    ("assuming containerized execution"); dbus and postgresql ship -900."""
    try:
        fd = os.open("/proc/self/oom_score_adj", os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, str(value).encode())
        finally:
            os.close(fd)
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EACCES):
            raise


def _lay_out(fds: list[int], base: int, error_fd: int) -> None:
    """`fds[i]` becomes fd i (inheritable); every other fd but `error_fd` is closed."""
    lifted = []
    for target, fd in enumerate(fds):
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


def _exec(plan: ChildPlan) -> tuple[int, int]:
    """Exec the first of `exec_paths` that can be; when none can, the errno to report and
    the index of the path it came from (EACCES wins over "not found", as in execvp)."""
    saved: OSError | None = None
    saved_index = 0
    paths = plan.exec_paths
    for index, path in enumerate(paths):
        try:
            os.execve(path, plan.argv, plan.env)
        except OSError as exc:
            if exc.errno not in _SEARCH_ON:
                saved, saved_index = exc, index
                break
            if saved is None or (exc.errno == errno.EACCES and saved.errno != errno.EACCES):
                saved, saved_index = exc, index
    err = saved.errno if saved is not None and saved.errno else errno.ENOENT
    if len(paths) > 1 and err in (errno.ENOTDIR, errno.ESTALE, errno.ENODEV):
        err = errno.ENOENT  # not found anywhere on PATH
    return err, saved_index


def report_failure(fd: int, text: str) -> None:
    """Write a failure report (`stage:errno:detail`) for the parent; never raises."""
    try:  # noqa: SIM105 - contextlib would be one more import on the boot path
        os.write(fd, text.encode("utf-8", "replace"))
    except BaseException:
        pass
