"""``llmdeploy plan`` ranks each shape aggregated and as prefill/decode pools (``sizing.roles``)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from llmdeploy.catalog import gpus, models
from llmdeploy.cli import app
from llmdeploy.engines import resolve_engine
from llmdeploy.sizing import Slo, TargetLoad, plan_options
from llmdeploy.sizing.roles import with_disaggregated

MODEL = "meta-llama/Llama-3.1-8B-Instruct"
LOAD = TargetLoad(requests_per_second=20, avg_prompt_tokens=4000, avg_output_tokens=300)


def _options(load: TargetLoad | None = LOAD, slo: Slo | None = None, version: str = "0.30.0",
             **kw: object) -> list:
    g = gpus()
    opts = plan_options(models()[MODEL], max_model_len=8192, engine=resolve_engine("vllm", None, version),
                        gpus=[g["h100-sxm"], g["l40s"]], target_load=load, slo=slo)
    return with_disaggregated(opts, load, slo) if kw.get("disaggregation") else opts


def invoke(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, list(args))


def test_each_shape_comes_aggregated_and_disaggregated_cheapest_first() -> None:
    opts = _options(disaggregation=True)
    agg = {(o.gpu_key, o.tensor_parallel): o for o in opts if o.disaggregation is None}
    pd = {(o.gpu_key, o.tensor_parallel): o for o in opts if o.disaggregation is not None}
    assert set(agg) == set(pd) and len(agg) == 8  # 2 GPUs × TP 1, 2, 4, 8
    costs = [o.cost_per_1m_output_tokens for o in opts if o.slo_missed is None]
    assert costs == sorted(costs)
    for shape, o in pd.items():
        ds = o.disaggregation
        assert o.topology == f"P/D {ds.prefill.replicas}:{ds.decode.replicas}"
        assert o.replicas == ds.prefill.replicas + ds.decode.replicas
        # Both pools take the shape: the fleet costs replicas × the shape's price.
        assert ds.cost_per_hour == pytest.approx(o.replicas * agg[shape].cost_per_hour)
        assert o.cost_per_1m_output_tokens == pytest.approx(ds.cost_per_hour / (20 * 300 * 3600) * 1e6)
        # The verdict compares against the aggregated option of the same shape.
        assert ds.aggregated_gpus == agg[shape].replicas * agg[shape].gpu_count
        mine = o.cost_per_1m_output_tokens
        theirs = agg[shape].cost_per_1m_output_tokens
        assert ds.cheaper == ("disaggregated" if mine <= theirs + 1e-9 else "aggregated"), shape


def test_long_prompts_make_pd_cheapest_on_h100() -> None:
    """4000-token prompts at 20 req/s, TPOT ≤ 50 ms: prompts stall aggregated decode; 4 + 2 H100s beat 7."""
    best = _options(slo=Slo(ttft_p95_ms=2000, tpot_ms=50), disaggregation=True)[0]
    assert (best.gpu_key, best.tensor_parallel, best.topology) == ("h100-sxm", 1, "P/D 4:2")
    assert best.disaggregation.aggregated_gpus == 7 and best.disaggregation.gpus == 6
    assert "disaggregated $41.28/h vs aggregated $48.16/h" in best.disaggregation.why


def _pd_of(opts: list, gpu: str, tp: int):  # type: ignore[no-untyped-def]
    return next(o for o in opts if o.disaggregation is not None and (o.gpu_key, o.tensor_parallel) == (gpu, tp))


def test_a_tpot_target_turns_the_verdict() -> None:
    """vLLM 0.19 on L40S TP 1: aggregated is cheaper (17 vs 9+11 GPUs) until TPOT ≤ 60 ms shrinks its batches."""
    free = _pd_of(_options(version="0.19.0", disaggregation=True), "l40s", 1)
    assert free.topology == "P/D 9:11" and free.disaggregation.aggregated_gpus == 17
    assert free.disaggregation.cheaper == "aggregated"
    bound = _pd_of(_options(slo=Slo(tpot_ms=60), version="0.19.0", disaggregation=True), "l40s", 1)
    assert bound.topology == "P/D 9:15" and bound.disaggregation.cheaper == "disaggregated"
    assert "disaggregated $44.64/h vs aggregated $55.80/h" in bound.disaggregation.why


def test_short_prompts_keep_aggregated_first() -> None:
    load = TargetLoad(requests_per_second=20, avg_prompt_tokens=200, avg_output_tokens=500)
    opts = _options(load, disaggregation=True)
    assert opts[0].disaggregation is None
    same = next(o for o in opts if o.disaggregation is not None
                and (o.gpu_key, o.tensor_parallel) == (opts[0].gpu_key, opts[0].tensor_parallel))
    assert same.disaggregation.cheaper == "aggregated" and "P/D pays off when" in same.disaggregation.why


def test_no_rate_or_opt_out_means_no_pd_rows() -> None:
    assert all(o.disaggregation is None for o in _options(None, disaggregation=True))
    assert all(o.disaggregation is None for o in _options(disaggregation=False))


def test_pd_option_misses_a_ttft_target_it_cannot_meet() -> None:
    opts = _options(slo=Slo(ttft_p95_ms=100), disaggregation=True)
    pd = [o for o in opts if o.disaggregation is not None]
    assert pd and all(o.slo_missed and "TTFT p95" in o.slo_missed for o in pd)
    assert all(o.slo_missed is not None for o in opts[-len(pd):])  # misses come last


def test_cli_table_and_json() -> None:
    args = ("plan", "-m", MODEL, "--gpu", "h100-sxm,l40s", "--engine-version", "0.30.0", "--request-rate", "20",
            "--prompt-tokens", "4000", "--output-tokens", "300", "--tpot-ms", "50", "--ttft-p95-ms", "2000")
    r = invoke(*args)
    assert r.exit_code == 0, r.stderr
    assert "topology" in r.stdout and "P/D 4:2" in r.stdout and "4+2" in r.stdout
    assert "Aggregated vs P/D on h100-sxm TP 1: disaggregated is cheaper" in " ".join(r.stdout.split())
    j = json.loads(invoke(*args, "-f", "json").stdout)
    first = j["options"][0]
    assert first["topology"] == "P/D 4:2" and first["replicas"] == 6
    assert first["disaggregation"]["prefill"]["replicas"] == 4 and first["disaggregation"]["cheaper"] == "disaggregated"
    assert {o["topology"] for o in j["options"]} >= {"aggregated"}
    off = json.loads(invoke(*args, "--no-disaggregation", "-f", "json").stdout)
    assert {o["topology"] for o in off["options"]} == {"aggregated"}
    assert "topology" not in invoke(*args, "--no-disaggregation").stdout
