"""A real Prometheus scrapes a synthetic vLLM and evaluates the generated rules.

The test starts, on 127.0.0.1 and free ports:

* a small HTTP server (a thread) serving a vLLM ``/metrics`` page with the real metric
  names and labels of the pinned version (``model_name``, ``engine``, the histogram
  buckets of vllm/v1/metrics/loggers.py), counters growing with time, and a DCGM
  exporter page whose workload ``namespace``/``pod`` labels collide with the target's
  (so Prometheus renames them ``exported_*``, as with the dcgm-exporter chart);
* ``prometheus`` with a temporary ``--storage.tsdb.path``, a 1 s scrape and evaluation
  interval, the example's generated PrometheusRule as its rule file, and the scrape job
  prometheus-operator v0.93.0 generates for the rendered PodMonitor
  (``effective.podmonitor_scrape_config``: its relabel rules, verbatim). The targets come
  from a file-SD list carrying the ``__meta_kubernetes_*`` labels Kubernetes discovery
  would give the effective pod (``effective.pod_targets``: its labels, container and port
  names), so the series get ``job``, ``namespace``, ``pod``, ``endpoint`` through the same
  relabelling as in a cluster; plus one unreachable replica.

It then queries, through the HTTP API, the recorded series, every alert expression
(breached ones return series, the others nothing), the ``ALERTS`` series (pending) with
their rendered annotations, and the KEDA queries (from the rendered ScaledObject when the
full pipeline renders one, else from ServiceQueries). Everything is bounded (60 s) and the
processes it started are always stopped. Skips only when ``prometheus`` is not installed.
"""

from __future__ import annotations

import contextlib
import json
import math
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from monitoring_support import EXAMPLES, Planned, plan_spec, prometheus, write_yaml

SPEC = EXAMPLES / "llama-3.1-8b-l4.llmdeploy.yaml"
DEADLINE_SECONDS = 60.0
POD = "llama-3-1-8b-predictor-7c9d5f6b8-aaaaa"
DOWN_POD = "llama-3-1-8b-predictor-7c9d5f6b8-bbbbb"

# vllm/v1/metrics/loggers.py (PrometheusStatLogger) bucket boundaries.
TTFT_BUCKETS = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
                20.0, 40.0, 80.0, 160.0, 640.0, 2560.0]
ITL_BUCKETS = [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0,
               40.0, 80.0]
E2E_BUCKETS = [0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0,
               480.0, 960.0, 1920.0, 7680.0]

# The synthetic load (per second) and what it must trigger with the example's thresholds
# (production profile: queue 20, KV 95 %, TTFT 2 s, ITL 0.1 s, errors 1 %, preemptions 0.5/s;
# GPU memory 97 % = gpuMemoryUtilization 0.92 + 5 points).
WAITING, RUNNING, KV = 25, 7, 0.5
OK_PER_S, ABORT_PER_S = 9.0, 1.0  # finished requests by reason
# HTTP answers per second on the chat route: 5xx / all = 0.1; /v1/models polls are not counted.
HTTP_2XX, HTTP_4XX, HTTP_5XX, MODELS_POLL = 8.0, 1.0, 1.0, 50.0
PROMPT_PER_S, GENERATION_PER_S, PREEMPT_PER_S = 500.0, 250.0, 0.1
TTFT_OBS = {0.25: 6.0, 0.5: 4.0}  # observations per second by bucket: p95 inside (0.25, 0.5]
ITL_OBS = {0.2: 10.0}  # all in (0.15, 0.2]: p95 above the 0.1 s SLO
E2E_OBS = {5.0: 8.0, 10.0: 2.0}
GPU_USED_MIB, GPU_TOTAL_MIB = 22 * 1024 - 300, 22 * 1024  # ~98.7 % of an L4's framebuffer
FIRING = {"LLMServiceQueueBackingUp", "LLMServiceInterTokenLatencyHigh", "LLMServiceErrorRatioHigh",
          "LLMServiceGPUMemoryHigh", "LLMServiceTargetDown"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def histogram_lines(name: str, labels: str, bounds: list[float], obs: dict[float, float], t: float) -> list[str]:
    lines, total, total_sum = [], 0.0, 0.0
    for b in bounds:
        total += obs.get(b, 0.0) * t
        lines.append(f'{name}_bucket{{{labels},le="{b}"}} {total}')
    lines.append(f'{name}_bucket{{{labels},le="+Inf"}} {total}')
    total_sum = sum(b * n * t for b, n in obs.items())
    lines += [f"{name}_sum{{{labels}}} {total_sum}", f"{name}_count{{{labels}}} {total}"]
    return [f"# TYPE {name} histogram", *lines]


class FakeExporters:
    """vLLM /metrics and DCGM /dcgm pages; counters grow linearly from the start time."""

    def __init__(self, p: Planned) -> None:
        self.q = p.monitoring.queries
        self.model = p.ctx.served_model_name
        self.start = time.monotonic()

    def vllm(self) -> str:
        t = time.monotonic() - self.start + 1.0
        m = self.q.m
        lab = f'engine="0",model_name="{self.model}"'
        lines = [
            f"# TYPE {m('num_requests_running')} gauge", f"{m('num_requests_running')}{{{lab}}} {RUNNING}",
            f"# TYPE {m('num_requests_waiting')} gauge", f"{m('num_requests_waiting')}{{{lab}}} {WAITING}",
            f"# TYPE {m('kv_cache_usage')} gauge", f"{m('kv_cache_usage')}{{{lab}}} {KV}",
            f"# TYPE {m('prompt_tokens').removesuffix('_total')} counter",
            f"{m('prompt_tokens')}{{{lab}}} {PROMPT_PER_S * t}",
            f"# TYPE {m('generation_tokens').removesuffix('_total')} counter",
            f"{m('generation_tokens')}{{{lab}}} {GENERATION_PER_S * t}",
            f"# TYPE {m('num_preemptions').removesuffix('_total')} counter",
            f"{m('num_preemptions')}{{{lab}}} {PREEMPT_PER_S * t}",
            f"# TYPE {m('request_success').removesuffix('_total')} counter",
        ]
        for reason, per_s in (("stop", OK_PER_S), ("length", 0.0), ("abort", ABORT_PER_S)):
            lines.append(f'{m("request_success")}{{{lab},finished_reason="{reason}"}} {per_s * t}')
        lines.append("# TYPE http_requests counter")  # no model_name/engine labels (the HTTP middleware)
        for handler, status, per_s in (("/v1/chat/completions", "2xx", HTTP_2XX),
                                       ("/v1/chat/completions", "4xx", HTTP_4XX),
                                       ("/v1/chat/completions", "5xx", HTTP_5XX), ("/v1/models", "2xx", MODELS_POLL)):
            lines.append(f'http_requests_total{{handler="{handler}",method="POST",status="{status}"}} {per_s * t}')
        lines += histogram_lines(m("time_to_first_token"), lab, TTFT_BUCKETS, TTFT_OBS, t)
        lines += histogram_lines(m("inter_token_latency"), lab, ITL_BUCKETS, ITL_OBS, t)
        lines += histogram_lines(m("e2e_request_latency"), lab, E2E_BUCKETS, E2E_OBS, t)
        # Another model in the same namespace: must never leak into this service's series.
        other = 'engine="0",model_name="another-model"'
        lines += [f"{m('num_requests_waiting')}{{{other}}} 1000", f"{m('kv_cache_usage')}{{{other}}} 1"]
        return "\n".join(lines) + "\n"

    def dcgm(self) -> str:
        lab = (f'gpu="0",UUID="GPU-5f1c",device="nvidia0",modelName="NVIDIA L4",Hostname="gpu-node-1",'
               f'namespace="inference",pod="{POD}",container="kserve-container"')
        return "\n".join([
            "# TYPE DCGM_FI_DEV_FB_USED gauge", f"DCGM_FI_DEV_FB_USED{{{lab}}} {GPU_USED_MIB}",
            "# TYPE DCGM_FI_DEV_FB_FREE gauge", f"DCGM_FI_DEV_FB_FREE{{{lab}}} {GPU_TOTAL_MIB - GPU_USED_MIB}",
            "# TYPE DCGM_FI_DEV_GPU_UTIL gauge", f"DCGM_FI_DEV_GPU_UTIL{{{lab}}} 87",
        ]) + "\n"


def serve(pages: dict[str, Callable[[], str]]) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            page = pages.get(self.path)
            if page is None:
                self.send_error(404)
                return
            body = page().encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="fake-vllm", daemon=True).start()
    return server


@dataclass
class Live:
    planned: Planned
    url: str
    log: Path
    deadline: float

    def api(self, path: str, **params: str) -> Any:
        q = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}{path}?{q}", timeout=5) as r:
            body = json.loads(r.read().decode())
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = self.api("/api/v1/query", query=expr)
        assert data["resultType"] == "vector", data
        return list(data["result"])

    def wait_for(self, what: str, check: Callable[[], Any]) -> Any:
        """Poll ``check`` until it returns an answer (not None, False or empty; 0 is an answer).

        Prometheus scrapes and evaluates every second; the first sample arrives about
        5.5 s after start (validation.md §3).
        """
        last: Any = None
        while time.monotonic() < self.deadline:
            try:
                last = check()
                if last is not None and last is not False and not (isinstance(last, (list, set, dict)) and not last):
                    return last
            except (AssertionError, OSError, KeyError, ValueError) as exc:
                last = exc
            time.sleep(0.25)
        pytest.fail(f"timed out waiting for {what} (last: {last!r})\nprometheus log:\n{self.log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    exe = prometheus()
    p = plan_spec(SPEC)
    assert p.monitoring.scrape.job == "inference/llama-3-1-8b"
    tmp = tmp_path_factory.mktemp("live-prometheus")
    fake = FakeExporters(p)
    server = serve({"/metrics": fake.vllm, "/dcgm": fake.dcgm})
    target = f"127.0.0.1:{server.server_address[1]}"
    rules = write_yaml(tmp / "rules.yaml", p.rule_groups())

    def relabel(**labels: str) -> list[dict[str, str]]:
        return [{"target_label": k, "replacement": v} for k, v in labels.items()]

    # The scrape job prometheus-operator writes for the rendered PodMonitor, fed with the
    # targets Kubernetes SD would discover for the effective pod (two replicas, one down).
    from llmdeploy import effective

    objs = rendered_objects()
    (pm,) = [o for o in objs if o["kind"] == "PodMonitor"]
    (w,) = effective.workloads(objs)
    job = effective.podmonitor_scrape_config(pm)
    discovered = []
    for pod, address in ((POD, target), (DOWN_POD, f"127.0.0.1:{free_port()}")):
        for t in effective.pod_targets(w, pod_name=pod):
            if t.get("__meta_kubernetes_pod_container_port_number"):
                discovered.append({"targets": [address], "labels": {k: v for k, v in t.items() if k != "__address__"}})
    dcgm = {"job_name": "dcgm", "metrics_path": "/dcgm", "static_configs": [{"targets": [target]}],
            "relabel_configs": relabel(namespace="gpu-operator", pod="nvidia-dcgm-exporter-q8w7e",
                                       container="nvidia-dcgm-exporter")}
    try:
        with running_prometheus(exe, tmp, p, rules, job, discovered, [dcgm]) as live:
            yield live
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def running_prometheus(exe: str, tmp: Path, planned: Planned, rules: Path, job: dict[str, Any],
                       discovered: list[dict[str, Any]], extra_scrape: Sequence[dict[str, Any]] = ()) -> Iterator[Live]:
    """A real Prometheus on 127.0.0.1 scraping ``job`` (prometheus-operator's scrape config of
    the rendered monitor) over file-SD ``discovered`` targets, plus ``extra_scrape`` jobs, with
    ``rules`` loaded; ready when yielded, stopped on exit."""
    sd = tmp / "targets.json"
    sd.write_text(json.dumps(discovered), encoding="utf-8")
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"},
        "rule_files": [str(rules)],
        "scrape_configs": [
            {"job_name": job["job_name"], "metrics_path": job["metrics_path"], "scheme": job["scheme"],
             "file_sd_configs": [{"files": [str(sd)], "refresh_interval": "1s"}],
             "relabel_configs": job["relabel_configs"]},
            *extra_scrape,
        ],
    }
    cfg = write_yaml(tmp / "prometheus.yml", config)
    port = free_port()
    log = tmp / "prometheus.log"
    log_fh = log.open("w")
    proc = subprocess.Popen([exe, f"--config.file={cfg}", f"--storage.tsdb.path={tmp / 'data'}",
                             f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
                            stdout=log_fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        live = Live(planned, f"http://127.0.0.1:{port}", log, time.monotonic() + DEADLINE_SECONDS)

        def ready() -> bool:
            if proc.poll() is not None:
                pytest.fail(f"prometheus exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            with urllib.request.urlopen(f"{live.url}/-/ready", timeout=2) as r:
                return r.status == 200

        live.wait_for("/-/ready", ready)
        yield live
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log_fh.close()


def one_value(live: Live, expr: str) -> float | None:
    result = live.query(expr)
    if len(result) != 1:
        return None
    return float(result[0]["value"][1])


def quantile(q: float, bounds: list[float], obs: dict[float, float]) -> float:
    """histogram_quantile on buckets filled at a constant rate (the rate's scale does not matter)."""
    cum, total = [], 0.0
    for b in bounds:
        total += obs.get(b, 0.0)
        cum.append((b, total))
    rank = q * total
    for i, (b, c) in enumerate(cum):
        if c >= rank:
            start, below = (cum[i - 1] if i else (0.0, 0.0))
            return start + (b - start) * ((rank - below) / (c - below))
    raise AssertionError("rank above the last finite bucket")


@pytest.mark.slow
def test_targets_are_scraped(live: Live) -> None:
    job = live.planned.monitoring.scrape.job

    def both() -> dict[str, float]:
        got = {r["metric"]["pod"]: float(r["value"][1]) for r in live.query(f'up{{job="{job}"}}')}
        return got if len(got) == 2 else {}

    assert live.wait_for("both targets", both) == {POD: 1.0, DOWN_POD: 0.0}
    # The labels prometheus-operator's relabelling gives a PodMonitor's series.
    (series,) = live.query(f'up{{job="{job}",pod="{POD}"}}')
    labels = series["metric"]
    assert labels["namespace"] == "inference" and labels["container"] == "kserve-container"
    assert labels["endpoint"] == "http1" and labels["serving_kserve_io_inferenceservice"] == "llama-3-1-8b"
    assert not any(k.startswith("__") for k in labels if k != "__name__")


@pytest.mark.slow
def test_recording_rules(live: Live) -> None:
    from llmdeploy.plan import monitoring as m

    sel = live.planned.monitoring.recorded_selector

    def recorded(name: str) -> Callable[[], float | None]:
        return lambda: one_value(live, name + sel)

    assert live.wait_for("waiting", recorded(m.REC_WAITING)) == WAITING  # the other model's 1000 is not in
    assert live.wait_for("running", recorded(m.REC_RUNNING)) == RUNNING
    assert live.wait_for("replicas", recorded(m.REC_REPLICAS)) == 1
    assert live.wait_for("kv max", recorded(m.REC_KV_MAX)) == KV
    ttft = live.wait_for("ttft p95", recorded(m.REC_TTFT.format(q=95)))
    assert ttft == pytest.approx(quantile(0.95, TTFT_BUCKETS, TTFT_OBS), rel=1e-6)
    itl = live.wait_for("itl p95", recorded(m.REC_ITL.format(q=95)))
    assert itl == pytest.approx(quantile(0.95, ITL_BUCKETS, ITL_OBS), rel=1e-6)
    e2e = live.wait_for("e2e p50", recorded(m.REC_E2E.format(q=50)))
    assert e2e == pytest.approx(quantile(0.5, E2E_BUCKETS, E2E_OBS), rel=1e-6)
    ratio = live.wait_for("error ratio", recorded(m.REC_ERROR_RATIO))
    assert ratio == pytest.approx(HTTP_5XX / (HTTP_2XX + HTTP_4XX + HTTP_5XX), rel=1e-6)
    # Rates over a 2m window that holds only seconds of samples are extrapolated to part of
    # the window, the same way for every series scraped together: their ratios are exact.
    prompt = live.wait_for("prompt tokens", recorded(m.REC_PROMPT_TOKENS))
    generation = live.wait_for("generation tokens", recorded(m.REC_GENERATION_TOKENS))
    assert prompt > 0 and prompt / generation == pytest.approx(PROMPT_PER_S / GENERATION_PER_S, rel=1e-3)
    requests = live.wait_for("requests", recorded(m.REC_REQUESTS))
    assert requests / generation == pytest.approx((OK_PER_S + ABORT_PER_S) / GENERATION_PER_S, rel=1e-3)
    gpu = live.wait_for("gpu memory", lambda: live.query(m.REC_GPU_MEMORY + sel))
    assert len(gpu) == 1
    assert gpu[0]["metric"]["namespace"] == "inference" and gpu[0]["metric"]["pod"] == POD  # exported_* renamed
    assert float(gpu[0]["value"][1]) == pytest.approx(GPU_USED_MIB / GPU_TOTAL_MIB)


@pytest.mark.slow
def test_alert_expressions_and_pending_alerts(live: Live) -> None:
    alerts = live.planned.monitoring.alerts
    assert {a.name for a in alerts} >= FIRING

    def pending() -> set[str]:
        got = {r["metric"]["alertname"] for r in live.query('ALERTS{inferenceservice="llama-3-1-8b"}')}
        return got if got >= FIRING else set()

    assert live.wait_for("the breached alerts to be pending", pending) == FIRING
    for a in alerts:
        result = live.query(a.expr)
        assert bool(result) == (a.name in FIRING), f"{a.name}: {a.expr} -> {result}"
    # Annotations render with the live values, without template errors.
    active = live.api("/api/v1/alerts")["alerts"]
    by_name = {x["labels"]["alertname"]: x for x in active if x["labels"].get("inferenceservice") == "llama-3-1-8b"}
    assert "25 requests wait" in by_name["LLMServiceQueueBackingUp"]["annotations"]["description"]
    assert "10% of the requests" in by_name["LLMServiceErrorRatioHigh"]["annotations"]["description"]
    assert by_name["LLMServiceTargetDown"]["labels"]["pod"] == DOWN_POD
    assert DOWN_POD in by_name["LLMServiceTargetDown"]["annotations"]["description"]
    for x in by_name.values():
        assert x["state"] == "pending"
        for text in x["annotations"].values():
            assert "error expanding" not in text and "error executing" not in text, text
            assert "<no value>" not in text and "{{" not in text, text


@pytest.mark.slow
def test_rules_evaluate_without_errors(live: Live) -> None:
    def all_evaluated() -> list[dict[str, Any]]:
        rules = [r for g in live.api("/api/v1/rules")["groups"] for r in g["rules"]]
        return rules if all(r.get("lastEvaluation", "").startswith("2") and r["health"] != "unknown"
                            for r in rules) else []

    rules = live.wait_for("every rule evaluated", all_evaluated)
    bad = [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"]
    assert not bad
    assert len(rules) == sum(len(g["rules"]) for g in live.planned.rule_groups()["groups"])


def rendered_objects() -> list[dict[str, Any]]:
    """Every document ``llmdeploy render`` gives the example, parsed back."""
    from llmdeploy.pipeline import analyze_all, load_specs, render_documents

    docs, _ = load_specs([str(SPEC)])
    result = render_documents(analyze_all(docs))
    assert result.ok, result.diagnostics
    return [yaml_load(d.text) for d in result.docs]


def rendered_keda_queries() -> list[str]:
    """Prometheus trigger queries of the ScaledObject ``llmdeploy render`` gives the example."""
    objs = [o for o in rendered_objects() if o["kind"] == "ScaledObject"]
    return [t["metadata"]["query"] for o in objs for t in o["spec"]["triggers"] if t["type"] == "prometheus"]


def yaml_load(text: str) -> Any:
    import yaml

    return yaml.safe_load(text)


@pytest.mark.slow
def test_keda_queries_return_one_value(live: Live) -> None:
    """Every KEDA trigger query (the rendered ScaledObject's, and the ServiceQueries a trigger
    may use) answers with exactly one finite sample for this service."""
    from llmdeploy.promql import ServiceQueries

    rendered = rendered_keda_queries()
    assert rendered, "the example renders no KEDA prometheus trigger"
    q = ServiceQueries.for_service(live.planned.ctx)
    queries = rendered + [q.waiting_total(), q.running_total(), q.kv_cache_usage_avg(), q.ttft(), q.itl(),
                          q.generation_tokens_per_s()]
    for expr in queries:
        value = live.wait_for(f"KEDA query {expr}", lambda e=expr: one_value(live, e))
        assert math.isfinite(value), expr
    assert one_value(live, q.waiting_total()) == WAITING
    assert one_value(live, q.replicas()) == 1
