"""plan/scaling.py: KEDA, KServe HPA, Knative KPA and fixed replicas; the trigger maths.

Contexts are built from real catalog entries (GPU, model, engine table) and the real
sizing; the capacity numbers the maths depends on are then pinned with
``dataclasses.replace`` so that every expected number below can be checked by hand.
"""

from __future__ import annotations

import dataclasses
import math
import textwrap
from pathlib import Path
from typing import Any

import pytest
from conftest import assert_manifests_pass_crds, sized_context

from llmdeploy.plan import PlanContext, Section, kserve, scaling
from llmdeploy.sizing import SizingReport

BASE = """\
apiVersion: llmdeploy.dev/v1alpha1
kind: LLMService
metadata:
  name: svc
  namespace: ml
model:
  id: meta-llama/Llama-3.1-8B-Instruct
  storageUri: s3://models/llama-3.1-8b
runtime:
  image: vllm/vllm-openai:v0.11.0
resources:
  gpu:
    type: l4
"""


def context(extra: str = "", *, base: str = BASE, rps: float = 5.0, replicas_needed: int | None = None,
            decode_tps: float = 2000.0, max_num_seqs: int = 64, load: float = 60.0,
            weights: int = 16_000_000_000, capacity: bool = True, batch: int | None = None) -> PlanContext:
    """A PlanContext for ``base`` + ``extra`` with pinned capacity numbers (``batch``: the
    requests a busy replica runs at once, default ``max_num_seqs``)."""
    def pin(report: SizingReport) -> SizingReport:
        cap = None
        if capacity:
            assert report.capacity is not None, "the test model must fit its GPU"
            cap = dataclasses.replace(report.capacity, requests_per_s_per_replica=rps,
                                      replicas_needed=replicas_needed, decode_tokens_per_s=decode_tps,
                                      concurrency=batch or max_num_seqs)
        return dataclasses.replace(report, capacity=cap, max_num_seqs=max_num_seqs, load_time_seconds=load,
                                   weights_bytes_total=weights)

    return sized_context(base + textwrap.dedent(extra), pin)


def plan(ctx: PlanContext) -> Section:
    return scaling.plan_scaling(ctx, kserve.plan_engine(ctx))


def manifest(section: Section, kind: str, name: str | None = None) -> dict[str, Any]:
    found = [m for m in section.manifests if m.kind == kind and (name is None or m.name == name)]
    assert len(found) == 1, [(m.kind, m.name) for m in section.manifests]
    return dict(found[0].values)


def trigger(so: dict[str, Any], name: str) -> dict[str, Any]:
    found = [t for t in so["spec"]["triggers"] if t["name"] == name]
    assert len(found) == 1, [t["name"] for t in so["spec"]["triggers"]]
    return found[0]


def hpa_desired(trig: dict[str, Any], value: float, current: int) -> int:
    """What the HPA asks for from one KEDA external metric (Kubernetes HPA algorithm).

    AverageValue: the metric is divided by the current replicas and compared with the
    threshold, so desired = ceil(value / threshold). Value: desired = ceil(current ×
    value / threshold).
    """
    threshold = float(trig["metadata"]["threshold"])
    if trig["metricType"] == "AverageValue":
        return math.ceil(value / threshold)
    return math.ceil(current * value / threshold)


# --------------------------------------------------------------------------- KEDA


def test_keda_queue_depth_defaults() -> None:
    section = plan(context())
    assert section.isvc_annotations == {"serving.kserve.io/autoscalerClass": "external"}
    assert section.predictor == {"minReplicas": 1, "maxReplicas": 3}
    so = manifest(section, "ScaledObject", "svc")
    spec = so["spec"]
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "svc-predictor"}
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (1, 3)
    assert "idleReplicaCount" not in spec
    assert spec["pollingInterval"] == 15 and spec["cooldownPeriod"] == 300
    assert spec["fallback"] == {"failureThreshold": 3, "replicas": 1, "behavior": "currentReplicasIfHigher"}
    t = trigger(so, "queue-depth")
    assert t["type"] == "prometheus" and t["metricType"] == "AverageValue"
    assert t["metadata"] == {
        "serverAddress": "http://prometheus-operated.monitoring.svc:9090",
        "query": 'sum(vllm:num_requests_waiting{model_name="svc",namespace="ml"})',
        "threshold": "5",
    }
    assert len(spec["triggers"]) == 1


def test_trigger_metadata_values_are_strings() -> None:
    ctx = context("""\
        scaling:
          metric: kvCacheUsage
          target: 0.75
          scaleToZero: true
          minReplicas: 0
          activationTarget: 0.1
          activationQuery: sum(rate(gateway_requests_total{route="svc"}[1m]))
          prometheus:
            authSecretRef: prom-creds
        """)
    so = manifest(plan(ctx), "ScaledObject")
    for t in so["spec"]["triggers"]:
        assert all(isinstance(v, str) for v in t["metadata"].values()), t
    assert trigger(so, "kv-cache-usage")["metadata"]["threshold"] == "75"
    assert trigger(so, "kv-cache-usage")["metadata"]["activationThreshold"] == "10"


def test_queue_depth_is_summed_and_the_hpa_divides_by_replicas() -> None:
    so = manifest(plan(context("scaling:\n  target: 5\n  maxReplicas: 8\n")), "ScaledObject")
    t = trigger(so, "queue-depth")
    assert t["metadata"]["query"].startswith("sum(")
    # 12 requests waiting over 2 replicas: 6 per replica > 5, so 3 replicas.
    assert hpa_desired(t, 12, current=2) == 3
    # 10 waiting: exactly 5 per replica at 2 replicas, nothing to add.
    assert hpa_desired(t, 10, current=2) == 2


def test_kv_cache_usage_is_a_service_wide_value_in_percent() -> None:
    so = manifest(plan(context("scaling:\n  metric: kvCacheUsage\n")), "ScaledObject")
    t = trigger(so, "kv-cache-usage")
    assert t["metricType"] == "Value"
    assert t["metadata"]["query"] == '100 * avg(vllm:kv_cache_usage_perc{model_name="svc",namespace="ml"})'
    assert t["metadata"]["threshold"] == "80"  # auto: 0.8
    # Two replicas at 90 % average: ceil(2 × 90 / 80) = 3.
    assert hpa_desired(t, 90, current=2) == 3


@pytest.mark.parametrize(("metric", "target", "threshold", "needle"), [
    ("ttftP95", "1.2", "1200", "vllm:time_to_first_token_seconds_bucket"),
    ("itlP95", "0.06", "60", "vllm:inter_token_latency_seconds_bucket"),
])
def test_latency_triggers_in_milliseconds_and_without_nan(metric: str, target: str, threshold: str,
                                                          needle: str) -> None:
    so = manifest(plan(context(f"scaling:\n  metric: {metric}\n  target: {target}\n")), "ScaledObject")
    t = so["spec"]["triggers"][0]
    q = t["metadata"]["query"]
    assert t["metricType"] == "Value"
    assert t["metadata"]["threshold"] == threshold
    assert q.startswith("1000 * histogram_quantile(0.95, ") and q.endswith(" >= 0")
    assert needle in q and 'model_name="svc"' in q and 'namespace="ml"' in q


@pytest.mark.parametrize(("image", "metric", "name"), [
    ("vllm/vllm-openai:v0.9.0", "kvCacheUsage", "vllm:gpu_cache_usage_perc"),
    ("vllm/vllm-openai:v0.11.0", "kvCacheUsage", "vllm:kv_cache_usage_perc"),
    ("vllm/vllm-openai:v0.10.1", "itlP95", "vllm:time_per_output_token_seconds_bucket"),
    ("vllm/vllm-openai:v0.11.0", "itlP95", "vllm:inter_token_latency_seconds_bucket"),
])
def test_metric_names_follow_the_pinned_version(image: str, metric: str, name: str) -> None:
    base = BASE.replace("vllm/vllm-openai:v0.11.0", image)
    so = manifest(plan(context(f"scaling:\n  metric: {metric}\n", base=base)), "ScaledObject")
    assert name in so["spec"]["triggers"][0]["metadata"]["query"]


def test_auto_targets() -> None:
    def threshold(extra: str, **kw: Any) -> str:
        so = manifest(plan(context(extra, **kw)), "ScaledObject")
        return str(so["spec"]["triggers"][0]["metadata"]["threshold"])

    assert threshold("") == "5"  # no targetLoad: 5 waiting per replica (practices.md)
    assert threshold("scaling:\n  metric: runningRequests\n", max_num_seqs=64) == "48"  # 0.75 × 64
    # #13: a replica whose KV cache holds fewer typical requests than max_num_seqs never
    # runs max_num_seqs at once: the target follows the full batch it can run.
    assert threshold("scaling:\n  metric: runningRequests\n", max_num_seqs=256, batch=40) == "30"  # 0.75 × 40
    assert threshold("scaling:\n  metric: generationTokens\n", decode_tps=2000.0) == "1500"  # 0.75 × 2000
    assert threshold("scaling:\n  metric: ttftP95\n") == "1200"  # 0.6 × the 2 s TTFT SLO
    assert threshold("scaling:\n  metric: itlP95\n") == "60"  # 0.6 × the 100 ms ITL SLO


def test_suggested_queue_depth_from_capacity() -> None:
    extra = "scaling:\n  targetLoad:\n    requestsPerSecond: 30\n"
    # TTFT SLO 2 s × 5 req/s per replica × 0.6 = 6 waiting requests per replica.
    ctx = context(extra, rps=5.0, replicas_needed=8)
    section = plan(ctx)
    assert trigger(manifest(section, "ScaledObject"), "queue-depth")["metadata"]["threshold"] == "6"
    assert any("suggested queueDepth threshold" in n and "= 6 waiting" in n for n in section.notes)
    # A target set in the spec wins; the suggestion stays in the notes.
    section = plan(context(extra + "  target: 4\n", rps=5.0, replicas_needed=8))
    assert trigger(manifest(section, "ScaledObject"), "queue-depth")["metadata"]["threshold"] == "4"
    assert any("suggested queueDepth threshold" in n for n in section.notes)


def test_max_replicas_auto_from_capacity() -> None:
    extra = "scaling:\n  minReplicas: 2\n  maxReplicas: auto\n  targetLoad:\n    requestsPerSecond: 30\n"
    section = plan(context(extra, rps=5.0, replicas_needed=8))
    so = manifest(section, "ScaledObject")
    assert so["spec"]["maxReplicaCount"] == 8
    note = next(n for n in section.notes if "replicas 2..8" in n)
    assert "30 req/s" in note and "5.00 req/s per replica" in note and "8 replicas" in note
    # Never below minReplicas.
    so = manifest(plan(context(extra, rps=50.0, replicas_needed=1)), "ScaledObject")
    assert so["spec"]["maxReplicaCount"] == 2


def test_hpa_behaviour_scales_up_fast_and_down_slowly() -> None:
    ctx = context("scaling:\n  scaleUpStabilizationSeconds: 15\n  scaleDownStabilizationSeconds: 600\n")
    behavior = manifest(plan(ctx), "ScaledObject")["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    assert behavior["scaleUp"]["stabilizationWindowSeconds"] == 15
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] == 600
    assert behavior["scaleUp"]["selectPolicy"] == "Max"
    assert {"type": "Pods", "value": 1, "periodSeconds": 120} in behavior["scaleDown"]["policies"]
    for side in behavior.values():
        assert 0 <= side["stabilizationWindowSeconds"] <= 3600  # KEDA's CRD bound


# --------------------------------------------------------------------------- scale to zero


def test_scale_to_zero_with_min_zero() -> None:
    ctx = context("scaling:\n  scaleToZero: true\n  minReplicas: 0\n  activationTarget: 1\n", load=60.0)
    section = plan(ctx)
    so = manifest(section, "ScaledObject")
    spec = so["spec"]
    assert spec["minReplicaCount"] == 0 and "idleReplicaCount" not in spec
    assert "fallback" not in spec  # a Prometheus outage must not wake an idle service
    # pod start 30 s + 16 GB from s3 at 200 MB/s = 80 s + load 60 s.
    assert spec["initialCooldownPeriod"] == 170
    assert trigger(so, "queue-depth")["metadata"]["activationThreshold"] == "1"
    inflight = trigger(so, "in-flight")
    assert inflight["metadata"]["activationThreshold"] == "0"
    assert inflight["metadata"]["threshold"] == "64"
    assert inflight["metadata"]["query"] == (
        'sum(vllm:num_requests_running{model_name="svc",namespace="ml"}) + '
        'sum(vllm:num_requests_waiting{model_name="svc",namespace="ml"})')
    assert section.predictor["minReplicas"] == 0
    assert any("first request after an idle period waits about 170 s" in n for n in section.notes)


def test_scale_to_zero_with_min_above_zero_uses_idle_replicas() -> None:
    spec = manifest(plan(context("scaling:\n  scaleToZero: true\n  minReplicas: 2\n  maxReplicas: 4\n")),
                    "ScaledObject")["spec"]
    # KEDA's webhook: idleReplicaCount < minReplicaCount, never both 0.
    assert (spec["idleReplicaCount"], spec["minReplicaCount"], spec["maxReplicaCount"]) == (0, 2, 4)
    assert spec["idleReplicaCount"] < spec["minReplicaCount"]


def test_wake_up_trigger_from_activation_query() -> None:
    q = 'sum(rate(istio_requests_total{destination_service_name="svc-predictor"}[1m]))'
    ctx = context(f"scaling:\n  scaleToZero: true\n  minReplicas: 0\n  activationQuery: '{q}'\n", rps=4.2)
    t = trigger(manifest(plan(ctx), "ScaledObject"), "wake-up")
    assert t["metadata"]["query"] == q
    assert t["metadata"]["activationThreshold"] == "0"
    assert t["metadata"]["threshold"] == "5"  # ceil(4.2 req/s per replica)


@pytest.mark.parametrize(("storage", "download"), [
    ("s3://models/llama-3.1-8b", 80),         # 16 GB at 200 MB/s
    ("hf://meta-llama/Llama-3.1-8B-Instruct", 160),   # 100 MB/s
    ("pvc://models/llama-3.1-8b", 0),
])
def test_cold_start_estimate(storage: str, download: int) -> None:
    ctx = context(base=BASE.replace("s3://models/llama-3.1-8b", storage), load=45.0)
    cs = scaling.cold_start(ctx.spec, ctx.sizing)
    assert cs is not None
    assert (cs.start_seconds, cs.download_seconds, cs.load_seconds) == (30, download, 45)
    assert cs.total == 75 + download


# --------------------------------------------------------------------------- authentication


@pytest.mark.parametrize(("mode", "params"), [
    ("bearer", ["bearerToken"]),
    ("basic", ["username", "password"]),
    ("tls", ["cert", "key", "ca"]),
    ("custom", ["customAuthHeader", "customAuthValue"]),
])
def test_trigger_authentication_from_a_secret(mode: str, params: list[str]) -> None:
    section = plan(context(f"scaling:\n  prometheus:\n    authSecretRef: prom\n    authModes: {mode}\n"))
    ta = manifest(section, "TriggerAuthentication", "svc-keda-auth")
    assert ta["spec"]["secretTargetRef"] == [{"parameter": p, "name": "prom", "key": p} for p in params]
    t = manifest(section, "ScaledObject")["spec"]["triggers"][0]
    assert t["metadata"]["authModes"] == mode
    assert t["authenticationRef"] == {"name": "svc-keda-auth"}


def test_no_trigger_authentication_without_a_secret() -> None:
    section = plan(context())
    assert not [m for m in section.manifests if m.kind == "TriggerAuthentication"]
    assert "authenticationRef" not in manifest(section, "ScaledObject")["spec"]["triggers"][0]


# --------------------------------------------------------------------------- HPA, KPA, none


def test_kserve_hpa_on_cpu() -> None:
    section = plan(context("scaling:\n  autoscaler: hpa\n  metric: cpu\n  target: 70\n  maxReplicas: 4\n"))
    assert section.isvc_annotations == {"serving.kserve.io/autoscalerClass": "hpa"}
    assert section.predictor == {"minReplicas": 1, "maxReplicas": 4, "scaleMetric": "cpu",
                                 "scaleMetricType": "Utilization", "scaleTarget": 70}
    assert not section.manifests


KNATIVE = "deployment:\n  mode: knative\n"


def test_knative_kpa_concurrency() -> None:
    ctx = context(KNATIVE + textwrap.dedent("""\
        scaling:
          autoscaler: kpa
          metric: concurrency
          minReplicas: 0
          maxReplicas: 5
          scaleToZero: true
          cooldownPeriodSeconds: 600
          knative:
            scaleDownDelay: 5m
            containerConcurrency: 80
        """), max_num_seqs=48)
    section = plan(ctx)
    assert section.isvc_annotations == {
        "autoscaling.knative.dev/class": "kpa.autoscaling.knative.dev",
        "autoscaling.knative.dev/scale-down-delay": "5m",
        # not set in the spec: kept as long as KEDA's cooldown would
        "autoscaling.knative.dev/scale-to-zero-pod-retention-period": "600s",
    }
    assert section.predictor == {"minReplicas": 0, "maxReplicas": 5, "scaleMetric": "concurrency",
                                 "scaleTarget": 48, "containerConcurrency": 80}
    assert not section.manifests


def test_knative_kpa_rps_and_knobs() -> None:
    ctx = context(KNATIVE + textwrap.dedent("""\
        scaling:
          autoscaler: kpa
          metric: rps
          minReplicas: 1
          knative:
            initialScale: 2
            scaleToZeroGracePeriod: 10m
        """), rps=3.4)
    section = plan(ctx)
    assert section.predictor["scaleTarget"] == 3  # round(3.4 req/s per replica)
    assert section.isvc_annotations["autoscaling.knative.dev/initial-scale"] == "2"
    assert section.isvc_annotations["autoscaling.knative.dev/scale-to-zero-pod-retention-period"] == "10m"


@pytest.mark.parametrize(("extra", "annotations"), [
    ("", {"serving.kserve.io/autoscalerClass": "none"}),
    (KNATIVE, {}),
])
def test_fixed_replicas(extra: str, annotations: dict[str, str]) -> None:
    section = plan(context(extra + "scaling:\n  autoscaler: none\n  minReplicas: 3\n  maxReplicas: 6\n"))
    assert section.isvc_annotations == annotations
    assert section.predictor == {"minReplicas": 3, "maxReplicas": 3}


# --------------------------------------------------------------------------- other engines, determinism, CRDs


def test_tgi_queries_are_scoped_by_predictor_pods() -> None:
    base = BASE.replace("  image: vllm/vllm-openai:v0.11.0\n",
                        "  engine: tgi\n  image: ghcr.io/huggingface/text-generation-inference:3.3.4\n")
    so = manifest(plan(context(base=base)), "ScaledObject")
    q = so["spec"]["triggers"][0]["metadata"]["query"]
    assert q == 'sum(tgi_queue_size{namespace="ml",pod=~"svc-predictor-.+"})'


def test_plans_are_deterministic() -> None:
    extra = "scaling:\n  scaleToZero: true\n  minReplicas: 0\n  metric: ttftP95\n"
    first, second = plan(context(extra)), plan(context(extra))
    assert first == second




@pytest.mark.parametrize("extra", [
    "",
    "scaling:\n  scaleToZero: true\n  minReplicas: 0\n  activationQuery: sum(rate(x_total[1m]))\n",
    "scaling:\n  scaleToZero: true\n  minReplicas: 2\n  metric: itlP95\n  prometheus:\n    authSecretRef: p\n",
])
def test_keda_objects_pass_the_crd_check(extra: str, shared_crds: Path) -> None:
    assert_manifests_pass_crds(plan(context(extra)).manifests, shared_crds)


def test_plan_notes_explain_max_num_seqs_first() -> None:
    """``render --explain`` starts with the batch size the targets rest on, and why (#13)."""
    section = scaling.plan_scaling(sized_context(BASE), kserve.plan_engine(sized_context(BASE)))
    first = section.notes[0]
    # why: the engine's default, or (BASE has an ITL alert) the batch its TPOT SLO allows
    assert first.startswith("engine: max-num-seqs ") and "KV cache holds" in first
    assert "engine's default" in first or "TPOT SLO" in first
