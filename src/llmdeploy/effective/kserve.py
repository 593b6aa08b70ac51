"""KServe v0.20.0: the pod an InferenceService becomes, as the controller builds it.

Each function encodes one step of the controller at the pinned tag (kserve/kserve
v0.20.0; Knative serving knative-v1.23.0 for the Knative path). Read, cited, tested
(tests/unit/test_effective.py); never copied.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .. import naming
from .knative import knative_rewrite
from .model import Container, EnvVar, Pod, Port, Probe, Workload
from .multinode import MultiNodeGroup
from .multinode import apply as _multinode_apply
from .storage import service_accounts, storage_read

__all__ = ["ANNOTATION_DENYLIST", "KSERVE_VERSION", "merge_container", "workloads"]

KSERVE_VERSION = "v0.20.0"
ENGINE_CONTAINER = "kserve-container"
MODEL_VOLUME = "kserve-provision-location"  # the storage initializer's download volume
MODEL_MOUNT = "/mnt/models"  # where the engine container reads the model
# constants.ServiceAnnotationDisallowedList (pkg/constants/constants.go @ v0.20.0): these
# isvc / runtime / predictor annotations never reach the pod. The inferenceservice
# ConfigMap can append more; llmdeploy renders none of them.
ANNOTATION_DENYLIST = frozenset({
    "autoscaling.knative.dev/min-scale",
    "autoscaling.knative.dev/max-scale",
    "internal.serving.kserve.io/storage-initializer-sourceuri",
    "kubectl.kubernetes.io/last-applied-configuration",
    "modelFormat",
})
# Pod-level fields a ServingRuntime may set and MergePodSpec strategic-merges under the
# predictor's (controller/v1beta1/inferenceservice/utils/utils.go MergePodSpec @ v0.20.0).
RUNTIME_POD_FIELDS = ("nodeSelector", "affinity", "tolerations", "volumes", "imagePullSecrets", "schedulerName")
# Container list fields merged by key (Kubernetes strategic-merge patch tags of
# corev1.Container): env by name, ports by containerPort, volumeMounts by mountPath.
_MERGE_KEYS = {"env": "name", "ports": "containerPort", "volumeMounts": "mountPath", "envFrom": None}
# Container fields of the InferenceService's predictor.model that are not container fields.
_MODEL_ONLY = {"modelFormat", "runtime", "storageUri", "storage", "protocolVersion"}
PROBE_KINDS = (("startupProbe", "startup"), ("readinessProbe", "readiness"), ("livenessProbe", "liveness"))


def _merge_value(base: Any, over: Any) -> Any:
    """Strategic merge of one value: mappings recursively, keyed lists by key, the rest replaced."""
    if isinstance(base, Mapping) and isinstance(over, Mapping):
        out = dict(base)
        for k, v in over.items():
            out[k] = _merge_value(base[k], v) if k in base else copy.deepcopy(v)
        return out
    return copy.deepcopy(over)


def _merge_list(base: Sequence[Any], over: Sequence[Any], key: str) -> list[Any]:
    out = [copy.deepcopy(x) for x in base]
    index = {x.get(key): i for i, x in enumerate(out) if isinstance(x, Mapping)}
    for item in over:
        k = item.get(key) if isinstance(item, Mapping) else None
        if k is not None and k in index:
            out[index[k]] = _merge_value(out[index[k]], item)
        else:
            out.append(copy.deepcopy(item))
    return out


def merge_container(runtime: Mapping[str, Any], isvc: Mapping[str, Any]) -> dict[str, Any]:
    """The serving container KServe runs: the predictor's container patched onto the runtime's.

    pkg/utils/container_merge.go ``MergeContainerWithPatch`` is a strategic-merge patch
    (env by name with the InferenceService winning, ports by containerPort, volumeMounts
    by mountPath, resources per key, probes and securityContext field by field, scalars
    and ``command`` replaced); then utils.go ``MergeRuntimeContainers`` concatenates the
    args, runtime first (a repeated flag appears twice: the engine's argv parser decides,
    argparse takes the last). The container keeps the runtime's name.
    """
    out: dict[str, Any] = copy.deepcopy(dict(runtime))
    for k, v in isvc.items():
        if k in _MODEL_ONLY or k == "name":
            continue
        if k == "args":
            continue
        key = _MERGE_KEYS.get(k, "")
        if k in _MERGE_KEYS and key:
            out[k] = _merge_list(out.get(k) or [], v or [], key)
        elif k in out:
            out[k] = _merge_value(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    out["args"] = list(runtime.get("args") or []) + list(isvc.get("args") or [])
    out["name"] = runtime.get("name", ENGINE_CONTAINER)
    return out


def pod_metadata(runtime_spec: Mapping[str, Any], isvc: Mapping[str, Any], mode: str) -> tuple[dict[str, str], dict[str, str]]:
    """Labels and annotations of the predictor's pod template.

    components/predictor.go ``buildObjectMeta`` @ v0.20.0: the union (later wins) of the
    ServingRuntime's ``spec.labels``/``spec.annotations``, the InferenceService's
    metadata and ``spec.predictor.labels``/``annotations``; annotations (only those) are
    filtered by the deny-list. Then the fixed labels ``serving.kserve.io/inferenceservice``
    and ``component: predictor``, and in Standard mode ``app: isvc.<name>-predictor``
    (constants.go ``GetRawServiceLabel``; deployment_reconciler.go).
    """
    meta = isvc.get("metadata") or {}
    pred = (isvc.get("spec") or {}).get("predictor") or {}
    name = meta.get("name", "")
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}
    for src_l, src_a in ((runtime_spec.get("labels"), runtime_spec.get("annotations")),
                         (meta.get("labels"), meta.get("annotations")),
                         (pred.get("labels"), pred.get("annotations"))):
        labels.update({str(k): str(v) for k, v in (src_l or {}).items()})
        annotations.update({str(k): str(v) for k, v in (src_a or {}).items() if k not in ANNOTATION_DENYLIST})
    labels["serving.kserve.io/inferenceservice"] = name
    labels["component"] = "predictor"
    if mode == "Standard":
        labels["app"] = naming.RAW_APP_LABEL_PREFIX + naming.predictor_deployment(name)
    return labels, annotations


def _int(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def _probes(c: Mapping[str, Any]) -> tuple[Probe, ...]:
    out = []
    for field, kind in PROBE_KINDS:
        p = c.get(field)
        if not isinstance(p, Mapping):
            continue
        for handler in ("httpGet", "tcpSocket", "grpc", "exec"):
            h = p.get(handler)
            if isinstance(h, Mapping):
                port = h.get("port") if handler != "exec" else None
                out.append(Probe(kind, handler, port, h.get("path"), "kubelet"))
    return tuple(out)


def to_container(c: Mapping[str, Any], pod_sc: Mapping[str, Any]) -> Container:
    """A typed view of one container mapping (pod-level securityContext as the fallback)."""
    sc = c.get("securityContext") or {}
    uid = _int(sc.get("runAsUser"))
    if uid is None:
        uid = _int(pod_sc.get("runAsUser"))
    non_root = bool(sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot", False)))
    env = []
    for e in c.get("env") or []:
        ref = ((e.get("valueFrom") or {}).get("secretKeyRef") or {})
        env.append(EnvVar(str(e.get("name")), e.get("value"), ref.get("name"), ref.get("key")))
    ports = tuple(Port(p.get("name"), int(p["containerPort"]), p.get("protocol", "TCP"))
                  for p in c.get("ports") or [] if _int(p.get("containerPort")) is not None)
    return Container(
        name=str(c.get("name")), image=str(c.get("image", "")), command=tuple(c.get("command") or ()),
        args=tuple(str(a) for a in c.get("args") or ()), env=tuple(env), ports=ports, probes=_probes(c),
        run_as_user=uid, run_as_non_root=non_root,
        volume_mounts=tuple(str(m.get("mountPath")) for m in c.get("volumeMounts") or []), raw=dict(c),
    )


def _runtime_for(isvc: Mapping[str, Any], runtimes: Mapping[str, Mapping[str, Any]]) -> tuple[str | None, Mapping[str, Any]]:
    model = ((isvc.get("spec") or {}).get("predictor") or {}).get("model") or {}
    name = model.get("runtime")
    return name, runtimes.get(name, {}) if name else {}


def effective_pod(isvc: Mapping[str, Any], runtime_spec: Mapping[str, Any], mode: str) -> dict[str, Any]:
    """The predictor pod spec (before platform rewrites) as KServe builds it.

    components/predictor.go ``buildPodSpec`` @ v0.20.0: the merged ``kserve-container``
    first, then the runtime's other containers; pod fields from the predictor, with the
    runtime's scheduling fields merged underneath (``MergePodSpec``);
    ``INFERENCE_SERVICE_NAME`` is added to every container.
    """
    pred = dict((isvc.get("spec") or {}).get("predictor") or {})
    model = dict(pred.get("model") or {})
    rt_containers = list(runtime_spec.get("containers") or [])
    rt_main = next((c for c in rt_containers if c.get("name") == ENGINE_CONTAINER), {"name": ENGINE_CONTAINER})
    main = merge_container(rt_main, model)
    containers = [main] + [copy.deepcopy(c) for c in rt_containers if c.get("name") != ENGINE_CONTAINER]
    containers += [copy.deepcopy(c) for c in pred.get("containers") or []]
    name = (isvc.get("metadata") or {}).get("name", "")
    for c in containers:
        c["env"] = _merge_list(c.get("env") or [], [{"name": "INFERENCE_SERVICE_NAME", "value": name}], "name")
    pod: dict[str, Any] = {}
    for f in RUNTIME_POD_FIELDS:
        if f in runtime_spec:
            pod[f] = copy.deepcopy(runtime_spec[f])
    skip = {"model", "containers", "labels", "annotations", "minReplicas", "maxReplicas", "scaleMetric",
            "scaleTarget", "timeout", "deploymentStrategy", "canaryTrafficPercent", "logger", "batcher",
            "scaleMetricType", "autoScaling", "containerConcurrency", "workerSpec", "name"}
    for k, v in pred.items():
        if k in skip:
            continue
        if k == "volumes" and "volumes" in pod:
            pod[k] = _merge_list(pod[k], v, "name")
        elif k in pod:
            pod[k] = _merge_value(pod[k], v)
        else:
            pod[k] = copy.deepcopy(v)
    if "timeout" in pred and mode == "Knative":
        pod["timeoutSeconds"] = pred["timeout"]
    pod["containers"] = containers
    return pod


def attach_model_volume(pod: dict[str, Any], container: str = ENGINE_CONTAINER) -> None:
    """The emptyDir the storage initializer downloads into, mounted read-only at /mnt/models.

    pkg/webhook/admission/pod/storage_initializer_injector.go @ v0.20.0: volume
    ``kserve-provision-location`` (emptyDir), mounted in the storage-initializer and, read
    only, in ``kserve-container`` at ``/mnt/models``. The LLMInferenceService controller's
    attachStorageInitializer (llmisvc/workload_storage.go @ v0.20.0) attaches the same volume
    and mount to its ``main`` container (``container``).
    """
    pod["volumes"] = _merge_list(pod.get("volumes") or [], [{"name": MODEL_VOLUME, "emptyDir": {}}], "name")
    for c in pod.get("containers") or []:
        if c.get("name") == container:
            c["volumeMounts"] = _merge_list(c.get("volumeMounts") or [], [
                {"name": MODEL_VOLUME, "mountPath": MODEL_MOUNT, "readOnly": True}], "mountPath")


def workloads(objects: Iterable[Mapping[str, Any]]) -> list[Workload]:
    """Every InferenceService among ``objects`` as the cluster will run it."""
    objs = [o for o in objects if isinstance(o, Mapping)]
    runtimes = {(o.get("metadata") or {}).get("name"): (o.get("spec") or {})
                for o in objs if o.get("kind") in ("ClusterServingRuntime", "ServingRuntime")}
    accounts = service_accounts(objs)
    out = []
    for o in objs:
        if o.get("kind") != "InferenceService":
            continue
        meta = o.get("metadata") or {}
        ann = meta.get("annotations") or {}
        mode = "Knative" if ann.get("serving.kserve.io/deploymentMode", "Knative") in ("Knative", "Serverless") \
            else "Standard"
        rt_name, rt_spec = _runtime_for(o, runtimes)
        pod_spec = effective_pod(o, rt_spec, mode)
        if "workerSpec" in ((o.get("spec") or {}).get("predictor") or {}):
            # A multi-node predictor: KServe adds the Ray env and GPU count to the head.
            _multinode_apply(o, rt_spec, pod_spec, merge_container, _merge_list)
        labels, annotations = pod_metadata(rt_spec, o, mode)
        name, ns = meta.get("name", ""), meta.get("namespace", "")
        predictor = naming.predictor_deployment(name)
        port = 80
        if mode == "Knative":
            pod_spec, labels, annotations = knative_rewrite(pod_spec, labels, annotations, predictor)
            kind, workload_name = "Revision", predictor + naming.KNATIVE_REVISION_SUFFIX
        else:
            kind, workload_name = "Deployment", predictor
        uri = str(((o.get("spec") or {}).get("predictor") or {}).get("model", {}).get("storageUri", ""))
        if uri and not uri.startswith(("pvc://", "oci://")):
            attach_model_volume(pod_spec)
        sc = pod_spec.get("securityContext") or {}
        containers = tuple(to_container(c, sc) for c in pod_spec.get("containers") or [])
        sa_name = pod_spec.get("serviceAccountName")
        model = ((o.get("spec") or {}).get("predictor") or {}).get("model") or {}
        storage = storage_read(str(model.get("storageUri", "")), sa_name, accounts.get((ns, sa_name)))
        pod = Pod(labels, annotations, containers, sa_name,
                  tuple(str(v.get("name")) for v in pod_spec.get("volumes") or []), pod_spec)
        out.append(Workload(name, ns, mode, kind, workload_name, predictor, port, pod, ENGINE_CONTAINER,
                            storage, rt_name))
    return out


def multinode_groups(objects: Iterable[Mapping[str, Any]]) -> list[MultiNodeGroup]:
    """Every multi-node InferenceService (``predictor.workerSpec``): its head and worker pods.

    The worker pod: ``multiNodeProcess`` and ``reconcileWorker`` (components/predictor.go
    @ v0.20.0) — the runtime's and the InferenceService's worker labels and annotations,
    the generation label, ``app: isvc.<name>-predictor-worker``; no worker in Knative mode.
    """
    from . import multinode as mn

    objs = [o for o in objects if isinstance(o, Mapping)]
    runtimes = {(o.get("metadata") or {}).get("name"): (o.get("spec") or {})
                for o in objs if o.get("kind") in ("ClusterServingRuntime", "ServingRuntime")}
    heads = {(w.namespace, w.isvc): w for w in workloads(objs)}
    out = []
    for o in objs:
        pred = (o.get("spec") or {}).get("predictor") or {}
        if o.get("kind") != "InferenceService" or "workerSpec" not in pred:
            continue
        meta = o.get("metadata") or {}
        name, ns = str(meta.get("name", "")), str(meta.get("namespace", ""))
        head = heads.get((ns, name))
        mode = head.mode if head else "Standard"
        rt_name, rt_spec = _runtime_for(o, runtimes)
        pod_spec, info = _multinode_apply(o, rt_spec, effective_pod(o, rt_spec, mode), merge_container, _merge_list)
        worker = None
        if pod_spec is not None and mode == "Standard":
            labels, annotations = pod_metadata(rt_spec, o, mode)
            rws = rt_spec.get("workerSpec") or {}
            labels = {**{str(k): str(v) for k, v in (rws.get("labels") or {}).items()}, **labels,
                      "serving.kserve.io/inferenceservice-generation": mn.GENERATION,
                      "app": f"{naming.RAW_APP_LABEL_PREFIX}{mn.worker_deployment(name)}"}
            annotations = {**{str(k): str(v) for k, v in (rws.get("annotations") or {}).items()}, **annotations}
            sc = pod_spec.get("securityContext") or {}
            sa = pod_spec.get("serviceAccountName")
            storage = storage_read(str(pred.get("model", {}).get("storageUri", "")), sa, None)
            pod = Pod(labels, annotations, tuple(to_container(c, sc) for c in pod_spec["containers"]), sa,
                      tuple(str(v.get("name")) for v in pod_spec.get("volumes") or []), pod_spec)
            worker = Workload(name, ns, mode, "Deployment", mn.worker_deployment(name), mn.worker_service(name), 0,
                              pod, mn.WORKER_CONTAINER, storage, rt_name)
        n = int(info["node_count"])
        out.append(MultiNodeGroup(name, ns, mode, int(info["tensor"]), int(info["pipeline"]), n,
                                  int(info["head_gpus"]), int(info["worker_gpus"]), max(0, n - 1),
                                  mn.head_service(name), mn.worker_service(name), info["error"], head, worker))
    return out


def pod_manifest(w: Workload) -> dict[str, Any]:
    """The effective pod as ``kubectl get pod -o yaml`` would show it, less runtime fields.

    KServe's pod webhook adds the ``storage-initializer`` init container (its image and
    resources come from the cluster's ``inferenceservice`` ConfigMap and are left out);
    its arguments and the Secret keys it reads are shown
    (storage_initializer_injector.go, pkg/credentials @ v0.20.0).
    """
    meta: dict[str, Any] = {
        "generateName": f"{w.workload_name}-" + ("deployment-" if w.mode == "Knative" else ""),
        "namespace": w.namespace,
        "labels": dict(sorted(w.pod.labels.items())),
        "annotations": dict(sorted(w.pod.annotations.items())),
    }
    init: dict[str, Any] = {"name": "storage-initializer", "args": [w.storage.uri, "/mnt/models"]}
    env = []
    for var, src in w.storage.env:
        secret, _, key = src.partition("/")
        if var.startswith("<"):
            continue
        env.append({"name": var, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}})
    if env:
        init["env"] = env
    # The template's own init containers (the P/D routing sidecar) come first: the storage
    # initializer is appended (workload_storage.go attachStorageInitializer @ v0.20.0).
    spec = {"serviceAccountName": w.pod.service_account, "initContainers": [*(w.pod.raw.get("initContainers") or []), init],
            **{k: v for k, v in w.pod.raw.items() if k not in ("serviceAccountName", "initContainers")}}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}
