"""Load-time checks of socket units that socket activation relies on (cinit.units)."""

from __future__ import annotations

from pathlib import Path

from cinit.units import Severity, load_units


def load(tmp_path: Path, units: dict[str, str]) -> list[str]:
    core = tmp_path / "units"
    core.mkdir()
    for name, text in units.items():
        (core / name).write_text(text)
    unit_set = load_units(str(core), str(tmp_path / "none"), strict=True)
    return [d.format() for d in unit_set.diagnostics if d.severity is not Severity.HINT]


def test_accept_yes_with_a_datagram_listener_is_an_error(tmp_path: Path) -> None:
    found = load(
        tmp_path,
        {
            "d.socket": "[Socket]\nListenDatagram=127.0.0.1:9999\nAccept=yes\n",
            "d.service": "[Service]\nExecStart=/bin/true\n",
        },
    )
    assert found == [
        f"{tmp_path}/units/d.socket:3: error: d.socket: Accept=yes needs stream listeners: "
        "a ListenDatagram= socket has no connections to accept"
    ]


def test_dbus_daemon_hint_is_not_given_for_proxy_or_unrelated_services(tmp_path: Path) -> None:
    core = tmp_path / "units"
    core.mkdir()
    (core / "bus.socket").write_text("[Socket]\nListenStream=/run/x/bus\n")
    (core / "bus.service").write_text("[Service]\nExecStart=/usr/bin/dbus-daemon --session\n")
    (core / "other.service").write_text("[Service]\nExecStart=/usr/bin/dbus-daemon --session\n")
    unit_set = load_units(str(core), str(tmp_path / "none"), strict=True)
    hints = [d for d in unit_set.diagnostics if d.severity is Severity.HINT]
    assert [h.path for h in hints] == [str(core / "bus.service")]
    assert unit_set.ok
