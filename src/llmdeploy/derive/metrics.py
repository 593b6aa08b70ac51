"""Which signals each autoscaler can scale on, and the KEDA query of each.

Read by the scaling rules (which metrics an autoscaler accepts, whether the pinned
engine exports them) and by the planner (the triggers it renders); written once here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from ..records import record

if TYPE_CHECKING:  # pragma: no cover
    from ..promql import ServiceQueries


@record
class MetricSpec:
    """How one ``scaling.metric`` is measured and compared.

    Attributes:
        metric_type: the HPA metric type KEDA uses. ``AverageValue``: the query returns
            a sum over replicas and the HPA divides it by the replica count, so the
            threshold is per replica and desired = ceil(sum / threshold). ``Value``: the
            query returns one service-wide value (an average or a percentile) and
            desired = ceil(current × value / threshold).
        unit: unit of the threshold as rendered.
        scale: factor from the spec's unit to the rendered unit (seconds → ms, 0–1 → %).
    """

    metric_type: str
    unit: str
    scale: float = 1.0


KEDA_METRICS: Mapping[str, MetricSpec] = {
    "queueDepth": MetricSpec("AverageValue", "waiting requests per replica"),
    "runningRequests": MetricSpec("AverageValue", "running requests per replica"),
    "kvCacheUsage": MetricSpec("Value", "% KV-cache usage (average over replicas)", 100.0),
    "ttftP95": MetricSpec("Value", "ms p95 time to first token", 1000.0),
    "itlP95": MetricSpec("Value", "ms p95 inter-token latency", 1000.0),
    "generationTokens": MetricSpec("AverageValue", "generated tokens/s per replica"),
}
KPA_METRICS = ("concurrency", "rps")
HPA_METRICS = ("cpu", "memory")
METRICS_BY_AUTOSCALER: Mapping[str, tuple[str, ...]] = {
    "keda": tuple(KEDA_METRICS), "kpa": KPA_METRICS, "hpa": HPA_METRICS,
}


def keda_query(metric: str, q: ServiceQueries) -> str:
    """The PromQL of a KEDA metric, in the unit its threshold uses.

    Latency percentiles are NaN while no request finishes (0/0 in the rate); ``>= 0``
    drops a NaN sample (every comparison with NaN is false), so KEDA sees an empty
    result, which it reads as 0 (``ignoreNullValues`` defaults to true).
    """
    if metric == "queueDepth":
        return q.waiting_total()
    if metric == "runningRequests":
        return q.running_total()
    if metric == "kvCacheUsage":
        return f"100 * {q.kv_cache_usage_avg()}"
    if metric == "ttftP95":
        return f"1000 * {q.ttft(0.95)} >= 0"
    if metric == "itlP95":
        return f"1000 * {q.itl(0.95)} >= 0"
    if metric == "generationTokens":
        return q.generation_tokens_per_s()
    raise ValueError(f"{metric} is not a KEDA metric")


def fmt(value: float) -> str:
    """A number as KEDA wants it: a string, integral values without a fraction."""
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.6g}"
