"""The llmInferenceService target: a KServe v0.20 LLMInferenceService behind the llm-d router.

What is rendered, and why (docs/targets.md):

* **One LLMInferenceService** (``serving.kserve.io/v1alpha2``) whose ``spec.template`` holds
  the container ``main`` with the same engine plan as the InferenceService target
  (``plan/kserve.py`` ``plan_engine``: args from the version table and the sizing,
  resources, probes, env, security context, ``/dev/shm``, scheduling). No ``baseRefs``:
  KServe's controller always applies the well-known presets under the service
  (``config_merge.go`` ``combineBaseRefsConfig`` @ v0.20.0: ``kserve-config-llm-template``
  for a single-node workload, ``-scheduler`` with ``router.scheduler``, ``-router-route``
  with ``router.route``), so naming them again would change nothing; what llmdeploy
  writes is merged over them field by field (containers by name, env by name, ports by
  number, volumes by name). Everything the engine's behaviour depends on is written
  explicitly, so a preset edited in the cluster cannot silently change it; only the
  preset's entrypoint (``vllm serve /mnt/models --served-model-name <model.name>
  publishers/<ns>/models/<model.name> --port 8000 … "$@"``) is kept, which is why the
  engine listens on 8000 and ``--served-model-name`` is not repeated in ``args``.
* **The router.** ``pool: managed`` (default): ``router.route``/``gateway``/``scheduler``
  on the LLMInferenceService; KServe creates the HTTPRoute, the InferencePool
  (``<name>-inference-pool``, selecting the workload pods, targetPort 8000) and the
  endpoint picker, whose ``EndpointPickerConfig`` llmdeploy writes inline from
  ``router.scorers``. ``pool: explicit``: llmdeploy renders the InferencePool, an
  HTTPRoute whose backend is the pool, and a ConfigMap with the EndpointPickerConfig for
  the cluster's own endpoint picker (``router.eppService``); the LLMInferenceService
  references the pool and the route. ``router.objective`` adds an InferenceObjective.
* **Scaling.** KServe's own ``spec.scaling`` needs the Workload Variant Autoscaler; llmdeploy
  instead scales the workload Deployment ``<name>-kserve`` with the same KEDA
  ScaledObject and scoped PromQL as the InferenceService target, and leaves
  ``spec.replicas`` unset so the controller keeps the replica count KEDA sets
  (``PreserveDeploymentReplicas``, workload.go @ v0.20.0). ``autoscaler: none`` sets
  ``spec.replicas``.
* **Monitoring, PDB, NetworkPolicy** come from the same section planners; their pod
  selectors follow ``PlanContext.predictor_selector``, which on this target is the
  workload's labels (``effective.llmisvc.workload_selector``). What disaggregation, the
  precise prefix-cache scorer and a multi-node group add to the NetworkPolicy
  (``disagg.network_ingress``, ``kvevents.network_ingress``,
  ``llmisvc_worker.network_ingress``), and the group's pods both objects select
  (``llmisvc_worker.policy_pods``), go into the policy planner, which builds them once.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from ..derive.block_size import VLLM_DEFAULT_BLOCK_SIZE, block_size_arg
from ..derive.lora import lora_limits
from ..effective import llmisvc as eff
from . import disagg, kvevents, rewrite
from .kserve import EnginePlan, kserve_storage_uri, plan_engine, storage_service_account_manifest
from .llmisvc_worker import data_local, group_engine, renders_worker, worker_pod
from .llmisvc_worker import network_ingress as group_ingress
from .llmisvc_worker import note as group_note
from .llmisvc_worker import policy_pods as group_pods
from .model import Manifest, Plan, PlanContext, Section

__all__ = ["DEFAULT_SCORERS", "LLMISVC_ENGINE_PORT", "build_plan", "epp_config", "target_context"]

LLMISVC_ENGINE_PORT = eff.ENGINE_PORT
# KServe v0.20.0's single-profile baseline (scheduler.go schedulerConfigText), which the
# managed endpoint picker runs when no config is given: llmdeploy renders it explicitly.
DEFAULT_SCORERS = (("queue", 2), ("kvCacheUtilization", 2), ("prefixCache", 3), ("noHitLru", 2))
LORA_AFFINITY_DEFAULT_WEIGHT = 4
# Spec scorer → llm-d router plugin type (llm-d-router v0.9.0 pkg/epp/framework/plugins/scheduling/scorer).
SCORER_PLUGINS = {
    "prefixCache": "prefix-cache-scorer",
    "precisePrefixCache": kvevents.PRECISE_PLUGIN,
    "kvCacheUtilization": "kv-cache-utilization-scorer",
    "queue": "queue-scorer",
    "loraAffinity": "lora-affinity-scorer",
    "activeRequest": "active-request-scorer",
    "noHitLru": "no-hit-lru-scorer",
}
EPP_CONFIG_API = "inference.networking.x-k8s.io/v1alpha1"
EPP_CONFIG_KEY = "epp"  # the ConfigMap key KServe reads by default (config_merge.go)
# Pod labels the controller owns: a user label of the same key would overwrite the
# fixed one on the pod template and no longer match the Deployment's selector.
_CONTROLLER_LABELS = frozenset(eff.POD_FIXED_LABELS)


def target_context(ctx: PlanContext) -> PlanContext:
    """The plan context of this target: the engine port is the presets' 8000."""
    spec = ctx.spec
    # Disaggregated: the decode preset runs vLLM on 8001 behind the routing sidecar on 8000.
    port = disagg.DECODE_ENGINE_PORT if spec.disaggregation is not None else LLMISVC_ENGINE_PORT
    runtime = spec.runtime.model_copy(update={"port": port})
    return replace(ctx, spec=spec.model_copy(update={"runtime": runtime}))


def engine_block_size(ctx: PlanContext) -> int:
    """The KV block size the engine runs with: the last ``--block-size`` of extraArgs, else vLLM's 16."""
    found = block_size_arg(ctx.spec.runtime.extra_args)
    return VLLM_DEFAULT_BLOCK_SIZE if found is None else found


def scorers(ctx: PlanContext) -> list[tuple[str, int]]:
    """The endpoint picker's scorers and weights: the spec's, else KServe's baseline (+ LoRA affinity)."""
    given = ctx.spec.router.scorers
    if given is not None:
        return [(s.type, s.weight) for s in given]
    out = list(DEFAULT_SCORERS)
    if ctx.spec.model.loras:
        out.insert(0, ("loraAffinity", LORA_AFFINITY_DEFAULT_WEIGHT))
    return out


def epp_config(ctx: PlanContext) -> dict[str, Any]:
    """The EndpointPickerConfig of the service: one profile, the chosen scorers, a max-score picker.

    The prefix scorer hashes the prompt in blocks of ``blockSizeTokens``; it is the
    engine's block size (``router.prefixBlockSize`` must agree, LD707) so a hit in the
    picker's index is a hit in vLLM's prefix cache (llm-d-router v0.9.0
    approximateprefix/types.go: default 16, vLLM's default).
    """
    if ctx.spec.disaggregation is not None:
        return disagg.epp_config(ctx, SCORER_PLUGINS, {
            "blockSizeTokens": ctx.spec.router.prefix_block_size or engine_block_size(ctx),
            "maxPrefixTokensToMatch": ctx.spec.runtime.max_model_len})
    plugins: list[dict[str, Any]] = [{"type": "single-profile-handler"}]
    refs: list[dict[str, Any]] = []
    for kind, weight in scorers(ctx):
        plugin: dict[str, Any] = {"type": SCORER_PLUGINS[kind]}
        if kind == "prefixCache":
            plugin["parameters"] = {"blockSizeTokens": ctx.spec.router.prefix_block_size or engine_block_size(ctx),
                                    "maxPrefixTokensToMatch": ctx.spec.runtime.max_model_len}
        elif kind == kvevents.PRECISE:
            plugin["parameters"] = kvevents.scorer_parameters(
                ctx, ctx.spec.router.prefix_block_size or engine_block_size(ctx))
        plugins.append(plugin)
        refs.append({"pluginRef": SCORER_PLUGINS[kind], "weight": weight})
    plugins.append({"type": "max-score-picker"})
    refs.append({"pluginRef": "max-score-picker"})
    return {"apiVersion": EPP_CONFIG_API, "kind": "EndpointPickerConfig", "plugins": plugins,
            "schedulingProfiles": [{"name": "default", "plugins": refs}]}


def _epp_config_text(ctx: PlanContext) -> str:
    # JSON is YAML: the endpoint picker parses either; sorted keys keep the output stable.
    return json.dumps(epp_config(ctx), sort_keys=True, indent=2) + "\n"


def _gateway_refs(ctx: PlanContext) -> list[dict[str, Any]]:
    g = ctx.spec.router.gateway
    if g is None:
        return []
    ref: dict[str, Any] = {"name": g.name, "namespace": g.namespace or ctx.namespace}
    if g.section_name:
        ref["sectionName"] = g.section_name
    return [ref]


def objective_api_version(ctx: PlanContext) -> str:
    """``llm-d.ai/v1alpha2`` from llm-d router 0.9 (its own group), the GAIE alpha group before."""
    parts = [int(p) for p in ctx.spec.router.llmd_router_version.split(".")]
    return "llm-d.ai/v1alpha2" if (parts + [0])[:2] >= [0, 9] else "inference.networking.x-k8s.io/v1alpha2"


def pool_name(ctx: PlanContext) -> str:
    return eff.inference_pool_name(ctx.name)


def route_name(ctx: PlanContext) -> str:
    return f"{ctx.name}-route"


def epp_configmap_name(ctx: PlanContext) -> str:
    return f"{ctx.name}-epp-config"


def _router(ctx: PlanContext, name: str | None = None,
            route: dict[str, Any] | None = None) -> tuple[dict[str, Any], list[Manifest]]:
    """``spec.router`` of the LLMInferenceService ``name`` (default the service's) and the router
    objects llmdeploy renders itself; ``route`` is the managed route's group and weight (rollouts)."""
    r = ctx.spec.router
    name = name or ctx.name
    gateway_refs = _gateway_refs(ctx)
    manifests: list[Manifest] = []
    if r.pool == "managed":
        scheduler: dict[str, Any] = {"config": {"inline": epp_config(ctx)}}
        if r.scheduler_replicas != 1:
            scheduler["replicas"] = r.scheduler_replicas
        router: dict[str, Any] = {"route": dict(route or {}),
                                  "gateway": {"refs": gateway_refs} if gateway_refs else {}, "scheduler": scheduler}
    else:
        pool = {
            "metadata": ctx.metadata(pool_name(ctx), component="inference-pool"),
            "spec": {
                "selector": {"matchLabels": eff.workload_selector(ctx.name)},
                "targetPorts": [{"number": LLMISVC_ENGINE_PORT}],
                "endpointPickerRef": {"kind": "Service", "name": r.epp_service or "",
                                      "port": {"number": eff.EPP_GRPC_PORT}, "failureMode": "FailOpen"},
            },
        }
        route_spec: dict[str, Any] = {}
        if gateway_refs:
            route_spec["parentRefs"] = [{"group": "gateway.networking.k8s.io", "kind": "Gateway", **ref}
                                        for ref in gateway_refs]
        timeout = f"{ctx.spec.deployment.request_timeout_seconds}s"
        route_spec["rules"] = [{
            "matches": [{"path": {"type": "PathPrefix", "value": "/v1/"}}],
            "backendRefs": [{"group": "inference.networking.k8s.io", "kind": "InferencePool",
                             "name": pool_name(ctx)}],
            "timeouts": {"request": timeout, "backendRequest": timeout},
        }]
        if renders_candidate(ctx):
            route_spec["rules"] = _split_rules(ctx, route_spec["rules"][0])
        route = {"metadata": ctx.metadata(route_name(ctx), component="route"), "spec": route_spec}
        cm = {"metadata": ctx.metadata(epp_configmap_name(ctx), component="endpoint-picker"),
              "data": {EPP_CONFIG_KEY: _epp_config_text(ctx)}}
        manifests += [
            Manifest("llmisvc/inferencepool.yaml.j2", "InferencePool", pool_name(ctx), pool,
                     namespace=ctx.namespace, aliases=("pool", "router")),
            Manifest("gateway/httproute.yaml.j2", "HTTPRoute", route_name(ctx), route,
                     namespace=ctx.namespace, aliases=("route", "router")),
            Manifest("llmisvc/epp-configmap.yaml.j2", "ConfigMap", epp_configmap_name(ctx), cm,
                     namespace=ctx.namespace, aliases=("epp", "router")),
        ]
        router = {"route": {"http": {"refs": [{"name": route_name(ctx)}]}},
                  "scheduler": {"pool": {"ref": {"name": pool_name(ctx)}}}}
        if gateway_refs:
            router["gateway"] = {"refs": gateway_refs}
    if r.objective is not None:
        obj = {"metadata": ctx.metadata(name, component="inference-objective"),
               "spec": {"priority": r.objective.priority,
                        "poolRef": {"group": "inference.networking.k8s.io", "name": eff.inference_pool_name(name)}}}
        manifests.append(Manifest("llmisvc/inferenceobjective.yaml.j2", "InferenceObjective", name,
                                  {"api_version": objective_api_version(ctx), **obj},
                                  namespace=ctx.namespace, aliases=("objective", "router")))
    return router, manifests


def _model(ctx: PlanContext, engine: EnginePlan) -> dict[str, Any]:
    model: dict[str, Any] = {"uri": kserve_storage_uri(engine.storage_uri), "name": ctx.served_model_name}
    limits = lora_limits(ctx.spec)
    if limits is not None:
        model["lora"] = {
            "adapters": [{"name": a.name, "uri": a.storage_uri} for a in ctx.spec.model.loras],
            "maxRank": limits.max_rank,
            "maxAdapters": limits.max_loras,
            "maxCpuAdapters": limits.max_cpu_loras,
        }
    return model


def _parallelism(ctx: PlanContext) -> dict[str, Any]:
    par = ctx.spec.resources.parallelism
    out: dict[str, Any] = {"tensor": par.tensor}
    if par.pipeline > 1:
        out["pipeline"] = par.pipeline
    if par.data > 1:
        # One pod runs every data-parallel rank (data == dataLocal; the webhook wants both),
        # or a multi-node worker layout splits them over the nodes (plan/llmisvc_worker.py).
        out["data"] = par.data
        out["dataLocal"] = data_local(ctx.spec)
    if par.expert:
        out["expert"] = True
    return out


def _template(ctx: PlanContext, engine: EnginePlan) -> dict[str, Any]:
    """The pod spec: the engine plan's container as ``main`` and its pod settings."""
    # The preset passes --served-model-name from spec.model.name (with its publishers/ alias).
    args = [a for a in engine.args if not a.startswith("--served-model-name=")]
    env = [dict(e) for e in engine.env]
    if kvevents.uses_precise(ctx):  # router.scorers: precisePrefixCache (plan/kvevents.py)
        args += kvevents.engine_args(ctx)
        env += kvevents.engine_env()
    main: dict[str, Any] = {
        "name": eff.MAIN_CONTAINER,
        "image": engine.image,
        "args": args,
        "ports": [{"name": engine.port_name, "containerPort": engine.port, "protocol": "TCP"}],
    }
    if env:
        main["env"] = env
    main.update({
        "resources": engine.resources,
        "startupProbe": engine.startup_probe,
        "readinessProbe": engine.readiness_probe,
        "livenessProbe": engine.liveness_probe,
        "lifecycle": {"preStop": engine.prestop},
        "securityContext": engine.container_security,
        "volumeMounts": [dict(m) for m in engine.volume_mounts],
    })
    pod: dict[str, Any] = {"containers": [main], "volumes": [dict(v) for v in engine.volumes],
                           "nodeSelector": engine.node_selector, "tolerations": [dict(t) for t in engine.tolerations]}
    if engine.service_account:
        pod["serviceAccountName"] = engine.service_account
    if ctx.spec.deployment.priority_class_name:
        pod["priorityClassName"] = ctx.spec.deployment.priority_class_name
    pod["securityContext"] = engine.pod_security
    pod["terminationGracePeriodSeconds"] = engine.termination_grace_seconds
    return pod


def _pod_labels(ctx: PlanContext) -> dict[str, str]:
    """Labels for the workload pods (``spec.labels``), less the keys the controller owns."""
    labels = ctx.labels("workload", spec_hash=False)
    return {k: v for k, v in sorted(labels.items()) if k not in _CONTROLLER_LABELS}


def _retarget_scaledobjects(section: Section) -> None:
    """Point the section's ScaledObjects at the workload Deployments ``<name>-kserve``."""
    manifests = []
    for m in section.manifests:
        if m.kind == "ScaledObject":
            values = dict(m.values)
            spec = dict(values["spec"])
            spec["scaleTargetRef"] = {**spec["scaleTargetRef"], "name": eff.deployment_name(m.name)}
            values["spec"] = spec
            m = replace(m, values=values)
        manifests.append(m)
    section.manifests = manifests


def _scaling(ctx: PlanContext, engine: EnginePlan) -> tuple[Section, dict[str, Any]]:
    """KEDA on the workload Deployment (the same triggers as the InferenceService target) or fixed replicas."""
    from . import scaling

    section = scaling.plan_scaling(ctx, engine)
    _retarget_scaledobjects(section)
    extra: dict[str, Any] = {}
    if ctx.spec.scaling.autoscaler != "keda":
        extra["replicas"] = section.predictor.get("minReplicas", ctx.spec.scaling.min_replicas)
    return section, extra


# The endpoint picker's own series (llm-d-router v0.9.0 pkg/epp/metrics/llm_d_router_metrics.go).
EPP_INFO = "llm_d_epp_info"  # gauge, one series per picker process
EPP_AVERAGE_QUEUE = "llm_d_epp_average_queue_size"  # gauge, label name = the pool
EPP_AVERAGE_KV_CACHE = "llm_d_epp_average_kv_cache_utilization"  # gauge, label name = the pool
EPP_READY_ENDPOINTS = "llm_d_epp_ready_endpoints"  # gauge, label name = the pool
EPP_SCHEDULER_LATENCY = "llm_d_epp_scheduler_e2e_duration_seconds"  # histogram (buckets up to 0.1 s)
EPP_SCHEDULER_ATTEMPTS = "llm_d_epp_scheduler_attempts_total"  # counter, status success|failure
EPP_INPUT_TOKENS = "llm_d_epp_request_input_tokens"  # histogram of prompt tokens per request
EPP_CACHED_TOKENS = "llm_d_epp_request_cached_tokens"  # histogram of prompt tokens served from cache
SCHEDULING_P95_SECONDS = 0.05  # half the picker's largest latency bucket: scoring has become the bottleneck


def router_monitoring(ctx: PlanContext) -> list[Manifest]:
    """The managed endpoint picker's PodMonitor and alerts (``router.eppMetricsToken`` given).

    The picker serves ``/metrics`` on its ``metrics`` port (9090, config-llm-scheduler.yaml @
    KServe v0.20.0) and checks a bearer token on it (``--metrics-endpoint-auth``, on by default
    in llm-d-router v0.9.0 pkg/epp/server/options.go), so the PodMonitor sends the token of
    the Secret the spec names.
    """
    r = ctx.spec.router
    mon = ctx.spec.monitoring
    if r.pool != "managed" or r.epp_metrics_token is None or not mon.enabled:
        return []
    extra = dict(sorted(mon.labels.items()))
    names = _picker_names(ctx)
    name = f"{ctx.name}-epp"
    endpoint = {"port": "metrics", "path": "/metrics", "scheme": "http", "interval": mon.scrape_interval,
                "authorization": {"type": "Bearer", "credentials": {"name": r.epp_metrics_token.name,
                                                                    "key": r.epp_metrics_token.key}}}
    pm = {"metadata": ctx.metadata(name, component="metrics", labels=extra),
          "spec": {"selector": _picker_selector(names),
                   "namespaceSelector": {"matchNames": [ctx.namespace]},
                   "podMetricsEndpoints": [endpoint]}}
    out = [Manifest("monitoring/podmonitor.yaml.j2", "PodMonitor", name, pm, namespace=ctx.namespace,
                    aliases=("podmonitor", "monitoring", "router"))]
    sel = f'namespace="{ctx.namespace}",pod=~"{_picker_pods(names)}"'
    window = "5m"
    base = f"llmdeploy.{ctx.namespace}.{ctx.name}.router"
    service = {"inferenceservice": ctx.name}
    recording = [
        {"record": "llmdeploy:router_prefix_cached_tokens:ratio",
         "expr": f"sum(rate({EPP_CACHED_TOKENS}_sum{{{sel}}}[{window}])) / "
                 f"sum(rate({EPP_INPUT_TOKENS}_sum{{{sel}}}[{window}]))",
         "labels": service},
        {"record": "llmdeploy:router_scheduling_seconds:p95",
         "expr": f"histogram_quantile(0.95, sum by (le) (rate({EPP_SCHEDULER_LATENCY}_bucket{{{sel}}}[{window}])))",
         "labels": service},
    ]
    runbooks = mon.alerts.runbook_base_url
    who = f"{ctx.namespace}/{ctx.name}"

    def alert(alert_name: str, expr: str, severity: str, summary: str, description: str) -> dict[str, Any]:
        return {"alert": alert_name, "expr": expr, "for": mon.alerts.for_duration,
                "labels": {"severity": severity, **service},
                "annotations": {"summary": summary, "description": description,
                                "runbook_url": f"{runbooks}#{alert_name.lower()}"}}

    alerts = [
        alert("LLMServiceRouterDown", " or ".join(
            f'absent({EPP_INFO}{{namespace="{ctx.namespace}",pod=~"{_picker_pods([n])}"}})' for n in names),
              "critical", f"{who}: the endpoint picker is not scraped" + (
                  " (stable's or candidate's)" if len(names) > 1 else ""),
              "No endpoint picker pod answers its metrics scrape: requests through the gateway fail "
              "(FailOpen pools fall back to any pod)."),
        alert("LLMServiceRouterNoEndpoints",
              ("max by (name) " if len(names) > 1 else "max")
              + f"({EPP_READY_ENDPOINTS}{{{sel},{_pools_matcher(names)}}}) < 1", "critical",
              f"{who}: the InferencePool has no ready endpoint",
              "The endpoint picker sees no ready engine pod in the pool: check the pool selector, the "
              "engine pods' readiness and the NetworkPolicy."),
        alert("LLMServiceRouterSchedulingSlow",
              f"histogram_quantile(0.95, sum by (le) (rate({EPP_SCHEDULER_LATENCY}_bucket{{{sel}}}[{window}]))) "
              f"> {SCHEDULING_P95_SECONDS:g}", "warning",
              f"{who}: the endpoint picker takes over {SCHEDULING_P95_SECONDS * 1000:g} ms to pick (p95)",
              "Scoring has become part of every request's latency: fewer scorers, a larger picker, or "
              "a smaller prefix index (maxPrefixTokensToMatch)."),
        alert("LLMServiceRouterSchedulingFailures",
              f'sum(rate({EPP_SCHEDULER_ATTEMPTS}{{{sel},status="failure"}}[{window}])) > 0', "warning",
              f"{who}: the endpoint picker fails to schedule requests",
              "Scheduling attempts fail: no endpoint passes the picker's filters (all saturated or not ready)."),
    ]
    if mon.dashboard.enabled:
        out.append(router_dashboard_manifest(ctx, sel, window))
    rules = {"metadata": ctx.metadata(f"{ctx.name}-router-rules", component="alerting", labels=extra),
             "spec": {"groups": [{"name": f"{base}.recording", "rules": recording},
                                 {"name": f"{base}.alerts", "rules": alerts}]}}
    out.append(Manifest("monitoring/prometheusrule.yaml.j2", "PrometheusRule", f"{ctx.name}-router-rules", rules,
                        namespace=ctx.namespace, aliases=("rules", "alerts", "monitoring", "router")))
    return out


def _picker_names(ctx: PlanContext) -> list[str]:
    """The LLMInferenceServices whose managed pickers are monitored: the service, and its candidate
    during a managed-pool canary or blue/green (each member of the route group has its own picker)."""
    from . import rollout

    return [ctx.name, rollout.candidate_name(ctx)] if renders_candidate(ctx) else [ctx.name]


def _picker_selector(names: list[str]) -> dict[str, Any]:
    if len(names) == 1:
        return {"matchLabels": eff.scheduler_labels(names[0])}
    labels = {k: v for k, v in eff.scheduler_labels(names[0]).items() if k != eff.APP_NAME}
    return {"matchLabels": labels, "matchExpressions": [{"key": eff.APP_NAME, "operator": "In", "values": names}]}


def _picker_pods(names: list[str]) -> str:
    deps = [eff.scheduler_deployment_name(n) for n in names]
    head = deps[0] if len(deps) == 1 else f"({'|'.join(deps)})"
    return f"{head}-[a-z0-9]+-[a-z0-9]+"


def _pools_matcher(names: list[str]) -> str:
    pools = [eff.inference_pool_name(n) for n in names]
    return f'name="{pools[0]}"' if len(pools) == 1 else f'name=~"{"|".join(pools)}"'


def router_dashboard_manifest(ctx: PlanContext, sel: str, window: str) -> Manifest:
    """A Grafana dashboard of the endpoint picker beside the engine's: hit rate, scoring, queue, endpoints."""
    from .dashboard import _Layout, _stat, _timeseries, side_dashboard_manifest

    pool = f'{sel},{_pools_matcher(_picker_names(ctx))}'
    hit = (f"sum(rate({EPP_CACHED_TOKENS}_sum{{{sel}}}[{window}])) / "
           f"sum(rate({EPP_INPUT_TOKENS}_sum{{{sel}}}[{window}]))")
    latency = f"histogram_quantile(0.95, sum by (le) (rate({EPP_SCHEDULER_LATENCY}_bucket{{{sel}}}[{window}])))"
    lay = _Layout()
    lay.row("Endpoint picker")
    lay.add(_stat("Prefix-cache hit ratio", "Share of prompt tokens the chosen replica already had cached.",
                  "percentunit", hit), 6, 4)
    lay.add(_stat("Ready endpoints", "Engine pods the picker may choose.", "none",
                  f"max({EPP_READY_ENDPOINTS}{{{pool}}})"), 6, 4)
    lay.add(_stat("Scheduling p95", "Time the picker takes to choose a replica.", "s", latency,
                  SCHEDULING_P95_SECONDS), 6, 4)
    lay.add(_stat("Average queue", "Requests waiting per engine, as the picker sees them.", "none",
                  f"max({EPP_AVERAGE_QUEUE}{{{pool}}})"), 6, 4)
    lay.add(_timeseries("Prefix-cache hit ratio", "Cached ÷ input prompt tokens of the requests the picker "
                        "routed.", "percentunit", [(hit, "hit ratio")], None, 1), 12, 8)
    lay.add(_timeseries("Scheduling attempts", "Picks per second by outcome.", "reqps",
                        [(f"sum by (status) (rate({EPP_SCHEDULER_ATTEMPTS}{{{sel}}}[{window}]))", "{{status}}")]),
            12, 8)
    lay.add(_timeseries("Scheduling latency (p95)", "End-to-end time of one pick.", "s", [(latency, "p95")],
                        SCHEDULING_P95_SECONDS), 12, 8)
    lay.add(_timeseries("Pool load", "Average queue and KV-cache use of the pool's engines.", "none",
                        [(f"max({EPP_AVERAGE_QUEUE}{{{pool}}})", "queue"),
                         (f"max({EPP_AVERAGE_KV_CACHE}{{{pool}}})", "KV cache")]), 12, 8)
    return side_dashboard_manifest(ctx, lay.panels, key="router", description="the llm-d endpoint picker of",
                                   tags=("llm-d",), title="LLM router", aliases=("dashboard", "monitoring", "router"))


def llmisvc_manifest(ctx: PlanContext, engine: EnginePlan, router: dict[str, Any],
                     extra: dict[str, Any], name: str | None = None, component: str = "llm-inference-service") -> Manifest:
    name = name or ctx.name
    engine = group_engine(ctx, engine)
    meta = ctx.metadata(name, component=component,
                        annotations=dict(sorted(ctx.spec.metadata.annotations.items())), spec_hash=False)
    meta["labels"]["app.kubernetes.io/instance"] = name
    spec: dict[str, Any] = {"model": _model(ctx, engine)}
    spec.update(extra)
    spec["parallelism"] = _parallelism(ctx)
    spec["labels"] = _pod_labels(ctx)
    mon = ctx.spec.monitoring
    if mon.enabled and mon.scrape == "annotations":
        spec["annotations"] = {"prometheus.io/scrape": "true", "prometheus.io/port": str(engine.port),
                               "prometheus.io/path": engine.metrics_path}
    spec["template"] = _template(ctx, engine)
    if ctx.spec.disaggregation is not None:
        spec["template"] = disagg.decorate_pod(ctx, spec["template"])
        spec["prefill"] = disagg.prefill_block(ctx, _template, spec["labels"])
    if renders_worker(ctx.spec):
        spec["worker"] = worker_pod(spec["template"])
    spec["router"] = router
    return Manifest("llmisvc/llminferenceservice.yaml.j2", "LLMInferenceService", name,
                    {"metadata": meta, "spec": spec}, namespace=ctx.namespace, aliases=("llmisvc",))


def renders_candidate(ctx: PlanContext) -> bool:
    """A second LLMInferenceService: a canary or blue/green in KServe's route group (managed pool),
    or a canary, blue/green or A/B test between two InferencePools of llmdeploy's HTTPRoute (explicit pool)."""
    from . import rollout

    strategies = ("canary", "blueGreen") if ctx.spec.router.pool == "managed" else ("canary", "blueGreen", "abTest")
    return rollout.renders_candidate(ctx) and ctx.spec.rollout.strategy in strategies


# --------------------------------------------------------------------------- explicit-pool rollouts


def _pool_ref(name: str, weight: int | None = None) -> dict[str, Any]:
    ref: dict[str, Any] = {"group": "inference.networking.k8s.io", "kind": "InferencePool", "name": name}
    if weight is not None:
        ref["weight"] = weight
    return ref


def _split_rules(ctx: PlanContext, base: dict[str, Any]) -> list[dict[str, Any]]:
    """The HTTPRoute rules of an explicit-pool rollout: by weight (canary, blue/green) or by header (A/B).

    Gateway API ``HTTPRoute``: ``backendRefs[].weight`` splits a rule's requests
    proportionally; a rule whose ``matches`` also names a header wins over the plain
    path rule (more matching criteria take precedence), so the header's requests go to
    the candidate's pool and all others to the stable one.
    """
    from . import rollout

    r = ctx.spec.rollout
    cand_pool = eff.inference_pool_name(rollout.candidate_name(ctx))
    if r.strategy == "abTest":
        match = {**base["matches"][0], "headers": [{"type": "Exact", "name": r.header, "value": r.header_value}]}
        return [{**base, "matches": [match], "backendRefs": [_pool_ref(cand_pool)]}, base]
    stable_w, cand_w = route_weights(ctx)
    return [{**base, "backendRefs": [_pool_ref(pool_name(ctx), stable_w), _pool_ref(cand_pool, cand_w)]}]


def _candidate_pool(ctx: PlanContext, name: str) -> tuple[dict[str, Any], list[Manifest]]:
    """The candidate's InferencePool (its pods, its own picker) and picker config, on the stable's HTTPRoute."""
    r = ctx.spec.router
    cpool = eff.inference_pool_name(name)
    pool = {
        "metadata": ctx.metadata(cpool, component="inference-pool"),
        "spec": {
            "selector": {"matchLabels": eff.workload_selector(name)},
            "targetPorts": [{"number": LLMISVC_ENGINE_PORT}],
            "endpointPickerRef": {"kind": "Service", "name": r.candidate_epp_service or "",
                                  "port": {"number": eff.EPP_GRPC_PORT}, "failureMode": "FailOpen"},
        },
    }
    cm = {"metadata": ctx.metadata(f"{name}-epp-config", component="endpoint-picker"),
          "data": {EPP_CONFIG_KEY: _epp_config_text(ctx)}}
    manifests = [
        Manifest("llmisvc/inferencepool.yaml.j2", "InferencePool", cpool, pool, namespace=ctx.namespace,
                 aliases=("pool", "router")),
        Manifest("llmisvc/epp-configmap.yaml.j2", "ConfigMap", f"{name}-epp-config", cm, namespace=ctx.namespace,
                 aliases=("epp", "router")),
    ]
    router: dict[str, Any] = {"route": {"http": {"refs": [{"name": route_name(ctx)}]}},
                              "scheduler": {"pool": {"ref": {"name": cpool}}}}
    gateway_refs = _gateway_refs(ctx)
    if gateway_refs:
        router["gateway"] = {"refs": gateway_refs}
    return router, manifests


def route_weights(ctx: PlanContext) -> tuple[int, int]:
    """(stable, candidate) weights of the route group: the candidate's share is ``trafficPercent``."""
    p = ctx.spec.rollout.traffic_percent
    return 100 - p, p


def _candidate(ctx: PlanContext, scale: Section) -> tuple[list[Manifest], list[str]]:
    """The candidate LLMInferenceService of a canary or blue/green, and its ScaledObject.

    KServe v0.20 splits traffic between LLMInferenceServices of one ``router.route.group``
    by their ``weight`` (router_group.go injectGroupBackendRefs: every member's HTTPRoute
    carries weighted backendRefs to all members serving the same model names), so the
    candidate serves the same ``model.name`` and adapters. Its engine labels its metrics
    with its own name (the first ``--served-model-name``; the served name and its
    ``publishers/`` alias follow), so the stable's and the candidate's queries stay apart.
    """
    from . import rollout, scaling

    name = rollout.candidate_name(ctx)
    cctx = target_context(rollout.candidate_context(ctx))
    cengine = plan_engine(cctx)
    metric_name = rollout.candidate_metric_name(ctx)
    served = ctx.served_model_name
    args = tuple(a for a in cengine.args if not a.startswith("--served-model-name=")) + (
        "--served-model-name", metric_name, served, f"publishers/{ctx.namespace}/models/{served}")
    cengine = replace(cengine, args=args)
    target = scaling.ScaleTarget(name, metric_name, rollout.candidate_bounds(ctx, scale), role="candidate")
    section = scaling.plan_for(cctx, cengine, target, with_auth=False)
    _retarget_scaledobjects(section)
    extra: dict[str, Any] = {}
    if ctx.spec.scaling.autoscaler != "keda":
        extra["replicas"] = section.predictor.get("minReplicas", 1)
    _, weight = route_weights(ctx)
    explicit = ctx.spec.router.pool == "explicit"
    if explicit:
        router, manifests = _candidate_pool(cctx, name)
    else:
        router, manifests = _router(cctx, name, {"group": ctx.name, "weight": weight})
    manifests.append(llmisvc_manifest(cctx, cengine, router, extra, name=name, component="candidate"))
    manifests.extend(section.manifests)
    r = ctx.spec.rollout
    if explicit:
        how = (f"requests with header {r.header}: {r.header_value}" if r.strategy == "abTest"
               else f"{weight} % of requests")
        note = (f"rollout: {r.strategy}: HTTPRoute {route_name(ctx)} sends {how} to InferencePool "
                f"{eff.inference_pool_name(name)} (LLMInferenceService {name}); promote by copying the candidate "
                "into the spec and setting strategy rolling, roll back with "
                + ("strategy rolling (the header route goes away)" if r.strategy == "abTest" else "trafficPercent 0"))
    elif r.strategy == "canary":
        note = (f"rollout: canary: KServe's route group {ctx.name} sends {r.traffic_percent} % of requests to "
                f"LLMInferenceService {name}; promote by copying the candidate into the spec and setting strategy "
                "rolling, roll back with trafficPercent 0")
    else:
        side = "green (the candidate)" if r.traffic_percent == 100 else "blue (the stable service)"
        note = f"rollout: blue/green: KServe's route group {ctx.name} sends all traffic to {side}"
    return manifests, [*section.notes, note]


def _both_labels(ctx: PlanContext) -> dict[str, str]:
    """The serving pods of both workloads (stable and candidate).

    LLMInferenceService pods carry ``app.kubernetes.io/name`` = their own name, and both
    carry llmdeploy's ``app.kubernetes.io/instance`` = the service's name (``spec.labels``),
    which selects exactly the two workloads.
    """
    return {"app.kubernetes.io/instance": ctx.name, eff.PART_OF: "llminferenceservice",
            eff.KSERVE_COMPONENT: "workload"}


def _select_both(manifests: list[Manifest], ctx: PlanContext) -> list[Manifest]:
    """Point the pod selectors of the monitoring objects at both workloads (stable and candidate).

    The monitoring planner selects two InferenceServices' predictor pods by KServe's
    InferenceService label; here both workloads' pods are :func:`_both_labels`. (The
    PodDisruptionBudget and NetworkPolicy get them from the policy planner, ``PolicyPods``.)
    """
    both = _both_labels(ctx)
    out = []
    for m in manifests:
        values = dict(m.values)
        spec = dict(values.get("spec") or {})
        if m.kind == "PodMonitor" and "podMetricsEndpoints" in spec and m.name == ctx.name:
            spec["selector"] = {"matchLabels": both}
        elif m.kind == "Service" and "selector" in spec:
            spec["selector"] = dict(both)
        else:
            out.append(m)
            continue
        values["spec"] = spec
        out.append(replace(m, values=values))
    return out


def build_plan(ctx: PlanContext) -> Plan:
    """Every manifest of one service on the llmInferenceService target."""
    from . import monitoring, policy

    ctx = target_context(ctx)
    engine = plan_engine(ctx)
    scale, extra = _scaling(ctx, engine)
    candidate = renders_candidate(ctx)
    route = {"group": ctx.name, "weight": route_weights(ctx)[0]} if candidate else None
    # A multi-node group's policy covers its leader and workers (with a candidate, both
    # services' groups); otherwise a candidate's covers both workloads' serving pods.
    group = renders_worker(ctx.spec)
    ingress = [*([disagg.network_ingress(ctx)] if ctx.spec.disaggregation is not None else []),
               *([kvevents.network_ingress()] if kvevents.uses_precise(ctx) else []),
               *([group_ingress(ctx, candidate)] if group else [])]
    pods = (group_pods(ctx, candidate) if group else
            policy.PolicyPods(selector={"matchLabels": _both_labels(ctx)}) if candidate else None)
    sections = [scale, monitoring.plan_monitoring(ctx, engine),
                policy.plan_policy(ctx, engine, [ctx.name], ingress, pods)]
    router, manifests = _router(ctx, route=route)
    manifests += router_monitoring(ctx)
    rw = rewrite.rewrite_manifest(ctx)  # router.modelRewrites
    if rw is not None:
        manifests.append(rw)
    sa = storage_service_account_manifest(ctx)
    if sa is not None:
        manifests.append(sa)
    manifests.append(llmisvc_manifest(ctx, engine, router, extra))
    cand_notes: list[str] = []
    if candidate:
        cand_manifests, cand_notes = _candidate(ctx, scale)
        manifests += cand_manifests
        sections[1].manifests = _select_both(sections[1].manifests, ctx)
    presets = ("kserve-config-llm-decode-template, -prefill-template" if ctx.spec.disaggregation is not None
               else "kserve-config-llm-template") + (", -scheduler, -router-route" if ctx.spec.router.pool == "managed" else "")
    note = (f"target: LLMInferenceService {ctx.namespace}/{ctx.name} (KServe v0.20 presets {presets}); "
            f"pods of Deployment {eff.deployment_name(ctx.name)}")
    notes: list[str] = [note]
    if ctx.spec.disaggregation is not None:
        disagg.scale_roles(ctx, sections[0])
        manifests += [m for m in (disagg.role_alerts(ctx), disagg.role_dashboard(ctx)) if m is not None]
        notes.append(disagg.note(ctx))
    if kvevents.uses_precise(ctx):
        notes.append(f"router: precise-prefix-cache-scorer subscribes to vLLM's KV events on every pod "
                     f"(ZMQ tcp/{kvevents.KV_EVENTS_PORT}, hash seed {kvevents.HASH_SEED})")
    for s in sections:
        manifests.extend(s.manifests)
        notes.extend(s.notes)
    notes.extend(cand_notes)
    if renders_worker(ctx.spec):
        notes.append(group_note(ctx))
    manifests.sort(key=Manifest.sort_key)
    return Plan(ctx, tuple(manifests), tuple(notes))
