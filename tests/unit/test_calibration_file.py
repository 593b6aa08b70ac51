"""#14 item 6: per-cluster corrections from your own logs (``calibrate --write``, ``--calibration``,
``resources.calibration``), and the file's validation with located errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llmdeploy import api
from llmdeploy.catalog import get_gpu, get_model
from llmdeploy.cli import app
from llmdeploy.engines.startup_log import parse_startup_log
from llmdeploy.sizing.calibrate import calibrate, compare_log
from llmdeploy.sizing.calibration import (
    Calibration,
    CalibrationError,
    read_calibration,
    write_calibration,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "vllm_logs"
SWEEP = DATA / "sweeps" / "llm_d_planner_v0190.csv"


def _row(name: str) -> dict[str, str]:
    with SWEEP.open(encoding="utf-8", newline="") as f:
        return next(r for r in csv.DictReader(f) if r["log_file"] == name)


def sweep_log(name: str) -> str:
    """The lines `llmdeploy calibrate` reads, in vLLM 0.19.0's format (as in tests/data/vllm_logs/raw),
    with the figures the llm-d-planner sweep parsed from that run's log (sweeps/llm_d_planner_v0190.csv;
    the raw files of these runs are not committed, so the lines are re-assembled from those figures)."""
    r = _row(name)
    return (
        f"(EngineCore pid=1) INFO 04-22 00:00:00 [v1/engine/core.py:105] Initializing a V1 LLM engine (v0.19.0) "
        f"with config: model='{r['model']}', dtype={r['dtype']}, max_seq_len={r['max_model_len']}, "
        f"tensor_parallel_size={r['tp']}, pipeline_parallel_size={r['pp']}, quantization=None, "
        f"enforce_eager=False, kv_cache_dtype={r['kv_cache_dtype']}, \n"
        "(APIServer pid=1) DEBUG 04-22 00:00:00 [engine/arg_utils.py:2242] Defaulting max_num_seqs to 1024 for "
        "OPENAI_API_SERVER usage context.\n"
        f"(APIServer pid=1) INFO 04-22 00:00:00 [entrypoints/utils.py:233] non-default args: "
        f"{{'gpu_memory_utilization': {r['gpu_memory_utilization']}}}\n"
        "(EngineCore pid=1) DEBUG 04-22 00:00:00 [v1/worker/gpu_worker.py:284] worker init memory snapshot: "
        "torch_peak=0.0GiB, free_memory=78.68GiB, total_memory=79.19GiB, cuda_memory=0.51GiB\n"
        f"(EngineCore pid=1) INFO 04-22 00:00:00 [v1/worker/gpu_model_runner.py:4820] Model loading took "
        f"{r['weights_memory_gib']} GiB memory and 10.0 seconds\n"
        f"(EngineCore pid=1) DEBUG 04-22 00:00:00 [v1/worker/gpu_worker.py:435] Memory profiling takes 20.00 "
        f"seconds. Total non KV cache memory: 0.00GiB; torch peak memory increase: {r['activation_memory_gib']}GiB; "
        f"non-torch forward increase memory: {r['non_torch_forward_gib']}GiB; weights memory: "
        f"{r['weights_memory_gib']}GiB.\n"
        f"(EngineCore pid=1) INFO 04-22 00:00:00 [v1/worker/gpu_worker.py:436] Available KV cache memory: "
        f"{r['kv_cache_memory_gib']} GiB\n"
        f"(EngineCore pid=1) INFO 04-22 00:00:00 [v1/core/kv_cache_utils.py:1319] GPU KV cache size: "
        f"{int(r['kv_cache_tokens']):,} tokens\n"
        f"(EngineCore pid=1) INFO 04-22 00:00:00 [v1/core/kv_cache_utils.py:1324] Maximum concurrency for "
        f"{int(r['max_model_len']):,} tokens per request: {r['max_concurrency']}x\n"
    )


QWEN72_TP2 = "qwen-qwen2-5-72b-instruc--h100-80gb--tp2pp1dp1--8192.log"
KIMI_DEV_TP2 = "moonshotai-kimi-dev-72b--h100-80gb--tp2pp1dp1--8192.log"  # a Qwen2.5-72B fine-tune
GEMMA3 = {size: f"google-gemma-3-{size}-it--h100-80gb--tp1pp1dp1--8192.log" for size in ("4b", "12b", "27b")}


def _kv_error(name: str, model: str, calibration: Calibration | None = None) -> float:
    log = parse_startup_log(sweep_log(name), path=name)
    c = compare_log(log, gpu=get_gpu("h100-sxm"), model=get_model(model), calibration=calibration)
    check = c.check("kv_cache_tokens")
    assert check is not None
    return abs(check.error)


def test_the_reassembled_lines_parse_like_a_real_log() -> None:
    log = parse_startup_log(sweep_log(QWEN72_TP2), path="x")
    assert (log.version, log.tensor_parallel, log.gpu_memory_utilization, log.cuda_total_gib) == ("0.19.0", 2, 0.95, 79.19)
    assert (log.weights_gib, log.activation_gib, log.non_torch_gib, log.kv_cache_tokens) == (67.8, 2.29, 2.09, 19920)


def test_a_calibration_from_held_in_logs_improves_other_logs_of_the_same_setup(tmp_path: Path) -> None:
    """Written from the Qwen2.5-72B TP2 start on this H100 setup (vLLM 0.19.0), the correction
    brings the Kimi-Dev-72B TP2 start (not used to write it) closer; likewise Gemma-3-4B/12B for 27B."""
    qwen = parse_startup_log(sweep_log(QWEN72_TP2), path=QWEN72_TP2)
    entries = calibrate([qwen], gpu=get_gpu("h100-sxm"), model=get_model("Qwen/Qwen2.5-72B-Instruct"))
    cal_file = tmp_path / "h100.yaml"
    cal_file.write_text(write_calibration(entries))
    cal = read_calibration(cal_file)
    assert cal.entries == tuple(e.__class__(**{**e.__dict__, "source": str(cal_file)}) for e in entries)
    before = _kv_error(KIMI_DEV_TP2, "Qwen/Qwen2.5-72B-Instruct")
    after = _kv_error(KIMI_DEV_TP2, "Qwen/Qwen2.5-72B-Instruct", cal)
    assert before > 0.025 and after < before / 3, (before, after)

    held_in = [parse_startup_log(sweep_log(GEMMA3[s]), path=GEMMA3[s]) for s in ("4b", "12b")]
    g_entries = calibrate(held_in, gpu=get_gpu("h100-sxm"))  # each log sized as its own model
    general = Calibration("gemma", tuple(e for e in g_entries if e.model is None))
    assert len(general.entries) == 1 and general.entries[0].logs == 2
    # 27B through its own architecture, with the general H100 × 0.19.0 × TP1 entry
    before = _kv_error(GEMMA3["27b"], "google/gemma-3-27b-it")
    after = _kv_error(GEMMA3["27b"], "google/gemma-3-27b-it", general)
    assert after < before, (before, after)


def test_calibrate_write_then_size_and_render_apply_it(tmp_path: Path) -> None:
    log = tmp_path / "qwen72.log"
    log.write_text(sweep_log(QWEN72_TP2))
    cfile = tmp_path / "cal.yaml"
    r = CliRunner().invoke(app, ["calibrate", str(log), "--gpu", "h100-sxm", "--write", str(cfile)],
                           catch_exceptions=False)
    assert r.exit_code == 0, r.stderr
    assert "wrote" in r.stderr and cfile.read_text().startswith("apiVersion: llmdeploy.dev/v1alpha1\nkind: SizingCalibration")
    first = cfile.read_bytes()
    CliRunner().invoke(app, ["calibrate", str(log), "--gpu", "h100-sxm", "--write", str(cfile)])
    assert cfile.read_bytes() == first  # deterministic
    size = ["size", "--model", "Qwen/Qwen2.5-72B-Instruct", "--gpu", "h100-sxm", "--tensor-parallel", "2",
            "--gpu-memory-utilization", "0.95", "--engine-version", "0.19.0", "--max-num-seqs", "1024",
            "--format", "json"]
    plain = json.loads(CliRunner().invoke(app, size).stdout)
    calibrated = json.loads(CliRunner().invoke(app, [*size, "--calibration", str(cfile)]).stdout)
    assert plain["calibration"] is None and plain["kv_cache_tokens_band"]["source"] == "measured"
    assert calibrated["calibration"]["logs"] == 1 and calibrated["kv_cache_tokens_band"]["source"] == "calibration"
    assert abs(calibrated["kv_cache_tokens"] / 19920 - 1) < abs(plain["kv_cache_tokens"] / 19920 - 1)
    table = CliRunner().invoke(app, [*size[:-2], "--calibration", str(cfile)])
    assert "calibrated from 1 log" in table.stdout

    spec = tmp_path / "svc.llmdeploy.yaml"
    spec.write_text(SPEC.format(calibration="cal.yaml"))
    out = api.size(spec)
    (rep,) = out.reports
    assert rep is not None and rep.calibration is not None and rep.calibration.logs == 1
    rendered = CliRunner().invoke(app, ["render", str(spec), "--explain"])
    assert "sizing: calibrated from 1 log" in rendered.stderr, rendered.stderr


SPEC = """apiVersion: llmdeploy.dev/v1alpha1
kind: LLMService
metadata:
  name: qwen72
  namespace: inference
model:
  id: Qwen/Qwen2.5-72B-Instruct
  storageUri: hf://Qwen/Qwen2.5-72B-Instruct
runtime:
  image: vllm/vllm-openai:v0.19.0
  maxModelLen: 4096
  gpuMemoryUtilization: 0.95
  maxNumSeqs: 256
resources:
  gpu:
    type: h100-sxm
  parallelism:
    tensor: 2
  calibration: {calibration}
"""


def test_a_bad_calibration_in_a_spec_is_ld212_at_the_field(tmp_path: Path) -> None:
    spec = tmp_path / "svc.llmdeploy.yaml"
    spec.write_text(SPEC.format(calibration="missing.yaml"))
    (d,) = [d for d in api.validate(spec).diagnostics if d.rule == "LD212"]
    assert d.is_error and d.line == 19 and "cannot read calibration file" in d.message
    (tmp_path / "bad.yaml").write_text("apiVersion: llmdeploy.dev/v1alpha1\nkind: Other\nentries: []\n")
    spec.write_text(SPEC.format(calibration="bad.yaml"))
    (d,) = [d for d in api.validate(spec).diagnostics if d.rule == "LD212"]
    assert "bad.yaml:2:7: kind must be SizingCalibration" in d.message


GOOD = """apiVersion: llmdeploy.dev/v1alpha1
kind: SizingCalibration
entries:
  - gpu: h100-sxm
    engine: vllm
    engineVersion: "0.19.0"
    tensorParallel: 1
    logs: 3
    activationGiB: 0.05
    nonTorchGiB: 0.0
    kvTokensRatio: 0.99
    residualKvError: 0.004
"""


@pytest.mark.parametrize(("text", "where", "what"), [
    (GOOD.replace("apiVersion: llmdeploy.dev/v1alpha1", "apiVersion: v2"), "1:13", "apiVersion must be"),
    (GOOD.replace("kvTokensRatio: 0.99", "kvTokensRatio: 7"), "11:20", "kvTokensRatio must be within"),
    (GOOD.replace("    logs: 3\n", "    logs: 3\n    color: red\n"), "9:5", "unknown key 'color'"),
    (GOOD.replace("    logs: 3\n", ""), "4:5", "logs is missing"),
    (GOOD.replace("activationGiB: 0.05", "activationGiB: lots"), "9:20", "must be a number"),
    (GOOD.replace("activationGiB: 0.05", "activationGiB: 500"), "9:20", "beyond ±64 GiB"),
    (GOOD.replace("    logs: 3\n", "    logs: 3\n    weightsGiB: 1.0\n"), "9:17", "needs a model"),
    ("entries: [\n", "2:1", "not valid YAML"),
])
def test_calibration_file_errors_are_located(tmp_path: Path, text: str, where: str, what: str) -> None:
    f = tmp_path / "cal.yaml"
    f.write_text(text)
    with pytest.raises(CalibrationError) as info:
        read_calibration(f)
    assert info.value.message.startswith(f"{f}:{where}: "), info.value.message
    assert what in info.value.message


def test_the_most_specific_entry_wins(tmp_path: Path) -> None:
    f = tmp_path / "cal.yaml"
    f.write_text(GOOD + GOOD.split("entries:\n")[1].replace("    logs: 3", '    model: "meta-llama/Llama-3.1-8B-Instruct"\n    logs: 1'))
    cal = read_calibration(f)
    assert cal.match("h100-sxm", "vllm", "0.19.0", 1, "meta-llama/llama-3.1-8b-instruct").model is not None
    assert cal.match("h100-sxm", "vllm", "0.19.0", 1, "Qwen/Qwen3-8B").model is None
    assert cal.match("h100-sxm", "vllm", "0.19.0", 2, "Qwen/Qwen3-8B") is None
    assert cal.match("a100-80gb", "vllm", "0.19.0", 1, "Qwen/Qwen3-8B") is None


def test_plan_and_render_take_the_flag(tmp_path: Path) -> None:
    cfile = tmp_path / "cal.yaml"
    cfile.write_text(GOOD.replace('engineVersion: "0.19.0"', 'engineVersion: "0.19.0"').replace(
        "kvTokensRatio: 0.99", "kvTokensRatio: 0.5"))
    plan = ["plan", "--model", "meta-llama/Llama-3.1-8B-Instruct", "--gpu", "h100-sxm", "--engine-version", "0.19.0",
            "--format", "json"]
    plain = json.loads(CliRunner().invoke(app, plan).stdout)["options"]
    halved = json.loads(CliRunner().invoke(app, [*plan, "--calibration", str(cfile)]).stdout)["options"]
    tp1 = [(p, h) for p, h in zip(plain, halved, strict=True) if p["tensor_parallel"] == 1]
    assert tp1 and all(h["kv_cache_tokens"] < 0.55 * p["kv_cache_tokens"] for p, h in tp1)
    # render: the flag replaces the spec's field; a broken file is an input error with its location
    spec = tmp_path / "svc.llmdeploy.yaml"
    spec.write_text(SPEC.format(calibration="missing.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: llmdeploy.dev/v1alpha1\nkind: SizingCalibration\nentries: 3\n")
    r = CliRunner().invoke(app, ["render", str(spec), "--calibration", str(bad)])
    assert r.exit_code == 1 and f"{bad}:3:10: entries must be a non-empty list" in r.stderr
