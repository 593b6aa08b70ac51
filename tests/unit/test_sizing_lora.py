"""``llmdeploy size`` counts the LoRA slots (GPU) and the adapter cache (host), as vLLM allocates them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import EXAMPLES
from typer.testing import CliRunner

from llmdeploy.catalog import get_gpu, get_model, models
from llmdeploy.cli import app
from llmdeploy.engines import resolve_engine
from llmdeploy.sizing import SizingInput, size
from llmdeploy.sizing.lora import LoraLimits, lora_cpu_cache_bytes

GIB = 2**30
LLAMA8 = get_model("meta-llama/Llama-3.1-8B-Instruct")
# One Llama-3.1-8B layer, per unit of rank, one GPU: qkv A 3·4096 + B 4096+2·1024, o 4096+4096,
# gate_up A 2·4096 + B 2·14336, down 14336+4096 (vllm/lora/layers create_lora_weights).
PER_RANK_TP1 = 3 * 4096 + 6144 + 4096 + 4096 + 2 * 4096 + 2 * 14336 + 14336 + 4096  # 81,920
V011 = resolve_engine("vllm", None, "0.11.0")


def _size(lora: LoraLimits | None, **kw: Any):  # type: ignore[no-untyped-def]
    return size(SizingInput(model=kw.pop("model", LLAMA8), gpu=get_gpu(kw.pop("gpu", "a100-80gb")), engine=V011,
                            lora=lora, **kw))


def test_the_slots_come_out_of_the_kv_cache() -> None:
    base = _size(None)
    with_lora = _size(LoraLimits(64, 2, 2, (64, 16)))
    slots = 2 * 64 * 32 * PER_RANK_TP1 * 2  # 671,088,640 B
    assert with_lora.per_gpu.lora_gib == slots / GIB == 0.625
    assert base.per_gpu.lora_gib == 0
    frac = V011.memory_model_for(None).kv_budget_fraction
    assert base.per_gpu.kv_cache_gib - with_lora.per_gpu.kv_cache_gib == \
        pytest.approx(0.625 * frac, abs=1e-6)
    lost = base.kv_cache_tokens - with_lora.kv_cache_tokens
    assert abs(lost - slots * frac / 131072) <= 16  # 5,120 tokens of 128 KiB, within one block
    assert any("LoRA: 2 slot(s)" in a and "0.62 GiB per GPU" in a for a in with_lora.assumptions)


def test_tensor_and_pipeline_parallel_shard_the_slots() -> None:
    tp2 = _size(LoraLimits(64, 2, 2, (64,)), tensor_parallel=2)
    per_rank_tp2 = 3 * 4096 + 6144 / 2 + 4096 / 2 + 4096 + 2 * 4096 + 2 * 14336 / 2 + 14336 / 2 + 4096
    assert tp2.per_gpu.lora_gib * GIB == int(2 * 64 * 32 * per_rank_tp2 * 2)
    pp2 = _size(LoraLimits(64, 2, 2, (64,)), pipeline_parallel=2)
    assert [s.lora_gib * GIB for s in pp2.per_stage] == [2 * 64 * 16 * PER_RANK_TP1 * 2] * 2


def test_slots_that_eat_the_cache_make_it_not_fit() -> None:
    r = _size(LoraLimits(512, 2, 2, (512, 512)), gpu="l4")
    assert not r.fits and r.per_gpu.lora_gib == 5.0
    assert "LoRA slots 5.00" in r.reasons[0].message


def test_cpu_cache_holds_every_adapter_at_its_own_rank() -> None:
    limits = LoraLimits(64, 1, 2, (64, 16))
    assert lora_cpu_cache_bytes(LLAMA8, limits, "bfloat16") == (64 + 16) * 32 * PER_RANK_TP1 * 2  # 0.39 GiB
    r = _size(limits)
    assert r.lora_cpu_cache_bytes == 419_430_400


def test_moe_slots_are_not_modelled_and_say_so() -> None:
    moe = next(m for m in models().values()
               if m.moe is not None and m.num_parameters and m.num_parameters < 40e9)
    r = _size(LoraLimits(16, 1, 1, (16,)), model=moe, gpu="h100-sxm", tensor_parallel=2)
    assert r.per_gpu.lora_gib == 0 and r.lora_cpu_cache_bytes is None
    assert any("are not modelled" in a for a in r.assumptions)


def test_size_of_the_lora_example_shows_the_slots_and_the_cache() -> None:
    spec = EXAMPLES / "llama-3.1-8b-llmisvc-lora.llmdeploy.yaml"
    r = CliRunner().invoke(app, ["size", str(spec), "-f", "json"])
    assert r.exit_code == 0, r.stderr
    j = json.loads(r.stdout)
    j = j[0] if isinstance(j, list) else j
    j = j.get("report", j)
    assert j["lora"] == {"max_loras": 2, "max_lora_rank": 64, "max_cpu_loras": 2, "gpu_slots_gib": 0.625,
                         "cpu_cache_gib_per_worker": 0.391}
    assert j["per_gpu"]["lora_gib"] == 0.625
    table = CliRunner().invoke(app, ["size", str(spec)])
    assert "LoRA slots" in table.stdout and "LoRA CPU cache per engine worker" in table.stdout


def test_pod_memory_counts_the_adapter_cache(tmp_path: Path) -> None:
    """Eight rank-256 adapters cached on the host: 8 × 256 × 32 × 81,920 × 2 B = 10 GiB more memory."""
    from llmdeploy.api import render

    spec = yaml.safe_load((EXAMPLES / "llama-3.1-8b-llmisvc-lora.llmdeploy.yaml").read_text())

    def memory(loras: list[dict[str, Any]] | None) -> str:
        model = {k: v for k, v in spec["model"].items() if k not in ("loras", "maxLoras")}
        if loras:
            model.update(loras=loras, maxLoras=1)
        res = render(text=yaml.safe_dump(dict(spec, model=model)), name="s.yaml", base_dir=tmp_path)
        assert res.ok, [d.to_text() for d in res.diagnostics if d.is_error]
        main = next(o for o in res.objects if o["kind"] == "LLMInferenceService")
        return main["spec"]["template"]["containers"][0]["resources"]["requests"]["memory"]

    loras = [{"name": f"a{i}", "storageUri": f"hf://o/a{i}", "rank": 256} for i in range(8)]
    assert lora_cpu_cache_bytes(LLAMA8, LoraLimits(256, 1, 8, (256,) * 8), "bfloat16") == 10 * GIB
    assert memory(None) != memory(loras)
    with_gib = float(memory(loras).rstrip("Gi"))
    without_gib = float(memory(None).rstrip("Gi"))
    assert 9 <= with_gib - without_gib <= 11
