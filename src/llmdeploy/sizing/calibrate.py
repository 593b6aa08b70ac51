"""Compare the memory model with a real vLLM start-up log (``llmdeploy calibrate``).

:func:`compare_log` sizes the configuration a log describes — its release, model,
parallelism, dtype, KV dtype, utilization, batch settings — on the GPU whose CUDA total
the log prints (or the one given), and sets every number the log printed beside the
prediction: weights, activation peak, non-torch memory, KV GiB and tokens, concurrency,
and whether the engine started.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..records import record

if TYPE_CHECKING:  # pragma: no cover
    from ..catalog import GPU, ModelConfig
    from ..engines.startup_log import StartupLog
    from .calibration import Calibration, Correction

__all__ = ["Check", "Comparison", "calibrate", "compare_log"]

# A catalog GPU matches a log when its CUDA total is within this of the logged one.
_TOTAL_TOLERANCE_GIB = 0.25


@record
class Check:
    """One logged figure beside the prediction (``error`` = predicted / logged − 1)."""

    name: str
    logged: float
    predicted: float
    error: float


@record
class Comparison:
    """A log sized as llmdeploy sees it.

    Attributes:
        path: the log.
        version: the vLLM release sized.
        model: the catalog model (or config) used.
        gpu: the catalog GPU used.
        checks: the logged figures with the predictions.
        started: whether the log shows the engine starting (False on a logged failure).
        predicted_start: whether llmdeploy predicts it starts (no error; a warning counts
            as a start at risk).
        verdict: ``ok``, ``at risk`` (a warning flags a start that failed) or ``wrong``.
        reasons: the codes of the sizing reasons and warnings.
        engine: ``vllm`` or ``sglang``.
    """

    path: str
    version: str
    model: str
    gpu: str
    checks: tuple[Check, ...]
    started: bool
    predicted_start: bool
    verdict: str
    reasons: tuple[str, ...]
    tensor_parallel: int = 1
    calibrated: bool = False
    engine: str = "vllm"

    def check(self, name: str) -> Check | None:
        """The check called ``name``, if the log printed that figure."""
        return next((c for c in self.checks if c.name == name), None)

    def to_json(self) -> dict[str, Any]:
        """JSON form (``vllm_version``, or ``sglang_version`` for an SGLang log)."""
        return {"log": self.path, f"{self.engine}_version": self.version, "model": self.model, "gpu": self.gpu,
                "started": self.started, "predicted_start": self.predicted_start, "verdict": self.verdict,
                "reasons": list(self.reasons), "tensor_parallel": self.tensor_parallel,
                "calibrated": self.calibrated,
                "checks": [{"name": c.name, "logged": c.logged, "predicted": round(c.predicted, 4),
                            "error": round(c.error, 4)} for c in self.checks]}


def _gpu_for(log: StartupLog, gpu: GPU | None, version: str) -> GPU:
    from ..catalog import CatalogError, gpus
    from ..engines import resolve_engine
    from .memory import GIB, cuda_total_bytes

    if gpu is not None:
        return gpu
    if log.cuda_total_gib is None:
        raise CatalogError(f"{log.path}: the log prints no GPU memory total", "pass --gpu with the catalog GPU it ran on")
    mm = resolve_engine("vllm", None, version).memory_model_for(log.generation)
    matches = [g for g in gpus().values()
               if abs(cuda_total_bytes(g, mm) / GIB - log.cuda_total_gib) <= _TOTAL_TOLERANCE_GIB]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise CatalogError(f"{log.path}: no catalog GPU has {log.cuda_total_gib:.2f} GiB of CUDA memory",
                           "pass --gpu with the closest catalog GPU (llmdeploy catalog gpus)")
    raise CatalogError(
        f"{log.path}: {log.cuda_total_gib:.2f} GiB of CUDA memory fits "
        + ", ".join(repr(g.key) for g in matches),
        "pass --gpu with the one it ran on (their interconnects differ, which matters with TP > 1)")


def compare_log(log: StartupLog, *, gpu: GPU | None = None, model: ModelConfig | None = None,
                calibration: Calibration | None = None) -> Comparison:
    """Size the configuration ``log`` describes and set the logged figures beside the prediction
    (with ``calibration``: the prediction after its matching correction).

    Raises:
        CatalogError: the log names a model the catalog lacks (and none is given), or its
            GPU cannot be told from the catalog.
    """
    from ..catalog import CatalogError, get_model
    from ..engines import resolve_engine
    from . import SizingInput, engine_batch_defaults, size

    if model is None:
        if not log.model:
            raise CatalogError(f"{log.path}: the log names no model", "pass --model-config with its config.json")
        model = get_model(log.model)
    engine = resolve_engine("vllm", None, log.version)
    version = engine.version
    g = _gpu_for(log, gpu, version)
    dtype = log.dtype or "auto"
    if dtype == (model.torch_dtype or "").removeprefix("torch."):
        dtype = "auto"
    quant = "fp8" if log.quantization == "fp8" and model.quantization is None else "none"
    inp = SizingInput(
        model=model, gpu=g, engine=engine, tensor_parallel=log.tensor_parallel,
        pipeline_parallel=log.pipeline_parallel, dtype=dtype, quantization=quant,
        kv_cache_dtype=log.kv_cache_dtype, max_model_len=log.max_model_len or model.max_position_embeddings,
        gpu_memory_utilization=log.gpu_memory_utilization, max_num_batched_tokens=log.max_num_batched_tokens,
        # 0.8-0.10 ran either engine; the banner says which.
        engine_generation=log.generation if version.startswith(("0.8.", "0.9.", "0.10.")) else None,
        enforce_eager=log.enforce_eager, multi_node=True,
        flashinfer_sampler=log.flashinfer_sampler, custom_all_reduce=log.custom_all_reduce,
    )
    seqs = log.max_num_seqs or engine_batch_defaults(inp)[1]
    correction = None if calibration is None else \
        calibration.match(g.key, "vllm", version, log.tensor_parallel, model.hf_id)
    report = size(dataclasses.replace(inp, max_num_seqs=seqs, calibration=correction))
    b = report.per_gpu
    checks = []
    for name, logged, predicted in (
        ("weights_gib", log.weights_gib, b.weights_gib),
        ("activation_gib", log.activation_gib, b.activation_gib),
        ("non_torch_gib", log.non_torch_gib, b.non_torch_gib),
        ("kv_cache_gib", log.kv_cache_gib, b.kv_cache_gib),
        ("kv_cache_tokens", log.kv_cache_tokens, float(report.kv_cache_tokens)),
        ("max_concurrency", log.max_concurrency, report.max_concurrency),
    ):
        if logged:
            checks.append(Check(name, float(logged), float(predicted), float(predicted) / float(logged) - 1))
    started = log.failure is None
    predicted_start = report.fits
    flagged = bool(report.warnings) and any(w.problem.value in ("sampler-warmup-oom", "cuda-graphs-outside-budget")
                                           for w in report.warnings)
    if started == predicted_start:
        verdict = "ok"
    elif not started and flagged:
        verdict = "at risk"
    else:
        verdict = "wrong"
    reasons = tuple(r.problem.value for r in (*report.reasons, *report.warnings))
    return Comparison(log.path, version, model.hf_id, g.key, tuple(checks), started, predicted_start, verdict,
                      reasons, log.tensor_parallel, correction is not None)


def calibrate(logs: Sequence[StartupLog], *, gpu: GPU | None = None,
              model: ModelConfig | None = None) -> tuple[Correction, ...]:
    """The corrections ``llmdeploy calibrate --write`` records from ``logs`` (sizing/calibration.py).

    Per setup (GPU × version × TP, and per model within it): the mean logged − predicted
    activation, non-torch (and, for a model's own entry, weights) memory; then, with those
    applied, the mean logged / predicted KV tokens and the largest remaining KV error.
    """
    from .calibration import Calibration, corrections_from, setups

    first = [compare_log(log, gpu=gpu, model=model) for log in logs]
    by_path = dict(zip((c.path for c in first), logs, strict=True))
    out = []
    for (_, _, _, model_id), group in setups(first).items():
        base = corrections_from(group, model=model_id)
        step = Calibration("", (base,))
        again = [compare_log(by_path[c.path], gpu=gpu, model=model, calibration=step) for c in group]
        ratios = [k.logged / k.predicted for c in again if (k := c.check("kv_cache_tokens")) and k.predicted]
        ratio = round(statistics.fmean(ratios), 5) if ratios else 1.0
        final = Calibration("", (dataclasses.replace(base, kv_tokens_ratio=ratio),))
        resid = [abs(k.error) for c in group
                 if (k := compare_log(by_path[c.path], gpu=gpu, model=model, calibration=final)
                     .check("kv_cache_tokens"))]
        out.append(dataclasses.replace(base, kv_tokens_ratio=ratio, residual_kv_error=round(max(resid, default=0.0), 4)))
    return tuple(out)
