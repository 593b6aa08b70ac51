"""KServe v0.20.0: the workload an LLMInferenceService becomes, as the llmisvc controller builds it.

Each function encodes one step of the controller at the pinned tag (kserve/kserve
v0.20.0, pkg/controller/v1alpha2/llmisvc/); read, cited, tested
(tests/unit/test_llmisvc.py), never copied.

* **Presets.** ``config_merge.go`` (``combineBaseRefsConfig``) always applies the
  well-known ``LLMInferenceServiceConfig`` presets under the service: for a single-node
  service without ``worker`` or ``prefill``, ``kserve-config-llm-template``; with
  ``router.scheduler`` (and no pool ``ref``), ``kserve-config-llm-scheduler``; with
  ``router.route`` (and no route ``refs``), ``kserve-config-llm-router-route``. Then the
  user's ``baseRefs``, then the service itself, each a strategic-merge patch of the
  previous (``mergeSpecs``: containers by name, env by name, ports by containerPort,
  volumeMounts by mountPath, volumes by name; scalars and lists without a merge key
  replaced).
* **Workload.** ``workload_single_node.go``: Deployment ``<name>-kserve`` whose pod labels
  are the fixed ``singleNodeLabels`` plus ``kserve.io/component: workload`` and
  ``llm-d.ai/role: both``, and the Deployment selector is exactly those labels; then
  ``spec.labels``/``spec.annotations`` are propagated onto the pod template
  (``utils.PropagateMap``: they overwrite a fixed key of the same name) with the
  approved prefixes of ``metadata`` (``propagateDeploymentMetadata``).
* **Service.** ``workload.go``: ``<name>-kserve-workload-svc`` on port 8000 → 8000, selecting
  ``GetWorkloadLabelSelector`` (part-of, name, kserve.io/component).
* **LoRA.** ``workload_lora.go``: ``--enable-lora``, ``--max-lora-rank``/``--max-loras``/
  ``--max-cpu-loras`` when set, and ``--lora-modules`` (each adapter under its name and
  ``publishers/<ns>/models/<name>``, mounted at ``/mnt/lora/<name>``) appended to the main
  container's args.
* **Entrypoint.** The preset's ``main`` container runs ``vllm serve /mnt/models
  --served-model-name <model.name> publishers/<ns>/models/<model.name> --port 8000 …``
  followed by the container's ``args`` (bash ``"$@"``); the Container record's ``args``
  are that argv as vLLM sees it (TLS off), so the LD6xx rules read the real flags.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from .kserve import MODEL_MOUNT, _merge_list, _merge_value, attach_model_volume, to_container
from .model import Container, Pod, Workload
from .storage import service_accounts, storage_read

__all__ = [
    "DOWNLOAD_SCHEMES",
    "ENGINE_PORT",
    "LLMISVC_KIND",
    "LORA_SCHEMES",
    "MAIN_CONTAINER",
    "MAX_NAME_LENGTH",
    "MODEL_MOUNT",
    "MODEL_SCHEMES",
    "POD_FIXED_LABELS",
    "PRESET_MAIN",
    "attach_model_storage",
    "deployment_name",
    "expected_pod_labels",
    "inference_pool_name",
    "is_llmisvc",
    "lora_args",
    "merge_pod_spec",
    "pod_labels",
    "pools",
    "scheduler_labels",
    "serve_containers",
    "worker_workloads",
    "workload_pod_regex",
    "workload_selector",
    "workload_service_name",
    "workloads",
]

LLMISVC_KIND = "LLMInferenceService"
MAIN_CONTAINER = "main"
# The port the presets' entrypoint passes to vLLM, the workload Service's port and the
# pool's targetPort (workload.go reconcileWorkloadService: "the presets we bundle assume
# 8000"; config-llm-template.yaml, config-llm-scheduler.yaml).
ENGINE_PORT = 8000
EPP_GRPC_PORT = 9002
EPP_METRICS_PORT = 9090
#: Model URI schemes attachModelArtifacts accepts (workload_storage.go @ v0.20.0); the
#: first two are downloaded by the storage initializer, pvc is mounted, oci is a modelcar.
MODEL_SCHEMES = ("hf://", "s3://", "pvc://", "oci://")
DOWNLOAD_SCHEMES = ("hf://", "s3://")
#: LoRA adapter URI schemes enumerateLoRAAdapters accepts (workload_lora.go @ v0.20.0).
LORA_SCHEMES = ("hf://", "s3://", "pvc://")
LORA_MOUNT_ROOT = "/mnt/lora"
# kmeta.ChildName keeps "<name><suffix>" only while it fits 63 characters, else it
# hashes; the longest suffix the controller uses is "-kserve-self-signed-certs" (25).
LONGEST_CHILD_SUFFIX = "-kserve-self-signed-certs"
MAX_NAME_LENGTH = 63 - len(LONGEST_CHILD_SUFFIX)

PART_OF = "app.kubernetes.io/part-of"
APP_NAME = "app.kubernetes.io/name"
APP_COMPONENT = "app.kubernetes.io/component"
KSERVE_COMPONENT = "kserve.io/component"
LLMD_ROLE = "llm-d.ai/role"
#: Keys the controller sets on the workload pods and selects them by.
POD_FIXED_LABELS = (APP_COMPONENT, APP_NAME, PART_OF, KSERVE_COMPONENT, LLMD_ROLE)
# propagateDeploymentMetadata: metadata labels/annotations with these prefixes reach the pod.
APPROVED_ANNOTATION_PREFIXES = ("k8s.v1.cni.cncf.io", "kueue.x-k8s.io", "prometheus.io", "internal.serving.kserve.io")
APPROVED_LABEL_PREFIXES = ("kueue.x-k8s.io", "internal.serving.kserve.io")

# What kserve-config-llm-template (config/llmisvcconfig/config-llm-template.yaml @ v0.20.0)
# gives the single-node pod: the `main` container's fields that llmdeploy may meet in a
# merge, and the pod's volumes. The entrypoint script is summarised, not copied.
PRESET_MAIN: dict[str, Any] = {
    "name": MAIN_CONTAINER,
    "image": "ghcr.io/llm-d/llm-d-cuda:v0.8.0",
    "command": ["/bin/bash", "-c", "<kserve-config-llm-template entrypoint: exec vllm serve /mnt/models ... $@>", "--"],
    "ports": [{"containerPort": ENGINE_PORT, "protocol": "TCP"}],
    "env": [{"name": "HOME", "value": "/home"}, {"name": "VLLM_LOGGING_LEVEL", "value": "INFO"},
            {"name": "HF_HUB_CACHE", "value": "/models"}],
    "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": False, "runAsNonRoot": True,
                        "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}},
    "lifecycle": {"preStop": {"exec": {"command": ["/bin/sleep", "15"]}}},
    "livenessProbe": {"httpGet": {"path": "/health", "port": ENGINE_PORT, "scheme": "HTTP"},
                      "periodSeconds": 10, "timeoutSeconds": 1, "failureThreshold": 10},
    "readinessProbe": {"httpGet": {"path": "/health", "port": ENGINE_PORT, "scheme": "HTTP"},
                       "periodSeconds": 1, "timeoutSeconds": 1, "failureThreshold": 2},
    "startupProbe": {"httpGet": {"path": "/health", "port": ENGINE_PORT, "scheme": "HTTP"},
                     "failureThreshold": 60, "periodSeconds": 10},
    "volumeMounts": [{"mountPath": "/home", "name": "home"}, {"mountPath": "/tmp", "name": "tmp-dir"},
                     {"mountPath": "/dev/shm", "name": "dshm"}, {"mountPath": "/models", "name": "model-cache"},
                     {"mountPath": "/var/run/kserve/tls", "name": "tls-certs", "readOnly": True}],
}
PRESET_POD: dict[str, Any] = {
    "terminationGracePeriodSeconds": 60,
    "volumes": [{"name": "home", "emptyDir": {}}, {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "1Gi"}},
                {"name": "model-cache", "emptyDir": {}}, {"name": "tmp-dir", "emptyDir": {}},
                {"name": "tls-certs", "secret": {"secretName": "<name>-kserve-self-signed-certs"}}],
}

# What kserve-config-llm-worker-data-parallel (config/llmisvcconfig @ v0.20.0) gives a
# multi-node data-parallel service instead: the same env, mounts and probes on the leader
# (`template`), no probes on the worker (it runs `--headless`), the capabilities IPC_LOCK,
# SYS_RAWIO and NET_RAW for RDMA, and an 8 GiB /dev/shm.
DP_CAPABILITIES = ["IPC_LOCK", "SYS_RAWIO", "NET_RAW"]
DP_API_SERVERS = 8  # --api-server-count ${VLLM_API_SERVER_COUNT:-8} on the leader
DP_RPC_PORT = 5555  # --data-parallel-rpc-port default of the preset
#: kmeta.ChildName(name, "-kserve-mn"): the LeaderWorkerSet (workload_multi_node.go mainLWSName).
MULTI_NODE_SUFFIX = "-kserve-mn"
LEADER_COMPONENT = "llminferenceservice-workload-leader"
WORKER_COMPONENT = "llminferenceservice-workload-worker"

# Strategic-merge keys of corev1 (the patchMergeKey tags of PodSpec and Container).
_POD_LIST_KEYS = {"containers": "name", "initContainers": "name", "volumes": "name", "imagePullSecrets": "name"}
_CONTAINER_LIST_KEYS = {"env": "name", "ports": "containerPort", "volumeMounts": "mountPath"}


def is_llmisvc(obj: Mapping[str, Any]) -> bool:
    return obj.get("kind") == LLMISVC_KIND and str(obj.get("apiVersion", "")).startswith("serving.kserve.io/")


def deployment_name(name: str) -> str:
    """``mainDeploymentName``: ``kmeta.ChildName(name, "-kserve")``."""
    return f"{name}-kserve"


def workload_service_name(name: str) -> str:
    """``workloadServiceName``: ``kmeta.ChildName(name, "-kserve-workload-svc")``."""
    return f"{name}-kserve-workload-svc"


def inference_pool_name(name: str) -> str:
    """``SchedulerSpec.InferencePoolName`` for a managed pool: ``<name>-inference-pool``."""
    return f"{name}-inference-pool"


def scheduler_deployment_name(name: str) -> str:
    """``schedulerDeploymentName``: ``<name>-kserve-router-scheduler``."""
    return f"{name}-kserve-router-scheduler"


def workload_pod_regex(names: Iterable[str]) -> str:
    """A regex for the pods of the main Deployments ``<name>-kserve`` (``<name>-kserve-<hash>-<id>``)
    and of the multi-node leaders (``<name>-kserve-mn-<group>``), not those of the endpoint
    picker (``<name>-kserve-router-scheduler-<hash>-<id>``) nor the headless data-parallel
    workers (``<name>-kserve-mn-<group>-<index>``), which serve no HTTP.

    Names are DNS labels, so they need no escaping; Prometheus anchors the regex.
    """
    ordered = sorted(set(names))
    alt = ordered[0] if len(ordered) == 1 else "(" + "|".join(ordered) + ")"
    return f"{alt}-kserve-[a-z0-9]+-[a-z0-9]+"


def workload_selector(name: str) -> dict[str, str]:
    """``GetWorkloadLabelSelector``: the labels the workload Service and the managed pool select."""
    return {APP_NAME: name, PART_OF: "llminferenceservice", KSERVE_COMPONENT: "workload"}


def scheduler_labels(name: str) -> dict[str, str]:
    """``SchedulerLabels``: the endpoint picker's pod labels (scheduler.go @ v0.20.0)."""
    return {APP_COMPONENT: "llminferenceservice-router-scheduler", APP_NAME: name, PART_OF: "llminferenceservice"}


def fixed_pod_labels(name: str) -> dict[str, str]:
    """``singleNodeLabels`` + component + role: the main Deployment's selector and pod labels."""
    return {APP_COMPONENT: "llminferenceservice-workload", APP_NAME: name, PART_OF: "llminferenceservice",
            KSERVE_COMPONENT: "workload", LLMD_ROLE: "both"}


def expected_pod_labels(w: Workload) -> dict[str, str]:
    """The fixed labels the controller puts on ``w``'s pods: the main Deployment's selector, or
    the multi-node leader's labels (workload_multi_node.go ``expectedMainMultiNodeLWS``)."""
    labels = fixed_pod_labels(w.isvc)
    if w.workload_kind == "StatefulSet":
        labels[APP_COMPONENT] = LEADER_COMPONENT
    return labels


def pod_labels(obj: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """(selector, pod labels, pod annotations) of the main Deployment of an LLMInferenceService."""
    meta = obj.get("metadata") or {}
    selector = fixed_pod_labels(str(meta.get("name", "")))
    labels, annotations = propagated_pod_metadata(meta, obj.get("spec") or {}, selector)
    return selector, labels, annotations


def propagated_pod_metadata(meta: Mapping[str, Any], part: Mapping[str, Any],
                            fixed: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """(pod labels, pod annotations) of a workload: ``fixed`` labels, the service's approved
    metadata prefixes, then the workload part's own ``labels``/``annotations`` over them
    (``spec`` for the main workload, ``spec.prefill`` for the prefill pool)."""
    labels, annotations = dict(fixed), {}
    for k, v in (meta.get("annotations") or {}).items():
        if str(k).startswith(APPROVED_ANNOTATION_PREFIXES):
            annotations[str(k)] = str(v)
    for k, v in (meta.get("labels") or {}).items():
        if str(k).startswith(APPROVED_LABEL_PREFIXES):
            labels[str(k)] = str(v)
    labels.update({str(k): str(v) for k, v in (part.get("labels") or {}).items()})
    annotations.update({str(k): str(v) for k, v in (part.get("annotations") or {}).items()})
    return labels, annotations


def _merge_container(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(base))
    for k, v in over.items():
        key = _CONTAINER_LIST_KEYS.get(k)
        if key:
            out[k] = _merge_list(out.get(k) or [], v or [], key)
        elif k in out and isinstance(out[k], Mapping) and isinstance(v, Mapping):
            out[k] = _merge_value(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def merge_pod_spec(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """Strategic merge of two PodSpecs (``mergeSpecs`` in config_merge.go @ v0.20.0)."""
    out = copy.deepcopy(dict(base))
    for k, v in over.items():
        if k == "containers":
            merged = [copy.deepcopy(c) for c in out.get("containers") or []]
            index = {c.get("name"): i for i, c in enumerate(merged)}
            for c in v or []:
                if c.get("name") in index:
                    merged[index[c["name"]]] = _merge_container(merged[index[c["name"]]], c)
                else:
                    merged.append(copy.deepcopy(c))
            out["containers"] = merged
        elif k in _POD_LIST_KEYS:
            out[k] = _merge_list(out.get(k) or [], v or [], _POD_LIST_KEYS[k])
        elif k in out and isinstance(out[k], Mapping) and isinstance(v, Mapping):
            out[k] = _merge_value(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def lora_args(obj: Mapping[str, Any]) -> list[str]:
    """The flags ``addLoRAVLLMArgs`` appends for ``spec.model.lora`` (workload_lora.go @ v0.20.0)."""
    meta = obj.get("metadata") or {}
    lora = (((obj.get("spec") or {}).get("model") or {}).get("lora")) or {}
    adapters = sorted((a for a in lora.get("adapters") or [] if isinstance(a, Mapping) and a.get("name")),
                      key=lambda a: str(a["name"]))
    if not adapters:
        return []
    out = ["--enable-lora"]
    for field, flag in (("maxRank", "--max-lora-rank"), ("maxAdapters", "--max-loras"),
                        ("maxCpuAdapters", "--max-cpu-loras")):
        if lora.get(field) is not None:
            out.append(f"{flag}={lora[field]}")
    out.append("--lora-modules")
    ns = meta.get("namespace", "")
    for a in adapters:
        path = f"{LORA_MOUNT_ROOT}/{a['name']}"
        for n in (a["name"], f"publishers/{ns}/models/{a['name']}"):
            out.append(json.dumps({"name": n, "path": path}, separators=(",", ":")))
    return out


def _engine_argv(obj: Mapping[str, Any]) -> list[str]:
    """What the preset's entrypoint puts before the container's args on ``vllm serve`` (TLS off, vLLM ≥ 0.16 assumed)."""
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    model = spec.get("model") or {}
    name = str(model.get("name") or meta.get("name", ""))
    ns = meta.get("namespace", "")
    argv = [MODEL_MOUNT, "--served-model-name", name, f"publishers/{ns}/models/{name}", "--port", str(ENGINE_PORT)]
    tensor = (spec.get("parallelism") or {}).get("tensor")
    if tensor:
        argv += ["--tensor-parallel-size", str(tensor)]
    return argv


def attach_model_storage(pod_spec: dict[str, Any], uri: str) -> None:
    """The model volume of an LLMInferenceService pod when the storage initializer downloads ``uri``.

    attachStorageInitializer (workload_storage.go @ v0.20.0), for hf:// and s3:// URIs: an
    emptyDir the storage-initializer fills, mounted read-only in ``main`` at /mnt/models; the
    single-node workload, the prefill pool and the data-parallel leader and worker alike.
    """
    if uri.startswith(DOWNLOAD_SCHEMES):
        attach_model_volume(pod_spec, MAIN_CONTAINER)


def serve_containers(obj: Mapping[str, Any], pod_spec: dict[str, Any], uri: str,
                     argv: Sequence[str]) -> tuple[Container, ...]:
    """The containers of a single-node ``vllm serve`` pod (the workload, either P/D pool) as they run.

    Completes the merged ``pod_spec`` in place the way the controller does: ``addLoRAVLLMArgs``
    appends :func:`lora_args` to ``main``'s args, then the model volume is attached
    (:func:`attach_model_storage`); then each container as it runs, ``main`` running
    ``vllm serve`` with ``argv`` (what the preset's entrypoint passes) before its args.
    """
    for c in pod_spec.get("containers") or []:
        if c.get("name") == MAIN_CONTAINER:
            c["args"] = list(c.get("args") or []) + lora_args(obj)
    attach_model_storage(pod_spec, uri)
    sc = pod_spec.get("securityContext") or {}
    containers = []
    for c in pod_spec.get("containers") or []:
        rec = to_container(c, sc)
        if c.get("name") == MAIN_CONTAINER:
            rec = replace(rec, command=("vllm", "serve"), args=(*argv, *(str(a) for a in c.get("args") or [])))
        containers.append(rec)
    return tuple(containers)


def workloads(objects: Iterable[Mapping[str, Any]]) -> list[Workload]:
    """Every single-node LLMInferenceService among ``objects`` as the cluster will run it."""
    objs = [o for o in objects if isinstance(o, Mapping)]
    accounts = service_accounts(objs)
    out = []
    for o in objs:
        if not is_llmisvc(o):
            continue
        meta = o.get("metadata") or {}
        spec = o.get("spec") or {}
        if _is_dp_worker_service(spec):
            out.append(_dp_workload(o, accounts, leader=True))
            continue
        if spec.get("worker") is not None or spec.get("prefill") is not None:
            continue  # pipeline-parallel worker (not rendered); disaggregated: effective/disagg.py
        name, ns = str(meta.get("name", "")), str(meta.get("namespace", ""))
        preset = copy.deepcopy(PRESET_POD)
        preset["containers"] = [copy.deepcopy(PRESET_MAIN)]
        preset["volumes"][-1]["secret"]["secretName"] = f"{name}-kserve-self-signed-certs"
        pod_spec = merge_pod_spec(preset, spec.get("template") or {})
        uri = str((spec.get("model") or {}).get("uri", ""))
        containers = serve_containers(o, pod_spec, uri, _engine_argv(o))
        _selector, labels, annotations = pod_labels(o)
        sa_name = pod_spec.get("serviceAccountName")
        storage = storage_read(uri, sa_name, accounts.get((ns, sa_name)))
        pod = Pod(labels, annotations, containers, sa_name,
                  tuple(str(v.get("name")) for v in pod_spec.get("volumes") or []), pod_spec)
        out.append(Workload(name, ns, "Standard", "Deployment", deployment_name(name), workload_service_name(name),
                            ENGINE_PORT, pod, MAIN_CONTAINER, storage, None))
    return out


def _is_dp_worker_service(spec: Mapping[str, Any]) -> bool:
    """``worker`` with data parallel and no ``prefill``: kserve-config-llm-worker-data-parallel applies."""
    par = spec.get("parallelism") or {}
    return (spec.get("worker") is not None and spec.get("prefill") is None
            and (par.get("data") is not None or par.get("dataLocal") is not None))


def _dp_preset(name: str, leader: bool) -> dict[str, Any]:
    main = copy.deepcopy(PRESET_MAIN)
    role = "vllm serve ... --data-parallel-start-rank 0" if leader else \
        "vllm serve ... --data-parallel-start-rank $START_RANK --headless"
    main["command"] = ["/bin/bash", "-c", f"<kserve-config-llm-worker-data-parallel entrypoint: exec {role} $@>", "--"]
    main["securityContext"]["capabilities"] = {"add": list(DP_CAPABILITIES), "drop": ["ALL"]}
    if not leader:
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            main.pop(probe)
    pod = copy.deepcopy(PRESET_POD)
    pod["containers"] = [main]
    for v in pod["volumes"]:
        if v["name"] == "dshm":
            v["emptyDir"]["sizeLimit"] = "8Gi"
        if v["name"] == "tls-certs":
            v["secret"]["secretName"] = f"{name}-kserve-self-signed-certs"
    return pod


def _dp_argv(obj: Mapping[str, Any], container: Mapping[str, Any], leader: bool) -> list[str]:
    """What the data-parallel preset's entrypoint hands ``vllm serve`` on the leader or worker 1.

    ``START_RANK`` is 0 on the leader and ``LWS_WORKER_INDEX × dataLocal`` on a worker;
    ``DP_ADDRESS`` is the leader's address the script resolves from ``LWS_LEADER_ADDRESS``.
    """
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    par = spec.get("parallelism") or {}
    name = str((spec.get("model") or {}).get("name") or meta.get("name", ""))
    ns = meta.get("namespace", "")
    local = int(par.get("dataLocal") or 1)
    argv = [MODEL_MOUNT, "--served-model-name", name, f"publishers/{ns}/models/{name}", "--port", str(ENGINE_PORT)]
    if leader:
        argv += ["--api-server-count", str(DP_API_SERVERS)]
    if par.get("expert"):
        argv.append("--enable-expert-parallel")
    if par.get("tensor"):
        argv += ["--tensor-parallel-size", str(par["tensor"])]
    argv += ["--data-parallel-size", str(par.get("data") or 1), "--data-parallel-size-local", str(local),
             "--data-parallel-address", "$(DP_ADDRESS)", "--data-parallel-rpc-port",
             str(par.get("dataRPCPort") or DP_RPC_PORT), "--data-parallel-start-rank", "0" if leader else str(local)]
    if not leader:
        argv.append("--headless")
    return argv + [str(a) for a in container.get("args") or []]


def _dp_workload(o: Mapping[str, Any], accounts: Mapping[Any, Any], leader: bool) -> Workload:
    meta = o.get("metadata") or {}
    spec = o.get("spec") or {}
    name, ns = str(meta.get("name", "")), str(meta.get("namespace", ""))
    own = spec.get("template") if leader else spec.get("worker")
    pod_spec = merge_pod_spec(_dp_preset(name, leader), own or {})
    uri = str((spec.get("model") or {}).get("uri", ""))
    # attachModelArtifacts runs on the leader and the worker template alike
    # (workload_multi_node.go expectedMainMultiNodeLWS).
    attach_model_storage(pod_spec, uri)
    # expectedMultiNodeMainServiceAccount: the template's (else the worker's) account when set,
    # else one KServe creates under the LeaderWorkerSet's name, on both pod templates.
    sa_name = (spec.get("template") or {}).get("serviceAccountName") or \
        (spec.get("worker") or {}).get("serviceAccountName") or f"{name}{MULTI_NODE_SUFFIX}"
    pod_spec["serviceAccountName"] = sa_name
    sc = pod_spec.get("securityContext") or {}
    containers = []
    for c in pod_spec.get("containers") or []:
        rec = to_container(c, sc)
        if c.get("name") == MAIN_CONTAINER:
            rec = replace(rec, command=("vllm", "serve"), args=tuple(_dp_argv(o, c, leader)))
        containers.append(rec)
    _selector, labels, annotations = pod_labels(o)
    if leader:
        labels[APP_COMPONENT] = LEADER_COMPONENT
    else:
        # workerLabels: no kserve.io/component or llm-d role while a leader template exists,
        # so only the leaders are endpoints of the workload Service and the InferencePool.
        for k in (KSERVE_COMPONENT, LLMD_ROLE):
            labels.pop(k, None)
        labels[APP_COMPONENT] = WORKER_COMPONENT
    storage = storage_read(uri, sa_name, accounts.get((ns, sa_name)))
    pod = Pod(labels, annotations, tuple(containers), sa_name,
              tuple(str(v.get("name")) for v in pod_spec.get("volumes") or []), pod_spec)
    lws = f"{name}{MULTI_NODE_SUFFIX}"
    # LWS v0.10.0: the leader StatefulSet is <lws> (pods <lws>-<group>), each group's workers
    # the StatefulSet <lws>-<group> (pods <lws>-<group>-<index>, from 1).
    return Workload(name, ns, "Standard", "StatefulSet", lws if leader else f"{lws}-0",
                    workload_service_name(name), ENGINE_PORT, pod, MAIN_CONTAINER, storage, None)


def worker_workloads(objects: Iterable[Mapping[str, Any]]) -> list[Workload]:
    """The worker pod (group 0, worker 1) of every multi-node data-parallel LLMInferenceService.

    KServe v0.20.0 builds a LeaderWorkerSet ``<name>-kserve-mn`` of ``data ÷ dataLocal`` pods
    (workload_multi_node.go ``expectedMainMultiNodeLWS``): the leader from ``template`` and
    the workers from ``worker``, each over kserve-config-llm-worker-data-parallel. The
    leader is among :func:`workloads`; the workers are shown by ``render --explain``.
    """
    objs = [o for o in objects if isinstance(o, Mapping)]
    accounts = service_accounts(objs)
    return [_dp_workload(o, accounts, leader=False) for o in objs
            if is_llmisvc(o) and _is_dp_worker_service(o.get("spec") or {})]


def pools(objects: Iterable[Mapping[str, Any]], obj: Mapping[str, Any]) -> list[tuple[str, dict[str, str], list[int]]]:
    """The InferencePool(s) the LLMInferenceService's traffic goes through: (name, selector, targetPorts).

    Managed (``router.scheduler`` without a pool ``ref``): the pool KServe creates from
    ``kserve-config-llm-scheduler`` (config-llm-scheduler.yaml @ v0.20.0: the workload
    selector, ``targetPorts: [8000]``) unless ``router.scheduler.pool.spec`` overrides it. A
    ``ref``: the rendered InferencePool of that name (one the cluster already has is not
    seen and not listed).
    """
    meta = obj.get("metadata") or {}
    name = str(meta.get("name", ""))
    scheduler = ((obj.get("spec") or {}).get("router") or {}).get("scheduler")
    if scheduler is None:
        return []
    pool = scheduler.get("pool") or {}
    ref = (pool.get("ref") or {}).get("name")
    if ref:
        out = []
        for o in objects:
            m = o.get("metadata") or {}
            if o.get("kind") == "InferencePool" and m.get("name") == ref and m.get("namespace") == meta.get("namespace"):
                spec = o.get("spec") or {}
                out.append((str(ref), dict((spec.get("selector") or {}).get("matchLabels") or {}),
                            [int(p.get("number", 0)) for p in spec.get("targetPorts") or []]))
        return out
    spec = pool.get("spec") or {}
    selector = dict((spec.get("selector") or {}).get("matchLabels") or {}) or workload_selector(name)
    ports = [int(p.get("number", 0)) for p in spec.get("targetPorts") or []] or [ENGINE_PORT]
    return [(inference_pool_name(name), selector, ports)]
