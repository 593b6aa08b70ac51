"""The llmInferenceService target: rendering, the router, LoRA, the effective workload and the LD7xx rules."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import EXAMPLES

from llmdeploy.effective import llmisvc as eff
from llmdeploy.effective import workloads
from llmdeploy.pipeline import RenderResult, analyze_all, render_documents
from llmdeploy.rules import EffectiveContext
from llmdeploy.rules import llmisvc as llmisvc_rules
from llmdeploy.spec.loader import load_text

BASE = """\
apiVersion: llmdeploy.dev/v1alpha1
kind: LLMService
metadata:
  name: chat
  namespace: inference
model:
  id: meta-llama/Llama-3.1-8B-Instruct
  storageUri: hf://meta-llama/Llama-3.1-8B-Instruct
  credentials:
    secretRef: hf-token
runtime:
  image: vllm/vllm-openai:v0.11.0
  maxModelLen: 8192
  prefixCaching: true
resources:
  gpu:
    type: l4
deployment:
  target: llmInferenceService
scaling:
  autoscaler: keda
  minReplicas: 1
  maxReplicas: 3
"""


def spec_text(**sections: Any) -> str:
    """BASE with top-level sections merged in (one level deep: a section's keys replace BASE's)."""
    data = yaml.safe_load(BASE)
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return yaml.safe_dump(data, sort_keys=False)


def render(text: str, crds: Path | None = None) -> RenderResult:
    docs, diags = load_text(text, "spec.yaml", Path("."))
    assert docs and not diags, [d.to_text() for d in diags]
    return render_documents(analyze_all(docs), crd_paths=[crds] if crds else ())


def objects(res: RenderResult) -> list[dict[str, Any]]:
    assert res.ok, [d.to_text() for d in res.diagnostics if d.is_error]
    return [d.obj for d in res.docs]


def one(objs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [o for o in objs if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert len(found) == 1, (kind, name, [(o["kind"], o["metadata"]["name"]) for o in objs])
    return found[0]


def errors(res: RenderResult) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for d in res.diagnostics:
        if d.is_error:
            out.setdefault(d.rule, []).append(d.path or "")
    return out


# --------------------------------------------------------------------------- rendering


def test_renders_an_llminferenceservice_with_the_engine_plan(shared_crds: Path) -> None:
    objs = objects(render(BASE, shared_crds))
    kinds = [o["kind"] for o in objs]
    assert "InferenceService" not in kinds and "ClusterServingRuntime" not in kinds
    svc = one(objs, "LLMInferenceService", "chat")
    assert svc["apiVersion"] == "serving.kserve.io/v1alpha2"
    spec = svc["spec"]
    assert spec["model"] == {"uri": "hf://meta-llama/Llama-3.1-8B-Instruct", "name": "chat"}
    assert spec["parallelism"] == {"tensor": 1}
    assert "replicas" not in spec and "scaling" not in spec  # KEDA owns the replica count
    main = spec["template"]["containers"][0]
    assert main["name"] == "main" and main["image"] == "vllm/vllm-openai:v0.11.0"
    assert main["ports"] == [{"name": "http1", "containerPort": 8000, "protocol": "TCP"}]
    # The preset passes --served-model-name (with its publishers/ alias) and --port 8000.
    assert not any(a.startswith(("--served-model-name", "--port")) for a in main["args"])
    assert "--max-model-len=8192" in main["args"] and "--enable-prefix-caching" in main["args"]
    assert main["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert main["startupProbe"]["httpGet"]["path"] == "/health"
    assert main["securityContext"]["runAsNonRoot"] is True
    assert {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf-token", "key": "HF_TOKEN"}}} in main["env"]
    pod = spec["template"]
    assert {"name": "dshm", "mountPath": "/dev/shm"} in main["volumeMounts"]
    assert pod["volumes"][0]["emptyDir"]["medium"] == "Memory"
    assert pod["serviceAccountName"] == "chat-storage"  # the storage initializer reads HF_TOKEN through it
    assert one(objs, "ServiceAccount", "chat-storage")["secrets"] == [{"name": "hf-token"}]
    assert pod["terminationGracePeriodSeconds"] >= 120
    # No label of the controller's own keys on the pods (they would break the Deployment selector).
    assert not set(spec["labels"]) & set(eff.POD_FIXED_LABELS)


def test_managed_router_writes_the_epp_config_from_the_scorers(shared_crds: Path) -> None:
    text = spec_text(router={"gateway": {"name": "gw", "namespace": "gateway-system", "sectionName": "https"},
                             "scorers": [{"type": "prefixCache", "weight": 5}, {"type": "queue", "weight": 1}],
                             "schedulerReplicas": 2})
    svc = one(objects(render(text, shared_crds)), "LLMInferenceService")
    router = svc["spec"]["router"]
    assert router["route"] == {}
    assert router["gateway"] == {"refs": [{"name": "gw", "namespace": "gateway-system", "sectionName": "https"}]}
    assert router["scheduler"]["replicas"] == 2
    cfg = router["scheduler"]["config"]["inline"]
    assert cfg["kind"] == "EndpointPickerConfig"
    profile = cfg["schedulingProfiles"][0]["plugins"]
    assert profile == [{"pluginRef": "prefix-cache-scorer", "weight": 5}, {"pluginRef": "queue-scorer", "weight": 1},
                       {"pluginRef": "max-score-picker"}]
    prefix = next(p for p in cfg["plugins"] if p["type"] == "prefix-cache-scorer")
    assert prefix["parameters"]["blockSizeTokens"] == 16


def test_default_scorers_are_kserves_baseline_plus_lora_affinity() -> None:
    svc = one(objects(render(BASE)), "LLMInferenceService")
    refs = svc["spec"]["router"]["scheduler"]["config"]["inline"]["schedulingProfiles"][0]["plugins"]
    assert [(r["pluginRef"], r.get("weight")) for r in refs] == [
        ("queue-scorer", 2), ("kv-cache-utilization-scorer", 2), ("prefix-cache-scorer", 3),
        ("no-hit-lru-scorer", 2), ("max-score-picker", None)]
    text = spec_text(model={"loras": [{"name": "sql", "storageUri": "hf://org/sql-lora", "rank": 8}]})
    svc = one(objects(render(text)), "LLMInferenceService")
    refs = svc["spec"]["router"]["scheduler"]["config"]["inline"]["schedulingProfiles"][0]["plugins"]
    assert refs[0] == {"pluginRef": "lora-affinity-scorer", "weight": 4}


def test_block_size_follows_the_engine() -> None:
    text = spec_text(runtime={"image": "vllm/vllm-openai:v0.11.0", "maxModelLen": 8192,
                              "extraArgs": ["--block-size=32"]})
    svc = one(objects(render(text)), "LLMInferenceService")
    plugins = svc["spec"]["router"]["scheduler"]["config"]["inline"]["plugins"]
    assert next(p for p in plugins if p["type"] == "prefix-cache-scorer")["parameters"]["blockSizeTokens"] == 32


def test_explicit_pool_renders_pool_route_and_epp_config(shared_crds: Path) -> None:
    text = spec_text(router={"pool": "explicit", "eppService": "epp", "gateway": {"name": "gw"},
                             "objective": {"priority": 5}})
    objs = objects(render(text, shared_crds))
    pool = one(objs, "InferencePool", "chat-inference-pool")
    assert pool["spec"]["selector"]["matchLabels"] == eff.workload_selector("chat")
    assert pool["spec"]["targetPorts"] == [{"number": 8000}]
    assert pool["spec"]["endpointPickerRef"]["name"] == "epp"
    route = one(objs, "HTTPRoute", "chat-route")
    assert route["spec"]["parentRefs"][0]["name"] == "gw"
    assert route["spec"]["rules"][0]["backendRefs"] == [
        {"group": "inference.networking.k8s.io", "kind": "InferencePool", "name": "chat-inference-pool"}]
    cm = one(objs, "ConfigMap", "chat-epp-config")
    assert json.loads(cm["data"]["epp"])["kind"] == "EndpointPickerConfig"
    svc = one(objs, "LLMInferenceService")
    assert svc["spec"]["router"] == {"route": {"http": {"refs": [{"name": "chat-route"}]}},
                                     "scheduler": {"pool": {"ref": {"name": "chat-inference-pool"}}},
                                     "gateway": {"refs": [{"name": "gw", "namespace": "inference"}]}}
    obj = one(objs, "InferenceObjective")
    assert obj["apiVersion"] == "llm-d.ai/v1alpha2"
    assert obj["spec"] == {"priority": 5, "poolRef": {"group": "inference.networking.k8s.io",
                                                      "name": "chat-inference-pool"}}


def test_objective_group_follows_the_router_version(shared_crds: Path) -> None:
    text = spec_text(router={"objective": {"priority": 1}, "llmdRouterVersion": "0.8.1"})
    obj = one(objects(render(text, shared_crds)), "InferenceObjective")
    assert obj["apiVersion"] == "inference.networking.x-k8s.io/v1alpha2"


def test_lora_on_the_llm_target_is_model_lora_not_engine_flags(shared_crds: Path) -> None:
    text = spec_text(model={"loras": [{"name": "b", "storageUri": "s3://bucket/b", "rank": 24},
                                      {"name": "a", "storageUri": "pvc://claim/a", "rank": 8}]})
    svc = one(objects(render(text, shared_crds)), "LLMInferenceService")
    lora = svc["spec"]["model"]["lora"]
    assert lora == {"adapters": [{"name": "b", "uri": "s3://bucket/b"}, {"name": "a", "uri": "pvc://claim/a"}],
                    "maxRank": 32, "maxAdapters": 2, "maxCpuAdapters": 2}
    assert not any("lora" in a for a in svc["spec"]["template"]["containers"][0]["args"])


def test_lora_on_the_inferenceservice_target_is_engine_flags() -> None:
    text = spec_text(deployment={"target": "inferenceService"},
                     model={"loras": [{"name": "sql", "storageUri": "hf://org/sql-lora", "rank": 16}], "maxLoras": 1})
    isvc = one(objects(render(text)), "InferenceService")
    args = isvc["spec"]["predictor"]["model"]["args"]
    i = args.index("--enable-lora")
    assert args[i:i + 6] == ["--enable-lora", "--max-loras=1", "--max-lora-rank=16", "--max-cpu-loras=1",
                             "--lora-modules", "sql=org/sql-lora"]


def test_scaling_targets_the_workload_deployment_and_monitoring_its_pods(shared_crds: Path) -> None:
    objs = objects(render(spec_text(profile="production"), shared_crds))
    so = one(objs, "ScaledObject")
    assert so["spec"]["scaleTargetRef"]["name"] == "chat-kserve"
    [w] = workloads(objs)
    assert w.workload_name == "chat-kserve"
    pm = one(objs, "PodMonitor")
    sel = pm["spec"]["selector"]["matchLabels"]
    assert sel and all(w.pod.labels.get(k) == v for k, v in sel.items())
    for kind in ("PodDisruptionBudget", "NetworkPolicy"):
        o = one(objs, kind)
        sel = (o["spec"].get("selector") or o["spec"]["podSelector"])["matchLabels"]
        assert all(w.pod.labels.get(k) == v for k, v in sel.items()), kind
    rules = json.dumps(one(objs, "PrometheusRule")["spec"])
    assert "chat-kserve-[a-z0-9]+-[a-z0-9]+" in rules and "chat-predictor" not in rules


def test_endpoint_picker_monitoring_needs_its_token(shared_crds: Path) -> None:
    assert not [o for o in objects(render(BASE)) if o["metadata"]["name"].startswith("chat-epp")
                or o["metadata"]["name"] == "chat-router-rules"]
    text = spec_text(router={"eppMetricsToken": {"name": "epp-token", "key": "token"}})
    objs = objects(render(text, shared_crds))
    pm = one(objs, "PodMonitor", "chat-epp")
    assert pm["spec"]["selector"]["matchLabels"] == eff.scheduler_labels("chat")
    assert pm["spec"]["podMetricsEndpoints"][0]["authorization"] == {
        "type": "Bearer", "credentials": {"name": "epp-token", "key": "token"}}
    rules = one(objs, "PrometheusRule", "chat-router-rules")
    alerts = [r for g in rules["spec"]["groups"] for r in g["rules"] if "alert" in r]
    docs = (Path(__file__).resolve().parents[2] / "docs" / "monitoring.md").read_text()
    for a in alerts:
        assert a["annotations"]["runbook_url"].endswith("#" + a["alert"].lower())
        assert f"\n### {a['alert']}\n" in docs, f"docs/monitoring.md lacks a runbook for {a['alert']}"
        assert 'pod=~"chat-kserve-router-scheduler-' in a["expr"]
    dash = json.loads(one(objs, "ConfigMap", "chat-router-dashboard")["data"]["inference-chat-router.json"])
    assert any("llm_d_epp_request_cached_tokens" in t["expr"] for p in dash["panels"] for t in p.get("targets", []))
    explicit = spec_text(router={"pool": "explicit", "eppService": "epp", "gateway": {"name": "gw"},
                                 "eppMetricsToken": {"name": "epp-token", "key": "token"}})
    res = render(explicit)
    assert res.ok and any(d.rule == "LD708" and d.path == "router.eppMetricsToken" for d in res.diagnostics)
    assert not [o for o in objects(res) if o["metadata"]["name"] == "chat-router-rules"]


@pytest.mark.parametrize(("strategy", "percent"), [("canary", 10), ("blueGreen", 100)])
def test_canary_and_blue_green_are_a_kserve_route_group(strategy: str, percent: int, shared_crds: Path) -> None:
    text = spec_text(profile="production", rollout={"strategy": strategy, "trafficPercent": percent,
                                                    "candidate": {"image": "vllm/vllm-openai:v0.10.2"}},
                     router={"gateway": {"name": "gw", "namespace": "gateway-system"}},
                     deployment={"target": "llmInferenceService",
                                 "networkPolicy": {"allowFromNamespaces": ["gateway-system"]}})
    res = render(text, shared_crds)
    objs = objects(res)
    stable = one(objs, "LLMInferenceService", "chat")
    cand = one(objs, "LLMInferenceService", f"chat-{'canary'}")
    assert stable["spec"]["router"]["route"] == {"group": "chat", "weight": 100 - percent}
    assert cand["spec"]["router"]["route"] == {"group": "chat", "weight": percent}
    # Same model names (KServe groups only members serving the same ones), own metrics label.
    assert cand["spec"]["model"] == stable["spec"]["model"]
    args = cand["spec"]["template"]["containers"][0]["args"]
    i = args.index("--served-model-name")
    assert args[i:i + 4] == ["--served-model-name", "chat-canary", "chat", "publishers/inference/models/chat"]
    assert cand["spec"]["template"]["containers"][0]["image"] == "vllm/vllm-openai:v0.10.2"
    targets = sorted(o["spec"]["scaleTargetRef"]["name"] for o in objs if o["kind"] == "ScaledObject")
    assert targets == ["chat-canary-kserve", "chat-kserve"]
    # One PodMonitor, PDB and NetworkPolicy cover both workloads (checked by LD604/LD605 on the merged pods).
    found = {w.isvc: w for _, w in res.workloads}
    assert set(found) == {"chat", "chat-canary"}
    for kind in ("PodMonitor", "PodDisruptionBudget", "NetworkPolicy"):
        o = one(objs, kind) if kind != "PodMonitor" else one(objs, kind, "chat")
        sel = (o["spec"].get("selector") or o["spec"]["podSelector"])["matchLabels"]
        for w in found.values():
            assert all(w.pod.labels.get(k) == v for k, v in sel.items()), (kind, w.isvc)
    exprs = [r["expr"] for g in one(objs, "PrometheusRule", "chat-rules")["spec"]["groups"] for r in g["rules"]]
    assert any('model_name="chat-canary"' in e for e in exprs) and any('model_name="chat"' in e for e in exprs)


def test_fixed_replicas_without_an_autoscaler() -> None:
    svc = one(objects(render(spec_text(scaling={"autoscaler": "none", "minReplicas": 3}))), "LLMInferenceService")
    assert svc["spec"]["replicas"] == 3


def test_examples_render_and_pass_the_crds(shared_crds: Path) -> None:
    found = sorted(EXAMPLES.glob("*llmisvc*.llmdeploy.yaml"))
    assert len(found) >= 3
    for f in found:
        objs = objects(render(f.read_text(), shared_crds))
        assert any(o["kind"] == "LLMInferenceService" for o in objs), f.name


# --------------------------------------------------------------------------- effective


def test_effective_pod_merges_the_preset_and_sees_the_real_argv() -> None:
    text = spec_text(model={"loras": [{"name": "sql", "storageUri": "s3://b/sql", "rank": 8}]})
    objs = objects(render(text))
    [w] = workloads(objs)
    assert (w.workload_kind, w.workload_name, w.service_name, w.service_port) == \
        ("Deployment", "chat-kserve", "chat-kserve-workload-svc", 8000)
    assert w.pod.labels["kserve.io/component"] == "workload" and w.pod.labels["llm-d.ai/role"] == "both"
    c = w.pod.container("main")
    assert c is not None
    assert c.arg_value("--port") == "8000"  # from the preset's entrypoint
    assert c.args[:4] == ("/mnt/models", "--served-model-name", "chat", "publishers/inference/models/chat")
    assert c.arg_value("--max-lora-rank") == "8"  # KServe's LoRA flags, after ours
    assert '{"name":"sql","path":"/mnt/lora/sql"}' in c.args
    assert c.env_value("HOME") == "/tmp/home"  # ours wins over the preset's /home
    assert c.env_value("VLLM_LOGGING_LEVEL") == "INFO"  # the preset's stays
    assert "/mnt/models" in c.volume_mounts and "/dev/shm" in c.volume_mounts
    vols = {v["name"]: v for v in w.pod.raw["volumes"]}
    assert vols["dshm"]["emptyDir"]["sizeLimit"] == "2Gi"  # ours replaced the preset's 1Gi
    assert w.storage.uri == "hf://meta-llama/Llama-3.1-8B-Instruct"
    assert w.storage.service_account == "chat-storage"


def test_inferenceservice_workloads_are_unchanged() -> None:
    objs = objects(render(spec_text(deployment={"target": "inferenceService"})))
    [w] = workloads(objs)
    assert w.engine_container == "kserve-container" and w.workload_name == "chat-predictor"


def test_pools_reads_managed_and_explicit() -> None:
    managed = {"kind": "LLMInferenceService", "metadata": {"name": "x", "namespace": "n"},
               "spec": {"router": {"scheduler": {}}}}
    assert eff.pools([], managed) == [("x-inference-pool", eff.workload_selector("x"), [8000])]
    explicit = {"kind": "LLMInferenceService", "metadata": {"name": "x", "namespace": "n"},
                "spec": {"router": {"scheduler": {"pool": {"ref": {"name": "p"}}}}}}
    pool = {"kind": "InferencePool", "metadata": {"name": "p", "namespace": "n"},
            "spec": {"selector": {"matchLabels": {"a": "b"}}, "targetPorts": [{"number": 9}]}}
    assert eff.pools([pool], explicit) == [("p", {"a": "b"}, [9])]
    assert eff.pools([], {"kind": "LLMInferenceService", "spec": {}}) == []


# --------------------------------------------------------------------------- rules


@pytest.mark.parametrize(("sections", "rule", "path"), [
    ({"deployment": {"target": "llmInferenceService", "mode": "knative"}, "scaling": {"autoscaler": "kpa"}},
     "LD701", "deployment.mode"),
    ({"runtime": {"engine": "tgi", "image": "ghcr.io/huggingface/text-generation-inference:3.3.7"}},
     "LD701", "runtime.engine"),
    ({"runtime": {"image": "vllm/vllm-openai:v0.11.0", "port": 8080}}, "LD702", "runtime.port"),
    ({"scaling": {"autoscaler": "hpa", "metric": "cpu"}}, "LD703", "scaling.autoscaler"),
    ({"rollout": {"strategy": "abTest", "candidate": {"image": "vllm/vllm-openai:v0.11.0"}}}, "LD704",
     "rollout.strategy"),
    ({"rollout": {"strategy": "canary", "candidate": {"image": "vllm/vllm-openai:v0.11.0"}},
      "router": {"pool": "explicit", "eppService": "epp", "gateway": {"name": "gw"}}}, "LD704", "router"),
    ({"model": {"storageUri": "gs://bucket/llama"}}, "LD705", "model.storageUri"),
    ({"model": {"loras": [{"name": "a", "storageUri": "oci://reg/a", "rank": 8}]}}, "LD705",
     "model.loras[0].storageUri"),
    ({"model": {"loras": [{"name": "a", "storageUri": "s3://b/a", "rank": 8},
                          {"name": "a", "storageUri": "s3://b/b", "rank": 8}]}}, "LD706", "model.loras[1].name"),
    ({"model": {"loras": [{"name": "chat", "storageUri": "s3://b/a", "rank": 8}]}}, "LD706", "model.loras[0].name"),
    ({"model": {"loras": [{"name": "a", "storageUri": "s3://b/a", "rank": 8, "baseModel": "Qwen/Qwen2.5-7B"}]}},
     "LD706", "model.loras[0].baseModel"),
    ({"runtime": {"image": "vllm/vllm-openai:v0.11.0", "prefixCaching": False}}, "LD707", "runtime.prefixCaching"),
    ({"router": {"prefixBlockSize": 32}}, "LD707", "router.prefixBlockSize"),
    ({"router": {"pool": "explicit", "gateway": {"name": "gw"}}}, "LD708", "router.eppService"),
    ({"router": {"pool": "explicit", "eppService": "epp"}}, "LD708", "router.gateway"),
    ({"metadata": {"name": "a" * 39, "namespace": "inference"}}, "LD709", "metadata.name"),
])
def test_semantic_rules_refuse(sections: dict[str, Any], rule: str, path: str) -> None:
    res = render(spec_text(**sections))
    assert not res.docs
    assert path in errors(res).get(rule, []), errors(res)


def test_inferenceservice_target_accepts_only_hf_adapters() -> None:
    text = spec_text(deployment={"target": "inferenceService"},
                     model={"loras": [{"name": "a", "storageUri": "s3://b/a", "rank": 8}]})
    assert "model.loras[0].storageUri" in errors(render(text))["LD705"]


def test_router_on_the_inferenceservice_target_is_a_warning() -> None:
    res = render(spec_text(deployment={"target": "inferenceService"}, router={"schedulerReplicas": 2}))
    assert res.ok
    assert any(d.rule == "LD708" and not d.is_error for d in res.diagnostics)


def test_pipeline_and_data_parallel_together_fail_kserves_webhook() -> None:
    text = spec_text(resources={"gpu": {"type": "h100-sxm"}, "parallelism": {"pipeline": 2, "data": 2}},
                     model={"id": "meta-llama/Llama-3.1-8B-Instruct",
                            "storageUri": "hf://meta-llama/Llama-3.1-8B-Instruct"})
    res = render(text)
    assert "resources.parallelism" in errors(res).get("LD710", []), errors(res)


def effective_findings(text: str, mutate: Any, check: Any) -> list[Any]:
    """Render ``text``, edit the rendered objects with ``mutate``, run one effective rule on the result."""
    docs, _ = load_text(text, "spec.yaml", Path("."))
    [a] = analyze_all(docs)
    objs = objects(render_documents([a]))
    mutate(objs)
    found = workloads(objs)
    ctx = EffectiveContext(a.validated, a.resolved, found[0], objs, found)
    return list(check(ctx))


def _main(objs: list[dict[str, Any]]) -> dict[str, Any]:
    return one(objs, "LLMInferenceService")["spec"]["template"]["containers"][0]


def test_engine_moved_off_the_pool_port_is_caught_on_the_real_argv() -> None:
    def mutate(objs: list[dict[str, Any]]) -> None:
        _main(objs)["args"].append("--port=9000")

    found = effective_findings(BASE, mutate, llmisvc_rules.pool_selects_workload)
    assert [f.path for f in found] == [("runtime", "extraArgs")]
    assert effective_findings(BASE, lambda objs: None, llmisvc_rules.pool_selects_workload) == []


def test_pool_that_selects_nothing_and_pod_labels_breaking_the_selector() -> None:
    text = spec_text(router={"pool": "explicit", "eppService": "epp", "gateway": {"name": "gw"}})

    def mutate(objs: list[dict[str, Any]]) -> None:
        one(objs, "InferencePool")["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"] = "other"
        one(objs, "LLMInferenceService")["spec"]["labels"]["kserve.io/component"] = "mine"

    found = effective_findings(text, mutate, llmisvc_rules.pool_selects_workload)
    assert sorted(f.path for f in found) == [("metadata", "labels"), ("router", "pool")]


def test_prefix_caching_switched_off_is_caught_on_the_real_argv() -> None:
    def mutate(objs: list[dict[str, Any]]) -> None:
        _main(objs)["args"] += ["--no-enable-prefix-caching", "--block-size=32"]

    found = effective_findings(BASE, mutate, llmisvc_rules.prefix_routing_reaches_engine)
    assert [f.path for f in found] == [("runtime", "prefixCaching"), ("router", "prefixBlockSize")]
    assert effective_findings(BASE, lambda objs: None, llmisvc_rules.prefix_routing_reaches_engine) == []


def test_webhook_checks_read_the_rendered_object() -> None:
    text = spec_text(model={"loras": [{"name": "a", "storageUri": "s3://b/a", "rank": 8}]})

    def mutate(objs: list[dict[str, Any]]) -> None:
        spec = one(objs, "LLMInferenceService")["spec"]
        spec["replicas"], spec["scaling"] = 1, {"maxReplicas": 2}
        spec["parallelism"]["data"] = 2
        spec["model"]["lora"]["adapters"].append({"name": "a", "uri": "s3://b/a2"})
        spec["model"]["lora"]["maxRank"] = 0
        spec["router"]["scheduler"]["config"]["ref"] = {"name": "cm"}

    found = effective_findings(text, mutate, llmisvc_rules.llmisvc_admission)
    assert len(found) == 5, found
    assert effective_findings(text, lambda objs: None, llmisvc_rules.llmisvc_admission) == []


def test_lora_rank_above_the_engines_max_is_refused() -> None:
    text = spec_text(deployment={"target": "inferenceService"},
                     model={"loras": [{"name": "big", "storageUri": "hf://org/big", "rank": 64}]},
                     runtime={"image": "vllm/vllm-openai:v0.11.0", "extraArgs": ["--max-lora-rank=16"]})
    res = render(text)
    assert "model.loras[0].rank" in errors(res).get("LD713", []), errors(res)


def test_on_the_llm_target_kserves_lora_flags_come_last() -> None:
    # KServe appends its --max-lora-rank after the container's args: the adapters' rank wins.
    text = spec_text(model={"loras": [{"name": "big", "storageUri": "hf://org/big", "rank": 64}]},
                     runtime={"image": "vllm/vllm-openai:v0.11.0", "extraArgs": ["--max-lora-rank=16"]})
    res = render(text)
    assert res.ok, errors(res)
    [(_, w)] = res.workloads
    c = w.pod.container("main")
    assert c is not None and c.arg_value("--max-lora-rank") == "64"

    def drop(objs: list[dict[str, Any]]) -> None:
        del one(objs, "LLMInferenceService")["spec"]["model"]["lora"]

    found = effective_findings(text, drop, llmisvc_rules.lora_rank_fits)
    assert [f.path for f in found] == [("model", "loras"), ("model", "loras", 0, "rank")]


def test_network_policy_must_admit_the_router() -> None:
    text = spec_text(profile="production", router={"gateway": {"name": "gw", "namespace": "gateway-system"}})
    assert "deployment.networkPolicy.allowFromNamespaces" in errors(render(text)).get("LD714", [])
    text = spec_text(profile="production", deployment={"target": "llmInferenceService",
                                                       "networkPolicy": {"allowFromPodLabels": {"app": "client"}}})
    assert "deployment.networkPolicy.allowFromPodLabels" in errors(render(text)).get("LD714", [])
    ok = spec_text(profile="production", router={"gateway": {"name": "gw", "namespace": "gateway-system"}},
                   deployment={"target": "llmInferenceService",
                               "networkPolicy": {"allowFromNamespaces": ["gateway-system"]}})
    assert render(ok).ok


def test_lora_slots_memory_is_reported_and_the_sizing_refuses_when_it_eats_the_kv_cache() -> None:
    from llmdeploy.catalog import get_model
    from llmdeploy.derive.lora import LoraLimits, lora_gpu_bytes

    m = get_model("meta-llama/Llama-3.1-8B-Instruct")
    # 2 slots × rank 64 × 32 layers × (qkv 3·4096+6144, o 4096+4096, gate_up 2·4096+2·14336, down 14336+4096) × 2 B
    assert lora_gpu_bytes(m, LoraLimits(64, 2, 2), tensor_parallel=1, pipeline_parallel=1, dtype="bfloat16") \
        == 2 * 64 * 32 * (3 * 4096 + 6144 + 4096 + 4096 + 2 * 4096 + 2 * 14336 + 14336 + 4096) * 2
    half = lora_gpu_bytes(m, LoraLimits(64, 2, 2), tensor_parallel=2, pipeline_parallel=2, dtype="bfloat16")
    assert half is not None and half < lora_gpu_bytes(m, LoraLimits(64, 2, 2), tensor_parallel=1,
                                                      pipeline_parallel=1, dtype="bfloat16") / 2

    def lora(rank: int) -> list[Any]:
        res = render(spec_text(model={"loras": [{"name": "a", "storageUri": "hf://o/a", "rank": rank},
                                                {"name": "b", "storageUri": "hf://o/b", "rank": rank}]}))
        return [d for d in res.diagnostics if d.rule == "LD715"]

    assert [d.severity.value for d in lora(8)] == ["info"]
    assert [d.severity.value for d in lora(128)] == ["warning"]
    # The slots eat the whole cache: sizing refuses (LD202, naming the slots), LD715 says why.
    assert [d.severity.value for d in lora(512)] == ["warning"]
    res = render(spec_text(model={"loras": [{"name": "a", "storageUri": "hf://o/a", "rank": 512},
                                            {"name": "b", "storageUri": "hf://o/b", "rank": 512}]}))
    assert [d.rule for d in res.diagnostics if d.is_error] == ["LD202"]
    assert "LoRA slots 5.00" in next(d.message for d in res.diagnostics if d.rule == "LD202")

