"""Children forked ahead of time into a unit's cgroup, handed their plan when the unit starts.

Moving a process into a cgroup v2 makes the kernel wait for an RCU grace period (the
cgroup_threadgroup_rwsem switches to its slow mode), ~15-25 ms on the development host,
paid again after each quiet spell. A child that joins its cgroup just before exec pays it
on the unit's start path: every link of a chain of units, and cinit's own start.

So `cinit.boot`, right after loading the units and before importing the actor tree, forks
one `PreparedChild` per boot service: it closes every fd but its channel, joins the unit's
cgroup, says `ready` and waits. The grace period passes while cinit imports. When the unit
starts, `cinit.io.spawn.spawn` hands the child its `ChildPlan` over the channel, a
SOCK_SEQPACKET socketpair (the plan's wire form, `cinit.io.spawn.plan`: marshal, and its
fds as SCM_RIGHTS); the child then carries the plan out exactly as a freshly forked child
does (`cinit.io.spawn.child`) and execs, reporting failures over the same channel. Being
forked before any thread exists, the children are clean forks.

The children prepared at boot also wait at a gate (a pipe whose write end only cinit
holds) once they have their plan: the first wave hands out every plan, then opens the gate
(`EarlyUnits.open_gate`) and they all exec together. A child that execs as soon as it
has its plan competes for the CPUs with cinit while it hands out the rest: with
30 units, the last exec came ~160 ms after the first (~5 ms behind the gate).

A child that is not used (its unit was skipped or cancelled) is discarded: SIGKILL through
its pidfd and its channel closed; one whose parent goes away reads EOF and exits. Its exit
is reaped silently (`ProcessTable.register_waiting_locked`) until `ProcessTable.hand_over`
gives it an owner.
"""

from __future__ import annotations

import gc
import os
import sys

from cinit.boot_path import TYPE_CHECKING
from cinit.io.cgroup import CgroupTree
from cinit.io.spawn.child import GO, STAGE_EXIT_CODES, carry_out, report_failure
from cinit.io.spawn.plan import ChildPlan

if TYPE_CHECKING:
    import signal
    import socket
    from collections.abc import Collection
    from typing import NoReturn

    from cinit.io.reaper import Process, ProcessTable
    from cinit.io.spawn.forker import Forker
else:  # the C halves of `signal` and `socket`: their enum wrappers (and socket's import
    # of selectors) cost the boot path ~10 ms
    import _signal as signal
    import _socket as socket

# Boot services prepared at most: each one's fork (~0.5 ms) is work before the first start.
MAX_PREPARED = 64
# Largest plan message (argv + environment); a larger one falls back to a fresh fork.
MAX_PLAN_BYTES = 1 << 20
MAX_FDS = 253  # SCM_RIGHTS limit per message
READY = b"ready"


class PreparedChild:
    """A forked child waiting in `cgroup` for its plan (see the module docstring)."""

    __slots__ = ("_ready", "cgroup", "channel", "process")

    def __init__(self, cgroup: str, channel: socket.socket, process: Process) -> None:
        self.cgroup = cgroup
        self.channel = channel
        self.process = process
        self._ready: bool | None = None

    def wait_ready(self) -> bool:
        """Block until the child joined its cgroup; False when it cannot be used."""
        if self._ready is None:
            try:
                self._ready = self.channel.recv(256) == READY
            except OSError:
                self._ready = False
        return self._ready

    def send_plan(self, plan: ChildPlan) -> bool:
        """Hand over the plan; False when the child is gone or the message too big."""
        try:
            fds = plan.fds
            rights = b"".join(fd.to_bytes(4, sys.byteorder) for fd in fds)
            ancillary = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, rights)] if fds else []
            self.channel.sendmsg([plan.to_wire()], ancillary)
        except OSError:
            return False
        return True

    def release(self) -> bool:
        """Let a child that holds its plan (`ChildPlan.hold`) exec; False when it is gone."""
        try:
            self.channel.send(GO)
        except OSError:
            return False
        return True

    def read_report(self) -> bytes:
        """What the child reports before exec, b"" once it exec'd (its end is close-on-exec);
        closes the channel."""
        chunks: list[bytes] = []
        try:
            while True:
                try:
                    chunk = self.channel.recv(4096)
                except OSError:
                    chunk = b""
                if not chunk:
                    return b"".join(chunks)
                chunks.append(chunk)
        finally:
            self.channel.close()

    def close(self) -> None:
        self.channel.close()

    def discard(self) -> None:
        """Not needed: kill the child (its exit is reaped silently) and close the channel."""
        self.process.send_signal(signal.SIGKILL)
        self.channel.close()


class EarlyUnits:
    """What boot sets up before the actor tree: cinit's cgroup subtree (None: process
    groups), the children prepared for the first services, by unit name, and the write
    end of their gate (-1 once open, or when there is none)."""

    __slots__ = ("cgroups", "gate", "prepared")

    def __init__(
        self, cgroups: CgroupTree | None, prepared: dict[str, PreparedChild], gate: int = -1
    ) -> None:
        self.cgroups = cgroups
        self.prepared = prepared
        self.gate = gate

    def open_gate(self) -> None:
        """Let the children that have their plan exec (and any later one at once)."""
        if self.gate >= 0:
            os.close(self.gate)
            self.gate = -1

    def keep(self, names: Collection[str]) -> None:
        """Discard the children prepared for units other than `names` (not started at boot)."""
        for name in [name for name in self.prepared if name not in names]:
            self.prepared.pop(name).discard()


class Preparation:
    """The children of boot being forked (see `prepare_units`); `collect` waits for them."""

    __slots__ = ("_batch", "_gate", "_table", "_tree")

    def __init__(
        self, tree: CgroupTree | None, batch: _Batch | None, table: ProcessTable, gate: int
    ) -> None:
        self._tree = tree
        self._batch = batch
        self._table = table
        self._gate = gate

    def collect(self) -> EarlyUnits:
        """The prepared children, registered in the process table."""
        prepared = self._batch.register(self._table) if self._batch is not None else {}
        return EarlyUnits(self._tree, prepared, self._gate)


def prepare_units(names: list[str], table: ProcessTable, *, adopts: bool = False) -> Preparation:
    """Find cinit's cgroup subtree, create the cgroup of each of `names` (a mkdir costs
    little now, more once units start and move processes), and prepare a child in the
    cgroups of the first MAX_PREPARED, behind a gate that is closed until `open_gate`.

    When cinit `adopts` orphans (PID 1, or a subreaper), a helper process forks the
    children and exits, leaving them to cinit: ~0.5 ms per fork off cinit's own path,
    spent on the other CPU while cinit loads the units. `Preparation.collect` registers them."""
    tree = CgroupTree.for_instance()
    if tree is None:
        return Preparation(None, None, table, -1)
    paths: dict[str, str] = {}
    for name in names:
        try:
            paths[name] = tree.create(name).path
        except OSError:
            continue  # the unit's io reports it when it starts
        if len(paths) == MAX_PREPARED:
            break
    gate_exit, gate = os.pipe2(os.O_CLOEXEC)
    batch = _Batch.fork(paths, gate_exit, through_helper=adopts)
    os.close(gate_exit)
    return Preparation(tree, batch, table, gate)


def prepare(
    cgroup: str, table: ProcessTable, label: str, forker: Forker | None = None
) -> PreparedChild | None:
    """Fork a child that joins `cgroup` and waits; None (nothing to clean) when that fails.
    With a `forker` (`cinit.io.spawn.forker`), the helper forks it (a small child)."""
    if forker is None:
        return prepare_many({label: cgroup}, table).get(label)
    try:
        procs = os.open(os.path.join(cgroup, "cgroup.procs"), os.O_WRONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        parent_end, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    except OSError:
        os.close(procs)
        return None
    try:
        pid = forker.fork_waiting(procs, child_end.fileno())
    finally:
        os.close(procs)
        child_end.close()
    if pid is None:
        parent_end.close()
        return None
    with table.lock:
        try:
            process = table.register_waiting_locked(pid, label)
        except OSError:  # gone already (reaped as an orphan): nothing to clean
            parent_end.close()
            return None
    return PreparedChild(cgroup, parent_end, process)


def prepare_many(
    cgroups: dict[str, str], table: ProcessTable, gate: int = -1
) -> dict[str, PreparedChild]:
    """Fork one waiting child per `label: cgroup`; the ones that could not be made are
    left out (nothing to clean for them). With a `gate` (the read end of a pipe), each
    waits for its end of file between getting its plan and carrying it out."""
    with table.lock:  # registered before the reaper may see an exit
        return _Batch.fork(cgroups, gate, through_helper=False).register_locked(table)


class _Batch:
    """Children forked in one go, by cinit itself or by a helper process.

    Everything but the forks happens before or after them: each fork makes the parent's
    pages copy-on-write again, so Python work between two forks pays page faults (a
    loop doing the set-up around each fork took 3x as long for 30 children)."""

    __slots__ = ("_helper", "_pids", "_report", "channels")

    def __init__(self, channels: list[tuple[str, str, socket.socket]]) -> None:
        self.channels = channels  # (label, cgroup, cinit's end), in fork order
        self._pids: list[int] = []
        self._helper = -1
        self._report = -1

    @classmethod
    def fork(cls, cgroups: dict[str, str], gate: int, *, through_helper: bool) -> _Batch:
        """Fork the children; forked directly, they are registered with `register_locked`
        under the same hold of the table's lock (the reaper must not see an exit first)."""
        ends: list[tuple[int, socket.socket]] = []
        channels: list[tuple[str, str, socket.socket]] = []
        for label, cgroup in cgroups.items():
            try:
                procs = os.open(os.path.join(cgroup, "cgroup.procs"), os.O_WRONLY | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                parent_end, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            except OSError:
                os.close(procs)
                continue
            ends.append((procs, child_end))
            channels.append((label, cgroup, parent_end))
        batch = cls(channels)
        if not ends:
            return batch
        if through_helper:
            report, report_exit = os.pipe2(os.O_CLOEXEC)
            try:
                batch._helper = os.fork()
            except OSError:
                os.close(report)
            else:
                if batch._helper == 0:
                    _fork_for_cinit(ends, gate, report_exit)
                batch._report = report
            os.close(report_exit)
        else:
            batch._pids = _fork_each(ends, gate)
        for procs, child_end in ends:
            child_end.close()
            os.close(procs)
        return batch

    def register(self, table: ProcessTable) -> dict[str, PreparedChild]:
        """Wait for the helper's report, then `register_locked`."""
        if self._report >= 0:
            self._pids = _read_pids(self._report)
            self._report = -1
        if self._helper > 0:
            try:  # noqa: SIM105 - contextlib would be one more import on the boot path
                os.waitpid(self._helper, 0)
            except ChildProcessError:
                pass  # gone: its children are cinit's now
            self._helper = -1
        with table.lock:
            return self.register_locked(table)

    def register_locked(self, table: ProcessTable) -> dict[str, PreparedChild]:
        """The children that exist, as PreparedChild by label; the others' channels closed.
        The caller holds the table's lock."""
        made: dict[str, PreparedChild] = {}
        for index, (label, cgroup, parent_end) in enumerate(self.channels):
            if index >= len(self._pids):  # never forked
                parent_end.close()
                continue
            pid = self._pids[index]
            try:
                process = table.register_waiting_locked(pid, label)
            except OSError:  # no pidfd: it finds its channel closed and exits, reaped silently
                parent_end.close()
                table.register_unhandled_locked(pid, label)
                continue
            made[label] = PreparedChild(cgroup, parent_end, process)
        return made


def _fork_each(ends: list[tuple[int, socket.socket]], gate: int) -> list[int]:
    """Fork one waiting child per (cgroup.procs fd, channel end); their pids, in order."""
    pids: list[int] = []
    try:
        for procs, child_end in ends:
            pid = os.fork()
            if pid == 0:
                wait_for_plan(child_end.fileno(), procs, gate)
            pids.append(pid)
    except OSError:
        pass  # out of processes: the ones forked so far are used
    return pids


def _fork_for_cinit(ends: list[tuple[int, socket.socket]], gate: int, report: int) -> NoReturn:
    """In the helper: fork the children, report their pids to cinit, and exit (the
    children become cinit's: it is PID 1 or a subreaper)."""
    code = 1
    try:
        gc.disable()
        pids = _fork_each(ends, gate)
        os.write(report, " ".join(map(str, pids)).encode())  # < PIPE_BUF: one atomic write
        code = 0
    finally:
        os._exit(code)


def _read_pids(report: int) -> list[int]:
    """The helper's report; end of file once it and every child it forked closed the pipe."""
    chunks: list[bytes] = []
    try:
        while chunk := os.read(report, 4096):
            chunks.append(chunk)
    except OSError:
        pass
    finally:
        os.close(report)
    return [int(word) for word in b"".join(chunks).split()]


def wait_for_plan(channel_fd: int, procs_fd: int, gate: int) -> NoReturn:
    """In the prepared child: join the cgroup, wait for the plan (and the gate), carry it
    out."""
    code = 1
    try:
        gc.disable()  # no finalizers of the parent's objects may run here
        close_all_but((channel_fd, procs_fd, gate))  # the gate's write end goes too
        os.write(procs_fd, b"0")
        os.close(procs_fd)
        os.write(channel_fd, READY)
        channel = socket.socket(fileno=channel_fd)
        data, fds = receive_with_fds(channel, MAX_PLAN_BYTES, MAX_FDS)
        if gate >= 0:
            os.read(gate, 1)  # end of file once cinit closed the write end
            os.close(gate)
        if data:  # empty: discarded, or cinit went away
            try:
                plan = ChildPlan.from_wire(data, fds)
            except Exception as exc:  # fds lost on the way (MSG_CTRUNC): say so, do not run
                code = STAGE_EXIT_CODES["fds"]
                report_failure(channel_fd, f"fds:0:{exc}")
            else:
                carry_out(plan, channel_fd)
        else:
            code = 0
    except BaseException:  # the parent sees no `ready` and forks afresh
        pass
    finally:
        os._exit(code)


def receive_with_fds(
    channel: socket.socket, max_bytes: int, max_fds: int
) -> tuple[bytes, list[int]]:
    """One message and the fds that came with it (SCM_RIGHTS)."""
    data, ancillary, _flags, _addr = channel.recvmsg(max_bytes, socket.CMSG_SPACE(max_fds * 4))
    fds: list[int] = []
    for level, kind, rights in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            usable = len(rights) - len(rights) % 4
            fds += [int.from_bytes(rights[i : i + 4], sys.byteorder) for i in range(0, usable, 4)]
    return data, fds


def close_all_but(keep: tuple[int, ...]) -> None:
    low = 3
    for fd in sorted(keep):
        if fd >= low:
            os.closerange(low, fd)
            low = fd + 1
    os.closerange(low, 1 << 20)
