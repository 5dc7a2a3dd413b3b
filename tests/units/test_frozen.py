"""`cinit.units.frozen.Frozen`: the dataclass semantics the unit model and the machines'
messages rely on, with the generic `__init__` and with the one compiled after
COMPILE_AFTER instances alike; and `Record` subclasses that still write their slots."""

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
    """A record written the old way: its own slots and __init__."""

    __slots__ = ("to", "by")  # noqa: RUF023 - out of order on purpose: repr follows it

    def __init__(self, by: str, to: int = 0) -> None:
        self.by = by
        self.to = to


class Converted(Record):
    """The same record declared by annotations."""

    by: str
    to: int = 0


@pytest.mark.parametrize("record", [Moved, Converted])
def test_records_hand_written_or_declared_are_values(record: Any) -> None:
    assert record("a", to=2) == record("a", 2) == record(by="a", to=2)
    assert record("a") != record("b")
    assert hash(record("a", 1)) == hash(record("a", 1))
    assert record("a", 1).replace(to=3) == record("a", 3)


def test_a_hand_written_record_has_no_dict_and_may_assign_its_slots() -> None:
    moved = Moved("a")
    assert not hasattr(moved, "__dict__")
    with pytest.raises(AttributeError):
        moved.elsewhere = 1  # type: ignore[attr-defined]


def test_a_hand_written_record_keeps_its_slot_order_in_repr() -> None:
    assert repr(Moved("x", 1)) == "Moved(to=1, by='x')"
    assert repr(Converted("x", 1)) == "Converted(by='x', to=1)"
