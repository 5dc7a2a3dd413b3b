"""`cinit analyze` on real traces: what happens after the boot settled is not boot.

cinit boots as PID 1 with CONTAINER_INIT_TRACE=1: a oneshot, a service, a socket whose
service starts on its first connection, and a service that fails when the test tells it
to. The test waits for the trace's `boot-settled` event, then connects to the socket and
makes the service fail, then stops cinit and analyses the trace: the startup figure is the
settle, neither later start nor later failure counts as boot, and both are listed as
after boot.
"""

from __future__ import annotations

import json
import socket
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from e2e_support import Boot, cinit_line, shell_script, wait_until
from sockets_support import free_port

pytestmark = [pytest.mark.pid1, pytest.mark.timeout(90)]

Booter = Callable[..., Boot]  # the `boot` fixture (tests/e2e/conftest.py)
SVG = "{http://www.w3.org/2000/svg}"


def _records(trace: Path) -> list[dict[str, Any]]:
    if not trace.exists():
        return []
    return [json.loads(line) for line in trace.read_text().splitlines() if line.strip()]


def _settled(trace: Path) -> list[dict[str, Any]]:
    return [r for r in _records(trace) if r.get("event") == "boot-settled"]


def _analyze(cinit_cmd: list[str], *args: object) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [*cinit_cmd, "analyze", *map(str, args)], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return done


def _ms(text: str) -> float:
    """`845ms`, `1.234s` -> ms (what `timespan` prints below a minute)."""
    return float(text[:-2]) if text.endswith("ms") else float(text[:-1]) * 1000


def test_a_socket_started_and_a_unit_failing_after_the_boot_are_listed_as_after_boot(
    boot: Booter, tmp_path: Path, cinit_cmd: list[str]
) -> None:
    port = free_port()
    go = tmp_path / "fail-now"
    late_fail = shell_script(
        tmp_path / "late-fail.sh", f"while [ ! -e {go} ]; do sleep 0.02; done\nexit 3\n"
    )
    setup = shell_script(tmp_path / "setup.sh", "sleep 0.1\n")
    trace = tmp_path / "trace.jsonl"
    run = boot(
        {
            "setup.service": f"[Service]\nType=oneshot\nExecStart={setup}\n",
            "app.service": "[Unit]\nAfter=setup.service\n[Service]\nExecStart=/bin/sleep 300\n",
            "late.service": f"[Service]\nExecStart={late_fail}\n",
            "greeter.socket": f"[Socket]\nListenStream=127.0.0.1:{port}\n",
            "greeter.service": "[Service]\nExecStart=/bin/sleep 300\n",
        },
        env={"CONTAINER_INIT_TRACE": "1", "CONTAINER_INIT_TRACE_FILE": str(trace)},
    )
    wait_until(lambda: bool(_settled(trace)), 20, "the boot-settled event in the trace")
    with socket.create_connection(("127.0.0.1", port), timeout=10):
        run.wait_err(cinit_line("greeter.service", r"started.*"), timeout=20)
    go.touch()
    run.wait_err(cinit_line("late.service", r"failed.*"), timeout=20)
    assert run.terminate() == 0, run.report()

    (settled,) = _settled(trace)
    greeter_start = min(
        r["t_ms"] for r in _records(trace) if r["unit"] == "greeter.service" and r.get("new")
    )
    assert greeter_start > settled["t_ms"]

    blame = _analyze(cinit_cmd, "blame", trace).stdout
    booted, _, later = blame.partition("\nAfter the boot settled @")
    assert "app.service" in booted and "setup.service" in booted
    assert "greeter.service" not in booted, blame
    assert "late.service (failed)" not in booted and "(failed)" not in booted, blame
    assert "greeter.service: started @" in later, blame
    assert "late.service: failed (exit-code) @" in later, blame

    chain = _analyze(cinit_cmd, "critical-chain", trace).stdout
    tree, _, chain_later = chain.partition("\nAfter the boot settled @")
    assert tree.splitlines()[3].split()[0] != "greeter.service", chain
    assert "(failed)" not in tree, chain
    assert "greeter.service: started" in chain_later and "late.service: failed" in chain_later

    plot = tmp_path / "boot.svg"
    _analyze(cinit_cmd, "plot", trace, "-o", plot)
    texts = [e.text or "" for e in ET.parse(plot).getroot().iter(f"{SVG}text")]
    (summary,) = [t for t in texts if t.startswith("Startup finished in ")]
    finished = summary.split()[3]
    assert _ms(finished) == pytest.approx(settled["t_ms"], abs=1.0), summary
    assert _ms(finished) < greeter_start
    assert "last up: greeter.service" not in summary
    assert " 0 failed" in summary and "2 with activity after boot" in summary, summary
    rows = [t for t in texts if t.endswith((".service", ".socket"))]
    assert "greeter.service" not in rows and "late.service" in rows
    assert any(t.startswith("greeter.service: started @") for t in texts), texts
    assert any(t.startswith("late.service: failed (exit-code) @") for t in texts), texts
