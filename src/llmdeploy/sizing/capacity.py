"""Throughput, latency, replicas, cost and load time of one replica (estimates, stated as such).

The numbers come from the calibrated performance model (:mod:`.perf`, constants in
``perf_vllm.yaml``): each engine step costs the larger of its memory traffic and its
FLOPs plus a fixed per-step cost and the tensor-parallel communication; a replica at a
concurrency runs ``min(concurrency, max_num_seqs, KV cache ÷ typical request)``
sequences. :func:`estimate_capacity` returns the curve (``points``) at the requested
concurrencies, the saturated operating point, the concurrency that still meets a
latency SLO, and the replicas and cost of a target load. Every premise is repeated in
``Capacity.assumptions``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ..catalog import GPU, ModelConfig
from ..records import record
from . import perf
from .memory import Quantization

__all__ = [
    "DEFAULT_AVG_OUTPUT_TOKENS",
    "DEFAULT_AVG_PROMPT_TOKENS",
    "DEFAULT_CONCURRENCIES",
    "ITL_P95_OVER_MEAN",
    "LOAD_DISK_GBPS",
    "TARGET_UTILIZATION",
    "TTFT_P95_OVER_MEAN",
    "Capacity",
    "Slo",
    "deployment",
    "estimate_capacity",
    "estimate_load_seconds",
    "slo_concurrency",
]

# Replicas are sized to run at 80 % of the request rate they sustain (queueing headroom).
TARGET_UTILIZATION = 0.8
# The typical request when the spec gives no scaling.targetLoad: a chat turn, not
# maxModelLen (the spec's TargetLoad defaults; GPUStack's ShareGPT runs average 215
# prompt / 196 output tokens, chat with history runs longer prompts).
DEFAULT_AVG_PROMPT_TOKENS = 512
DEFAULT_AVG_OUTPUT_TOKENS = 256
# Concurrencies of the curve ``size`` prints when none are asked for.
DEFAULT_CONCURRENCIES = (1, 8, 32, 128)
# The model predicts means; SLOs are p95. The p95/mean ratios of a replica below
# saturation, calibrated on the public rate sweeps (perf_vllm.yaml ``tails``; the ratios
# of a queueing replica apply to points whose offered concurrency exceeds what runs).
TTFT_P95_OVER_MEAN = perf.tail_ratio("ttft", "p95")
ITL_P95_OVER_MEAN = perf.tail_ratio("tpot", "p95")
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
class Slo:
    """Latency targets: p95 time to first token and p95 inter-token latency, in ms (None: no target)."""

    ttft_p95_ms: float | None = None
    tpot_ms: float | None = None

    def misses(self, point: perf.Point) -> str | None:
        """Why ``point`` misses the SLO (the calibrated p95 ratios applied to its means), or None."""
        why = []
        queueing = point.concurrency > point.running
        tpot = point.tpot_ms * perf.tail_ratio("tpot", "p95", queueing)
        ttft = point.ttft_ms * perf.tail_ratio("ttft", "p95", queueing)
        if self.tpot_ms is not None and tpot > self.tpot_ms:
            why.append(f"TPOT p95 ≈ {tpot:.0f} ms > {self.tpot_ms:g} ms")
        if self.ttft_p95_ms is not None and ttft > self.ttft_p95_ms:
            why.append(f"TTFT p95 ≈ {ttft:.0f} ms > {self.ttft_p95_ms:g} ms")
        return "; ".join(why) or None


@record
class Capacity:
    """Throughput, latency and cost of one replica (estimates; see ``assumptions``).

    ``concurrency`` and the ``decode_*``/``requests_per_s_per_replica`` figures are the
    operating point the replica is sized at: saturated (``max_num_seqs`` or the KV cache
    full of typical requests), or the largest concurrency meeting the SLO when one is
    given. ``points`` is the curve at the requested concurrencies.
    """

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
    points: tuple[perf.Point, ...] = ()
    bound: str = "memory_bandwidth"
    prompt_tokens: int = DEFAULT_AVG_PROMPT_TOKENS
    output_tokens: int = DEFAULT_AVG_OUTPUT_TOKENS
    slo_missed: str | None = None
    calibrated: bool = True

    def to_json(self) -> dict[str, Any]:
        """JSON form (floats rounded to 4 decimals, tuples as lists, ``points`` as objects)."""
        out: dict[str, Any] = {}
        for k, v in self.__dict__.items():
            if k == "points":
                out[k] = [p.to_json() for p in v]
            else:
                out[k] = list(v) if isinstance(v, tuple) else (round(v, 4) if isinstance(v, float) else v)
        return out


def deployment(
    *, model: ModelConfig, gpu: GPU, q: Quantization, tp: int, pp: int, dp: int,
    weights_per_stage: Sequence[int], kv_bytes_per_token_per_stage: Sequence[int], kv_cache_tokens: int,
    max_num_seqs: int, max_num_batched_tokens: int, engine_version: str | None, engine: str = "vllm",
    stage_network: str | None = None, prefix_hit_rate: float = 0.0,
) -> perf.Deployment:
    """The performance model's view of one sized replica.

    ``engine`` is the spec's engine name (its constants, or vLLM's with a caveat);
    requests are taken as chat requests (the model family's template cost);
    ``stage_network`` the node-to-node fabric when pipeline stages sit on different nodes;
    ``prefix_hit_rate`` the share of prompt tokens served from the prefix cache.
    """
    return perf.Deployment(
        arch=perf.arch_from_model(model, q, gpu), hw=perf.hardware(gpu, engine_version, engine=engine),
        tensor_parallel=tp, pipeline_parallel=pp, weights_bytes_per_gpu=float(max(weights_per_stage)),
        kv_bytes_per_token_per_gpu=float(max(kv_bytes_per_token_per_stage)),
        kv_cache_tokens=max(int(kv_cache_tokens), 1), max_num_seqs=max(int(max_num_seqs), 1),
        max_num_batched_tokens=max(int(max_num_batched_tokens), 1), data_parallel=dp,
        chat_template_s=perf.chat_template_seconds(model.family, engine), stage_network=stage_network,
        prefix_hit_rate=prefix_hit_rate,
    )


def slo_concurrency(d: perf.Deployment, prompt: int, output: int, slo: Slo, limit: int) -> int:
    """The largest concurrency ≤ ``limit`` whose operating point meets ``slo`` (0: not even one)."""
    if slo.misses(perf.steady_state(d, 1, prompt, output)) is not None:
        return 0
    lo, hi = 1, max(1, limit)
    if slo.misses(perf.steady_state(d, hi, prompt, output)) is None:
        return hi
    while lo < hi - 1:
        mid = (lo + hi) // 2
        if slo.misses(perf.steady_state(d, mid, prompt, output)) is None:
            lo = mid
        else:
            hi = mid
    return lo


def estimate_capacity(
    d: perf.Deployment, *, gpu: GPU, requests_per_second: float | None, avg_prompt_tokens: int | None,
    avg_output_tokens: int | None, price_per_gpu_hour: float | None,
    concurrencies: Sequence[int] | None = None, slo: Slo | None = None,
) -> Capacity:
    """The replica's curve, operating point, replicas for a target load and cost.

    The operating point is the saturated replica (``min(max_num_seqs, KV cache ÷ typical
    request)`` sequences), or with an SLO the largest concurrency that meets it (an SLO
    that one sequence already misses is reported in ``slo_missed`` and sizes nothing). Requests
    per second at that point, run at 80 %, give the replicas of a target load. Cost per
    1M output tokens is at the operating point, per hour for the replica's GPUs.
    """
    prompt = int(avg_prompt_tokens or DEFAULT_AVG_PROMPT_TOKENS)
    output = int(avg_output_tokens or DEFAULT_AVG_OUTPUT_TOKENS)
    gpus = d.tensor_parallel * d.pipeline_parallel * d.data_parallel
    cost = price_per_gpu_hour * gpus if price_per_gpu_hour is not None else None
    kv_fit = max(1, d.kv_cache_tokens // max(prompt + output, 1))
    saturated = min(d.max_num_seqs, kv_fit)
    operating = saturated
    missed = None
    if slo is not None and (slo.tpot_ms is not None or slo.ttft_p95_ms is not None):
        c = slo_concurrency(d, prompt, output, slo, saturated)
        if c == 0:
            # Not even one sequence meets it: more replicas would not help, size at saturation.
            missed = slo.misses(perf.steady_state(d, 1, prompt, output))
        else:
            operating = c
    op = perf.steady_state(d, operating, prompt, output, price_per_hour=cost)
    wanted = sorted({max(1, int(c)) for c in (concurrencies or DEFAULT_CONCURRENCIES)})
    # The curve is closed-loop: C clients, each waiting for its answer (requests beyond
    # max_num_seqs queue in the engine). The service's request rate is spread over its
    # replicas and only queues at the operating point (a replica's share of the rate).
    points = perf.curve(d, wanted, prompt, output, price_per_hour=cost)
    rps = op.requests_per_s
    replicas = None
    if requests_per_second is not None and rps > 0:
        replicas = max(1, math.ceil(requests_per_second / (rps * TARGET_UTILIZATION) - 1e-9))
        op = perf.steady_state(d, operating, prompt, output, requests_per_second / replicas, cost)
        rps = op.requests_per_s
    per_1k = cost / (rps * 3600) * 1000 if cost is not None and rps > 0 else None
    prefill_tps = prompt / max(perf.prefill_seconds(d, prompt), 1e-9) * d.data_parallel
    hw = d.hw
    calibrated = perf.is_calibrated(gpu.key, hw.engine) and hw.caveat is None
    assumptions = (
        (f"estimates from the calibrated performance model (docs/sizing.md §9): {gpu.key} reaches "
         f"{hw.bandwidth_efficiency:.0%} of {gpu.memory_bandwidth_gbs:g} GB/s and {hw.compute_efficiency:.0%} of "
         f"{hw.peak_tflops:g} TFLOPS" + ("" if calibrated else " (no public run on this GPU: the measured GPUs' "
                                          "middle values)")),
        (f"engine era {hw.era}: {hw.step_overhead_s * 1e3:.2f} ms + {hw.step_overhead_per_layer_s * 1e6:.0f} µs/layer "
         f"+ {hw.step_overhead_per_seq_s * 1e6:.0f} µs/sequence per step, {hw.ttft_overhead_s * 1e3:.0f} ms fixed TTFT"),
        (f"requests average {prompt} prompt and {output} output tokens"
         + ("" if avg_prompt_tokens else " (no scaling.targetLoad: the default chat request)")),
        (f"operating point: {operating} sequences at once (max_num_seqs {d.max_num_seqs}, the KV cache holds "
         f"{kv_fit} requests of {prompt + output} tokens)"
         + (" — the largest concurrency meeting the latency SLO" if operating < saturated and not missed else "")),
        *([hw.caveat] if hw.caveat else []),
        *([(f"prefix cache: {d.prefix_hit_rate:.0%} of each prompt's tokens are cache hits (not prefilled; the "
            "rest still attend to them); the KV cache is still counted per request (uncalibrated: no public "
            "prefix-caching run is replayed)")] if d.prefix_hit_rate > 0 else []),
        *([(f"tensor parallel {d.tensor_parallel}: {hw.allreduce_latency(d.tensor_parallel) * 1e6:.0f} µs of "
           f"all-reduce per layer over {perf.link_name(gpu, hw.engine)}")] if d.tensor_parallel > 1 else []),
        *(["MoE steps read only the experts their tokens route to"] if d.arch.num_experts else []),
        *(["weight-only quantized kernels: fewer bytes read, 16-bit math (no speed-up at large batches)"]
          if d.arch.kernel == "weight_only" else []),
        *([f"pipeline stages run one after another (no micro-batch overlap); each stage boundary hands "
           f"{d.arch.hidden * 2} bytes per token over "
           + (f"the {d.stage_network} network" if d.stage_network else "the GPUs' own link")]
          if d.pipeline_parallel > 1 else []),
        f"requests come through the chat endpoint: {d.chat_template_s * 1e3:.0f} ms of chat template per request",
        *([(f"SLO: p95 taken as {TTFT_P95_OVER_MEAN:g} × mean TTFT and {ITL_P95_OVER_MEAN:g} × mean TPOT "
            "(calibrated on public rate sweeps below saturation)")]
          if slo is not None else []),
        f"replicas run at {TARGET_UTILIZATION:.0%} of the requests/s of the operating point",
        (f"${price_per_gpu_hour:g} per GPU-hour (catalog list price unless overridden), cost at full utilisation")
        if price_per_gpu_hour is not None
        else "no price for this GPU in the catalog: pass a price to get costs",
    )
    return Capacity(
        concurrency=operating, decode_step_seconds=op.step_ms / 1e3, decode_tokens_per_s=op.output_tokens_per_s,
        decode_tokens_per_s_per_sequence=op.per_sequence_tokens_per_s, prefill_tokens_per_s=prefill_tps,
        ttft_seconds_estimate=op.ttft_ms / 1e3, requests_per_s_per_replica=rps, replicas_needed=replicas,
        cost_per_hour=cost, cost_per_1m_output_tokens=op.cost_per_1m_output_tokens, cost_per_1k_requests=per_1k,
        assumptions=tuple(assumptions), points=points, bound=op.bound, prompt_tokens=prompt, output_tokens=output,
        slo_missed=missed, calibrated=calibrated,
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
