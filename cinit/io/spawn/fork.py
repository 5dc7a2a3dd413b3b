"""A fresh fork that carries out a `ChildPlan`; a child's failure report made a `SpawnError`.

The fork happens under `ProcessTable.lock`, which the reaper holds around each `waitpid`,
so the pid is registered (and its pidfd opened) before anybody can reap it. The child
joins its cgroup through a cgroup.procs fd opened here, before the fork (so a missing
cgroup fails in cinit, with no child), and reports on a close-on-exec pipe
(`cinit.io.spawn.child`): end of file with no data means the exec succeeded. A prepared
child reports the same way on its channel (`cinit.io.spawn.prepared`): `failure_from_report`
reads both.
"""

from __future__ import annotations

import errno
import os

from cinit.boot_path import TYPE_CHECKING
from cinit.io.spawn.child import STAGE_EXIT_CODES, carry_out

if TYPE_CHECKING:
    import signal

    from cinit.io.reaper import ExitOwner, Process, ProcessTable
    from cinit.io.spawn.launch import SpawnRequest
    from cinit.io.spawn.plan import ChildPlan
else:  # the C half of `signal`; the wrapper's enums would cost ~5 ms before the first exec
    import _signal as signal


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


def describe_errno(err: int) -> str:
    """`No such file or directory (ENOENT)`."""
    name = errno.errorcode.get(err, str(err))
    return f"{os.strerror(err)} ({name})"


def fork_child(
    plan: ChildPlan, request: SpawnRequest, table: ProcessTable, owner: ExitOwner | None
) -> tuple[Process, int]:
    """Fork a child into `request.cgroup` that carries out `plan`: the process, registered
    and held until `table.release`, and the read end of its report pipe (`read_report`).
    Raises SpawnError when no child could be started."""
    label = request.label
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
    plan.cgroup_fd = cgroup_fd
    try:
        with table.lock:
            try:
                pid = os.fork()
            except OSError as exc:
                err = exc.errno or 0
                raise SpawnError(
                    label, request.path, "fork", err,
                    f"{label}: cannot fork: {describe_errno(err)}", 1,
                ) from None  # fmt: skip
            if pid == 0:
                carry_out(plan, write_end)
            process = _register_locked(table, pid, label, owner)
    except BaseException:
        os.close(read_end)
        raise
    finally:
        plan.cgroup_fd = -1
        os.close(write_end)
        if cgroup_fd >= 0:
            os.close(cgroup_fd)
    return process, read_end


def read_report(read_end: int) -> bytes:
    """What the child reported on its pipe, read to end of file (b"": it exec'd); closes
    `read_end`."""
    chunks: list[bytes] = []
    try:
        while chunk := os.read(read_end, 4096):
            chunks.append(chunk)
    finally:
        os.close(read_end)
    return b"".join(chunks)


def _register_locked(table: ProcessTable, pid: int, label: str, owner: ExitOwner | None) -> Process:
    """Register a child forked under the table lock; kill it if that cannot be done."""
    try:
        return table.register_locked(pid, label, owner, pgid=pid)
    except OSError as exc:
        os.kill(pid, signal.SIGKILL)  # still unreaped (we hold the lock): pid is exact
        table.register_unhandled_locked(pid, label)
        raise SpawnError(
            label, "", "fork", exc.errno or 0, f"{label}: cannot open a pidfd: {exc}", 1
        ) from None


def failure_from_report(report: bytes, request: SpawnRequest, plan: ChildPlan) -> SpawnError:
    """The SpawnError a child's failure report (`stage:errno:detail`) stands for."""
    label = request.label
    stage, _, rest = report.decode("utf-8", "replace").partition(":")
    err_text, _, detail = rest.partition(":")
    err = int(err_text) if err_text.isdigit() else 0
    reason = describe_errno(err) if err else detail
    path = request.path
    if stage == "exec":
        paths = plan.exec_paths
        if detail.isdigit() and int(detail) < len(paths) and "/" not in request.path:
            path = paths[int(detail)] if err == errno.EACCES else request.path
        code = 127 if err == errno.ENOENT else 126
        text = f"{label}: cannot execute {path}: {reason}"
        return SpawnError(label, path, stage, err, text, code)
    what = {
        "chdir": f"cannot change directory to {plan.cwd}",
        "user": f"cannot switch to user {request.user}",
        "group": f"cannot switch to group {request.group or request.user}",
        "cgroup": f"cannot join cgroup {request.cgroup}",
        "fds": "cannot set up file descriptors",
        "session": "cannot start a new session",
        "signals": "cannot reset signal handling",
        "nice": f"cannot set the nice level {plan.nice}",
        "oom_adjust": f"cannot set the OOM score adjustment {plan.oom_score_adjust}",
        "limits": "cannot set its resource limits (Limit*=)",
    }.get(stage, "cannot set up the child process")
    code = STAGE_EXIT_CODES.get(stage, 127)
    return SpawnError(label, path, stage, err, f"{label}: {what}: {reason}", code)
