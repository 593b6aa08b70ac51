"""LD140–LD149: TensorRT-LLM (``trtllm-serve``) specifics the generic engine rules cannot see.

The flag, feature and metric checks every engine shares (LD120–LD124, LD5xx) read
``engines/tensorrt-llm.yaml`` like any engine table; these rules add what only
TensorRT-LLM has: a Prometheus endpoint that older releases lack, quantized kernels that
need a GPU generation, and no quantization at load time.
"""

from __future__ import annotations

from collections.abc import Iterator

from .registry import Finding, RuleContext, rule

ENGINE = "tensorrt-llm"


def _trtllm(ctx: RuleContext) -> bool:
    return ctx.spec.runtime.engine == ENGINE and ctx.resolved.engine is not None


def _capability(cc: str) -> tuple[int, int] | None:
    major, _, minor = cc.partition(".")
    if not major.isdigit():
        return None  # an AMD gfx target
    return int(major), int(minor or 0)


@rule("LD140")
def trtllm_prometheus_endpoint(ctx: RuleContext) -> Iterator[Finding]:
    """The pinned TensorRT-LLM release serves no Prometheus metrics.

    Before 1.1, ``trtllm-serve``'s ``GET /metrics`` returns JSON iteration statistics
    (a list of per-iteration records, only with ``enable_iter_perf_stats``), which
    Prometheus cannot parse; the ``/prometheus/metrics`` endpoint came with
    NVIDIA/TensorRT-LLM#5785 (merged 2025-08, in 1.1). A PodMonitor would scrape an
    endpoint that answers 404 and every engine-metric alert, recording rule and KEDA
    trigger would stay empty, so the spec is refused. Pin 1.1.0 or later, or set
    ``monitoring.enabled: false`` and scale on CPU/requests.

    Fails::

        runtime:
          engine: tensorrt-llm
          image: nvcr.io/nvidia/tensorrt-llm/release:1.0.0
        monitoring:
          enabled: true
    """
    if not _trtllm(ctx):
        return
    info = ctx.resolved.engine
    assert info is not None
    if info.defaults.extra.get("prometheus_metrics", True):
        return
    s = ctx.spec
    if s.monitoring.enabled:
        where = ("monitoring", "enabled") if ctx.user_set(("monitoring", "enabled")) else ("runtime", "engine")
        yield Finding(where, f"TensorRT-LLM {info.version} serves no Prometheus metrics (GET /metrics is JSON "
                      "iteration stats; /prometheus/metrics came in 1.1): the PodMonitor, alerts and dashboard "
                      "would scrape nothing", "pin nvcr.io/nvidia/tensorrt-llm/release:1.1.0 or later, or set "
                      "monitoring.enabled: false")


@rule("LD141")
def trtllm_quantization_gpu(ctx: RuleContext) -> Iterator[Finding]:
    """TensorRT-LLM cannot run this checkpoint's quantization on this GPU (or this GPU at all).

    TensorRT-LLM runs on NVIDIA GPUs only. Its FP8 GEMMs need compute capability 8.9
    or newer (Ada, Hopper, Blackwell: there is no weight-only FP8 fallback on Ampere
    as in vLLM's Marlin kernels), and NVFP4 needs Blackwell (compute capability 10.0+):
    the support matrix (nvidia.github.io/TensorRT-LLM/0.18.2/reference/support-matrix.html)
    lists FP8 for Hopper (SM90) and Ada (SM89) but not for Ampere (SM80/86), and the
    quantization guide of 1.0.0 (nvidia.github.io/TensorRT-LLM/1.0.0/features/quantization.html)
    says the PyTorch backend runs FP4 on Blackwell. The spec's ``model.quantization`` and
    the checkpoint's own ``quantization_config`` are both checked.

    Fails::

        model:
          id: neuralmagic/Meta-Llama-3.1-8B-Instruct-FP8
        runtime:
          engine: tensorrt-llm
        resources:
          gpu: {type: a100-80gb}
    """
    if not _trtllm(ctx):
        return
    gpu, model = ctx.resolved.gpu, ctx.resolved.model
    if gpu is None:
        return
    if gpu.vendor != "nvidia":
        yield Finding(("resources", "gpu", "type"), f"TensorRT-LLM runs on NVIDIA GPUs only, not on {gpu.name}",
                      "use an NVIDIA GPU type, or runtime.engine: vllm")
        return
    cc = _capability(gpu.compute_capability)
    if cc is None:
        return
    fmt = ""
    q = ctx.spec.model.quantization
    if model is not None and model.quantization is not None:
        mq = model.quantization
        fmt = (mq.scheme or mq.method or "").lower()
    elif q != "none":
        fmt = q
    where = ("model", "quantization") if q != "none" else ("model",)
    if "nvfp4" in fmt and cc < (10, 0):
        yield Finding(where, f"NVFP4 weights need a Blackwell GPU (compute capability 10.0+); {gpu.name} has "
                      f"{gpu.compute_capability}", "use a B200/GB200-class GPU or an FP8/BF16 checkpoint")
    elif "fp8" in fmt and cc < (8, 9):
        yield Finding(where, f"TensorRT-LLM's FP8 kernels need compute capability 8.9+ (Ada, Hopper, Blackwell); "
                      f"{gpu.name} has {gpu.compute_capability}",
                      "use an L4/L40S/H100-class GPU, or a BF16 or INT4-AWQ checkpoint")


@rule("LD142")
def trtllm_no_load_time_quantization(ctx: RuleContext) -> Iterator[Finding]:
    """``trtllm-serve`` does not quantize an unquantized checkpoint, or the KV cache dtype is not FP8 E4M3.

    TensorRT-LLM reads the quantization from the checkpoint (a ModelOpt
    ``hf_quant_config.json`` or a ``quantization_config``); ``trtllm-serve`` has no
    option that quantizes BF16 weights while loading (vLLM's ``--quantization fp8``).
    Quantize offline with NVIDIA ModelOpt and serve that checkpoint. Its FP8 KV cache
    (``kv_cache_config.dtype: fp8``) is E4M3; ``fp8_e5m2`` has no TensorRT-LLM kernel.

    Fails::

        model:
          id: meta-llama/Llama-3.1-8B-Instruct
          quantization: fp8          # a BF16 checkpoint
        runtime:
          engine: tensorrt-llm
    """
    if not _trtllm(ctx):
        return
    s = ctx.spec
    model = ctx.resolved.model
    q = s.model.quantization
    if q != "none" and model is not None and model.quantization is None:
        yield Finding(("model", "quantization"), f"TensorRT-LLM does not quantize to {q} at load time and "
                      f"{model.hf_id} is not a quantized checkpoint",
                      "serve a pre-quantized checkpoint (NVIDIA ModelOpt) or set model.quantization: none")
    if s.runtime.kv_cache_dtype == "fp8_e5m2":
        yield Finding(("runtime", "kvCacheDtype"), "TensorRT-LLM's FP8 KV cache is E4M3; fp8_e5m2 is not available",
                      "set runtime.kvCacheDtype: fp8")
