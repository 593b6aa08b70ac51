"""Sizing per role of a prefill/decode-disaggregated service (a stated first-order model).

Each pool is sized on the same calibrated step-time model as an aggregated replica
(:mod:`.perf`), for the one phase it runs:

* **Prefill** replicas only compute prompts. A step fills the token budget
  (``max_num_batched_tokens``) with whole prompts (a prompt longer than the budget is
  chunked), so a replica serves ``tokens per step ÷ step time`` prompt tokens per second;
  its KV cache only holds prompts until they are handed over. TTFT is the prompt's own
  prefill, plus the KV transfer, plus one decode step (the decode pod emits the first token).
* **Decode** replicas only generate. They run ``C = min(max_num_seqs, KV cache ÷ request)``
  sequences (fewer when a TPOT target needs it); a step over ``C`` sequences gives
  TPOT, and ``C ÷ (output tokens × TPOT)`` requests per second.
* **KV transfer.** Each prompt's KV cache crosses the network once: prompt tokens ×
  KV bytes per token of one tensor rank over that rank's link (RDMA: one 400 Gb/s NIC per
  GPU, as in DGX H100/H200 nodes; plain Ethernet: 25 Gb/s TCP per pod, the UCX fallback).
  The connector's buffer comes out of the KV cache of both roles: NixlConnector registers
  the paged KV cache in place (``kv_buffer_device: cuda``, no extra buffer; vLLM
  ``nixl_connector.py`` log "Registering KV_Caches … use_host_buffer: False", quoted in
  vllm-project/vllm#29369),
  LMCacheConnectorV1 stages in host memory, P2pNcclConnector reserves ``kv_buffer_size``
  (vLLM ``KVTransferConfig`` default 1e9 bytes) on every GPU.

Replicas of a role run at the same 80 % of their rate as aggregated replicas
(``capacity.TARGET_UTILIZATION``). The aggregated alternative is the service's own
sizing report; the cheaper one (GPU-hours, or GPUs without a price) is named first.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from ..records import record
from . import perf
from .capacity import ITL_P95_OVER_MEAN, TARGET_UTILIZATION, TTFT_P95_OVER_MEAN, deployment
from .memory import GIB, resolve_quantization

if TYPE_CHECKING:  # pragma: no cover
    from ..catalog import GPU, ModelConfig
    from ..engines import EngineVersionInfo
    from ..spec.models import LLMService
    from . import Option, SizingReport, TargetLoad
    from .capacity import Slo

__all__ = [
    "CONNECTOR_GPU_BUFFER_BYTES",
    "LINK_BYTES_PER_S",
    "DisaggSizing",
    "RoleLoad",
    "RoleSizing",
    "disaggregated_option",
    "prefill_gpu_type",
    "prefill_spec",
    "prefill_tensor",
    "roles_for",
    "size_disaggregated",
    "size_roles",
    "with_disaggregated",
]

#: GPU memory the connector reserves per GPU beside the KV cache (bytes).
CONNECTOR_GPU_BUFFER_BYTES = {"nixl": 0, "lmcache": 0, "p2pNccl": 1_000_000_000}
#: One tensor rank's link for the KV transfer, bytes/s: RDMA 400 Gb/s per GPU; TCP 25 Gb/s per pod.
LINK_BYTES_PER_S = {"infiniband": 50e9, "roce": 50e9, "ethernet": 25e9 / 8}


def prefill_tensor(spec: LLMService) -> int:
    """Tensor-parallel size of a prefill replica (``disaggregation.prefill.tensor``, else the service's)."""
    d = spec.disaggregation
    if d is not None and d.prefill.tensor is not None:
        return d.prefill.tensor
    return spec.resources.parallelism.tensor


def prefill_gpu_type(spec: LLMService) -> str:
    """GPU catalog key of the prefill pods (``disaggregation.prefill.gpu``, else the service's)."""
    d = spec.disaggregation
    if d is not None and d.prefill.gpu is not None:
        return d.prefill.gpu
    return spec.resources.gpu.type


def prefill_spec(spec: LLMService) -> LLMService:
    """The prefill pool as a spec of its own: its GPU type and tensor parallel, one stage, one node.

    The GPU count follows the tensor size; the pool keeps the service's model, engine,
    ``maxModelLen`` and limits, and has no ``disaggregation`` of its own.
    """
    res = spec.resources
    gpu = res.gpu.model_copy(update={"type": prefill_gpu_type(spec), "count": None})
    par = res.parallelism.model_copy(update={"tensor": prefill_tensor(spec), "pipeline": 1, "data": 1})
    resources = res.model_copy(update={"gpu": gpu, "parallelism": par, "nodes": 1})
    return spec.model_copy(update={"resources": resources, "disaggregation": None})


@record
class RoleSizing:
    """One pool: its replica shape, its rate and its latency."""

    role: str  # prefill | decode
    gpu: str
    gpus_per_replica: int
    replicas: int
    requests_per_s_per_replica: float
    tokens_per_s_per_replica: float  # prompt tokens (prefill) or output tokens (decode)
    latency_ms: float  # TTFT (prefill, transfer and first decode step included) or TPOT (decode)
    concurrency: int  # prompts per step (prefill) or sequences (decode)
    kv_cache_tokens: int
    connector_buffer_gib: float

    def to_json(self) -> dict[str, object]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


@record
class DisaggSizing:
    """Both pools, their ratio, and the aggregated alternative."""

    connector: str
    prefill: RoleSizing
    decode: RoleSizing
    transfer_ms: float
    ratio: str  # "P:D = 1:3"
    gpus: int
    cost_per_hour: float | None
    aggregated_gpus: int | None
    aggregated_cost_per_hour: float | None
    cheaper: str  # disaggregated | aggregated
    why: str
    assumptions: tuple[str, ...]

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {}
        for k, v in self.__dict__.items():
            if isinstance(v, RoleSizing):
                out[k] = v.to_json()
            elif isinstance(v, tuple):
                out[k] = list(v)
            else:
                out[k] = round(v, 4) if isinstance(v, float) else v
        return out


def _deployment(report: SizingReport, model: ModelConfig, gpu: GPU, quantization: str | None,
                kv_tokens: int, seqs: int) -> perf.Deployment:
    weights = [s.weights_gib * GIB for s in report.per_stage] or [report.per_gpu.weights_gib * GIB]
    return deployment(
        model=model, gpu=gpu, q=resolve_quantization(model, quantization), tp=report.tensor_parallel,
        pp=report.pipeline_parallel, dp=report.data_parallel, weights_per_stage=weights,
        kv_bytes_per_token_per_stage=[report.kv_bytes_per_token], kv_cache_tokens=kv_tokens,
        max_num_seqs=seqs, max_num_batched_tokens=report.max_num_batched_tokens,
        engine_version=report.engine_version,
    )


def _kv_after_buffer(report: SizingReport, connector: str) -> int:
    buf = CONNECTOR_GPU_BUFFER_BYTES[connector]
    return max(report.kv_cache_tokens - int(buf / max(report.kv_bytes_per_token, 1)), 0)


def _replicas(rps: float | None, per_replica: float, fallback: int) -> int:
    if rps is None or per_replica <= 0:
        return fallback
    return max(1, math.ceil(rps / (per_replica * TARGET_UTILIZATION) - 1e-9))


@record
class RoleLoad:
    """What both pools are sized for: the typical request, the rate, the link and the targets."""

    prompt: int
    output: int
    rps: float | None
    quantization: str
    fabric: str  # infiniband | roce | ethernet
    connector: str  # nixl | lmcache | p2pNccl
    itl_target_s: float  # p95 inter-token latency target
    min_decode_replicas: int = 1
    prefill_replicas: int | None = None  # fixed by the spec, else from the rate


def size_roles(spec: LLMService, model: ModelConfig, decode_gpu: GPU, prefill_gpu: GPU,
               decode: SizingReport, prefill: SizingReport) -> DisaggSizing:
    """Both pools of ``spec`` (which has ``disaggregation``) from their two sizing reports."""
    dis = spec.disaggregation
    assert dis is not None
    tl = spec.scaling.target_load
    prompt = int(tl.avg_prompt_tokens) if tl else (decode.capacity.prompt_tokens if decode.capacity else 512)
    output = int(tl.avg_output_tokens) if tl else (decode.capacity.output_tokens if decode.capacity else 256)
    given = dis.prefill.replicas
    load = RoleLoad(prompt, output, float(tl.requests_per_second) if tl else None, spec.model.quantization,
                    spec.resources.interconnect.fabric, dis.connector, spec.monitoring.alerts.itl_p95_seconds,
                    spec.scaling.min_replicas, given if isinstance(given, int) else None)
    return roles_for(load, model, decode_gpu, prefill_gpu, decode, prefill)


def roles_for(load: RoleLoad, model: ModelConfig, decode_gpu: GPU, prefill_gpu: GPU,
              decode: SizingReport, prefill: SizingReport) -> DisaggSizing:
    """Both pools for ``load`` from their two sizing reports (the decode report's capacity is the aggregated one)."""
    prompt, output, rps = load.prompt, load.output, load.rps
    q = load.quantization
    fabric = load.fabric
    connector = load.connector

    # Prefill: whole prompts fill the token budget (chunks of it when a prompt is longer).
    p_kv = _kv_after_buffer(prefill, connector)
    pd = _deployment(prefill, model, prefill_gpu, q, max(p_kv, 1), prefill.max_num_seqs)
    budget = max(prefill.max_num_batched_tokens, 1)
    if prompt >= budget:
        per_step, p_seconds = 1, perf.prefill_seconds(pd, prompt)
        p_tokens_s = prompt / max(p_seconds, 1e-9)
    else:
        per_step = max(1, min(budget // prompt, prefill.max_num_seqs))
        step = perf.step_time(pd, 0, per_step * prompt, 0.0, per_step * prompt * prompt / 2).seconds
        p_tokens_s = per_step * prompt / max(step, 1e-9)
    p_tokens_s *= prefill.data_parallel
    p_rps = p_tokens_s / prompt

    # KV transfer: one tensor rank's share of the prompt's KV over that rank's link.
    transfer_s = prompt * prefill.kv_bytes_per_token / LINK_BYTES_PER_S[fabric]

    # Decode: C sequences, fewer when the TPOT target needs it.
    d_kv = _kv_after_buffer(decode, connector)
    dd = _deployment(decode, model, decode_gpu, q, max(d_kv, 1), decode.max_num_seqs)
    conc = max(1, min(decode.max_num_seqs, d_kv // max(prompt + output, 1)))

    def tpot(c: int) -> float:
        return perf.step_time(dd, c, 0, c * (prompt + output / 2)).seconds

    itl_target = load.itl_target_s
    while conc > 1 and tpot(conc) * ITL_P95_OVER_MEAN > itl_target:
        conc = max(1, int(conc * 0.9))
    d_tpot = tpot(conc)
    d_rps = conc / (output * d_tpot) * decode.data_parallel
    ttft = perf.prefill_seconds(pd, prompt) + pd.hw.ttft_overhead_s + transfer_s + tpot(1)

    p_reps = load.prefill_replicas if load.prefill_replicas is not None else _replicas(rps, p_rps, 1)
    d_reps = _replicas(rps, d_rps, load.min_decode_replicas)
    p_role = RoleSizing("prefill", prefill_gpu.key, prefill.gpu_count, p_reps, p_rps, p_tokens_s, ttft * 1e3,
                        per_step, p_kv, CONNECTOR_GPU_BUFFER_BYTES[connector] / GIB)
    d_role = RoleSizing("decode", decode_gpu.key, decode.gpu_count, d_reps, d_rps, d_rps * output, d_tpot * 1e3,
                        conc, d_kv, CONNECTOR_GPU_BUFFER_BYTES[connector] / GIB)
    # The rate ratio: how many decode replicas one prefill replica keeps busy.
    per_prefill = p_rps / d_rps if d_rps > 0 else 0.0
    ratio = f"P:D = {p_reps}:{d_reps}" + (f" (one prefill replica feeds {per_prefill:.1f} decode replicas)"
                                          if per_prefill else "")
    gpus = p_reps * prefill.gpu_count + d_reps * decode.gpu_count
    p_price, d_price = prefill_gpu.price_per_gpu_hour_usd, decode_gpu.price_per_gpu_hour_usd
    cost = (p_reps * prefill.gpu_count * p_price + d_reps * decode.gpu_count * d_price) \
        if p_price is not None and d_price is not None else None
    agg = decode.capacity.replicas_needed if decode.capacity is not None and rps is not None else None
    agg_gpus = agg * decode.gpu_count if agg is not None else None
    agg_cost = agg_gpus * d_price if agg_gpus is not None and d_price is not None else None
    if agg_gpus is None:
        cheaper, why = "disaggregated", "no scaling.targetLoad: nothing to compare against"
    else:
        mine, theirs, unit = (cost, agg_cost, "$/h") if cost is not None and agg_cost is not None \
            else (float(gpus), float(agg_gpus), "GPUs")
        cheaper = "disaggregated" if mine <= theirs else "aggregated"
        fmt = (lambda v: f"${v:.2f}/h") if unit == "$/h" else (lambda v: f"{v:.0f} GPUs")
        agg_tpot = decode.capacity.decode_step_seconds * 1e3 if decode.capacity is not None else None
        tpots = (f"; TPOT ≈ {d_tpot * 1e3:.0f} ms disaggregated vs {agg_tpot:.0f} ms aggregated, where prompts "
                 "share the decode steps") if agg_tpot is not None else ""
        why = (f"disaggregated {fmt(mine)} vs aggregated {fmt(theirs)} for {rps:g} req/s{tpots}"
               + ("" if cheaper == "disaggregated" else
                  "; P/D pays off when long prompts stall decode beyond the TPOT target or the roles "
                  "want different GPUs or tensor sizes"))
    assumptions = (
        f"prefill: {per_step} prompt(s) of {prompt} tokens per step (token budget {budget})",
        (f"decode: {conc} sequences of {prompt} + {output} tokens, "
         + (f"TPOT p95 ≤ {itl_target * 1e3:g} ms taken as {ITL_P95_OVER_MEAN:g} × mean"
            if math.isfinite(itl_target) else "no TPOT target")),
        (f"KV transfer over {fabric}: {LINK_BYTES_PER_S[fabric] / 1e9:g} GB/s per tensor rank, "
         f"{prefill.kv_bytes_per_token} bytes per token per rank"),
        f"{connector} connector: {CONNECTOR_GPU_BUFFER_BYTES[connector] / GIB:.2f} GiB per GPU taken from the KV cache",
        f"replicas run at {TARGET_UTILIZATION:.0%} of their rate",
    )
    return DisaggSizing(connector, p_role, d_role, transfer_s * 1e3, ratio, gpus, cost, agg_gpus, agg_cost,
                        cheaper, why, assumptions)


def size_disaggregated(spec: LLMService, model: ModelConfig, gpu: GPU, prefill_gpu: GPU, engine: EngineVersionInfo,
                       decode: SizingReport) -> tuple[SizingReport, DisaggSizing]:
    """The prefill pool's own sizing report and both roles (``decode`` is the service's report)."""
    from .topology import size_spec

    prefill = size_spec(prefill_spec(spec), model, prefill_gpu, engine)
    return prefill, size_roles(spec, model, gpu, prefill_gpu, decode, prefill)


#: What a ``plan`` P/D option assumes about the cluster: NIXL over RDMA, the setup P/D is built for.
PLAN_CONNECTOR = "nixl"
PLAN_FABRIC = "infiniband"


def with_disaggregated(options: list[Option], target_load: TargetLoad | None, slo: Slo | None) -> list[Option]:
    """``plan``'s options plus each one's P/D alternative, ranked together (unchanged without a rate)."""
    from . import rank_options

    if target_load is None or target_load.requests_per_second is None:
        return options
    pd = [d for o in options if o.disaggregation is None
          and (d := disaggregated_option(o, target_load, slo)) is not None]
    return rank_options([*options, *pd], rated=True)


def disaggregated_option(option: Option, target_load: TargetLoad, slo: Slo | None) -> Option | None:
    """The P/D alternative of one aggregated ``plan`` option, or None without a request rate.

    Both pools take the option's shape (GPU, tensor size, KV cache), are sized by
    :func:`roles_for` for the target load, and the verdict (cheaper, why) is that of
    ``size`` on a disaggregated spec. The option's ``replicas`` count both pools, its
    $/1M output tokens is the fleet's cost over the tokens the load asks for (as for the
    aggregated options), and it misses the SLO when TTFT (prefill, transfer, first
    decode step) or TPOT (after the decode pool dropped to one sequence) misses it.
    """
    from dataclasses import replace

    r = option.report
    rps = target_load.requests_per_second
    if rps is None or r.capacity is None:
        return None
    itl = slo.tpot_ms / 1e3 if slo is not None and slo.tpot_ms is not None else math.inf
    load = RoleLoad(int(target_load.avg_prompt_tokens), int(target_load.avg_output_tokens), float(rps),
                    option.requested_quantization,
                    PLAN_FABRIC, PLAN_CONNECTOR, itl)
    ds = roles_for(load, r.model, r.gpu, r.gpu, r, r)
    missed = []
    if slo is not None and slo.tpot_ms is not None and ds.decode.latency_ms * ITL_P95_OVER_MEAN > slo.tpot_ms:
        missed.append(f"TPOT p95 ≈ {ds.decode.latency_ms * ITL_P95_OVER_MEAN:.0f} ms > {slo.tpot_ms:g} ms")
    if slo is not None and slo.ttft_p95_ms is not None \
            and ds.prefill.latency_ms * TTFT_P95_OVER_MEAN > slo.ttft_p95_ms:
        missed.append(f"TTFT p95 ≈ {ds.prefill.latency_ms * TTFT_P95_OVER_MEAN:.0f} ms > {slo.ttft_p95_ms:g} ms")
    per_1m = (ds.cost_per_hour / (float(rps) * load.output * 3600) * 1e6) if ds.cost_per_hour is not None else None
    return replace(option, topology=f"P/D {ds.prefill.replicas}:{ds.decode.replicas}",
                   replicas=ds.prefill.replicas + ds.decode.replicas, cost_per_1m_output_tokens=per_1m,
                   slo_missed="; ".join(missed) or None, disaggregation=ds)
