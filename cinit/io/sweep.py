"""Leftover processes: find cinit's descendants and signal them without hitting strangers.

At the end of a shutdown nothing may be left. As PID 1 of a PID namespace every process in
the namespace is ours, and `kill(-1, sig)` reaches them all at once. As a subreaper
(`cinit` started by tini, docker --init, or a test) `kill(-1)` would hit the whole host, so
only descendants are signalled: processes whose parent chain in /proc leads to cinit.

Pid reuse cannot redirect a signal: a pidfd is opened for every candidate first, then the
descendant set is scanned again, and only pidfds whose pid is still a descendant are
signalled. If the pid was reused in between by a stranger, the second scan excludes it; if
it was reused by another descendant, the pidfd names the dead process and the signal is a
harmless ESRCH (the next sweep reaches the new one).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable

from cinit.boot_path import TYPE_CHECKING

if TYPE_CHECKING:
    import signal
else:  # the C half: `signal` itself builds its enums (~1 ms before the first exec)
    import _signal as signal


def is_pid1() -> bool:
    """Whether cinit is the init of its PID namespace."""
    return os.getpid() == 1


def children_remain() -> bool:
    """Whether cinit has any child at all, exited or not; never reaps (safe from any thread)."""
    try:
        os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return False
    return True


def _process_table() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, process group) for every process visible in /proc."""
    table: dict[int, tuple[int, int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue  # exited while we looked
        fields = stat[stat.rindex(b")") + 2 :].split()
        table[int(name)] = (int(fields[1]), int(fields[2]))
    return table


def descendants(pgid: int | None = None) -> list[int]:
    """Pids of cinit's descendants (optionally only those in process group `pgid`)."""
    table = _process_table()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found: list[int] = []
    stack = list(children.get(os.getpid(), ()))
    while stack:
        pid = stack.pop()
        if pgid is None or table[pid][1] == pgid:
            found.append(pid)
        stack.extend(children.get(pid, ()))
    return found


def signal_listed(list_pids: Callable[[], Iterable[int]], signo: int) -> int:
    """Send `signo` to the processes `list_pids()` names, safe against pid reuse.

    Each pid is pinned with a pidfd first and signalled only if a second listing still
    names it: a pid that exited and was reused by a stranger in between is never hit.
    Returns how many were signalled.
    """
    pidfds: dict[int, int] = {}
    for pid in list_pids():
        try:
            pidfds[pid] = os.pidfd_open(pid)
        except OSError:
            continue  # already gone
    sent = 0
    try:
        confirmed = set(list_pids())
        for pid, pidfd in pidfds.items():
            if pid not in confirmed:
                continue
            try:
                signal.pidfd_send_signal(pidfd, signo)
                sent += 1
            except ProcessLookupError:
                pass
    finally:
        for pidfd in pidfds.values():
            os.close(pidfd)
    return sent


def signal_descendants(signo: int, pgid: int | None = None) -> int:
    """Send `signo` to cinit's descendants (or those in group `pgid`); returns how many."""
    return signal_listed(lambda: descendants(pgid), signo)


def signal_leftovers(signo: int) -> int:
    """Signal every process cinit may stop: all of the namespace as PID 1, else descendants.

    Returns the number of processes signalled (as PID 1: 1 when any was, 0 when none).
    """
    if is_pid1():
        try:
            os.kill(-1, signo)
        except ProcessLookupError:
            return 0
        return 1
    return signal_descendants(signo)
