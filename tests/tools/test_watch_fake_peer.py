"""`cinit watch` against a peer speaking the event/control contract (tests/tools/fake_cinit.py).

The terminal view runs in a real terminal (tmux) and is checked on the captured screen;
the JSON Lines mode runs with stdout on a pipe. The peer lets the tests drop events on
purpose (gaps) and disappear and come back (reconnects), which a real cinit does rarely.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fake_cinit import FakeCinit
from tmux_terminal import Terminal, tmux_problem

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def runtime(tmp_path: Path) -> Path:
    path = tmp_path / "run"
    path.mkdir(mode=0o700)
    return path


@pytest.fixture
def peers() -> Iterator[list[FakeCinit]]:
    started: list[FakeCinit] = []
    yield started
    for peer in started:
        peer.close()


@pytest.fixture
def terminal(tmp_path: Path, cinit_cmd: list[str]) -> Iterator[list[Terminal]]:
    problem = tmux_problem()
    if problem:
        pytest.skip(problem)
    opened: list[Terminal] = []
    yield opened
    for term in opened:
        term.close()


def wait_subscribed(peer: FakeCinit, term: Terminal) -> None:
    """Publish probes until the watcher shows one: its subscription has reached the peer
    (until then events are lost on the way, which only a later snapshot makes up for)."""
    deadline = time.monotonic() + 15
    while "probe" not in term.screen():
        assert time.monotonic() < deadline, f"no probe event shown:\n{term.screen()}"
        peer.publish(None, "probe")
        time.sleep(0.2)


def boot_units(peer: FakeCinit) -> None:
    for unit in ("db.service", "web.service", "broken.service"):
        peer.publish(unit, "loaded", kind="service", description=unit)
        peer.publish(unit, "starting", new="starting")
    peer.publish("db.service", "started", new="running", pid=4242)
    peer.publish("db.service", "ready", new="active")
    peer.publish("web.service", "started", new="running", pid=4343)
    peer.publish("broken.service", "failed", new="failed", result="exit-code", code=3)


def test_watch_started_before_cinit_waits_then_shows_each_unit_and_its_state(
    runtime: Path,
    peers: list[FakeCinit],
    terminal: list[Terminal],
    tmp_path: Path,
    cinit_cmd: list[str],
) -> None:
    term = Terminal(tmp_path, [*cinit_cmd, "watch"], {"CINIT_RUNTIME_DIR": str(runtime)})
    terminal.append(term)
    term.wait_screen("cinit watch", "waiting for cinit")
    peer = FakeCinit(runtime)
    peers.append(peer)
    term.wait_screen("connected")
    wait_subscribed(peer, term)
    boot_units(peer)
    peer.set_metrics("db.service", cpu=1.25, memory=3 * 1024 * 1024)
    screen = term.wait_screen("db.service", "web.service", "broken.service", "3.0M")
    db = term.line_with("db.service")
    assert "active" in db and "4242" in db and "1.25s" in db and "ready" in db, screen
    web = term.line_with("web.service")
    assert "running" in web and "4343" in web, screen
    assert "failed (exit-code)" in term.line_with("broken.service"), screen
    # The event pane shows the transitions.
    term.wait_screen("broken.service: failed starting -> failed")
    # States in colour: failed in red.
    coloured = term.screen(colours=True)
    failed_line = next(line for line in coloured.splitlines() if "broken.service" in line)
    assert "\x1b[1m\x1b[31mfailed" in failed_line or "\x1b[1;31mfailed" in failed_line, repr(
        failed_line
    )
    # Ctrl-C: status 0 and the terminal as it was (the view is gone).
    term.keys("C-c")
    assert term.exit_status() == 0
    assert "db.service" not in term.screen()


def test_a_gap_in_the_stream_is_filled_by_a_fresh_snapshot(
    runtime: Path,
    peers: list[FakeCinit],
    terminal: list[Terminal],
    tmp_path: Path,
    cinit_cmd: list[str],
) -> None:
    peer = FakeCinit(runtime)
    peers.append(peer)
    term = Terminal(tmp_path, [*cinit_cmd, "watch", "--runtime-dir", str(runtime)], {})
    terminal.append(term)
    term.wait_screen("connected")
    wait_subscribed(peer, term)
    peer.publish("a.service", "starting", new="starting")
    term.wait_screen("a.service: starting")
    # Two events never reach the watcher; the third shows the gap.
    peer.publish("a.service", "started", new="running", pid=77, send=False)
    peer.publish("b.service", "starting", new="starting", send=False)
    peer.publish("a.service", "ready", new="active")
    screen = term.wait_screen("resyncs 1", "b.service")
    assert "active" in term.line_with("a.service") and "77" in term.line_with("a.service"), screen
    assert "starting" in term.line_with("b.service"), screen
    assert f"seq {peer.seq}" in screen
    term.keys("C-c")
    assert term.exit_status() == 0


def test_watch_reconnects_when_cinit_goes_away_and_comes_back(
    runtime: Path,
    peers: list[FakeCinit],
    terminal: list[Terminal],
    tmp_path: Path,
    cinit_cmd: list[str],
) -> None:
    first = FakeCinit(runtime)
    term = Terminal(tmp_path, [*cinit_cmd, "watch", "--runtime-dir", str(runtime)], {})
    terminal.append(term)
    term.wait_screen("connected")
    first.publish("old.service", "starting", new="starting")
    term.wait_screen("old.service")
    first.close()
    term.wait_screen("waiting for cinit")
    time.sleep(1.5)  # the second run starts well apart from the first (a real restart)
    second = FakeCinit(runtime)
    peers.append(second)
    term.wait_screen("connected")
    second.publish("new.service", "loaded", kind="service")
    second.publish("new.service", "starting", new="starting")
    screen = term.wait_screen("new.service")
    assert "old.service" not in term.line_with("service"), screen
    term.keys("C-c")
    assert term.exit_status() == 0


class JsonLines:
    """The JSON Lines a process writes on stdout, collected by a thread."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[dict] = []
        self._proc = proc
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            self.lines.append(json.loads(line))

    def wait_for(self, predicate: Callable[[list[dict]], bool], timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while not predicate(self.lines):
            assert time.monotonic() < deadline, f"timed out; lines: {self.lines}"
            time.sleep(0.05)


def test_json_lines_on_a_pipe_each_event_once_in_order_gaps_on_stderr(
    runtime: Path, peers: list[FakeCinit], cinit_cmd: list[str]
) -> None:
    peer = FakeCinit(runtime)
    peers.append(peer)
    proc = subprocess.Popen(
        [*cinit_cmd, "watch", "--runtime-dir", str(runtime)],  # stdout a pipe: JSON Lines
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out = JsonLines(proc)
        # The subscription takes a moment to reach the publisher: probe until one arrives.
        deadline = time.monotonic() + 10
        while not out.lines:
            assert time.monotonic() < deadline, "no event ever arrived"
            peer.publish(None, "probe")
            time.sleep(0.1)
        out.wait_for(lambda lines: lines[-1]["seq"] == peer.seq)
        start = peer.seq
        boot_units(peer)
        peer.publish("x.service", "starting", new="starting", send=False)
        peer.publish("x.service", "ready", new="active")
        out.wait_for(lambda lines: lines[-1]["seq"] == peer.seq)
        seqs = [line["seq"] for line in out.lines if line["seq"] > start]
        expected = [s for s in range(start + 1, peer.seq + 1) if s != peer.seq - 1]
        assert seqs == expected
        after = [line for line in out.lines if line["seq"] > start]
        assert after[0]["unit"] == "db.service" and after[0]["event"] == "loaded"
        assert {"seq", "time", "mono", "t_ms", "unit", "event"} <= set(after[-1])
        # Every seq once, in increasing order, over the whole run.
        every = [line["seq"] for line in out.lines]
        assert every == sorted(set(every))
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0
        assert proc.stderr is not None
        missed = peer.seq - 1
        assert f"missed events {missed}..{missed}" in proc.stderr.read()
    finally:
        proc.kill()
        proc.wait()


def test_usage_error_exits_2(cinit_cmd: list[str]) -> None:
    done = subprocess.run(
        [*cinit_cmd, "watch", "--bogus"], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 2
    assert "--bogus" in done.stderr


@pytest.mark.parametrize("how", ["option", "env"])
def test_events_endpoint_from_option_or_env_tcp_port_means_loopback(
    runtime: Path, peers: list[FakeCinit], cinit_cmd: list[str], how: str
) -> None:
    peer = FakeCinit(runtime, events="tcp://127.0.0.1:*")
    peers.append(peer)
    port = peer.events_endpoint.rsplit(":", 1)[1]
    # The form `cinit run --events` takes: tcp://PORT binds (and so connects to) loopback.
    value = f"tcp://{port}"
    args = ["--events", value] if how == "option" else []
    env = {**os.environ, "CINIT_EVENTS": value} if how == "env" else None
    proc = subprocess.Popen(
        [*cinit_cmd, "watch", "--json", "--runtime-dir", str(runtime), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        out = JsonLines(proc)
        deadline = time.monotonic() + 10
        while not out.lines:
            assert time.monotonic() < deadline, "no event arrived over tcp"
            peer.publish("t.service", "starting", new="starting")
            time.sleep(0.1)
        assert out.lines[0]["unit"] == "t.service"
        proc.terminate()  # SIGTERM ends it like Ctrl-C
        assert proc.wait(10) == 0
    finally:
        proc.kill()
        proc.wait()


def test_json_flag_on_a_terminal_and_ctrl_c_while_waiting_for_cinit(
    runtime: Path,
    peers: list[FakeCinit],
    terminal: list[Terminal],
    tmp_path: Path,
    cinit_cmd: list[str],
) -> None:
    waiting = Terminal(tmp_path / "one", [*cinit_cmd, "watch", "--runtime-dir", str(runtime)], {})
    terminal.append(waiting)
    waiting.wait_screen("waiting for cinit")
    waiting.keys("C-c")
    assert waiting.exit_status() == 0
    peer = FakeCinit(runtime)
    peers.append(peer)
    term = Terminal(
        tmp_path / "two", [*cinit_cmd, "watch", "--json", "--runtime-dir", str(runtime)], {}
    )
    terminal.append(term)
    deadline = time.monotonic() + 10
    while '"event": "probe"' not in term.screen():
        assert time.monotonic() < deadline, term.screen()
        peer.publish(None, "probe")
        time.sleep(0.2)
    line = next(line for line in term.screen().splitlines() if '"probe"' in line)
    assert json.loads(line)["event"] == "probe"
    term.keys("C-c")
    assert term.exit_status() == 0


def test_a_user_without_access_to_the_runtime_dir_is_told_why(
    runtime: Path, terminal: list[Terminal], tmp_path: Path, cinit_cmd_any_user: list[str]
) -> None:
    cinit_cmd = cinit_cmd_any_user  # a copy `nobody` can run when the checkout is out of reach
    runtime.chmod(0o700)
    as_nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    term = Terminal(tmp_path, [*as_nobody, *cinit_cmd, "watch", "--runtime-dir", str(runtime)], {})
    terminal.append(term)
    term.wait_screen(f"no access to {runtime}")
    term.keys("C-c")
    assert term.exit_status() == 0
    proc = subprocess.Popen(
        [*as_nobody, *cinit_cmd, "watch", "--json", "--runtime-dir", str(runtime)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        assert f"no access to {runtime}" in proc.stderr.readline()
        proc.terminate()
        assert proc.wait(10) == 0
    finally:
        proc.kill()
        proc.wait()
