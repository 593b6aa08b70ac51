"""LoRA adapters: the engine limits one decision sizes, renders and checks.

The planner renders these numbers (engine flags on the inferenceService target,
``spec.model.lora`` on the llmInferenceService target) and the rules compare the
adapters with them, so both read them from here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..records import record

if TYPE_CHECKING:  # pragma: no cover
    from ..catalog import ModelConfig
    from ..spec.models import LLMService

# The ranks vLLM accepts for --max-lora-rank (vllm/config.py LoRAConfig.__post_init__
# `possible_max_ranks` in 0.6–0.10; vllm/config/lora.py `MaxLoRARanks` later, which adds 1).
VLLM_MAX_LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)
VLLM_DEFAULT_MAX_LORA_RANK = 16


@record
class LoraLimits:
    """``--max-lora-rank``, ``--max-loras`` and ``--max-cpu-loras`` for the spec's adapters."""

    max_rank: int
    max_loras: int
    max_cpu_loras: int


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
    biggest = max(a.rank for a in loras)
    max_loras = spec.model.max_loras or len(loras)
    return LoraLimits(max_rank=supported_rank(biggest) or biggest, max_loras=max_loras,
                      max_cpu_loras=max(len(loras), max_loras))


def lora_gpu_bytes(model: ModelConfig, limits: LoraLimits, *, tensor_parallel: int, pipeline_parallel: int,
                   dtype: str) -> int | None:
    """GPU memory vLLM reserves for the LoRA slots on one GPU, or None for a layout not modelled.

    vLLM allocates, for every decoder layer and every adapted projection, stacked buffers
    for all ``--max-loras`` slots at ``--max-lora-rank``: ``lora_a`` (rank × input) and
    ``lora_b`` (output × rank) per slice (vllm/lora/layers: the q/k/v and gate/up slices of
    the merged projections each get their own). Column-parallel projections (qkv,
    gate_up) keep the whole input and shard the output over tensor parallel; row-parallel
    ones (o, down) shard the input and keep the whole output. The buffers are in the
    model's activation dtype. Mixture-of-experts and latent-attention layouts are not
    modelled (None); neither are the small embedding/LM-head buffers.
    """
    if model.moe is not None or model.mla is not None:
        return None
    tp = max(1, tensor_parallel)
    h = model.hidden_size
    q_out = model.num_attention_heads * model.head_dim
    kv_out = model.num_kv_heads * model.head_dim
    inter = model.intermediate_size
    up_slices = 2 if model.mlp_projections >= 3 else 1
    per_rank = (3 * h + (q_out + 2 * kv_out) / tp  # qkv: three A slices, the B output sharded
                + q_out / tp + h  # o: A input sharded, B whole
                + up_slices * h + up_slices * inter / tp  # gate_up
                + inter / tp + h)  # down
    layers = -(-model.num_layers // max(1, pipeline_parallel))
    dtype_bytes = 4 if dtype == "float32" else 2
    return int(limits.max_loras * limits.max_rank * layers * per_rank * dtype_bytes)
