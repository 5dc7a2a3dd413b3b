"""`cinit.io.spawn.prepared`: children forked ahead into a unit's cgroup, launched by `spawn`."""

from __future__ import annotations

import os
import select
import signal
from typing import Any

import pytest
from spawn_support import read_all

from cinit.io.cgroup import CgroupTree
from cinit.io.reaper import ProcessTable
from cinit.io.spawn import Launch, SpawnError, SpawnRequest, spawn
from cinit.io.spawn.prepared import EarlyUnits, prepare, prepare_many

pytestmark = pytest.mark.timeout(60)


def procs(path: str) -> list[int]:
    with open(os.path.join(path, "cgroup.procs")) as f:
        return [int(line) for line in f.read().split()]


def test_prepared_child_waits_in_the_cgroup_and_runs_the_command_there(tree: CgroupTree) -> None:
    group = tree.create("web.service")
    table = ProcessTable()
    prepared = prepare(group.path, table, "web.service")
    assert prepared is not None
    assert prepared.wait_ready()
    assert procs(group.path) == [prepared.process.pid]  # joined before any command exists
    r, w = os.pipe()
    request = SpawnRequest(
        ["sh", "-c", "grep ^0:: /proc/self/cgroup; ls /proc/self/fd; echo $LISTEN_PID"],
        label="web.service",
        cgroup=group.path,
        stdout=w,
        pass_fds=(w,),
        listen_fds=True,
    )
    process = spawn(request, table, prepared=prepared)
    os.close(w)
    out = read_all(r).split()
    assert process.pid == prepared.process.pid  # no new fork: the prepared child ran it
    assert out[0].endswith("/web.service")
    assert out[1:-1] == ["0", "1", "2", "3", "4"]  # 0-2, the passed fd at 3, ls's own dir fd
    assert out[-1] == str(process.pid)
    assert os.waitstatus_to_exitcode(os.waitpid(process.pid, 0)[1]) == 0


def test_exec_failure_in_a_prepared_child_is_a_spawn_error(tree: CgroupTree) -> None:
    group = tree.create("bad.service")
    table = ProcessTable()
    prepared = prepare(group.path, table, "bad.service")
    assert prepared is not None
    with pytest.raises(SpawnError) as caught:
        spawn(
            SpawnRequest(["/nonexistent/cmd"], label="bad", cgroup=group.path),
            table,
            prepared=prepared,
        )
    assert caught.value.exit_code == 127
    assert "/nonexistent/cmd" in str(caught.value)
    os.waitpid(prepared.process.pid, 0)


def test_discarded_child_exits_and_leaves_the_cgroup_empty(tree: CgroupTree) -> None:
    group = tree.create("skipped.service")
    prepared = prepare(group.path, ProcessTable(), "skipped.service")
    assert prepared is not None and prepared.wait_ready()
    prepared.discard()
    _pid, status = os.waitpid(prepared.process.pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    assert procs(group.path) == []


@pytest.mark.parametrize("credential", ["user", "group"])
def test_a_launch_that_fails_before_the_hand_over_discards_the_prepared_child(
    tree: CgroupTree, tmp_path: Any, credential: str
) -> None:
    # Issue 13 (3): User= naming nobody fails in cinit, before the child gets a command;
    # the child was left waiting in the unit's cgroup, which then never became empty.
    group = tree.create("nouser.service")
    table = ProcessTable()
    prepared = prepare(group.path, table, "nouser.service")
    assert prepared is not None and prepared.wait_ready()
    (tmp_path / "etc").mkdir()  # a user database with nobody in it
    names = {credential: "nosuch"}
    request = SpawnRequest(["true"], label="nouser.service", cgroup=group.path,
                           userdb_root=str(tmp_path), **names)  # fmt: skip
    with pytest.raises(SpawnError) as caught:
        Launch(request, table, prepared=prepared)
    assert caught.value.exit_code == {"user": 217, "group": 216}[credential]
    pidfd = os.pidfd_open(prepared.process.pid)
    try:
        ready, _, _ = select.select([pidfd], [], [], 10)
    finally:
        os.close(pidfd)
    assert ready, "the prepared child still waits in the unit's cgroup"
    _pid, status = os.waitpid(prepared.process.pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    assert procs(group.path) == []


@pytest.mark.parametrize(
    ("directive", "status"),
    [("StandardOutput=file:/nonexistent/cinit-test.log", 209),
     ("EnvironmentFile=/nonexistent/cinit-test.env", None)],
)  # fmt: skip
def test_a_unit_start_that_fails_before_its_launch_discards_the_prepared_child(
    tree: CgroupTree, directive: str, status: int | None
) -> None:
    # The unit's io gives up before it builds the launch: the child prepared for the unit
    # must not wait on in the unit's cgroup (nor be kept for a later start).
    from cinit.actors.unit_io import UnitContext, UnitIO, UnitSpawnError
    from cinit.machines.unit_model import Role
    from cinit.units import parse_unit

    unit, _ = parse_unit("early.service", f"[Service]\nExecStart=/bin/true\n{directive}\n")
    assert unit is not None
    group = tree.create("early.service")
    table = ProcessTable()
    prepared = prepare(group.path, table, "early.service")
    assert prepared is not None and prepared.wait_ready()
    context = UnitContext(table, {}, cgroups=tree, prepared={"early.service": prepared})
    io = UnitIO(unit, context, owner=None)  # type: ignore[arg-type]
    with pytest.raises(UnitSpawnError) as caught:
        io.launch(Role.START, 0, None)
    assert caught.value.exit_code == status
    assert context.prepared == {}
    pidfd = os.pidfd_open(prepared.process.pid)
    try:
        ready, _, _ = select.select([pidfd], [], [], 10)
    finally:
        os.close(pidfd)
    assert ready, "the prepared child still waits in the unit's cgroup"
    _pid, status_word = os.waitpid(prepared.process.pid, 0)
    assert os.WIFSIGNALED(status_word)


def test_closing_the_channel_alone_ends_the_waiting_child(tree: CgroupTree) -> None:
    group = tree.create("orphan.service")
    prepared = prepare(group.path, ProcessTable(), "orphan.service")
    assert prepared is not None
    prepared.close()  # what the child sees when cinit goes away
    _pid, status = os.waitpid(prepared.process.pid, 0)
    assert os.WIFEXITED(status)  # ended by itself (0, or 1 when closed before `ready`)


def test_a_dead_or_mismatched_prepared_child_falls_back_to_a_fresh_fork(tree: CgroupTree) -> None:
    group = tree.create("app.service")
    other = tree.create("other.service")
    table = ProcessTable()
    for victim_group, kill_first in ((group.path, True), (other.path, False)):
        prepared = prepare(victim_group, table, "app.service")
        assert prepared is not None
        if kill_first:
            os.kill(prepared.process.pid, signal.SIGKILL)
            os.waitpid(prepared.process.pid, 0)
        r, w = os.pipe()
        process = spawn(
            SpawnRequest(
                ["sh", "-c", "grep ^0:: /proc/self/cgroup"],
                label="app.service",
                cgroup=group.path,
                stdout=w,
            ),
            table,
            prepared=prepared,
        )
        os.close(w)
        assert process.pid != prepared.process.pid
        assert read_all(r).strip().endswith("/app.service")
        os.waitpid(process.pid, 0)
        if not kill_first:
            _pid, status = os.waitpid(prepared.process.pid, 0)  # discarded by spawn
            assert os.WIFSIGNALED(status)


def test_children_behind_the_gate_exec_together_once_it_opens(tree: CgroupTree) -> None:
    groups = {f"g{i}.service": tree.create(f"g{i}.service").path for i in range(3)}
    table = ProcessTable()
    gate_exit, gate = os.pipe2(os.O_CLOEXEC)
    early = EarlyUnits(tree, prepare_many(groups, table, gate_exit), gate)
    os.close(gate_exit)
    assert sorted(early.prepared) == sorted(groups)
    r, w = os.pipe()
    launches = []
    for label, child in early.prepared.items():
        assert child.wait_ready()
        command = ["sh", "-c", f"echo {label}"]
        request = SpawnRequest(command, label=label, cgroup=groups[label], stdout=w, pass_fds=(w,))
        launch = Launch(request, table, prepared=child)
        launch.start()
        launches.append(launch)
    os.close(w)
    # Every command is handed out, yet none runs while the gate is closed.
    assert select.select([r], [], [], 0.5)[0] == [], "a child ran before the gate opened"
    early.open_gate()
    early.open_gate()  # idempotent: the boot path opens it whatever happened
    pids = [launch.finish().pid for launch in launches]
    assert sorted(read_all(r).split()) == sorted(groups)
    assert pids == [child.process.pid for child in early.prepared.values()]  # no new forks
    for pid in pids:
        assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0


HELPER_DRIVER = """
import json, os, time
from cinit.io.spawn.prepared import prepare_units
from cinit.io.reaper import ProcessTable
from cinit.io.spawn import SpawnRequest, spawn

def ppid(pid):
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])

table = ProcessTable()
names = ["a.service", "b.service", "c.service"]
early = prepare_units(names, table, adopts=True).collect()
out = {"labels": sorted(early.prepared),
       "parents": sorted({ppid(c.process.pid) for c in early.prepared.values()}),
       "children": sorted(int(p) for p in os.listdir("/proc") if p.isdigit() and p != "1")}
r, w = os.pipe()
child = early.prepared.pop("b.service")
early.open_gate()
request = SpawnRequest(["sh", "-c", "echo $$"], label="b.service", cgroup=child.cgroup,
                       stdout=w, pass_fds=(w,))
process = spawn(request, table, prepared=child)
os.close(w)
out["ran_in"] = int(os.read(r, 100))
out["prepared_pids"] = sorted([process.pid] + [c.process.pid for c in early.prepared.values()])
early.keep(())
deadline = time.monotonic() + 10
while table.reap_all() and time.monotonic() < deadline:
    time.sleep(0.01)
out["removed"] = early.cgroups.remove()
print(json.dumps(out))
"""


def test_a_helper_forks_the_children_of_boot_and_leaves_them_to_pid1(pid1_driver: Any) -> None:
    result = pid1_driver(HELPER_DRIVER)
    data = result.data
    if data is None and "no writable cgroup" in result.stderr:
        pytest.skip("no writable cgroup v2 hierarchy here (needs root and cgroup2)")
    assert data is not None, result
    assert data["labels"] == ["a.service", "b.service", "c.service"]
    assert data["parents"] == [1]  # the helper is gone (reaped): PID 1 adopted them
    assert data["children"] == data["prepared_pids"]  # the helper left nothing else behind
    assert data["ran_in"] in data["prepared_pids"]  # the command ran in a prepared child
    assert data["removed"] is True
