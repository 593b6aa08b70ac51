"""Monitoring: scrape objects, PromQL scoping and metric names, rules, dashboard, LD5xx rules."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import EXAMPLES, ROOT
from monitoring_support import ALL_SPECS, EXAMPLE_FILES, MONITORING_DATA, Planned, plan_spec

from llmdeploy.engines import resolve_engine
from llmdeploy.plan import monitoring as mon
from llmdeploy.promql import (
    GpuQueries,
    ServiceQueries,
    format_duration,
    parse_duration,
    quote_label_value,
)
from llmdeploy.render import render_manifest

L4 = EXAMPLES / "llama-3.1-8b-l4.llmdeploy.yaml"
H100 = EXAMPLES / "llama-3.3-70b-h100-tp2.llmdeploy.yaml"
DEV = EXAMPLES / "tinyllama-dev-scale-to-zero.llmdeploy.yaml"
TGI = MONITORING_DATA / "tgi-servicemonitor.llmdeploy.yaml"
OLD_KNATIVE = MONITORING_DATA / "vllm085-knative-canary.llmdeploy.yaml"
ANNOTATIONS = MONITORING_DATA / "annotations-no-alerts.llmdeploy.yaml"
DOCS = ROOT / "docs" / "monitoring.md"


@pytest.fixture(scope="module")
def planned() -> dict[str, Planned]:
    return {p.name: plan_spec(p) for p in ALL_SPECS}


def docs_of(p: Planned) -> list[dict[str, Any]]:
    return [yaml.safe_load(render_manifest(m)) for m in p.section.manifests]


def exprs_of(p: Planned) -> list[str]:
    out = [r["expr"] for g in p.rule_groups()["groups"] for r in g["rules"]]
    return out


# --------------------------------------------------------------------------- PromQL


def test_service_queries_keep_their_single_series_shape() -> None:
    """KEDA triggers use the ungrouped form: one unlabelled series, scoped by namespace and model."""
    e = resolve_engine("vllm", "vllm/vllm-openai:v0.11.0", None)
    q = ServiceQueries(e, "inference", "llama")
    sel = '{model_name="llama",namespace="inference"}'
    assert q.waiting_total() == f"sum(vllm:num_requests_waiting{sel})"
    assert q.kv_cache_usage_avg() == f"avg(vllm:kv_cache_usage_perc{sel})"
    assert q.ttft() == f"histogram_quantile(0.95, sum by (le) (rate(vllm:time_to_first_token_seconds_bucket{sel}[2m])))"
    assert q.generation_tokens_per_s() == f"sum(rate(vllm:generation_tokens_total{sel}[2m]))"
    # Without the service's pods (a bare ServiceQueries) only the engine's abort share is left.
    assert q.error_ratio() == (
        'sum(rate(vllm:request_success_total{model_name="llama",namespace="inference",finished_reason="abort"}'
        f"[2m])) / clamp_min(sum(rate(vllm:request_success_total{sel}[2m])), 1e-9)")
    h = ServiceQueries(e, "inference", "llama", service_pod_regex="llama-predictor-.+")
    routes = "/v1/chat/completions|/v1/completions|/v1/responses|/v1/embeddings|/v1/score|/v1/rerank|/invocations"
    five = f'http_requests_total{{namespace="inference",status="5xx",handler=~"{routes}",pod=~"llama-predictor-.+"}}'
    every = f'http_requests_total{{namespace="inference",handler=~"{routes}",pod=~"llama-predictor-.+"}}'
    assert h.error_ratio() == f"sum(rate({five}[2m])) / clamp_min(sum(rate({every}[2m])), 1e-9)"
    g = q.grouped()
    assert g.waiting_total() == f"sum by (namespace, model_name) (vllm:num_requests_waiting{sel})"
    assert g.itl(0.99).startswith("histogram_quantile(0.99, sum by (namespace, model_name, le) (rate(")


def test_label_values_are_escaped() -> None:
    assert quote_label_value('a"b\\c\nd') == '"a\\"b\\\\c\\nd"'
    e = resolve_engine("vllm", "vllm/vllm-openai:v0.11.0", None)
    assert ServiceQueries(e, "ns", 'we"ird').sel == '{model_name="we\\"ird",namespace="ns"}'


@pytest.mark.parametrize(("image", "kv", "itl"), [
    ("vllm/vllm-openai:v0.8.5", "vllm:gpu_cache_usage_perc", "vllm:time_per_output_token_seconds"),
    ("vllm/vllm-openai:v0.10.1", "vllm:kv_cache_usage_perc", "vllm:time_per_output_token_seconds"),
    ("vllm/vllm-openai:v0.11.0", "vllm:kv_cache_usage_perc", "vllm:inter_token_latency_seconds"),
])
def test_metric_names_follow_the_pinned_version(image: str, kv: str, itl: str) -> None:
    """A release that renamed a metric gets the new name (facts.md: renames in 0.9.2 and 0.10.2)."""
    q = ServiceQueries(resolve_engine("vllm", image, None), "ns", "m").grouped()
    assert kv in q.kv_cache_usage_max()
    assert f"{itl}_bucket" in q.itl()


def test_old_version_plan_uses_old_names(planned: dict[str, Planned]) -> None:
    text = "\n".join(exprs_of(planned[OLD_KNATIVE.name]))
    assert "vllm:gpu_cache_usage_perc" in text and "vllm:time_per_output_token_seconds_bucket" in text
    assert "vllm:kv_cache_usage_perc" not in text and "inter_token_latency_seconds_bucket" not in text


def test_durations() -> None:
    assert parse_duration("15s") == 15 and parse_duration("5m") == 300 and parse_duration("1h") == 3600
    assert format_duration(120) == "2m" and format_duration(400) == "400s" and format_duration(7200) == "2h"
    with pytest.raises(ValueError):
        parse_duration("5 minutes")


def test_rate_window_widens_with_long_scrape_intervals(planned: dict[str, Planned]) -> None:
    ctx = planned[L4.name].ctx
    spec = ctx.spec.model_copy(update={"monitoring": ctx.spec.monitoring.model_copy(update={"scrape_interval": "1m"})})
    from dataclasses import replace

    assert ServiceQueries.for_service(ctx).rate_window == "2m"
    assert ServiceQueries.for_service(replace(ctx, spec=spec)).rate_window == "4m"


def _selectors(node: Any) -> list[Any]:
    import promql_parser as pp

    if isinstance(node, pp.VectorSelector):
        return [node]
    if isinstance(node, pp.MatrixSelector):
        return [node.vector_selector]
    out: list[Any] = []
    for attr in ("lhs", "rhs", "expr", "param"):
        child = getattr(node, attr, None)
        if child is not None and not isinstance(child, (str, int, float)):
            out += _selectors(child)
    for arg in getattr(node, "args", None) or []:
        out += _selectors(arg)
    return out


@pytest.mark.parametrize("spec", ALL_SPECS, ids=lambda p: p.name)
def test_every_selector_is_scoped_to_the_service(spec: Path, planned: dict[str, Planned]) -> None:
    """No bare metric: every selector pins the namespace and the model (or the predictor pods),
    or, for recorded series and `up`, the service label or the scrape job."""
    import promql_parser as pp

    p = planned[spec.name]
    ns = p.ctx.namespace
    isvcs = set(p.monitoring.isvc_names)
    models = {s.queries.model_name for s in p.monitoring.scopes}
    for expr in exprs_of(p):
        for vs in _selectors(pp.parse(expr)):
            m = {x.name: x.value for x in vs.matchers.matchers}
            name = vs.name
            ns_label = "exported_namespace" if name.startswith("DCGM_") and "exported_namespace" in m else "namespace"
            assert m.get(ns_label) == ns, f"{name} in {expr} is not scoped by namespace"
            if name.startswith("llmdeploy:"):
                assert m.get(mon.SERVICE_LABEL) in isvcs, expr
            elif name == "up":
                assert "job" in m or "pod" in m, expr
            elif name.startswith("DCGM_"):
                assert "pod" in m or "exported_pod" in m, expr
            else:
                assert m.get("model_name") in models or "pod" in m, expr


def test_tgi_is_scoped_by_pod_and_skips_what_it_does_not_export(planned: dict[str, Planned]) -> None:
    p = planned[TGI.name]
    q = p.monitoring.queries
    assert q.model_label == "" and q.pod_regex == "mistral-tgi-predictor-.+"
    assert "tgi_queue_size" in q.waiting_total()
    names = {a.name for a in p.monitoring.alerts}
    assert not names & {"LLMServiceTimeToFirstTokenHigh", "LLMServiceKVCacheNearlyFull", "LLMServicePreemptions"}
    assert {"LLMServiceQueueBackingUp", "LLMServiceErrorRatioHigh", "LLMServiceInterTokenLatencyHigh"} <= names
    assert "tgi_request_failure" in q.error_ratio() and "tgi_request_count" in q.error_ratio()
    assert any("time_to_first_token" in n for n in p.section.notes)
    dash = p.manifest("ConfigMap").values["dashboard"]
    text = [x for x in dash["panels"] if x["type"] == "text"]
    assert text and "time_to_first_token" in text[0]["options"]["content"]


# --------------------------------------------------------------------------- scraping


def test_podmonitor_scrapes_the_engine_port(planned: dict[str, Planned]) -> None:
    p = planned[L4.name]
    pm = next(d for d in docs_of(p) if d["kind"] == "PodMonitor")
    assert pm["apiVersion"] == "monitoring.coreos.com/v1"
    assert pm["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert pm["spec"]["selector"] == {"matchLabels": p.ctx.predictor_selector()}
    assert pm["spec"]["namespaceSelector"] == {"matchNames": ["inference"]}
    (ep,) = pm["spec"]["podMetricsEndpoints"]
    assert ep == {"port": "http1", "path": "/metrics", "scheme": "http", "interval": "15s"}
    assert p.monitoring.scrape.job == "inference/llama-3-1-8b"  # what the operator names the job


def test_knative_podmonitor(planned: dict[str, Planned]) -> None:
    """Knative renames the container port to user-port; its canary is a revision of the same
    InferenceService, so the same selector and queries cover it."""
    p = planned[OLD_KNATIVE.name]
    pm = next(d for d in docs_of(p) if d["kind"] == "PodMonitor")
    assert pm["spec"]["podMetricsEndpoints"][0]["port"] == "user-port"
    assert pm["spec"]["podMetricsEndpoints"][0]["interval"] == "30s"
    assert pm["spec"]["selector"] == {"matchLabels": p.ctx.predictor_selector()}
    assert p.monitoring.isvc_names == ("chat",)


def test_standard_canary_is_scraped_and_watched_on_its_own(planned: dict[str, Planned]) -> None:
    """A Standard-mode candidate runs its own InferenceService and labels its vLLM metrics with
    its own name (rollout.py): the PodMonitor selects its pods too, and it gets its own
    recording rules and alerts (inferenceservice: <candidate>), so the two can be compared."""
    p = planned["llama-3.1-8b-canary.llmdeploy.yaml"]
    mp = p.monitoring
    assert mp.isvc_names == ("llama-chat", "llama-chat-canary")
    pm = next(d for d in docs_of(p) if d["kind"] == "PodMonitor")
    sel = pm["spec"]["selector"]
    assert sel["matchLabels"] == {"component": "predictor"}
    assert sel["matchExpressions"] == [{"key": "serving.kserve.io/inferenceservice", "operator": "In",
                                        "values": ["llama-chat", "llama-chat-canary"]}]
    assert mp.scrape.pod_regex == "(llama-chat|llama-chat-canary)-predictor-.+"
    cand = mp.scope("llama-chat-canary")
    assert cand.role == "candidate" and cand.queries.model_name == "llama-chat-canary"
    assert mp.primary.queries.model_name == "llama-chat"
    assert mp.alert("LLMServiceErrorRatioHigh", "llama-chat-canary").expr.startswith(
        'llmdeploy:request_errors:ratio{inferenceservice="llama-chat-canary"')
    # up-based alerts cover every pod of the service once
    assert len([a for a in mp.alerts if a.name == "LLMServiceTargetDown"]) == 1


def test_candidate_scope_matches_the_rendered_candidate() -> None:
    """The candidate's metric name is what its rendered InferenceService passes first to
    --served-model-name and what its ScaledObject queries."""
    from llmdeploy.pipeline import analyze_all, load_specs, render_documents

    docs, _ = load_specs([str(EXAMPLES / "llama-3.1-8b-canary.llmdeploy.yaml")])
    result = render_documents(analyze_all(docs))
    assert result.ok
    objs = [yaml.safe_load(d.text) for d in result.docs]
    isvc = next(o for o in objs if o["kind"] == "InferenceService" and o["metadata"]["name"] == "llama-chat-canary")
    args = isvc["spec"]["predictor"]["model"]["args"]
    i = args.index("--served-model-name")
    assert args[i + 1] == "llama-chat-canary"
    queries = [t["metadata"]["query"] for o in objs if o["kind"] == "ScaledObject"
               and o["spec"]["scaleTargetRef"]["name"].startswith("llama-chat-canary") for t in o["spec"]["triggers"]]
    assert queries and all('model_name="llama-chat-canary"' in q for q in queries)


def test_servicemonitor_selects_its_own_metrics_service(planned: dict[str, Planned]) -> None:
    p = planned[TGI.name]
    docs = {d["kind"]: d for d in docs_of(p)}
    svc, sm = docs["Service"], docs["ServiceMonitor"]
    assert "PodMonitor" not in docs
    assert svc["spec"]["clusterIP"] == "None"
    assert svc["spec"]["selector"] == p.ctx.predictor_selector()
    port = svc["spec"]["ports"][0]
    assert port["targetPort"] == p.engine.port and port["name"] == sm["spec"]["endpoints"][0]["port"]
    assert sm["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
    assert sm["metadata"]["labels"]["prometheus"] == "main"
    assert p.monitoring.scrape.job == svc["metadata"]["name"]  # a ServiceMonitor's job is the Service name


def test_annotation_scraping_renders_no_monitor(planned: dict[str, Planned]) -> None:
    p = planned[ANNOTATIONS.name]
    kinds = [m.kind for m in p.section.manifests]
    assert kinds == ["PrometheusRule"]
    groups = p.rule_groups()["groups"]
    assert [g["name"] for g in groups] == ["llmdeploy.research.qwen.recording"]  # alerts disabled
    assert p.monitoring.scrape.up_selector == '{namespace="research",pod=~"qwen-predictor-.+"}'


# --------------------------------------------------------------------------- rules


def test_thresholds_follow_spec_and_profile(planned: dict[str, Planned]) -> None:
    h = planned[H100.name].monitoring
    assert h.alert("LLMServiceTimeToFirstTokenHigh").threshold == 3
    assert h.alert("LLMServiceInterTokenLatencyHigh").expr.endswith("> 0.08")
    assert h.alert("LLMServiceQueueBackingUp").expr.endswith("> 20")
    assert h.alert("LLMServiceKVCacheNearlyFull").expr.endswith("> 0.95")
    d = planned[DEV.name].monitoring  # dev profile: forDuration 10m, ttft 5 s, error budget 5 %
    assert d.alert("LLMServiceTimeToFirstTokenHigh").for_ == "10m"
    assert d.alert("LLMServiceTimeToFirstTokenHigh").threshold == 5
    assert d.alert("LLMServiceErrorRatioHigh").expr.endswith("> 0.05")
    old = planned[OLD_KNATIVE.name].monitoring
    assert old.alert("LLMServiceQueueBackingUp").expr.endswith("> 50")
    assert old.alert("LLMServiceErrorRatioHigh").for_ == "2m"


def test_scale_to_zero_has_no_absent_alert(planned: dict[str, Planned]) -> None:
    assert "LLMServiceTargetsMissing" not in {a.name for a in planned[DEV.name].monitoring.alerts}
    assert "LLMServiceTargetsMissing" in {a.name for a in planned[L4.name].monitoring.alerts}


def test_down_alerts_wait_for_the_model_to_load(planned: dict[str, Planned]) -> None:
    for p in planned.values():
        if not p.monitoring.alerts:
            continue
        down = p.monitoring.alert("LLMServiceTargetDown")
        assert parse_duration(down.for_) >= mon.startup_seconds(p.ctx)
        assert parse_duration(down.for_) >= parse_duration(p.ctx.spec.monitoring.alerts.for_duration)


def test_gpu_memory_alert_sits_above_the_engine_allocation(planned: dict[str, Planned]) -> None:
    """vLLM holds gpuMemoryUtilization of every GPU: 0.92 -> the alert moves to 0.97."""
    p = planned[L4.name]
    assert p.ctx.spec.runtime.gpu_memory_utilization == 0.92
    assert p.monitoring.alert("LLMServiceGPUMemoryHigh").threshold == pytest.approx(0.97)
    dev = planned[DEV.name]  # 0.80 utilization: the spec's 0.9 stands
    assert dev.monitoring.alert("LLMServiceGPUMemoryHigh").threshold == pytest.approx(0.9)


def test_dcgm_labels(planned: dict[str, Planned]) -> None:
    assert 'exported_pod=~"llama-3-1-8b-predictor-.+"' in planned[L4.name].monitoring.gpu.memory_used_ratio()
    honored = planned[OLD_KNATIVE.name].monitoring.gpu
    assert honored.honor_labels and 'pod=~"chat-predictor-.+"' in honored.memory_used_ratio()
    assert "exported_" not in honored.memory_used_ratio()
    assert GpuQueries("ns", "x-predictor-.+").utilization_ratio().count("label_replace") == 2


@pytest.mark.parametrize("spec", ALL_SPECS, ids=lambda p: p.name)
def test_rule_shape(spec: Path, planned: dict[str, Planned]) -> None:
    p = planned[spec.name]
    groups = p.rule_groups()["groups"]
    names = [g["name"] for g in groups]
    assert len(names) == len(set(names))
    records = [(r["record"], r["labels"][mon.SERVICE_LABEL]) for g in groups for r in g["rules"] if "record" in r]
    assert len(records) == len(set(records))
    for r in (r for g in groups for r in g["rules"]):
        assert r["labels"][mon.SERVICE_LABEL] in p.monitoring.isvc_names
        if "alert" in r:
            assert r["labels"]["severity"] in ("warning", "critical")
            assert set(r["annotations"]) == {"summary", "description", "runbook_url"}
            base = p.ctx.spec.monitoring.alerts.runbook_base_url
            assert r["annotations"]["runbook_url"] == f"{base}#{r['alert'].lower()}"
            assert re.fullmatch(r"\d+[smh]", r["for"])


def _github_anchor(heading: str) -> str:
    """GitHub's heading slug: lower case, punctuation dropped, spaces to dashes."""
    slug = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return slug.replace(" ", "-")


def test_every_alert_has_a_runbook(planned: dict[str, Planned]) -> None:
    """docs/monitoring.md has a heading per alert, so `<base>#<alert-lowercase>` lands on it."""
    anchors = {_github_anchor(m.group(1)) for m in re.finditer(r"^#{2,4} (.+)$", DOCS.read_text(), re.MULTILINE)}
    alerts = {a.name for p in planned.values() for a in p.monitoring.alerts}
    assert len(alerts) == 10
    missing = sorted(a for a in alerts if a.lower() not in anchors)
    assert not missing, f"docs/monitoring.md lacks runbooks for {missing}"


def test_monitoring_switches(planned: dict[str, Planned]) -> None:
    from dataclasses import replace

    p = planned[L4.name]
    spec = p.ctx.spec
    off = spec.model_copy(update={"monitoring": spec.monitoring.model_copy(update={"enabled": False})})
    assert mon.plan_monitoring(replace(p.ctx, spec=off), p.engine).manifests == []
    nodash = spec.model_copy(update={"monitoring": spec.monitoring.model_copy(
        update={"dashboard": spec.monitoring.dashboard.model_copy(update={"enabled": False})})})
    kinds = [m.kind for m in mon.plan_monitoring(replace(p.ctx, spec=nodash), p.engine).manifests]
    assert kinds == ["PodMonitor", "PrometheusRule"]


def test_plan_is_deterministic() -> None:
    a, b = plan_spec(L4), plan_spec(L4)
    assert [render_manifest(m) for m in a.section.manifests] == [render_manifest(m) for m in b.section.manifests]


# --------------------------------------------------------------------------- dashboard


@pytest.mark.parametrize("spec", ALL_SPECS, ids=lambda p: p.name)
def test_dashboard_json(spec: Path, planned: dict[str, Planned]) -> None:
    p = planned[spec.name]
    if not p.ctx.spec.monitoring.dashboard.enabled:
        assert all(m.kind != "ConfigMap" for m in p.section.manifests)
        return
    cm = p.manifest("ConfigMap")
    doc = yaml.safe_load(render_manifest(cm))
    assert doc["metadata"]["labels"]["grafana_dashboard"] == "1"
    (text,) = doc["data"].values()
    d = json.loads(text)
    assert d == cm.values["dashboard"]
    assert text == json.dumps(d, indent=2, sort_keys=True) + "\n"  # sorted, stable bytes
    assert isinstance(d["schemaVersion"], int) and d["id"] is None
    assert re.fullmatch(r"[a-z0-9-]{1,40}", d["uid"])
    assert [v["name"] for v in d["templating"]["list"]] == ["datasource", "namespace", "model"]
    ids = [x["id"] for x in d["panels"]]
    assert ids == list(range(1, len(ids) + 1))
    cells: set[tuple[int, int]] = set()
    for x in d["panels"]:
        g = x["gridPos"]
        assert g["x"] + g["w"] <= 24
        mine = {(g["x"] + i, g["y"] + j) for i in range(g["w"]) for j in range(g["h"])}
        assert not cells & mine, f"panel {x['title']} overlaps another"
        cells |= mine
        for t in x.get("targets", []):
            assert x["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            assert 'namespace="$namespace"' in t["expr"], t["expr"]
            if p.monitoring.queries.model_label and "http_requests_total" in t["expr"]:
                # The HTTP server's series carry no model label: the service's pods scope them.
                assert 'pod=~"' in t["expr"] and "model_name" not in t["expr"], t["expr"]
            elif p.monitoring.queries.model_label:
                assert 'model_name="$model"' in t["expr"] or "DCGM_" in t["expr"], t["expr"]
            assert "[2m]" not in t["expr"]  # Grafana picks the window
    titles = {x["title"] for x in d["panels"]}
    q = p.monitoring.queries
    # Every panel whose series the engine version exports (TensorRT-LLM 1.1 has no queue or
    # running gauge, no token counters and no error signal; every vLLM release has them all).
    expected = {"Request rate"}
    if q.has("generation_tokens") or q.has("request_generation_tokens"):
        expected.add("Tokens/s")
    if q.has("num_requests_waiting"):
        expected.add("Waiting requests")
    if q.has("num_requests_running"):
        expected |= {"Running requests", "Replicas"}
    if q.has_error_ratio():
        expected.add("Error ratio")
    if p.ctx.spec.runtime.engine == "vllm":
        assert len(expected) == 6
    assert expected <= titles
    if q.has("kv_cache_usage"):
        assert {"Time to first token", "Inter-token latency", "End-to-end request latency",
                "KV-cache usage"} <= titles
        assert ("Preemptions/s" in titles) == q.has("num_preemptions")
    if p.ctx.spec.monitoring.dcgm:
        assert {"GPU memory used", "GPU utilization"} <= titles


def test_dashboard_uid_is_per_service(planned: dict[str, Planned]) -> None:
    uids = [p.manifest("ConfigMap").values["dashboard"]["uid"] for p in planned.values()
            if p.ctx.spec.monitoring.dashboard.enabled]
    assert len(uids) == len(set(uids))


def test_only_dashboard_json_is_the_bare_dashboard(planned: dict[str, Planned]) -> None:
    """`render --only dashboard --format json` prints the dashboard itself, ready for a manual import."""
    from llmdeploy.emit import emit_json
    from llmdeploy.render import RenderedDoc, select

    p = planned[L4.name]
    docs = [RenderedDoc(m, render_manifest(m), "inference/llama-3-1-8b") for m in p.section.manifests]
    chosen = select(docs, ["dashboard"])
    assert len(chosen) == 1
    assert json.loads(emit_json(chosen)) == p.manifest("ConfigMap").values["dashboard"]


# --------------------------------------------------------------------------- strict schema check


def test_monitoring_objects_pass_the_crds(planned: dict[str, Planned], shared_crds: Path) -> None:
    """PodMonitor, ServiceMonitor, PrometheusRule (prometheus-operator v0.93.0 CRDs), Service and
    ConfigMap (Kubernetes schemas), strictly: nothing the API server would prune."""
    from llmdeploy.check import Checker

    checker = Checker([shared_crds / "monitoring.coreos.com"])
    docs = [d for p in planned.values() for d in docs_of(p)]
    report = checker.check(docs)
    assert not report.problems, "\n".join(map(str, report.problems))
    assert not report.unchecked
    assert {d["kind"] for d in docs} == {"PodMonitor", "ServiceMonitor", "Service", "PrometheusRule", "ConfigMap"}


# --------------------------------------------------------------------------- LD5xx rules


def _diagnose(tmp_path: Path, base: Path, patch: dict[str, Any]) -> list[tuple[str, str, str]]:
    """LD5xx diagnostics of ``base`` with ``patch`` merged in: (rule, severity, path)."""
    from llmdeploy.pipeline import analyze
    from llmdeploy.spec.loader import load_paths
    from llmdeploy.spec.validate import deep_merge

    data = deep_merge(yaml.safe_load(base.read_text()), patch)
    f = tmp_path / "spec.llmdeploy.yaml"
    f.write_text(yaml.safe_dump(data, sort_keys=False))
    docs, _ = load_paths([str(f)])
    a = analyze(docs[0])
    assert a.spec is not None, a.diagnostics
    return [(d.rule, d.severity.value, d.path) for d in a.diagnostics if d.rule.startswith("LD5")]


def test_examples_are_clean(tmp_path: Path) -> None:
    for spec in EXAMPLE_FILES:
        found = _diagnose(tmp_path, spec, {})
        problems = [d for d in found if d[1] != "info"]
        if spec.name in ("llama-3.1-8b-awq-a10g.llmdeploy.yaml", "llama-3.1-8b-llmisvc-canary.llmdeploy.yaml"):
            # True findings: maxNumSeqs auto keeps the typical requests the cache holds, and a full
            # batch on one A10G / L4 decodes above the profile's 100 ms p95 inter-token alert.
            assert problems == [("LD507", "warning", "monitoring.alerts.itlP95Seconds")], problems
            continue
        assert problems == [], spec.name
        notes = [d for d in found if d[1] == "info"]
        if "tgi" in spec.name:
            # TGI exports no TTFT histogram, KV-cache gauge or preemption counter: said once each.
            assert sorted(d[0] for d in notes) == ["LD501"] * 3, notes
        elif "trtllm" in spec.name:
            # TensorRT-LLM 1.1: no queue gauge, KV-cache gauge, preemption counter or error signal.
            assert sorted(d[0] for d in notes) == ["LD501"] * 4, notes
        elif spec.name == "deepseek-r1-h200-pd.llmdeploy.yaml":
            # vLLM 0.11.0 counts no failed NIXL transfers (0.11.1 does): no KV-transfer alert, said once.
            assert notes == [("LD501", "info", "disaggregation.connector")], notes
        else:
            assert notes == [], spec.name


def test_ld501_metric_not_exported(tmp_path: Path) -> None:
    got = _diagnose(tmp_path, TGI, {})
    assert ("LD501", "warning", "monitoring.alerts.ttftP95Seconds") in got  # set by the spec
    assert ("LD501", "info", "monitoring.alerts") in got  # KV cache and preemptions: defaults
    assert not [g for g in got if g[0] == "LD501" and g[2].endswith(("queueDepth", "errorRate"))]


def test_ld502_annotations(tmp_path: Path) -> None:
    assert ("LD502", "warning", "monitoring.scrape") in _diagnose(tmp_path, ANNOTATIONS, {})


@pytest.mark.parametrize(("patch", "path"), [
    ({"monitoring": {"alerts": {"errorRate": 1}}}, "monitoring.alerts.errorRate"),
    ({"monitoring": {"alerts": {"kvCacheUsage": 1}}}, "monitoring.alerts.kvCacheUsage"),
    ({"monitoring": {"alerts": {"ttftP95Seconds": 500}}}, "monitoring.alerts.ttftP95Seconds"),
    ({"monitoring": {"alerts": {"itlP95Seconds": 300}}}, "monitoring.alerts.itlP95Seconds"),
])
def test_ld503_alert_cannot_fire(tmp_path: Path, patch: dict[str, Any], path: str) -> None:
    assert ("LD503", "warning", path) in _diagnose(tmp_path, L4, patch)


def test_ld504_alert_below_scaling_target(tmp_path: Path) -> None:
    got = _diagnose(tmp_path, L4, {"scaling": {"metric": "ttftP95", "target": 3},
                                   "monitoring": {"alerts": {"ttftP95Seconds": 2}}})
    assert ("LD504", "warning", "monitoring.alerts.ttftP95Seconds") in got
    assert ("LD504", "warning", "monitoring.alerts.queueDepth") in _diagnose(
        tmp_path, L4, {"monitoring": {"alerts": {"queueDepth": 4}}})  # KEDA target 5 per replica


def test_ld505_gpu_memory_alert_raised(tmp_path: Path) -> None:
    got = _diagnose(tmp_path, L4, {"monitoring": {"alerts": {"gpuMemoryUsage": 0.9}}})
    assert ("LD505", "warning", "monitoring.alerts.gpuMemoryUsage") in got
    assert not [g for g in _diagnose(tmp_path, L4, {"monitoring": {"alerts": {"gpuMemoryUsage": 0.98}}})
                if g[0] == "LD505"]


def test_ld506_scrape_interval(tmp_path: Path) -> None:
    assert ("LD506", "warning", "monitoring.scrapeInterval") in _diagnose(
        tmp_path, L4, {"monitoring": {"scrapeInterval": "1m"}})


def test_ld507_itl_slo_below_decode_step(tmp_path: Path) -> None:
    """An 8B model in 16 bit on an L4 (300 GB/s) needs about 0.1 s per step at a full batch."""
    assert ("LD507", "warning", "monitoring.alerts.itlP95Seconds") in _diagnose(
        tmp_path, L4, {"monitoring": {"alerts": {"itlP95Seconds": 0.02}}})
    assert not [g for g in _diagnose(tmp_path, L4, {"monitoring": {"alerts": {"itlP95Seconds": 0.5}}})
                if g[0] == "LD507"]


def test_ld508_labels(tmp_path: Path) -> None:
    got = _diagnose(tmp_path, H100, {"monitoring": {"labels": {}, "dashboard": {"labels": {}}}})
    assert ("LD508", "info", "monitoring.labels") in got
    assert ("LD508", "warning", "monitoring.dashboard.labels") in got
