"""The Grafana dashboard of one service, as a plain dict (JSON model).

Built from the same :class:`~llmdeploy.promql.ServiceQueries` as the rules and the
KEDA triggers, with Grafana variables in place of the literal scope:
``namespace="$namespace"``, ``model_name="$model"`` and ``$__rate_interval`` windows,
so the dashboard follows whatever service the variables select and defaults to this
one. Panel ids and positions are assigned in a fixed order and the uid is derived
from the service, so the same spec always gives the same JSON.

The format is Grafana's dashboard JSON model (grafana.com/docs/grafana/latest/
dashboards/build-dashboards/view-dashboard-json-model/): ``schemaVersion`` 38 is what
Grafana 10.0 writes; newer Grafana migrates it on load. The datasource is the
``datasource`` variable (``${datasource}``), so the import needs no datasource uid.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..promql import GpuQueries

if TYPE_CHECKING:  # pragma: no cover
    from .model import Manifest, PlanContext
    from .monitoring import MonitoringPlan

SCHEMA_VERSION = 38
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
GRID_WIDTH = 24


def dashboard_uid(namespace: str, name: str) -> str:
    """A stable uid (Grafana allows up to 40 characters) derived from the service."""
    digest = hashlib.sha256(f"{namespace}/{name}".encode()).hexdigest()[:16]
    return f"llmd-{digest}"


def side_dashboard_manifest(ctx: PlanContext, panels: list[dict[str, Any]], *, key: str, description: str,
                            tags: tuple[str, ...], title: str, aliases: tuple[str, ...]) -> Manifest:
    """A service's second dashboard (``key``: the router's, the P/D roles'): its own panels in
    the main dashboard's frame (datasource variable, refresh, time range), its own uid and
    ConfigMap ``<name>-<key>-dashboard``, labelled like the main one for Grafana's sidecar."""
    import json

    from .model import Manifest

    d = ctx.spec.monitoring.dashboard
    service = f"{ctx.namespace}/{ctx.name}"
    dashboard = {
        "description": f"llmdeploy: {description} {service}.",
        "editable": True, "graphTooltip": 1, "id": None, "panels": panels, "refresh": "30s",
        "schemaVersion": SCHEMA_VERSION, "tags": ["llmdeploy", *tags, ctx.namespace],
        "templating": {"list": [{"current": {}, "hide": 0, "includeAll": False, "label": "Data source",
                                 "multi": False, "name": "datasource", "options": [], "query": "prometheus",
                                 "refresh": 1, "regex": "", "skipUrlSync": False, "type": "datasource"}]},
        "time": {"from": "now-3h", "to": "now"}, "timezone": "browser",
        "title": f"{title} {service}", "uid": dashboard_uid(ctx.namespace, f"{ctx.name}-{key}"), "version": 1,
    }
    name = f"{ctx.name}-{key}-dashboard"
    ns = d.namespace or ctx.namespace
    text = json.dumps(dashboard, indent=2, sort_keys=True, ensure_ascii=True) + "\n"
    values = {"metadata": ctx.metadata(name, namespace=ns, component="dashboard", labels=dict(sorted(d.labels.items()))),
              "data": {f"{ctx.namespace}-{ctx.name}-{key}.json": text}}
    return Manifest("monitoring/dashboard-configmap.yaml.j2", "ConfigMap", name, values, namespace=ns,
                    aliases=aliases)


class _Layout:
    """Assigns ids and grid positions in call order."""

    def __init__(self) -> None:
        self.panels: list[dict[str, Any]] = []
        self.next_id = 1
        self.x = 0
        self.y = 0
        self.row_h = 0

    def _place(self, w: int, h: int) -> dict[str, int]:
        if self.x + w > GRID_WIDTH:
            self.x, self.y, self.row_h = 0, self.y + self.row_h, 0
        pos = {"h": h, "w": w, "x": self.x, "y": self.y}
        self.x += w
        self.row_h = max(self.row_h, h)
        return pos

    def _id(self) -> int:
        i = self.next_id
        self.next_id += 1
        return i

    def row(self, title: str) -> None:
        if self.x:
            self.x, self.y, self.row_h = 0, self.y + self.row_h, 0
        self.panels.append({"collapsed": False, "gridPos": {"h": 1, "w": GRID_WIDTH, "x": 0, "y": self.y},
                            "id": self._id(), "panels": [], "title": title, "type": "row"})
        self.y += 1

    def add(self, panel: dict[str, Any], w: int, h: int) -> None:
        panel["id"] = self._id()
        panel["gridPos"] = self._place(w, h)
        self.panels.append(panel)


def _targets(exprs: list[tuple[str, str]]) -> list[dict[str, Any]]:
    return [{"datasource": DATASOURCE, "editorMode": "code", "expr": expr, "legendFormat": legend,
             "range": True, "refId": chr(ord("A") + i)} for i, (expr, legend) in enumerate(exprs)]


def _thresholds(threshold: float | None) -> dict[str, Any]:
    steps: list[dict[str, Any]] = [{"color": "green", "value": None}]
    if threshold is not None:
        steps.append({"color": "red", "value": threshold})
    return {"mode": "absolute", "steps": steps}


def _timeseries(title: str, description: str, unit: str, exprs: list[tuple[str, str]],
                threshold: float | None = None, max_value: float | None = None) -> dict[str, Any]:
    defaults: dict[str, Any] = {
        "custom": {
            "drawStyle": "line",
            "fillOpacity": 10,
            "lineWidth": 1,
            "showPoints": "never",
            "spanNulls": False,
            "thresholdsStyle": {"mode": "line" if threshold is not None else "off"},
        },
        "min": 0,
        "thresholds": _thresholds(threshold),
        "unit": unit,
    }
    if max_value is not None:
        defaults["max"] = max_value
    return {
        "datasource": DATASOURCE,
        "description": description,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {"legend": {"calcs": [], "displayMode": "list", "placement": "bottom", "showLegend": True},
                    "tooltip": {"mode": "multi", "sort": "desc"}},
        "targets": _targets(exprs),
        "title": title,
        "type": "timeseries",
    }


def _stat(title: str, description: str, unit: str, expr: str, threshold: float | None = None) -> dict[str, Any]:
    return {
        "datasource": DATASOURCE,
        "description": description,
        "fieldConfig": {"defaults": {"thresholds": _thresholds(threshold), "unit": unit}, "overrides": []},
        "options": {"colorMode": "value", "graphMode": "area", "justifyMode": "auto", "orientation": "auto",
                    "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                    "textMode": "auto"},
        "targets": _targets([(expr, title)]),
        "title": title,
        "type": "stat",
    }


def _query_variable(name: str, label: str, query: str, current: str) -> dict[str, Any]:
    return {
        "current": {"selected": True, "text": current, "value": current},
        "datasource": DATASOURCE,
        "definition": query,
        "hide": 0,
        "includeAll": False,
        "label": label,
        "multi": False,
        "name": name,
        "options": [],
        "query": query,
        "refresh": 2,
        "regex": "",
        "skipUrlSync": False,
        "sort": 1,
        "type": "query",
    }


def build_dashboard(ctx: PlanContext, plan: MonitoringPlan) -> dict[str, Any]:
    """The dashboard JSON model of one service."""
    mq = plan.queries
    # Same queries, scoped by the dashboard's variables instead of the literal service.
    # Series without the model label (the HTTP server's) are scoped by the pods of every
    # InferenceService of the service: the dashboard covers the stable and the candidate.
    pods = sorted({s.queries.service_pod_regex for s in plan.scopes if s.queries.service_pod_regex})
    service_pods = (pods[0] if len(pods) == 1 else "(" + "|".join(pods) + ")") if pods else None
    q = replace(mq, namespace="$namespace", model_name="$model", rate_window="$__rate_interval", group_by=(),
                service_pod_regex=service_pods)
    th = plan.thresholds
    engine = ctx.engine
    # The metric the variables read their label values from: the running gauge, else (an
    # engine version without it, TensorRT-LLM 1.1) the count of a request histogram.
    anchor_metric = next((q.m(logical) + suffix for logical, suffix in (
        ("num_requests_running", ""), ("e2e_request_latency", "_count"), ("time_to_first_token", "_count"))
        if q.has(logical)), "up")
    have = set(plan.primary.have)
    lay = _Layout()
    service = f"{ctx.namespace}/{ctx.name}"

    def per_pod(op: str, logical: str) -> str:
        return f"{op} by (pod) ({q.m(logical)}{q.sel})"

    lay.row("Overview")
    if "running" in have:
        lay.add(_stat("Replicas", "Engine pods Prometheus scrapes.", "none", q.replicas()), 4, 4)
    if "requests" in have:
        lay.add(_stat("Requests/s", "Finished requests per second.", "reqps", q.requests_per_s()), 4, 4)
    if "errors" in have:
        lay.add(_stat("Error ratio", f"Share of {q.error_source()}.", "percentunit",
                      q.error_ratio(), th.get("errors")), 4, 4)
    if "ttft" in have:
        lay.add(_stat("p95 TTFT", "95th percentile time to first token.", "s", q.ttft(0.95), th.get("ttft")), 4, 4)
    if "queue" in have:
        lay.add(_stat("Waiting", "Requests waiting in the engine queues.", "none", q.waiting_total(),
                      th.get("queue")), 4, 4)
    if "kv_cache" in have:
        lay.add(_stat("KV cache (fullest)", "KV-cache usage of the fullest replica.", "percentunit",
                      q.kv_cache_usage_max(), th.get("kv_cache")), 4, 4)

    lay.row("Traffic")
    if "requests" in have:
        if q.has_finish_reason():
            exprs = [(q.request_rate_by_reason(), "{{finished_reason}}")]
        else:
            exprs = [(q.requests_per_s(), "finished")]
        lay.add(_timeseries("Request rate", "Finished requests per second by finish reason.", "reqps", exprs), 12, 8)
    if "errors" in have:
        lay.add(_timeseries("Error ratio", f"Share of {q.error_source()}; the red line is the error budget.",
                            "percentunit", [(q.error_ratio(), "error ratio")],
                            th.get("errors")), 12, 8)
    tokens = []
    if "prompt_tokens" in have:
        tokens.append((q.prompt_tokens_per_s(), "prompt"))
    if "generation_tokens" in have:
        tokens.append((q.generation_tokens_per_s(), "generation"))
    if tokens:
        lay.add(_timeseries("Tokens/s", "Prompt (prefill) and generated tokens per second.", "short", tokens), 12, 8)
    if "running" in have:
        lay.add(_timeseries("Replicas", "Engine pods Prometheus scrapes.", "none", [(q.replicas(), "replicas")]),
                12, 8)

    lay.row("Latency")
    for signal, title, fn, desc in (
        ("ttft", "Time to first token", q.ttft, "Queueing plus prefill, per request."),
        ("itl", "Inter-token latency", q.itl, "Time between two generated tokens (decode step)."),
        ("e2e", "End-to-end request latency", q.e2e, "From arrival to the last token."),
    ):
        if signal in have:
            lay.add(_timeseries(title, desc + (" The red line is the p95 SLO." if signal in th else ""), "s",
                                [(fn(p / 100), f"p{p}") for p in (50, 95, 99)], th.get(signal)), 8, 8)

    lay.row("Engine")
    if "queue" in have:
        lay.add(_timeseries("Waiting requests", "Requests queued in each engine; the red line is the alert "
                            "threshold (for the sum).", "none",
                            [(q.waiting_total(), "total"), (per_pod("sum", "num_requests_waiting"), "{{pod}}")],
                            th.get("queue")), 8, 8)
    if "running" in have:
        lay.add(_timeseries("Running requests", "Requests in the running batch of each engine.", "none",
                            [(q.running_total(), "total"), (per_pod("sum", "num_requests_running"), "{{pod}}")]),
                8, 8)
    if "kv_cache" in have:
        lay.add(_timeseries("KV-cache usage", "Share of KV-cache blocks in use per replica.", "percentunit",
                            [(per_pod("max", "kv_cache_usage"), "{{pod}}")], th.get("kv_cache"), 1), 8, 8)
    if "preemptions" in have:
        lay.add(_timeseries("Preemptions/s", "Requests preempted (and later recomputed) for lack of KV cache.",
                            "short", [(q.preemptions_per_s(), "preemptions")], th.get("preemptions")), 8, 8)

    if plan.gpu is not None:
        g = GpuQueries("$namespace", plan.gpu.pod_regex, plan.gpu.honor_labels)
        lay.row("GPUs (DCGM exporter)")
        lay.add(_timeseries("GPU memory used", "Framebuffer used / total per GPU. vLLM allocates "
                            f"{ctx.spec.runtime.gpu_memory_utilization:.0%} at start.", "percentunit",
                            [(g.memory_used_ratio(), "{{pod}} gpu {{gpu}}")], th.get("gpu_memory"), 1), 12, 8)
        lay.add(_timeseries("GPU utilization", "Share of time a kernel ran on each GPU.", "percentunit",
                            [(g.utilization_ratio(), "{{pod}} gpu {{gpu}}")], None, 1), 12, 8)

    description = f"llmdeploy: {service}, {engine.display_name} {engine.version}."
    if plan.skipped:
        text = "\n".join(f"- {s}" for s in plan.skipped)
        lay.row("Not available")
        lay.add({"options": {"code": {"language": "plaintext", "showLineNumbers": False, "showMiniMap": False},
                             "content": f"Panels left out for {engine.display_name} {engine.version}:\n\n{text}\n",
                             "mode": "markdown"},
                 "title": "Signals this engine version does not export", "type": "text"}, 24, 6)
        description += " Left out: " + "; ".join(plan.skipped) + "."

    if q.model_label:
        model_var = _query_variable("model", "Model", f'label_values({anchor_metric}{{namespace="$namespace"}}, '
                                    f"{q.model_label})", ctx.served_model_name)
    else:  # no model label: the variable only names the service; queries match its pods
        model_var = {"current": {"selected": True, "text": ctx.served_model_name, "value": ctx.served_model_name},
                     "hide": 2, "label": "Model", "name": "model", "options": [], "query": ctx.served_model_name,
                     "skipUrlSync": False, "type": "constant"}
    templating = [
        {"current": {}, "hide": 0, "includeAll": False, "label": "Data source", "multi": False,
         "name": "datasource", "options": [], "query": "prometheus", "refresh": 1, "regex": "",
         "skipUrlSync": False, "type": "datasource"},
        _query_variable("namespace", "Namespace", f"label_values({anchor_metric}, namespace)", ctx.namespace),
        model_var,
    ]
    return {
        "annotations": {"list": [{
            "builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"}, "enable": True, "hide": True,
            "iconColor": "rgba(0, 211, 255, 1)", "name": "Annotations & Alerts", "type": "dashboard",
        }]},
        "description": description,
        "editable": True,
        "fiscalYearStartMonth": 0,
        "graphTooltip": 1,
        "id": None,
        "links": [{"asDropdown": False, "icon": "doc", "includeVars": False, "keepTime": False, "tags": [],
                   "targetBlank": True, "title": "Runbooks", "tooltip": "What each alert means and what to do",
                   "type": "link", "url": plan.runbook_base_url}],
        "panels": lay.panels,
        "refresh": "30s",
        "schemaVersion": SCHEMA_VERSION,
        "tags": ["llmdeploy", engine.engine, ctx.namespace],
        "templating": {"list": templating},
        "time": {"from": "now-3h", "to": "now"},
        "timepicker": {},
        "timezone": "browser",
        "title": f"LLM service {service}",
        "uid": dashboard_uid(ctx.namespace, ctx.name),
        "version": 1,
        "weekStart": "",
    }
