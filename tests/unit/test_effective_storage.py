"""The model volume every LLMInferenceService pod gets from the storage initializer (one function,
``effective.llmisvc.attach_model_storage``): the single-node workload, both P/D pools and the
data-parallel leader and worker, for hf:// and s3:// URIs only; and the one ``vllm serve`` container
assembly (``effective.llmisvc.serve_containers``) of the single-node workload and both P/D pools."""

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


def test_serve_containers_add_lora_flags_then_the_volume_then_run_vllm_serve() -> None:
    """One assembly for every single-node ``vllm serve`` pod: entrypoint args, the template's, LoRA's."""
    obj = {"metadata": {"name": "chat", "namespace": "ml"},
           "spec": {"model": {"uri": "hf://org/model", "lora": {"adapters": [{"name": "sql"}], "maxRank": 16}}}}
    pod_spec: dict[str, Any] = {"containers": [{"name": eff.MAIN_CONTAINER, "image": "vllm", "args": ["--x"]},
                                               {"name": "side", "image": "proxy", "args": ["--y"]}]}
    main, side = eff.serve_containers(obj, pod_spec, "hf://org/model", ["/mnt/models", "--port", "8000"])
    lora = ["--enable-lora", "--max-lora-rank=16", "--lora-modules",
            '{"name":"sql","path":"/mnt/lora/sql"}', '{"name":"publishers/ml/models/sql","path":"/mnt/lora/sql"}']
    assert main.command == ("vllm", "serve")
    assert main.args == ("/mnt/models", "--port", "8000", "--x", *lora)
    assert "/mnt/models" in main.volume_mounts  # attached before the container record is taken
    assert pod_spec["containers"][0]["args"] == ["--x", *lora]
    assert [v["name"] for v in pod_spec["volumes"]] == ["kserve-provision-location"]
    assert (side.command, side.args, side.volume_mounts) == ((), ("--y",), ())


def test_the_workload_and_both_pools_serve_their_lora_adapters() -> None:
    """The single-node workload and both P/D pools run the same assembly (``serve_containers``)."""
    adapters = ("  loras:\n    - name: sql\n      storageUri: s3://adapters/sql\n      rank: 16\n"
                "  maxLoras: 1\n")
    found = []
    for example in ("llama-3.1-8b-llmisvc-prefix", "deepseek-r1-h200-pd"):
        text = (EXAMPLES / f"{example}.llmdeploy.yaml").read_text(encoding="utf-8")
        text = text.replace(f"  storageUri: {EXAMPLE_URIS[example]}\n", f"  storageUri: {EXAMPLE_URIS[example]}\n"
                            + adapters, 1)
        docs, diags = load_text(text, "spec.yaml", Path("."))
        assert docs and not diags
        res = render_documents(analyze_all(docs))
        assert res.ok, [d.to_text() for d in res.diagnostics if d.is_error]
        found += workloads([d.obj for d in res.docs])
    assert len(found) == 3
    for w in found:
        main = next(c for c in w.pod.containers if c.name == eff.MAIN_CONTAINER)
        assert main.command == ("vllm", "serve") and main.args[0] == "/mnt/models", w.workload_name
        modules = ['{"name":"sql","path":"/mnt/lora/sql"}',
                   '{"name":"publishers/inference/models/sql","path":"/mnt/lora/sql"}']
        assert list(main.args[main.args.index("--enable-lora"):][-2:]) == modules, w.workload_name
        assert "/mnt/models" in main.volume_mounts, w.workload_name
