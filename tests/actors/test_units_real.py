"""Unit supervision on real processes, with cinit as PID 1 of a new PID namespace.

The black-box suite (tests/e2e) covers the observable contract; these tests look at what
needs inside knowledge: where a unit's processes live (its own cgroup, under a subtree
unique to this cinit, removed at exit), the process-group fallback when no cgroup v2
hierarchy is mounted, a oneshot's daemon surviving until shutdown, and an actor crash
injected into a real PID 1.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cinit.io.cgroup import find_cgroup2_mount

pytestmark = [pytest.mark.pid1, pytest.mark.timeout(60)]

ROOT = Path(__file__).resolve().parents[2]
UNSHARE = ["unshare", "--pid", "--fork", "--mount-proc", "--propagation", "private"]


def _can_unshare() -> str | None:
    if os.geteuid() != 0:
        return "needs root: unshare --pid creates a PID namespace only as root here"
    probe = subprocess.run([*UNSHARE, "true"], capture_output=True, timeout=10)
    if probe.returncode != 0:
        return f"unshare fails here: {probe.stderr.decode().strip()}"
    return None


class Run:
    """`unshare ... sh -c 'PREP; exec cinit ...'` with its output collected on threads."""

    def __init__(self, argv: list[str]) -> None:
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        self.out = bytearray()
        self.err = bytearray()
        self._threads = [
            threading.Thread(target=self._pump, args=(self.proc.stdout, self.out), daemon=True),
            threading.Thread(target=self._pump, args=(self.proc.stderr, self.err), daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    @staticmethod
    def _pump(stream: object, sink: bytearray) -> None:
        for chunk in iter(lambda: stream.read1(4096), b""):  # type: ignore[attr-defined]
            sink.extend(chunk)

    def stderr(self) -> str:
        return self.err.decode(errors="replace")

    def wait_err(self, pattern: str, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while not re.search(pattern, self.stderr(), re.MULTILINE):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise AssertionError(f"no {pattern!r} in stderr:\n{self.stderr()}")
            time.sleep(0.01)

    def terminate(self, timeout: float = 20.0) -> int:
        """SIGTERM to the namespace's PID 1 (unshare's child); cinit's exit status."""
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
        os.kill(int(children.split()[0]), signal.SIGTERM)
        return self.finish(timeout)

    def finish(self, timeout: float = 20.0) -> int:
        status = self.proc.wait(timeout)
        for thread in self._threads:
            thread.join(5)
        return status

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()  # unshare: its death does not take cinit along...
            children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
            if children.exists():  # ...so kill the namespace's PID 1 (and with it the rest)
                for pid in children.read_text().split():
                    os.kill(int(pid), signal.SIGKILL)
            self.proc.wait(5)


@pytest.fixture
def boot(tmp_path: Path, cinit_cmd: list[str]) -> Iterator[object]:
    problem = _can_unshare()
    if problem:
        pytest.skip(problem)
    runs: list[Run] = []

    def start(units: dict[str, str], prep: str = "", options: tuple[str, ...] = ()) -> Run:
        unit_dir = tmp_path / "units"
        unit_dir.mkdir(exist_ok=True)
        for name, text in units.items():
            (unit_dir / name).write_text(textwrap.dedent(text).lstrip())
        cinit = " ".join(cinit_cmd)
        script = f"{prep}\nexec {cinit} --units {unit_dir} --drop-in {tmp_path / 'none'} " + (
            f"--runtime-dir {tmp_path / 'run'} {' '.join(options)}"
        )
        run = Run([*UNSHARE, "/bin/sh", "-c", script])
        runs.append(run)
        return run

    yield start
    for run in runs:
        run.kill()


def _cgroup2() -> tuple[str, str]:
    mount = find_cgroup2_mount()
    if mount is None or not os.access(mount[0], os.W_OK):
        pytest.skip("no writable cgroup v2 hierarchy on this machine")
    return mount


def test_each_unit_runs_in_its_own_cgroup_removed_at_exit(boot: object, tmp_path: Path) -> None:
    mount_point, _ = _cgroup2()
    where = tmp_path / "cgroup.txt"
    run = boot(  # type: ignore[operator]
        {
            "a.service": f"""
                [Service]
                ExecStart=/bin/sh -c "grep ^0:: /proc/self/cgroup > {where}; exec sleep 60"
                """
        }
    )
    run.wait_err(r"^cinit: a\.service: ready$")
    deadline = time.monotonic() + 10
    while not (where.exists() and where.read_text().strip()):
        assert time.monotonic() < deadline, run.stderr()
        time.sleep(0.01)
    path = where.read_text().strip().removeprefix("0::")
    assert re.search(r"/cinit\.[0-9a-f]{8}/a\.service$", path), path
    directory = Path(mount_point + path)
    assert directory.is_dir()
    assert run.terminate() == 0, run.stderr()
    assert not directory.exists(), "the unit's cgroup is removed when cinit exits"
    assert not directory.parent.exists(), "and so is cinit's subtree"


def test_process_group_fallback_is_logged_once_and_still_stops_everything(
    boot: object, tmp_path: Path
) -> None:
    mount = find_cgroup2_mount()
    prep = f"umount -l {mount[0]}" if mount else ""
    marks = tmp_path / "marks"
    units = {
        f"{name}.service": f"""
            [Service]
            ExecStart=/bin/sh -c "trap 'echo {name} >> {marks}; exit 0' TERM; sleep 60 & wait"
            """
        for name in ("a", "b")
    }
    run = boot(units, prep=prep)  # type: ignore[operator]
    run.wait_err(r"^cinit: a\.service: ready$")
    run.wait_err(r"^cinit: b\.service: ready$")
    time.sleep(0.1)  # let the shells install their traps
    assert run.terminate() == 0, run.stderr()
    err = run.stderr()
    assert err.count("using process groups to stop units") == 1, err
    assert "cinit: a.service: stopped" in err and "cinit: b.service: stopped" in err
    assert sorted(marks.read_text().split()) == ["a", "b"]


def test_daemon_left_by_a_oneshot_lives_until_shutdown(boot: object, tmp_path: Path) -> None:
    beats = tmp_path / "beats"
    daemon = tmp_path / "daemon.sh"
    daemon.write_text(
        "#!/bin/sh\ntrap 'echo term >> \"$1\"; exit 0' TERM\n"
        'while :; do echo beat >> "$1"; sleep 0.05; done\n'
    )
    daemon.chmod(0o755)
    run = boot(  # type: ignore[operator]
        {
            "setup.service": f"""
                [Service]
                Type=oneshot
                ExecStart=/bin/sh -c "{daemon} {beats} > /dev/null 2>&1 &"
                """
        }
    )
    run.wait_err(r"^cinit: setup\.service: ready$")
    time.sleep(0.2)
    before = beats.read_text().count("beat")
    time.sleep(0.3)
    assert beats.read_text().count("beat") > before, "the daemon outlives its oneshot"
    assert run.terminate() == 0, run.stderr()
    assert beats.read_text().rstrip().endswith("term")
    err = run.stderr()
    assert "cinit: setup.service: stopping" in err and "cinit: setup.service: stopped" in err


def test_exec_failure_names_unit_path_and_errno_and_sets_the_exit_status(
    boot: object,
) -> None:
    run = boot(  # type: ignore[operator]
        {
            "bad.service": """
                [Service]
                ExecStart=/nonexistent/program --flag
                ExitContainerOnFailure=yes
                """
        }
    )
    status = run.finish()
    err = run.stderr()
    assert status == 127, err
    assert (
        "cinit: bad.service: cannot execute /nonexistent/program: "
        "No such file or directory (ENOENT)" in err
    )
    assert "cinit: bad.service: failed (exit-code)" in err


def test_an_actor_crash_in_a_real_pid1_is_recovered(tmp_path: Path) -> None:
    problem = _can_unshare()
    if problem:
        pytest.skip(problem)
    units = tmp_path / "units"
    units.mkdir()
    (units / "a.service").write_text("[Service]\nExecStart=/bin/sleep 60\n")
    (units / "b.service").write_text(
        "[Unit]\nAfter=a.service\n[Service]\nExecStart=/bin/sleep 60\n"
    )
    code = f"""
import json, os, signal, sys, threading
sys.path.insert(0, {str(ROOT)!r})
from cinit import boot
from cinit.actors import unit_io
original = unit_io.UnitIO.signal_unit
left = [1]
def broken(self, signo):
    if self.unit.name == "a.service" and left[0]:
        left[0] -= 1
        raise RuntimeError("injected into a.service's stop")
    return original(self, signo)
unit_io.UnitIO.signal_unit = broken
threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGTERM)).start()
status = boot.run(boot.BootConfig(units_dir={str(units)!r}, drop_in_dir="/nonexistent",
                                  runtime_dir={str(tmp_path / "run")!r}, stop_timeout=20))
procs = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
print(json.dumps({{"status": status, "procs": procs}}), flush=True)
os._exit(0)
"""
    proc = subprocess.run(
        [*UNSHARE, sys.executable, "-c", code], capture_output=True, text=True, timeout=45
    )
    assert proc.stdout.strip().splitlines()[-1] == '{"status": 0, "procs": [1]}', proc
    err = proc.stderr
    assert "internal error in the actor of a.service" in err, err
    assert "RuntimeError: injected into a.service's stop" in err
    # b stops first, then a (its actor restarted mid-stop, the signal sent again)
    assert err.index("cinit: b.service: stopped") < err.index("cinit: a.service: stopping")
    assert "cinit: a.service: stopped" in err
    assert "did not stop within" not in err, "the signal was sent again, not left to SIGKILL"


@pytest.mark.parametrize("handle", ["cgroup", "process groups"])
def test_a_restart_storm_leaves_no_record_per_restart(tmp_path: Path, handle: str) -> None:
    # 300 restarts of /bin/true: the unit's process records (its processes, its process
    # groups) must not grow with them (the pgid set kept one per start when the unit had a
    # cgroup: an RSS creep of ~4 MiB per 100,000 restarts; bench/restart_rss.py).
    problem = _can_unshare()
    if problem:
        pytest.skip(problem)
    mount = find_cgroup2_mount()
    if handle == "cgroup":
        _cgroup2()
        prep = ""
    else:
        prep = f"umount -l {mount[0]}; " if mount else ""
    units = tmp_path / "units"
    units.mkdir()
    (units / "storm.service").write_text(
        "[Unit]\nStartLimitIntervalSec=0\n"
        "[Service]\nExecStart=/bin/true\nRestart=always\nRestartSec=0\n"
    )
    code = f"""
import json, os, signal, sys
sys.path.insert(0, {str(ROOT)!r})
from cinit import boot
from cinit.actors import unit_io
original = unit_io.UnitIO._started
seen = {{"starts": 0, "most_pgids": 0, "most_processes": 0, "cgroup": False}}
def counting(self, process):
    original(self, process)
    seen["starts"] += 1
    seen["most_pgids"] = max(seen["most_pgids"], len(self.pgids))
    seen["most_processes"] = max(seen["most_processes"], len(self.processes))
    seen["cgroup"] = self.cgroup is not None
    if seen["starts"] == 300:
        os.kill(os.getpid(), signal.SIGTERM)
unit_io.UnitIO._started = counting
status = boot.run(boot.BootConfig(units_dir={str(units)!r}, drop_in_dir="/nonexistent",
                                  runtime_dir={str(tmp_path / "run")!r}))
print(json.dumps({{"status": status, **seen}}), flush=True)
os._exit(0)
"""
    script = f"{prep}exec {sys.executable} -c \"$0\""
    proc = subprocess.run(
        [*UNSHARE, "/bin/sh", "-c", script, code], capture_output=True, text=True, timeout=50
    )
    assert proc.stdout.strip(), proc.stderr[-2000:]
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert seen["status"] == 0 and seen["starts"] >= 300, (seen, proc.stderr[-2000:])
    assert seen["cgroup"] == (handle == "cgroup"), seen
    assert seen["most_processes"] == 1, seen
    assert seen["most_pgids"] <= 1, seen
