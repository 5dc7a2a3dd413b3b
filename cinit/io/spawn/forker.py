"""A small helper process that forks the children cinit prepares after boot.

A child forked from cinit shares its address space copy-on-write, and its exec pays for
tearing that down: the more, the more cinit wrote since the fork (each page cinit changed
is the child's alone by then). A timer's start is readied 250 ms ahead of its elapse
(`cinit.actors.unit_io.UnitIO.prepare_start`), so its child waits that long: on the
development host, `date` ran 7.4 ms after the word to exec when its waiting child came
from a 28 MiB Python process that kept working, 2.1 ms when it came from an idle 6 MiB
one. cinit is a ~25 MiB process whose threads write all the time; this helper is forked
from it at boot, while it is small and has no thread, and from then on does nothing but
fork on request, so the children it makes are small and quiet.

The protocol, over a SOCK_SEQPACKET socketpair: cinit sends one message per child, its
data `f`, its SCM_RIGHTS two fds: the cgroup.procs of the cgroup the child joins and the
child's end of its channel (`cinit.io.spawn.prepared`). The helper forks a go-between
that forks the child and exits, so that the child becomes cinit's (PID 1, or a
subreaper: the helper is only used then), and answers with the child's pid (`-`: none).
End of file on the socket (cinit closed its end, or went away) ends the helper.
"""

from __future__ import annotations

import gc
import os
import sys

from cinit.boot_path import TYPE_CHECKING

if TYPE_CHECKING:
    import signal
    import socket
    from typing import NoReturn

    from cinit.io.reaper import ProcessTable
else:  # the C halves of `signal` and `socket` (their enum wrappers cost the boot path)
    import _signal as signal
    import _socket as socket

LABEL = "cinit spawn helper"
NO_CHILD = b"-"


class Forker:
    """cinit's end of the helper: `fork_waiting` asks it for a child. One caller at a time
    (the unit actors share it: a lock keeps each request with its answer)."""

    __slots__ = ("_lock", "_socket", "pid")

    def __init__(self, channel: socket.socket, pid: int) -> None:
        import _thread

        self._socket = channel
        self._lock = _thread.allocate_lock()
        self.pid = pid

    @classmethod
    def start(cls, table: ProcessTable) -> Forker | None:
        """Fork the helper (call it before cinit has threads); None when that fails."""
        try:
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        except OSError:
            return None
        with table.lock:  # registered before the reaper may see it exit
            try:
                pid = os.fork()
            except OSError:
                ours.close()
                theirs.close()
                return None
            if pid == 0:
                _serve(theirs.fileno())
            table.register_unhandled_locked(pid, LABEL)  # its exit is reaped silently
        theirs.close()
        return cls(ours, pid)

    def fork_waiting(self, procs_fd: int, child_end: int) -> int | None:
        """The pid of a child of cinit, forked by the helper, that joins the cgroup of
        `procs_fd` and waits on `child_end` for its plan (`cinit.io.spawn.prepared`);
        None when the helper could not make one (or is gone)."""
        rights = procs_fd.to_bytes(4, sys.byteorder) + child_end.to_bytes(4, sys.byteorder)
        with self._lock:
            try:
                self._socket.sendmsg([b"f"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, rights)])
                answer = self._socket.recv(32)
            except OSError:
                return None
        return int(answer) if answer.isdigit() else None

    def close(self) -> None:
        """End the helper (it reads end of file and exits)."""
        self._socket.close()


def _serve(fd: int) -> NoReturn:
    """In the helper: fork a child per request until end of file."""
    from cinit.io.spawn.prepared import close_all_but, receive_with_fds

    try:
        gc.disable()  # no finalizers of cinit's objects may run here
        close_all_but((fd,))
        # cinit's blocked signals would keep a stop's SIGTERM from ending the helper (its
        # children reset their own, `cinit.io.spawn.child`)
        signal.pthread_sigmask(signal.SIG_SETMASK, ())
        channel = socket.socket(fileno=fd)
        while True:
            data, fds = receive_with_fds(channel, 16, 2)
            if not data:
                break
            pid = _fork_child(fds[0], fds[1]) if len(fds) == 2 else 0
            for received in fds:
                os.close(received)
            channel.send(str(pid).encode() if pid > 0 else NO_CHILD)
    finally:
        os._exit(0)


def _fork_child(procs_fd: int, child_end: int) -> int:
    """Fork a go-between that forks the waiting child, tells its pid and exits (the child
    is then cinit's); the child's pid, 0 when none was made."""
    from cinit.io.spawn.prepared import wait_for_plan

    read_end, write_end = os.pipe()
    try:
        between = os.fork()
    except OSError:
        os.close(read_end)
        os.close(write_end)
        return 0
    if between == 0:
        try:
            os.close(read_end)
            pid = os.fork()
            if pid == 0:
                os.close(write_end)
                wait_for_plan(child_end, procs_fd, -1)
            os.write(write_end, str(pid).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    try:
        answer = os.read(read_end, 32)
    finally:
        os.close(read_end)
        os.waitpid(between, 0)
    return int(answer) if answer.isdigit() else 0
