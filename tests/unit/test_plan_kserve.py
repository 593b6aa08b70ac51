"""The KServe planner: storage credentials, storage URIs, Knative-specific pod fields, maxNumSeqs auto."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from llmdeploy.cli import app
from llmdeploy.plan.kserve import kserve_storage_uri

BASE = """\
apiVersion: llmdeploy.dev/v1alpha1
kind: LLMService
metadata: {{name: svc, namespace: ml}}
model:
  id: meta-llama/Llama-3.1-8B-Instruct
  storageUri: {uri}
  credentials: {creds}
runtime: {{image: "vllm/vllm-openai:v0.11.0", maxModelLen: 8192}}
resources: {{gpu: {{type: a100-80gb}}}}
deployment: {deployment}
scaling: {scaling}
"""


def _render(tmp_path: Path, uri: str = "hf://meta-llama/Llama-3.1-8B-Instruct", creds: str = "{secretRef: hf-token}",
            deployment: str = "{}", scaling: str = "{}") -> list[dict]:
    p = tmp_path / "svc.llmdeploy.yaml"
    p.write_text(BASE.format(uri=uri, creds=creds, deployment=deployment, scaling=scaling))
    r = CliRunner().invoke(app, ["render", str(p)], catch_exceptions=False)
    assert r.exit_code == 0, r.stderr
    return [d for d in yaml.safe_load_all(r.stdout) if d]


def _isvc(docs: list[dict]) -> dict:
    return next(d for d in docs if d["kind"] == "InferenceService")


def test_secret_ref_gives_the_storage_initializer_a_service_account(tmp_path: Path) -> None:
    docs = _render(tmp_path)
    sa = next(d for d in docs if d["kind"] == "ServiceAccount")
    assert sa["metadata"]["name"] == "svc-storage"
    assert sa["secrets"] == [{"name": "hf-token"}]
    pred = _isvc(docs)["spec"]["predictor"]
    assert pred["serviceAccountName"] == "svc-storage"
    env = {e["name"]: e for e in pred["model"]["env"]}
    assert env["HF_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "hf-token", "key": "HF_TOKEN"}


def test_own_service_account_wins_and_none_is_rendered(tmp_path: Path) -> None:
    docs = _render(tmp_path, deployment="{serviceAccount: mine}")
    assert not any(d["kind"] == "ServiceAccount" for d in docs)
    assert _isvc(docs)["spec"]["predictor"]["serviceAccountName"] == "mine"


def test_pvc_needs_no_credentials(tmp_path: Path) -> None:
    docs = _render(tmp_path, uri="pvc://models/llama", creds="{}")
    assert not any(d["kind"] == "ServiceAccount" for d in docs)
    assert "serviceAccountName" not in _isvc(docs)["spec"]["predictor"]


def test_azureblob_is_rendered_in_the_https_form(tmp_path: Path) -> None:
    assert kserve_storage_uri("azureblob://acct/models/llama") == "https://acct.blob.core.windows.net/models/llama"
    assert kserve_storage_uri("s3://b/k") == "s3://b/k"
    docs = _render(tmp_path, uri="azureblob://acct/models/llama", creds="{}")
    assert _isvc(docs)["spec"]["predictor"]["model"]["storageUri"] == "https://acct.blob.core.windows.net/models/llama"


def test_pods_do_not_carry_the_spec_hash(tmp_path: Path) -> None:
    """KServe copies the InferenceService's own metadata into the pod template too (#12)."""
    docs = _render(tmp_path)
    isvc = _isvc(docs)
    assert "llmdeploy.dev/spec-hash" not in isvc["metadata"]["labels"]
    assert "llmdeploy.dev/spec-hash" not in isvc["metadata"]["annotations"]
    assert "llmdeploy.dev/spec-hash" not in isvc["spec"]["predictor"]["labels"]
    others = [d for d in docs if d["kind"] not in ("InferenceService", "ClusterServingRuntime")]
    assert others and all("llmdeploy.dev/spec-hash" in d["metadata"]["labels"] for d in others)


def test_knative_mode_leaves_out_fields_knative_rejects(tmp_path: Path) -> None:
    docs = _render(tmp_path, deployment="{mode: knative}", scaling="{autoscaler: kpa, metric: concurrency, target: 4}")
    pred = _isvc(docs)["spec"]["predictor"]
    assert "terminationGracePeriodSeconds" not in pred
    assert "lifecycle" not in pred["model"]
    assert "startupProbe" in pred["model"]


def test_max_num_seqs_auto_keeps_the_engine_default_and_follows_target_concurrency(tmp_path: Path) -> None:
    """#13: auto no longer caps at what the KV cache holds of full-length requests."""
    def seqs(scaling: str) -> int:
        args = _isvc(_render(tmp_path, scaling=scaling))["spec"]["predictor"]["model"]["args"]
        return int(next(a for a in args if a.startswith("--max-num-seqs=")).split("=")[1])

    no_load = seqs("{}")
    typical = seqs("{targetLoad: {requestsPerSecond: 5, avgPromptTokens: 512, avgOutputTokens: 256}}")
    busy = seqs("{targetLoad: {requestsPerSecond: 5, concurrency: 300}}")
    # vLLM 0.11's default on an A100 is 256 sequences (the alert ITL SLO does not bind here).
    assert no_load == typical == 256
    assert busy == 300  # targetLoad.concurrency above the default raises it
