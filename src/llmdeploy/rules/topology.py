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
    """A replica that spans nodes needs the target that renders it.

    ``resources.nodes`` above 1 is rendered as a LeaderWorkerSet
    (``deployment.target: leaderWorkerSet``): one group of pods per replica, vLLM's Ray head on the leader and
    Ray workers on the other pods. The InferenceService targets render one pod per
    replica. The Ray bootstrap script is vLLM's (``multi-node-serving.sh`` in the
    ``vllm/vllm-openai`` image), so the target serves vLLM only; data parallel across
    nodes needs vLLM's own data-parallel launcher (``--data-parallel-address``), which
    this target does not render.

    Fails::

        resources:
          gpu: {type: h100-sxm}
          parallelism: {tensor: 8, pipeline: 2}
          nodes: 2                 # deployment.target is inferenceService

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
    if nodes > 1 and target != TARGET:
        yield Finding(("resources", "nodes"),
                      f"a replica on {nodes} nodes is rendered only as a LeaderWorkerSet; deployment.target is "
                      f"{target}", "set deployment.target: leaderWorkerSet (or fit the replica on one node)")
    if target == TARGET and s.runtime.engine != "vllm":
        yield Finding(("runtime", "engine"),
                      f"the leaderWorkerSet target bootstraps vLLM's Ray cluster; {s.runtime.engine} has no such "
                      "script", "use runtime.engine: vllm, or deployment.target: inferenceService")
    if nodes > 1 and s.resources.parallelism.data > 1:
        yield Finding(("resources", "parallelism", "data"),
                      "data parallel across nodes needs vLLM's data-parallel launcher, which the LeaderWorkerSet "
                      "target does not render", "use replicas (scaling.minReplicas) for more throughput, "
                      "parallelism.data: 1 inside each replica")


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
