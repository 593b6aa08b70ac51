"""The plan's record types: what a section planner contributes and what a template receives.

Every planner module and the output layer (``render``, ``emit``) import these from here;
``plan/__init__.py`` only strings the section planners together (:func:`build_plan`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..records import record

if TYPE_CHECKING:  # pragma: no cover
    from ..catalog import GPU, ModelConfig
    from ..engines import EngineVersionInfo
    from ..resolve import Analysis
    from ..sizing import SizingReport
    from ..spec.models import LLMService

MANAGED_BY = "llmdeploy"
SPEC_HASH_ANNOTATION = "llmdeploy.dev/spec-hash"
SPEC_HASH_LABEL = "llmdeploy.dev/spec-hash"

# Order of kinds in the output stream: what others depend on comes first (kubectl
# applies in order; a CRD-backed object whose dependency is missing is only an
# event, but the order reads better and matches `helm template`).
KIND_ORDER = (
    "Namespace", "ServiceAccount", "Secret", "ConfigMap", "ClusterServingRuntime", "ServingRuntime",
    "InferenceService", "LLMInferenceService", "InferencePool", "InferenceObjective", "InferenceModelRewrite", "LeaderWorkerSet",
    "DisaggregatedSet",
    "TriggerAuthentication", "ScaledObject", "HTTPRoute", "Canary",
    "PodDisruptionBudget", "NetworkPolicy", "PodMonitor", "ServiceMonitor", "PrometheusRule",
)


@record
class Manifest:
    """One document to render: a template and the values it lays out."""

    template: str
    kind: str
    name: str
    values: Mapping[str, Any]
    namespace: str | None = None
    shared: bool = False  # cluster-scoped and shared by services (e.g. the ClusterServingRuntime)
    # Extra names ``--only`` matches (e.g. "dashboard" for the dashboard ConfigMap).
    aliases: tuple[str, ...] = ()

    def sort_key(self) -> tuple[int, str, str]:
        order = KIND_ORDER.index(self.kind) if self.kind in KIND_ORDER else len(KIND_ORDER)
        return (order, self.namespace or "", self.name)


@dataclass
class Section:
    """What a section planner contributes."""

    manifests: list[Manifest] = field(default_factory=list)
    isvc_annotations: dict[str, str] = field(default_factory=dict)
    predictor: dict[str, Any] = field(default_factory=dict)
    isvc_spec: dict[str, Any] = field(default_factory=dict)  # extra InferenceService spec keys (e.g. canary)
    notes: list[str] = field(default_factory=list)


@record
class PlanContext:
    """Shared facts for the section planners."""

    spec: LLMService
    gpu: GPU
    model: ModelConfig
    engine: EngineVersionInfo
    sizing: SizingReport
    profile: str | None
    spec_hash: str

    @property
    def name(self) -> str:
        return self.spec.metadata.name

    @property
    def namespace(self) -> str:
        return self.spec.metadata.namespace

    @property
    def served_model_name(self) -> str:
        return self.spec.model.served_name or self.spec.metadata.name

    @property
    def scrape_interval(self) -> str:
        return self.spec.monitoring.scrape_interval

    def labels(self, component: str | None = None, *, spec_hash: bool = True) -> dict[str, str]:
        """Kubernetes recommended labels plus the user's labels and (unless told not to) the spec hash."""
        from ..naming import label_safe

        labels = dict(self.spec.metadata.labels)
        labels.update({
            "app.kubernetes.io/name": self.name,
            "app.kubernetes.io/instance": self.name,
            "app.kubernetes.io/version": label_safe(self.engine.version),
            "app.kubernetes.io/part-of": "llmdeploy",
            "app.kubernetes.io/managed-by": MANAGED_BY,
        })
        if spec_hash:
            labels[SPEC_HASH_LABEL] = self.spec_hash
        if component:
            labels["app.kubernetes.io/component"] = component
        return dict(sorted(labels.items()))

    def predictor_selector(self, isvc_name: str | None = None) -> dict[str, str]:
        """Labels KServe puts on the predictor pods of an InferenceService.

        KServe sets ``serving.kserve.io/inferenceservice: <name>`` and
        ``component: predictor`` on every predictor pod (pkg/constants/constants.go:
        InferenceServicePodLabelKey, KServiceComponentLabel). On the
        ``llmInferenceService`` target, the labels KServe puts on the workload pods of an
        LLMInferenceService instead (``effective.llmisvc.workload_selector``).
        """
        if self.spec.deployment.target == "leaderWorkerSet":
            # The leader pods of a LeaderWorkerSet, the only ones that serve and export metrics
            # (leaderworkerset_types.go SetNameLabelKey, WorkerIndexLabelKey at LWS v0.10.0).
            return {"leaderworkerset.sigs.k8s.io/name": isvc_name or self.name,
                    "leaderworkerset.sigs.k8s.io/worker-index": "0"}
        if self.spec.deployment.target == "llmInferenceService":
            from ..effective.llmisvc import workload_selector

            return workload_selector(isvc_name or self.name)
        return {"component": "predictor", "serving.kserve.io/inferenceservice": isvc_name or self.name}

    def workload_pod_regex(self, names: tuple[str, ...]) -> str:
        """A regex for the pod names of these InferenceServices (or LLMInferenceServices on that target)."""
        if self.spec.deployment.target == "leaderWorkerSet" and self.spec.disaggregation is not None:
            from ..effective.disagg import dset_pod_regex  # a DisaggregatedSet's LeaderWorkerSets

            return dset_pod_regex(names)
        if self.spec.deployment.target == "leaderWorkerSet":
            from ..effective.lws import pod_regex

            return pod_regex(names)
        if self.spec.deployment.target == "llmInferenceService":
            from ..effective.llmisvc import workload_pod_regex

            return workload_pod_regex(names)
        from ..promql import predictor_pod_regex

        return predictor_pod_regex(names)

    def metadata(self, name: str, *, namespace: str | None = "", component: str | None = None,
                 annotations: Mapping[str, str] | None = None, labels: Mapping[str, str] | None = None,
                 spec_hash: bool = True) -> dict[str, Any]:
        """A ``metadata`` mapping for a rendered object (``namespace=None`` for cluster-scoped).

        ``spec_hash=False`` for objects whose metadata reaches a pod template (the
        InferenceService): the hash changes with every edit, monitoring-only ones included.
        """
        meta: dict[str, Any] = {"name": name}
        ns = self.namespace if namespace == "" else namespace
        if ns is not None:
            meta["namespace"] = ns
        all_labels = self.labels(component, spec_hash=spec_hash)
        if labels:
            all_labels.update(labels)
        meta["labels"] = dict(sorted(all_labels.items()))
        ann = {SPEC_HASH_ANNOTATION: self.spec_hash} if spec_hash else {}
        if annotations:
            ann.update(annotations)
        meta["annotations"] = dict(sorted(ann.items()))
        return meta


@record
class Plan:
    """Every manifest of one service, in output order."""

    context: PlanContext
    manifests: tuple[Manifest, ...]
    notes: tuple[str, ...] = ()


_HASH_OMIT_WHEN_UNSET = (("disaggregation",), ("router", "modelRewrites"), ("router", "candidateEppService"),
                         ("resources", "calibration"), ("scaling", "targetLoad", "prefixCacheHitRate"))


def spec_hash(spec: LLMService) -> str:
    """Short, stable hash of the resolved spec (profile and defaults applied)."""
    data = spec.model_dump(mode="json", by_alias=True)
    # Optional sections added after v1alpha1 shipped: unset, they leave existing services' hashes alone.
    for path in _HASH_OMIT_WHEN_UNSET:
        node = data
        for key in path[:-1]:
            node = node.get(key) or {}
        if node.get(path[-1]) in (None, []):
            node.pop(path[-1], None)
    digest = hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    return digest[:16]


def plan_context(analysis: Analysis) -> PlanContext:
    """The inputs of every section planner for one analyzed, valid spec."""
    spec = analysis.spec
    r = analysis.resolved
    assert spec is not None and r is not None
    assert r.gpu is not None and r.model is not None and r.engine is not None and r.sizing is not None
    return PlanContext(spec, r.gpu, r.model, r.engine, r.sizing, analysis.validated.profile_name, spec_hash(spec))
