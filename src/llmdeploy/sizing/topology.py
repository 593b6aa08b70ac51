"""Multi-node topology: how one replica's GPUs, pipeline stages and layers fall onto nodes.

A replica that spans ``resources.nodes`` nodes runs one pod per node with
``tensor × pipeline × data ÷ nodes`` GPUs each. vLLM's Ray executor numbers the ranks
``pp_rank × tensor + tp_rank`` and assigns them to the Ray workers sorted with the
driver's node (the LeaderWorkerSet leader) first (vllm/executor/ray_distributed_executor.py
``_init_workers_ray``, ``sort_by_driver_then_worker_ip``, v0.11.0), so
with tensor 8 × pipeline 2 on two 8-GPU nodes stage 0 runs on the leader and stage 1 on
the worker: only the activations between the two stages cross the network. When a
tensor-parallel group is larger than a node (or straddles two), every layer's
all-reduce crosses it instead.

Layers per stage follow vLLM's ``get_pp_indices`` (vllm/distributed/utils.py,
v0.11.0): ``L // pp`` each with the remainder spread over the stages before the last,
unless ``VLLM_PP_LAYER_PARTITION`` (comma-separated layer counts, one per stage, summing
to ``L``) says otherwise.

Pure functions over the spec and the catalog entries; ``rules/topology.py`` (LD8xx)
reads them, and :func:`size_spec` sizes a multi-node spec (the memory per GPU is the
same as on one node; only the one-node limit of LD204 no longer applies).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from ..records import record
from .memory import pipeline_stages

if TYPE_CHECKING:  # pragma: no cover
    from ..catalog import GPU, ModelConfig
    from ..engines import EngineVersionInfo
    from ..spec.models import LLMService
    from . import SizingReport
    from .calibration import Calibration

__all__ = [
    "PP_PARTITION_ENV", "NodeLayout", "cross_node_bytes_per_token", "env_partition", "node_layout",
    "partition_problem", "quantity_gib", "size_spec",
]

#: vllm/envs.py (v0.11.0): the per-stage layer counts that override the even split.
PP_PARTITION_ENV = "VLLM_PP_LAYER_PARTITION"


@record
class NodeLayout:
    """One replica's parallelism laid onto its nodes.

    Attributes:
        nodes: pods (nodes) of one replica.
        gpus_total: tensor × pipeline × data.
        gpus_per_pod: GPUs each pod requests (``gpus_total ÷ nodes`` when it divides).
        divides: the GPUs split evenly over the nodes.
        node_capacity: GPUs one node of the type holds (catalog ``gpus_per_node`` or the
            spec's ``resources.gpu.perNode``).
        tensor_crosses_nodes: a tensor-parallel group spans more than one node.
        stages_per_node: the pipeline stages each node runs: the leader's first, then the
            other nodes in the order of their IPs (not of their LWS worker index); empty when
            tensor parallel crosses nodes (then every node holds part of every stage).
        layers: decoder layers per pipeline stage.
    """

    nodes: int
    gpus_total: int
    gpus_per_pod: int
    divides: bool
    node_capacity: int
    tensor_crosses_nodes: bool
    stages_per_node: tuple[tuple[int, ...], ...]
    layers: tuple[int, ...]

    @property
    def multi_node(self) -> bool:
        return self.nodes > 1

    @property
    def even_layers(self) -> bool:
        return len(set(self.layers)) <= 1


def env_partition(spec: LLMService) -> str | None:
    """The ``VLLM_PP_LAYER_PARTITION`` literal the spec sets in ``runtime.env`` (last one wins)."""
    found = None
    for e in spec.runtime.env:
        if e.name == PP_PARTITION_ENV and e.value is not None:
            found = e.value
    return found


def partition_problem(text: str, num_layers: int, pp: int) -> str | None:
    """Why vLLM would refuse this ``VLLM_PP_LAYER_PARTITION``, or None.

    get_pp_indices (v0.11.0) splits it on commas into integers and raises ValueError
    unless there is one per stage and they sum to the layer count.
    """
    parts = [p.strip() for p in text.split(",")]
    if not all(p.isdigit() for p in parts):
        return f"{text!r} is not a comma-separated list of layer counts"
    counts = [int(p) for p in parts]
    if len(counts) != pp:
        return f"{text!r} has {len(counts)} entries for {pp} pipeline stages"
    if sum(counts) != num_layers:
        return f"{text!r} adds up to {sum(counts)} layers, the model has {num_layers}"
    if any(c == 0 for c in counts):
        return f"{text!r} leaves a stage without layers"
    return None


def node_layout(spec: LLMService, model: ModelConfig, gpu: GPU, engine: EngineVersionInfo | None = None) -> NodeLayout:
    """Where one replica's ranks and layers run (the engine's memory model gives the remainder rule)."""
    remainder = engine.memory_model.pp_remainder if engine is not None else "before_last"
    r = spec.resources
    par = r.parallelism
    nodes = r.nodes
    total = par.tensor * par.pipeline * par.data
    divides = total % nodes == 0
    per_pod = total // nodes if divides else -(-total // nodes)
    crosses = nodes > 1 and (par.tensor > per_pod or per_pod % par.tensor != 0)
    layers: tuple[int, ...]
    custom = env_partition(spec)
    if custom is not None and partition_problem(custom, model.num_layers, par.pipeline) is None:
        layers = tuple(int(p) for p in custom.split(","))
    else:
        layers = tuple(s.num_layers for s in pipeline_stages(model.num_layers, par.pipeline, remainder))
    stages: list[tuple[int, ...]] = []
    if divides and not crosses:
        # Ranks pp_rank × tensor + tp_rank fill the nodes in order (data parallel aside).
        stages_per_node = per_pod // par.tensor
        stages = [tuple(range(n * stages_per_node, min(par.pipeline, (n + 1) * stages_per_node)))
                  for n in range(nodes)]
    return NodeLayout(nodes, total, per_pod, divides, gpu.gpus_per_node, crosses, tuple(stages), layers)


def cross_node_bytes_per_token(model: ModelConfig, layout: NodeLayout, tensor: int, dtype_bytes: int = 2) -> int:
    """First-order bytes one token sends across node boundaries in one forward pass.

    Pipeline across nodes: the hidden state (and the residual) once per stage boundary
    between nodes — ``2 × hidden × bytes`` per boundary. Tensor parallel across nodes: two
    all-reduces of the hidden state per layer; a ring all-reduce moves ``2 × (n−1)/n`` of
    the buffer through each link (NCCL's ring algorithm), so about
    ``layers × 2 × 2 × hidden × bytes`` per token.
    """
    hidden = model.hidden_size * dtype_bytes
    if layout.tensor_crosses_nodes:
        ring = 2 * (tensor - 1) / tensor
        return int(model.num_layers * 2 * hidden * ring)
    boundaries = max(0, layout.nodes - 1)
    return 2 * hidden * boundaries


def size_spec(spec: LLMService, model: ModelConfig, gpu: GPU, engine: EngineVersionInfo,
              calibration: Calibration | None = None) -> SizingReport:
    """Size a spec, as :func:`llmdeploy.sizing.size_spec`, knowing whether the replica spans nodes.

    The per-GPU memory budget is the same on one node or several (each rank holds its
    stage's layers and its tensor shard); only the one-node bound (LD204) is lifted when
    ``resources.nodes`` > 1, and LD802 checks the per-node bound instead.
    """
    from . import input_from_spec, size

    inp = input_from_spec(spec, model, gpu, engine, calibration)
    if spec.resources.nodes > 1:
        inp = replace(inp, multi_node=True)
    return size(inp)


_UNITS = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
          "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18, "m": 1e-3, "u": 1e-6, "n": 1e-9}


def quantity_gib(q: str) -> float:
    """A Kubernetes quantity (as the spec's pattern admits it) in GiB."""
    for suffix in sorted(_UNITS, key=len, reverse=True):
        if q.endswith(suffix):
            return float(q[: -len(suffix)]) * _UNITS[suffix] / 2**30
    return float(q) / 2**30
