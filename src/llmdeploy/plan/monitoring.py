"""Monitoring: how Prometheus scrapes the engine, the recording and alerting rules, the dashboard.

Everything is decided here and laid out by ``templates/monitoring/*.yaml.j2``:

* a ``PodMonitor`` (default) or a headless metrics ``Service`` plus a ``ServiceMonitor``
  on the engine's metrics port and path, labelled so the user's Prometheus selects it
  (``monitoring.labels``; kube-prometheus-stack selects ``release: <helm release>``);
  nothing with ``scrape: annotations`` (the pods already carry ``prometheus.io/*``);
* a ``PrometheusRule`` with one recording group (per-service series, labelled with the
  service's ``namespace``/``model_name`` and ``inferenceservice`` so that several
  services never collide) and one alerting group built on the recorded series;
* a Grafana dashboard ``ConfigMap`` for the Grafana sidecar (``dashboard.py``).

Metric names come from the pinned engine version through :class:`ServiceQueries`, so
alerts, dashboard and KEDA triggers read the same series. A signal the engine version
does not export (TGI has no TTFT histogram or KV-cache gauge) is skipped, and the
plan's notes and the dashboard say so. ``docs/monitoring.md`` is the runbook each alert
links to (``<runbookBaseUrl>#<alert name in lower case>``).
"""

from __future__ import annotations

import json
import math
from dataclasses import field, replace
from typing import Any

from .. import naming
from ..derive.alerts import gpu_memory_alert_floor, pct
from ..promql import (
    GpuQueries,
    ServiceQueries,
    format_duration,
    matchers,
    parse_duration,
)
from ..records import record
from . import rollout
from .kserve import EnginePlan
from .model import Manifest, PlanContext, Section

# ---- recording rule names (level:metric:operation; engine-neutral, so the alerts and any
# dashboard built on them do not change with the engine or its version)
REC_WAITING = "llmdeploy:requests_waiting:sum"
REC_RUNNING = "llmdeploy:requests_running:sum"
REC_KV_AVG = "llmdeploy:kv_cache_usage:avg"
REC_KV_MAX = "llmdeploy:kv_cache_usage:max"
REC_TTFT = "llmdeploy:time_to_first_token_seconds:p{q}"
REC_ITL = "llmdeploy:inter_token_latency_seconds:p{q}"
REC_E2E = "llmdeploy:e2e_request_latency_seconds:p{q}"
REC_PROMPT_TOKENS = "llmdeploy:prompt_tokens:rate"
REC_GENERATION_TOKENS = "llmdeploy:generation_tokens:rate"
REC_REQUESTS = "llmdeploy:requests:rate"
REC_ERROR_RATIO = "llmdeploy:request_errors:ratio"
REC_PREEMPTIONS = "llmdeploy:preemptions:rate"
REC_REPLICAS = "llmdeploy:replicas:count"
REC_GPU_MEMORY = "llmdeploy:gpu_memory_used:ratio"
REC_GPU_UTIL = "llmdeploy:gpu_utilization:ratio"
QUANTILES = (50, 95, 99)

# Label every rule of a service carries (recorded series and alerts): the InferenceService.
SERVICE_LABEL = "inferenceservice"
# KServe sets this label on every predictor pod (pkg/constants: InferenceServicePodLabelKey);
# copied onto the series so a canary's pods can be told apart from the primary's.
ISVC_POD_LABEL = "serving.kserve.io/inferenceservice"

# Knative renames the user container's port to "user-port" whatever the runtime calls it
# (knative.dev/serving pkg/apis/serving/v1: UserPortName); in Standard mode KServe keeps
# the runtime's port name ("http1", kserve.port_name).
KNATIVE_USER_PORT = "user-port"

# When sizing is not available (it always is in `render`), a loading pod is assumed to
# answer within this long.
FALLBACK_STARTUP_SECONDS = 600


def num(x: float) -> str:
    """A threshold as PromQL and people write it: ``20``, ``0.95``, ``0.08``."""
    return str(int(x)) if float(x).is_integer() else repr(float(x))


@record
class RecordingRule:
    """One recording rule: a series of one InferenceService (``isvc``, its ``inferenceservice`` label)."""

    record: str
    expr: str
    signal: str
    isvc: str


@record
class AlertRule:
    """One alerting rule, all values final.

    ``signal`` names what it watches (``queue``, ``kv_cache``, ``ttft``, ``itl``,
    ``errors``, ``preemptions``, ``target_down``, ``no_replica``, ``targets_missing``,
    ``gpu_memory``); ``threshold`` is the number in ``expr`` (None for the
    availability alerts); ``isvc`` the InferenceService it watches (its
    ``inferenceservice`` label). Tests synthesize series around the threshold.
    """

    name: str
    expr: str
    for_: str
    severity: str
    summary: str
    description: str
    signal: str
    isvc: str
    threshold: float | None = None


@record
class ScrapeTarget:
    """How the service's targets appear in Prometheus.

    ``job`` is the job label prometheus-operator gives them: ``<namespace>/<name>`` of a
    PodMonitor, the Service name for a ServiceMonitor (both per the CRD's ``jobLabel``
    documentation); None with ``scrape: annotations``, where the user's own scrape job
    names them and the predictor pod names are matched instead.
    """

    mode: str
    job: str | None
    namespace: str
    pod_regex: str

    @property
    def up_selector(self) -> str:
        if self.job is not None:
            return matchers({"job": self.job, "namespace": self.namespace})
        return matchers({"namespace": self.namespace}, {"pod": self.pod_regex})

    @property
    def group_labels(self) -> tuple[str, ...]:
        return ("namespace", "job") if self.job is not None else ("namespace",)


@record
class Scope:
    """The series of one InferenceService of the service.

    The primary, and in Standard mode a rollout candidate: the candidate runs its own
    InferenceService and, on vLLM, labels its metrics with its own name (rollout.py
    ``plan_candidate``), possibly on another engine version, so it gets its own queries,
    recording rules and alerts.
    """

    isvc: str
    role: str  # "primary" or "candidate"
    queries: ServiceQueries  # grouped
    gpu: GpuQueries | None
    have: frozenset[str]  # signals the engine version exports

    @property
    def rule_labels(self) -> dict[str, str]:
        return {SERVICE_LABEL: self.isvc}

    @property
    def recorded_selector(self) -> str:
        """Selector of this InferenceService's recorded series."""
        return matchers({"namespace": self.queries.namespace, SERVICE_LABEL: self.isvc})


@record
class MonitoringPlan:
    """Every monitoring value of one service."""

    name: str
    namespace: str
    scopes: tuple[Scope, ...]  # primary first
    scrape: ScrapeTarget
    recording: tuple[RecordingRule, ...]
    alerts: tuple[AlertRule, ...]
    skipped: tuple[str, ...]
    runbook_base_url: str
    thresholds: dict[str, float] = field(default_factory=dict)

    @property
    def primary(self) -> Scope:
        return self.scopes[0]

    @property
    def queries(self) -> ServiceQueries:
        """The primary's (grouped) queries."""
        return self.primary.queries

    @property
    def gpu(self) -> GpuQueries | None:
        return self.primary.gpu

    @property
    def isvc_names(self) -> tuple[str, ...]:
        return tuple(s.isvc for s in self.scopes)

    @property
    def rule_labels(self) -> dict[str, str]:
        return self.primary.rule_labels

    @property
    def recorded_selector(self) -> str:
        return self.primary.recorded_selector

    def scope(self, isvc: str) -> Scope:
        return next(s for s in self.scopes if s.isvc == isvc)

    def runbook_url(self, alert: str) -> str:
        return f"{self.runbook_base_url}#{alert.lower()}"

    def alert(self, name: str, isvc: str | None = None) -> AlertRule:
        for a in self.alerts:
            if a.name == name and a.isvc == (isvc or self.name):
                return a
        raise KeyError(name)

    def groups(self) -> list[dict[str, Any]]:
        """The ``spec.groups`` of the PrometheusRule (plain rule-file groups)."""
        base = f"llmdeploy.{self.namespace}.{self.name}"
        groups: list[dict[str, Any]] = [{
            "name": f"{base}.recording",
            "rules": [{"record": r.record, "expr": r.expr, "labels": {SERVICE_LABEL: r.isvc}} for r in self.recording],
        }]
        if self.alerts:
            rules = []
            for a in self.alerts:
                rules.append({
                    "alert": a.name,
                    "expr": a.expr,
                    "for": a.for_,
                    "labels": {"severity": a.severity, SERVICE_LABEL: a.isvc},
                    "annotations": {
                        "summary": a.summary,
                        "description": a.description,
                        "runbook_url": self.runbook_url(a.name),
                    },
                })
            groups.append({"name": f"{base}.alerts", "rules": rules})
        return groups


# --------------------------------------------------------------------------- helpers


def candidate_isvc(ctx: PlanContext) -> str | None:
    """Name of the candidate InferenceService a rollout renders, if any."""
    return rollout.candidate_name(ctx) if rollout.renders_candidate(ctx) else None


def isvc_names(ctx: PlanContext) -> tuple[str, ...]:
    """The InferenceServices whose predictor pods serve this service (primary first)."""
    cand = candidate_isvc(ctx)
    return (ctx.name, cand) if cand else (ctx.name,)


def startup_seconds(ctx: PlanContext) -> int:
    """How long a new pod may take before its engine answers (the startupProbe budget)."""
    from .kserve import startup_budget

    try:
        return int(startup_budget(ctx))
    except (AttributeError, TypeError):  # no sizing (only in partial plans)
        return FALLBACK_STARTUP_SECONDS


def gpu_memory_threshold(ctx: PlanContext) -> float:
    """The GPU memory alert threshold: the spec's, raised above the engine's own allocation."""
    a = ctx.spec.monitoring.alerts
    return max(a.gpu_memory_usage, gpu_memory_alert_floor(ctx.spec.runtime.gpu_memory_utilization))


def scrape_target(ctx: PlanContext) -> ScrapeTarget:
    mon = ctx.spec.monitoring
    regex = ctx.workload_pod_regex(isvc_names(ctx))
    if mon.scrape == "podMonitor":
        job: str | None = f"{ctx.namespace}/{ctx.name}"
    elif mon.scrape == "serviceMonitor":
        job = naming.child(ctx.name, "metrics")
    else:
        job = None
    return ScrapeTarget(mon.scrape, job, ctx.namespace, regex)


# --------------------------------------------------------------------------- rules


def _scope(ctx: PlanContext, isvc: str, role: str, model_name: str, skipped: list[str]) -> Scope:
    q = ServiceQueries.for_service(ctx, isvc_names=(isvc,))
    q = replace(q, model_name=model_name).grouped()
    engine = f"{ctx.engine.display_name} {ctx.engine.version}"
    have: set[str] = set()
    for signal, logical, what in (
        ("queue", "num_requests_waiting", "queue depth"),
        ("running", "num_requests_running", "running requests and replicas"),
        ("kv_cache", "kv_cache_usage", "KV-cache usage"),
        ("ttft", "time_to_first_token", "time to first token"),
        ("itl", "inter_token_latency", "inter-token latency"),
        ("e2e", "e2e_request_latency", "end-to-end latency"),
        ("preemptions", "num_preemptions", "preemptions"),
    ):
        if q.has(logical):
            have.add(signal)
        elif role == "primary" or not any(logical in s for s in skipped):
            note = ctx.engine.metric_info(logical).note if logical in ctx.engine.logical_metrics else None
            who = "" if role == "primary" else f" (candidate {isvc})"
            skipped.append(f"{what}{who}: {engine} exports no {logical} metric" + (f" ({note})" if note else ""))
    if q.has_error_ratio():
        have.add("errors")
    else:
        skipped.append(f"error ratio: {engine} exports no request outcome metric")
    for signal, ok in (("prompt_tokens", q.has_tokens("prompt")), ("generation_tokens", q.has_tokens("generation")),
                       ("requests", q.has("request_success") or q.has("request_count"))):
        if ok:
            have.add(signal)
    mon = ctx.spec.monitoring
    gpu = None
    if mon.dcgm:
        gpu = GpuQueries(ctx.namespace, ctx.workload_pod_regex((isvc,)), mon.dcgm_honor_labels)
        have |= {"gpu_memory", "gpu_util"}
    return Scope(isvc, role, q, gpu, frozenset(have))


def _recording(scope: Scope) -> list[RecordingRule]:
    q, have, isvc = scope.queries, scope.have, scope.isvc
    rec: list[RecordingRule] = []

    def add(record: str, expr: str, signal: str) -> None:
        rec.append(RecordingRule(record, expr, signal, isvc))

    if "queue" in have:
        add(REC_WAITING, q.waiting_total(), "queue")
    if "running" in have:
        add(REC_RUNNING, q.running_total(), "running")
        add(REC_REPLICAS, q.replicas(), "replicas")
    if "kv_cache" in have:
        add(REC_KV_AVG, q.kv_cache_usage_avg(), "kv_cache")
        add(REC_KV_MAX, q.kv_cache_usage_max(), "kv_cache")
    for signal, tmpl, fn in (("ttft", REC_TTFT, q.ttft), ("itl", REC_ITL, q.itl), ("e2e", REC_E2E, q.e2e)):
        if signal in have:
            for p in QUANTILES:
                add(tmpl.format(q=p), fn(p / 100), signal)
    if "requests" in have:
        add(REC_REQUESTS, q.requests_per_s(), "requests")
    if "errors" in have:
        add(REC_ERROR_RATIO, q.error_ratio(), "errors")
    if "prompt_tokens" in have:
        add(REC_PROMPT_TOKENS, q.prompt_tokens_per_s(), "prompt_tokens")
    if "generation_tokens" in have:
        add(REC_GENERATION_TOKENS, q.generation_tokens_per_s(), "generation_tokens")
    if "preemptions" in have:
        add(REC_PREEMPTIONS, q.preemptions_per_s(), "preemptions")
    if scope.gpu is not None:
        add(REC_GPU_MEMORY, scope.gpu.memory_used_ratio(), "gpu_memory")
        add(REC_GPU_UTIL, scope.gpu.utilization_ratio(), "gpu_util")
    return rec


def build_monitoring(ctx: PlanContext) -> MonitoringPlan:
    """Decide the recording rules and alerts of one service."""
    a = ctx.spec.monitoring.alerts
    skipped: list[str] = []
    scopes = [_scope(ctx, ctx.name, "primary", ctx.served_model_name, skipped)]
    if rollout.renders_candidate(ctx):
        # Its own InferenceService, metric model name and engine version (rollout.plan_candidate).
        scopes.append(_scope(rollout.candidate_context(ctx), rollout.candidate_name(ctx), "candidate",
                             rollout.candidate_metric_name(ctx), skipped))
    recording = [r for s in scopes for r in _recording(s)]
    scrape = scrape_target(ctx)
    alerts: list[AlertRule] = []
    thresholds: dict[str, float] = {}
    if a.enabled:
        for s in scopes:
            alerts += _signal_alerts(ctx, s, thresholds)
        alerts += _availability_alerts(ctx, scrape)
    return MonitoringPlan(ctx.name, ctx.namespace, tuple(scopes), scrape, tuple(recording), tuple(alerts),
                          tuple(dict.fromkeys(skipped)), a.runbook_base_url, thresholds)


def pod_ready_budget(ctx: PlanContext) -> int:
    """Seconds from a pod's creation until its engine may answer: pod start, the storage
    initializer's download, then the startupProbe budget (which covers the model load).

    prometheus-operator keeps Pending and not-ready pods as targets (it drops only the
    Failed and Succeeded phases: pkg/prometheus/promcfg.go at v0.93.0), so during a scale-up
    the new pod's target is down for all of this time.
    """
    from ..derive.coldstart import cold_start

    cs = cold_start(ctx.spec, ctx.sizing)
    before = (cs.start_seconds + cs.download_seconds) if cs is not None else 0
    return before + startup_seconds(ctx)


def _slow_for(ctx: PlanContext) -> str:
    """``for`` of the "down" alerts: a new pod pulls, downloads and loads its model before the
    engine's HTTP server (and /metrics) answers, so they wait at least that long."""
    fd = ctx.spec.monitoring.alerts.for_duration
    slow = max(parse_duration(fd), pod_ready_budget(ctx))
    return fd if slow == parse_duration(fd) else format_duration(60 * math.ceil(slow / 60))


def _signal_alerts(ctx: PlanContext, scope: Scope, th: dict[str, float]) -> list[AlertRule]:
    a = ctx.spec.monitoring.alerts
    rs = scope.recorded_selector
    fd = a.for_duration
    isvc = scope.isvc
    service = f"{ctx.namespace}/{isvc}" + (" (rollout candidate)" if scope.role == "candidate" else "")
    model = scope.queries.model_name
    have = scope.have
    out: list[AlertRule] = []
    value = '{{ $value | printf "%.4g" }}'
    percent = "{{ $value | humanizePercentage }}"

    if "queue" in have:
        th["queue"] = a.queue_depth
        out.append(AlertRule(
            "LLMServiceQueueBackingUp", f"{REC_WAITING}{rs} > {num(a.queue_depth)}", fd, "warning",
            f"Requests are queueing in {service}",
            f"{value} requests wait in the engine queues of {service} (model {model}), more than "
            f"{num(a.queue_depth)} for {fd}: the replicas cannot keep up with the load.",
            "queue", isvc, a.queue_depth))
    if "kv_cache" in have:
        th["kv_cache"] = a.kv_cache_usage
        out.append(AlertRule(
            "LLMServiceKVCacheNearlyFull", f"{REC_KV_MAX}{rs} > {num(a.kv_cache_usage)}", fd, "warning",
            f"KV cache nearly full in {service}",
            f"The fullest replica of {service} uses {percent} of its KV cache (threshold "
            f"{pct(a.kv_cache_usage)}) for {fd}: new requests wait and running ones may be preempted.",
            "kv_cache", isvc, a.kv_cache_usage))
    if "ttft" in have:
        th["ttft"] = a.ttft_p95_seconds
        out.append(AlertRule(
            "LLMServiceTimeToFirstTokenHigh", f"{REC_TTFT.format(q=95)}{rs} > {num(a.ttft_p95_seconds)}", fd,
            "warning", f"Time to first token above its SLO in {service}",
            f"p95 time to first token of {service} is {value}s, above the {num(a.ttft_p95_seconds)}s SLO "
            f"for {fd}.", "ttft", isvc, a.ttft_p95_seconds))
    if "itl" in have:
        th["itl"] = a.itl_p95_seconds
        out.append(AlertRule(
            "LLMServiceInterTokenLatencyHigh", f"{REC_ITL.format(q=95)}{rs} > {num(a.itl_p95_seconds)}", fd,
            "warning", f"Inter-token latency above its SLO in {service}",
            f"p95 inter-token latency of {service} is {value}s, above the {num(a.itl_p95_seconds)}s SLO "
            f"for {fd}: generation is slower than users were promised.", "itl", isvc, a.itl_p95_seconds))
    if "errors" in have:
        th["errors"] = a.error_rate
        out.append(AlertRule(
            "LLMServiceErrorRatioHigh", f"{REC_ERROR_RATIO}{rs} > {num(a.error_rate)}", fd, "critical",
            f"Requests failing in {service}",
            f"{percent} of the requests to {service} failed on the server side ({scope.queries.error_source()}; budget "
            f"{pct(a.error_rate)}) for {fd}.", "errors", isvc, a.error_rate))
    if "preemptions" in have:
        th["preemptions"] = a.preemptions_per_second
        out.append(AlertRule(
            "LLMServicePreemptions", f"{REC_PREEMPTIONS}{rs} > {num(a.preemptions_per_second)}", fd, "warning",
            f"Requests are being preempted in {service}",
            f"{service} preempts {value} requests per second (threshold {num(a.preemptions_per_second)}) "
            f"for {fd}: the KV cache is too small for the running batch and preempted requests are "
            "recomputed.", "preemptions", isvc, a.preemptions_per_second))
    if scope.gpu is not None:
        thr = gpu_memory_threshold(ctx)
        th["gpu_memory"] = thr
        out.append(AlertRule(
            "LLMServiceGPUMemoryHigh", f"{REC_GPU_MEMORY}{rs} > {num(thr)}", fd, "warning",
            f"GPU memory nearly exhausted in {service}",
            f"GPU {{{{ $labels.gpu }}}} of {{{{ $labels.pod }}}} ({service}) has {percent} of its memory in use "
            f"(threshold {pct(thr)}; the engine itself takes {pct(ctx.spec.runtime.gpu_memory_utilization)}) "
            f"for {fd}: an out-of-memory error is near.", "gpu_memory", isvc, thr))
    return out


def _availability_alerts(ctx: PlanContext, scrape: ScrapeTarget) -> list[AlertRule]:
    """Alerts on the scrape targets (``up``): every pod of the service, primary and candidate."""
    mon = ctx.spec.monitoring
    fd = mon.alerts.for_duration
    slow_for = _slow_for(ctx)
    service = f"{ctx.namespace}/{ctx.name}"
    up = f"up{scrape.up_selector}"
    by = ", ".join(scrape.group_labels)
    out = [
        AlertRule(
            "LLMServiceTargetDown",
            f"{up} == 0 and on ({by}) (sum by ({by}) ({up}) > 0)", slow_for, "warning",
            f"A replica of {service} does not answer on its metrics port",
            f"Prometheus cannot scrape {{{{ $labels.pod }}}} ({{{{ $labels.instance }}}}) of {service} for "
            f"{slow_for} while other replicas answer: the engine is down, stuck or still loading the model.",
            "target_down", ctx.name),
        AlertRule(
            "LLMServiceNoReplicaUp", f"sum by ({by}) ({up}) == 0", slow_for, "critical",
            f"No replica of {service} answers",
            f"Every metrics target of {service} has failed for {slow_for}: the service is down.",
            "no_replica", ctx.name),
    ]
    # With scale to zero, no target at all is the idle state, not an outage.
    scale_to_zero = ctx.spec.scaling.scale_to_zero or ctx.spec.scaling.min_replicas == 0
    if not scale_to_zero:
        finder = {"podMonitor": "PodMonitor", "serviceMonitor": "ServiceMonitor"}.get(
            mon.scrape, "pod-annotation scrape job")
        out.append(AlertRule(
            "LLMServiceTargetsMissing", f"absent({up})", fd, "critical",
            f"Prometheus finds no metrics target for {service}",
            f"No target of {service} has been discovered for {fd}: no predictor pod exists, or the "
            f"{finder} does not select its pods.",
            "targets_missing", ctx.name))
    return out


# --------------------------------------------------------------------------- manifests


def _pod_selector(ctx: PlanContext) -> dict[str, Any]:
    cand = candidate_isvc(ctx)
    if cand is None:
        return {"matchLabels": ctx.predictor_selector()}
    base = {k: v for k, v in ctx.predictor_selector().items() if k != ISVC_POD_LABEL}
    return {
        "matchLabels": base,
        "matchExpressions": [{"key": ISVC_POD_LABEL, "operator": "In", "values": [ctx.name, cand]}],
    }


def _endpoint(ctx: PlanContext, engine: EnginePlan, port: str) -> dict[str, Any]:
    mon = ctx.spec.monitoring
    return {"port": port, "path": engine.metrics_path, "scheme": "http", "interval": mon.scrape_interval}


def scrape_manifests(ctx: PlanContext, engine: EnginePlan) -> list[Manifest]:
    """PodMonitor, or metrics Service + ServiceMonitor, or nothing (annotations)."""
    mon = ctx.spec.monitoring
    extra = dict(sorted(mon.labels.items()))
    if mon.scrape == "podMonitor":
        port = KNATIVE_USER_PORT if ctx.spec.deployment.mode == "knative" else engine.port_name
        spec = {
            "selector": _pod_selector(ctx),
            "namespaceSelector": {"matchNames": [ctx.namespace]},
            "podTargetLabels": [ISVC_POD_LABEL],
            "podMetricsEndpoints": [_endpoint(ctx, engine, port)],
        }
        values = {"metadata": ctx.metadata(ctx.name, component="metrics", labels=extra), "spec": spec}
        return [Manifest("monitoring/podmonitor.yaml.j2", "PodMonitor", ctx.name, values,
                         namespace=ctx.namespace, aliases=("podmonitor", "monitoring"))]
    if mon.scrape == "serviceMonitor":
        # Our own headless Service: KServe's `<isvc>-predictor` Service exists only in
        # Standard mode (Knative's is an ExternalName) and names its port after the
        # container's (service_reconciler.go createDefaultSvc: port 80 -> the container
        # port), so a Service of our own is the one stable target in both modes. The
        # targetPort is the number: Knative renames the container port to user-port.
        svc_name = naming.child(ctx.name, "metrics")
        svc_labels = ctx.labels("metrics")
        if candidate_isvc(ctx) is None:
            pod_sel = ctx.predictor_selector()
        else:  # a Service selector cannot say "In": select the service's predictor pods by our name label
            pod_sel = {"app.kubernetes.io/name": ctx.name, "component": "predictor"}
        svc = {
            "metadata": ctx.metadata(svc_name, component="metrics"),
            "spec": {
                "clusterIP": "None",
                "selector": dict(sorted(pod_sel.items())),
                "ports": [{"name": "metrics", "port": engine.port, "targetPort": engine.port, "protocol": "TCP"}],
            },
        }
        sm_spec = {
            "selector": {"matchLabels": {k: svc_labels[k] for k in (
                "app.kubernetes.io/component", "app.kubernetes.io/instance", "app.kubernetes.io/managed-by")}},
            "namespaceSelector": {"matchNames": [ctx.namespace]},
            "podTargetLabels": [ISVC_POD_LABEL],
            "endpoints": [_endpoint(ctx, engine, "metrics")],
        }
        sm = {"metadata": ctx.metadata(ctx.name, component="metrics", labels=extra), "spec": sm_spec}
        return [
            Manifest("monitoring/service.yaml.j2", "Service", svc_name, svc, namespace=ctx.namespace,
                     aliases=("metrics-service", "monitoring")),
            Manifest("monitoring/servicemonitor.yaml.j2", "ServiceMonitor", ctx.name, sm,
                     namespace=ctx.namespace, aliases=("servicemonitor", "monitoring")),
        ]
    return []


def rule_manifest(ctx: PlanContext, plan: MonitoringPlan) -> Manifest:
    name = naming.child(ctx.name, "rules")
    extra = dict(sorted(ctx.spec.monitoring.labels.items()))
    values = {"metadata": ctx.metadata(name, component="alerting", labels=extra), "spec": {"groups": plan.groups()}}
    return Manifest("monitoring/prometheusrule.yaml.j2", "PrometheusRule", name, values,
                    namespace=ctx.namespace, aliases=("rules", "alerts", "monitoring"))


def dashboard_manifest(ctx: PlanContext, plan: MonitoringPlan) -> Manifest:
    from .dashboard import build_dashboard

    d = ctx.spec.monitoring.dashboard
    dashboard = build_dashboard(ctx, plan)
    name = naming.child(ctx.name, "dashboard")
    ns = d.namespace or ctx.namespace
    # Sorted keys and fixed indentation: the same spec always gives the same bytes.
    text = json.dumps(dashboard, indent=2, sort_keys=True, ensure_ascii=True) + "\n"
    values = {
        "metadata": ctx.metadata(name, namespace=ns, component="dashboard", labels=dict(sorted(d.labels.items()))),
        "data": {f"{ctx.namespace}-{ctx.name}.json": text},
        "dashboard": dashboard,
    }
    return Manifest("monitoring/dashboard-configmap.yaml.j2", "ConfigMap", name, values,
                    namespace=ns, aliases=("dashboard", "monitoring"))


def plan_monitoring(ctx: PlanContext, engine: EnginePlan) -> Section:
    """The monitoring section of a service's plan (nothing when monitoring is off)."""
    out = Section()
    mon = ctx.spec.monitoring
    if not mon.enabled:
        return out
    plan = build_monitoring(ctx)
    out.manifests.extend(scrape_manifests(ctx, engine))
    out.manifests.append(rule_manifest(ctx, plan))
    if mon.dashboard.enabled:
        out.manifests.append(dashboard_manifest(ctx, plan))
    for s in plan.skipped:
        out.notes.append(f"{ctx.namespace}/{ctx.name}: monitoring skips {s}")
    return out
