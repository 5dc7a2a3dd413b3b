"""The dependency graph (cinit.units.graph) and the cross-unit checks (cross_checks)."""

from __future__ import annotations

import itertools
from collections.abc import Iterable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cinit.units.cross_checks import check_units
from cinit.units.diagnostics import Diagnostic, Severity
from cinit.units.graph import build_graph
from cinit.units.model import (
    ActivationMode,
    ListenAddress,
    ListenKind,
    RestartPolicy,
    ServiceSection,
    ServiceType,
    SocketSection,
    Unit,
    UnitKind,
    UnitSection,
)

# Where each directive sits in every hand-built unit file (only those a unit sets are recorded).
LINES = {
    "After": 2,
    "Before": 3,
    "Requires": 4,
    "Wants": 5,
    "OnFailure": 6,
    "Type": 10,
    "Restart": 11,
    "RemainAfterExit": 12,
    "ListenStream": 20,
    "ListenDatagram": 21,
    "Service": 22,
    "Accept": 23,
    "ActivationMode": 24,
    "ProxyTarget": 25,
    "BindIPv6Only": 26,
}


def addr(text: str) -> ListenAddress:
    """A listen address in unit-file form: PORT, HOST:PORT, [V6]:PORT, /path or @name."""
    if text.startswith("/"):
        return ListenAddress(ListenKind.UNIX, path=text)
    if text.startswith("@"):
        return ListenAddress(ListenKind.ABSTRACT, path=text[1:])
    if text.startswith("["):
        host, _, port = text[1:].partition("]:")
        return ListenAddress(ListenKind.INET, host=host, port=int(port))
    if ":" in text:
        host, _, port = text.rpartition(":")
        return ListenAddress(ListenKind.INET, host=host, port=int(port))
    return ListenAddress(ListenKind.INET, port=int(text))


def _unit_section(
    after: Iterable[str],
    before: Iterable[str],
    requires: Iterable[str],
    wants: Iterable[str],
    on_failure: Iterable[str],
    lines: dict[str, int],
) -> UnitSection:
    section = UnitSection(
        after=tuple(after),
        before=tuple(before),
        requires=tuple(requires),
        wants=tuple(wants),
        on_failure=tuple(on_failure),
    )
    for directive, value in (
        ("After", section.after),
        ("Before", section.before),
        ("Requires", section.requires),
        ("Wants", section.wants),
        ("OnFailure", section.on_failure),
    ):
        if value:
            lines[directive] = LINES[directive]
    return section


def service(
    name: str,
    *,
    after: Iterable[str] = (),
    before: Iterable[str] = (),
    requires: Iterable[str] = (),
    wants: Iterable[str] = (),
    on_failure: Iterable[str] = (),
    type: ServiceType = ServiceType.SIMPLE,
    restart: RestartPolicy = RestartPolicy.NO,
    remain_after_exit: bool = False,
) -> Unit:
    lines: dict[str, int] = {}
    section = _unit_section(after, before, requires, wants, on_failure, lines)
    if restart is not RestartPolicy.NO:
        lines["Restart"] = LINES["Restart"]
    if remain_after_exit:
        lines["RemainAfterExit"] = LINES["RemainAfterExit"]
    return Unit(
        name=name,
        path=f"/u/{name}",
        kind=UnitKind.SERVICE,
        unit=section,
        service=ServiceSection(type=type, restart=restart, remain_after_exit=remain_after_exit),
        directive_lines=lines,
    )


def socket(
    name: str,
    *,
    stream: Iterable[str] = (),
    datagram: Iterable[str] = (),
    activates: str = "",
    proxy_target: str = "",
    accept: bool = False,
    ipv6_only: bool = False,
    after: Iterable[str] = (),
    before: Iterable[str] = (),
    requires: Iterable[str] = (),
) -> Unit:
    """A socket unit; like the loader, Service= resolves to <stem>.service when unset."""
    lines: dict[str, int] = {}
    section = _unit_section(after, before, requires, (), (), lines)
    if stream:
        lines["ListenStream"] = LINES["ListenStream"]
    if datagram:
        lines["ListenDatagram"] = LINES["ListenDatagram"]
    if activates:
        lines["Service"] = LINES["Service"]
    if accept:
        lines["Accept"] = LINES["Accept"]
    if proxy_target:
        lines["ActivationMode"] = LINES["ActivationMode"]
        lines["ProxyTarget"] = LINES["ProxyTarget"]
    if ipv6_only:
        lines["BindIPv6Only"] = LINES["BindIPv6Only"]
    return Unit(
        name=name,
        path=f"/u/{name}",
        kind=UnitKind.SOCKET,
        unit=section,
        socket=SocketSection(
            listen_stream=tuple(addr(a) for a in stream),
            listen_datagram=tuple(addr(a) for a in datagram),
            accept=accept,
            service=activates or name.rsplit(".", 1)[0] + ".service",
            bind_ipv6_only="ipv6-only" if ipv6_only else "default",
            activation_mode=ActivationMode.PROXY if proxy_target else ActivationMode.NATIVE,
            proxy_target=addr(proxy_target) if proxy_target else None,
        ),
        directive_lines=lines,
    )


def unit_map(*units: Unit) -> dict[str, Unit]:
    return {u.name: u for u in units}


def errors(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    return [d for d in diagnostics if d.severity is Severity.ERROR]


def warnings(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    return [d for d in diagnostics if d.severity is Severity.WARNING]


def cycle_errors(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    return [d for d in diagnostics if "ordering cycle" in d.message]


def only(diagnostics: list[Diagnostic]) -> Diagnostic:
    assert len(diagnostics) == 1, [d.format() for d in diagnostics]
    return diagnostics[0]


# --- the graph ---


def test_after_and_before_merge_into_one_ordering_relation() -> None:
    units = unit_map(
        service("a.service", after=["b.service"]),
        service("b.service"),
        service("c.service", before=["a.service"]),
    )
    graph = build_graph(units)
    assert graph.ordered_after("a.service") == {"b.service", "c.service"}
    assert graph.ordered_before("b.service") == {"a.service"}
    assert graph.ordered_before("c.service") == {"a.service"}
    assert graph.ordered_after("b.service") == frozenset()


def test_references_to_missing_units_and_targets_add_no_edges() -> None:
    units = unit_map(
        service(
            "a.service",
            after=["gone.service", "network.target"],
            before=["gone2.service"],
            requires=["gone.service"],
            wants=["gone.service"],
            on_failure=["gone.service"],
        )
    )
    graph = build_graph(units)
    assert graph.ordered_after("a.service") == frozenset()
    assert graph.ordered_before("gone2.service") == frozenset()
    assert graph.requires("a.service") == frozenset()
    assert graph.wants("a.service") == frozenset()
    assert graph.on_failure("a.service") == ()
    assert graph.start_order() == ["a.service"]


def test_requires_does_not_imply_ordering() -> None:
    units = unit_map(
        service("a.service", requires=["z.service"], wants=["y.service"]),
        service("z.service"),
        service("y.service"),
    )
    graph = build_graph(units)
    assert graph.requires("a.service") == {"z.service"}
    assert graph.required_by("z.service") == {"a.service"}
    assert graph.wants("a.service") == {"y.service"}
    assert graph.ordered_after("a.service") == frozenset()
    # With no ordering, ties go to names: a before z.
    assert graph.start_order() == ["a.service", "y.service", "z.service"]
    assert graph.start_levels() == [["a.service", "y.service", "z.service"]]


def test_on_failure_keeps_written_order_without_duplicates() -> None:
    units = unit_map(
        service("a.service", on_failure=["z.service", "b.service", "z.service", "gone.service"]),
        service("b.service"),
        service("z.service"),
    )
    assert build_graph(units).on_failure("a.service") == ("z.service", "b.service")


def test_socket_is_ordered_before_the_service_it_activates() -> None:
    units = unit_map(
        service("web.service"),
        socket("web.socket", stream=["8080"]),
        socket("admin.socket", stream=["9090"], activates="web.service"),
    )
    graph = build_graph(units)
    assert graph.ordered_after("web.service") == {"web.socket", "admin.socket"}
    assert graph.activated_by("web.service") == ("admin.socket", "web.socket")
    assert graph.activates("web.socket") == "web.service"
    order = graph.start_order()
    assert order.index("web.socket") < order.index("web.service")
    assert order.index("admin.socket") < order.index("web.service")
    assert graph.start_levels() == [["admin.socket", "web.socket"], ["web.service"]]


def test_unset_service_defaults_to_the_socket_stem() -> None:
    sock = socket("dbus.socket", stream=["/run/dbus.sock"])
    bare = Unit(
        name=sock.name,
        path=sock.path,
        kind=UnitKind.SOCKET,
        socket=SocketSection(listen_stream=sock.socket.listen_stream if sock.socket else ()),
    )
    graph = build_graph(unit_map(bare, service("dbus.service")))
    assert graph.activates("dbus.socket") == "dbus.service"
    assert graph.ordered_after("dbus.service") == {"dbus.socket"}


def test_socket_naming_a_non_service_activates_nothing() -> None:
    units = unit_map(socket("a.socket", activates="b.socket"), socket("b.socket"))
    graph = build_graph(units)
    assert graph.activates("a.socket") is None
    assert graph.ordered_after("b.socket") == frozenset()


def test_trigger_only_covers_socket_activated_services_and_on_failure_targets() -> None:
    units = unit_map(
        service("app.service", on_failure=["alert.service", "cleanup.socket"]),
        service("alert.service"),
        socket("cleanup.socket", stream=["/run/cleanup"]),
        service("cleanup.service"),
        socket("web.socket", stream=["80"]),
        service("web.service"),
        service("plain.service"),
    )
    graph = build_graph(units)
    assert graph.trigger_only() == {
        "alert.service",
        "cleanup.socket",
        "cleanup.service",
        "web.service",
    }
    assert graph.boot_units() == ["app.service", "plain.service", "web.socket"]


def test_start_order_is_deterministic_whatever_the_input_order() -> None:
    made = [service(f"{c}.service") for c in "dbca"] + [service("e.service", after=["d.service"])]
    forward = build_graph(unit_map(*made)).start_order()
    backward = build_graph(unit_map(*reversed(made))).start_order()
    assert forward == backward == [f"{c}.service" for c in "abcde"]


def test_start_order_is_the_levels_one_after_the_other() -> None:
    # b waits for y, so b starts after z although its name is smaller.
    units = unit_map(
        service("a.service"),
        service("b.service", after=["y.service"]),
        service("y.service"),
        service("z.service"),
    )
    graph = build_graph(units)
    assert graph.start_levels() == [["a.service", "y.service", "z.service"], ["b.service"]]
    assert graph.start_order() == ["a.service", "y.service", "z.service", "b.service"]


def test_stop_order_is_the_exact_reverse_of_start_order() -> None:
    units = unit_map(
        service("db.service"),
        service("app.service", after=["db.service", "cache.service"]),
        service("cache.service", after=["db.service"]),
        service("web.service", after=["app.service"]),
    )
    graph = build_graph(units)
    start = graph.start_order()
    assert start == ["db.service", "cache.service", "app.service", "web.service"]
    assert graph.stop_order() == list(reversed(start))
    assert graph.stop_levels() == list(reversed(graph.start_levels()))


def test_start_levels_of_a_diamond() -> None:
    units = unit_map(
        service("a.service"),
        service("b.service", after=["a.service"]),
        service("c.service", after=["a.service"]),
        service("d.service", after=["b.service", "c.service"]),
        service("e.service"),
    )
    assert build_graph(units).start_levels() == [
        ["a.service", "e.service"],
        ["b.service", "c.service"],
        ["d.service"],
    ]


def test_level_waits_for_its_latest_dependency() -> None:
    units = unit_map(
        service("a.service"),
        service("b.service", after=["a.service"]),
        service("c.service", after=["a.service", "b.service"]),
    )
    assert build_graph(units).start_levels() == [["a.service"], ["b.service"], ["c.service"]]


def test_cycle_members_still_appear_once_and_kept_together() -> None:
    units = unit_map(
        service("root.service"),
        service("x.service", after=["y.service", "root.service"]),
        service("y.service", after=["x.service"]),
        service("a.service", after=["x.service"]),  # downstream of the cycle
        service("self.service", after=["self.service"]),
    )
    graph = build_graph(units)
    assert graph.cycle_groups == (("self.service",), ("x.service", "y.service"))
    order = graph.start_order()
    assert sorted(order) == sorted(units)
    assert order.index("root.service") < order.index("x.service")
    assert order.index("x.service") + 1 == order.index("y.service")
    assert order.index("y.service") < order.index("a.service")
    levels = graph.start_levels()
    assert sorted(n for level in levels for n in level) == sorted(units)
    assert ["x.service", "y.service"] in levels


def test_long_chains_and_rings_do_not_recurse() -> None:
    count = 3000
    chain = unit_map(
        *(
            service(f"c{i:04}.service", after=[f"c{i + 1:04}.service"] if i + 1 < count else [])
            for i in range(count)
        )
    )
    graph = build_graph(chain)
    assert graph.start_order() == sorted(chain, reverse=True)
    assert len(graph.start_levels()) == count
    ring = unit_map(
        *(
            service(f"r{i:04}.service", after=[f"r{(i + 1) % count:04}.service"])
            for i in range(count)
        )
    )
    diagnostic = only(check_units(ring))
    assert diagnostic.message.count(" -> ") == count
    assert build_graph(ring).start_levels() == [sorted(ring)]


def test_queries_about_unknown_names_are_empty() -> None:
    graph = build_graph({})
    assert graph.ordered_after("nope") == frozenset()
    assert graph.ordered_before("nope") == frozenset()
    assert graph.required_by("nope") == frozenset()
    assert graph.activated_by("nope") == ()
    assert graph.activates("nope") is None
    assert graph.start_order() == [] and graph.start_levels() == [] and graph.boot_units() == []


def test_returned_lists_are_copies() -> None:
    graph = build_graph(unit_map(service("a.service")))
    graph.start_order().clear()
    graph.start_levels()[0].clear()
    assert graph.start_order() == ["a.service"]
    assert graph.start_levels() == [["a.service"]]


# --- references ---


def test_a_clean_set_has_no_diagnostics() -> None:
    # The seed README's socket examples: native helper, proxy legacy, dbus on a unix path.
    units = unit_map(
        socket("myhelper.socket", stream=["5050"], activates="myhelper.service"),
        service("myhelper.service", requires=["myhelper.socket"], restart=RestartPolicy.ON_FAILURE),
        socket("legacy.socket", stream=["8080"], proxy_target="127.0.0.1:18080"),
        service("legacy.service", requires=["legacy.socket"]),
        socket("dbus-system.socket", stream=["/run/dbus/system_bus_socket"]),
        service("dbus-system.service", requires=["dbus-system.socket"]),
        service(
            "backend.service",
            after=["dbus-system.service", "network.target"],
            requires=["dbus-system.service"],
            wants=["multi-user.target"],
        ),
    )
    assert check_units(units) == []


def test_requires_naming_a_missing_unit_is_an_error() -> None:
    units = unit_map(service("a.service", requires=["b.service", "network.target"]))
    diagnostic = only(check_units(units))
    assert diagnostic.severity is Severity.ERROR
    assert diagnostic.path == "/u/a.service"
    assert diagnostic.line == LINES["Requires"]
    assert (diagnostic.section, diagnostic.directive) == ("Unit", "Requires")
    assert diagnostic.message == "a.service: Requires= names b.service, which is not loaded"
    assert diagnostic.format().startswith("/u/a.service:4: error: a.service: Requires=")


def test_on_failure_naming_a_missing_unit_or_a_target_is_an_error() -> None:
    units = unit_map(service("a.service", on_failure=["alert.service", "rescue.target"]))
    found = check_units(units)
    assert [d.severity for d in found] == [Severity.ERROR, Severity.ERROR]
    assert {d.directive for d in found} == {"OnFailure"}
    assert "alert.service, which is not loaded" in found[0].message
    assert "rescue.target, which is not loaded" in found[1].message


@pytest.mark.parametrize("directive", ["After", "Before", "Wants"])
def test_weak_references_to_missing_units_are_hints(directive: str) -> None:
    # systemd ignores After=/Before=/Wants= on a unit that is not there (ssh's
    # After=auditd.service): a note, never a warning (--strict-units passes).
    refs = ["b.service", "sockets.target"]
    unit = {
        "After": service("a.service", after=refs),
        "Before": service("a.service", before=refs),
        "Wants": service("a.service", wants=refs),
    }[directive]
    units = unit_map(unit)
    diagnostic = only(check_units(units))
    assert diagnostic.severity is Severity.HINT
    assert diagnostic.directive == directive and diagnostic.line == LINES[directive]
    assert f"{directive}= names b.service" in diagnostic.message


def test_present_references_are_silent() -> None:
    units = unit_map(
        service("a.service", after=["b.service"], requires=["b.service"], on_failure=["c.service"]),
        service("b.service", before=["a.service"], wants=["a.service"]),
        service("c.service"),
    )
    assert check_units(units) == []


def test_a_repeated_missing_reference_is_reported_once() -> None:
    units = unit_map(service("a.service", requires=["b.service", "b.service"]))
    assert len(check_units(units)) == 1


def test_socket_whose_explicit_service_is_missing() -> None:
    units = unit_map(socket("web.socket", stream=["80"], activates="app.service"))
    diagnostic = only(check_units(units))
    assert diagnostic.severity is Severity.ERROR
    assert (diagnostic.section, diagnostic.directive) == ("Socket", "Service")
    assert diagnostic.line == LINES["Service"]
    assert diagnostic.message == "web.socket: activates app.service, which is not loaded"


def test_socket_whose_implicit_service_is_missing() -> None:
    units = unit_map(socket("x.socket", stream=["80"]))
    diagnostic = only(check_units(units))
    assert diagnostic.severity is Severity.ERROR
    assert diagnostic.message == "x.socket: activates x.service, which is not loaded"
    assert diagnostic.line is None and diagnostic.path == "/u/x.socket"


def test_socket_activating_a_socket_is_an_error() -> None:
    units = unit_map(
        socket("a.socket", stream=["80"], activates="b.socket"),
        socket("b.socket", stream=["81"]),
        service("b.service"),
    )
    diagnostic = only(check_units(units))
    assert diagnostic.message == "a.socket: activates b.socket, which is not a service"


# --- cycles ---


def test_two_unit_cycle() -> None:
    units = unit_map(
        service("a.service", after=["b.service"]),
        service("b.service", after=["a.service"]),
    )
    diagnostic = only(check_units(units))
    assert diagnostic.severity is Severity.ERROR
    assert diagnostic.message == "a.service: ordering cycle: a.service -> b.service -> a.service"
    assert (diagnostic.path, diagnostic.line, diagnostic.directive) == (
        "/u/a.service",
        LINES["After"],
        "After",
    )


def test_three_unit_cycle_names_every_member_in_order() -> None:
    units = unit_map(
        service("a.service", after=["b.service"]),
        service("b.service", after=["c.service"]),
        service("c.service", after=["a.service"]),
    )
    diagnostic = only(check_units(units))
    assert diagnostic.message.endswith(
        "ordering cycle: a.service -> b.service -> c.service -> a.service"
    )


def test_cycle_written_with_before_points_at_the_before_line() -> None:
    # b Before=a orders a after b; b After=c; c After=a: the cycle a -> b -> c -> a.
    units = unit_map(
        service("a.service"),
        service("b.service", before=["a.service"], after=["c.service"]),
        service("c.service", after=["a.service"]),
    )
    diagnostic = only(check_units(units))
    assert diagnostic.message.endswith(
        "ordering cycle: a.service -> b.service -> c.service -> a.service"
    )
    # The first hop a -> b comes from b's Before=a.
    assert (diagnostic.path, diagnostic.directive, diagnostic.line) == (
        "/u/b.service",
        "Before",
        LINES["Before"],
    )


@pytest.mark.parametrize("field", ["after", "before"])
def test_self_loop_is_a_cycle(field: str) -> None:
    looped = (
        service("a.service", after=["a.service"])
        if field == "after"
        else service("a.service", before=["a.service"])
    )
    units = unit_map(looped, service("b.service"))
    diagnostic = only(check_units(units))
    assert diagnostic.message == "a.service: ordering cycle: a.service -> a.service"


def test_two_disjoint_cycles_are_two_errors() -> None:
    units = unit_map(
        service("a.service", after=["b.service"]),
        service("b.service", after=["a.service"]),
        service("x.service", after=["y.service"]),
        service("y.service", after=["z.service"]),
        service("z.service", after=["x.service"]),
        service("free.service", after=["a.service", "x.service"]),
    )
    messages = sorted(d.message for d in cycle_errors(check_units(units)))
    assert messages == [
        "a.service: ordering cycle: a.service -> b.service -> a.service",
        "x.service: ordering cycle: x.service -> y.service -> z.service -> x.service",
    ]


def test_cycle_through_the_implicit_socket_edge() -> None:
    # web.service is ordered after web.socket (activation); web.socket After=web.service closes it.
    units = unit_map(
        socket("web.socket", stream=["80"], after=["web.service"]),
        service("web.service"),
    )
    diagnostic = only(check_units(units))
    assert diagnostic.message.endswith("ordering cycle: web.service -> web.socket -> web.service")
    assert (diagnostic.path, diagnostic.section, diagnostic.directive) == (
        "/u/web.socket",
        "Socket",
        "Service",
    )


def test_requires_loops_are_not_ordering_cycles() -> None:
    units = unit_map(
        service("a.service", requires=["b.service"]),
        service("b.service", requires=["a.service"]),
    )
    assert check_units(units) == []


def test_one_cycle_group_with_extra_members_names_them_all() -> None:
    # a <-> b and b <-> c: one tangle, reported once; its shortest cycle through a is a -> b -> a.
    units = unit_map(
        service("a.service", after=["b.service"]),
        service("b.service", after=["a.service", "c.service"]),
        service("c.service", after=["b.service"]),
    )
    diagnostic = only(check_units(units))
    assert diagnostic.message == (
        "a.service: ordering cycle: a.service -> b.service -> a.service"
        " (units also caught in this cycle: c.service)"
    )


def test_cycle_group_prefers_a_real_cycle_over_a_self_loop() -> None:
    units = unit_map(
        service("a.service", after=["a.service", "b.service"]),
        service("b.service", after=["a.service"]),
    )
    diagnostic = only(check_units(units))
    assert diagnostic.message.endswith("a.service -> b.service -> a.service")


# --- listen addresses ---


CONFLICTS = [
    # (first socket's listeners, second's, second's BindIPv6Only=ipv6-only, conflict?)
    ({"stream": ["8080"]}, {"stream": ["8080"]}, False, True),
    ({"stream": ["8080"]}, {"stream": ["0.0.0.0:8080"]}, False, True),
    ({"stream": ["8080"]}, {"stream": ["[::]:8080"]}, False, True),
    ({"stream": ["8080"]}, {"stream": ["127.0.0.1:8080"]}, False, True),
    ({"stream": ["8080"]}, {"stream": ["[::1]:8080"]}, False, True),
    ({"stream": ["0.0.0.0:8080"]}, {"stream": ["[::]:8080"]}, False, True),
    ({"stream": ["0.0.0.0:8080"]}, {"stream": ["[::]:8080"]}, True, False),
    ({"stream": ["0.0.0.0:8080"]}, {"stream": ["8080"]}, True, False),
    ({"stream": ["[::1]:8080"]}, {"stream": ["8080"]}, True, True),
    ({"stream": ["127.0.0.1:8080"]}, {"stream": ["127.0.0.1:8080"]}, False, True),
    ({"stream": ["127.0.0.1:8080"]}, {"stream": ["10.0.0.1:8080"]}, False, False),
    ({"stream": ["127.0.0.1:8080"]}, {"stream": ["[::1]:8080"]}, False, False),
    ({"stream": ["127.0.0.1:8080"]}, {"stream": ["[::ffff:127.0.0.1]:8080"]}, False, True),
    ({"stream": ["[::1]:8080"]}, {"stream": ["[0:0:0:0:0:0:0:1]:8080"]}, False, True),
    ({"stream": ["8080"]}, {"stream": ["8081"]}, False, False),
    ({"stream": ["8080"]}, {"datagram": ["8080"]}, False, False),
    ({"datagram": ["8080"]}, {"datagram": ["0.0.0.0:8080"]}, False, True),
    ({"stream": ["0"]}, {"stream": ["0"]}, False, False),
    ({"stream": ["/run/a.sock"]}, {"stream": ["/run/a.sock"]}, False, True),
    ({"stream": ["/run/a.sock"]}, {"datagram": ["/run//a.sock"]}, False, True),
    ({"stream": ["/run/a.sock"]}, {"stream": ["/run/b.sock"]}, False, False),
    ({"stream": ["@bus"]}, {"stream": ["@bus"]}, False, True),
    ({"stream": ["@bus"]}, {"datagram": ["@bus"]}, False, False),
    ({"stream": ["@bus"]}, {"stream": ["/bus"]}, False, False),
]


@pytest.mark.parametrize(("first", "second", "ipv6_only", "conflict"), CONFLICTS)
def test_listen_address_conflicts(
    first: dict[str, list[str]], second: dict[str, list[str]], ipv6_only: bool, conflict: bool
) -> None:
    units = unit_map(
        socket(
            "a.socket",
            activates="app.service",
            stream=first.get("stream", []),
            datagram=first.get("datagram", []),
        ),
        socket(
            "b.socket",
            activates="app.service",
            ipv6_only=ipv6_only,
            stream=second.get("stream", []),
            datagram=second.get("datagram", []),
        ),
        service("app.service"),
    )
    found = check_units(units)
    if not conflict:
        assert found == []
        return
    diagnostic = only(found)
    assert diagnostic.severity is Severity.ERROR
    assert diagnostic.path == "/u/b.socket"
    assert diagnostic.section == "Socket"
    assert diagnostic.directive in ("ListenStream", "ListenDatagram")
    assert diagnostic.line == LINES[diagnostic.directive]
    assert "/u/a.socket" in diagnostic.message and "b.socket" in diagnostic.message


def test_conflict_message_names_both_addresses_and_files() -> None:
    units = unit_map(
        socket("a.socket", stream=["8080"], activates="app.service"),
        socket("b.socket", stream=["0.0.0.0:8080"], activates="app.service"),
        service("app.service"),
    )
    assert only(check_units(units)).message == (
        "b.socket: ListenStream=0.0.0.0:8080 conflicts with ListenStream=8080 of a.socket "
        "(/u/a.socket): both would bind the same address"
    )


def test_one_socket_listening_twice_on_one_address() -> None:
    units = unit_map(socket("a.socket", stream=["8080", "0.0.0.0:8080"]), service("a.service"))
    diagnostic = only(check_units(units))
    assert "conflicts with its own ListenStream=8080" in diagnostic.message


def test_a_wildcard_conflicts_with_every_earlier_specific_address() -> None:
    units = unit_map(
        socket("a.socket", stream=["127.0.0.1:80"], activates="app.service"),
        socket("b.socket", stream=["10.0.0.1:80"], activates="app.service"),
        socket("c.socket", stream=["80"], activates="app.service"),
        service("app.service"),
    )
    found = check_units(units)
    assert len(found) == 2
    assert all(d.path == "/u/c.socket" for d in found)
    assert {"a.socket" in d.message for d in found} == {True, False}


# --- proxies ---


@pytest.mark.parametrize(
    ("listen", "target", "loops"),
    [
        ("8080", "127.0.0.1:8080", True),
        ("8080", "localhost:8080", True),
        ("8080", "[::1]:8080", True),
        ("8080", "127.0.0.2:8080", True),
        ("8080", "0.0.0.0:8080", True),
        ("127.0.0.1:8080", "127.0.0.1:8080", True),
        ("10.0.0.1:8080", "10.0.0.1:8080", True),
        ("0.0.0.0:8080", "[::1]:8080", False),
        ("127.0.0.1:8080", "127.0.0.2:8080", False),
        ("10.0.0.1:8080", "127.0.0.1:8080", False),
        ("8080", "127.0.0.1:18080", False),
        ("8080", "backend.internal:8080", False),
        ("/run/app.sock", "/run/app.sock", True),
        ("/run/app.sock", "/run/other.sock", False),
    ],
)
def test_proxy_target_on_a_public_address(listen: str, target: str, loops: bool) -> None:
    units = unit_map(
        socket("public.socket", stream=[listen], activates="other.service"),
        service("other.service"),
        socket("legacy.socket", stream=["9999"], proxy_target=target),
        service("legacy.service"),
    )
    found = check_units(units)
    if not loops:
        assert found == []
        return
    diagnostic = only(found)
    assert diagnostic.severity is Severity.ERROR
    assert (diagnostic.path, diagnostic.directive, diagnostic.line) == (
        "/u/legacy.socket",
        "ProxyTarget",
        LINES["ProxyTarget"],
    )
    assert "public.socket (/u/public.socket)" in diagnostic.message


def test_proxy_target_equal_to_its_own_listen_address() -> None:
    units = unit_map(
        socket("legacy.socket", stream=["8080"], proxy_target="127.0.0.1:8080"),
        service("legacy.service"),
    )
    diagnostic = only(check_units(units))
    assert diagnostic.message == (
        "legacy.socket: ProxyTarget=127.0.0.1:8080 is ListenStream=8080, its own public address: "
        "the proxy would connect to a socket cinit listens on instead of its service"
    )


def test_proxy_target_is_not_reached_by_a_datagram_listener() -> None:
    units = unit_map(
        socket("dns.socket", datagram=["8080"]),
        service("dns.service"),
        socket("legacy.socket", stream=["9999"], proxy_target="127.0.0.1:8080"),
        service("legacy.service"),
    )
    assert check_units(units) == []


# --- activation modes ---


def test_several_native_sockets_may_activate_one_service() -> None:
    units = unit_map(
        socket("http.socket", stream=["80"], activates="web.service"),
        socket("https.socket", stream=["443"], activates="web.service"),
        service("web.service"),
    )
    assert check_units(units) == []


def test_several_proxy_sockets_may_activate_one_service() -> None:
    units = unit_map(
        socket(
            "http.socket", stream=["80"], activates="web.service", proxy_target="127.0.0.1:8080"
        ),
        socket(
            "https.socket", stream=["443"], activates="web.service", proxy_target="127.0.0.1:8443"
        ),
        service("web.service"),
    )
    assert check_units(units) == []


def test_proxy_and_native_sockets_for_one_service_conflict() -> None:
    units = unit_map(
        socket("http.socket", stream=["80"], activates="web.service"),
        socket(
            "https.socket", stream=["443"], activates="web.service", proxy_target="127.0.0.1:8443"
        ),
        service("web.service"),
    )
    diagnostic = only(check_units(units))
    assert diagnostic.severity is Severity.ERROR
    assert (diagnostic.path, diagnostic.directive) == ("/u/https.socket", "ActivationMode")
    assert "http.socket" in diagnostic.message and "web.service" in diagnostic.message


def test_accept_with_proxy_is_an_error() -> None:
    units = unit_map(
        socket("legacy.socket", stream=["80"], accept=True, proxy_target="127.0.0.1:8080"),
        service("legacy.service"),
    )
    diagnostic = only(check_units(units))
    assert (diagnostic.severity, diagnostic.directive) == (Severity.ERROR, "Accept")
    assert diagnostic.line == LINES["Accept"]


def test_accept_yes_and_no_sockets_for_one_service_conflict() -> None:
    units = unit_map(
        socket("a.socket", stream=["80"], activates="web.service", accept=True),
        socket("b.socket", stream=["81"], activates="web.service"),
        service("web.service"),
    )
    diagnostic = only(check_units(units))
    assert (diagnostic.path, diagnostic.directive) == ("/u/a.socket", "Accept")
    assert "b.socket" in diagnostic.message


def test_accept_yes_alone_is_fine() -> None:
    units = unit_map(socket("a.socket", stream=["80"], accept=True), service("a.service"))
    assert check_units(units) == []


# --- restart policy ---


@pytest.mark.parametrize(
    ("type", "restart", "remain", "warned"),
    [
        (ServiceType.ONESHOT, RestartPolicy.ON_FAILURE, True, True),
        (ServiceType.ONESHOT, RestartPolicy.ALWAYS, True, True),
        (ServiceType.ONESHOT, RestartPolicy.NO, True, False),
        (ServiceType.ONESHOT, RestartPolicy.ON_FAILURE, False, False),
        (ServiceType.SIMPLE, RestartPolicy.ALWAYS, True, False),
    ],
)
def test_restart_on_a_remaining_oneshot(
    type: ServiceType, restart: RestartPolicy, remain: bool, warned: bool
) -> None:
    units = unit_map(service("init.service", type=type, restart=restart, remain_after_exit=remain))
    found = check_units(units)
    if not warned:
        assert found == []
        return
    diagnostic = only(found)
    assert diagnostic.severity is Severity.WARNING
    assert (diagnostic.section, diagnostic.directive, diagnostic.line) == (
        "Service",
        "Restart",
        LINES["Restart"],
    )
    assert f"Restart={restart.value}" in diagnostic.message


# --- the whole report ---


def test_diagnostics_are_sorted_by_file_and_line_and_graph_can_be_reused() -> None:
    units = unit_map(
        service("z.service", requires=["gone.service"], after=["gone.service"]),
        service("a.service", after=["a.service"], wants=["gone.service"]),
        socket("m.socket", stream=["80"]),
    )
    found = check_units(units)
    places = [(d.path, d.line or 0) for d in found]
    assert places == sorted(places)
    assert check_units(units, build_graph(units)) == found
    assert len(errors(found)) == 3 and not warnings(found)
    assert len([d for d in found if d.severity is Severity.HINT]) == 2


# --- properties ---

NAMES = [f"u{i}.service" for i in range(8)]


def _units_from_edges(count: int, edges: set[tuple[int, int, bool]]) -> dict[str, Unit]:
    """Units u0..u{count-1}; (i, j, via_after): i ordered after j, as After= or as Before=."""
    after: dict[int, list[str]] = {i: [] for i in range(count)}
    before: dict[int, list[str]] = {i: [] for i in range(count)}
    for later, earlier, via_after in edges:
        if via_after:
            after[later].append(NAMES[earlier])
        else:
            before[earlier].append(NAMES[later])
    return unit_map(*(service(NAMES[i], after=after[i], before=before[i]) for i in range(count)))


@st.composite
def dags(draw: st.DrawFn) -> tuple[int, set[tuple[int, int, bool]]]:
    count = draw(st.integers(1, len(NAMES)))
    rank = draw(st.permutations(range(count)))  # edges only go from higher to lower rank
    pairs = [(i, j) for i in range(count) for j in range(count) if rank[i] > rank[j]]
    chosen = draw(st.sets(st.sampled_from(pairs), max_size=20)) if pairs else set()
    return count, {(i, j, draw(st.booleans())) for i, j in chosen}


@st.composite
def graphs(draw: st.DrawFn) -> tuple[int, set[tuple[int, int, bool]]]:
    count = draw(st.integers(1, 6))
    edge = st.tuples(st.integers(0, count - 1), st.integers(0, count - 1), st.booleans())
    return count, draw(st.sets(edge, max_size=12))


@given(dags())
@settings(max_examples=200, deadline=None)
def test_start_order_and_levels_respect_every_edge_of_a_dag(
    dag: tuple[int, set[tuple[int, int, bool]]],
) -> None:
    count, edges = dag
    units = _units_from_edges(count, edges)
    graph = build_graph(units)
    order = graph.start_order()
    assert sorted(order) == sorted(units)
    position = {name: i for i, name in enumerate(order)}
    level_of = {name: i for i, level in enumerate(graph.start_levels()) for name in level}
    assert sorted(level_of) == sorted(units)
    for later, earlier, _ in edges:
        assert position[NAMES[earlier]] < position[NAMES[later]]
        assert level_of[NAMES[earlier]] < level_of[NAMES[later]]
    assert graph.stop_order() == list(reversed(order))
    assert check_units(units) == []


def _reach(count: int, edges: set[tuple[int, int, bool]]) -> list[set[int]]:
    """reach[i]: nodes reachable from i by one or more "ordered after" hops."""
    step = {i: {j for a, j, _ in edges if a == i} for i in range(count)}
    reach = []
    for start in range(count):
        seen: set[int] = set()
        todo = list(step[start])
        while todo:
            node = todo.pop()
            if node not in seen:
                seen.add(node)
                todo.extend(step[node])
        reach.append(seen)
    return reach


@given(graphs())
@settings(max_examples=300, deadline=None)
def test_cycles_are_reported_iff_they_exist(
    graph_spec: tuple[int, set[tuple[int, int, bool]]],
) -> None:
    count, edges = graph_spec
    units = _units_from_edges(count, edges)
    reach = _reach(count, edges)
    cyclic = {i for i in range(count) if i in reach[i]}
    # Groups: cyclic nodes that reach each other.
    groups = {frozenset(j for j in cyclic if j in reach[i] and i in reach[j]) for i in cyclic}
    reported = cycle_errors(check_units(units))
    assert len(reported) == len(groups)
    assert bool(reported) == bool(cyclic)
    pairs = {(NAMES[i], NAMES[j]) for i, j, _ in edges}
    named: set[str] = set()
    for diagnostic in reported:
        path = diagnostic.message.split("ordering cycle: ", 1)[1].split(" (", 1)[0].split(" -> ")
        assert path[0] == path[-1] and len(path) >= 2
        assert all(hop in pairs for hop in itertools.pairwise(path))
        named.update(path)
        if " (units also caught" in diagnostic.message:
            named.update(diagnostic.message.rsplit(": ", 1)[1].rstrip(")").split(", "))
    assert named == {NAMES[i] for i in cyclic}
    # Outside cycles, every edge is still respected by the start order.
    order = build_graph(units).start_order()
    position = {name: k for k, name in enumerate(order)}
    for later, earlier, _ in edges:
        if not (later in reach[earlier] and earlier in reach[later]):
            assert position[NAMES[earlier]] < position[NAMES[later]]
