"""The dependency graph's BindsTo=, PartOf=, Conflicts= and Requisite= relations, and the
checks on them (issue 15). Pure: units parsed from text."""

from __future__ import annotations

from cinit.machines.ordering import StartBook
from cinit.machines.unit_model import Outcome
from cinit.units import parse_unit
from cinit.units.cross_checks import check_units
from cinit.units.graph import build_graph
from cinit.units.model import Unit


def units(**texts: str) -> dict[str, Unit]:
    found = {}
    for stem, unit_lines in texts.items():
        name = f"{stem}.service"
        text = f"[Unit]\n{unit_lines}\n[Service]\nExecStart=/bin/true\n"
        unit, diagnostics = parse_unit(name, text, environ={})
        assert unit is not None, diagnostics
        found[name] = unit
    return found


def test_relations_and_what_a_stop_takes_along() -> None:
    graph = build_graph(
        units(
            db="",
            app="BindsTo=db.service",
            part="PartOf=db.service",
            needs="Requires=db.service",
            rival="Conflicts=db.service app.service",
            check="Requisite=db.service",
        )
    )
    assert graph.binds_to("app.service") == {"db.service"}
    assert graph.bound_by("db.service") == {"app.service"}
    assert graph.parts("db.service") == {"part.service"}
    assert graph.conflicts("db.service") == {"rival.service"}  # mutual
    assert graph.conflicts("rival.service") == {"db.service", "app.service"}
    assert graph.requisite("check.service") == {"db.service"}
    assert graph.stops_with("db.service") == {"app.service", "part.service", "needs.service"}
    assert graph.stops_with("part.service") == frozenset()  # PartOf= is one way
    assert graph.ordered_after("app.service") == frozenset()  # no ordering implied


def test_the_start_book_pulls_bound_units_in_and_holds_back_on_requisites() -> None:
    graph = build_graph(
        units(
            db="",
            app="BindsTo=db.service\nAfter=db.service",
            lone="Requisite=off.service\nAfter=off.service",
            off="",
        )
    )
    book = StartBook(graph)
    assert book.request(["app.service"]) == ["db.service", "app.service"]
    assert book.request(["lone.service"]) == ["lone.service"]  # off.service is not pulled in
    released = dict(book.releasable(active={"db.service"}))
    assert released == {"db.service": (), "lone.service": ("off.service",)}
    book.settle("db.service", Outcome.FAILED)
    assert dict(book.releasable()) == {"app.service": ("db.service",)}  # as Requires=


def test_binds_to_and_requisite_on_a_missing_service_are_errors_but_not_on_a_target() -> None:
    loaded = units(
        app="BindsTo=gone.service some.target\nRequisite=nope.service\nConflicts=x.service",
    )
    found = [d.message for d in check_units(loaded, build_graph(loaded))]
    assert found == [
        "app.service: BindsTo= names gone.service, which is not loaded",
        "app.service: Requisite= names nope.service, which is not loaded",
    ]


def test_a_target_named_only_by_binds_to_or_part_of_is_an_implicit_target() -> None:
    from cinit.units.targets import implicit_targets

    loaded = units(app="BindsTo=up.target", part="PartOf=group.target")
    assert sorted(implicit_targets(loaded)) == ["group.target", "up.target"]
    loaded.update(implicit_targets(loaded))
    graph = build_graph(loaded)
    assert graph.parts("group.target") == {"part.service"}
    assert graph.binds_to("app.service") == {"up.target"}
