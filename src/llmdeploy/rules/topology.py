"""LD8xx: multi-node topology — a replica that spans nodes, and the LeaderWorkerSet target.

A replica of ``resources.nodes`` > 1 runs one pod per node: a LeaderWorkerSet group
(leaderworkerset.x-k8s.io/v1, LWS v0.10.0) whose leader starts a Ray head and
``vllm serve``, and whose workers join the Ray cluster
(examples/online_serving/multi-node-serving.sh and docs/deployment/frameworks/lws.md in
vLLM v0.11.0). The layout (which stages and layers each node runs, whether a tensor
group crosses the network) comes from :mod:`llmdeploy.sizing.topology`; these rules
refuse the layouts vLLM cannot run or runs badly, at the spec line that causes them.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from ..derive.multinode_dp import LLMISVC_TARGET, renders_worker
from ..derive.storage import storage_scheme
from ..diagnostics import Severity
from ..sizing.topology import (
    PP_PARTITION_ENV,
    cross_node_bytes_per_token,
    node_layout,
    partition_problem,
    quantity_gib,
)
from .registry import EffectiveContext, Finding, RuleContext, rule

TARGET = "leaderWorkerSet"
ISVC_TARGET = "inferenceService"
MULTI_NODE_TARGETS = (TARGET, ISVC_TARGET)
#: Storage KServe v0.20.0 accepts on a multi-node InferenceService
#: (pkg/apis/serving/v1beta1/inference_service_validation.go ``validateMultiNodeVariables``).
ISVC_MULTI_NODE_STORAGE = ("pvc", "oci")
#: Environment KServe sets itself on the head and worker containers (pkg/constants/constants.go).
KSERVE_PARALLEL_ENV = ("TENSOR_PARALLEL_SIZE", "PIPELINE_PARALLEL_SIZE")
#: Storage the LeaderWorkerSet target can give the engine without KServe's storage initializer.
LWS_STORAGE = ("hf", "pvc")
#: NCCL's troubleshooting guide asks containers for at least 1 GiB of /dev/shm
#: (docs.nvidia.com/deeplearning/nccl/user-guide/docs/troubleshooting.html, "Docker":
#: ``--shm-size=1g``); the Docker/Kubernetes default is 64 MiB.
MIN_SHM_GIB_PER_POD = 1.0


def _layout(ctx: RuleContext):  # type: ignore[no-untyped-def]
    r = ctx.resolved
    if r.model is None or r.gpu is None:
        return None
    return node_layout(ctx.spec, r.model, r.gpu, r.engine)


@rule("LD801")
def multi_node_target(ctx: RuleContext) -> Iterator[Finding]:
    """A replica that spans nodes needs a target that renders it.

    ``resources.nodes`` above 1 is rendered as a LeaderWorkerSet
    (``deployment.target: leaderWorkerSet``: one group of pods per replica) or as a
    multi-node InferenceService (``deployment.target: inferenceService``: the predictor's
    ``workerSpec``, a head and a worker Deployment, KServe v0.20.0; LD809 lists what KServe
    refuses there). Both run vLLM's Ray head on the first pod and Ray workers on the
    others; the Ray bootstrap script is vLLM's (``multi-node-serving.sh`` in the
    ``vllm/vllm-openai`` image), so they serve vLLM only. The llmInferenceService target's
    ``worker`` is not rendered: for ``worker`` with ``parallelism.pipeline`` KServe
    v0.20.0's controller merges the well-known config
    ``kserve-config-llm-worker-pipeline-parallel``
    (pkg/controller/v1alpha2/llmisvc/config_merge.go), which the release does not ship
    (config/llmisvcconfig has only the data-parallel worker configs), so the service fails
    with "config not found" unless the cluster provides one. Data parallel across nodes
    (wide expert parallelism) is rendered on the llmInferenceService target only: its
    ``worker`` with KServe's shipped ``kserve-config-llm-worker-data-parallel``
    (plan/llmisvc_worker.py; LD814 lists what that layout needs).

    Fails::

        resources:
          gpu: {type: h100-sxm}
          parallelism: {tensor: 8, pipeline: 2}
          nodes: 2
        deployment:
          target: llmInferenceService

    Passes::

        resources:
          gpu: {type: h100-sxm}
          parallelism: {tensor: 8, pipeline: 2}
          nodes: 2
        deployment:
          target: leaderWorkerSet
    """
    s = ctx.spec
    target = s.deployment.target
    nodes = s.resources.nodes
    llmisvc_worker = renders_worker(s)
    if nodes > 1 and target not in MULTI_NODE_TARGETS and not llmisvc_worker:
        yield Finding(("resources", "nodes"),
                      f"a replica on {nodes} nodes is rendered as a LeaderWorkerSet or a multi-node "
                      f"InferenceService; deployment.target is {target} (KServe v0.20.0 does not ship the "
                      "pipeline-parallel worker config its LLMInferenceService controller needs)",
                      "set deployment.target: leaderWorkerSet or inferenceService (or fit the replica on one node)")
    if target == TARGET and s.runtime.engine != "vllm":
        yield Finding(("runtime", "engine"),
                      f"the leaderWorkerSet target bootstraps vLLM's Ray cluster; {s.runtime.engine} has no such "
                      "script", "use runtime.engine: vllm, or deployment.target: inferenceService")
    elif nodes > 1 and target == ISVC_TARGET and s.runtime.engine != "vllm":
        yield Finding(("runtime", "engine"),
                      f"a multi-node InferenceService bootstraps vLLM's Ray cluster; {s.runtime.engine} has no such "
                      "script", "use runtime.engine: vllm, or fit the replica on one node")
    if nodes > 1 and s.resources.parallelism.data > 1 and target != LLMISVC_TARGET:
        yield Finding(("resources", "parallelism", "data"),
                      "data parallel across nodes needs vLLM's data-parallel launcher, which only the "
                      "llmInferenceService target renders (KServe's data-parallel worker config)",
                      "set deployment.target: llmInferenceService (pipeline 1), or use replicas "
                      "(scaling.minReplicas) with parallelism.data: 1 inside each replica")


@rule("LD802")
def gpus_fit_the_nodes(ctx: RuleContext) -> Iterator[Finding]:
    """The GPUs of a replica split evenly over its nodes, and each node has that many.

    Every pod of a group requests ``tensor × pipeline ÷ nodes`` GPUs; a remainder would
    leave ranks without a GPU and vLLM's Ray placement group would never be satisfied.
    The GPUs one node holds come from the catalog (``gpus_per_node``) or from
    ``resources.gpu.perNode``. Spreading a replica that fits on one node over several
    is only a warning: it works, but adds network hops for nothing.

    Fails::

        resources:
          gpu: {type: h100-sxm}      # 8 per node
          parallelism: {tensor: 8, pipeline: 3}
          nodes: 2                   # 24 GPUs do not split over 2 nodes of 8

    Passes::

        resources:
          gpu: {type: h100-sxm}
          parallelism: {tensor: 8, pipeline: 2}
          nodes: 2
    """
    lay = _layout(ctx)
    if lay is None or not lay.multi_node:
        return
    par = ctx.spec.resources.parallelism
    if not lay.divides:
        yield Finding(("resources", "nodes"),
                      f"tensor × pipeline × data = {lay.gpus_total} GPUs do not split evenly over {lay.nodes} nodes",
                      f"choose nodes that divide {lay.gpus_total}, or a pipeline size that is a multiple of "
                      f"{lay.nodes}")
        return
    gpu = ctx.resolved.gpu
    assert gpu is not None
    if lay.gpus_per_pod > lay.node_capacity:
        need = -(-lay.gpus_total // lay.node_capacity)
        yield Finding(("resources", "nodes"),
                      f"each of the {lay.nodes} pods needs {lay.gpus_per_pod} GPUs, but a {gpu.key} node has "
                      f"{lay.node_capacity}", f"use nodes: {need} (or set resources.gpu.perNode if your nodes "
                      "hold more)")
    elif lay.gpus_total <= lay.node_capacity and par.data == 1:
        yield Finding(("resources", "nodes"),
                      f"{lay.gpus_total} GPUs fit on one {gpu.key} node ({lay.node_capacity}); spreading them over "
                      f"{lay.nodes} nodes adds network hops between pipeline stages for no memory gain",
                      "use nodes: 1 unless your nodes really hold fewer GPUs (resources.gpu.perNode)",
                      severity=Severity.WARNING)


@rule("LD803")
def tensor_parallel_stays_in_a_node(ctx: RuleContext) -> Iterator[Finding]:
    """Tensor parallel crosses nodes only when the spec says so.

    Tensor parallel all-reduces the hidden state twice per layer; inside a node that
    runs over NVLink (hundreds of GB/s), across nodes over the network (InfiniBand
    NDR 400 Gb/s = 50 GB/s per NIC, Ethernet without RDMA far less). Pipeline
    parallel sends one hidden state per stage boundary instead. So tensor parallel stays
    inside a node and pipeline parallel crosses nodes (vLLM's "Distributed Inference and
    Serving" guide, docs.vllm.ai v0.8.4 serving/distributed_serving: the tensor-parallel
    size is the GPUs of one node, the pipeline-parallel size the number of nodes).
    kserve/kserve#4226 shows what a pre-apply check would have caught: tensor 16 over
    two 8-GPU nodes, each pod asking for 16 GPUs. ``parallelism.tensorAcrossNodes: true``
    accepts it with a warning that gives the traffic per token.

    Fails::

        resources:
          gpu: {type: h100-sxm}
          parallelism: {tensor: 16}
          nodes: 2

    Passes::

        resources:
          gpu: {type: h100-sxm}
          parallelism: {tensor: 8, pipeline: 2}
          nodes: 2
    """
    lay = _layout(ctx)
    par = ctx.spec.resources.parallelism
    if par.tensor_across_nodes and (lay is None or not lay.multi_node or not lay.tensor_crosses_nodes):
        # An opt-in with nothing to opt into: say so rather than accept it silently.
        yield Finding(("resources", "parallelism", "tensorAcrossNodes"),
                      "tensorAcrossNodes has no effect: the tensor-parallel group does not span nodes",
                      "remove it, or set resources.nodes for a replica that spans nodes",
                      severity=Severity.WARNING)
        return
    if lay is None or not lay.multi_node or not lay.divides:
        return
    model = ctx.resolved.model
    assert model is not None
    if not lay.tensor_crosses_nodes or lay.gpus_per_pod > lay.node_capacity:
        return  # LD802 reports pods larger than a node
    per_token = cross_node_bytes_per_token(model, lay, par.tensor)
    fabric = ctx.spec.resources.interconnect.fabric
    tp_inside = math.gcd(lay.gpus_per_pod, par.tensor)
    pp_needed = max(1, (par.tensor * par.pipeline) // tp_inside)
    if not par.tensor_across_nodes:
        yield Finding(("resources", "parallelism", "tensor"),
                      f"tensor parallel {par.tensor} spans nodes of {lay.gpus_per_pod} GPUs: every layer "
                      f"all-reduces over the {fabric} network (~{per_token / 2**20:.1f} MiB per token)",
                      f"keep tensor parallel inside a node: tensor: {tp_inside}, pipeline: {pp_needed}; or set "
                      "parallelism.tensorAcrossNodes: true to accept the bandwidth cost")
    else:
        yield Finding(("resources", "parallelism", "tensorAcrossNodes"),
                      f"tensor parallel {par.tensor} across nodes moves ~{per_token / 2**20:.1f} MiB per token over "
                      f"the {fabric} network (two all-reduces per layer); expect decode several times slower "
                      f"than tensor {tp_inside} × pipeline {pp_needed}",
                      "prefer pipeline parallel across nodes unless latency measurements say otherwise",
                      severity=Severity.WARNING)


@rule("LD804")
def pipeline_divides_layers(ctx: RuleContext) -> Iterator[Finding]:
    """Pipeline stages split the model's layers evenly (or the spec gives the split).

    vLLM's ``get_pp_indices`` (vllm/distributed/utils.py, v0.11.0) gives each stage
    ``layers ÷ pipeline`` layers and the remainder to the stages before the last; it
    accepts any split. But a pipeline runs at the pace of its slowest stage, and the
    stage with an extra layer also has the least memory left for the KV cache (vLLM
    takes the smallest over the ranks), so an uneven split wastes the other stages.
    llmdeploy refuses it; to choose a split knowingly, set ``VLLM_PP_LAYER_PARTITION``
    in ``runtime.env`` (comma-separated layers per stage, summing to the layer count:
    vLLM raises an error otherwise, and so does this rule).

    Fails::

        model: {id: meta-llama/Llama-3.1-405B-Instruct}   # 126 layers
        resources:
          parallelism: {tensor: 8, pipeline: 4}

    Passes::

        model: {id: meta-llama/Llama-3.1-405B-Instruct}
        resources:
          parallelism: {tensor: 8, pipeline: 2}             # 63 + 63
    """
    s = ctx.spec
    model = ctx.resolved.model
    pp = s.resources.parallelism.pipeline
    if model is None or pp <= 1 or pp > model.num_layers:
        return  # LD203 reports more stages than layers
    custom_index = None
    for i, e in enumerate(s.runtime.env):
        if e.name == PP_PARTITION_ENV and e.value is not None:
            custom_index = i
    if custom_index is not None:
        value = s.runtime.env[custom_index].value
        assert value is not None
        problem = partition_problem(value, model.num_layers, pp)
        if problem:
            yield Finding(("runtime", "env", custom_index, "value"),
                          f"vLLM refuses {PP_PARTITION_ENV}: {problem}",
                          f"give {pp} layer counts that add up to {model.num_layers}")
        return
    if model.num_layers % pp:
        good = [d for d in range(2, min(model.num_layers, 64) + 1) if model.num_layers % d == 0][:6]
        base = model.num_layers // pp
        yield Finding(("resources", "parallelism", "pipeline"),
                      f"pipeline parallel {pp} does not divide the {model.num_layers} layers of {model.hf_id}: "
                      f"stages get {base} or {base + 1} layers and the pipeline runs at the pace of the larger",
                      f"use a pipeline size that divides {model.num_layers} ({', '.join(map(str, good))}), or set "
                      f"{PP_PARTITION_ENV} in runtime.env to choose the split")


@rule("LD805", Severity.WARNING)
def shm_and_nccl_env(ctx: RuleContext) -> Iterator[Finding]:
    """`/dev/shm` and the NCCL environment match the multi-node topology.

    NCCL stages intra-node transfers in ``/dev/shm`` and its troubleshooting guide asks
    containers for at least 1 GiB (the Kubernetes default is 64 MiB); Ray's object store
    lives there too. ``NCCL_IB_DISABLE=1`` in ``runtime.env`` switches off the
    InfiniBand/RoCE transport the spec declares in ``resources.interconnect.fabric``;
    ``NCCL_SOCKET_IFNAME`` set in both ``runtime.env`` and ``interconnect.socketIfname``
    with different values leaves one of them ignored (the env entry wins).

    Fails::

        resources:
          nodes: 2
          shmSize: 256Mi
    """
    s = ctx.spec
    r = s.resources
    if r.nodes <= 1:
        return
    if r.shm_size != "auto" and quantity_gib(r.shm_size) < MIN_SHM_GIB_PER_POD:
        yield Finding(("resources", "shmSize"),
                      f"/dev/shm of {r.shm_size} is below the 1 GiB NCCL asks containers for; multi-node "
                      "collectives and Ray's object store fail or fall back to slower paths",
                      "remove shmSize (auto sizes it per pod) or give at least 1Gi")
    fabric = r.interconnect.fabric
    env = {e.name: (i, e.value) for i, e in enumerate(s.runtime.env)}
    ib = env.get("NCCL_IB_DISABLE")
    if ib is not None and fabric in ("infiniband", "roce") and (ib[1] or "").strip() == "1":
        yield Finding(("runtime", "env", ib[0], "value"),
                      f"NCCL_IB_DISABLE=1 switches off the {fabric} transport resources.interconnect.fabric declares: "
                      "NCCL falls back to TCP sockets", "remove NCCL_IB_DISABLE, or set fabric: ethernet",
                      severity=Severity.ERROR)
    ifname = env.get("NCCL_SOCKET_IFNAME")
    if ifname is not None and r.interconnect.socket_ifname and ifname[1] != r.interconnect.socket_ifname:
        yield Finding(("runtime", "env", ifname[0], "value"),
                      f"NCCL_SOCKET_IFNAME={ifname[1]} overrides interconnect.socketIfname "
                      f"{r.interconnect.socket_ifname}", "set the interface in one place")


@rule("LD806")
def interconnect_is_usable(ctx: RuleContext) -> Iterator[Finding]:
    """An RDMA fabric comes with the device resources that expose it, and only on multi-node replicas.

    NCCL reaches InfiniBand/RoCE NICs only through the devices an RDMA device plugin
    mounts into the pod (Mellanox k8s-rdma-shared-dev-plugin: ``rdma/<name>``; NVIDIA
    Network Operator: ``nvidia.com/hostdev``/SR-IOV): ``fabric: infiniband`` or ``roce``
    without ``rdmaResources`` silently runs over TCP. Interconnect settings on a
    one-node replica do nothing (warning), unless the service is disaggregated: then they
    are the network of the KV transfer between the prefill and decode pods (LD720).

    Fails::

        resources:
          nodes: 2
          interconnect:
            fabric: infiniband     # no rdmaResources

    Passes::

        resources:
          nodes: 2
          interconnect:
            fabric: infiniband
            rdmaResources: {rdma/ib: 1}
    """
    r = ctx.spec.resources
    ic = r.interconnect
    if r.nodes <= 1 and ctx.spec.disaggregation is None:  # P/D: the network of the KV transfer (LD720)
        if ctx.user_set(("resources", "interconnect")):
            yield Finding(("resources", "interconnect"),
                          "resources.interconnect applies to replicas that span nodes; this one runs on one node",
                          "remove it, or set resources.nodes", severity=Severity.WARNING, key=True)
        return
    if ic.fabric in ("infiniband", "roce") and not ic.rdma_resources:
        yield Finding(("resources", "interconnect", "fabric"),
                      f"fabric {ic.fabric} needs the RDMA devices in the pod, but rdmaResources is empty: NCCL "
                      "finds no HCA and falls back to TCP sockets",
                      "add rdmaResources with your RDMA device plugin's resource (e.g. rdma/ib: 1)")
    if ic.rdma_resources and ic.fabric == "ethernet":
        yield Finding(("resources", "interconnect", "fabric"),
                      "rdmaResources are requested but fabric is ethernet: llmdeploy switches NCCL's InfiniBand "
                      "transport off (NCCL_IB_DISABLE=1) for ethernet", "set fabric: infiniband or roce",
                      severity=Severity.WARNING)


@rule("LD807")
def leaderworkerset_target_limits(ctx: RuleContext) -> Iterator[Finding]:
    """The LeaderWorkerSet target renders what it can run without KServe.

    Without KServe's storage initializer the engine reads the weights itself:
    ``hf://`` (each pod downloads with ``HF_TOKEN`` from ``model.credentials.secretRef``)
    or ``pvc://`` (a ReadOnlyMany claim mounted on every pod). Scaling is KEDA on the
    LeaderWorkerSet's scale subresource (``leaderworkerset.x-k8s.io`` CRD v0.10.0:
    ``specReplicasPath: .spec.replicas``) or fixed; Knative, the KServe HPA and the
    candidate InferenceServices of canary/A-B/blue-green rollouts do not exist here (a
    LeaderWorkerSet rolls its groups itself, ``rolloutStrategy``). Metrics are scraped
    from the leader with a PodMonitor, or found through pod annotations.

    Fails::

        model:
          storageUri: s3://models/llama-405b
        deployment:
          target: leaderWorkerSet
    """
    s = ctx.spec
    if s.deployment.target != TARGET:
        return
    scheme = storage_scheme(s.model.storage_uri)
    if scheme not in LWS_STORAGE:
        yield Finding(("model", "storageUri"),
                      f"the leaderWorkerSet target has no storage initializer for {scheme or 'this'} storage",
                      "use hf://org/model (downloaded by the engine) or pvc://claim/path (mounted read-only)")
    if s.deployment.mode != "standard" and ctx.user_set(("deployment", "mode")):
        yield Finding(("deployment", "mode"), "deployment.mode knative does not apply to a LeaderWorkerSet",
                      "remove deployment.mode")
    if s.scaling.autoscaler not in ("keda", "none"):
        yield Finding(("scaling", "autoscaler"),
                      f"autoscaler {s.scaling.autoscaler} belongs to KServe; a LeaderWorkerSet scales with KEDA or "
                      "not at all", "use autoscaler: keda or none")
    if s.rollout.strategy != "rolling":
        yield Finding(("rollout", "strategy"),
                      f"rollout {s.rollout.strategy} renders a candidate InferenceService; the leaderWorkerSet "
                      "target rolls groups in place", "use rollout.strategy: rolling")
    if s.monitoring.enabled and s.monitoring.scrape == "serviceMonitor":
        yield Finding(("monitoring", "scrape"),
                      "the leaderWorkerSet target scrapes the leader pods with a PodMonitor (or annotations)",
                      "use monitoring.scrape: podMonitor")


def _gpus(c: object, resource: str) -> int:
    raw = getattr(c, "raw", {}) or {}
    v = ((raw.get("resources") or {}).get("limits") or {}).get(resource)
    return int(v) if isinstance(v, str) and v.isdigit() else 0


@rule("LD808", stage="effective")
def group_starts_and_serves(ctx: EffectiveContext) -> Iterator[Finding]:
    """Every LeaderWorkerSet group can start: workers join, ranks get GPUs, non-root pods have a user.

    Read on the pods the LWS controller (v0.10.0) makes of the rendered LeaderWorkerSet
    (``effective.lws``): ``startupPolicy: LeaderReady`` creates the workers only after
    the leader is ready, but the leader's server starts only once every Ray node joined,
    so the group would wait forever; the group's GPUs (per pod × size) must equal tensor ×
    pipeline or vLLM's Ray placement group is never satisfied (kserve/kserve#4946: a
    LeaderWorkerSet one pod short, vLLM "Waiting for creating a placement group"
    forever); worker pods run the same
    image under the same UID as the leader and need the same ``USER``/``HOME`` (torch and
    Ray call ``getpass.getuser()``, see LD602); and the worker must reach the leader's Ray
    port through ``LWS_LEADER_ADDRESS``.
    """
    from ..effective.lws import groups

    if not ctx.first:
        return
    engine = ctx.resolved.engine
    gpu = ctx.resolved.gpu
    par = ctx.spec.resources.parallelism
    for g in groups(ctx.objects):
        if g.startup_policy == "LeaderReady" and g.size > 1:
            yield Finding(("deployment", "target"),
                          f"LeaderWorkerSet {g.name} creates its workers only once the leader is ready, and the "
                          "leader becomes ready only once the workers joined: the group never starts",
                          "report this as a bug in llmdeploy (startupPolicy must be LeaderCreated)")
        pods = [g.leader] + ([g.worker] if g.worker else [])
        if gpu is not None:
            total = 0
            for w in pods:
                c = w.pod.container(w.engine_container)
                per = _gpus(c, gpu.resource_name) if c else 0
                total += per * (1 if w is g.leader else g.size - 1)
            if total != par.tensor * par.pipeline * par.data:
                yield Finding(("resources", "nodes"),
                              f"the pods of one {g.name} group hold {total} GPUs, the engine needs "
                              f"{par.tensor * par.pipeline * par.data}: the Ray placement group is never satisfied",
                              "make tensor × pipeline divisible by resources.nodes")
        if g.worker is None:
            continue
        wc = g.worker.pod.container(g.worker.engine_container)
        if wc is None:
            continue
        unknown_uid = bool(wc.run_as_user) and engine is not None and wc.run_as_user not in engine.image_passwd_uids
        if unknown_uid and not ((wc.env_value("USER") or wc.env_value("LOGNAME")) and wc.env_value("HOME")):
            yield Finding(("runtime", "env"),
                          f"the worker pods of {g.name} run as UID {wc.run_as_user} without USER/LOGNAME or HOME: "
                          "Ray and torch fail at start-up", "report this as a bug in llmdeploy")
        script = " ".join(wc.command)
        if "LWS_LEADER_ADDRESS" not in script or wc.env_value("LWS_LEADER_ADDRESS") is None:
            yield Finding(("deployment", "target"),
                          f"the worker pods of {g.name} do not join the leader at LWS_LEADER_ADDRESS",
                          "report this as a bug in llmdeploy")


def _isvc_multi_node(ctx: RuleContext) -> bool:
    s = ctx.spec
    return s.deployment.target == ISVC_TARGET and s.resources.nodes > 1


@rule("LD809")
def isvc_multi_node_limits(ctx: RuleContext) -> Iterator[Finding]:
    """A multi-node InferenceService asks only for what KServe v0.20.0 runs with a ``workerSpec``.

    KServe's admission webhook refuses a predictor with a ``workerSpec`` whose
    ``storageUri`` is not ``pvc://`` or ``oci://``, whose autoscaler class is not
    ``none``, or whose container sets ``TENSOR_PARALLEL_SIZE``/``PIPELINE_PARALLEL_SIZE``
    (KServe sets them itself), and a canary predictor with a ``workerSpec``
    (pkg/apis/serving/v1beta1/inference_service_validation.go ``validateMultiNodeVariables``
    and the canary check, v0.20.0). Knative mode is accepted but never starts a worker:
    the controller builds the worker pod spec and then hands only the head's to Knative
    (pkg/controller/v1beta1/inferenceservice/components/predictor.go ``Reconcile``,
    v0.20.0), so the head waits for Ray nodes that never come. Candidate rollouts
    (canary, A/B, blue-green) render a second predictor: refused likewise.

    Fails::

        model:
          storageUri: hf://Qwen/Qwen3-235B-A22B
        resources:
          nodes: 2
        deployment:
          target: inferenceService

    Passes::

        model:
          storageUri: pvc://qwen3-235b-weights/Qwen3-235B-A22B
        resources:
          nodes: 2
        deployment:
          target: inferenceService
          mode: standard
        scaling:
          autoscaler: none
    """
    if not _isvc_multi_node(ctx):
        return
    s = ctx.spec
    scheme = storage_scheme(s.model.storage_uri)
    if scheme not in ISVC_MULTI_NODE_STORAGE:
        yield Finding(("model", "storageUri"),
                      f"KServe refuses {scheme or 'this'} storage on a multi-node InferenceService: only pvc:// and "
                      "oci:// (inference_service_validation.go validateMultiNodeVariables, v0.20.0)",
                      "copy the weights to a ReadOnlyMany PVC (pvc://claim/path) or an OCI model image, or use "
                      "deployment.target: leaderWorkerSet (hf:// downloaded on every node)")
    if s.deployment.mode != "standard":
        yield Finding(("deployment", "mode"),
                      "in Knative mode KServe never creates the worker Deployment of a multi-node InferenceService "
                      "(components/predictor.go, v0.20.0): the head waits for its Ray workers forever",
                      "set deployment.mode: standard")
    if s.scaling.autoscaler != "none":
        yield Finding(("scaling", "autoscaler"),
                      f"KServe refuses autoscaler {s.scaling.autoscaler} on a multi-node InferenceService: only the "
                      "class none (inference_service_validation.go validateMultiNodeVariables, v0.20.0)",
                      "set scaling.autoscaler: none, or use deployment.target: leaderWorkerSet (KEDA scales groups)")
    if s.rollout.strategy != "rolling":
        yield Finding(("rollout", "strategy"),
                      f"rollout {s.rollout.strategy} renders a second predictor, and KServe refuses a workerSpec on "
                      "a canary (inference_service_validation.go, v0.20.0)", "use rollout.strategy: rolling")
    for i, e in enumerate(s.runtime.env):
        if e.name in KSERVE_PARALLEL_ENV:
            yield Finding(("runtime", "env", i, "name"),
                          f"KServe refuses {e.name} in the environment of a multi-node InferenceService: it sets it "
                          "from workerSpec (validateMultiNodeVariables, v0.20.0)",
                          "remove it; resources.parallelism sets the sizes")


@rule("LD810")
def isvc_multi_node_one_group(ctx: RuleContext) -> Iterator[Finding]:
    """A multi-node InferenceService is one group: one head, ``nodes − 1`` workers.

    KServe v0.20.0 runs the head Deployment at ``minReplicas`` pods but the worker
    Deployment at ``RAY_NODE_COUNT − 1`` pods, whatever ``minReplicas`` says
    (reconcilers/deployment/deployment_reconciler.go ``createRawDeployment``): a second
    head gets no workers and waits in Ray's start-up forever, while the workers all join
    one head through the headless Service ``<name>-head-<generation>``. More replicas of
    a multi-node model need one InferenceService each or the LeaderWorkerSet target
    (one group per replica, scaled by KEDA).

    Fails::

        resources:
          nodes: 2
        scaling:
          autoscaler: none
          minReplicas: 2

    Passes::

        resources:
          nodes: 2
        scaling:
          autoscaler: none
          minReplicas: 1
    """
    if not _isvc_multi_node(ctx):
        return
    sc = ctx.spec.scaling
    if sc.min_replicas != 1:
        yield Finding(("scaling", "minReplicas"),
                      f"a multi-node InferenceService runs one group; minReplicas {sc.min_replicas} would start "
                      f"{sc.min_replicas} Ray heads for the {ctx.spec.resources.nodes - 1} worker pods KServe creates",
                      "set scaling.minReplicas: 1, or use deployment.target: leaderWorkerSet for several groups")
    elif isinstance(sc.max_replicas, int) and sc.max_replicas > 1 and ctx.user_set(("scaling", "maxReplicas")):
        yield Finding(("scaling", "maxReplicas"),
                      f"maxReplicas {sc.max_replicas} has no effect: a multi-node InferenceService runs one group "
                      "with autoscaler none", "remove scaling.maxReplicas", severity=Severity.WARNING)


@rule("LD811", stage="effective")
def isvc_group_starts(ctx: EffectiveContext) -> Iterator[Finding]:
    """The head and workers KServe builds from a multi-node InferenceService form the whole Ray cluster.

    Read on the pods KServe v0.20.0 makes of the rendered InferenceService and
    ClusterServingRuntime (``effective.kserve.multinode_groups``): the node count
    ``computeRayNodeAndGPUs`` derives from tensor × pipeline and the worker container's
    GPUs must equal ``resources.nodes`` and the GPUs must suffice (else KServe reports
    ``InvalidGPUAllocation``); the runtime must have a ``workerSpec``; the head must wait
    for ``RAY_NODE_COUNT`` Ray nodes and the workers must join ``HEAD_SVC``; the worker
    pod runs under the same UID as the head and needs ``USER``/``HOME`` (see LD602).
    """
    from ..effective.kserve import multinode_groups

    if not ctx.first:
        return
    nodes = ctx.spec.resources.nodes
    engine = ctx.resolved.engine
    for g in multinode_groups(ctx.objects):
        if g.error:
            yield Finding(("resources", "nodes"), f"KServe cannot build InferenceService {g.isvc}'s group: {g.error}",
                          "report this as a bug in llmdeploy")
            continue
        if g.node_count != nodes:
            yield Finding(("resources", "nodes"),
                          f"KServe derives {g.node_count} Ray nodes for {g.isvc} (tensor {g.tensor} × pipeline "
                          f"{g.pipeline} over {g.worker_gpus} GPUs per worker), the spec asks for {nodes}",
                          "make tensor × pipeline divisible by resources.nodes")
        head = g.head.pod.container(g.head.engine_container) if g.head else None
        if head is not None and "RAY_NODE_COUNT" not in " ".join(head.command + head.args):
            yield Finding(("deployment", "target"), f"the head of {g.isvc} does not wait for RAY_NODE_COUNT Ray "
                          "nodes: vLLM starts before its workers joined", "report this as a bug in llmdeploy")
        if g.worker is None:
            continue  # Knative: LD809
        wc = g.worker.pod.container(g.worker.engine_container)
        if wc is None:
            continue
        if "HEAD_SVC" not in " ".join(wc.command + wc.args):
            yield Finding(("deployment", "target"), f"the workers of {g.isvc} do not join the head at HEAD_SVC",
                          "report this as a bug in llmdeploy")
        unknown_uid = bool(wc.run_as_user) and engine is not None and wc.run_as_user not in engine.image_passwd_uids
        if unknown_uid and not ((wc.env_value("USER") or wc.env_value("LOGNAME")) and wc.env_value("HOME")):
            yield Finding(("runtime", "env"),
                          f"the worker pods of {g.isvc} run as UID {wc.run_as_user} without USER/LOGNAME or HOME: "
                          "Ray and torch fail at start-up", "report this as a bug in llmdeploy")


@rule("LD812", Severity.WARNING)
def expert_parallel_has_experts_to_place(ctx: RuleContext) -> Iterator[Finding]:
    """Expert parallelism needs routed experts and more than one GPU to place them on.

    vLLM turns ``--enable-expert-parallel`` into an expert-parallel group only for the
    fused MoE layers, and only when tensor × data parallel exceeds 1
    (vllm/model_executor/layers/fused_moe/config.py ``FusedMoEParallelConfig.make``,
    ``use_ep = dp × pcp × tp > 1 and enable_expert_parallel``, vllm@002d607). On a dense
    model, or on one GPU, the flag changes nothing; the spec probably meant something else
    (a MoE checkpoint, or ``data`` > 1 for wide expert parallelism).

    Fails::

        model: {id: meta-llama/Llama-3.1-8B-Instruct}
        resources:
          parallelism: {tensor: 2, expert: true}

    Passes::

        model: {id: Qwen/Qwen3-235B-A22B}
        resources:
          parallelism: {tensor: 8, expert: true}
    """
    par = ctx.spec.resources.parallelism
    model = ctx.resolved.model
    if not par.expert or model is None:
        return
    if model.moe is None or model.moe.num_experts <= 1:
        yield Finding(("resources", "parallelism", "expert"),
                      f"{model.hf_id} has no routed experts: --enable-expert-parallel changes nothing",
                      "remove parallelism.expert, or serve a mixture-of-experts model")
    elif par.tensor * par.data == 1:
        yield Finding(("resources", "parallelism", "expert"),
                      "expert parallel over one GPU (tensor × data = 1) places every expert on it: "
                      "vLLM enables it only when tensor × data parallel exceeds 1",
                      "raise parallelism.data (wide expert parallelism) or parallelism.tensor, or remove "
                      "parallelism.expert")


@rule("LD813", Severity.WARNING)
def experts_divide_the_expert_group(ctx: RuleContext) -> Iterator[Finding]:
    """The routed experts divide evenly over the expert-parallel group (tensor × data GPUs).

    With expert parallel each GPU of the tensor × data group holds whole experts; vLLM's
    ``determine_expert_map`` (vllm/model_executor/layers/fused_moe/layer.py; later
    releases move it to expert_map_manager.py) gives the first ``experts mod group`` GPUs
    one expert more, and with ``--enable-eplb`` asserts that the experts divide. The
    fuller GPUs hold more weights, so every DP rank's KV cache is sized by them (the
    sizing counts the fullest GPU) and they do more expert work per step while the others
    wait at the all-to-all.

    Fails::

        model: {id: Qwen/Qwen3-235B-A22B}     # 128 routed experts
        resources:
          parallelism: {tensor: 8, data: 6, expert: true}   # 48 GPUs: 3 or 2 experts each

    Passes::

        model: {id: Qwen/Qwen3-235B-A22B}
        resources:
          parallelism: {tensor: 8, data: 2, expert: true}   # 16 GPUs: 8 experts each
    """
    par = ctx.spec.resources.parallelism
    model = ctx.resolved.model
    if not par.expert or model is None or model.moe is None or model.moe.num_experts <= 1:
        return
    group = par.tensor * par.data
    experts = model.moe.num_experts
    if group > 1 and experts % group:
        most = math.ceil(experts / group)
        good = [g for g in range(2, min(experts, 64) + 1) if experts % g == 0 and g % par.tensor == 0][:6]
        yield Finding(("resources", "parallelism", "data" if par.data > 1 else "tensor"),
                      f"{experts} routed experts over an expert-parallel group of {group} GPUs (tensor "
                      f"{par.tensor} × data {par.data}): {experts % group} GPUs hold {most} experts, the others "
                      f"{most - 1}; the fuller GPUs bound every rank's KV cache and set the pace of each step",
                      "choose tensor × data dividing the expert count"
                      + (f" ({', '.join(map(str, good))} GPUs)" if good else ""))


#: Flags kserve-config-llm-worker-data-parallel (config/llmisvcconfig @ v0.20.0) passes to
#: vllm serve on the leader and the workers; the pinned engine must know them.
DP_WORKER_FLAGS = ("--data-parallel-size-local", "--data-parallel-address", "--data-parallel-rpc-port",
                   "--data-parallel-start-rank", "--headless", "--api-server-count")


@rule("LD814")
def llmisvc_data_parallel_layout(ctx: RuleContext) -> Iterator[Finding]:
    """Data parallel across nodes on the llmInferenceService target fits what KServe v0.20.0 runs.

    (``pipeline`` with ``data`` is refused by KServe's webhook on any node count: LD710.)

    * Across nodes (``worker``), the LeaderWorkerSet has ``data ÷ dataLocal`` pods
      (``GetSize``, llm_inference_service_types_func.go), so the data-parallel ranks must
      split evenly over ``resources.nodes``: ``dataLocal = data ÷ nodes``.
    * The ranks run the shipped ``kserve-config-llm-worker-data-parallel`` entrypoint, which
      calls ``vllm serve`` with ``--data-parallel-size-local``, ``--data-parallel-address``,
      ``--data-parallel-rpc-port``, ``--data-parallel-start-rank``, ``--api-server-count``
      and (workers) ``--headless``: the engine must be vLLM and know those flags.

    Fails::

        resources:
          gpu: {type: h100-sxm}
          parallelism: {tensor: 1, data: 12, expert: true}
          nodes: 2
        deployment:
          target: llmInferenceService

    Passes::

        resources:
          gpu: {type: h100-sxm}
          parallelism: {tensor: 1, data: 16, expert: true}   # 8 ranks per node
          nodes: 2
        deployment:
          target: llmInferenceService
    """
    from ..engines import check_flag

    s = ctx.spec
    if s.deployment.target != LLMISVC_TARGET:
        return
    par = s.resources.parallelism
    nodes = s.resources.nodes
    if not renders_worker(s):
        return
    if par.data % nodes:
        yield Finding(("resources", "parallelism", "data"),
                      f"data parallel {par.data} does not split over {nodes} nodes: KServe's LeaderWorkerSet "
                      f"has data ÷ dataLocal pods, one per node",
                      f"use a multiple of {nodes} (e.g. {nodes * max(1, par.data // nodes)} or "
                      f"{nodes * (par.data // nodes + 1)})")
    if s.resources.interconnect.topology_key:
        yield Finding(("resources", "interconnect", "topologyKey"),
                      "KServe builds this LeaderWorkerSet itself and sets no exclusive-topology annotation or "
                      "affinity from the LLMInferenceService: topologyKey is not applied on this target",
                      "label or taint the nodes of one domain for this service (nodeSelector, tolerations), or "
                      "use deployment.target: leaderWorkerSet", Severity.WARNING)
    if s.runtime.engine != "vllm":
        yield Finding(("runtime", "engine"),
                      f"kserve-config-llm-worker-data-parallel runs vllm serve; {s.runtime.engine} has no "
                      "data-parallel launcher", "use runtime.engine: vllm")
        return
    engine = ctx.resolved.engine
    if engine is None:
        return
    for flag in DP_WORKER_FLAGS:
        problem = check_flag(engine, flag)
        if problem is not None and problem.severity == "error":
            yield Finding(("runtime", "image"),
                          f"kserve-config-llm-worker-data-parallel passes {flag}: {problem.message}",
                          problem.hint or "pin a vLLM image that has the data-parallel launcher")
            return
