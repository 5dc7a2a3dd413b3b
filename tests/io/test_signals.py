"""`cinit.io.signals`: blocking, taking, waking, subreaper (in driver processes)."""

from __future__ import annotations

import signal
from collections.abc import Callable
from typing import Any

import pytest

from cinit import signal_policy
from cinit.io import signals

pytestmark = pytest.mark.timeout(60)

Driver = Callable[..., Any]


def mask_of(status_text: str, key: str = "SigBlk") -> int:
    for line in status_text.splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1], 16)
    raise AssertionError(f"no {key} in status")


def test_owned_signals_are_blocked_in_threads_and_taken_by_the_loop(driver: Driver) -> None:
    result = driver(
        """
        import json, os, signal, threading, time
        from cinit.io import signals
        signals.block_owned()
        status = {}
        def thread_body():
            tid = threading.get_native_id()
            status["thread"] = open(f"/proc/self/task/{tid}/status").read()
        t = threading.Thread(target=thread_body); t.start(); t.join()
        os.kill(os.getpid(), signal.SIGUSR1)
        first = signals.wait_signal(5)
        main = threading.get_ident()
        threading.Timer(0.1, lambda: signals.wake(main)).start()
        woken = signals.wait_signal(5)
        nothing = signals.wait_signal(0.05)
        print(json.dumps({"thread": status["thread"], "first": [first.signo, first.sender_pid],
                          "pid": os.getpid(), "woken": woken.signo, "nothing": nothing}))
        """
    )
    data = result.data
    assert data is not None, result
    blocked = mask_of(data["thread"])
    for signo in signal_policy.OWNED_SIGNALS:
        assert blocked & (1 << (signo - 1)), f"signal {signo} not blocked in a later thread"
    assert data["first"] == [int(signal.SIGUSR1), data["pid"]]
    assert data["woken"] == int(signals.WAKE_SIGNAL)
    assert data["nothing"] is None


def test_inherited_ignored_sigchld_is_reset_so_exits_can_be_collected(driver: Driver) -> None:
    # With SIGCHLD ignored the kernel would reap children itself and waitpid would say ECHILD.
    result = driver(
        """
        import json, os, signal
        signal.signal(signal.SIGCHLD, signal.SIG_IGN)
        from cinit.io import signals
        signals.block_owned()
        pid = os.fork()
        if pid == 0:
            os._exit(7)
        print(json.dumps({"status": os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])}))
        """
    )
    assert result.data == {"status": 7}, result


def test_become_subreaper(driver: Driver) -> None:
    result = driver(
        """
        import json
        from cinit.io import signals
        before = signals.is_subreaper()
        problem = signals.become_subreaper()
        print(json.dumps({"before": before, "problem": problem, "after": signals.is_subreaper()}))
        """
    )
    assert result.data == {"before": False, "problem": None, "after": True}, result


def test_signal_policy_sets() -> None:
    expected = {signal.SIGTERM, signal.SIGINT, signal.SIGRTMIN + 3}
    assert expected == signal_policy.SHUTDOWN_SIGNALS
    assert signal.SIGQUIT in signal_policy.FORWARDED_SIGNALS
    assert not signal_policy.SHUTDOWN_SIGNALS & signal_policy.FORWARDED_SIGNALS
    assert signal_policy.main_stop_signal(signal.SIGRTMIN + 3) == signal.SIGRTMIN + 3
    assert signal_policy.signal_name(signal.SIGRTMIN + 3) == "SIGRTMIN+3"
    assert signal_policy.signal_name(signal.SIGTERM) == "SIGTERM"
