"""``@record``: a frozen dataclass whose ``__repr__``, ``__eq__`` and ``__hash__`` are shared.

llmdeploy's values (GPUs, models, engine tables, sizing reports, plans) are frozen
dataclasses. On CPython 3.11, ``@dataclass(frozen=True)`` writes six methods per class
as source text and compiles each with ``exec``; ``__repr__``, ``__eq__`` and
``__hash__`` grow with the number of fields. ``llmdeploy validate`` defines about sixty
such classes before it reads a spec, ~30 ms of a pre-commit hook's run
(``benchmarks/README.md``). ``@record`` lets :func:`dataclasses.dataclass` write only
``__init__`` and the frozen guards, and installs one shared implementation of the other
three with the same meaning as the generated ones: the repr lists the fields with
``repr=True``, equality holds between instances of the same class whose ``compare``
fields are equal, the hash covers the ``hash`` (else ``compare``) fields. Everything
else (``fields``, ``replace``, ``asdict``, pickling) is plain dataclasses.
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


@dataclass_transform(frozen_default=True, field_specifiers=(dataclasses.field, dataclasses.Field))
def record(cls: type[_T]) -> type[_T]:
    """``@dataclass(frozen=True)`` with shared ``__repr__``/``__eq__``/``__hash__``."""
    own = cls.__dict__
    out = dataclasses.dataclass(frozen=True, repr=False, eq=False)(cls)
    if "__repr__" not in own:
        out.__repr__ = _repr  # type: ignore[assignment]
    if "__eq__" not in own:
        out.__eq__ = _eq  # type: ignore[assignment,method-assign]
        if "__hash__" not in own:
            out.__hash__ = _hash  # type: ignore[assignment,method-assign]
    return out
