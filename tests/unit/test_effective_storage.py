"""The model volume every LLMInferenceService pod gets from the storage initializer (one function,
``effective.llmisvc.attach_model_storage``): the single-node workload, both P/D pools and the
data-parallel leader and worker, for hf:// and s3:// URIs only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import EXAMPLES

from llmdeploy.effective import llmisvc as eff
from llmdeploy.effective import workloads
from llmdeploy.effective.model import Workload
from llmdeploy.pipeline import analyze_all, render_documents
from llmdeploy.spec.loader import load_text

EXAMPLE_URIS = {
    "llama-3.1-8b-llmisvc-prefix": "hf://meta-llama/Llama-3.1-8B-Instruct",
    "deepseek-r1-h200-pd": "hf://deepseek-ai/DeepSeek-R1",
    "qwen3-235b-h100-2x8-llmisvc-ep": "pvc://qwen3-235b-weights/Qwen3-235B-A22B",
}


def pods(example: str, uri: str) -> list[Workload]:
    text = (EXAMPLES / f"{example}.llmdeploy.yaml").read_text(encoding="utf-8")
    text = text.replace(f"storageUri: {EXAMPLE_URIS[example]}", f"storageUri: {uri}")
    assert f"storageUri: {uri}" in text
    docs, diags = load_text(text, "spec.yaml", Path("."))
    assert docs and not diags
    res = render_documents(analyze_all(docs))
    assert res.ok, [d.to_text() for d in res.diagnostics if d.is_error]
    objs: list[Any] = [d.obj for d in res.docs]
    return [*workloads(objs), *eff.worker_workloads(objs)]


def mounts(w: Workload) -> dict[str, list[Any]]:
    main = next(c for c in w.pod.raw["containers"] if c["name"] == eff.MAIN_CONTAINER)
    return {"volumes": [v for v in w.pod.raw["volumes"] if v["name"] == "kserve-provision-location"],
            "mounts": [m for m in main.get("volumeMounts") or [] if m["name"] == "kserve-provision-location"]}


@pytest.mark.parametrize(("example", "expected_pods"), [
    ("llama-3.1-8b-llmisvc-prefix", 1), ("deepseek-r1-h200-pd", 2), ("qwen3-235b-h100-2x8-llmisvc-ep", 2)])
@pytest.mark.parametrize("uri", ["hf://org/model", "s3://bucket/model"])
def test_downloaded_models_get_the_volume_on_every_pod(example: str, expected_pods: int, uri: str) -> None:
    found = pods(example, uri)
    assert len(found) == expected_pods
    for w in found:
        assert mounts(w) == {"volumes": [{"name": "kserve-provision-location", "emptyDir": {}}],
                             "mounts": [{"name": "kserve-provision-location", "mountPath": "/mnt/models",
                                         "readOnly": True}]}, w.workload_name
        assert w.pod.volumes.count("kserve-provision-location") == 1


@pytest.mark.parametrize("example", sorted(EXAMPLE_URIS))
def test_mounted_models_get_no_download_volume(example: str) -> None:
    found = pods(example, "pvc://weights/model")
    assert found
    for w in found:
        assert mounts(w) == {"volumes": [], "mounts": []}, w.workload_name


def test_service_accounts_are_keyed_by_namespace_and_name() -> None:
    from llmdeploy.effective.storage import service_accounts

    sa = {"kind": "ServiceAccount", "metadata": {"name": "models", "namespace": "ml"}, "secrets": [{"name": "s3"}]}
    other = {"kind": "ServiceAccount", "metadata": {"name": "models", "namespace": "other"}}
    found = service_accounts([sa, other, {"kind": "Secret", "metadata": {"name": "models", "namespace": "ml"}}])
    assert found == {("ml", "models"): sa, ("other", "models"): other}
