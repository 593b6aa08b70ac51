"""The effective workload: what KServe, Knative and prometheus-operator make of the rendered objects.

``workloads(objects)`` turns the rendered documents into the pods the cluster will run
(KServe v0.20.0's container merge and pod metadata, Knative knative-v1.23.0's rewrites),
with what the storage initializer reads; ``scrape`` gives the labels a series carries
after the PodMonitor's relabelling; ``selectors`` reads the vector selectors of a PromQL
expression. The runtime-truth rules (``rules/runtime.py``, LD6xx) and ``render
--explain`` read these records.

Layer: derive (4). It needs only the base layer and ``derive.storage``, so the rules can
read it; the pipeline computes it from the checked documents.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .disagg import dset_leaderworkersets as _dset_leaderworkersets
from .disagg import workloads as _pd_workloads
from .knative import KNATIVE_VERSION, QUEUE_PORTS, USER_PORT_NAME
from .kserve import ANNOTATION_DENYLIST, KSERVE_VERSION, merge_container
from .kserve import pod_manifest as _isvc_pod_manifest
from .kserve import workloads as _isvc_workloads
from .llmisvc import workloads as _llmisvc_workloads
from .lws import MODE as _LWS_MODE
from .lws import pod_manifest as _lws_pod_manifest
from .lws import workloads as _lws_workloads
from .model import Container, EnvVar, Pod, Port, Probe, StorageRead, Workload
from .scrape import OPERATOR_VERSION, pod_targets, podmonitor_scrape_config, relabel, series_labels
from .selectors import Matcher, Selector, selectors
from .storage import SECRET_KEYS, storage_read, uri_scheme

__all__ = [
    "ANNOTATION_DENYLIST", "KNATIVE_VERSION", "KSERVE_VERSION", "OPERATOR_VERSION", "QUEUE_PORTS", "SECRET_KEYS",
    "USER_PORT_NAME", "Container", "EnvVar", "Matcher", "Pod", "Port", "Probe", "Selector", "StorageRead",
    "Workload", "merge_container", "pod_manifest", "pod_targets", "podmonitor_scrape_config", "relabel", "selectors",
    "series_labels", "storage_read", "uri_scheme", "workloads",
]


def workloads(objects: Iterable[Mapping[str, Any]]) -> list[Workload]:
    """Every InferenceService, LLMInferenceService and LeaderWorkerSet leader among ``objects``, as run."""
    objs = list(objects)
    services = [o for o in objs if isinstance(o, Mapping) and o.get("kind") == "Service"]
    return (_isvc_workloads(objs) + _llmisvc_workloads(objs) + _pd_workloads(objs) + _lws_workloads(objs)
            + _lws_workloads(_dset_leaderworkersets(objs) + services))


def pod_manifest(w: Workload) -> dict[str, Any]:
    """The effective pod of a workload as ``kubectl get pod -o yaml`` would show it (``render --explain``)."""
    return _lws_pod_manifest(w) if w.mode == _LWS_MODE else _isvc_pod_manifest(w)
