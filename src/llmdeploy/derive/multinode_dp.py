"""Which data-parallel layout a spec asks of the llmInferenceService target (multi-node ``worker``).

Pure functions over the spec: :mod:`llmdeploy.plan.llmisvc_worker` renders the layout,
``rules/topology.py`` (LD801, LD814) checks it.
"""

from __future__ import annotations

from ..spec.models import LLMService

__all__ = ["LLMISVC_TARGET", "data_local", "renders_worker"]

LLMISVC_TARGET = "llmInferenceService"


def renders_worker(spec: LLMService) -> bool:
    """A multi-node data-parallel replica on the LLMInferenceService target (no pipeline stages)."""
    r = spec.resources
    return (spec.deployment.target == LLMISVC_TARGET and r.nodes > 1 and r.parallelism.data > 1
            and r.parallelism.pipeline == 1)


def data_local(spec: LLMService) -> int:
    """Data-parallel ranks per pod (``parallelism.dataLocal``): all of them on one node, else data ÷ nodes."""
    par = spec.resources.parallelism
    if not renders_worker(spec):
        return par.data
    return max(1, par.data // spec.resources.nodes)
