"""Autoscaling: how the replica count of a predictor follows the load.

Four autoscalers, each in the deployment mode where it works (rules LD300-LD310 refuse
the rest before anything is planned):

* ``keda`` (Standard mode): a KEDA ``ScaledObject`` on the predictor Deployment, with
  Prometheus triggers on the engine's own metrics (PromQL from
  :class:`~llmdeploy.promql.ServiceQueries`, scoped by namespace and served model
  name), and ``serving.kserve.io/autoscalerClass: external`` on the InferenceService so
  that KServe creates no HPA of its own and leaves the replica count to KEDA
  (KServe pkg/constants ``AutoscalerClassExternal``; the HPA reconciler deletes its HPA
  for ``external``/``none``).
* ``hpa`` (Standard mode): KServe's own HPA on cpu or memory (``scaleMetric``).
* ``kpa`` (Knative mode): the Knative Pod Autoscaler through KServe's ``scaleMetric``
  (concurrency or rps), ``scaleTarget`` and ``containerConcurrency``, plus
  ``autoscaling.knative.dev/*`` annotations, which KServe copies onto the revision
  template (reconcilers/knative/ksvc_reconciler.go: ``setAutoScalingAnnotations``).
* ``none``: fixed replicas.

Every number is decided here and explained in ``Section.notes``; docs/scaling.md has the
reasoning at length.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from .. import naming
from ..derive.coldstart import cold_start
from ..derive.metrics import (  # the planner's vocabulary, decided in derive/
    KEDA_METRICS,
    fmt,
    keda_query,
)
from ..derive.replicas import ReplicaBounds, capacity_of, replica_bounds
from ..promql import ServiceQueries
from ..records import record
from .model import Manifest, PlanContext, Section

if TYPE_CHECKING:  # pragma: no cover
    from ..sizing import SizingReport
    from ..spec.models import LLMService
    from .kserve import EnginePlan

# --------------------------------------------------------------------------- keys

# KServe pkg/constants/constants.go: AutoscalerClass = "serving.kserve.io/autoscalerClass".
AUTOSCALER_CLASS = "serving.kserve.io/autoscalerClass"
# Knative serving pkg/apis/autoscaling/register.go (ClassAnnotationKey, KPA class) and
# https://knative.dev/docs/serving/autoscaling/scale-bounds/ ,
# https://knative.dev/docs/serving/autoscaling/scale-to-zero/ (per-revision keys).
KNATIVE_CLASS = "autoscaling.knative.dev/class"
KPA_CLASS = "kpa.autoscaling.knative.dev"
KNATIVE_INITIAL_SCALE = "autoscaling.knative.dev/initial-scale"
KNATIVE_RETENTION = "autoscaling.knative.dev/scale-to-zero-pod-retention-period"
KNATIVE_SCALE_DOWN_DELAY = "autoscaling.knative.dev/scale-down-delay"
# Knative's default target-utilization-percentage (config-autoscaler): the KPA aims at
# 70 % of scaleTarget, so scaleTarget itself is the per-pod capacity.
KNATIVE_TARGET_UTILIZATION = 0.70

# --------------------------------------------------------------------------- defaults

# practices.md "Autoscaling": average waiting requests per replica > 5, activation 2.
DEFAULT_QUEUE_DEPTH = 5.0
# Latency targets scale at 60 % of the SLO: practices.md sets p95 ITL 60 ms against the
# 100 ms alert (alerts.itlP95Seconds); the same ratio is used for TTFT. A new replica
# takes minutes to load, so scaling must start well before the SLO is breached.
LATENCY_HEADROOM = 0.6
# Saturation targets (running requests, tokens/s) at 75 % of what one replica can do:
# the last quarter of a batch is where inter-token latency climbs fastest.
SATURATION_HEADROOM = 0.75
# vLLM preempts requests (recomputes them) as the KV cache fills; alerts fire at 0.95.
DEFAULT_KV_CACHE_TARGET = 0.80
# KServe pkg/constants DefaultCPUUtilization = 80.
DEFAULT_UTILIZATION_PERCENT = 80

# KEDA's fallback after this many failed Prometheus queries in a row (ScaledObject spec
# "fallback"; not supported for cpu/memory triggers, which we never render).
FALLBACK_FAILURE_THRESHOLD = 3

# HPA behaviour: practices.md "scale up fast, down slowly": up one pod per 30 s or +50 %
# per minute, whichever adds more; down one pod per 2 minutes. Windows come from the spec.
SCALE_UP_POLICIES = ({"type": "Pods", "value": 1, "periodSeconds": 30},
                     {"type": "Percent", "value": 50, "periodSeconds": 60})
SCALE_DOWN_POLICIES = ({"type": "Pods", "value": 1, "periodSeconds": 120},)



# --------------------------------------------------------------------------- metrics


def service_queries(ctx: PlanContext, isvc: str | None = None, model_name: str | None = None) -> ServiceQueries:
    """PromQL for the service's predictor, or a candidate's (its InferenceService and metric name).

    vLLM labels its series with ``model_name`` (the first ``--served-model-name``); an
    engine without a model label (TGI) is scoped by the predictor pod names instead
    (:meth:`ServiceQueries.for_service`).
    """
    q = ServiceQueries.for_service(ctx, isvc_names=(isvc or ctx.name,))
    return replace(q, model_name=model_name) if model_name else q


# --------------------------------------------------------------------------- numbers


@record
class TargetChoice:
    """The target of ``scaling.metric`` in the spec's unit, and why."""

    value: float
    reason: str


def suggested_queue_depth(spec: LLMService, sizing: SizingReport | None) -> tuple[float, str] | None:
    """Waiting requests per replica worth a new replica, from the capacity estimate.

    A request at the back of a queue of Q waits about Q ÷ r seconds, r being the
    requests a replica completes per second. Keeping that under the TTFT SLO with the
    latency headroom gives Q = SLO × r × 0.6 (at least 1).
    """
    cap = capacity_of(sizing)
    if cap is None or not spec.scaling.target_load or not cap.requests_per_s_per_replica:
        return None
    slo = spec.monitoring.alerts.ttft_p95_seconds
    rate = float(cap.requests_per_s_per_replica)
    q = max(1.0, math.floor(slo * rate * LATENCY_HEADROOM))
    return q, (f"TTFT SLO {fmt(slo)} s × {rate:.2f} req/s per replica × {LATENCY_HEADROOM} headroom "
               f"= {fmt(q)} waiting requests per replica")


def full_batch(sizing: SizingReport | None, max_num_seqs: int) -> tuple[int, str]:
    """Requests a replica runs at once when busy, and why: ``max_num_seqs``, or fewer when
    the KV cache holds fewer typical requests (or the latency SLO caps the batch) — the
    capacity estimate's operating point."""
    cap = capacity_of(sizing)
    if cap is not None and 0 < cap.concurrency < max_num_seqs:
        return cap.concurrency, (f"{cap.concurrency} requests of {cap.prompt_tokens}+{cap.output_tokens} tokens "
                                 f"run at once (capacity estimate; max-num-seqs {max_num_seqs})")
    return max_num_seqs, f"max-num-seqs {max_num_seqs}"


def choose_target(spec: LLMService, sizing: SizingReport | None, max_num_seqs: int) -> TargetChoice:
    """Resolve ``scaling.target`` (``auto`` included) for ``scaling.metric``."""
    s = spec.scaling
    metric = s.metric
    if s.target != "auto":
        return TargetChoice(float(s.target), "set in the spec or its profile")
    cap = capacity_of(sizing)
    batch, batch_reason = full_batch(sizing, max_num_seqs)
    alerts = spec.monitoring.alerts
    if metric == "queueDepth":
        suggestion = suggested_queue_depth(spec, sizing)
        if suggestion is not None:
            return TargetChoice(*suggestion)
        return TargetChoice(DEFAULT_QUEUE_DEPTH, "5 waiting requests per replica (practices.md)")
    if metric == "runningRequests":
        v = max(1.0, math.floor(batch * SATURATION_HEADROOM))
        return TargetChoice(v, f"{SATURATION_HEADROOM} × a full batch: {batch_reason}")
    if metric == "kvCacheUsage":
        return TargetChoice(DEFAULT_KV_CACHE_TARGET, "80 % KV-cache usage (vLLM preempts as it fills)")
    if metric == "ttftP95":
        v = round(alerts.ttft_p95_seconds * LATENCY_HEADROOM, 3)
        return TargetChoice(v, f"{LATENCY_HEADROOM} × the TTFT SLO {fmt(alerts.ttft_p95_seconds)} s")
    if metric == "itlP95":
        v = round(alerts.itl_p95_seconds * LATENCY_HEADROOM, 4)
        return TargetChoice(v, f"{LATENCY_HEADROOM} × the ITL SLO {fmt(alerts.itl_p95_seconds)} s")
    if metric == "generationTokens":
        tps = cap.decode_tokens_per_s if cap is not None else 0.0
        v = max(1.0, math.floor(tps * SATURATION_HEADROOM))
        return TargetChoice(v, f"{SATURATION_HEADROOM} × {tps:.0f} output tokens/s per replica (capacity estimate)")
    if metric == "concurrency":
        return TargetChoice(float(batch),
                            f"a full batch: {batch_reason}; Knative aims at {KNATIVE_TARGET_UTILIZATION:.0%} of it")
    if metric == "rps":
        rate = cap.requests_per_s_per_replica if cap is not None else 0.0
        v = max(1.0, round(rate))
        return TargetChoice(v, f"{rate:.2f} req/s per replica (capacity estimate); Knative aims at "
                               f"{KNATIVE_TARGET_UTILIZATION:.0%} of it")
    return TargetChoice(float(DEFAULT_UTILIZATION_PERCENT), "KServe's default 80 % utilization")


# --------------------------------------------------------------------------- KEDA


@record
class Trigger:
    """One KEDA Prometheus trigger, values final (threshold in the rendered unit)."""

    name: str
    query: str
    metric_type: str
    threshold: float
    activation: float | None
    explanation: str


@record
class ScaleTarget:
    """What one autoscaler scales: an InferenceService's predictor.

    Attributes:
        isvc: InferenceService name.
        model_name: value of the engine's ``model_name`` label for its pods.
        bounds: replica counts.
        role: ``primary`` or ``candidate`` (the capacity suggestion is noted for the primary only).
    """

    isvc: str
    model_name: str
    bounds: ReplicaBounds
    role: str = "primary"


def keda_triggers(ctx: PlanContext, target: ScaleTarget) -> list[Trigger]:
    """The Prometheus triggers of one ScaledObject."""
    s = ctx.spec.scaling
    q = service_queries(ctx, target.isvc, target.model_name)
    spec_metric = KEDA_METRICS[s.metric]
    choice = choose_target(ctx.spec, ctx.sizing, ctx.sizing.max_num_seqs)
    zero = target.bounds.floor == 0
    activation = None
    if zero and s.activation_target is not None:
        activation = s.activation_target * spec_metric.scale
    triggers = [Trigger(
        name=_kebab(s.metric), query=keda_query(s.metric, q), metric_type=spec_metric.metric_type,
        threshold=round(choice.value * spec_metric.scale, 6), activation=activation,
        explanation=f"{fmt(choice.value * spec_metric.scale)} {spec_metric.unit} ({choice.reason})",
    )]
    if zero:
        # KEDA scales to zero once every trigger is inactive for cooldownPeriod. A queue
        # can be empty while a replica is busy generating, so activity is "any request
        # running or waiting"; its threshold (a full batch per replica) only adds replicas
        # once the queue-based trigger would have already.
        seqs, _ = full_batch(ctx.sizing, ctx.sizing.max_num_seqs)
        triggers.append(Trigger(
            name="in-flight", query=q.in_flight_total(), metric_type="AverageValue",
            threshold=float(seqs), activation=0.0,
            explanation=f"keeps the service up while any request runs; {seqs} per replica is a full batch",
        ))
        if s.activation_query:
            cap = capacity_of(ctx.sizing)
            rate = cap.requests_per_s_per_replica if cap is not None else 0.0
            threshold = float(max(1, math.ceil(rate))) if rate > 0 else 1.0
            triggers.append(Trigger(
                name="wake-up", query=s.activation_query, metric_type="AverageValue",
                threshold=threshold, activation=0.0,
                explanation=(f"wakes the service from zero; {fmt(threshold)} req/s per replica "
                             "(capacity estimate) as a scaling signal"),
            ))
    return triggers


def _kebab(name: str) -> str:
    out = "".join("-" + c.lower() if c.isupper() else c for c in name)
    return out.lstrip("-")


AUTH_PARAMETERS = {
    # KEDA Prometheus scaler, "Authentication Parameters" (keda-docs scalers/prometheus.md).
    "bearer": ("bearerToken",),
    "basic": ("username", "password"),
    "tls": ("cert", "key", "ca"),
    "custom": ("customAuthHeader", "customAuthValue"),
}


def trigger_auth_name(ctx: PlanContext) -> str:
    return naming.child(ctx.name, "keda-auth")


def trigger_auth_manifest(ctx: PlanContext) -> Manifest | None:
    """A TriggerAuthentication reading the Prometheus credentials from the named Secret."""
    p = ctx.spec.scaling.prometheus
    if not p.auth_secret_ref:
        return None
    name = trigger_auth_name(ctx)
    refs = [{"parameter": k, "name": p.auth_secret_ref, "key": k} for k in AUTH_PARAMETERS[p.auth_modes]]
    values = {"metadata": ctx.metadata(name, component="autoscaler"), "spec": {"secretTargetRef": refs}}
    return Manifest("keda/triggerauthentication.yaml.j2", "TriggerAuthentication", name, values,
                    namespace=ctx.namespace, aliases=("keda", "triggerauth"))


def hpa_behavior(ctx: PlanContext) -> dict[str, Any]:
    """HPA behaviour: fast up, slow down (windows from the spec; ≤ 3600 s, KEDA's CRD bound)."""
    s = ctx.spec.scaling
    return {
        "scaleUp": {"stabilizationWindowSeconds": s.scale_up_stabilization_seconds, "selectPolicy": "Max",
                    "policies": [dict(p) for p in SCALE_UP_POLICIES]},
        "scaleDown": {"stabilizationWindowSeconds": s.scale_down_stabilization_seconds, "selectPolicy": "Min",
                      "policies": [dict(p) for p in SCALE_DOWN_POLICIES]},
    }


def scaledobject_manifest(ctx: PlanContext, target: ScaleTarget) -> tuple[Manifest, list[str]]:
    """The ScaledObject of one predictor Deployment, and notes explaining it."""
    s = ctx.spec.scaling
    b = target.bounds
    triggers = keda_triggers(ctx, target)
    auth = trigger_auth_name(ctx) if s.prometheus.auth_secret_ref else None
    rendered = []
    for t in triggers:
        meta = {"serverAddress": s.prometheus.server_address, "query": t.query, "threshold": fmt(t.threshold)}
        if t.activation is not None:
            meta["activationThreshold"] = fmt(t.activation)
        if auth:
            meta["authModes"] = s.prometheus.auth_modes
        trig: dict[str, Any] = {"type": "prometheus", "name": t.name, "metricType": t.metric_type, "metadata": meta}
        if auth:
            trig["authenticationRef"] = {"name": auth}
        rendered.append(trig)
    spec: dict[str, Any] = {
        # KServe names the Standard-mode predictor Deployment <isvc>-predictor (facts.md).
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                           "name": naming.predictor_deployment(target.isvc)},
        "pollingInterval": s.polling_interval_seconds,
        # cooldownPeriod only applies to the step to zero (KEDA ScaledObject spec).
        "cooldownPeriod": s.cooldown_period_seconds,
    }
    notes = []
    if b.floor == 0:
        cs = cold_start(ctx.spec, ctx.sizing)
        if cs is not None:
            # Let the first pod finish loading before KEDA may scale the new service to zero.
            spec["initialCooldownPeriod"] = cs.total
    if b.idle is not None:
        spec["idleReplicaCount"] = b.idle
    spec["minReplicaCount"] = b.min
    spec["maxReplicaCount"] = b.max
    if b.floor >= 1 and all(t.get("metricType") == "AverageValue" for t in rendered):
        # When Prometheus fails 3 times in a row, hold at least minReplicas and never
        # scale down because the metrics are missing. Not with scale-to-zero: a
        # Prometheus outage must not wake an idle service. Not with a `Value` trigger:
        # KEDA's admission webhook rejects fallback unless every trigger uses
        # AverageValue (keda pkg/apis/keda/v1alpha1/scaledobject_types.go CheckFallbackValid).
        spec["fallback"] = {"failureThreshold": FALLBACK_FAILURE_THRESHOLD, "replicas": b.min,
                            "behavior": "currentReplicasIfHigher"}
    spec["advanced"] = {"horizontalPodAutoscalerConfig": {"behavior": hpa_behavior(ctx)}}
    spec["triggers"] = rendered
    labels = {"app.kubernetes.io/instance": target.isvc}
    values = {"metadata": ctx.metadata(target.isvc, component="autoscaler", labels=labels), "spec": spec}
    manifest = Manifest("keda/scaledobject.yaml.j2", "ScaledObject", target.isvc, values,
                        namespace=ctx.namespace, aliases=("keda", "scaledobject"))
    for t in triggers:
        how = ("HPA wants ceil(sum ÷ threshold) replicas" if t.metric_type == "AverageValue"
               else "HPA wants ceil(replicas × value ÷ threshold)")
        notes.append(f"scaling: {target.isvc} trigger {t.name}: threshold {t.explanation}; {how}; "
                     f"query: {t.query}")
    return manifest, notes


# --------------------------------------------------------------------------- sections


def primary_target(ctx: PlanContext) -> ScaleTarget:
    return ScaleTarget(ctx.name, ctx.served_model_name, replica_bounds(ctx.spec, ctx.sizing))


def plan_scaling(ctx: PlanContext, engine: EnginePlan) -> Section:
    """Autoscaling of the service's own predictor (its notes start with the batch size the targets rest on)."""
    out = plan_for(ctx, engine, primary_target(ctx), with_auth=True)
    reason = ctx.sizing.max_num_seqs_reason
    if reason:
        out.notes.insert(0, f"engine: max-num-seqs {engine.max_num_seqs}: {reason}")
    z = ctx.sizing
    if z.calibration is not None:  # what the user's own logs changed (sizing/calibration.py)
        out.notes.insert(1 if reason else 0, f"sizing: {z.calibration.describe()}")
    return out


def plan_for(ctx: PlanContext, engine: EnginePlan, target: ScaleTarget, *, with_auth: bool) -> Section:
    """Autoscaling of one predictor (the primary, or a rollout candidate).

    ``with_auth``: also render the TriggerAuthentication (once per service).
    """
    s = ctx.spec.scaling
    mode = ctx.spec.deployment.mode
    b = target.bounds
    out = Section()
    out.notes.append(f"scaling: {target.isvc} replicas {b.floor}..{b.max} ({b.reason})")
    if s.autoscaler == "keda":
        out.isvc_annotations[AUTOSCALER_CLASS] = "external"
        out.predictor.update({"minReplicas": b.floor, "maxReplicas": b.max})
        if with_auth:
            auth = trigger_auth_manifest(ctx)
            if auth is not None:
                out.manifests.append(auth)
        so, notes = scaledobject_manifest(ctx, target)
        out.manifests.append(so)
        out.notes.extend(notes)
    elif s.autoscaler == "hpa":
        percent = round(choose_target(ctx.spec, ctx.sizing, engine.max_num_seqs).value)
        out.isvc_annotations[AUTOSCALER_CLASS] = "hpa"
        out.predictor.update({"minReplicas": b.min, "maxReplicas": b.max, "scaleMetric": s.metric,
                              "scaleMetricType": "Utilization", "scaleTarget": percent})
        out.notes.append(f"scaling: {target.isvc} KServe HPA on {s.metric} at {percent} % utilization; "
                         "cpu and memory do not follow LLM load (rule LD307)")
    elif s.autoscaler == "kpa":
        choice = choose_target(ctx.spec, ctx.sizing, engine.max_num_seqs)
        per_pod = max(1, round(choice.value))
        out.isvc_annotations.update(knative_annotations(ctx))
        out.predictor.update({"minReplicas": b.min, "maxReplicas": b.max, "scaleMetric": s.metric,
                              "scaleTarget": per_pod})
        if s.knative.container_concurrency is not None:
            out.predictor["containerConcurrency"] = s.knative.container_concurrency
        out.notes.append(f"scaling: {target.isvc} Knative KPA on {s.metric}, target {per_pod} per pod "
                         f"({choice.reason})")
    else:  # none
        if mode == "standard":
            # KServe: class none creates no HPA and keeps replicas at minReplicas.
            out.isvc_annotations[AUTOSCALER_CLASS] = "none"
        out.predictor.update({"minReplicas": b.min, "maxReplicas": b.min})
    if s.autoscaler in ("keda", "kpa") and b.floor == 0:
        cs = cold_start(ctx.spec, ctx.sizing)
        if cs is not None:
            out.notes.append(f"scaling: {target.isvc} scales to zero; the first request after an idle "
                             f"period waits {cs.describe()}")
    if s.autoscaler in ("keda", "kpa"):
        sug = suggested_queue_depth(ctx.spec, ctx.sizing) if s.metric == "queueDepth" else None
        if sug is not None and target.role == "primary":
            out.notes.append(f"scaling: suggested queueDepth threshold {sug[1]}")
    return out


def knative_annotations(ctx: PlanContext) -> dict[str, str]:
    """Knative autoscaling annotations (KServe copies the ISVC's annotations onto the revision)."""
    s = ctx.spec.scaling
    k = s.knative
    ann = {KNATIVE_CLASS: KPA_CLASS}
    if k.initial_scale is not None:
        ann[KNATIVE_INITIAL_SCALE] = str(k.initial_scale)
    if k.scale_down_delay is not None:
        ann[KNATIVE_SCALE_DOWN_DELAY] = k.scale_down_delay
    if s.scale_to_zero:
        # Knative drops the last pod as soon as its stable window (60 s) sees no request
        # unless a retention period says otherwise; for a model that takes minutes to
        # load keep it as long as KEDA would (cooldownPeriodSeconds) unless set.
        ann[KNATIVE_RETENTION] = k.scale_to_zero_grace_period or f"{s.cooldown_period_seconds}s"
    elif k.scale_to_zero_grace_period is not None:
        ann[KNATIVE_RETENTION] = k.scale_to_zero_grace_period
    return ann
