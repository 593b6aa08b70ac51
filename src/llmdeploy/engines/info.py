"""One engine at one release: :class:`EngineVersionInfo` and :func:`resolve_engine`.

:func:`resolve_engine` picks the release an image tag or ``runtime.engineVersion``
pins (the nearest known one, with the reason, when the table does not list it) and
returns that release's facts from the engine table: defaults, features, metric names,
flags, the memory profile, and the fitted memory-model constants
(:mod:`llmdeploy.engines.memory_model`, imported on first use).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import field, replace
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

from ..records import record
from .table import FlagInfo, _Table, _table, split_arg
from .version import Version, _resolve_ranges, parse_image_version

if TYPE_CHECKING:  # pragma: no cover
    from .memory_model import MemoryModel

__all__ = [
    "BatchDefaults",
    "EngineDefaults",
    "EngineFeatures",
    "EngineVersionInfo",
    "MemoryProfile",
    "MetricInfo",
    "MetricUnavailableError",
    "QuantizationSupport",
    "resolve_engine",
]


class MetricUnavailableError(LookupError):
    """The engine version exports no metric for a logical name."""


# --------------------------------------------------------------------------- public records


@record
class MetricInfo:
    """The exported metric behind a logical name in one version."""

    logical: str
    name: str | None
    type: str
    labels: tuple[str, ...] = ()
    note: str | None = None
    verified: bool | str | None = None
    # False for series the HTTP server exports (no model_name/engine labels: scope by pod).
    engine_labels: bool = True


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
    kv_connectors: Mapping[str, str] = field(default_factory=dict)  # spec connector -> vLLM kv_connector name

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
    def rocm_image(self) -> str | None:
        """The engine project's ROCm (AMD GPU) image pinned to :attr:`version`, or None when
        the project publishes none for this release (``images.rocm`` of the engine table)."""
        rocm = self._table.images.get("rocm")
        if not rocm or Version.parse(str(rocm["from_version"])) > self.version_info:
            return None
        return f"{rocm['repository']}:{str(rocm['tag_format']).format(version=self.version)}"

    @property
    def rocm_note(self) -> str:
        """Where the engine's ROCm builds come from (for the LD211 hint)."""
        rocm = self._table.images.get("rocm") or {}
        return str(rocm.get("note") or f"{self.engine} publishes no ROCm image")

    def image_for(self, vendor: str) -> str | None:
        """The default image for a GPU vendor: the CUDA image on NVIDIA, the ROCm one on
        AMD (None when the release has none: rule LD211 refuses the spec)."""
        return self.rocm_image if vendor == "amd" else self.default_image

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

    @property
    def image_passwd_uids(self) -> tuple[int, ...]:
        """Non-root UIDs the upstream image defines in /etc/passwd (empty: only root)."""
        nr = self._table.images.get("non_root") or {}
        return tuple(int(u) for u in nr.get("passwd_uids") or ())

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
        return MetricInfo(logical, name, spec.type, spec.labels, spec.note, spec.verified, spec.engine_labels)

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
        if self._table.syntax.get("allow_abbrev") and canonical.startswith("--") and len(canonical) > 3:
            # argparse's allow_abbrev (SGLang's parser keeps the default): a unique prefix of a
            # flag this version accepts is that flag (`--tp 4` is `--tp-size 4`).
            hits = {self._table.aliases.get(n, n) for n in self.known_flags() if n.startswith(canonical)}
            if len(hits) == 1:
                return self._table.flags[hits.pop()]
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
        from .memory_model import memory_model_from_table

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
        kv_connectors=MappingProxyType({str(k): str(v) for k, v in (f.get("kv_connectors") or {}).items()}),
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
