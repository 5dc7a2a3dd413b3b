"""`cinit.io.cgroup` against the real cgroup v2 hierarchy of this machine."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from cinit.io import cgroup as cgroup_module
from cinit.io.cgroup import CgroupTree, find_cgroup2_mount, own_cgroup_path
from cinit.io.reaper import ProcessTable
from cinit.io.spawn import SpawnRequest, spawn

pytestmark = pytest.mark.timeout(60)


def wait_for(predicate: object, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.01)
    return False


def reap(pid: int) -> int:
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def test_detects_the_v2_mount_from_mountinfo() -> None:
    mount = find_cgroup2_mount()
    if mount is None:
        pytest.skip("no cgroup2 mount on this machine")
    point, _root = mount
    assert os.path.exists(os.path.join(point, "cgroup.procs"))
    assert own_cgroup_path() is not None


def test_spawned_process_and_its_children_are_placed_and_killed_together(
    tree: CgroupTree,
) -> None:
    group = tree.create("web.service")
    table = ProcessTable()
    r, w = os.pipe()
    process = spawn(
        SpawnRequest(["sh", "-c", "sleep 30 & grep ^0:: /proc/self/cgroup; wait"], label="web",
                     cgroup=group.path, stdout=w),
        table,
    )
    os.close(w)
    with os.fdopen(r) as pipe:
        line = pipe.readline()
    assert line.startswith("0::") and line.strip().endswith("/web.service")
    assert wait_for(lambda: len(group.pids()) == 2)  # the shell and its background sleep
    assert group.populated()
    group.kill()
    assert reap(process.pid) == -signal.SIGKILL
    assert wait_for(lambda: not group.populated())
    assert group.remove()
    assert not os.path.exists(group.path)


def test_fallback_kill_without_cgroup_kill_reaches_every_process(tree: CgroupTree) -> None:
    group = tree.create("old-kernel.service")
    process = spawn(
        SpawnRequest(["sh", "-c", "sleep 30 & sleep 30 & wait"], label="k", cgroup=group.path),
        ProcessTable(),
    )
    assert wait_for(lambda: len(group.pids()) == 3)
    assert group._signal_tree(signal.SIGKILL) == 3
    assert reap(process.pid) == -signal.SIGKILL
    assert wait_for(lambda: not group.populated())


def test_unavailable_hierarchy_is_reported_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cgroup_module, "_fallback_logged", False)
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text("22 1 0:21 / /proc rw - proc proc rw\n")
    assert CgroupTree.detect(mountinfo=str(mountinfo)) is None
    assert CgroupTree.detect(mountinfo=str(mountinfo)) is None
    err = capfd.readouterr().err
    assert err.count("cinit: cgroups unavailable") == 1
    assert "using process groups" in err


def test_hierarchy_that_is_not_writable_is_unavailable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A "cgroup2" mount that is a plain directory: no cgroup.procs can be written there.
    monkeypatch.setattr(cgroup_module, "_fallback_logged", True)
    fake_mount = tmp_path / "cg"
    fake_mount.mkdir()
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(f"41 31 0:38 / {fake_mount} rw - cgroup2 cgroup2 rw\n")
    proc_cgroup = tmp_path / "cgroup"
    proc_cgroup.write_text("0::/\n")
    assert CgroupTree.detect(mountinfo=str(mountinfo), proc_cgroup=str(proc_cgroup)) is None


def test_mountinfo_escapes_and_mount_roots(tmp_path: Path) -> None:
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(
        "31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n"
        "41 31 0:38 /docker/abc /sys/fs/cg\\040two rw shared:9 - cgroup2 cgroup2 rw\n"
    )
    assert find_cgroup2_mount(str(mountinfo)) == ("/sys/fs/cg two", "/docker/abc")
