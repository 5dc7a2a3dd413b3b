"""Helpers for white-box tests of `cinit.io` on real processes.

Tests that reap (`waitpid(-1)`), block signals or become a subreaper run their code in a
separate Python process (a "driver"), so they never disturb pytest's own process; drivers
that need to be PID 1 run under `unshare --pid --fork --mount-proc`. A driver prints one
JSON document as its last line of stdout; every run is bounded by a timeout.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cinit.io.cgroup import CgroupTree, find_cgroup2_mount, own_cgroup_path

ROOT = Path(__file__).resolve().parents[2]
UNSHARE = ["unshare", "--pid", "--fork", "--mount-proc"]


@pytest.fixture
def instance_cgroups() -> Callable[[], set[str]]:
    """Lists the cinit.<id> subtrees (`CgroupTree.for_instance`) a cinit started from here
    creates (empty without cgroup v2)."""
    return _instance_cgroups


def _instance_cgroups() -> set[str]:
    mount, own = find_cgroup2_mount(), own_cgroup_path()
    if mount is None or own is None:
        return set()
    mount_point, mount_root = mount
    relative = os.path.relpath(own, mount_root) if mount_root != "/" else own.lstrip("/")
    parent = os.path.join(mount_point, relative)
    try:
        return {name for name in os.listdir(parent) if name.startswith("cinit.")}
    except OSError:
        return set()


def can_unshare() -> bool:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    probe = subprocess.run([*UNSHARE, "true"], capture_output=True, timeout=10)
    return probe.returncode == 0


needs_pid_namespace = pytest.mark.skipif(
    not can_unshare(), reason="needs root and `unshare --pid` to run a real PID 1"
)


class DriverResult:
    def __init__(self, proc: subprocess.CompletedProcess[str]) -> None:
        self.returncode = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        lines = [line for line in proc.stdout.splitlines() if line.strip()]
        self.data: Any = None
        if lines:
            try:
                self.data = json.loads(lines[-1])
            except json.JSONDecodeError:
                self.data = None

    def __repr__(self) -> str:
        return f"DriverResult(rc={self.returncode}, stdout={self.stdout!r}, stderr={self.stderr!r})"


def run_driver(*sources: str, pid1: bool = False, timeout: float = 30.0) -> DriverResult:
    """Run the dedented `sources`, joined, in a fresh interpreter (as PID 1 if asked)."""
    body = "\n".join(textwrap.dedent(source) for source in sources)
    code = f"import sys\nsys.path.insert(0, {str(ROOT)!r})\n{body}"
    argv = [sys.executable, "-c", code]
    if pid1:
        argv = [*UNSHARE, *argv]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    return DriverResult(proc)


@pytest.fixture
def driver() -> Any:
    return run_driver


@pytest.fixture
def pid1_driver() -> Any:
    """`run_driver` as PID 1 of a new PID namespace (skips without root/unshare)."""
    if not can_unshare():
        pytest.skip("needs root and `unshare --pid` to run a real PID 1")
    return lambda *sources, **kw: run_driver(*sources, pid1=True, **kw)


@pytest.fixture
def tree() -> Iterator[CgroupTree]:
    """A private cgroup subtree for the test, emptied and removed afterwards."""
    found = CgroupTree.detect(subtree=f"cinit-test-{uuid.uuid4().hex[:8]}")
    if found is None:
        pytest.skip("no writable cgroup v2 hierarchy here (needs root and cgroup2)")
    yield found
    for group in found.children():
        group.kill()
    deadline = time.monotonic() + 5
    while not found.remove() and time.monotonic() < deadline:
        time.sleep(0.01)
