"""Failure handling: restart policy with a start limit, OnFailure=, ExitContainerOnFailure=."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from e2e_support import Boot, cinit_line, events, notify_exec, shell_script, wait_until

pytestmark = [pytest.mark.pid1, pytest.mark.timeout(60)]

Booter = Callable[..., Boot]  # the `boot` fixture (tests/e2e/conftest.py)


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_restart_on_failure_stops_at_start_limit_and_runs_on_failure_once(
    boot: Booter, tmp_path: Path
) -> None:
    starts = tmp_path / "starts"
    rescues = tmp_path / "rescues"
    flaky = shell_script(tmp_path / "flaky.sh", f"""
        echo "start $(date +%s%N)" >> {starts}
        exit 1
        """)
    rescue = shell_script(tmp_path / "rescue.sh", f'echo "rescue $(date +%s%N)" >> {rescues}\n')
    run = boot({
        "flaky.service": f"""
            [Unit]
            OnFailure=rescue.service
            StartLimitBurst=3
            StartLimitIntervalSec=10s

            [Service]
            Type=simple
            ExecStart={flaky}
            Restart=on-failure
            RestartSec=100ms
            """,
        "rescue.service": f"""
            [Service]
            Type=oneshot
            ExecStart={rescue}
            """,
    })
    run.wait_err(cinit_line("flaky.service", r"failed \(start-limit-hit\)"), timeout=20)
    run.wait_err(cinit_line("flaky.service", r"starting OnFailure= units: rescue\.service"))
    wait_until(lambda: len(lines(rescues)) >= 1, 10, "the OnFailure= unit to run")
    time.sleep(0.6)  # six RestartSec periods: room for any start that should not happen
    assert len(lines(starts)) == 3, f"starts: {lines(starts)}{run.report()}"
    assert len(lines(rescues)) == 1, f"OnFailure= unit ran {len(lines(rescues))} times"
    assert run.count_err(cinit_line("flaky.service", r"started \(pid \d+\)")) == 3, run.report()
    assert run.count_err(cinit_line("flaky.service", r"restarting in 0\.1s")) >= 2, run.report()
    assert run.count_err(cinit_line("flaky.service", r"failed \(start-limit-hit\)")) == 1
    assert run.count_err(cinit_line("rescue.service", r"started \(pid \d+\)")) == 1, run.report()
    # The rescue unit ran only because flaky failed: after its last start, not at boot.
    last_start = int(lines(starts)[-1].split()[1])
    assert int(lines(rescues)[0].split()[1]) > last_start
    assert run.alive(), f"a unit hitting its start limit took cinit down{run.report()}"
    run.terminate()


def test_exit_container_on_failure_stops_the_rest_in_reverse_order(
    boot: Booter, tmp_path: Path
) -> None:
    log = tmp_path / "events.log"
    bomb = shell_script(tmp_path / "bomb.sh", f"""
        echo "start bomb $(date +%s%N)" >> {log}
        sleep 0.2
        exit 3
        """)
    run = boot({
        "base1.service": f"""
            [Service]
            Type=notify
            ExecStart={notify_exec("base1", log, 0.0, "--stop-delay", 0.1)}
            """,
        "base2.service": f"""
            [Unit]
            After=base1.service

            [Service]
            Type=notify
            ExecStart={notify_exec("base2", log, 0.0, "--stop-delay", 0.1)}
            """,
        "base3.service": f"""
            [Unit]
            After=base2.service

            [Service]
            Type=notify
            ExecStart={notify_exec("base3", log, 0.0, "--stop-delay", 0.1)}
            """,
        "bomb.service": f"""
            [Unit]
            After=base3.service

            [Service]
            Type=simple
            ExecStart={bomb}
            ExitContainerOnFailure=yes
            """,
    })
    status = run.finish(20)
    assert status == 3, f"cinit exited {status}, expected the failed unit's code 3{run.report()}"
    run.wait_err(
        r"^cinit: bomb\.service failed with ExitContainerOnFailure=yes \(exit-code\); "
        r"shutting down$", timeout=1,
    )
    seen = [(ev, who) for ev, who, _ in events(log)]
    assert ("start", "bomb") in seen, f"the bomb never ran: {seen}{run.report()}"
    stops = [(ev, who) for ev, who in seen if ev.startswith("stop")]
    # Each stops only after the unit ordered after it has finished stopping.
    assert stops == [
        ("stop-begin", "base3"), ("stop-end", "base3"),
        ("stop-begin", "base2"), ("stop-end", "base2"),
        ("stop-begin", "base1"), ("stop-end", "base1"),
    ], f"stop order: {stops}{run.report()}"
    for name in ("base1", "base2", "base3"):
        assert run.count_err(cinit_line(f"{name}.service", "stopped")) == 1, run.report()
        assert run.count_err(cinit_line(f"{name}.service", r"failed \(.*\)")) == 0, run.report()
