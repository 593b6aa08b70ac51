"""Multi-node on the classic InferenceService target (#16): KServe v0.20.0's workerSpec path.

The rendered ClusterServingRuntime and InferenceService, the head and worker pods KServe
builds from them (``effective.kserve.multinode_groups``, ``computeRayNodeAndGPUs``), and
the rules for what KServe refuses (LD809), the one-group limit (LD810) and a group that
cannot start (LD811).
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from conftest import EXAMPLES
from typer.testing import CliRunner

from llmdeploy.cli import app
from llmdeploy.effective import workloads
from llmdeploy.effective.kserve import multinode_groups
from llmdeploy.effective.multinode import ray_nodes

EXAMPLE = EXAMPLES / "qwen3-235b-h100-2x8-isvc.llmdeploy.yaml"
BASE = EXAMPLE.read_text(encoding="utf-8")


def _render(path: Path, *extra: str) -> list[dict]:  # type: ignore[type-arg]
    r = CliRunner().invoke(app, ["render", str(path), *extra], catch_exceptions=False)
    assert r.exit_code == 0, r.stderr
    return [d for d in yaml.safe_load_all(r.stdout) if d]


def _one(docs: list, kind: str) -> dict:  # type: ignore[type-arg]
    [d] = [d for d in docs if d["kind"] == kind]
    return d


def _diags(tmp_path: Path, text: str) -> list:  # type: ignore[type-arg]
    from llmdeploy.pipeline import analyze, load_specs

    p = tmp_path / "s.llmdeploy.yaml"
    p.write_text(text, encoding="utf-8")
    docs, problems = load_specs([str(p)])
    assert not problems
    return analyze(docs[0]).diagnostics


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


@pytest.mark.parametrize(("total", "head", "worker", "expected"), [
    (16, 8, 8, (2, 8, 8, None)),     # both pods ask for 8: two nodes
    (16, 0, 8, (2, 8, 8, None)),     # the head takes what the workers leave
    (16, 16, 8, (1, 0, 16, None)),   # the head alone holds them: no workers
    (16, 8, 0, (9, 1, 8, None)),     # only the head set: one-GPU workers for the rest
    (16, 0, 0, (16, 1, 1, None)),    # nothing set: one GPU per node
])
def test_ray_nodes_follows_kserve(total: int, head: int, worker: int, expected: tuple) -> None:  # type: ignore[type-arg]
    assert ray_nodes(total, head, worker) == expected


def test_ray_nodes_reports_too_few_gpus() -> None:
    n, w, h, err = ray_nodes(16, 4, 8)  # 2 nodes: 4 + 8 < 16 (ErrRayClusterInsufficientGPUs)
    assert (n, w, h) == (2, 8, 4) and err and "16 requested" in err


def test_every_object_passes_the_upstream_crds(shared_crds: Path) -> None:
    from llmdeploy.check import Checker

    docs = _render(EXAMPLE, "--crds", str(shared_crds))
    report = Checker([shared_crds]).check(docs)
    assert not report.problems, [str(p) for p in report.problems]
    assert not report.unchecked
    assert {d["kind"] for d in docs} >= {"InferenceService", "ClusterServingRuntime", "PodDisruptionBudget",
                                         "NetworkPolicy", "PodMonitor"}


def test_runtime_and_predictor_carry_the_worker_spec() -> None:
    docs = _render(EXAMPLE)
    rt = _one(docs, "ClusterServingRuntime")["spec"]
    head = rt["containers"][0]
    assert head["name"] == "kserve-container"
    assert 'leader --ray_cluster_size="${RAY_NODE_COUNT}"' in head["command"][2]
    assert "--distributed-executor-backend=ray" in head["args"]
    ws = rt["workerSpec"]
    assert (ws["tensorParallelSize"], ws["pipelineParallelSize"]) == (8, 2)
    [wc] = ws["containers"]
    assert wc["name"] == "worker-container" and 'worker --ray_address="${HEAD_SVC}"' in wc["command"][2]
    isvc = _one(docs, "InferenceService")
    assert isvc["metadata"]["annotations"]["serving.kserve.io/autoscalerClass"] == "none"
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Standard"
    pred = isvc["spec"]["predictor"]
    assert pred["model"]["runtime"] == _one(docs, "ClusterServingRuntime")["metadata"]["name"]
    pws = pred["workerSpec"]
    assert pws["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "8"
    assert pws["containers"][0]["resources"]["limits"]["rdma/ib"] == "1"
    # The workers' probes: their Ray node lives (they serve nothing themselves).
    assert "raylet" in pws["containers"][0]["livenessProbe"]["exec"]["command"][2]
    # The head's probes are the engine's /health: ready only when the whole group serves.
    assert pred["model"]["readinessProbe"]["httpGet"]["path"] == "/health"
    # topologyKey: every pod of the InferenceService in one rack.
    for spec in (pred, pws):
        [term] = spec["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        assert term == {"labelSelector": {"matchLabels": {"serving.kserve.io/inferenceservice": "qwen3-235b"}},
                        "topologyKey": "topology.kubernetes.io/rack"}
    # Ray and NCCL connect pod to pod on random ports.
    np = _one(docs, "NetworkPolicy")
    assert {"from": [{"podSelector": {"matchLabels": {"serving.kserve.io/inferenceservice": "qwen3-235b"}}}]} \
        in np["spec"]["ingress"]
    # One budget over head and workers (both carry the predictor labels).
    assert _one(docs, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"] == {
        "component": "predictor", "serving.kserve.io/inferenceservice": "qwen3-235b"}


def test_effective_head_and_worker_as_kserve_builds_them() -> None:
    docs = _render(EXAMPLE)
    [g] = multinode_groups(docs)
    assert (g.node_count, g.worker_replicas, g.head_gpus, g.worker_gpus, g.error) == (2, 1, 8, 8, None)
    assert g.head_service == "qwen3-235b-head-1"
    assert g.head is not None and g.worker is not None
    head = g.head.pod.container("kserve-container")
    assert head is not None
    assert head.env_value("RAY_NODE_COUNT") == "2" and head.env_value("MODEL_DIR") == "/mnt/models"
    assert head.env_value("TENSOR_PARALLEL_SIZE") == "8" and head.env_value("PIPELINE_PARALLEL_SIZE") == "2"
    w = g.worker.pod.container("worker-container")
    assert w is not None and w.image == "vllm/vllm-openai:v0.11.0"
    assert w.env_value("HEAD_SVC") == "qwen3-235b-head-1" and w.env_value("REQUEST_GPU_COUNT") == "8"
    assert w.env_value("USER") == "llmdeploy"
    assert g.worker.workload_name == "qwen3-235b-predictor-worker"
    assert g.worker.pod.labels["app"] == "isvc.qwen3-235b-predictor-worker"
    # The LD6xx rules see the head (the pod that serves); --explain shows both.
    assert [w.workload_name for w in workloads(docs)] == ["qwen3-235b-predictor"]
    r = CliRunner().invoke(app, ["render", str(EXAMPLE), "--explain"], catch_exceptions=False)
    assert "Deployment qwen3-235b-predictor-worker" in r.stderr


def test_ld811_refuses_a_group_that_cannot_start() -> None:
    from llmdeploy.pipeline import analyze, load_specs
    from llmdeploy.rules import EffectiveContext, load_all, run_rules

    docs = _render(EXAMPLE)
    [a] = [analyze(d) for d in load_specs([str(EXAMPLE)])[0]]
    load_all()

    def ld811(objs: list) -> list[str]:  # type: ignore[type-arg]
        found = workloads(objs)
        ctx = EffectiveContext(a.validated, a.resolved, found[0], objs, found)
        return [d.message for d in run_rules(ctx, stage="effective") if d.rule == "LD811"]

    assert ld811(docs) == []
    bad = copy.deepcopy(docs)
    wc = _one(bad, "InferenceService")["spec"]["predictor"]["workerSpec"]["containers"][0]
    wc["resources"]["limits"]["nvidia.com/gpu"] = wc["resources"]["requests"]["nvidia.com/gpu"] = "4"
    wc["env"] = [e for e in wc["env"] if e["name"] not in ("USER", "LOGNAME")]
    msgs = " | ".join(ld811(bad))
    assert "4 Ray nodes" in msgs and "UID 1000" in msgs
    bad = copy.deepcopy(docs)
    del _one(bad, "ClusterServingRuntime")["spec"]["workerSpec"]
    assert "InvalidWorkerSpecNotSet" in " | ".join(ld811(bad))


def test_ld809_refuses_what_kserve_refuses_at_each_line(tmp_path: Path) -> None:
    text = (BASE.replace("pvc://qwen3-235b-weights/Qwen3-235B-A22B", "s3://models/qwen3-235b")
            .replace("  mode: standard\n", "  mode: knative\n").replace("autoscaler: none", "autoscaler: hpa")
            .replace("  maxModelLen: 32768\n", "  maxModelLen: 32768\n  env:\n    - {name: TENSOR_PARALLEL_SIZE, "
                     "value: \"8\"}\n"))
    found = {d.line: d for d in _diags(tmp_path, text) if d.rule == "LD809"}
    assert set(found) == {_line_of(text, "s3://models"), _line_of(text, "mode: knative"),
                          _line_of(text, "autoscaler: hpa"), _line_of(text, "TENSOR_PARALLEL_SIZE")}
    assert all(d.is_error for d in found.values())
    assert "only pvc:// and oci://" in found[_line_of(text, "s3://models")].message
    ok = BASE.replace("pvc://qwen3-235b-weights/Qwen3-235B-A22B", "oci://registry.example/qwen3-235b:v1")
    assert not [d for d in _diags(tmp_path, ok) if d.rule == "LD809"]
    canary = BASE.replace("monitoring:\n", "rollout:\n  strategy: canary\nmonitoring:\n", 1)
    assert [d for d in _diags(tmp_path, canary) if d.rule == "LD809" and "canary" in d.message]


def test_ld810_one_group(tmp_path: Path) -> None:
    text = BASE.replace("  minReplicas: 1\n", "  minReplicas: 2\n")
    [d] = [d for d in _diags(tmp_path, text) if d.rule == "LD810"]
    assert d.is_error and d.line == _line_of(text, "minReplicas: 2") and "2 Ray heads" in d.message
    assert not [d for d in _diags(tmp_path, BASE) if d.rule.startswith("LD8") and d.is_error]


def test_one_node_services_are_unchanged() -> None:
    """A one-node InferenceService gets no workerSpec and KServe adds no multi-node env."""
    docs = _render(EXAMPLES / "llama-3.3-70b-h100-tp2.llmdeploy.yaml")
    assert "workerSpec" not in _one(docs, "InferenceService")["spec"]["predictor"]
    assert "workerSpec" not in _one(docs, "ClusterServingRuntime")["spec"]
    assert multinode_groups(docs) == []
