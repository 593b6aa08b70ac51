"""The profile run's sampler (FlashInfer or PyTorch's sort) and vLLM's custom all-reduce.

Both change what vLLM charges against ``gpu_memory_utilization`` before the KV cache, and
both are stated by the start-up log itself, which ``calibrate`` reads:

* "Using FlashInfer for top-p & top-k sampling" / "FlashInfer is not available": V1 up to
  0.11.x uses FlashInfer when installed (v1/sample/ops/topk_topp_sampler.py at 0.10.1.1 and
  0.11.0: "In V1, None means True"); from 0.12.0 it is opt-in. engines/vllm.yaml ``sampler``.
* "Custom allreduce is disabled …" (no peer-to-peer access, or a group across nodes): no
  custom all-reduce buffers in the non-torch memory (sizing/memory.py ``non_torch_bytes``).

The logs are the committed vLLM 0.10.1.1 logs of dennislee22/vLLM-benchmarking
(tests/data/vllm_logs/v01011_*.yaml quote the lines).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml
from conftest import ROOT

from llmdeploy.catalog import get_gpu, get_model
from llmdeploy.engines import resolve_engine
from llmdeploy.engines.startup_log import parse_startup_log
from llmdeploy.sizing import SizingInput, size
from llmdeploy.sizing.calibrate import compare_log

LOGS = ROOT / "tests" / "data" / "vllm_logs"


@pytest.mark.parametrize(("version", "flashinfer"), [
    ("0.8.5", True), ("0.9.2", True), ("0.10.1.1", True), ("0.11.0", True),
    ("0.12.0", False), ("0.16.0", False), ("0.19.0", False), ("0.30.0", False),
])
def test_the_default_sampler_by_release(version: str, flashinfer: bool) -> None:
    sm = resolve_engine("vllm", None, version).memory_model_for("V1").sampler
    assert sm.flashinfer_default is flashinfer


def _input(version: str, **kw: object) -> SizingInput:
    base = {"model": get_model("meta-llama/Llama-3.1-8B-Instruct"), "gpu": get_gpu("h100-sxm"),
            "engine": resolve_engine("vllm", None, version), "gpu_memory_utilization": 0.9,
            "max_model_len": 8192, "max_num_seqs": 1024}
    base.update(kw)
    return SizingInput(**base)  # type: ignore[arg-type]


def test_flashinfer_holds_less_than_the_sort() -> None:
    """0.11.0 with the official image (FlashInfer) vs the same with VLLM_USE_FLASHINFER_SAMPLER=0:
    the sort's 38.9 B per logit over 1024 × 128,256 logits is 4.76 GiB (the published native
    figure), FlashInfer's pass stays under the 8,192-token forward."""
    fi = size(_input("0.11.0")).per_gpu
    native = size(_input("0.11.0", flashinfer_sampler=False)).per_gpu
    assert native.activation_gib == pytest.approx(4.76, abs=0.02)
    assert fi.activation_gib < 1.2
    assert fi.kv_cache_gib - native.kv_cache_gib == pytest.approx(native.activation_gib - fi.activation_gib, abs=0.01)
    # From 0.12 the sort is the default; FlashInfer is opt-in.
    assert size(_input("0.19.0")).per_gpu.activation_gib > size(_input("0.19.0", flashinfer_sampler=True)).per_gpu.activation_gib


def test_amd_gpus_never_sample_with_flashinfer() -> None:
    """On ROCm the sampler never takes FlashInfer (TopKTopPSampler checks is_cuda()), whatever
    the release's default or the environment says."""
    on_h100 = size(_input("0.11.0")).per_gpu.activation_gib
    on_mi300x = size(_input("0.11.0", gpu=get_gpu("mi300x"), flashinfer_sampler=True)).per_gpu.activation_gib
    assert on_mi300x > 3 * on_h100


def _spec(tmp_path: Path, env: str = "", extra: str = "", tp: int = 1, image: str = "v0.11.0") -> Path:
    p = tmp_path / "s.yaml"
    p.write_text(
        "apiVersion: llmdeploy.dev/v1alpha1\nkind: LLMService\nmetadata: {name: s}\n"
        "model: {id: meta-llama/Llama-3.1-8B-Instruct, storageUri: 'hf://meta-llama/Llama-3.1-8B-Instruct'}\n"
        f"runtime:\n  image: vllm/vllm-openai:{image}\n  maxNumSeqs: 1024\n{env}{extra}"
        f"resources:\n  gpu: {{type: h100-sxm}}\n  parallelism: {{tensor: {tp}}}\n", encoding="utf-8")
    return p


def _per_gpu(path: Path):  # type: ignore[no-untyped-def]
    from llmdeploy import api

    report = api.size(path).reports[0]
    assert report is not None
    return report.per_gpu


def test_the_spec_env_chooses_the_sampler(tmp_path: Path) -> None:
    default = _per_gpu(_spec(tmp_path)).activation_gib
    off = _per_gpu(_spec(tmp_path, env="  env:\n    - {name: VLLM_USE_FLASHINFER_SAMPLER, value: '0'}\n"))
    assert off.activation_gib == pytest.approx(4.76, abs=0.02) and default < 1.2


def test_disable_custom_all_reduce_drops_its_buffers(tmp_path: Path) -> None:
    on = _per_gpu(_spec(tmp_path, tp=2, image="v0.19.0")).non_torch_gib
    off = _per_gpu(_spec(tmp_path, tp=2, image="v0.19.0",
                         extra="  extraArgs: [--disable-custom-all-reduce]\n")).non_torch_gib
    assert on == pytest.approx(2.15, abs=0.01) and off == pytest.approx(0.35, abs=0.01)


def _case_log(name: str) -> str:
    return yaml.safe_load((LOGS / f"{name}.yaml").read_text(encoding="utf-8"))["log"]


def test_the_log_lines_are_read() -> None:
    one = parse_startup_log(_case_log("v01011_qwen2_7b_a100_80g_util025"))
    ray = parse_startup_log(_case_log("v01011_qwen2_7b_a100_40g_tp2_2nodes"))
    nop2p = parse_startup_log(_case_log("v01011_qwen2_7b_a100_80g_tp2_util05"))
    assert (one.flashinfer_sampler, one.custom_all_reduce) == (True, None)
    assert (ray.flashinfer_sampler, ray.custom_all_reduce) == (False, False)
    assert (nop2p.flashinfer_sampler, nop2p.custom_all_reduce) == (True, False)


@pytest.mark.parametrize(("name", "gpu"), [
    ("v01011_qwen2_7b_a100_40g_tp2_2nodes", "a100-40gb"),
    ("v01011_qwen2_7b_a100_80g_tp2_util05", "a100-80gb"),
])
def test_calibrate_uses_them(name: str, gpu: str) -> None:
    """`llmdeploy calibrate` on these logs: within 2 % of the logged KV tokens with the lines
    read, more than 5 % off when they are ignored."""
    case = yaml.safe_load((LOGS / f"{name}.yaml").read_text(encoding="utf-8"))
    # The committed file wraps long lines, the engine-config line among them: take TP from the case.
    log = dataclasses.replace(parse_startup_log(case["log"]), tensor_parallel=case["tensor_parallel_size"])
    model = get_model("Qwen/Qwen2.5-7B-Instruct")  # Qwen2-7B-Instruct: the same architecture

    def err(lg: object) -> float:
        c = compare_log(lg, gpu=get_gpu(gpu), model=model).check("kv_cache_tokens")  # type: ignore[arg-type]
        return abs(c.predicted / c.logged - 1)

    assert err(log) < 0.02
    assert err(dataclasses.replace(log, flashinfer_sampler=None, custom_all_reduce=None)) > 0.05
