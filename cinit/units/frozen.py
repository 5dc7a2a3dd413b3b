"""`Frozen`: immutable value classes declared by their annotations, without `dataclasses`.

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
"""

from __future__ import annotations

from collections.abc import Callable

TYPE_CHECKING = False  # not from typing: importing it costs PID 1 ~4 ms before its first exec
if TYPE_CHECKING:
    from typing import Any, ClassVar, Self, dataclass_transform
else:

    def dataclass_transform(**_options: Any) -> Callable[[type], type]:
        return lambda cls: cls


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


@dataclass_transform(frozen_default=True, field_specifiers=(field,))
class Frozen:
    """Base of immutable value classes (see the module docstring)."""

    # Set on each subclass by __init_subclass__: field names in order, the compared
    # ones, constant defaults, and (name, factory) pairs.
    _fields: ClassVar[tuple[str, ...]] = ()
    _field_set: ClassVar[frozenset[str]] = frozenset()
    _compared: ClassVar[tuple[str, ...]] = ()
    _defaults: ClassVar[dict[str, Any]] = {}
    _factories: ClassVar[tuple[tuple[str, Callable[[], Any]], ...]] = ()

    def __init_subclass__(cls, *, eq: bool = True, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        fields: list[str] = list(cls._fields)
        compared: list[str] = list(cls._compared)
        defaults = dict(cls._defaults)
        factories = list(cls._factories)
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
            elif value is not _NO_DEFAULT:
                defaults[name] = value
        cls._fields = tuple(fields)
        cls._field_set = frozenset(fields)
        cls._compared = tuple(compared)
        cls._defaults = defaults
        cls._factories = tuple(factories)
        if not eq:  # identity, as a dataclass with eq=False
            cls.__eq__ = object.__eq__  # type: ignore[method-assign]
            cls.__hash__ = object.__hash__  # type: ignore[method-assign]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        cls = type(self)
        if args:
            if len(args) > len(cls._fields):
                raise TypeError(
                    f"{cls.__name__}() takes {len(cls._fields)} fields, got {len(args)}"
                )
            for name, value in zip(cls._fields, args, strict=False):
                if name in kwargs:
                    raise TypeError(f"{cls.__name__}() got multiple values for {name!r}")
                kwargs[name] = value
        values = {**cls._defaults, **kwargs}
        for name, make in cls._factories:
            if name not in kwargs:
                values[name] = make()
        if values.keys() != cls._field_set:
            unknown = sorted(set(values) - cls._field_set)
            missing = [name for name in cls._fields if name not in values]
            what = f"unknown fields {unknown}" if unknown else f"missing fields {missing}"
            raise TypeError(f"{cls.__name__}(): {what}")
        self.__dict__.update(values)

    def _key(self) -> tuple[Any, ...]:
        values = self.__dict__
        return tuple([values[name] for name in self._compared])

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        values = self.__dict__
        shown = ", ".join(f"{name}={values[name]!r}" for name in self._fields)
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
