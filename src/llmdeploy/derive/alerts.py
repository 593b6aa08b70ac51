"""Alert thresholds that more than one layer needs.

Read by the monitoring rules (LD505 warns when the spec's GPU memory threshold is
raised) and by the planner (the PrometheusRule); written once here.
"""

from __future__ import annotations

# vLLM allocates `gpu_memory_utilization` of every GPU at start (weights, activations and
# KV cache: facts.md), so the framebuffer sits at that share whatever the load. A GPU
# memory alert must sit above it, with headroom for what the engine does not budget
# (CUDA graphs before 0.21, NCCL buffers, the driver): 5 points, at most 99 %.
GPU_MEMORY_HEADROOM = 0.05
GPU_MEMORY_CAP = 0.99


def gpu_memory_alert_floor(gpu_memory_utilization: float) -> float:
    """The lowest GPU memory alert threshold that does not fire on the engine's own allocation."""
    return min(GPU_MEMORY_CAP, round(gpu_memory_utilization + GPU_MEMORY_HEADROOM, 4))


def pct(x: float) -> str:
    """A ratio as a percentage for people: ``95%``, ``0.5%``."""
    return f"{round(x * 100, 6):g}%"
