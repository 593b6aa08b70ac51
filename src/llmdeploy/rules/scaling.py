"""LD300-LD310, LD316, LD317: scaling rules (combinations that cannot work).

Each rule names what to write instead. The planner (``plan/scaling.py``) assumes these
rules passed; the rollout rules (LD311-LD315) are in ``rules/rollout.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from ..diagnostics import Severity
from .registry import Finding, RuleContext, rule

if TYPE_CHECKING:  # pragma: no cover
    from ..sizing import SizingReport

PathT = tuple[str | int, ...]


def _where(ctx: RuleContext, *paths: PathT) -> PathT:
    """The first of ``paths`` the spec itself sets, else the first one (what the profile set)."""
    for p in paths:
        if ctx.user_set(p):
            return p
    return paths[0]


def _sizing(ctx: RuleContext) -> SizingReport | None:
    return ctx.resolved.sizing


# --------------------------------------------------------------------------- autoscaler × mode × metric


@rule("LD300")
def autoscaler_fits_mode(ctx: RuleContext) -> Iterator[Finding]:
    """The autoscaler does not exist in the deployment mode.

    KEDA and KServe's HPA scale the Deployment of Standard mode; in Knative mode the
    revisions are scaled by the Knative Pod Autoscaler (``kpa``), which does not exist in
    Standard mode.

    Fails::

        deployment:
          mode: knative
        scaling:
          autoscaler: keda

    Passes::

        deployment:
          mode: knative
        scaling:
          autoscaler: kpa
          metric: concurrency
    """
    mode = ctx.spec.deployment.mode
    a = ctx.spec.scaling.autoscaler
    where = _where(ctx, ("scaling", "autoscaler"), ("deployment", "mode"))
    if a in ("keda", "hpa") and mode == "knative":
        name = "KEDA" if a == "keda" else "KServe's HPA"
        yield Finding(where, f"{name} scales Standard-mode Deployments; in Knative mode the Knative Pod "
                             "Autoscaler scales the revisions",
                      "set scaling.autoscaler: kpa with metric concurrency or rps, or deployment.mode: standard "
                      "to scale on LLM metrics with KEDA")
    elif a == "kpa" and mode == "standard":
        yield Finding(where, "the Knative Pod Autoscaler (kpa) only exists in Knative mode",
                      "set deployment.mode: knative, or scaling.autoscaler: keda to scale a Standard-mode "
                      "service on LLM metrics")


@rule("LD301")
def metric_fits_autoscaler(ctx: RuleContext) -> Iterator[Finding]:
    """The scaling metric is not one the autoscaler can use.

    * ``keda``: the engine's metrics (``queueDepth``, ``ttftP95``, ``itlP95``,
      ``kvCacheUsage``, ``runningRequests``, ``generationTokens``);
    * ``hpa``: ``cpu`` or ``memory`` (KServe's HPA knows nothing else);
    * ``kpa``: ``concurrency`` or ``rps`` (the Knative Pod Autoscaler's metrics).

    Fails::

        scaling:
          autoscaler: hpa
          metric: queueDepth    # KServe's HPA cannot read Prometheus

    Passes::

        scaling:
          autoscaler: keda
          metric: queueDepth
    """
    from ..derive.metrics import KEDA_METRICS, METRICS_BY_AUTOSCALER

    s = ctx.spec.scaling
    allowed = METRICS_BY_AUTOSCALER.get(s.autoscaler)
    if allowed is None or s.metric in allowed:
        return
    where = _where(ctx, ("scaling", "metric"), ("scaling", "autoscaler"))
    default = "" if ctx.user_set(("scaling", "metric")) else " (the default)"
    m = f"{s.metric}{default}"
    if s.autoscaler == "keda":
        if s.metric in ("cpu", "memory"):
            msg = f"KEDA scales on the engine's metrics here; {m} does not follow LLM load"
            hint = "use metric: queueDepth (or ttftP95, itlP95, kvCacheUsage, runningRequests, generationTokens)"
        else:
            msg = f"{m} is a Knative Pod Autoscaler metric; KEDA scales on the engine's metrics"
            hint = ("use metric: queueDepth or runningRequests, or deployment.mode: knative with "
                    "autoscaler: kpa")
    elif s.autoscaler == "hpa":
        if s.metric in KEDA_METRICS:
            msg = f"KServe's HPA scales only on cpu or memory; {m} needs KEDA"
            hint = "set scaling.autoscaler: keda (Standard mode) to scale on the engine's metrics"
        else:
            msg = f"{m} is a Knative Pod Autoscaler metric; KServe's HPA scales on cpu or memory"
            hint = "use autoscaler: keda with metric queueDepth"
    else:
        msg = f"the Knative Pod Autoscaler scales on concurrency or rps, not {m}"
        hint = ("set scaling.metric: concurrency (requests in flight per pod) or rps; for LLM metrics use "
                "deployment.mode: standard with autoscaler: keda")
    yield Finding(where, msg, hint)


@rule("LD302")
def replica_bounds(ctx: RuleContext) -> Iterator[Finding]:
    """The replica bounds contradict each other.

    ``maxReplicas`` must be at least ``minReplicas``; ``maxReplicas: auto`` needs
    ``scaling.targetLoad`` (and a capacity estimate for the model and GPU) to derive a
    number from; ``minReplicas: 0`` means scale-to-zero and needs ``scaleToZero: true``.

    Fails::

        scaling:
          minReplicas: 2
          maxReplicas: auto     # from what load?

    Passes::

        scaling:
          minReplicas: 2
          maxReplicas: auto
          targetLoad:
            requestsPerSecond: 20
    """
    s = ctx.spec.scaling
    if isinstance(s.max_replicas, int) and s.max_replicas < s.min_replicas:
        yield Finding(_where(ctx, ("scaling", "maxReplicas"), ("scaling", "minReplicas")),
                      f"maxReplicas {s.max_replicas} is below minReplicas {s.min_replicas}",
                      f"raise maxReplicas to at least {s.min_replicas}, or lower minReplicas")
    if s.max_replicas == "auto":
        sizing = _sizing(ctx)
        if s.target_load is None:
            yield Finding(("scaling", "maxReplicas"), "maxReplicas: auto needs scaling.targetLoad to derive it from",
                          "add scaling.targetLoad (requestsPerSecond, avgPromptTokens, avgOutputTokens), "
                          "or give maxReplicas a number")
        elif sizing is not None and sizing.capacity is None:
            yield Finding(("scaling", "maxReplicas"),
                          "maxReplicas: auto needs a capacity estimate, and the sizing has none for this "
                          "model and GPU", "give maxReplicas a number")
    if s.min_replicas == 0 and not s.scale_to_zero:
        yield Finding(_where(ctx, ("scaling", "minReplicas"), ("scaling", "scaleToZero")),
                      "minReplicas 0 without scaleToZero",
                      "set scaling.scaleToZero: true (the first request then waits for a model load), "
                      "or minReplicas: 1 or more")


# --------------------------------------------------------------------------- scale to zero


@rule("LD303")
def scale_to_zero_possible(ctx: RuleContext) -> Iterator[Finding]:
    """Scale-to-zero is asked of an autoscaler that cannot do it.

    KEDA scales to zero (``minReplicas: 0``, or ``idleReplicaCount: 0`` with
    ``minReplicas`` ≥ 1 once active). Knative does with ``minReplicas: 0`` only (its
    ``min-scale`` is a hard floor). KServe's HPA never goes below one replica and
    ``none`` keeps a fixed count.

    Fails::

        deployment:
          mode: knative
        scaling:
          autoscaler: kpa
          metric: concurrency
          scaleToZero: true
          minReplicas: 1        # Knative never goes below min-scale

    Passes::

        deployment:
          mode: knative
        scaling:
          autoscaler: kpa
          metric: concurrency
          scaleToZero: true
          minReplicas: 0
    """
    s = ctx.spec.scaling
    if not s.scale_to_zero:
        return
    where = _where(ctx, ("scaling", "scaleToZero"), ("scaling", "autoscaler"))
    if s.autoscaler == "hpa":
        yield Finding(where, "KServe's HPA never scales below one replica",
                      "use autoscaler: keda (Standard mode) or kpa (Knative mode) to scale to zero, "
                      "or set scaleToZero: false")
    elif s.autoscaler == "none":
        yield Finding(where, "autoscaler none keeps a fixed replica count and cannot scale to zero",
                      "use autoscaler: keda (Standard mode) or kpa (Knative mode), or set scaleToZero: false")
    elif s.autoscaler == "kpa" and s.min_replicas > 0:
        yield Finding(_where(ctx, ("scaling", "minReplicas"), ("scaling", "scaleToZero")),
                      f"scale-to-zero with minReplicas {s.min_replicas}: Knative never goes below min-scale",
                      "set scaling.minReplicas: 0, or scaleToZero: false")


@rule("LD304")
def no_scale_to_zero_in_production(ctx: RuleContext) -> Iterator[Finding]:
    """Scale-to-zero in the production profile that the spec did not ask for itself.

    A cold start loads the whole model (minutes for large ones), so the production
    profile refuses scale-to-zero unless the spec itself sets
    ``scaling.scaleToZero: true``, accepting the wait.

    Fails::

        profile: production     # with a team profile that turns scaleToZero on

    Passes::

        profile: production
        scaling:
          scaleToZero: true     # explicit: cold starts accepted
          minReplicas: 0
    """
    if ctx.profile == "production" and ctx.spec.scaling.scale_to_zero \
            and not ctx.user_set(("scaling", "scaleToZero")):
        yield Finding(("scaling", "scaleToZero"),
                      "scale-to-zero is refused in the production profile unless the spec sets it itself",
                      "set scaling.scaleToZero: true in the spec to accept cold starts, or false")


@rule("LD305", Severity.WARNING)
def cold_start_warning(ctx: RuleContext) -> Iterator[Finding]:
    """The first request after an idle period waits for a model load.

    With scale-to-zero the first request finds no replica: a pod must start, download
    the weights and load them. The warning gives the estimate (pod start + download at
    the storage's typical rate + the sizing's load time). In Knative mode the activator
    holds the request, which fails if the estimate exceeds the request timeout; in
    Standard mode requests fail (503) until the pod is ready, so clients must retry.

    Fails::

        profile: dev            # scaleToZero: true
    """
    from ..derive.coldstart import cold_start

    s = ctx.spec.scaling
    if not s.scale_to_zero or s.autoscaler not in ("keda", "kpa") or (s.autoscaler == "kpa" and s.min_replicas):
        return  # LD303 reports the combinations that cannot reach zero
    cs = cold_start(ctx.spec, _sizing(ctx))
    wait = cs.describe() if cs is not None else "a pod start, the weight download and the model load"
    timeout = ctx.spec.deployment.request_timeout_seconds
    if s.autoscaler == "kpa":
        if cs is not None and cs.total > timeout:
            yield Finding(("scaling", "scaleToZero"),
                          f"the first request after an idle period waits {wait}, longer than the request "
                          f"timeout of {timeout} s, so it times out",
                          f"raise deployment.requestTimeoutSeconds above {cs.total}, or keep minReplicas ≥ 1")
            return
        how = "Knative's activator holds it meanwhile"
    else:
        how = "requests fail (503) until the pod is ready, so clients must retry"
    yield Finding(("scaling", "scaleToZero"), f"the first request after an idle period waits {wait}; {how}",
                  "keep minReplicas ≥ 1 (scaleToZero: false) for latency-sensitive endpoints")


@rule("LD306", Severity.WARNING)
def keda_wake_up(ctx: RuleContext) -> Iterator[Finding]:
    """KEDA scales the service to zero, but nothing can wake it up.

    The engine's metrics disappear with its last pod, and at zero replicas no request
    reaches an engine, so no engine metric can rise again. Only a metric measured
    outside the pods can: ``scaling.activationQuery``, e.g. the gateway's request rate
    for the route (docs/scaling.md lists queries for common gateways). Knative mode does
    not need it: its activator holds the request and wakes the revision.

    Fails::

        scaling:
          autoscaler: keda
          scaleToZero: true
          minReplicas: 0

    Passes::

        scaling:
          autoscaler: keda
          scaleToZero: true
          minReplicas: 0
          activationQuery: sum(rate(istio_requests_total{destination_service_name="svc-predictor"}[1m]))
    """
    s = ctx.spec.scaling
    if s.autoscaler == "keda" and s.scale_to_zero and not s.activation_query:
        yield Finding(("scaling", "scaleToZero"),
                      "KEDA scales to zero but nothing wakes the service: the engine's metrics vanish with "
                      "its last pod",
                      "set scaling.activationQuery to a gateway metric of this service (docs/scaling.md), "
                      "or use deployment.mode: knative, whose activator holds requests and wakes the service")
    elif s.activation_query and not (s.autoscaler == "keda" and s.scale_to_zero):
        yield Finding(("scaling", "activationQuery"), "activationQuery is only used by KEDA with scaleToZero",
                      "remove it", key=True)


@rule("LD307", Severity.WARNING)
def resource_metric_warning(ctx: RuleContext) -> Iterator[Finding]:
    """Scaling on cpu or memory does not follow LLM load.

    The GPU does the work, so CPU barely moves with the load; vLLM preallocates the GPU
    memory and its host memory holds steady. KServe's HPA on them scales late or never.

    Fails::

        scaling:
          autoscaler: hpa
          metric: cpu

    Passes::

        scaling:
          autoscaler: keda
          metric: queueDepth
    """
    s = ctx.spec.scaling
    if s.autoscaler == "hpa" and s.metric in ("cpu", "memory"):
        yield Finding(_where(ctx, ("scaling", "metric"), ("scaling", "autoscaler")),
                      f"{s.metric} does not track LLM load: the GPU does the work and its memory is "
                      "preallocated",
                      "use autoscaler: keda with metric: queueDepth (waiting requests per replica)")


# --------------------------------------------------------------------------- metric and target


@rule("LD308")
def metric_exported(ctx: RuleContext) -> Iterator[Finding]:
    """The pinned engine version exports no metric for ``scaling.metric``.

    KEDA's queries use the metric names of the pinned engine version; TGI, for example,
    has no KV-cache usage or time-to-first-token metric.

    Fails::

        runtime:
          engine: tgi
        scaling:
          metric: kvCacheUsage
    """
    from ..derive.metrics import KEDA_METRICS, keda_query
    from ..engines import MetricUnavailableError
    from ..promql import ServiceQueries

    s = ctx.spec.scaling
    info = ctx.resolved.engine
    if info is None or s.autoscaler != "keda":
        return
    q = ServiceQueries(info, ctx.spec.metadata.namespace, ctx.spec.metadata.name)

    def works(metric: str) -> bool:
        try:
            keda_query(metric, q)
        except MetricUnavailableError:
            return False
        return True

    if s.metric in KEDA_METRICS and not works(s.metric):
        ok = [m for m in KEDA_METRICS if works(m)]
        yield Finding(_where(ctx, ("scaling", "metric"), ("scaling", "autoscaler")),
                      f"{info.display_name} {info.version} exports no metric for {s.metric}",
                      "use one of: " + ", ".join(ok) if ok else "use autoscaler: hpa or none")
    if s.scale_to_zero and not (q.has("num_requests_running") and q.has("num_requests_waiting")):
        yield Finding(("scaling", "scaleToZero"),
                      f"{info.display_name} {info.version} exports no running/waiting request gauges, which "
                      "KEDA needs to tell an idle service from a busy one", "set scaleToZero: false")


def _number_problem(metric: str, t: float) -> tuple[str, str] | None:
    if metric == "kvCacheUsage" and not 0 < t <= 1:
        return (f"the kvCacheUsage target is a fraction in (0, 1], not {t:g}", "e.g. 0.8 for 80 %")
    if metric in ("cpu", "memory") and not (t == int(t) and 1 <= t <= 100):
        return (f"the {metric} target is a utilization percentage 1–100, not {t:g}", "e.g. 80")
    if metric in ("concurrency", "rps") and not (t == int(t) and t >= 1):
        return (f"the {metric} target is a whole number ≥ 1 per pod (KServe's scaleTarget), not {t:g}",
                "e.g. the engine's max-num-seqs for concurrency")
    if t <= 0:
        return (f"the {metric} target must be positive, not {t:g}", "give a positive number or auto")
    return None


def _profile_metric(ctx: RuleContext) -> str:
    doc = ctx.validated.profile_doc
    scaling = (doc.data or {}).get("scaling") if doc is not None and isinstance(doc.data, dict) else None
    metric = scaling.get("metric") if isinstance(scaling, dict) else None
    return str(metric) if metric else "queueDepth"


def _profile_value_for_other_metric(ctx: RuleContext, key: str) -> float | None:
    """The profile's ``scaling.<key>`` when the spec kept it but changed the metric it was meant for.

    A profile's target is a number in its metric's unit (the built-in profiles: waiting
    requests per replica); it means nothing for another metric.
    """
    doc = ctx.validated.profile_doc
    path = ("scaling", key)
    if doc is None or ctx.user_set(path) or not doc.has(path):
        return None
    s = ctx.spec.scaling
    value = s.target if key == "target" else s.activation_target
    if value is None or value == "auto" or s.metric == _profile_metric(ctx):
        return None
    return float(value)


@rule("LD309")
def target_fits_metric(ctx: RuleContext) -> Iterator[Finding]:
    """The target (or activation target) does not fit the metric's unit.

    ``kvCacheUsage`` is a fraction (0–1], ``ttftP95``/``itlP95`` are seconds, ``cpu`` and
    ``memory`` are utilization percentages (1–100), ``concurrency``/``rps`` are whole
    numbers per pod. A target inherited from the profile is in the unit of the profile's
    metric (the built-in profiles: waiting requests per replica) and means nothing for
    another metric. ``target: auto`` for ``rps`` or ``generationTokens`` needs the
    capacity estimate. An activation target at or above the target delays the step from
    zero (a warning).

    Fails::

        scaling:
          metric: kvCacheUsage
          target: 80            # a fraction: 0.8

    Passes::

        scaling:
          metric: kvCacheUsage
          target: 0.8
    """
    s = ctx.spec.scaling
    where = _where(ctx, ("scaling", "target"), ("scaling", "metric"))
    borrowed = _profile_value_for_other_metric(ctx, "target")
    if borrowed is not None:
        yield Finding(("scaling", "target"),
                      f"the profile's target {borrowed:g} is meant for metric {_profile_metric(ctx)}, not {s.metric}",
                      f"set scaling.target for {s.metric} in the spec, or target: auto")
        return
    if s.target == "auto":
        sizing = _sizing(ctx)
        if s.metric in ("rps", "generationTokens") and sizing is not None \
                and sizing.capacity is None:
            yield Finding(where, f"target auto for {s.metric} needs a capacity estimate, and the sizing has none "
                                 "for this model and GPU", f"set scaling.target for {s.metric}")
        return
    t = float(s.target)
    problem = _number_problem(s.metric, t)
    if problem:
        yield Finding(where, problem[0], problem[1])
        return
    if s.metric in ("ttftP95", "itlP95") and t > 60:
        yield Finding(where, f"the {s.metric} target is in seconds; {t:g} s is more than a minute",
                      "e.g. 1.2 for TTFT or 0.06 for inter-token latency", severity=Severity.WARNING)
    a = s.activation_target
    if a is not None and s.autoscaler == "keda" and s.scale_to_zero \
            and _profile_value_for_other_metric(ctx, "activationTarget") is not None:
        yield Finding(("scaling", "activationTarget"),
                      f"the profile's activationTarget {a:g} is meant for metric {_profile_metric(ctx)}, "
                      f"not {s.metric}", f"set scaling.activationTarget for {s.metric} in the spec")
    elif a is not None and s.autoscaler == "keda":
        apath = ("scaling", "activationTarget")
        if a < 0:
            yield Finding(apath, f"activationTarget must not be negative, not {a:g}", "e.g. 0")
        elif s.scale_to_zero and a >= t:
            yield Finding(apath, f"activationTarget {a:g} is not below target {t:g}: KEDA would wake the "
                                 "service only once it is already overloaded",
                          "set it below the target", severity=Severity.WARNING)


@rule("LD310", Severity.WARNING)
def max_replicas_below_load(ctx: RuleContext) -> Iterator[Finding]:
    """``maxReplicas`` cannot carry ``scaling.targetLoad``.

    The sizing's capacity estimate says how many requests per second one replica
    serves at the target load's token mix; fewer replicas than the load needs mean
    queues at peak.

    Fails::

        scaling:
          maxReplicas: 2
          targetLoad:
            requestsPerSecond: 40   # needs more than 2 replicas
    """
    from ..derive.replicas import replicas_for_load

    s = ctx.spec.scaling
    if not isinstance(s.max_replicas, int) or s.autoscaler == "none":
        return
    need = replicas_for_load(ctx.spec, _sizing(ctx))
    if need is not None and need[0] > s.max_replicas:
        yield Finding(_where(ctx, ("scaling", "maxReplicas"), ("scaling", "targetLoad")),
                      f"scaling.targetLoad needs {need[0]} replicas ({need[1]}) but maxReplicas is {s.max_replicas}",
                      f"raise maxReplicas to {need[0]} or set it to auto")


@rule("LD316", Severity.WARNING)
def knative_knob_without_effect(ctx: RuleContext) -> Iterator[Finding]:
    """A Knative autoscaling knob that would have no effect.

    ``scaling.knative`` is only read in Knative mode. With ``minReplicas: 0`` KServe
    itself sets ``initial-scale: 0`` on the revision (when the cluster allows zero
    initial scale), overriding ``initialScale``. A scale-to-zero retention period does
    nothing for a service that never scales to zero.

    Fails::

        deployment:
          mode: knative
        scaling:
          autoscaler: kpa
          metric: concurrency
          scaleToZero: true
          minReplicas: 0
          knative:
            initialScale: 1     # KServe writes initial-scale 0 for minReplicas 0
    """
    s = ctx.spec.scaling
    k = ("scaling", "knative")
    if ctx.spec.deployment.mode == "standard":
        for key in ("initialScale", "scaleToZeroGracePeriod", "scaleDownDelay", "containerConcurrency"):
            if ctx.user_set((*k, key)):
                yield Finding((*k, key), f"scaling.knative.{key} is only used in Knative mode",
                              "remove it, or set deployment.mode: knative", key=True)
        return
    if s.knative.initial_scale and s.min_replicas == 0:
        yield Finding((*k, "initialScale"),
                      "with minReplicas 0 KServe sets initial-scale 0 on the revision, overriding initialScale",
                      "remove initialScale, or keep minReplicas ≥ 1")
    if s.knative.scale_to_zero_grace_period is not None and not s.scale_to_zero:
        yield Finding((*k, "scaleToZeroGracePeriod"), "a scale-to-zero retention period without scaleToZero",
                      "remove it, or set scaleToZero: true with minReplicas: 0", key=True)


@rule("LD317")
def explicit_min_replicas_meets_profile_scale_to_zero(ctx: RuleContext) -> Iterator[Finding]:
    """The profile turns scale-to-zero on, but the spec itself asks for replicas that stay up.

    A profile (``dev``, or a team profile) sets ``scaling.scaleToZero: true`` and the spec
    writes ``minReplicas: 1`` or more. Rendered as merged, KEDA would idle the service to
    zero replicas (``idleReplicaCount: 0``), and its triggers read engine metrics that
    vanish with the last pod, so it would not wake on its own. What the spec says
    explicitly must not be overridden by a profile: say which one you mean.

    Fails::

        profile: dev            # scaleToZero: true
        scaling:
          minReplicas: 1

    Passes::

        profile: dev
        scaling:
          minReplicas: 1
          scaleToZero: false    # always on
    """
    s = ctx.spec.scaling
    if s.scale_to_zero and s.min_replicas >= 1 and ctx.user_set(("scaling", "minReplicas")) \
            and not ctx.user_set(("scaling", "scaleToZero")):
        yield Finding(("scaling", "minReplicas"),
                      f"the profile turns scaleToZero on, but the spec sets minReplicas {s.min_replicas}: the "
                      "service would idle at zero replicas and its triggers cannot wake it",
                      "add scaling.scaleToZero: false to keep replicas up, or scaleToZero: true with "
                      "minReplicas: 0 to scale to zero on purpose")

