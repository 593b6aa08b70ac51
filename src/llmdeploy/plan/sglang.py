"""The service-specific flags of ``python3 -m sglang.launch_server`` (engines/sglang.yaml).

The ClusterServingRuntime carries ``--model-path``, ``--port`` and ``--host``; everything
here depends on the service and goes on the InferenceService, which KServe appends to the
runtime's args. Flag spellings are the long ones every tracked release accepts
(``--tp-size`` and ``--pp-size`` are aliases of ``--tensor-parallel-size`` and
``--pipeline-parallel-size`` in the 0.4.0-0.5.12 wheels).
"""

from __future__ import annotations

from .model import PlanContext

__all__ = ["KV_CACHE_DTYPE", "sglang_args"]

# spec runtime.kvCacheDtype -> SGLang --kv-cache-dtype (choices: auto, fp8_e5m2, and fp8_e4m3 from 0.4.2)
KV_CACHE_DTYPE = {"fp8": "fp8_e4m3", "fp8_e4m3": "fp8_e4m3", "fp8_e5m2": "fp8_e5m2"}


def sglang_args(ctx: PlanContext) -> list[str]:
    """Service-specific SGLang flags, in a stable order.

    ``--mem-fraction-static`` is the sized value (SGLang's own default for the GPU and TP,
    lowered by what ``gpuMemoryUtilization`` keeps free: sizing/memory_sglang.py), so the
    manifest and ``llmdeploy size`` agree. ``--max-running-requests`` is rendered only for
    an explicit ``maxNumSeqs``: with ``auto`` SGLang sizes its request pool from the KV pool
    itself. ``--enable-metrics`` is always on: the PodMonitor, KEDA and the alerts read it.
    """
    s = ctx.spec
    rt = s.runtime
    par = s.resources.parallelism
    args = [
        f"--served-model-name={ctx.served_model_name}",
        f"--context-length={rt.max_model_len}",
        f"--mem-fraction-static={ctx.sizing.gpu_memory_utilization:g}",
        f"--tp-size={par.tensor}",
    ]
    if par.pipeline > 1:
        args.append(f"--pp-size={par.pipeline}")
    if isinstance(rt.max_num_seqs, int):
        args.append(f"--max-running-requests={rt.max_num_seqs}")
    if rt.max_num_batched_tokens is not None:
        args.append(f"--chunked-prefill-size={rt.max_num_batched_tokens}")
    elif rt.chunked_prefill is False:
        args.append("--chunked-prefill-size=-1")
    if s.model.dtype != "auto":
        args.append(f"--dtype={s.model.dtype}")
    q = s.model.quantization
    if q != "none" and not ctx.model.quantization:  # a pre-quantized checkpoint says it itself
        flag = ctx.engine.features.quantization.get(q)
        if flag is not None and flag.flag:
            args.append(f"--quantization={flag.flag}")
    if rt.kv_cache_dtype != "auto":
        kv = KV_CACHE_DTYPE[rt.kv_cache_dtype]
        if rt.kv_cache_dtype == "fp8" and kv not in ctx.engine.features.kv_cache_dtypes:
            kv = "fp8_e5m2"  # 0.4.0-0.4.1 offer only e5m2
        args.append(f"--kv-cache-dtype={kv}")
    if rt.prefix_caching is False:
        args.append("--disable-radix-cache")
    if s.model.trust_remote_code:
        args.append("--trust-remote-code")
    args.append("--enable-metrics")
    args.extend(rt.extra_args)
    return args
