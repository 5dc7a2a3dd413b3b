"""`cinit.units.frozen.Frozen`: the dataclass semantics the unit model and the machines'
messages rely on, with the generic `__init__` and with the one compiled after
COMPILE_AFTER instances alike; and the `Record` messages built on it."""

from __future__ import annotations

from typing import Any

import pytest

from cinit.machines.record import Record
from cinit.units import frozen
from cinit.units.frozen import Frozen, FrozenInstanceError, field


def make_classes() -> tuple[Any, Any]:
    class Point(Frozen):
        x: int
        y: int = 0
        tags: dict[str, int] = field(default_factory=dict, compare=False)

    class Handle(Frozen, eq=False):
        name: str

    return Point, Handle


@pytest.fixture(params=["generic", "compiled"])
def classes(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any]:
    point, handle = make_classes()
    if request.param == "compiled":
        monkeypatch.setattr(frozen, "COMPILE_AFTER", 3)
        for _ in range(3):
            point(0)
            handle("h")
        assert point.__init__ is not Frozen.__init__
        assert handle.__init__ is not Frozen.__init__
    return point, handle


def test_fields_by_position_and_keyword_with_defaults(classes: tuple[Any, Any]) -> None:
    Point, _ = classes
    assert Point(1) == Point(x=1, y=0)
    assert Point(1, 2).y == 2
    assert repr(Point(1, 2)) == "Point(x=1, y=2, tags={})"


def test_bad_construction_raises_type_error(classes: tuple[Any, Any]) -> None:
    Point, _ = classes
    with pytest.raises(TypeError, match="missing fields \\['x'\\]"):
        Point()
    with pytest.raises(TypeError, match="'z'"):
        Point(1, z=3)
    with pytest.raises(TypeError, match="multiple values"):
        Point(1, x=2)
    with pytest.raises(TypeError):
        Point(1, 2, {}, 4)


def test_equality_and_hash_follow_the_compared_fields(classes: tuple[Any, Any]) -> None:
    Point, _ = classes
    assert Point(1, 2, {"a": 1}) == Point(1, 2, {"b": 2})  # tags are not compared
    assert hash(Point(1, 2, {"a": 1})) == hash(Point(1, 2))
    assert Point(1) != Point(2)
    assert Point(1) != (1, 0)
    assert len({Point(1), Point(1), Point(2)}) == 2


def test_each_instance_gets_its_own_factory_default(classes: tuple[Any, Any]) -> None:
    Point, _ = classes
    first, second = Point(1), Point(1)
    first.tags["k"] = 1
    assert second.tags == {}


def test_instances_are_frozen(classes: tuple[Any, Any]) -> None:
    Point, _ = classes
    point = Point(1)
    with pytest.raises(FrozenInstanceError):
        point.x = 2
    with pytest.raises(FrozenInstanceError):
        del point.y
    assert point.x == 1


def test_replace_makes_a_changed_copy(classes: tuple[Any, Any]) -> None:
    Point, _ = classes
    point = Point(1, 2)
    moved = point.replace(y=5)
    assert (point.y, moved.y, moved.x) == (2, 5, 1)
    with pytest.raises(TypeError):
        point.replace(z=1)


def test_eq_false_keeps_identity(classes: tuple[Any, Any]) -> None:
    _, Handle = classes
    handle = Handle("a")
    assert handle == handle and handle != Handle("a")
    assert len({handle, Handle("a")}) == 2


def test_a_subclass_never_inherits_its_parent_s_compiled_init(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(frozen, "COMPILE_AFTER", 2)
    Point, _ = make_classes()

    class Labelled(Point):  # type: ignore[misc, valid-type]
        label: str = "?"

    Point(1), Point(2)  # compiled for Point's fields
    assert Labelled(1, label="a").label == "a"
    assert Labelled(1, 2, {}, "b") == Labelled(x=1, y=2, label="b")
    assert repr(Labelled(1)) == "Labelled(x=1, y=0, tags={}, label='?')"
    assert Labelled(1) != Point(1)


def test_an_instance_holds_only_what_it_was_given(classes: tuple[Any, Any]) -> None:
    Point, _ = classes
    assert Point(1).__dict__ == {"x": 1, "tags": {}}  # y: the class value is the default
    assert Point(1).y == 0


class Moved(Record):
    """A message: fields declared by annotations, in their positional order."""

    by: str
    to: int = 0


def test_records_are_values() -> None:
    assert Moved("a", to=2) == Moved("a", 2) == Moved(by="a", to=2)
    assert Moved("a") != Moved("b")
    assert hash(Moved("a", 1)) == hash(Moved("a", 1))
    assert Moved("a", 1).replace(to=3) == Moved("a", 3)
    assert repr(Moved("x", 1)) == "Moved(by='x', to=1)"


def test_a_record_refuses_assignment() -> None:
    moved = Moved("a")
    with pytest.raises(FrozenInstanceError):
        moved.to = 1  # type: ignore[misc]


def test_fields_written_as_slots_are_refused() -> None:
    with pytest.raises(TypeError, match="as annotations"):

        class Slotted(Record):
            __slots__ = ("by",)
