"""The plan: every value the manifests need, computed once, before any template runs.

``build_plan`` turns an :class:`~llmdeploy.resolve.Analysis` into a :class:`Plan`: a
list of :class:`Manifest` objects, each naming a template and the values it lays out.
Section planners (engine/KServe, scaling, rollout, monitoring, policy) each own one
module and contribute manifests plus the InferenceService annotations and predictor
fields they need; templates never compute anything. The record types live in
:mod:`.model`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .model import (
    KIND_ORDER,
    MANAGED_BY,
    SPEC_HASH_ANNOTATION,
    SPEC_HASH_LABEL,
    Manifest,
    Plan,
    PlanContext,
    Section,
    plan_context,
    spec_hash,
)

if TYPE_CHECKING:  # pragma: no cover
    from ..resolve import Analysis

__all__ = [
    "KIND_ORDER", "MANAGED_BY", "SPEC_HASH_ANNOTATION", "SPEC_HASH_LABEL", "Manifest", "Plan", "PlanContext",
    "Section", "build_plan", "plan_context", "spec_hash",
]


def build_plan(analysis: Analysis) -> Plan:
    """Compute every manifest of one analyzed, valid spec."""
    from . import kserve, monitoring, policy, rollout, scaling

    ctx = plan_context(analysis)
    if ctx.spec.deployment.target == "llmInferenceService":
        from . import llmisvc

        return llmisvc.build_plan(ctx)
    if ctx.spec.deployment.target == "leaderWorkerSet" and ctx.spec.disaggregation is not None:
        from . import disagg_lws
        return disagg_lws.build_plan(ctx)
    if ctx.spec.deployment.target == "leaderWorkerSet":
        from . import lws

        return lws.build_plan(ctx)
    engine = kserve.plan_engine(ctx)
    multi_node = ctx.spec.resources.nodes > 1
    if multi_node:
        from . import multinode

        engine = multinode.head_engine(ctx, engine)
    sections = [scaling.plan_scaling(ctx, engine)]
    sections.append(rollout.plan_rollout(ctx, engine, sections[0]))
    sections.append(monitoring.plan_monitoring(ctx, engine))
    isvc_names = [ctx.name] + [m.name for m in sections[1].manifests if m.kind == "InferenceService"]
    ingress = [multinode.network_ingress(ctx)] if multi_node else []
    sections.append(policy.plan_policy(ctx, engine, isvc_names, ingress))
    manifests = [kserve.runtime_manifest(ctx, engine)]
    storage_sa = kserve.storage_service_account_manifest(ctx)
    if storage_sa is not None:
        manifests.append(storage_sa)
    if ctx.spec.runtime.engine == "tensorrt-llm":
        from .trtllm import options_configmap_manifest

        options = options_configmap_manifest(ctx)
        if options is not None:
            manifests.append(options)
    annotations: dict[str, str] = {}
    predictor: dict[str, Any] = {}
    isvc_spec: dict[str, Any] = {}
    for s in sections:
        annotations.update(s.isvc_annotations)
        predictor.update(s.predictor)
        isvc_spec.update(s.isvc_spec)
    manifests.extend(kserve.isvc_manifests(ctx, engine, annotations, predictor, isvc_spec))
    notes: list[str] = []
    for s in sections:
        manifests.extend(s.manifests)
        notes.extend(s.notes)
    if multi_node:
        manifests, mn_notes = multinode.finish(ctx, engine, manifests)
        notes.extend(mn_notes)
    manifests.sort(key=Manifest.sort_key)
    return Plan(ctx, tuple(manifests), tuple(notes))
