"""``@record`` behaves like ``@dataclass(frozen=True)``: same repr, equality, hash, immutability."""

from __future__ import annotations

import dataclasses
import pickle
from collections.abc import Mapping

import pytest

from llmdeploy.records import record


def _pair():  # type: ignore[no-untyped-def]
    """The same class body as a record and as a frozen dataclass."""

    def body(decorate):  # type: ignore[no-untyped-def]
        class Point:
            x: int
            y: float = 1.5
            tags: tuple[str, ...] = ()
            note: str = dataclasses.field(default="", repr=False)
            cache: Mapping[str, int] = dataclasses.field(default_factory=dict, compare=False, hash=False)
            weight: int = dataclasses.field(default=0, hash=False)

            def norm(self) -> float:
                return abs(self.x) + abs(self.y)

        return decorate(Point)

    return body(record), body(dataclasses.dataclass(frozen=True))


def test_repr_matches_dataclass() -> None:
    rec, dc = _pair()
    assert repr(rec(1, 2.0, ("a",), "hidden", {"k": 1})) == repr(dc(1, 2.0, ("a",), "hidden", {"k": 1}))
    assert "note" not in repr(rec(1))


def test_equality_and_hash_match_dataclass() -> None:
    rec, dc = _pair()
    for cls in (rec, dc):
        a, b = cls(1, 2.0, ("a",), "n1", {"k": 1}, 5), cls(1, 2.0, ("a",), "n2", {"other": 2}, 5)
        assert (a == b) is False  # note differs and is compared
        c = cls(1, 2.0, ("a",), "n1", {"other": 2}, 7)
        assert (a == c) is False  # weight is compared (only left out of the hash)
        d = cls(1, 2.0, ("a",), "n1", {"other": 2}, 5)
        assert a == d and hash(a) == hash(d)  # cache is neither compared nor hashed
        assert hash(a) == hash(cls(1, 2.0, ("a",), "n1", {}, 99))  # weight not hashed
        assert a != (1, 2.0, ("a",), "n1", {}, 5)
        assert a.__eq__(object()) is NotImplemented
    assert hash(rec(3, 4.0)) == hash(dc(3, 4.0))


def test_instances_of_different_records_are_never_equal() -> None:
    rec, _ = _pair()
    other, _ = _pair()
    assert rec(1) != other(1)


def test_frozen_and_dataclass_helpers() -> None:
    rec, _ = _pair()
    p = rec(1, tags=("a",))
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.x = 2  # type: ignore[misc]
    q = dataclasses.replace(p, x=5)
    assert (q.x, q.tags, p.x) == (5, ("a",), 1)
    assert dataclasses.asdict(p)["tags"] == ("a",)
    assert [f.name for f in dataclasses.fields(p)] == ["x", "y", "tags", "note", "cache", "weight"]
    assert p.norm() == 2.5


@record
class Module:  # pickling needs a module-level class
    name: str
    size: int = 0


@record
class Child(Module):
    extra: str = "x"


def test_pickle_and_subclasses() -> None:
    m = Module("a", 2)
    assert pickle.loads(pickle.dumps(m)) == m
    c = Child("a", 2, "y")
    assert repr(c) == "Child(name='a', size=2, extra='y')"
    assert c != Module("a", 2) and Module("a", 2) != c
    assert hash(c) == hash(("a", 2, "y"))


def test_own_methods_are_kept() -> None:
    @record
    class Named:
        name: str

        def __repr__(self) -> str:
            return f"<{self.name}>"

        def __eq__(self, other: object) -> bool:
            return isinstance(other, Named) and other.name.lower() == self.name.lower()

        def __hash__(self) -> int:
            return hash(self.name.lower())

    assert repr(Named("A")) == "<A>"
    assert Named("A") == Named("a") and hash(Named("A")) == hash(Named("a"))


def test_init_binds_like_a_dataclass() -> None:
    rec, dc = _pair()
    for cls in (rec, dc):
        p = cls(1, tags=("t",))
        assert (p.x, p.y, p.tags, p.note, p.cache, p.weight) == (1, 1.5, ("t",), "", {}, 0)
        assert cls(1).cache is not cls(1).cache  # a fresh default_factory value each time
        every = {"x": 3, "y": 2.0, "tags": ("a",), "note": "n", "cache": {"k": 1}, "weight": 4}
        assert dataclasses.asdict(cls(**every)) == every
        assert dataclasses.asdict(cls(3, 2.0, ("a",), note="n", cache={"k": 1}, weight=4)) == every
        assert cls(x=5).y == 1.5 and cls(x=5) == cls(5)
        for args, kwargs, message in [
            ((), {}, "missing 1 required"),
            ((1,), {"x": 2}, "multiple values for argument"),
            ((1,), {"nope": 2}, "unexpected keyword argument"),
            ((), {"x": 1, "nope": 2}, "unexpected keyword argument"),  # keywords only
            ((), {"y": 2.0}, "missing 1 required"),
            ((1, 2.0, (), "", {}, 0, "extra"), {}, "positional arguments but 8 were given"),
        ]:
            with pytest.raises(TypeError, match=message):
                cls(*args, **kwargs)


def test_frozen_against_set_and_delete() -> None:
    rec, _ = _pair()
    p = rec(1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.y = 2.0  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del p.x  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.new_attribute = 1  # type: ignore[attr-defined]


def test_what_a_record_refuses() -> None:
    with pytest.raises(TypeError, match="plain fields only"):
        @record
        class NotInit:
            a: int = dataclasses.field(default=0, init=False)

    with pytest.raises(TypeError, match="plain fields only"):
        @record
        class KwOnly:
            a: int = dataclasses.field(default=0, kw_only=True)

    with pytest.raises(TypeError, match="shared __init__"):
        @record
        class PostInit:
            a: int

            def __post_init__(self) -> None:
                pass


def test_initvar_is_refused() -> None:
    with pytest.raises(TypeError, match="plain fields only"):
        @record
        class WithInitVar:
            a: int
            scratch: dataclasses.InitVar[int] = 0


def test_without_the_private_dataclasses_name_a_record_is_a_frozen_dataclass(monkeypatch: pytest.MonkeyPatch) -> None:
    """A CPython whose ``dataclasses`` lacks ``_FIELD_INITVAR`` gets ``@dataclass(frozen=True)`` itself."""
    import dataclasses

    from llmdeploy import records

    monkeypatch.setattr(records, "_SHARED_METHODS", False)

    @records.record
    class Point:
        """A point."""

        x: int
        y: int = 2

    p = Point(1)
    assert (p.x, p.y) == (1, 2) and p == Point(1, 2) and hash(p) == hash(Point(1, 2))
    assert Point.__init__ is not records._init and Point.__setattr__ is not records._frozen_setattr
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.x = 3  # type: ignore[misc]
