"""Sizing: the memory formulas, the verdict and its reasons, advice, capacity and the API contract.

The calibration against real vLLM logs is in test_calibration.py; here each formula is
checked against hand arithmetic, and every catalog model is sized on every catalog GPU.
"""

from __future__ import annotations

import dataclasses
import itertools
import json

import pytest

from llmdeploy.catalog import QuantizationConfig, get_gpu, get_model, gpus, models
from llmdeploy.engines import resolve_engine
from llmdeploy.rules.sizing import RULE_IDS
from llmdeploy.sizing import (
    SizingInput,
    SizingReport,
    Slo,
    TargetLoad,
    engine_batch_defaults,
    largest_max_model_len,
    plan_options,
    size,
    size_spec,
)
from llmdeploy.sizing import memory as M
from llmdeploy.sizing.memory import GIB
from llmdeploy.spec.models import LLMService

V019 = resolve_engine("vllm", None, "0.19.0")
V021 = resolve_engine("vllm", None, "0.21.0")
NEWEST = resolve_engine("vllm", None, None)
LLAMA8 = get_model("meta-llama/Llama-3.1-8B-Instruct")
LLAMA70 = get_model("meta-llama/Llama-3.1-70B-Instruct")
H100 = get_gpu("h100-sxm")


def inp(model=LLAMA8, gpu=H100, engine=V019, **kw) -> SizingInput:  # type: ignore[no-untyped-def]
    return SizingInput(model=model, gpu=gpu, engine=engine, **kw)


# --------------------------------------------------------------------------- every model × GPU × TP


def _product() -> list[tuple[str, str, int]]:
    out = []
    for m, g in itertools.product(models(), gpus()):
        for tp in range(1, min(8, gpus()[g].gpus_per_node) + 1):
            out.append((m, g, tp))
    return out


def test_every_catalog_model_on_every_catalog_gpu_answers() -> None:
    """The whole catalog product: no exception, consistent numbers, actionable reasons."""
    mm = models()
    gg = gpus()
    seen_fit = 0
    for m, g, tp in _product():
        r = size(inp(mm[m], gg[g], NEWEST, tensor_parallel=tp))
        assert isinstance(r, SizingReport)
        assert r.fits == (not r.reasons), (m, g, tp)
        for reason in (*r.reasons, *r.warnings):
            assert RULE_IDS[reason.problem].startswith("LD2") and reason.message and reason.field, (m, g, tp, reason)
        assert r.kv_cache_tokens >= 0 and r.per_gpu.weights_gib > 0
        assert r.gpu_count == tp
        if r.fits:
            seen_fit += 1
            # Models with recurrent (linear-attention) layers start with fewer cache tokens:
            # a request needs the KV of its attention layers only.
            assert r.kv_cache_tokens >= r.max_model_len or getattr(mm[m], "recurrent_layers", 0), (m, g, tp)
            assert r.max_num_seqs >= 1 and r.capacity is not None
            assert r.capacity.decode_tokens_per_s > 0 and r.capacity.prefill_tokens_per_s > 0
            assert r.per_gpu.kv_cache_gib > 0
        json.dumps(r.to_json(RULE_IDS))  # always serialisable
    assert seen_fit > 500


@pytest.mark.parametrize("model_id", list(models()))
def test_each_model_fits_somewhere(model_id: str) -> None:
    """Every catalog model has at least one single-node configuration at 8K (or its own maximum)."""
    m = models()[model_id]
    options = plan_options(m, max_model_len=min(8192, m.max_position_embeddings), engine=NEWEST)
    assert options, f"{model_id} fits nowhere"
    assert options == sorted(options, key=lambda o: (o.cost_per_hour is None, o.cost_per_hour or 0.0,
                                                     o.gpu_count, -o.kv_cache_tokens))


# --------------------------------------------------------------------------- formulas


def test_kv_bytes_per_token_gqa_mla_fp8_and_tp() -> None:
    assert M.kv_bytes_per_token(LLAMA8, 1, 32, "auto", "bfloat16") == 2 * 32 * 8 * 128 * 2
    assert M.kv_bytes_per_token(LLAMA8, 2, 32, "auto", "bfloat16") == 2 * 32 * 4 * 128 * 2
    # TP beyond the KV heads replicates one head per rank (8 heads, TP 16 → 1 each).
    assert M.kv_bytes_per_token(LLAMA8, 16, 32, "auto", "bfloat16") == 2 * 32 * 1 * 128 * 2
    assert M.kv_bytes_per_token(LLAMA8, 1, 32, "fp8", "bfloat16") == 2 * 32 * 8 * 128
    r1 = get_model("deepseek-ai/DeepSeek-R1")
    latent = (512 + 64) * 61 * 2
    assert M.kv_bytes_per_token(r1, 1, 61, "auto", "bfloat16") == latent
    assert M.kv_bytes_per_token(r1, 8, 61, "auto", "bfloat16") == latent  # MLA is not split by TP
    # Before 0.7.1 vLLM ran DeepSeek as MHA: K and V for all 128 heads at head size 192.
    assert M.kv_bytes_per_token(r1, 8, 61, "auto", "bfloat16", mla_latent=False) == 2 * 61 * 16 * 192 * 2
    assert M.kv_bytes_per_token(LLAMA8, 1, 32, "auto", "float32") == 2 * 32 * 8 * 128 * 4


def test_weights_match_the_checkpoint_and_split_over_tp_and_pp() -> None:
    mm = V019.memory_model
    q = M.resolve_quantization(LLAMA8, "none")
    (w1,), _ = M.weights_per_stage(LLAMA8, mm, q, "bfloat16", 1, 1)
    rope = 131072 * 128 * 2  # rotary cos/sin cache
    assert w1 == pytest.approx(LLAMA8.weight_bytes + rope, rel=1e-6)
    (w2,), _ = M.weights_per_stage(LLAMA8, mm, q, "bfloat16", 2, 1)
    assert w2 == pytest.approx(w1 / 2 + rope / 2, rel=1e-3)
    stages, _ = M.weights_per_stage(LLAMA70, mm, q, "bfloat16", 1, 2)
    assert len(stages) == 2 and sum(stages) == pytest.approx(LLAMA70.weight_bytes + 2 * rope, rel=1e-3)


def test_quantized_weight_bytes() -> None:
    awq = M.Quantization("awq", 4, 128, from_checkpoint=True)
    assert M.weight_bytes_per_param(awq, 2) == pytest.approx(0.5 + 2.5 / 128)  # ~ +3.9 % of int4
    assert M.weight_bytes_per_param(M.Quantization("fp8", 8, None, block_fp8=True), 2) == pytest.approx(1 + 4 / 16384)
    assert M.weight_bytes_per_param(M.Quantization("bitsandbytes", 4, None), 2) == pytest.approx(0.5625)
    assert M.weight_bytes_per_param(M.Quantization(), 2) == 2
    m = get_model("hugging-quants/Meta-Llama-3.1-8B-Instruct-AWQ-INT4")
    (w,), _ = M.weights_per_stage(m, V019.memory_model, M.resolve_quantization(m, "none"), "float16", 1, 1)
    # 6.98 B linear parameters at 0.52 B + 1.05 B embedding/LM-head parameters at 2 B ≈ 5.4 GiB.
    assert 5.2 * GIB < w < 5.6 * GIB
    # Dynamic FP8 halves the linear layers of an unquantized checkpoint; embeddings stay 16-bit.
    fp8 = M.resolve_quantization(LLAMA8, "fp8")
    (w8,), _ = M.weights_per_stage(LLAMA8, V019.memory_model, fp8, "bfloat16", 1, 1)
    assert 8.3 * GIB < w8 < 8.7 * GIB


def test_pipeline_stage_split_follows_the_version() -> None:
    assert [s.num_layers for s in M.pipeline_stages(61, 2)] == [31, 30]
    assert [s.num_layers for s in M.pipeline_stages(61, 2, "last")] == [30, 31]
    assert [s.num_layers for s in M.pipeline_stages(32, 3)] == [11, 11, 10]
    st = M.pipeline_stages(32, 4)
    assert st[0].is_first and st[-1].is_last and not st[1].is_first


def test_kv_tokens_are_whole_blocks() -> None:
    mm = V019.memory_model
    st = M.pipeline_stages(32, 1)[0]
    per_block = 131072 * 16
    assert M.kv_tokens(per_block * 100 + per_block - 1, LLAMA8, mm, 1, st, 8192, 8192, "auto", "bfloat16") == 1600
    assert M.kv_tokens(0, LLAMA8, mm, 1, st, 8192, 8192, "auto", "bfloat16") == 0


def test_cuda_graph_capture_counts_per_version() -> None:
    assert M.cuda_graph_sizes(V019.memory_model, 1024, 8192) == (51, 51)  # v0.19.0 log
    assert M.cuda_graph_sizes(V021.memory_model, 256, 2048) == (51, 35)  # v0.21.0 A5000 log
    v0 = resolve_engine("vllm", None, "0.6.5").memory_model
    assert M.cuda_graph_sizes(v0, 256, 8192) == (0, 35)
    v010 = resolve_engine("vllm", None, "0.10.0").memory_model
    assert M.cuda_graph_sizes(v010, 1024, 8192) == (67, 0)


def test_activation_is_the_larger_of_forward_and_sampler() -> None:
    mm = V019.memory_model
    st = M.pipeline_stages(32, 1)[0]
    q = M.Quantization()
    act = M.activation_bytes(LLAMA8, mm, q, "bfloat16", 1, st, 8192, 1024)
    assert act == pytest.approx(1024 * 128256 * 15.6, rel=1e-6)  # sampler dominates at 1024 sequences
    fwd = M.activation_bytes(LLAMA8, mm, q, "bfloat16", 1, st, 8192, 1)
    assert fwd == pytest.approx(8192 * (3 * 14336 + 3 * 4096) * 2, rel=1e-6)
    first = dataclasses.replace(st, is_last=False)  # no sampler off the last pipeline stage
    assert M.activation_bytes(LLAMA8, mm, q, "bfloat16", 1, first, 8192, 1024) == fwd


# --------------------------------------------------------------------------- budgets by version


def test_v019_budget_reproduces_the_log_line() -> None:
    """75.23 − (14.99 + 1.89 + 0.25) = 58.11 GiB → 476,016 tokens (tests/data/vllm_logs/v0190_llama31_8b…)."""
    r = size(inp(max_model_len=16384, gpu_memory_utilization=0.95, max_num_seqs=1024))
    b = r.per_gpu
    assert b.usable_gib == pytest.approx(75.23, abs=0.05)
    assert b.kv_cache_gib == pytest.approx(b.usable_gib - b.weights_gib - b.activation_gib - b.non_torch_gib, abs=1e-6)
    assert r.kv_cache_tokens == pytest.approx(476_016, rel=0.01)
    assert not r.cuda_graphs_counted and b.cuda_graph_gib > 0


def test_v021_subtracts_cuda_graphs_and_defaults_to_092() -> None:
    before = size(inp(engine=V019))
    after = size(inp(engine=V021))
    assert before.gpu_memory_utilization == pytest.approx(0.90)
    assert after.gpu_memory_utilization == pytest.approx(0.92)
    b = after.per_gpu
    assert after.cuda_graphs_counted
    assert b.kv_cache_gib == pytest.approx(
        b.usable_gib - b.weights_gib - b.activation_gib - b.non_torch_gib - b.cuda_graph_gib, abs=1e-6)
    same = size(inp(engine=V021, gpu_memory_utilization=0.90))
    assert same.kv_cache_tokens < before.kv_cache_tokens  # graphs now come out of the same budget


def test_non_torch_grows_with_tensor_parallel_on_nvlink() -> None:
    one = size(inp(model=LLAMA70, tensor_parallel=4))
    assert one.per_gpu.non_torch_gib == pytest.approx(0.25 + 1.9)
    pcie = size(inp(model=LLAMA70, gpu=get_gpu("l40s"), tensor_parallel=8))
    assert pcie.per_gpu.non_torch_gib < 0.5


def test_fp8_kv_cache_doubles_the_tokens() -> None:
    a = size(inp(max_num_seqs=256))
    b = size(inp(max_num_seqs=256, kv_cache_dtype="fp8"))
    assert b.kv_cache_tokens == pytest.approx(2 * a.kv_cache_tokens, rel=0.001)


def test_sliding_window_credit_only_from_021() -> None:
    gemma = get_model("google/gemma-3-12b-it")
    old = size(inp(model=gemma, max_model_len=32768, max_num_seqs=256))
    new = size(inp(model=gemma, engine=V021, max_model_len=32768, max_num_seqs=256, gpu_memory_utilization=0.90))
    # v0.19 counts every layer for every token; v0.21 charges the 40 sliding layers only
    # window - 1 + max_num_batched_tokens = 1023 + 8192 tokens of a 32K request: ~2.5x the tokens.
    assert new.kv_cache_tokens > 2 * old.kv_cache_tokens


def test_v0_profiles_the_whole_context_below_32k() -> None:
    v064 = resolve_engine("vllm", None, "0.6.4")
    three090 = get_gpu("rtx-3090")
    assert engine_batch_defaults(inp(gpu=three090, engine=v064, max_model_len=20000))[0] == 20000
    assert engine_batch_defaults(inp(gpu=three090, engine=v064, max_model_len=35000))[0] == 512
    short = size(inp(gpu=three090, engine=v064, max_model_len=20000))
    longer = size(inp(gpu=three090, engine=v064, max_model_len=29000))
    assert longer.per_gpu.activation_gib > short.per_gpu.activation_gib + 0.8


def test_v0_generation_can_be_forced_in_08_to_010() -> None:
    v083 = resolve_engine("vllm", None, "0.8.3")
    assert size(inp(engine=v083)).engine_era.startswith("v1")
    assert size(inp(engine=v083, engine_generation="V0")).engine_era.startswith("v0")
    with pytest.raises(ValueError, match="no V0 engine"):
        size(inp(engine=V019, engine_generation="V0"))
    with pytest.raises(ValueError, match="no V1 engine"):
        size(inp(engine=resolve_engine("vllm", None, "0.7.3"), engine_generation="V1"))


def test_tgi_sizes_with_its_own_memory_model() -> None:
    tgi = resolve_engine("tgi", None, None)
    r = size(inp(engine=tgi))
    assert r.fits and r.engine == "tgi" and r.gpu_memory_utilization == 1.0
    assert r.per_gpu.kv_cache_gib == pytest.approx(
        0.95 * (r.per_gpu.usable_gib - r.per_gpu.weights_gib - r.per_gpu.activation_gib - r.per_gpu.non_torch_gib))


# --------------------------------------------------------------------------- verdicts and reasons


def codes(r: SizingReport) -> set[str]:
    return {RULE_IDS[x.problem] for x in r.reasons}


def warn_codes(r: SizingReport) -> set[str]:
    return {RULE_IDS[x.problem] for x in r.warnings}


def test_ld201_weights_do_not_fit_points_at_tp() -> None:
    r = size(inp(model=LLAMA70))
    assert not r.fits and codes(r) == {"LD201"}
    reason = r.reasons[0]
    assert reason.field == ("resources", "parallelism", "tensor")
    assert "tensor parallel 2" in (reason.hint or "")
    assert any("tensor parallel 2" in s for s in r.suggestions)
    assert any("AWQ" in s for s in r.suggestions)


def test_ld201_points_at_the_gpu_when_no_tp_helps() -> None:
    r = size(inp(model=get_model("meta-llama/Llama-3.1-405B-Instruct"), gpu=get_gpu("t4"), tensor_parallel=4))
    ld201 = next(x for x in r.reasons if RULE_IDS[x.problem] == "LD201")
    assert ld201.field == ("resources", "gpu", "type")


def test_ld202_context_does_not_fit_gives_the_longest_that_does() -> None:
    r = size(inp(gpu=get_gpu("l4"), max_model_len=131072))
    assert codes(r) == {"LD202"}
    reason = r.reasons[0]
    assert reason.field == ("runtime", "maxModelLen") and "refuses to start" in reason.message
    longest = largest_max_model_len(inp(gpu=get_gpu("l4"), max_model_len=131072))
    assert 16384 < longest < 131072 and f"{longest:,}" in (reason.hint or "")
    assert size(inp(gpu=get_gpu("l4"), max_model_len=longest)).fits
    assert not size(inp(gpu=get_gpu("l4"), max_model_len=longest + 4096)).fits


def test_ld203_tp_must_divide_heads() -> None:
    r = size(inp(model=get_model("google/gemma-3-27b-it"), gpu=get_gpu("l40s"), tensor_parallel=3))
    assert "LD203" in codes(r)
    assert r.reasons[0].field == ("resources", "parallelism", "tensor")
    assert "1, 2, 4, 8" in (r.reasons[0].hint or "")


def test_ld204_more_gpus_than_a_node() -> None:
    r = size(inp(model=LLAMA70, gpu=get_gpu("l4"), tensor_parallel=8, pipeline_parallel=2))
    assert "LD204" in codes(r)
    ok = size(inp(model=LLAMA70, gpu=get_gpu("l4"), tensor_parallel=8, pipeline_parallel=2, multi_node=True))
    assert "LD204" not in codes(ok)


def test_ld205_low_concurrency_and_forced_max_num_seqs() -> None:
    r = size(inp(gpu=get_gpu("l4"), max_model_len=32768))
    assert r.fits and "LD205" in warn_codes(r)
    forced = size(inp(max_model_len=16384, max_num_seqs=1024))
    w = next(x for x in forced.warnings if RULE_IDS[x.problem] == "LD205")
    assert w.field == ("runtime", "maxNumSeqs")
    auto = size(inp(max_model_len=16384))
    assert "LD205" not in warn_codes(auto)
    # auto keeps vLLM's own default (1024 on an H100) instead of what fits at maxModelLen;
    # the reason states the preemption risk of long requests.
    assert auto.max_num_seqs == 1024 > auto.max_concurrency
    assert "preempt" in auto.max_num_seqs_reason


def test_max_num_seqs_auto_is_capped_at_the_engine_default() -> None:
    small = size(inp(max_model_len=256))
    assert small.max_num_seqs == 1024  # the ≥70 GiB tier's default; the KV cache holds ~1,800
    assert small.max_concurrency > 1024
    assert size(inp(gpu=get_gpu("l4"), max_model_len=64)).max_num_seqs == 256


def test_ld206_context_beyond_the_model() -> None:
    """vLLM refuses it (an error: does not fit) unless VLLM_ALLOW_LONG_MAX_MODEL_LEN=1 (a warning)."""
    r = size(inp(model=get_model("microsoft/Phi-3-mini-4k-instruct"), max_model_len=8192))
    assert not r.fits
    assert [RULE_IDS[x.problem] for x in r.reasons] == ["LD206"]
    assert "VLLM_ALLOW_LONG_MAX_MODEL_LEN" in r.reasons[0].message
    allowed = size(inp(model=get_model("microsoft/Phi-3-mini-4k-instruct"), max_model_len=8192,
                       allow_long_max_model_len=True))
    assert allowed.fits
    assert "LD206" in warn_codes(allowed)


def test_ld207_fp8_and_bf16_support() -> None:
    fp8_model = get_model("neuralmagic/Meta-Llama-3.1-8B-Instruct-FP8")
    t4 = size(inp(model=fp8_model, gpu=get_gpu("t4")))
    assert "LD207" in codes(t4) and t4.reasons[0].field == ("model", "quantization")
    a100 = size(inp(model=fp8_model, gpu=get_gpu("a100-80gb")))
    assert a100.fits and "LD207" in warn_codes(a100)  # weight-only FP8 Marlin
    assert size(inp(model=fp8_model, gpu=get_gpu("l4"))).fits
    bf16_t4 = size(inp(model=get_model("meta-llama/Llama-3.2-3B-Instruct"), gpu=get_gpu("t4")))
    assert "LD207" in warn_codes(bf16_t4) and bf16_t4.dtype == "float16"
    explicit = size(inp(model=get_model("meta-llama/Llama-3.2-3B-Instruct"), gpu=get_gpu("t4"), dtype="bfloat16"))
    assert "LD207" in codes(explicit)
    marlin = size(inp(model=get_model("hugging-quants/Meta-Llama-3.1-8B-Instruct-AWQ-INT4"), gpu=get_gpu("t4"),
                      quantization="awq_marlin"))
    assert "LD207" in codes(marlin)


def test_ld208_cannot_quantize_on_the_fly() -> None:
    r = size(inp(quantization="awq"))
    assert "LD208" in codes(r) and r.reasons[0].field == ("model", "quantization")
    assert "pre-quantized" in (r.reasons[0].hint or "")
    assert size(inp(model=get_model("hugging-quants/Meta-Llama-3.1-8B-Instruct-AWQ-INT4"), quantization="awq")).fits
    mismatch = size(inp(model=get_model("hugging-quants/Meta-Llama-3.1-8B-Instruct-AWQ-INT4"), quantization="gptq"))
    assert "LD208" in codes(mismatch)
    assert size(inp(quantization="fp8")).fits  # dynamic FP8 is quantized at load


def test_ld209_graphs_above_a_full_budget() -> None:
    r = size(inp(gpu_memory_utilization=0.995))
    assert "LD209" in warn_codes(r)
    assert "LD209" not in warn_codes(size(inp(gpu_memory_utilization=0.9)))
    assert "LD209" not in warn_codes(size(inp(engine=V021, gpu_memory_utilization=0.995)))  # counted in the budget


def test_ld209_counts_what_tgi_keeps_back_from_the_kv_cache() -> None:
    # TGI's default cuda_memory_fraction is 1.0: nothing is above the budget, but only 95 % of
    # what the warm-up leaves becomes KV blocks and the graphs are captured in the rest.
    tgi = resolve_engine("tgi", None, "3.3.5")
    r = size(inp(engine=tgi, gpu=get_gpu("a100-80gb"), gpu_memory_utilization=1.0))
    assert r.per_gpu.cuda_graph_gib > 0
    assert "LD209" not in warn_codes(r)


def test_pre_quantized_checkpoint_is_smaller_and_fits_where_bf16_does_not() -> None:
    awq70 = get_model("hugging-quants/Meta-Llama-3.1-70B-Instruct-AWQ-INT4")
    assert size(inp(model=awq70, gpu=get_gpu("a100-80gb"))).fits
    assert not size(inp(model=LLAMA70, gpu=get_gpu("a100-80gb"))).fits


# --------------------------------------------------------------------------- capacity and cost


def test_capacity_is_bandwidth_bound_and_costed() -> None:
    r = size(inp(gpu=get_gpu("a100-80gb"), engine=NEWEST, target_load=TargetLoad(40, 512, 256)))
    c = r.capacity
    assert c is not None
    step = 1 / c.decode_tokens_per_s_per_sequence
    weights_time = r.per_gpu.weights_gib * GIB / 2039e9
    assert step > weights_time  # never faster than reading the weights at the full bandwidth
    # The operating point: requests/s × output tokens is the output rate; its TPOT is the step.
    assert c.decode_tokens_per_s == pytest.approx(c.requests_per_s_per_replica * 256, rel=1e-6)
    assert c.decode_step_seconds == pytest.approx(step, rel=1e-6)
    assert c.cost_per_hour == pytest.approx(get_gpu("a100-80gb").price_per_gpu_hour_usd)
    assert c.cost_per_1m_output_tokens == pytest.approx(c.cost_per_hour / (c.decode_tokens_per_s * 3600) * 1e6)
    assert c.replicas_needed is not None and c.replicas_needed * c.requests_per_s_per_replica * 0.8 >= 40
    assert any("estimates" in a for a in c.assumptions) and any("$" in a for a in c.assumptions)


def test_price_override_and_missing_price() -> None:
    r = size(inp(engine=NEWEST, price_per_gpu_hour=3.0))
    assert r.capacity is not None and r.capacity.cost_per_hour == 3.0
    h200 = size(inp(gpu=get_gpu("h200"), engine=NEWEST))
    assert h200.capacity is not None and h200.capacity.cost_per_hour is None
    assert h200.capacity.cost_per_1k_requests is None


def test_load_time_grows_with_the_weights() -> None:
    small = size(inp(engine=NEWEST))
    big = size(inp(model=LLAMA70, engine=NEWEST, tensor_parallel=4))
    assert 30 < small.load_time_seconds < big.load_time_seconds
    assert big.load_time_seconds > big.weights_bytes_total / 2e9


def test_data_parallel_multiplies_gpus_cost_and_throughput() -> None:
    one = size(inp(engine=NEWEST))
    two = size(inp(engine=NEWEST, data_parallel=2))
    assert two.gpu_count == 2
    assert one.capacity is not None and two.capacity is not None
    assert two.capacity.cost_per_hour == pytest.approx(2 * one.capacity.cost_per_hour)
    assert two.capacity.decode_tokens_per_s == pytest.approx(2 * one.capacity.decode_tokens_per_s)


# --------------------------------------------------------------------------- spec, options, JSON


SPEC = {
    "apiVersion": "llmdeploy.dev/v1alpha1",
    "kind": "LLMService",
    "metadata": {"name": "llama"},
    "model": {"id": "meta-llama/Llama-3.1-8B-Instruct", "storageUri": "hf://meta-llama/Llama-3.1-8B-Instruct"},
    "runtime": {"maxModelLen": 16384, "gpuMemoryUtilization": 0.95, "maxNumSeqs": "auto",
                "extraArgs": ["--enforce-eager"]},
    "resources": {"gpu": {"type": "h100-sxm"}, "parallelism": {"tensor": 2}},
    "scaling": {"targetLoad": {"requestsPerSecond": 20, "avgPromptTokens": 1000, "avgOutputTokens": 200}},
}


def test_size_spec_reads_every_field() -> None:
    spec = LLMService.model_validate(SPEC)
    r = size_spec(spec, LLAMA8, H100, V019)
    assert r.tensor_parallel == 2 and r.max_model_len == 16384 and r.gpu_memory_utilization == 0.95
    assert r.per_gpu.cuda_graph_gib == 0  # --enforce-eager
    assert r.capacity is not None and r.capacity.replicas_needed is not None
    assert any("1000 prompt" in a for a in r.capacity.assumptions)
    forced = LLMService.model_validate({**SPEC, "runtime": {**SPEC["runtime"], "maxNumSeqs": 64}})
    assert size_spec(forced, LLAMA8, H100, V019).max_num_seqs == 64


def test_plan_options_cheapest_first_and_filtered() -> None:
    opts = plan_options(LLAMA70, max_model_len=8192, engine=NEWEST)
    assert opts and all(o.report.fits for o in opts)
    priced = [o.cost_per_hour for o in opts if o.cost_per_hour is not None]
    assert priced == sorted(priced)
    assert all(o.tensor_parallel <= get_gpu(o.gpu_key).gpus_per_node for o in opts)
    only = plan_options(LLAMA70, max_model_len=8192, engine=NEWEST, gpus=[get_gpu("h100-sxm")])
    assert {o.gpu_key for o in only} == {"h100-sxm"} and min(o.tensor_parallel for o in only) == 2
    assert only[0].to_json()["gpu"] == "h100-sxm"


CONTRACT = ("fits", "reasons", "gpu.name", "gpu.memory_gib", "per_gpu.total_gib", "per_gpu.usable_gib",
            "per_gpu.weights_gib", "per_gpu.activation_gib", "per_gpu.non_torch_gib", "per_gpu.cuda_graph_gib",
            "per_gpu.kv_cache_gib", "kv_bytes_per_token", "kv_cache_tokens", "max_concurrency", "max_model_len")


def contract_keys(data: dict) -> None:  # type: ignore[type-arg]
    for key in CONTRACT:
        node = data
        for part in key.split("."):
            assert part in node, key
            node = node[part]


def test_to_json_contract() -> None:
    r = size(inp(model=LLAMA70))
    data = json.loads(json.dumps(r.to_json(RULE_IDS)))
    contract_keys(data)
    assert data["fits"] is False and data["reasons"][0]["code"] == "LD201"
    assert data["reasons"][0]["field"] == "resources.parallelism.tensor"
    assert data["engine_version"] == "0.19.0" and data["capacity"] is None


def test_catalog_quantization_override_is_respected() -> None:
    """A model whose config says AWQ is sized as AWQ whatever the spec asks."""
    awq = dataclasses.replace(LLAMA8, quantization=QuantizationConfig("awq", 4, 128), weight_bytes=None)
    r = size(inp(model=awq))
    assert r.per_gpu.weights_gib < 6 and "awq" in r.quantization


def test_tgi_warm_up_holds_prompt_logits() -> None:
    # TGI's warm-up asks for prompt logprobs: logits for every prefill token, plus their
    # out-of-place log-softmax before 3.0 (one copy fewer from 3.0, in place).
    from llmdeploy.sizing.memory import GIB

    def per_gpu(version: str):  # type: ignore[no-untyped-def]
        engine = resolve_engine("tgi", None, version)
        return size(inp(engine=engine, gpu=get_gpu("a100-80gb"), gpu_memory_utilization=1.0,
                        max_num_batched_tokens=16384, max_model_len=8192)).per_gpu

    old, new = per_gpu("2.4.1"), per_gpu("3.3.5")
    one_copy = 16384 * LLAMA8.vocab_size * 2 / GIB  # bf16 logits of every prompt token
    assert old.activation_gib - new.activation_gib == pytest.approx(one_copy, rel=0.01)
    assert new.activation_gib > one_copy


# --------------------------------------------------------------------------- #13: concurrency policy and curve


def test_max_num_seqs_auto_no_longer_throttles_to_full_length_requests() -> None:
    """Regression (#13): auto was the number of *full-length* requests the KV cache holds
    (11 for Qwen2.5-7B on an L4 at 8K); vLLM's own default serves the traffic."""
    r = size(inp(model=get_model("Qwen/Qwen2.5-7B-Instruct"), gpu=get_gpu("l4"), max_model_len=8192))
    assert r.max_num_seqs == 256
    assert r.max_concurrency < 20  # what the old policy capped at
    assert "engine's default" in r.max_num_seqs_reason


def test_max_num_seqs_auto_follows_target_concurrency_and_the_tpot_slo() -> None:
    busy = size(inp(gpu=get_gpu("l4"), target_load=TargetLoad(None, 200, 100, concurrency=400)))
    assert busy.max_num_seqs == 400 and "targetLoad.concurrency" in busy.max_num_seqs_reason
    # A TPOT SLO caps the batch at the largest one meeting it, never below what the KV
    # cache holds of typical requests.
    free = size(inp(max_model_len=4096))
    slo = size(inp(max_model_len=4096, slo=Slo(tpot_ms=15.0)))
    assert slo.max_num_seqs < free.max_num_seqs == 1024
    prompt, output = 512, 256
    assert slo.max_num_seqs >= min(1024, slo.kv_cache_tokens // (prompt + output)) or \
        "TPOT SLO" in slo.max_num_seqs_reason
    # An SLO not even one sequence meets caps nothing.
    hopeless = size(inp(max_model_len=4096, slo=Slo(tpot_ms=0.5)))
    assert hopeless.max_num_seqs == 1024 and "caps nothing" in hopeless.max_num_seqs_reason
    assert hopeless.capacity is not None and hopeless.capacity.slo_missed


def test_capacity_points_curve() -> None:
    r = size(inp(engine=NEWEST, concurrencies=(1, 4, 64, 4096)))
    c = r.capacity
    assert c is not None
    pts = {p.concurrency: p for p in c.points}
    assert set(pts) == {1, 4, 64, 4096}
    one = pts[1]
    # Concurrency 1 is the single-stream point: its TPOT is one step of one sequence.
    assert one.running == 1 and one.per_sequence_tokens_per_s == pytest.approx(1000 / one.tpot_ms)
    assert one.bound == "memory_bandwidth"
    # More sequences: more tokens/s in total, fewer per sequence.
    assert pts[1].output_tokens_per_s < pts[4].output_tokens_per_s < pts[64].output_tokens_per_s
    assert pts[1].per_sequence_tokens_per_s > pts[64].per_sequence_tokens_per_s
    # Beyond what runs at once, requests queue: the bound names the limit.
    assert pts[4096].running < 4096 and pts[4096].bound in ("max_num_seqs", "kv_cache")
    assert pts[4096].ttft_ms > pts[64].ttft_ms
    j = r.to_json(RULE_IDS)["capacity"]["points"][0]
    assert set(j) >= {"concurrency", "output_tokens_per_s", "per_sequence_tokens_per_s", "tpot_ms", "ttft_ms",
                      "requests_per_s", "cost_per_1m_output_tokens", "bound"}


def test_tensor_parallel_pays_for_communication() -> None:
    one = size(inp(model=LLAMA70, engine=NEWEST, tensor_parallel=2, concurrencies=(1,)))
    eight = size(inp(model=LLAMA70, engine=NEWEST, tensor_parallel=8, concurrencies=(1,)))
    assert one.capacity is not None and eight.capacity is not None
    s2 = one.capacity.points[0].per_sequence_tokens_per_s
    s8 = eight.capacity.points[0].per_sequence_tokens_per_s
    # 4× the GPUs read a quarter of the weights each, but the all-reduces do not shrink.
    assert s2 < s8 < 2.5 * s2
    assert any("all-reduce" in a for a in eight.capacity.assumptions)


def test_steady_state_agrees_with_the_scheduler_simulation() -> None:
    """The closed form ``size`` prints and the step-by-step replay the calibration uses
    agree on a long closed-loop run of requests averaging the same lengths."""
    from llmdeploy.sizing import perf
    from llmdeploy.sizing.capacity import deployment
    from llmdeploy.sizing.memory import resolve_quantization

    r = size(inp(engine=NEWEST, max_model_len=4096))
    d = deployment(model=LLAMA8, gpu=H100, q=resolve_quantization(LLAMA8, "none"), tp=1, pp=1, dp=1,
                   weights_per_stage=[int(r.per_gpu.weights_gib * GIB)],
                   kv_bytes_per_token_per_stage=[r.kv_bytes_per_token], kv_cache_tokens=r.kv_cache_tokens,
                   max_num_seqs=r.max_num_seqs, max_num_batched_tokens=r.max_num_batched_tokens,
                   engine_version=NEWEST.version)
    for conc in (1, 16, 64):
        # Output lengths spread around 256 so the clients fall out of step, as real ones do.
        reqs = [perf.Request(0.0, 512, 128 + (i * 37) % 257) for i in range(conc * 12)]
        sim = perf.simulate(d, reqs, max_concurrency=conc)
        point = perf.steady_state(d, conc, 512, 256)
        assert sim.output_tokens_per_s == pytest.approx(point.output_tokens_per_s, rel=0.15), conc
        assert sim.tpot_ms_mean == pytest.approx(point.tpot_ms, rel=0.15), conc


def test_perf_constants_are_sourced_and_physical() -> None:
    from llmdeploy.sizing import perf

    data = perf.load_constants()
    for key, row in data["gpus"].items():
        assert key in gpus(), key
        assert row["source"], key
        assert 0.3 <= row["bandwidth_efficiency"] <= 0.95 and 0.1 <= row["compute_efficiency"] <= 0.9, key
    for era in data["eras"]:
        assert era["source"] and era["step_overhead_ms"] >= 0
    for link, row in data["interconnects"].items():
        assert row["source"] and all(v > 0 for v in row["allreduce_us_per_layer"].values()), link
    assert not perf.is_calibrated("t4")  # no public run: the defaults, said so in the report
    r = size(inp(gpu=get_gpu("t4"), model=get_model("TinyLlama/TinyLlama-1.1B-Chat-v1.0"), max_model_len=2048))
    assert r.capacity is not None and not r.capacity.calibrated
    assert any("no public run" in a for a in r.capacity.assumptions)


def test_no_example_caps_max_num_seqs_below_its_traffic() -> None:
    """#13 target: every example's rendered --max-num-seqs admits the requests its own
    targetLoad (or the default chat traffic) puts on a replica at once: at least its
    targetLoad.concurrency, and at least as many typical requests as the KV cache holds
    (capped at the engine's default)."""
    from pathlib import Path

    from llmdeploy.pipeline import analyze_all, load_specs
    from llmdeploy.sizing import engine_batch_defaults, input_from_spec

    examples = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.llmdeploy.yaml"))
    docs, _ = load_specs([str(p) for p in examples])
    checked = 0
    for a in analyze_all(docs):
        r = a.resolved
        if a.spec is None or r is None or r.sizing is None or a.spec.runtime.engine != "vllm":
            continue
        if a.spec.runtime.max_num_seqs != "auto":
            continue
        rep = r.sizing
        inp = input_from_spec(a.spec, r.model, r.gpu, r.engine)
        default = engine_batch_defaults(inp)[1]
        tl = a.spec.scaling.target_load
        typical = (tl.avg_prompt_tokens + tl.avg_output_tokens) if tl else 512 + 256
        needed = min(default, rep.kv_cache_tokens // typical)
        if tl is not None and tl.concurrency:
            needed = max(needed, tl.concurrency)
        assert rep.max_num_seqs >= needed, (a.label, rep.max_num_seqs, needed, rep.max_num_seqs_reason)
        checked += 1
    assert checked >= 5


def test_the_curve_is_closed_loop_and_the_rate_is_spread_over_replicas() -> None:
    """Regression: the service's requestsPerSecond was queued on every point of one replica's
    curve (TTFT 6.6 s at concurrency 1 for the L4 example, whose 4 req/s need 3 replicas)."""
    from conftest import EXAMPLES

    from llmdeploy import api

    (report,) = api.size(EXAMPLES / "llama-3.1-8b-l4.llmdeploy.yaml").reports
    assert report is not None and report.capacity is not None
    cap = report.capacity
    single = next(p for p in cap.points if p.concurrency == 1)
    assert single.ttft_ms < 1000  # one client: the prompt's prefill, no queue
    assert cap.replicas_needed is not None and cap.replicas_needed >= 2
    assert cap.ttft_seconds_estimate < 1.0  # the operating point at a replica's share of 4 req/s
