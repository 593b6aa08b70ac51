"""The performance model's mechanisms (src/llmdeploy/sizing/perf.py), one by one.

The calibration against public runs is tests/unit/test_perf_calibration.py; here each
mechanism is checked on its own: the API server's front end in a burst, the engine-keyed
constants, the calibrated latency tails, pipeline stages across nodes, the consumer-GPU
interconnect.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import pytest

from llmdeploy.catalog import get_gpu, get_model
from llmdeploy.sizing import perf
from llmdeploy.sizing.capacity import Slo, deployment, estimate_capacity
from llmdeploy.sizing.memory import resolve_quantization

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import perf_runs_support as S


def _dep(gpu: str = "h100-sxm", model: str = "Qwen/Qwen2.5-7B-Instruct", tp: int = 1, pp: int = 1,
         engine: str = "vllm", version: str | None = "0.11.0", **kw: object) -> perf.Deployment:
    m = get_model(model)
    g = get_gpu(gpu)
    q = resolve_quantization(m, "none")
    w = 2.0 * 7.6e9 / (tp * pp)
    return deployment(model=m, gpu=g, q=q, tp=tp, pp=pp, dp=1, weights_per_stage=[int(w)],
                      kv_bytes_per_token_per_stage=[57344 // tp], kv_cache_tokens=400_000, max_num_seqs=1024,
                      max_num_batched_tokens=8192, engine_version=version, engine=engine, **kw)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- front end


def test_a_burst_reaches_the_engine_after_the_whole_bursts_front_end() -> None:
    """1000 chat requests at once: none gets a first token before all 1000 are rendered.

    The API server renders every request that was ready when its event-loop iteration
    began before any reaches the engine, so the fastest TTFT of the burst is at least
    N × (request overhead + chat template); requests spread in time are not delayed so.
    """
    d = _dep()
    per_request = d.hw.request_overhead_s + d.chat_template_s
    assert d.chat_template_s > 0
    n = 200
    burst = [perf.Request(0.0, 128, 4, True) for _ in range(n)]
    sim = perf.simulate(d, burst)
    assert sim.ttft_ms_mean >= n * per_request * 1e3
    spread = [perf.Request(i * 1.0, 128, 4, True) for i in range(20)]
    alone = perf.simulate(d, spread)
    assert alone.ttft_ms_mean < 5 * per_request * 1e3 + 100


def test_completions_requests_skip_the_chat_template() -> None:
    d = _dep()
    chat = perf.simulate(d, [perf.Request(0.0, 128, 4, True) for _ in range(100)])
    plain = perf.simulate(d, [perf.Request(0.0, 128, 4, False) for _ in range(100)])
    assert chat.ttft_ms_mean > plain.ttft_ms_mean


def test_chat_template_cost_by_family_with_a_default() -> None:
    table = perf.load_constants()["frontend"]["chat_template_ms"]
    assert perf.chat_template_seconds("no-such-family") == pytest.approx(table["default"] * 1e-3)
    assert perf.chat_template_seconds("gpt_oss") == pytest.approx(table["gpt_oss"] * 1e-3)
    assert perf.chat_template_seconds("qwen3", overrides={"chat:qwen3": 50.0}) == pytest.approx(0.05)


def test_steady_state_ttft_counts_the_front_end() -> None:
    d = _dep()
    bare = replace(d, chat_template_s=0.0)
    assert perf.steady_state(d, 1, 512, 128).ttft_ms == pytest.approx(
        perf.steady_state(bare, 1, 512, 128).ttft_ms + d.chat_template_s * 1e3)


# --------------------------------------------------------------------------- engines


@pytest.mark.parametrize("engine", ["tgi", "some-future-engine"])
def test_engines_without_their_own_constants_use_vllms_with_a_caveat(engine: str) -> None:
    hw = perf.hardware(get_gpu("h100-sxm"), "1.2.0rc1", engine=engine)
    assert hw.engine == "vllm" and hw.caveat and "vLLM's constants stand in" in hw.caveat
    assert hw.era == perf.load_constants()["eras"][0]["name"]  # another engine's version: vLLM's newest era
    assert not perf.is_calibrated("h100-sxm", engine)
    cap = estimate_capacity(_dep(engine=engine), gpu=get_gpu("h100-sxm"), requests_per_second=None,
                            avg_prompt_tokens=None, avg_output_tokens=None, price_per_gpu_hour=None)
    assert hw.caveat in cap.assumptions and not cap.calibrated


@pytest.mark.parametrize(("engine", "era"), [("sglang", "sglang-0.5"), ("tensorrt-llm", "trtllm-1")])
def test_sglang_and_tensorrt_llm_have_their_own_constants_over_vllms(engine: str, era: str) -> None:
    """perf_<engine>.yaml states what its runs pin; the rest is vLLM's (``inherits: vllm``)."""
    import yaml

    own = yaml.safe_load((perf.DATA_FILE.parent / perf.ENGINE_FILES[engine]).read_text(encoding="utf-8"))
    assert own["inherits"] == "vllm"
    h100 = get_gpu("h100-sxm")
    hw = perf.hardware(h100, "1.2.0rc1", engine=engine)
    assert hw.engine == engine and hw.caveat is None and hw.era == era
    assert hw.compute_efficiency == pytest.approx(own["gpus"]["h100-sxm"]["compute_efficiency"])
    assert hw.request_overhead_s == pytest.approx(own["eras"][0]["request_overhead_ms"] * 1e-3)
    merged, vllm = perf.load_constants(engine), perf.load_constants("vllm")
    # Inherited, entry by entry: interconnects, tails, and GPU rows the file does not state.
    assert merged["interconnects"] == vllm["interconnects"] and merged["tails"] == vllm["tails"]
    assert merged["gpus"]["rtx-4090"] == vllm["gpus"]["rtx-4090"]
    assert hw.allreduce_latency_s == perf.hardware(h100, "0.11.0").allreduce_latency_s
    # Calibrated only where the engine's own runs are: an inherited row is not.
    assert perf.is_calibrated("h100-sxm", engine) and not perf.is_calibrated("rtx-4090", engine)
    assert perf.chat_template_seconds("qwen3", engine) == pytest.approx(own["frontend"]["chat_template_ms"]["qwen3"] * 1e-3)


def test_an_engine_file_must_inherit_another_engines() -> None:
    with pytest.raises(ValueError, match="inherits must name another engine"):
        perf._inherit({"inherits": "sglang"}, "perf_sglang.yaml")
    with pytest.raises(ValueError, match="inherits must name another engine"):
        perf._inherit({"inherits": "nope"}, "perf_sglang.yaml")


def test_vllm_has_its_own_constants() -> None:
    hw = perf.hardware(get_gpu("h100-sxm"), "0.11.0", engine="vllm")
    assert hw.engine == "vllm" and hw.caveat is None
    assert perf.constants_engine("VLLM") == ("vllm", None)
    assert "TGI" in (perf.constants_engine("tgi")[1] or "")


# --------------------------------------------------------------------------- tails


def test_slo_uses_the_calibrated_ratios_by_regime() -> None:
    free = perf.Point(concurrency=8, running=8, output_tokens_per_s=1.0, per_sequence_tokens_per_s=1.0,
                      tpot_ms=10.0, ttft_ms=100.0, requests_per_s=1.0, bound="memory_bandwidth", step_ms=10.0)
    queued = replace(free, concurrency=64)
    r_free = perf.tail_ratio("ttft", "p95")
    r_queue = perf.tail_ratio("ttft", "p95", queueing=True)
    assert r_queue > r_free > 1.0
    between = (r_free + r_queue) / 2 * 100.0
    slo = Slo(ttft_p95_ms=between)
    assert slo.misses(free) is None
    assert slo.misses(queued) is not None and "TTFT p95" in (slo.misses(queued) or "")
    assert Slo(tpot_ms=10.0 * perf.tail_ratio("tpot", "p95") * 0.99).misses(free) is not None


# --------------------------------------------------------------------------- pipeline parallel


def test_pipeline_hop_grows_with_tokens_and_the_network() -> None:
    local = _dep(pp=2)
    ib = replace(local, stage_network="infiniband")
    eth = replace(local, stage_network="ethernet")
    for d in (local, ib, eth):
        assert perf.pipeline_hop_seconds(d, 8192) > perf.pipeline_hop_seconds(d, 1)
    # a prefill chunk of 8192 tokens × 3584 × 2 B = 59 MB: seconds on TCP, ms on InfiniBand
    assert perf.pipeline_hop_seconds(eth, 8192) > 5 * perf.pipeline_hop_seconds(ib, 8192)
    assert perf.step_time(eth, 0, 8192, 0.0).seconds > perf.step_time(ib, 0, 8192, 0.0).seconds
    # the hop is part of the step's communication
    assert perf.step_time(eth, 0, 8192, 0.0).communication >= perf.pipeline_hop_seconds(eth, 8192)
    with pytest.raises(ValueError, match="unknown stage network"):
        perf.pipeline_hop_seconds(replace(local, stage_network="carrier-pigeon"), 1)


def test_single_stage_has_no_hop() -> None:
    d = _dep(pp=1, stage_network="ethernet")
    assert perf.step_time(d, 1, 0, 100.0).communication == 0.0


# --------------------------------------------------------------------------- interconnects


def test_geforce_cards_use_the_no_p2p_link() -> None:
    assert perf.link_name(get_gpu("rtx-4090")) == "pcie-no-p2p"
    assert perf.link_name(get_gpu("h100-pcie")) == "pcie"
    assert perf.link_name(get_gpu("h100-sxm")) == "nvlink"
    hw = perf.hardware(get_gpu("rtx-4090"), "0.8.5")
    link = perf.load_constants()["interconnects"]["pcie-no-p2p"]
    assert hw.bus_bandwidth_gbs == pytest.approx(link["bus_bandwidth_gbs"])


# --------------------------------------------------------------------------- harness rules


def test_serve_flags_are_replayed() -> None:
    run = {"serve_command": "vllm serve X -tp 4 --max-num-batched-tokens 16384 --max-model-len 32768 --foo 3"}
    assert S.serve_flags(run) == {"max-num-batched-tokens": 16384, "max-model-len": 32768}
    r = next(r for _, r in S.runs() if "--max-num-batched-tokens 16384" in str(r.get("serve_command")))
    if S.exclusion(r) is None:
        assert S.deployment(r).max_num_batched_tokens == 16384


def test_ttft_exclusion_only_drops_ttfts_that_fall_as_the_rate_rises() -> None:
    excluded = dict(S.ttft_exclusions())
    assert excluded, "the IOG multi-RTX-4090 sweeps have TTFTs no load explains"
    for _, r in S.runs():
        why = S.ttft_exclusion(r)
        if why is None:
            continue
        t = S._ttft(r)
        assert t is not None
        sweep = next(v for v in S._sweeps().values() if any(i == r["id"] for *_, i in v))
        assert any(rate > r["request_rate"] and tt * S.TTFT_MONOTONE_FACTOR < t for rate, tt, _ in sweep)
        assert "ttft" not in S.measured(r) and "throughput" in S.measured(r)
    # single-GPU H100 PCIe sweeps rise with the rate: nothing of theirs is dropped
    assert not any("1xh100-pcie" in i for i in excluded)


# --------------------------------------------------------------------------- prefix caching


def test_no_prefix_hits_change_nothing() -> None:
    d = _dep()
    assert perf.steady_state(replace(d, prefix_hit_rate=0.0), 64, 2000, 200) == perf.steady_state(d, 64, 2000, 200)
    assert perf.prefill_seconds(d, 2000, cached=0) == perf.prefill_seconds(d, 2000)


def test_prefix_hits_skip_prefill_but_still_attend_to_the_cached_tokens() -> None:
    d = _dep()
    full = perf.steady_state(d, 1, 8000, 200)
    hit = perf.steady_state(replace(d, prefix_hit_rate=0.75), 1, 8000, 200)
    # Only 2000 of the 8000 tokens are computed, but they attend to the 6000 cached ones:
    # cheaper than the whole prompt, dearer than a 2000-token prompt on its own.
    short = perf.steady_state(d, 1, 2000, 200)
    assert short.ttft_ms < hit.ttft_ms < full.ttft_ms
    assert perf.prefill_seconds(d, 2000) < perf.prefill_seconds(d, 8000, cached=6000) < perf.prefill_seconds(d, 8000)
    # The mean step carries less interleaved prefill, but decoding still reads the whole
    # 8000-token context: dearer than the 2000-token prompt's step.
    assert short.tpot_ms < hit.tpot_ms < full.tpot_ms


def test_prefix_hits_raise_throughput_of_a_prefill_heavy_load() -> None:
    d = _dep()
    base = perf.steady_state(d, 128, 4000, 100)
    hit = perf.steady_state(replace(d, prefix_hit_rate=0.9), 128, 4000, 100)
    assert hit.output_tokens_per_s > 1.3 * base.output_tokens_per_s
    assert hit.ttft_ms < base.ttft_ms


def test_target_load_prefix_hit_rate_reaches_the_capacity_model() -> None:
    """scaling.targetLoad.prefixCacheHitRate → SizingInput → the capacity report."""
    from llmdeploy.engines import resolve_engine
    from llmdeploy.sizing import SizingInput, TargetLoad, size
    from llmdeploy.spec.models import TargetLoad as SpecTargetLoad

    assert SpecTargetLoad.model_validate({"requestsPerSecond": 1, "prefixCacheHitRate": 0.5}).prefix_cache_hit_rate == 0.5
    with pytest.raises(ValueError):
        SpecTargetLoad.model_validate({"requestsPerSecond": 1, "prefixCacheHitRate": 1.0})

    def ttft(rate: float) -> float:
        inp = SizingInput(model=get_model("Qwen/Qwen3-8B"), gpu=get_gpu("h100-sxm"),
                          engine=resolve_engine("vllm", None, None), max_model_len=16384,
                          target_load=TargetLoad(requests_per_second=2.0, avg_prompt_tokens=8000,
                                                 avg_output_tokens=200, prefix_cache_hit_rate=rate))
        cap = size(inp).capacity
        assert cap is not None
        return cap.ttft_seconds_estimate

    assert ttft(0.8) < ttft(0.0)
