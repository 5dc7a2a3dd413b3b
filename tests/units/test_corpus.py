"""The seed README's example units (copied verbatim into tests/data/seed) validate clean."""

from __future__ import annotations

from pathlib import Path

import pytest

from cinit.units import (
    ActivationMode,
    ListenAddress,
    ListenKind,
    ServiceType,
    load_units,
    parse_unit,
    render_unit,
)

SEED = Path(__file__).resolve().parent.parent / "data" / "seed"
EXAMPLES = Path(__file__).resolve().parents[2] / "cinit" / "examples"
SEED_UNITS = [
    "myimage-init.service",
    "myimage-app.service",
    "myhelper.socket",
    "myhelper.service",
    "legacy.socket",
    "legacy.service",
    "dbus-system.socket",
    "dbus-system.service",
]


def load_seed(env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return load_units(
        str(SEED / "units"), str(SEED / "container-init.d"), strict=True, environ=env or {}
    )


def test_every_seed_unit_is_present() -> None:
    assert sorted(p.name for p in (SEED / "container-init.d").iterdir()) == sorted(SEED_UNITS)


def test_seed_corpus_validates_clean_under_strict_units() -> None:
    result = load_seed()
    assert result.ok, [d.format() for d in result.diagnostics]
    assert [d for d in result.diagnostics if d.severity.value != "hint"] == []
    assert set(SEED_UNITS) <= set(result.units)


def test_seed_values_are_typed_as_the_readme_means() -> None:
    units = load_seed().units
    init = units["myimage-init.service"].service
    assert init.type is ServiceType.ONESHOT and init.remain_after_exit
    assert init.user == "app" and init.timeout_start_sec == 60.0
    app = units["myimage-app.service"]
    assert app.service.working_directory == "/home/app" and app.service.restart_sec == 2.0
    assert (app.unit.start_limit_burst, app.unit.start_limit_interval_sec) == (5, 60.0)
    helper = units["myhelper.socket"].socket
    assert helper.listen_stream == (ListenAddress(ListenKind.INET, "", 5050),)
    assert helper.activation_mode is ActivationMode.NATIVE
    legacy = units["legacy.socket"].socket
    assert legacy.proxy_target == ListenAddress(ListenKind.INET, "127.0.0.1", 18080)
    dbus = units["dbus-system.socket"].socket
    assert dbus.listen_stream[0].path == "/run/dbus/system_bus_socket"
    assert dbus.socket_mode == 0o666
    assert units["dbus-system.service"].service.exec_start_pre[0].words[0] == "/usr/bin/install"


def test_app_user_override_flows_through_expansion() -> None:
    units = load_seed({"APP_USER": "bob", "APP_HOME": "/srv/bob"}).units
    assert units["myimage-app.service"].service.user == "bob"
    assert units["myimage-app.service"].service.working_directory == "/srv/bob"


def test_seed_start_order_respects_after() -> None:
    order = load_seed().start_order()
    assert order.index("session-setup.service") < order.index("myimage-init.service")
    assert order.index("window-manager.service") < order.index("myimage-app.service")
    assert order.index("legacy.socket") < order.index("legacy.service")


@pytest.mark.parametrize("name", SEED_UNITS)
def test_seed_units_round_trip_through_render(name: str) -> None:
    path = SEED / "container-init.d" / name
    unit, diags = parse_unit(name, path.read_text(), path=str(path), environ={})
    assert unit is not None and not diags
    again, diags = parse_unit(name, render_unit(unit), path=str(path), environ={})
    assert not diags and again == unit


def test_embedded_examples_validate_clean_under_strict_units() -> None:
    result = load_units(str(EXAMPLES / "units"), str(EXAMPLES / "container-init.d"), strict=True)
    assert result.ok, [d.format() for d in result.diagnostics]
    assert [o.name for o in result.overrides] == ["ticker.service"]
