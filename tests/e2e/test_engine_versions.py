"""The pinned engine version drives sizing, flags and metric names (issue: engine version).

The same spec pinned to an old and a new vLLM release must render the differences the
engine table records: metric names in KEDA triggers, rules and the dashboard; flags the
release has (``--shutdown-timeout``) or lost (``--swap-space``); and the memory profile
(CUDA graphs inside the KV budget from 0.21.0).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from llmdeploy.cli import app

SPEC = """\
apiVersion: llmdeploy.dev/v1alpha1
kind: LLMService
metadata: {{name: llama, namespace: ml}}
model:
  id: meta-llama/Llama-3.1-8B-Instruct
  storageUri: hf://meta-llama/Llama-3.1-8B-Instruct
  credentials: {{secretRef: hf-token}}
runtime:
  image: vllm/vllm-openai:{tag}
  maxModelLen: 8192
  gpuMemoryUtilization: 0.9
  extraArgs: {extra}
resources:
  gpu: {{type: h100-sxm}}
scaling: {{autoscaler: keda, metric: kvCacheUsage, target: 0.8}}
"""


def _write(tmp_path: Path, tag: str, extra: str = "[]") -> Path:
    p = tmp_path / f"svc-{tag}.llmdeploy.yaml"
    p.write_text(SPEC.format(tag=tag, extra=extra), encoding="utf-8")
    return p


def _render(path: Path) -> tuple[int, str, str]:
    r = CliRunner().invoke(app, ["render", str(path)], catch_exceptions=False)
    return r.exit_code, r.stdout, r.stderr


def _size(path: Path) -> dict:
    import json

    r = CliRunner().invoke(app, ["size", str(path), "--format", "json"], catch_exceptions=False)
    assert r.exit_code == 0, r.stderr
    return json.loads(r.stdout)


@pytest.fixture
def old_and_new(tmp_path: Path) -> tuple[str, str]:
    old = _render(_write(tmp_path, "v0.8.5"))
    new = _render(_write(tmp_path, "v0.21.0"))
    assert old[0] == 0, old[2]
    assert new[0] == 0, new[2]
    return old[1], new[1]


def test_metric_names_follow_the_version(old_and_new: tuple[str, str]) -> None:
    old, new = old_and_new
    # KV-cache usage: vllm:gpu_cache_usage_perc before 0.9.2, vllm:kv_cache_usage_perc after.
    assert "vllm:gpu_cache_usage_perc" in old and "vllm:kv_cache_usage_perc" not in old
    assert "vllm:kv_cache_usage_perc" in new and "vllm:gpu_cache_usage_perc" not in new
    # Inter-token latency: time_per_output_token before 0.10.2, inter_token_latency after.
    assert "vllm:time_per_output_token_seconds" in old and "vllm:inter_token_latency_seconds" not in old
    assert "vllm:inter_token_latency_seconds" in new and "vllm:time_per_output_token_seconds" not in new
    # The KEDA trigger itself scales on the version's name.
    so_old = next(d for d in yaml.safe_load_all(old) if d and d["kind"] == "ScaledObject")
    so_new = next(d for d in yaml.safe_load_all(new) if d and d["kind"] == "ScaledObject")
    q_old = " ".join(t["metadata"]["query"] for t in so_old["spec"]["triggers"])
    q_new = " ".join(t["metadata"]["query"] for t in so_new["spec"]["triggers"])
    assert "vllm:gpu_cache_usage_perc" in q_old
    assert "vllm:kv_cache_usage_perc" in q_new


def test_flags_follow_the_version(old_and_new: tuple[str, str], tmp_path: Path) -> None:
    old, new = old_and_new

    def args(stream: str) -> list[str]:
        isvc = next(d for d in yaml.safe_load_all(stream) if d and d["kind"] == "InferenceService")
        return isvc["spec"]["predictor"]["model"]["args"]

    # --shutdown-timeout (graceful drain on SIGTERM) exists from 0.18.0 only.
    assert not any(a.startswith("--shutdown-timeout") for a in args(old))
    assert any(a.startswith("--shutdown-timeout=") for a in args(new))
    # The runtime carries the version in its name: old and new services never share one.
    assert "llmdeploy-vllm-0-8-5" in old and "llmdeploy-vllm-0-21-0" in new
    # --swap-space: accepted (a no-op warning at most) on 0.8.5, an error naming 0.18.0 on 0.21.0.
    r_old = CliRunner().invoke(app, ["validate", str(_write(tmp_path, "v0.8.5", '["--swap-space=4"]'))])
    r_new = CliRunner().invoke(app, ["validate", str(_write(tmp_path, "v0.21.0", '["--swap-space=4"]'))])
    assert r_old.exit_code == 0, r_old.stdout
    assert r_new.exit_code == 1
    assert "LD120" in r_new.stdout and "0.18.0" in r_new.stdout


def test_memory_profile_follows_the_version(tmp_path: Path) -> None:
    old = _size(_write(tmp_path, "v0.19.0"))
    new = _size(_write(tmp_path, "v0.21.0"))
    # From 0.21.0 vLLM subtracts its CUDA-graph estimate from the KV budget: fewer tokens.
    # (0.19 and 0.21 share the sampler's ~15.6 B per logit; 0.11-0.16 held ~38.9 B, below.)
    assert new["kv_cache_tokens"] < old["kv_cache_tokens"]
    assert old["per_gpu"]["weights_gib"] == pytest.approx(new["per_gpu"]["weights_gib"])
    assert old["engine_version"] == "0.19.0" and new["engine_version"] == "0.21.0"
    # 0.12-0.16 profiled PyTorch's sampler at ~38.9 B per logit (Qwen3-14B on H100: 5.64 GiB at
    # 0.15/0.16, 2.23 GiB from 0.17; tests/data/vllm_logs/sweeps): a larger activation peak.
    v016 = _size(_write(tmp_path, "v0.16.0"))
    assert v016["per_gpu"]["activation_gib"] > 2 * old["per_gpu"]["activation_gib"]
    # Up to 0.11 the official image samples with FlashInfer (engines/vllm.yaml `sampler`): no sort.
    v011 = _size(_write(tmp_path, "v0.11.0"))
    assert v011["per_gpu"]["activation_gib"] < old["per_gpu"]["activation_gib"]


def test_unpinned_image_warns_with_the_assumed_version(tmp_path: Path) -> None:
    p = _write(tmp_path, "latest")
    r = CliRunner().invoke(app, ["validate", str(p)])
    assert r.exit_code == 0
    assert "LD122" in r.stdout and "assuming vLLM" in r.stdout
