"""The control desk with instances made on demand (`systemctl start x@a`), without processes.

A request naming an instance the book does not know asks the supervisor to make it
(`instance` order), waits for `instance-loaded`, then is handled as for any unit.
"""

from __future__ import annotations

from typing import Any

import pytest
from test_status_and_control import Desk, change

from cinit.events.control_desk import instance_name
from cinit.machines.unit_events import Notice
from cinit.machines.unit_model import State

pytestmark = pytest.mark.timeout(30)


@pytest.mark.parametrize(
    ("given", "full"),
    [
        ("openvpn@work", "openvpn@work.service"),
        ("openvpn@work.service", "openvpn@work.service"),
        ("x@a.b", "x@a.b.service"),  # a dot in the instance: not a suffix
        ("echo@1.socket", "echo@1.socket"),
        ("tick@a.timer", "tick@a.timer"),
        ("web", None),
        ("web.service", None),
        ("x@.service", None),  # the template itself is never a unit
        ("@a.service", None),
    ],
)
def test_instance_names(given: str, full: str | None) -> None:
    assert instance_name(given) == full


def loaded(desk: Desk, name: str, **fields: Any) -> list[Any]:
    if fields.get("ok", True):
        desk.hub.tell(Notice(name, "unit-added", {"kind": "service", "description": "hi"}))
    desk.hub.tell(Notice("", "instance-loaded", {"instance": name, "ok": True, **fields}))
    return desk.settle()


def test_start_of_an_unknown_instance_loads_it_then_starts_it(tmp_path: Any) -> None:
    desk = Desk(tmp_path)
    assert desk.ask({"cmd": "start", "unit": "greet@work"}) is None
    assert desk.ask({"cmd": "start", "unit": "greet@work.service"}, client="c2") is None
    assert desk.commands == [("instance", "greet@work.service")] * 2
    assert loaded(desk, "greet@work.service") == []  # both now wait for the start
    assert desk.commands[2:] == [("start", "greet@work.service")] * 2
    desk.hub.tell(change("greet@work.service", State.INACTIVE, State.ACTIVE))
    replies = desk.settle()
    assert sorted((c, r["ok"], r["state"]) for c, r in replies) == [
        ("c1", True, "active"),
        ("c2", True, "active"),
    ]


def test_status_of_an_unknown_instance_answers_once_loaded(tmp_path: Any) -> None:
    desk = Desk(tmp_path)
    assert desk.ask({"cmd": "status", "unit": "greet@never"}) is None
    [(client, reply)] = loaded(desk, "greet@never.service")
    assert client == "c1" and reply["units"]["greet@never.service"]["state"] == "inactive"


def test_refusals(tmp_path: Any) -> None:
    desk = Desk(tmp_path)
    assert desk.ask({"cmd": "start", "unit": "nope"})["code"] == 4  # type: ignore[index]
    assert desk.commands == []  # no "@": not an instance, nothing asked
    assert desk.ask({"cmd": "start", "unit": "nosuch@a"}) is None
    [(_client, reply)] = loaded(desk, "nosuch@a.service", ok=False, code=4, errors=[])
    assert (reply["code"], reply["error"]) == (4, "unit nosuch@a not found")
    assert desk.ask({"cmd": "start", "unit": "bad@a"}) is None
    errors = ["/u/bad@.service:3: error: [Service] Restart=sometimes: invalid value"]
    [(_client, reply)] = loaded(desk, "bad@a.service", ok=False, code=1, errors=errors)
    assert reply["code"] == 1
    assert reply["error"] == f"cannot load bad@a.service:\n{errors[0]}"
