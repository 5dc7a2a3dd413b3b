"""A peer that speaks cinit's event and control contract, for testing `cinit watch`.

Not a mock of anything in cinit: a real ZMQ PUB socket at `<runtime>/events` and a real
REP socket at `<runtime>/control` (served by a thread), fed by the test with `publish`.
Its events follow the contract (seq, time, mono, t_ms, unit, event, old/new); its status
replies carry the seq they reflect. `events` binds the stream elsewhere (`tcp://127.0.0.1:*`
picks a free port; `events_endpoint` says which). `publish(..., send=False)` uses a seq
without sending the event, as when cinit drops one for a full queue: a gap.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import zmq


class FakeCinit:
    def __init__(self, runtime: Path, events: str | None = None) -> None:
        runtime.mkdir(parents=True, exist_ok=True)
        self.runtime = runtime
        self.started = time.time()
        self.seq = 0
        self.units: dict[str, dict[str, Any]] = {}
        self.status_requests = 0
        self._lock = threading.Lock()
        self._context = zmq.Context()
        self._pub = self._context.socket(zmq.PUB)
        self._pub.setsockopt(zmq.LINGER, 0)
        self._pub.bind(events or f"ipc://{runtime / 'events'}")
        self.events_endpoint = self._pub.getsockopt(zmq.LAST_ENDPOINT).decode()
        self._rep = self._context.socket(zmq.REP)
        self._rep.setsockopt(zmq.LINGER, 0)
        self._rep.bind(f"ipc://{runtime / 'control'}")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            if not self._rep.poll(50):
                continue
            request = json.loads(self._rep.recv())
            with self._lock:
                self.status_requests += 1
                if request.get("cmd") == "status":
                    reply: dict[str, Any] = {
                        "ok": True,
                        "seq": self.seq,
                        "boot_time": self.started,
                        "units": json.loads(json.dumps(self.units)),
                    }
                else:
                    reply = {"ok": False, "code": 2, "error": "unsupported by the fake"}
            self._rep.send(json.dumps(reply).encode())

    def publish(
        self, unit: str | None, name: str, new: str = "", send: bool = True, **fields: Any
    ) -> dict[str, Any]:
        """Next event: update the status the control side reports, then send it."""
        with self._lock:
            self.seq += 1
            now = time.time()
            event: dict[str, Any] = {
                "seq": self.seq,
                "time": now,
                "mono": time.monotonic(),
                "t_ms": (now - self.started) * 1000,
                "unit": unit,
                "event": name,
                **fields,
            }
            if unit is not None:
                status = self.units.setdefault(
                    unit,
                    {
                        "name": unit,
                        "description": "",
                        "kind": "service",
                        "state": "inactive",
                        "sub": "",
                        "main_pid": None,
                        "since": now,
                        "restarts": 0,
                        "last_exit": None,
                        "result": "success",
                        "memory": None,
                        "cpu": None,
                        "ready": False,
                        "last_event": name,
                    },
                )
                if new:
                    event["old"], event["new"] = status["state"], new
                    status["state"], status["since"] = new, now
                if "result" in fields:
                    status["result"] = fields["result"]
                if "pid" in fields:
                    status["main_pid"] = fields["pid"]
                status["last_event"] = name
            if send:
                topic = f"unit.{unit}.{name}" if unit else f"cinit.{name}"
                self._pub.send_multipart([topic.encode(), json.dumps(event).encode()])
        return event

    def set_metrics(self, unit: str, cpu: float, memory: int) -> None:
        with self._lock:
            self.units[unit].update(cpu=cpu, memory=memory)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._pub.close(0)
        self._rep.close(0)
        self._context.term()
        for name in ("events", "control"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.runtime / name)
