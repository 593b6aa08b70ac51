"""Replica counts: the bounds of a predictor and the replicas a target load needs.

Read by the scaling rules (LD302 and friends) and by the planner; written once here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..records import record
from .metrics import fmt

if TYPE_CHECKING:  # pragma: no cover
    from ..sizing import Capacity, SizingReport
    from ..spec.models import LLMService


def capacity_of(sizing: SizingReport | None) -> Capacity | None:
    """The sizing's capacity estimate, or None without a sizing."""
    return sizing.capacity if sizing is not None else None


@record
class ReplicaBounds:
    """Replica counts of one predictor.

    Attributes:
        min: fewest replicas while active (KEDA ``minReplicaCount``, KServe ``minReplicas``).
        max: most replicas.
        idle: KEDA ``idleReplicaCount`` (0) when the service scales to zero but keeps
            ``min`` ≥ 1 replicas once active; None otherwise.
        reason: how ``max`` was chosen.
    """

    min: int
    max: int
    idle: int | None
    reason: str

    @property
    def floor(self) -> int:
        """The lowest count the autoscaler may choose (0 when it scales to zero)."""
        return 0 if self.idle == 0 else self.min


def replicas_for_load(spec: LLMService, sizing: SizingReport | None) -> tuple[int, str] | None:
    """Replicas the target load needs, from the sizing's capacity estimate (None without it)."""
    from ..sizing.capacity import TARGET_UTILIZATION

    cap = capacity_of(sizing)
    load = spec.scaling.target_load
    if cap is None or load is None or not cap.replicas_needed:
        return None
    return int(cap.replicas_needed), (
        f"{fmt(load.requests_per_second)} req/s at {load.avg_prompt_tokens} prompt + {load.avg_output_tokens} "
        f"output tokens, {cap.requests_per_s_per_replica:.2f} req/s per replica at {cap.concurrency} requests at "
        f"once, run at {TARGET_UTILIZATION:.0%} → {int(cap.replicas_needed)} replicas (capacity estimate"
        + (f"; the latency SLO is missed even by one request: {cap.slo_missed}" if cap.slo_missed else "")
        + ")")


def replica_bounds(spec: LLMService, sizing: SizingReport | None) -> ReplicaBounds:
    """Min, max and idle replicas of the primary predictor."""
    s = spec.scaling
    lo = s.min_replicas
    if s.autoscaler == "none":
        return ReplicaBounds(lo, lo, None, "autoscaler none: fixed at minReplicas")
    if s.max_replicas == "auto":
        load = replicas_for_load(spec, sizing)
        if load is None:  # LD302 reports it; plan something valid anyway
            hi, reason = max(lo, 1), "maxReplicas auto without a capacity estimate: minReplicas"
        else:
            hi, reason = max(lo, load[0], 1), load[1]
    else:
        hi, reason = max(s.max_replicas, 1), "set in the spec or its profile"
    idle = None
    if s.scale_to_zero and s.autoscaler == "keda" and lo >= 1:
        # KEDA's webhook wants idleReplicaCount < minReplicaCount (never both 0):
        # zero while idle, at least minReplicas once a trigger is active.
        idle = 0
    return ReplicaBounds(lo, max(hi, lo), idle, reason)
