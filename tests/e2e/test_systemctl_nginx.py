"""`systemctl` verbs on Debian's nginx package unit, cinit as PID 1 (issue 16 §1).

nginx.service is copied byte for byte from /lib/systemd/system and booted in the private
namespaces of debian_services.py (the host's /run, /tmp and /etc are never written). The
verbs run inside the namespace (nsenter), as they would in the container: pids and
process names in their output are the namespace's.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import debian_services as ds
import pytest
from e2e_support import LineReader, Pid1Run, pid1_helpers, wait_until

pytestmark = [
    pytest.mark.timeout(240),
    pytest.mark.skipif(ds.missing() is not None, reason=ds.missing() or ""),
    pytest.mark.skipif(
        pid1_helpers.peer_is_tini(), reason="unit files are cinit's own; the init is tini"
    ),
]


@pytest.fixture
def scratch(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "ns"
    path.mkdir()
    yield path
    shutil.rmtree(path / "overlay", ignore_errors=True)


def boot_nginx(scratch: Path, cinit_cmd: list[str]) -> tuple[Pid1Run, int]:
    (scratch / "units").mkdir()
    shutil.copyfile(ds.SYSTEM_UNITS / "nginx.service", scratch / "units" / "nginx.service")
    argv = [*ds.UNSHARE, *ds.namespace_script(scratch), *ds.cinit_argv(cinit_cmd)]
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("CINIT_", "NOTIFY_", "LISTEN_"))
    }
    proc = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    run = Pid1Run(proc, LineReader(proc.stdout), LineReader(proc.stderr), time.monotonic())
    wait_until(lambda: ds.read_exec_stamp(scratch) is not None, 30, "the namespace setup")
    return run, int(run.init_pid())


def answers(pid: int) -> bool:
    done = subprocess.run(
        ds.probe_argv(pid, 30, ["nginx"]), capture_output=True, text=True, timeout=60
    )
    found = ds.parse_answers(done.stdout.splitlines())
    return bool(found.get("nginx") and found["nginx"].ok)


def test_status_show_is_active_restart_kill_on_the_nginx_package_unit(
    scratch: Path, cinit_cmd: list[str]
) -> None:
    run, pid = boot_nginx(scratch, cinit_cmd)

    def ctl(*args: str) -> Any:
        argv = [*ds.nsenter(pid), *cinit_cmd, "systemctl", *args]
        return subprocess.run(argv, capture_output=True, text=True, timeout=60)

    def main_pid() -> str:
        return str(ctl("show", "nginx", "-P", "MainPID").stdout.strip())

    try:
        assert answers(pid), run.err.text(2)
        wait_until(lambda: ctl("is-active", "nginx").stdout == "active\n", 30, "nginx active")
        status = ctl("status", "nginx")
        assert status.returncode == 0, status.stderr
        lines = status.stdout.splitlines()
        assert lines[0] == (
            "● nginx.service - A high performance web server and a reverse proxy server"
        )
        assert lines[1] == "     Loaded: loaded (/mnt/units/nginx.service; enabled)"
        assert lines[2].startswith("     Active: active (running) since ")
        first = main_pid()
        assert first not in ("", "0")
        assert f"   Main PID: {first} (nginx)" in status.stdout
        assert "nginx: master process" in status.stdout  # the CGroup tree's lines
        assert "nginx: worker process" in status.stdout
        shown = ctl("show", "nginx", "-p", "Type,Restart,ExecMainPID,FragmentPath,UnitFileState")
        assert shown.stdout == (
            f"Type=forking\nRestart=no\nExecMainPID={first}\n"
            "FragmentPath=/mnt/units/nginx.service\nUnitFileState=enabled\n"
        )

        # kill -s HUP to the main process: nginx reloads, the unit stays up, same master.
        assert ctl("kill", "-s", "HUP", "--kill-whom=main", "nginx").returncode == 0
        time.sleep(0.5)
        assert ctl("is-active", "nginx").returncode == 0 and main_pid() == first

        restart = ctl("restart", "nginx")
        assert restart.returncode == 0, restart.stderr + run.err.text(2)
        second = main_pid()
        assert second not in ("", "0", first)
        assert answers(pid)

        # kill (SIGTERM to every process): nginx ends; SIGTERM is a clean end for systemd.
        assert ctl("kill", "nginx").returncode == 0
        wait_until(lambda: ctl("is-active", "nginx").returncode == 3, 30, "nginx to end")
        assert ctl("start", "nginx").returncode == 0
        assert answers(pid)
    finally:
        run.send(signal.SIGTERM)
        code = run.wait(60)
        run.terminate(30)
    assert code == 0, run.err.text(5)
