"""Compare the SGLang memory model with a real SGLang start-up log (``llmdeploy calibrate``).

SGLang logs do not name the GPU, so ``--gpu`` is required; the model comes from
``model_path`` (an HF id, or the last two parts of a local path such as
``/models/Qwen/QwQ-32B``) or ``--model-config``. Two kinds of checks:

* the prediction from the catalog (weights per GPU, KV tokens), sized at the logged
  ``mem_fraction_static``;
* ``kv_tokens_from_log``: SGLang's own formula fed with the memory the log printed
  (``Load weight end``'s ``avail mem`` and ``mem usage``, or ``Load weight begin``'s free
  memory), which tells a wrong input (weights, free memory) from a wrong mechanism.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .calibrate import Check, Comparison

if TYPE_CHECKING:  # pragma: no cover
    from ..catalog import GPU, ModelConfig
    from ..engines.startup_log_sglang import SGLangStartupLog

__all__ = ["compare_sglang_log"]


def _model_for(log: SGLangStartupLog) -> ModelConfig:
    from ..catalog import CatalogError, get_model

    if not log.model:
        raise CatalogError(f"{log.path}: the log names no model_path", "pass --model-config with its config.json")
    parts = log.model.rstrip("/").split("/")
    for name in (log.model, "/".join(parts[-2:]), parts[-1]):
        try:
            return get_model(name)
        except CatalogError:
            continue
    raise CatalogError(f"{log.path}: the catalog has no model for model_path {log.model!r}",
                       "pass --model-config with its config.json")


def compare_sglang_log(log: SGLangStartupLog, *, gpu: GPU | None = None,
                       model: ModelConfig | None = None) -> Comparison:
    """Size the configuration an SGLang ``log`` describes and set its figures beside the prediction.

    Raises:
        CatalogError: no ``--gpu`` (SGLang logs do not name it), or a model the catalog lacks.
    """
    from ..catalog import CatalogError
    from ..engines import resolve_engine
    from . import SizingInput, size
    from .memory import kv_bytes_per_token, kv_layers_on_stage, pipeline_stages, resolve_dtype
    from .memory_sglang import sglang_defaults, utilization_for

    if gpu is None:
        raise CatalogError(f"{log.path}: SGLang logs do not name the GPU", "pass --gpu with the catalog GPU it ran on")
    model = model or _model_for(log)
    engine = resolve_engine("sglang", None, log.version)
    tp, pp = log.tensor_parallel, log.pipeline_parallel
    default = sglang_defaults(engine, gpu.memory_mib, tp, pp, mla=model.mla is not None).mem_fraction_static
    mfs = log.mem_fraction_static if log.mem_fraction_static is not None else default
    dtype = log.dtype or "auto"
    if dtype == (model.torch_dtype or "").removeprefix("torch."):
        dtype = "auto"
    quant = "fp8" if log.quantization == "fp8" and model.quantization is None else "none"
    kv_dtype = log.kv_cache_dtype if log.kv_cache_dtype in ("fp8_e4m3", "fp8_e5m2") else "auto"
    inp = SizingInput(
        model=model, gpu=gpu, engine=engine, tensor_parallel=tp, pipeline_parallel=pp, dtype=dtype,
        quantization=quant, kv_cache_dtype=kv_dtype,
        max_model_len=log.context_length or model.max_position_embeddings,
        gpu_memory_utilization=utilization_for(default, mfs), max_num_batched_tokens=log.chunked_prefill_size,
        multi_node=True,
    )
    report = size(inp)
    checks = []
    if log.weights_gib:
        checks.append(Check("weights_gib", log.weights_gib, report.per_gpu.weights_gib,
                            report.per_gpu.weights_gib / log.weights_gib - 1))
    if log.kv_cache_tokens:
        logged = float(log.kv_cache_tokens)
        checks.append(Check("kv_cache_tokens", logged, float(report.kv_cache_tokens),
                            report.kv_cache_tokens / logged - 1))
        free = log.free_at_start_gib
        if free is None and log.avail_after_weights_gib is not None and log.weights_gib is not None:
            free = log.avail_after_weights_gib + log.weights_gib
        if free is not None and log.avail_after_weights_gib is not None:
            stage = pipeline_stages(model.num_layers, pp)[0]
            per_token = kv_bytes_per_token(model, tp, kv_layers_on_stage(model, stage), kv_dtype,
                                           resolve_dtype(model, dtype, gpu))
            rest = log.avail_after_weights_gib - free * (1 - mfs)
            from_log = max(0, int(rest * 2**30 // per_token))
            checks.append(Check("kv_tokens_from_log", logged, float(from_log), from_log / logged - 1))
    started = log.failure is None
    predicted_start = report.fits
    verdict = "ok" if started == predicted_start else "wrong"
    reasons = tuple(r.problem.value for r in (*report.reasons, *report.warnings))
    if log.version is None:  # SGLang does not print its release; the newest table row is used
        reasons = ("engine-version-not-in-log", *reasons)
    return Comparison(log.path, engine.version, model.hf_id, gpu.key, tuple(checks), started, predicted_start,
                      verdict, reasons, engine="sglang")
