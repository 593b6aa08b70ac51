"""A real Prometheus scrapes a synthetic SGLang and evaluates the rules rendered for it.

The same harness as test_live_prometheus.py (the scrape job prometheus-operator writes for
the rendered PodMonitor, file-SD targets with the effective pod's labels, the rendered
PrometheusRule as rule file, 1 s scrape/evaluation), fed with a SGLang 0.5.12 ``/metrics``
page: the names and label sets of sglang/srt/observability/metrics_collector.py in the
0.5.12 wheel (tokenizer series with ``model_name`` only; scheduler gauges with
``engine_type``, ``model_name``, ``pp_rank``, ``tp_rank``) and its default histogram
buckets. It checks the recording rules, the KEDA queries of the rendered ScaledObject and
that every rule evaluates. Skips only when ``prometheus`` is not installed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from monitoring_support import EXAMPLES, Planned, plan_spec, prometheus, write_yaml
from test_live_prometheus import (
    Live,
    histogram_lines,
    one_value,
    quantile,
    running_prometheus,
    serve,
    yaml_load,
)

SPEC = EXAMPLES / "qwen3-8b-sglang.llmdeploy.yaml"
POD = "qwen3-8b-sglang-predictor-6b7f9c8d4-aaaaa"

# sglang/srt/observability/metrics_collector.py (0.5.12 wheel) default buckets.
TTFT_BUCKETS = [0.1, 0.2, 0.4, 0.6, 0.8, 1, 2, 4, 6, 8, 10, 20, 40, 60, 80, 100, 200, 400]
ITL_BUCKETS = [0.002, 0.004, 0.006, 0.008, 0.010, 0.015, 0.020, 0.025, 0.030, 0.035, 0.040, 0.060, 0.080,
               0.100, 0.200, 0.400, 0.600, 0.800, 1.000, 2.000, 4.000, 6.000, 8.000]
E2E_BUCKETS = [0.1, 0.2, 0.4, 0.6, 0.8, 1, 2, 4, 6, 8, 10, 20, 40, 60, 80, 100, 200, 400, 600, 1200, 1800, 2400]

WAITING, RUNNING, TOKEN_USAGE = 12, 30, 0.6
REQUESTS_PER_S, ABORTED_PER_S = 10.0, 0.5
PROMPT_PER_S, GENERATION_PER_S, CACHED_PER_S = 800.0, 400.0, 200.0
TTFT_OBS = {0.2: 6.0, 0.4: 4.0}
ITL_OBS = {0.025: 10.0}
E2E_OBS = {4: 8.0, 6: 2.0}


class FakeSGLang:
    """A SGLang /metrics page; counters grow linearly from the start time."""

    def __init__(self, p: Planned) -> None:
        self.q = p.monitoring.queries
        self.model = p.ctx.served_model_name
        self.start = time.monotonic()

    def page(self) -> str:
        t = time.monotonic() - self.start + 1.0
        m = self.q.m
        sched = f'engine_type="unified",model_name="{self.model}",pp_rank="0",tp_rank="0"'
        tok = f'model_name="{self.model}"'
        lines = [
            f"# TYPE {m('num_requests_running')} gauge", f"{m('num_requests_running')}{{{sched}}} {RUNNING}",
            f"# TYPE {m('num_requests_waiting')} gauge", f"{m('num_requests_waiting')}{{{sched}}} {WAITING}",
            f"# TYPE {m('kv_cache_usage')} gauge", f"{m('kv_cache_usage')}{{{sched}}} {TOKEN_USAGE}",
            f"# TYPE {m('prefix_cache_hit_rate')} gauge", f"{m('prefix_cache_hit_rate')}{{{sched}}} 0.25",
        ]
        for logical, per_s in (("prompt_tokens", PROMPT_PER_S), ("generation_tokens", GENERATION_PER_S),
                               ("prefix_cache_hits", CACHED_PER_S), ("request_count", REQUESTS_PER_S),
                               ("request_failure", ABORTED_PER_S)):
            name = m(logical)
            lines += [f"# TYPE {name.removesuffix('_total')} counter", f"{name}{{{tok}}} {per_s * t}"]
        lines += histogram_lines(m("time_to_first_token"), tok, TTFT_BUCKETS, TTFT_OBS, t)
        lines += histogram_lines(m("inter_token_latency"), tok, ITL_BUCKETS, ITL_OBS, t)
        lines += histogram_lines(m("e2e_request_latency"), tok, E2E_BUCKETS, E2E_OBS, t)
        other = 'engine_type="unified",model_name="another-model",pp_rank="0",tp_rank="0"'
        lines += [f"{m('num_requests_waiting')}{{{other}}} 1000"]
        return "\n".join(lines) + "\n"


def rendered_objects() -> list[dict[str, Any]]:
    from llmdeploy.pipeline import analyze_all, load_specs, render_documents

    docs, _ = load_specs([str(SPEC)])
    result = render_documents(analyze_all(docs))
    assert result.ok, result.diagnostics
    return [yaml_load(d.text) for d in result.docs]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    exe = prometheus()
    p = plan_spec(SPEC)
    assert p.ctx.engine.engine == "sglang"
    tmp = tmp_path_factory.mktemp("live-prometheus-sglang")
    fake = FakeSGLang(p)
    server = serve({"/metrics": fake.page})
    target = f"127.0.0.1:{server.server_address[1]}"
    rules = write_yaml(tmp / "rules.yaml", p.rule_groups())

    from llmdeploy import effective

    objs = rendered_objects()
    (pm,) = [o for o in objs if o["kind"] == "PodMonitor"]
    (w,) = effective.workloads(objs)
    job = effective.podmonitor_scrape_config(pm)
    discovered = []
    for t in effective.pod_targets(w, pod_name=POD):
        if t.get("__meta_kubernetes_pod_container_port_number"):
            discovered.append({"targets": [target], "labels": {k: v for k, v in t.items() if k != "__address__"}})
    try:
        with running_prometheus(exe, tmp, p, rules, job, discovered) as live:
            yield live
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.slow
def test_sglang_recording_rules(live: Live) -> None:
    from llmdeploy.plan import monitoring as m

    sel = live.planned.monitoring.recorded_selector

    def recorded(name: str) -> Callable[[], float | None]:
        return lambda: one_value(live, name + sel)

    assert live.wait_for("waiting", recorded(m.REC_WAITING)) == WAITING  # the other model's 1000 is not in
    assert live.wait_for("running", recorded(m.REC_RUNNING)) == RUNNING
    assert live.wait_for("kv max", recorded(m.REC_KV_MAX)) == TOKEN_USAGE
    ttft = live.wait_for("ttft p95", recorded(m.REC_TTFT.format(q=95)))
    assert ttft == pytest.approx(quantile(0.95, TTFT_BUCKETS, TTFT_OBS), rel=1e-6)
    itl = live.wait_for("itl p95", recorded(m.REC_ITL.format(q=95)))
    assert itl == pytest.approx(quantile(0.95, ITL_BUCKETS, ITL_OBS), rel=1e-6)
    prompt = live.wait_for("prompt tokens", recorded(m.REC_PROMPT_TOKENS))
    generation = live.wait_for("generation tokens", recorded(m.REC_GENERATION_TOKENS))
    assert prompt / generation == pytest.approx(PROMPT_PER_S / GENERATION_PER_S, rel=1e-3)
    requests = live.wait_for("requests", recorded(m.REC_REQUESTS))
    assert requests / generation == pytest.approx(REQUESTS_PER_S / GENERATION_PER_S, rel=1e-3)
    ratio = live.wait_for("error ratio", recorded(m.REC_ERROR_RATIO))
    assert ratio == pytest.approx(ABORTED_PER_S / REQUESTS_PER_S, rel=1e-3)


@pytest.mark.slow
def test_sglang_keda_queries_return_one_value(live: Live) -> None:
    queries = [t["metadata"]["query"] for o in rendered_objects() if o["kind"] == "ScaledObject"
               for t in o["spec"]["triggers"] if t["type"] == "prometheus"]
    assert queries and all("sglang:" in q for q in queries)
    for expr in queries:
        value = live.wait_for(f"KEDA query {expr}", lambda e=expr: one_value(live, e))
        assert math.isfinite(value), expr
    assert one_value(live, queries[0]) == WAITING


@pytest.mark.slow
def test_sglang_rules_evaluate_without_errors(live: Live) -> None:
    def all_evaluated() -> list[dict[str, Any]]:
        rules = [r for g in live.api("/api/v1/rules")["groups"] for r in g["rules"]]
        return rules if all(r.get("lastEvaluation", "").startswith("2") and r["health"] != "unknown"
                            for r in rules) else []

    rules = live.wait_for("every rule evaluated", all_evaluated)
    assert not [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"]
