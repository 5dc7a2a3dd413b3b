"""Ordered shutdown: reverse of the start order, and SIGTERM while boot is still going on."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from e2e_support import Boot, cinit_line, events, notify_exec, shell_script, wait_until

pytestmark = [pytest.mark.pid1, pytest.mark.timeout(60)]

Booter = Callable[..., Boot]  # the `boot` fixture (tests/e2e/conftest.py)


def chain(log: Path, names: list[str], *extra: object) -> dict[str, str]:
    """Notify units ordered one After= the other, in `names` order."""
    units = {}
    previous = None
    for name in names:
        after = f"[Unit]\nAfter={previous}.service\n\n" if previous else ""
        units[f"{name}.service"] = (
            f"{after}[Service]\nType=notify\nExecStart={notify_exec(name, log, 0.05, *extra)}\n"
        )
        previous = name
    return units


def test_stop_order_is_the_reverse_of_start_order(boot: Booter, tmp_path: Path) -> None:
    log = tmp_path / "events.log"
    # Listed in the unit directory in an order unrelated to the chain.
    run = boot(chain(log, ["zeta", "mid", "alpha"], "--stop-delay", 0.2))
    run.wait_err(cinit_line("alpha.service", "ready"), timeout=20)
    assert run.terminate() == 0, run.report()
    seen = events(log)
    starts = [who for ev, who, _ in seen if ev == "start"]
    assert starts == ["zeta", "mid", "alpha"], f"start order {starts}{run.report()}"
    stops = [(ev, who) for ev, who, _ in seen if ev.startswith("stop")]
    # A unit is signalled only after the one ordered after it has exited (each takes
    # 0.2 s to stop): the stop phases never overlap.
    assert stops == [
        ("stop-begin", "alpha"), ("stop-end", "alpha"),
        ("stop-begin", "mid"), ("stop-end", "mid"),
        ("stop-begin", "zeta"), ("stop-end", "zeta"),
    ], f"stop order {stops}{run.report()}"
    err = run.stderr()
    positions = [err.index(f"cinit: {name}.service: stopped") for name in ("alpha", "mid", "zeta")]
    assert positions == sorted(positions), run.report()


def test_sigterm_while_a_unit_is_still_starting_gives_a_clean_ordered_exit(
    boot: Booter, tmp_path: Path
) -> None:
    log = tmp_path / "events.log"
    later = shell_script(tmp_path / "later.sh", f'echo "start later $(date +%s%N)" >> {log}\n')
    run = boot({
        "base.service": f"""
            [Service]
            Type=notify
            ExecStart={notify_exec("base", log, 0.0)}
            """,
        "stuck.service": f"""
            [Unit]
            After=base.service

            [Service]
            Type=notify
            ExecStart={notify_exec("stuck", log, 0.0, "--no-ready")}
            """,
        "later.service": f"""
            [Unit]
            After=stuck.service

            [Service]
            Type=oneshot
            ExecStart={later}
            """,
    })
    run.wait_err(cinit_line("stuck.service", r"started \(pid \d+\)"), timeout=20)
    # The stuck service is running (its handler is set once it logged `start`).
    wait_until(lambda: ("start", "stuck") in [(e, w) for e, w, _ in events(log)], 10,
               "the never-ready service to run")
    assert run.terminate(10) == 0, run.report()
    seen = [(ev, who) for ev, who, _ in events(log)]
    assert ("start", "later") not in seen, f"a pending unit started during shutdown{run.report()}"
    assert run.count_err(cinit_line("later.service", r"started \(pid \d+\)")) == 0, run.report()
    stops = [(ev, who) for ev, who in seen if ev.startswith("stop")]
    # Both running services were stopped by SIGTERM (not killed with the namespace), the
    # one still starting first.
    assert stops == [
        ("stop-begin", "stuck"), ("stop-end", "stuck"),
        ("stop-begin", "base"), ("stop-end", "base"),
    ], f"stops {stops}{run.report()}"
    assert run.count_err(cinit_line("stuck.service", r"failed \(.*\)")) == 0, run.report()
    assert run.count_err(r"^cinit: .*: started .*$") == 2, run.report()
