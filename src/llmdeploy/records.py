"""``@record``: a frozen dataclass whose generated methods are shared functions.

llmdeploy's values (GPUs, models, engine tables, sizing reports, plans) are frozen
dataclasses. On CPython 3.11, ``@dataclass(frozen=True)`` writes six methods per class
(``__init__``, ``__repr__``, ``__eq__``, ``__hash__``, ``__setattr__``, ``__delattr__``) as
source text and compiles each with ``exec``: ~0.35 ms per class, and ``llmdeploy
validate`` defines about sixty before it reads a spec (``benchmarks/README.md``).
``@record`` lets :func:`dataclasses.dataclass` only collect the fields and installs one
shared implementation of each method, with the generated ones' meaning: ``__init__``
binds positional and keyword arguments in field order, applies defaults and default
factories and raises the same TypeErrors; the instance is frozen
(``FrozenInstanceError`` on assignment and deletion); the repr lists the ``repr=True``
fields; equality holds between instances of the same class whose ``compare`` fields are
equal; the hash covers the ``hash`` (else ``compare``) fields. ``fields``, ``replace``,
``asdict``, copying and pickling are plain dataclasses. A record has plain fields only
(no ``init=False``, ``kw_only``, ``InitVar`` or ``__post_init__``);
``tests/unit/test_records.py`` compares it with ``@dataclass(frozen=True)``.
"""

from __future__ import annotations

import dataclasses
import reprlib
import sys
from typing import Any, TypeVar

if sys.version_info >= (3, 11):
    from typing import dataclass_transform
else:  # pragma: no cover
    from typing_extensions import dataclass_transform

_T = TypeVar("_T")

# @record reads one private name of ``dataclasses`` (how an InitVar pseudo-field is marked).
# On an interpreter whose ``dataclasses`` lacks it, @record is plain
# ``@dataclass(frozen=True)``: slower to define, identical in meaning.
_SHARED_METHODS = hasattr(dataclasses, "_FIELD_INITVAR")
# class -> (repr field names, compare field names, hash field names)
_NAMES: dict[type, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {}


def _names(cls: type) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    names = _NAMES.get(cls)
    if names is None:
        fields = dataclasses.fields(cls)
        names = (
            tuple(f.name for f in fields if f.repr),
            tuple(f.name for f in fields if f.compare),
            tuple(f.name for f in fields if (f.compare if f.hash is None else f.hash)),
        )
        _NAMES[cls] = names
    return names


@reprlib.recursive_repr()
def _repr(self: Any) -> str:
    cls = self.__class__
    return f"{cls.__qualname__}(" + ", ".join(f"{n}={getattr(self, n)!r}" for n in _names(cls)[0]) + ")"


def _eq(self: Any, other: object) -> bool:
    if other.__class__ is not self.__class__:
        return NotImplemented
    names = _names(self.__class__)[1]
    return tuple(getattr(self, n) for n in names) == tuple(getattr(other, n) for n in names)


def _hash(self: Any) -> int:
    return hash(tuple(getattr(self, n) for n in _names(self.__class__)[2]))


# class -> (init field names, their positions, defaults: name -> (is_factory, value))
_INIT: dict[type, tuple[tuple[str, ...], dict[str, int], dict[str, tuple[bool, Any]]]] = {}


def _init_plan(cls: type) -> tuple[tuple[str, ...], dict[str, int], dict[str, tuple[bool, Any]]]:
    plan = _INIT.get(cls)
    if plan is None:
        fields = dataclasses.fields(cls)
        names = tuple(f.name for f in fields)
        defaults: dict[str, tuple[bool, Any]] = {}
        for f in fields:
            if f.default is not dataclasses.MISSING:
                defaults[f.name] = (False, f.default)
            elif f.default_factory is not dataclasses.MISSING:
                defaults[f.name] = (True, f.default_factory)
        plan = (names, {n: i for i, n in enumerate(names)}, defaults)
        _INIT[cls] = plan
    return plan


def _init(self: Any, *args: Any, **kwargs: Any) -> None:
    cls = self.__class__
    plan = _INIT.get(cls)
    names, position, defaults = plan if plan is not None else _init_plan(cls)
    given = len(args)
    # The instance's own namespace, written directly: what object.__setattr__ does for a
    # record's plain fields, without a call per field (``plan`` creates ~15,000 records).
    values = self.__dict__
    if given:
        if given > len(names):
            raise TypeError(f"{cls.__qualname__}.__init__() takes {len(names) + 1} positional arguments "
                            f"but {given + 1} were given")
        values.update(zip(names, args, strict=False))
    if kwargs:
        if given or not kwargs.keys() <= position.keys():
            for name in kwargs:
                at = position.get(name)
                if at is None:
                    raise TypeError(f"{cls.__qualname__}.__init__() got an unexpected keyword argument {name!r}")
                if at < given:
                    raise TypeError(f"{cls.__qualname__}.__init__() got multiple values for argument {name!r}")
        values.update(kwargs)
    if given + len(kwargs) < len(names):
        for name in names[given:]:
            if name not in kwargs:
                default = defaults.get(name)
                if default is None:
                    raise TypeError(f"{cls.__qualname__}.__init__() missing 1 required argument: {name!r}")
                values[name] = default[1]() if default[0] else default[1]


def _frozen_setattr(self: Any, name: str, value: object) -> None:
    raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")


def _frozen_delattr(self: Any, name: str) -> None:
    raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")


@dataclass_transform(frozen_default=True, field_specifiers=(dataclasses.field, dataclasses.Field))
def record(cls: type[_T]) -> type[_T]:
    """``@dataclass(frozen=True)`` with shared methods (see the module's docstring)."""
    if not _SHARED_METHODS:
        return dataclasses.dataclass(frozen=True)(cls)
    own = cls.__dict__
    if any(k in own for k in ("__init__", "__post_init__", "__setattr__", "__delattr__")):
        raise TypeError(f"{cls.__qualname__}: a record takes the shared __init__ and frozen guards")
    if not own.get("__doc__"):
        # What dataclass would write, without the inspect.signature() call it makes for it
        # (for a class with no __init__ of its own that parses object's text signature).
        cls.__doc__ = f"{cls.__name__}({', '.join(cls.__dict__.get('__annotations__', {}))})"
    out = dataclasses.dataclass(init=False, repr=False, eq=False)(cls)
    initvar = dataclasses._FIELD_INITVAR  # type: ignore[attr-defined]
    if any(f.kw_only or not f.init for f in dataclasses.fields(out)) or \
            any(getattr(f, "_field_type", None) is initvar for f in out.__dataclass_fields__.values()):
        raise TypeError(f"{cls.__qualname__}: a record has plain fields only (no init=False, kw_only, InitVar)")
    out.__init__ = _init  # type: ignore[misc]
    out.__setattr__ = _frozen_setattr  # type: ignore[assignment,method-assign]
    out.__delattr__ = _frozen_delattr  # type: ignore[assignment,method-assign]
    if "__repr__" not in own:
        out.__repr__ = _repr  # type: ignore[assignment]
    if "__eq__" not in own:
        out.__eq__ = _eq  # type: ignore[assignment,method-assign]
        if "__hash__" not in own:
            out.__hash__ = _hash  # type: ignore[assignment,method-assign]
    return out
