"""Type=forking: the daemon a parent leaves behind is tracked through PIDFile= and stopped."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from e2e_support import Boot, cinit_line, python_exec, shell_script, wait_until

pytestmark = [pytest.mark.pid1, pytest.mark.timeout(60)]

Booter = Callable[..., Boot]  # the `boot` fixture (tests/e2e/conftest.py)


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def daemon_pid(log: Path) -> int:
    found = [int(line.split()[1]) for line in lines(log) if line.startswith("daemon ")]
    assert len(found) == 1, f"daemon log: {lines(log)}"
    return found[0]


def test_forking_daemon_is_tracked_and_killed_at_shutdown(boot: Booter, tmp_path: Path) -> None:
    log = tmp_path / "daemon.log"
    pidfile = tmp_path / "daemon.pid"
    checks = tmp_path / "checks.log"
    # The watcher is ordered before the daemon, so it stops after it: its ExecStop= looks,
    # from inside the namespace, whether the daemon's pid is gone by then.
    check = shell_script(tmp_path / "check.sh", f"""
        pid=$(cat {pidfile})
        if [ -e /proc/$pid ]; then state=alive; else state=gone; fi
        echo "$state $pid" >> {checks}
        """)
    run = boot({
        "watcher.service": f"""
            [Unit]
            Before=daemon.service

            [Service]
            Type=simple
            ExecStart=/bin/sleep 60
            ExecStop={check}
            """,
        "daemon.service": f"""
            [Service]
            Type=forking
            PIDFile={pidfile}
            ExecStart={python_exec("forking_daemon.py", "--pidfile", pidfile, "--log", log)}
            """,
    })
    run.wait_err(cinit_line("daemon.service", "ready"), timeout=20)
    pid = daemon_pid(log)
    assert int(pidfile.read_text()) == pid
    assert run.terminate() == 0, run.report()
    assert f"got SIGTERM {pid}" in lines(log), f"daemon log: {lines(log)}{run.report()}"
    assert lines(checks) == [f"gone {pid}"], f"watcher's check: {lines(checks)}{run.report()}"
    assert run.count_err(cinit_line("daemon.service", "stopped")) == 1, run.report()
    assert run.count_err(cinit_line("daemon.service", r"failed \(.*\)")) == 0, run.report()


def test_forking_daemon_exit_is_seen_as_the_units_main_process_exit(
    boot: Booter, tmp_path: Path
) -> None:
    # The daemon is not cinit's child: only a cinit that took its pid from PIDFile= can tell
    # that its exit (code 5, half a second after the parent left) is the unit's.
    log = tmp_path / "daemon.log"
    pidfile = tmp_path / "daemon.pid"
    command = python_exec(
        "forking_daemon.py", "--pidfile", pidfile, "--log", log,
        "--exit-after", "0.5", "--exit-code", "5",
    )
    run = boot({
        "daemon.service": f"""
            [Service]
            Type=forking
            PIDFile={pidfile}
            ExecStart={command}
            """,
    })
    run.wait_err(cinit_line("daemon.service", "ready"), timeout=20)
    run.wait_err(cinit_line("daemon.service", r"exited \(status=5\)"), timeout=10)
    run.wait_err(cinit_line("daemon.service", r"failed \(exit-code\)"), timeout=5)
    pid = daemon_pid(log)
    wait_until(lambda: f"exiting {pid} 5" in lines(log), 2, "the daemon's own exit record")
    assert run.alive(), f"a daemon's failure took cinit down{run.report()}"
    run.terminate()
