"""Which signals cinit owns and what each means: policy, no OS calls (see `cinit.io.signals`
for how the main thread takes them, and `cinit.machines.lifecycle` for the decisions).

A module of its own so that the pure machines and the first statement of the boot path
share one list without either importing the other's layer.
"""

from __future__ import annotations

from cinit.boot_path import TYPE_CHECKING

if TYPE_CHECKING:
    import signal
else:  # the C half of `signal`; the wrapper's enums would cost ~5 ms before the first exec
    import _signal as signal

SIGRTMIN_3 = signal.SIGRTMIN + 3

SHUTDOWN_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT, SIGRTMIN_3})
FORWARDED_SIGNALS = frozenset(
    {
        signal.SIGHUP,
        signal.SIGUSR1,
        signal.SIGUSR2,
        signal.SIGWINCH,
        signal.SIGQUIT,
        signal.SIGALRM,
    }
)
UNIT_FORWARDED_SIGNALS = frozenset({signal.SIGUSR1, signal.SIGUSR2})
# With units: SIGHUP to cinit is systemd's daemon-reload (read the unit files again), not
# a signal for the units' main processes; the main command (`-- CMD`) still gets it.
RELOAD_SIGNAL = signal.SIGHUP
TERMINAL_SIGNALS = frozenset({signal.SIGTTIN, signal.SIGTTOU})
OWNED_SIGNALS = SHUTDOWN_SIGNALS | FORWARDED_SIGNALS | TERMINAL_SIGNALS | {signal.SIGCHLD}


def main_stop_signal(signo: int) -> int:
    """The signal the main command gets when cinit is asked to stop with `signo`: the same."""
    return signo


def signal_name(signo: int) -> str:
    """`SIGTERM`, `SIGRTMIN+3`, or the number for signals without a name."""
    if signo == SIGRTMIN_3:
        return "SIGRTMIN+3"
    import signal as named  # only when a name is printed

    try:
        return named.Signals(signo).name
    except ValueError:
        return f"signal {signo}"
