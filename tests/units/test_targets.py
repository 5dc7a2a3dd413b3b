"""`.target` units in the graph and the loader, and which socket-activated services start
at boot in the ordinary --units mode (issue 15)."""

from __future__ import annotations

from pathlib import Path

from cinit.units import Severity, UnitKind, UnitSource, load_units
from cinit.units.graph import build_graph
from cinit.units.model import InstallSection, Unit, UnitSection
from cinit.units.targets import TARGET_SERVICE, implicit_targets, target_unit

SIMPLE = "[Service]\nExecStart=/bin/true\n"


def target(name: str, **section: object) -> Unit:
    return target_unit(name, f"/u/{name}", UnitSection(**section), UnitSource.CORE)  # type: ignore[arg-type]


def service(name: str, **section: object) -> Unit:
    return Unit(
        name=name,
        path=f"/u/{name}",
        kind=UnitKind.SERVICE,
        unit=UnitSection(**section),  # type: ignore[arg-type]
        service=TARGET_SERVICE.replace(remain_after_exit=False),
    )


def test_a_target_is_ordered_after_what_it_pulls_in() -> None:
    units = {
        "app.target": target("app.target", wants=("a.service",), requires=("b.service",)),
        "a.service": service("a.service"),
        "b.service": service("b.service"),
        "c.service": service("c.service", after=("app.target",)),
    }
    graph = build_graph(units)
    assert graph.ordered_after("app.target") == {"a.service", "b.service"}
    assert graph.start_levels() == [["a.service", "b.service"], ["app.target"], ["c.service"]]
    assert graph.stop_order() == ["c.service", "app.target", "b.service", "a.service"]


def test_no_loop_when_the_wanted_unit_is_ordered_after_the_target() -> None:
    # systemd.target(5): the implicit After= is not added when it would make a loop.
    units = {
        "t.target": target("t.target", wants=("late.service",)),
        "late.service": service("late.service", after=("t.target",)),
    }
    graph = build_graph(units)
    assert graph.cycle_groups == ()
    assert graph.start_order() == ["t.target", "late.service"]


def test_default_dependencies_no_leaves_a_target_unordered() -> None:
    units = {
        "t.target": target("t.target", wants=("a.service",), default_dependencies=False),
        "a.service": service("a.service"),
    }
    assert build_graph(units).ordered_after("t.target") == frozenset()


def test_implicit_targets_for_every_named_target_only() -> None:
    units = {
        "a.service": service("a.service", after=("network.target", "x.service")),
        "b.service": service("b.service", wants=("sockets.target",), before=("a.service",)),
        "c.target": target("c.target", requires=("c.target",)),
    }
    made = implicit_targets(units, extra=("default.target", "c.target"))
    assert sorted(made) == ["default.target", "network.target", "sockets.target"]
    assert all(u.source is UnitSource.IMPLICIT and u.kind is UnitKind.TARGET for u in made.values())
    assert made["network.target"].service == TARGET_SERVICE


def test_units_mode_loads_target_files_and_implicit_targets(tmp_path: Path) -> None:
    core = tmp_path / "units"
    core.mkdir()
    (core / "web.service").write_text("[Unit]\nAfter=app.target network.target\n" + SIMPLE)
    (core / "app.target").write_text("[Unit]\nDescription=app\nWants=db.service\n")
    (core / "db.service").write_text(SIMPLE)
    result = load_units(str(core), str(tmp_path / "none"), environ={}, hostname="h")
    assert result.ok, [d.format() for d in result.diagnostics]
    assert result.units["app.target"].source is UnitSource.CORE
    assert result.units["app.target"].unit.description == "app"
    assert result.units["network.target"].source is UnitSource.IMPLICIT
    assert result.start_order() == ["db.service", "network.target", "app.target", "web.service"]
    # Every unit starts at boot in this mode, targets too.
    assert result.graph.boot_units() == result.start_order()


def test_a_target_file_with_a_service_section_is_warned(tmp_path: Path) -> None:
    core = tmp_path / "units"
    core.mkdir()
    (core / "t.target").write_text("[Unit]\nWants=a.service\n[Service]\nExecStart=/bin/true\n")
    result = load_units(str(core), str(tmp_path / "none"), environ={}, hostname="h")
    (warning,) = result.warnings
    assert warning.line == 3 and "[Service] is not valid in a target unit" in warning.message


def test_a_socket_service_wanted_at_boot_starts_at_boot() -> None:
    def socket_for(name: str) -> Unit:
        from cinit.units.model import ListenAddress, ListenKind, SocketSection

        listen = (ListenAddress(ListenKind.UNIX, path=f"/run/{name}"),)
        return Unit(
            name=name,
            path=f"/u/{name}",
            kind=UnitKind.SOCKET,
            socket=SocketSection(listen_stream=listen, service=name.replace(".socket", ".service")),
        )

    rsyslog = service("syslog.service").replace(
        install=InstallSection(wanted_by=("multi-user.target",))
    )
    dbus = service("dbus.service")  # static: no [Install]
    helper = service("helper.service").replace(
        install=InstallSection(required_by=("sockets.target",))  # not a boot target
    )
    units = {
        u.name: u
        for u in (
            rsyslog,
            dbus,
            helper,
            socket_for("syslog.socket"),
            socket_for("dbus.socket"),
            socket_for("helper.socket"),
        )
    }
    graph = build_graph(units)
    assert graph.trigger_only() == {"dbus.service", "helper.service"}
    assert "syslog.service" in graph.boot_units()
    assert graph.ordered_after("syslog.service") == {"syslog.socket"}  # bound first
    assert all(graph.binds_at_boot(name) for name in units)


def test_the_boot_set_given_leaves_sockets_outside_it_unbound() -> None:
    units = {
        "ssh.service": service("ssh.service"),
        "ssh.socket": Unit(name="ssh.socket", path="/u/ssh.socket", kind=UnitKind.SOCKET),
    }
    graph = build_graph(units, boot={"ssh.service"})
    assert graph.boot_units() == ["ssh.service"]
    assert not graph.binds_at_boot("ssh.socket") and graph.binds_at_boot("ssh.service")


def test_severity_of_a_reference_to_a_missing_unit_is_a_hint(tmp_path: Path) -> None:
    core = tmp_path / "units"
    core.mkdir()
    (core / "ssh.service").write_text("[Unit]\nAfter=network.target auditd.service\n" + SIMPLE)
    result = load_units(str(core), str(tmp_path / "none"), strict=True, environ={}, hostname="h")
    assert result.ok  # --strict-units passes: a hint never fails
    (hint,) = result.diagnostics
    assert hint.severity is Severity.HINT and "auditd.service" in hint.message


def test_shutdown_and_rescue_targets_are_never_boot_units(tmp_path: Path) -> None:
    core = tmp_path / "units"
    core.mkdir()
    # syslog.socket's shape: ordered before shutdown.target, which no file defines.
    (core / "log.socket").write_text(
        "[Unit]\nBefore=sockets.target shutdown.target\n[Socket]\nListenStream=/run/l.sock\n"
    )
    (core / "log.service").write_text(SIMPLE)
    (core / "rescue.target").write_text("[Unit]\nDescription=rescue\n")
    result = load_units(str(core), str(tmp_path / "none"), environ={}, hostname="h")
    assert result.ok
    assert result.units["shutdown.target"].source is UnitSource.IMPLICIT
    boot = result.graph.boot_units()
    assert "sockets.target" in boot
    assert "shutdown.target" not in boot and "rescue.target" not in boot
