"""KServe v0.20.0's multi-node InferenceService: the head and worker pods the controller builds.

An InferenceService whose predictor has a ``workerSpec`` becomes (Standard mode only)
two Deployments: ``<name>-predictor`` (the head, ``kserve-container``) and
``<name>-predictor-worker`` (``worker-container``), plus the headless Services
``<name>-head-<generation>`` and ``<name>-workers-<generation>``. Each step below encodes
one function of the controller at the pinned tag (read, cited, tested in
tests/unit/test_isvc_multinode.py; never copied); ``effective.kserve`` applies them to
the head pod and builds the worker pod (``multinode_groups``):

* components/predictor.go ``multiNodeProcess``: tensor and pipeline sizes from the
  InferenceService's ``workerSpec`` over the runtime's (default 1); the worker container
  merged like the serving one; ``computeRayNodeAndGPUs`` for the node count and the GPUs
  of each pod; the env it adds to both containers;
* reconcilers/deployment/deployment_reconciler.go ``createRawDeployment``: worker
  replicas ``RAY_NODE_COUNT − 1``, the GPU limits rewritten from ``REQUEST_GPU_COUNT``;
* pkg/constants/constants.go ``GetHeadServiceName``/``GetWorkerServiceName``,
  ``PredictorWorkerServiceName``, ``GetRawWorkerServiceLabel``.

Knative mode ignores the worker pod spec entirely (``reconcileKnativeDeployment`` takes
only the head's), so no worker ever starts.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping
from typing import Any

from ..records import record
from .model import Workload

WORKER_CONTAINER = "worker-container"
HEAD_CONTAINER = "kserve-container"
# pkg/constants/constants.go DefaultGPUResourceTypeList @ v0.20.0.
GPU_RESOURCES = ("nvidia.com/gpu", "amd.com/gpu", "intel.com/gpu", "habana.ai/gaudi")
GENERATION = "1"  # metadata.generation of a newly created InferenceService


@record
class MultiNodeGroup:
    """The one group of a multi-node InferenceService as KServe runs it."""

    isvc: str
    namespace: str
    mode: str  # Standard | Knative
    tensor: int
    pipeline: int
    node_count: int  # RAY_NODE_COUNT; 0 when KServe's GPU check fails
    head_gpus: int
    worker_gpus: int
    worker_replicas: int
    head_service: str
    worker_service: str
    error: str | None  # computeRayNodeAndGPUs' ErrRayClusterInsufficientGPUs, as KServe reports it
    head: Workload | None
    worker: Workload | None


def gpu_request(container: Mapping[str, Any]) -> int:
    """GPUs a container requests (``utils.GetGPUResourceQtyByType`` on requests, then limits)."""
    res = container.get("resources") or {}
    for part in ("requests", "limits"):
        for k in GPU_RESOURCES:
            v = (res.get(part) or {}).get(k)
            if v is not None and str(v).isdigit():
                return int(str(v))
    return 0


def ray_nodes(total: int, head_gpus: int, worker_gpus: int) -> tuple[int, int, int, str | None]:
    """``computeRayNodeAndGPUs`` (components/predictor.go @ v0.20.0): nodes, worker GPUs, head GPUs, error."""

    def nodes(gpus: int, per: int) -> int:
        return 1 if per == 0 else math.ceil(gpus / per)

    def check(n: int, head: int, worker: int) -> str | None:
        if total > head + worker * (n - 1):
            return (f"the Ray cluster has too few GPUs: {total} requested, the head offers {head} and the "
                    f"workers {worker * (n - 1)}")
        return None

    if worker_gpus > 0:
        n = nodes(total, worker_gpus)
        new_head = total - worker_gpus * (n - 1)
        if head_gpus > 0:
            if nodes(total, head_gpus) == 1:
                n = 1
        else:
            head_gpus = new_head
        if n == 1:
            worker_gpus, head_gpus = 0, total
        return n, worker_gpus, head_gpus, check(n, head_gpus, worker_gpus)
    if head_gpus > 0:
        remaining = total - head_gpus
        n, worker_gpus = 1, 1
        if remaining > 0:
            n = nodes(remaining, 1) + 1
        return n, worker_gpus, head_gpus, check(n, head_gpus, worker_gpus)
    return total, 1, 1, None


def _set_env(c: dict[str, Any], name: str, value: str) -> None:
    """``isvcutils.AddEnvVarToPodSpec``: replace the variable's value, or append it."""
    env = c.setdefault("env", [])
    for e in env:
        if e.get("name") == name:
            e.clear()
            e.update({"name": name, "value": value})
            return
    env.append({"name": name, "value": value})


def _set_gpus(c: dict[str, Any], count: int) -> None:
    """``addGPUResourceToDeployment`` (deployment_reconciler.go @ v0.20.0): the GPU type the
    container asks for (limits, then requests, in KServe's list order; ``nvidia.com/gpu``
    otherwise) gets ``REQUEST_GPU_COUNT`` as its request and limit."""
    res = c.setdefault("resources", {})
    kind = "nvidia.com/gpu"
    for k in GPU_RESOURCES:
        if any(str((res.get(part) or {}).get(k, "0")) not in ("0", "") for part in ("limits", "requests")):
            kind = k
            break
    for part in ("limits", "requests"):
        res.setdefault(part, {})[kind] = str(count)


def head_service(isvc: str) -> str:
    return f"{isvc}-head-{GENERATION}"


def worker_service(isvc: str) -> str:
    return f"{isvc}-workers-{GENERATION}"


def worker_deployment(isvc: str) -> str:
    return f"{isvc}-predictor-worker"


def apply(isvc: Mapping[str, Any], runtime_spec: Mapping[str, Any], head_pod: dict[str, Any],
          merge_container: Callable[..., dict[str, Any]],
          merge_list: Callable[..., list[Any]]) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """Add the multi-node env to ``head_pod`` (in place) and build the worker pod spec.

    Returns the worker pod spec (None when the runtime has no ``workerSpec``: KServe then
    fails the InferenceService with ``InvalidWorkerSpecNotSet``) and the numbers.
    """
    meta = isvc.get("metadata") or {}
    name = str(meta.get("name", ""))
    pred = (isvc.get("spec") or {}).get("predictor") or {}
    iws = pred.get("workerSpec") or {}
    rws = runtime_spec.get("workerSpec")
    info: dict[str, Any] = {"tensor": 1, "pipeline": 1, "node_count": 0, "head_gpus": 0, "worker_gpus": 0,
                            "error": "the ServingRuntime has no workerSpec (KServe: InvalidWorkerSpecNotSet)"}
    if not isinstance(rws, Mapping) or not rws.get("containers"):
        return None, info
    tensor = int(iws.get("tensorParallelSize") or rws.get("tensorParallelSize") or 1)
    pipeline = int(iws.get("pipelineParallelSize") or rws.get("pipelineParallelSize") or 1)
    rt_worker = next((c for c in rws.get("containers") or [] if c.get("name") == WORKER_CONTAINER),
                     (rws.get("containers") or [{}])[0])
    is_worker = (iws.get("containers") or [{}])[0]
    worker_c = merge_container(rt_worker, is_worker)
    worker_c["name"] = rt_worker.get("name", WORKER_CONTAINER)
    pod: dict[str, Any] = {}
    for src in (rws, iws):
        for k, v in src.items():
            if k in ("containers", "tensorParallelSize", "pipelineParallelSize", "annotations", "labels"):
                continue
            if k == "volumes" and "volumes" in pod:
                pod[k] = merge_list(pod[k], v, "name")
            else:
                pod[k] = copy.deepcopy(v)
    pod["containers"] = [worker_c]
    head_c = next((c for c in head_pod.get("containers") or [] if c.get("name") == HEAD_CONTAINER), {})
    n, wg, hg, err = ray_nodes(tensor * pipeline, gpu_request(head_c), gpu_request(worker_c))
    for k, v in (("PIPELINE_PARALLEL_SIZE", pipeline), ("TENSOR_PARALLEL_SIZE", tensor), ("RAY_NODE_COUNT", n),
                 ("REQUEST_GPU_COUNT", hg), ("MODEL_NAME", name)):
        _set_env(head_c, k, str(v))
    uri = str((pred.get("model") or {}).get("storageUri", ""))
    if uri.split("://")[0] in ("pvc", "oci"):
        _set_env(head_c, "MODEL_DIR", "/mnt/models")
    for k, v in (("RAY_NODE_COUNT", n), ("REQUEST_GPU_COUNT", wg), ("PIPELINE_PARALLEL_SIZE", pipeline),
                 ("TENSOR_PARALLEL_SIZE", tensor), ("ISVC_NAME", name), ("HEAD_SVC", head_service(name)),
                 ("WORKER_SVC", worker_service(name))):
        _set_env(worker_c, k, str(v))
    if err is None:
        _set_gpus(head_c, hg)
        _set_gpus(worker_c, wg)
    info.update({"tensor": tensor, "pipeline": pipeline, "node_count": 0 if err else n, "head_gpus": hg,
                 "worker_gpus": wg, "error": err})
    return pod, info
