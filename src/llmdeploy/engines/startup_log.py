"""Read what a vLLM start-up log says about its memory split.

vLLM prints its engine configuration and the profiler's result at start; these are the
lines ``llmdeploy calibrate`` compares the memory model with. Every field is optional:
a log says what its release and log level print. Nothing here sizes anything.

Lines read (the releases that print them in brackets):

* ``Initializing a V1 LLM engine (v0.19.0) with config: model='…', dtype=torch.bfloat16,
  max_seq_len=8192, … tensor_parallel_size=1, pipeline_parallel_size=1, … quantization=…,
  enforce_eager=False, kv_cache_dtype=auto`` (V0: ``Initializing an LLM engine``);
* the utilization and CUDA total: ``total_gpu_memory (79.19GiB) x gpu_memory_utilization
  (0.90)`` (0.6.5–0.10), ``Desired GPU memory utilization is (0.9, 71.27 GiB)`` and
  ``total_memory=79.19GiB`` (V1 DEBUG), ``'gpu_memory_utilization': 0.95`` (non-default args);
* weights: ``Model loading took 14.99 GiB`` / ``Loading model weights took 14.99 GB``;
* the profile: ``model weights take …; non_torch_memory takes …; PyTorch activation peak
  memory takes …; the rest of the memory reserved for KV Cache is …`` (V0 and V1 ≤ 0.10) or
  ``torch peak memory increase: …GiB; non-torch forward increase memory: …GiB`` (V1 DEBUG);
* ``Available KV cache memory: 58.11 GiB``, ``GPU KV cache size: 476,016 tokens``,
  ``Maximum concurrency for 8,192 tokens per request: 58.11x``, V0's ``# GPU blocks: N``;
* the engine's batch defaults (``Defaulting max_num_seqs to 1024``) and the failures a
  fit verdict must predict: the KV cache too small for ``max_model_len``, and the sampler
  warm-up's out-of-memory.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..records import record

__all__ = ["StartupLog", "parse_startup_log", "read_startup_log"]


@record
class StartupLog:
    """What one vLLM start-up log says (``None``: the log does not say it).

    Attributes:
        path: the file read.
        version: the vLLM release (``0.19.0``).
        generation: ``V1`` or ``V0`` from the engine banner.
        model: the model as passed to vLLM (HF id or local path).
        dtype: the compute dtype (``bfloat16``).
        max_model_len: ``max_seq_len`` of the config line.
        tensor_parallel, pipeline_parallel: the parallel sizes.
        quantization: the engine's quantization method, ``None`` when unquantized.
        kv_cache_dtype: ``auto`` or an fp8 variant.
        enforce_eager: CUDA graphs off.
        gpu_memory_utilization: the utilization the engine applied.
        cuda_total_gib: the CUDA-visible total memory of one GPU.
        max_num_seqs, max_num_batched_tokens: the engine's batch settings when logged.
        weights_gib, activation_gib, non_torch_gib, kv_cache_gib: the profile's split.
        kv_cache_tokens: "GPU KV cache size" (or V0's blocks × 16).
        max_concurrency: "Maximum concurrency" for ``max_model_len``.
        failure: ``kv-cache-too-small``, ``sampler-warmup-oom`` or ``out-of-memory`` when
            the engine did not start; ``None`` when nothing says it failed.
        flashinfer_sampler: True for "Using FlashInfer for top-p & top-k sampling", False
            for "FlashInfer is not available" / "… is available but disabled" / "… but it is
            not enabled" (vllm/v1/sample/ops/topk_topp_sampler.py), None when the log is silent.
        custom_all_reduce: False when "Custom allreduce is disabled" (no peer-to-peer access,
            or the group spans nodes; distributed/device_communicators/custom_all_reduce.py).
    """

    path: str
    version: str | None = None
    generation: str | None = None
    model: str | None = None
    dtype: str | None = None
    max_model_len: int | None = None
    tensor_parallel: int = 1
    pipeline_parallel: int = 1
    quantization: str | None = None
    kv_cache_dtype: str = "auto"
    enforce_eager: bool = False
    gpu_memory_utilization: float | None = None
    cuda_total_gib: float | None = None
    max_num_seqs: int | None = None
    max_num_batched_tokens: int | None = None
    weights_gib: float | None = None
    activation_gib: float | None = None
    non_torch_gib: float | None = None
    kv_cache_gib: float | None = None
    kv_cache_tokens: int | None = None
    max_concurrency: float | None = None
    failure: str | None = None
    flashinfer_sampler: bool | None = None
    custom_all_reduce: bool | None = None


_NUM = r"([0-9][0-9,]*(?:\.[0-9]+)?)"


def _first(patterns: tuple[str, ...], text: str) -> str | None:
    for pattern in patterns:
        m = re.search(pattern, text)
        if m:
            return m.group(1)
    return None


def _float(patterns: tuple[str, ...], text: str) -> float | None:
    v = _first(patterns, text)
    return float(v.replace(",", "")) if v is not None else None


def _int(patterns: tuple[str, ...], text: str) -> int | None:
    v = _first(patterns, text)
    return int(float(v.replace(",", ""))) if v is not None else None


def parse_startup_log(text: str, path: str = "<log>") -> StartupLog:
    """Read a vLLM start-up log's text (see the module docstring for the lines)."""
    banner = re.search(r"Initializing an? (V1 )?LLM engine \(v([^)\s]+)\)", text)
    version = banner.group(2) if banner else _first((r"vLLM API server version ([0-9][^\s,]*)",), text)
    generation = ("V1" if banner.group(1) else "V0") if banner else None
    quant = _first((r"\bquantization=([A-Za-z0-9_\-]+)",), text)
    failure = None
    if "warming up sampler" in text and "out of memory" in text.lower():
        failure = "sampler-warmup-oom"
    elif re.search(r"larger than the maximum number of tokens that can be stored in KV cache|"
                   r"No available memory for the cache blocks|is larger than the maximum number", text):
        failure = "kv-cache-too-small"
    elif "CUDA out of memory" in text or "OutOfMemoryError" in text:
        failure = "out-of-memory"
    blocks = _int((r"# (?:GPU|[Cc][Uu][Dd][Aa]) blocks: ([0-9]+)",), text)
    tokens = _int((r"GPU KV cache size: " + _NUM + r" tokens",), text)
    if tokens is None and blocks is not None:
        tokens = blocks * 16
    return StartupLog(
        path=path,
        version=version,
        generation=generation,
        model=_first((r"\bmodel='([^']+)'", r"'model': '([^']+)'"), text),
        dtype=_first((r"\bdtype=torch\.([a-z0-9]+)",), text),
        max_model_len=_int((r"\bmax_seq_len=([0-9]+)", r"'max_model_len': ([0-9]+)"), text),
        tensor_parallel=_int((r"\btensor_parallel_size=([0-9]+)",), text) or 1,
        pipeline_parallel=_int((r"\bpipeline_parallel_size=([0-9]+)",), text) or 1,
        quantization=None if quant in (None, "None") else quant,
        kv_cache_dtype=_first((r"\bkv_cache_dtype=([A-Za-z0-9_]+)",), text) or "auto",
        enforce_eager=_first((r"\benforce_eager=(True|False)",), text) == "True",
        gpu_memory_utilization=_float((r"gpu_memory_utilization \(" + _NUM + r"\)",
                                       r"Desired GPU memory utilization is \(" + _NUM,
                                       r"'gpu_memory_utilization': " + _NUM,
                                       r"gpu_memory_utilization=" + _NUM), text),
        cuda_total_gib=_float((r"total_gpu_memory \(" + _NUM + r" ?GiB\)", r"total_memory=" + _NUM + r" ?GiB",
                               r"Free memory on device \([0-9.]+/" + _NUM + r" GiB\)"), text),
        max_num_seqs=_int((r"Defaulting max_num_seqs to ([0-9]+)", r"'max_num_seqs': ([0-9]+)",
                           r"\bmax_num_seqs=([0-9]+)"), text),
        max_num_batched_tokens=_int((r"Defaulting max_num_batched_tokens to ([0-9]+)",
                                     r"'max_num_batched_tokens': ([0-9]+)",
                                     r"\bmax_num_batched_tokens=([0-9]+)"), text),
        weights_gib=_float((r"Model loading took " + _NUM + r" ?GiB", r"Loading model weights took " + _NUM + r" ?GB",
                            r"model weights take " + _NUM + r" ?GiB", r"weights memory: " + _NUM + r" ?GiB"), text),
        activation_gib=_float((r"torch peak memory increase: " + _NUM + r" ?GiB",
                               r"PyTorch activation peak memory takes " + _NUM + r" ?GiB",
                               r"PyTorch activation peak memory\s+" + _NUM + r" ?GiB",
                               r"Actual usage is [0-9.]+ GiB for weight, " + _NUM + r" GiB for peak activation"), text),
        non_torch_gib=_float((r"non-torch forward increase memory: " + _NUM + r" ?GiB",
                              r"non_torch_memory takes " + _NUM + r" ?GiB",
                              r"non_torch_memory\s+" + _NUM + r" ?GiB"), text),
        kv_cache_gib=_float((r"Available KV cache memory: " + _NUM + r" ?GiB",
                             r"the rest of the memory reserved for KV Cache is " + _NUM + r" ?GiB",
                             r"available_kv_cache_memory\s+" + _NUM + r" ?GiB"), text),
        kv_cache_tokens=tokens,
        max_concurrency=_float((r"Maximum concurrency for [0-9,]+ tokens per request: " + _NUM + r"x",), text),
        failure=failure,
        flashinfer_sampler=(True if "Using FlashInfer for top-p & top-k sampling" in text else
                            False if re.search(r"FlashInfer is not available|FlashInfer top-p/top-k sampling is "
                                               r"available but disabled|FlashInfer is available, but it is not enabled",
                                               text) else None),
        custom_all_reduce=False if "Custom allreduce is disabled" in text else None,
    )


def read_startup_log(path: Path) -> StartupLog:
    """Read a start-up log file (undecodable bytes replaced; ``OSError`` propagates)."""
    return parse_startup_log(Path(path).read_text(encoding="utf-8", errors="replace"), str(path))
