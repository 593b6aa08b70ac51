"""The serving performance model: step time, throughput, TPOT and TTFT of a vLLM replica.

Calibrated on public benchmark runs (``tests/data/perf_runs``; the constants and the
source of each in ``perf_vllm.yaml`` beside this file; the fit in
``benchmarks/fit_perf.py``; the scores in ``tests/unit/test_perf_calibration.py``).

One engine step (a forward pass over every scheduled token) costs::

    step = overhead(engine era, layers)
         + PP × max(memory, compute)                       per pipeline stage, run in turn
         + TP communication                                2 all-reduces per layer
    memory  = (weights read + KV read) / (HBM bandwidth × efficiency(GPU))
    compute = (2 × active params × tokens + 4 × layers × attention width × context) / TP·PP
              / (dense peak × efficiency(GPU))             FP8 peak only for W8A8 on FP8 GPUs
    comm    = layers × (latency(interconnect, TP) + 2 × tokens × hidden × 2 B / bus bandwidth)

MoE steps read the routed experts their tokens touch (``1 − (1 − k/E)^tokens`` of
them); weight-only quantized kernels (AWQ, GPTQ, MXFP4, FP8 on Ampere) read fewer bytes
but compute at the 16-bit peak plus a dequantization cost. Sliding-window layers read at
most the window. MLA attends over the latent (heads × (kv_lora_rank + rope dim)).

:func:`steady_state` gives the closed-form operating point at a concurrency (what
``llmdeploy size`` prints); :func:`simulate` replays a benchmark (requests released at
once, at a Poisson rate or by a fixed number of clients) step by step through a model of
vLLM's scheduler (token budget, ``max_num_seqs``, KV-cache admission, chunked prefill in
V1, prefill-first steps in V0). Both use the same :func:`step_time`.
"""

from __future__ import annotations

import heapq
import math
import random
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..records import record

if TYPE_CHECKING:  # pragma: no cover
    from ..catalog import GPU, ModelConfig
    from .memory import Quantization

__all__ = [
    "Deployment",
    "Hardware",
    "PerfArch",
    "Point",
    "Request",
    "SimResult",
    "arch_from_model",
    "chat_template_seconds",
    "constants_engine",
    "hardware",
    "link_name",
    "load_constants",
    "pipeline_hop_seconds",
    "sharegpt_lengths",
    "simulate",
    "steady_state",
    "step_time",
    "tail_ratio",
]

DATA_FILE = Path(__file__).resolve().parent / "perf_vllm.yaml"
BOUNDS = ("max_num_seqs", "kv_cache", "memory_bandwidth", "compute", "communication")


# --------------------------------------------------------------------------- records


@record
class PerfArch:
    """What the performance model needs of a model architecture.

    Attributes:
        layers: decoder layers.
        hidden: model width (the all-reduce message per token is ``hidden × 2`` bytes).
        attention_width: query heads × the size a query attends with per context token
            (``head_dim``; MLA: ``kv_lora_rank + qk_rope_head_dim``, the absorbed form).
        active_parameters: parameters one token passes through (matmul FLOPs = 2 × this).
        expert_share: share of the weight bytes held in routed experts (0 for dense).
        num_experts: routed experts per MoE layer (0 for dense).
        experts_per_token: top-k.
        full_attention_share: share of layers attending to the whole context.
        window: sliding window of the other layers (tokens), 0 without.
        kernel: ``bf16`` (16-bit weights), ``w8a8`` (FP8/INT8 weights and activations on
            tensor cores that run them) or ``weight_only`` (4-bit or FP8-as-weight-only:
            fewer bytes, 16-bit math).
        moe_layers: layers with routed experts (a fixed routing/grouped-GEMM cost each step).
    """

    layers: int
    hidden: int
    attention_width: int
    active_parameters: float
    expert_share: float = 0.0
    num_experts: int = 0
    experts_per_token: int = 0
    full_attention_share: float = 1.0
    window: int = 0
    kernel: str = "bf16"
    moe_layers: int = 0


@record
class Hardware:
    """The calibrated constants for one GPU type on one engine era (from ``perf_<engine>.yaml``).

    ``engine`` is the engine whose constants these are; ``caveat`` says why when they stand
    in for another engine's (no calibrated model of its own).
    """

    gpu: str
    era: str
    bandwidth_gbs: float
    peak_tflops: float
    fp8_tflops: float | None
    bandwidth_efficiency: float
    compute_efficiency: float
    step_overhead_s: float
    step_overhead_per_layer_s: float
    step_overhead_per_seq_s: float
    ttft_overhead_s: float
    request_overhead_s: float
    allreduce_latency_s: Mapping[int, float] = field(hash=False)
    bus_bandwidth_gbs: float = 100.0
    pipeline_hop_s: float = 0.0
    stage_bandwidth_gbs: float = 0.0
    weight_only_compute_factor: float = 1.0
    moe_overhead_per_layer_s: float = 0.0
    chunked_prefill: bool = True
    sources: tuple[str, ...] = ()
    engine: str = "vllm"
    caveat: str | None = None

    def allreduce_latency(self, tp: int) -> float:
        """Seconds per layer (two all-reduces) at tensor-parallel size ``tp``; interpolated in log2(TP)."""
        if tp <= 1:
            return 0.0
        table = self.allreduce_latency_s
        if tp in table:
            return table[tp]
        keys = sorted(table)
        lo = max((k for k in keys if k < tp), default=keys[0])
        hi = min((k for k in keys if k > tp), default=keys[-1])
        if lo == hi:
            return table[lo] * math.log2(tp) / math.log2(lo)
        f = (math.log2(tp) - math.log2(lo)) / (math.log2(hi) - math.log2(lo))
        return table[lo] + f * (table[hi] - table[lo])


@record
class Deployment:
    """One replica: architecture, hardware constants, parallelism and the engine's limits.

    ``weights_bytes_per_gpu`` and ``kv_bytes_per_token_per_gpu`` are those of the largest
    pipeline stage (what the memory model computes per rank). ``chat_template_s`` is the
    API server's cost of rendering the model's chat template for one chat request
    (:func:`chat_template_seconds`). ``stage_network`` is the node-to-node fabric
    (``infiniband``, ``roce``, ``ethernet``) pipeline stages hand activations over when
    they sit on different nodes; None: the stages share a node (the GPU's own link).
    ``prefix_hit_rate`` is the share of each prompt's tokens found in the prefix cache
    (computed by an earlier request): they are not prefilled again, but the prompt's
    remaining tokens still attend to them (see :func:`steady_state`).
    """

    arch: PerfArch
    hw: Hardware
    tensor_parallel: int
    pipeline_parallel: int
    weights_bytes_per_gpu: float
    kv_bytes_per_token_per_gpu: float
    kv_cache_tokens: int
    max_num_seqs: int
    max_num_batched_tokens: int
    data_parallel: int = 1
    chat_template_s: float = 0.0
    stage_network: str | None = None
    prefix_hit_rate: float = 0.0


@record
class StepCost:
    """One step's time and its parts (seconds)."""

    seconds: float
    memory: float
    compute: float
    communication: float
    overhead: float

    @property
    def bound(self) -> str:
        """What dominates the step: ``memory_bandwidth``, ``compute`` or ``communication``."""
        if self.communication > max(self.memory, self.compute):
            return "communication"
        return "compute" if self.compute > self.memory else "memory_bandwidth"


@record
class Point:
    """The replica's operating point at one offered concurrency (see :func:`steady_state`)."""

    concurrency: int
    running: int
    output_tokens_per_s: float
    per_sequence_tokens_per_s: float
    tpot_ms: float
    ttft_ms: float
    requests_per_s: float
    bound: str
    step_ms: float
    cost_per_1m_output_tokens: float | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSON form of ``capacity.points[]``."""
        return {
            "concurrency": self.concurrency,
            "running": self.running,
            "output_tokens_per_s": round(self.output_tokens_per_s, 2),
            "per_sequence_tokens_per_s": round(self.per_sequence_tokens_per_s, 2),
            "tpot_ms": round(self.tpot_ms, 2),
            "ttft_ms": round(self.ttft_ms, 1),
            "requests_per_s": round(self.requests_per_s, 4),
            "cost_per_1m_output_tokens": None if self.cost_per_1m_output_tokens is None
            else round(self.cost_per_1m_output_tokens, 4),
            "bound": self.bound,
        }


# --------------------------------------------------------------------------- constants


def _check_number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValueError(f"{DATA_FILE.name}: {where} must be a non-negative number (got {value!r})")
    return float(value)


# The constants file of each engine's performance model, beside this module. An engine
# without its own file (or whose file is not there) uses vLLM's, with a caveat.
ENGINE_FILES = {"vllm": "perf_vllm.yaml", "sglang": "perf_sglang.yaml", "tensorrt-llm": "perf_tensorrt-llm.yaml"}
FALLBACK_CAVEATS = {
    "tgi": "TGI has no calibrated performance model: vLLM's constants stand in (both run paged attention "
           "with continuous batching; TGI's own scheduler and kernels may differ by tens of percent)",
}


@cache
def constants_engine(engine: str | None) -> tuple[str, str | None]:
    """(the engine whose constants apply to ``engine``, the caveat when it is another one).

    Works on any engine name string: ``vllm``, ``sglang`` and ``tensorrt-llm`` have (or
    will have) their own file; others fall back to vLLM's with a stated caveat. Cached: the
    files ship with the package (``plan`` asks several times per GPU × TP option).
    """
    name = (engine or "vllm").lower()
    if name in ENGINE_FILES and (DATA_FILE.parent / ENGINE_FILES[name]).is_file():
        return name, None
    if name == "vllm":  # pragma: no cover - the vLLM file ships with the package
        raise ValueError(f"{DATA_FILE.name} is missing")
    caveat = FALLBACK_CAVEATS.get(name) or (
        f"no calibrated performance model for {name}: vLLM's constants stand in (no public {name} runs "
        "were replayable; see docs/sizing.md §9)")
    return "vllm", caveat


@cache
def load_constants(engine: str = "vllm") -> Mapping[str, Any]:
    """The parsed constants file of ``engine`` (cached; the datafiles reader keeps a JSON copy)."""
    from ..datafiles import load_yaml_data

    path = DATA_FILE.parent / ENGINE_FILES[constants_engine(engine)[0]]
    data = load_yaml_data(path)
    if isinstance(data, dict) and "inherits" in data:
        data = _inherit(data, path.name)
    if not isinstance(data, dict) or not all(k in data for k in ("gpus", "eras", "interconnects", "defaults", "tails", "frontend", "networks")):
        raise ValueError(f"{path.name}: expected the sections gpus, eras, interconnects, defaults, tails, frontend, networks")
    return data


def _inherit(data: Mapping[str, Any], name: str) -> dict[str, Any]:
    """An engine file that states ``inherits: <engine>``: its sections over that engine's.

    The file states only the constants its runs pin. A mapping section (``gpus``,
    ``interconnects``, ``networks``, ``defaults``, ``tails``, ``frontend``) is merged entry by
    entry (an entry the file states replaces the parent's); a list (``eras``) replaces the
    parent's whole.
    """
    parent_name = data["inherits"]
    if parent_name not in ENGINE_FILES or ENGINE_FILES[parent_name] == name:
        raise ValueError(f"{name}: inherits must name another engine's constants file (got {parent_name!r})")
    parent = load_constants(parent_name)
    merged: dict[str, Any] = dict(parent)
    for key, value in data.items():
        if key == "inherits":
            continue
        if isinstance(value, dict) and isinstance(parent.get(key), dict):
            merged[key] = {**parent[key], **value}
        else:
            merged[key] = value
    return merged


def _era(version: str | None, engine: str = "vllm") -> Mapping[str, Any]:
    """The engine era whose step overhead applies (unknown version: the newest era)."""
    from ..engines import Version

    eras = load_constants(engine)["eras"]
    if version is None:
        return eras[0]
    try:
        v = Version.parse(version)
    except ValueError:
        return eras[0]
    for era in eras:
        if v >= Version.parse(str(era["from"])):
            return era
    return eras[-1]


def hardware(gpu: GPU, engine_version: str | None, overrides: Mapping[str, float] | None = None,
             engine: str = "vllm") -> Hardware:
    """The calibrated constants for ``gpu`` on ``engine`` at the era of ``engine_version``.

    ``engine`` is the spec's engine name (``vllm``, ``sglang``, ``tensorrt-llm``, ``tgi``,
    …): its own constants file when there is one, else vLLM's newest era with
    ``Hardware.caveat`` saying so. A GPU without its own row takes ``defaults`` (stated in
    the report's assumptions). ``overrides`` (the fitting script's trial values) replace
    any named constant.
    """
    source_engine, caveat = constants_engine(engine)
    if caveat is not None:
        engine_version = None  # another engine's release numbers mean nothing to vLLM's eras
    data = load_constants(source_engine)
    row = {**data["defaults"], **data["gpus"].get(gpu.key, {})}
    era = _era(engine_version, source_engine)
    link_key = link_name(gpu, source_engine)
    link = data["interconnects"][link_key]
    values: dict[str, Any] = {
        "bandwidth_efficiency": row["bandwidth_efficiency"],
        "compute_efficiency": row["compute_efficiency"],
        "step_overhead_ms": era["step_overhead_ms"],
        "step_overhead_per_layer_us": era["step_overhead_per_layer_us"],
        "step_overhead_per_seq_us": era["step_overhead_per_seq_us"],
        "ttft_overhead_ms": era["ttft_overhead_ms"],
        "request_overhead_ms": era["request_overhead_ms"],
        "weight_only_compute_factor": data["defaults"]["weight_only_compute_factor"],
        "moe_overhead_us_per_layer": data["defaults"]["moe_overhead_us_per_layer"],
        "bus_bandwidth_gbs": link["bus_bandwidth_gbs"],
        "pipeline_hop_us": link.get("pipeline_hop_us", 0.0),
        **{f"allreduce_us_tp{k}": v for k, v in link["allreduce_us_per_layer"].items()},
    }
    for k, v in (overrides or {}).items():
        if k in values:
            values[k] = v
        elif k.startswith(f"{gpu.key}:") and k.split(":", 1)[1] in values or k.startswith(f"{era['name']}:") and k.split(":", 1)[1] in values or k.startswith(f"{link_key}:") and k.split(":", 1)[1] in values:
            values[k.split(":", 1)[1]] = v
    for k, v in values.items():
        _check_number(v, k)
    allreduce = {int(k.rsplit("tp", 1)[1]): values[k] * 1e-6 for k in values if k.startswith("allreduce_us_tp")}
    return Hardware(
        gpu=gpu.key, era=str(era["name"]), bandwidth_gbs=gpu.memory_bandwidth_gbs,
        peak_tflops=gpu.bf16_tflops or gpu.fp16_tflops, fp8_tflops=gpu.fp8_tflops if gpu.fp8 else None,
        bandwidth_efficiency=values["bandwidth_efficiency"], compute_efficiency=values["compute_efficiency"],
        step_overhead_s=values["step_overhead_ms"] * 1e-3,
        step_overhead_per_layer_s=values["step_overhead_per_layer_us"] * 1e-6,
        step_overhead_per_seq_s=values["step_overhead_per_seq_us"] * 1e-6,
        ttft_overhead_s=values["ttft_overhead_ms"] * 1e-3,
        request_overhead_s=values["request_overhead_ms"] * 1e-3, allreduce_latency_s=allreduce,
        bus_bandwidth_gbs=values["bus_bandwidth_gbs"], pipeline_hop_s=values["pipeline_hop_us"] * 1e-6,
        # One direction of the GPU-to-GPU link (the catalog gives it bidirectional, as marketed).
        stage_bandwidth_gbs=gpu.interconnect_gbs / 2,
        weight_only_compute_factor=values["weight_only_compute_factor"],
        moe_overhead_per_layer_s=values["moe_overhead_us_per_layer"] * 1e-6, chunked_prefill=bool(era["chunked_prefill"]),
        sources=(str(row.get("source", "")), str(era.get("source", "")), str(link.get("source", ""))),
        engine=source_engine, caveat=caveat,
    )


def link_name(gpu: GPU, engine: str = "vllm") -> str:
    """The interconnect row of the constants file a GPU's tensor-parallel traffic uses.

    The GPU's own row may name one (consumer cards whose driver disables peer-to-peer
    over PCIe: vLLM then turns its custom all-reduce off and NCCL stages every message
    through host memory); else the catalog's interconnect, else ``pcie``.
    """
    data = load_constants(constants_engine(engine)[0])
    row = data["gpus"].get(gpu.key, {})
    key = str(row.get("interconnect") or gpu.interconnect)
    return key if key in data["interconnects"] else "pcie"


def tail_ratio(measure: str, percentile: str, queueing: bool = False) -> float:
    """The calibrated ``percentile`` (``p95``/``p99``) over mean of ``measure`` (``ttft``/``tpot``).

    ``queueing``: requests wait for a slot (offered load beyond what the replica runs at
    once); otherwise the queue-free ratio (a replica sized below saturation).
    """
    row = load_constants()["tails"]["queueing" if queueing else "queue_free"]
    return _check_number(row[f"{measure}_{percentile}"], f"tails.{measure}_{percentile}")


def chat_template_seconds(family: str | None, engine: str = "vllm",
                          overrides: Mapping[str, float] | None = None) -> float:
    """The API server's cost of one chat request's template rendering for a model family.

    Rendering is CPU work in the API server's event loop (per request, before the engine
    sees it); its cost depends on the template (thinking/tool logic), so the constants
    file keys it by model family, with a ``default`` for families without a fitted value.
    ``overrides`` (``chat:<family>``) are the fitting script's trial values.
    """
    table = load_constants(constants_engine(engine)[0])["frontend"]["chat_template_ms"]
    key = family if family in table else "default"
    value = (overrides or {}).get(f"chat:{key}", table[key])
    return _check_number(value, f"frontend.chat_template_ms.{key}") * 1e-3


def is_calibrated(gpu_key: str, engine: str = "vllm") -> bool:
    """Whether the engine's constants file has measured constants for this GPU (else: the defaults)."""
    source_engine, caveat = constants_engine(engine)
    if caveat is not None:
        return False
    return gpu_key in _measured_gpus(source_engine)


@cache
def _measured_gpus(engine: str) -> frozenset[str]:
    """The GPU keys of the engine's own constants file (read once per process)."""
    from ..datafiles import load_yaml_data

    # The engine's own rows: a GPU row inherited from vLLM's file is not measured on this engine.
    return frozenset(load_yaml_data(DATA_FILE.parent / ENGINE_FILES[engine])["gpus"])


# --------------------------------------------------------------------------- architecture


def kernel_kind(q: Quantization, gpu: GPU) -> str:
    """``bf16``, ``w8a8`` or ``weight_only``: how the quantized linear layers compute."""
    if not q.quantized:
        return "bf16"
    if q.bits == 8 and q.method != "bitsandbytes" and (gpu.fp8 or q.method == "int8"):
        return "w8a8"
    return "weight_only"


def arch_from_model(model: ModelConfig, q: Quantization, gpu: GPU) -> PerfArch:
    """The :class:`PerfArch` of a catalog (or config.json) model served with ``q`` on ``gpu``."""
    from ..catalog import estimate_active_parameters, estimate_num_parameters

    total = max(estimate_num_parameters(model) - model.vision_parameters, 1)
    active = estimate_active_parameters(model)
    # Embedding rows are looked up, not multiplied: the matmul parameters exclude them.
    embed = model.vocab_size * model.hidden_size
    matmul_active = max(active - (0 if model.tie_word_embeddings else embed), active * 0.5)
    share = 0.0
    moe = model.moe
    if moe is not None and moe.num_experts > moe.experts_per_token:
        expert_total = max(total - active, 0) * moe.num_experts / (moe.num_experts - moe.experts_per_token)
        share = min(1.0, expert_total / total)
    if model.mla is not None:
        width = model.num_attention_heads * (model.mla.kv_lora_rank + model.mla.qk_rope_head_dim)
    else:
        width = model.num_attention_heads * model.head_dim
    full = 1.0
    if model.sliding_window and model.sliding_window_layers:
        full = 1.0 - model.sliding_window_layers / model.num_layers
    return PerfArch(
        layers=model.num_layers, hidden=model.hidden_size, attention_width=width,
        active_parameters=float(matmul_active), expert_share=share,
        num_experts=moe.num_experts if moe else 0, experts_per_token=moe.experts_per_token if moe else 0,
        full_attention_share=full, window=model.sliding_window or 0, kernel=kernel_kind(q, gpu),
        moe_layers=(model.num_layers - moe.first_k_dense_layers) if moe else 0,
    )


# --------------------------------------------------------------------------- one step


def _kv_read_tokens(arch: PerfArch, context_sum: float, sequences: int) -> float:
    """Context tokens a step reads, sliding-window layers capped at the window."""
    if arch.full_attention_share >= 1.0 or not arch.window or sequences == 0:
        return context_sum
    windowed = min(context_sum, sequences * arch.window)
    return arch.full_attention_share * context_sum + (1 - arch.full_attention_share) * windowed


def step_time(d: Deployment, decode: int, prefill_tokens: float, context_sum: float,
              prefill_context: float = 0.0) -> StepCost:
    """One engine step: ``decode`` sequences generating a token, ``prefill_tokens`` prompt tokens.

    ``context_sum`` is the total context the decoding sequences attend to;
    ``prefill_context`` the summed attended context of the prefill tokens (causal: a
    chunk at position p of length c attends ``c·p + c²/2``).
    """
    arch, hw = d.arch, d.hw
    tp, pp = d.tensor_parallel, d.pipeline_parallel
    tokens = decode + prefill_tokens
    if tokens <= 0:
        return StepCost(0.0, 0.0, 0.0, 0.0, 0.0)
    w = d.weights_bytes_per_gpu
    if arch.num_experts:
        touched = 1.0 - (1.0 - arch.experts_per_token / arch.num_experts) ** max(tokens, 1.0)
        w = w * (1.0 - arch.expert_share) + w * arch.expert_share * touched
    kv_read = _kv_read_tokens(arch, context_sum, decode) * d.kv_bytes_per_token_per_gpu
    memory = (w + kv_read) / (hw.bandwidth_gbs * 1e9 * hw.bandwidth_efficiency)
    matmul = 2.0 * arch.active_parameters * tokens
    attention = 4.0 * arch.layers * arch.attention_width * (_kv_read_tokens(arch, context_sum, decode)
                                                          + prefill_context)
    peak = hw.peak_tflops
    if arch.kernel == "w8a8" and hw.fp8_tflops:
        peak = hw.fp8_tflops
    factor = hw.weight_only_compute_factor if arch.kernel == "weight_only" else 1.0
    compute = (matmul * factor + attention) / (tp * pp) / (peak * 1e12 * hw.compute_efficiency)
    comm = 0.0
    if tp > 1:
        comm = arch.layers * (hw.allreduce_latency(tp)
                              + 2 * tokens * arch.hidden * 2 * 2 * (tp - 1) / tp / (hw.bus_bandwidth_gbs * 1e9))
    overhead = (hw.step_overhead_s + hw.step_overhead_per_layer_s * arch.layers
                + hw.step_overhead_per_seq_s * (decode + (1 if prefill_tokens else 0))
                + (hw.moe_overhead_per_layer_s * arch.moe_layers if arch.num_experts else 0.0))
    stage = max(memory, compute)
    hop = pipeline_hop_seconds(d, tokens) * (pp - 1) if pp > 1 else 0.0
    seconds = overhead + stage * pp + comm + hop
    return StepCost(seconds, memory * pp, compute * pp, comm + hop, overhead)


def pipeline_hop_seconds(d: Deployment, tokens: float) -> float:
    """One stage boundary of one step: a fixed hand-over cost plus the activations over the link.

    Each boundary sends every scheduled token's hidden state (``hidden × 2`` bytes,
    16-bit activations) to the next stage. Inside a node: the fitted ``pipeline_hop_us``
    and the GPU's own link; across nodes (``stage_network``): the network row of the
    constants file (latency and bandwidth of the fabric).
    """
    bytes_ = tokens * d.arch.hidden * 2
    if d.stage_network is not None:
        net = load_constants(d.hw.engine)["networks"].get(d.stage_network)
        if net is None:
            raise ValueError(f"unknown stage network {d.stage_network!r} (expected one of "
                             f"{sorted(load_constants(d.hw.engine)['networks'])})")
        return float(net["latency_us"]) * 1e-6 + bytes_ / (float(net["bandwidth_gbs"]) * 1e9)
    bandwidth = d.hw.stage_bandwidth_gbs or d.hw.bus_bandwidth_gbs
    return d.hw.pipeline_hop_s + bytes_ / (bandwidth * 1e9)


def prefill_seconds(d: Deployment, prompt: int, decode: int = 0, context_sum: float = 0.0,
                    cached: int = 0) -> float:
    """Time to prefill one prompt in chunks of the token budget beside ``decode`` running sequences.

    ``cached`` leading tokens are prefix-cache hits: not computed, but every computed chunk
    attends to them (a chunk at position p of length c attends ``c·p + c²/2``).
    """
    cached = max(0, min(int(cached), prompt - 1))
    budget = max(d.max_num_batched_tokens - decode, 1) if d.hw.chunked_prefill else max(d.max_num_batched_tokens,
                                                                                          prompt - cached)
    done, seconds = cached, 0.0
    while done < prompt:
        c = min(budget, prompt - done)
        seconds += step_time(d, decode if d.hw.chunked_prefill else 0, c, context_sum,
                             c * done + c * c / 2).seconds
        done += c
    return seconds


# --------------------------------------------------------------------------- steady state


def steady_state(d: Deployment, concurrency: int, prompt: int, output: int,
                 request_rate: float | None = None, price_per_hour: float | None = None) -> Point:
    """The operating point with ``concurrency`` requests of ``prompt`` + ``output`` tokens in flight.

    The engine runs ``n = min(concurrency, max_num_seqs, KV tokens / (prompt + output))``
    of them; each step decodes one token for each and interleaves the prompts of the
    requests that replace finished ones (``n × prompt / output`` prompt tokens a step,
    chunked prefill). Requests beyond ``n`` queue. TTFT = the front end (API server and
    chat template) + fixed serving cost + the prompt's prefill beside the running batch + the wait for a slot (closed loop) or, at
    a given request rate, the queueing of prefills (M/D/1).

    Prefix caching (``d.prefix_hit_rate`` = h): each prompt computes only its
    ``(1 − h) × prompt`` uncached tokens, in TTFT and in the prefill share of the steps;
    those tokens still attend to the cached ones (the attention read over the whole
    prompt). The KV cache is still counted per request (no sharing of cached blocks between
    running requests: conservative for the batch size).
    """
    concurrency = max(1, int(concurrency))
    output = max(1, int(output))
    prompt = max(1, int(prompt))
    kv_fit = max(1, d.kv_cache_tokens // max(prompt + output, 1))
    n = min(concurrency, d.max_num_seqs, kv_fit)
    bound = None
    if n < concurrency:
        bound = "max_num_seqs" if d.max_num_seqs <= kv_fit else "kv_cache"
    ctx = n * (prompt + output / 2)
    hit = min(max(float(d.prefix_hit_rate), 0.0), 1.0)
    computed = max(1, round(prompt * (1.0 - hit)))
    cached = prompt - computed
    # Prompts of the requests that replace finished ones: n × prompt / output tokens a step
    # on average, but a prompt is prefilled in one go (or in chunks of the token budget
    # left beside the decodes), so only a share f of the steps carries one.
    pf = n * computed / output
    chunk = max(1.0, min(float(computed), float(d.max_num_batched_tokens - n) if d.hw.chunked_prefill
                         else float(computed)))
    f = min(1.0, pf / chunk)
    decode_only = step_time(d, n, 0, ctx)
    with_prefill = step_time(d, 0 if not d.hw.chunked_prefill else n, pf / f, ctx, pf / f * (cached + computed / 2))
    cost = with_prefill if f >= 0.5 else decode_only
    step = (1 - f) * decode_only.seconds + f * with_prefill.seconds
    if not d.hw.chunked_prefill:
        # V0: prefill steps pause decoding; a sequence waits through them too.
        step = decode_only.seconds + f * with_prefill.seconds
    # Front end (API server work and the chat template) + fixed cost + the prompt's prefill.
    ttft_alone = (d.hw.request_overhead_s + d.chat_template_s + d.hw.ttft_overhead_s
                  + prefill_seconds(d, prompt, n - 1 if n > 1 else 0, ctx * (n - 1) / n if n else 0.0, cached))
    req_time = ttft_alone + (output - 1) * step
    rps = n / req_time if req_time > 0 else 0.0
    ttft = ttft_alone
    if request_rate is not None and request_rate > 0:
        rho = min(request_rate / rps, 0.99) if rps else 0.99
        service = prefill_seconds(d, prompt, cached=cached)
        ttft += service * rho / (2 * (1 - rho)) + step / 2
    elif concurrency > n:
        # Closed loop: a waiting request gets a slot when one of the n running finishes.
        ttft += (concurrency - n) / rps
    tps = rps * output * d.data_parallel
    per_1m = None
    if price_per_hour is not None and tps > 0:
        per_1m = price_per_hour / (tps * 3600) * 1e6
    return Point(
        concurrency=concurrency, running=n, output_tokens_per_s=tps, per_sequence_tokens_per_s=1.0 / step,
        tpot_ms=step * 1e3, ttft_ms=ttft * 1e3, requests_per_s=rps * d.data_parallel,
        bound=bound or cost.bound, step_ms=step * 1e3, cost_per_1m_output_tokens=per_1m,
    )


# --------------------------------------------------------------------------- simulation


@record
class Request:
    """One benchmark request: arrival time (s), prompt and output tokens, and whether it
    came through the chat endpoint (the API server renders the model's chat template)."""

    arrival: float
    prompt: int
    output: int
    chat: bool = False


@record
class SimResult:
    """What a benchmark client reports for a simulated run."""

    duration_s: float
    output_tokens: int
    ttft_ms_mean: float
    tpot_ms_mean: float
    max_running: int

    @property
    def output_tokens_per_s(self) -> float:
        return self.output_tokens / self.duration_s if self.duration_s > 0 else 0.0


def sharegpt_lengths(n: int, mean: float, cap: int) -> list[int]:
    """``n`` output lengths with an exponential spread around ``mean`` (ShareGPT-like), capped.

    Deterministic: the exponential's quantiles at ``(i + 0.5) / n``, rescaled to keep
    the mean after capping, in a fixed shuffled order.
    """
    qs = [-math.log(1 - (i + 0.5) / n) for i in range(n)]
    scale = mean
    for _ in range(8):
        vals = [min(cap, max(1.0, q * scale)) for q in qs]
        m = sum(vals) / n
        if m <= 0 or abs(m - mean) < 0.5:
            break
        scale *= mean / m
    out = [max(1, round(v)) for v in vals]
    random.Random(13).shuffle(out)
    return out


def poisson_arrivals(n: int, rate: float, seed: int = 0) -> list[float]:
    """Arrival times of ``n`` requests at ``rate`` per second (Poisson, seeded)."""
    rng = random.Random(seed)
    t, out = 0.0, []
    for _ in range(n):
        out.append(t)
        t += rng.expovariate(rate)
    return out


def simulate(d: Deployment, requests: Sequence[Request], max_concurrency: int | None = None) -> SimResult:
    """Replay a benchmark through a model of vLLM's scheduler, step by step.

    Each step: running sequences decode one token each; in V1 (chunked prefill) the rest
    of the token budget goes to prompts in arrival order (a prompt may span steps), new
    requests being admitted while fewer than ``max_num_seqs`` run and the KV cache holds
    their prompts; in V0 a step either prefills whole prompts or decodes. A client with
    ``max_concurrency`` sends the next request when one finishes. Steps without
    prefill work are advanced in bulk to the next completion or arrival.
    """
    hw = d.hw
    n = len(requests)
    if n == 0:
        return SimResult(0.0, 0, 0.0, 0.0, 0)
    order = sorted(range(n), key=lambda i: requests[i].arrival)
    issued: dict[int, float] = {}
    # Requests reach the engine through the API server's event loop. One loop iteration
    # runs every request handler that was ready when it began (chat template, tokenizer:
    # CPU work, one after another) and only then sends them to the engine and streams
    # outputs; requests arriving meanwhile wait for the next iteration. A burst therefore
    # reaches the engine as one batch, after the whole burst's front-end work.
    batches: list[list[Any]] = []             # [start, end, members]
    arrivals: deque[tuple[list[Any], int]] = deque()
    pending: deque[int] = deque()

    def issue(i: int, at: float) -> None:
        issued[i] = at
        cost = hw.request_overhead_s + (d.chat_template_s if requests[i].chat else 0.0)
        last = batches[-1] if batches else None
        if last is not None and at <= last[0] + 1e-12:
            last[1] += cost                   # ready when the iteration starts: same batch
        elif last is not None and at < last[1]:
            batches.append(last := [last[1], last[1] + cost])
        else:
            batches.append(last := [at, at + cost])
        arrivals.append((last, i))

    if max_concurrency is not None:
        for i in order[:max_concurrency]:
            issue(i, 0.0)
        pending.extend(order[max_concurrency:])
    else:
        for i in order:
            issue(i, requests[i].arrival)
    waiting: deque[int] = deque()
    prefilling: deque[list[int]] = deque()     # [request, prompt tokens done]
    decoding: list[tuple[int, int]] = []       # heap of (finish decode step, request)
    start_step: dict[int, int] = {}
    first_token: dict[int, float] = {}
    finish: dict[int, float] = {}
    now, dstep = 0.0, 0
    ctx_base = 0.0                             # Σ(prompt − start step) over decoding requests
    kv_used_prefill = 0
    max_running = 0
    budget = d.max_num_batched_tokens
    kv_cap = d.kv_cache_tokens

    def complete(i: int) -> None:
        finish[i] = now + hw.ttft_overhead_s
        if pending:
            issue(pending.popleft(), now + hw.ttft_overhead_s)

    guard = 0
    while len(finish) < n:
        guard += 1
        if guard > 2_000_000:  # pragma: no cover - a model error, never a hang
            raise RuntimeError("simulation did not converge")
        while arrivals and arrivals[0][0][1] <= now + 1e-12:
            waiting.append(arrivals.popleft()[1])
        n_dec = len(decoding)
        running = n_dec + len(prefilling)
        if running == 0 and not waiting:
            if arrivals:
                now = arrivals[0][0][1]
                continue
            break  # pragma: no cover - nothing left
        ctx_sum = ctx_base + n_dec * dstep
        kv_used = ctx_sum + kv_used_prefill
        # --- schedule
        chunks: list[tuple[list[int], int]] = []
        prefill_ctx = 0.0
        decode_now = n_dec
        if hw.chunked_prefill:
            room = max(budget - n_dec, 0)
            for item in prefilling:
                if room <= 0:
                    break
                c = min(room, requests[item[0]].prompt - item[1])
                chunks.append((item, c))
                room -= c
            while waiting and room > 0 and running < d.max_num_seqs:
                i = waiting[0]
                p = requests[i].prompt
                if kv_used + p > kv_cap and running > 0:
                    break
                waiting.popleft()
                item = [i, 0]
                prefilling.append(item)
                kv_used_prefill += p
                kv_used += p
                running += 1
                c = min(room, p)
                chunks.append((item, c))
                room -= c
        else:
            room = budget
            if waiting and running < d.max_num_seqs:
                while waiting and running < d.max_num_seqs:
                    i = waiting[0]
                    p = requests[i].prompt
                    if (p > room and chunks) or (kv_used + p > kv_cap and running > 0):
                        break
                    waiting.popleft()
                    item = [i, 0]
                    prefilling.append(item)
                    kv_used_prefill += p
                    kv_used += p
                    running += 1
                    chunks.append((item, p))
                    room -= p
                if chunks:
                    decode_now = 0
        max_running = max(max_running, running)
        pf_tokens = sum(c for _, c in chunks)
        if pf_tokens == 0 and decode_now > 0:
            # Nothing to prefill: advance in bulk to the next completion or arrival.
            k = decoding[0][0] - dstep
            cost1 = step_time(d, n_dec, 0, ctx_sum)
            if arrivals and running < d.max_num_seqs:
                k = min(k, max(1, math.ceil((arrivals[0][0][1] - now) / max(cost1.seconds, 1e-9))))
            k = max(1, k)
            t = step_time(d, n_dec, 0, ctx_sum + n_dec * (k - 1) / 2).seconds
            now += k * t
            dstep += k
        else:
            for item, c in chunks:
                prefill_ctx += c * item[1] + c * c / 2
            t = step_time(d, decode_now, pf_tokens, ctx_sum if decode_now else 0.0, prefill_ctx).seconds
            now += t
            if decode_now:
                dstep += 1
            for item, c in chunks:
                item[1] += c
            while prefilling and prefilling[0][1] >= requests[prefilling[0][0]].prompt:
                item = prefilling.popleft()
                i = item[0]
                kv_used_prefill -= requests[i].prompt
                first_token[i] = now + hw.ttft_overhead_s
                o = requests[i].output
                if o <= 1:
                    complete(i)
                    continue
                start_step[i] = dstep
                ctx_base += requests[i].prompt - dstep
                heapq.heappush(decoding, (dstep + o - 1, i))
        while decoding and decoding[0][0] <= dstep:
            _, i = heapq.heappop(decoding)
            ctx_base -= requests[i].prompt - start_step[i]
            complete(i)
    t0 = min(issued.values())
    duration = max(finish.values()) - t0
    ttfts = [(first_token[i] - issued[i]) * 1e3 for i in first_token]
    tpots = [(finish[i] - first_token[i]) / (requests[i].output - 1) * 1e3
             for i in first_token if requests[i].output > 1]
    return SimResult(
        duration_s=duration, output_tokens=sum(r.output for r in requests),
        ttft_ms_mean=sum(ttfts) / len(ttfts) if ttfts else 0.0,
        tpot_ms_mean=sum(tpots) / len(tpots) if tpots else 0.0, max_running=max_running,
    )


def curve(d: Deployment, concurrencies: Iterable[int], prompt: int, output: int,
          request_rate: float | None = None, price_per_hour: float | None = None) -> tuple[Point, ...]:
    """:func:`steady_state` at each concurrency."""
    return tuple(steady_state(d, c, prompt, output, request_rate, price_per_hour) for c in concurrencies)
