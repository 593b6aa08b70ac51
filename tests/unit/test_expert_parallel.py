"""Expert and data parallelism in sizing (issue #16).

vLLM's fused MoE layers flatten tensor × data parallel
(vllm/model_executor/layers/fused_moe/config.py ``FusedMoEParallelConfig.make``,
vllm@002d607): the routed experts are spread over TP × DP GPUs (a slice of every
expert without ``--enable-expert-parallel``, whole experts with it), while attention,
dense MLPs, shared experts and embeddings are split by TP and replicated on every DP
rank, and every DP rank has its own KV cache and batch.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from conftest import EXAMPLES

from llmdeploy.catalog import get_gpu, get_model
from llmdeploy.engines import resolve_engine
from llmdeploy.sizing import SizingInput, SizingProblem, size
from llmdeploy.sizing.memory import GIB, moe_shards

ENGINE = resolve_engine("vllm", None, None)


def _size(model: str, gpu: str, *, tp: int = 1, dp: int = 1, ep: bool = False, max_model_len: int = 32768):
    return size(SizingInput(model=get_model(model), gpu=get_gpu(gpu), engine=ENGINE, tensor_parallel=tp,
                            data_parallel=dp, expert_parallel=ep, max_model_len=max_model_len,
                            multi_node=tp * dp > get_gpu(gpu).gpus_per_node))


@pytest.mark.parametrize(("tp", "dp", "ep", "expected"), [
    # The examples of FusedMoEParallelConfig.make's docstring: (MoE TP size, EP size).
    (2, 1, False, (2, 1)),
    (1, 2, False, (2, 1)),
    (2, 2, False, (4, 1)),
    (2, 1, True, (1, 2)),
    (1, 2, True, (1, 2)),
    (2, 2, True, (1, 4)),
    (1, 1, True, (1, 1)),  # use_ep needs dp × tp > 1
])
def test_moe_shards_follow_vllm(tp: int, dp: int, ep: bool, expected: tuple[int, int]) -> None:
    assert moe_shards(tp, dp, ep) == expected


def _expert_bytes(model_id: str, bytes_per_param: float) -> float:
    m = get_model(model_id)
    assert m.moe is not None
    moe_layers = m.num_layers - m.moe.first_k_dense_layers
    return m.moe.num_experts * moe_layers * 3 * m.hidden_size * m.moe.moe_intermediate_size * bytes_per_param


def test_deepseek_r1_fp8_dp16_ep16_on_h200() -> None:
    """DeepSeek-R1 (FP8, 256 routed experts over 58 MoE layers) on 16 × H200, DP 16 EP 16:
    each GPU holds 16 whole experts per layer plus the whole attention (TP 1)."""
    wide = _size("deepseek-ai/DeepSeek-R1", "h200", dp=16, ep=True)
    half = _size("deepseek-ai/DeepSeek-R1", "h200", dp=8, ep=True)
    tp8 = _size("deepseek-ai/DeepSeek-R1", "h200", tp=8)
    assert wide.fits and half.fits and tp8.fits
    assert wide.expert_parallel_size == 16 and wide.gpu_count == 16
    # The routed experts are ~654 GB in FP8 (1 byte per weight, block scales aside):
    # going from 8 to 16 GPUs frees 1/8 − 1/16 of them on each GPU, ≈ 38 GiB.
    freed = (half.per_gpu.weights_gib - wide.per_gpu.weights_gib) * GIB
    expected = _expert_bytes("deepseek-ai/DeepSeek-R1", 1.0) * (1 / 8 - 1 / 16)
    assert freed == pytest.approx(expected, rel=0.03)
    assert 55 <= wide.per_gpu.weights_gib <= 61  # ≈ 38 GiB of experts + ≈ 18 GiB replicated (MLA, shared, embeddings)
    # MLA's latent cache is whole on every TP rank: TP 8 keeps 8 copies, DP 16 keeps one per
    # rank, so the 16 GPUs hold far more tokens than two TP-8 replicas.
    assert wide.kv_cache_tokens > tp8.kv_cache_tokens
    assert wide.kv_cache_tokens * 16 > 10 * (2 * tp8.kv_cache_tokens)
    # Each DP rank has its own cache and batch: concurrency is the sum over the ranks.
    single = wide.per_gpu.kv_cache_gib * GIB / wide.kv_bytes_per_token
    assert wide.kv_cache_tokens == pytest.approx(single, rel=0.02)
    assert wide.max_concurrency == pytest.approx(16 * wide.kv_cache_tokens / 32768, rel=0.02)
    js = wide.to_json({p: "LD000" for p in SizingProblem})
    assert js["parallelism"]["expert_parallel_size"] == 16
    assert js["kv_cache_tokens_all_ranks"] == 16 * wide.kv_cache_tokens


def test_expert_parallel_or_not_same_bytes_when_experts_divide() -> None:
    """Without EP every GPU holds 1/(TP·DP) of every expert, with EP 1/(TP·DP) of the experts:
    the same bytes when the experts divide (256 over 16)."""
    ep = _size("deepseek-ai/DeepSeek-R1", "h200", dp=16, ep=True)
    flat = _size("deepseek-ai/DeepSeek-R1", "h200", dp=16, ep=False)
    assert ep.per_gpu.weights_gib == pytest.approx(flat.per_gpu.weights_gib, abs=0.01)


def test_qwen3_235b_dp16_ep_on_two_h100_nodes() -> None:
    """Qwen3-235B-A22B bf16 (128 experts, 94 layers, 4 KV heads) on 2 × 8 H100, DP 16 EP 16."""
    wide = _size("Qwen/Qwen3-235B-A22B", "h100-sxm", dp=16, ep=True)
    one = _size("Qwen/Qwen3-235B-A22B", "h100-sxm", tp=8)
    assert wide.fits and one.fits
    m = get_model("Qwen/Qwen3-235B-A22B")
    # Experts: 128 × 94 × 3 × 4096 × 1536 × 2 B ≈ 454 GB, 1/16 per GPU ≈ 26.4 GiB; attention and
    # embeddings (≈ 8 B parameters, 14.9 GiB) on every GPU.
    experts_per_gpu = _expert_bytes("Qwen/Qwen3-235B-A22B", 2.0) / 16 / GIB
    assert experts_per_gpu == pytest.approx(26.4, abs=0.3)
    assert wide.per_gpu.weights_gib == pytest.approx(experts_per_gpu + 14.9, abs=1.0)
    # At TP 8 each GPU caches one of the 4 KV heads (replicated past 4): 94 × 2 × 128 × 2 B;
    # at TP 1 all 4 heads.
    assert one.kv_bytes_per_token == 94 * 2 * 1 * m.head_dim * 2
    assert wide.kv_bytes_per_token == 94 * 2 * 4 * m.head_dim * 2
    # Over 16 GPUs: 16 DP ranks vs two TP-8 replicas.
    assert wide.kv_cache_tokens * 16 > 2 * one.kv_cache_tokens
    assert wide.max_concurrency > 2 * one.max_concurrency


def test_uneven_experts_count_the_fullest_rank() -> None:
    """128 experts over EP 48 (TP 8 × DP 6): vLLM's linear placement gives the first
    128 mod 48 = 32 ranks 3 experts; the sizing counts the rank with 3, not 128/48."""
    even = _size("Qwen/Qwen3-235B-A22B", "h100-sxm", tp=8, dp=6, ep=False)
    uneven = _size("Qwen/Qwen3-235B-A22B", "h100-sxm", tp=8, dp=6, ep=True)
    extra = _expert_bytes("Qwen/Qwen3-235B-A22B", 2.0) / 128 * (math.ceil(128 / 48) - 128 / 48)
    assert (uneven.per_gpu.weights_gib - even.per_gpu.weights_gib) * GIB == pytest.approx(extra, rel=0.02)


def test_dense_model_data_parallel_replicates() -> None:
    """A dense model's DP ranks each hold the whole (TP-split) model; concurrency adds up."""
    one = _size("meta-llama/Llama-3.1-8B-Instruct", "h100-sxm", max_model_len=8192)
    two = _size("meta-llama/Llama-3.1-8B-Instruct", "h100-sxm", dp=2, max_model_len=8192)
    ep = _size("meta-llama/Llama-3.1-8B-Instruct", "h100-sxm", dp=2, ep=True, max_model_len=8192)
    assert two.per_gpu.weights_gib == pytest.approx(one.per_gpu.weights_gib)
    assert ep.per_gpu.weights_gib == pytest.approx(one.per_gpu.weights_gib)
    assert two.kv_cache_tokens == one.kv_cache_tokens
    assert two.max_concurrency == pytest.approx(2 * one.max_concurrency)
    assert two.weights_bytes_total == 2 * one.weights_bytes_total


# --------------------------------------------------------------------------- LD812 / LD813


def _diags(tmp_path, text: str, rule: str):  # type: ignore[no-untyped-def]
    from llmdeploy.pipeline import analyze, load_specs

    p = tmp_path / "s.llmdeploy.yaml"
    p.write_text(text, encoding="utf-8")
    docs, problems = load_specs([str(p)])
    assert not problems
    return [d for d in analyze(docs[0]).diagnostics if d.rule == rule]


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


DENSE = (EXAMPLES / "llama-3.3-70b-h100-tp2.llmdeploy.yaml").read_text(encoding="utf-8")
MOE = (EXAMPLES / "qwen3-235b-h100-2x8-isvc.llmdeploy.yaml").read_text(encoding="utf-8")


def test_expert_parallel_on_a_dense_model_is_flagged_at_its_line(tmp_path) -> None:  # type: ignore[no-untyped-def]
    text = DENSE.replace("    tensor: 2\n", "    tensor: 2\n    expert: true\n")
    assert text != DENSE
    [d] = _diags(tmp_path, text, "LD812")
    assert not d.is_error
    assert d.line == _line_of(text, "expert: true")
    assert "no routed experts" in d.message
    assert not _diags(tmp_path, DENSE, "LD812")


def test_expert_parallel_over_one_gpu_is_flagged(tmp_path) -> None:  # type: ignore[no-untyped-def]
    text = MOE.replace("    tensor: 8\n    pipeline: 2\n", "    tensor: 1\n    expert: true\n")
    assert text != MOE
    [d] = _diags(tmp_path, text, "LD812")
    assert "tensor × data = 1" in d.message
    ok = MOE.replace("    tensor: 8\n    pipeline: 2\n", "    tensor: 8\n    pipeline: 2\n    expert: true\n")
    assert not _diags(tmp_path, ok, "LD812")


def test_experts_that_do_not_divide_the_group_are_flagged(tmp_path) -> None:  # type: ignore[no-untyped-def]
    text = MOE.replace("    tensor: 8\n    pipeline: 2\n", "    tensor: 8\n    data: 6\n    expert: true\n")
    [d] = _diags(tmp_path, text, "LD813")
    assert d.line == _line_of(text, "data: 6")
    assert "128 routed experts over an expert-parallel group of 48" in d.message
    assert "32 GPUs hold 3 experts" in d.message
    assert "16" in (d.hint or "")
    even = MOE.replace("    tensor: 8\n    pipeline: 2\n", "    tensor: 8\n    data: 2\n    expert: true\n")
    assert not _diags(tmp_path, even, "LD813")


def test_low_concurrency_warning_counts_every_dp_rank() -> None:
    """LD205's "requests at once" is the replica's: DP 4 ranks of 1.4 requests each hold 5.8."""
    from llmdeploy.sizing import SizingProblem as P

    one = _size("Qwen/Qwen3-235B-A22B", "h100-sxm", tp=2, dp=1, ep=True)
    four = _size("Qwen/Qwen3-235B-A22B", "h100-sxm", tp=2, dp=4, ep=True)
    assert four.kv_cache_tokens / 32768 < 2  # one rank alone would warn
    assert four.max_concurrency >= 4 * 1.4
    assert not [w for w in four.warnings if w.problem is P.LOW_CONCURRENCY]
    assert one.per_gpu.weights_gib > four.per_gpu.weights_gib


def test_size_command_takes_data_and_expert_parallel(capsys) -> None:  # type: ignore[no-untyped-def]
    import json

    from llmdeploy.cli_size import run_size

    rc = run_size(None, model="deepseek-ai/DeepSeek-R1", gpu="h200", data_parallel=16, expert_parallel=True,
                  nodes=2, max_model_len=32768, fmt="json")
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["fits"]
    assert out["parallelism"] == {"tensor": 1, "pipeline": 1, "data": 16, "gpu_count": 16, "expert": True,
                                  "expert_parallel_size": 16}
    assert out["kv_cache_tokens_all_ranks"] == 16 * out["kv_cache_tokens"]
    # Sixteen GPUs do not fit one 8-GPU node without --nodes.
    assert run_size(None, model="deepseek-ai/DeepSeek-R1", gpu="h200", data_parallel=16, expert_parallel=True,
                    max_model_len=32768, fmt="json") == 1
    capsys.readouterr()


def test_data_parallel_ranks_count_against_one_node(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Regression: a one-node spec with tensor 1 × data 16 on 8-GPU nodes passed validation."""
    import re

    text = MOE.replace("    tensor: 8\n    pipeline: 2\n", "    tensor: 1\n    data: 16\n    expert: true\n")
    text = re.sub(r"  interconnect:\n(    .*\n)+", "", text.replace("  nodes: 2\n", ""))
    [d] = _diags(tmp_path, text, "LD204")
    assert d.is_error and d.line == _line_of(text, "data: 16")
    assert "tensor × pipeline × data parallel = 16 GPUs" in d.message


def test_expert_placement_matches_public_logs() -> None:
    """The EP group (tensor × data) and the experts per GPU of public vLLM start-up logs."""
    from ruamel.yaml import YAML

    runs = YAML(typ="safe").load((Path(__file__).parents[1] / "data" / "expert_placement.yaml").read_text())["runs"]
    assert len(runs) >= 2
    for run in runs:
        assert run["source"].startswith("https://github.com/")
        moe_tp, ep = moe_shards(run["tensor"], run["data"], True)
        assert (moe_tp, ep) == (1, run["log_ep_size"]), run["source"]
        assert math.ceil(run["model_experts"] / ep) == run["log_local_experts"], run["source"]
