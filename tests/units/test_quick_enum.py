"""`quick_enum` (cinit.units.frozen): every string enum it builds is the StrEnum that
`class X(StrEnum)` with the same body makes (the standard library's own check,
`enum._test_simple_enum`, compares members, values, methods and attributes)."""

from __future__ import annotations

import ast
import enum
import importlib
import inspect
from enum import StrEnum
from pathlib import Path

import pytest

from cinit.units import frozen
from cinit.units.frozen import QuickStrEnum, quick_enum

MODULES = (
    "cinit.units.model",
    "cinit.units.diagnostics",
    "cinit.machines.unit_model",
    "cinit.machines.restart",
    "cinit.machines.lifecycle",
)


def quick_enums() -> list[tuple[str, str]]:
    """(module, class) of every `@quick_enum` class in the modules above."""
    found = []
    for name in MODULES:
        tree = ast.parse(Path(importlib.import_module(name).__file__ or "").read_text())
        for node in tree.body:
            if isinstance(node, ast.ClassDef) and any(
                isinstance(d, ast.Name) and d.id == "quick_enum" for d in node.decorator_list
            ):
                found.append((name, node.name))
    return found


def as_class_statement(module: str, name: str) -> type[StrEnum]:
    """The class as `class X(StrEnum)` would define it, from its own source."""
    source = inspect.getsource(getattr(importlib.import_module(module), name))
    source = source.replace("@quick_enum\n", "").replace("(QuickStrEnum):", "(StrEnum):", 1)
    namespace: dict[str, object] = {"StrEnum": StrEnum, "__name__": module}
    exec(compile(source, module, "exec"), namespace)
    made = namespace[name]
    assert isinstance(made, type) and issubclass(made, StrEnum)
    return made


def test_the_boot_path_enums_are_built_by_quick_enum() -> None:
    assert len(quick_enums()) >= 19  # the model's, the diagnostics' and the machines'


@pytest.mark.parametrize(("module", "name"), quick_enums())
def test_a_quick_enum_equals_its_class_statement(module: str, name: str) -> None:
    quick = getattr(importlib.import_module(module), name)
    assert issubclass(quick, StrEnum) and quick.__module__ == module
    enum._test_simple_enum(as_class_statement(module, name), quick)  # type: ignore[attr-defined]


def test_members_methods_and_lookups_behave_as_a_str_enum() -> None:
    @quick_enum
    class Colour(QuickStrEnum):
        """Colours."""

        RED = "red"
        DARK_BLUE = "dark-blue"
        NONE = ""

        @property
        def loud(self) -> str:
            return self.value.upper()

    assert list(Colour) == [Colour.RED, Colour.DARK_BLUE, Colour.NONE]
    assert Colour("dark-blue") is Colour.DARK_BLUE and Colour.DARK_BLUE.loud == "DARK-BLUE"
    assert "red" in {Colour.RED} and f"{Colour.RED}" == "red" and str(Colour.NONE) == ""
    assert repr(Colour.RED) == "<Colour.RED: 'red'>" and Colour.__doc__ == "Colours."
    with pytest.raises(ValueError, match="'green' is not a valid"):
        Colour("green")


def test_without_the_fast_builder_the_metaclass_builds_the_same(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delattr(enum, "_simple_enum")

    @frozen.quick_enum
    class Kind(QuickStrEnum):
        A = "a"
        B = "b"

        def twice(self) -> str:
            return self.value * 2

    class Reference(StrEnum):
        A = "a"
        B = "b"

        def twice(self) -> str:
            return self.value * 2

    assert issubclass(Kind, StrEnum) and Kind.B.twice() == "bb" and Kind("a") is Kind.A
    assert [(m.name, m.value) for m in Kind] == [(m.name, m.value) for m in Reference]
