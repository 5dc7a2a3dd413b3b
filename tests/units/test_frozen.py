"""`cinit.units.frozen.Frozen`: the dataclass semantics the unit model relies on."""

from __future__ import annotations

import pytest

from cinit.units.frozen import Frozen, FrozenInstanceError, field


class Point(Frozen):
    x: int
    y: int = 0
    tags: dict[str, int] = field(default_factory=dict, compare=False)


class Handle(Frozen, eq=False):
    name: str


def test_fields_by_position_and_keyword_with_defaults() -> None:
    assert Point(1) == Point(x=1, y=0)
    assert Point(1, 2).y == 2
    assert repr(Point(1, 2)) == "Point(x=1, y=2, tags={})"


def test_bad_construction_names_the_problem() -> None:
    with pytest.raises(TypeError, match=r"missing fields \['x'\]"):
        Point()
    with pytest.raises(TypeError, match=r"unknown fields \['z'\]"):
        Point(1, z=3)
    with pytest.raises(TypeError, match="multiple values for 'x'"):
        Point(1, x=2)
    with pytest.raises(TypeError, match="takes 3 fields"):
        Point(1, 2, {}, 4)


def test_equality_and_hash_follow_the_compared_fields() -> None:
    assert Point(1, 2, {"a": 1}) == Point(1, 2, {"b": 2})  # tags are not compared
    assert hash(Point(1, 2, {"a": 1})) == hash(Point(1, 2))
    assert Point(1) != Point(2)
    assert Point(1) != (1, 0)
    assert len({Point(1), Point(1), Point(2)}) == 2


def test_each_instance_gets_its_own_factory_default() -> None:
    first, second = Point(1), Point(1)
    first.tags["k"] = 1
    assert second.tags == {}


def test_instances_are_frozen() -> None:
    point = Point(1)
    with pytest.raises(FrozenInstanceError):
        point.x = 2  # type: ignore[misc]
    with pytest.raises(FrozenInstanceError):
        del point.y  # type: ignore[misc]
    assert point.x == 1


def test_replace_makes_a_changed_copy() -> None:
    point = Point(1, 2)
    moved = point.replace(y=5)
    assert (point.y, moved.y, moved.x) == (2, 5, 1)
    with pytest.raises(TypeError):
        point.replace(z=1)


def test_eq_false_keeps_identity() -> None:
    handle = Handle("a")
    assert handle == handle and handle != Handle("a")
    assert len({handle, Handle("a")}) == 2
