"""#14 item 5: Blackwell Ultra / Grace-Blackwell and CDNA3/4 GPUs, and honest AMD rendering (LD211)."""

from __future__ import annotations

import dataclasses

import pytest

from llmdeploy import api
from llmdeploy.catalog import QuantizationConfig, get_gpu, get_model
from llmdeploy.engines import resolve_engine
from llmdeploy.sizing import SizingInput, size

# The driver's figure for each, from the nvidia-smi / rocm-smi output cited in gpus.yaml.
DRIVER_MIB = {"b300": 275040, "gb200": 189471, "gb300": 284208, "mi355x": 309220868096 // 2**20}


@pytest.mark.parametrize("key", ["b300", "gb200", "gb300", "mi325x", "mi355x"])
def test_new_gpu_has_every_fact_with_a_source(key: str) -> None:
    g = get_gpu(key)
    assert g.memory_bandwidth_gbs >= 6000 and g.fp8_tflops and g.fp8
    assert all(g.sources[k] for k in ("memory", "bandwidth", "tflops", "labels", "price"))
    if key in DRIVER_MIB:
        assert g.memory_mib == DRIVER_MIB[key]


def test_blackwell_compute_capabilities_and_fp4() -> None:
    assert get_gpu("b300").compute_capability == "10.3" and get_gpu("gb300").compute_capability == "10.3"
    assert get_gpu("gb200").compute_capability == "10.0" == get_gpu("b200").compute_capability
    # FP4 tensor cores on Blackwell and CDNA4, none on CDNA3 or Hopper
    assert get_gpu("gb300").fp4_tflops > get_gpu("gb200").fp4_tflops > 0
    assert get_gpu("mi355x").fp4_tflops and get_gpu("mi325x").fp4_tflops is None
    assert get_gpu("h100-sxm").fp4_tflops is None


def test_nvl72_is_a_72_gpu_nvlink_domain_of_4_gpu_nodes() -> None:
    for key in ("gb200", "gb300"):
        g = get_gpu(key)
        assert g.gpus_per_node == 4 and g.nvlink_domain == 72 and g.interconnect == "nvlink"
    assert get_gpu("b300").nvlink_domain is None and get_gpu("b300").gpus_per_node == 8


def test_amd_gpus_use_the_amd_resource_label_and_arch() -> None:
    assert get_gpu("mi325x").compute_capability == "gfx942" and get_gpu("mi355x").compute_capability == "gfx950"
    for key in ("mi300x", "mi325x", "mi355x"):
        g = get_gpu(key)
        assert g.resource_name == "amd.com/gpu" and g.node_labels["gfd"].startswith("AMD_Instinct_MI")
    # usable memory: HBM less 16 MiB, the rule the MI300X and MI355X rocm-smi figures follow
    assert get_gpu("mi325x").memory_mib == 256 * 1024 - 16
    assert get_gpu("mi300x").memory_mib == 192 * 1024 - 16 and get_gpu("mi355x").memory_mib == 288 * 1024 - 16


def test_nvfp4_refused_on_every_amd_gpu_mxfp4_served_on_mi355x() -> None:
    m = dataclasses.replace(get_model("meta-llama/Llama-3.1-8B-Instruct"),
                            quantization=QuantizationConfig("modelopt", 4, 16, "nvfp4"))
    engine = resolve_engine("vllm", None, "0.19.0")
    for key in ("mi325x", "mi355x"):
        r = size(SizingInput(model=m, gpu=get_gpu(key), engine=engine, max_model_len=4096))
        assert any(x.problem.value == "gpu-cannot-run-dtype" for x in r.reasons), key
    for key in ("b300", "gb200", "gb300"):
        r = size(SizingInput(model=m, gpu=get_gpu(key), engine=engine, max_model_len=4096))
        assert r.fits and not any(x.problem.value == "gpu-cannot-run-dtype" for x in (*r.reasons, *r.warnings)), key
    gptoss = size(SizingInput(model=get_model("openai/gpt-oss-120b"), gpu=get_gpu("mi355x"), engine=engine,
                              max_model_len=8192))
    assert gptoss.fits and not any(x.problem.value == "gpu-cannot-run-dtype" for x in gptoss.reasons)


SPEC = """apiVersion: llmdeploy.dev/v1alpha1
kind: LLMService
metadata:
  name: amd
  namespace: inference
model:
  id: Qwen/Qwen3-8B
  storageUri: hf://Qwen/Qwen3-8B
runtime:
{image}  maxModelLen: 8192
resources:
  gpu:
    type: {gpu}
"""


def _spec(gpu: str, image: str | None) -> str:
    return SPEC.format(gpu=gpu, image=f"  image: {image}\n" if image else "")


def _ld211(text: str) -> list:
    return [d for d in api.validate(text=text).diagnostics if d.rule == "LD211"]


def test_cuda_image_on_amd_is_ld211_at_the_image() -> None:
    found = _ld211(_spec("mi355x", "vllm/vllm-openai:v0.19.0"))
    assert len(found) == 1 and found[0].is_error
    assert found[0].line == 10 and "CUDA build" in found[0].message
    assert "vllm/vllm-openai-rocm:v0.19.0" in (found[0].hint or "")


def test_rocm_images_pass_ld211() -> None:
    assert not _ld211(_spec("mi300x", "vllm/vllm-openai-rocm:v0.19.0"))
    assert not _ld211(_spec("mi325x", "rocm/vllm:rocm7.12.0_gfx94X-dcgpu_ubuntu24.04_py3.12_pytorch_2.9.1_vllm_0.16.0"))
    assert not _ld211(_spec("h100-sxm", "vllm/vllm-openai:v0.19.0"))  # NVIDIA: not concerned


def test_release_without_a_rocm_image_is_refused_at_the_gpu() -> None:
    found = _ld211(_spec("mi300x", "vllm/vllm-openai:v0.11.0").replace("  image: vllm/vllm-openai:v0.11.0\n",
                                                                        "  engineVersion: 0.11.0\n"))
    assert len(found) == 1 and found[0].line == 14 and "no ROCm image" in found[0].message
    assert "rocm/vllm" in (found[0].hint or "")


def test_amd_render_uses_the_rocm_image_and_the_amd_labels() -> None:
    text = _spec("mi355x", None).replace("  maxModelLen", "  engineVersion: 0.19.0\n  maxModelLen")
    out = api.render(text=text)
    assert not [d for d in out.diagnostics if d.is_error], out.diagnostics
    assert "vllm/vllm-openai-rocm:v0.19.0" in out.yaml and "vllm/vllm-openai:v" not in out.yaml
    assert "amd.com/gpu.product-name: AMD_Instinct_MI355_OAM" in out.yaml and "amd.com/gpu: " in out.yaml


def test_tgi_on_amd_uses_its_rocm_tag() -> None:
    from llmdeploy.engines import resolve_engine

    tgi = resolve_engine("tgi", None, "3.3.5")
    assert tgi.image_for("amd") == "ghcr.io/huggingface/text-generation-inference:3.3.5-rocm"
    cuda = _spec("mi300x", "ghcr.io/huggingface/text-generation-inference:3.3.5").replace(
        "runtime:\n", "runtime:\n  engine: tgi\n")
    (d,) = _ld211(cuda)
    assert "text-generation-inference:3.3.5-rocm" in (d.hint or "")
    assert not _ld211(cuda.replace(":3.3.5\n", ":3.3.5-rocm\n"))


def test_nvl72_tp8_hint_names_the_nvlink_domain() -> None:
    engine = resolve_engine("vllm", None, "0.19.0")
    r = size(SizingInput(model=get_model("deepseek-ai/DeepSeek-V3"), gpu=get_gpu("gb200"), engine=engine,
                         tensor_parallel=8, max_model_len=8192))
    (too_many,) = [x for x in r.reasons if x.problem.value == "more-gpus-than-a-node"]
    assert "72-GPU NVLink domain" in (too_many.hint or "") and "resources.nodes to 2" in (too_many.hint or "")
    b300 = size(SizingInput(model=get_model("deepseek-ai/DeepSeek-V3"), gpu=get_gpu("b300"), engine=engine,
                            tensor_parallel=16, max_model_len=8192))
    hint = next(x.hint for x in b300.reasons if x.problem.value == "more-gpus-than-a-node")
    assert "NVLink domain" not in (hint or "")
