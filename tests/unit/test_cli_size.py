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
    for text in ("Memory per GPU", "weights", "KV cache", "GPU KV cache size", "FITS", "Capacity per replica",
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
    r = invoke("size", "--model", "meta-llama/Llama-3.1-70B-Instruct", "--gpu", "h100-sxm", "--tensor-parallel", "4",
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
    (("-m", "meta-llama/Llama-3.1-8B-Instruct", "-g", "h100-sxm", "--dtype", "int4"), "--dtype must be one of"),
    (("-m", "meta-llama/Llama-3.1-8B-Instruct", "-g", "h100-sxm", "--format", "yaml"), "-o/--output takes a format"),
    (("-m", "meta-llama/Llama-3.1-8B-Instruct", "-g", "h100-sxm", "--tensor-parallel", "0"), "at least 1"),
    (("-m", "meta-llama/Llama-3.1-8B-Instruct", "-g", "h100-sxm", "--gpu-memory-utilization", "1.5"), "(0, 1]"),
    (("-m", "meta-llama/Llama-3.1-8B-Instruct", "-g", "h100-sxm", "--quantization", "int3"), "--quantization"),
    (("nope.yaml",), "no such file"),
])
def test_size_usage_errors_exit_2(args: tuple[str, ...], message: str) -> None:
    r = invoke("size", *args)
    assert r.exit_code == 2
    assert message in r.stderr and r.stdout == ""


@pytest.mark.parametrize(("args", "message"), [
    (("--concurrency", "1,x"), "--concurrency takes whole numbers"),
    (("--concurrency", "0"), "--concurrency values must be between 1"),
    (("--prompt-tokens", "0"), "--prompt-tokens must be at least 1"),
    (("--request-rate", "0"), "--request-rate must be a finite number above 0"),
    (("--tpot-ms", "-5"), "--tpot-ms must be a finite number above 0"),
    # not a traceback-free exit 3 (an OverflowError deep in the capacity model), nor Infinity in the JSON
    (("--request-rate", "inf"), "--request-rate must be a finite number above 0 (got inf)"),
    (("--ttft-p95-ms", "nan"), "--ttft-p95-ms must be a finite number above 0 (got nan)"),
    (("--price-per-gpu-hour", "-1"), "--price-per-gpu-hour must be a finite number of at least 0 (got -1)"),
    (("--price-per-gpu-hour", "inf"), "--price-per-gpu-hour must be a finite number of at least 0 (got inf)"),
])
def test_size_load_flags_usage_errors(args: tuple[str, ...], message: str) -> None:
    r = invoke("size", "-m", "meta-llama/Llama-3.1-8B-Instruct", "-g", "h100-sxm", *args)
    assert r.exit_code == 2, r.stdout
    assert message in r.stderr and r.stdout == ""


def test_size_capacity_points_json() -> None:
    r = invoke("size", "-m", "meta-llama/Llama-3.1-8B-Instruct", "-g", "h100-sxm", "--engine-version", "0.19.0",
               "--prompt-tokens", "1000", "--output-tokens", "200", "--concurrency", "1,16,64", "-f", "json")
    assert r.exit_code == 0, r.stderr
    cap = json.loads(r.stdout)["capacity"]
    assert [p["concurrency"] for p in cap["points"]] == [1, 16, 64]
    for p in cap["points"]:
        assert set(p) >= {"concurrency", "output_tokens_per_s", "per_sequence_tokens_per_s", "tpot_ms", "ttft_ms",
                          "requests_per_s", "cost_per_1m_output_tokens", "bound"}
        assert p["bound"] in ("max_num_seqs", "kv_cache", "memory_bandwidth", "compute", "communication")
    single = cap["points"][0]
    assert single["output_tokens_per_s"] < cap["points"][2]["output_tokens_per_s"]
    assert cap["prompt_tokens"] == 1000 and cap["output_tokens"] == 200
    assert json.loads(r.stdout)["max_num_seqs"] == 1024  # vLLM's default on an H100, not a KV-derived cap


def test_size_table_shows_the_curve_and_the_max_num_seqs_reason() -> None:
    r = invoke("size", "-m", "Qwen/Qwen2.5-7B-Instruct", "-g", "l4", "--concurrency", "1,8,32")
    assert r.exit_code == 0, r.stderr
    assert "Capacity per replica at 512 prompt + 256 output tokens" in r.stdout
    assert "max_num_seqs 256: the engine's default" in r.stdout and "preempt" in r.stdout


def test_size_spec_with_load_flags(tmp_path: Path) -> None:
    r = invoke("size", str(spec_file(tmp_path)), "--concurrency", "4", "--request-rate", "10", "-f", "json")
    assert r.exit_code == 0, r.stderr
    cap = json.loads(r.stdout)["capacity"]
    assert [p["concurrency"] for p in cap["points"]] == [4]
    assert cap["replicas_needed"] >= 1


def test_plan_with_slo_and_rate_orders_by_cost_per_token_and_names_misses() -> None:
    r = invoke("plan", "-m", "meta-llama/Llama-3.1-8B-Instruct", "--gpu", "l4,h100-sxm,a100-80gb",
               "--quantization", "none,fp8", "--request-rate", "20", "--tpot-ms", "30", "--ttft-p95-ms", "1500",
               "--engine-version", "0.19.0", "-f", "json")
    assert r.exit_code == 0, r.stderr
    opts = json.loads(r.stdout)["options"]
    assert {o["quantization"].split()[0] for o in opts} == {"none", "fp8"}
    meeting = [o for o in opts if o["meets_slo"]]
    missing = [o for o in opts if not o["meets_slo"]]
    assert meeting and missing and opts[: len(meeting)] == meeting  # misses come last
    costs = [o["cost_per_1m_output_tokens"] for o in meeting]
    assert costs == sorted(costs)
    assert all(o["replicas"] >= 1 for o in opts)
    assert all("TPOT p95" in o["slo_missed"] or "TTFT p95" in o["slo_missed"] for o in missing)
    table = invoke("plan", "-m", "meta-llama/Llama-3.1-8B-Instruct", "--gpu", "l4,h100-sxm",
                   "--request-rate", "20", "--tpot-ms", "30")
    assert table.exit_code == 0 and "replicas" in table.stdout and "missed" in table.stdout


def test_sizing_doc_capacity_commands_run() -> None:
    """Every ``$ llmdeploy ...`` line of docs/sizing.md's capacity section runs (exit 0 or 1, no usage error)."""
    import shlex

    doc = (Path(__file__).resolve().parents[2] / "docs" / "sizing.md").read_text(encoding="utf-8")
    section = doc[doc.index("## 9. Capacity"):doc.index("## 10.")]
    commands = []
    for block in section.split("```console")[1:]:
        text = block.split("```", 1)[0].replace("\\\n", " ")
        commands += [line[2:].split("#", 1)[0] for line in text.splitlines() if line.startswith("$ llmdeploy ")]
    assert len(commands) >= 3
    for cmd in commands:
        argv = shlex.split(cmd)[1:]
        r = invoke(*argv)
        assert r.exit_code in (0, 1), (cmd, r.stderr)
        assert "Traceback" not in r.stderr and r.stdout, cmd


def test_size_spec_and_flags_together_is_a_usage_error(tmp_path: Path) -> None:
    r = invoke("size", str(spec_file(tmp_path)), "--model", "meta-llama/Llama-3.1-8B-Instruct")
    assert r.exit_code == 2 and "not both" in r.stderr


def test_size_unknown_model_or_gpu_exits_1_with_a_hint() -> None:
    r = invoke("size", "--model", "meta-llama/Llama-3.1-8B-Instructt", "--gpu", "h100-sxm")
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


def test_piped_capacity_table_keeps_the_bound_whole() -> None:
    """Regression: on a pipe (110 columns) the capacity curve was wider than the page and rich cut
    its `bound` column to "memory_band…", the word a reader greps for."""
    import subprocess
    import sys
    from pathlib import Path

    exe = str(Path(sys.executable).with_name("llmdeploy"))
    out = subprocess.run([exe, "size", "-m", "meta-llama/Llama-3.1-8B-Instruct", "--gpu", "l4",
                          "--concurrency", "1,8,32,128"], capture_output=True, text=True, check=True,
                         env={"PATH": "/usr/bin:/bin", "NO_COLOR": "1"}).stdout
    assert "memory_bandwidth" in out and "memory_band…" not in out
    # Text lines are never wrapped on a pipe (grep finds a message whole); tables fit the page.
    assert max(len(line) for line in out.splitlines() if line[:1] in "┏┃┡│└┌") <= 110
