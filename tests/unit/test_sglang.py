"""SGLang as an engine: its table, its start-up defaults, its rendering and its rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmdeploy import api
from llmdeploy.catalog import get_gpu, get_model
from llmdeploy.engines import EngineVersionInfo, resolve_engine
from llmdeploy.engines.args import check_flag
from llmdeploy.sizing import SizingInput, size
from llmdeploy.sizing.memory_sglang import (
    cuda_graph_batch_sizes,
    max_running_requests,
    mem_fraction_static,
    sglang_defaults,
    speculative_reserve_mib,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "qwen3-8b-sglang.llmdeploy.yaml"
CRDS = Path("/work/shared/crds")


def sglang(version: str) -> EngineVersionInfo:
    return resolve_engine("sglang", None, version)


SPEC = """\
apiVersion: llmdeploy.dev/v1alpha1
kind: LLMService
metadata: {{name: svc, namespace: inference}}
model: {{id: Qwen/Qwen3-8B, storageUri: "hf://Qwen/Qwen3-8B"}}
runtime:
  engine: sglang
  image: lmsysorg/sglang:{version}
  maxModelLen: 8192
{runtime}resources:
  gpu: {{type: h100-sxm}}
{rest}"""


def spec(version: str = "v0.5.12", runtime: str = "", rest: str = "") -> str:
    return SPEC.format(version=version, runtime=runtime, rest=rest)


def codes(checked: api.Checked) -> set[str]:
    return {d.rule for d in checked.diagnostics}


# --------------------------------------------------------------------------- the table


def test_the_image_tag_pins_the_version_cuda_suffix_included() -> None:
    info = resolve_engine("sglang", "lmsysorg/sglang:v0.4.6.post5-cu124", None)
    assert (info.version, info.assumed) == ("0.4.6.post5", False)
    assert info.default_image == "lmsysorg/sglang:v0.4.6.post5"
    assert info.recommended_command == ("python3", "-m", "sglang.launch_server")
    assert info.health_path == "/health"
    newer = resolve_engine("sglang", "lmsysorg/sglang:v0.5.23", None)
    assert newer.assumed and newer.version == "0.5.12"


def test_flags_by_release_from_the_wheels() -> None:
    assert sglang("0.4.7").flag_available("--pp-size")
    p = check_flag(sglang("0.4.6"), "--pp-size=2")
    assert p is not None and p.kind == "not_yet_added" and "0.4.7" in p.message
    # --enable-ep-moe became a DeprecatedAction (the server exits) in 0.5.3.
    assert check_flag(sglang("0.4.9"), "--enable-ep-moe") is None
    p = check_flag(sglang("0.5.3"), "--enable-ep-moe")
    assert p is not None and p.kind == "removed" and "0.5.3" in p.message and "--ep-size" in (p.hint or "")
    p = check_flag(sglang("0.5.12"), "--gpu-memory-utilization=0.9")
    assert p is not None and p.kind == "never_existed" and "--mem-fraction-static" in (p.hint or "")
    p = check_flag(sglang("0.5.12"), "--zzzz-qqqq")
    assert p is not None and p.kind == "unknown" and "sglang.launch_server --help" in (p.hint or "")


def test_argparse_abbreviations_are_the_flag_they_abbreviate() -> None:
    info = sglang("0.5.12")
    assert info.flag("--tp").name == "--tensor-parallel-size"
    assert info.flag("--mem-frac").name == "--mem-fraction-static"
    assert check_flag(info, "--tp=4") is None
    assert info.flag("--disable") is None  # ambiguous prefix: argparse refuses it too


def test_metric_names_follow_the_release() -> None:
    assert sglang("0.4.3").metric("inter_token_latency") == "sglang:time_per_output_token_seconds"
    assert sglang("0.4.5").metric("inter_token_latency") == "sglang:inter_token_latency_seconds"
    assert not sglang("0.5.2").has_metric("request_queue_time")
    assert sglang("0.5.3").metric("request_queue_time") == "sglang:queue_time_seconds"
    assert sglang("0.5.12").metric("num_requests_waiting") == "sglang:num_queue_reqs"
    assert sglang("0.5.12").metric("kv_cache_usage") == "sglang:token_usage"
    assert "model_name" in sglang("0.4.0").metric_labels


# --------------------------------------------------------------------------- start-up defaults


@pytest.mark.parametrize(("version", "gpu_mib", "tp", "expected"), [
    # 0.4.0-0.4.5: by TP only. The QwQ-32B log (tests/data/sglang_logs, 0.4.3.post4, 4 x L4) shows 0.85.
    ("0.4.3", 23034, 4, 0.85),
    ("0.4.3", 81559, 1, 0.88),
    # 0.4.6: the table only up to 81920 MiB.
    ("0.4.6", 97887, 2, 0.88),
    # 0.4.7: > 180,000 MiB fixed at 0.79.
    ("0.4.7", 183359, 8, 0.79),
    # 0.4.8-0.5.2: reserved (2.8 + TP/10) GiB under 35 GiB. 32607 MiB (an RTX 5090) gives 0.909, the
    # value in the server_args of the Qwen3-4B-FP8 log in sgl-project/sglang#7227 (lmsysorg/sglang:blackwell, 2025-06).
    ("0.4.8", 32607, 1, 0.909),
    ("0.4.8", 81559, 1, 0.874),
    # 0.5.3-0.5.9: 512 + 1.5 x 8192 + 2 x 256 + 128 = 13,440 MiB on an H100 (above the 10 GiB floor).
    ("0.5.3", 81559, 1, 0.835),
    # 0.5.10+: plus 8 MiB per piecewise CUDA-graph size (58 sizes up to 8192 tokens).
    ("0.5.12", 81559, 1, 0.83),
])
def test_mem_fraction_static_rule_by_release(version: str, gpu_mib: int, tp: int, expected: float) -> None:
    assert sglang_defaults(sglang(version), gpu_mib, tp).mem_fraction_static == pytest.approx(expected, abs=5e-4)


def test_chunk_and_graph_defaults_follow_the_gpu() -> None:
    d = sglang_defaults(sglang("0.5.12"), 23034, 1)  # L4
    assert (d.chunked_prefill_size, d.cuda_graph_max_bs) == (2048, 24)
    d = sglang_defaults(sglang("0.5.12"), 81559, 8)
    assert (d.chunked_prefill_size, d.cuda_graph_max_bs) == (8192, 512)
    assert sglang_defaults(sglang("0.4.0"), 23034, 1).chunked_prefill_size == 2048


def test_cuda_graph_batch_sizes_match_a_logged_capture() -> None:
    # sgl-project/sglang#11716 (TP8, cuda_graph_max_bs 512): "Capture cuda graph bs [1, 2, 4, 8, 12, 16, 24, ... 512]"
    sizes = cuda_graph_batch_sizes(512)
    assert sizes[:8] == (1, 2, 4, 8, 12, 16, 24, 32)
    assert sizes[-4:] == (464, 480, 496, 512) and len(sizes) == 52


def test_request_pool_default() -> None:
    # A public Qwen3-14B TP4 start-up (no citable repository, so not a calibration case) printed
    # max_total_num_tokens=298447, context_len=40960, max_running_requests=3730.
    assert max_running_requests(298447, 40960) == 3730
    assert max_running_requests(46611, 131072) == 2048


def test_gpu_memory_utilization_keeps_sglangs_reserve() -> None:
    assert mem_fraction_static(0.835, 0.90) == 0.735
    assert mem_fraction_static(0.835, 1.0) == 0.835
    base = SizingInput(model=get_model("Qwen/Qwen3-8B"), gpu=get_gpu("h100-sxm"), engine=sglang("0.5.12"),
                       max_model_len=8192)
    own = size(base)
    assert own.gpu_memory_utilization == pytest.approx(0.83)
    tighter = size(SizingInput(**{**base.__dict__, "gpu_memory_utilization": 0.9}))
    assert tighter.gpu_memory_utilization == pytest.approx(0.73)
    assert tighter.kv_cache_tokens < own.kv_cache_tokens
    # Activations and CUDA graphs live outside SGLang's static share.
    assert own.per_gpu.activation_gib == 0 and own.per_gpu.cuda_graph_gib == 0


# --------------------------------------------------------------------------- validate and render


def test_removed_extra_arg_is_an_error_naming_the_release() -> None:
    checked = api.validate(text=spec(version="v0.5.4", runtime="  extraArgs: [--enable-ep-moe]\n"))
    errors = [d for d in checked.errors if "--enable-ep-moe" in d.message]
    assert errors and "0.5.3" in errors[0].message


def test_derived_flags_are_owned_by_the_spec() -> None:
    checked = api.validate(text=spec(runtime="  extraArgs: [--mem-fraction-static=0.9, --context-length=4096]\n"))
    assert "LD121" in codes(checked)


def test_lora_is_refused_where_llmdeploy_does_not_render_it() -> None:
    text = spec().replace('storageUri: "hf://Qwen/Qwen3-8B"}',
                          'storageUri: "hf://Qwen/Qwen3-8B", loras: [{name: a, storageUri: "hf://org/a", rank: 16}]}')
    checked = api.validate(text=text)
    assert any(d.rule == "LD123" and "lora" in d.message for d in checked.errors)


def test_llminferenceservice_target_is_refused() -> None:
    checked = api.validate(text=spec(rest="deployment: {target: llmInferenceService}\n"))
    assert any("vllm serve" in d.message for d in checked.errors)


def _container(rendered: api.Rendered, kind: str) -> dict:
    obj = next(o for o in rendered.objects if o["kind"] == kind)
    if kind == "ClusterServingRuntime":
        return obj["spec"]["containers"][0]
    return obj["spec"]["predictor"]["model"]


def test_render_args_probes_and_runtime() -> None:
    rendered = api.render(text=spec(runtime="  maxNumSeqs: 64\n  kvCacheDtype: fp8\n  prefixCaching: false\n"))
    assert rendered.ok, [d.message for d in rendered.diagnostics if d.is_error]
    runtime = _container(rendered, "ClusterServingRuntime")
    assert runtime["command"] == ["python3", "-m", "sglang.launch_server"]
    assert runtime["args"][0] == "--model-path=/mnt/models"
    model = _container(rendered, "InferenceService")
    args = model["args"]
    assert "--context-length=8192" in args and "--tp-size=1" in args and "--enable-metrics" in args
    assert "--max-running-requests=64" in args and "--kv-cache-dtype=fp8_e4m3" in args
    assert "--disable-radix-cache" in args
    assert any(a.startswith("--mem-fraction-static=0.7") for a in args)
    assert model["readinessProbe"]["httpGet"]["path"] == "/health"
    assert model["securityContext"]["runAsNonRoot"] is True


def test_speculative_decoding_keeps_sglangs_own_reserve_outside_the_rendered_fraction() -> None:
    """--speculative-algorithm in extraArgs: the sized fraction keeps what SGLang's own rule reserves."""
    def fraction(runtime: str, version: str = "v0.5.12") -> float:
        rendered = api.render(text=spec(version=version, runtime=runtime))
        assert rendered.ok, [d.message for d in rendered.diagnostics if d.is_error]
        args = _container(rendered, "InferenceService")["args"]
        return float(next(a for a in args if a.startswith("--mem-fraction-static=")).split("=")[1])

    h100 = get_gpu("h100-sxm").memory_mib
    plain = fraction("")
    eagle = fraction("  extraArgs: [--speculative-algorithm=EAGLE3, --speculative-draft-model-path=x/y]\n")
    assert plain - eagle == pytest.approx(4096 / h100, abs=0.002)  # 0.5.10+: 4 GiB for the EAGLE family
    spaced = fraction("  extraArgs: [--speculative-algorithm, STANDALONE, --speculative-draft-model-path=x/y]\n")
    assert plain - spaced == pytest.approx(6144 / h100, abs=0.002)
    assert fraction("  extraArgs: [--speculative-algorithm=NGRAM]\n") == plain  # no draft model
    old = fraction("", "v0.5.4") - fraction("  extraArgs: [--speculative-algorithm=EAGLE]\n", "v0.5.4")
    assert old == pytest.approx(2048 / h100, abs=0.002)  # 0.5.3-0.5.9: 2 GiB


@pytest.mark.parametrize(("rule", "algorithm", "mib"), [
    ("tp_table", "EAGLE", 0), ("reserved_by_gpu", "NGRAM", 2048), ("reserved_by_gpu", "EAGLE3", 2048),
    ("reserved_by_chunk", "EAGLE", 2048), ("reserved_by_chunk", "STANDALONE", 6144), ("reserved_by_chunk", "NGRAM", 0),
    ("reserved_by_chunk_piecewise", "EAGLE3", 4096), ("reserved_by_chunk_piecewise", True, 4096),
    ("reserved_by_chunk_piecewise", None, 0),
])
def test_speculative_reserve_by_release_rule(rule: str, algorithm: str | bool | None, mib: int) -> None:
    """server_args.py _handle_gpu_memory_settings: 0.4.8 +2 GiB; 0.5.3 STANDALONE 6 / NGRAM 0 / else 2; 0.5.10 else 4."""
    assert speculative_reserve_mib(rule, algorithm) == mib


def test_mla_piecewise_reserve_is_a_flat_1_5_gib_from_0_5_10() -> None:
    """0.5.10+: MLA models reserve 1.5 GiB for piecewise graphs instead of 8 MiB per captured size."""
    mla = sglang_defaults(sglang("0.5.12"), 81559, 8, mla=True)
    dense = sglang_defaults(sglang("0.5.12"), 81559, 8, mla=False)
    # H100 at TP8: chunk 8192 -> 58 captured token sizes x 8 MiB for a dense model, 1.5 GiB for MLA
    assert mla.reserved_mib - dense.reserved_mib == 1536 - 8 * 58


def test_auto_max_num_seqs_leaves_the_request_pool_to_sglang() -> None:
    rendered = api.render(text=spec())
    assert rendered.ok
    assert not any(a.startswith("--max-running-requests") for a in _container(rendered, "InferenceService")["args"])


def test_old_release_gets_e5m2_for_fp8() -> None:
    rendered = api.render(text=spec(version="v0.4.1", runtime="  kvCacheDtype: fp8\n"))
    assert rendered.ok
    assert "--kv-cache-dtype=fp8_e5m2" in _container(rendered, "InferenceService")["args"]


@pytest.mark.skipif(not CRDS.is_dir(), reason="the upstream CRDs are not on this machine")
def test_example_passes_the_strict_crd_check_and_the_runtime_rules() -> None:
    rendered = api.render(EXAMPLE, crds=[CRDS])
    assert rendered.ok, [d.message for d in rendered.diagnostics if d.is_error]
    kinds = {o["kind"] for o in rendered.objects}
    assert {"ClusterServingRuntime", "InferenceService", "PodMonitor", "ScaledObject", "PrometheusRule"} <= kinds
    scaled = next(o for o in rendered.objects if o["kind"] == "ScaledObject")
    assert "sglang:num_queue_reqs" in scaled["spec"]["triggers"][0]["metadata"]["query"]


# --------------------------------------------------------------------------- calibrate


def _case_log(name: str) -> str:
    from ruamel.yaml import YAML

    path = Path(__file__).resolve().parents[1] / "data" / "sglang_logs" / f"{name}.yaml"
    return YAML(typ="safe", pure=True).load(path.read_text(encoding="utf-8"))["log"]


def test_sglang_start_up_log_is_parsed() -> None:
    from llmdeploy.engines.startup_log_sglang import is_sglang_log, parse_sglang_log

    text = _case_log("v043post4_qwq_32b_4xl4_tp4")
    assert is_sglang_log(text) and not is_sglang_log("INFO 05-01 GPU KV cache size: 476,016 tokens")
    log = parse_sglang_log(text, "qwq.log")
    assert (log.model, log.tensor_parallel, log.mem_fraction_static) == ("/home/model/Qwen/QwQ-32B", 4, 0.85)
    assert (log.avail_after_weights_gib, log.weights_gib, log.kv_cache_tokens) == (6.09, 15.54, 46611)
    assert log.failure is None and log.version is None
    assert parse_sglang_log(text + "\nsglang==0.4.3.post4\n").version == "0.4.3.post4"
    failed = parse_sglang_log("server_args=ServerArgs(model_path='x', tp_size=1)\n"
                              "RuntimeError: Not enough memory. Please try to increase --mem-fraction-static.")
    assert failed.failure == "not-enough-memory"


def test_sglang_log_compared_with_the_model() -> None:
    from llmdeploy.engines.startup_log_sglang import parse_sglang_log
    from llmdeploy.sizing.calibrate_sglang import compare_sglang_log

    log = parse_sglang_log(_case_log("v043post4_qwq_32b_4xl4_tp4") + "\nsglang==0.4.3.post4\n", "qwq.log")
    c = compare_sglang_log(log, gpu=get_gpu("l4"), model=get_model("Qwen/Qwen2.5-32B-Instruct"))
    checks = {x.name: x for x in c.checks}
    assert c.engine == "sglang" and c.version == "0.4.3.post4" and c.verdict == "ok"
    assert abs(checks["kv_tokens_from_log"].error) < 0.001  # the mechanism, from the log's own memory lines
    # the catalog prediction: +11.9 % and weights -1.8 % before the allocator rounding and the FP32 rotary
    # cache were counted (memory_sglang.loader_extra_bytes)
    assert checks["kv_cache_tokens"].error == pytest.approx(0.039, abs=0.002)
    assert checks["weights_gib"].error == pytest.approx(-0.003, abs=0.002)
    assert c.to_json()["sglang_version"] == "0.4.3.post4"


def test_calibrate_cli_routes_sglang_logs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from llmdeploy.cli_calibrate import run

    log = tmp_path / "sglang.log"
    log.write_text(_case_log("v043post4_qwq_32b_4xl4_tp4"), encoding="utf-8")
    assert run([log]) == 1
    assert "SGLang logs do not name the GPU" in capsys.readouterr().err
    assert run([log], gpu="l4") == 1  # QwQ-32B is not in the catalog
    assert "--model-config" in capsys.readouterr().err
