"""The event stream and the JSONL trace of a real boot (cinit as PID 1), issue 6 §1, §2, §6.

A ZeroMQ SUB connects to `ipc://<runtime dir>/events` before cinit starts (it retries until
the socket exists) and records every message; the trace is written with
CONTAINER_INIT_TRACE=1. Observations: the seqs, topics and bodies of both.
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq
from e2e_support import Boot, cinit_line

pytestmark = [pytest.mark.pid1, pytest.mark.timeout(60)]

Booter = Callable[..., Boot]
SEED_KEYS = ("phase", "t_start_ms", "dt_ms", "mem_snapshot")
JQ_ONE_LINER = 'sort_by(.t_start_ms) | .[] | "\\(.t_start_ms)ms \\(.phase) \\(.dt_ms)ms"'


class Subscriber:
    """A SUB on a thread, collecting [topic, json] messages (or never reading at all)."""

    def __init__(self, endpoint: str, *, reads: bool = True) -> None:
        self.context: zmq.Context[Any] = zmq.Context()
        self.socket = self.context.socket(zmq.SUB)
        self.socket.setsockopt(zmq.SUBSCRIBE, b"")
        if not reads:
            self.socket.setsockopt(zmq.RCVHWM, 1)
        self.socket.connect(endpoint)
        self.messages: list[tuple[str, dict[str, Any]]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._read, daemon=True)
        if reads:
            self.thread.start()

    def _read(self) -> None:
        while not self.stop.is_set():
            if self.socket.poll(50):
                topic, body = self.socket.recv_multipart()
                self.messages.append((topic.decode(), json.loads(body)))

    def wait_for(self, event: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not any(body["event"] == event for _, body in self.messages):
            if time.monotonic() > deadline:
                seen = [body["event"] for _, body in self.messages]
                raise AssertionError(f"no {event} event within {timeout} s; got {seen}")
            time.sleep(0.02)

    def close(self) -> None:
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join(5)
        self.socket.close(linger=0)
        self.context.term()


@pytest.fixture
def subscribers() -> Iterator[list[Subscriber]]:
    made: list[Subscriber] = []
    yield made
    for sub in made:
        sub.close()


def units_of(tmp_path: Path) -> tuple[dict[str, str], dict[str, str]]:
    core = {
        "web.service": """
            [Unit]
            Description=the web server
            [Service]
            ExecStart=/bin/sleep 60
            """,
        "setup.service": """
            [Unit]
            After=web.service
            Requires=web.service
            [Service]
            Type=oneshot
            ExecStart=/bin/true
            """,
        "flaky.service": """
            [Service]
            ExecStart=/bin/sh -c "exit 3"
            Restart=on-failure
            RestartSec=0.1
            StartLimitBurst=2
            """,
        "skipped.service": f"""
            [Unit]
            ConditionPathExists={tmp_path}/nowhere
            [Service]
            ExecStart=/bin/sleep 60
            """,
    }
    drop_in = {
        "web.service": """
            [Unit]
            Description=the web server, replaced by a drop-in
            [Service]
            ExecStart=/bin/sleep 61
            """
    }
    return core, drop_in


def read_trace(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_subscriber_gets_every_event_in_order_and_trace_agrees(
    boot: Booter, tmp_path: Path, subscribers: list[Subscriber]
) -> None:
    trace = tmp_path / "trace.jsonl"
    sub = Subscriber(f"ipc://{tmp_path / 'boot' / 'run' / 'events'}")
    subscribers.append(sub)
    core, drop_in = units_of(tmp_path)
    run = boot(
        core,
        drop_in,
        env={"CONTAINER_INIT_TRACE": "1", "CONTAINER_INIT_TRACE_FILE": str(trace)},
    )
    run.wait_err(cinit_line("flaky.service", r"failed \(start-limit-hit\)"), timeout=20)
    sub.wait_for("failed", timeout=10)
    assert run.terminate() == 0, run.report()
    sub.wait_for("shutdown-finished", timeout=10)

    seqs = [body["seq"] for _, body in sub.messages]
    assert seqs == list(range(1, len(seqs) + 1)), f"gaps or disorder: {seqs}"
    for topic, body in sub.messages:
        expected = (
            f"unit.{body['unit']}.{body['event']}" if body["unit"] else f"cinit.{body['event']}"
        )
        assert topic == expected
        assert {"seq", "time", "mono", "t_ms", "unit", "event"} <= set(body)
    events = [(body["unit"], body["event"]) for _, body in sub.messages]
    assert events[-1] == (None, "shutdown-finished")
    assert (None, "shutdown-started") in events
    assert ("web.service", "overridden") in events
    for name in core:
        assert (name, "loaded") in events
    assert ("skipped.service", "skipped") in events
    assert ("web.service", "ready") in events and ("setup.service", "exited") in events
    restarts = [b for _, b in sub.messages if b["unit"] == "flaky.service"]
    assert [b["event"] for b in restarts].count("restarting") == 2
    failed = restarts[-1] if restarts[-1]["event"] == "failed" else None
    assert failed is not None and failed["result"] == "start-limit-hit"
    assert any(b["event"] == "stopping" and b.get("code") == 3 for b in restarts)
    started = next(
        b for _, b in sub.messages if b["unit"] == "web.service" and b["event"] == "started"
    )
    assert isinstance(started["pid"], int) and started["pid"] > 1

    # Same events, same seqs, in the trace (which adds only the seed's keys).
    records = read_trace(trace)
    assert [r["seq"] for r in records] == seqs
    for record, (_, body) in zip(records, sub.messages, strict=True):
        assert {k: v for k, v in record.items() if k not in SEED_KEYS} == body


def test_trace_is_seed_compatible_and_the_jq_one_liner_works(boot: Booter, tmp_path: Path) -> None:
    trace = tmp_path / "trace.jsonl"
    core, drop_in = units_of(tmp_path)
    env = {
        "CONTAINER_INIT_TRACE": "1",
        "CONTAINER_INIT_TRACE_FILE": str(trace),
        "CONTAINER_INIT_TRACE_LABELS": "web:web-up,setup.service:setup-done",
    }
    run = boot(core, drop_in, env=env)
    run.wait_err(cinit_line("flaky.service", r"failed \(start-limit-hit\)"), timeout=20)
    assert run.terminate() == 0, run.report()
    records = read_trace(trace)
    for record in records:
        assert record["dt_ms"] >= 0 and record["t_start_ms"] >= 0
        assert record["t_start_ms"] <= record["t_ms"] + 1e-6 or record["event"] in (
            "loaded",
            "overridden",
        )
    overridden = [r for r in records if r["phase"] == "unit_overridden"]
    assert len(overridden) == 1 and overridden[0]["unit"] == "web.service"
    assert overridden[0]["core"].endswith("units/web.service")
    assert overridden[0]["drop_in"].endswith("drop-in/web.service")
    loaded = {r["unit"]: r for r in records if r["event"] == "loaded"}
    assert loaded["setup.service"]["after"] == ["web.service"]
    assert loaded["setup.service"]["requires"] == ["web.service"]
    assert loaded["web.service"]["source"] == "drop-in"
    # dt_ms is the phase's own length: web.service's `running` phase, not time since boot.
    ready = next(r for r in records if r["unit"] == "web.service" and r["event"] == "ready")
    assert ready["phase"] == "web.service:running"
    assert ready["dt_ms"] == pytest.approx(ready["t_ms"] - ready["t_start_ms"], abs=0.01)
    snapshots = {r["mem_snapshot"]["label"]: r for r in records if "mem_snapshot" in r}
    assert set(snapshots) == {"web-up", "setup-done"}
    web = snapshots["web-up"]["mem_snapshot"]
    assert web["cinit_rss"] > 1_000_000 and web["units"]["web.service"] > 0

    jq = subprocess.run(
        ["jq", "-s", JQ_ONE_LINER, str(trace)], capture_output=True, text=True, timeout=10
    )
    assert jq.returncode == 0, jq.stderr
    lines = jq.stdout.splitlines()
    assert len(lines) == len(records)
    pattern = re.compile(r'^"(\d+(\.\d+)?)ms (\S+) (\d+(\.\d+)?)ms"$')
    starts = []
    for line in lines:
        found = pattern.match(line)
        assert found, line
        starts.append(float(found.group(1)))
    assert starts == sorted(starts)
    phases = {pattern.match(line).group(3) for line in lines}  # type: ignore[union-attr]
    assert {"load", "unit_overridden", "web.service:waiting", "shutdown-started"} <= phases


def test_a_subscriber_that_never_reads_delays_neither_boot_nor_shutdown(
    boot: Booter, tmp_path: Path, subscribers: list[Subscriber]
) -> None:
    units = {
        f"s{i}.service": """
            [Service]
            ExecStart=/bin/sleep 60
            """
        for i in range(10)
    }
    units["probe.service"] = f"""
        [Unit]
        After={" ".join(f"s{i}.service" for i in range(10))}
        [Service]
        Type=oneshot
        ExecStart=/bin/true
        """

    def one(name: str, stuck: bool) -> tuple[float, float, list[dict[str, Any]]]:
        trace = tmp_path / f"{name}.jsonl"
        if stuck:
            for _ in range(3):
                endpoint = f"ipc://{tmp_path / name / 'run' / 'events'}"
                subscribers.append(Subscriber(endpoint, reads=False))
        env = {"CONTAINER_INIT_TRACE": "1", "CONTAINER_INIT_TRACE_FILE": str(trace)}
        run = boot(units, env=env, name=name)
        run.wait_err(cinit_line("probe.service", "exited \\(status=0\\)"), timeout=20)
        up = time.time() - run.exec_ns() / 1e9
        time.sleep(0.8)  # the stream is up (boot settled), the stuck subscribers connected
        began = time.monotonic()
        assert run.terminate() == 0, run.report()
        down = time.monotonic() - began
        return up, down, read_trace(trace)

    plain_up, plain_down, _ = one("plain", stuck=False)
    stuck_up, stuck_down, records = one("stuck", stuck=True)
    print(
        f"boot (exec -> probe ran): {plain_up * 1000:.0f} ms without subscribers, "
        f"{stuck_up * 1000:.0f} ms with 3 that never read; shutdown: "
        f"{plain_down * 1000:.0f} ms vs {stuck_down * 1000:.0f} ms"
    )
    # Behaviour, not timing: everything happened and every event reached the trace.
    seqs = [r["seq"] for r in records]
    assert seqs == list(range(1, len(seqs) + 1))
    assert records[-1]["event"] == "shutdown-finished"
    stopped = {r["unit"] for r in records if r["event"] == "stopped"}
    assert {f"s{i}.service" for i in range(10)} <= stopped


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("how", ["--events", "CINIT_EVENTS"])
def test_events_over_tcp_only_when_asked_and_on_loopback(
    boot: Booter, tmp_path: Path, subscribers: list[Subscriber], how: str
) -> None:
    import psutil

    port = free_port()
    sub = Subscriber(f"tcp://127.0.0.1:{port}")
    subscribers.append(sub)
    units = {"web.service": "[Service]\nExecStart=/bin/sleep 60\n"}
    endpoint = f"tcp://{port}" if how == "--events" else f"tcp://*:{port}"
    if how == "--events":
        run = boot(units, options=["--events", endpoint])
    else:
        run = boot(units, env={"CINIT_EVENTS": endpoint})
    sub.wait_for("ready", timeout=10)
    listening = [
        c.laddr
        for c in psutil.net_connections(kind="tcp")
        if c.status == psutil.CONN_LISTEN and c.laddr.port == port
    ]
    assert [addr.ip for addr in listening] == ["127.0.0.1"]
    assert not (tmp_path / "boot" / "run" / "events").exists()  # not on ipc as well
    assert run.terminate() == 0, run.report()
    sub.wait_for("shutdown-finished", timeout=10)


def test_without_units_cinit_wide_events_when_asked(boot: Booter, tmp_path: Path) -> None:
    trace = tmp_path / "trace.jsonl"
    # The background sleeps outlive their parent's exec: they come to PID 1 as orphans.
    command = ["/bin/sh", "-c", "sleep 0.2 & sleep 0.2 & exec sleep 0.6"]
    env = {"CONTAINER_INIT_TRACE": "1", "CONTAINER_INIT_TRACE_FILE": str(trace)}
    run = boot({}, options=["--", *command], env=env)
    assert run.finish(timeout=15) == 0, run.report()
    records = read_trace(trace)
    assert [r["seq"] for r in records] == list(range(1, len(records) + 1))
    orphans = [r for r in records if r["event"] == "orphans-reaped"]
    assert orphans and orphans[-1]["total"] == 2 and sum(r["count"] for r in orphans) == 2
    assert records[-1]["event"] == "shutdown-finished" and records[-1]["status"] == 0
    assert all(r["unit"] is None for r in records)


def test_zeromq_comes_up_only_after_the_boot_settled(boot: Booter, tmp_path: Path) -> None:
    units = {
        f"s{i}.service": """
            [Service]
            ExecStart=/bin/sleep 60
            """
        for i in range(5)
    }
    run = boot(units, env={"CINIT_VERBOSE": "1"})
    stream = run.wait_err(r"^cinit: event stream on ipc://\S+/events, control in .*$", timeout=10)
    log = run.stderr()
    for i in range(5):
        ready = re.search(cinit_line(f"s{i}.service", "ready"), log, re.MULTILINE)
        assert ready is not None and ready.start() < stream.start(), log
    assert run.terminate() == 0, run.report()
