"""Issue 16's reload on a package unit: Debian's nginx.service, unchanged, booted by cinit as
PID 1 in the namespace of debian_services.py (the host is never written). Its ExecReload=
(`nginx -s reload`) through `cinit reload` and `systemctl reload`: the master keeps its pid,
its workers are replaced, and the events say `reloading` then `ready`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import debian_services as ds
import pytest
from e2e_support import LineReader, Pid1Run, pid1_helpers

pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.skipif(ds.missing() is not None, reason=ds.missing() or ""),
    pytest.mark.skipif(pid1_helpers.peer_is_tini(), reason="unit files are cinit's own"),
]


def inside(pid: int, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ds.nsenter(pid), *argv], capture_output=True, text=True, timeout=60, check=False
    )


def workers(pid: int, master: int) -> set[int]:
    done = inside(pid, "pgrep", "-P", str(master))
    return {int(word) for word in done.stdout.split()}


def test_nginx_package_unit_reloads(tmp_path: Path, cinit_cmd: list[str]) -> None:
    scratch = tmp_path / "ns"
    scratch.mkdir()
    units = scratch / "units"
    ds.copy_units(units)
    for path in units.iterdir():  # nginx alone (unchanged): the rest is not needed here
        if path.name != "nginx.service":
            path.unlink()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CINIT_", "NOTIFY_"))}
    env |= {"CONTAINER_INIT_TRACE": "1", "CONTAINER_INIT_TRACE_FILE": ds.inside("trace.jsonl")}
    argv = [*ds.UNSHARE, *ds.namespace_script(scratch), *ds.cinit_argv(cinit_cmd)]
    proc = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    run = Pid1Run(proc, LineReader(proc.stdout), LineReader(proc.stderr), time.monotonic())
    try:
        deadline = time.monotonic() + 30
        while ds.read_exec_stamp(scratch) is None:
            assert proc.poll() is None, run.err.text(2)
            assert time.monotonic() < deadline, "the namespace setup did not finish"
            time.sleep(0.01)
        pid = int(run.init_pid())
        answer = ds.parse_answers(
            subprocess.run(
                ds.probe_argv(pid, 60, ["nginx"]), capture_output=True, text=True, timeout=90
            ).stdout.splitlines()
        )
        assert answer["nginx"].ok, f"{answer}\n{run.err.text(0)}"
        deadline = time.monotonic() + 30
        while (status := inside(pid, *cinit_cmd, "status", "nginx", "--json")).returncode:
            assert time.monotonic() < deadline, status.stderr
            time.sleep(0.2)
        master = json.loads(status.stdout)["units"]["nginx.service"]["main_pid"]
        before = workers(pid, master)
        assert before, "nginx has no workers"

        done = inside(pid, *cinit_cmd, "reload", "nginx")
        assert done.returncode == 0, f"{done.stderr}\n{run.err.text(0)}"
        deadline = time.monotonic() + 20  # the old workers finish, new ones come
        while (after := workers(pid, master)) & before:
            assert time.monotonic() < deadline, f"workers not replaced: {before} -> {after}"
            time.sleep(0.1)
        assert after, "no new workers"
        done = inside(pid, *cinit_cmd, "systemctl", "reload", "nginx.service")
        assert done.returncode == 0, done.stderr
        status = inside(pid, *cinit_cmd, "status", "nginx", "--json")
        unit = json.loads(status.stdout)["units"]["nginx.service"]
        assert (unit["state"], unit["main_pid"]) == ("active", master)

        run.send(signal.SIGTERM)
        assert run.wait(60) == 0, run.err.text(5)
    finally:
        run.terminate(30)
    records = [json.loads(line) for line in (scratch / "trace.jsonl").read_text().splitlines()]
    names = [r["event"] for r in records if r.get("unit") == "nginx.service"]
    assert names.count("reloading") == 2
    position = names.index("reloading")
    assert names[position + 1] == "ready"
