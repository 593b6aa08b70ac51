"""router.modelRewrites (#15): an llm-d InferenceModelRewrite routes a client model name to adapters by weight."""

from __future__ import annotations

from pathlib import Path

import yaml

from llmdeploy.pipeline import analyze_all, render_documents
from llmdeploy.spec.loader import load_text

BASE = """\
apiVersion: llmdeploy.dev/v1alpha1
kind: LLMService
metadata: {name: chat, namespace: inference}
model:
  id: meta-llama/Llama-3.1-8B-Instruct
  storageUri: hf://meta-llama/Llama-3.1-8B-Instruct
  credentials: {secretRef: hf-token}
  loras:
    - {name: sql, storageUri: hf://org/sql-lora, rank: 8}
runtime: {image: vllm/vllm-openai:v0.11.0, maxModelLen: 8192}
resources: {gpu: {type: l4}}
deployment: {target: llmInferenceService}
router:
  modelRewrites:
    - model: chat-sql
      targets:
        - {model: sql, weight: 90}
        - {model: chat, weight: 10}
"""


def _render(text: str, crds: Path | None = None):  # type: ignore[no-untyped-def]
    docs, diags = load_text(text, "spec.yaml", Path("."))
    assert docs and not diags
    return render_documents(analyze_all(docs), crd_paths=[crds] if crds else ())


def test_rewrite_renders_against_the_pool_and_passes_the_crd(shared_crds: Path) -> None:
    res = _render(BASE, shared_crds)
    assert res.ok, [d.to_text() for d in res.diagnostics if d.is_error]
    assert not [u for u in res.unchecked if u.startswith("InferenceModelRewrite")]
    [rw] = [d.obj for d in res.docs if d.obj["kind"] == "InferenceModelRewrite"]
    assert rw["apiVersion"] == "llm-d.ai/v1alpha2"
    assert rw["spec"]["poolRef"]["name"] == "chat-inference-pool"
    [rule] = rw["spec"]["rules"]
    assert rule["matches"] == [{"model": {"type": "Exact", "value": "chat-sql"}}]
    assert rule["targets"] == [{"modelRewrite": "sql", "weight": 90}, {"modelRewrite": "chat", "weight": 10}]


def _errors(text: str, rule: str) -> list:  # type: ignore[type-arg]
    res = _render(text)
    return [d for d in res.diagnostics if d.rule == rule]


def test_a_target_the_engines_do_not_serve_is_refused_at_its_line() -> None:
    text = BASE.replace("{model: chat, weight: 10}", "{model: nope, weight: 10}")
    [d] = _errors(text, "LD724")
    assert d.is_error and d.line == 18 and "nope" in d.message


def test_an_old_router_is_refused() -> None:
    text = BASE.replace("router:\n", "router:\n  llmdRouterVersion: 0.8.0\n")
    [d] = _errors(text, "LD724")
    assert d.is_error and "0.9" in d.message


def test_other_targets_warn_and_render_nothing() -> None:
    text = BASE.replace("deployment: {target: llmInferenceService}", "deployment: {target: inferenceService}")
    res = _render(text)
    assert not [d for d in res.docs if d.obj["kind"] == "InferenceModelRewrite"]
    [d] = [d for d in res.diagnostics if d.rule == "LD724"]
    assert not d.is_error


def test_an_unset_section_keeps_the_spec_hash() -> None:
    """Regression guard: adding router.modelRewrites (empty) must not change existing services' hashes."""
    from llmdeploy.plan.model import spec_hash
    from llmdeploy.spec.models import LLMService

    data = yaml.safe_load(BASE)
    del data["router"]
    spec = LLMService.model_validate(data)
    dumped = spec.model_dump(mode="json", by_alias=True)
    assert dumped["router"]["modelRewrites"] == [] and dumped["disaggregation"] is None
    assert dumped["router"]["candidateEppService"] is None
    import hashlib
    import json

    del dumped["router"]["modelRewrites"], dumped["disaggregation"], dumped["router"]["candidateEppService"]
    dumped["resources"].pop("calibration")  # also optional and unset (#14)
    expected = hashlib.sha256(json.dumps(dumped, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]
    assert spec_hash(spec) == expected
