"""`Frozen`: the one value-class base of the boot path (the unit model, the machines'
models, their events and actions), declared by annotations, without `dataclasses`.

A dataclass compiles its methods with `exec` when its class is defined (about a
millisecond for a frozen one here), and importing `dataclasses` pulls in `inspect` (~9 ms).
PID 1 defines the unit model's classes on every container start, before its first service
runs: that alone cost ~20 ms. A `Frozen` subclass costs what any class costs to define.

Its fields are its annotations, in order (inherited ones first); a class value is the
field's default, `field(default_factory=..., compare=...)` gives a fresh default per
instance or leaves a field out of equality and hash. Instances are built by keyword or
position, compare and hash by their fields, print like dataclasses, and refuse assignment
(`FrozenInstanceError`); `replace(**changes)` makes a changed copy. Type checkers see a
frozen dataclass (`dataclass_transform`).

A class starts with a generic `__init__`; once it has built COMPILE_AFTER instances (a
thousand-unit `cinit validate`, never a container's boot), it gets one compiled for its
own fields, as a dataclass has from the start: 2-3x faster per instance.

Fields live in the instance's `__dict__`, not in `__slots__`: an instance then holds only
the fields it was given (a 40-field section built from three directives writes three),
and `__init__` and `replace` are one dict update. Slots, written one `object.__setattr__`
at a time and every default included, made building and replacing 3-10x slower.

Fields are declared as annotations only: a subclass that writes its own `__slots__` is
refused when it is defined.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import attrgetter  # imported by collections already: free

from cinit.boot_path import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any, ClassVar, Self, TypeVar, dataclass_transform
else:

    def dataclass_transform(**_options: Any) -> Callable[[type], type]:
        return lambda cls: cls


COMPILE_AFTER = 200  # instances a class builds generically before its __init__ is compiled


class FrozenInstanceError(AttributeError):
    """An assignment to a field of a `Frozen` instance."""


class _Field:
    __slots__ = ("compare", "default_factory")

    def __init__(self, default_factory: Callable[[], Any] | None, compare: bool) -> None:
        self.default_factory = default_factory
        self.compare = compare


def field(*, default_factory: Callable[[], Any] | None = None, compare: bool = True) -> Any:
    """A field with a default made per instance, or left out of equality and hash."""
    return _Field(default_factory, compare)


class _Spec:
    """What the base knows of one class: field names in order, the compared ones (and a
    reader of them), the ones without a default, (name, factory) pairs, whether the class
    and how many instances the generic `__init__` built. One
    object per class: a class attribute written once, and a counter that is not one."""

    __slots__ = (
        "built",
        "compared",
        "factories",
        "field_set",
        "fields",
        "key",
        "required",
    )

    def __init__(
        self,
        fields: tuple[str, ...],
        compared: tuple[str, ...],
        required: frozenset[str],
        factories: tuple[tuple[str, Callable[[], Any]], ...],
    ) -> None:
        self.fields = fields
        self.field_set = frozenset(fields)
        self.compared = compared
        self.key = _reader(compared)
        self.required = required
        self.factories = factories
        self.built = 0


@dataclass_transform(frozen_default=True, field_specifiers=(field,))
class Frozen:
    """Base of immutable value classes (see the module docstring)."""

    __slots__ = ()  # the fields live in each subclass's instance __dict__

    # Set on each subclass by __init_subclass__. A constant default stays a class value:
    # an instance holds only what it was given.
    _spec: ClassVar[_Spec]

    def __init_subclass__(cls, *, eq: bool = True, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("__slots__"):
            raise TypeError(f"{cls.__name__}: declare Frozen fields as annotations, not __slots__")
        cls._spec = cls._declared_spec(_parent_spec(cls))
        if "__init__" not in cls.__dict__ and (
            cls.__init__ is Frozen.__init__ or cls.__init__ in _COMPILED
        ):
            # Its own reference: a parent's __init__ may be compiled for the parent's fields.
            cls.__init__ = Frozen.__init__  # type: ignore[method-assign]
        if not eq:  # identity, as a dataclass with eq=False
            cls.__eq__ = object.__eq__  # type: ignore[method-assign]
            cls.__hash__ = object.__hash__  # type: ignore[method-assign]

    @classmethod
    def _declared_spec(cls, parent: _Spec) -> _Spec:
        """Fields from the class's own annotations, after the inherited ones."""
        fields: list[str] = list(parent.fields)
        compared: list[str] = list(parent.compared)
        required = set(parent.required)
        factories = list(parent.factories)
        # Not inspect.get_annotations: importing inspect is what made dataclasses slow.
        for name in cls.__dict__.get("__annotations__", {}):  # noqa: RUF063
            if name in fields:
                continue
            fields.append(name)
            value = cls.__dict__.get(name, _NO_DEFAULT)
            spec = value if isinstance(value, _Field) else None
            if spec is None or spec.compare:
                compared.append(name)
            if spec is not None:
                delattr(cls, name)  # not a class value: each instance has its own
                if spec.default_factory is not None:
                    factories.append((name, spec.default_factory))
                else:
                    required.add(name)
            elif value is _NO_DEFAULT:
                required.add(name)
        return _Spec(tuple(fields), tuple(compared), frozenset(required), tuple(factories))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Hot: the loader builds ~10 of these per unit file. Dict operations in C only.
        cls = type(self)
        spec = cls._spec
        spec.built += 1
        if spec.built == COMPILE_AFTER:
            cls.__init__ = _compiled_init(cls)  # type: ignore[method-assign]
        if args:
            if kwargs or len(args) > len(spec.fields):
                kwargs = cls._merge_positional(args, kwargs)
            else:
                kwargs = dict(zip(spec.fields, args))  # noqa: B905 - at most as many args
        given = kwargs.keys()
        if not (spec.required <= given <= spec.field_set):
            unknown = sorted(given - spec.field_set)
            missing = [name for name in spec.fields if name in spec.required - given]
            what = f"unknown fields {unknown}" if unknown else f"missing fields {missing}"
            raise TypeError(f"{cls.__name__}(): {what}")
        values = self.__dict__
        values.update(kwargs)
        for name, make in spec.factories:
            if name not in kwargs:
                values[name] = make()

    @classmethod
    def _merge_positional(cls, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        fields = cls._spec.fields
        if len(args) > len(fields):
            raise TypeError(f"{cls.__name__}() takes {len(fields)} fields, got {len(args)}")
        merged = dict(zip(fields, args, strict=False))
        if kwargs:
            for name in merged.keys() & kwargs.keys():
                raise TypeError(f"{cls.__name__}() got multiple values for {name!r}")
            merged.update(kwargs)
        return merged

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        key = type(self)._spec.key
        return key(self) == key(other)

    def __hash__(self) -> int:
        return hash(type(self)._spec.key(self))

    def __repr__(self) -> str:
        fields = type(self)._spec.fields
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in fields)
        return f"{type(self).__name__}({shown})"

    def __setattr__(self, name: str, value: Any) -> None:
        raise FrozenInstanceError(
            f"cannot assign to field {name!r}: {type(self).__name__} is frozen"
        )

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}: {type(self).__name__} is frozen")

    def replace(self, **changes: Any) -> Self:
        """A copy with `changes` applied (as `dataclasses.replace`)."""
        return type(self)(**{**self.__dict__, **changes})


_NO_DEFAULT = object()
_COMPILED: set[Callable[..., None]] = set()  # every __init__ _compiled_init made


def _reader(names: tuple[str, ...]) -> Callable[[Frozen], tuple[Any, ...]]:
    """Reads `names` off an instance as a tuple, in C (attrgetter gives one name bare)."""
    if len(names) > 1:
        return attrgetter(*names)
    if names:
        read_one = attrgetter(names[0])
        return lambda value: (read_one(value),)
    return lambda _value: ()


def _compiled_init(cls: type[Frozen]) -> Callable[..., None]:
    """An `__init__` for `cls`'s own fields, with the generic one's behaviour: a value not
    given stays out of the instance (the class value is the default) or comes from its
    factory; a required one missing raises TypeError, as Python does for unknown names."""
    namespace: dict[str, Any] = {"_unset": _NO_DEFAULT, "_TypeError": TypeError}
    reserved = {"__self", "__values", *namespace}
    spec = cls._spec
    if any(name in reserved or name.startswith("_make") for name in spec.fields):
        return Frozen.__init__  # a field named like the generated code's own names
    lines = []
    for index, name in enumerate(spec.fields):
        lines.append(f"    if {name} is not _unset: __values[{name!r}] = {name}")
        if name in spec.required:
            message = f"{cls.__name__}(): missing fields [{name!r}]"
            lines.append(f"    else: raise _TypeError({message!r})")
        for factory_name, make in spec.factories:
            if factory_name == name:
                namespace[f"_make{index}"] = make
                lines.append(f"    else: __values[{name!r}] = _make{index}()")
    params = ", ".join(f"{name}=_unset" for name in spec.fields)
    source = f"def __init__(__self, {params}):\n    __values = __self.__dict__\n"
    source += "\n".join(lines) + "\n"
    exec(source, namespace)  # the class's own field names: identifiers, checked above
    init: Callable[..., None] = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    _COMPILED.add(init)
    return init


def _parent_spec(cls: type[Frozen]) -> _Spec:
    """The spec of the nearest class above `cls` that has one (Frozen at the latest)."""
    for base in cls.__mro__[1:]:
        if "_spec" in base.__dict__:
            return base._spec  # type: ignore[attr-defined, no-any-return]
    raise TypeError(f"{cls.__name__} is not a Frozen class")


Frozen._spec = _Spec((), (), frozenset(), ())  # no fields


# ---- string enums, defined at a third of the cost ----------------------------------------
#
# Python 3.11 builds an Enum member by member through its metaclass (~35 us a member, ~0.4
# ms for a ten-member class); the boot path defines twenty of them before the first exec.
# `quick_enum` builds the very same StrEnum from a plain class in one pass, with the
# standard library's own builder (`enum._simple_enum`, used by `re`, `signal`, `http`):
#
#     @quick_enum
#     class Severity(QuickStrEnum):
#         ERROR = "error"
#
# Type checkers see a StrEnum subclass and an identity decorator. tests/units/
# test_quick_enum.py holds every such class equal to the one `class X(StrEnum)` makes
# (`enum._test_simple_enum`). Members are plain string values (no `auto()`); methods and
# properties stay methods and properties.

if TYPE_CHECKING:
    from enum import StrEnum

    QuickStrEnum = StrEnum

    _E = TypeVar("_E", bound=type[QuickStrEnum])

    def quick_enum(cls: _E) -> _E:
        """The StrEnum `cls` declares (identity for type checkers)."""
        return cls

else:
    QuickStrEnum = object  # the body of a plain class: no metaclass runs per member

    def quick_enum(cls: type) -> type:
        """The StrEnum `cls` declares: what `class X(StrEnum)` with the same body makes."""
        from enum import StrEnum

        try:
            from enum import _simple_enum
        except ImportError:  # a Python without it: the metaclass's way, same result
            import types

            body = {k: v for k, v in cls.__dict__.items() if k not in ("__dict__", "__weakref__")}
            made = types.new_class(cls.__name__, (StrEnum,), exec_body=lambda ns: ns.update(body))
            made.__qualname__ = cls.__qualname__
            return made
        return _simple_enum(StrEnum)(cls)
