"""Prefill/decode disaggregation on the leaderWorkerSet target: a DisaggregatedSet (LWS v0.10.0).

What the DisaggregatedSet controller makes of it (kubernetes-sigs/lws v0.10.0, read and
cited, never copied): one LeaderWorkerSet per role named ``<set>-<slice>-<revision>-<role>``
(``pkg/utils/disaggregatedset/utils.go`` ``GenerateName``; the revision is the first 8 hex
digits of a sha256 over the roles' templates, ``ComputeRevision``), whose leader and worker
pod templates get the labels ``disaggregatedset.x-k8s.io/name``, ``/role``, ``/slice``,
``/revision`` and ``app: <set>-<slice>-<role>`` over the template's own
(``pkg/controllers/disaggregatedset/lws_manager.go`` ``Create``/``mergeLabels``), and a
headless Service ``<lws>-prv`` per role (``service_manager.go``). Roles roll out together.

The DisaggregatedSet does not route: as LWS's own vLLM example says, the prefill→decode
wiring is the deployment's. llmdeploy renders both roles with the KV connector
(``--kv-transfer-config``, NIXL's side-channel host, RDMA devices), labels each role's pods
``llm-d.ai/role: prefill|decode`` (what the llm-d router's ``prefill-filter`` and
``decode-filter`` select), and one ClusterIP Service per role; a P/D-aware router in front
is the cluster's (LD723 says so). Each role's pods reuse the LeaderWorkerSet plan
(:mod:`.lws`): the same engine container, probes, monitoring, PDB and NetworkPolicy, with
their selectors on the DisaggregatedSet's name instead of the LeaderWorkerSet's (the
monitoring objects' moved over, the PDB and NetworkPolicy built on the set's label).
"""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

from . import disagg, lws, monitoring
from .kserve import plan_engine
from .model import Manifest, Plan, PlanContext

__all__ = ["API_VERSION", "KIND", "ROLE_LABEL", "SET_NAME_LABEL", "build_plan", "role_selector"]

API_VERSION = "disaggregatedset.x-k8s.io/v1"
KIND = "DisaggregatedSet"
SET_NAME_LABEL = "disaggregatedset.x-k8s.io/name"
ROLE_LABEL = "disaggregatedset.x-k8s.io/role"
LLMD_ROLE = "llm-d.ai/role"


def role_selector(name: str, role: str | None = None) -> dict[str, str]:
    """The leaders of the set (or of one role): the pods that serve and are scraped."""
    sel = {SET_NAME_LABEL: name, lws.WORKER_INDEX_LABEL: "0"}
    if role is not None:
        sel[ROLE_LABEL] = role
    return dict(sorted(sel.items()))


def _role_spec(ctx: PlanContext, role: str, replicas: int, service: PlanContext) -> dict[str, Any]:
    """One role's LeaderWorkerSet spec: the LWS plan's (``ctx``: the role's), with the service's KV connector
    and the llm-d role label."""
    engine = plan_engine(ctx)
    spec = copy.deepcopy(dict(lws.lws_manifest(ctx, engine, replicas).values["spec"]))
    lt = spec["leaderWorkerTemplate"]
    for key in ("leaderTemplate", "workerTemplate"):
        t = lt.get(key)
        if t is None:
            continue
        t["metadata"].setdefault("labels", {})[LLMD_ROLE] = role
        t["metadata"]["labels"] = dict(sorted(t["metadata"]["labels"].items()))
        if key == "leaderTemplate":
            t["spec"] = disagg.decorate_pod(service, t["spec"], lws.ENGINE_CONTAINER)
    return spec


def _retarget(value: Any, name: str) -> Any:
    """Selectors of the LeaderWorkerSet ``name`` → the DisaggregatedSet's (leaders, or every pod of the set)."""
    if isinstance(value, dict):
        if value == lws.leader_selector(name):
            return role_selector(name)
        if value == {lws.SET_NAME_LABEL: name}:
            return {SET_NAME_LABEL: name}
        return {k: _retarget(v, name) for k, v in value.items()}
    if isinstance(value, list):
        return [_retarget(v, name) for v in value]
    return value


def _service(ctx: PlanContext, role: str, port: int, port_name: str) -> Manifest:
    name = f"{ctx.name}-{role}"
    spec = {"type": "ClusterIP", "selector": role_selector(ctx.name, role),
            "ports": [{"name": "http", "port": port, "targetPort": port_name, "protocol": "TCP"}]}
    return Manifest("lws/service.yaml.j2", "Service", name,
                    {"metadata": ctx.metadata(name, component=f"inference-server-{role}"), "spec": spec},
                    namespace=ctx.namespace, aliases=("service", "svc"))


def build_plan(ctx: PlanContext) -> Plan:
    """Every manifest of a disaggregated service on the leaderWorkerSet target."""
    both = disagg.roles(ctx)
    d = ctx.spec.disaggregation
    assert d is not None
    pctx = disagg.prefill_context(ctx)
    pctx = replace(pctx, spec=pctx.spec.model_copy(update={"runtime": ctx.spec.runtime}))
    p_reps = d.prefill.replicas if isinstance(d.prefill.replicas, int) else both.prefill.replicas
    d_reps = max(ctx.spec.scaling.min_replicas, 1)
    meta = ctx.metadata(ctx.name, component="inference-server",
                        annotations=dict(sorted(ctx.spec.metadata.annotations.items())), spec_hash=False)
    spec = {"roles": [{"name": "prefill", "spec": _role_spec(pctx, "prefill", p_reps, ctx)},
                      {"name": "decode", "spec": _role_spec(ctx, "decode", d_reps, ctx)}]}
    if ctx.spec.resources.interconnect.topology_key:
        # One slice's roles share a topology domain (KEP 848; utils/disaggregatedset/affinity.go).
        spec["placementPolicy"] = {"type": "ExclusiveTopology", "topology": ctx.spec.resources.interconnect.topology_key}
    manifests = [Manifest("lws/disaggregatedset.yaml.j2", KIND, ctx.name, {"metadata": meta, "spec": spec},
                          namespace=ctx.namespace, aliases=("disaggregatedset", "lws"))]
    engine = plan_engine(ctx)
    manifests += [_service(ctx, role, engine.port, engine.port_name) for role in ("prefill", "decode")]
    notes = [(f"target: DisaggregatedSet {ctx.namespace}/{ctx.name} (LWS v0.10.0): LeaderWorkerSets "
              f"{ctx.name}-0-<revision>-prefill and -decode; requests need a P/D-aware router in front "
              f"(pods labelled {LLMD_ROLE}; Services {ctx.name}-prefill and {ctx.name}-decode)"),
             disagg.note(ctx).replace(f"Deployment {ctx.name}-kserve-prefill", "role prefill")
             .replace(f"Deployment {ctx.name}-kserve", "role decode")]
    mon = monitoring.plan_monitoring(ctx, engine)
    for m in mon.manifests:
        manifests.append(replace(m, values=_retarget(copy.deepcopy(dict(m.values)), ctx.name)))
    # The PDB and NetworkPolicy of the LeaderWorkerSet plan, over the pods the set's label names.
    policy = (lws.pdb_manifest(ctx, SET_NAME_LABEL), lws.networkpolicy_manifest(ctx, engine, SET_NAME_LABEL))
    manifests += [m for m in policy if m is not None]
    notes.extend(mon.notes)
    manifests.sort(key=Manifest.sort_key)
    return Plan(ctx, tuple(manifests), tuple(notes))
