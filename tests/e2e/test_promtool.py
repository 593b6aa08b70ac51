"""promtool on the generated rules.

* ``promtool check rules`` on the PrometheusRule ``spec`` of every example and test spec
  (extracted to a plain rule file), and on the rules ``llmdeploy render`` really prints;
* ``promtool test rules`` with unit tests generated from the plan, so thresholds, ``for``
  durations, metric names and labels follow the spec: every alert fires on synthetic
  series that breach it (with its exact labels and rendered annotations), is not firing
  before its ``for`` has elapsed, and stays quiet on series that do not breach it; every
  recording rule gives the expected value on normal traffic, and series of another model
  or namespace never leak in.

Skips (with the reason) only where promtool cannot be found.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from monitoring_support import (
    ALL_SPECS,
    EXAMPLE_FILES,
    Planned,
    plan_spec,
    rule_file,
    run_promtool,
    write_yaml,
)

STEP = 60  # seconds between synthetic samples (the test group's interval)
GPU_FB_MIB = 81920  # an 80 GiB GPU, in MiB as DCGM reports it


# --------------------------------------------------------------------------- Prometheus semantics


def bucket_quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    """Prometheus' histogram_quantile on (upper bound, cumulative count) pairs (promql/quantile.go)."""
    buckets = sorted(buckets)
    observations = buckets[-1][1]
    rank = q * observations
    # sort.Search over all but the +Inf bucket: the first bucket holding the rank
    b = next((i for i in range(len(buckets) - 1) if buckets[i][1] >= rank), len(buckets) - 1)
    if b == len(buckets) - 1:
        return buckets[-2][0]
    start, end, count = 0.0, buckets[b][0], buckets[b][1]
    if b > 0:
        start = buckets[b - 1][0]
        count -= buckets[b - 1][1]
        rank -= buckets[b - 1][1]
    return start + (end - start) * (rank / count)


def expand(template: str, value: float, labels: dict[str, str]) -> str:
    """Render the alert annotation templates llmdeploy uses, as Prometheus does."""

    def one(m: re.Match[str]) -> str:
        expr = m.group(1).strip()
        if expr == '$value | printf "%.4g"':
            return f"{value:.4g}"
        if expr == "$value | humanizePercentage":  # fmt.Sprintf("%.4g%%", v*100) in template.go
            return f"{value * 100:.4g}%"
        if expr.startswith("$labels."):
            return labels[expr[len("$labels."):]]
        raise AssertionError(f"the test does not know how to expand {{{{ {expr} }}}}")

    return re.sub(r"{{(.*?)}}", one, template)


def num(v: float) -> str:
    return repr(float(v))


def const(v: float, n: int) -> str:
    return f"{num(v)}+0x{n}"


def counter(per_step: float, n: int) -> str:
    return f"0+{num(per_step)}x{n}"


def series(name: str, labels: dict[str, str]) -> str:
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return f"{name}{{{inner}}}"


def minutes(seconds: float) -> str:
    return f"{math.ceil(seconds / 60)}m"


# --------------------------------------------------------------------------- synthetic service


class Synth:
    """Series and labels of one InferenceService of a planned service, as Prometheus stores them."""

    def __init__(self, p: Planned, scope: Any | None = None, k: int = 0) -> None:
        self.p = p
        self.mp = p.monitoring
        self.scope = scope or self.mp.primary
        self.q = self.scope.queries
        self.ctx = p.ctx
        self.ns = self.ctx.namespace
        self.k = k  # keeps pods and instances of several scopes apart
        knative = self.ctx.spec.deployment.mode == "knative"
        mid = "-predictor-00001-deployment-" if knative else "-predictor-"
        if self.ctx.spec.deployment.target == "llmInferenceService":  # Deployment <name>-kserve
            mid = "-kserve-"
        self.pods = [f"{self.scope.isvc}{mid}7c9d5f6b8-{chr(ord('a') + 2 * k + i) * 5}" for i in range(2)]
        if self.ctx.spec.deployment.target == "leaderWorkerSet":  # the leaders of groups 0 and 1
            self.pods = [f"{self.scope.isvc}-{i}" for i in range(2)]
            if self.ctx.spec.disaggregation is not None:  # a DisaggregatedSet's decode leaders (effective/disagg.py)
                self.pods = [f"{self.scope.isvc}-0-5d4c3b2a1-decode-{i}" for i in range(2)]
        self.job = self.mp.scrape.job or "kubernetes-pods"
        self.window = self.q.rate_window

    # ---- label sets
    def instance(self, i: int) -> str:
        return f"10.0.{self.k}.{i + 1}:{self.p.engine.port}"

    def engine_labels(self, i: int, **over: str) -> dict[str, str]:
        labels = {"namespace": self.ns, "pod": self.pods[i], "instance": self.instance(i),
                  "job": self.job, "container": "kserve-container"}
        if self.q.model_label:
            labels[self.q.model_label] = self.q.model_name
        if "engine" in self.q.engine.metric_labels:
            labels["engine"] = "0"
        labels.update(over)
        return labels

    def foreign_labels(self) -> dict[str, str]:
        """Another service's series: other namespace and model, same metric names."""
        labels = self.engine_labels(0, namespace="elsewhere", pod="other-predictor-5b4c3d2e1-zzzzz")
        if self.q.model_label:
            labels[self.q.model_label] = "another-model"
        return labels

    def recorded_labels(self) -> dict[str, str]:
        labels = {k: v for k, v in self.engine_labels(0).items() if k in self.q.scope_labels}
        labels.update(self.scope.rule_labels)
        return labels

    def up_labels(self, i: int) -> dict[str, str]:
        return {"job": self.job, "namespace": self.ns, "pod": self.pods[i], "instance": self.instance(i)}

    def dcgm_labels(self, i: int, gpu: str = "0") -> dict[str, str]:
        g = self.scope.gpu
        assert g is not None
        labels = {"gpu": gpu, "UUID": f"GPU-{self.k}{i}{gpu}", "device": f"nvidia{gpu}",
                  "modelName": "NVIDIA H100 80GB HBM3", "Hostname": f"gpu-node-{self.k}{i}",
                  "job": "gpu-operator/nvidia-dcgm-exporter", "instance": f"10.1.{self.k}.{i}:9400"}
        if g.honor_labels:
            labels.update({"namespace": self.ns, "pod": self.pods[i], "container": "kserve-container"})
        else:
            labels.update({"exported_namespace": self.ns, "exported_pod": self.pods[i],
                           "exported_container": "kserve-container", "namespace": "gpu-operator",
                           "pod": f"nvidia-dcgm-exporter-{self.k}{i}q8w7e", "container": "nvidia-dcgm-exporter"})
        return labels

    # ---- series builders
    def gauge(self, logical: str, values: list[float], n: int) -> list[dict[str, str]]:
        name = self.q.m(logical)
        return [{"series": series(name, self.engine_labels(i)), "values": const(v, n)} for i, v in enumerate(values)]

    def counter(self, name: str, per_step: list[float], n: int, **over: str) -> list[dict[str, str]]:
        return [{"series": series(name, self.engine_labels(i, **over)), "values": counter(v, n)}
                for i, v in enumerate(per_step)]

    def histogram(self, logical: str, cumulative: list[tuple[float, float]], n: int, pods: int = 1) -> list[dict[str, str]]:
        """Bucket counters growing by ``cumulative`` [(le, count per step)] on each of ``pods`` pods."""
        base = self.q.m(logical) + "_bucket"
        out = []
        for i in range(pods):
            for le, inc in cumulative:
                label = "+Inf" if math.isinf(le) else num(le)
                out.append({"series": series(base, self.engine_labels(i, le=label)), "values": counter(inc, n)})
        return out

    def outcomes(self, good: float, bad: float, n: int) -> list[dict[str, str]]:
        """Finished requests: ``good`` successful and ``bad`` failed per step."""
        if self.q.has("http_requests") and self.q.service_pod_regex:
            # vLLM ≥ 0.8.5: the HTTP middleware's counter (no model_name/engine labels);
            # /v1/models polls and 4xx answers must not count as server errors.
            name = self.q.m("http_requests")
            out = []
            for handler, status, per_step in (("/v1/chat/completions", "2xx", good),
                                              ("/v1/chat/completions", "5xx", bad), ("/v1/models", "2xx", 100.0)):
                labels = {k: v for k, v in self.engine_labels(0).items()
                          if k not in (self.q.model_label, "engine")}
                labels.update(handler=handler, method="POST", status=status)
                out.append({"series": series(name, labels), "values": counter(per_step, n)})
            # The engine still counts every finished request (requests/s): 5xx ones end as aborts.
            rs = self.q.m("request_success")
            return out + (self.counter(rs, [good], n, finished_reason="stop")
                          + self.counter(rs, [bad], n, finished_reason="abort"))
        if self.q.has_finish_reason():
            name = self.q.m("request_success")
            return (self.counter(name, [good], n, finished_reason="stop")
                    + self.counter(name, [0], n, finished_reason="length")
                    + self.counter(name, [bad], n, finished_reason="abort"))
        if not (self.q.has("request_failure") and self.q.has("request_count")):
            # TensorRT-LLM: one counter of finished requests, no outcome label, nothing to divide errors by.
            return self.counter(self.q.m("request_success"), [good + bad], n)
        return (self.counter(self.q.m("request_failure"), [bad], n)
                + self.counter(self.q.m("request_count"), [good + bad], n))

    def up(self, values: list[float], n: int) -> list[dict[str, str]]:
        return [{"series": series("up", self.up_labels(i)), "values": const(v, n)} for i, v in enumerate(values)]

    def gpu_memory(self, ratios: list[float], n: int) -> list[dict[str, str]]:
        out = []
        for i, r in enumerate(ratios):
            used = round(r * GPU_FB_MIB)
            out.append({"series": series("DCGM_FI_DEV_FB_USED", self.dcgm_labels(i)), "values": const(used, n)})
            out.append({"series": series("DCGM_FI_DEV_FB_FREE", self.dcgm_labels(i)),
                        "values": const(GPU_FB_MIB - used, n)})
        return out

    def used_ratio(self, r: float) -> float:
        used = round(r * GPU_FB_MIB)
        return used / (used + (GPU_FB_MIB - used))


# --------------------------------------------------------------------------- alert scenarios


def latency_buckets(slo: float, breach: bool) -> list[tuple[float, float]]:
    """Buckets at slo/2, 2*slo, +Inf; 60 observations per step all below slo/2 or all in (slo/2, 2*slo]."""
    return [(slo / 2, 0.0 if breach else 60.0), (slo * 2, 60.0), (math.inf, 60.0)]


def scenario(s: Synth, alert: Any, breach: bool, n: int) -> tuple[list[dict[str, str]], float, dict[str, str]]:
    """Input series, the alert's expected value and labels (without alertname/severity)."""
    thr = alert.threshold
    rec = s.recorded_labels()
    sig = alert.signal
    if sig == "queue":
        per_pod = thr * 0.6 + 1 if breach else thr * 0.2
        return s.gauge("num_requests_waiting", [per_pod, per_pod], n), 2 * per_pod, rec
    if sig == "kv_cache":
        hot = (1 + thr) / 2 if breach else thr / 2
        return s.gauge("kv_cache_usage", [hot, thr / 2], n), hot, rec
    if sig in ("ttft", "itl"):
        logical = "time_to_first_token" if sig == "ttft" else "inter_token_latency"
        b = latency_buckets(thr, breach)
        return s.histogram(logical, b, n), bucket_quantile(0.95, b), rec
    if sig == "errors":
        total = 10000.0
        bad = float(max(1, round(total * min(0.9, 2 * thr)))) if breach else float(math.floor(total * thr / 2))
        return s.outcomes(total - bad, bad, n), bad / total, rec
    if sig == "preemptions":
        rate = 2 * thr if breach else thr / 2
        return s.counter(s.q.m("num_preemptions"), [rate * STEP], n), rate, rec
    if sig == "target_down":
        return s.up([0, 1] if breach else [1, 1], n), 0.0, s.up_labels(0)
    if sig == "no_replica":
        labels = {k: v for k, v in s.up_labels(0).items() if k in s.mp.scrape.group_labels}
        return s.up([0, 0] if breach else [0, 1], n), 0.0, labels
    if sig == "targets_missing":
        other = [{"series": series("up", {"job": "some-other-job", "namespace": s.ns, "pod": "x", "instance": "x:1"}),
                  "values": const(1, n)}]
        labels = {"namespace": s.ns}
        if s.mp.scrape.job is not None:
            labels["job"] = s.mp.scrape.job
        return (other if breach else other + s.up([1], n)), 1.0, labels
    if sig == "gpu_memory":
        r = (1 + thr) / 2 if breach else thr / 2
        labels = {"namespace": s.ns, "pod": s.pods[0], "gpu": "0", **s.scope.rule_labels}
        return s.gpu_memory([r, thr / 2], n), s.used_ratio(r), labels
    raise AssertionError(f"no synthetic scenario for alert signal {sig!r}: add one to this test")


def alert_tests(p: Planned) -> list[dict[str, Any]]:
    from llmdeploy.promql import parse_duration

    groups = []
    for a in p.monitoring.alerts:
        s = Synth(p, p.monitoring.scope(a.isvc))
        window = parse_duration(s.window)
        f = parse_duration(a.for_)
        eval_s = f + window + 2 * STEP
        n = math.ceil(eval_s / STEP) + 2
        series_in, value, labels = scenario(s, a, True, n)
        exp_labels = {**labels, "severity": a.severity, "inferenceservice": a.isvc}
        annotations = {
            "summary": expand(a.summary, value, exp_labels),
            "description": expand(a.description, value, exp_labels),
            "runbook_url": p.monitoring.runbook_url(a.name),
        }
        checks: list[dict[str, Any]] = [{"eval_time": minutes(eval_s), "alertname": a.name,
                                         "exp_alerts": [{"exp_labels": exp_labels, "exp_annotations": annotations}]}]
        if f >= 2 * STEP:  # not firing before `for` has elapsed
            checks.append({"eval_time": minutes(f - STEP), "alertname": a.name, "exp_alerts": []})
        if a.signal == "no_replica":  # all targets down: only NoReplicaUp, not TargetDown too
            checks.append({"eval_time": minutes(eval_s), "alertname": "LLMServiceTargetDown", "exp_alerts": []})
        groups.append({"interval": f"{STEP}s", "input_series": series_in, "alert_rule_test": checks})
        quiet, _, _ = scenario(s, a, False, n)
        groups.append({"interval": f"{STEP}s", "input_series": quiet,
                       "alert_rule_test": [{"eval_time": minutes(eval_s), "alertname": a.name, "exp_alerts": []}]})
    return groups


# --------------------------------------------------------------------------- recording scenario


def recording_test(p: Planned) -> dict[str, Any]:
    """Normal traffic on every pod of every InferenceService plus another service's series;
    each recorded value checked."""
    from llmdeploy.plan import monitoring as m

    n = 12
    inputs: list[dict[str, str]] = []
    expected: dict[str, list[tuple[dict[str, str], float]]] = {}
    for k, scope in enumerate(p.monitoring.scopes):
        s = Synth(p, scope, k)
        rec = s.recorded_labels()
        have = scope.have
        # the candidate gets other numbers than the primary, so a mix-up shows
        w, r_, kv = [3.0 + k, 4.0 + k], [6.0 + k, 7.0 + k], [0.25, 0.75 - 0.25 * k]

        def expect(record: str, value: float, labels: dict[str, str] | None = None, rec: dict[str, str] = rec) -> None:
            expected.setdefault(record, []).append((labels or rec, value))

        foreign = s.foreign_labels()
        if "queue" in have:
            inputs += s.gauge("num_requests_waiting", w, n)
            if k == 0:
                inputs.append({"series": series(s.q.m("num_requests_waiting"), foreign), "values": const(100, n)})
            expect(m.REC_WAITING, sum(w))
        if "running" in have:
            inputs += s.gauge("num_requests_running", r_, n)
            if k == 0:
                inputs.append({"series": series(s.q.m("num_requests_running"), foreign), "values": const(100, n)})
            expect(m.REC_RUNNING, sum(r_))
            expect(m.REC_REPLICAS, 2.0)
        if "kv_cache" in have:
            inputs += s.gauge("kv_cache_usage", kv, n)
            if k == 0:
                inputs.append({"series": series(s.q.m("kv_cache_usage"), foreign), "values": const(1, n)})
            expect(m.REC_KV_AVG, sum(kv) / len(kv))
            expect(m.REC_KV_MAX, max(kv))
        # Rates at a 60 s step over a 2m window are the per-step increment / 60; multiples of 15
        # keep every rate (and so every quantile input) an exact binary fraction.
        buckets = [(0.1, 15.0), (0.5, 30.0 + 15 * k), (1.0, 45.0), (2.5, 60.0), (math.inf, 60.0)]
        for signal, logical, tmpl in (("ttft", "time_to_first_token", m.REC_TTFT),
                                      ("itl", "inter_token_latency", m.REC_ITL),
                                      ("e2e", "e2e_request_latency", m.REC_E2E)):
            if signal in have:
                inputs += s.histogram(logical, buckets, n, pods=2)
                rates = [(le, 2 * c / STEP) for le, c in buckets]
                for qq in m.QUANTILES:
                    expect(tmpl.format(q=qq), bucket_quantile(qq / 100, rates))
        if "errors" in have or "requests" in have:
            inputs += s.outcomes(45.0, 15.0 * (k + 1), n)
            if "requests" in have:
                expect(m.REC_REQUESTS, (45.0 + 15.0 * (k + 1)) / STEP)
            if "errors" in have:
                expect(m.REC_ERROR_RATIO, 15.0 * (k + 1) / (45.0 + 15.0 * (k + 1)))
        for signal, kind, per_step in (("prompt_tokens", "prompt", 600.0), ("generation_tokens", "generation", 300.0)):
            if signal not in have:
                continue
            record = m.REC_PROMPT_TOKENS if kind == "prompt" else m.REC_GENERATION_TOKENS
            if s.q.has(f"{kind}_tokens"):
                inputs += s.counter(s.q.m(f"{kind}_tokens"), [per_step], n)
            else:  # TGI: the _sum of the per-request histogram
                inputs += s.counter(s.q.m(f"request_{kind}_tokens") + "_sum", [per_step], n)
            expect(record, per_step / STEP)
        if "preemptions" in have:
            inputs += s.counter(s.q.m("num_preemptions"), [30.0], n)
            expect(m.REC_PREEMPTIONS, 0.5)
        if scope.gpu is not None:
            inputs += s.gpu_memory([0.75], n)
            inputs += [{"series": series("DCGM_FI_DEV_GPU_UTIL", s.dcgm_labels(0)), "values": const(50, n)}]
            gl = {"namespace": s.ns, "pod": s.pods[0], "gpu": "0", **scope.rule_labels}
            expect(m.REC_GPU_MEMORY, s.used_ratio(0.75), gl)
            expect(m.REC_GPU_UTIL, 0.5, gl)
    recorded = {r.record for r in p.monitoring.recording}
    assert set(expected) == recorded, f"recording rules without a check: {sorted(recorded - set(expected))}"
    assert sum(map(len, expected.values())) == len(p.monitoring.recording)
    tests = [{"expr": record, "eval_time": "10m",
              "exp_samples": [{"labels": series(record, labels), "value": value} for labels, value in samples]}
             for record, samples in sorted(expected.items())]
    return {"interval": f"{STEP}s", "input_series": inputs, "promql_expr_test": tests}


def unit_test_file(p: Planned, rules: Path) -> dict[str, Any]:
    return {"rule_files": [rules.name], "evaluation_interval": "1m",
            "tests": [recording_test(p), *alert_tests(p)]}


# --------------------------------------------------------------------------- tests


@pytest.mark.parametrize("spec", ALL_SPECS, ids=lambda p: p.name)
def test_check_rules(spec: Path, tmp_path: Path) -> None:
    """Every generated PrometheusRule passes `promtool check rules` (lint fatal: no duplicate rules)."""
    p = plan_spec(spec)
    rules = write_yaml(tmp_path / "rules.yaml", p.rule_groups())
    result = run_promtool("check", "rules", "--lint=all", "--lint-fatal", str(rules))
    assert result.returncode == 0, result.stdout + result.stderr
    count = sum(len(g["rules"]) for g in p.rule_groups()["groups"])
    assert f"SUCCESS: {count} rules found" in result.stdout


@pytest.mark.parametrize("spec", ALL_SPECS, ids=lambda p: p.name)
def test_alerts_fire_and_stay_quiet(spec: Path, tmp_path: Path) -> None:
    """`promtool test rules` on tests generated from the plan: each alert fires on breaching
    series with its labels and annotations, stays quiet otherwise; recorded values are exact."""
    p = plan_spec(spec)
    rules = write_yaml(tmp_path / "rules.yaml", p.rule_groups())
    tests = write_yaml(tmp_path / "tests.yaml", unit_test_file(p, rules))
    result = run_promtool("test", "rules", str(tests), cwd=tmp_path)
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}\n(test file: {tests})"


def test_every_example_has_alerts_under_test() -> None:
    """The examples cover every alert llmdeploy can render, so each is proven by promtool above."""
    names = set()
    for spec in EXAMPLE_FILES:
        names |= {a.name for a in plan_spec(spec).monitoring.alerts}
    assert names >= {
        "LLMServiceQueueBackingUp", "LLMServiceKVCacheNearlyFull", "LLMServiceTimeToFirstTokenHigh",
        "LLMServiceInterTokenLatencyHigh", "LLMServiceErrorRatioHigh", "LLMServicePreemptions",
        "LLMServiceTargetDown", "LLMServiceNoReplicaUp", "LLMServiceTargetsMissing", "LLMServiceGPUMemoryHigh",
    }


def test_rendered_examples_pass_promtool(tmp_path: Path, shared_crds: Path) -> None:
    """`llmdeploy render` of every example: its PrometheusRules pass `promtool check rules`, and
    every PromQL query of its KEDA ScaledObjects parses (wrapped as recording rules)."""
    from typer.testing import CliRunner

    from llmdeploy.cli import app

    for spec in EXAMPLE_FILES:
        result = CliRunner().invoke(app, ["render", str(spec), "--crds", str(shared_crds)], catch_exceptions=False)
        assert result.exit_code == 0, f"{spec.name}: {result.stderr}"
        docs = [d for d in yaml.safe_load_all(result.stdout) if d]
        rules = [d for d in docs if d["kind"] == "PrometheusRule"]
        assert rules, f"{spec.name}: no PrometheusRule"
        for i, rule in enumerate(rules):  # the engine's, and the endpoint picker's (llmInferenceService)
            f = write_yaml(tmp_path / f"{spec.stem}.rules{i}.yaml", rule_file(rule["spec"]))
            out = run_promtool("check", "rules", str(f))
            assert out.returncode == 0, f"{spec.name}: {out.stdout}{out.stderr}"
        queries = [t["metadata"]["query"] for d in docs if d["kind"] == "ScaledObject"
                   for t in d["spec"]["triggers"] if t.get("type") == "prometheus"]
        if queries:
            wrapped = {"groups": [{"name": "keda", "rules": [
                {"record": f"keda:trigger_{i}:value", "expr": q} for i, q in enumerate(queries)]}]}
            g = write_yaml(tmp_path / f"{spec.stem}.keda.yaml", wrapped)
            out = run_promtool("check", "rules", str(g))
            assert out.returncode == 0, f"{spec.name} KEDA queries: {out.stdout}{out.stderr}"
