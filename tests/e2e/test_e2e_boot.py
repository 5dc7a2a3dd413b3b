"""Boot: concurrent start, ordering on readiness, Requires= failure propagation, oneshots."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from e2e_support import (
    Boot,
    cinit_line,
    events,
    notify_exec,
    shell_script,
    stamp_of,
    wait_until,
)

pytestmark = [pytest.mark.pid1, pytest.mark.timeout(60)]

Booter = Callable[..., Boot]  # the `boot` fixture (tests/e2e/conftest.py)


def stamp_script(path: Path, log: Path, name: str) -> Path:
    """A script appending `start <name> <ns>` to `log`."""
    return shell_script(path, f'echo "start {name} $(date +%s%N)" >> {log}\n')


def test_twenty_independent_notify_services_start_concurrently_and_are_all_ready(
    boot: Booter, tmp_path: Path
) -> None:
    log = tmp_path / "events.log"
    names = [f"s{i:02d}" for i in range(1, 21)]
    units = {
        f"{name}.service": f"""
            [Service]
            Type=notify
            ExecStart={notify_exec(name, log, 0.2)}
            """
        for name in names
    }
    probe = stamp_script(tmp_path / "probe.sh", log, "probe")
    after = " ".join(f"{name}.service" for name in names)
    units["probe.service"] = f"""
        [Unit]
        After={after}

        [Service]
        Type=oneshot
        RemainAfterExit=yes
        ExecStart={probe}
        """
    run = boot(units)
    run.wait_err(cinit_line("probe.service", "ready"), timeout=20)
    probe_ns = stamp_of(log, "start", "probe")
    for name in names:
        # Ordered on readiness: the probe started after every service said READY=1.
        assert stamp_of(log, "ready", name) <= probe_ns, f"probe started before {name} was ready"
        assert run.count_err(cinit_line(f"{name}.service", "ready")) == 1, run.report()
    # Concurrent, told without a clock: started one after another's READY=1, no service
    # would be up before the previous one was ready; here several are (each waits 0.2 s).
    # How fast is the bench's matter (bench/boot.py "par 30"), not a test's.
    first_ready = min(stamp_of(log, "ready", name) for name in names)
    started_before = [n for n in names if stamp_of(log, "start", n) < first_ready]
    assert len(started_before) >= 2, f"only {started_before} started before the first READY=1"
    assert run.terminate() == 0, run.report()


def test_chain_is_ordered_on_readiness_of_notify_services(boot: Booter, tmp_path: Path) -> None:
    log = tmp_path / "events.log"
    last = stamp_script(tmp_path / "c.sh", log, "c")
    run = boot({
        "a.service": f"""
            [Service]
            Type=notify
            ExecStart={notify_exec("a", log, 0.3)}
            """,
        "b.service": f"""
            [Unit]
            After=a.service

            [Service]
            Type=notify
            ExecStart={notify_exec("b", log, 0.2)}
            """,
        "c.service": f"""
            [Unit]
            After=b.service

            [Service]
            Type=oneshot
            RemainAfterExit=yes
            ExecStart={last}
            """,
    })
    run.wait_err(cinit_line("c.service", "ready"), timeout=20)
    a_ready, b_start = stamp_of(log, "ready", "a"), stamp_of(log, "start", "b")
    b_ready, c_start = stamp_of(log, "ready", "b"), stamp_of(log, "start", "c")
    # Each stamp is taken before the READY=1 datagram is sent, so a correct cinit can only
    # start the next unit after it.
    assert b_start >= a_ready, f"b started {(a_ready - b_start) / 1e6:.1f} ms before a was ready"
    assert c_start >= b_ready, f"c started {(b_ready - c_start) / 1e6:.1f} ms before b was ready"
    err = run.stderr()
    assert err.index("cinit: a.service: ready") < err.index("cinit: b.service: started")
    assert run.terminate() == 0, run.report()


def test_requires_failure_propagates_and_condition_skip_does_not(
    boot: Booter, tmp_path: Path
) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    scripts = {
        name: shell_script(tmp_path / f"{name}.sh", f"touch {marks / name}\n")
        for name in ("b", "c", "skipped", "d")
    }
    run = boot({
        "a.service": """
            [Service]
            Type=oneshot
            ExecStart=/bin/false
            """,
        "b.service": f"""
            [Unit]
            Requires=a.service
            After=a.service

            [Service]
            Type=oneshot
            RemainAfterExit=yes
            ExecStart={scripts["b"]}
            """,
        "c.service": f"""
            [Unit]
            After=a.service

            [Service]
            Type=oneshot
            RemainAfterExit=yes
            ExecStart={scripts["c"]}
            """,
        "skipped.service": f"""
            [Unit]
            ConditionPathExists=/nonexistent

            [Service]
            Type=oneshot
            RemainAfterExit=yes
            ExecStart={scripts["skipped"]}
            """,
        "d.service": f"""
            [Unit]
            Requires=skipped.service
            After=skipped.service

            [Service]
            Type=oneshot
            RemainAfterExit=yes
            ExecStart={scripts["d"]}
            """,
    })
    run.wait_err(cinit_line("a.service", r"failed \(exit-code\)"))
    run.wait_err(cinit_line("b.service", r"failed \(dependency\)"))
    unmet = r"skipped \(ConditionPathExists=/nonexistent not met\)"
    run.wait_err(cinit_line("skipped.service", unmet))
    run.wait_err(cinit_line("c.service", "ready"))
    run.wait_err(cinit_line("d.service", "ready"))
    assert run.alive(), f"a failing unit took cinit down{run.report()}"
    run.terminate()
    # cinit has exited: nothing can start b or the skipped unit any more.
    assert sorted(p.name for p in marks.iterdir()) == ["c", "d"], run.report()
    assert run.count_err(cinit_line("b.service", r"started \(pid \d+\)")) == 0, run.report()
    assert run.count_err(cinit_line("skipped.service", r"started \(pid \d+\)")) == 0
    assert run.count_err(cinit_line("skipped.service", r"failed \(.*\)")) == 0, run.report()
    assert run.count_err(cinit_line("d.service", r"failed \(.*\)")) == 0, run.report()


def test_oneshot_runs_its_exec_start_lines_in_order_and_remains_active(
    boot: Booter, tmp_path: Path
) -> None:
    log = tmp_path / "events.log"
    first = shell_script(tmp_path / "first.sh", f"""
        sleep 0.2
        echo "first one $(date +%s%N)" >> {log}
        """)
    second = shell_script(tmp_path / "second.sh", f'echo "second one $(date +%s%N)" >> {log}\n')
    stop = shell_script(tmp_path / "stop.sh", f'echo "execstop one $(date +%s%N)" >> {log}\n')
    dependent = stamp_script(tmp_path / "dep.sh", log, "dependent")
    run = boot({
        "one.service": f"""
            [Service]
            Type=oneshot
            RemainAfterExit=yes
            ExecStart={first}
            ExecStart={second}
            ExecStop={stop}
            """,
        "dependent.service": f"""
            [Unit]
            After=one.service
            Requires=one.service

            [Service]
            Type=oneshot
            RemainAfterExit=yes
            ExecStart={dependent}
            """,
    })
    run.wait_err(cinit_line("dependent.service", "ready"), timeout=20)
    assert [(ev, who) for ev, who, _ in events(log)] == [
        ("first", "one"), ("second", "one"), ("start", "dependent"),
    ], run.report()
    assert run.count_err(cinit_line("one.service", r"started \(pid \d+\)")) == 2, run.report()
    assert run.count_err(cinit_line("one.service", "ready")) == 1, run.report()
    # RemainAfterExit=yes: still active after its commands exited, so stopping it at
    # shutdown runs its ExecStop=.
    assert run.terminate() == 0, run.report()
    wait_until(lambda: ("execstop", "one") in [(e, w) for e, w, _ in events(log)], 2,
               "one.service's ExecStop= to run at shutdown")
    assert run.count_err(cinit_line("one.service", "stopped")) == 1, run.report()
