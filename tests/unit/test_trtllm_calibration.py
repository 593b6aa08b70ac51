"""TensorRT-LLM's memory model against public start-up logs (tests/data/trtllm_logs).

The PyTorch backend sizes its KV cache in ``KvCacheCreator`` (tensorrt_llm/_torch/pyexecutor/
_util.py): a profiling run fills ``max_num_tokens`` with dummy context requests, then
``(device total - peak of that run) x kv_cache_free_gpu_memory_fraction`` becomes the
paged KV cache, logged as ``[MemUsageChange] Allocated X GiB for max tokens in paged KV
cache (N)``. llmdeploy replays each case with its release, GPU, model and settings and
compares N.

A case is either exact (its N came from the fraction: the error table) or a lower bound
(a run that also capped ``max_tokens``: the fraction would have allowed at least N).
Cases are split into fitted and held-out by a hash of their name (one in three held out),
so constants fitted on the first set are judged on the second as more logs arrive.

Run ``python tests/unit/test_trtllm_calibration.py`` for the table docs/sizing.md shows.
"""

from __future__ import annotations

import hashlib
import statistics
import sys
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from llmdeploy.catalog import ModelConfig, QuantizationConfig, get_gpu, get_model
from llmdeploy.engines import resolve_engine
from llmdeploy.sizing import SizingInput, size

CASES_DIR = Path(__file__).resolve().parents[1] / "data" / "trtllm_logs"

# Floors equal to what the model achieves today on the exact cases (docs/sizing.md):
# raise them when the model improves, never lower them to make a change pass.
MAX_ABS_ERROR = {"fitted": 0.011, "held_out": 0.05}  # held out: no exact case yet (see docs/sizing.md)


def load_cases() -> dict[str, dict[str, Any]]:
    yaml = YAML(typ="safe", pure=True)
    return {p.stem: yaml.load(p.read_text(encoding="utf-8")) for p in sorted(CASES_DIR.glob("*.yaml"))}


def held_out(name: str) -> bool:
    """One case in three, chosen by the hash of its name (stable as cases are added)."""
    return int(hashlib.sha256(name.encode()).hexdigest(), 16) % 3 == 0


def _model(cal: dict[str, Any]) -> ModelConfig:
    if "model_config" in cal:
        cfg = dict(cal["model_config"])
        if cfg.get("quantization"):
            cfg["quantization"] = QuantizationConfig(**cfg["quantization"])
        return ModelConfig(**cfg)
    return get_model(cal["model"])


def predicted_tokens(case: dict[str, Any]) -> int:
    cal = case["calibration"]
    model = _model(cal)
    inp = SizingInput(
        model=model, gpu=get_gpu(cal["gpu"]),
        engine=resolve_engine("tensorrt-llm", None, str(cal["engine_version"])),
        tensor_parallel=int(case.get("tensor_parallel_size") or 1),
        dtype=case.get("dtype") or "auto", quantization="none",
        kv_cache_dtype="fp8" if case.get("kv_cache_dtype") == "fp8" else "auto",
        max_model_len=int(case.get("max_seq_len") or model.max_position_embeddings),
        gpu_memory_utilization=float(case.get("kv_cache_free_gpu_memory_fraction") or 0.9),
        max_num_batched_tokens=int(case.get("max_num_tokens") or 8192),
    )
    return size(inp).kv_cache_tokens


def _exact() -> list[str]:
    return [n for n, c in load_cases().items() if c["calibration"].get("check", "exact") == "exact"]


def _bounds() -> list[str]:
    return [n for n, c in load_cases().items() if c["calibration"].get("check") == "lower_bound"]


def error_table() -> dict[str, dict[str, float]]:
    """median |error|, share within 5 % / 10 %, worst |error| of the exact cases, fitted vs held out."""
    cases = load_cases()
    groups: dict[str, list[float]] = {"fitted": [], "held_out": []}
    for name in _exact():
        logged = int(cases[name]["observed"]["kv_cache_tokens"])
        err = abs(predicted_tokens(cases[name]) - logged) / logged
        groups["held_out" if held_out(name) else "fitted"].append(err)
    out = {}
    for group, errs in groups.items():
        if errs:
            out[group] = {"n": len(errs), "median": statistics.median(errs),
                          "within_5": sum(e <= 0.05 for e in errs) / len(errs),
                          "within_10": sum(e <= 0.10 for e in errs) / len(errs), "worst": max(errs)}
    return out


def test_every_case_is_sourced_and_checkable() -> None:
    cases = load_cases()
    assert len(cases) >= 2
    for name, case in cases.items():
        assert case.get("source"), name
        assert case.get("evidence") == "log_line", name
        assert "Allocated" in case["log"] and "paged KV cache" in case["log"], name
        assert int(case["observed"]["kv_cache_tokens"]) > 0, name
        assert case["calibration"].get("check", "exact") in ("exact", "lower_bound"), name


def test_logged_bytes_match_the_logged_tokens() -> None:
    """Each log's GiB / tokens is the KV bytes per token llmdeploy computes for the case."""
    from llmdeploy.sizing.memory import kv_bytes_per_token

    for name, case in load_cases().items():
        model = _model(case["calibration"])
        kv = "fp8" if case.get("kv_cache_dtype") == "fp8" else "auto"
        per_token = kv_bytes_per_token(model, 1, model.num_layers, kv, "bfloat16")
        logged = case["observed"]["kv_cache_gib"] * 2**30 / case["observed"]["kv_cache_tokens"]
        assert abs(per_token - logged) / per_token < 0.002, name


@pytest.mark.parametrize("name", _exact())
def test_kv_tokens_match_the_log(name: str) -> None:
    case = load_cases()[name]
    logged = int(case["observed"]["kv_cache_tokens"])
    predicted = predicted_tokens(case)
    err = (predicted - logged) / logged
    limit = MAX_ABS_ERROR["held_out" if held_out(name) else "fitted"]
    assert abs(err) <= limit, f"{name}: logged {logged:,}, predicted {predicted:,} ({err:+.1%})"


@pytest.mark.parametrize("name", _bounds())
def test_capped_runs_bound_the_prediction(name: str) -> None:
    """A run whose max_tokens cap bound the cache: the fraction allowed at least the cap."""
    case = load_cases()[name]
    assert predicted_tokens(case) >= int(case["observed"]["max_tokens_cap"])


def test_the_fraction_is_a_share_of_what_is_left() -> None:
    """KV tokens scale with the fraction of (total - peak), not with total x fraction - peak."""
    case = load_cases()[_exact()[0]]
    lo = dict(case, kv_cache_free_gpu_memory_fraction=0.45)
    hi = dict(case, kv_cache_free_gpu_memory_fraction=0.9)
    ratio = predicted_tokens(hi) / predicted_tokens(lo)
    assert ratio == pytest.approx(2.0, rel=0.002)


def main() -> int:
    cases = load_cases()
    print(f"{'case':40s} {'set':9s} {'logged':>9s} {'predicted':>10s}  error")
    for name in _exact() + _bounds():
        case = cases[name]
        logged = int(case["observed"]["kv_cache_tokens"])
        pred = predicted_tokens(case)
        kind = "bound" if name in _bounds() else ("held out" if held_out(name) else "fitted")
        print(f"{name:40s} {kind:9s} {logged:>9,} {pred:>10,}  {(pred - logged) / logged:+.1%}")
    for group, row in error_table().items():
        print(f"{group}: n={row['n']} median {row['median']:.1%} within 5 % {row['within_5']:.0%} "
              f"within 10 % {row['within_10']:.0%} worst {row['worst']:.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
