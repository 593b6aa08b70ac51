"""Tests of the GPU and model catalogs and of the local config.json reader.

The files in tests/data/hf_configs/ are Hugging Face config.json files as published
(copied from public copies of the Hub repositories named in each catalog entry's
sources); the .safetensors.index.json keeps the real metadata.total_size with a
trimmed weight_map.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import pytest

from llmdeploy import catalog
from llmdeploy.catalog import (
    GPU,
    CatalogError,
    ModelConfig,
    MoEConfig,
    estimate_active_parameters,
    estimate_num_parameters,
    get_gpu,
    get_model,
    gpus,
    model_from_hf_config,
    models,
)
from llmdeploy.catalog import entries as catalog_entries
from llmdeploy.errors import InternalError, LlmdeployError

HF_CONFIGS = Path(__file__).resolve().parents[1] / "data" / "hf_configs"
LLAMA_8B_INDEX = HF_CONFIGS / "llama-3.1-8b-instruct.safetensors.index.json"

ALL_GPUS = list(gpus())
ALL_MODELS = list(models())


# ----------------------------------------------------------------------------- GPUs

# Marketing capacity -> what the driver must report, in MiB. The driver figure is
# below the binary size of the marketed GB (ECC and reserved memory) and never above it.
MEMORY_RANGES_MIB: dict[str, tuple[int, int]] = {
    "t4": (15000, 16384),
    "a10g": (22500, 24576),
    "l4": (22500, 24576),
    "l40s": (45000, 49152),
    "a100-40gb": (39000, 40960),
    "a100-80gb": (79000, 82000),
    "h100-sxm": (79000, 82000),
    "h100-pcie": (79000, 82000),
    "h100-nvl": (93000, 96256),
    "h200": (140000, 144384),
    "b200": (180000, 184320),
    "rtx-3090": (23500, 24576),
    "rtx-4090": (23500, 24576),
    "mi300x": (190000, 196608),
    "a10": (22500, 24576),
    "a40": (45000, 49152),
    "l40": (45000, 49152),
    "rtx-a5000": (23500, 24576),
    "rtx-6000-ada": (45000, 49152),
    "h20": (93000, 98304),
    "h800": (79000, 82000),
    "gh200": (93000, 98304),
    "b300": (270000, 294912),
    "gb200": (186000, 190464),
    "gb300": (280000, 294912),
    "mi325x": (260000, 262144),
    "mi355x": (290000, 294912),
}

REQUIRED_GPU_FIELDS = [
    f.name
    for f in fields(GPU)
    if f.name not in {"bf16_tflops", "fp8_tflops", "fp4_tflops", "nvlink_domain", "price_per_gpu_hour_usd"}
]


def test_catalog_has_the_required_gpus() -> None:
    required = {
        "t4",
        "a10g",
        "l4",
        "l40s",
        "a100-40gb",
        "a100-80gb",
        "h100-sxm",
        "h100-pcie",
        "h100-nvl",
        "h200",
        "b200",
        "rtx-3090",
        "rtx-4090",
        "mi300x",
    }
    assert required <= set(ALL_GPUS)
    # Issue #14: the GPUs users have, by their real product names.
    assert {"a10", "a40", "l40", "rtx-a5000", "rtx-6000-ada", "h20", "h800", "gh200"} <= set(ALL_GPUS)


@pytest.mark.parametrize(("name", "choices"), [
    ("h100", ("h100-sxm", "h100-pcie", "h100-nvl")),
    ("H100-80GB", ("h100-sxm", "h100-pcie")),
    ("a100", ("a100-40gb", "a100-80gb")),
])
def test_ambiguous_gpu_name_is_refused_with_the_choices(name: str, choices: tuple[str, ...]) -> None:
    """An A100 40GB sized as the 80GB card is called a fit that OOMs: never pick a variant silently."""
    with pytest.raises(CatalogError) as info:
        get_gpu(name)
    assert "is ambiguous" in info.value.message
    assert all(repr(c) in info.value.message and repr(c) in (info.value.hint or "") for c in choices)
    assert catalog.gpu_family_choices(name) == choices


@pytest.mark.parametrize("key", ALL_GPUS)
def test_gpu_has_every_field_and_source(key: str) -> None:
    gpu = get_gpu(key)
    for name in REQUIRED_GPU_FIELDS:
        value = getattr(gpu, name)
        assert value is not None and value != "", f"{key}.{name} is empty"
    assert set(gpu.sources) == {"memory", "bandwidth", "tflops", "labels", "price"}
    assert all(text.strip() for text in gpu.sources.values())
    assert gpu.memory_bandwidth_gbs > 0 and gpu.fp16_tflops > 0 and gpu.interconnect_gbs > 0
    assert gpu.gpus_per_node >= 1
    if gpu.price_per_gpu_hour_usd is not None:
        assert 0.1 < gpu.price_per_gpu_hour_usd < 50
    assert gpu.aliases == tuple(a.lower() for a in gpu.aliases)


@pytest.mark.parametrize("key", ALL_GPUS)
def test_gpu_memory_is_the_driver_figure_in_mib(key: str) -> None:
    assert key in MEMORY_RANGES_MIB, f"add the marketing capacity of {key} to MEMORY_RANGES_MIB"
    low, high = MEMORY_RANGES_MIB[key]
    gpu = get_gpu(key)
    assert low <= gpu.memory_mib <= high
    assert gpu.memory_bytes == gpu.memory_mib * 2**20
    assert gpu.memory_gib == pytest.approx(gpu.memory_mib / 1024)


def test_gpu_memory_known_driver_figures() -> None:
    # The nvidia-smi totals the brief and the sizing tests rely on.
    expected = {
        "a100-80gb": 81920,
        "h100-sxm": 81559,
        "l4": 23034,
        "a10g": 23028,
        "t4": 15360,
        "rtx-4090": 24564,
    }
    assert {key: get_gpu(key).memory_mib for key in expected} == expected


@pytest.mark.parametrize("key", ALL_GPUS)
def test_gpu_precision_flags_are_consistent(key: str) -> None:
    gpu = get_gpu(key)
    assert gpu.fp8 == (gpu.fp8_tflops is not None)
    if gpu.fp8:
        assert gpu.fp8_tflops is not None and gpu.fp8_tflops >= gpu.fp16_tflops
        assert not gpu.fp8_weight_only
    if gpu.fp8_weight_only:  # FP8 Marlin: Ampere only
        assert gpu.compute_capability.startswith("8.")
    assert gpu.runs_fp8_checkpoints == (gpu.fp8 or gpu.fp8_weight_only)
    assert gpu.supports_bf16 == (key != "t4")
    if gpu.bf16_tflops is not None:
        assert gpu.bf16_tflops == gpu.fp16_tflops


@pytest.mark.parametrize("key", ALL_GPUS)
def test_gpu_vendor_resource_and_labels(key: str) -> None:
    gpu = get_gpu(key)
    if gpu.vendor == "nvidia":
        assert gpu.resource_name == "nvidia.com/gpu"
        assert gpu.node_labels["gfd"] == gpu.name.replace(" ", "-")  # GFD's rule
        assert catalog.GFD_PRODUCT_LABEL in gpu.label_selectors()
    else:
        assert gpu.resource_name == "amd.com/gpu"
    assert set(gpu.node_labels) == set(catalog.NODE_LABEL_KEYS)
    assert gpu.node_labels["eks"] is None  # EKS never sets k8s.amazonaws.com/accelerator
    if gpu.node_labels["karpenter"] is not None:
        assert "aws" in gpu.instance_types


def test_gpu_selectors_use_the_documented_label_keys() -> None:
    assert get_gpu("h100-sxm").label_selectors() == {
        "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3",
        "cloud.google.com/gke-accelerator": "nvidia-h100-80gb",
        "karpenter.k8s.aws/instance-gpu-name": "h100",
    }
    # AMD: the GPU operator's node labeller key, not GPU feature discovery's
    assert get_gpu("mi300x").label_selectors() == {"amd.com/gpu.product-name": "AMD_Instinct_MI300X_OAM"}
    assert get_gpu("a10g").node_labels.get("gke") is None


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("  a100-80GB ", "a100-80gb"),
        ("NVIDIA-A100-SXM4-80GB", "a100-80gb"),
        ("NVIDIA A100-SXM4-40GB", "a100-40gb"),
        ("nvidia h100 80gb hbm3", "h100-sxm"),
        ("H100-SXM5", "h100-sxm"),
        ("Tesla-T4", "t4"),
        ("4090", "rtx-4090"),
        ("MI300X", "mi300x"),
    ],
)
def test_get_gpu_accepts_aliases_names_and_labels(name: str, key: str) -> None:
    assert get_gpu(name).key == key


def test_unknown_gpu_has_a_did_you_mean_hint() -> None:
    with pytest.raises(CatalogError) as info:
        get_gpu("a100-80")
    error = info.value
    assert isinstance(error, LlmdeployError) and isinstance(error, Exception)
    assert error.message == "unknown GPU type 'a100-80'"
    assert error.hint is not None
    assert "did you mean 'a100-80gb'" in error.hint
    assert "`llmdeploy catalog gpus`" in error.hint


def test_unknown_gpu_without_close_match_still_says_how_to_list() -> None:
    with pytest.raises(CatalogError) as info:
        get_gpu("tpu-v5e")
    assert info.value.hint == "list the entries with `llmdeploy catalog gpus`"


def test_gpus_returns_a_copy() -> None:
    table = gpus()
    table.pop("t4")
    assert "t4" in gpus()


# --------------------------------------------------------------------------- models

REQUIRED_MODELS = [
    "meta-llama/Llama-3.2-1B-Instruct",
    "meta-llama/Llama-3.2-3B-Instruct",
    "meta-llama/Llama-3.1-8B-Instruct",
    "meta-llama/Llama-3.1-70B-Instruct",
    "meta-llama/Llama-3.3-70B-Instruct",
    "meta-llama/Llama-3.1-405B-Instruct",
    "mistralai/Mistral-7B-Instruct-v0.3",
    "mistralai/Mixtral-8x7B-Instruct-v0.1",
    "mistralai/Mixtral-8x22B-Instruct-v0.1",
    "Qwen/Qwen2.5-7B-Instruct",
    "Qwen/Qwen2.5-14B-Instruct",
    "Qwen/Qwen2.5-32B-Instruct",
    "Qwen/Qwen2.5-72B-Instruct",
    "Qwen/Qwen2.5-7B-Instruct-AWQ",
    "Qwen/Qwen3-8B",
    "Qwen/Qwen3-32B",
    "Qwen/Qwen3-30B-A3B",
    "Qwen/Qwen3-235B-A22B",
    "google/gemma-2-9b-it",
    "google/gemma-2-27b-it",
    "google/gemma-3-4b-it",
    "google/gemma-3-12b-it",
    "google/gemma-3-27b-it",
    "microsoft/Phi-3-mini-4k-instruct",
    "microsoft/phi-4",
    "deepseek-ai/DeepSeek-V3",
    "deepseek-ai/DeepSeek-R1",
    "TinyLlama/TinyLlama-1.1B-Chat-v1.0",
    "hugging-quants/Meta-Llama-3.1-8B-Instruct-AWQ-INT4",
    "neuralmagic/Meta-Llama-3.1-8B-Instruct-FP8",
]


def test_catalog_has_the_required_models() -> None:
    assert set(REQUIRED_MODELS) <= set(ALL_MODELS)


@pytest.mark.parametrize("hf_id", ALL_MODELS)
def test_model_loads_with_sane_values(hf_id: str) -> None:
    model = get_model(hf_id)
    assert model.hf_id == hf_id and model.source == "catalog"
    assert model.sources and all(s.strip() for s in model.sources)
    assert model.sources[0].startswith(f"https://huggingface.co/{hf_id}/")
    for name in (
        "num_layers",
        "hidden_size",
        "num_attention_heads",
        "num_kv_heads",
        "head_dim",
        "intermediate_size",
        "vocab_size",
        "max_position_embeddings",
    ):
        assert getattr(model, name) > 0, name
    assert model.num_attention_heads % model.num_kv_heads == 0
    assert model.torch_dtype in {"bfloat16", "float16"}
    assert all(a == a.lower() for a in model.aliases if "/" not in a)
    assert 0 <= model.sliding_window_layers <= model.num_layers
    assert model.full_attention_layers == (model.num_layers - model.sliding_window_layers
                                           - model.chunked_attention_layers - model.recurrent_layers
                                           - model.kv_shared_layers) >= 0
    if model.moe is not None:
        assert model.moe.experts_per_token <= model.moe.num_experts


@pytest.mark.parametrize("hf_id", [m for m in ALL_MODELS if get_model(m).num_parameters])
def test_estimated_parameters_within_two_percent(hf_id: str) -> None:
    model = get_model(hf_id)
    assert model.num_parameters is not None
    estimate = estimate_num_parameters(model)
    assert estimate == pytest.approx(model.num_parameters, rel=0.02)


@pytest.mark.parametrize("hf_id", [m for m in ALL_MODELS if get_model(m).weight_bytes])
def test_weight_bytes_match_parameters_times_dtype(hf_id: str) -> None:
    model = get_model(hf_id)
    assert model.weight_bytes is not None and model.num_parameters is not None
    if model.quantization is None:
        bytes_per_parameter = 2.0  # bf16 checkpoints
    else:
        assert model.quantization.method == "fp8"
        bytes_per_parameter = 1.0  # FP8 weights; embeddings, norms and scales add < 2 %
    assert model.weight_bytes == pytest.approx(model.num_parameters * bytes_per_parameter, rel=0.02)


def test_sliding_window_patterns() -> None:
    assert get_model("gemma-2-9b").sliding_window_layers == 21  # every other of 42
    assert get_model("gemma-2-27b").sliding_window_layers == 23
    assert get_model("gemma-3-4b").sliding_window_layers == 34 - 34 // 6
    assert get_model("gemma-3-27b").sliding_window_layers == 62 - 62 // 6
    assert get_model("phi-3-mini").sliding_window_layers == 32
    assert get_model("llama-3.1-8b").sliding_window is None


def test_active_parameters() -> None:
    assert estimate_active_parameters(get_model("qwen3-30b-a3b")) == 3_353_032_704
    assert estimate_active_parameters(get_model("mixtral-8x7b")) == pytest.approx(12.9e9, rel=0.01)
    assert estimate_active_parameters(get_model("deepseek-v3")) == pytest.approx(37e9, rel=0.02)
    dense = get_model("llama-3.1-8b")
    assert estimate_active_parameters(dense) == estimate_num_parameters(dense)


def test_mla_cache_dimension() -> None:
    mla = get_model("deepseek-r1").mla
    assert mla is not None
    assert mla.kv_cache_dim == 576  # 512 latent + 64 rotary key, per token and layer


@pytest.mark.parametrize(
    "key",
    [
        "meta-llama/Llama-3.1-8B-Instruct",
        "META-LLAMA/LLAMA-3.1-8B-INSTRUCT",
        "llama-3.1-8b-instruct",
        "Llama-3.1-8B",
        " llama-3.1-8b ",
        "meta-llama/Meta-Llama-3.1-8B-Instruct",
    ],
)
def test_get_model_is_case_insensitive_and_accepts_aliases(key: str) -> None:
    assert get_model(key) is get_model("meta-llama/Llama-3.1-8B-Instruct")


def test_unknown_model_has_a_did_you_mean_hint() -> None:
    with pytest.raises(CatalogError) as info:
        get_model("llama-3.1-8b-instruc")
    assert info.value.message == "unknown model 'llama-3.1-8b-instruc'"
    hint = info.value.hint or ""
    assert hint.startswith("did you mean 'meta-llama/Llama-3.1-8B-Instruct'")
    assert "`llmdeploy catalog models`" in hint
    assert "config.json" in hint
    assert "did you mean" in str(info.value)


def test_models_returns_a_copy_in_catalog_order() -> None:
    table = models()
    assert list(table) == ALL_MODELS
    table.clear()
    assert models()


def test_import_does_no_io() -> None:
    code = (
        "import sys, llmdeploy.catalog\n"
        "from llmdeploy.catalog import entries as c\n"
        "assert 'ruamel.yaml' not in sys.modules, 'ruamel imported at import time'\n"
        "assert c._gpu_index.cache_info().currsize == 0\n"
        "assert c._model_index.cache_info().currsize == 0\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_broken_builtin_catalog_is_an_internal_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = tmp_path / "gpus.yaml"
    broken.write_text("t4:\n  name: Tesla T4\n  vendor: nvidia\n", encoding="utf-8")
    monkeypatch.setattr(catalog_entries, "GPU_CATALOG_PATH", broken)
    catalog_entries._gpu_index.cache_clear()
    try:
        with pytest.raises(InternalError, match=r"gpus\.yaml: t4\.\w+ must be"):
            gpus()
    finally:
        monkeypatch.undo()
        catalog_entries._gpu_index.cache_clear()
    assert "t4" in gpus()


# ------------------------------------------------------------------ config.json reader

FIXTURES = {
    "llama-3.1-8b-instruct.json": "meta-llama/Llama-3.1-8B-Instruct",
    "llama-3.1-70b-instruct-awq-int4.json": "hugging-quants/Meta-Llama-3.1-70B-Instruct-AWQ-INT4",
    "mixtral-8x7b-instruct-v0.1.json": "mistralai/Mixtral-8x7B-Instruct-v0.1",
    "qwen3-30b-a3b.json": "Qwen/Qwen3-30B-A3B",
    "gemma-2-9b-it.json": "google/gemma-2-9b-it",
    "gemma-3-4b-it.json": "google/gemma-3-4b-it",
    "phi-3-mini-4k-instruct.json": "microsoft/Phi-3-mini-4k-instruct",
    "deepseek-v3.json": "deepseek-ai/DeepSeek-V3",
    "gpt-oss-120b.json": "openai/gpt-oss-120b",
    "kimi-k2-instruct.json": "moonshotai/Kimi-K2-Instruct",
    "qwen3-vl-8b-instruct.json": "Qwen/Qwen3-VL-8B-Instruct",
    # The Thinking release's config: the same architecture as the Instruct entry (SOURCES.md).
    "qwen3-next-80b-a3b-thinking.json": "Qwen/Qwen3-Next-80B-A3B-Instruct",
    "llama-4-scout-17b-16e-instruct.json": "meta-llama/Llama-4-Scout-17B-16E-Instruct",
    # Mistral Small 3.1 (2503): the architecture of the 3.2 (2506) entry, vision tower included.
    "mistral-small-3.1-24b-instruct-2503.json": "mistralai/Mistral-Small-3.2-24B-Instruct-2506",
    # DeepSeek-V3.2 (the release after V3.2-Exp): the same DeepseekV32ForCausalLM architecture.
    "deepseek-v3.2.json": "deepseek-ai/DeepSeek-V3.2-Exp",
}
# Text-only abridged copies: equal to the catalog entry except for the vision tower they omit.
TEXT_ONLY_FIXTURES = {
    "llama-4-maverick-17b-128e-instruct.json": "meta-llama/Llama-4-Maverick-17B-128E-Instruct",
}
# Fixtures read on their own (not equal to a catalog entry); tests/data/hf_configs/SOURCES.md.
READER_ONLY_FIXTURES = {"gpt-oss-20b.json", "nvidia-deepseek-v3.1-nvfp4.json"} | set(TEXT_ONLY_FIXTURES)


def test_every_fixture_is_covered() -> None:
    files = {p.name for p in HF_CONFIGS.glob("*.json") if not p.name.endswith(".index.json")}
    assert files == set(FIXTURES) | READER_ONLY_FIXTURES


@pytest.mark.parametrize(("filename", "hf_id"), sorted(FIXTURES.items()))
def test_hf_config_equals_catalog_entry(filename: str, hf_id: str) -> None:
    path = HF_CONFIGS / filename
    local = model_from_hf_config(path)
    entry = get_model(hf_id)
    assert local.architecture_fields() == entry.architecture_fields()
    assert local.source == str(path)
    assert local.weight_bytes is None
    assert estimate_num_parameters(local) == estimate_num_parameters(entry)


@pytest.mark.parametrize(("filename", "hf_id"), sorted(TEXT_ONLY_FIXTURES.items()))
def test_text_only_hf_config_equals_catalog_entry_but_the_vision_tower(filename: str, hf_id: str) -> None:
    """The Llama 4 copies carry ``text_config`` alone: every text field matches the catalog entry
    (read from the Hub's full file), and the vision tower the file omits is the whole difference."""
    local = model_from_hf_config(HF_CONFIGS / filename)
    entry = get_model(hf_id)
    assert local.vision_parameters == 0 and entry.vision_parameters > 0
    assert local.architecture_fields() == {**entry.architecture_fields(), "vision_parameters": 0}
    assert estimate_num_parameters(local) == estimate_num_parameters(entry) - entry.vision_parameters


def test_deepseek_v31_nvfp4_config_is_the_v31_architecture_without_its_fp8_block() -> None:
    """NVIDIA's NVFP4 re-publication keeps its quantization in hf_quant_config.json, so its
    config.json is DeepSeek-V3.1's without ``quantization_config``: every other architecture field
    equals the V3.1 entry (read as a bf16 checkpoint, as the gpt-oss-20b mirror is)."""
    local = model_from_hf_config(HF_CONFIGS / "nvidia-deepseek-v3.1-nvfp4.json")
    entry = get_model("deepseek-ai/DeepSeek-V3.1")
    assert local.quantization is None and entry.quantization is not None
    assert local.architecture_fields() == {**entry.architecture_fields(), "quantization": None}
    assert estimate_num_parameters(local) == estimate_num_parameters(entry)


def test_2025_family_fixtures_size_as_the_catalog_entries() -> None:
    """Sizing from the real file gives the catalog entry's per-GPU weights and KV cache."""
    from llmdeploy.engines import resolve_engine
    from llmdeploy.sizing import SizingInput, size

    cases = [("kimi-k2-instruct.json", "moonshotai/Kimi-K2-Instruct", "h200", 8, 2),
             ("qwen3-vl-8b-instruct.json", "Qwen/Qwen3-VL-8B-Instruct", "h100-sxm", 1, 1),
             ("qwen3-next-80b-a3b-thinking.json", "Qwen/Qwen3-Next-80B-A3B-Instruct", "h100-sxm", 4, 1),
             ("llama-4-scout-17b-16e-instruct.json", "meta-llama/Llama-4-Scout-17B-16E-Instruct", "h100-sxm", 4, 1),
             ("mistral-small-3.1-24b-instruct-2503.json", "mistralai/Mistral-Small-3.2-24B-Instruct-2506", "h100-sxm",
              1, 1),
             ("deepseek-v3.2.json", "deepseek-ai/DeepSeek-V3.2-Exp", "h200", 8, 1)]
    for filename, hf_id, gpu, tp, pp in cases:
        reports = []
        for model in (model_from_hf_config(HF_CONFIGS / filename), get_model(hf_id)):
            engine = resolve_engine("vllm", None, "0.19.0")
            reports.append(size(SizingInput(model=model, gpu=catalog.get_gpu(gpu), engine=engine, tensor_parallel=tp,
                                            pipeline_parallel=pp, max_model_len=32768)))
        local, entry = reports
        assert local.kv_cache_tokens == entry.kv_cache_tokens > 0, filename
        assert local.per_gpu.weights_gib == pytest.approx(entry.per_gpu.weights_gib, rel=0.02), filename


def test_hf_config_reads_details() -> None:
    deepseek = model_from_hf_config(HF_CONFIGS / "deepseek-v3.json")
    assert deepseek.mla is not None and deepseek.mla.q_lora_rank == 1536
    assert deepseek.moe is not None and deepseek.moe.first_k_dense_layers == 3
    assert deepseek.moe.num_shared_experts == 1
    assert deepseek.quantization is not None and deepseek.quantization.method == "fp8"
    assert deepseek.mtp_layers == 1 and deepseek.head_dim == 192

    awq = model_from_hf_config(HF_CONFIGS / "llama-3.1-70b-instruct-awq-int4.json")
    assert awq.hf_id == "hugging-quants/Meta-Llama-3.1-70B-Instruct-AWQ-INT4"  # from _name_or_path
    assert awq.quantization == catalog.QuantizationConfig("awq", 4, 128)

    gemma3 = model_from_hf_config(HF_CONFIGS / "gemma-3-4b-it.json")
    assert gemma3.num_attention_heads == 8 and gemma3.head_dim == 256  # text_config defaults
    assert gemma3.vision_parameters > 400_000_000
    assert gemma3.hf_id == "gemma-3-4b-it"  # file stem when the file is not config.json

    gemma2 = model_from_hf_config(HF_CONFIGS / "gemma-2-9b-it.json")
    assert gemma2.tie_word_embeddings  # absent from the file: Gemma ties by default


def test_hf_config_with_index(tmp_path: Path) -> None:
    model = model_from_hf_config(HF_CONFIGS / "llama-3.1-8b-instruct.json", LLAMA_8B_INDEX)
    assert model.weight_bytes == 16_060_522_496
    assert str(LLAMA_8B_INDEX) in model.sources

    folder = tmp_path / "Llama-3.1-8B-Instruct"
    folder.mkdir()
    (folder / "config.json").write_bytes((HF_CONFIGS / "llama-3.1-8b-instruct.json").read_bytes())
    (folder / "model.safetensors.index.json").write_bytes(LLAMA_8B_INDEX.read_bytes())
    from_folder = model_from_hf_config(folder)
    assert from_folder.weight_bytes == 16_060_522_496
    assert from_folder.hf_id == "Llama-3.1-8B-Instruct"
    assert from_folder.source == str(folder / "config.json")


def _write(tmp_path: Path, data: Any, name: str = "config.json") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


def _fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((HF_CONFIGS / name).read_text(encoding="utf-8"))
    return data


def test_qwen2_moe_config(tmp_path: Path) -> None:
    # The architecture values of Qwen/Qwen1.5-MoE-A2.7B (Hub total: 14,315,784,192).
    config = {
        "architectures": ["Qwen2MoeForCausalLM"],
        "model_type": "qwen2_moe",
        "hidden_size": 2048,
        "intermediate_size": 5632,
        "num_hidden_layers": 24,
        "num_attention_heads": 16,
        "num_key_value_heads": 16,
        "vocab_size": 151936,
        "max_position_embeddings": 8192,
        "num_experts": 60,
        "num_experts_per_tok": 4,
        "moe_intermediate_size": 1408,
        "shared_expert_intermediate_size": 5632,
        "decoder_sparse_step": 1,
        "mlp_only_layers": [],
        "sliding_window": 32768,
        "use_sliding_window": False,
        "max_window_layers": 21,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
    }
    model = model_from_hf_config(_write(tmp_path, config))
    assert model.moe == MoEConfig(60, 4, 1408, 1, 0, 5632)
    assert model.attention_bias and model.sliding_window is None
    assert estimate_num_parameters(model) == 14_315_784_192


def test_qwen_sliding_window_when_enabled(tmp_path: Path) -> None:
    config = _fixture("qwen3-30b-a3b.json") | {
        "use_sliding_window": True,
        "sliding_window": 4096,
        "max_window_layers": 28,
    }
    model = model_from_hf_config(_write(tmp_path, config))
    assert (model.sliding_window, model.sliding_window_layers) == (4096, 48 - 28)


def test_layer_types_override_the_pattern(tmp_path: Path) -> None:
    config = _fixture("gemma-2-9b-it.json")
    config["layer_types"] = ["sliding_attention"] * 40 + ["full_attention"] * 2
    model = model_from_hf_config(_write(tmp_path, config))
    assert (model.sliding_window, model.sliding_window_layers) == (4096, 40)


def test_compressed_tensors_quantization(tmp_path: Path) -> None:
    config = _fixture("llama-3.1-8b-instruct.json") | {
        "quantization_config": {
            "quant_method": "compressed-tensors",
            "config_groups": {
                "group_0": {
                    "targets": ["Linear"],
                    "weights": {
                        "num_bits": 4,
                        "type": "int",
                        "strategy": "group",
                        "group_size": 128,
                    },
                }
            },
        }
    }
    model = model_from_hf_config(_write(tmp_path, config))
    assert model.quantization == catalog.QuantizationConfig("compressed-tensors", 4, 128, "w4a16")


def test_missing_head_dim_is_derived_and_kv_heads_default(tmp_path: Path) -> None:
    config = _fixture("llama-3.1-8b-instruct.json")
    del config["num_key_value_heads"]
    model = model_from_hf_config(_write(tmp_path, config))
    assert model.head_dim == 128 and model.num_kv_heads == 32


@pytest.mark.parametrize(
    ("mutate", "pattern"),
    [
        (lambda c: c.pop("hidden_size"), r"config\.json: required key 'hidden_size' is missing"),
        (lambda c: c.pop("num_hidden_layers"), r"required key 'num_hidden_layers' is missing"),
        (lambda c: c.update(hidden_size="4096"), r"hidden_size must be an integer"),
        (lambda c: c.pop("model_type"), r"required key 'model_type' is missing"),
        (lambda c: c.update(hidden_size=4100), r"'head_dim' is missing"),
        (lambda c: c.update(quantization_config={"bits": 4}), r"quantization_config must be"),
    ],
)
def test_malformed_config_raises_catalog_error(tmp_path: Path, mutate: Any, pattern: str) -> None:
    config = _fixture("llama-3.1-8b-instruct.json")
    mutate(config)
    path = _write(tmp_path, config)
    with pytest.raises(CatalogError, match=pattern) as info:
        model_from_hf_config(path)
    assert str(path) in info.value.message
    assert info.value.hint


def test_unknown_model_type_is_read_generically_and_says_so(tmp_path: Path) -> None:
    """No refusal by model type: the standard keys are enough, and the notes say what is approximated."""
    path = _write(tmp_path, _fixture("llama-3.1-8b-instruct.json") | {"model_type": "brand_new_llm"})
    model = model_from_hf_config(path)
    llama = model_from_hf_config(HF_CONFIGS / "llama-3.1-8b-instruct.json")
    assert model.family == "brand_new_llm" and model.approximations
    assert "no explicit rules" in model.approximations[0]
    assert not llama.approximations
    keep = ("num_layers", "hidden_size", "num_kv_heads", "head_dim", "intermediate_size", "vocab_size")
    assert all(getattr(model, k) == getattr(llama, k) for k in keep)


def test_missing_text_config_key_names_the_nested_key(tmp_path: Path) -> None:
    config = _fixture("gemma-3-4b-it.json")
    del config["text_config"]["hidden_size"]
    with pytest.raises(CatalogError, match=r"required key 'text_config\.hidden_size'"):
        model_from_hf_config(_write(tmp_path, config))


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("{not json", r"config\.json:1:2: config\.json is not valid JSON"),
        ("[1, 2]", r"config\.json must be a JSON object"),
    ],
)
def test_invalid_json_raises_catalog_error(tmp_path: Path, text: str, pattern: str) -> None:
    with pytest.raises(CatalogError, match=pattern):
        model_from_hf_config(_write(tmp_path, text))


def test_missing_file_raises_catalog_error(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="cannot read config.json") as info:
        model_from_hf_config(tmp_path / "nope" / "config.json")
    assert info.value.hint is not None and "never downloads" in info.value.hint


def test_index_without_total_size_raises_catalog_error(tmp_path: Path) -> None:
    index = _write(tmp_path, {"metadata": {}, "weight_map": {}}, "model.safetensors.index.json")
    with pytest.raises(CatalogError, match=r"'metadata\.total_size'") as info:
        model_from_hf_config(HF_CONFIGS / "llama-3.1-8b-instruct.json", index)
    assert str(index) in info.value.message


def test_architecture_fields_ignore_catalog_only_data() -> None:
    entry = get_model("llama-3.1-8b")
    other: ModelConfig = replace(entry, hf_id="x", aliases=(), num_parameters=None, sources=())
    assert other.architecture_fields() == entry.architecture_fields()
    assert replace(entry, num_layers=31).architecture_fields() != entry.architecture_fields()
