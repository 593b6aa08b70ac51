"""Replay the public vLLM benchmark runs (tests/data/perf_runs) through the performance model.

Shared by tests/unit/test_perf_calibration.py (scores the committed constants) and
benchmarks/fit_perf.py (fits them). For each run: the model's architecture
(tests/data/perf_runs/architectures.yaml or the catalog), llmdeploy's own memory model
for the weights and KV cache per GPU at the engine's default ``max_num_seqs`` and token
budget, the benchmark's requests (lengths, arrivals, client concurrency), then
``perf.simulate``.

**Split.** A run is *held out* when the first byte of SHA-256 of its id is divisible by
3 (about a third of the runs); the rest are *fitted*. The split depends on the id only,
so adding runs never moves an existing run between the halves.

**Scores.** Three measures, each compared with what the source printed:

* ``single_stream`` — per-sequence decode speed (1000 / mean TPOT, else 1000 / median ITL,
  else the output rate of a batch of one) of runs with one request in flight (client
  concurrency 1) or at most 1 request/s;
* ``throughput`` — output tokens/s of every run;
* ``ttft`` — mean (else median) time to first token.

A prediction is within tolerance when ``|predicted / measured − 1| ≤ tol`` (15 %, 25 %, 35 %).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from llmdeploy.catalog import (
    GPU,
    CatalogError,
    ModelConfig,
    MoEConfig,
    QuantizationConfig,
    get_gpu,
    get_model,
)
from llmdeploy.engines import resolve_engine
from llmdeploy.sizing import SizingInput, perf, size
from llmdeploy.sizing.memory import GIB

ROOT = Path(__file__).resolve().parents[1]
RUNS_DIR = ROOT / "tests" / "data" / "perf_runs"
TOLERANCE = {"single_stream": 0.15, "throughput": 0.25, "ttft": 0.35}
# ShareGPT request shape when a source does not state it: the mean prompt and output of
# the GPUStack ShareGPT runs (1000 prompts, vllm bench serve: 215 in / 196 out).
SHAREGPT_PROMPT, SHAREGPT_OUTPUT = 215, 196
# vLLM's ShareGPT sampler drops pairs longer than this (prompt + output).
SHAREGPT_MAX_TOKENS = 2048


def is_held_out(run_id: str) -> bool:
    """The deterministic split: a third of the runs by a hash of their id."""
    return hashlib.sha256(run_id.encode()).digest()[0] % 3 == 0


@cache
def runs() -> tuple[tuple[str, dict[str, Any]], ...]:
    """Every run as (file name, run mapping), in file then source order."""
    out = []
    for path in sorted(RUNS_DIR.glob("*.yaml")):
        if path.name == "architectures.yaml":
            continue
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        for r in data["runs"]:
            out.append((path.name, r))
    return tuple(out)


@cache
def _architectures() -> Mapping[str, Any]:
    return yaml.safe_load((RUNS_DIR / "architectures.yaml").read_text(encoding="utf-8"))["models"]


def model_for(name: str) -> ModelConfig | None:
    """The ModelConfig of a run's model string, or None when the architecture file lacks it."""
    entry = _architectures().get(name)
    if entry is None:
        return None
    if "like" in entry:
        base = model_for(entry["like"])
        assert base is not None, entry["like"]
        model = replace(base, hf_id=name, weight_bytes=None)
    elif "catalog" in entry:
        model = replace(get_model(entry["catalog"]), hf_id=name)
    else:
        c = dict(entry["config"])
        moe = c.pop("moe", None)
        q = c.pop("quantization", None)
        model = ModelConfig(hf_id=name, moe=MoEConfig(**moe) if moe else None,
                            quantization=QuantizationConfig(**q) if q else None, **c)
    if "quantization" in entry:
        # A quantized checkpoint of the architecture: sized from the parameter count.
        model = replace(model, quantization=QuantizationConfig(**entry["quantization"]), weight_bytes=None)
    return model


@cache
def _model(name: str) -> ModelConfig | None:
    return model_for(name)


def _gpu(key: str) -> GPU | None:
    try:
        return get_gpu(key)
    except CatalogError:
        return None


def exclusion(run: Mapping[str, Any]) -> str | None:
    """Why a run cannot be replayed, or None."""
    if run.get("caveat"):
        return "caveat (GPU or parallelism not stated)"
    if _gpu(str(run.get("gpu"))) is None:
        return f"GPU {run.get('gpu')} not in the catalog"
    if not run.get("tensor_parallel"):
        return "tensor parallel size not stated"
    if _model(run["model"]) is None:
        return "architecture not in architectures.yaml"
    if run.get("concurrency") is None and run.get("request_rate") is None:
        return "offered load not stated"
    return None


@cache
def _base(run_id: str) -> tuple[perf.Deployment, GPU, str | None]:
    """The run's deployment (hardware constants filled in later) from llmdeploy's memory model."""
    run = next(r for _, r in runs() if r["id"] == run_id)
    model = _model(run["model"])
    gpu = _gpu(run["gpu"])
    assert model is not None and gpu is not None
    version = run.get("engine_version")
    engine = resolve_engine("vllm", None, version)
    prompt, output = lengths(run)
    mml = int(run.get("max_model_len") or max(min(model.max_position_embeddings, 8192), math.ceil(prompt + output) + 64))
    dtype = run.get("dtype") or "auto"
    if dtype not in ("auto", "bfloat16", "float16", "float32"):
        dtype = "auto"
    inp = SizingInput(model=model, gpu=gpu, engine=engine, tensor_parallel=int(run["tensor_parallel"]),
                      pipeline_parallel=int(run.get("pipeline_parallel") or 1), dtype=dtype, max_model_len=mml)
    # The run's max_num_seqs when stated, else the engine's default, lowered (as
    # `maxNumSeqs: auto` does) to the most that starts when the default would leave no
    # room for one request (vLLM profiles its sampler over that many sequences).
    rep = size(replace(inp, max_num_seqs=int(run["max_num_seqs"])) if run.get("max_num_seqs") else inp)
    seqs = rep.max_num_seqs
    weights = max(s.weights_gib for s in rep.per_stage) * GIB
    q = _quant(model)
    dep = perf.Deployment(
        arch=perf.arch_from_model(model, q, gpu), hw=perf.hardware(gpu, version),
        tensor_parallel=inp.tensor_parallel, pipeline_parallel=inp.pipeline_parallel,
        weights_bytes_per_gpu=weights, kv_bytes_per_token_per_gpu=float(rep.kv_bytes_per_token),
        kv_cache_tokens=max(rep.kv_cache_tokens, 1), max_num_seqs=seqs,
        max_num_batched_tokens=rep.max_num_batched_tokens,
    )
    return dep, gpu, version


def _quant(model: ModelConfig) -> Any:
    from llmdeploy.sizing.memory import resolve_quantization

    return resolve_quantization(model, "none")


def deployment(run: Mapping[str, Any], overrides: Mapping[str, float] | None = None) -> perf.Deployment:
    """The run's deployment with the committed constants (or ``overrides`` on top)."""
    dep, gpu, version = _base(run["id"])
    if overrides:
        dep = replace(dep, hw=perf.hardware(gpu, version, overrides))
    return dep


def lengths(run: Mapping[str, Any]) -> tuple[float, float]:
    """Mean prompt and output tokens (ShareGPT's when the source does not state them)."""
    p, o = run.get("input_tokens"), run.get("output_tokens")
    return (float(p) if p else SHAREGPT_PROMPT), (float(o) if o else SHAREGPT_OUTPUT)


def requests(run: Mapping[str, Any]) -> tuple[list[perf.Request], int | None]:
    """The benchmark's requests and its client concurrency limit (None: unlimited)."""
    p, o = lengths(run)
    conc = run.get("concurrency")
    rate = run.get("request_rate")
    n = int(run.get("num_prompts") or (conc if conc else 200))
    prompt = max(1, round(p))
    dataset = str(run.get("dataset") or "")
    if dataset.startswith("sharegpt") and "1024/128" not in dataset:
        outs = perf.sharegpt_lengths(n, o, max(8, SHAREGPT_MAX_TOKENS - prompt))
    else:
        outs = [max(1, round(o))] * n
    arrivals = [0.0] * n if rate in (None, "inf") else perf.poisson_arrivals(n, float(rate))
    reqs = [perf.Request(a, prompt, out) for a, out in zip(arrivals, outs, strict=True)]
    limit = int(conc) if conc and rate is not None else None
    if conc and rate is None:
        # An offline batch (benchmark_latency): `concurrency` requests released together.
        reqs = reqs[: int(conc)]
    return reqs, limit


def measured(run: Mapping[str, Any]) -> dict[str, float]:
    """The measures the source gives: single_stream (when one request is in flight), throughput, ttft."""
    m = run["measured"]
    out: dict[str, float] = {}
    if m.get("output_tokens_per_s"):
        out["throughput"] = float(m["output_tokens_per_s"])
    ttft = m.get("ttft_ms_mean") or m.get("ttft_ms_median")
    if ttft:
        out["ttft"] = float(ttft)
    if is_single_stream(run):
        tpot = m.get("tpot_ms_mean") or m.get("itl_ms_median")
        if tpot:
            out["single_stream"] = 1000.0 / float(tpot)
        elif run.get("concurrency") == 1 and "throughput" in out:
            out["single_stream"] = out["throughput"]
    return out


def is_single_stream(run: Mapping[str, Any]) -> bool:
    """One request in flight: client concurrency 1, or at most one request per second."""
    rate = run.get("request_rate")
    if run.get("concurrency") == 1:
        return True
    return isinstance(rate, (int, float)) and rate <= 1.0


def predict(run: Mapping[str, Any], overrides: Mapping[str, float] | None = None) -> dict[str, float]:
    """The model's prediction of each measure of the run."""
    dep = deployment(run, overrides)
    reqs, limit = requests(run)
    sim = perf.simulate(dep, reqs, limit)
    out = {"throughput": sim.output_tokens_per_s, "ttft": sim.ttft_ms_mean, "tpot": sim.tpot_ms_mean}
    if is_single_stream(run):
        m = run["measured"]
        if m.get("tpot_ms_mean") or m.get("itl_ms_median"):
            out["single_stream"] = 1000.0 / sim.tpot_ms_mean if sim.tpot_ms_mean else 0.0
        else:
            out["single_stream"] = sim.output_tokens_per_s
    return out


def scored_runs() -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """(replayable runs, [(run id, why excluded)])."""
    ok, skipped = [], []
    for _, r in runs():
        why = exclusion(r)
        if why is None:
            ok.append(r)
        else:
            skipped.append((r["id"], why))
    return ok, skipped


def errors(rs: list[dict[str, Any]], overrides: Mapping[str, float] | None = None) -> list[dict[str, Any]]:
    """One row per (run, measure): predicted, measured, relative error, within tolerance."""
    rows = []
    for r in rs:
        meas = measured(r)
        if not meas:
            continue
        pred = predict(r, overrides)
        for k, v in meas.items():
            p = pred.get(k, 0.0)
            err = p / v - 1.0 if v else 0.0
            rows.append({"id": r["id"], "gpu": r["gpu"], "tp": r["tensor_parallel"],
                         "concurrency": r.get("concurrency"), "rate": r.get("request_rate"),
                         "held_out": is_held_out(r["id"]), "measure": k, "measured": v, "predicted": p,
                         "error": err, "ok": abs(err) <= TOLERANCE[k]})
    return rows


def shares(rows: list[dict[str, Any]]) -> dict[tuple[str, bool], tuple[int, int]]:
    """{(measure, held_out): (within tolerance, total)}."""
    out: dict[tuple[str, bool], tuple[int, int]] = {}
    for row in rows:
        key = (row["measure"], row["held_out"])
        ok, n = out.get(key, (0, 0))
        out[key] = (ok + int(row["ok"]), n + 1)
    return out
