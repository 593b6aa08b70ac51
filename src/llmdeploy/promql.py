"""PromQL for one service, on the metric names of its pinned engine version.

Every expression is scoped by ``namespace`` and the served model name (vLLM's
``model_name`` label), never a bare metric that every model in Prometheus feeds.
Metric names come from the engine table (``engines/<engine>.yaml``), so a service
pinned to an old release gets the old names. KEDA triggers, recording rules, alerts
and the dashboard all build on these functions, so they agree by construction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from .engines import EngineVersionInfo


def quote_label_value(value: str) -> str:
    """A PromQL double-quoted string (Go escaping rules: backslash, quote, newline)."""
    out = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{out}"'


def matchers(labels: dict[str, str]) -> str:
    """``{k="v",...}`` in key order, values escaped."""
    return "{" + ",".join(f"{k}={quote_label_value(v)}" for k, v in sorted(labels.items())) + "}"


@dataclass(frozen=True)
class ServiceQueries:
    """PromQL expressions for one service.

    Attributes:
        engine: the pinned engine version's table (metric names).
        namespace: Kubernetes namespace of the pods.
        model_name: served model name (the ``model_name`` label vLLM exports).
        model_label: name of the label that carries the model (``model_name`` for vLLM).
        rate_window: range of ``rate()`` windows.
    """

    engine: EngineVersionInfo
    namespace: str
    model_name: str
    model_label: str = "model_name"
    rate_window: str = "2m"

    @property
    def sel(self) -> str:
        """The selector every expression uses."""
        labels = {"namespace": self.namespace}
        if self.model_label:
            labels[self.model_label] = self.model_name
        return matchers(labels)

    def m(self, logical: str) -> str:
        """The exported metric name of a logical metric in the pinned version."""
        return self.engine.metric(logical)

    def has(self, logical: str) -> bool:
        return self.engine.has_metric(logical)

    # ---- gauges
    def waiting_total(self) -> str:
        """Requests waiting in the engine queue, summed over replicas."""
        return f"sum({self.m('num_requests_waiting')}{self.sel})"

    def running_total(self) -> str:
        """Requests being generated, summed over replicas."""
        return f"sum({self.m('num_requests_running')}{self.sel})"

    def kv_cache_usage_avg(self) -> str:
        """Average KV-cache usage (0-1) over replicas."""
        return f"avg({self.m('kv_cache_usage')}{self.sel})"

    def kv_cache_usage_max(self) -> str:
        """Fullest replica's KV-cache usage (0-1)."""
        return f"max({self.m('kv_cache_usage')}{self.sel})"

    def replicas(self) -> str:
        """Replicas exporting metrics (scraped engine processes)."""
        return f"count({self.m('num_requests_running')}{self.sel})"

    # ---- histograms
    def quantile(self, logical: str, q: float) -> str:
        """``histogram_quantile`` over all replicas of a histogram metric."""
        base = self.m(logical)
        return (f"histogram_quantile({q:g}, sum by (le) (rate({base}_bucket{self.sel}[{self.rate_window}])))")

    def ttft(self, q: float = 0.95) -> str:
        return self.quantile("time_to_first_token", q)

    def itl(self, q: float = 0.95) -> str:
        return self.quantile("inter_token_latency", q)

    def e2e(self, q: float = 0.95) -> str:
        return self.quantile("e2e_request_latency", q)

    # ---- counters
    def rate(self, logical: str, by: str | None = None) -> str:
        base = self.m(logical)
        grouping = f" by ({by})" if by else ""
        return f"sum{grouping}(rate({base}{self.sel}[{self.rate_window}]))"

    def generation_tokens_per_s(self) -> str:
        return self.rate("generation_tokens")

    def prompt_tokens_per_s(self) -> str:
        return self.rate("prompt_tokens")

    def requests_per_s(self) -> str:
        """Finished requests per second (all finish reasons)."""
        return self.rate("request_success")

    def preemptions_per_s(self) -> str:
        return self.rate("num_preemptions")

    def error_ratio(self) -> str:
        """Share of finished requests that ended with ``finished_reason="abort"`` or an error.

        vLLM counts every finished request in ``request_success_total`` labelled with
        ``finished_reason`` (``stop``, ``length``, ``abort``; newer releases add
        ``error``). Aborted/errored requests over all finished ones is the error ratio;
        ``clamp_min`` keeps the ratio defined when there is no traffic.
        """
        base = self.m("request_success")
        bad = f'{self.sel[:-1]},finished_reason=~"abort|error"}}'
        return (f"sum(rate({base}{bad}[{self.rate_window}])) / "
                f"clamp_min(sum(rate({base}{self.sel}[{self.rate_window}])), 1e-9)")
