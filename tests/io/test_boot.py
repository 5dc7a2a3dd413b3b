"""The PID 1 program (`cinit.boot` + the root actor) as PID 1, with failures injected.

PID 1 must never die of its own bugs: whatever breaks inside the actor tree or the main
loop, cinit logs it, stops every process, and exits with EXIT_INTERNAL_ERROR (70).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.timeout(60)

Driver = Callable[..., Any]

PRELUDE = """
import json, os, signal, sys, threading, time
from cinit import boot
def send_later(delay, signo):
    threading.Timer(delay, lambda: os.kill(os.getpid(), signo)).start()
def finish(status):
    procs = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
    print(json.dumps({"status": status, "procs": procs}), flush=True)
    os._exit(0)
"""


def check_clean_internal_error(result: Any, needle: str) -> None:
    assert result.data is not None, result
    assert result.data == {"status": 70, "procs": [1]}, result
    assert needle in result.stderr, result.stderr


def test_system_exit_inside_the_root_actor(pid1_driver: Driver) -> None:
    result = pid1_driver(
        PRELUDE,
        """
        from cinit.actors import root
        original = root.RootSupervisor._to_event
        def broken(self, message):
            if type(message).__name__ == "SignalArrived":
                raise SystemExit("injected")
            return original(self, message)
        root.RootSupervisor._to_event = broken
        send_later(0.3, signal.SIGUSR1)
        finish(boot.run(boot.BootConfig(units_dir="/nonexistent", drop_in_dir="/nonexistent",
                                        stop_timeout=5, command=["sleep", "30"])))
        """,
    )
    check_clean_internal_error(result, "internal error in the root supervisor")
    assert "SystemExit: injected" in result.stderr


def test_exception_in_an_action_of_the_root(pid1_driver: Driver) -> None:
    result = pid1_driver(
        PRELUDE,
        """
        from cinit.actors import root
        def broken(self):
            raise RuntimeError("probe failed")
        root.Effects.children_remain = broken
        finish(boot.run(boot.BootConfig(units_dir="/nonexistent", drop_in_dir="/nonexistent",
                                        command=["sh", "-c", "sleep 30 & exit 3"])))
        """,
    )
    check_clean_internal_error(result, "RuntimeError: probe failed")


def test_root_stopped_from_outside(pid1_driver: Driver) -> None:
    # What pykka does to every actor when any actor raises SystemExit: stop_all.
    result = pid1_driver(
        PRELUDE,
        """
        import pykka
        threading.Timer(0.3, pykka.ActorRegistry.stop_all).start()
        finish(boot.run(boot.BootConfig(units_dir="/nonexistent", drop_in_dir="/nonexistent",
                                        command=["sleep", "30"])))
        """,
    )
    check_clean_internal_error(result, "root supervisor stopped unexpectedly")


def test_exception_in_the_main_loop(pid1_driver: Driver) -> None:
    result = pid1_driver(
        PRELUDE,
        """
        from cinit.io import reaper
        calls = []
        original = reaper.ProcessTable.reap_all
        def flaky(self):
            calls.append(1)
            if len(calls) == 1:
                raise OSError("injected reap failure")
            return original(self)
        reaper.ProcessTable.reap_all = flaky
        send_later(0.2, signal.SIGCHLD)
        finish(boot.run(boot.BootConfig(units_dir="/nonexistent", drop_in_dir="/nonexistent",
                                        command=["sleep", "30"])))
        """,
    )
    check_clean_internal_error(result, "internal error in the main loop")


def test_orderly_stop_through_the_actor_tree(pid1_driver: Driver) -> None:
    # The control case for the tests above: the same driver, nothing injected.
    result = pid1_driver(
        PRELUDE,
        """
        send_later(0.3, signal.SIGTERM)
        finish(boot.run(boot.BootConfig(units_dir="/nonexistent", drop_in_dir="/nonexistent",
                                        command=["sh", "-c", "sleep 30 & sleep 30"])))
        """,
    )
    assert result.data == {"status": 143, "procs": [1]}, result
    assert result.stderr == ""


def test_units_are_loaded_and_reported_and_stop_signal_exits_zero(
    pid1_driver: Driver, tmp_path: Path
) -> None:
    units = tmp_path / "units"
    units.mkdir()
    (units / "web.service").write_text("[Service]\nExecStart=/bin/sleep 30\n")
    result = pid1_driver(
        PRELUDE,
        f"""
        send_later(0.3, signal.SIGTERM)
        finish(boot.run(boot.BootConfig(units_dir={str(units)!r},
                                        drop_in_dir={str(tmp_path / "none")!r})))
        """,
    )
    assert result.data == {"status": 0, "procs": [1]}, result
    # Issue 4: the units are booted and stopped in order (no longer "not implemented").
    for line in ("started (pid ", "ready", "stopping", "stopped"):
        assert f"cinit: web.service: {line}" in result.stderr, result.stderr


def test_units_with_errors_refuse_to_boot(
    pid1_driver: Driver, tmp_path: Path, instance_cgroups: Callable[[], set[str]]
) -> None:
    units = tmp_path / "units"
    units.mkdir()
    (units / "bad.service").write_text("[Service]\nType=sometimes\nExecStart=/bin/true\n")
    cgroups_before = instance_cgroups()
    result = pid1_driver(
        PRELUDE,
        f"""
        finish(boot.run(boot.BootConfig(units_dir={str(units)!r}, drop_in_dir="/nonexistent",
                                        command=["sleep", "30"])))
        """,
    )
    assert result.data == {"status": 1, "procs": [1]}, result  # the main command never started
    assert "bad.service:2: error" in result.stderr
    assert "cinit: not booting" in result.stderr
    # The child prepared for bad.service and cinit's cgroup subtree are gone with it.
    assert instance_cgroups() == cgroups_before


def test_a_number_past_the_int_digit_limit_is_reported_with_every_other_diagnostic(
    pid1_driver: Driver, tmp_path: Path
) -> None:
    # Issue 13: a 4,301-digit StartLimitBurst= made the load raise; the boot said only
    # "cannot load units: ValueError(...)", with no file or line, and nothing of the rest.
    units = tmp_path / "units"
    units.mkdir()
    (units / "a.service").write_text(
        "[Unit]\nStartLimitBurst=" + "9" * 4301 + "\n[Service]\nExecStart=/bin/true\n"
    )
    (units / "b.service").write_text("[Service]\nExecStart=/bin/true\nType=sometimes\n")
    result = pid1_driver(
        PRELUDE,
        f"""
        finish(boot.run(boot.BootConfig(units_dir={str(units)!r}, drop_in_dir="/nonexistent",
                                        command=["sleep", "30"])))
        """,
    )
    assert result.data == {"status": 1, "procs": [1]}, result
    assert f"{units}/a.service:2: error: [Unit] StartLimitBurst=999" in result.stderr
    assert f"{units}/b.service:3: error: [Service] Type=sometimes" in result.stderr
    assert "cannot load units" not in result.stderr
    assert "cinit: not booting" in result.stderr
