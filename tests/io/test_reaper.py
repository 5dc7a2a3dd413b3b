"""`cinit.io.reaper` and `cinit.io.sweep` on real processes (in driver processes that reap)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from cinit.io.reaper import ProcessExit

pytestmark = pytest.mark.timeout(60)

Driver = Callable[..., Any]

PRELUDE = """
import json, os, signal, time
from cinit.io.reaper import ProcessTable
from cinit.io.spawn import SpawnRequest, spawn
from cinit.io import signals, sweep
class Inbox:
    def __init__(self): self.messages = []
    def tell(self, m): self.messages.append(m)
def reap_until(table, done, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        table.reap_all()
        if done():
            return True
        time.sleep(0.005)
    return False
"""


def test_exit_decoding() -> None:
    assert ProcessExit.from_wait_status(5, "a", 3 << 8).status == 3
    killed = ProcessExit.from_wait_status(5, "a", 15)
    assert (killed.code, killed.signal, killed.status) == (None, 15, 143)
    assert killed.describe() == "killed by SIGTERM"
    dumped = ProcessExit.from_wait_status(5, "a", 6 | 0x80)
    assert dumped.describe() == "killed by SIGABRT (core dumped)"
    assert ProcessExit.from_wait_status(5, "a", 0).describe() == "exited with status 0"


def test_exits_go_to_owners_and_orphans_are_counted(driver: Driver) -> None:
    # The owned child leaves three orphaned grandchildren and exits 4; as a subreaper the
    # driver adopts them. Only the owned exit reaches the owner; the three are counted.
    result = driver(
        PRELUDE,
        """
        signals.become_subreaper()
        table, inbox = ProcessTable(), Inbox()
        script = "for i in 1 2 3; do (sleep 0.2 &) ; done; exit 4"
        spawn(SpawnRequest(["sh", "-c", script], label="owner.service"), table, inbox)
        ok = reap_until(table, lambda: inbox.messages and table.orphans_reaped >= 3)
        print(json.dumps({"ok": ok, "exits": [(m.label, m.status) for m in inbox.messages],
                          "orphans": table.orphans_reaped, "left": sweep.children_remain()}))
        """
    )
    data = result.data
    assert data is not None, result
    assert data["exits"] == [["owner.service", 4]]
    # Each `(sleep 0.2 &)` subshell is reaped by sh; its sleep is orphaned and adopted.
    assert data["orphans"] == 3
    assert data["left"] is False


def test_exit_collected_before_claim_is_delivered_on_claim(driver: Driver) -> None:
    result = driver(
        PRELUDE,
        """
        table, inbox = ProcessTable(), Inbox()
        p = spawn(SpawnRequest(["sh", "-c", "exit 9"], label="early"), table, None)
        reap_until(table, lambda: not p.alive)
        before = len(inbox.messages)
        table.claim(p, inbox)
        print(json.dumps({"before": before, "after": [m.status for m in inbox.messages],
                          "orphans": table.orphans_reaped}))
        """
    )
    assert result.data == {"before": 0, "after": [9], "orphans": 0}, result


def test_no_signal_after_reap_so_a_reused_pid_is_never_hit(driver: Driver) -> None:
    # After the exit is reaped the handle refuses to signal, even though the pid number
    # may by now belong to someone else.
    result = driver(
        PRELUDE,
        """
        table, inbox = ProcessTable(), Inbox()
        p = spawn(SpawnRequest(["sleep", "30"], label="s"), table, inbox)
        alive_signal = p.send_signal(signal.SIGTERM)
        reap_until(table, lambda: not p.alive)
        print(json.dumps({"first": alive_signal, "after": p.send_signal(signal.SIGKILL),
                          "group_after": p.signal_group(signal.SIGKILL),
                          "exit": inbox.messages[0].describe()}))
        """
    )
    assert result.data == {
        "first": True,
        "after": False,
        "group_after": False,
        "exit": "killed by SIGTERM",
    }, result


def test_group_signal_reaches_members_left_after_the_leader_was_reaped(driver: Driver) -> None:
    # The leader exits leaving a member of its group behind; signal_group then finds the
    # member among the driver's descendants (pgid pinned no more), and nothing else.
    result = driver(
        PRELUDE,
        """
        import subprocess
        signals.become_subreaper()
        bystander = subprocess.Popen(["setsid", "sleep", "30"])  # a descendant in another group
        table, inbox = ProcessTable(), Inbox()
        p = spawn(SpawnRequest(["sh", "-c", "sleep 30 &"], label="g"), table, inbox)
        reap_until(table, lambda: not p.alive)
        members = sweep.descendants(pgid=p.pgid)
        sent = p.signal_group(signal.SIGTERM)
        gone = reap_until(table, lambda: not sweep.descendants(pgid=p.pgid))
        by_alive = bystander.poll() is None
        bystander.kill(); bystander.wait()
        print(json.dumps({"members": len(members), "sent": sent, "gone": gone,
                          "bystander_alive": by_alive}))
        """
    )
    expected = {"members": 1, "sent": True, "gone": True, "bystander_alive": True}
    assert result.data == expected, result


def test_adopt_accepts_only_own_children(driver: Driver) -> None:
    result = driver(
        PRELUDE,
        """
        import subprocess
        stranger = subprocess.Popen(["sleep", "30"], start_new_session=True)
        table, inbox = ProcessTable(), Inbox()
        # A pid that is not the driver's child: the sleep's own child does not exist, so use
        # the parent of the driver (certainly not our child).
        try:
            table.adopt(os.getppid(), "foreign", inbox)
            refused = False
        except ProcessLookupError:
            refused = True
        adopted = table.adopt(stranger.pid, "daemon", inbox)
        adopted.send_signal(signal.SIGTERM)
        reap_until(table, lambda: inbox.messages)
        print(json.dumps({"refused": refused, "exit": inbox.messages[0].describe()}))
        """
    )
    assert result.data == {"refused": True, "exit": "killed by SIGTERM"}, result


def test_signal_descendants_never_reaches_other_processes(driver: Driver) -> None:
    # A process that is not a descendant of the driver (started by pytest) must survive.
    import subprocess

    outsider = subprocess.Popen(["sleep", "30"])
    try:
        result = driver(
            PRELUDE,
            f"""
            signals.become_subreaper()
            table, inbox = ProcessTable(), Inbox()
            for i in range(3):
                request = SpawnRequest(["sh", "-c", "sleep 30 & sleep 30"], label=f"d{{i}}")
                spawn(request, table, inbox)
            time.sleep(0.2)
            found = sweep.descendants()
            sent = sweep.signal_descendants(signal.SIGKILL)
            gone = reap_until(table, lambda: not sweep.children_remain())
            print(json.dumps({{"found": len(found), "sent": sent, "gone": gone,
                              "outsider_seen": {outsider.pid} in found}}))
            """
        )
        # Each unit is a shell with two sleeps.
        assert result.data == {"found": 9, "sent": 9, "gone": True, "outsider_seen": False}, result
        assert outsider.poll() is None
    finally:
        outsider.kill()
        outsider.wait()


def test_signal_leftovers_as_pid1_leaves_nothing_in_the_namespace(pid1_driver: Driver) -> None:
    result = pid1_driver(
        PRELUDE,
        """
        table, inbox = ProcessTable(), Inbox()
        for i in range(3):
            spawn(SpawnRequest(["sh", "-c", "(sleep 30 &); trap '' TERM; sleep 30"], label=f"d{i}"),
                  table, inbox)
        time.sleep(0.3)
        before = len([p for p in os.listdir("/proc") if p.isdigit()])
        sweep.signal_leftovers(signal.SIGTERM)  # only the sleeps started before the trap die
        reap_until(table, lambda: table.orphans_reaped >= 3, 5)
        middle = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
        sweep.signal_leftovers(signal.SIGKILL)
        gone = reap_until(table, lambda: not sweep.children_remain())
        after = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
        print(json.dumps({"pid": os.getpid(), "before": before, "middle": len(middle),
                          "gone": gone, "after": after, "exits": len(inbox.messages)}))
        """
    )
    data = result.data
    assert data is not None, result
    assert data["pid"] == 1
    assert data["before"] == 1 + 3 * 3  # driver, and per unit: shell, sleep, orphaned sleep
    # Left: the shells and their foreground sleeps, which inherited the ignored SIGTERM.
    assert data["middle"] == 1 + 3 + 3
    assert (data["gone"], data["after"], data["exits"]) == (True, [1], 3)


def test_a_waiting_child_is_silent_until_handed_over_then_reported_once(driver: Driver) -> None:
    # The hand-over of a prepared child (cinit.io.spawn.prepared) through the table's own
    # methods: registered waiting (its exit silent), handed over (held), released (reported).
    result = driver(
        PRELUDE,
        """
        table, inbox = ProcessTable(), Inbox()
        def fork_waiting(seconds):
            pid = os.fork()
            if pid == 0:
                time.sleep(seconds)
                os._exit(3)
            with table.lock:
                return table.register_waiting_locked(pid, "waiting")
        dead = fork_waiting(0)
        reap_until(table, lambda: not dead.alive)
        dead_taken = table.hand_over(dead, "dead.service", inbox)
        live = fork_waiting(0.3)
        live_taken = table.hand_over(live, "live.service", inbox)
        reap_until(table, lambda: not live.alive)
        held = len(inbox.messages)
        table.release(live, failed=False)
        table.release(live, failed=False)
        print(json.dumps({"dead_taken": dead_taken, "live_taken": live_taken, "held": held,
                          "exits": [(m.label, m.status) for m in inbox.messages],
                          "pgid": live.pgid == live.pid, "orphans": table.orphans_reaped}))
        """
    )
    assert result.data == {"dead_taken": False, "live_taken": True, "held": 0,
                           "exits": [["live.service", 3]], "pgid": True,
                           "orphans": 0}, result  # fmt: skip
