"""plan/rollout.py: Standard-mode candidates behind an HTTPRoute, Knative revision splits."""

from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path
from typing import Any

import pytest
from conftest import assert_manifests_pass_crds, sized_context

from llmdeploy.plan import PlanContext, Section, kserve, rollout, scaling

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
  image: vllm/vllm-openai:v0.10.2
resources:
  gpu:
    type: a100-80gb
scaling:
  minReplicas: 2
  maxReplicas: 10
"""

GATEWAY = """\
  gateway:
    name: gw
    namespace: gateway-system
    sectionName: https
    hostnames: [llm.example.com]
"""


def context(extra: str = "") -> PlanContext:
    return sized_context(BASE + textwrap.dedent(extra),
                         lambda report: dataclasses.replace(report, max_num_seqs=64, load_time_seconds=60.0))


def plan(ctx: PlanContext) -> tuple[Section, Section]:
    engine = kserve.plan_engine(ctx)
    sc = scaling.plan_scaling(ctx, engine)
    return sc, rollout.plan_rollout(ctx, engine, sc)


def get(section: Section, kind: str, name: str | None = None) -> dict[str, Any]:
    found = [m for m in section.manifests if m.kind == kind and (name is None or m.name == name)]
    assert len(found) == 1, [(m.kind, m.name) for m in section.manifests]
    return dict(found[0].values)


def backends(route: dict[str, Any]) -> list[list[tuple[str, int]]]:
    return [[(b["name"], b["weight"]) for b in rule["backendRefs"]] for rule in route["spec"]["rules"]]


# --------------------------------------------------------------------------- Standard mode


def test_rolling_update_never_drops_capacity() -> None:
    ctx = context()
    _, out = plan(ctx)
    assert out.predictor == {"deploymentStrategy": {"type": "RollingUpdate",
                                                    "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}}
    assert not out.manifests
    grace = kserve.plan_engine(ctx).termination_grace_seconds
    assert any(f"terminationGracePeriodSeconds {grace} s" in n for n in out.notes)


def test_rolling_with_a_gateway_routes_everything_to_the_service() -> None:
    _, out = plan(context("rollout:\n" + GATEWAY))
    route = get(out, "HTTPRoute", "chat-route")
    assert backends(route) == [[("chat-predictor", 100)]]
    assert route["spec"]["parentRefs"] == [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "gw",
                                            "namespace": "gateway-system", "sectionName": "https"}]
    assert route["spec"]["hostnames"] == ["llm.example.com"]
    assert route["spec"]["rules"][0]["timeouts"] == {"request": "300s"}
    assert route["spec"]["rules"][0]["backendRefs"][0]["port"] == 80


CANARY = """\
rollout:
  strategy: canary
  trafficPercent: 10
  candidate:
    image: vllm/vllm-openai:v0.11.0
""" + GATEWAY


def test_canary_splits_traffic_with_weights() -> None:
    sc, out = plan(context(CANARY))
    assert backends(get(out, "HTTPRoute")) == [[("chat-predictor", 90), ("chat-canary-predictor", 10)]]
    isvc = get(out, "InferenceService", "chat-canary")
    pred = isvc["spec"]["predictor"]
    # The candidate runs its own engine version: its own shared runtime.
    runtime = get(out, "ClusterServingRuntime")
    assert pred["model"]["runtime"] == runtime["metadata"]["name"]
    assert runtime["metadata"]["name"].startswith("llmdeploy-vllm-0-11-0-")
    assert runtime["spec"]["containers"][0]["image"] == "vllm/vllm-openai:v0.11.0"
    # Clients keep calling "chat"; the candidate's metrics say "chat-canary".
    args = pred["model"]["args"]
    i = args.index("--served-model-name")
    assert args[i:i + 3] == ["--served-model-name", "chat-canary", "chat"]
    assert not any(a.startswith("--served-model-name=") for a in args)
    assert pred["deploymentStrategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}
    assert isvc["metadata"]["annotations"]["serving.kserve.io/autoscalerClass"] == "external"
    assert isvc["metadata"]["labels"]["app.kubernetes.io/version"] == "0.11.0"
    # Its own ScaledObject, on its own Deployment and metrics; 10 % of the stable's 10 replicas.
    so = get(out, "ScaledObject", "chat-canary")
    assert so["spec"]["scaleTargetRef"]["name"] == "chat-canary-predictor"
    assert 'model_name="chat-canary"' in so["spec"]["triggers"][0]["metadata"]["query"]
    assert (so["spec"]["minReplicaCount"], so["spec"]["maxReplicaCount"]) == (1, 1)
    assert get(sc, "ScaledObject", "chat")["spec"]["maxReplicaCount"] == 10


def test_canary_analysis_queries_compare_candidate_and_stable() -> None:
    _, out = plan(context(CANARY))
    note = next(n for n in out.notes if n.startswith("rollout: compare error ratio"))
    # HTTP 5xx per InferenceService: the candidate's pods and the stable's, never each other's.
    candidate, stable = note.split(" vs stable ")
    assert 'pod=~"chat-canary-predictor-.+"' in candidate and 'status="5xx"' in candidate
    assert 'pod=~"chat-predictor-.+"' in stable and "chat-canary" not in stable
    ttft = next(n for n in out.notes if n.startswith("rollout: compare p95 TTFT"))
    assert 'model_name="chat-canary"' in ttft and 'model_name="chat"' in ttft


def test_candidate_on_the_same_engine_version_shares_the_runtime() -> None:
    extra = CANARY.replace("    image: vllm/vllm-openai:v0.11.0\n", "    storageUri: s3://models/llama-ft-v2\n")
    ctx = context(extra)
    _, out = plan(ctx)
    assert not [m for m in out.manifests if m.kind == "ClusterServingRuntime"]
    pred = get(out, "InferenceService")["spec"]["predictor"]
    assert pred["model"]["storageUri"] == "s3://models/llama-ft-v2"
    assert pred["model"]["runtime"] == kserve.plan_engine(ctx).runtime_name  # the primary's runtime


def test_ab_test_routes_by_header() -> None:
    extra = """\
        rollout:
          strategy: abTest
          header: X-Experiment-Group
          headerValue: B
          candidate:
            nameSuffix: b
            extraArgs: ["--enable-chunked-prefill"]
        """
    _, out = plan(context(textwrap.dedent(extra) + GATEWAY))
    rules = get(out, "HTTPRoute")["spec"]["rules"]
    assert rules[0]["matches"] == [{"headers": [{"type": "Exact", "name": "X-Experiment-Group", "value": "B"}]}]
    assert backends(get(out, "HTTPRoute")) == [[("chat-b-predictor", 100)], [("chat-predictor", 100)]]
    assert "matches" not in rules[1]
    so = get(out, "ScaledObject", "chat-b")
    assert (so["spec"]["minReplicaCount"], so["spec"]["maxReplicaCount"]) == (1, 10)


@pytest.mark.parametrize(("percent", "weights"), [(0, [100, 0]), (100, [0, 100])])
def test_blue_green_flips_all_traffic(percent: int, weights: list[int]) -> None:
    extra = f"""\
        rollout:
          strategy: blueGreen
          trafficPercent: {percent}
          candidate:
            nameSuffix: green
            image: vllm/vllm-openai:v0.11.0
        """
    _, out = plan(context(textwrap.dedent(extra) + GATEWAY))
    assert [w for _, w in backends(get(out, "HTTPRoute"))[0]] == weights
    so = get(out, "ScaledObject", "chat-green")
    # Green must carry everything after the flip: sized like blue.
    assert (so["spec"]["minReplicaCount"], so["spec"]["maxReplicaCount"]) == (2, 10)


def test_candidate_never_scales_to_zero() -> None:
    extra = "  scaleToZero: true\n"  # the stable service idles at zero
    ctx = context(extra + CANARY.replace("trafficPercent: 10", "trafficPercent: 50"))
    sc, out = plan(ctx)
    assert get(sc, "ScaledObject", "chat")["spec"]["idleReplicaCount"] == 0
    spec = get(out, "ScaledObject", "chat-canary")["spec"]
    assert spec["minReplicaCount"] == 1 and "idleReplicaCount" not in spec


def test_metric_named_args() -> None:
    args = ("--served-model-name=chat", "--max-model-len=8192")
    assert rollout.metric_named_args(args, "chat", "chat-b") == (
        "--served-model-name", "chat-b", "chat", "--max-model-len=8192")
    assert rollout.metric_named_args(args, "chat", "chat") == args


# --------------------------------------------------------------------------- Knative mode


# Continues BASE's scaling mapping, then switches to Knative mode.
KNATIVE = "  autoscaler: kpa\n  metric: concurrency\n  target: 32\ndeployment:\n  mode: knative\n"


@pytest.mark.parametrize(("strategy", "percent"), [("canary", 20), ("blueGreen", 0), ("blueGreen", 100)])
def test_knative_traffic_split_through_kserve(strategy: str, percent: int) -> None:
    _, out = plan(context(KNATIVE + f"rollout:\n  strategy: {strategy}\n  trafficPercent: {percent}\n"))
    assert out.predictor == {"canaryTrafficPercent": percent}
    assert out.isvc_annotations == {"serving.kserve.io/enable-tag-routing": "true"}
    assert not out.manifests


def test_knative_rolling_sets_nothing() -> None:
    _, out = plan(context(KNATIVE))
    assert (out.predictor, out.isvc_annotations, out.manifests) == ({}, {}, [])


# --------------------------------------------------------------------------- CRD check




@pytest.mark.parametrize("extra", [
    CANARY,
    CANARY.replace("strategy: canary", "strategy: abTest"),
    CANARY.replace("strategy: canary", "strategy: blueGreen").replace("trafficPercent: 10", "trafficPercent: 100"),
])
def test_rollout_objects_pass_the_crd_check(extra: str, shared_crds: Path) -> None:
    ctx = context(extra)
    engine = kserve.plan_engine(ctx)
    sc, out = plan(ctx)
    stable = kserve.isvc_manifests(ctx, engine, sc.isvc_annotations, {**sc.predictor, **out.predictor}, {})
    assert_manifests_pass_crds([*stable, *sc.manifests, *out.manifests], shared_crds)
