"""A multi-node replica on the classic InferenceService target, as KServe v0.20.0 runs it.

``deployment.target: inferenceService`` with ``resources.nodes`` > 1 renders the
predictor's ``workerSpec`` and a ClusterServingRuntime with a ``workerSpec`` (KServe
v0.20.0 pkg/apis/serving/v1beta1/predictor.go ``WorkerSpec``; the shipped
config/runtimes/kserve-huggingfaceserver-multinode.yaml is the model). What KServe builds
from them (pkg/controller/v1beta1/inferenceservice/components/predictor.go
``multiNodeProcess``, reconcilers/deployment/deployment_reconciler.go
``createRawDeployment``, reconcilers/service/service_reconciler.go ``createHeadlessSvc``):

* the head Deployment ``<name>-predictor`` (``minReplicas`` pods, autoscaler class
  ``none``) and the worker Deployment ``<name>-predictor-worker`` with
  ``RAY_NODE_COUNT − 1`` pods, where ``RAY_NODE_COUNT = ⌈tensor × pipeline ÷ GPUs of the
  worker container⌉`` (``computeRayNodeAndGPUs``);
* the headless Service ``<name>-head-<generation>`` (``publishNotReadyAddresses``) whose
  name reaches the workers as ``HEAD_SVC``; ``TENSOR_PARALLEL_SIZE``,
  ``PIPELINE_PARALLEL_SIZE``, ``RAY_NODE_COUNT`` and ``REQUEST_GPU_COUNT`` reach both.

The containers run vLLM's own Ray bootstrap (examples/online_serving/multi-node-serving.sh
in the ``vllm/vllm-openai`` image, as on the leaderWorkerSet target): the head starts a
Ray head, waits until ``RAY_NODE_COUNT`` Ray nodes joined, then ``exec``\\ s the OpenAI
server with ``--distributed-executor-backend=ray``; each worker joins the head at
``HEAD_SVC``. So the head's ``/health`` (startup, readiness, liveness) answers only when
the whole group serves; the workers' probes check that their Ray node (``raylet``) lives.

The engine container, pod security, drain and scheduling are the ones
:func:`llmdeploy.plan.kserve.plan_engine` decides for every target; NCCL's environment, the
RDMA devices and ``IPC_LOCK`` come from the leaderWorkerSet planner; what KServe refuses on
this path (storage other than ``pvc://``/``oci://``, Knative, autoscalers, canaries) is
refused by LD809–LD810 before anything is rendered.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

from . import kserve, lws
from .kserve import EnginePlan
from .model import Manifest, PlanContext
from .policy import PolicyIngress

WORKER_CONTAINER = "worker-container"  # pkg/constants/constants.go WorkerContainerName @ v0.20.0
ISVC_LABEL = "serving.kserve.io/inferenceservice"


def _script(role: str, budget: int) -> str:
    """The head's and the workers' shell line: vLLM's Ray script with KServe's variables."""
    if role == "head":
        return (f'bash {lws.RAY_SCRIPT} leader --ray_cluster_size="${{RAY_NODE_COUNT}}" --ray_port={lws.RAY_PORT} '
                f'--ray_init_timeout={budget} && exec python3 -m vllm.entrypoints.openai.api_server "$@"')
    return (f'exec bash {lws.RAY_SCRIPT} worker --ray_address="${{HEAD_SVC}}" --ray_port={lws.RAY_PORT} '
            f"--ray_init_timeout={budget}")


def _affinity(ctx: PlanContext) -> dict[str, Any] | None:
    """Head and workers in one domain of ``resources.interconnect.topologyKey`` (required podAffinity).

    KServe has no group-exclusive placement of its own; every pod of the InferenceService
    (head and workers carry ``serving.kserve.io/inferenceservice: <name>``) must share the
    value of the node label, e.g. one NVLink domain (``nvidia.com/gpu.clique``) or rack.
    """
    key = ctx.spec.resources.interconnect.topology_key
    if not key:
        return None
    return {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {ISVC_LABEL: ctx.name}}, "topologyKey": key}]}}


def worker_probes(ctx: PlanContext) -> dict[str, Any]:
    """A worker serves nothing itself: it is alive while its Ray node (``raylet``) runs."""
    budget = kserve.startup_budget(ctx)
    raylet = {"exec": {"command": ["python3", "-c", lws.RAYLET_CHECK]}}
    return {
        "startupProbe": {**raylet, "periodSeconds": kserve.PROBE_PERIOD_SECONDS, "timeoutSeconds": 5,
                         "failureThreshold": max(1, budget // kserve.PROBE_PERIOD_SECONDS)},
        "livenessProbe": {**raylet, "periodSeconds": 30, "timeoutSeconds": 10, "failureThreshold": 3},
    }


def runtime_spec(ctx: PlanContext, engine: EnginePlan) -> dict[str, Any]:
    """The multi-node ClusterServingRuntime's ``spec``: the head container and a ``workerSpec``."""
    budget = kserve.startup_budget(ctx)
    par = ctx.spec.resources.parallelism
    spec = kserve.runtime_spec(image=engine.image, command=engine.command, runtime_args=engine.runtime_args,
                               port=engine.port, port_name=engine.port_name, model_format=engine.model_format,
                               metrics_path=engine.metrics_path)
    head = spec["containers"][0]
    head["command"] = ["/bin/bash", "-c", _script("head", budget), "vllm-head"]
    head["args"] = [*head["args"], "--distributed-executor-backend=ray"]
    head["ports"].append({"name": "ray-gcs", "containerPort": lws.RAY_PORT, "protocol": "TCP"})
    spec["workerSpec"] = {
        "tensorParallelSize": par.tensor,
        "pipelineParallelSize": par.pipeline,
        "containers": [{
            "name": WORKER_CONTAINER,
            "image": engine.image,
            "command": ["/bin/bash", "-c", _script("worker", budget), "vllm-worker"],
        }],
    }
    return spec


def head_engine(ctx: PlanContext, engine: EnginePlan) -> EnginePlan:
    """The engine plan of the head: NCCL env, RDMA devices, the multi-node runtime's name."""
    spec = runtime_spec(ctx, engine)
    name = kserve.runtime_name(engine.engine, engine.version, spec)
    return replace(engine, runtime_name=name, env=tuple(lws._env(ctx, engine)),
                   resources=lws._resources(ctx, engine), container_security=lws._security(ctx, engine))


def runtime_manifest(ctx: PlanContext, engine: EnginePlan) -> Manifest:
    """The multi-node ClusterServingRuntime (shared and content-named like the one-node one)."""
    base = kserve.runtime_manifest(ctx, engine)
    values = copy.deepcopy(dict(base.values))
    values["spec"] = runtime_spec(ctx, engine)
    return replace(base, values=values)


def worker_spec(ctx: PlanContext, engine: EnginePlan) -> dict[str, Any]:
    """The predictor's ``workerSpec``: the worker container's per-service fields and its pod.

    KServe strategic-merges ``containers[0]`` onto the runtime's ``worker-container`` and
    the pod fields onto the runtime's worker pod (``MergeServingRuntimeAndInferenceServiceSpecs``
    @ v0.20.0). GPUs per worker are the head's: ``RAY_NODE_COUNT`` becomes
    ``tensor × pipeline ÷ GPUs per pod`` = ``resources.nodes``.
    """
    s = ctx.spec
    par = s.resources.parallelism
    container: dict[str, Any] = {"name": WORKER_CONTAINER}
    if engine.env:
        container["env"] = [dict(e) for e in engine.env]
    container["resources"] = copy.deepcopy(engine.resources)
    container.update(worker_probes(ctx))
    container["securityContext"] = copy.deepcopy(engine.container_security)
    container["volumeMounts"] = [dict(m) for m in engine.volume_mounts]
    ws: dict[str, Any] = {"tensorParallelSize": par.tensor, "pipelineParallelSize": par.pipeline,
                          "containers": [container], "volumes": [dict(v) for v in engine.volumes],
                          "nodeSelector": dict(engine.node_selector),
                          "tolerations": [dict(t) for t in engine.tolerations]}
    if engine.service_account:
        ws["serviceAccountName"] = engine.service_account
    if s.deployment.priority_class_name:
        ws["priorityClassName"] = s.deployment.priority_class_name
    ws["securityContext"] = dict(engine.pod_security)
    ws["terminationGracePeriodSeconds"] = engine.termination_grace_seconds
    aff = _affinity(ctx)
    if aff:
        ws["affinity"] = aff
    return ws


def network_ingress(ctx: PlanContext) -> PolicyIngress:
    """The NetworkPolicy admits every port between the pods of the InferenceService (head and workers).

    Ray's GCS (6379), raylet, object manager and worker ports are random, and NCCL
    bootstraps over sockets of its own; both pods carry KServe's
    ``serving.kserve.io/inferenceservice: <name>``.
    """
    return PolicyIngress(peers=({ISVC_LABEL: ctx.name},))


def finish(ctx: PlanContext, engine: EnginePlan, manifests: list[Manifest]) -> tuple[list[Manifest], list[str]]:
    """Turn the one-node manifests of an InferenceService into the multi-node ones.

    The primary InferenceService gets ``workerSpec`` (and the topology affinity on the
    head); the NetworkPolicy's pod-to-pod rule is :func:`network_ingress`, which the
    policy planner takes.
    """
    out: list[Manifest] = []
    for m in manifests:
        if m.kind == "ClusterServingRuntime":
            m = runtime_manifest(ctx, engine)
        elif m.kind == "InferenceService" and m.name == ctx.name:
            values = copy.deepcopy(dict(m.values))
            pred = values["spec"]["predictor"]
            pred["workerSpec"] = worker_spec(ctx, engine)
            aff = _affinity(ctx)
            if aff:
                pred["affinity"] = aff
            m = replace(m, values=values)
        out.append(m)
    par = ctx.spec.resources.parallelism
    gpus = engine.gpu_count
    note = (f"topology: {ctx.name} one group of {ctx.spec.resources.nodes} pods (Deployment {ctx.name}-predictor: "
            f"the Ray head and vLLM server; Deployment {ctx.name}-predictor-worker: "
            f"{ctx.spec.resources.nodes - 1} Ray worker pod(s)), {gpus} GPUs each, tensor {par.tensor} × pipeline "
            f"{par.pipeline}")
    return out, [note]
