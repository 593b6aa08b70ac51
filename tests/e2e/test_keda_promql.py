"""Every example renders through the whole pipeline and passes the strict CRD check;
every KEDA query it renders, wrapped as a recording rule, passes ``promtool check rules``.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from llmdeploy.pipeline import analyze_all, load_specs, parse_stream_docs, render_documents

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.llmdeploy.yaml"))

# What each scaling mode and rollout strategy renders (docs/scaling.md has one example each).
EXPECTED_OBJECTS: dict[str, set[tuple[str, str]]] = {
    "llama-3.1-8b-canary.llmdeploy.yaml": {
        ("InferenceService", "llama-chat"), ("InferenceService", "llama-chat-canary"),
        ("ScaledObject", "llama-chat"), ("ScaledObject", "llama-chat-canary"), ("HTTPRoute", "llama-chat-route"),
    },
    "llama-3.1-8b-ab-test.llmdeploy.yaml": {
        ("InferenceService", "llama-ab"), ("InferenceService", "llama-ab-b"), ("ScaledObject", "llama-ab"),
        ("ScaledObject", "llama-ab-b"), ("HTTPRoute", "llama-ab-route"), ("TriggerAuthentication", "llama-ab-keda-auth"),
    },
    "qwen3-8b-blue-green.llmdeploy.yaml": {
        ("InferenceService", "qwen3-8b"), ("InferenceService", "qwen3-8b-green"), ("ScaledObject", "qwen3-8b"),
        ("ScaledObject", "qwen3-8b-green"), ("HTTPRoute", "qwen3-8b-route"),
    },
    "tinyllama-dev-scale-to-zero.llmdeploy.yaml": {("ScaledObject", "tinyllama-dev")},
    "phi-3-mini-hpa-cpu.llmdeploy.yaml": {("InferenceService", "phi-3-mini")},
    "qwen2.5-7b-knative.llmdeploy.yaml": {("InferenceService", "qwen-7b")},
    "llama-3.1-8b-knative-canary.llmdeploy.yaml": {("InferenceService", "llama-kn")},
}


def render_example(path: Path, crds: Path) -> list[dict[str, Any]]:
    """The documents ``llmdeploy render EXAMPLE --crds CRDS`` writes (it checks them itself)."""
    docs, diags = load_specs([str(path)])
    assert not diags, [d.to_text() for d in diags]
    result = render_documents(analyze_all(docs), crd_paths=[crds])
    assert result.ok, [d.to_text() for d in result.diagnostics if d.is_error]
    assert not result.unchecked, result.unchecked
    return [d for d in parse_stream_docs([d.text for d in result.docs]) if isinstance(d, dict)]


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_example_renders_and_passes_the_crd_check(example: Path, shared_crds: Path) -> None:
    objects = render_example(example, shared_crds)
    present = {(o["kind"], o["metadata"]["name"]) for o in objects}
    assert EXPECTED_OBJECTS.get(example.name, set()) <= present
    for o in objects:
        if o["kind"] == "ScaledObject":
            # KEDA scales what KServe must not: the InferenceService says external.
            target = o["spec"]["scaleTargetRef"]["name"]
            if o["spec"]["scaleTargetRef"]["kind"] == "LeaderWorkerSet":  # its scale subresource: groups
                assert ("LeaderWorkerSet", target) in present
                continue
            llm = [i for i in objects if i["kind"] == "LLMInferenceService"]
            if llm:  # KEDA scales the workload Deployment; KServe keeps its count (no spec.replicas)
                # The main (decode) Deployment is <name>-kserve; a P/D service's prefill pool is
                # <name>-kserve-prefill (effective/disagg.py), whose count KServe must not hold either.
                svc = next(i for i in llm if target in (f"{i['metadata']['name']}-kserve",
                                                        f"{i['metadata']['name']}-kserve-prefill"))
                part = svc["spec"]["prefill"] if target.endswith("-kserve-prefill") else svc["spec"]
                assert "replicas" not in part
                continue
            isvc = next(i for i in objects if i["kind"] == "InferenceService"
                        and f"{i['metadata']['name']}-predictor" == target)
            assert isvc["metadata"]["annotations"]["serving.kserve.io/autoscalerClass"] == "external"


def keda_queries(objects: list[dict[str, Any]]) -> list[str]:
    return [t["metadata"]["query"] for o in objects if o["kind"] == "ScaledObject" for t in o["spec"]["triggers"]]


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_keda_queries_pass_promtool(example: Path, shared_crds: Path, tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (Debian/Ubuntu package `prometheus`; tests/install-tools.sh)")
    queries = keda_queries(render_example(example, shared_crds))
    if not queries:
        pytest.skip(f"{example.name} renders no KEDA ScaledObject")
    rules = {"groups": [{"name": "llmdeploy-keda", "rules": [
        {"record": f"llmdeploy:keda_trigger:{i}", "expr": q} for i, q in enumerate(queries)]}]}
    path = tmp_path / "keda-rules.yaml"
    path.write_text(yaml.safe_dump(rules, sort_keys=False), encoding="utf-8")
    proc = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60,
                          check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(queries)} rules found" in proc.stdout
