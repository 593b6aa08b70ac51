"""TensorRT-LLM (``trtllm-serve``): its engine table, its rules (LD140-LD142 and the shared
LD120/LD121/LD123), its memory model's fraction, and what the InferenceService target renders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from llmdeploy.cli import app
from llmdeploy.engines import check_flag, resolve_engine

SPEC = """\
apiVersion: llmdeploy.dev/v1alpha1
kind: LLMService
metadata: {{name: trt, namespace: ml}}
model:
  id: {model}
  storageUri: hf://{model}
  credentials: {{secretRef: hf-token}}
{quant}runtime:
  engine: tensorrt-llm
  image: nvcr.io/nvidia/tensorrt-llm/release:{version}
  maxModelLen: 8192
{runtime}resources: {{gpu: {{type: {gpu}}}}}
{scaling}
{extra}"""


def _spec(tmp_path: Path, *, model: str = "meta-llama/Llama-3.1-8B-Instruct", version: str = "1.1.0",
          gpu: str = "h100-sxm", runtime: str = "", quant: str = "", extra: str = "",
          metric: str = "ttftP95", target: str = "1.5") -> Path:
    p = tmp_path / "trt.llmdeploy.yaml"
    scaling = (f"scaling: {{autoscaler: keda, metric: {metric}, target: {target}}}" if metric
               else "scaling: {autoscaler: none}")
    p.write_text(SPEC.format(model=model, version=version, gpu=gpu, runtime=runtime, quant=quant, extra=extra,
                             scaling=scaling))
    return p


def _validate(path: Path) -> tuple[int, str]:
    r = CliRunner().invoke(app, ["validate", str(path)], catch_exceptions=False)
    return r.exit_code, r.stdout + r.stderr


def _render(path: Path) -> list[dict]:
    r = CliRunner().invoke(app, ["render", str(path)], catch_exceptions=False)
    assert r.exit_code == 0, r.stderr
    return [d for d in yaml.safe_load_all(r.stdout) if d]


# --------------------------------------------------------------------------- the table


def test_image_tag_pins_the_release_and_the_metric_names() -> None:
    old = resolve_engine("tensorrt-llm", "nvcr.io/nvidia/tensorrt-llm/release:1.0.0", None)
    v11 = resolve_engine("tensorrt-llm", "nvcr.io/nvidia/tensorrt-llm/release:1.1.0", None)
    v12 = resolve_engine("tensorrt-llm", "nvcr.io/nvidia/tensorrt-llm/release:1.2.0", None)
    assert (old.version, v11.version, v12.version) == ("1.0.0", "1.1.0", "1.2.0") and not v11.assumed
    assert not old.has_metric("time_to_first_token")
    assert v11.metric("time_to_first_token") == "time_to_first_token_seconds"
    assert v12.metric("time_to_first_token") == "trtllm_time_to_first_token_seconds"
    # The queue, KV-cache and token series came after the 1.2 branch (trtllm#11243, #12545: 1.3.0).
    assert not v11.has_metric("num_requests_waiting") and not v12.has_metric("num_requests_waiting")
    assert not v12.has_metric("kv_cache_usage") and not v12.has_metric("prompt_tokens")
    v121 = resolve_engine("tensorrt-llm", None, "1.2.1")
    assert not v121.has_metric("num_requests_waiting") and not v121.features.queue_depth_metric
    assert v11.metrics_path == "/prometheus/metrics" and v11.health_path == "/health"
    assert v11.default_image == "nvcr.io/nvidia/tensorrt-llm/release:1.1.0"
    assert v11.metric_labels == ()  # model_name/engine_type say "undefined": scoped by pod


def test_flags_by_release_and_spelling() -> None:
    v10 = resolve_engine("tensorrt-llm", None, "1.0.0")
    v11 = resolve_engine("tensorrt-llm", None, "1.1.0")
    assert check_flag(v11, "--max_batch_size=8") is None
    assert check_flag(v11, "--tensor_parallel_size") is None  # click alias of --tp_size
    v12 = resolve_engine("tensorrt-llm", None, "1.2.0")
    # Absent from trtllm-serve at main 1.1.0rc6 (Ataraksia/TensorRT-LLM@a451bf9): 1.2.0 at the earliest.
    for flag in ("--cp_size", "--tool_parser", "--enable_chunked_prefill", "--otlp_traces_endpoint"):
        p = check_flag(v11, flag)
        assert p is not None and "added in TensorRT-LLM 1.2.0" in p.message, flag
        assert check_flag(v12, flag) is None, flag
    p = check_flag(v10, "--cp_size")
    assert p is not None and "added in TensorRT-LLM 1.2.0" in p.message
    # Present at 1.1.0rc6 main, absent from the 0.20.0 serve command.
    v020 = resolve_engine("tensorrt-llm", None, "0.20.0")
    assert check_flag(v020, "--server_role") is not None and check_flag(v10, "--server_role") is None
    dashed = check_flag(v11, "--max-batch-size")
    assert dashed is not None and dashed.severity == "error" and "underscores" in dashed.hint
    unknown = check_flag(v11, "--swap-space")
    assert unknown is not None and "trtllm-serve --help" in unknown.hint
    vllm_only = check_flag(v11, "--gpu-memory-utilization")
    assert vllm_only is not None and "--kv_cache_free_gpu_memory_fraction" in vllm_only.hint


def test_memory_model_uses_the_fraction_of_what_is_left() -> None:
    mm = resolve_engine("tensorrt-llm", None, "1.1.0").memory_model
    assert mm.fraction_of_free and mm.generation == "tensorrt-llm" and mm.block_size == 32
    assert not resolve_engine("vllm", None, "0.11.0").memory_model.fraction_of_free


def test_size_engine_tensorrt_llm(tmp_path: Path) -> None:
    r = CliRunner().invoke(app, ["size", "-m", "meta-llama/Llama-3.1-8B-Instruct", "-g", "h100-sxm",
                                 "--engine", "tensorrt-llm", "--format", "json"], catch_exceptions=False)
    assert r.exit_code == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["engine"] == "tensorrt-llm" and out["fits"]
    g = out["per_gpu"]
    # KV = (total - weights - activation - non-torch) x 0.9
    expected = (g["total_gib"] - g["weights_gib"] - g["activation_gib"] - g["non_torch_gib"]) * 0.9
    assert g["kv_cache_gib"] == pytest.approx(expected, abs=0.01)
    assert out["max_num_batched_tokens"] == 8192 and out["max_num_seqs"] == 2048


# --------------------------------------------------------------------------- rules


def test_the_example_spec_is_valid(tmp_path: Path) -> None:
    code, out = _validate(_spec(tmp_path))
    assert code == 0, out


def test_queue_scaling_is_refused_on_every_tracked_release(tmp_path: Path) -> None:
    """No tracked release exports a queue gauge (trtllm#12545 is 1.3.0): scale on TTFT instead."""
    for version in ("1.1.0", "1.2.0", "1.2.1"):
        code, out = _validate(_spec(tmp_path, version=version, metric="queueDepth", target="5"))
        assert code == 1 and f"LD308 TensorRT-LLM {version} exports no metric for queueDepth" in out
    code, out = _validate(_spec(tmp_path, version="1.2.0", metric="ttftP95", target="2"))
    assert code == 0, out


def test_ld140_no_prometheus_endpoint_before_1_1(tmp_path: Path) -> None:
    code, out = _validate(_spec(tmp_path, version="1.0.0"))
    assert code == 1 and "LD140" in out and "1.1.0 or later" in out
    # LD140 says it once: no LD501 note per metric the missing endpoint would have had.
    assert "LD501" not in out, out
    code, out = _validate(_spec(tmp_path, version="1.0.0", metric="", extra="monitoring: {enabled: false}\n"))
    assert code == 0, out


def test_ld141_fp8_and_gpu_vendor(tmp_path: Path) -> None:
    fp8 = "neuralmagic/Meta-Llama-3.1-8B-Instruct-FP8"
    code, out = _validate(_spec(tmp_path, model=fp8, gpu="a100-80gb"))
    assert code == 1 and "LD141" in out and "8.9" in out
    code, out = _validate(_spec(tmp_path, model=fp8, gpu="h100-sxm"))
    assert "LD141" not in out
    code, out = _validate(_spec(tmp_path, gpu="mi300x"))
    assert code == 1 and "LD141" in out and "NVIDIA GPUs only" in out


def test_ld142_no_load_time_quantization_and_e5m2(tmp_path: Path) -> None:
    code, out = _validate(_spec(tmp_path, quant="  quantization: fp8\n"))
    assert code == 1 and "LD142" in out and "pre-quantized" in out
    code, out = _validate(_spec(tmp_path, runtime="  kvCacheDtype: fp8_e5m2\n"))
    assert code == 1 and "LD142" in out and "E4M3" in out


def test_ld121_ld120_ld123_know_trtllm_serve(tmp_path: Path) -> None:
    code, out = _validate(_spec(tmp_path, runtime='  extraArgs: ["--tp_size=2", "--max-num-seqs=8"]\n'))
    assert code == 1
    assert "LD121 --tp_size is derived from resources.parallelism.tensor" in out
    assert "LD120 --max-num-seqs is not a TensorRT-LLM flag" in out
    loras = "  loras: [{name: sql, storageUri: 'hf://org/sql-lora', rank: 16}]\n"
    code, out = _validate(_spec(tmp_path, quant=loras))
    assert code == 1 and "LD123" in out and "lora" in out


def test_llm_inference_service_target_is_refused(tmp_path: Path) -> None:
    code, out = _validate(_spec(tmp_path, extra="deployment: {target: llmInferenceService}\n"))
    assert code == 1 and "LD701" in out and "tensorrt-llm cannot run there" in out


# --------------------------------------------------------------------------- rendering


def test_runtime_and_args(tmp_path: Path) -> None:
    docs = _render(_spec(tmp_path))
    (rt,) = [d for d in docs if d["kind"] == "ClusterServingRuntime"]
    c = rt["spec"]["containers"][0]
    assert c["command"] == ["trtllm-serve"]
    assert c["args"] == ["/mnt/models", "--host=0.0.0.0", "--port=8080", "--backend=pytorch"]
    assert rt["spec"]["annotations"]["prometheus.kserve.io/path"] == "/prometheus/metrics"
    (isvc,) = [d for d in docs if d["kind"] == "InferenceService"]
    model = isvc["spec"]["predictor"]["model"]
    assert model["args"][:4] == ["--max_seq_len=8192", "--max_batch_size=2048",
                                 "--kv_cache_free_gpu_memory_fraction=0.9", "--tp_size=1"]
    assert model["readinessProbe"]["httpGet"]["path"] == "/health"
    (pm,) = [d for d in docs if d["kind"] == "PodMonitor"]
    assert pm["spec"]["podMetricsEndpoints"][0]["path"] == "/prometheus/metrics"
    # trtllm-serve mounts /prometheus/metrics only with return_perf_metrics (default false):
    # the PodMonitor's path exists only because the options file turns it on.
    (cm,) = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "trt-trtllm-options"]
    assert yaml.safe_load(cm["data"]["extra-llm-api-options.yaml"]) == {"return_perf_metrics": True}
    assert "--extra_llm_api_options=/etc/llmdeploy/trtllm/extra-llm-api-options.yaml" in model["args"]


def test_no_options_file_without_monitoring_or_endpoint(tmp_path: Path) -> None:
    quiet = _spec(tmp_path, metric="", extra="monitoring: {enabled: false}\n")
    docs = _render(quiet)
    assert not any(d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-trtllm-options") for d in docs)
    (isvc,) = [d for d in docs if d["kind"] == "InferenceService"]
    assert not any(a.startswith("--extra_llm_api_options") for a in isvc["spec"]["predictor"]["model"]["args"])


def test_chunked_prefill_goes_through_the_options_file(tmp_path: Path) -> None:
    """--enable_chunked_prefill is absent before 1.2; the LLM API argument works in every release."""
    docs = _render(_spec(tmp_path, version="1.0.0", metric="", runtime="  chunkedPrefill: true\n",
                         extra="monitoring: {enabled: false}\n"))
    (cm,) = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "trt-trtllm-options"]
    assert yaml.safe_load(cm["data"]["extra-llm-api-options.yaml"]) == {"enable_chunked_prefill": True}
    (isvc,) = [d for d in docs if d["kind"] == "InferenceService"]
    assert "--enable_chunked_prefill" not in isvc["spec"]["predictor"]["model"]["args"]


def test_extra_options_file_only_when_needed(tmp_path: Path) -> None:
    docs = _render(_spec(tmp_path, version="1.2.0", runtime="  kvCacheDtype: fp8\n  prefixCaching: false\n"))
    (cm,) = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "trt-trtllm-options"]
    options = yaml.safe_load(cm["data"]["extra-llm-api-options.yaml"])
    assert options == {"kv_cache_config": {"dtype": "fp8", "enable_block_reuse": False}, "return_perf_metrics": True}
    (isvc,) = [d for d in docs if d["kind"] == "InferenceService"]
    pred = isvc["spec"]["predictor"]
    assert "--extra_llm_api_options=/etc/llmdeploy/trtllm/extra-llm-api-options.yaml" in pred["model"]["args"]
    assert {"name": "trtllm-options", "mountPath": "/etc/llmdeploy/trtllm", "readOnly": True} in \
        pred["model"]["volumeMounts"]
    assert {"name": "trtllm-options", "configMap": {"name": "trt-trtllm-options"}} in pred["volumes"]


def test_drain_reads_the_queue_where_the_release_has_one(tmp_path: Path) -> None:
    def prestop(version: str) -> str:
        docs = _render(_spec(tmp_path, version=version))
        (isvc,) = [d for d in docs if d["kind"] == "InferenceService"]
        return isvc["spec"]["predictor"]["model"]["lifecycle"]["preStop"]["exec"]["command"][2]

    # No tracked release has queue gauges: the preStop only waits for endpoints to stop routing;
    # the SIGTERM after it reaches uvicorn, which trtllm-serve configures without
    # timeout_graceful_shutdown (trtllm@00057725:tensorrt_llm/serve/openai_server.py __call__), so
    # open requests finish before the app's lifespan shuts the executor down.
    for version in ("1.1.0", "1.2.0", "1.2.1"):
        old = prestop(version)
        assert "urlopen" not in old and "time.sleep(10)" in old


def test_every_unsettled_fact_says_where_it_comes_from() -> None:
    """A flag or metric whose first release is not read at a tag names its evidence (note/source)."""
    import llmdeploy.engines as engines_pkg

    table = yaml.safe_load((Path(engines_pkg.__file__).parent / "tensorrt-llm.yaml").read_text(encoding="utf-8"))
    for flag, info in table["flags"].items():
        if info.get("verified") in ("partial", False) or info.get("added"):
            assert info.get("note") or info.get("source"), flag
            assert info.get("verified") is not False, f"{flag}: re-verify or bound it"
    for logical, info in table["metrics"]["logical"].items():
        if info.get("verified") == "partial":
            assert info.get("source") or info.get("note"), logical
