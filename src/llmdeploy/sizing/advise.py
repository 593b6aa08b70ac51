"""The verdict (reasons and warnings with their rule ids and spec fields) and the advice.

Each reason names the spec field it belongs to, as a JSON path with camelCase keys,
so that rules LD2xx (llmdeploy.rules.sizing) can point at the line to change.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import TYPE_CHECKING

from .memory import (
    GIB,
    Quantization,
    held_before_snapshot_gib,
    quant_format,
    sampler_uses_flashinfer,
)
from .reasons import Reason, SizingProblem
from .reasons import SizingProblem as P

if TYPE_CHECKING:  # pragma: no cover
    from ..catalog import GPU, ModelConfig
    from . import SizingInput, SizingReport, _Core

F_TP = ("resources", "parallelism", "tensor")
F_PP = ("resources", "parallelism", "pipeline")
F_GPU = ("resources", "gpu", "type")
F_LEN = ("runtime", "maxModelLen")
F_SEQS = ("runtime", "maxNumSeqs")
F_QUANT = ("model", "quantization")
F_DTYPE = ("model", "dtype")
F_UTIL = ("runtime", "gpuMemoryUtilization")


def _r(problem: SizingProblem, message: str, hint: str | None, path: tuple[str | int, ...]) -> Reason:
    return Reason(problem, message, hint, path)


def _gib(b: float) -> str:
    return f"{b / GIB:.2f} GiB"


def _capability(gpu: GPU) -> float | None:
    """Compute capability as a number (8.9), None for non-CUDA targets (gfx942)."""
    try:
        return float(gpu.compute_capability)
    except ValueError:
        return None


def _is_fp8(model: ModelConfig, q: Quantization) -> bool:
    """FP8 weights (as opposed to INT8): fp8/fbgemm_fp8, or an 8-bit compressed-tensors FP8 checkpoint."""
    if not q.quantized or q.bits != 8:
        return False
    if q.method in ("fp8", "fbgemm_fp8"):
        return True
    # compressed-tensors covers both W8A8-FP8 and W8A8-INT8; the published FP8 checkpoints say so in their id.
    return q.method == "compressed-tensors" and "fp8" in model.hf_id.lower()


# --------------------------------------------------------------------------- reasons


def parallelism_problems(inp: SizingInput) -> list[Reason]:
    """LD203 (TP/PP does not divide the model) and LD204 (more GPUs than a node holds)."""
    m, tp, pp = inp.model, inp.tensor_parallel, inp.pipeline_parallel
    out: list[Reason] = []
    good = [t for t in (1, 2, 4, 8, 16) if m.num_attention_heads % t == 0 and
            (m.num_kv_heads % t == 0 if t <= m.num_kv_heads else t % m.num_kv_heads == 0)]
    if m.num_attention_heads % tp:
        out.append(_r(P.PARALLELISM_DOES_NOT_DIVIDE, f"tensor parallel {tp} does not divide the {m.num_attention_heads} attention heads "
                      f"of {m.hf_id}; vLLM refuses to start",
                      f"use a tensor-parallel size that divides {m.num_attention_heads}: "
                      + ", ".join(map(str, good)), F_TP))
    elif m.mla is None and (m.num_kv_heads % tp if tp <= m.num_kv_heads else tp % m.num_kv_heads):
        out.append(_r(P.PARALLELISM_DOES_NOT_DIVIDE, f"tensor parallel {tp} and the {m.num_kv_heads} KV heads of {m.hf_id} do not divide "
                      "each other; vLLM cannot shard or replicate the KV projections",
                      "use one of: " + ", ".join(map(str, good)), F_TP))
    if pp > m.num_layers:
        out.append(_r(P.PARALLELISM_DOES_NOT_DIVIDE, f"pipeline parallel {pp} exceeds the {m.num_layers} layers of {m.hf_id}",
                      f"use at most {m.num_layers} stages", F_PP))
    per_node = inp.gpu.gpus_per_node
    dp = inp.data_parallel
    if tp * pp > per_node and not inp.multi_node:
        where = F_TP if tp > per_node else F_PP
        domain = inp.gpu.nvlink_domain
        hint = (f"keep tensor × pipeline ≤ {per_node} (tensor parallel within a node, pipeline across "
                "nodes needs a multi-node deployment such as LeaderWorkerSet)")
        if domain and tp * pp <= domain:
            # GB200/GB300 NVL72: the trays of a rack share one NVLink domain (catalog nvlink_domain).
            hint = (f"{inp.gpu.key} nodes of one rack share a {domain}-GPU NVLink domain: set resources.nodes to "
                    f"{-(-tp * pp // per_node)} with deployment.target leaderWorkerSet (docs/topologies.md) and the "
                    f"replica's tensor parallelism stays on NVLink; or keep tensor × pipeline ≤ {per_node}")
        out.append(_r(P.MORE_GPUS_THAN_A_NODE, f"tensor × pipeline parallel = {tp * pp} GPUs, but a {inp.gpu.key} node has "
                      f"{per_node}; one replica would span nodes", hint, where))
    elif tp * pp * dp > per_node and not inp.multi_node:
        out.append(_r(P.MORE_GPUS_THAN_A_NODE, f"tensor × pipeline × data parallel = {tp * pp * dp} GPUs, but a "
                      f"{inp.gpu.key} node has {per_node}; one replica would span nodes",
                      f"keep tensor × pipeline × data ≤ {per_node}, or spread the data-parallel ranks over nodes "
                      "(resources.nodes)", ("resources", "parallelism", "data")))
    return out


def quantization_problems(inp: SizingInput, q: Quantization) -> tuple[list[Reason], list[Reason]]:
    """LD207 (the GPU cannot run the dtype/quantization) and LD208 (cannot quantize on the fly)."""
    errors: list[Reason] = []
    warns: list[Reason] = []
    gpu, model, req = inp.gpu, inp.model, inp.quantization
    cap = _capability(gpu)
    if inp.dtype == "bfloat16" and not gpu.supports_bf16:
        errors.append(_r(P.GPU_CANNOT_RUN_DTYPE, f"{gpu.name} has no bfloat16 support (compute capability {gpu.compute_capability}); "
                         "vLLM refuses --dtype bfloat16 there",
                         "set model.dtype to float16 (or auto, which falls back to float16)", F_DTYPE))
    elif inp.dtype == "auto" and not gpu.supports_bf16 and \
            model.torch_dtype.lower().removeprefix("torch.") in ("bfloat16", "float32"):
        warns.append(_r(P.GPU_CANNOT_RUN_DTYPE, f"{model.hf_id} is {model.torch_dtype} but {gpu.name} has no bfloat16: vLLM serves it "
                        "in float16, which can overflow for some bf16-trained models",
                        "prefer a GPU with bfloat16 (compute capability ≥ 8.0) or set model.dtype: float16 "
                        "knowingly", F_DTYPE))
    if _is_fp8(model, q):
        if not gpu.runs_fp8_checkpoints:
            errors.append(_r(P.GPU_CANNOT_RUN_DTYPE, f"{gpu.name} cannot run FP8 weights (compute capability "
                             f"{gpu.compute_capability}: no FP8 tensor cores and no FP8 Marlin kernel)",
                             "use an Ada/Hopper/Blackwell GPU, or an AWQ/GPTQ int4 or 16-bit checkpoint", F_QUANT))
        elif not gpu.fp8 and inp.engine.engine == "vllm":  # TensorRT-LLM has no such fallback (LD141)
            warns.append(_r(P.GPU_CANNOT_RUN_DTYPE, f"{gpu.name} has no FP8 tensor cores: vLLM runs the FP8 weights weight-only "
                            "through FP8 Marlin (memory savings kept, compute stays 16-bit)",
                            "fine for memory; for FP8 compute use an Ada/Hopper/Blackwell GPU", F_QUANT))
    errors_f, warns_f = _format_problems(gpu, q, cap)
    errors += errors_f
    warns += warns_f
    if req in ("awq_marlin", "gptq_marlin") and (cap is None or cap < 8.0):
        errors.append(_r(P.GPU_CANNOT_RUN_DTYPE, f"{req} needs the Marlin kernels (NVIDIA compute capability ≥ 8.0); "
                         f"{gpu.name} has {gpu.compute_capability}",
                         f"use {req.removesuffix('_marlin')} (vLLM picks the kernel itself)", F_QUANT))
    if q.method == "awq" and cap is not None and cap < 7.5:
        errors.append(_r(P.GPU_CANNOT_RUN_DTYPE, f"AWQ kernels need compute capability ≥ 7.5; {gpu.name} has {cap}",
                         "use a GPTQ or 16-bit checkpoint", F_QUANT))
    # LD208: methods that need a pre-quantized checkpoint.
    ckpt = model.quantization
    needs_ckpt = {"awq", "awq_marlin", "gptq", "gptq_marlin", "int8", "compressed-tensors"}
    if req in needs_ckpt and ckpt is None:
        errors.append(_r(P.QUANTIZATION_MISMATCH, f"model.quantization is {req} but {model.hf_id} is an unquantized checkpoint; "
                         f"vLLM cannot quantize to {req} at load time",
                         "point the model at a pre-quantized checkpoint (e.g. an -AWQ or -GPTQ repository), "
                         "or use fp8 (dynamic, quantized at load) or none", F_QUANT))
    elif ckpt is not None and req not in ("none",) and not _compatible(req, ckpt.method):
        errors.append(_r(P.QUANTIZATION_MISMATCH, f"model.quantization is {req} but the checkpoint is quantized with {ckpt.method}",
                         f"set model.quantization to none (vLLM detects {ckpt.method}) or to {ckpt.method}",
                         F_QUANT))
    return errors, warns


def _format_problems(gpu: GPU, q: Quantization, cap: float | None) -> tuple[list[Reason], list[Reason]]:
    """LD207 for the weight formats of :data:`~.memory.QUANT_FORMATS` other than FP8
    (whose checks above predate the table): MXFP4, NVFP4, W4A16/W8A16, W8A8-INT8, GGUF."""
    f = quant_format(q)
    if f is None or f.name.startswith(("fp8", "w8a8-fp8")) or not q.quantized:
        return [], []
    label = f.name.upper() if not f.name.startswith("gguf") else f"GGUF {q.scheme or ''}".strip()
    if gpu.vendor == "amd":
        if f.amd:
            return [], []
        return [_r(P.GPU_CANNOT_RUN_DTYPE, f"vLLM has no {label} kernels for {gpu.name} (ROCm); the checkpoint "
                   f"cannot be served there ({f.source})",
                   "use an NVIDIA GPU, or a checkpoint in a format ROCm runs (FP8, 16-bit, MXFP4)", F_QUANT)], []
    if cap is not None and cap < f.min_capability:
        return [_r(P.GPU_CANNOT_RUN_DTYPE, f"{label} weights need compute capability ≥ {f.min_capability:g} in vLLM; "
                   f"{gpu.name} has {gpu.compute_capability} ({f.source})",
                   f"use a GPU with compute capability ≥ {f.min_capability:g} ({f.kernels}), or a 16-bit / "
                   "GGUF checkpoint", F_QUANT)], []
    if cap is not None and f.native_capability is not None and cap < f.native_capability:
        return [], [_r(P.GPU_CANNOT_RUN_DTYPE, f"{gpu.name} (compute capability {gpu.compute_capability}) runs {label} "
                       f"weight-only: the memory saving holds, compute stays 16-bit ({f.kernels})",
                       f"for native {label} compute use a GPU with compute capability ≥ {f.native_capability:g} "
                       "(Blackwell)", F_QUANT)]
    return [], []


def _compatible(requested: str, method: str) -> bool:
    families = {
        "awq": {"awq", "awq_marlin"}, "awq_marlin": {"awq", "awq_marlin"},
        "gptq": {"gptq", "gptq_marlin"}, "gptq_marlin": {"gptq", "gptq_marlin"},
        "fp8": {"fp8", "fbgemm_fp8"}, "compressed-tensors": {"compressed-tensors"},
        "bitsandbytes": {"bitsandbytes"}, "int8": {"compressed-tensors"},
    }
    return method.lower() in families.get(requested, {requested})


def reasons(inp: SizingInput, c: _Core) -> tuple[list[Reason], list[Reason]]:
    """All errors and warnings of one configuration."""
    from . import LOW_CONCURRENCY, _fits_memory

    errors = parallelism_problems(inp)
    start = startup_free_memory_problem(inp, c)
    if start is not None:
        errors.append(start)
    qe, qw = quantization_problems(inp, c.quant)
    errors += qe
    warns = qw
    m = inp.model
    b = c.stages[c.binding]
    heavy = max(range(len(c.stages)), key=lambda i: c.stage_weights[i])
    w = c.stage_weights[heavy]
    if w > c.usable:
        tp_fix = _tp_that_fits_weights(inp, c)
        hint = (f"use tensor parallel {tp_fix} (weights split over the GPUs)" if tp_fix
                else "use a GPU with more memory, more GPUs (pipeline parallel) or a quantized checkpoint")
        errors.append(_r(P.WEIGHTS_DO_NOT_FIT, f"the weights need {_gib(w)} per GPU but only {_gib(c.usable)} is usable "
                         f"({c.total / GIB:.1f} GiB × gpuMemoryUtilization {c.util:g}) on {inp.gpu.name} at "
                         f"tensor parallel {inp.tensor_parallel}",
                         hint, F_TP if tp_fix else F_GPU))
    elif not _fits_memory(c):
        worst = min(range(len(c.stages)), key=lambda i: c.stage_kv_bytes[i] - c.stage_request_bytes[i])
        st = c.stages[worst]
        kv = c.stage_kv_bytes[worst]
        if kv <= 0:
            msg = (f"nothing is left for the KV cache: {_gib(c.usable)} usable − weights {st.weights_gib:.2f} − "
                   + (f"LoRA slots {st.lora_gib:.2f} − " if st.lora_gib > 0 else "")
                   + f"activation {st.activation_gib:.2f} − non-torch {st.non_torch_gib:.2f} GiB"
                   + (f" − CUDA graphs {st.cuda_graph_gib:.2f} GiB" if c.mm.cudagraph_in_budget else "")
                   + " is negative; vLLM refuses to start")
        else:
            msg = (f"the KV cache holds {c.stage_tokens[worst]:,} tokens ({_gib(kv)}) but one request of "
                   f"maxModelLen {inp.max_model_len:,} needs {_gib(c.stage_request_bytes[worst])}; vLLM refuses "
                   "to start")
        from . import largest_max_model_len

        longest = largest_max_model_len(inp)
        hint = (f"lower maxModelLen to {longest:,} or less, " if longest >= 256 else "") + \
            "raise gpuMemoryUtilization, add tensor parallelism or use kvCacheDtype fp8"
        errors.append(_r(P.KV_CACHE_TOO_SMALL, msg, hint, F_LEN))
    else:
        conc = c.kv_cache_tokens / inp.max_model_len
        dp = inp.data_parallel
        if conc * dp < LOW_CONCURRENCY:
            # Each data-parallel rank has its own KV cache and batch: the replica holds dp times one.
            where = (f"each of the {dp} data-parallel ranks' KV cache holds {c.kv_cache_tokens:,} tokens: only "
                     f"{conc * dp:.2f} requests" if dp > 1 else
                     f"the KV cache holds {c.kv_cache_tokens:,} tokens: only {conc:.2f} requests")
            warns.append(_r(P.LOW_CONCURRENCY, f"{where} of maxModelLen {inp.max_model_len:,} fit at once",
                            "lower maxModelLen to what requests need, add GPUs or use kvCacheDtype fp8", F_LEN))
        elif inp.max_num_seqs and conc < inp.max_num_seqs:
            warns.append(_r(P.LOW_CONCURRENCY, f"maxNumSeqs is {inp.max_num_seqs} but the KV cache holds {conc:.1f} requests of "
                            f"maxModelLen {inp.max_model_len:,}; long requests will be preempted",
                            f"lower maxNumSeqs to {max(1, int(conc))} to rule preemption out, or make room for more "
                            "KV cache", F_SEQS))
        warmup = sampler_warmup_problem(inp, c)
        if warmup is not None:
            (errors if warmup[1] else warns).append(warmup[0])
        if not c.mm.cudagraph_in_budget and b.cuda_graph_gib > 0:
            headroom = c.total / GIB - b.usable_gib - _context_gib()
            # An engine that turns only part of the rest into KV blocks (TGI: 95 %) captures its
            # graphs in what it kept back, too.
            fraction = c.mm.kv_budget_fraction
            if 0 < fraction < 1:
                headroom += b.kv_cache_gib * (1 / fraction - 1)
            if b.cuda_graph_gib > headroom:
                warns.append(_r(P.CUDA_GRAPHS_OUTSIDE_BUDGET, f"CUDA graphs need about {b.cuda_graph_gib:.2f} GiB besides the KV cache, "
                                f"but only {max(headroom, 0):.2f} GiB is left once it is allocated: "
                                "the engine may run out of memory while capturing them",
                                "lower gpuMemoryUtilization or pass --enforce-eager in runtime.extraArgs", F_UTIL))
    if inp.max_model_len > m.max_position_embeddings:
        # vLLM refuses to start (an error: the model does not fit as configured) unless
        # VLLM_ALLOW_LONG_MAX_MODEL_LEN=1; then it starts and quality degrades (a warning).
        (warns if inp.allow_long_max_model_len else errors).append(_r(P.CONTEXT_BEYOND_MODEL, f"maxModelLen {inp.max_model_len:,} exceeds the {m.max_position_embeddings:,} "
                        f"positions {m.hf_id} was trained for; vLLM refuses it unless "
                        "VLLM_ALLOW_LONG_MAX_MODEL_LEN=1, and quality degrades beyond it",
                        f"set maxModelLen to at most {m.max_position_embeddings:,}", F_LEN))
    return errors, warns


def _warmup_margin(inp: SizingInput, c: _Core) -> tuple[float, float]:
    """(bytes free when the sampler warms up, bytes it needs) on the last pipeline stage.

    After the profile run vLLM allocates the KV cache (the budget minus the profile's
    peak, so the activation peak is free again) and captures the CUDA graphs (outside
    the budget before 0.21); then ``compile_or_warm_up_model`` runs an eager
    ``_dummy_run`` and ``_dummy_sampler_run`` with ``max_num_seqs`` dummy requests. Free
    is what the budget leaves, less what was held before the memory snapshot (the CUDA
    context and, from 0.11.0, the NCCL communicators: :func:`~.memory.held_before_snapshot_gib`)
    and the graphs. The need is ``sampler_warmup_copies`` fp32 ``max_num_seqs × vocabulary``
    logits tensors (with FlashInfer's sampler, which does not sort, the two its profile pass
    holds: :func:`_warmup_copies`), plus ``sampler_warmup_mxfp4_moe_gib`` when the experts run
    the MXFP4 kernels (engine table, fitted to the logged figures of the v0.19.0 sweep:
    tests/data/vllm_logs/sweeps).
    """
    last = len(c.stages) - 1
    st = c.stages[last]
    graphs = 0.0 if c.mm.cudagraph_in_budget else st.cuda_graph_gib * GIB
    held = held_before_snapshot_gib(c.mm, inp.model, inp.tensor_parallel, inp.pipeline_parallel,
                                    inp.data_parallel, _context_gib(), inp.gpu).gib
    free = c.total - c.usable + st.activation_gib * GIB - held * GIB - graphs
    act = c.mm.activation
    need = c.profile_seqs * inp.model.vocab_size * 4 * _warmup_copies(inp, c)
    if _mxfp4_experts(inp, c):
        need += act.sampler_warmup_mxfp4_moe_gib * GIB
    return free, need


def _warmup_copies(inp: SizingInput, c: _Core) -> float:
    """fp32 logits copies the warm-up needs: the era's fitted count for PyTorch's sorting sampler
    (fitted on v0.19.0), FlashInfer's bytes per logit ÷ 4 when the warm-up samples with it."""
    if sampler_uses_flashinfer(c.mm, inp.flashinfer_sampler, inp.gpu):
        return c.mm.sampler.flashinfer_bytes_per_logit / 4
    return c.mm.activation.sampler_warmup_copies


def _mxfp4_experts(inp: SizingInput, c: _Core) -> bool:
    """The experts run vLLM's MXFP4 MoE kernels (gpt-oss)."""
    f = quant_format(c.quant)
    return inp.model.is_moe and f is not None and f.name == "mxfp4"


# The predicted warm-up margin (free ÷ need) of the v0.19.0 sweep: both gpt-oss-20b failures at
# 0.97x and 0.67x, every start at 1.04x or more (Qwen2.5-72B / Kimi-Dev-72B TP2 1.04x,
# Llama-3.3-70B TP2 1.09x, Gemma-3-27B 1.21x). Below 1.0 the verdict is "does not fit" (an
# error: a start that fails crash-loops); up to 1.15x a warning, the band the predicted free
# memory's error (about ±0.3 GiB against the logged figures) can cross.
WARMUP_ERROR_MARGIN = 1.0
WARMUP_RISK_MARGIN = 1.15


def sampler_warmup_problem(inp: SizingInput, c: _Core) -> tuple[Reason, bool] | None:
    """LD210: the sampler warm-up after the KV cache is allocated runs out of memory.

    vLLM V1 warms the sampler up with ``max_num_seqs`` dummy requests once the KV cache
    and the CUDA graphs hold their memory (the v0.19.0 traceback: gpu_worker.py
    ``compile_or_warm_up_model`` → gpu_model_runner.py ``_dummy_sampler_run``: "CUDA out
    of memory occurred when warming up sampler with 1024 dummy requests"). gpt-oss-20b
    at utilization 0.95 on an H100 (vocabulary 201,088 × 1024 sequences) is the public case.
    """
    if inp.engine.engine != "vllm" or c.mm.generation != "V1" or not c.mm.activation.sampler_warmup_copies:
        return None
    free, need = _warmup_margin(inp, c)
    if free >= need * WARMUP_RISK_MARGIN:
        return None
    error = free < need * WARMUP_ERROR_MARGIN
    from . import _evaluate

    act = c.mm.activation
    copies = _warmup_copies(inp, c)
    per_seq = inp.model.vocab_size * 4 * copies
    best = 0
    lo, hi = 1, max(1, c.profile_seqs - 1)
    while lo <= hi:  # free - need shrinks as seqs grow (the need grows faster than the profile's sampler)
        mid = (lo + hi) // 2
        f, n = _warmup_margin(inp, _evaluate(inp, c.prep, mid))
        if f >= n * WARMUP_RISK_MARGIN:
            best, lo = mid, mid + 1
        else:
            hi = mid - 1
    util = c.util - (need * WARMUP_RISK_MARGIN - free) / c.total
    hint = (f"set maxNumSeqs to {best} or less" if best else "use a GPU with more memory") + \
        f", or lower gpuMemoryUtilization to {math.floor(util * 100) / 100:.2f} or less"
    outcome = (f"with {free / need:.2f}x of the need vLLM fails at start" if error
               else f"with {free / need:.2f}x of the need the start is at risk (below "
                    f"{WARMUP_RISK_MARGIN:.2f}x the prediction's error can cross the line)")
    return _r(P.SAMPLER_WARMUP_OOM,
              f"after the KV cache and CUDA graphs are allocated about {max(free, 0) / GIB:.2f} GiB is left, but the "
              f"sampler warm-up with {c.profile_seqs} dummy requests over {inp.model.vocab_size:,} tokens needs about "
              f"{need / GIB:.2f} GiB ({copies:g} fp32 logits copies of "
              f"{per_seq * c.profile_seqs / GIB / copies:.2f} GiB"
              + (f" and {act.sampler_warmup_mxfp4_moe_gib:.2f} GiB the MXFP4 expert kernels leave cached"
                 if _mxfp4_experts(inp, c) else "")
              + f"): {outcome} (\"CUDA out of memory occurred when warming up sampler\")",
              hint, F_SEQS), error


def startup_free_memory_problem(inp: SizingInput, c: _Core) -> Reason | None:
    """LD213: ``gpuMemoryUtilization`` asks for more than is free when the worker starts.

    vLLM V1 (0.9.2+) compares ``total × gpu_memory_utilization`` with the free memory of its
    init snapshot and raises before loading anything (``v1/worker/gpu_worker.py``
    ``init_device``; ``v1/worker/utils.py`` ``request_memory`` from 0.14.0). What is held
    by then is the CUDA context and, from 0.11.0, the NCCL communicators of the parallel
    groups (:func:`~.memory.held_before_snapshot_gib`): on an H100 the highest utilization
    that starts is about 0.99 on one GPU, 0.98 with tensor parallelism and 0.975 for a MoE
    model with tensor parallelism (the v0.19.0 sweep's "Free memory on device" figures).
    """
    st = c.mm.startup
    if not st.free_memory_check:
        return None
    context = _context_gib()
    held = held_before_snapshot_gib(c.mm, inp.model, inp.tensor_parallel, inp.pipeline_parallel,
                                    inp.data_parallel, context, inp.gpu)
    free = c.total - held.gib * GIB
    requested = c.total * c.util
    if requested <= free:
        return None
    best = math.floor(free / c.total * 1000) / 1000
    held_text = f"the CUDA context ({context:.2f} GiB)" + (
        f" and the NCCL communicators of {', '.join(held.groups)} ({held.nccl_gib:.2f} GiB)" if held.nccl_gib else "")
    return _r(P.STARTUP_FREE_MEMORY,
              f"gpuMemoryUtilization {c.util:g} asks for {requested / GIB:.2f} GiB of {inp.gpu.name}'s "
              f"{c.total / GIB:.2f} GiB, but only about {free / GIB:.2f} GiB is free when the vLLM "
              f"{inp.engine.version} worker takes its memory snapshot ({held_text} come first): vLLM refuses "
              "to start (\"Free memory on device … is less than desired GPU memory utilization\")",
              f"set gpuMemoryUtilization to {best:g} or less", F_UTIL)


def _context_gib() -> float:
    from . import CUDA_CONTEXT_GIB

    return CUDA_CONTEXT_GIB


def _tp_that_fits_weights(inp: SizingInput, c: _Core) -> int | None:
    """The smallest larger TP on one node whose weights fit the usable memory."""
    from . import _core

    for tp in (2, 4, 8):
        if tp <= inp.tensor_parallel or tp * inp.pipeline_parallel > inp.gpu.gpus_per_node:
            continue
        trial = replace(inp, tensor_parallel=tp, max_num_seqs=inp.max_num_seqs)
        if parallelism_problems(trial):
            continue
        tc = _core(trial)
        if max(tc.stage_weights) < tc.usable:
            return tp
    return None


# --------------------------------------------------------------------------- advice


def memory_assumptions(inp: SizingInput, c: _Core) -> tuple[str, ...]:
    """What the memory figures assume, in words."""
    mm = c.mm
    out = [
        f"memory model of {inp.engine.engine} {inp.engine.version} ({mm.era}): {mm.budget}",
        f"CUDA-visible memory = {inp.gpu.memory_mib:,} MiB (driver) − {mm.cuda_reserved_gib:g} GiB reserved",
        (f"profile run: {c.tokens:,} tokens of dummy context requests (max_num_tokens)" if mm.fraction_of_free
         else f"profile run: {c.tokens:,} batched tokens, sampler over {min(c.profile_seqs, c.tokens):,} sequences"
              + (" (FlashInfer top-k/top-p)" if sampler_uses_flashinfer(mm, inp.flashinfer_sampler, inp.gpu)
                 else "")),
        f"KV cache counted in whole blocks of {mm.block_size} tokens, minimum over ranks",
        "CUDA graphs are subtracted from the budget" if mm.cudagraph_in_budget
        else "CUDA graphs are captured after the KV cache, above the budget",
    ]
    if inp.engine.assumed and inp.engine.assumed_reason:
        out.append(inp.engine.assumed_reason)
    if inp.engine.engine == "tgi":
        out.append("TGI's memory model rests on two public reports, whose KV caches held 6 % and 12 % fewer tokens "
                   "than this estimate (docs/sizing.md); read it as an upper bound")
    if inp.engine.engine == "tensorrt-llm":
        out.append(f"TensorRT-LLM: KV = (device total - profile peak) x {c.util:g} (kv_cache_free_gpu_memory_fraction); "
                   "the model rests on one public log (+1.0 %) and one capped run (docs/sizing.md)")
    if c.quant.quantized:
        out.append(f"weights quantized: {c.quant.label}")
    if inp.lora is not None:
        lo = inp.lora
        if c.prep.lora:
            slots = c.prep.lora[c.binding] / 2**30
            out.append(f"LoRA: {lo.max_loras} slot(s) (--max-loras) at rank {lo.max_rank} (--max-lora-rank) in every "
                       f"adapted projection take {slots:.2f} GiB per GPU, allocated with the weights before the KV "
                       "cache (vLLM vllm/lora/layers create_lora_weights: A rank × input, B output × rank per slice)")
            from .lora import lora_cpu_cache_bytes

            cpu = lora_cpu_cache_bytes(inp.model, lo, c.act_dtype) or 0
            out.append(f"LoRA CPU cache: {min(lo.max_cpu_loras, len(lo.adapter_ranks))} adapter(s) (--max-cpu-loras "
                       f"{lo.max_cpu_loras}) at their own ranks take {cpu / 2**30:.2f} GiB of host memory per engine "
                       "worker (vLLM LRUCacheLoRAModelManager)")
        else:
            out.append(f"LoRA: the slots of a {'mixture-of-experts' if inp.model.moe else 'latent-attention'} model "
                       "are not modelled; the KV cache is that much smaller than shown")
    return tuple(out)


def suggestions(inp: SizingInput, report: SizingReport) -> list[str]:
    """Concrete changes that make the configuration fit (or roomier), best first."""
    from . import LOW_CONCURRENCY, SizingInput, _size, largest_max_model_len, plan_options

    codes = {r.problem for r in report.reasons}
    low = any(w.problem is P.LOW_CONCURRENCY for w in report.warnings)
    if report.fits and not low:
        return []
    if codes & {P.PARALLELISM_DOES_NOT_DIVIDE, P.MORE_GPUS_THAN_A_NODE, P.GPU_CANNOT_RUN_DTYPE, P.QUANTIZATION_MISMATCH} and not codes & {P.WEIGHTS_DO_NOT_FIT, P.KV_CACHE_TOO_SMALL}:
        return []
    out: list[str] = []
    base = replace(inp, max_num_seqs=inp.max_num_seqs)
    # 1. the smallest tensor-parallel size on the same GPU type that fits
    for tp in (1, 2, 4, 8):
        if tp == inp.tensor_parallel or tp * inp.pipeline_parallel > inp.gpu.gpus_per_node:
            continue
        r = _size(replace(base, tensor_parallel=tp), advise=False)
        if r.fits and r.max_concurrency >= LOW_CONCURRENCY and (tp > inp.tensor_parallel or not report.fits):
            out.append(f"tensor parallel {tp} on {inp.gpu.key}: {r.kv_cache_tokens:,} KV tokens, "
                       f"{r.max_concurrency:.1f} requests of {inp.max_model_len:,} tokens at once")
            break
    # 2. a cheaper (or the cheapest) GPU type that fits
    current = report.capacity.cost_per_hour if report.capacity is not None else None
    options = plan_options(inp.model, max_model_len=inp.max_model_len, engine=inp.engine, dtype=inp.dtype,
                           quantization=inp.quantization, kv_cache_dtype=inp.kv_cache_dtype,
                           gpu_memory_utilization=inp.gpu_memory_utilization)
    for o in options:
        if o.gpu_key == inp.gpu.key or o.max_concurrency < LOW_CONCURRENCY or o.cost_per_hour is None:
            continue
        if current is None or o.cost_per_hour < current:
            layout = (f"tensor parallel {o.tensor_parallel}" if o.nodes == 1 else
                      f"tensor parallel {o.tensor_parallel} × pipeline {o.pipeline_parallel} over {o.nodes} nodes")
            out.append(f"{o.gpu_count} × {o.gpu_key} ({layout}) fits at about "
                       f"${o.cost_per_hour:.2f}/h: {o.kv_cache_tokens:,} KV tokens")
            break
    # 3. the longest maxModelLen that fits as configured
    if P.KV_CACHE_TOO_SMALL in codes or low:
        longest = largest_max_model_len(inp)
        if longest >= 256:
            out.append(f"maxModelLen {longest:,} or less fits on {report.gpu_count} × {inp.gpu.key}")
    # 4. quantization (of weights or of the KV cache)
    if P.WEIGHTS_DO_NOT_FIT in codes or P.KV_CACHE_TOO_SMALL in codes or low:
        if inp.model.quantization is None and inp.quantization == "none" and inp.gpu.runs_fp8_checkpoints:
            r = _size(replace(base, quantization="fp8"), advise=False)
            if r.fits:
                out.append(f"quantization fp8 (dynamic, at load) halves the weights to "
                           f"{r.per_gpu.weights_gib:.1f} GiB per GPU: {r.kv_cache_tokens:,} KV tokens")
        if inp.model.quantization is None and P.WEIGHTS_DO_NOT_FIT in codes:
            from ..catalog import QuantizationConfig

            awq = replace(inp.model, quantization=QuantizationConfig("awq", 4, 128), weight_bytes=None)
            r = _size(SizingInput(**{**base.__dict__, "model": awq}), advise=False)
            if r.fits:
                out.append(f"a pre-quantized AWQ/GPTQ int4 checkpoint of this model needs about "
                           f"{r.per_gpu.weights_gib:.1f} GiB per GPU and would fit "
                           f"({r.kv_cache_tokens:,} KV tokens)")
        if inp.kv_cache_dtype == "auto" and P.WEIGHTS_DO_NOT_FIT not in codes:
            # At the same max_num_seqs: with auto, the cheaper cache would let the count grow back
            # and the sampler's profile would eat the gain, which is not what the suggestion means.
            r = _size(replace(base, kv_cache_dtype="fp8", max_num_seqs=report.max_num_seqs), advise=False)
            if r.kv_cache_tokens > report.kv_cache_tokens * 1.2:
                out.append(f"kvCacheDtype fp8 halves the KV bytes per token: {r.kv_cache_tokens:,} tokens "
                           f"({r.max_concurrency:.1f} requests of maxModelLen) at max_num_seqs "
                           f"{report.max_num_seqs:,}")
    return out
