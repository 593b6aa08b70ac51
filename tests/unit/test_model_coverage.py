"""Issue #14: any decoder config.json is sized; hybrid layouts are laid out as vLLM does.

The configs built here carry the architecture values of the public Hugging Face configs
named in each test (only the keys the reader looks at); the exact files that could be
found are stored under tests/data/hf_configs (see SOURCES.md there).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from llmdeploy.catalog import estimate_num_parameters, get_gpu, get_model, model_from_hf_config
from llmdeploy.engines import resolve_engine
from llmdeploy.sizing import SizingInput, size
from llmdeploy.sizing.memory import (
    QUANT_FORMATS,
    StageLayout,
    kv_layout,
    kv_tokens,
    max_concurrency,
    recurrent_state_bytes,
    resolve_quantization,
    weight_bytes_per_param,
)

HF_CONFIGS = Path(__file__).resolve().parents[1] / "data" / "hf_configs"


def _write(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


# https://huggingface.co/meta-llama/Llama-4-Scout-17B-16E-Instruct/blob/main/config.json (text part)
LLAMA4_SCOUT = {
    "architectures": ["Llama4ForConditionalGeneration"], "model_type": "llama4", "tie_word_embeddings": False,
    "text_config": {
        "model_type": "llama4_text", "hidden_size": 5120, "intermediate_size": 8192,
        "intermediate_size_mlp": 16384, "num_hidden_layers": 48, "num_attention_heads": 40,
        "num_key_value_heads": 8, "head_dim": 128, "num_local_experts": 16, "num_experts_per_tok": 1,
        "interleave_moe_layer_step": 1, "attention_chunk_size": 8192, "no_rope_layers": [1, 1, 1, 0] * 12,
        "vocab_size": 202048, "max_position_embeddings": 10485760, "torch_dtype": "bfloat16",
    },
    "vision_config": {"model_type": "llama4_vision_model", "hidden_size": 1408, "intermediate_size": 5632,
                      "num_hidden_layers": 34, "image_size": 336, "patch_size": 14,
                      "projector_output_dim": 4096},
}

# https://huggingface.co/Qwen/Qwen3-Next-80B-A3B-Instruct/blob/main/config.json
QWEN3_NEXT = {
    "architectures": ["Qwen3NextForCausalLM"], "model_type": "qwen3_next", "hidden_size": 2048,
    "num_hidden_layers": 48, "num_attention_heads": 16, "num_key_value_heads": 2, "head_dim": 256,
    "intermediate_size": 5120, "moe_intermediate_size": 512, "shared_expert_intermediate_size": 512,
    "num_experts": 512, "num_experts_per_tok": 10, "decoder_sparse_step": 1, "mlp_only_layers": [],
    "full_attention_interval": 4, "linear_conv_kernel_dim": 4, "linear_key_head_dim": 128,
    "linear_num_key_heads": 16, "linear_num_value_heads": 32, "linear_value_head_dim": 128,
    "vocab_size": 151936, "max_position_embeddings": 262144, "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
}


def test_llama4_scout_reads_chunked_attention_and_moe(tmp_path: Path) -> None:
    m = model_from_hf_config(_write(tmp_path, LLAMA4_SCOUT))
    assert m.family == "llama4" and m.num_layers == 48 and m.head_dim == 128
    assert (m.chunked_attention_size, m.chunked_attention_layers) == (8192, 36)  # 3 of every 4 layers
    assert m.full_attention_layers == 12
    assert m.moe is not None and (m.moe.num_experts, m.moe.experts_per_token) == (16, 1)
    assert m.moe.first_k_dense_layers == 0 and m.moe.shared_intermediate_size == 8192
    assert m.vision_parameters > 0 and any("vision tower" in n for n in m.approximations)
    # 109B total (Meta's model card); the generic vision tower keeps the count within 2 %.
    assert estimate_num_parameters(m) == pytest.approx(109e9, rel=0.02)


def test_qwen3_next_reads_linear_attention_state(tmp_path: Path) -> None:
    m = model_from_hf_config(_write(tmp_path, QWEN3_NEXT))
    assert m.recurrent_layers == 36 and m.full_attention_layers == 12 and m.kv_cache_layers == 12
    conv = 3 * (2 * 16 * 128 + 32 * 128)
    assert m.recurrent_state_elements == conv + 32 * 128 * 128
    assert m.moe is not None and m.moe.num_experts == 512 and m.moe.shared_intermediate_size == 512
    assert estimate_num_parameters(m) == pytest.approx(80e9, rel=0.03)  # "80B total"


def test_qwen3_next_hybrid_layout_and_concurrency_cap() -> None:
    """36 gated-DeltaNet layers in 3 groups of 12 beside 12 attention layers: 4 groups; the
    attention block grows until its page holds one sequence's state; each recurrent group
    takes one block per request."""
    m = model_from_hf_config_dict(QWEN3_NEXT)
    engine = resolve_engine("vllm", None, "0.11.0")
    mm = engine.memory_model_for("V1")
    stage = StageLayout(0, 0, 48, True, True)
    layout = kv_layout(m, mm, 1, stage, "auto", "bfloat16")
    assert layout.group_size == 12 and layout.group_count == 4
    per_token = 2 * 2 * 256 * 2  # K and V, 2 KV heads of 256, bf16
    state = recurrent_state_bytes(m, 1, "bfloat16")
    assert layout.block_size == 16 * -(-state // (16 * per_token)) and layout.block_size * per_token >= state
    kv = 40 * 2**30
    tokens = kv_tokens(kv, m, mm, 1, stage, 32768, 8192, "auto", "bfloat16")
    assert tokens == kv // (per_token * layout.block_size * 12) // 4 * layout.block_size
    conc = max_concurrency(kv, m, mm, 1, stage, 32768, 8192, "auto", "bfloat16")
    blocks = kv // (per_token * layout.block_size * 12)
    assert conc == pytest.approx(blocks / (-(-32768 // layout.block_size) + 3))
    # Far more requests than the token count suggests: 36 of 48 layers hold a state, not tokens.
    assert conc > 2 * tokens / 32768


def model_from_hf_config_dict(data: dict[str, Any]) -> Any:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        return model_from_hf_config(_write(Path(d), data))


# https://huggingface.co/ibm-granite/granite-4.0-h-small/blob/main/config.json (the fields a public
# worked example quotes: 36 mamba + 4 attention layers, 72 experts top-10, shared 1536, expert 768,
# d_state 128, d_conv 4, expand 2); heads 128 x 64 = expand x hidden.
GRANITE_4_H_SMALL = {
    "architectures": ["GraniteMoeHybridForCausalLM"], "model_type": "granitemoehybrid",
    "hidden_size": 4096, "num_hidden_layers": 40, "num_attention_heads": 32, "num_key_value_heads": 8,
    "intermediate_size": 768, "shared_intermediate_size": 1536, "num_local_experts": 72,
    "num_experts_per_tok": 10, "mamba_n_heads": 128, "mamba_d_head": 64, "mamba_d_state": 128,
    "mamba_n_groups": 1, "mamba_d_conv": 4, "mamba_expand": 2,
    "layer_types": (["mamba"] * 9 + ["attention"]) * 4,
    "vocab_size": 100352, "max_position_embeddings": 131072, "tie_word_embeddings": True,
    "torch_dtype": "bfloat16",
}


def test_granite_4_hybrid_mamba2_state() -> None:
    m = model_from_hf_config_dict(GRANITE_4_H_SMALL)
    assert m.recurrent_layers == 36 and m.kv_cache_layers == 4
    inner = 128 * 64
    assert m.recurrent_state_elements == 3 * (inner + 2 * 128) + 128 * 64 * 128
    assert m.moe is not None and m.moe.num_experts == 72 and m.moe.shared_intermediate_size == 1536
    assert estimate_num_parameters(m) == pytest.approx(32e9, rel=0.02)  # "32B total"
    assert not m.approximations  # granitemoehybrid has explicit rules
    r = size(SizingInput(model=m, gpu=get_gpu("h100-sxm"), engine=resolve_engine("vllm", None, "0.11.0"),
                         max_model_len=32768))
    assert r.fits and r.max_concurrency > r.kv_cache_tokens / 32768


@pytest.mark.parametrize(("config", "hf_id"), [
    (LLAMA4_SCOUT, "meta-llama/Llama-4-Scout-17B-16E-Instruct"),
    (QWEN3_NEXT, "Qwen/Qwen3-Next-80B-A3B-Instruct"),
    (GRANITE_4_H_SMALL, "ibm-granite/granite-4.0-h-small"),
])
def test_catalog_entry_equals_a_read_of_its_config(config: dict[str, Any], hf_id: str) -> None:
    local = model_from_hf_config_dict(config)
    assert local.architecture_fields() == get_model(hf_id).architecture_fields()


NEW_MODELS = [
    ("openai/gpt-oss-20b", "h100-sxm", 1), ("openai/gpt-oss-120b", "h100-sxm", 1),
    ("meta-llama/Llama-4-Scout-17B-16E-Instruct", "h100-sxm", 4),
    ("meta-llama/Llama-4-Maverick-17B-128E-Instruct", "h200", 8),
    ("ibm-granite/granite-3.3-8b-instruct", "l40s", 1), ("ibm-granite/granite-4.0-h-small", "h100-sxm", 1),
    ("mistralai/Mistral-Small-3.2-24B-Instruct-2506", "h100-sxm", 1),
    ("mistralai/Magistral-Small-2509", "l40s", 2),
    ("zai-org/GLM-4.5-Air", "h100-sxm", 4), ("zai-org/GLM-4.5", "h200", 8), ("zai-org/GLM-4.6", "h200", 8),
    ("Qwen/Qwen3-Next-80B-A3B-Instruct", "h100-sxm", 4), ("Qwen/Qwen3-VL-8B-Instruct", "l40s", 1),
    ("deepseek-ai/DeepSeek-V3.1", "h200", 8), ("deepseek-ai/DeepSeek-V3.2-Exp", "h200", 8),
    ("moonshotai/Kimi-K2-Instruct", "b200", 8),
]


@pytest.mark.parametrize(("hf_id", "gpu", "tp"), NEW_MODELS)
def test_every_2026_model_is_sized_on_a_node_that_holds_it(hf_id: str, gpu: str, tp: int) -> None:
    r = size(SizingInput(model=get_model(hf_id), gpu=get_gpu(gpu), engine=resolve_engine("vllm", None, "0.19.0"),
                         tensor_parallel=tp, max_model_len=32768))
    assert r.fits, [x.message for x in r.reasons]
    # Hybrid models report fewer "tokens" than one request's length (every layer counted as if it
    # held them all) and still fit: concurrency is what must reach one request.
    assert r.max_concurrency >= 1 and r.kv_cache_tokens > 0


def test_unknown_architecture_with_standard_keys_is_sized_with_notes(tmp_path: Path) -> None:
    # Phi-2-shaped config under a model_type the reader has no rules for: plain fc1/fc2 MLP.
    cfg = {"model_type": "some_future_lm", "architectures": ["SomeFutureLMForCausalLM"],
           "hidden_size": 2560, "num_hidden_layers": 32, "num_attention_heads": 32, "intermediate_size": 10240,
           "vocab_size": 51200, "max_position_embeddings": 2048, "hidden_act": "gelu_new",
           "torch_dtype": "float16"}
    m = model_from_hf_config(_write(tmp_path, cfg))
    assert m.mlp_projections == 2 and m.num_kv_heads == 32 and m.approximations
    assert any("tie_word_embeddings" in n for n in m.approximations)
    r = size(SizingInput(model=m, gpu=get_gpu("l4"), engine=resolve_engine("vllm", None, "0.11.0"),
                         max_model_len=2048))
    assert r.fits and r.kv_bytes_per_token == 2 * 32 * 32 * 80 * 2


def test_multimodal_text_config_and_vision_tower(tmp_path: Path) -> None:
    # https://huggingface.co/mistralai/Mistral-Small-3.1-24B-Instruct-2503/blob/main/config.json
    cfg = {"architectures": ["Mistral3ForConditionalGeneration"], "model_type": "mistral3",
           "text_config": {"model_type": "mistral", "hidden_size": 5120, "num_hidden_layers": 40,
                           "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 128,
                           "intermediate_size": 32768, "vocab_size": 131072,
                           "max_position_embeddings": 131072, "sliding_window": None},
           "vision_config": {"model_type": "pixtral", "hidden_size": 1024, "intermediate_size": 4096,
                             "num_hidden_layers": 24, "patch_size": 14, "image_size": 1540},
           "torch_dtype": "bfloat16"}
    m = model_from_hf_config(_write(tmp_path, cfg))
    assert m.family == "mistral" and m.num_layers == 40 and m.sliding_window is None
    assert 300e6 < m.vision_parameters < 600e6  # Pixtral-style 0.4B tower
    assert estimate_num_parameters(m) == pytest.approx(24.0e9, rel=0.02)


def test_index_total_size_is_used(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text((HF_CONFIGS / "gpt-oss-120b.json").read_text(), encoding="utf-8")
    (tmp_path / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": 65_248_815_744}, "weight_map": {}}), encoding="utf-8")
    m = model_from_hf_config(tmp_path)
    assert m.weight_bytes == 65_248_815_744


# --------------------------------------------------------------------------- gpt-oss


def test_gpt_oss_fixture_reads_sinks_windows_and_mxfp4() -> None:
    m = model_from_hf_config(HF_CONFIGS / "gpt-oss-120b.json")
    assert m.attention_sinks and (m.sliding_window, m.sliding_window_layers) == (128, 18)
    assert m.quantization is not None and m.quantization.scheme == "mxfp4" and m.quantization.experts_only
    assert m.torch_dtype == "bfloat16" and not m.approximations
    assert estimate_num_parameters(m) == pytest.approx(116.8e9, rel=0.005)  # model card: 116.8B
    small = model_from_hf_config(HF_CONFIGS / "gpt-oss-20b.json")
    assert estimate_num_parameters(small) == pytest.approx(20.9e9, rel=0.005)  # model card: 20.9B


def test_gpt_oss_mxfp4_quantizes_the_experts_only() -> None:
    m = get_model("openai/gpt-oss-120b")
    q = resolve_quantization(m, "none")
    assert q.experts_only and weight_bytes_per_param(q, 2) == pytest.approx(0.5 + 1 / 32)
    engine = resolve_engine("vllm", None, "0.11.0")
    r = size(SizingInput(model=m, gpu=get_gpu("h100-sxm"), engine=engine, max_model_len=8192))
    # ~114B expert weights at 4.25 bits in vLLM's padded layout (hidden 2880 -> 3072, intermediate
    # 2880 -> 2944: ~60.5 GiB) + ~2.9B bf16 non-expert weights (~5.3 GiB)
    assert 63 < r.per_gpu.weights_gib < 67
    all_quantized = dataclasses.replace(q, experts_only=False)
    assert all_quantized != q


def test_gpt_oss_hybrid_groups_pad_nothing_and_count_all_layers() -> None:
    m = get_model("openai/gpt-oss-20b")
    mm = resolve_engine("vllm", None, "0.11.0").memory_model_for("V1")
    layout = kv_layout(m, mm, 1, StageLayout(0, 0, 24, True, True), "auto", "bfloat16")
    assert layout.group_size == 12 and layout.groups == (("full", 1), ("sliding", 1))
    assert layout.padded_layers == 24


def test_uneven_pattern_gets_padding_layers() -> None:
    """10 full + 15 sliding: 15 < 1.5 × 10 is false, so groups of 10; the sliding kind is
    padded to 20 (vLLM warns "Add 5 padding layers"), and the token count divides by 30."""
    base = get_model("google/gemma-3-12b-it")
    m = dataclasses.replace(base, num_layers=25, sliding_window_layers=15)
    mm = resolve_engine("vllm", None, "0.19.0").memory_model_for("V1")
    layout = kv_layout(m, mm, 1, StageLayout(0, 0, 25, True, True), "auto", "bfloat16")
    assert layout.group_size == 10 and layout.padded_layers == 30


def test_quant_formats_have_bytes_and_requirements() -> None:
    assert QUANT_FORMATS["nvfp4"].bytes_per_weight == pytest.approx(0.5625)
    assert QUANT_FORMATS["mxfp4"].min_capability == 8.0 and QUANT_FORMATS["nvfp4"].native_capability == 10.0
    assert all(f.source for f in QUANT_FORMATS.values())


# --------------------------------------------------------------------------- formats × GPUs (LD207)


def _codes(model_id: str, gpu: str) -> tuple[set[str], set[str]]:
    from llmdeploy.rules.sizing import RULE_IDS

    r = size(SizingInput(model=get_model(model_id), gpu=get_gpu(gpu), engine=resolve_engine("vllm", None, "0.11.0"),
                         max_model_len=4096))
    return {RULE_IDS[x.problem] for x in r.reasons}, {RULE_IDS[x.problem] for x in r.warnings}


def test_mxfp4_needs_ampere_and_is_native_on_blackwell_only() -> None:
    errors, _ = _codes("openai/gpt-oss-20b", "t4")
    assert "LD207" in errors  # Turing: no MXFP4 kernel in vLLM
    errors, warns = _codes("openai/gpt-oss-20b", "a100-80gb")
    assert "LD207" not in errors and "LD207" in warns  # Marlin MXFP4: weight-only
    errors, warns = _codes("openai/gpt-oss-20b", "b200")
    assert "LD207" not in errors | warns


def test_nvfp4_is_refused_on_amd_and_turing() -> None:
    from llmdeploy.catalog import QuantizationConfig

    m = dataclasses.replace(get_model("meta-llama/Llama-3.1-8B-Instruct"),
                            quantization=QuantizationConfig("modelopt", 4, 16, "nvfp4"))
    engine = resolve_engine("vllm", None, "0.11.0")
    for gpu, expect_error in (("mi300x", True), ("t4", True), ("l40s", False), ("b200", False)):
        r = size(SizingInput(model=m, gpu=get_gpu(gpu), engine=engine, max_model_len=4096))
        has = any(x.problem.value == "gpu-cannot-run-dtype" for x in r.reasons)
        assert has is expect_error, gpu
    q = resolve_quantization(m, "none")
    assert weight_bytes_per_param(q, 2) == pytest.approx(0.5625)


# --------------------------------------------------------------------------- through a spec


SPEC = """apiVersion: llmdeploy.dev/v1alpha1
kind: LLMService
metadata:
  name: coverage
  namespace: inference
model:
{model}
  storageUri: hf://org/model
runtime:
  image: vllm/vllm-openai:v0.11.0
  maxModelLen: {max_model_len}
resources:
  gpu:
{gpu}
  parallelism:
    tensor: {tp}
"""


def _analyze(tmp_path: Path, *, model: str = "  id: meta-llama/Llama-3.1-8B-Instruct",
             gpu: str = "    type: h100-sxm", tp: int = 1, max_model_len: int = 8192) -> list[Any]:
    from llmdeploy.pipeline import analyze
    from llmdeploy.spec.loader import load_text

    text = SPEC.format(model=model, gpu=gpu, tp=tp, max_model_len=max_model_len)
    docs, diags = load_text(text, str(tmp_path / "spec.yaml"), tmp_path)
    assert docs and not diags
    return analyze(docs[0]).diagnostics


def test_ld117_warns_at_model_config_for_a_generic_read(tmp_path: Path) -> None:
    cfg = {"model_type": "some_future_lm", "hidden_size": 2048, "num_hidden_layers": 16,
           "num_attention_heads": 16, "num_key_value_heads": 4, "intermediate_size": 8192, "vocab_size": 32000,
           "max_position_embeddings": 8192, "torch_dtype": "bfloat16", "tie_word_embeddings": False}
    (tmp_path / "config.json").write_text(json.dumps(cfg), encoding="utf-8")
    diags = _analyze(tmp_path, model="  config: ./config.json")
    ld117 = [d for d in diags if d.rule == "LD117"]
    assert len(ld117) == 1 and not any(d.rule == "LD115" for d in diags)
    assert ld117[0].severity.name == "WARNING" and "read generically" in ld117[0].message
    assert ld117[0].line == 7  # the model.config line
    assert not any(d.is_error for d in diags), [d.to_text() for d in diags]
    # A known architecture gets no warning.
    known = dict(cfg, model_type="llama")
    (tmp_path / "config.json").write_text(json.dumps(known), encoding="utf-8")
    assert not [d for d in _analyze(tmp_path, model="  config: ./config.json") if d.rule == "LD117"]


def test_ambiguous_gpu_type_is_a_located_ld114_with_the_choices(tmp_path: Path) -> None:
    diags = _analyze(tmp_path, gpu="    type: a100")
    ld114 = [d for d in diags if d.rule == "LD114"]
    assert len(ld114) == 1 and "ambiguous" in ld114[0].message and ld114[0].line == 14
    assert "'a100-40gb'" in (ld114[0].hint or "") and "'a100-80gb'" in (ld114[0].hint or "")


def test_gpus_per_node_override_admits_a_g5_48xlarge(tmp_path: Path) -> None:
    """The catalog's A10G node holds 4 (g5.12xlarge); a g5.48xlarge holds 8."""
    model = "  id: meta-llama/Llama-3.3-70B-Instruct"
    refused = _analyze(tmp_path, model=model, gpu="    type: a10g", tp=8, max_model_len=4096)
    assert "LD204" in {d.rule for d in refused}
    admitted = _analyze(tmp_path, model=model, gpu="    type: a10g\n    perNode: 8", tp=8, max_model_len=4096)
    assert "LD204" not in {d.rule for d in admitted}


# --------------------------------------------------------------------------- sampler warm-up (LD210)


@pytest.mark.parametrize(("util", "expect"), [(0.90, None), (0.95, "error"), (0.97, "error")])
def test_sampler_warmup_after_the_kv_cache(util: float, expect: str | None) -> None:
    """gpt-oss-20b on an H100 with 1024 sequences: vLLM 0.19.0 started at util 0.90 and stopped in
    the sampler warm-up at 0.95 (tests/data/vllm_logs/sweeps); higher leaves even less room."""
    r = size(SizingInput(model=get_model("openai/gpt-oss-20b"), gpu=get_gpu("h100-sxm"),
                         engine=resolve_engine("vllm", None, "0.19.0"), max_model_len=8192,
                         gpu_memory_utilization=util, max_num_seqs=1024))
    errors = [x for x in r.reasons if x.problem.value == "sampler-warmup-oom"]
    warns = [x for x in r.warnings if x.problem.value == "sampler-warmup-oom"]
    got = "error" if errors else ("warning" if warns else None)
    assert got == expect
    if expect:
        reason = (errors or warns)[0]
        assert reason.field == ("runtime", "maxNumSeqs") and "maxNumSeqs to" in (reason.hint or "")
        best = int((reason.hint or "").split("maxNumSeqs to ")[1].split()[0])
        fixed = size(SizingInput(model=get_model("openai/gpt-oss-20b"), gpu=get_gpu("h100-sxm"),
                                 engine=resolve_engine("vllm", None, "0.19.0"), max_model_len=8192,
                                 gpu_memory_utilization=util, max_num_seqs=best))
        assert not any(x.problem.value == "sampler-warmup-oom" for x in fixed.reasons + fixed.warnings)


def test_gguf_bytes_per_weight_follow_the_ggml_blocks() -> None:
    from llmdeploy.catalog import QuantizationConfig

    m = dataclasses.replace(get_model("meta-llama/Llama-3.1-8B-Instruct"),
                            quantization=QuantizationConfig("gguf", None, None, "gguf:Q4_K_M"))
    q = resolve_quantization(m, "none")
    assert q.method == "gguf" and weight_bytes_per_param(q, 2) == pytest.approx(4.89 / 8)
    q8 = resolve_quantization(dataclasses.replace(m, quantization=QuantizationConfig("gguf", None, None, "gguf:Q8_0")),
                              "none")
    assert weight_bytes_per_param(q8, 2) == pytest.approx(34 / 32)  # block_q8_0: 34 bytes per 32 weights


def test_a_generic_read_trusts_its_checkpoint_index(tmp_path: Path) -> None:
    """An architecture read by the standard keys only is sized from model.safetensors.index.json
    even far from the architecture's count (a catalog entry is held to ±15 %)."""
    cfg = {"model_type": "some_future_lm", "hidden_size": 2048, "num_hidden_layers": 16,
           "num_attention_heads": 16, "num_key_value_heads": 4, "intermediate_size": 8192, "vocab_size": 32000,
           "max_position_embeddings": 8192, "torch_dtype": "bfloat16", "tie_word_embeddings": False}
    (tmp_path / "config.json").write_text(json.dumps(cfg), encoding="utf-8")
    plain = model_from_hf_config(tmp_path / "config.json")
    engine = resolve_engine("vllm", None, "0.19.0")
    base = size(SizingInput(model=plain, gpu=get_gpu("l40s"), engine=engine, max_model_len=4096))
    total = int(estimate_num_parameters(plain) * 2 * 1.4)  # 40 % more than the architecture says
    (tmp_path / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": {}}), encoding="utf-8")
    indexed = model_from_hf_config(tmp_path)
    assert indexed.weight_bytes == total
    r = size(SizingInput(model=indexed, gpu=get_gpu("l40s"), engine=engine, max_model_len=4096))
    assert r.per_gpu.weights_gib == pytest.approx(base.per_gpu.weights_gib * 1.4, rel=0.02)
