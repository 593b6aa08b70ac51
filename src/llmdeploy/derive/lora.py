"""LoRA adapters: the engine limits one decision sizes, renders and checks.

The planner renders these numbers (engine flags on the inferenceService target,
``spec.model.lora`` on the llmInferenceService target) and the rules compare the
adapters with them, so both read them from here. The limits and the memory the slots
take live in :mod:`llmdeploy.sizing.lora`, because ``llmdeploy size`` counts them too.
"""

from __future__ import annotations

from ..sizing.lora import (
    VLLM_DEFAULT_MAX_LORA_RANK,
    VLLM_MAX_LORA_RANKS,
    LoraLimits,
    lora_cpu_cache_bytes,
    lora_gpu_bytes,
    lora_limits,
    supported_rank,
)

__all__ = [
    "VLLM_DEFAULT_MAX_LORA_RANK",
    "VLLM_MAX_LORA_RANKS",
    "LoraLimits",
    "lora_cpu_cache_bytes",
    "lora_gpu_bytes",
    "lora_limits",
    "supported_rank",
]
