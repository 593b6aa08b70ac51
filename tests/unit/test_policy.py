"""plan/policy.py: the NetworkPolicy is built once, with what each feature adds (PolicyIngress)."""

from __future__ import annotations

import copy
from typing import Any

from conftest import sized_context

from llmdeploy.plan import kserve, policy
from llmdeploy.plan.policy import PolicyIngress, PolicyPods

BASE = """\
apiVersion: llmdeploy.dev/v1alpha1
kind: LLMService
metadata:
  name: chat
  namespace: ml
model:
  id: meta-llama/Llama-3.1-8B-Instruct
  storageUri: s3://models/llama-3.1-8b
runtime:
  image: vllm/vllm-openai:v0.11.0
  port: 8001
resources:
  gpu:
    type: a100-80gb
deployment:
  networkPolicy:
    enabled: true
    allowFromNamespaces: [gateway-system]
"""


def tcp(*ports: int) -> list[dict[str, Any]]:
    return [{"port": p, "protocol": "TCP"} for p in ports]


def ingress(extra: str = "", extras: tuple[PolicyIngress, ...] = ()) -> list[dict[str, Any]]:
    ctx = sized_context(BASE + extra)
    [m] = [m for m in policy.plan_policy(ctx, kserve.plan_engine(ctx), None, extras).manifests
           if m.kind == "NetworkPolicy"]
    return list(m.values["spec"]["ingress"])


CALLERS = [{"podSelector": {}}, {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "gateway-system"}}}]
PROMETHEUS = [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]


def test_without_extras_callers_and_prometheus_reach_the_engine_port() -> None:
    assert ingress() == [{"from": CALLERS, "ports": tcp(8001)}, {"from": PROMETHEUS, "ports": tcp(8001)}]


def test_extras_of_several_features_join_in_their_order() -> None:
    sidecar = PolicyIngress(serving_ports=(8000,), metrics_ports=(8000, 8001), peers=({"app": "chat"},))
    events = PolicyIngress(caller_ports=(5556,), peers=({"role": "picker"},))
    assert ingress(extras=(sidecar, events)) == [
        {"from": CALLERS, "ports": tcp(8000, 5556)},
        {"from": PROMETHEUS, "ports": tcp(8000, 8001)},
        {"from": [{"podSelector": {"matchLabels": {"app": "chat"}}}]},
        {"from": [{"podSelector": {"matchLabels": {"role": "picker"}}}]},
    ]


def test_knative_keeps_the_queue_proxy_ports_for_callers() -> None:
    knative = "  mode: knative\n"
    got = ingress(knative, (PolicyIngress(serving_ports=(8000,), caller_ports=(5556,), metrics_ports=(8000, 8001)),))
    assert got[0]["ports"] == tcp(8012, 8013, 5556)
    assert got[1]["ports"] == tcp(9090)
    assert got[2]["ports"] == tcp(8000, 8001)


def test_the_policy_does_not_share_the_features_labels() -> None:
    labels = {"app": "chat"}
    got = ingress(extras=(PolicyIngress(peers=(labels,)),))
    got[-1]["from"][0]["podSelector"]["matchLabels"]["app"] = "changed"
    assert labels == {"app": "chat"}


def manifests(extra: str = "", extras: tuple[PolicyIngress, ...] = (),
              pods: PolicyPods | None = None) -> dict[str, Any]:
    ctx = sized_context(BASE + "  disruptionBudget:\n    enabled: true\n" + extra)
    section = policy.plan_policy(ctx, kserve.plan_engine(ctx), None, extras, pods)
    return {m.kind: m for m in section.manifests}


GROUP = {"matchLabels": {"app.kubernetes.io/name": "chat"},
         "matchExpressions": [{"key": "app.kubernetes.io/component", "operator": "In", "values": ["a", "b"]}]}


def test_pods_replace_the_predictor_selector_of_both_objects_and_their_name() -> None:
    got = manifests(pods=PolicyPods(selector=GROUP, name="chat"))
    pdb, np = got["PodDisruptionBudget"], got["NetworkPolicy"]
    assert pdb.values["spec"]["selector"] == GROUP and np.values["spec"]["podSelector"] == GROUP
    assert pdb.name == np.name == "chat"
    assert pdb.values["metadata"]["name"] == np.values["metadata"]["name"] == "chat"


def test_pods_without_a_name_keep_the_predictor_name() -> None:
    got = manifests(pods=PolicyPods(selector=GROUP))
    assert {m.name for m in got.values()} == {"chat-predictor"}
    assert got["NetworkPolicy"].values["spec"]["podSelector"] == GROUP


def test_without_pods_both_objects_select_the_predictor_pods() -> None:
    got = manifests()
    want = {"matchLabels": {"component": "predictor", "serving.kserve.io/inferenceservice": "chat"}}
    assert got["PodDisruptionBudget"].values["spec"]["selector"] == want
    assert got["NetworkPolicy"].values["spec"]["podSelector"] == want


def test_peer_selectors_follow_the_peers_of_their_feature_whole() -> None:
    first = PolicyIngress(peers=({"app": "chat"},), peer_selectors=(GROUP,))
    second = PolicyIngress(peers=({"role": "picker"},))
    assert ingress(extras=(first, second))[2:] == [
        {"from": [{"podSelector": {"matchLabels": {"app": "chat"}}}]},
        {"from": [{"podSelector": GROUP}]},
        {"from": [{"podSelector": {"matchLabels": {"role": "picker"}}}]},
    ]


def test_the_policy_does_not_share_the_features_selectors() -> None:
    sel = copy.deepcopy(GROUP)
    got = manifests(extras=(PolicyIngress(peer_selectors=(sel,)),), pods=PolicyPods(selector=sel))
    for m in got.values():
        spec = m.values["spec"]
        for s in (spec.get("selector"), spec.get("podSelector"), *[r["from"][0].get("podSelector")
                                                                   for r in spec.get("ingress", [])]):
            if s and "matchExpressions" in s:
                s["matchExpressions"][0]["values"].append("changed")
                s["matchLabels"]["x"] = "y"
    assert sel == GROUP
