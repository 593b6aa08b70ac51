"""The LLMInferenceService ``worker``: a data-parallel (wide expert-parallel) replica over several nodes.

KServe v0.20.0 (pkg/controller/v1alpha2/llmisvc/) turns an LLMInferenceService with
``spec.worker`` into a LeaderWorkerSet ``<name>-kserve-mn`` (workload_multi_node.go
``expectedMainMultiNodeLWS``: ``size`` = ``parallelism.GetSize()``, which for data
parallel is ``data ÷ dataLocal`` (llm_inference_service_types_func.go),
``RecreateGroupOnPodRestart``, ``LeaderCreated`` startup). ``config_merge.go`` puts the
well-known ``kserve-config-llm-worker-data-parallel`` under it
(config/llmisvcconfig/config-llm-worker-data-parallel.yaml): the leader runs
``vllm serve`` with the API server and ``--data-parallel-size data
--data-parallel-size-local dataLocal --data-parallel-start-rank 0``, each worker the same
engine ``--headless`` with start rank ``LWS_WORKER_INDEX × dataLocal``; both reach the
leader through ``LWS_LEADER_ADDRESS`` and add ``--tensor-parallel-size`` and
``--enable-expert-parallel`` from ``spec.parallelism``; the container's ``args`` follow.

This is the layout llm-d's wide expert-parallel guide uses: one DP rank per GPU (or per
TP group), experts spread over all of them. The pipeline-parallel worker is not rendered:
the release does not ship ``kserve-config-llm-worker-pipeline-parallel`` (LD801).
"""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

from ..derive.multinode_dp import LLMISVC_TARGET, data_local, renders_worker
from ..effective import llmisvc as eff
from . import lws
from .kserve import EnginePlan
from .model import PlanContext
from .policy import PolicyIngress, PolicyPods

__all__ = ["LLMISVC_TARGET", "data_local", "group_engine", "network_ingress", "note", "policy_pods",
           "renders_worker", "worker_pod"]


def group_engine(ctx: PlanContext, engine: EnginePlan) -> EnginePlan:
    """The engine plan of every pod of a multi-node group: NCCL env, RDMA devices, IPC_LOCK.

    The same topology settings the leaderWorkerSet and multi-node InferenceService targets
    give their pods (``plan/lws.py``); unchanged for a one-node service.
    """
    if not renders_worker(ctx.spec):
        return engine
    return replace(engine, env=tuple(lws._env(ctx, engine)), resources=lws._resources(ctx, engine),
                   container_security=lws._security(ctx, engine))

#: Fields of the leader's ``main`` container a headless worker does not take: it serves no
#: HTTP (``--headless``), so the preset's worker container has no probes either, and the
#: drain hook (which waits for the API server's running requests) is the leader's; the
#: preset's own ``preStop`` (sleep 15) stays.
_LEADER_ONLY = ("startupProbe", "readinessProbe", "livenessProbe", "lifecycle")


def worker_pod(template: dict[str, Any]) -> dict[str, Any]:
    """``spec.worker``: the leader's pod spec with a ``main`` that runs a headless engine.

    The same image, args, env, resources (GPUs per node), mounts, scheduling and security
    as the leader, so every DP rank runs the same engine configuration; probes are left
    to the leader, whose API server answers for the group.
    """
    pod = copy.deepcopy(template)
    containers = []
    for c in pod.get("containers") or []:
        c = {k: v for k, v in c.items() if k not in _LEADER_ONLY}
        containers.append(c)
    pod["containers"] = containers
    return pod


#: The label llmdeploy puts on every pod of the service (``spec.labels``), the stable's and
#: the candidate's alike (``plan.model.PlanContext.metadata``).
INSTANCE_LABEL = "app.kubernetes.io/instance"


def group_selector(name: str, *, with_candidate: bool = False) -> dict[str, Any]:
    """The leader and worker pods (workload_multi_node.go leaderLabels/workerLabels), not the
    endpoint picker's, which shares the name and part-of labels.

    ``with_candidate``: those of both LLMInferenceServices of a rollout (``name`` is the
    service's), by the instance label both carry instead of each one's own name.
    """
    key = INSTANCE_LABEL if with_candidate else eff.APP_NAME
    return {"matchLabels": {key: name, eff.PART_OF: "llminferenceservice"},
            "matchExpressions": [{"key": eff.APP_COMPONENT, "operator": "In",
                                  "values": [eff.LEADER_COMPONENT, eff.WORKER_COMPONENT]}]}


def policy_pods(ctx: PlanContext, with_candidate: bool = False) -> PolicyPods:
    """The pods the PodDisruptionBudget and NetworkPolicy of a multi-node group cover: leader and workers.

    The workers carry no ``kserve.io/component`` label, so both objects select the group's
    pods by their component labels (:func:`group_selector`); a worker's eviction restarts
    its whole group (``RecreateGroupOnPodRestart``), so the budget counts it like the leader.
    With a rollout candidate (which has a group of its own), both services' groups.
    """
    return PolicyPods(selector=group_selector(ctx.name, with_candidate=with_candidate))


def network_ingress(ctx: PlanContext, with_candidate: bool = False) -> PolicyIngress:
    """Every port between the pods of the group, besides the serving port.

    The data-parallel ranks reach the leader on the DP RPC port (5555) and ZMQ ports the
    engines pick, and exchange experts' tokens and NCCL traffic on ports of their own.
    With a rollout candidate, between the pods of both services' groups.
    """
    return PolicyIngress(peer_selectors=(group_selector(ctx.name, with_candidate=with_candidate),))


def note(ctx: PlanContext) -> str:
    """The ``render --explain`` topology note of a multi-node group."""
    r = ctx.spec.resources
    par = r.parallelism
    return (f"topology: {ctx.name} LeaderWorkerSet {ctx.name}{eff.MULTI_NODE_SUFFIX} (built by KServe over "
            f"kserve-config-llm-worker-data-parallel) of {r.nodes} pods per group, data {par.data} "
            f"({data_local(ctx.spec)} ranks per pod) × tensor {par.tensor}"
            + (", experts spread over all of them (expert parallel)" if par.expert else ""))
