"""LoRA adapters in the memory budget: the GPU slots and the host-side adapter cache.

vLLM wraps every adapted projection when it loads the model (``LoRAModelManager`` in
``vllm/lora/models.py``, the wrappers' ``create_lora_weights`` in ``vllm/lora/layers``;
same layout from v0.6 to v0.19): for each slice of a merged projection it allocates
``lora_a_stacked`` of shape ``(max_loras, 1, max_lora_rank, input)`` and
``lora_b_stacked`` of shape ``(max_loras, 1, output, max_lora_rank)`` in the LoRA dtype
(the model's). Column-parallel projections (qkv, gate_up) keep the whole input and shard
the output over tensor parallel; row-parallel ones (o, down) shard the input and keep
the whole output (``fully_sharded_loras`` off, the default). These slots are allocated
with the weights, before the profile run, so the KV cache is that much smaller; an
adapter of a lower rank still takes a slot of ``max_lora_rank``.

The adapters themselves are loaded from disk into host memory (``LRUCacheLoRAModelManager``,
``--max-cpu-loras`` of them, each at its own rank and unsharded: each worker slices its
shard when it copies an adapter into a GPU slot), one cache per engine worker process.

Not modelled: mixture-of-experts and latent-attention layouts (their LoRA wrappers
differ; the slots are then left out, with a note), the embedding/LM-head buffers of
versions with ``lora_extra_vocab_size``, and the punica kernels' per-token buffers
(tokens × rank, well under 1 % of the slots).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..records import record

if TYPE_CHECKING:  # pragma: no cover
    from ..catalog import ModelConfig
    from ..spec.models import LLMService

__all__ = [
    "VLLM_DEFAULT_MAX_LORA_RANK",
    "VLLM_MAX_LORA_RANKS",
    "LoraLimits",
    "lora_cpu_cache_bytes",
    "lora_gpu_bytes",
    "lora_limits",
    "lora_slot_bytes",
    "supported_rank",
]

# The ranks vLLM accepts for --max-lora-rank (vllm/config.py LoRAConfig.__post_init__
# `possible_max_ranks` in 0.6–0.10; vllm/config/lora.py `MaxLoRARanks` later, which adds 1).
VLLM_MAX_LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)
VLLM_DEFAULT_MAX_LORA_RANK = 16


@record
class LoraLimits:
    """``--max-lora-rank``, ``--max-loras`` and ``--max-cpu-loras`` for the spec's adapters (and their ranks)."""

    max_rank: int
    max_loras: int
    max_cpu_loras: int
    adapter_ranks: tuple[int, ...] = ()  # largest first


def supported_rank(rank: int) -> int | None:
    """The smallest rank vLLM accepts for ``--max-lora-rank`` that holds ``rank`` (None above 512)."""
    return next((r for r in VLLM_MAX_LORA_RANKS if r >= rank), None)


def lora_limits(spec: LLMService) -> LoraLimits | None:
    """The limits for ``model.loras``, or None without adapters.

    ``--max-loras`` (adapters resident on the GPU at once) is ``model.maxLoras`` or every
    adapter; ``--max-cpu-loras`` (the CPU cache) holds every adapter and never fewer than
    ``--max-loras`` (vLLM refuses ``max_cpu_loras < max_loras``); ``--max-lora-rank`` is the
    smallest accepted rank at or above the largest adapter's.
    """
    loras = spec.model.loras
    if not loras:
        return None
    ranks = tuple(sorted((a.rank for a in loras), reverse=True))
    max_loras = spec.model.max_loras or len(loras)
    return LoraLimits(max_rank=supported_rank(ranks[0]) or ranks[0], max_loras=max_loras,
                      max_cpu_loras=max(len(loras), max_loras), adapter_ranks=ranks)


def _per_rank(model: ModelConfig, tp: int) -> float | None:
    """Elements of one decoder layer's A and B matrices per unit of rank on one GPU (None: not modelled)."""
    if model.moe is not None or model.mla is not None:
        return None
    tp = max(1, tp)
    h = model.hidden_size
    q_out = model.num_attention_heads * model.head_dim
    kv_out = model.num_kv_heads * model.head_dim
    inter = model.intermediate_size
    up_slices = 2 if model.mlp_projections >= 3 else 1
    return (3 * h + (q_out + 2 * kv_out) / tp  # qkv: three A slices, the B output sharded
            + q_out / tp + h  # o: A input sharded, B whole
            + up_slices * h + up_slices * inter / tp  # gate_up
            + inter / tp + h)  # down


def _dtype_bytes(dtype: str) -> int:
    return 4 if dtype == "float32" else 2


def lora_slot_bytes(model: ModelConfig, limits: LoraLimits, *, tensor_parallel: int, layers: int,
                    dtype: str) -> int | None:
    """GPU bytes of the LoRA slots on one GPU holding ``layers`` decoder layers (None: layout not modelled)."""
    per_rank = _per_rank(model, tensor_parallel)
    if per_rank is None:
        return None
    return int(limits.max_loras * limits.max_rank * layers * per_rank * _dtype_bytes(dtype))


def lora_gpu_bytes(model: ModelConfig, limits: LoraLimits, *, tensor_parallel: int, pipeline_parallel: int,
                   dtype: str) -> int | None:
    """The LoRA slots on the GPU of the largest pipeline stage (None for a layout not modelled)."""
    layers = -(-model.num_layers // max(1, pipeline_parallel))
    return lora_slot_bytes(model, limits, tensor_parallel=tensor_parallel, layers=layers, dtype=dtype)


def lora_cpu_cache_bytes(model: ModelConfig, limits: LoraLimits, dtype: str) -> int | None:
    """Host bytes of one engine worker's adapter cache: the ``--max-cpu-loras`` largest adapters, unsharded."""
    per_rank = _per_rank(model, 1)
    if per_rank is None:
        return None
    ranks = limits.adapter_ranks[: limits.max_cpu_loras]
    return int(sum(ranks) * model.num_layers * per_rank * _dtype_bytes(dtype))
