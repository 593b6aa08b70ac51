"""Rollouts that really move traffic.

Standard mode (KServe ignores ``canaryTrafficPercent`` there, kserve#5335): the new
version is a second InferenceService, ``<name>-<candidate.nameSuffix>``, with its own
runtime, scaling and metrics label, and a Gateway API ``HTTPRoute`` in front of both
predictor Services splits the traffic:

* ``canary``: weights ``100 - p`` / ``p``;
* ``abTest``: requests whose header matches go to the candidate, the rest to the stable;
* ``blueGreen``: weights 100/0 or 0/100, flipped all at once;
* ``rolling``: with a gateway, the route sends everything to the stable service, so that
  promoting a candidate (and deleting it) never leaves clients without a route.

Knative mode: a revision split through KServe's own ``canaryTrafficPercent`` (the spec
itself is the new revision; KServe keeps the last fully rolled-out one for the rest).

Why two InferenceServices and not KServe v0.20's ``spec.canary[]``: see docs/scaling.md,
"Why two InferenceServices".
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from .. import naming
from ..records import record
from . import kserve, scaling
from .kserve import EnginePlan
from .model import Manifest, PlanContext, Section

# KServe pkg/constants EnableRoutingTagAnnotationKey: tags the Knative traffic targets
# `latest` and `prev`, so each revision gets its own URL for testing
# (reconcilers/knative/ksvc_reconciler.go).
TAG_ROUTING = "serving.kserve.io/enable-tag-routing"
GATEWAY_GROUP = "gateway.networking.k8s.io"
# KServe's Standard-mode predictor Service listens on port 80 (CommonDefaultHttpPort) and
# forwards to the container port (reconcilers/service/service_reconciler.go).
PREDICTOR_SERVICE_PORT = 80


def rolling_strategy() -> dict[str, Any]:
    """The predictor's ``deploymentStrategy``: never drop capacity during an update.

    A surge pod loads the model while every old pod keeps serving (practices.md "Rolling
    updates"). KServe passes the predictor's deploymentStrategy to the Deployment in
    Standard mode (its default is 25 %/25 %). A fresh mapping for each manifest.
    """
    return {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}


@record
class CandidatePlan:
    """The candidate version of a Standard-mode rollout.

    Attributes:
        name: its InferenceService name.
        metric_name: the ``model_name`` its engine exports metrics under (its first
            ``--served-model-name``), so that its queries never mix with the stable's.
        context: the plan context with the candidate's spec and engine version.
        engine: its engine plan.
        section: its scaling section (annotations, predictor fields, ScaledObject).
    """

    name: str
    metric_name: str
    context: PlanContext
    engine: EnginePlan
    section: Section


def candidate_name(ctx: PlanContext) -> str:
    cand = ctx.spec.rollout.candidate
    assert cand is not None
    return naming.child(ctx.name, cand.name_suffix)


def candidate_context(ctx: PlanContext) -> PlanContext:
    """The plan context of the candidate: the spec with the candidate's fields applied.

    A candidate image may pin another engine version, whose flags and metric names the
    candidate's args, runtime and queries then follow.
    """
    from ..engines import resolve_engine

    spec = ctx.spec
    cand = spec.rollout.candidate
    assert cand is not None
    runtime_update: dict[str, Any] = {}
    if cand.image is not None:
        runtime_update.update(image=cand.image, engine_version=None)
    if cand.extra_args is not None:
        runtime_update["extra_args"] = list(cand.extra_args)
    model_update: dict[str, Any] = {}
    if cand.storage_uri is not None:
        model_update["storage_uri"] = cand.storage_uri
    if cand.revision is not None:
        model_update["revision"] = cand.revision
    cspec = spec.model_copy(update={
        "runtime": spec.runtime.model_copy(update=runtime_update),
        "model": spec.model.model_copy(update=model_update),
    })
    info = ctx.engine
    if cand.image is not None:
        info = resolve_engine(cspec.runtime.engine, cspec.runtime.image, cspec.runtime.engine_version)
    return dataclasses.replace(ctx, spec=cspec, engine=info)


def renders_candidate(ctx: PlanContext) -> bool:
    """Whether the plan renders a candidate InferenceService: Standard mode, a ``rollout.candidate``
    and a strategy other than rolling (in Knative mode a canary is a revision of the same one)."""
    r = ctx.spec.rollout
    return ctx.spec.deployment.mode == "standard" and r.strategy != "rolling" and r.candidate is not None


def candidate_metric_name(ctx: PlanContext) -> str:
    """The ``model_name`` the candidate's metrics carry.

    On vLLM its own InferenceService name (its first ``--served-model-name``, see
    :func:`metric_named_args`); an engine without a model label keeps the served name
    (its queries are scoped by predictor pod names instead).
    """
    return candidate_name(ctx) if ctx.spec.runtime.engine == "vllm" else ctx.served_model_name


def metric_named_args(args: tuple[str, ...], served: str, metric_name: str) -> tuple[str, ...]:
    """Serve the stable's model name too, but label the metrics with ``metric_name``.

    vLLM answers to every ``--served-model-name`` and labels its metrics with the first
    one (vLLM ``--served-model-name`` help: "metrics tag will take the first one"), so
    clients keep sending the same ``model`` while both versions' queries stay apart. The
    option takes several values, so they are separate list items.
    """
    out: list[str] = []
    for arg in args:
        if arg.startswith("--served-model-name=") and metric_name != served:
            out += ["--served-model-name", metric_name, served]
        else:
            out.append(arg)
    return tuple(out)


def candidate_bounds(ctx: PlanContext, primary: Section) -> scaling.ReplicaBounds:
    """Replicas of the candidate, from the primary's and the share it gets.

    Never zero: a candidate at zero replicas would answer its share of requests with 503.
    """
    r = ctx.spec.rollout
    lo = int(primary.predictor.get("minReplicas", 1))
    hi = int(primary.predictor.get("maxReplicas", max(lo, 1)))
    if r.strategy == "canary":
        cap = max(1, math.ceil(hi * r.traffic_percent / 100))
        return scaling.ReplicaBounds(1, cap, None, f"{r.traffic_percent} % of the stable's {hi}, at least 1")
    if r.strategy == "blueGreen":
        low = max(1, lo)
        return scaling.ReplicaBounds(low, max(hi, low), None, "green carries all traffic after the flip: as the stable")
    return scaling.ReplicaBounds(1, max(hi, 1), None, "header-selected share: from 1 up to the stable's maximum")


def plan_candidate(ctx: PlanContext, engine: EnginePlan, primary: Section) -> CandidatePlan:
    """Engine, scaling and InferenceService of the candidate (Standard mode)."""
    name = candidate_name(ctx)
    cctx = candidate_context(ctx)
    cengine = kserve.plan_engine(cctx)
    metric_name = candidate_metric_name(ctx)
    cengine = dataclasses.replace(
        cengine, args=metric_named_args(cengine.args, cctx.served_model_name, metric_name))
    target = scaling.ScaleTarget(name, metric_name, candidate_bounds(ctx, primary), role="candidate")
    section = scaling.plan_for(cctx, cengine, target, with_auth=False)
    return CandidatePlan(name, metric_name, cctx, cengine, section)


def candidate_manifests(ctx: PlanContext, engine: EnginePlan, cand: CandidatePlan) -> list[Manifest]:
    """The candidate's runtime (when its engine version differs), InferenceService and scaler."""
    out: list[Manifest] = []
    if cand.engine.runtime_name != engine.runtime_name:
        out.append(kserve.runtime_manifest(cand.context, cand.engine))
    extra = dict(cand.section.predictor)
    extra["deploymentStrategy"] = rolling_strategy()
    pred = kserve.predictor_spec(cand.context, cand.engine, extra, isvc_name=cand.name)
    out.append(kserve.isvc_manifest(cand.context, cand.engine, name=cand.name,
                                    annotations=dict(cand.section.isvc_annotations), predictor=pred,
                                    component="candidate"))
    out.extend(cand.section.manifests)
    return out


def _backend(isvc: str, weight: int) -> dict[str, Any]:
    return {"kind": "Service", "name": naming.predictor_deployment(isvc), "port": PREDICTOR_SERVICE_PORT,
            "weight": weight}


def httproute_name(ctx: PlanContext) -> str:
    # Not <name>: with KServe's Gateway API integration on, KServe owns HTTPRoutes named
    # <isvc> and <isvc>-predictor.
    return naming.child(ctx.name, "route")


def httproute_manifest(ctx: PlanContext, candidate: str | None) -> Manifest:
    """The HTTPRoute in front of the stable service (and the candidate, if any)."""
    r = ctx.spec.rollout
    g = r.gateway
    assert g is not None
    parent: dict[str, Any] = {"group": GATEWAY_GROUP, "kind": "Gateway", "name": g.name}
    if g.namespace:
        parent["namespace"] = g.namespace
    if g.section_name:
        parent["sectionName"] = g.section_name
    # Gateways default to short upstream timeouts (Envoy: 15 s); a long generation needs
    # the service's own request timeout (Gateway API "Extended" support).
    timeouts = {"request": f"{ctx.spec.deployment.request_timeout_seconds}s"}
    rules: list[dict[str, Any]]
    if candidate is None:
        rules = [{"backendRefs": [_backend(ctx.name, 100)], "timeouts": timeouts}]
    elif r.strategy == "abTest":
        match = {"headers": [{"type": "Exact", "name": r.header, "value": r.header_value}]}
        rules = [
            {"matches": [match], "backendRefs": [_backend(candidate, 100)], "timeouts": timeouts},
            {"backendRefs": [_backend(ctx.name, 100)], "timeouts": timeouts},
        ]
    else:  # canary, blueGreen: weights are shares of 100
        p = r.traffic_percent
        rules = [{"backendRefs": [_backend(ctx.name, 100 - p), _backend(candidate, p)], "timeouts": timeouts}]
    spec: dict[str, Any] = {"parentRefs": [parent]}
    if g.hostnames:
        spec["hostnames"] = list(g.hostnames)
    spec["rules"] = rules
    name = httproute_name(ctx)
    values = {"metadata": ctx.metadata(name, component="route"), "spec": spec}
    return Manifest("gateway/httproute.yaml.j2", "HTTPRoute", name, values, namespace=ctx.namespace,
                    aliases=("route", "httproute"))


def analysis_notes(ctx: PlanContext, cand: CandidatePlan) -> list[str]:
    """PromQL comparing candidate and stable, for the promotion decision (docs/scaling.md)."""
    stable = scaling.service_queries(ctx)
    new = scaling.service_queries(cand.context, cand.name, cand.metric_name)
    out = []
    if stable.has_error_ratio() and new.has_error_ratio():
        out.append(f"rollout: compare error ratio: candidate {new.error_ratio()} vs stable {stable.error_ratio()}")
    if stable.has("time_to_first_token") and new.has("time_to_first_token"):
        out.append(f"rollout: compare p95 TTFT: candidate {new.ttft(0.95)} vs stable {stable.ttft(0.95)}")
    return out


def plan_rollout(ctx: PlanContext, engine: EnginePlan, scaling_section: Section) -> Section:
    """Rollout strategy of the service: deployment strategy, candidate, route."""
    if ctx.spec.deployment.mode == "knative":
        return _knative(ctx)
    r = ctx.spec.rollout
    out = Section()
    out.predictor["deploymentStrategy"] = rolling_strategy()
    out.notes.append(
        "rollout: Deployment RollingUpdate maxUnavailable 0, maxSurge 1 (one extra replica's GPUs must be free "
        f"during an update); terminationGracePeriodSeconds {engine.termination_grace_seconds} s from the "
        "engine plan lets in-flight generations finish")
    cand_name = None
    if renders_candidate(ctx):
        cand = plan_candidate(ctx, engine, scaling_section)
        cand_name = cand.name
        out.manifests.extend(candidate_manifests(ctx, engine, cand))
        out.notes.extend(cand.section.notes)
        out.notes.append(_strategy_note(ctx, cand.name))
        out.notes.extend(analysis_notes(ctx, cand))
    if r.gateway is not None:
        out.manifests.append(httproute_manifest(ctx, cand_name))
    return out


def _strategy_note(ctx: PlanContext, cand: str) -> str:
    r = ctx.spec.rollout
    route = httproute_name(ctx)
    if r.strategy == "canary":
        return (f"rollout: canary: {r.traffic_percent} % of requests through HTTPRoute {route} go to {cand}; "
                "promote by copying the candidate into the spec and setting strategy rolling, roll back with "
                "trafficPercent 0 (docs/scaling.md)")
    if r.strategy == "abTest":
        return (f"rollout: A/B test: requests with header {r.header}: {r.header_value} go to {cand}, "
                "the rest to the stable service")
    side = "green (the candidate)" if r.traffic_percent == 100 else "blue (the stable service)"
    return f"rollout: blue/green: all traffic through HTTPRoute {route} goes to {side}; flip with trafficPercent"


def _knative(ctx: PlanContext) -> Section:
    """Knative mode: KServe splits traffic between the latest and the last rolled-out revision."""
    r = ctx.spec.rollout
    out = Section()
    if r.strategy in ("canary", "blueGreen"):
        out.predictor["canaryTrafficPercent"] = r.traffic_percent
        out.isvc_annotations[TAG_ROUTING] = "true"
        if r.strategy == "canary":
            out.notes.append(
                f"rollout: Knative canary: the latest revision gets {r.traffic_percent} %, the last rolled-out "
                "revision the rest (tagged URLs latest-/prev- for direct tests); promote with strategy rolling, "
                "roll back with trafficPercent 0")
        else:
            out.notes.append(
                f"rollout: Knative blue/green: the latest revision gets {r.traffic_percent} % (0: deployed dark, "
                "reachable on its latest- URL; 100: flipped)")
    else:
        out.notes.append("rollout: Knative moves all traffic to a new revision once it is ready")
    return out
