"""Loading an engine table (``vllm.yaml``, ``tgi.yaml``, ``tensorrt-llm.yaml`` next to this file) into typed data.

:func:`_table` reads an engine's table on first use (cached; :mod:`llmdeploy.datafiles`
keeps a JSON copy keyed by content hash), checks it and returns a frozen :class:`_Table`:
nothing is parsed at import. Its flags are a mapping of :class:`FlagInfo` built when
first looked up (:class:`_Flags`). :func:`split_arg`, how one argument-list item spells
a flag, is here too: both the flag lookup of ``EngineVersionInfo`` (``info.py``) and the
argument checks (``args.py``) need it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import field
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from ..errors import InternalError, InvalidSpecError
from ..records import record
from .version import Version, _Range, _v

__all__ = [
    "EngineTableError",
    "FlagInfo",
    "UnknownEngineError",
    "known_engines",
    "releases",
    "split_arg",
]

_TABLE_DIR = Path(__file__).resolve().parent
_ENGINES = ("vllm", "tgi", "sglang", "tensorrt-llm")

FlagStatus = Literal["ok", "deprecated", "no_op", "maybe_removed", "removed", "not_yet_added", "never_existed"]


class EngineTableError(InternalError):
    """An engine table shipped with llmdeploy is missing or malformed."""


class UnknownEngineError(InvalidSpecError):
    """The spec names an engine llmdeploy has no table for."""


# --------------------------------------------------------------------------- flags


@record
class FlagInfo:
    """What the table knows about one CLI flag of an engine (all versions are strings)."""

    name: str
    takes_value: bool
    added: str | None = None
    removed: str | None = None
    deprecated: str | None = None
    no_op_from: str | None = None
    replacement: str | None = None
    never_existed: bool = False
    present_in: str | None = None
    absent_by: str | None = None
    negatable_from: str | None = None
    json: bool = False
    aliases: tuple[str, ...] = ()
    hint: str | None = None
    note: str | None = None
    source: tuple[str, ...] = ()
    verified: bool | str | None = None
    negated: bool = False

    def status(self, version: str | Version) -> FlagStatus:
        """The flag's state in ``version`` (the first that applies, worst first)."""
        v = Version.parse(version)
        if self.never_existed:
            return "never_existed"
        added = _v(self.added)
        if added is not None and v < added:
            return "not_yet_added"
        removed = _v(self.removed)
        if removed is not None and v >= removed:
            return "removed"
        absent_by = _v(self.absent_by)
        if absent_by is not None and v >= absent_by:
            return "removed"
        present_in = _v(self.present_in)
        if absent_by is not None and present_in is not None and v > present_in:
            return "maybe_removed"
        deprecated = _v(self.deprecated)
        if deprecated is not None and v >= deprecated:
            return "deprecated"
        no_op = _v(self.no_op_from)
        if no_op is not None and v >= no_op:
            return "no_op"
        return "ok"

    def available(self, version: str | Version) -> bool:
        """True when the engine of ``version`` accepts the flag (possibly with a warning)."""
        return self.status(version) in ("ok", "deprecated", "no_op", "maybe_removed")


# --------------------------------------------------------------------------- tables


@record
class _MetricSpec:
    """A logical metric and the name it has in each range of releases."""

    logical: str
    type: str
    labels: tuple[str, ...]
    names: tuple[_Range, ...]  # values: {"name": str | None}
    note: str | None
    verified: bool | str | None
    engine_labels: bool = True


@record
class _Table:
    """One engine's version table, parsed and checked."""

    engine: str
    display_name: str
    oldest: Version
    default_version: str
    releases: tuple[Version, ...]
    release_names: Mapping[Version, str]
    syntax: Mapping[str, Any]
    images: Mapping[str, Any]
    metrics: Mapping[str, _MetricSpec]
    metric_labels: tuple[_Range, ...]  # values: {"name": str}
    defaults_base: Mapping[str, Any]
    defaults_ranges: tuple[_Range, ...]
    batch_rules: Mapping[str, Any]
    memory: tuple[_Range, ...]
    features_base: Mapping[str, Any]
    features_ranges: tuple[_Range, ...]
    flags: Mapping[str, FlagInfo]
    aliases: Mapping[str, str]
    memory_model: Mapping[str, Any] = field(default_factory=dict)  # read by memory_model.py


def known_engines() -> tuple[str, ...]:
    """Engine names with a table."""
    return _ENGINES


def releases(engine: str) -> tuple[str, ...]:
    """The releases of ``engine`` the table knows, oldest first."""
    t = _table(engine)
    return tuple(t.release_names[v] for v in t.releases)


def _table(engine: str) -> _Table:
    name = engine.strip().lower()
    if name not in _ENGINES:
        raise UnknownEngineError(
            f"unknown engine {engine!r}",
            "use one of: " + ", ".join(_ENGINES),
        )
    return _load_table(name)


@cache
def _load_table(engine: str) -> _Table:
    from ..datafiles import (  # lazy: keeps `import llmdeploy.engines` cheap
        DataFileError,
        load_yaml_data,
    )

    path = _TABLE_DIR / f"{engine}.yaml"
    try:
        raw = load_yaml_data(path)
    except DataFileError as exc:
        raise EngineTableError(f"cannot read the {engine} engine table {path}: {exc}") from exc
    try:
        return _build_table(raw)
    except (KeyError, TypeError, ValueError) as exc:
        raise EngineTableError(f"the {engine} engine table {path} is malformed: {exc!r}") from exc


def _frozen(value: Any) -> Any:
    if isinstance(value, Mapping):
        return MappingProxyType({k: _frozen(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_frozen(v) for v in value)
    return value


def _ranges(items: Iterable[Mapping[str, Any]], key: str = "set") -> tuple[_Range, ...]:
    out = []
    for item in items:
        values = item[key] if key else item
        out.append(_Range(_v(item.get("from")), _v(item.get("until")), _frozen(values)))
    return tuple(out)


def _as_tuple(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in value)


def _build_flag(name: str, spec: Mapping[str, Any]) -> FlagInfo:
    if not name.startswith("-"):
        raise ValueError(f"flag {name!r} does not start with '-'")
    if not isinstance(spec.get("takes_value"), bool):
        raise ValueError(f"flag {name}: takes_value must be true or false")
    known = {f for f in FlagInfo.__dataclass_fields__ if f not in ("name", "negated")}
    extra = set(spec) - known
    if extra:
        raise ValueError(f"flag {name}: unknown keys {sorted(extra)}")
    for key in ("added", "removed", "deprecated", "no_op_from", "present_in", "absent_by", "negatable_from"):
        if spec.get(key) is not None:
            Version.parse(str(spec[key]))
    return FlagInfo(
        name=name,
        takes_value=spec["takes_value"],
        added=spec.get("added"),
        removed=spec.get("removed"),
        deprecated=spec.get("deprecated"),
        no_op_from=spec.get("no_op_from"),
        replacement=spec.get("replacement"),
        never_existed=bool(spec.get("never_existed", False)),
        present_in=spec.get("present_in"),
        absent_by=spec.get("absent_by"),
        negatable_from=spec.get("negatable_from"),
        json=bool(spec.get("json", False)),
        aliases=_as_tuple(spec.get("aliases")),
        hint=spec.get("hint"),
        note=spec.get("note"),
        source=_as_tuple(spec.get("source")),
        verified=spec.get("verified"),
    )


class _Flags(Mapping[str, FlagInfo]):
    """The flag table, each :class:`FlagInfo` built (and checked) when first looked up.

    A run looks up a handful of the ~240 flags; building them all took ~1.5 ms of every
    ``validate``. ``tests/unit/test_engines.py`` builds every flag of every table.
    """

    def __init__(self, raw: Mapping[str, Mapping[str, Any]]) -> None:
        self._raw = raw
        self._built: dict[str, FlagInfo] = {}

    def __getitem__(self, name: str) -> FlagInfo:
        fi = self._built.get(name)
        if fi is None:
            try:
                fi = _build_flag(name, self._raw[name])
            except (TypeError, ValueError) as exc:
                raise EngineTableError(f"the engine table's flag {name} is malformed: {exc}") from exc
            self._built[name] = fi
        return fi

    def __iter__(self) -> Iterator[str]:
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)


def _build_table(raw: Mapping[str, Any]) -> _Table:
    release_names = {Version.parse(str(r)): str(r) for r in raw["releases"]}
    rel = tuple(sorted(release_names))
    default = Version.parse(str(raw["default_version"]))
    if default not in release_names:
        raise ValueError(f"default_version {default} is not in releases")

    metrics_raw = raw["metrics"]
    metrics: dict[str, _MetricSpec] = {}
    for logical, spec in metrics_raw["logical"].items():
        names = _ranges(spec["names"], key="")
        metrics[logical] = _MetricSpec(
            logical=logical,
            type=spec["type"],
            labels=_as_tuple(spec.get("labels")),
            names=names,
            note=spec.get("note") or spec.get("history"),
            verified=spec.get("verified"),
            engine_labels=bool(spec.get("engine_labels", True)),
        )
    labels = _ranges(metrics_raw.get("labels", []), key="")

    flags = _Flags(raw["flags"])
    aliases: dict[str, str] = {}
    for name, spec in raw["flags"].items():
        for alias in _as_tuple(spec.get("aliases")):
            aliases[alias] = name

    defaults = raw["defaults"]
    features = raw["features"]
    return _Table(
        engine=raw["engine"],
        display_name=raw["display_name"],
        oldest=Version.parse(str(raw["oldest_supported"])),
        default_version=release_names[default],
        releases=rel,
        release_names=MappingProxyType(release_names),
        syntax=_frozen(raw.get("flag_syntax", {})),
        images=_frozen(raw["images"]),
        metrics=MappingProxyType(metrics),
        metric_labels=labels,
        defaults_base=_frozen(defaults["base"]),
        defaults_ranges=_ranges(defaults.get("ranges", [])),
        batch_rules=_frozen(defaults.get("batch_defaults_rules", {})),
        memory=_ranges(raw.get("memory_profile", []), key=""),
        features_base=_frozen(features["base"]),
        features_ranges=_ranges(features.get("ranges", [])),
        flags=flags,
        aliases=MappingProxyType(aliases),
        memory_model=_frozen(raw.get("memory_model", {})),
    )


# --------------------------------------------------------------------------- argument spelling

_NUMBER_RE = re.compile(r"^-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?\Z")
_ATTACHED_SHORT = ("-O",)


def _is_flag_token(arg: str) -> bool:
    return arg.startswith("-") and len(arg) > 1 and not _NUMBER_RE.match(arg)


def split_arg(arg: str) -> tuple[str, str | None]:
    """Split one argument-list item into ``(flag, value)``.

    ``"--x=y"`` -> ``("--x", "y")``; ``"--x"`` -> ``("--x", None)`` (the value, if any,
    is the next list item); ``"-O3"`` -> ``("-O", "3")``; ``"-tp=2"`` -> ``("-tp", "2")``.
    An item that is not a flag (a value such as ``"8"`` or ``"-1"``) gives ``("", item)``.
    Whitespace inside an item is kept: ``"--x 8"`` is one (malformed) argument to argparse.
    """
    if not _is_flag_token(arg):
        return "", arg
    if arg.startswith("--"):
        flag, sep, value = arg.partition("=")
        return flag, (value if sep else None)
    for short in _ATTACHED_SHORT:
        if arg.startswith(short) and len(arg) > len(short) and arg[len(short)] not in "=.":
            return short, arg[len(short):]
    flag, sep, value = arg.partition("=")
    return flag, (value if sep else None)
