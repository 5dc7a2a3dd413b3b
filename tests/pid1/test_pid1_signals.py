"""Signals sent to cinit as PID 1: forwarded to the main command, or an orderly shutdown."""

from __future__ import annotations

import collections
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest

Starter = Callable[..., Any]  # the pid1 / not_pid1 fixtures (tests/pid1/conftest.py)
Programs = Callable[..., list[str]]  # the prog fixture

pytestmark = [pytest.mark.pid1, pytest.mark.timeout(30)]

FORWARDED = ["HUP", "USR1", "USR2", "WINCH", "QUIT", "ALRM"]
SHUTDOWN = {
    "TERM": signal.SIGTERM,
    "INT": signal.SIGINT,
    "RTMIN+3": signal.SIGRTMIN + 3,
}


def is_ready(line: str) -> bool:
    return line.startswith("READY ")


def test_each_forwarded_signal_arrives(pid1: Starter, prog: Programs) -> None:
    # One main command receives the six signals one at a time, each confirmed before the next.
    run = pid1(prog("signal_logger.py", "--exit-after", "6", "--exit-code", "7",
                    "--timeout", "20", *FORWARDED))
    assert run.out.wait_line(is_ready, 15), f"main command never got ready: {run.err.text(0)!r}"
    for name in FORWARDED:
        run.send(getattr(signal, "SIG" + name))
        got = run.out.wait_line(lambda line: line.startswith("SIG") or line == "TIMEOUT", 5)
        assert got == "SIG" + name, f"sent SIG{name} to cinit, main command printed {got!r}"
    assert run.wait(10) == 7
    assert run.out.text().splitlines()[1:] == [*("SIG" + n for n in FORWARDED), "DONE"]


def test_burst_of_five_different_signals_all_arrive(pid1: Starter, prog: Programs) -> None:
    burst = ["HUP", "USR1", "USR2", "WINCH", "ALRM"]
    run = pid1(prog("signal_logger.py", "--exit-after", "5", "--exit-code", "7",
                    "--timeout", "15", *burst))
    assert run.out.wait_line(is_ready, 15), f"main command never got ready: {run.err.text(0)!r}"
    for name in burst:  # back to back, no pause
        run.send(getattr(signal, "SIG" + name))
    assert run.wait(20) == 7
    received = run.out.text().splitlines()[1:-1]
    assert collections.Counter(received) == collections.Counter("SIG" + n for n in burst)


@pytest.mark.parametrize("name", list(SHUTDOWN))
def test_shutdown_signal_kills_main_command_with_that_signal(pid1: Starter, name: str) -> None:
    sig = SHUTDOWN[name]
    run = pid1(["/bin/sh", "-c", "echo READY; exec sleep 30"])
    assert run.out.wait_line(lambda line: line == "READY", 15)
    run.send(sig)
    assert run.wait(15) == 128 + sig


@pytest.mark.parametrize("name", list(SHUTDOWN))
def test_main_command_handling_shutdown_signal_sets_exit_code(
    pid1: Starter, prog: Programs, name: str
) -> None:
    run = pid1(prog("signal_logger.py", "--exit-after", "1", "--exit-code", "5",
                    "--timeout", "15", name))
    assert run.out.wait_line(is_ready, 15), f"main command never got ready: {run.err.text(0)!r}"
    run.send(SHUTDOWN[name])
    assert run.wait(15) == 5
    assert run.out.text().splitlines()[1:] == [
        "SIG" + name if name != "RTMIN+3" else "SIGRTMIN+3", "DONE"
    ]


@pytest.mark.cinit_only("--stop-timeout")
def test_main_command_ignoring_sigterm_is_killed_after_stop_timeout(
    pid1: Starter, prog: Programs
) -> None:
    run = pid1(prog("signal_logger.py", "--timeout", "25", "TERM"), options=["--stop-timeout", "1"])
    assert run.out.wait_line(is_ready, 15), f"main command never got ready: {run.err.text(0)!r}"
    sent = time.monotonic()
    run.send(signal.SIGTERM)
    assert run.out.wait_line(lambda line: line.startswith("SIG"), 5) == "SIGTERM"
    code = run.wait(15)
    waited = time.monotonic() - sent
    assert code == 128 + signal.SIGKILL
    # Killed only once the 1 s stop timeout ran out, and not long after.
    assert 0.8 <= waited <= 6.0, f"SIGKILL came {waited:.2f} s after SIGTERM"


def test_sigterm_50ms_after_start_gives_orderly_exit(pid1: Starter) -> None:
    for attempt in range(3):
        run = pid1(["/bin/sleep", "30"])
        init = run.init_pid()  # the init under test has exec'd (seen within ~2 ms)
        time.sleep(0.05)
        state = signal_state(init)
        run.send(signal.SIGTERM)
        try:
            code = run.wait(10)
        except AssertionError as lost:
            raise AssertionError(
                f"attempt {attempt}: SIGTERM sent 50 ms after the init's exec was lost; "
                f"the init's signal state when it was sent: {state}"
            ) from lost
        assert code == 128 + signal.SIGTERM, (
            f"attempt {attempt}: exit {code}, stderr={run.err.text()!r}"
        )
        assert "Traceback" not in run.err.text()


# PID 1 of the namespace, before the init: block the signal, send it to itself (blocked, it
# stays pending: unblocked, the kernel would discard it, PID 1 having no handler), then exec
# the init. The mask and the pending set survive exec, as they do from a launcher that
# blocks cinit's signals before the interpreter starts (packaging/launcher.c).
PENDING_AT_EXEC = (
    "import os, signal, sys\n"
    "signo = int(sys.argv[1])\n"
    "signal.pthread_sigmask(signal.SIG_BLOCK, {signo})\n"
    "os.kill(os.getpid(), signo)\n"
    "assert signo in signal.sigpending()\n"
    "os.execvp(sys.argv[2], sys.argv[2:])\n"
)


@pytest.mark.parametrize("name", list(SHUTDOWN))
def test_shutdown_signal_pending_at_exec_is_taken(pid1: Starter, name: str) -> None:
    signo = SHUTDOWN[name]
    wrapper = [sys.executable, "-c", PENDING_AT_EXEC, str(int(signo))]
    run = pid1(["/bin/sleep", "30"], before_init=wrapper)
    code = run.wait(15)  # a lost signal leaves cinit running: the wait fails the test
    assert code == 128 + signo, f"exit {code}, stderr={run.err.text()!r}"
    assert "Traceback" not in run.err.text()


def signal_state(pid: int) -> str:
    """SigBlk/SigCgt of `pid`, for failure messages (PID 1 drops unblocked, unhandled ones)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            return " ".join(
                line.strip().replace(":\t", "=") for line in status
                if line.startswith(("SigBlk", "SigCgt"))
            )
    except OSError:
        return "gone"
