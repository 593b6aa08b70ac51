"""Prefill/decode disaggregation on the LLMInferenceService target (``disaggregation`` in the spec).

What KServe v0.20.0 does with ``spec.prefill`` (pkg/controller/v1alpha2/llmisvc @ v0.20.0),
and therefore what is rendered:

* **Presets.** With ``prefill`` set, ``combineBaseRefsConfig`` (config_merge.go) applies
  ``kserve-config-llm-prefill-template`` to ``spec.prefill`` and
  ``kserve-config-llm-decode-template`` to the service instead of
  ``kserve-config-llm-template``. In the decode preset vLLM listens on **8001** and the
  llm-d routing sidecar (``llm-d-routing-sidecar``, an init container with
  ``restartPolicy: Always``, image ``llm-d-router-disagg-sidecar:v0.9.0``) on 8000 with
  ``--kv-connector=nixlv2``: the pool's target port 8000 reaches the sidecar, which first
  sends the prompt to the prefill pod the router chose (``x-prefiller-host-port`` header)
  and then lets the local vLLM decode. The prefill preset's vLLM listens on 8000.
* **Workloads.** ``workload_single_node.go``: the decode Deployment ``<name>-kserve``
  (``llm-d.ai/role: decode``) and the prefill Deployment ``<name>-kserve-prefill``
  (``app.kubernetes.io/component: llminferenceservice-workload-prefill``, ``llm-d.ai/role:
  prefill``, replicas from ``spec.prefill.replicas``); both carry the workload labels the
  managed InferencePool selects.
* **Engine flags.** Neither preset passes a KV connector before vLLM 0.22 (their
  ``KV_TRANSFER_ARGS`` is only the OffloadingConnector for KV offloading), so llmdeploy
  appends ``--kv-transfer-config`` (:func:`llmdeploy.derive.disagg.kv_transfer_config`) to
  both roles, and for NIXL sets ``VLLM_NIXL_SIDE_CHANNEL_HOST`` to the pod IP (vLLM's
  default, ``localhost``, is unreachable from the other pool). The RDMA devices of
  ``resources.interconnect`` go on both roles with ``IPC_LOCK`` (memory registration).
* **Scheduler.** The endpoint picker runs llm-d's P/D profiles: ``disagg-headers-handler``,
  ``prefill-filter``/``decode-filter``, ``always-disagg-pd-decider`` and
  ``disagg-profile-handler`` with a ``prefill`` and a ``decode`` profile (the plugin names
  KServe v0.20.0's scheduler.go ``schedulerConfigText`` writes for llm-d router v0.9.0).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from ..catalog import get_gpu
from ..derive.disagg import (
    KV_TRANSFER_FLAG,
    NIXL_SIDE_CHANNEL_HOST_ENV,
    TRANSFER_FAILURES,
    kv_transfer_config,
    transfer_failures_metric,
)
from ..effective import llmisvc as eff
from ..sizing.roles import DisaggSizing, prefill_spec, size_disaggregated
from .kserve import EnginePlan, plan_engine
from .model import Manifest, PlanContext, Section
from .policy import PolicyIngress

__all__ = [
    "DECODE_ENGINE_PORT",
    "PD_DECODE_SCORERS",
    "PD_PREFILL_SCORERS",
    "decorate_pod",
    "epp_config",
    "network_ingress",
    "note",
    "prefill_block",
    "prefill_context",
    "role_alerts",
    "role_dashboard",
    "role_queries",
    "roles",
    "scale_roles",
    "transfer_failures_exported",
]

#: The decode preset's vLLM port (config-llm-decode-template.yaml @ v0.20.0: ``--port 8001``,
#: the routing sidecar's ``--vllm-port=8001``).
DECODE_ENGINE_PORT = 8001
#: KServe v0.20.0's P/D baseline per profile (scheduler.go schedulerConfigText).
PD_PREFILL_SCORERS = (("prefixCache", 3), ("queue", 2), ("kvCacheUtilization", 2))
PD_DECODE_SCORERS = (("activeRequest", 2), ("prefixCache", 3))
LORA_AFFINITY_WEIGHT = 4


def roles(ctx: PlanContext) -> DisaggSizing:
    """Both roles' sizing (the same functions ``llmdeploy size`` prints)."""
    return _prefill(ctx)[1]


def _prefill(ctx: PlanContext) -> tuple[PlanContext, DisaggSizing]:
    gpu = get_gpu(prefill_spec(ctx.spec).resources.gpu.type)
    report, both = size_disaggregated(ctx.spec, ctx.model, ctx.gpu, gpu, ctx.engine, ctx.sizing)
    spec = prefill_spec(ctx.spec)
    spec = spec.model_copy(update={"runtime": spec.runtime.model_copy(update={"port": eff.ENGINE_PORT})})
    return replace(ctx, spec=spec, gpu=gpu, sizing=report), both


def prefill_context(ctx: PlanContext) -> PlanContext:
    """The plan context of the prefill pool: its spec, GPU and sizing report; vLLM on the preset's 8000."""
    return _prefill(ctx)[0]


def decorate_pod(ctx: PlanContext, pod: dict[str, Any], container: str = eff.MAIN_CONTAINER) -> dict[str, Any]:
    """A role's pod with the KV connector: ``--kv-transfer-config``, NIXL's side channel host, RDMA devices."""
    out = copy.deepcopy(pod)
    kv = kv_transfer_config(ctx.spec, ctx.engine)
    ic = ctx.spec.resources.interconnect
    for c in out["containers"]:
        if c.get("name") != container:
            continue
        if kv is not None:
            c["args"] = [*c.get("args", []), f"{KV_TRANSFER_FLAG}={kv}"]
        d = ctx.spec.disaggregation
        present = {e.name for e in ctx.spec.runtime.env} | {str(e.get("name")) for e in c.get("env") or []}
        if d is not None and d.connector == "nixl" and NIXL_SIDE_CHANNEL_HOST_ENV not in present:
            c["env"] = [*c.get("env", []), {"name": NIXL_SIDE_CHANNEL_HOST_ENV,
                                            "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}]
        res = c.get("resources") or {}
        for k, v in sorted(ic.rdma_resources.items()):  # (the LeaderWorkerSet plan may have added them)
            res.setdefault("requests", {})[k] = str(v)
            res.setdefault("limits", {})[k] = str(v)
        if ic.fabric in ("infiniband", "roce"):
            sc = c.setdefault("securityContext", {})
            sc["capabilities"] = {"drop": ["ALL"], "add": ["IPC_LOCK"]}
    return out


def prefill_block(ctx: PlanContext, template: Callable[[PlanContext, EnginePlan], dict[str, Any]],
                  labels: dict[str, str]) -> dict[str, Any]:
    """``spec.prefill``: replicas, tensor parallel, pod labels and the prefill engine's pod template."""
    pctx, both = _prefill(ctx)
    engine = plan_engine(pctx)
    d = ctx.spec.disaggregation
    assert d is not None
    out: dict[str, Any] = {}
    if ctx.spec.scaling.autoscaler != "keda":  # under KEDA the prefill ScaledObject owns the count
        out["replicas"] = d.prefill.replicas if isinstance(d.prefill.replicas, int) else both.prefill.replicas
    out.update({"parallelism": {"tensor": pctx.spec.resources.parallelism.tensor},
                "labels": dict(labels), "template": decorate_pod(ctx, template(pctx, engine))})
    return out


def _scorer_refs(kinds: list[tuple[str, int]], plugins: dict[str, str]) -> list[dict[str, Any]]:
    return [{"pluginRef": plugins[k], "weight": w} for k, w in kinds]


def epp_config(ctx: PlanContext, plugins: dict[str, str], prefix_params: dict[str, Any]) -> dict[str, Any]:
    """The P/D EndpointPickerConfig: a prefill and a decode profile, every request disaggregated.

    The scorers are the spec's ``router.scorers`` in both profiles, else KServe v0.20.0's P/D
    baseline (prefill: prefix 3, queue 2, KV utilisation 2; decode: active requests 2,
    prefix 3), with LoRA affinity 4 in both when adapters are declared.
    """
    given = ctx.spec.router.scorers
    if given is not None:
        pre = dec = [(s.type, s.weight) for s in given]
    else:
        pre, dec = list(PD_PREFILL_SCORERS), list(PD_DECODE_SCORERS)
        if ctx.spec.model.loras:
            pre.insert(0, ("loraAffinity", LORA_AFFINITY_WEIGHT))
            dec.insert(0, ("loraAffinity", LORA_AFFINITY_WEIGHT))
    kinds = sorted({k for k, _ in [*pre, *dec]}, key=lambda k: list(plugins).index(k))
    entries: list[dict[str, Any]] = [{"type": "disagg-headers-handler"}, {"type": "prefill-filter"},
                                     {"type": "decode-filter"}]
    for k in kinds:
        entry: dict[str, Any] = {"type": plugins[k]}
        if k == "prefixCache":
            entry["parameters"] = dict(prefix_params)
        entries.append(entry)
    entries += [{"type": "max-score-picker"}, {"type": "always-disagg-pd-decider"},
                {"type": "disagg-profile-handler", "parameters": {"deciders": {"prefill": "always-disagg-pd-decider"}}}]
    picker = {"pluginRef": "max-score-picker"}
    return {"apiVersion": "inference.networking.x-k8s.io/v1alpha1", "kind": "EndpointPickerConfig",
            "plugins": entries,
            "schedulingProfiles": [
                {"name": "prefill", "plugins": [{"pluginRef": "prefill-filter"}, *_scorer_refs(pre, plugins), picker]},
                {"name": "decode", "plugins": [{"pluginRef": "decode-filter"}, *_scorer_refs(dec, plugins), picker]},
            ]}


def network_ingress(ctx: PlanContext) -> PolicyIngress:
    """What the NetworkPolicy admits for both roles' ports and the KV transfer between the pools.

    Requests reach the decode pods' sidecar on 8000 and the prefill engines on 8000 (the
    decode engine's 8001 stays closed to callers); Prometheus scrapes both engines; NIXL's handshake and UCX's transfer
    use their own ports between the service's pods, so the service's workload pods may
    reach each other on any port.
    """
    return PolicyIngress(serving_ports=(eff.ENGINE_PORT,), metrics_ports=(eff.ENGINE_PORT, DECODE_ENGINE_PORT),
                         peers=(eff.workload_selector(ctx.name),))


def note(ctx: PlanContext) -> str:
    """The ``render --explain`` note: both roles, their sizing and the ratio."""
    r = roles(ctx)
    p, d = r.prefill, r.decode
    return (f"disaggregation: {r.connector} KV transfer; prefill Deployment {eff.deployment_name(ctx.name)}-prefill "
            f"{p.replicas} × {p.gpus_per_replica} {p.gpu} (≈ {p.tokens_per_s_per_replica:.0f} prompt tokens/s each, "
            f"TTFT ≈ {p.latency_ms:.0f} ms incl. {r.transfer_ms:.1f} ms transfer); decode Deployment "
            f"{eff.deployment_name(ctx.name)} {d.replicas} × {d.gpus_per_replica} {d.gpu} ({d.concurrency} sequences, "
            f"TPOT ≈ {d.latency_ms:.0f} ms); {r.ratio}; {r.cheaper} is cheaper: {r.why}")


# --------------------------------------------------------------------------- scaling and alerts per role


def _pod_regex(ctx: PlanContext, role: str) -> str:
    """The pods of one role: ``<name>-kserve-<hash>-<id>`` (decode), ``<name>-kserve-prefill-<hash>-<id>``."""
    from ..effective.disagg import prefill_deployment_name

    if role == "decode":
        return eff.workload_pod_regex((ctx.name,))
    return f"{prefill_deployment_name(ctx.name)}-[a-z0-9]+-[a-z0-9]+"


def role_queries(ctx: PlanContext, role: str):  # type: ignore[no-untyped-def]
    """The service's queries narrowed to one role's pods (both roles export the same ``model_name``)."""
    from ..promql import ServiceQueries

    return replace(ServiceQueries.for_service(ctx), pod_regex=_pod_regex(ctx, role))


def scale_roles(ctx: PlanContext, section: Section) -> None:
    """KEDA per role: the decode triggers scoped to the decode pods, and a ScaledObject for the prefill pool.

    The decode pool keeps the service's own signal (``scaling.metric``: KV-cache use, running
    requests, queue…), now counted on decode pods only. The prefill pool scales on its queue:
    a prefill replica admits ``prompts per step`` (``llmdeploy size``) at once, so more waiting
    prompts per replica than that means its TTFT grows by whole steps. KServe leaves a
    Deployment's replicas to an external scaler when the spec sets none
    (``PreserveDeploymentReplicas``, workload.go @ v0.20.0), so ``spec.prefill.replicas`` is
    omitted under KEDA.
    """
    from ..promql import ServiceQueries

    if ctx.spec.scaling.autoscaler != "keda":
        return
    from ..effective.disagg import prefill_deployment_name

    base = ServiceQueries.for_service(ctx).sel
    decode_sel = role_queries(ctx, "decode").sel
    both = roles(ctx)
    out = []
    for m in section.manifests:
        if m.kind != "ScaledObject" or m.name != ctx.name:
            out.append(m)
            continue
        values = copy.deepcopy(dict(m.values))
        for t in values["spec"].get("triggers") or []:
            meta = t.get("metadata") or {}
            if isinstance(meta.get("query"), str):
                meta["query"] = meta["query"].replace(base, decode_sel)
        out.append(replace(m, values=values))
        pre = copy.deepcopy(values)
        name = f"{ctx.name}-prefill"
        pre["metadata"] = ctx.metadata(name, component="autoscaler")
        spec = pre["spec"]
        spec["scaleTargetRef"] = {**spec["scaleTargetRef"], "name": prefill_deployment_name(ctx.name)}
        floor = both.prefill.replicas
        spec["minReplicaCount"] = floor
        spec["maxReplicaCount"] = max(floor, ctx.spec.scaling.max_replicas or floor)
        if "fallback" in spec:
            spec["fallback"]["replicas"] = floor
        server = next((t["metadata"].get("serverAddress") for t in spec.get("triggers") or []
                       if t.get("type") == "prometheus"), None)
        trigger: dict[str, Any] = {"type": "prometheus", "name": "prefill-queue", "metricType": "AverageValue",
                                   "metadata": {"query": role_queries(ctx, "prefill").waiting_total(),
                                                "threshold": str(max(1, both.prefill.concurrency))}}
        if server:
            trigger["metadata"] = {"serverAddress": server, **trigger["metadata"]}
        auth = next((t.get("authenticationRef") for t in spec.get("triggers") or [] if t.get("authenticationRef")),
                    None)
        if auth:
            trigger["authenticationRef"] = auth
        spec["triggers"] = [trigger]
        out.append(replace(m, name=name, values=pre))
    section.manifests = out
    section.notes.append(f"scaling: {ctx.name}-prefill scales Deployment {prefill_deployment_name(ctx.name)} on "
                         f"its queue (more than {max(1, both.prefill.concurrency)} waiting prompts per replica); the "
                         "decode triggers count decode pods only")


def transfer_failures_exported(ctx: PlanContext) -> bool:
    """True when the pinned engine exports a KV-transfer failure counter for the spec's connector (NIXL only)."""
    return transfer_failures_metric(ctx.spec, ctx.engine) is not None


def role_alerts(ctx: PlanContext) -> Manifest | None:
    """Alerts on role imbalance (a prefill backlog, a saturated decode pool behind an idle prefill) and KV-transfer failures.

    With the NIXL connector on a vLLM that exports ``vllm:nixl_num_failed_transfers_total``
    (0.11.1 on, :func:`transfer_failures_exported`), a failed KV read counted on the decode
    pods (the side that pulls the blocks) for ``for`` raises ``LLMServiceKVTransferFailures``.
    Older releases and the other connectors export no such counter: a failed transfer then
    only surfaces as the decode pods' errors, which the service's own alerts cover.
    """
    mon = ctx.spec.monitoring
    if not mon.enabled or not mon.alerts.enabled:
        return None
    both = roles(ctx)
    pq, dq = role_queries(ctx, "prefill"), role_queries(ctx, "decode")
    per_step = max(1, both.prefill.concurrency)
    who = f"{ctx.namespace}/{ctx.name}"
    service = {"inferenceservice": ctx.name}
    runbooks = mon.alerts.runbook_base_url

    def alert(name: str, expr: str, summary: str, description: str) -> dict[str, Any]:
        return {"alert": name, "expr": expr, "for": mon.alerts.for_duration,
                "labels": {"severity": "warning", **service},
                "annotations": {"summary": summary, "description": description,
                                "runbook_url": f"{runbooks}#{name.lower()}"}}

    rules = [
        alert("LLMServicePrefillBacklog", f"({pq.waiting_total()}) / ({pq.replicas()}) > {per_step}",
              f"{who}: the prefill pool is the bottleneck",
              f"More than {per_step} prompts wait per prefill replica (one step's worth): time to first token grows "
              "while the decode pool waits. Add prefill replicas (disaggregation.prefill.replicas)."),
        alert("LLMServiceDecodeSaturated",
              f"{dq.kv_cache_usage_max()} > {mon.alerts.kv_cache_usage:g} and ({pq.waiting_total()}) < 1",
              f"{who}: the decode pool is the bottleneck",
              "The decode pods' KV cache is nearly full while no prompt waits for prefill: generation, not "
              "prefill, limits the service. Add decode replicas (scaling)."),
    ]
    if transfer_failures_exported(ctx):
        rules.append(alert(
            "LLMServiceKVTransferFailures", f"{dq.rate(TRANSFER_FAILURES)} > 0",
            f"{who}: KV-cache transfers from prefill to decode fail",
            "The decode pods count failed NIXL KV reads ({{ $value | humanize }}/s): those requests' blocks are "
            "recomputed or the requests fail. Check the RDMA/UCX path between the pools and "
            f"{NIXL_SIDE_CHANNEL_HOST_ENV} (the prefill pods' side channel) in the decode pods' logs."))
    name = f"{ctx.name}-pd-rules"
    extra = dict(sorted(mon.labels.items()))
    values = {"metadata": ctx.metadata(name, component="alerting", labels=extra),
              "spec": {"groups": [{"name": f"llmdeploy.{ctx.namespace}.{ctx.name}.disaggregation", "rules": rules}]}}
    return Manifest("monitoring/prometheusrule.yaml.j2", "PrometheusRule", name, values, namespace=ctx.namespace,
                    aliases=("rules", "alerts", "monitoring"))


def role_dashboard(ctx: PlanContext) -> Manifest | None:
    """A Grafana dashboard with one row per role: what each pool is sized on, beside the service's own dashboard."""
    from .dashboard import _Layout, _stat, _timeseries, side_dashboard_manifest

    mon = ctx.spec.monitoring
    d = mon.dashboard
    if not mon.enabled or not d.enabled:
        return None
    both = roles(ctx)
    pq, dq = role_queries(ctx, "prefill"), role_queries(ctx, "decode")
    lay = _Layout()
    lay.row("Prefill pool")
    lay.add(_stat("Prefill replicas", "Prefill pods exporting metrics.", "none", pq.replicas()), 6, 4)
    lay.add(_stat("Waiting prompts", "Prompts queued on the prefill pods.", "none", pq.waiting_total(),
                  float(max(1, both.prefill.concurrency))), 6, 4)
    lay.add(_stat("TTFT p95", "Time to first token measured by the prefill engines.", "s", pq.ttft()), 6, 4)
    lay.add(_timeseries("Prefill queue per replica", "Waiting prompts ÷ prefill replicas; above one step's worth "
                        "the TTFT grows.", "none", [(f"({pq.waiting_total()}) / ({pq.replicas()})", "per replica")],
                        float(max(1, both.prefill.concurrency))), 12, 8)
    lay.row("Decode pool")
    lay.add(_stat("Decode replicas", "Decode pods exporting metrics.", "none", dq.replicas()), 6, 4)
    lay.add(_stat("Running sequences", "Sequences generating on the decode pods.", "none", dq.running_total()), 6, 4)
    lay.add(_stat("KV cache (fullest)", "KV-cache use of the fullest decode pod.", "percentunit",
                  dq.kv_cache_usage_max(), mon.alerts.kv_cache_usage), 6, 4)
    lay.add(_timeseries("Inter-token latency p95", "Decode steps carry no prompts: this is the decode pool's TPOT.",
                        "s", [(dq.itl(), "p95")], mon.alerts.itl_p95_seconds), 12, 8)
    if transfer_failures_exported(ctx):
        lay.add(_timeseries("KV transfer failures", "Failed NIXL KV reads counted on the decode pods "
                            f"({dq.m(TRANSFER_FAILURES)}); any is alerted on.", "reqps",
                            [(dq.rate(TRANSFER_FAILURES), "failed/s")], None), 12, 8)
    return side_dashboard_manifest(ctx, lay.panels, key="roles", description="the prefill and decode pools of",
                                   tags=("disaggregation",), title="LLM roles", aliases=("dashboard", "monitoring"))
