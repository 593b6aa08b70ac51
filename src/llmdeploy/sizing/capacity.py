"""Throughput, latency, replicas, cost and load time: first-order estimates, stated as such.

Decode is memory-bandwidth bound: each step streams the weights a token passes
through plus the KV cache of every running sequence from HBM. Prefill is compute
bound: ``2 × active parameters`` FLOPs per prompt token. Every constant below is an
assumption that :func:`estimate_capacity` repeats in ``Capacity.assumptions``, so a
report never shows a number without the premise it rests on.
"""

from __future__ import annotations

import math
from typing import Any

from ..catalog import GPU, ModelConfig, estimate_active_parameters, estimate_num_parameters
from ..records import record
from .memory import Quantization

__all__ = [
    "ALLREDUCE_LATENCY_S",
    "DECODE_BANDWIDTH_EFFICIENCY",
    "DEFAULT_AVG_OUTPUT_TOKENS",
    "DEFAULT_AVG_PROMPT_TOKENS",
    "LOAD_DISK_GBPS",
    "PREFILL_MFU",
    "TARGET_UTILIZATION",
    "Capacity",
    "estimate_capacity",
    "estimate_load_seconds",
]

# Share of the HBM bandwidth a decode step achieves. Memory-bound GEMV kernels reach
# 60-80 % of peak; 0.6 keeps the estimate on the safe side.
DECODE_BANDWIDTH_EFFICIENCY = 0.6
# Model FLOPs utilisation of prefill (large GEMMs reach 40-60 % of dense peak).
PREFILL_MFU = 0.4
# Two all-reduces per decoder layer with tensor parallelism (after attention and after
# the MLP, Megatron-style row-parallel layers); small-message latency per all-reduce.
ALLREDUCE_LATENCY_S = {"nvlink": 10e-6, "infinity-fabric": 12e-6, "pcie": 30e-6}
# Replicas are sized to run at 80 % of their estimated capacity (queueing headroom).
TARGET_UTILIZATION = 0.8
# Request shape assumed when the spec gives no targetLoad (the spec's defaults).
DEFAULT_AVG_PROMPT_TOKENS = 512
DEFAULT_AVG_OUTPUT_TOKENS = 256
# Weights read from node-local disk or page cache. The v0.19.0 logs load 14.99 GiB in
# 9.8 s (1.6 GB/s); 1.5 GB/s is a conservative local NVMe figure.
LOAD_DISK_GBPS = 1.5
# Process start, CUDA context, tokenizer and API server before weights load.
LOAD_INIT_SECONDS = 20.0
# V1 torch.compile + profile run: 18 s (Llama-3.1-8B) to 33 s (Gemma-3-12B) in the v0.19.0 logs.
LOAD_COMPILE_SECONDS_V1 = 30.0
LOAD_PROFILE_SECONDS_V0 = 10.0
# CUDA-graph capture: 3 s for 102 graphs of a 32-layer model (v0.19.0 Llama-3.1-8B log).
LOAD_SECONDS_PER_GRAPH_PER_32_LAYERS = 0.05
# Worker processes and NCCL communicators with TP/PP > 1.
LOAD_PARALLEL_SECONDS = 15.0


@record
class Capacity:
    """Throughput and cost estimates for one replica (all are estimates; see ``assumptions``)."""

    concurrency: int
    decode_step_seconds: float
    decode_tokens_per_s: float
    decode_tokens_per_s_per_sequence: float
    prefill_tokens_per_s: float
    ttft_seconds_estimate: float
    requests_per_s_per_replica: float
    replicas_needed: int | None
    cost_per_hour: float | None
    cost_per_1m_output_tokens: float | None
    cost_per_1k_requests: float | None
    assumptions: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        """JSON form (floats rounded to 4 decimals, tuples as lists)."""
        out: dict[str, Any] = {}
        for k, v in self.__dict__.items():
            out[k] = list(v) if isinstance(v, tuple) else (round(v, 4) if isinstance(v, float) else v)
        return out


def _expert_fraction(model: ModelConfig, batch: int) -> float:
    """Share of routed experts a decode step touches: ``1 - (1 - k/E)^batch``."""
    moe = model.moe
    if moe is None or moe.num_experts == 0:
        return 1.0
    p = moe.experts_per_token / moe.num_experts
    return 1.0 - (1.0 - p) ** max(1, batch)


def _weights_read_per_step(model: ModelConfig, weights_gpu_bytes: float, batch: int) -> float:
    """Weight bytes one decode step reads on one GPU (unused experts stay in HBM)."""
    if model.moe is None:
        return weights_gpu_bytes
    total = estimate_num_parameters(model) - model.vision_parameters
    active = estimate_active_parameters(model)
    moe = model.moe
    experts_total = max(total - active, 0) * moe.num_experts / max(moe.num_experts - moe.experts_per_token, 1)
    expert_share = min(1.0, experts_total / total) if total else 0.0
    frac = _expert_fraction(model, batch)
    return weights_gpu_bytes * ((1 - expert_share) + expert_share * frac)


def _compute_tflops(gpu: GPU, q: Quantization, act_dtype: str) -> tuple[float, str]:
    """Dense tensor TFLOPS the prefill runs at: FP8 for W8A8 on FP8 GPUs, else 16-bit."""
    if q.quantized and q.bits == 8 and q.method != "bitsandbytes" and gpu.fp8 and gpu.fp8_tflops:
        return gpu.fp8_tflops, "fp8"
    if act_dtype == "bfloat16" and gpu.bf16_tflops:
        return gpu.bf16_tflops, "bf16"
    return gpu.fp16_tflops, "fp16"


def estimate_capacity(
    *, model: ModelConfig, gpu: GPU, q: Quantization, act_dtype: str, tp: int, pp: int, dp: int,
    weights_per_stage: tuple[int, ...], kv_bytes_per_token_per_stage: tuple[int, ...],
    kv_cache_tokens: int, max_num_seqs: int, max_model_len: int,
    requests_per_second: float | None, avg_prompt_tokens: int | None, avg_output_tokens: int | None,
    price_per_gpu_hour: float | None,
) -> Capacity:
    """Decode/prefill throughput, TTFT, requests per second, replicas and cost of one replica.

    Decode step time = Σ over pipeline stages of (weights read + KV read) /
    (bandwidth × efficiency) + 2 all-reduces per layer with TP. The replica runs
    ``n = min(max_num_seqs, KV tokens / (prompt + output))`` sequences at once; its
    decode rate is ``n / step``. Prefill rate = GPUs × TFLOPS × MFU / (2 × active
    params). A request costs ``prompt / prefill + output / decode`` GPU-seconds of the
    replica, which gives requests per second; replicas = target / (that × 80 %).
    Data parallelism multiplies a replica's rates and cost.
    """
    prompt = avg_prompt_tokens or DEFAULT_AVG_PROMPT_TOKENS
    output = avg_output_tokens or DEFAULT_AVG_OUTPUT_TOKENS
    seq_len = min(max_model_len, prompt + output)
    n = max(1, min(max_num_seqs, kv_cache_tokens // max(seq_len, 1)))
    ctx = prompt + output / 2  # average KV length a decode step reads per sequence
    eff_bw = gpu.memory_bandwidth_gbs * 1e9 * DECODE_BANDWIDTH_EFFICIENCY
    step = 0.0
    for w, kv in zip(weights_per_stage, kv_bytes_per_token_per_stage, strict=True):
        step += (_weights_read_per_step(model, w, n) + n * ctx * kv) / eff_bw
    latency = ALLREDUCE_LATENCY_S.get(gpu.interconnect, 30e-6)
    if tp > 1:
        step += 2 * model.num_layers * latency
    decode_tps = n / step * dp
    per_seq = 1.0 / step
    tflops, precision = _compute_tflops(gpu, q, act_dtype)
    active = estimate_active_parameters(model)
    prefill_tps = tp * pp * tflops * 1e12 * PREFILL_MFU / (2 * active) * dp
    ttft = prompt / (prefill_tps / dp) + step
    rps = 1.0 / (prompt / prefill_tps + output / decode_tps)
    replicas = None
    if requests_per_second is not None:
        replicas = max(1, math.ceil(requests_per_second / (rps * TARGET_UTILIZATION)))
    gpus = tp * pp * dp
    cost = price_per_gpu_hour * gpus if price_per_gpu_hour is not None else None
    per_1m = cost / (decode_tps * 3600) * 1e6 if cost is not None else None
    per_1k = cost / (rps * 3600) * 1000 if cost is not None else None
    assumptions = (
        (f"estimates, not measurements: decode is memory-bandwidth bound at "
         f"{DECODE_BANDWIDTH_EFFICIENCY:.0%} of {gpu.memory_bandwidth_gbs:g} GB/s"),
        (f"{n} sequences decode at once (max_num_seqs {max_num_seqs}, KV cache holds "
         f"{kv_cache_tokens // max(seq_len, 1)} requests of {seq_len} tokens)"),
        (f"requests average {prompt} prompt and {output} output tokens"
         + ("" if avg_prompt_tokens else " (no scaling.targetLoad: spec defaults)")),
        f"prefill is compute bound at {PREFILL_MFU:.0%} MFU of {tflops:g} dense {precision} TFLOPS per GPU",
        *([f"tensor parallel adds 2 all-reduces per layer at {latency * 1e6:.0f} µs each"] if tp > 1 else []),
        *(["MoE decode reads only the experts its batch routes to"] if model.moe is not None else []),
        *(["pipeline stages run one after another (no micro-batch overlap)"] if pp > 1 else []),
        f"replicas run at {TARGET_UTILIZATION:.0%} of the estimated requests/s",
        (f"${price_per_gpu_hour:g} per GPU-hour (catalog list price unless overridden), cost at full utilisation")
        if price_per_gpu_hour is not None
        else "no price for this GPU in the catalog: pass a price to get costs",
    )
    return Capacity(
        concurrency=n, decode_step_seconds=step, decode_tokens_per_s=decode_tps,
        decode_tokens_per_s_per_sequence=per_seq, prefill_tokens_per_s=prefill_tps,
        ttft_seconds_estimate=ttft, requests_per_s_per_replica=rps, replicas_needed=replicas,
        cost_per_hour=cost, cost_per_1m_output_tokens=per_1m, cost_per_1k_requests=per_1k,
        assumptions=tuple(assumptions),
    )


def estimate_load_seconds(
    *, weights_bytes_total: int, generation: str, graphs: int, layers_per_gpu: int, gpu_count: int,
) -> float:
    """Seconds from container start to ready, for the startupProbe.

    ``init + weights / disk GB/s + compile/profile + graph capture (+ worker and NCCL
    start with several GPUs)``; the weights are already on local disk (KServe's
    storage initializer or a modelcar copied them before the engine starts).
    """
    seconds = LOAD_INIT_SECONDS + weights_bytes_total / (LOAD_DISK_GBPS * 1e9)
    seconds += LOAD_COMPILE_SECONDS_V1 if generation == "V1" else LOAD_PROFILE_SECONDS_V0
    seconds += LOAD_SECONDS_PER_GRAPH_PER_32_LAYERS * graphs * max(1.0, layers_per_gpu / 32)
    if gpu_count > 1:
        seconds += LOAD_PARALLEL_SECONDS
    return round(seconds, 1)
