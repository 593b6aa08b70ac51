"""The LLMInferenceService ``worker`` for multi-node data / expert parallelism (#16).

KServe v0.20.0 turns ``spec.worker`` with data parallel into a LeaderWorkerSet
``<name>-kserve-mn`` of ``data ÷ dataLocal`` pods over the shipped
kserve-config-llm-worker-data-parallel (workload_multi_node.go, config_merge.go,
llm_inference_service_types_func.go ``GetSize``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from conftest import EXAMPLES

from llmdeploy.effective import llmisvc as eff
from llmdeploy.effective import workloads
from llmdeploy.pipeline import RenderResult, analyze_all, render_documents
from llmdeploy.spec.loader import load_text

EXAMPLE = EXAMPLES / "qwen3-235b-h100-2x8-llmisvc-ep.llmdeploy.yaml"
BASE = EXAMPLE.read_text(encoding="utf-8")
CRDS = Path("/work/shared/crds")


def render(text: str) -> RenderResult:
    docs, diags = load_text(text, "spec.yaml", Path("."))
    assert docs and not diags, [d.to_text() for d in diags]
    return render_documents(analyze_all(docs), crd_paths=[CRDS] if CRDS.is_dir() else ())


def _llmisvc(res: RenderResult) -> dict[str, Any]:
    assert res.ok, [d.to_text() for d in res.diagnostics if d.is_error]
    [obj] = [d.obj for d in res.docs if d.obj.get("kind") == "LLMInferenceService"]
    return obj


def _findings(res: RenderResult, rule: str) -> list[Any]:
    return [d for d in res.diagnostics if d.rule == rule]


def test_example_renders_parallelism_and_worker() -> None:
    res = render(BASE)
    obj = _llmisvc(res)
    spec = obj["spec"]
    # GetSize = data ÷ dataLocal = 2 pods: one per node.
    assert spec["parallelism"] == {"tensor": 1, "data": 16, "dataLocal": 8, "expert": True}
    [leader] = spec["template"]["containers"]
    [worker] = spec["worker"]["containers"]
    for c in (leader, worker):
        assert c["resources"]["limits"]["nvidia.com/gpu"] == "8"
        assert c["resources"]["limits"]["rdma/ib"] == "1"
        assert "IPC_LOCK" in c["securityContext"]["capabilities"]["add"]
        assert "--enable-expert-parallel" in c["args"]
    assert "readinessProbe" in leader and "startupProbe" in leader
    assert not {"readinessProbe", "startupProbe", "livenessProbe", "lifecycle"} & set(worker)
    assert worker["args"] == leader["args"] and worker["image"] == leader["image"]


def test_effective_leader_and_worker_pods() -> None:
    res = render(BASE)
    objs = [d.obj for d in res.docs]
    [leader] = [w for w in workloads(objs) if w.isvc == "qwen3-235b-ep"]
    [worker] = eff.worker_workloads(objs)
    assert (leader.workload_kind, leader.workload_name) == ("StatefulSet", "qwen3-235b-ep-kserve-mn")
    assert worker.workload_name == "qwen3-235b-ep-kserve-mn-0"
    la = list(leader.pod.container("main").args)
    wa = list(worker.pod.container("main").args)

    def flag(argv: list[str], name: str) -> str:
        return argv[argv.index(name) + 1]

    assert flag(la, "--data-parallel-size") == "16" and flag(la, "--data-parallel-size-local") == "8"
    assert flag(la, "--data-parallel-start-rank") == "0" and "--headless" not in la
    assert flag(la, "--api-server-count") == "8"
    # Worker 1 starts at rank LWS_WORKER_INDEX × dataLocal = 8 and serves no HTTP.
    assert flag(wa, "--data-parallel-start-rank") == "8" and "--headless" in wa
    assert "--api-server-count" not in wa
    # The leader carries the workload labels (it is the Service's and the pool's endpoint), the worker not.
    assert leader.pod.labels["app.kubernetes.io/component"] == "llminferenceservice-workload-leader"
    assert leader.pod.labels["kserve.io/component"] == "workload"
    assert "kserve.io/component" not in worker.pod.labels
    # No serviceAccountName in the template: KServe creates one named after the LeaderWorkerSet.
    assert leader.pod.service_account == worker.pod.service_account == "qwen3-235b-ep-kserve-mn"
    # --explain shows both pods.
    assert [w.workload_name for _, w in res.workloads] == ["qwen3-235b-ep-kserve-mn", "qwen3-235b-ep-kserve-mn-0"]


def test_pipeline_parallel_worker_is_still_refused() -> None:
    text = BASE.replace("    tensor: 1\n    data: 16\n    expert: true\n", "    tensor: 8\n    pipeline: 2\n")
    assert text != BASE
    res = render(text)
    [d] = [d for d in _findings(res, "LD801") if d.path == "resources.nodes"]
    assert "pipeline-parallel worker config" in d.message


def test_data_parallel_across_nodes_on_other_targets_is_refused() -> None:
    text = BASE.replace("  target: llmInferenceService\n", "  target: leaderWorkerSet\n")
    res = render(text)
    assert any(d.path == "resources.parallelism.data" for d in _findings(res, "LD801"))
    assert not _findings(render(BASE), "LD801")


def test_data_that_does_not_split_over_the_nodes() -> None:
    text = BASE.replace("    tensor: 1\n    data: 16\n", "    tensor: 2\n    data: 3\n")
    [d] = _findings(render(text), "LD814")
    assert d.is_error and d.path == "resources.parallelism.data"
    assert "does not split over 2 nodes" in d.message


def test_topology_key_is_not_applied_on_this_target() -> None:
    text = BASE.replace("      rdma/ib: 1\n", "      rdma/ib: 1\n    topologyKey: nvidia.com/gpu.clique\n")
    res = render(text)
    [d] = _findings(res, "LD814")
    assert not d.is_error and "topologyKey is not applied" in d.message
    assert res.ok


def test_old_engine_without_the_data_parallel_launcher_is_refused() -> None:
    text = BASE.replace("vllm/vllm-openai:v0.11.0", "vllm/vllm-openai:v0.8.5")
    found = _findings(render(text), "LD814")
    assert any(d.is_error and "--data-parallel-start-rank" in d.message for d in found), found


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for e in selector.get("matchExpressions") or []:
        assert e["operator"] == "In"
        if labels.get(e["key"]) not in e["values"]:
            return False
    return True


def test_group_traffic_and_disruption_budget_cover_leader_and_workers() -> None:
    """Regression: the NetworkPolicy admitted only port 8000 to the leader, so the workers'
    data-parallel handshake (RPC port 5555, ZMQ, NCCL) could not reach it."""
    res = render(BASE)
    objs = [d.obj for d in res.docs]
    [np] = [o for o in objs if o["kind"] == "NetworkPolicy" and o["metadata"]["name"].startswith("qwen3-235b-ep")]
    [pdb] = [o for o in objs if o["kind"] == "PodDisruptionBudget"]
    [leader] = [w for w in workloads(objs) if w.isvc == "qwen3-235b-ep"]
    [worker] = eff.worker_workloads(objs)
    for w in (leader, worker):
        assert _selects(np["spec"]["podSelector"], w.pod.labels)
        assert _selects(pdb["spec"]["selector"], w.pod.labels)
    # Some ingress rule admits every port from the group's own pods.
    group_rules = [r for r in np["spec"]["ingress"] if "ports" not in r
                   and any(_selects(f.get("podSelector") or {"matchLabels": {"x": "y"}}, worker.pod.labels)
                           for f in r["from"])]
    assert group_rules
    # The endpoint picker shares name and part-of but is not part of the group.
    assert not _selects(np["spec"]["podSelector"], eff.scheduler_labels("qwen3-235b-ep"))


CANARY = BASE.replace("scaling:\n", "rollout:\n  strategy: canary\n  trafficPercent: 10\n  candidate:\n"
                      "    image: vllm/vllm-openai:v0.11.1\nscaling:\n", 1)


def test_a_canary_keeps_both_groups_traffic_and_budget() -> None:
    """Regression: with a candidate the policy selected only the two leaders (kserve.io/component:
    workload, which the workers lack) and had no pod-to-pod rule, so neither group's workers could
    reach their leader's data-parallel RPC port, and the budget did not count the workers."""
    assert "strategy: canary" in CANARY
    res = render(CANARY)
    assert res.ok, [d.to_text() for d in res.diagnostics if d.is_error]
    objs = [d.obj for d in res.docs]
    [np] = [o for o in objs if o["kind"] == "NetworkPolicy"]
    [pdb] = [o for o in objs if o["kind"] == "PodDisruptionBudget"]
    leaders = [w for w in workloads(objs) if w.isvc.startswith("qwen3-235b-ep")]
    workers = eff.worker_workloads(objs)
    assert len(leaders) == len(workers) == 2
    assert {w.isvc for w in workers} == {"qwen3-235b-ep", "qwen3-235b-ep-canary"}
    peers = [f["podSelector"] for r in np["spec"]["ingress"] if "ports" not in r for f in r["from"]]
    for w in (*leaders, *workers):
        assert _selects(np["spec"]["podSelector"], w.pod.labels), w.workload_name
        assert _selects(pdb["spec"]["selector"], w.pod.labels), w.workload_name
        assert any(_selects(p, w.pod.labels) for p in peers), w.workload_name
    for name in ("qwen3-235b-ep", "qwen3-235b-ep-canary"):
        assert not _selects(np["spec"]["podSelector"], eff.scheduler_labels(name))
