"""Signals cinit owns, and how the main thread takes them.

Policy (documented here, decided by `cinit.machines.lifecycle`):

* SIGTERM, SIGINT and SIGRTMIN+3 (systemd's container halt request) start an orderly
  shutdown at any moment, boot included. The main command receives the very signal cinit
  got (as with tini, so `cinit -- sleep 100` exits 143 on SIGTERM, 130 on SIGINT and
  165 on SIGRTMIN+3); units get their own KillSignal=. A second or later one during
  shutdown never restarts or aborts it: it is logged and passed on again to the main
  command if that is still running (a program may treat a second Ctrl-C as "quit now");
  the stop deadline and the SIGKILL escalation stay as they were.
* SIGHUP, SIGUSR1, SIGUSR2, SIGWINCH, SIGQUIT and SIGALRM are forwarded to the main command
  (SIGQUIT is forwarded, it does not stop cinit). SIGUSR1 and SIGUSR2 also go to the
  running units (their main processes); with units, SIGHUP is a daemon-reload instead
  (the unit files are read again, as systemd does on SIGHUP).
* SIGCHLD means "reap"; it is also the loop's wake-up call (`wake`), because a spurious
  reap pass is harmless.
* SIGTTIN and SIGTTOU are taken and dropped, so that a cinit in a background process group
  of a terminal is never stopped.

Every owned signal is blocked in the main thread before any other thread exists, so all
threads inherit the mask and only `sigwaitinfo` in the main thread ever receives them.
Spawned processes start with an empty mask and default dispositions (see `spawn`).
"""

from __future__ import annotations

import os

from cinit.boot_path import TYPE_CHECKING

if TYPE_CHECKING:
    import signal
else:  # the C half of `signal`; the wrapper's enums would cost ~5 ms before the first exec
    import _signal as signal

from cinit.signal_policy import OWNED_SIGNALS, signal_name

WAKE_SIGNAL = signal.SIGCHLD

_PR_SET_CHILD_SUBREAPER = 36


class SignalInfo:
    """One signal taken by the main loop: its number and who sent it."""

    __slots__ = ("sender_pid", "signo")

    def __init__(self, signo: int, sender_pid: int) -> None:
        self.signo = signo
        self.sender_pid = sender_pid

    def __repr__(self) -> str:
        return f"SignalInfo({signal_name(self.signo)}, sender_pid={self.sender_pid})"


def block_owned() -> None:
    """Block every owned signal in the calling (main) thread; call before any thread starts.

    Also resets the owned signals to their default disposition: an inherited SIG_IGN of
    SIGCHLD would make the kernel reap children behind our back.
    """
    signal.pthread_sigmask(signal.SIG_BLOCK, OWNED_SIGNALS)
    for signo in OWNED_SIGNALS:
        signal.signal(signo, signal.SIG_DFL)
    clear_inherited_internal_ignores()


# glibc keeps signals 32 and 33 for itself (thread cancellation, setuid broadcast) and its
# sigaction() refuses them, so `signal.signal` cannot undo an inherited SIG_IGN there.
_GLIBC_INTERNAL_SIGNALS = (32, 33)
_RT_SIGACTION = {"x86_64": 13, "aarch64": 134}


def clear_inherited_internal_ignores(status_path: str = "/proc/self/status") -> list[int]:
    """Reset glibc's internal signals to SIG_DFL when cinit inherited them ignored.

    An ignored disposition survives fork and exec, so without this every process cinit
    starts would inherit it (seen in CI: a launcher ignored signal 32). Uses the raw
    rt_sigaction syscall; returns the signals it reset.
    """
    try:
        with open(status_path, "rb") as status:
            ignored = next(
                int(line.split()[1], 16) for line in status if line.startswith(b"SigIgn:")
            )
    except (OSError, StopIteration, ValueError, IndexError):
        return []
    found = [s for s in _GLIBC_INTERNAL_SIGNALS if ignored >> (s - 1) & 1]
    number = _RT_SIGACTION.get(os.uname().machine)
    if not found or number is None:
        return []
    import ctypes  # rarely needed: only when a parent left these signals ignored

    libc = ctypes.CDLL(None, use_errno=True)
    default = ctypes.create_string_buffer(64)  # all zero: SIG_DFL, no flags, empty mask
    return [s for s in found if libc.syscall(number, s, default, None, 8) == 0]


def release_owned() -> None:
    """Undo `block_owned` for commands that are not PID 1 (validate, status...): Ctrl-C works."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, OWNED_SIGNALS)
    signal.signal(signal.SIGINT, signal.default_int_handler)


def wait_signal(timeout: float | None = None) -> SignalInfo | None:
    """Take the next owned signal; None when `timeout` seconds pass without one."""
    if timeout is None:
        info = signal.sigwaitinfo(OWNED_SIGNALS)
    else:
        got = signal.sigtimedwait(OWNED_SIGNALS, max(timeout, 0.0))
        if got is None:
            return None
        info = got
    return SignalInfo(info.si_signo, info.si_pid)


def wake(thread_ident: int) -> None:
    """Make `wait_signal` in the thread `thread_ident` return (it sees a SIGCHLD)."""
    signal.pthread_kill(thread_ident, WAKE_SIGNAL)


def become_subreaper() -> str | None:
    """Make this process a child subreaper (orphans of its descendants come back to it).

    Returns None on success, or a message saying why it failed.
    """
    import ctypes  # only when not PID 1: ctypes costs a few ms of start-up

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        return f"prctl(PR_SET_CHILD_SUBREAPER): {os.strerror(err)}"
    return None


def is_subreaper() -> bool:
    """Whether this process is a child subreaper (for tests and diagnostics)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    value = ctypes.c_int(0)
    libc.prctl(37, ctypes.byref(value), 0, 0, 0)  # PR_GET_CHILD_SUBREAPER
    return value.value == 1
