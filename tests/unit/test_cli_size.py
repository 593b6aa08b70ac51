"""``llmdeploy size``, ``plan`` and ``catalog``: exit codes, streams, the JSON contract.

In-process tests use typer's CliRunner (stdout and stderr apart); one test starts the
real ``python -m llmdeploy`` and parses its JSON.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_cli
from typer.testing import CliRunner

from llmdeploy.cli import app

SPEC = """\
apiVersion: llmdeploy.dev/v1alpha1
kind: LLMService
metadata:
  name: {name}
  namespace: inference
model:
  id: {model}
  storageUri: hf://{model}
  credentials:
    secretRef: hf-token
runtime:
  image: vllm/vllm-openai:v0.19.0
  maxModelLen: {max_model_len}
resources:
  gpu:
    type: {gpu}
  parallelism:
    tensor: {tp}
"""

CONTRACT = ("fits", "reasons", "gpu.name", "gpu.memory_gib", "per_gpu.total_gib", "per_gpu.usable_gib",
            "per_gpu.weights_gib", "per_gpu.activation_gib", "per_gpu.non_torch_gib", "per_gpu.cuda_graph_gib",
            "per_gpu.kv_cache_gib", "kv_bytes_per_token", "kv_cache_tokens", "max_concurrency", "max_model_len")


def spec_file(tmp_path: Path, *, name: str = "llama", model: str = "meta-llama/Llama-3.1-8B-Instruct",
              gpu: str = "a100-80gb", tp: int = 1, max_model_len: int = 8192) -> Path:
    p = tmp_path / f"{name}.llmdeploy.yaml"
    p.write_text(SPEC.format(name=name, model=model, gpu=gpu, tp=tp, max_model_len=max_model_len), encoding="utf-8")
    return p


def invoke(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def check_contract(data: dict) -> None:  # type: ignore[type-arg]
    for key in CONTRACT:
        node = data
        for part in key.split("."):
            assert part in node, key
            node = node[part]


# --------------------------------------------------------------------------- size SPEC


def test_size_spec_table_fits(tmp_path: Path) -> None:
    r = invoke("size", str(spec_file(tmp_path)))
    assert r.exit_code == 0, r.stderr
    out = r.stdout
    for text in ("Memory per GPU", "weights", "KV cache", "GPU KV cache size", "FITS", "Capacity and cost",
                 "Assumptions", "█", "vllm 0.19.0"):
        assert text in out, text
    assert "DOES NOT FIT" not in out


def test_size_spec_json_is_the_report(tmp_path: Path) -> None:
    r = invoke("size", str(spec_file(tmp_path)), "--format", "json")
    assert r.exit_code == 0
    data = json.loads(r.stdout)
    check_contract(data)
    assert data["fits"] is True and data["engine_version"] == "0.19.0"
    assert data["kv_cache_tokens"] > 8192 and data["capacity"]["cost_per_hour"] > 0


def test_size_spec_that_does_not_fit_exits_1_with_reasons(tmp_path: Path) -> None:
    path = spec_file(tmp_path, model="meta-llama/Llama-3.1-70B-Instruct", gpu="h100-sxm")
    r = invoke("size", str(path))
    assert r.exit_code == 1
    assert "DOES NOT FIT" in r.stdout and "LD201" in r.stdout and "tensor parallel 2" in r.stdout
    # The spec's diagnostics, located, like validate prints them.
    assert f"{path}:" in r.stderr and "error LD201" in r.stderr
    data = json.loads(invoke("size", str(path), "-f", "json").stdout)
    assert data["fits"] is False and data["reasons"][0]["code"] == "LD201"
    assert data["reasons"][0]["field"] == "resources.parallelism.tensor"


def test_size_spec_context_too_long(tmp_path: Path) -> None:
    r = invoke("size", str(spec_file(tmp_path, gpu="l4", max_model_len=131072)), "--format", "json")
    assert r.exit_code == 1
    data = json.loads(r.stdout)
    assert [x["code"] for x in data["reasons"]] == ["LD202"]
    assert data["reasons"][0]["field"] == "runtime.maxModelLen"
    assert "maxModelLen" in " ".join(data["suggestions"])


def test_size_invalid_spec_prints_diagnostics_and_exits_1(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(SPEC.format(name="x", model="meta-llama/Llama-3.1-8B-Instruct", gpu="a100-80gb", tp=1,
                               max_model_len=0), encoding="utf-8")
    r = invoke("size", str(bad))
    assert r.exit_code == 1
    assert "LD104" in r.stderr and r.stdout == ""


def test_size_spec_unknown_gpu(tmp_path: Path) -> None:
    r = invoke("size", str(spec_file(tmp_path, gpu="a100-90gb")))
    assert r.exit_code == 1 and "LD114" in r.stderr


def test_size_spec_with_engine_version_override(tmp_path: Path) -> None:
    path = spec_file(tmp_path)
    new = json.loads(invoke("size", str(path), "-f", "json", "--engine-version", "0.21.0").stdout)
    old = json.loads(invoke("size", str(path), "-f", "json").stdout)
    assert new["engine_version"] == "0.21.0" and old["engine_version"] == "0.19.0"
    assert new["engine_memory_model"]["cuda_graphs_counted"] is True
    assert old["engine_memory_model"]["cuda_graphs_counted"] is False


def test_size_multi_document_spec_gives_a_json_list(tmp_path: Path) -> None:
    text = SPEC.format(name="a", model="meta-llama/Llama-3.1-8B-Instruct", gpu="l4", tp=1, max_model_len=4096)
    text += "---\n" + SPEC.format(name="b", model="Qwen/Qwen3-8B", gpu="l40s", tp=1, max_model_len=8192)
    p = tmp_path / "two.yaml"
    p.write_text(text, encoding="utf-8")
    r = invoke("size", str(p), "--format", "json")
    assert r.exit_code == 0, r.stderr
    data = json.loads(r.stdout)
    assert [d["service"] for d in data] == ["inference/a", "inference/b"]
    for d in data:
        check_contract(d)


# --------------------------------------------------------------------------- size from flags


def test_size_flags_only_json() -> None:
    r = invoke("size", "--model", "meta-llama/Llama-3.1-70B-Instruct", "--gpu", "h100", "--tensor-parallel", "4",
               "--max-model-len", "32768", "--engine-version", "0.19.0", "--format", "json")
    assert r.exit_code == 0, r.stderr
    data = json.loads(r.stdout)
    check_contract(data)
    assert data["parallelism"]["tensor"] == 4 and data["max_model_len"] == 32768
    assert data["per_gpu"]["weights_gib"] == pytest.approx(131.45 / 4, rel=0.02)


def test_size_flags_every_option() -> None:
    r = invoke("size", "-m", "meta-llama/Llama-3.1-8B-Instruct", "-g", "l40s", "--pipeline-parallel", "2",
               "--dtype", "float16", "--quantization", "fp8", "--kv-cache-dtype", "fp8",
               "--gpu-memory-utilization", "0.85", "--max-num-batched-tokens", "4096", "--max-num-seqs", "64",
               "--price-per-gpu-hour", "2", "-f", "json")
    assert r.exit_code == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["parallelism"]["pipeline"] == 2 and d["dtype"] == "float16" and "fp8" in d["quantization"]
    assert d["kv_cache_dtype"] == "fp8" and d["gpu_memory_utilization"] == 0.85
    assert d["max_num_batched_tokens"] == 4096 and d["max_num_seqs"] == 64
    assert d["capacity"]["cost_per_hour"] == 4.0 and len(d["per_stage"]) == 2


def test_size_flags_local_config_json(tmp_path: Path) -> None:
    cfg = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 2048,
        "num_hidden_layers": 16, "num_attention_heads": 32, "num_key_value_heads": 8, "intermediate_size": 8192,
        "vocab_size": 128256, "max_position_embeddings": 131072, "torch_dtype": "bfloat16",
        "tie_word_embeddings": True,
    }
    (tmp_path / "config.json").write_text(json.dumps(cfg), encoding="utf-8")
    r = invoke("size", "--model", str(tmp_path / "config.json"), "--gpu", "t4", "-f", "json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["kv_bytes_per_token"] == 2 * 16 * 8 * 64 * 2


def test_size_flags_does_not_fit_table() -> None:
    r = invoke("size", "--model", "meta-llama/Llama-3.1-8B-Instruct", "--gpu", "t4")
    assert r.exit_code == 1
    assert "DOES NOT FIT" in r.stdout and "LD201" in r.stdout and "Suggestions" in r.stdout


@pytest.mark.parametrize(("args", "message"), [
    ((), "give a spec file, or both --model and --gpu"),
    (("--gpu", "h100"), "both --model and --gpu"),
    (("-m", "meta-llama/Llama-3.1-8B-Instruct", "-g", "h100", "--dtype", "int4"), "--dtype must be one of"),
    (("-m", "meta-llama/Llama-3.1-8B-Instruct", "-g", "h100", "--format", "yaml"), "--format must be one of"),
    (("-m", "meta-llama/Llama-3.1-8B-Instruct", "-g", "h100", "--tensor-parallel", "0"), "at least 1"),
    (("-m", "meta-llama/Llama-3.1-8B-Instruct", "-g", "h100", "--gpu-memory-utilization", "1.5"), "(0, 1]"),
    (("-m", "meta-llama/Llama-3.1-8B-Instruct", "-g", "h100", "--quantization", "int3"), "--quantization"),
    (("nope.yaml",), "no such file"),
])
def test_size_usage_errors_exit_2(args: tuple[str, ...], message: str) -> None:
    r = invoke("size", *args)
    assert r.exit_code == 2
    assert message in r.stderr and r.stdout == ""


def test_size_spec_and_flags_together_is_a_usage_error(tmp_path: Path) -> None:
    r = invoke("size", str(spec_file(tmp_path)), "--model", "meta-llama/Llama-3.1-8B-Instruct")
    assert r.exit_code == 2 and "not both" in r.stderr


def test_size_unknown_model_or_gpu_exits_1_with_a_hint() -> None:
    r = invoke("size", "--model", "meta-llama/Llama-3.1-8B-Instructt", "--gpu", "h100")
    assert r.exit_code == 1 and "did you mean" in r.stderr
    r = invoke("size", "--model", "meta-llama/Llama-3.1-8B-Instruct", "--gpu", "h1000")
    assert r.exit_code == 1 and "unknown GPU" in r.stderr


# --------------------------------------------------------------------------- plan


def test_plan_lists_cheapest_first() -> None:
    r = invoke("plan", "--model", "meta-llama/Llama-3.1-70B-Instruct", "--max-model-len", "8192", "-f", "json",
               "--engine-version", "0.19.0")
    assert r.exit_code == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["engine_version"] == "0.19.0"
    opts = data["options"]
    assert opts and all(o["kv_cache_tokens"] >= 8192 for o in opts)
    priced = [o["cost_per_hour"] for o in opts if o["cost_per_hour"] is not None]
    assert priced == sorted(priced)
    assert not any(o["gpu"] == "h100-sxm" and o["tensor_parallel"] == 1 for o in opts)


def test_plan_table_and_gpu_filter() -> None:
    r = invoke("plan", "-m", "meta-llama/Llama-3.1-8B-Instruct", "--max-model-len", "16384", "--gpu", "l4,a10g")
    assert r.exit_code == 0, r.stderr
    assert "l4" in r.stdout and "a10g" in r.stdout and "h100" not in r.stdout and "cheapest first" in r.stdout


def test_plan_nothing_fits_exits_1() -> None:
    r = invoke("plan", "-m", "meta-llama/Llama-3.1-405B-Instruct", "--gpu", "t4", "-f", "json")
    assert r.exit_code == 1 and json.loads(r.stdout)["options"] == []


# --------------------------------------------------------------------------- catalog


def test_catalog_gpus_and_models() -> None:
    r = invoke("catalog", "gpus", "--format", "json")
    assert r.exit_code == 0
    gpus = json.loads(r.stdout)
    assert {"h100-sxm", "a100-80gb", "l4"} <= {g["key"] for g in gpus}
    r = invoke("catalog", "models", "-f", "json")
    models = {m["id"]: m for m in json.loads(r.stdout)}
    assert models["meta-llama/Llama-3.1-8B-Instruct"]["kv_bytes_per_token_bf16"] == 131072
    table = invoke("catalog", "gpus")
    assert table.exit_code == 0 and "GPU catalog" in table.stdout and "h100-sxm" in table.stdout
    assert "Model catalog" in invoke("catalog", "models").stdout
    assert invoke("catalog", "gpus", "-f", "xml").exit_code == 2


# --------------------------------------------------------------------------- a real process


def test_real_process_size_json() -> None:
    proc = run_cli("size", "--model", "meta-llama/Llama-3.1-8B-Instruct", "--gpu", "a100-80gb",
                   "--max-model-len", "8192", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    check_contract(data)
    assert data["fits"] is True and data["gpu"]["name"] == "NVIDIA A100-SXM4-80GB"
    assert data["kv_bytes_per_token"] == 131072
