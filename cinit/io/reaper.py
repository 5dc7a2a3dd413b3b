"""The process table and the reaper: every exit is collected once and routed to its owner.

One loop (the main thread, on SIGCHLD) calls `ProcessTable.reap_all`, which runs
`waitpid(-1, WNOHANG)` until nothing is left. Each exit of a process cinit started (or
adopted) goes to its owner as a `ProcessExit` message (`owner.tell(exit)`, so a pykka
`ActorRef` is an owner); any other exit is an adopted orphan, reaped silently and counted.

Races this module closes:

* A child that exits at once can never be reaped before it is claimed: `spawn` forks and
  registers the pid while holding `ProcessTable.lock`, which the reaper also holds around
  every `waitpid`. The pidfd is opened in the same critical section, while the pid cannot
  have been reaped (so it cannot have been reused either). Until `spawn` knows whether the
  exec succeeded the process is *held*: an exit reaped meanwhile is kept, then dropped (the
  spawn failed: the caller got a SpawnError instead) or delivered (it started, then exited).
  Each exit reaches its owner at most once.
* Signals never hit a stranger: a `Process` is signalled through its pidfd, under the same
  lock, and only until it is reaped (then the pidfd is closed and signalling is a no-op).
  A process group is signalled with `killpg` only while its leader is unreaped (so the
  group id is pinned); afterwards through a scan of cinit's own descendants.
"""

from __future__ import annotations

import _thread
import os
import time

from cinit.boot_path import TYPE_CHECKING

if TYPE_CHECKING:
    import signal
    from typing import Protocol

    class ExitOwner(Protocol):
        """Anything that can receive a `ProcessExit` message (a pykka ActorRef does)."""

        def tell(self, message: object) -> None: ...

else:  # the C half of `signal`; the wrapper's enums would cost ~5 ms before the first exec
    import _signal as signal


class ProcessExit:
    """Message: a process cinit owns has exited and has been reaped."""

    __slots__ = ("code", "core_dumped", "label", "pid", "signal")

    def __init__(
        self, pid: int, label: str, code: int | None, signo: int | None, core_dumped: bool
    ) -> None:
        self.pid = pid
        self.label = label
        self.code = code  # exit code when it exited, else None
        self.signal = signo  # signal number when a signal killed it, else None
        self.core_dumped = core_dumped

    @classmethod
    def from_wait_status(cls, pid: int, label: str, status: int) -> ProcessExit:
        """Decode a raw `waitpid` status."""
        if os.WIFSIGNALED(status):
            return cls(pid, label, None, os.WTERMSIG(status), os.WCOREDUMP(status))
        return cls(pid, label, os.WEXITSTATUS(status), None, False)

    @property
    def status(self) -> int:
        """The shell's view: the exit code, or 128+N when signal N killed it."""
        if self.signal is not None:
            return 128 + self.signal
        return self.code if self.code is not None else 0

    def describe(self) -> str:
        """`exited with status 3`, `killed by SIGTERM`, `killed by SIGSEGV (core dumped)`."""
        if self.signal is None:
            return f"exited with status {self.code}"
        from cinit.signal_policy import signal_name

        core = " (core dumped)" if self.core_dumped else ""
        return f"killed by {signal_name(self.signal)}{core}"

    def __repr__(self) -> str:
        return f"ProcessExit(pid={self.pid}, label={self.label!r}, {self.describe()})"


class Process:
    """A process cinit owns: signal it through this handle, never through its pid."""

    __slots__ = (
        "_delivered",
        "_discard_exit",
        "_held",
        "_pidfd",
        "_table",
        "exit",
        "label",
        "owner",
        "pgid",
        "pid",
        "started_at",
    )

    def __init__(self, table: ProcessTable, pid: int, pidfd: int, label: str, pgid: int) -> None:
        self._table = table
        self._pidfd = pidfd
        self.pid = pid
        self.label = label
        self.pgid = pgid  # process group it leads (spawned processes lead their own), or 0
        self.owner: ExitOwner | None = None
        self.exit: ProcessExit | None = None  # set once reaped
        # Set by the table only: a failed spawn (its exit is already reported as SpawnError)
        # or a prepared child nobody owns yet; and while spawn() waits for the exec (an exit
        # is kept, not delivered).
        self._discard_exit = False
        self._held = False
        self._delivered = False
        self.started_at = time.monotonic()

    @property
    def alive(self) -> bool:
        """True until the reaper has collected the process's exit."""
        return self.exit is None

    def send_signal(self, signo: int) -> bool:
        """Signal the process through its pidfd; False if it has already been reaped."""
        with self._table.lock:
            if self.exit is not None or self._pidfd < 0:
                return False
            try:
                signal.pidfd_send_signal(self._pidfd, signo)
            except ProcessLookupError:
                return False
            return True

    def signal_group(self, signo: int) -> bool:
        """Signal the whole process group this process leads; False if nothing was reached.

        While the leader is unreaped its pid pins the group id, so `killpg` is exact. After
        that, only cinit's own descendants that are still in the group are signalled.
        """
        if self.pgid <= 0:
            return self.send_signal(signo)
        with self._table.lock:
            if self.exit is None:
                try:
                    os.killpg(self.pgid, signo)
                except ProcessLookupError:
                    return False
                return True
        from cinit.io.sweep import signal_descendants

        return signal_descendants(signo, pgid=self.pgid) > 0

    def _take_exit_locked(self) -> ProcessExit | None:
        """The exit to deliver now, at most once: reaped, owned, not held, not discarded."""
        if self.exit is None or self.owner is None or self._held or self._discard_exit:
            return None
        if self._delivered:
            return None
        self._delivered = True
        return self.exit

    def _close_pidfd(self) -> None:
        if self._pidfd >= 0:
            os.close(self._pidfd)
            self._pidfd = -1

    def __repr__(self) -> str:
        state = "alive" if self.exit is None else self.exit.describe()
        return f"Process(pid={self.pid}, label={self.label!r}, {state})"


ORPHANS_PER_HOLD = 256


class ProcessTable:
    """pid -> owned `Process`, shared by `spawn` (registers) and the reaper (collects)."""

    def __init__(self) -> None:
        self.lock = _thread.allocate_lock()
        self._live: dict[int, Process] = {}
        self.orphans_reaped = 0  # exits of processes nobody owned (adopted orphans)

    def register_locked(self, pid: int, label: str, owner: ExitOwner | None, pgid: int) -> Process:
        """Record a just-forked child, held until `release`. The caller holds `lock`."""
        pidfd = os.pidfd_open(pid)
        process = Process(self, pid, pidfd, label, pgid)
        process.owner = owner
        process._held = True
        self._live[pid] = process
        return process

    def register_waiting_locked(self, pid: int, label: str) -> Process:
        """Record a child forked to wait for a command (`cinit.io.spawn.prepared`): nobody
        owns it and its exit is reaped silently until `hand_over`. The caller holds `lock`."""
        process = Process(self, pid, os.pidfd_open(pid), label, 0)
        process._discard_exit = True
        self._live[pid] = process
        return process

    def register_unhandled_locked(self, pid: int, label: str) -> Process:
        """Record a child that could not be registered (no pidfd): its exit is reaped
        silently, not counted as an orphan. The caller holds `lock` and ends the child."""
        process = Process(self, pid, -1, label, pid)
        process._discard_exit = True
        self._live[pid] = process
        return process

    def hand_over(self, process: Process, label: str, owner: ExitOwner | None) -> bool:
        """A waiting child (`register_waiting_locked`) becomes a spawned process of `owner`
        named `label`, leading its own group, held until `release`; False when it has
        exited already (it died while waiting)."""
        with self.lock:
            if process.exit is not None:
                return False
            process.label = label
            process.owner = owner
            process.pgid = process.pid  # the command starts a session or group of its own
            process._held = True
            process._discard_exit = False
        return True

    def release(self, process: Process, failed: bool) -> None:
        """End of spawn: a failed one's exit is dropped, a started one's is delivered (and
        its start time is now)."""
        with self.lock:
            if not failed:
                process.started_at = time.monotonic()
            process._held = False
            process._discard_exit = failed
            pending = process._take_exit_locked()
        if pending is not None and process.owner is not None:
            _deliver(process.owner, pending)

    def adopt(self, pid: int, label: str, owner: ExitOwner | None) -> Process:
        """Take ownership of an existing child of cinit (e.g. a forking daemon's main pid).

        Raises ProcessLookupError when `pid` is not (or no longer) a child of cinit: after
        the pidfd is opened the parent is checked, so a reused pid is never adopted.
        """
        with self.lock:
            if pid in self._live:
                process = self._live[pid]
                process.owner = owner
                return process
            pidfd = os.pidfd_open(pid)
            if _parent_of(pid) != os.getpid():
                os.close(pidfd)
                raise ProcessLookupError(pid)
            process = Process(self, pid, pidfd, label, 0)
            process.owner = owner
            self._live[pid] = process
            return process

    def claim(self, process: Process, owner: ExitOwner) -> None:
        """Give `process` an owner; an exit collected before this is delivered now."""
        with self.lock:
            process.owner = owner
            pending = process._take_exit_locked()
        if pending is not None:
            _deliver(owner, pending)

    def live(self) -> list[Process]:
        """Owned processes not reaped yet."""
        with self.lock:
            return list(self._live.values())

    def reap_all(self) -> bool:
        """Collect every exited child; returns False when cinit has no children left at all."""
        waitpid, nohang, live = os.waitpid, os.WNOHANG, self._live
        while True:
            with self.lock:
                # Adopted orphans in a row are reaped under one hold of the lock (a storm of
                # zombies is thousands of them), a bounded number so a spawn waits little.
                for _ in range(ORPHANS_PER_HOLD):
                    try:
                        pid, status = waitpid(-1, nohang)
                    except ChildProcessError:
                        return False
                    if pid == 0:
                        return True
                    process = live.pop(pid, None)
                    if process is not None:
                        break
                    self.orphans_reaped += 1
                else:
                    continue
                process.exit = ProcessExit.from_wait_status(pid, process.label, status)
                process._close_pidfd()
                owner = process.owner
                exit_message = process._take_exit_locked()
            if exit_message is not None and owner is not None:
                _deliver(owner, exit_message)


def _deliver(owner: ExitOwner, message: ProcessExit) -> None:
    """Tell the owner; an owner that is gone (a dead actor) must not stop the reaping."""
    try:
        owner.tell(message)
    except Exception:
        from cinit.io.log import info

        info(f"exit of {message.label} (pid {message.pid}) had no live owner")


def _parent_of(pid: int) -> int:
    """The parent pid from /proc/<pid>/stat, or -1 when the process is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return -1
    return int(stat[stat.rindex(b")") + 2 :].split()[1])
