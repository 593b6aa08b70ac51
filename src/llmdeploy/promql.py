"""PromQL for one service, on the metric names of its pinned engine version.

Every expression is scoped by ``namespace`` and the served model name (vLLM's
``model_name`` label), never a bare metric that every model in Prometheus feeds.
Metric names come from the engine table (``engines/<engine>.yaml``), so a service
pinned to an old release gets the old names. KEDA triggers, recording rules, alerts
and the dashboard all build on these functions, so they agree by construction.

Two shapes of the same queries:

* ``ServiceQueries(...)`` as constructed (``group_by=()``) gives single-series
  expressions without labels (``sum(...)``): what a KEDA trigger wants.
* ``.grouped()`` keeps the scope labels (``sum by (namespace, model_name) (...)``):
  what recording rules need, so that the series of several services never collide.

An engine without a model label (TGI: "There is no model_name label: scope by
pod/namespace", ``engines/tgi.yaml``) is scoped by the predictor pods' names instead
(``pod_regex``).
"""

from __future__ import annotations

import math
import re
from dataclasses import replace
from typing import TYPE_CHECKING, Protocol

from .engines import MetricUnavailableError
from .records import record

if TYPE_CHECKING:  # pragma: no cover
    from .engines import EngineVersionInfo


class QueryScope(Protocol):
    """What :meth:`ServiceQueries.for_service` needs to know of a service.

    The planner's ``PlanContext`` satisfies it; this module (analysis layer) does not
    import the plan.
    """

    @property
    def engine(self) -> EngineVersionInfo: ...
    @property
    def namespace(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def served_model_name(self) -> str: ...
    @property
    def scrape_interval(self) -> str: ...
    def workload_pod_regex(self, names: tuple[str, ...]) -> str:
        """A regex for the names of the pods serving these workloads (:func:`predictor_pod_regex`)."""
        ...

# The OpenAI server's inference routes (handler = route template): the error ratio counts
# these, not /v1/models or other metadata calls a gateway may poll.
INFERENCE_HANDLERS = "/v1/chat/completions|/v1/completions|/v1/responses|/v1/embeddings|/v1/score|/v1/rerank|/invocations"

# Prometheus needs at least two samples in a rate() window; four is the usual floor
# (Grafana's $__rate_interval is max(4 × scrape interval, ...)), so a window is never
# shorter than four scrapes.
MIN_SAMPLES_PER_WINDOW = 4
DEFAULT_RATE_WINDOW_SECONDS = 120

_DURATION_RE = re.compile(r"^(\d+)(ms|s|m|h|d|w|y)\Z")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def parse_duration(text: str) -> float:
    """Seconds in a single-unit Prometheus duration (``15s``, ``5m``, ``1h``).

    Raises:
        ValueError: not a single-unit duration.
    """
    m = _DURATION_RE.match(text.strip())
    if m is None:
        raise ValueError(f"{text!r} is not a Prometheus duration such as 30s, 5m or 1h")
    return int(m.group(1)) * _UNIT_SECONDS[m.group(2)]


def format_duration(seconds: float) -> str:
    """The shortest exact single-unit Prometheus duration covering ``seconds`` (rounded up to 1 s)."""
    s = max(1, math.ceil(seconds))
    for unit, size in (("h", 3600), ("m", 60)):
        if s % size == 0:
            return f"{s // size}{unit}"
    return f"{s}s"


def quote_label_value(value: str) -> str:
    """A PromQL double-quoted string (Go escaping rules: backslash, quote, newline)."""
    out = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{out}"'


def matchers(labels: dict[str, str], regex: dict[str, str] | None = None) -> str:
    """``{k="v",...,k=~"re"}``: equality matchers in key order, then regex matchers in key order."""
    parts = [f"{k}={quote_label_value(v)}" for k, v in sorted(labels.items())]
    parts += [f"{k}=~{quote_label_value(v)}" for k, v in sorted((regex or {}).items())]
    return "{" + ",".join(parts) + "}"


def predictor_pod_regex(isvc_names: tuple[str, ...] | list[str]) -> str:
    """A regex for the pod names KServe gives the predictors of these InferenceServices.

    Standard mode: Deployment ``<isvc>-predictor`` → pods ``<isvc>-predictor-<hash>-<id>``;
    Knative mode: revision ``<isvc>-predictor-00001`` → pods
    ``<isvc>-predictor-00001-deployment-<hash>-<id>`` (naming.py). Names are DNS
    labels (``[a-z0-9-]``), so they need no escaping; Prometheus anchors the regex.
    """
    names = sorted(set(isvc_names))
    alt = names[0] if len(names) == 1 else "(" + "|".join(names) + ")"
    return f"{alt}-predictor-.+"


@record
class ServiceQueries:
    """PromQL expressions for one service.

    Attributes:
        engine: the pinned engine version's table (metric names).
        namespace: Kubernetes namespace of the pods.
        model_name: served model name (the ``model_name`` label vLLM exports).
        model_label: name of the label that carries the model (``model_name`` for vLLM,
            ``""`` for an engine without one).
        rate_window: range of ``rate()`` windows.
        group_by: labels the aggregations keep (``()``: one unlabelled series).
        pod_regex: also match ``pod=~<regex>`` (engines without a model label).
        service_pod_regex: the predictor pods of the service, for series without the
            engine's labels (the HTTP server's ``http_requests_total``).
    """

    engine: EngineVersionInfo
    namespace: str
    model_name: str
    model_label: str = "model_name"
    rate_window: str = "2m"
    group_by: tuple[str, ...] = ()
    pod_regex: str | None = None
    service_pod_regex: str | None = None

    @classmethod
    def for_service(cls, ctx: QueryScope, *, isvc_names: tuple[str, ...] | None = None,
                    rate_window: str | None = None) -> ServiceQueries:
        """The queries of a planned service: its namespace, served name, engine and scrape interval.

        The model label comes from the engine table (vLLM's ``model_name``; none for TGI,
        whose series are then scoped by the predictor pod names of ``isvc_names``, default
        the service's own InferenceService). The rate window is 2m, widened to four scrape
        intervals when ``monitoring.scrapeInterval`` is longer than 30s.
        """
        engine = ctx.engine
        model_label = "model_name" if "model_name" in engine.metric_labels else ""
        if rate_window is None:
            scrape = parse_duration(ctx.scrape_interval)
            rate_window = format_duration(max(DEFAULT_RATE_WINDOW_SECONDS, MIN_SAMPLES_PER_WINDOW * scrape))
        service_pods = ctx.workload_pod_regex(tuple(isvc_names or (ctx.name,)))
        pod_regex = None if model_label else service_pods
        return cls(engine, ctx.namespace, ctx.served_model_name, model_label, rate_window, (), pod_regex,
                   service_pods)

    # ---- shape

    @property
    def scope_labels(self) -> tuple[str, ...]:
        """Labels that identify the service's series (kept by :meth:`grouped`)."""
        return ("namespace", self.model_label) if self.model_label else ("namespace",)

    def grouped(self) -> ServiceQueries:
        """The same queries keeping :attr:`scope_labels` (for recording rules)."""
        return replace(self, group_by=self.scope_labels)

    @property
    def sel(self) -> str:
        """The selector every expression uses."""
        labels = {"namespace": self.namespace}
        if self.model_label:
            labels[self.model_label] = self.model_name
        return matchers(labels, {"pod": self.pod_regex} if self.pod_regex else None)

    def _sel_with(self, extra: str) -> str:
        """The selector plus one more matcher (``extra`` like ``finished_reason=~"abort"``)."""
        return self.sel[:-1] + "," + extra + "}"

    def _by(self, *more: str) -> str:
        labels = (*self.group_by, *more)
        return f" by ({', '.join(labels)}) " if labels else ""

    def _agg(self, op: str, inner: str, *more: str) -> str:
        by = self._by(*more)
        return f"{op}{by}({inner})" if by else f"{op}({inner})"

    def m(self, logical: str) -> str:
        """The exported metric name of a logical metric in the pinned version."""
        return self.engine.metric(logical)

    def has(self, logical: str) -> bool:
        return self.engine.has_metric(logical)

    # ---- gauges
    def waiting_total(self) -> str:
        """Requests waiting in the engine queue, summed over replicas."""
        return self._agg("sum", f"{self.m('num_requests_waiting')}{self.sel}")

    def running_total(self) -> str:
        """Requests being generated, summed over replicas."""
        return self._agg("sum", f"{self.m('num_requests_running')}{self.sel}")

    def in_flight_total(self) -> str:
        """Requests running or waiting, summed over replicas (0 only when the service is idle)."""
        return f"{self.running_total()} + {self.waiting_total()}"

    def kv_cache_usage_avg(self) -> str:
        """Average KV-cache usage (0-1) over replicas."""
        return self._agg("avg", f"{self.m('kv_cache_usage')}{self.sel}")

    def kv_cache_usage_max(self) -> str:
        """Fullest replica's KV-cache usage (0-1)."""
        return self._agg("max", f"{self.m('kv_cache_usage')}{self.sel}")

    def replicas(self) -> str:
        """Replicas exporting metrics: distinct scraped targets (``instance``).

        vLLM labels each data-parallel engine of a pod separately (``engine``), so
        counting series would count engines; grouping by ``instance`` (one per pod and
        port, set by every scrape) counts pods.
        """
        inner = self._agg("group", f"{self.m('num_requests_running')}{self.sel}", "instance")
        return self._agg("count", inner)

    # ---- histograms
    def quantile(self, logical: str, q: float) -> str:
        """``histogram_quantile`` over all replicas of a histogram metric."""
        base = self.m(logical)
        by = self._by("le").strip() if self.group_by else "by (le)"
        return f"histogram_quantile({q:g}, sum {by} (rate({base}_bucket{self.sel}[{self.rate_window}])))"

    def ttft(self, q: float = 0.95) -> str:
        return self.quantile("time_to_first_token", q)

    def itl(self, q: float = 0.95) -> str:
        return self.quantile("inter_token_latency", q)

    def e2e(self, q: float = 0.95) -> str:
        return self.quantile("e2e_request_latency", q)

    # ---- counters
    def rate(self, logical: str, by: str | None = None) -> str:
        base = self.m(logical)
        inner = f"rate({base}{self.sel}[{self.rate_window}])"
        if self.group_by:
            return self._agg("sum", inner, *([by] if by else []))
        grouping = f" by ({by})" if by else ""
        return f"sum{grouping}({inner})"

    def _rate_hist_sum(self, logical: str) -> str:
        inner = f"rate({self.m(logical)}_sum{self.sel}[{self.rate_window}])"
        return self._agg("sum", inner)

    def has_tokens(self, kind: str) -> bool:
        """True when prompt (``kind="prompt"``) or generation token throughput can be computed."""
        return self.has(f"{kind}_tokens") or self.has(f"request_{kind}_tokens")

    def generation_tokens_per_s(self) -> str:
        """Generated tokens per second.

        TGI has no token counter; the ``_sum`` of its per-request histogram grows by the
        tokens of each finished request (engines/tgi.yaml note), a coarser but usable rate.
        """
        if self.has("generation_tokens"):
            return self.rate("generation_tokens")
        return self._rate_hist_sum("request_generation_tokens")

    def prompt_tokens_per_s(self) -> str:
        """Prompt (prefill) tokens per second (TGI: from its input-length histogram)."""
        if self.has("prompt_tokens"):
            return self.rate("prompt_tokens")
        return self._rate_hist_sum("request_prompt_tokens")

    def requests_per_s(self) -> str:
        """Finished requests per second (all finish reasons).

        vLLM's ``request_success_total`` counts every finished request (by
        ``finished_reason``); TGI's ``tgi_request_success`` only the successful ones, so
        its ``tgi_request_count`` is used instead.
        """
        if self.has_finish_reason() or not self.has("request_count"):
            return self.rate("request_success")
        return self.rate("request_count")

    def has_finish_reason(self) -> bool:
        """True when the engine labels finished requests with ``finished_reason`` (vLLM)."""
        return self.has("request_success") and "finished_reason" in self.engine.metric_info("request_success").labels

    def preemptions_per_s(self) -> str:
        return self.rate("num_preemptions")

    def has_error_ratio(self) -> bool:
        """True when the engine exports what :meth:`error_ratio` needs."""
        return (self.has("http_requests") and self.service_pod_regex is not None) or self.has_finish_reason() \
            or (self.has("request_failure") and self.has("request_count"))

    def error_source(self) -> str:
        """What :meth:`error_ratio` counts, in words (for alert text and docs)."""
        if self.has("http_requests") and self.service_pod_regex is not None:
            return "inference requests answered with HTTP 5xx"
        if self.has_finish_reason():
            return "finished requests the engine aborted"
        return "requests the engine counted as failed"

    def error_ratio(self) -> str:
        """Share of the service's requests that failed on the server side.

        vLLM ≥ 0.8.5: HTTP 5xx answers over all answers on the inference endpoints, from
        the OpenAI server's ``http_requests_total{handler,method,status}``
        (prometheus-fastapi-instrumentator defaults: status grouped ``2xx``/``4xx``/
        ``5xx``). Those series carry no ``model_name``, so they are scoped by the predictor
        pods. 4xx (bad requests, prompts over ``max-model-len``) are the client's errors and
        are not counted. vLLM's ``request_success_total{finished_reason}`` is not an error
        signal: its reasons are only ``stop``, ``length`` and ``abort`` (FINISH_REASON_STRINGS,
        vllm/v1/engine/__init__.py @ v0.10.2/v0.11.0) and a client disconnect is never counted
        (``AsyncLLM.abort`` → ``OutputProcessor.abort_requests`` records no stats). Older
        releases fall back to the ``abort`` share of finished requests.

        TGI: ``tgi_request_failure`` over ``tgi_request_count``.

        ``clamp_min`` keeps the ratio defined without traffic; the grouped form falls back
        to 0 when no failing series exists yet.

        Raises:
            MetricUnavailableError: the engine version exports none of them.
        """
        w = self.rate_window
        if self.has("http_requests") and self.service_pod_regex is not None:
            name = self.m("http_requests")
            sel = {"namespace": self.namespace}
            regex = {"pod": self.service_pod_regex, "handler": INFERENCE_HANDLERS}
            bad_inner = f"rate({name}{matchers({**sel, 'status': '5xx'}, regex)}[{w}])"
            all_inner = f"rate({name}{matchers(sel, regex)}[{w}])"
            if not self.group_by:
                return f"sum({bad_inner}) / clamp_min(sum({all_inner}), 1e-9)"
            keep = tuple(label for label in self.group_by if label != self.model_label)
            by = f" by ({', '.join(keep)}) " if keep else ""
            bad, total = f"sum{by}({bad_inner})", f"sum{by}({all_inner})"
            ratio = f"({bad} or {total} * 0) / clamp_min({total}, 1e-9)"
            if self.model_label and self.model_label in self.group_by:
                # Recorded series keep the service's scope labels like every other rule.
                ratio = f'label_replace({ratio}, "{self.model_label}", {quote_label_value(self.model_name)}, "", "")'
            return ratio
        if self.has_finish_reason():
            base = self.m("request_success")
            bad_sel = self._sel_with('finished_reason="abort"')
            bad_inner = f"rate({base}{bad_sel}[{w}])"
            all_inner = f"rate({base}{self.sel}[{w}])"
        elif self.has("request_failure") and self.has("request_count"):
            bad_inner = f"rate({self.m('request_failure')}{self.sel}[{w}])"
            all_inner = f"rate({self.m('request_count')}{self.sel}[{w}])"
        else:
            raise MetricUnavailableError(
                f"{self.engine.display_name} {self.engine.version} exports no request outcome metric")
        if not self.group_by:
            return f"sum({bad_inner}) / clamp_min(sum({all_inner}), 1e-9)"
        bad = self._agg("sum", bad_inner)
        total = self._agg("sum", all_inner)
        return f"({bad} or {total} * 0) / clamp_min({total}, 1e-9)"

    def request_rate_by_reason(self) -> str:
        """Finished requests per second split by ``finished_reason`` (vLLM; dashboards)."""
        return self.rate("request_success", by="finished_reason")


# --------------------------------------------------------------------------- GPUs (DCGM exporter)

# DCGM exporter field names (dcgm-exporter default-counters.csv): framebuffer used/free in
# MiB, GPU utilization in %.
DCGM_FB_USED = "DCGM_FI_DEV_FB_USED"
DCGM_FB_FREE = "DCGM_FI_DEV_FB_FREE"
DCGM_GPU_UTIL = "DCGM_FI_DEV_GPU_UTIL"


@record
class GpuQueries:
    """GPU memory and utilization of a service's pods from the NVIDIA DCGM exporter.

    With its Kubernetes mapping on (``DCGM_EXPORTER_KUBERNETES=true``) the exporter
    labels each GPU's series with the ``namespace``, ``pod`` and ``container`` that hold
    the GPU. Prometheus keeps those names only when the scrape job honours the
    exporter's labels (``honorLabels: true``); otherwise they clash with the target's
    own ``namespace``/``pod`` (the exporter pod's) and are renamed ``exported_namespace``
    / ``exported_pod`` — the dcgm-exporter Helm chart's ServiceMonitor sets
    ``honorLabels: false`` (NVIDIA/dcgm-exporter deployment/values.yaml,
    dcgm-exporter#85). The recorded series always carry the workload's labels as
    ``namespace``/``pod``.
    """

    namespace: str
    pod_regex: str
    honor_labels: bool = False

    @property
    def ns_label(self) -> str:
        return "namespace" if self.honor_labels else "exported_namespace"

    @property
    def pod_label(self) -> str:
        return "pod" if self.honor_labels else "exported_pod"

    @property
    def sel(self) -> str:
        return matchers({self.ns_label: self.namespace}, {self.pod_label: self.pod_regex})

    def _per_gpu(self, expr: str) -> str:
        """``max by (namespace, pod, gpu)`` with the exporter's workload labels renamed to those."""
        if self.honor_labels:
            return f"max by (namespace, pod, gpu) ({expr})"
        relabelled = (f'label_replace(label_replace({expr}, "namespace", "$1", "exported_namespace", "(.+)"), '
                      f'"pod", "$1", "exported_pod", "(.+)")')
        return f"max by (namespace, pod, gpu) ({relabelled})"

    def memory_used_ratio(self) -> str:
        """Framebuffer used / (used + free), 0-1, per pod and GPU."""
        used = f"{DCGM_FB_USED}{self.sel}"
        free = f"{DCGM_FB_FREE}{self.sel}"
        return self._per_gpu(f"{used} / ({used} + {free})")

    def utilization_ratio(self) -> str:
        """GPU utilization, 0-1, per pod and GPU (``DCGM_FI_DEV_GPU_UTIL`` is in %)."""
        return self._per_gpu(f"{DCGM_GPU_UTIL}{self.sel} / 100")
