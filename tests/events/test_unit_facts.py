"""What systemctl status/show/list verbs read from a unit's definition (events/unit_facts.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cinit.events.unit_facts import describe
from cinit.units.loader import load_units

pytestmark = pytest.mark.timeout(30)


def test_definition_paths_dependencies_both_ways_and_listen_addresses(tmp_path: Path) -> None:
    units, drop_in = tmp_path / "units", tmp_path / "drop-in"
    units.mkdir()
    (drop_in / "web.service.d").mkdir(parents=True)
    (units / "web.service").write_text(
        "[Unit]\nWants=db.service\nAfter=db.service\n"
        "[Service]\nType=notify\nRestart=on-failure\nExecStart=/bin/web\n"
        "[Install]\nWantedBy=multi-user.target\n"
    )
    (drop_in / "web.service.d" / "env.conf").write_text("[Service]\nEnvironment=A=1\n")
    (units / "db.service").write_text("[Service]\nExecStart=/bin/db\n")
    (units / "api.socket").write_text(
        "[Socket]\nListenStream=127.0.0.1:8080\nService=web.service\n"
    )
    unit_set = load_units(str(units), str(drop_in))
    web = describe(unit_set, "web.service")
    assert web["fragment_path"] == str(units / "web.service")
    assert web["dropins"] == [str(drop_in / "web.service.d" / "env.conf")]
    assert (web["type"], web["restart"]) == ("notify", "on-failure")
    assert web["wants"] == ["db.service"] and "db.service" in web["after"]
    assert web["triggered_by"] == ["api.socket"]
    assert web["unit_file_state"] == "enabled"
    db = describe(unit_set, "db.service")
    assert db["wanted_by"] == ["web.service"] and "web.service" in db["before"]
    assert db["unit_file_state"] == "static"  # no [Install]
    socket = describe(unit_set, "api.socket")
    assert socket["listen"] == [["Stream", "127.0.0.1:8080"]]
    assert socket["triggers"] == ["web.service"]
    assert "type" not in socket
