"""Per-engine facts keyed by release: flags, metric names, defaults, memory profile, image.

One YAML table per engine (``vllm.yaml``, ``tgi.yaml`` next to this file) holds what
upstream source says about each release; this module turns it into typed answers for
one pinned version. Tables are read lazily on first use and cached, so importing this
module costs no YAML parsing.

Typical use::

    info = resolve_engine("vllm", "vllm/vllm-openai:v0.8.5", None)
    info.metric("kv_cache_usage")          # 'vllm:gpu_cache_usage_perc'
    check_flag(info, "--swap-space")       # None on 0.8.5; an error from 0.18.0 on

Version ranges in the tables are half-open: ``from`` is the first release with a value,
``until`` the first release without it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cache, total_ordering
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

from ..datafiles import deep_merge
from ..errors import InternalError, InvalidSpecError
from ..records import record

if TYPE_CHECKING:  # pragma: no cover
    from ..sizing.profile import MemoryModel

__all__ = [
    "BatchDefaults",
    "EngineDefaults",
    "EngineFeatures",
    "EngineTableError",
    "EngineVersionInfo",
    "FlagInfo",
    "FlagProblem",
    "MemoryProfile",
    "MetricInfo",
    "MetricUnavailableError",
    "ParsedArg",
    "QuantizationSupport",
    "UnknownEngineError",
    "Version",
    "check_args",
    "check_flag",
    "iter_flag_names",
    "known_engines",
    "parse_args",
    "parse_image_version",
    "releases",
    "resolve_engine",
    "split_arg",
]

_TABLE_DIR = Path(__file__).resolve().parent
_ENGINES = ("vllm", "tgi")

Severity = Literal["error", "warning"]
FlagStatus = Literal["ok", "deprecated", "no_op", "maybe_removed", "removed", "not_yet_added", "never_existed"]


class EngineTableError(InternalError):
    """An engine table shipped with llmdeploy is missing or malformed."""


class UnknownEngineError(InvalidSpecError):
    """The spec names an engine llmdeploy has no table for."""


class MetricUnavailableError(LookupError):
    """The engine version exports no metric for a logical name."""


# --------------------------------------------------------------------------- versions

_VERSION_RE = re.compile(
    r"""
    ^\s*v?
    (?P<release>\d+(?:\.\d+)*)
    (?:[-_.]?(?P<pre_l>alpha|beta|preview|pre|rc|a|b|c)[-_.]?(?P<pre_n>\d+)?)?
    (?:[-_.]?(?P<post_l>post|rev|r)[-_.]?(?P<post_n>\d+)?)?
    (?:[-_.]?(?P<dev_l>dev)[-_.]?(?P<dev_n>\d+)?)?
    (?:\+(?P<local>[a-z0-9]+(?:[-_.][a-z0-9]+)*))?
    \s*$
    """,
    re.IGNORECASE | re.VERBOSE,
)
_PRE_NORMAL = {"alpha": "a", "a": "a", "beta": "b", "b": "b", "c": "rc", "pre": "rc", "preview": "rc", "rc": "rc"}
_PRE_RANK = {"a": 0, "b": 1, "rc": 2}
_PARSED: dict[str, Version] = {}  # text -> Version (immutable, so shared)


@total_ordering
@dataclass(frozen=True, eq=False)
class Version:
    """A release version ordered like PEP 440: ``0.10.1.1 > 0.9.2``, ``0.6.3 < 0.6.3.post1``.

    Pre-releases sort before their release (``0.11.0rc1 < 0.11.0``), dev builds before
    pre-releases, post-releases after. Trailing zeros do not matter (``0.9 == 0.9.0``);
    a local label (``+g4f35be10a``) is kept for display and ignored in comparisons.
    """

    release: tuple[int, ...]
    pre: tuple[str, int] | None = None
    post: int | None = None
    dev: int | None = None
    local: str | None = None

    @classmethod
    def parse(cls, text: str | Version) -> Version:
        """Parse ``"0.6.3"``, ``"v0.10.1.1"``, ``"0.6.3.post1"``, ``"0.11.0rc1"``, ``"3.3.4"``.

        Raises:
            ValueError: the text is not a version.
        """
        if isinstance(text, Version):
            return text
        known = _PARSED.get(text)
        if known is not None:  # the engine tables repeat the same few dozen versions
            return known
        m = _VERSION_RE.match(text)
        if m is None:
            raise ValueError(f"{text!r} is not a version")
        pre = None
        if m.group("pre_l"):
            pre = (_PRE_NORMAL[m.group("pre_l").lower()], int(m.group("pre_n") or 0))
        post = int(m.group("post_n") or 0) if m.group("post_l") else None
        dev = int(m.group("dev_n") or 0) if m.group("dev_l") else None
        version = cls(
            release=tuple(int(p) for p in m.group("release").split(".")),
            pre=pre,
            post=post,
            dev=dev,
            local=m.group("local"),
        )
        _PARSED[text] = version
        return version

    def _key(self) -> tuple[Any, ...]:
        release = list(self.release)
        while len(release) > 1 and release[-1] == 0:
            release.pop()
        # (-1,) < (0, ...) < (1,): dev-only builds < pre-releases < the release itself.
        if self.pre is not None:
            pre: tuple[int, ...] = (0, _PRE_RANK[self.pre[0]], self.pre[1])
        elif self.post is None and self.dev is not None:
            pre = (-1,)
        else:
            pre = (1,)
        post: tuple[int, ...] = (-1,) if self.post is None else (0, self.post)
        dev: tuple[int, ...] = (1,) if self.dev is None else (0, self.dev)
        return (tuple(release), pre, post, dev)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._key() == other._key()

    def __lt__(self, other: Version) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._key() < other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    @property
    def is_prerelease(self) -> bool:
        """True for ``rc``/``a``/``b`` and ``.dev`` builds."""
        return self.pre is not None or self.dev is not None

    def __str__(self) -> str:
        s = ".".join(str(p) for p in self.release)
        if self.pre is not None:
            s += f"{self.pre[0]}{self.pre[1]}"
        if self.post is not None:
            s += f".post{self.post}"
        if self.dev is not None:
            s += f".dev{self.dev}"
        if self.local:
            s += f"+{self.local}"
        return s


def _v(text: str | None) -> Version | None:
    return None if text is None else Version.parse(text)


_TAG_VERSION_RE = re.compile(
    r"^v?(?P<ver>\d+(?:\.\d+){1,3}(?:(?:rc|a|b)\d+)?(?:\.post\d+)?(?:\.dev\d+)?)(?:[-_+][A-Za-z0-9._-]*)?$",
    re.IGNORECASE,
)


def parse_image_version(image: str | None) -> str | None:
    """The engine version an image reference pins, or None when it pins none.

    ``vllm/vllm-openai:v0.6.3`` -> ``"0.6.3"``; ``:v0.10.1.1`` -> ``"0.10.1.1"``;
    ``:0.6.3.post1`` -> ``"0.6.3.post1"``; ``ghcr.io/huggingface/text-generation-inference:3.3.4-rocm``
    -> ``"3.3.4"``. ``latest``, ``nightly``, ``sha-…`` tags, a missing tag and a bare
    ``@sha256:`` digest give None (a digest pins bytes, not a version we can read).
    With both a tag and a digest the tag's version is returned.
    """
    if not image:
        return None
    ref = image.strip()
    if "@" in ref:
        ref = ref.split("@", 1)[0]
    slash, colon = ref.rfind("/"), ref.rfind(":")
    if colon <= slash:  # no tag, or the colon belongs to a registry host:port
        return None
    m = _TAG_VERSION_RE.match(ref[colon + 1 :])
    if m is None:
        return None
    try:
        return str(Version.parse(m.group("ver")))
    except ValueError:  # pragma: no cover - the regex only admits versions
        return None


# --------------------------------------------------------------------------- public records


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


@record
class FlagProblem:
    """Why a flag is wrong (``error``) or questionable (``warning``) for a pinned version."""

    flag: str
    kind: Literal[
        "unknown", "never_existed", "removed", "not_yet_added", "maybe_removed", "deprecated", "no_op", "malformed"
    ]
    severity: Severity
    message: str
    hint: str | None
    version: str


@record
class ParsedArg:
    """One flag of an argument list with its value (``value_index`` is None for ``--x=y``)."""

    flag: str
    value: str | None
    index: int
    value_index: int | None = None


@record
class MetricInfo:
    """The exported metric behind a logical name in one version."""

    logical: str
    name: str | None
    type: str
    labels: tuple[str, ...] = ()
    note: str | None = None
    verified: bool | str | None = None


@record
class QuantizationSupport:
    """Whether a spec quantization value works, and the flag value that selects it (None = autodetect)."""

    supported: bool
    flag: str | None
    note: str | None = None


@record
class EngineFeatures:
    """What an engine version can do for a spec."""

    prefix_caching: bool
    chunked_prefill: bool
    kv_cache_dtype_fp8: bool
    kv_cache_dtypes: tuple[str, ...]
    tensor_parallel: bool
    pipeline_parallel: bool
    data_parallel: bool
    expert_parallel: bool
    lora: bool
    speculative_decoding: bool
    max_num_seqs: bool
    max_num_seqs_flag: str | None
    ttft_histogram: bool
    itl_histogram: bool
    kv_cache_usage_metric: bool
    queue_depth_metric: bool
    graceful_drain: bool
    prefix_caching_control: str | None
    chunked_prefill_control: str | None
    quantization: Mapping[str, QuantizationSupport]

    def supports(self, feature: str) -> bool:
        """True when the boolean feature ``feature`` (a field name) is available.

        Raises:
            ValueError: ``feature`` is not a boolean feature name.
        """
        value = getattr(self, feature, None)
        if not isinstance(value, bool):
            names = sorted(k for k, v in self.__dict__.items() if isinstance(v, bool))
            raise ValueError(f"unknown engine feature {feature!r}; known: {', '.join(names)}")
        return value


@record
class EngineDefaults:
    """Engine defaults that matter for sizing and rendering, for one version.

    ``max_num_seqs`` is None when it depends on the GPU (use
    :meth:`EngineVersionInfo.batch_defaults`). For TGI ``gpu_memory_utilization`` is the
    ``--cuda-memory-fraction`` default.
    """

    engine_generation: str
    gpu_memory_utilization: float
    enable_prefix_caching: bool
    enable_chunked_prefill: bool
    block_size: int | None
    max_num_seqs: int | None
    port: int
    shutdown_timeout_supported: bool
    cudagraph_memory_in_kv_budget: bool
    v0_fallback_possible: bool
    max_concurrent_requests: int | None
    extra: Mapping[str, Any]


@record
class BatchDefaults:
    """``max_num_batched_tokens``/``max_num_seqs`` the engine picks when the user sets neither."""

    max_num_batched_tokens: int
    max_num_seqs: int
    rule: str
    verified: bool | str | None


@record
class MemoryProfile:
    """How the engine version sizes its KV cache (mechanism only, no fitted constants)."""

    engine: str
    code_url: str | None
    function: str | None
    budget: str | None
    cudagraph_memory_in_kv_budget: bool
    cudagraph_capture_max_default: int | None
    notes: tuple[str, ...]
    startup_log: str | None
    verified: bool | str | None


# --------------------------------------------------------------------------- tables


@record
class _Range:
    """Values that hold for the releases from ``start`` (inclusive) until ``until`` (exclusive)."""

    start: Version | None
    until: Version | None
    values: Mapping[str, Any]

    def covers(self, v: Version) -> bool:
        return (self.start is None or v >= self.start) and (self.until is None or v < self.until)


@record
class _MetricSpec:
    """A logical metric and the name it has in each range of releases."""

    logical: str
    type: str
    labels: tuple[str, ...]
    names: tuple[_Range, ...]  # values: {"name": str | None}
    note: str | None
    verified: bool | str | None


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
    memory_model: Mapping[str, Any] = field(default_factory=dict)  # read by llmdeploy.sizing


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


def _resolve_ranges(base: Mapping[str, Any], ranges: Sequence[_Range], v: Version) -> dict[str, Any]:
    out = dict(base)
    for r in ranges:
        if r.covers(v):
            out = deep_merge(out, r.values)
    return out


# --------------------------------------------------------------------------- per-version view


@record
class EngineVersionInfo:
    """Everything llmdeploy knows about one engine at one (resolved) version.

    ``version`` is the release whose facts are used; ``requested_version`` is what the
    image tag or ``engine_version`` said (None when nothing was pinned). ``assumed`` is
    True when the two differ or nothing was pinned, and ``assumed_reason`` says why.
    """

    engine: str
    version: str
    requested_version: str | None
    assumed: bool
    assumed_reason: str | None
    image: str | None
    defaults: EngineDefaults = field(repr=False)
    features: EngineFeatures = field(repr=False)
    _table: _Table = field(repr=False, compare=False)

    def __hash__(self) -> int:
        # defaults/features hold read-only mappings; identity is the engine and the pin.
        return hash((self.engine, self.version, self.requested_version, self.image))

    # -- identity / image --------------------------------------------------------------

    @property
    def display_name(self) -> str:
        """``vLLM`` or ``TGI``."""
        return self._table.display_name

    @property
    def version_info(self) -> Version:
        """:attr:`version` as a comparable :class:`Version`."""
        return Version.parse(self.version)

    @property
    def image_repository(self) -> str:
        """The upstream image repository (``vllm/vllm-openai``)."""
        return str(self._table.images["repository"])

    @property
    def default_image(self) -> str:
        """The upstream image pinned to :attr:`version` (``vllm/vllm-openai:v0.30.0``)."""
        tag = str(self._table.images["tag_format"]).format(version=self.version)
        return f"{self.image_repository}:{tag}"

    @property
    def health_path(self) -> str:
        """HTTP path of the readiness/liveness endpoint."""
        return str(self._table.images["health_path"])

    @property
    def metrics_path(self) -> str:
        """HTTP path of the Prometheus endpoint (on the API port)."""
        return str(self._table.images["metrics_path"])

    @property
    def image_port(self) -> int:
        """The port the upstream image listens on when none is given."""
        return int(self._table.images["port"])

    @property
    def recommended_command(self) -> tuple[str, ...]:
        """A container command that works for every tracked release of the engine."""
        return tuple(self._table.images["recommended_command"])

    @property
    def runs_as_non_root(self) -> bool:
        """True when the upstream image already runs as a non-root user (both run as root)."""
        return not bool(self._table.images["runs_as_root"])

    @property
    def can_run_as_non_root(self) -> bool:
        """True when the image is known to work under a non-root UID (with writable caches).

        Only entries whose ``non_root.verified`` is not ``false`` count: llmdeploy sets
        ``runAsNonRoot`` only where a source shows the image copes with it.
        """
        nr = self._table.images.get("non_root") or {}
        return bool(nr.get("works")) and nr.get("verified") not in (False, "false")

    # -- metrics -----------------------------------------------------------------------

    def metric_info(self, logical: str) -> MetricInfo:
        """The exported metric for ``logical`` (``name`` None when this version has none).

        Raises:
            KeyError: ``logical`` is not a logical metric name of the engine table.
        """
        spec = self._table.metrics.get(logical)
        if spec is None:
            raise KeyError(
                f"unknown logical metric {logical!r} for {self.display_name}; known: "
                + ", ".join(sorted(self._table.metrics))
            )
        v = self.version_info
        name = None
        for r in spec.names:
            if r.covers(v):
                name = r.values.get("name")
                break
        return MetricInfo(logical, name, spec.type, spec.labels, spec.note, spec.verified)

    def metric(self, logical: str) -> str:
        """The metric name ``logical`` is exported under in this version.

        Counters carry ``_total`` as scraped (``vllm:prompt_tokens_total``); histograms
        are the base name (append ``_bucket``/``_sum``/``_count`` yourself).

        Raises:
            KeyError: unknown logical name.
            MetricUnavailableError: this engine version exports no such metric.
        """
        info = self.metric_info(logical)
        if info.name is None:
            raise MetricUnavailableError(
                f"{self.display_name} {self.version} exports no {logical} metric"
                + (f" ({info.note})" if info.note else "")
            )
        return info.name

    def has_metric(self, logical: str) -> bool:
        """True when ``logical`` is known and exported in this version."""
        spec = self._table.metrics.get(logical)
        return spec is not None and self.metric_info(logical).name is not None

    @property
    def metric_labels(self) -> tuple[str, ...]:
        """Labels the engine puts on its series in this version (e.g. ``model_name``, ``engine``)."""
        v = self.version_info
        return tuple(
            str(r.values["name"]) for r in self._table.metric_labels
            if r.covers(v) and r.values["name"] != "finished_reason"
        )

    @property
    def logical_metrics(self) -> tuple[str, ...]:
        """Every logical metric name of the table."""
        return tuple(self._table.metrics)

    # -- flags -------------------------------------------------------------------------

    def _canonical_flag(self, name: str) -> str:
        syntax = self._table.syntax
        if name.startswith("--") and syntax.get("normalize_underscores"):
            name = "--" + name[2:].replace("_", "-")
        if name.startswith("--") and "." in name and syntax.get("json_dotted_keys"):
            base = name.split(".", 1)[0]
            fi = self._table.flags.get(self._table.aliases.get(base, base))
            if fi is not None and fi.json:
                name = base
        return self._table.aliases.get(name, name)

    def flag(self, name: str) -> FlagInfo | None:
        """The table entry for ``name`` (``--x``, ``--x=y``, an alias, ``--no-x``), or None.

        For vLLM ``--max_num_seqs`` reads as ``--max-num-seqs`` and
        ``--compilation-config.mode`` as ``--compilation-config``.
        """
        flag, _ = split_arg(name)
        if not flag:
            return None
        canonical = self._canonical_flag(flag)
        fi = self._table.flags.get(canonical)
        if fi is not None:
            return fi
        if canonical.startswith("--no-"):
            base = self._table.flags.get("--" + canonical[len("--no-"):])
            if base is not None and base.negatable_from is not None and not base.takes_value:
                return replace(
                    base, name=canonical, negated=True, added=_later(base.added, base.negatable_from), aliases=()
                )
        return None

    def flag_available(self, name: str) -> bool:
        """True when this version accepts ``name`` (possibly with a deprecation warning)."""
        fi = self.flag(name)
        return fi is not None and fi.available(self.version)

    def known_flags(self) -> tuple[str, ...]:
        """Flags (and aliases) this version accepts, sorted."""
        names = {n for n, fi in self._table.flags.items() if fi.available(self.version)}
        names |= {a for a, n in self._table.aliases.items() if n in names}
        return tuple(sorted(names))

    # -- features ----------------------------------------------------------------------

    def supports(self, feature: str) -> bool:
        """True when the boolean feature ``feature`` is available (see :class:`EngineFeatures`)."""
        return self.features.supports(feature)

    def supports_quantization(self, method: str) -> bool:
        """True when the spec quantization value ``method`` can be served."""
        q = self.features.quantization.get(method)
        return bool(q and q.supported)

    def quantization_methods(self) -> list[str]:
        """Spec quantization values this version can serve, sorted."""
        return sorted(k for k, q in self.features.quantization.items() if q.supported)

    def quantization_flag_value(self, method: str) -> str | None:
        """The engine's own flag value for a spec quantization value (None: let the engine detect it)."""
        q = self.features.quantization.get(method)
        return q.flag if q and q.supported else None

    # -- defaults and memory -----------------------------------------------------------

    def batch_defaults(
        self,
        gpu_memory_gib: float,
        gpu_name: str = "",
        *,
        usage: Literal["api_server", "llm_class"] = "api_server",
        chunked_prefill: bool | None = None,
        max_model_len: int | None = None,
    ) -> BatchDefaults | None:
        """The engine's own ``max_num_batched_tokens``/``max_num_seqs`` on this GPU.

        Mirrors vLLM's ``_set_default_args`` (``vllm/engine/arg_utils.py``): the tier is
        chosen by device memory and name (A100s get the small tier), chunked prefill off
        means ``max_num_batched_tokens = max_model_len``. Returns None for engines without
        such a rule (TGI) or when ``max_model_len`` is needed but not given.
        """
        rule_name = self.defaults.extra.get("batch_defaults")
        if not rule_name:
            return None
        rule = self._table.batch_rules[rule_name]
        chunked = self.defaults.enable_chunked_prefill if chunked_prefill is None else chunked_prefill
        verified = rule.get("verified")
        if "tiers" not in rule:  # V0
            mnbt = rule["max_num_batched_tokens"]
            if chunked:
                tokens = int(mnbt["chunked_prefill_on"])
            elif max_model_len is None:
                return None
            else:
                tokens = max(max_model_len, 2048)
            return BatchDefaults(tokens, int(rule["max_num_seqs"]), str(rule_name), verified)
        name = gpu_name.lower()
        tokens_val: int | None = None
        seqs_val: int | None = None
        for tier in rule["tiers"]:
            if gpu_memory_gib < float(tier["min_device_memory_gib"]):
                continue
            if any(x in name for x in tier["exclude_device_name"]):
                continue
            if tokens_val is None and tier[usage] is not None:
                tokens_val = int(tier[usage])
            if seqs_val is None and tier["max_num_seqs"] is not None:
                seqs_val = int(tier["max_num_seqs"])
            if tokens_val is not None and seqs_val is not None:
                break
        if tokens_val is None or seqs_val is None:  # pragma: no cover - every table ends with a catch-all tier
            return None
        if not chunked:
            if max_model_len is None:
                return None
            tokens_val = max_model_len
        if rule.get("max_num_seqs_capped_by_batched_tokens"):
            seqs_val = min(seqs_val, tokens_val)
        return BatchDefaults(tokens_val, seqs_val, str(rule_name), verified)

    @property
    def memory_profile(self) -> MemoryProfile | None:
        """How this version sizes its KV cache (None if the table has no entry)."""
        v = self.version_info
        for r in self._table.memory:
            if r.covers(v):
                m = r.values
                notes = tuple(str(m[k]) for k in ("cudagraph_note", "cudagraph_capture_note", "note") if m.get(k))
                cap = m.get("cudagraph_capture_max_default")
                return MemoryProfile(
                    engine=str(m.get("engine", self.engine)),
                    code_url=m.get("code"),
                    function=m.get("function"),
                    budget=m.get("budget"),
                    cudagraph_memory_in_kv_budget=bool(m.get("cudagraph_memory_in_kv_budget", False)),
                    cudagraph_capture_max_default=int(cap) if cap is not None else None,
                    notes=notes,
                    startup_log=m.get("startup_log"),
                    verified=m.get("verified"),
                )
        return None


    def memory_model_for(self, generation: str | None = None) -> MemoryModel:
        """The fitted memory-model constants of this version (table section ``memory_model``).

        Args:
            generation: ``V0`` or ``V1`` to force one vLLM engine generation (0.8-0.10
                ran either); None for the version's default.
        """
        from ..sizing.profile import memory_model_from_table

        gen = generation or (self.defaults.engine_generation if self.engine == "vllm" else self.engine)
        return memory_model_from_table(
            self.engine, self.version, self._table.memory_model, generation=gen,
            default_gpu_memory_utilization=self.defaults.gpu_memory_utilization,
            block_size=self.defaults.block_size,
            cudagraph_in_budget=self.defaults.cudagraph_memory_in_kv_budget,
        )

    @property
    def memory_model(self) -> MemoryModel:
        """:meth:`memory_model_for` the version's default engine generation."""
        return self.memory_model_for(None)


def _later(a: str | None, b: str | None) -> str | None:
    if a is None:
        return b
    if b is None:
        return a
    return a if Version.parse(a) >= Version.parse(b) else b


def _defaults_for(t: _Table, v: Version) -> EngineDefaults:
    d = _resolve_ranges(t.defaults_base, t.defaults_ranges, v)
    gmu = d.get("gpu_memory_utilization", d.get("cuda_memory_fraction"))
    seqs = d.get("max_num_seqs")
    fallback = d.get("v0_fallback_possible")
    if fallback is None:
        fallback = t.engine == "vllm" and d.get("engine_generation") == "V1"
    return EngineDefaults(
        engine_generation=str(d.get("engine_generation")),
        gpu_memory_utilization=float(gmu) if gmu is not None else 1.0,
        enable_prefix_caching=bool(d.get("enable_prefix_caching", False)),
        enable_chunked_prefill=bool(d.get("enable_chunked_prefill", False)),
        block_size=int(d["block_size"]) if d.get("block_size") is not None else None,
        max_num_seqs=int(seqs) if seqs is not None else None,
        port=int(d.get("port", t.images["port"])),
        shutdown_timeout_supported=bool(d.get("shutdown_timeout_supported", False)),
        cudagraph_memory_in_kv_budget=bool(d.get("cudagraph_memory_in_kv_budget", False)),
        v0_fallback_possible=bool(fallback),
        max_concurrent_requests=(
            int(d["max_concurrent_requests"]) if d.get("max_concurrent_requests") is not None else None
        ),
        extra=MappingProxyType(d),
    )


def _features_for(t: _Table, v: Version) -> EngineFeatures:
    f = _resolve_ranges(t.features_base, t.features_ranges, v)
    quant = {
        k: QuantizationSupport(bool(q.get("supported")), q.get("flag"), q.get("note"))
        for k, q in f.get("quantization", {}).items()
    }
    return EngineFeatures(
        prefix_caching=bool(f["prefix_caching"]),
        chunked_prefill=bool(f["chunked_prefill"]),
        kv_cache_dtype_fp8=bool(f["kv_cache_dtype_fp8"]),
        kv_cache_dtypes=tuple(f.get("kv_cache_dtypes", ())),
        tensor_parallel=bool(f["tensor_parallel"]),
        pipeline_parallel=bool(f["pipeline_parallel"]),
        data_parallel=bool(f["data_parallel"]),
        expert_parallel=bool(f["expert_parallel"]),
        lora=bool(f["lora"]),
        speculative_decoding=bool(f["speculative_decoding"]),
        max_num_seqs=bool(f["max_num_seqs"]),
        max_num_seqs_flag=f.get("max_num_seqs_flag"),
        ttft_histogram=bool(f["ttft_histogram"]),
        itl_histogram=bool(f["itl_histogram"]),
        kv_cache_usage_metric=bool(f["kv_cache_usage_metric"]),
        queue_depth_metric=bool(f["queue_depth_metric"]),
        graceful_drain=bool(f.get("graceful_drain", False)),
        prefix_caching_control=f.get("prefix_caching_control"),
        chunked_prefill_control=f.get("chunked_prefill_control"),
        quantization=MappingProxyType(quant),
    )


def resolve_engine(engine: str, image: str | None, engine_version: str | None) -> EngineVersionInfo:
    """The facts for ``engine`` at the version the spec pins.

    The version comes from ``engine_version`` when given, else from the image tag. A
    missing or unpinned version (``latest``, a digest) resolves to the newest release the
    table knows; a parseable version the table does not list resolves to the nearest
    lower known release (the oldest one when it is older than all). Both set
    ``assumed=True`` with a reason.

    Raises:
        UnknownEngineError: no table for ``engine``.
    """
    t = _table(engine)
    disp = t.display_name
    requested: str | None = None
    reason: str | None = None
    if engine_version is not None and str(engine_version).strip():
        try:
            requested = str(Version.parse(str(engine_version)))
        except ValueError:
            reason = f"runtime.engineVersion {engine_version!r} is not a version"
    elif image:
        requested = parse_image_version(image)
        if requested is None:
            reason = f"image {image!r} does not pin a {disp} version"

    newest = t.releases[-1]
    if requested is None:
        resolved = Version.parse(t.default_version)
        lead = reason or f"no image tag or runtime.engineVersion pins the {disp} version"
        reason = f"{lead}; assuming {disp} {t.default_version}, the newest release llmdeploy knows"
        assumed = True
    else:
        req = Version.parse(requested)
        if req in t.release_names:
            resolved, assumed, reason = req, False, None
        else:
            lower = [r for r in t.releases if r <= req]
            assumed = True
            if not lower:
                resolved = t.releases[0]
                reason = (
                    f"{disp} {requested} is older than the oldest release llmdeploy tracks; "
                    f"using the facts of {t.release_names[resolved]}"
                )
            else:
                resolved = lower[-1]
                why = "is newer than the newest release" if req > newest else "is not a release"
                reason = (
                    f"{disp} {requested} {why} llmdeploy knows; using the facts of "
                    f"{t.release_names[resolved]}, the nearest lower known release"
                )
    return EngineVersionInfo(
        engine=t.engine,
        version=t.release_names[resolved],
        requested_version=requested,
        assumed=assumed,
        assumed_reason=reason,
        image=image,
        defaults=_defaults_for(t, resolved),
        features=_features_for(t, resolved),
        _table=t,
    )


# --------------------------------------------------------------------------- argument lists

_NUMBER_RE = re.compile(r"^-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?$")
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


def parse_args(info: EngineVersionInfo, args: Sequence[str]) -> list[ParsedArg]:
    """Group an argument list (``runtime.extraArgs``) into flags and their values.

    A value may be attached (``--x=y``) or be the next item; a flag the table does not
    know takes the next item as its value when that item is not a flag. Items that are
    not flags and follow no flag are returned with ``flag=""``.
    """
    out: list[ParsedArg] = []
    i = 0
    while i < len(args):
        flag, value = split_arg(args[i])
        if not flag:
            out.append(ParsedArg("", value, i))
            i += 1
            continue
        if value is not None:
            out.append(ParsedArg(flag, value, i))
            i += 1
            continue
        fi = info.flag(flag)
        wants_value = fi.takes_value if fi is not None else True
        nxt = args[i + 1] if i + 1 < len(args) else None
        if wants_value and nxt is not None and not _is_flag_token(nxt):
            out.append(ParsedArg(flag, nxt, i, i + 1))
            i += 2
        else:
            out.append(ParsedArg(flag, None, i))
            i += 1
    return out


def check_args(info: EngineVersionInfo, args: Sequence[str]) -> list[tuple[ParsedArg, FlagProblem]]:
    """Every problem in an argument list, with the argument it belongs to."""
    problems = []
    for pa in parse_args(info, args):
        if not pa.flag:
            continue
        token = args[pa.index]
        problem = check_flag(info, token)
        if problem is None and pa.value_index is None and pa.value is None:
            fi = info.flag(pa.flag)
            if fi is not None and fi.takes_value and not fi.never_existed and fi.available(info.version):
                problem = FlagProblem(
                    pa.flag, "malformed", "error", f"{pa.flag} needs a value", f"write {pa.flag}=<value>", info.version
                )
        if problem is not None:
            problems.append((pa, problem))
    return problems


def _did_you_mean(info: EngineVersionInfo, flag: str) -> list[str]:
    import difflib  # lazy

    candidates = info.known_flags()
    probe = flag
    if flag.startswith("--"):
        probe = "--" + flag[2:].replace("_", "-")
        if probe in candidates:
            return [probe]
    scored = []
    for c in candidates:
        ratio = difflib.SequenceMatcher(None, probe, c).ratio()
        if ratio >= 0.6:
            scored.append((ratio, c))
    if not scored:
        return []
    scored.sort(key=lambda rc: (-rc[0], rc[1]))
    best = scored[0][0]
    # Only the close runners-up: a long list of weak guesses is noise.
    return [c for r, c in scored[:3] if r >= best - 0.03]


def _pin(info: EngineVersionInfo) -> str:
    if not info.assumed:
        return f"this spec pins {info.version}"
    if info.requested_version:
        return f"this spec pins {info.requested_version}, checked as {info.version}"
    return f"the version is not pinned, checked as {info.version}"


def check_flag(info: EngineVersionInfo, flag: str) -> FlagProblem | None:
    """Whether ``flag`` (``--x``, ``--x=y`` or an alias) is right for ``info``'s version.

    Errors: the flag never existed, was removed, is not yet in this version, or is not a
    flag of the engine at all (with a did-you-mean). Warnings: deprecated, has no effect,
    or may have been removed. Values and empty strings return None.
    """
    name, _ = split_arg(flag)
    if not name:
        return None
    disp = info.display_name
    v = info.version
    if any(c.isspace() for c in flag.strip()):
        first, _, rest = flag.strip().partition(" ")
        first = first.split("=", 1)[0]
        return FlagProblem(
            first, "malformed", "error",
            f"{flag.strip()!r} is one argument containing a space; {disp} reads it as a single, unknown flag",
            f"write {first}={rest.strip()}, or put {first} and its value in two list items",
            v,
        )
    fi = info.flag(name)
    if fi is None:
        guesses = _did_you_mean(info, name)
        if guesses:
            hint = "did you mean " + " or ".join(guesses) + "?"
        elif info.engine == "tgi":
            hint = "see `text-generation-launcher --help` for the flags of TGI " + v
        else:
            hint = f"see `vllm serve --help` for the flags of vLLM {v}"
        if info.engine == "tgi" and name.startswith("--") and "_" in name:
            dashed = "--" + name[2:].replace("_", "-")
            if info.flag(dashed) is not None:
                hint = f"TGI only accepts the dashed spelling {dashed}"
        return FlagProblem(name, "unknown", "error", f"{name} is not a known {disp} {v} flag", hint, v)

    status = fi.status(v)
    replacement_hint = f"use {fi.replacement}" if fi.replacement else None
    if status == "never_existed":
        return FlagProblem(
            name, "never_existed", "error", f"{name} is not a {disp} flag (it never existed)",
            fi.hint or replacement_hint or "drop it", v,
        )
    if status == "not_yet_added":
        since = fi.added
        what = f"{name} was added in {disp} {since}"
        if fi.negated and fi.negatable_from == since:
            what = f"{name} (the negated form) is accepted from {disp} {since} on"
        return FlagProblem(
            name, "not_yet_added", "error", f"{what}; {_pin(info)}",
            f"pin {disp} >= {since} or drop {name}", v,
        )
    if status == "removed":
        if fi.removed is not None:
            message = f"{name} was removed in {disp} {fi.removed} ({_pin(info)})"
        else:
            message = (
                f"{name} is no longer accepted by {disp} {v} (last seen in {fi.present_in}, gone by {fi.absent_by})"
            )
        return FlagProblem(name, "removed", "error", message, fi.hint or replacement_hint or "drop it", v)
    if status == "maybe_removed":
        return FlagProblem(
            name, "maybe_removed", "warning",
            f"{name} may not exist in {disp} {v}: it was last seen in {fi.present_in} and is gone by {fi.absent_by}",
            fi.hint or replacement_hint or f"check `--help` of {disp} {v}, or drop it", v,
        )
    if status == "deprecated":
        extra = ""
        if fi.no_op_from is not None and Version.parse(v) >= Version.parse(fi.no_op_from):
            extra = " and has no effect"
        if fi.replacement:
            extra += f"; use {fi.replacement}"
        return FlagProblem(
            name, "deprecated", "warning", f"{name} is deprecated since {disp} {fi.deprecated}{extra}",
            fi.hint or replacement_hint, v,
        )
    if status == "no_op":
        return FlagProblem(
            name, "no_op", "warning", f"{name} has no effect since {disp} {fi.no_op_from}",
            fi.hint or replacement_hint or "drop it", v,
        )
    return None


def iter_flag_names(info: EngineVersionInfo) -> Iterator[str]:
    """Every flag name in the engine table (available or not), table order."""
    yield from info._table.flags
