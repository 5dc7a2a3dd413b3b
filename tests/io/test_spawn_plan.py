"""`cinit.io.spawn.plan`: the `ChildPlan` a prepared child is handed, on the wire and back."""

from __future__ import annotations

import marshal

import pytest

from cinit.io.spawn.plan import WIRE_FIELDS, ChildPlan


def a_plan(fds: list[int]) -> ChildPlan:
    return ChildPlan(
        argv=["/bin/echo", "hi"],
        env={"PATH": "/bin", "LISTEN_FDS": "1"},
        exec_paths=["/bin/echo"],
        fds=fds,
        reset_signals=[13, 25],
        new_session=False,
        foreground=True,
        cgroup_fd=9,
        groups=[10, 20],
        gid=10,
        uid=1000,
        cwd="/srv",
        cwd_optional=True,
        listen_pid=True,
        fd_limit=(1024, 4096),
    )


def test_a_plan_comes_back_from_the_wire_with_the_fds_that_came_with_it() -> None:
    sent = a_plan([5, 6, 7, 8])
    received = ChildPlan.from_wire(sent.to_wire(), [30, 31, 32, 33])
    for name in WIRE_FIELDS:
        assert getattr(received, name) == getattr(sent, name), name
    assert received.fds == [30, 31, 32, 33]  # the receiver's numbers, in layout order
    assert received.cgroup_fd == -1  # a prepared child is in its cgroup already


def test_the_wire_form_is_a_dict_of_named_fields() -> None:
    fields = marshal.loads(a_plan([0, 1, 2]).to_wire())
    assert set(fields) == {*WIRE_FIELDS, "fd_count"}
    assert fields["fd_count"] == 3
    assert fields["argv"] == ["/bin/echo", "hi"]


def test_a_plan_whose_fds_did_not_all_arrive_is_refused() -> None:
    with pytest.raises(ValueError, match="fds"):
        ChildPlan.from_wire(a_plan([0, 1, 2, 3]).to_wire(), [40, 41, 42])


def test_a_message_that_is_no_plan_is_refused() -> None:
    with pytest.raises(ValueError):
        ChildPlan.from_wire(marshal.dumps({"fd_count": 0, "argv": ["x"]}), [])
    with pytest.raises(ValueError):
        ChildPlan.from_wire(marshal.dumps(("not", "a", "dict")), [])
