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

**Endpoint.** A source whose notes say its client used the chat endpoint
(``openai-chat`` / ``/v1/chat/completions``) has its requests replayed as chat requests
(the API server renders the chat template, ``perf.chat_template_seconds``).

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
# SGLang and TensorRT-LLM runs (same format, `engine:` field; benchmarks/collect_gpustack_engines.py).
ENGINE_RUNS_DIR = ROOT / "tests" / "data" / "perf_runs_engines"
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
def runs(engine: str = "vllm") -> tuple[tuple[str, dict[str, Any]], ...]:
    """Every run of ``engine`` as (file name, run mapping), in file then source order."""
    return tuple((n, r) for n, r in _all_runs() if r.get("engine", "vllm") == engine)


@cache
def _all_runs() -> tuple[tuple[str, dict[str, Any]], ...]:
    out = []
    for path in sorted(RUNS_DIR.glob("*.yaml")) + sorted(ENGINE_RUNS_DIR.glob("*.yaml")):
        if path.name == "architectures.yaml":
            continue
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        notes = str(data.get("source", {}).get("notes", ""))
        chat = "openai-chat" in notes or "/v1/chat/completions" in notes
        for r in data["runs"]:
            out.append((path.name, {"endpoint": "chat" if chat else "completions", **r}))
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
        if run.get("engine", "vllm") != "vllm":
            return f"caveat: {run['caveat']}"
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
    run = next(r for _, r in _all_runs() if r["id"] == run_id)
    model = _model(run["model"])
    gpu = _gpu(run["gpu"])
    assert model is not None and gpu is not None
    version = run.get("engine_version")
    engine = resolve_engine("vllm", None, version)
    prompt, output = lengths(run)
    flags = serve_flags(run)
    mml = int(run.get("max_model_len") or flags.get("max-model-len")
              or max(min(model.max_position_embeddings, 8192), math.ceil(prompt + output) + 64))
    dtype = run.get("dtype") or "auto"
    if dtype not in ("auto", "bfloat16", "float16", "float32"):
        dtype = "auto"
    inp = SizingInput(model=model, gpu=gpu, engine=engine, tensor_parallel=int(run["tensor_parallel"]),
                      pipeline_parallel=int(run.get("pipeline_parallel") or 1), dtype=dtype, max_model_len=mml)
    # The run's max_num_seqs when stated, else the engine's default, lowered (as
    # `maxNumSeqs: auto` does) to the most that starts when the default would leave no
    # room for one request (vLLM profiles its sampler over that many sequences).
    seqs_flag = run.get("max_num_seqs") or flags.get("max-num-seqs")
    if seqs_flag:
        inp = replace(inp, max_num_seqs=int(seqs_flag))
    if flags.get("max-num-batched-tokens"):
        inp = replace(inp, max_num_batched_tokens=int(flags["max-num-batched-tokens"]))
    rep = size(inp)
    seqs = rep.max_num_seqs
    weights = max(s.weights_gib for s in rep.per_stage) * GIB
    q = _quant(model)
    dep = perf.Deployment(
        arch=perf.arch_from_model(model, q, gpu), hw=perf.hardware(gpu, version, engine=_engine(run)),
        tensor_parallel=inp.tensor_parallel, pipeline_parallel=inp.pipeline_parallel,
        weights_bytes_per_gpu=weights, kv_bytes_per_token_per_gpu=float(rep.kv_bytes_per_token),
        kv_cache_tokens=max(rep.kv_cache_tokens, 1), max_num_seqs=seqs,
        max_num_batched_tokens=rep.max_num_batched_tokens,
    )
    return dep, gpu, version


# Server flags of a run's serve_command that change what the model replays.
_FLAGS = ("max-model-len", "max-num-seqs", "max-num-batched-tokens")


def serve_flags(run: Mapping[str, Any]) -> dict[str, int]:
    """The scheduler/memory flags stated in the run's ``serve_command`` (``--flag value``)."""
    out: dict[str, int] = {}
    words = str(run.get("serve_command") or "").split()
    for i, w in enumerate(words[:-1]):
        name = w.removeprefix("--")
        if w.startswith("--") and name in _FLAGS and words[i + 1].isdigit():
            out[name] = int(words[i + 1])
    return out


def _quant(model: ModelConfig) -> Any:
    from llmdeploy.sizing.memory import resolve_quantization

    return resolve_quantization(model, "none")


def _engine(run: Mapping[str, Any]) -> str:
    return str(run.get("engine") or "vllm")


def deployment(run: Mapping[str, Any], overrides: Mapping[str, float] | None = None) -> perf.Deployment:
    """The run's deployment with the committed constants of its engine (or ``overrides`` on top).

    Non-vLLM runs use the perf API with their engine's name (``perf.hardware(...,
    engine=...)``); the memory model (KV tokens, default batch limits) stays vLLM's.
    """
    dep, gpu, version = _base(run["id"])
    family = _model(run["model"]).family  # type: ignore[union-attr]
    dep = replace(dep, chat_template_s=perf.chat_template_seconds(family, engine=_engine(run), overrides=overrides))
    if overrides:
        dep = replace(dep, hw=perf.hardware(gpu, version, overrides, engine=_engine(run)))
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
    chat = run.get("endpoint") == "chat"
    reqs = [perf.Request(a, prompt, out, chat) for a, out in zip(arrivals, outs, strict=True)]
    limit = int(conc) if conc and rate is not None else None
    if conc and rate is None:
        # An offline batch (benchmark_latency): `concurrency` requests released together.
        reqs = reqs[: int(conc)]
    return reqs, limit


def _ttft(run: Mapping[str, Any]) -> float | None:
    m = run["measured"]
    v = m.get("ttft_ms_mean") or m.get("ttft_ms_median")
    return float(v) if v else None


@cache
def _sweeps() -> Mapping[tuple[Any, ...], tuple[tuple[float, float, str], ...]]:
    """Rate-driven runs of one server configuration: {(file, model, GPU, TP, dataset, command): ((rate, TTFT, id), ...)}."""
    out: dict[tuple[Any, ...], list[tuple[float, float, str]]] = {}
    for name, r in runs():
        rate, ttft = r.get("request_rate"), _ttft(r)
        if not isinstance(rate, (int, float)) or r.get("concurrency") or ttft is None:
            continue
        key = (name, r["model"], r.get("gpu"), r.get("tensor_parallel"), r.get("dataset"), r.get("serve_command"))
        out.setdefault(key, []).append((float(rate), ttft, r["id"]))
    return {k: tuple(sorted(v)) for k, v in out.items()}


# A lower offered rate may not show a TTFT this many times that of a higher rate.
TTFT_MONOTONE_FACTOR = 2.0


def ttft_exclusion(run: Mapping[str, Any]) -> str | None:
    """Why a run's TTFT is not scored, or None.

    At a Poisson request rate the same server's mean TTFT cannot fall as the rate rises
    (more load only adds queueing). When a run of a rate sweep shows more than
    ``TTFT_MONOTONE_FACTOR`` × the TTFT of a *higher* rate of the same configuration
    (same source, model, GPU, TP, dataset, serve command), its TTFT was set by something
    the load does not explain (warm-up, host contention, a stalled client) and no load
    model can reproduce it: its throughput and TPOT are still scored, its TTFT is not.
    """
    rate, ttft = run.get("request_rate"), _ttft(run)
    if not isinstance(rate, (int, float)) or run.get("concurrency") or ttft is None:
        return None
    for sweep in _sweeps().values():
        if any(i == run["id"] for _, _, i in sweep):
            higher = [(r, t, i) for r, t, i in sweep if r > rate and t * TTFT_MONOTONE_FACTOR < ttft]
            if higher:
                r, t, i = min(higher, key=lambda x: x[1])
                return (f"TTFT {ttft:.0f} ms at {rate:g} req/s is over {TTFT_MONOTONE_FACTOR:g}x the "
                        f"{t:.0f} ms of the same server at {r:g} req/s ({i}): not load-driven")
    return None


def ttft_exclusions() -> list[tuple[str, str]]:
    """[(run id, why its TTFT is not scored)] over the replayable runs."""
    rs, _ = scored_runs()
    return [(r["id"], why) for r in rs if (why := ttft_exclusion(r))]


def measured(run: Mapping[str, Any]) -> dict[str, float]:
    """The measures the source gives: single_stream (when one request is in flight), throughput, ttft."""
    m = run["measured"]
    out: dict[str, float] = {}
    if m.get("output_tokens_per_s"):
        out["throughput"] = float(m["output_tokens_per_s"])
    ttft = _ttft(run)
    if ttft and ttft_exclusion(run) is None:
        out["ttft"] = ttft
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


def scored_runs(engine: str = "vllm") -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """(replayable runs of ``engine``, [(run id, why excluded)])."""
    ok, skipped = [], []
    for _, r in runs(engine):
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


# --------------------------------------------------------------------------- latency tails

# p95 from a source's median and p99, the tail above the median taken as exponential
# (p_q = median + θ·ln(0.5 / (1 − q))): the sources print mean, median and p99, not p95.
P95_FROM_MEDIAN_P99 = math.log(10) / math.log(50)


def tail_regime(run: Mapping[str, Any]) -> str | None:
    """``queue_free`` or ``queueing`` for a run of a rate sweep (None: not in one).

    Queue-free: its mean TTFT is at most twice the lowest of its sweep (the server keeps
    up with the offered rate, which is how replicas are sized); queueing: above that.
    """
    for sweep in _sweeps().values():
        for _, t, i in sweep:
            if i == run["id"]:
                return "queue_free" if t <= 2 * min(x[1] for x in sweep) else "queueing"
    return None


def tail_ratios() -> dict[tuple[str, str], list[dict[str, float]]]:
    """{(regime, measure): [{p95, p99} over mean, per run]} for TTFT and TPOT of the rate sweeps."""
    out: dict[tuple[str, str], list[dict[str, float]]] = {}
    for _, r in runs():
        regime = tail_regime(r)
        if regime is None or ttft_exclusion(r):
            continue
        m = r["measured"]
        for k in ("ttft", "tpot"):
            mean, med, p99 = (m.get(f"{k}_ms_{x}") for x in ("mean", "median", "p99"))
            if mean and med and p99:
                p95 = med + P95_FROM_MEDIAN_P99 * (p99 - med)
                out.setdefault((regime, k), []).append({"p95": p95 / mean, "p99": p99 / mean})
    return out


def quantile(values: list[float], q: float) -> float:
    """The ``q`` quantile of ``values`` (linear between order statistics)."""
    v = sorted(values)
    x = q * (len(v) - 1)
    lo = math.floor(x)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (x - lo) * (v[hi] - v[lo])
