"""A real Prometheus scrapes a synthetic TensorRT-LLM ``trtllm-serve`` and evaluates the rules.

The same harness as ``test_live_prometheus.py`` (the vLLM case), for the engine whose
series differ in every way that matters to scoping: the page is served at
``/prometheus/metrics`` (the rendered PodMonitor's path), the names are TensorRT-LLM
1.2's five ``trtllm_*`` request series (tensorrt_llm/metrics/collector.py: histograms with
its own buckets and a success counter; 1.2 has no queue or KV-cache gauge), and the
``model_name``/``engine_type`` labels say ``undefined`` (NVIDIA/TensorRT-LLM#5785's sample
output), so every query is scoped by the predictor pods. A second service's pod in the same
namespace serves a page with very slow first tokens; it must never leak into this service's
recorded series or its KEDA (TTFT p95) query. Skips only when ``prometheus`` is not installed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from monitoring_support import MONITORING_DATA, plan_spec, prometheus, write_yaml
from test_live_prometheus import (
    Live,
    histogram_lines,
    one_value,
    quantile,
    running_prometheus,
    serve,
)

SPEC = MONITORING_DATA / "trtllm-1-2-ttft.llmdeploy.yaml"
POD = "trtllm-ttft-predictor-6d5c4b7f9-aaaaa"
OTHER_POD = "another-svc-predictor-5b4c3d2e1-zzzzz"  # same namespace, another service

# tensorrt_llm/metrics/collector.py default buckets (trtllm@050f80d).
TTFT_BUCKETS = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
                20.0, 40.0, 80.0, 160.0, 640.0, 2560.0]
E2E_BUCKETS = [0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0,
               480.0, 960.0, 1920.0, 7680.0]
TTFT_OBS = {0.25: 6.0, 0.5: 4.0}
SLOW_TTFT_OBS = {80.0: 10.0}  # the other service's page
E2E_OBS = {5.0: 8.0, 10.0: 2.0}
SUCCESS_PER_S = 5.0


class FakeTrtllm:
    """trtllm-serve 1.2's /prometheus/metrics; counters grow linearly from the start time."""

    def __init__(self, ttft: dict[float, float]) -> None:
        self.ttft = ttft
        self.start = time.monotonic()

    def page(self) -> str:
        t = time.monotonic() - self.start + 1.0
        lab = 'engine_type="undefined",model_name="undefined"'
        lines = [
            "# TYPE trtllm_request_success counter",
            f'trtllm_request_success_total{{{lab},finished_reason="stop"}} {SUCCESS_PER_S * t}',
        ]
        lines += histogram_lines("trtllm_time_to_first_token_seconds", lab, TTFT_BUCKETS, self.ttft, t)
        lines += histogram_lines("trtllm_e2e_request_latency_seconds", lab, E2E_BUCKETS, E2E_OBS, t)
        return "\n".join(lines) + "\n"


def rendered_objects() -> list[dict[str, Any]]:
    from llmdeploy.pipeline import analyze_all, load_specs, render_documents

    docs, _ = load_specs([str(SPEC)])
    result = render_documents(analyze_all(docs))
    assert result.ok, result.diagnostics
    return [yaml.safe_load(d.text) for d in result.docs]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    exe = prometheus()
    p = plan_spec(SPEC)
    tmp = tmp_path_factory.mktemp("live-prometheus-trtllm")
    ours, other = FakeTrtllm(TTFT_OBS), FakeTrtllm(SLOW_TTFT_OBS)
    server = serve({"/prometheus/metrics": ours.page, "/other/prometheus/metrics": other.page})
    target = f"127.0.0.1:{server.server_address[1]}"
    rules = write_yaml(tmp / "rules.yaml", p.rule_groups())

    from llmdeploy import effective

    objs = rendered_objects()
    (pm,) = [o for o in objs if o["kind"] == "PodMonitor"]
    (w,) = effective.workloads(objs)
    job = effective.podmonitor_scrape_config(pm)
    assert job["metrics_path"] == "/prometheus/metrics"
    discovered = []
    for pod in (POD, OTHER_POD):
        for t in effective.pod_targets(w, pod_name=pod):
            if t.get("__meta_kubernetes_pod_container_port_number"):
                labels = {k: v for k, v in t.items() if k != "__address__"}
                if pod == OTHER_POD:  # its own page (the same relabelling keeps it: same namespace)
                    labels["__metrics_path__"] = "/other/prometheus/metrics"
                discovered.append({"targets": [target], "labels": labels})
    try:
        with running_prometheus(exe, tmp, p, rules, job, discovered) as live:
            yield live
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.slow
def test_the_trtllm_page_is_scraped_at_its_path(live: Live) -> None:
    job = live.planned.monitoring.scrape.job

    def both() -> dict[str, float]:
        got = {r["metric"]["pod"]: float(r["value"][1]) for r in live.query(f'up{{job="{job}"}}')}
        return got if len(got) == 2 else {}

    assert live.wait_for("both targets", both) == {POD: 1.0, OTHER_POD: 1.0}


@pytest.mark.slow
def test_recording_rules_see_only_this_service(live: Live) -> None:
    from llmdeploy.plan import monitoring as m

    sel = live.planned.monitoring.recorded_selector

    def recorded(name: str) -> Any:
        return lambda: one_value(live, name + sel)

    # No queue, running or KV-cache gauge in 1.2: those recording rules are not rendered.
    names = {r["record"] for g in live.planned.rule_groups()["groups"] for r in g["rules"] if "record" in r}
    assert m.REC_WAITING not in names and m.REC_KV_MAX not in names
    ttft = live.wait_for("ttft p95", recorded(m.REC_TTFT.format(q=95)))  # the other pod's 80 s is not in
    assert ttft == pytest.approx(quantile(0.95, TTFT_BUCKETS, TTFT_OBS), rel=1e-6)
    e2e = live.wait_for("e2e p50", recorded(m.REC_E2E.format(q=50)))
    assert e2e == pytest.approx(quantile(0.5, E2E_BUCKETS, E2E_OBS), rel=1e-6)


@pytest.mark.slow
def test_keda_query_and_rules_evaluate(live: Live) -> None:
    objs = [o for o in rendered_objects() if o["kind"] == "ScaledObject"]
    queries = [t["metadata"]["query"] for o in objs for t in o["spec"]["triggers"] if t["type"] == "prometheus"]
    assert queries and all("trtllm_time_to_first_token_seconds_bucket" in q for q in queries)
    expected = 1000 * quantile(0.95, TTFT_BUCKETS, TTFT_OBS)  # the trigger is in milliseconds
    for expr in queries:
        got = live.wait_for(f"KEDA query {expr}", lambda e=expr: one_value(live, e))
        assert got == pytest.approx(expected, rel=1e-6)

    def all_evaluated() -> list[dict[str, Any]]:
        rules = [r for g in live.api("/api/v1/rules")["groups"] for r in g["rules"]]
        return rules if all(r.get("lastEvaluation", "").startswith("2") and r["health"] != "unknown"
                            for r in rules) else []

    rules = live.wait_for("every rule evaluated", all_evaluated)
    assert not [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"]
