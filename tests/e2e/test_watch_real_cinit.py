"""`cinit watch` and `cinit analyze` against a real cinit booting as PID 1.

The watcher starts before cinit (it must wait, then connect): in a real terminal (tmux,
screen captured) and as JSON Lines on a pipe. The analysis reads the trace that boot
wrote with CONTAINER_INIT_TRACE=1.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from e2e_support import Boot, cinit_line, notify_exec, shell_script, wait_until

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
from tmux_terminal import Terminal, tmux_problem

pytestmark = [pytest.mark.pid1, pytest.mark.timeout(90)]

Booter = Callable[..., Boot]  # the `boot` fixture (tests/e2e/conftest.py)


def mixed_units(tmp_path: Path) -> dict[str, str]:
    """A notify service ready after 0.3 s, one ordered after it, a oneshot, a service that
    fails (no restart), and one skipped by its condition."""
    log = tmp_path / "events.log"
    fail = shell_script(tmp_path / "fail.sh", "sleep 0.2\nexit 3\n")
    setup = shell_script(tmp_path / "setup.sh", "sleep 0.1\n")
    return {
        "db.service": f"""
            [Unit]
            Description=The database
            [Service]
            Type=notify
            ExecStart={notify_exec("db", log, 0.3, "--lifetime", 120)}
            """,
        "web.service": f"""
            [Unit]
            After=db.service setup.service
            [Service]
            Type=notify
            ExecStart={notify_exec("web", log, 0.2, "--lifetime", 120)}
            """,
        "setup.service": f"""
            [Service]
            Type=oneshot
            ExecStart={setup}
            """,
        "broken.service": f"""
            [Service]
            ExecStart={fail}
            """,
        "optional.service": """
            [Unit]
            ConditionPathExists=/nonexistent/cinit-watch-test
            [Service]
            ExecStart=/bin/true
            """,
    }


@pytest.fixture
def terminals() -> Iterator[list[Terminal]]:
    problem = tmux_problem()
    if problem:
        pytest.skip(problem)
    opened: list[Terminal] = []
    yield opened
    for term in opened:
        term.close()


def test_watch_in_a_terminal_shows_the_units_of_a_booting_cinit(
    boot: Booter, tmp_path: Path, cinit_cmd: list[str], terminals: list[Terminal]
) -> None:
    runtime = tmp_path / "boot" / "run"  # where the boot fixture points cinit
    term = Terminal(tmp_path, [*cinit_cmd, "watch", "--runtime-dir", str(runtime)], {})
    terminals.append(term)
    term.wait_screen("waiting for cinit")
    run = boot(mixed_units(tmp_path))
    run.wait_err(cinit_line("web.service", "ready"), timeout=20)
    run.wait_err(cinit_line("broken.service", r"failed.*"), timeout=20)
    screen = term.wait_screen("connected", "web.service", "broken.service", "optional.service")
    expected = {
        "db.service": "active",
        "web.service": "active",
        "setup.service": "exited",
        "broken.service": "failed (exit-code)",
        "optional.service": "condition-skipped",
    }
    deadline = time.monotonic() + 10
    while True:
        rows = {unit: term.line_with(unit + " ") for unit in expected}
        if all(f" {state} " in rows[unit] + " " for unit, state in expected.items()):
            break
        assert time.monotonic() < deadline, f"states never matched {expected}:\n{term.screen()}"
        time.sleep(0.2)
    # db runs: a pid and an uptime; the event pane has the boot's transitions.
    db = rows["db.service"].split()
    assert db[2].isdigit() and db[3].endswith("s"), rows["db.service"]
    screen = term.wait_screen("web.service: ready running -> active", "broken.service: failed")
    # cinit shuts down: the view follows (stopping -> inactive).
    assert run.terminate() == 0, run.report()
    term.wait_screen("shutdown-finished")
    assert "inactive" in term.line_with("db.service "), term.screen()
    term.keys("C-c")
    assert term.exit_status() == 0
    assert "db.service" not in term.screen(), "the terminal was not restored"
    del screen


def test_watch_started_after_boot_shows_the_snapshot_then_follows_events(
    boot: Booter, tmp_path: Path, cinit_cmd: list[str], terminals: list[Terminal]
) -> None:
    run = boot(mixed_units(tmp_path))
    run.wait_err(cinit_line("web.service", "ready"), timeout=20)
    run.wait_err(cinit_line("broken.service", r"failed.*"), timeout=20)
    runtime = tmp_path / "boot" / "run"
    term = Terminal(tmp_path / "term", [*cinit_cmd, "watch"], {"CINIT_RUNTIME_DIR": str(runtime)})
    terminals.append(term)
    screen = term.wait_screen("connected", "web.service")
    # Everything so far comes from the status snapshot: no event was seen yet.
    assert "active" in term.line_with("db.service "), screen
    assert "exited" in term.line_with("setup.service "), screen
    assert "failed" in term.line_with("broken.service "), screen
    assert "condition-skipped" in term.line_with("optional.service "), screen
    # From here on, events: stopping cinit shows up in the view.
    assert run.terminate() == 0, run.report()
    term.wait_screen("shutdown-started", "db.service: stopped")
    term.keys("C-c")
    assert term.exit_status() == 0


def test_watch_json_started_before_cinit_gets_every_event_in_order(
    boot: Booter, tmp_path: Path, cinit_cmd: list[str]
) -> None:
    runtime = tmp_path / "boot" / "run"
    watch = subprocess.Popen(
        [*cinit_cmd, "watch", "--json", "--runtime-dir", str(runtime)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    events: list[dict] = []

    def read() -> None:
        assert watch.stdout is not None
        for line in watch.stdout:
            events.append(json.loads(line))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        time.sleep(1.0)  # the watcher is up (imports done) and waiting before cinit starts
        trace = tmp_path / "trace.jsonl"
        run = boot(
            mixed_units(tmp_path),
            env={"CONTAINER_INIT_TRACE": "1", "CONTAINER_INIT_TRACE_FILE": str(trace)},
        )
        run.wait_err(cinit_line("web.service", "ready"), timeout=20)
        # The stream comes up once the boot settled (at most ZMQ_DEFER): let it, then stop.
        wait_until(lambda: bool(events), 10, "the first event through the stream")
        assert run.terminate() == 0, run.report()
        deadline = time.monotonic() + 10
        while not events or events[-1]["event"] != "shutdown-finished":
            assert time.monotonic() < deadline, f"no shutdown-finished in {events}"
            time.sleep(0.05)
        watch.send_signal(signal.SIGINT)
        assert watch.wait(10) == 0
        reader.join(5)
        seqs = [event["seq"] for event in events]
        assert seqs == list(range(1, len(seqs) + 1)), "gap, duplicate or reordering"
        names = [(event["unit"], event["event"]) for event in events]
        for expected in [
            ("db.service", "loaded"),
            ("db.service", "ready"),
            ("setup.service", "exited"),
            ("broken.service", "failed"),
            ("optional.service", "skipped"),
            (None, "shutdown-finished"),
        ]:
            assert expected in names, f"{expected} not in {names}"
        # What the watcher printed is what the trace holds, event for event.
        traced = [json.loads(line) for line in trace.read_text().splitlines()]
        assert [(r["seq"], r["unit"], r["event"]) for r in traced] == [
            (e["seq"], e["unit"], e["event"]) for e in events
        ]
    finally:
        watch.kill()
        watch.wait()


def test_analyze_a_real_boot_trace(boot: Booter, tmp_path: Path, cinit_cmd: list[str]) -> None:
    trace = tmp_path / "trace.jsonl"
    run = boot(
        mixed_units(tmp_path),
        env={"CONTAINER_INIT_TRACE": "1", "CONTAINER_INIT_TRACE_FILE": str(trace)},
    )
    run.wait_err(cinit_line("web.service", "ready"), timeout=20)
    run.wait_err(cinit_line("broken.service", r"failed.*"), timeout=20)
    assert run.terminate() == 0, run.report()

    def analyze(*args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [*cinit_cmd, "analyze", *args], capture_output=True, text=True, timeout=30
        )
        assert done.returncode == 0, done.stderr
        return done

    blame = analyze("blame", str(trace)).stdout.splitlines()
    blamed = {line.split()[-1] if "(" not in line else line.split()[-2]: line for line in blame}
    assert set(blamed) == {"db.service", "web.service", "setup.service", "broken.service"}
    assert _ms(blamed["db.service"].split()[0]) >= 300  # its READY=1 came after 0.3 s
    assert _ms(blamed["web.service"].split()[0]) >= 200
    assert blamed["broken.service"].endswith("(failed)")
    chain = analyze("critical-chain", str(trace)).stdout.splitlines()[3:]
    assert chain[0].startswith("web.service @")
    assert chain[1].startswith("└─db.service @")  # db (0.3 s) outlasted setup (0.1 s)
    plot = tmp_path / "boot.svg"
    analyze("plot", str(trace), "-o", str(plot))
    texts = [e.text for e in ET.parse(plot).getroot().iter("{http://www.w3.org/2000/svg}text")]
    for unit in (
        "db.service",
        "web.service",
        "setup.service",
        "broken.service",
        "optional.service",
    ):
        assert unit in texts


def _ms(span: str) -> float:
    """`412ms` / `1.203s` -> ms."""
    return float(span[:-2]) if span.endswith("ms") else float(span[:-1]) * 1000
