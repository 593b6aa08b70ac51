"""PodDisruptionBudget and NetworkPolicy for the model pods."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from ..derive.policy import policy_enabled
from ..records import record
from .kserve import EnginePlan
from .model import Manifest, PlanContext, Section


@record
class PolicyIngress:
    """What a feature adds to the model pods' NetworkPolicy, so the policy is built once, complete.

    Each field is empty when the feature leaves that part as the base policy has it:
    ``serving_ports`` are the ports the callers reach instead of the engine's (a sidecar in
    front of the engine); ``caller_ports`` are further ports admitted from the callers'
    sources; ``metrics_ports`` are the ports Prometheus scrapes instead of the engine's;
    ``peers`` are pod labels (``matchLabels``) admitted on every port; ``peer_selectors`` are
    whole label selectors (``matchExpressions`` too) admitted on every port, after ``peers``.
    """

    serving_ports: tuple[int, ...] = ()
    caller_ports: tuple[int, ...] = ()
    metrics_ports: tuple[int, ...] = ()
    peers: tuple[Mapping[str, str], ...] = ()
    peer_selectors: tuple[Mapping[str, Any], ...] = ()


@record
class PolicyPods:
    """The pods the PodDisruptionBudget and NetworkPolicy cover when they are not KServe's predictor pods.

    A target whose pods KServe's predictor labels do not select (a LeaderWorkerSet, the
    leader and workers of a multi-node LLMInferenceService) names them here: ``selector`` is
    both objects' pod selector (a whole label selector), ``name`` their name (``None``: the
    usual ``<service>-predictor``). Only the target's own planner passes one, so no two
    features compete for it.
    """

    selector: Mapping[str, Any]
    name: str | None = None


def _tcp(ports: Sequence[int]) -> list[dict[str, Any]]:
    return [{"port": p, "protocol": "TCP"} for p in ports]


def pods_selector(ctx: PlanContext, isvc_names: list[str]) -> dict[str, Any]:
    """Predictor pods of the service and of its rollout candidates, by KServe's own labels."""
    if len(isvc_names) == 1:
        return {"matchLabels": ctx.predictor_selector(isvc_names[0])}
    return {
        "matchLabels": {"component": "predictor"},
        "matchExpressions": [{"key": "serving.kserve.io/inferenceservice", "operator": "In",
                              "values": sorted(isvc_names)}],
    }


def _selector(value: Mapping[str, Any]) -> dict[str, Any]:
    """A fresh copy of a label selector, so the manifest shares nothing with the feature's record."""
    return copy.deepcopy(dict(value))


def pdb_manifest(ctx: PlanContext, isvc_names: list[str], pods: PolicyPods | None = None) -> Manifest | None:
    """A PodDisruptionBudget: a drain takes at most ``maxUnavailable`` predictor pods at once.

    ``maxUnavailable`` rather than ``minAvailable``: with one replica a ``minAvailable: 1``
    budget blocks every node drain forever, while ``maxUnavailable: 1`` lets the drain
    proceed one pod at a time. ``pods`` replaces the predictor pods (:class:`PolicyPods`).
    """
    d = ctx.spec.deployment.disruption_budget
    if not policy_enabled(ctx.profile, d.enabled, production_only=True):
        return None
    name = pods.name if pods is not None and pods.name else f"{ctx.name}-predictor"
    selector = _selector(pods.selector) if pods is not None else pods_selector(ctx, isvc_names)
    values = {
        "metadata": ctx.metadata(name, component="disruption-budget"),
        "spec": {"maxUnavailable": d.max_unavailable, "selector": selector},
    }
    return Manifest("policy/poddisruptionbudget.yaml.j2", "PodDisruptionBudget", name, values,
                    namespace=ctx.namespace, aliases=("pdb",))


def networkpolicy_manifest(ctx: PlanContext, engine: EnginePlan, isvc_names: list[str],
                           extras: Sequence[PolicyIngress] = (), pods: PolicyPods | None = None) -> Manifest | None:
    """Ingress to the model pods only from the named namespaces/pods, the gateway and Prometheus.

    Egress stays open: the storage initializer downloads the weights (hf://, s3://…).
    In Knative mode requests arrive through the activator in ``knative-serving``.
    ``extras`` are what features add (:class:`PolicyIngress`), joined in their order;
    ``pods`` replaces the predictor pods the policy selects (:class:`PolicyPods`).
    """
    np = ctx.spec.deployment.network_policy
    if not policy_enabled(ctx.profile, np.enabled, production_only=False):
        return None
    serving = [p for e in extras for p in e.serving_ports] or [engine.port]
    metrics = [p for e in extras for p in e.metrics_ports] or [engine.port]
    port = _tcp(serving)
    knative = ctx.spec.deployment.mode == "knative"
    if knative:
        # In Knative mode requests reach the pod through queue-proxy (8012 http, 8013 h2c),
        # which forwards to the engine over localhost; Knative's autoscaler scrapes
        # queue-proxy's metrics on 9090 (knative/serving pkg/networking/constants.go).
        port = [{"port": 8012, "protocol": "TCP"}, {"port": 8013, "protocol": "TCP"}]

    def ns(name: str) -> dict[str, Any]:
        return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": name}}}

    sources: list[dict[str, Any]] = [{"podSelector": {}}]  # the service's own namespace
    if np.allow_from_pod_labels:
        sources = [{"podSelector": {"matchLabels": dict(sorted(np.allow_from_pod_labels.items()))}}]
    namespaces = list(np.allow_from_namespaces)
    if np.gateway_namespace:
        namespaces.append(np.gateway_namespace)
    if ctx.spec.deployment.mode == "knative":
        namespaces.append("knative-serving")
    for n in sorted(set(namespaces) - {ctx.namespace}):
        sources.append(ns(n))
    ingress = [{"from": sources, "ports": port + _tcp([p for e in extras for p in e.caller_ports])}]
    if knative:
        ingress.append({"from": [ns("knative-serving")], "ports": [{"port": 9090, "protocol": "TCP"}]})
    if ctx.spec.monitoring.enabled:
        # Prometheus scrapes the engine's own metrics port on the pod IP.
        ingress.append({"from": [ns(np.prometheus_namespace)], "ports": _tcp(metrics)})
    for e in extras:
        ingress += [{"from": [{"podSelector": {"matchLabels": dict(peer)}}]} for peer in e.peers]
        ingress += [{"from": [{"podSelector": _selector(sel)}]} for sel in e.peer_selectors]
    name = pods.name if pods is not None and pods.name else f"{ctx.name}-predictor"
    values = {
        "metadata": ctx.metadata(name, component="network-policy"),
        "spec": {
            "podSelector": _selector(pods.selector) if pods is not None else pods_selector(ctx, isvc_names),
            "policyTypes": ["Ingress"],
            "ingress": ingress,
        },
    }
    return Manifest("policy/networkpolicy.yaml.j2", "NetworkPolicy", name, values,
                    namespace=ctx.namespace, aliases=("netpol",))


def plan_policy(ctx: PlanContext, engine: EnginePlan, isvc_names: list[str] | None = None,
                ingress: Sequence[PolicyIngress] = (), pods: PolicyPods | None = None) -> Section:
    """PDB and NetworkPolicy when enabled (the production profile turns both on).

    Both cover the predictor pods of every InferenceService of the service: the primary
    and the rollout candidates (canary, A/B, blue/green), or the target's ``pods``
    (:class:`PolicyPods`: a LeaderWorkerSet's, a multi-node LLMInferenceService's leader and
    workers). ``ingress`` is what features add to the NetworkPolicy (disaggregation's roles,
    the precise prefix-cache scorer's events, a multi-node group's pod-to-pod traffic).
    """
    names = isvc_names or [ctx.name]
    out = Section()
    for m in (pdb_manifest(ctx, names, pods), networkpolicy_manifest(ctx, engine, names, ingress, pods)):
        if m is not None:
            out.manifests.append(m)
    return out
