"""Why a configuration does not fit, or deserves a warning: typed, without rule ids.

The sizing maths returns :class:`Reason` objects; ``rules/sizing.py`` declares the rule
id (LD2xx) of each :class:`SizingProblem` and turns the reasons into located diagnostics.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Any

from ..records import record


class SizingProblem(Enum):
    """What a sizing reason is about. ``rules/sizing.py`` declares the rule id of each."""

    WEIGHTS_DO_NOT_FIT = "weights-do-not-fit"
    KV_CACHE_TOO_SMALL = "kv-cache-too-small"
    PARALLELISM_DOES_NOT_DIVIDE = "parallelism-does-not-divide"
    MORE_GPUS_THAN_A_NODE = "more-gpus-than-a-node"
    LOW_CONCURRENCY = "low-concurrency"
    CONTEXT_BEYOND_MODEL = "context-beyond-model"
    GPU_CANNOT_RUN_DTYPE = "gpu-cannot-run-dtype"
    QUANTIZATION_MISMATCH = "quantization-mismatch"
    CUDA_GRAPHS_OUTSIDE_BUDGET = "cuda-graphs-outside-budget"
    SAMPLER_WARMUP_OOM = "sampler-warmup-oom"
    STARTUP_FREE_MEMORY = "startup-free-memory"


@record
class Reason:
    """Why a configuration does not fit (or deserves a warning).

    Attributes:
        problem: what kind of problem it is (the rule layer gives it its id, LD2xx).
        message: one sentence, with the numbers.
        hint: how to fix it, or None.
        field: JSON path of the spec field it belongs to (camelCase keys).
    """

    problem: SizingProblem
    message: str
    hint: str | None
    field: tuple[str | int, ...]

    def to_json(self, rule_ids: Mapping[SizingProblem, str]) -> dict[str, Any]:
        """JSON form (the field as a dotted path, the problem as its rule id)."""
        return {"code": rule_ids[self.problem], "message": self.message, "hint": self.hint,
                "field": ".".join(str(p) for p in self.field)}
