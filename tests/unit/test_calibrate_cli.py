"""``llmdeploy calibrate``: real vLLM start-up logs read and compared with the memory model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmdeploy import cli_calibrate
from llmdeploy.catalog import CatalogError, get_gpu
from llmdeploy.engines.startup_log import parse_startup_log, read_startup_log
from llmdeploy.sizing.calibrate import compare_log

RAW = Path(__file__).resolve().parents[1] / "data" / "vllm_logs" / "raw"
LLAMA = RAW / "meta-llama-llama-3-1-8b---h100-80gb--tp1pp1dp1--8192.excerpt.log"
GPT_OSS = RAW / "openai-gpt-oss-20b--h100-80gb--tp1pp1dp1--8192.FAILED.excerpt.log"


def test_the_parser_reads_a_v1_debug_log() -> None:
    log = read_startup_log(LLAMA)
    assert (log.version, log.generation, log.model) == ("0.19.0", "V1", "meta-llama/Llama-3.1-8B-Instruct")
    assert (log.dtype, log.max_model_len, log.tensor_parallel, log.kv_cache_dtype) == ("bfloat16", 8192, 1, "auto")
    assert log.gpu_memory_utilization == 0.95 and log.cuda_total_gib == 79.19 and log.max_num_seqs == 1024
    assert (log.weights_gib, log.activation_gib, log.non_torch_gib, log.kv_cache_gib) == (14.99, 1.89, 0.25, 58.11)
    assert log.kv_cache_tokens == 476_016 and log.max_concurrency == 58.11 and log.failure is None


def test_the_parser_sees_the_sampler_warmup_failure() -> None:
    log = read_startup_log(GPT_OSS)
    assert log.failure == "sampler-warmup-oom" and log.quantization == "mxfp4"
    assert log.kv_cache_tokens == 1_277_184


def test_v0_profile_lines() -> None:
    text = ("INFO 12-13 19:54:18 worker.py:243] total_gpu_memory (79.22GiB) x gpu_memory_utilization (0.90) = 71.29GiB\n"
            "INFO worker.py:243] model weights take 14.96GiB; non_torch_memory takes 1.79GiB; PyTorch activation peak "
            "memory takes 1.26GiB; the rest of the memory reserved for KV Cache is 53.29GiB.\n"
            "INFO executor_base.py:110] # CUDA blocks: 27284, # CPU blocks: 2048\n")
    log = parse_startup_log(text)
    assert (log.cuda_total_gib, log.gpu_memory_utilization, log.weights_gib) == (79.22, 0.90, 14.96)
    assert (log.non_torch_gib, log.activation_gib, log.kv_cache_gib) == (1.79, 1.26, 53.29)
    assert log.kv_cache_tokens == 27284 * 16


def test_compare_matches_the_log_and_flags_the_failed_start() -> None:
    ok = compare_log(read_startup_log(LLAMA), gpu=get_gpu("h100-sxm"))
    tokens = next(c for c in ok.checks if c.name == "kv_cache_tokens")
    assert abs(tokens.error) < 0.01 and ok.started and ok.predicted_start and ok.verdict == "ok"
    failed = compare_log(read_startup_log(GPT_OSS), gpu=get_gpu("h100-sxm"))
    assert not failed.started and failed.verdict in ("at risk", "ok") and "sampler-warmup-oom" in failed.reasons


def test_the_gpu_is_told_from_the_cuda_total_or_refused_with_the_choices() -> None:
    with pytest.raises(CatalogError) as info:
        compare_log(read_startup_log(LLAMA))
    assert "'h100-sxm'" in info.value.message and "--gpu" in (info.value.hint or "")


def test_cli_table_json_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_calibrate.run([LLAMA], "h100-sxm") == 0
    out = capsys.readouterr().out
    assert "kv_cache_tokens" in out and "476,016" in out and "verdict" in out
    assert cli_calibrate.run([LLAMA, GPT_OSS], "h100-sxm", fmt="json") == 0
    data = json.loads(capsys.readouterr().out)
    assert [d["started"] for d in data] == [True, False]
    unknown = tmp_path / "other.log"
    unknown.write_text("Initializing a V1 LLM engine (v0.19.0) with config: model='acme/unknown-7b', "
                       "total_memory=79.19GiB\n", encoding="utf-8")
    assert cli_calibrate.run([unknown], "h100-sxm") == 1
    assert "unknown model 'acme/unknown-7b'" in capsys.readouterr().err
    assert cli_calibrate.run([tmp_path / "missing.log"], "h100-sxm") == 1
    assert "cannot read" in capsys.readouterr().err
    assert cli_calibrate.run([LLAMA], "h100-sxm", fmt="yaml") == 2
