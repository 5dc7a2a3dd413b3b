"""`cinit --then-exec PATH [ARGS...]`: hand PID 1 over to another program.

The seed-image pattern (a wrapper init that does early work, then execs the real init):
cinit boots the units, and once every boot unit settled and whatever still ran was
stopped (see `cinit.machines.lifecycle`), the main thread, with the actors and threads
stopped and the output relayed, calls `hand_off`. It leaves the process as a fresh exec
would find it:

* fds: only 0, 1 and 2 stay open (as cinit received them); every other fd is closed
  (the kmsg log target's fd is close-on-exec: the exec closes it);
* signals: every disposition cinit or CPython changed (SIGPIPE and SIGXFSZ ignored,
  SIGINT's handler, inherited ignores) is back to SIG_DFL, and the mask is empty;
* RLIMIT_NOFILE: back to the soft limit cinit was given (cinit raised its own);
* same pid (PID 1 stays PID 1), environment and working directory as cinit received them
  (a standalone build's bootloader variables are taken out again, see
  `program_environment`); PATH without a slash is looked up in $PATH.

A stop signal already pending at that point wins: cinit exits 0 instead of handing off
(the container is being stopped; the program would never see that signal). When the exec
fails cinit logs why and exits 127 (not found) or 126 (found but not executable): as PID 1
that ends the container, which is the visible failure an init image must give.
"""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Mapping

from cinit import signal_policy
from cinit.io.log import error, flush, info, kmsg_fd

EXIT_NOT_FOUND = 127
EXIT_NOT_EXECUTABLE = 126


def hand_off(argv: list[str]) -> int:
    """Exec `argv` (argv[0] is the path) in place of cinit; returns only when that failed,
    with the exit status cinit should end with."""
    import signal

    path = argv[0]
    pending = signal.sigpending() & signal_policy.SHUTDOWN_SIGNALS
    if pending:
        name = signal_policy.signal_name(min(pending))
        info(f"{name} arrived before the handoff: not handing off to {path}; exiting")
        return 0
    info(f"handing off to {path}")
    flush()  # cinit's queued lines out before the exec replaces their writer thread
    reset_signals()
    restore_fd_limit()
    close_fds_above_stderr(keep=kmsg_fd())  # the kmsg fd is close-on-exec
    try:
        # A name without a slash is looked up in $PATH, as by the shell's `exec`.
        os.execvpe(path, argv, program_environment(os.environ))
    except OSError as exc:
        code = EXIT_NOT_FOUND if exc.errno == errno.ENOENT else EXIT_NOT_EXECUTABLE
        error(f"cannot hand off to {path}: {os.strerror(exc.errno or 0)}; exiting {code}")
        return code
    raise AssertionError("unreachable: execv returned")  # pragma: no cover


def program_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment cinit was started with: a frozen (PyInstaller) cinit's bootloader
    adds `_PYI_*` variables and points LD_LIBRARY_PATH at its bundle (keeping the
    original in LD_LIBRARY_PATH_ORIG); the program must see neither."""
    env = dict(environ)
    if not getattr(sys, "frozen", False):
        return env
    for name in [name for name in env if name.startswith("_PYI_") or name == "_MEIPASS2"]:
        del env[name]
    original = env.pop("LD_LIBRARY_PATH_ORIG", None)
    if original is not None:
        env["LD_LIBRARY_PATH"] = original
    else:
        env.pop("LD_LIBRARY_PATH", None)
    return env


def reset_signals() -> None:
    """Every catchable signal back to SIG_DFL, then an empty mask (in this order, so that
    no Python handler runs for a signal that was pending)."""
    import signal

    for signo in range(1, signal.NSIG):
        if signo in (signal.SIGKILL, signal.SIGSTOP):
            continue
        try:
            if signal.getsignal(signo) != signal.SIG_DFL:
                signal.signal(signo, signal.SIG_DFL)
        except (OSError, ValueError):
            pass  # glibc's own (32, 33): reset at start by signals.block_owned
    signal.pthread_sigmask(signal.SIG_SETMASK, set())


def restore_fd_limit() -> None:
    """Give the program the RLIMIT_NOFILE cinit was given (cinit raised its soft limit)."""
    from cinit.io.spawn import service_fd_limit

    given = service_fd_limit()
    if given is None:
        return
    import contextlib
    import resource

    with contextlib.suppress(OSError, ValueError):  # keeping the raised limit is harmless
        resource.setrlimit(resource.RLIMIT_NOFILE, given)


def close_fds_above_stderr(keep: int | None = None) -> None:
    """Close every fd but 0, 1 and 2 (the program's console) and `keep` (a close-on-exec
    fd cinit still needs if the exec fails: its log target)."""
    try:
        highest = max(int(name) for name in os.listdir("/proc/self/fd"))
    except (OSError, ValueError):  # no /proc: every fd number cinit may have used
        highest = os.sysconf("SC_OPEN_MAX") - 1
    if keep is None or keep < 3:
        os.closerange(3, highest + 1)
    else:
        os.closerange(3, keep)
        os.closerange(keep + 1, highest + 1)
