"""A start readied ahead (issue 17's jitter): `Launch.hold` hands the plan to a prepared
child, which carries it out up to its exec and waits; `start` lets it exec. And the helper
that forks those children small (`cinit.io.spawn.forker`), as PID 1."""

from __future__ import annotations

import json
import os
import select
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from spawn_support import read_all

from cinit.io.cgroup import CgroupTree
from cinit.io.reaper import ProcessTable
from cinit.io.spawn import Launch, SpawnRequest
from cinit.io.spawn.prepared import prepare

pytestmark = pytest.mark.timeout(60)


def wait_for(predicate: Any, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


def cwd_of(pid: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return ""


def held_launch(tree: CgroupTree, tmp_path: Path, name: str) -> tuple[Launch, int, int]:
    """A launch of `pwd` held by a child; the read and write ends of its stdout pipe (the
    write end stays open until the start, as `UnitLaunch` keeps its fds)."""
    group = tree.create(name)
    table = ProcessTable()
    prepared = prepare(group.path, table, name)
    assert prepared is not None
    r, w = os.pipe()
    request = SpawnRequest(["pwd"], label=name, cgroup=group.path, stdout=w, cwd=str(tmp_path))
    launch = Launch(request, table, prepared=prepared)
    assert launch.hold()
    return launch, r, w


def test_a_held_child_sets_up_before_the_start_and_execs_at_it(
    tree: CgroupTree, tmp_path: Path
) -> None:
    launch, out, w = held_launch(tree, tmp_path, "held.service")
    assert launch.plan.hold
    child = launch._held
    assert child is not None
    # Its plan is carried out (the chdir is one of its last steps) ...
    assert wait_for(lambda: cwd_of(child.process.pid) == str(tmp_path))
    # ... but the command has not run: nothing written, the child still waits.
    assert select.select([out], [], [], 0.3)[0] == []
    process = launch.start()
    os.close(w)
    assert process.pid == child.process.pid  # the child that held it, no new fork
    assert launch.finish() is process
    assert read_all(out).strip() == str(tmp_path)
    assert os.waitstatus_to_exitcode(os.waitpid(process.pid, 0)[1]) == 0


def test_a_discarded_held_launch_ends_its_child(tree: CgroupTree, tmp_path: Path) -> None:
    launch, out, w = held_launch(tree, tmp_path, "dropped.service")
    child = launch._held
    assert child is not None
    launch.discard()
    os.close(w)
    _pid, status = os.waitpid(child.process.pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    assert read_all(out) == ""  # the command never ran


def test_a_held_child_that_died_is_replaced_by_a_fresh_fork(
    tree: CgroupTree, tmp_path: Path
) -> None:
    launch, out, w = held_launch(tree, tmp_path, "killed.service")
    child = launch._held
    assert child is not None
    os.kill(child.process.pid, signal.SIGKILL)
    os.waitpid(child.process.pid, 0)
    process = launch.start()
    os.close(w)
    assert process.pid != child.process.pid
    launch.finish()
    assert read_all(out).strip() == str(tmp_path)  # the same command, run by a new child
    assert os.waitstatus_to_exitcode(os.waitpid(process.pid, 0)[1]) == 0


FORKER_DRIVER = """
import json, os
from cinit.io.cgroup import CgroupTree
from cinit.io.reaper import ProcessTable
from cinit.io.spawn import Launch, SpawnRequest
from cinit.io.spawn.forker import Forker
from cinit.io.spawn.prepared import prepare

tree = CgroupTree.detect(subtree="cinit-forker-test-" + str(os.getpid()))
group = tree.create("t.service")
table = ProcessTable()
forker = Forker.start(table)
prepared = prepare(group.path, table, "t.service", forker)
pid = prepared.process.pid
with open(f"/proc/{pid}/stat") as f:
    parent = int(f.read().rsplit(")", 1)[1].split()[1])
r, w = os.pipe()
request = SpawnRequest(["sh", "-c", "echo $$; grep ^0:: /proc/self/cgroup"], label="t.service",
                       cgroup=group.path, stdout=w)
launch = Launch(request, table, prepared=prepared)
held = launch.hold()
os.close(w)
launch.start()
process = launch.finish()
chunks = []
while chunk := os.read(r, 4096):
    chunks.append(chunk)
out = b"".join(chunks).decode().split()
code = os.waitstatus_to_exitcode(os.waitpid(process.pid, 0)[1])
forker.close()
helper = os.waitstatus_to_exitcode(os.waitpid(forker.pid, 0)[1])
group.kill()
tree.remove()
print(json.dumps({"pid": pid, "parent": parent, "me": os.getpid(), "held": held, "out": out,
                  "code": code, "helper": helper, "forker": forker.pid}))
"""


def test_the_helper_forks_children_that_are_cinits_and_ends_at_end_of_file(
    pid1_driver: Any, tree: CgroupTree
) -> None:
    # `tree`: skipped without a writable cgroup v2 hierarchy; the driver makes its own
    result = pid1_driver(FORKER_DRIVER)
    data = result.data
    assert data is not None, result
    assert data["parent"] == data["me"] == 1  # reparented to PID 1, not the helper's
    assert data["pid"] != data["forker"]
    assert data["held"] is True
    assert data["out"][0] == str(data["pid"])  # the command ran in the helper's child
    assert data["out"][1].endswith("/t.service")
    assert data["code"] == 0
    assert data["helper"] == 0  # it read end of file and exited
    json.dumps(data)
