"""Sizing: will the model fit, how many tokens of KV cache, at what throughput and cost.

Pure functions over the catalogs and the engine table: :func:`size` takes a
:class:`SizingInput` (model, GPU, engine version, parallelism and engine settings) and
returns a :class:`SizingReport`; :func:`size_spec` builds the input from an
``LLMService`` spec; :func:`plan_options` tries every catalog GPU and TP size.

The memory model mimics the engine's own start-up profiler (docs/sizing.md): weights
per GPU, the activation peak of the profile run, non-torch memory and, from vLLM
0.21, CUDA graphs are subtracted from ``total × gpu_memory_utilization``; what is
left becomes whole KV blocks. Its constants live in the engine table
(``engines/vllm.yaml`` → ``memory_model``) by version and are calibrated against real
vLLM start-up logs (tests/unit/test_calibration.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import field, replace
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from ..engines import Version
from ..engines.memory_model import MemoryModel
from ..records import record
from .capacity import (
    DEFAULT_AVG_OUTPUT_TOKENS,
    DEFAULT_AVG_PROMPT_TOKENS,
    Capacity,
    Slo,
    deployment,
    estimate_capacity,
    estimate_load_seconds,
    slo_concurrency,
)
from .memory import (
    GIB,
    Quantization,
    StageLayout,
    activation_bytes,
    cuda_graph_bytes,
    cuda_graph_sizes,
    cuda_total_bytes,
    dtype_bytes,
    kv_bytes_per_token,
    kv_layers_on_stage,
    kv_tokens,
    max_concurrency,
    moe_shards,
    non_torch_bytes,
    pipeline_stages,
    request_kv_bytes,
    resolve_dtype,
    resolve_quantization,
    weight_bytes_per_param,
    weights_per_stage,
)
from .reasons import Reason, SizingProblem

if TYPE_CHECKING:  # pragma: no cover
    from ..catalog import GPU, ModelConfig
    from ..engines import EngineVersionInfo
    from ..spec.models import LLMService
    from .calibration import Calibration, Correction
    from .lora import LoraLimits
    from .roles import DisaggSizing

__all__ = [
    "Capacity",
    "MemoryBreakdown",
    "Option",
    "Reason",
    "SizingInput",
    "SizingReport",
    "Slo",
    "TargetLoad",
    "engine_batch_defaults",
    "largest_max_model_len",
    "plan_options",
    "rank_options",
    "size",
    "size_spec",
]

# Memory the CUDA context holds before vLLM measures anything; it sits outside the
# gpu_memory_utilization budget (v0.19.0 logs: "non_torch_memory=0.51GiB" at worker init).
CUDA_CONTEXT_GIB = 0.5
# Below this many full-length sequences the KV cache is a bottleneck (rule LD205).
LOW_CONCURRENCY = 1.5
TP_CHOICES = (1, 2, 4, 8)
# The error band of the KV-token prediction, measured: 63 of the 66 logged KV figures of the
# modelled vLLM releases on bare GPUs (the 51 parsed v0.15–v0.19 sweep starts and 15 YAML
# cases in tests/data/vllm_logs, xfails excluded: pre-0.6 releases, a vGPU, mllama's image
# profile, early V1, a TP16 pool of 1.6 GiB) are within ±3 %; the 95th percentile is 2.4 %,
# the worst 4.1 % (tests/unit/test_fit_verdict.py recomputes it). A calibration replaces it by
# its own residual.
KV_ERROR_BAND = 0.03
# Warnings that say a configuration that fits may still fail at start.
_RISKS = frozenset({SizingProblem.SAMPLER_WARMUP_OOM, SizingProblem.CUDA_GRAPHS_OUTSIDE_BUDGET})
#: The most nodes ``plan`` spreads one replica over (one pipeline stage per node).
MAX_PLAN_NODES = 4


# --------------------------------------------------------------------------- data


@record
class TargetLoad:
    """The load a service must carry (``scaling.targetLoad``, or ``size``/``plan`` flags).

    ``requests_per_second`` sizes the replicas; ``concurrency`` is the offered load in
    requests in flight per replica (separate from the engine's ``max_num_seqs``);
    ``prefix_cache_hit_rate`` the share of prompt tokens the prefix cache serves.
    """

    requests_per_second: float | None = None
    avg_prompt_tokens: int = DEFAULT_AVG_PROMPT_TOKENS
    avg_output_tokens: int = DEFAULT_AVG_OUTPUT_TOKENS
    concurrency: int | None = None
    prefix_cache_hit_rate: float = 0.0


@record
class SizingInput:
    """Everything :func:`size` needs. ``None`` means "the engine's default".

    Attributes:
        model: the model architecture (catalog entry or local config.json).
        gpu: the GPU type.
        engine: the engine version (its table gives defaults and the memory model).
        tensor_parallel: GPUs that split every layer.
        pipeline_parallel: stages of consecutive layers.
        data_parallel: engine replicas of one replica (multiplies GPUs and throughput; each
            has its own KV cache and batch; a MoE model's routed experts are spread over
            tensor × data GPUs, :func:`~llmdeploy.sizing.memory.moe_shards`).
        expert_parallel: ``--enable-expert-parallel``: whole routed experts per GPU over the
            tensor × data GPUs instead of a slice of every expert.
        dtype: ``auto`` (the checkpoint's) or a torch dtype.
        quantization: the spec's quantization (a pre-quantized checkpoint's own
            method wins, as in vLLM).
        kv_cache_dtype: ``auto`` or an fp8 variant.
        max_model_len: longest request in tokens.
        gpu_memory_utilization: share of GPU memory for the engine; None = default.
        max_num_batched_tokens: scheduler token budget; None = the engine's default.
        max_num_seqs: concurrent sequences; None = derived from the KV capacity.
        target_load: expected load, for replicas and cost.
        price_per_gpu_hour: overrides the catalog price.
        multi_node: the replica may span nodes (TP × PP above a node's GPUs).
        engine_generation: ``V0``/``V1`` to force one vLLM engine (0.8-0.10).
        enforce_eager: no CUDA graphs (``--enforce-eager``).
        chunked_prefill: force chunked prefill on/off; None = the engine's default.
        slo: latency targets (p95 TTFT, TPOT); they bound ``max_num_seqs`` auto and the
            operating point replicas are sized at.
        concurrencies: offered concurrencies of the capacity curve (None: the default set).
        calibration: a per-cluster correction from the user's own start-up logs
            (:mod:`.calibration`; ``--calibration FILE``, ``resources.calibration``).
        lora: the LoRA limits (``--max-loras`` slots at ``--max-lora-rank``); their GPU
            slots come out of the KV cache (:mod:`.lora`).
        allow_long_max_model_len: ``VLLM_ALLOW_LONG_MAX_MODEL_LEN=1`` is set, so a
            ``max_model_len`` beyond the model's positions starts (a warning, not an error).
        flashinfer_sampler: the profile run samples with FlashInfer (``VLLM_USE_FLASHINFER_SAMPLER``
            in ``runtime.env``, or the start-up log's sampler line); None: the release's default
            with vLLM's image (engines/vllm.yaml ``sampler``).
        custom_all_reduce: False when vLLM's custom all-reduce is off (``--disable-custom-all-reduce``,
            no GPU peer-to-peer access, or a tensor-parallel group across nodes): its buffers are
            then not in the non-torch memory; None: by the GPU's interconnect.
        speculative: the speculative-decoding algorithm configured (SGLang's
            ``--speculative-algorithm`` in extraArgs), None without: SGLang's own fraction keeps
            more outside the static share (``memory_sglang.speculative_reserve_mib``).
    """

    model: ModelConfig
    gpu: GPU
    engine: EngineVersionInfo
    tensor_parallel: int = 1
    pipeline_parallel: int = 1
    data_parallel: int = 1
    expert_parallel: bool = False
    dtype: str = "auto"
    quantization: str = "none"
    kv_cache_dtype: str = "auto"
    max_model_len: int = 8192
    gpu_memory_utilization: float | None = None
    max_num_batched_tokens: int | None = None
    max_num_seqs: int | None = None
    target_load: TargetLoad | None = None
    price_per_gpu_hour: float | None = None
    multi_node: bool = False
    engine_generation: str | None = None
    enforce_eager: bool = False
    chunked_prefill: bool | None = None
    slo: Slo | None = None
    concurrencies: tuple[int, ...] | None = None
    calibration: Correction | None = None
    lora: LoraLimits | None = None
    allow_long_max_model_len: bool = False
    speculative: str | None = None
    flashinfer_sampler: bool | None = None
    custom_all_reduce: bool | None = None


@record
class MemoryBreakdown:
    """One GPU's memory in GiB, as the engine splits it at start."""

    total_gib: float
    usable_gib: float
    weights_gib: float
    activation_gib: float
    non_torch_gib: float
    cuda_graph_gib: float
    kv_cache_gib: float
    lora_gib: float = 0.0  # the LoRA slots, allocated with the weights

    def to_json(self) -> dict[str, float]:
        """JSON form, rounded to the MiB."""
        return {k: round(v, 3) for k, v in self.__dict__.items()}


@record
class SizingReport:
    """The verdict and the numbers behind it.

    ``per_gpu`` is the GPU that limits the KV cache (vLLM takes the minimum over ranks);
    ``per_stage`` has one breakdown per pipeline stage. With data parallel,
    ``kv_cache_tokens`` is one DP rank's cache (each rank has its own, as each vLLM
    engine logs it) and ``max_concurrency`` the sum over the ``data_parallel`` ranks.
    """

    fits: bool
    reasons: tuple[Reason, ...]
    warnings: tuple[Reason, ...]
    suggestions: tuple[str, ...]
    gpu: GPU
    model: ModelConfig
    engine_version: str
    per_gpu: MemoryBreakdown
    kv_bytes_per_token: int
    kv_cache_tokens: int
    max_concurrency: float
    max_model_len: int
    weights_bytes_total: int
    gpu_count: int
    max_num_seqs: int
    max_num_batched_tokens: int
    load_time_seconds: float
    capacity: Capacity | None
    tensor_parallel: int = 1
    pipeline_parallel: int = 1
    data_parallel: int = 1
    expert_parallel: bool = False
    dtype: str = "bfloat16"
    quantization: str = "none"
    kv_cache_dtype: str = "auto"
    gpu_memory_utilization: float = 0.9
    engine: str = "vllm"
    engine_era: str = ""
    engine_budget: str = ""
    per_stage: tuple[MemoryBreakdown, ...] = ()
    stage_kv_cache_tokens: tuple[int, ...] = ()
    cuda_graphs_counted: bool = False
    assumptions: tuple[str, ...] = field(default=())
    max_num_seqs_reason: str = ""
    calibration: Correction | None = None
    kv_error_band: float | None = None
    verdict: str = ""

    @property
    def kv_cache_tokens_range(self) -> tuple[int, int] | None:
        """(low, high) of ``kv_cache_tokens`` within the error band; None without a band."""
        if self.kv_error_band is None:
            return None
        b = self.kv_error_band
        return int(self.kv_cache_tokens * (1 - b)), int(self.kv_cache_tokens * (1 + b) + 0.999)

    @property
    def expert_parallel_size(self) -> int:
        """GPUs the routed experts are spread over as whole experts (1 without expert parallel)."""
        return moe_shards(self.tensor_parallel, self.data_parallel, self.expert_parallel)[1]
    lora: LoraLimits | None = None
    lora_cpu_cache_bytes: int | None = None  # one engine worker's adapter cache in host memory

    def to_json(self, rule_ids: Mapping[SizingProblem, str]) -> dict[str, Any]:
        """The public JSON contract (``llmdeploy size -o json``); ``rule_ids`` names each problem.

        Stable keys: ``fits``, ``reasons``, ``gpu.name``, ``gpu.memory_gib``,
        ``per_gpu.{total,usable,weights,activation,non_torch,cuda_graph,kv_cache}_gib``,
        ``kv_bytes_per_token``, ``kv_cache_tokens``, ``max_concurrency``,
        ``max_model_len``; the rest is informative.
        """
        return {
            "fits": self.fits,
            "reasons": [r.to_json(rule_ids) for r in self.reasons],
            "warnings": [r.to_json(rule_ids) for r in self.warnings],
            "suggestions": list(self.suggestions),
            "model": {"id": self.model.hf_id, "family": self.model.family},
            "gpu": {"key": self.gpu.key, "name": self.gpu.name, "memory_gib": round(self.gpu.memory_gib, 3)},
            "engine": self.engine,
            "engine_version": self.engine_version,
            "engine_memory_model": {"era": self.engine_era, "budget": self.engine_budget,
                                    "cuda_graphs_counted": self.cuda_graphs_counted},
            "parallelism": {"tensor": self.tensor_parallel, "pipeline": self.pipeline_parallel,
                            "data": self.data_parallel, "gpu_count": self.gpu_count,
                            "expert": self.expert_parallel, "expert_parallel_size": self.expert_parallel_size},
            "dtype": self.dtype,
            "quantization": self.quantization,
            "kv_cache_dtype": self.kv_cache_dtype,
            "gpu_memory_utilization": self.gpu_memory_utilization,
            "per_gpu": self.per_gpu.to_json(),
            "per_stage": [s.to_json() for s in self.per_stage],
            "kv_bytes_per_token": self.kv_bytes_per_token,
            "kv_cache_tokens": self.kv_cache_tokens,
            "kv_cache_tokens_all_ranks": self.kv_cache_tokens * self.data_parallel,
            "max_concurrency": round(self.max_concurrency, 3),
            "max_model_len": self.max_model_len,
            "max_num_seqs": self.max_num_seqs,
            "max_num_seqs_reason": self.max_num_seqs_reason,
            "max_num_batched_tokens": self.max_num_batched_tokens,
            "weights_bytes_total": self.weights_bytes_total,
            "load_time_seconds": self.load_time_seconds,
            "capacity": self.capacity.to_json() if self.capacity is not None else None,
            "lora": None if self.lora is None else {
                "max_loras": self.lora.max_loras, "max_lora_rank": self.lora.max_rank,
                "max_cpu_loras": self.lora.max_cpu_loras, "gpu_slots_gib": round(self.per_gpu.lora_gib, 3),
                "cpu_cache_gib_per_worker": None if self.lora_cpu_cache_bytes is None
                else round(self.lora_cpu_cache_bytes / 2**30, 3)},
            "assumptions": list(self.assumptions),
            "verdict": self.verdict,
            "kv_cache_tokens_band": None if self.kv_error_band is None else {
                "relative": self.kv_error_band, "low": self.kv_cache_tokens_range[0],  # type: ignore[index]
                "high": self.kv_cache_tokens_range[1],  # type: ignore[index]
                "source": "calibration" if self.calibration is not None else "measured"},
            "calibration": self.calibration.to_json() if self.calibration is not None else None,
        }


@record
class Option:
    """One GPU × TP configuration that fits (:func:`plan_options`)."""

    gpu_key: str
    gpu_name: str
    tensor_parallel: int
    gpu_count: int
    kv_cache_tokens: int
    max_concurrency: float
    cost_per_hour: float | None
    weights_gib_per_gpu: float
    report: SizingReport = field(repr=False, compare=False)
    quantization: str = "none"
    replicas: int | None = None
    cost_per_1m_output_tokens: float | None = None
    slo_missed: str | None = None
    pipeline_parallel: int = 1
    nodes: int = 1  # > 1: a multi-node replica, tensor parallel inside a node, pipeline across
    why: str | None = None  # why a multi-node layout is proposed
    requested_quantization: str = "none"  # the --quantization asked for (``quantization`` is what runs)
    topology: str = "aggregated"  # or "P/D p:d" (:func:`.roles.disaggregated_option`)
    disaggregation: DisaggSizing | None = field(default=None, repr=False, compare=False)

    def to_json(self) -> dict[str, Any]:
        """JSON form (a P/D option adds both pools, the ratio and the verdict under ``disaggregation``)."""
        cap = self.report.capacity
        per_1m = self.cost_per_1m_output_tokens
        return {"gpu": self.gpu_key, "gpu_name": self.gpu_name, "tensor_parallel": self.tensor_parallel,
                "pipeline_parallel": self.pipeline_parallel, "nodes": self.nodes, "why": self.why,
                "quantization": self.quantization, "topology": self.topology,
                "disaggregation": self.disaggregation.to_json() if self.disaggregation is not None else None,
                "gpu_count": self.gpu_count, "kv_cache_tokens": self.kv_cache_tokens,
                "max_concurrency": round(self.max_concurrency, 3),
                "weights_gib_per_gpu": round(self.weights_gib_per_gpu, 3),
                "cost_per_hour": None if self.cost_per_hour is None else round(self.cost_per_hour, 4),
                "max_num_seqs": self.report.max_num_seqs,
                "operating_concurrency": cap.concurrency if cap else None,
                "output_tokens_per_s": round(cap.decode_tokens_per_s, 2) if cap else None,
                "requests_per_s_per_replica": round(cap.requests_per_s_per_replica, 4) if cap else None,
                "replicas": self.replicas,
                "cost_per_1m_output_tokens": None if per_1m is None else round(per_1m, 4),
                "meets_slo": None if cap is None else cap.slo_missed is None,
                "slo_missed": self.slo_missed}


# --------------------------------------------------------------------------- the core


@record
class _Prep:
    """What does not depend on ``max_num_seqs``: weights, non-torch memory, KV per token."""

    mm: MemoryModel
    act_dtype: str
    quant: Quantization
    util: float
    total: int
    usable: float
    tokens: int
    default_seqs: int
    stages: tuple[StageLayout, ...]
    weights: tuple[int, ...]
    weights_total: int
    non_torch: int
    kv_per_token: tuple[int, ...]
    request_bytes: tuple[int, ...]
    lora: tuple[int, ...] = ()  # LoRA slot bytes per stage's GPU (empty: no adapters or not modelled)


@record
class _Core:
    """The memory arithmetic of one input, before reasons and advice: its :class:`_Prep`
    plus what depends on the number of sequences the engine profiles."""

    prep: _Prep
    profile_seqs: int
    stages: tuple[MemoryBreakdown, ...]
    stage_tokens: tuple[int, ...]
    stage_kv_bytes: tuple[float, ...]
    binding: int
    graphs: int

    # What does not depend on profile_seqs, read through from the prep.
    mm = property(lambda self: self.prep.mm)
    act_dtype = property(lambda self: self.prep.act_dtype)
    quant = property(lambda self: self.prep.quant)
    util = property(lambda self: self.prep.util)
    total = property(lambda self: self.prep.total)
    usable = property(lambda self: self.prep.usable)
    tokens = property(lambda self: self.prep.tokens)
    default_seqs = property(lambda self: self.prep.default_seqs)
    weights_total = property(lambda self: self.prep.weights_total)
    stage_weights = property(lambda self: self.prep.weights)
    stage_kv_per_token = property(lambda self: self.prep.kv_per_token)
    stage_request_bytes = property(lambda self: self.prep.request_bytes)

    @property
    def kv_cache_tokens(self) -> int:
        return self.stage_tokens[self.binding]


def _batch(inp: SizingInput, mm: MemoryModel, total_gib: float) -> tuple[int, int]:
    """(max_num_batched_tokens the profile uses, the engine's default max_num_seqs)."""
    engine = inp.engine
    chunked = engine.defaults.enable_chunked_prefill
    threshold = mm.activation.chunked_prefill_threshold
    if mm.generation == "V0":
        chunked = bool(threshold and inp.max_model_len > threshold)
    if mm.generation == "V1" and engine.engine == "vllm":
        chunked = True  # V1 always schedules chunked prefill for generative models
    if inp.chunked_prefill is not None:
        chunked = inp.chunked_prefill
    bd = engine.batch_defaults(total_gib, inp.gpu.name, chunked_prefill=chunked,
                               max_model_len=inp.max_model_len)
    if bd is None and engine.defaults.extra.get("max_num_tokens") is not None:
        # TensorRT-LLM: the profiling run fills --max_num_tokens with dummy context requests;
        # --max_batch_size is its sequence cap (BuildConfig defaults, engines/tensorrt-llm.yaml).
        tokens = int(engine.defaults.extra["max_num_tokens"])
        seqs = int(engine.defaults.extra.get("max_batch_size") or 128)
    elif bd is None:  # TGI: one warm-up prefill of max_batch_prefill_tokens (≈ max input)
        tokens = inp.max_model_len
        seqs = engine.defaults.max_concurrent_requests or 128
    else:
        tokens, seqs = bd.max_num_batched_tokens, bd.max_num_seqs
        if chunked and mm.generation == "V0" and mm.activation.chunked_prefill_batched_tokens:
            tokens = mm.activation.chunked_prefill_batched_tokens
    if inp.max_num_batched_tokens:
        tokens = inp.max_num_batched_tokens
    return tokens, seqs


@lru_cache(maxsize=256)
def _memory_model(engine: EngineVersionInfo, generation: str | None) -> MemoryModel:
    if generation is not None and engine.engine == "vllm" and generation not in ("V0", "V1"):
        raise ValueError(f"engine_generation must be V0 or V1, not {generation!r}")
    if generation is not None and engine.engine == "vllm":
        v = engine.version_info
        if (generation == "V1" and v < Version.parse("0.8.0")) or (generation == "V0" and v >= Version.parse("0.11.0")):
            raise ValueError(f"vLLM {engine.version} has no {generation} engine (V1 from 0.8.0, V0 until 0.10)")
    return engine.memory_model_for(generation)


@lru_cache(maxsize=8192)
def _prep(inp: SizingInput) -> _Prep:
    mm = _memory_model(inp.engine, inp.engine_generation)
    gpu, model = inp.gpu, inp.model
    tp, pp = inp.tensor_parallel, inp.pipeline_parallel
    act_dtype = resolve_dtype(model, inp.dtype, gpu)
    quant = resolve_quantization(model, inp.quantization)
    util = inp.gpu_memory_utilization if inp.gpu_memory_utilization is not None \
        else mm.default_gpu_memory_utilization
    total = cuda_total_bytes(gpu, mm)
    tokens, default_seqs = _batch(inp, mm, total / GIB)
    if inp.engine.engine == "sglang":  # SGLang picks mem_fraction_static and the chunk size itself
        from .memory_sglang import mem_fraction_static, prep_defaults
        frac, tokens, default_seqs = prep_defaults(inp.engine, gpu.memory_mib, tp, pp, mla=model.mla is not None,
                                                   max_num_batched_tokens=inp.max_num_batched_tokens,
                                                   speculative=inp.speculative)
        util = frac if inp.gpu_memory_utilization is None else mem_fraction_static(frac, inp.gpu_memory_utilization)
    stages = pipeline_stages(model.num_layers, pp, mm.pp_remainder)
    w_stage, w_total = weights_per_stage(model, mm, quant, act_dtype, tp, pp, inp.data_parallel,
                                         inp.expert_parallel)
    if inp.engine.engine == "sglang":  # what SGLang's free-memory reading adds to the checkpoint
        from .memory_sglang import loader_extra_bytes
        lin = weight_bytes_per_param(quant, dtype_bytes(act_dtype))
        fp32_rope = bool(inp.engine.defaults.extra.get("rope_cache_fp32", False))
        w_stage = tuple(w + loader_extra_bytes(model, tp, dtype_bytes(act_dtype), lin, st, rope_fp32=fp32_rope)
                        for w, st in zip(w_stage, stages, strict=True))
        w_total = sum(w_stage) * tp
    kvpt = tuple(kv_bytes_per_token(model, tp, kv_layers_on_stage(model, st), inp.kv_cache_dtype, act_dtype,
                                    mla_latent=mm.mla_latent_cache, mla_entry_align=mm.mla_entry_align_bytes)
                 for st in stages)
    reqb = tuple(request_kv_bytes(model, mm, tp, st, inp.max_model_len, tokens, inp.kv_cache_dtype, act_dtype)
                 for st in stages)
    non_torch = non_torch_bytes(mm, gpu, tp, pp, custom_all_reduce=inp.custom_all_reduce)
    if inp.engine.engine == "sglang":  # gone before SGLang's start reading, so only mfs of it counts
        non_torch = int(non_torch * util)
    cal = inp.calibration
    if cal is not None:  # the user's own logs (sizing/calibration.py): measured − predicted per GPU
        non_torch = max(0, int(non_torch + cal.non_torch_gib * GIB))
        if cal.weights_gib:
            w_stage = tuple(max(0, int(w + cal.weights_gib * GIB)) for w in w_stage)
    lora: tuple[int, ...] = ()
    if inp.lora is not None:
        from .lora import lora_slot_bytes

        per = [lora_slot_bytes(model, inp.lora, tensor_parallel=tp, layers=st.num_layers, dtype=act_dtype)
               for st in stages]
        lora = tuple(b for b in per if b is not None) if all(b is not None for b in per) else ()
    # TensorRT-LLM's fraction applies to what the profile run leaves free (fraction_of_free):
    # the whole device is "usable" and the fraction scales the rest in _evaluate.
    usable = total if mm.fraction_of_free else total * util
    return _Prep(mm, act_dtype, quant, util, total, usable, tokens, default_seqs, stages, w_stage,
                 w_total, non_torch, kvpt, reqb, lora)


def _evaluate(inp: SizingInput, p: _Prep, seqs: int) -> _Core:
    """The memory split when the engine profiles ``seqs`` sequences."""
    model, mm = inp.model, p.mm
    tp = inp.tensor_parallel
    moe_tp = moe_shards(tp, inp.data_parallel, inp.expert_parallel)[0]
    piecewise, full = cuda_graph_sizes(mm, seqs, p.tokens)
    graphs = 0 if inp.enforce_eager else piecewise + full
    breakdowns, toks, kvb = [], [], []
    for i, (st, w) in enumerate(zip(p.stages, p.weights, strict=True)):
        act = activation_bytes(model, mm, p.quant, p.act_dtype, tp, st, p.tokens, seqs, moe_tp,
                               flashinfer_sampler=inp.flashinfer_sampler, gpu=inp.gpu)
        if inp.calibration is not None:
            act = max(0, int(act + inp.calibration.activation_gib * GIB))
        cg = cuda_graph_bytes(model, mm, st, seqs, p.tokens, inp.enforce_eager)
        lora = p.lora[i] if p.lora else 0
        kv = p.usable - w - lora - act - p.non_torch - (cg if mm.cudagraph_in_budget else 0)
        kv = kv * (p.util if mm.fraction_of_free else mm.kv_budget_fraction) if kv > 0 else kv
        if inp.calibration is not None and kv > 0:
            kv = kv * inp.calibration.kv_tokens_ratio
        toks.append(kv_tokens(int(kv), model, mm, tp, st, inp.max_model_len, p.tokens, inp.kv_cache_dtype,
                              p.act_dtype))
        kvb.append(kv)
        breakdowns.append(MemoryBreakdown(
            total_gib=p.total / GIB, usable_gib=p.usable / GIB, weights_gib=w / GIB, activation_gib=act / GIB,
            non_torch_gib=p.non_torch / GIB, cuda_graph_gib=cg / GIB, kv_cache_gib=max(kv, 0) / GIB,
            lora_gib=lora / GIB,
        ))
    binding = min(range(len(toks)), key=lambda i: (toks[i], kvb[i]))
    return _Core(p, seqs, tuple(breakdowns), tuple(toks), tuple(kvb), binding, graphs)


def _core(inp: SizingInput) -> _Core:
    p = _prep(replace(inp, max_num_seqs=None) if inp.max_num_seqs is not None else inp)
    return _evaluate(inp, p, inp.max_num_seqs or p.default_seqs)


def engine_batch_defaults(inp: SizingInput) -> tuple[int, int]:
    """(max_num_batched_tokens, max_num_seqs) the engine would use by itself for ``inp``.

    The token budget is the user's when set; ``max_num_seqs`` is the engine's default
    for this GPU (vLLM's tiers by device memory), before llmdeploy derives its own.
    """
    mm = _memory_model(inp.engine, inp.engine_generation)
    return _batch(inp, mm, cuda_total_bytes(inp.gpu, mm) / GIB)


def _fits_memory(c: _Core) -> bool:
    return all(kv >= req for kv, req in zip(c.stage_kv_bytes, c.stage_request_bytes, strict=True))


def typical_request(inp: SizingInput) -> tuple[int, int]:
    """(prompt, output) tokens of the typical request: ``targetLoad``'s, else the default chat request."""
    tl = inp.target_load
    prompt = tl.avg_prompt_tokens if tl is not None else DEFAULT_AVG_PROMPT_TOKENS
    output = tl.avg_output_tokens if tl is not None else DEFAULT_AVG_OUTPUT_TOKENS
    return prompt, output


def _perf_deployment(inp: SizingInput, c: _Core, seqs: int) -> Any:
    return deployment(
        model=inp.model, gpu=inp.gpu, q=c.quant, tp=inp.tensor_parallel, pp=inp.pipeline_parallel,
        dp=inp.data_parallel, weights_per_stage=c.stage_weights, kv_bytes_per_token_per_stage=c.stage_kv_per_token,
        kv_cache_tokens=c.kv_cache_tokens, max_num_seqs=seqs, max_num_batched_tokens=c.tokens,
        engine_version=inp.engine.version, engine=inp.engine.engine,
        prefix_hit_rate=inp.target_load.prefix_cache_hit_rate if inp.target_load else 0.0,
    )


def _analyse(inp: SizingInput) -> tuple[SizingInput, _Core, str]:
    """Run the core; with ``max_num_seqs`` auto, choose it and size with that value.

    ``max_num_seqs`` auto keeps the engine's own default (vLLM: 256, or 1024 on GPUs with
    ≥ 70 GiB other than A100s): vLLM admits requests while their KV blocks last and
    preempts (recomputes) the newest when the cache fills, so a cap at what the cache
    holds of *full-length* requests only throttles real traffic. With a TPOT SLO the cap
    is the largest batch that still meets it, but never below what the expected requests
    need: ``targetLoad.concurrency`` when given, else as many typical requests
    (``targetLoad`` lengths or 512 + 256 tokens) as the KV cache holds. An SLO the GPU
    misses even for one sequence does not cap anything (the capacity report says so).
    vLLM profiles its sampler over ``max_num_seqs`` sequences, so the KV cache is sized
    with the value chosen; when that many would leave no room for one request of
    ``max_model_len`` (the engine would not start) it becomes the most that starts. Returns the input with the value, the core and the reason.
    """
    c = _core(inp)
    if inp.max_num_seqs is not None:
        return inp, c, "set in the spec (runtime.maxNumSeqs) or on the command line"
    if inp.engine.engine != "vllm":
        return inp, c, f"{inp.engine.engine}'s default"
    p = _prep(inp)
    default = c.default_seqs
    prompt, output = typical_request(inp)
    typical = max(1, min(inp.max_model_len, prompt + output))
    kv_typical = c.kv_cache_tokens // typical
    tl = inp.target_load
    if tl is not None and tl.concurrency:
        needed = tl.concurrency
    else:
        # As many typical requests as the KV cache holds when the engine profiles that many
        # sequences (a smaller profile leaves more cache): the smallest s ≥ fit(s).
        def enough(n: int) -> bool:
            return n >= _evaluate(inp, p, n).kv_cache_tokens // typical

        lo, hi = 1, max(1, default)
        if not enough(hi):
            lo = hi
        while lo < hi:
            mid = (lo + hi) // 2
            if enough(mid):
                hi = mid
            else:
                lo = mid + 1
        needed = lo
    seqs = default
    reason = f"the engine's default ({default} on {inp.gpu.name})"
    slo = inp.slo
    if slo is not None and slo.tpot_ms is not None and kv_typical >= 1:
        d = _perf_deployment(inp, c, default)
        s_slo = slo_concurrency(d, prompt, output, Slo(tpot_ms=slo.tpot_ms), default)
        if 0 < s_slo < default:
            seqs = min(default, max(needed, s_slo))
            reason = (f"the largest batch meeting the TPOT SLO of {slo.tpot_ms:g} ms is {s_slo}, never "
                      f"below the {needed} requests expected at once "
                      + ("(targetLoad.concurrency)" if tl is not None and tl.concurrency else
                         f"(the typical requests of {typical} tokens the KV cache holds at that batch)"))
        elif s_slo == 0:
            reason += f"; the TPOT SLO of {slo.tpot_ms:g} ms is missed even by one sequence, so it caps nothing"
    if tl is not None and tl.concurrency and tl.concurrency > seqs:
        seqs = tl.concurrency
        reason = f"targetLoad.concurrency (above the engine's default {default})"
    e = _evaluate(inp, p, seqs)
    if not _fits_memory(e) and seqs > 1 and _fits_memory(_evaluate(inp, p, 1)):
        # vLLM profiles its sampler over max_num_seqs sequences: with that many the KV cache
        # cannot hold one request of maxModelLen and the engine would not start. The largest
        # count that still starts (memory only grows with the count).
        lo, hi = 1, seqs
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if _fits_memory(_evaluate(inp, p, mid)):
                lo = mid
            else:
                hi = mid - 1
        reason = (f"the engine's default of {seqs} would leave too little KV cache for one request of "
                  f"maxModelLen {inp.max_model_len:,} (vLLM profiles its sampler over max_num_seqs sequences), "
                  f"{lo} is the most that starts")
        seqs = lo
        e = _evaluate(inp, p, seqs)
    full = e.kv_cache_tokens // max(inp.max_model_len, 1)
    typical_fit = e.kv_cache_tokens // typical
    reason += (f"; the KV cache holds {typical_fit} typical requests ({typical} tokens) and {full} of maxModelLen "
               f"{inp.max_model_len:,}")
    if full < seqs:
        reason += (": beyond that vLLM queues new requests, and long requests can make it preempt (recompute) "
                   "running ones")
    return replace(inp, max_num_seqs=seqs), e, reason


def size(inp: SizingInput) -> SizingReport:
    """Size one configuration: memory per GPU, KV tokens, verdict, advice, capacity and cost.

    Args:
        inp: the model, GPU, engine version and settings.

    Returns:
        The report; ``fits`` is False when any reason (an error) applies.
    """
    return _size(inp, advise=True)


def _size(inp: SizingInput, *, advise: bool) -> SizingReport:
    from . import advise as adv

    eff, c, seqs_reason = _analyse(inp)
    reasons, warnings = adv.reasons(inp, c)
    fits = not reasons
    b = c.stages[c.binding]
    seqs = eff.max_num_seqs or c.default_seqs
    tokens = c.kv_cache_tokens
    # vLLM's "Maximum concurrency": blocks over the blocks one request takes (hybrid models:
    # windowed and recurrent groups take fewer than the token count suggests).
    # Each data-parallel rank has its own KV cache and batch: the replica holds the sum.
    conc = inp.data_parallel * max_concurrency(
        int(c.stage_kv_bytes[c.binding]), inp.model, c.mm, inp.tensor_parallel, c.prep.stages[c.binding],
        inp.max_model_len, c.tokens, inp.kv_cache_dtype, c.act_dtype)
    gpu_count = inp.tensor_parallel * inp.pipeline_parallel * inp.data_parallel
    price = inp.price_per_gpu_hour if inp.price_per_gpu_hour is not None else inp.gpu.price_per_gpu_hour_usd
    capacity = None
    if fits:
        tl = inp.target_load
        concurrencies = inp.concurrencies
        if concurrencies is None and tl is not None and tl.concurrency:
            concurrencies = tuple(sorted({1, tl.concurrency}))
        capacity = estimate_capacity(
            _perf_deployment(inp, c, seqs), gpu=inp.gpu,
            requests_per_second=tl.requests_per_second if tl else None,
            avg_prompt_tokens=tl.avg_prompt_tokens if tl else None,
            avg_output_tokens=tl.avg_output_tokens if tl else None, price_per_gpu_hour=price,
            concurrencies=concurrencies, slo=inp.slo,
        )
    load = estimate_load_seconds(
        weights_bytes_total=c.weights_total, generation=c.mm.generation, graphs=c.graphs,
        layers_per_gpu=max(st.num_layers for st in pipeline_stages(inp.model.num_layers, inp.pipeline_parallel,
                                                                     c.mm.pp_remainder)),
        gpu_count=gpu_count,
    )
    report = SizingReport(
        fits=fits, reasons=tuple(reasons), warnings=tuple(warnings), suggestions=(),
        gpu=inp.gpu, model=inp.model, engine_version=inp.engine.version, per_gpu=b,
        kv_bytes_per_token=c.stage_kv_per_token[c.binding], kv_cache_tokens=tokens, max_concurrency=conc,
        max_model_len=inp.max_model_len, weights_bytes_total=c.weights_total, gpu_count=gpu_count,
        max_num_seqs=seqs, max_num_batched_tokens=c.tokens, load_time_seconds=load, capacity=capacity,
        tensor_parallel=inp.tensor_parallel, pipeline_parallel=inp.pipeline_parallel,
        data_parallel=inp.data_parallel, expert_parallel=inp.expert_parallel, dtype=c.act_dtype,
        quantization=c.quant.label,
        kv_cache_dtype=inp.kv_cache_dtype, gpu_memory_utilization=c.util, engine=inp.engine.engine,
        engine_era=c.mm.era, engine_budget=c.mm.budget, per_stage=c.stages, stage_kv_cache_tokens=c.stage_tokens,
        cuda_graphs_counted=c.mm.cudagraph_in_budget, assumptions=adv.memory_assumptions(inp, c),
        max_num_seqs_reason=seqs_reason, calibration=inp.calibration,
        lora=inp.lora, lora_cpu_cache_bytes=_lora_cpu(inp, c.act_dtype),
    )
    band = _kv_band(inp)
    verdict = "does not fit"
    if fits:
        # Inside the band the one request of maxModelLen may not fit after all.
        short = band is not None and any(kv * (1 - band) < req for kv, req in
                                         zip(c.stage_kv_bytes, c.stage_request_bytes, strict=True))
        verdict = "at risk" if short or any(w.problem in _RISKS for w in warnings) else "fits"
    report = replace(report, kv_error_band=band, verdict=verdict)
    if advise:
        report = replace(report, suggestions=tuple(adv.suggestions(inp, report)))
    return report


def _kv_band(inp: SizingInput) -> float | None:
    """The KV-token error band: a calibration's residual (never below 0.5 %), else the
    measured :data:`KV_ERROR_BAND` for vLLM; None for an engine without measurements (TGI)."""
    if inp.calibration is not None:
        return round(max(inp.calibration.residual_kv_error, 0.005), 4)
    return KV_ERROR_BAND if inp.engine.engine == "vllm" else None


def _lora_cpu(inp: SizingInput, dtype: str) -> int | None:
    if inp.lora is None:
        return None
    from .lora import lora_cpu_cache_bytes

    return lora_cpu_cache_bytes(inp.model, inp.lora, dtype)


# --------------------------------------------------------------------------- spec and options


def _flag_value(args: tuple[str, ...] | list[str], names: tuple[str, ...]) -> str | None:
    """The value of the first of ``names`` in ``args`` (``--flag=v`` or ``--flag v``), None if absent."""
    for i, a in enumerate(args):
        name, eq, value = a.partition("=")
        if name in names:
            if eq:
                return value
            return args[i + 1] if i + 1 < len(args) and not args[i + 1].startswith("--") else ""
    return None


def input_from_spec(spec: LLMService, model: ModelConfig, gpu: GPU, engine: EngineVersionInfo,
                    calibration: Calibration | None = None) -> SizingInput:
    """The :class:`SizingInput` a spec describes (``maxNumSeqs: auto`` → None), with the entry
    of ``calibration`` that matches it."""
    from .lora import lora_limits

    rt = spec.runtime
    par = spec.resources.parallelism
    tl = spec.scaling.target_load
    alerts = spec.monitoring.alerts
    seqs = rt.max_num_seqs if isinstance(rt.max_num_seqs, int) else None
    eager = any(a.split("=", 1)[0] in ("--enforce-eager", "--enforce_eager") for a in rt.extra_args)
    speculative = _flag_value(rt.extra_args, ("--speculative-algorithm", "--speculative_algorithm")) \
        if engine.engine == "sglang" else None
    return SizingInput(
        model=model, gpu=gpu, engine=engine, tensor_parallel=par.tensor, pipeline_parallel=par.pipeline,
        data_parallel=par.data, expert_parallel=par.expert, dtype=spec.model.dtype,
        quantization=spec.model.quantization,
        kv_cache_dtype=rt.kv_cache_dtype, max_model_len=rt.max_model_len,
        gpu_memory_utilization=rt.gpu_memory_utilization, max_num_batched_tokens=rt.max_num_batched_tokens,
        max_num_seqs=seqs,
        target_load=TargetLoad(tl.requests_per_second, tl.avg_prompt_tokens, tl.avg_output_tokens,
                               tl.concurrency, tl.prefix_cache_hit_rate or 0.0) if tl else None,
        enforce_eager=eager, chunked_prefill=rt.chunked_prefill,
        allow_long_max_model_len=allows_long_max_model_len(spec),
        flashinfer_sampler=_env_flag(spec, "VLLM_USE_FLASHINFER_SAMPLER"),
        custom_all_reduce=False if any(a.split("=", 1)[0] in ("--disable-custom-all-reduce",
                                                               "--disable_custom_all_reduce")
                                       for a in rt.extra_args) else None,
        slo=Slo(ttft_p95_ms=alerts.ttft_p95_seconds * 1e3, tpot_ms=alerts.itl_p95_seconds * 1e3),
        calibration=None if calibration is None else
        calibration.match(gpu.key, engine.engine, engine.version, par.tensor, model.hf_id),
        lora=lora_limits(spec),
        speculative=speculative,
    )


def _env_flag(spec: LLMService, name: str) -> bool | None:
    """A boolean vLLM environment variable of ``runtime.env`` (vllm/envs.py reads ``bool(int(v))``);
    None when unset or not a literal value."""
    for e in spec.runtime.env:
        if e.name == name and e.value is not None:
            v = e.value.strip().lower()
            if v in ("1", "true"):
                return True
            if v in ("0", "false"):
                return False
    return None


def allows_long_max_model_len(spec: LLMService) -> bool:
    """The spec sets ``VLLM_ALLOW_LONG_MAX_MODEL_LEN`` (vllm/envs.py) to a true value in ``runtime.env``."""
    return any(e.name == "VLLM_ALLOW_LONG_MAX_MODEL_LEN" and (e.value or "").strip().lower() in ("1", "true")
               for e in spec.runtime.env)


def size_spec(spec: LLMService, model: ModelConfig, gpu: GPU, engine: EngineVersionInfo,
              calibration: Calibration | None = None) -> SizingReport:
    """Size a validated spec (the pipeline's ``size`` stage)."""
    return size(input_from_spec(spec, model, gpu, engine, calibration))


def plan_options(
    model: ModelConfig,
    *,
    max_model_len: int,
    engine: EngineVersionInfo,
    dtype: str = "auto",
    quantization: str = "none",
    kv_cache_dtype: str = "auto",
    gpu_memory_utilization: float | None = None,
    gpus: list[GPU] | tuple[GPU, ...] | None = None,
    tp_choices: tuple[int, ...] = TP_CHOICES,
    target_load: TargetLoad | None = None,
    slo: Slo | None = None,
    quantizations: tuple[str, ...] | None = None,
    calibration: Calibration | None = None,
) -> list[Option]:
    """Every GPU × TP (× quantization) that fits, cheapest first (:func:`rank_options`).

    :func:`.roles.with_disaggregated` adds each option's prefill/decode alternative.

    Without a request rate "cheapest" is per hour (GPUs without a price last). With
    ``target_load.requests_per_second`` each option gets the replicas the rate needs at
    the operating point the SLO allows, and the options are ordered by dollars per
    million output tokens at that load; options that miss the SLO even with one
    sequence per replica come last, with the reason. For each GPU the TP sizes up to
    its ``gpus_per_node`` are tried; when none fits on a node of 8+ NVLink/Infinity Fabric
    GPUs, the fewest nodes (2 to ``MAX_PLAN_NODES``, whose count divides the layers) with
    tensor parallel over a node and one pipeline stage per node, with ``why`` saying so:
    so a 16-bit model too large for a node is listed next to its quantized one-node
    options, cheapest first.
    """
    if gpus is None:
        from ..catalog import gpus as catalog_gpus

        gpus = list(catalog_gpus().values())
    out: list[Option] = []
    for q in quantizations or (quantization,):
        out.extend(_plan_options(model, max_model_len, engine, dtype, q, kv_cache_dtype,
                                 gpu_memory_utilization, tuple(gpus), tuple(tp_choices), target_load, slo,
                                 calibration))
    return rank_options(out, rated=target_load is not None and target_load.requests_per_second is not None)


def rank_options(options: list[Option], *, rated: bool) -> list[Option]:
    """Cheapest first: per 1M output tokens at the load (SLO misses last) when ``rated``, else per hour.

    Ties go to fewer GPUs, then to the larger KV cache, then to the aggregated topology.
    """
    if rated:
        return sorted(options, key=lambda o: (o.slo_missed is not None, o.cost_per_1m_output_tokens is None,
                                              o.cost_per_1m_output_tokens or 0.0, o.gpu_count, -o.kv_cache_tokens,
                                              o.topology != "aggregated"))
    return sorted(options, key=lambda o: (o.cost_per_hour is None, o.cost_per_hour or 0.0, o.gpu_count,
                                          -o.kv_cache_tokens, o.topology != "aggregated"))


def _multi_node_capable(gpu: GPU) -> bool:
    """Nodes worth joining into one replica: 8 or more GPUs on NVLink / Infinity Fabric.

    Tensor parallel then stays on the node's fast links and only pipeline stages cross
    the network (docs/topologies.md); nodes of a few PCIe GPUs are left out.
    """
    return gpu.gpus_per_node >= 8 and gpu.interconnect != "pcie"


@lru_cache(maxsize=512)
def _plan_options(
    model: ModelConfig, max_model_len: int, engine: EngineVersionInfo, dtype: str, quantization: str,
    kv_cache_dtype: str, gpu_memory_utilization: float | None, gpus: tuple[GPU, ...],
    tp_choices: tuple[int, ...], target_load: TargetLoad | None, slo: Slo | None,
    calibration: Calibration | None = None,
) -> tuple[Option, ...]:
    out: list[Option] = []
    for gpu in gpus:
        layouts = [(tp, 1) for tp in tp_choices if tp <= gpu.gpus_per_node]
        # When no one-node layout fits, the fewest whole nodes that do: tensor parallel over
        # a node's GPUs, one pipeline stage per node (docs/topologies.md; LD802-LD804 hold).
        if _multi_node_capable(gpu):
            layouts += [(gpu.gpus_per_node, n) for n in range(2, MAX_PLAN_NODES + 1) if model.num_layers % n == 0]
        fitted_one_node = False
        for tp, pp in layouts:
            if pp > 1 and fitted_one_node:
                break
            r = _size(SizingInput(model=model, gpu=gpu, engine=engine, tensor_parallel=tp, pipeline_parallel=pp,
                                  multi_node=pp > 1,
                                  dtype=dtype, quantization=quantization, kv_cache_dtype=kv_cache_dtype,
                                  max_model_len=max_model_len, gpu_memory_utilization=gpu_memory_utilization,
                                  target_load=target_load, slo=slo,
                                  calibration=None if calibration is None else
                                  calibration.match(gpu.key, engine.engine, engine.version, tp, model.hf_id)),
                      advise=False)
            if not r.fits:
                continue
            why = None
            if pp > 1:
                q = r.quantization.split(" ")[0]
                how = "unquantized" if q == "none" else f"in {q}"
                why = (f"one {gpu.key} node ({gpu.gpus_per_node} GPUs) cannot hold {model.hf_id} {how}; {pp} nodes: "
                       f"tensor {tp} inside each node, pipeline {pp} across them ({model.num_layers // pp} layers "
                       "per stage)")
            fitted_one_node = fitted_one_node or pp == 1
            cap = r.capacity
            cost = cap.cost_per_hour if cap is not None else None
            per_1m = cap.cost_per_1m_output_tokens if cap is not None else None
            replicas = cap.replicas_needed if cap is not None else None
            rate = target_load.requests_per_second if target_load is not None else None
            if cap is not None and cost is not None and replicas and rate:
                # The fleet's cost over the tokens the target load asks for.
                per_1m = cost * replicas / (rate * cap.output_tokens * 3600) * 1e6
            out.append(Option(gpu.key, gpu.name, tp, r.gpu_count, r.kv_cache_tokens, r.max_concurrency,
                              cost, r.per_gpu.weights_gib, r, r.quantization, replicas, per_1m,
                              cap.slo_missed if cap is not None else None, pp, pp, why, quantization))
            if pp > 1:
                break  # the fewest nodes that fit; more only add cost
    return tuple(out)


def largest_max_model_len(inp: SizingInput) -> int:
    """The longest ``max_model_len`` (a multiple of the block size) that still fits, or 0."""
    block = _memory_model(inp.engine, inp.engine_generation).block_size
    hi = max(inp.model.max_position_embeddings, inp.max_model_len)
    # The memory verdict is monotone in max_model_len (longer needs more KV, and V0's
    # profile grows with it), so a binary search over blocks finds the edge.
    lo_b, hi_b = 0, hi // block
    while lo_b < hi_b:
        mid = (lo_b + hi_b + 1) // 2
        if _fits_memory(_core(replace(inp, max_model_len=mid * block, max_num_seqs=inp.max_num_seqs))):
            lo_b = mid
        else:
            hi_b = mid - 1
    return lo_b * block

