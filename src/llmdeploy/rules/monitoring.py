"""LD5xx: monitoring rules (alerts that cannot fire, or fire all the time; scraping that finds nothing)."""

from __future__ import annotations

from collections.abc import Iterator

from ..derive.disagg import transfer_failures_metric
from ..diagnostics import Severity
from .registry import Finding, RuleContext, rule

ALERTS = ("monitoring", "alerts")

# Logical metric behind each threshold of `monitoring.alerts` (engines/<engine>.yaml names).
ALERT_METRICS = {
    "queueDepth": ("num_requests_waiting", "queue"),
    "kvCacheUsage": ("kv_cache_usage", "KV-cache"),
    "ttftP95Seconds": ("time_to_first_token", "time-to-first-token"),
    "itlP95Seconds": ("inter_token_latency", "inter-token latency"),
    "preemptionsPerSecond": ("num_preemptions", "preemption"),
}

# scaling.metric -> the alert threshold on the same signal.
SCALING_TO_ALERT = {
    "queueDepth": "queueDepth",
    "kvCacheUsage": "kvCacheUsage",
    "ttftP95": "ttftP95Seconds",
    "itlP95": "itlP95Seconds",
}

MAX_SCRAPE_FOR_2M_WINDOWS = 30  # seconds: 4 samples in a 2m rate() window


def _alerts_on(ctx: RuleContext) -> bool:
    m = ctx.spec.monitoring
    return m.enabled and m.alerts.enabled


def _threshold(ctx: RuleContext, key: str) -> float:
    a = ctx.spec.monitoring.alerts
    return {
        "queueDepth": a.queue_depth, "kvCacheUsage": a.kv_cache_usage, "ttftP95Seconds": a.ttft_p95_seconds,
        "itlP95Seconds": a.itl_p95_seconds, "errorRate": a.error_rate,
        "preemptionsPerSecond": a.preemptions_per_second, "gpuMemoryUsage": a.gpu_memory_usage,
    }[key]


@rule("LD501", Severity.WARNING)
def alert_metric_not_exported(ctx: RuleContext) -> Iterator[Finding]:
    """An alert needs a metric the pinned engine version does not export.

    Alerts, recording rules and dashboard panels use the metric names of the pinned
    engine version (``engines/<engine>.yaml``). When that version exports no such metric
    (TGI has no time-to-first-token histogram, no KV-cache gauge and no preemption
    counter), llmdeploy leaves the alert and its panel out. It is a warning when the spec
    sets that threshold itself (it expects an alert that will not exist) and a note
    otherwise. A release that serves no Prometheus endpoint at all (TensorRT-LLM before
    1.1) gets no per-metric notes: LD140 refuses it once.

    A prefill/decode service (``disaggregation`` on the llmInferenceService target, whose
    ``<name>-pd-rules`` hold the per-role alerts) gets ``LLMServiceKVTransferFailures`` only
    where the pinned vLLM counts failed KV transfers: the NIXL connector from 0.11.1
    (``vllm:nixl_num_failed_transfers_total``, ``NixlPromMetrics`` in
    vllm/distributed/kv_transfer/kv_connector/v1/nixl_connector.py of the 0.11.1 sdist; 0.11.0
    only logs connector statistics). Elsewhere a note says that a failed transfer only shows
    as the decode pods' errors.

    Warns::

        runtime:
          engine: tgi
        monitoring:
          alerts:
            ttftP95Seconds: 1.5    # TGI exports no TTFT histogram
    """
    engine = ctx.resolved.engine
    if engine is None or not _alerts_on(ctx):
        return
    if not engine.defaults.extra.get("prometheus_metrics", True):
        # No Prometheus endpoint at all (TensorRT-LLM before 1.1): LD140 refuses the spec once;
        # a note per missing metric would only repeat it.
        return
    from ..promql import ServiceQueries

    checks = [(key, logical, what, engine.has_metric(logical)) for key, (logical, what) in ALERT_METRICS.items()]
    q = ServiceQueries(engine, ctx.spec.metadata.namespace, ctx.spec.metadata.name)
    checks.append(("errorRate", "request outcome", "error-ratio", q.has_error_ratio()))
    for key, logical, what, present in checks:
        if present:
            continue
        path = (*ALERTS, key)
        user = ctx.user_set(path)
        yield Finding(
            path if user else ALERTS,
            f"{engine.display_name} {engine.version} exports no {logical} metric: the {what} alert, its "
            "recording rules and dashboard panel are left out",
            "remove the threshold, or pin an engine that exports the metric" if user else None,
            severity=None if user else Severity.INFO,
            key=True,
        )
    d = ctx.spec.disaggregation
    if (d is not None and ctx.spec.deployment.target == "llmInferenceService" and ctx.spec.runtime.engine == "vllm"
            and transfer_failures_metric(ctx.spec, engine) is None):
        why = (f"the {d.connector} connector exports no failure counter" if d.connector != "nixl" else
               f"{engine.display_name} {engine.version} exports no NIXL failure counter "
               f"(vllm:nixl_num_failed_transfers_total, from 0.11.1)")
        yield Finding(("disaggregation", "connector"),
                      f"{why}: no KV-transfer failure alert; a failed transfer only shows as the decode pods' "
                      "errors (LLMServiceErrorRatioHigh)",
                      "pin vLLM >= 0.11.1 with the nixl connector to alert on failed transfers"
                      if d.connector == "nixl" else None,
                      severity=Severity.INFO, key=True)


@rule("LD502", Severity.WARNING)
def annotation_scrape_needs_relabelling(ctx: RuleContext) -> Iterator[Finding]:
    """``scrape: annotations`` only works if your scrape job adds ``namespace`` and ``pod`` labels.

    With ``annotations`` llmdeploy renders no PodMonitor or ServiceMonitor and relies on a
    Prometheus job that scrapes pods by their ``prometheus.io/*`` annotations. Every
    recording rule, alert and KEDA query llmdeploy renders selects the service by its
    ``namespace`` label, and the availability alerts by ``pod``: such a job must relabel
    ``__meta_kubernetes_namespace`` to ``namespace`` and ``__meta_kubernetes_pod_name``
    to ``pod``, or every query silently matches nothing. prometheus-operator ignores the
    annotations altogether (kube-prometheus-stack needs a PodMonitor).
    """
    m = ctx.spec.monitoring
    if m.enabled and m.scrape == "annotations":
        yield Finding(("monitoring", "scrape"),
                      "scrape: annotations relies on a pod-annotation scrape job that sets the namespace and pod "
                      "labels; without them every llmdeploy rule, alert and KEDA query matches nothing",
                      "use podMonitor (prometheus-operator), or make sure that job relabels "
                      "__meta_kubernetes_namespace to namespace and __meta_kubernetes_pod_name to pod")


@rule("LD503", Severity.WARNING)
def alert_cannot_fire(ctx: RuleContext) -> Iterator[Finding]:
    """An alert threshold can never be crossed.

    A ratio never exceeds 1, so ``errorRate``, ``kvCacheUsage`` or ``gpuMemoryUsage`` at
    1 gives an alert that never fires. A latency SLO at or above the request timeout
    (``deployment.requestTimeoutSeconds``) never fires either: requests are cut off before
    they could breach it (a value in milliseconds written as seconds looks like this).

    Warns::

        deployment:
          requestTimeoutSeconds: 300
        monitoring:
          alerts:
            ttftP95Seconds: 500    # 500 ms was meant: 0.5
    """
    if not _alerts_on(ctx):
        return
    spec = ctx.spec
    for key in ("errorRate", "kvCacheUsage", "gpuMemoryUsage"):
        if key == "gpuMemoryUsage" and not spec.monitoring.dcgm:
            continue
        if _threshold(ctx, key) >= 1:
            yield Finding((*ALERTS, key), f"{key} is 1: the ratio never exceeds 1, so this alert never fires",
                          "lower it, or turn the alerts off with monitoring.alerts.enabled: false")
    timeout = spec.deployment.request_timeout_seconds
    for key in ("ttftP95Seconds", "itlP95Seconds"):
        value = _threshold(ctx, key)
        if value >= timeout:
            yield Finding((*ALERTS, key),
                          f"{key} is {value:g}s but requests time out after {timeout}s "
                          "(deployment.requestTimeoutSeconds): this alert can never fire",
                          f"the value is in seconds (e.g. {value / 1000:g} for {value:g} ms)")


@rule("LD504", Severity.WARNING)
def alert_below_scaling_target(ctx: RuleContext) -> Iterator[Finding]:
    """An alert fires at a level the autoscaler treats as normal.

    KEDA keeps the scaling metric around ``scaling.target`` per replica: a queue alert at or
    below the per-replica queue target fires before a second replica is even asked for,
    and a latency SLO at or below the latency target is breached by design. Set the alert
    above the target so it means "the autoscaler cannot keep up".

    Warns::

        scaling:
          metric: ttftP95
          target: 3
        monitoring:
          alerts:
            ttftP95Seconds: 2      # KEDA aims at 3 s: the SLO is broken at steady state
    """
    s = ctx.spec.scaling
    if not _alerts_on(ctx) or s.autoscaler != "keda" or s.target == "auto" or s.metric not in SCALING_TO_ALERT:
        return
    key = SCALING_TO_ALERT[s.metric]
    value = _threshold(ctx, key)
    if value <= float(s.target):
        where: tuple[str, ...] = (*ALERTS, key)
        pdoc = ctx.validated.profile_doc
        if not ctx.user_set(where) and not (pdoc is not None and pdoc.has(where)):
            where = ("scaling", "target")  # the alert threshold is a default: point at what the user chose
        yield Finding(where,
                      f"{key} ({value:g}) is at or below the autoscaling target scaling.target ({float(s.target):g} "
                      f"for {s.metric}): the alert fires while the autoscaler still considers the load normal",
                      "set the alert threshold above the scaling target")


@rule("LD505", Severity.WARNING)
def gpu_memory_alert_below_engine_allocation(ctx: RuleContext) -> Iterator[Finding]:
    """The GPU memory alert is below what the engine allocates at start.

    vLLM takes ``gpuMemoryUtilization`` of every GPU when it starts (weights, activations
    and the KV cache) and keeps it, so the DCGM framebuffer usage sits at that share
    under any load. An alert at or below it would fire permanently; llmdeploy raises the
    threshold to ``gpuMemoryUtilization`` + 5 points (at most 99 %) and says so here.
    """
    m = ctx.spec.monitoring
    path = (*ALERTS, "gpuMemoryUsage")
    if not _alerts_on(ctx) or not m.dcgm or not ctx.user_set(path):
        return
    from ..derive.alerts import gpu_memory_alert_floor, pct

    util = ctx.spec.runtime.gpu_memory_utilization
    floor = gpu_memory_alert_floor(util)
    if m.alerts.gpu_memory_usage < floor:
        yield Finding(path,
                      f"gpuMemoryUsage {pct(m.alerts.gpu_memory_usage)} is not above what the engine allocates at "
                      f"start (runtime.gpuMemoryUtilization {pct(util)}): the alert is raised to {pct(floor)}",
                      f"set it to at least {floor:g}")


@rule("LD506", Severity.WARNING)
def scrape_interval_too_long(ctx: RuleContext) -> Iterator[Finding]:
    """The scrape interval is too long for 2-minute rate windows.

    ``rate()`` needs several samples per window; llmdeploy's queries use 2-minute windows,
    which hold four samples at a 30 s scrape interval. A longer interval widens the
    windows to four scrape intervals, so alerts, dashboards and the autoscaler react later.
    """
    from ..promql import parse_duration

    m = ctx.spec.monitoring
    seconds = parse_duration(m.scrape_interval)
    if m.enabled and seconds > MAX_SCRAPE_FOR_2M_WINDOWS:
        yield Finding(("monitoring", "scrapeInterval"),
                      f"scrapeInterval {m.scrape_interval} leaves fewer than 4 samples in a 2m rate window; rate "
                      f"windows widen to {4 * seconds:g}s and alerts and autoscaling react later",
                      "scrape every 30s or faster")


@rule("LD507", Severity.WARNING)
def itl_slo_below_decode_speed(ctx: RuleContext) -> Iterator[Finding]:
    """The inter-token latency SLO is faster than the GPU decodes a full batch.

    Decoding is memory-bandwidth bound: each step reads the weights and the batch's KV
    cache once, and every running sequence gets one token per step. When the sizing's
    decode step at the fullest batch it expects (``llmdeploy size``: the concurrency the KV
    cache and ``maxNumSeqs`` allow, not an SLO-capped operating point), times the calibrated
    p95/mean ratio of TPOT (``sizing/perf_vllm.yaml`` tails), is slower than
    ``itlP95Seconds``, the SLO is breached whenever the batch fills up, and the alert fires
    under normal load.
    """
    sizing = ctx.resolved.sizing
    cap = getattr(sizing, "capacity", None)
    rate = getattr(cap, "decode_tokens_per_s_per_sequence", None)
    if not _alerts_on(ctx) or not isinstance(rate, (int, float)) or rate <= 0:
        return
    step = 1.0 / float(rate)
    n = getattr(cap, "concurrency", None)
    # The operating point may be a batch capped for an SLO; the batch fills up to what
    # maxNumSeqs and the KV cache allow, which the fullest point of the curve shows.
    points = [pt for pt in getattr(cap, "points", ()) or () if getattr(pt, "tpot_ms", 0) > 0]
    if points:
        full = max(points, key=lambda pt: (pt.running, -pt.concurrency))
        if isinstance(n, int) and full.running > n:
            step, n = full.tpot_ms / 1000.0, full.running
    from ..sizing.perf import tail_ratio  # the calibrated p95/mean of TPOT (perf_vllm.yaml tails)

    step *= tail_ratio("tpot", "p95")  # the alert compares a p95, not the mean step
    slo = ctx.spec.monitoring.alerts.itl_p95_seconds
    if slo < step:
        batch = f" with {n} sequences in the batch" if isinstance(n, int) else " at full batch"
        yield Finding((*ALERTS, "itlP95Seconds"),
                      f"itlP95Seconds {slo:g}s is below the estimated p95 decode step of {step * 1000:.0f} ms{batch}: "
                      "the alert fires whenever the batch fills up",
                      f"set it above {step:.3g}, lower runtime.maxNumSeqs, or use a GPU with more memory bandwidth")


@rule("LD508", Severity.WARNING)
def nothing_selects_monitoring_objects(ctx: RuleContext) -> Iterator[Finding]:
    """No label lets Prometheus or Grafana find the rendered monitoring objects.

    kube-prometheus-stack's Prometheus selects PodMonitors, ServiceMonitors and
    PrometheusRules by ``release: <helm release>`` (``monitoring.labels``), and its Grafana
    sidecar loads dashboard ConfigMaps labelled ``grafana_dashboard: "1"``
    (``monitoring.dashboard.labels``). Empty labels are only right if your Prometheus
    selects every object (``serviceMonitorSelectorNilUsesHelmValues: false``).
    """
    m = ctx.spec.monitoring
    if not m.enabled:
        return
    if not m.labels:
        yield Finding(("monitoring", "labels"),
                      "monitoring.labels is empty: a kube-prometheus-stack Prometheus selects monitors and rules "
                      "by its release label and would ignore these",
                      "set monitoring.labels to what your Prometheus selects on, e.g. {release: kube-prometheus-stack}",
                      severity=Severity.INFO)
    if m.dashboard.enabled and not m.dashboard.labels:
        yield Finding(("monitoring", "dashboard", "labels"),
                      "monitoring.dashboard.labels is empty: the Grafana sidecar finds dashboards by label",
                      'set it to what the sidecar selects on (kube-prometheus-stack: {grafana_dashboard: "1"})')
