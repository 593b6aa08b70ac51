"""The effective workload (what KServe, Knative and prometheus-operator make of the output)
and the LD6xx runtime-truth rules over it, on every example and on adversarial variants.

Each adversarial variant mutates the rendered objects the way a real defect would (a
named startup port under Knative, a lost USER, a query on a label the scrape never
attaches...) and asserts that the matching rule fires; the examples themselves must pass
every rule. The upstream behaviour each rule encodes is cited in its docstring
(src/llmdeploy/rules/runtime.py, src/llmdeploy/effective/).
"""

from __future__ import annotations

import copy
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import EXAMPLES, ROOT

from llmdeploy import effective as E

ALL_EXAMPLES = sorted(EXAMPLES.glob("*.llmdeploy.yaml"))
MONITORING_SPECS = sorted((ROOT / "tests" / "data" / "monitoring").glob("*.llmdeploy.yaml"))


def render(path: Path | str, text: str | None = None, tmp: Path | None = None) -> Any:
    from llmdeploy.pipeline import analyze_all, load_specs, render_documents

    if text is not None:
        assert tmp is not None
        path = tmp / "spec.llmdeploy.yaml"
        path.write_text(text, encoding="utf-8")
    docs, diags = load_specs([str(path)])
    assert not diags, diags
    analyses = analyze_all(docs)
    return analyses, render_documents(analyses)


def effective_findings(path: Path, mutate: Callable[[list[dict[str, Any]]], None]) -> list[Any]:
    """Render ``path``, apply ``mutate`` to its objects, and run the effective rules again."""
    from llmdeploy.rules import EffectiveContext, load_all, run_rules

    analyses, result = render(path)
    assert result.ok and result.docs, result.diagnostics
    objects = copy.deepcopy([d.obj for d in result.docs])
    mutate(objects)
    load_all()
    a = analyses[0]
    found = E.workloads(objects)
    out = []
    for w in found:
        out += run_rules(EffectiveContext(a.validated, a.resolved, w, objects, found), stage="effective")
    return out


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o.get("kind") == kind]


def rules_of(diags: list[Any]) -> set[str]:
    return {d.rule for d in diags}


# --------------------------------------------------------------------------- the model


def test_kserve_merges_args_env_and_probes_like_the_controller() -> None:
    runtime = {"name": "kserve-container", "image": "vllm/vllm-openai:v0.11.0", "args": ["--model=/mnt/models"],
               "env": [{"name": "A", "value": "runtime"}, {"name": "B", "value": "keep"}],
               "ports": [{"name": "http1", "containerPort": 8080}],
               "readinessProbe": {"httpGet": {"path": "/health", "port": "http1"}, "periodSeconds": 5}}
    isvc = {"modelFormat": {"name": "vLLM"}, "runtime": "rt", "storageUri": "hf://a/b",
            "args": ["--max-model-len=8192"], "env": [{"name": "A", "value": "isvc"}, {"name": "C", "value": "new"}],
            "readinessProbe": {"periodSeconds": 10}}
    merged = E.merge_container(runtime, isvc)
    assert merged["args"] == ["--model=/mnt/models", "--max-model-len=8192"]  # concatenated, runtime first
    assert merged["env"] == [{"name": "A", "value": "isvc"}, {"name": "B", "value": "keep"},
                             {"name": "C", "value": "new"}]
    assert merged["readinessProbe"] == {"httpGet": {"path": "/health", "port": "http1"}, "periodSeconds": 10}
    assert "storageUri" not in merged and merged["name"] == "kserve-container"


def test_standard_mode_pod_names_labels_and_model_volume() -> None:
    _, r = render(EXAMPLES / "llama-3.1-8b-l4.llmdeploy.yaml")
    (w,) = E.workloads([d.obj for d in r.docs])
    assert (w.mode, w.workload_kind, w.workload_name) == ("Standard", "Deployment", "llama-3-1-8b-predictor")
    assert w.pod.labels["app"] == "isvc.llama-3-1-8b-predictor"
    assert w.pod.labels["serving.kserve.io/inferenceservice"] == "llama-3-1-8b"
    assert w.pod.labels["component"] == "predictor"
    c = w.pod.container("kserve-container")
    assert c is not None and c.arg_value("--port") == "8080" and c.arg_value("--model") == "/mnt/models"
    assert "/mnt/models" in c.volume_mounts and "kserve-provision-location" in w.pod.volumes
    assert c.env_value("USER") and c.env_value("HOME")
    # The runtime's spec.annotations reach the pod (predictor.go buildObjectMeta).
    assert w.pod.annotations["prometheus.kserve.io/port"] == "8080"
    assert w.storage.scheme == "hf" and w.storage.env == (("HF_TOKEN", "hf-token/HF_TOKEN"),)


def test_knative_rewrites_ports_probes_lifecycle_and_grace() -> None:
    _, r = render(EXAMPLES / "qwen2.5-7b-knative.llmdeploy.yaml")
    (w,) = E.workloads([d.obj for d in r.docs])
    assert (w.mode, w.workload_kind, w.workload_name) == ("Knative", "Revision", "qwen-7b-predictor-00001")
    c = w.pod.container("kserve-container")
    assert c is not None
    assert [(p.name, p.number) for p in c.ports] == [("user-port", 8080)]
    assert {p.kind for p in c.probes} == {"startup", "liveness"}  # readiness moved to the queue-proxy
    assert all(p.port == 8080 for p in c.probes)
    assert c.raw["lifecycle"] == {"preStop": {"httpGet": {"port": 8022, "path": "/wait-for-drain"}}}
    assert w.pod.raw["terminationGracePeriodSeconds"] == 600  # the revision's timeoutSeconds
    q = w.pod.container("queue-proxy")
    assert q is not None and {p.number for p in q.ports} == {8012, 8112, 9090, 9091}
    assert w.pod.labels["app"] == "qwen-7b-predictor-00001"
    assert not any(k.startswith("autoscaling.knative.dev/") for k in w.pod.annotations)


def test_knative_named_liveness_port_becomes_numeric_but_startup_does_not() -> None:
    pod = {"containers": [{"name": "kserve-container", "ports": [{"name": "http1", "containerPort": 9000}],
                           "startupProbe": {"httpGet": {"port": "http1"}},
                           "livenessProbe": {"httpGet": {"port": "http1"}},
                           "readinessProbe": {"tcpSocket": {"port": "http1"}}}]}
    from llmdeploy.effective.knative import knative_rewrite

    out, _, _ = knative_rewrite(pod, {}, {}, "x-predictor")
    c = out["containers"][0]
    assert c["ports"] == [{"name": "user-port", "containerPort": 9000}]
    assert c["livenessProbe"]["httpGet"]["port"] == 9000
    assert c["startupProbe"]["httpGet"]["port"] == "http1"  # left as written: unresolvable
    assert "readinessProbe" not in c


# --------------------------------------------------------------------------- scrape labels


def test_podmonitor_relabelling_gives_the_operator_labels() -> None:
    _, r = render(EXAMPLES / "llama-3.1-8b-l4.llmdeploy.yaml")
    objs = [d.obj for d in r.docs]
    (w,) = E.workloads(objs)
    (pm,) = by_kind(objs, "PodMonitor")
    cfg = E.podmonitor_scrape_config(pm)
    assert cfg["job_name"] == "podMonitor/inference/llama-3-1-8b/0"
    (labels,) = E.series_labels(w, pm, pod_name="llama-3-1-8b-predictor-5d9f-abcde")
    assert labels == {"job": "inference/llama-3-1-8b", "namespace": "inference", "container": "kserve-container",
                      "pod": "llama-3-1-8b-predictor-5d9f-abcde", "endpoint": "http1",
                      "serving_kserve_io_inferenceservice": "llama-3-1-8b", "instance": "10.0.0.10:8080"}


def test_relabel_engine_follows_prometheus_semantics() -> None:
    base = {"a": "x", "b": "y"}
    assert E.relabel(base, [{"action": "keep", "source_labels": ["a"], "regex": "x"}]) == base
    assert E.relabel(base, [{"action": "keep", "source_labels": ["a"], "regex": "x.+"}]) is None  # anchored
    assert E.relabel(base, [{"action": "drop", "source_labels": ["a", "b"], "regex": "x;y"}]) is None
    got = E.relabel(base, [{"source_labels": ["a", "b"], "regex": "(.*);(.*)", "target_label": "c",
                            "replacement": "${2}-$1"}])
    assert got is not None and got["c"] == "y-x"
    got = E.relabel(base, [{"source_labels": ["missing"], "target_label": "a"}])  # empty result deletes
    assert got == {"b": "y"}


def test_selectors_read_promql() -> None:
    expr = ('sum by (namespace, model_name) (rate(vllm:request_success_total{model_name="m",'
            'namespace="n",finished_reason="abort"}[2m])) / clamp_min(sum(rate(up{job="a/b"}[5m])), 1e-9) '
            '> on (namespace) group_left (pod) label_replace(x, "dst", "v}", "", "")')
    sels = E.selectors(expr)
    assert [s.metric for s in sels] == ["vllm:request_success_total", "up", "x"]
    assert sels[0].value("finished_reason") == "abort" and sels[1].value("job") == "a/b"


# --------------------------------------------------------------------------- rules on the examples


@pytest.mark.parametrize("path", ALL_EXAMPLES + MONITORING_SPECS, ids=lambda p: p.name)
def test_every_example_passes_the_runtime_rules(path: Path) -> None:
    _, r = render(path)
    assert r.ok, [str(d) for d in r.diagnostics if d.is_error]
    assert not [d for d in r.diagnostics if d.rule.startswith("LD6")]
    assert r.workloads, "no InferenceService seen by the effective stage"


def _engine(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return by_kind(objects, "InferenceService")[0]["spec"]["predictor"]["model"]


def test_ld601_named_startup_port_under_knative(tmp_path: Path) -> None:
    def named(objects: list[dict[str, Any]]) -> None:
        _engine(objects)["startupProbe"]["httpGet"]["port"] = "http1"

    diags = effective_findings(EXAMPLES / "qwen2.5-7b-knative.llmdeploy.yaml", named)
    assert "LD601" in rules_of(diags)
    assert any("user-port" in d.message for d in diags)


def test_ld601_engine_moved_to_another_port() -> None:
    def moved(objects: list[dict[str, Any]]) -> None:
        _engine(objects)["args"].append("--port=9000")

    diags = effective_findings(EXAMPLES / "llama-3.1-8b-l4.llmdeploy.yaml", moved)
    assert any(d.rule == "LD601" and "9000" in d.message for d in diags)


def test_ld602_non_root_without_user_crashes() -> None:
    def no_user(objects: list[dict[str, Any]]) -> None:
        env = _engine(objects)["env"]
        env[:] = [e for e in env if e["name"] not in ("USER", "LOGNAME")]

    diags = effective_findings(EXAMPLES / "llama-3.1-8b-l4.llmdeploy.yaml", no_user)
    assert any(d.rule == "LD602" and "getpass" in d.message for d in diags)


def test_ld603_label_too_long_after_kserve_prefix() -> None:
    def long_name(objects: list[dict[str, Any]]) -> None:
        isvc = by_kind(objects, "InferenceService")[0]
        isvc["metadata"]["name"] = "a" * 50

    diags = effective_findings(EXAMPLES / "llama-3.1-8b-l4.llmdeploy.yaml", long_name)
    assert any(d.rule == "LD603" and "isvc." in d.message for d in diags)


def test_ld604_knative_policy_without_the_activator() -> None:
    def no_activator(objects: list[dict[str, Any]]) -> None:
        (np,) = by_kind(objects, "NetworkPolicy")
        for rule in np["spec"]["ingress"]:
            rule["from"] = [p for p in rule["from"]
                            if (p.get("namespaceSelector") or {}).get("matchLabels", {}).get(
                                "kubernetes.io/metadata.name") != "knative-serving"]
        np["spec"]["ingress"] = [r for r in np["spec"]["ingress"] if r["from"]]

    diags = effective_findings(EXAMPLES / "qwen2.5-7b-knative.llmdeploy.yaml", no_activator)
    messages = [d.message for d in diags if d.rule == "LD604"]
    assert any("activator" in m for m in messages) and any("autoscaler" in m for m in messages)


def test_ld604_standard_policy_without_prometheus() -> None:
    def no_prometheus(objects: list[dict[str, Any]]) -> None:
        (np,) = by_kind(objects, "NetworkPolicy")
        np["spec"]["ingress"] = np["spec"]["ingress"][:1]

    diags = effective_findings(EXAMPLES / "llama-3.1-8b-l4.llmdeploy.yaml", no_prometheus)
    assert any(d.rule == "LD604" and "Prometheus" in d.message for d in diags)


@pytest.mark.parametrize(("what", "mutate", "expect"), [
    ("keda model label", lambda o: by_kind(o, "ScaledObject")[0]["spec"]["triggers"][0]["metadata"].update(
        query='sum(vllm:num_requests_waiting{model_name="someone-else",namespace="inference"})'), "matches none"),
    ("metric of another version", lambda o: by_kind(o, "ScaledObject")[0]["spec"]["triggers"][0]["metadata"].update(
        query='avg(vllm:gpu_cache_usage_perc{model_name="llama-3-1-8b",namespace="inference"})'), "exports no metric"),
    ("label the scrape never attaches", lambda o: by_kind(o, "ScaledObject")[0]["spec"]["triggers"][0][
        "metadata"].update(query='sum(vllm:num_requests_waiting{service="x",namespace="inference"})'), "has no label"),
    ("podmonitor on a renamed port", lambda o: by_kind(o, "PodMonitor")[0]["spec"]["podMetricsEndpoints"][0].update(
        port="metrics"), "scrapes nothing"),
])
def test_ld605_queries_that_would_return_nothing(what: str, mutate: Callable[[list[dict[str, Any]]], None],
                                                  expect: str) -> None:
    diags = effective_findings(EXAMPLES / "llama-3.1-8b-l4.llmdeploy.yaml", mutate)
    assert any(d.rule == "LD605" and expect in d.message for d in diags), (what, [d.message for d in diags])


def test_ld605_dashboard_and_drain_script_are_checked() -> None:
    import json

    def bad_panel(objects: list[dict[str, Any]]) -> None:
        cm = next(o for o in by_kind(objects, "ConfigMap") if "dashboard" in o["metadata"]["name"])
        key = next(iter(cm["data"]))
        dash = json.loads(cm["data"][key])
        dash["panels"][1]["targets"][0]["expr"] = 'sum(vllm:num_requests_running{model_name="$model",pod_name="x"})'
        cm["data"][key] = json.dumps(dash)

    diags = effective_findings(EXAMPLES / "llama-3.1-8b-l4.llmdeploy.yaml", bad_panel)
    assert any(d.rule == "LD605" and "dashboard panel" in d.message and "pod_name" in d.message for d in diags)

    def renamed_gauge(objects: list[dict[str, Any]]) -> None:
        pre = _engine(objects)["lifecycle"]["preStop"]["exec"]["command"]
        pre[-1] = pre[-1].replace("vllm:num_requests_waiting", "vllm:num_requests_swapped")

    diags = effective_findings(EXAMPLES / "llama-3.1-8b-l4.llmdeploy.yaml", renamed_gauge)
    assert any(d.rule == "LD605" and "preStop drain" in d.message for d in diags)


def test_ld605_servicemonitor_through_the_metrics_service() -> None:
    spec = ROOT / "tests" / "data" / "monitoring" / "tgi-servicemonitor.llmdeploy.yaml"
    _, r = render(spec)
    objs = [d.obj for d in r.docs]
    (w,) = E.workloads(objs)
    (sm,) = by_kind(objs, "ServiceMonitor")
    (labels,) = E.series_labels(w, sm, services=by_kind(objs, "Service"))
    assert labels["job"] == labels["service"] == "mistral-tgi-metrics" and labels["endpoint"] == "metrics"

    def wrong_target(objects: list[dict[str, Any]]) -> None:
        by_kind(objects, "Service")[0]["spec"]["ports"][0]["targetPort"] = 9999

    diags = effective_findings(spec, wrong_target)
    assert any(d.rule == "LD605" and "scrapes nothing" in d.message for d in diags)


def test_ld605_alert_on_a_label_the_recording_rule_drops() -> None:
    def alert_on_pod(objects: list[dict[str, Any]]) -> None:
        for g in by_kind(objects, "PrometheusRule")[0]["spec"]["groups"]:
            for r in g["rules"]:
                if r.get("alert") == "LLMServiceQueueBackingUp":
                    r["expr"] = r["expr"].replace("{", '{pod="x",', 1)

    diags = effective_findings(EXAMPLES / "llama-3.1-8b-l4.llmdeploy.yaml", alert_on_pod)
    assert any(d.rule == "LD605" and "recording rule does not keep it" in d.message for d in diags)


def test_ld606_engine_token_secret_not_on_the_service_account() -> None:
    def other_secret(objects: list[dict[str, Any]]) -> None:
        by_kind(objects, "ServiceAccount")[0]["secrets"] = [{"name": "something-else"}]

    diags = effective_findings(EXAMPLES / "llama-3.1-8b-l4.llmdeploy.yaml", other_secret)
    assert any(d.rule == "LD606" and "does not list it" in d.message for d in diags)


def test_ld606_trusts_a_service_account_it_cannot_see(tmp_path: Path) -> None:
    """Regression: the user's own ServiceAccount is not rendered, so its Secrets are unknown."""
    text = (EXAMPLES / "llama-3.1-8b-l4.llmdeploy.yaml").read_text(encoding="utf-8")
    assert "\ndeployment:\n" in text
    text = text.replace("\ndeployment:\n", "\ndeployment:\n  serviceAccount: my-sa\n")
    _, r = render("", text, tmp_path)
    assert r.ok and r.docs, [str(d) for d in r.diagnostics if d.is_error]
    (w,) = [w for _, w in r.workloads]
    assert w.storage.service_account == "my-sa" and not w.storage.account_known


def test_ld607_custom_token_key_is_refused(tmp_path: Path) -> None:
    text = (EXAMPLES / "llama-3.1-8b-l4.llmdeploy.yaml").read_text(encoding="utf-8")
    assert "secretRef: hf-token" in text
    text = text.replace("    secretRef: hf-token", "    secretRef: hf-token\n    tokenKey: token")
    _, r = render("", text, tmp_path)
    ld = [d for d in r.diagnostics if d.rule == "LD607"]
    assert ld and ld[0].is_error and ld[0].line > 0 and "HF_TOKEN" in ld[0].message
    assert not r.docs


# --------------------------------------------------------------------------- invariants


def _with_monitoring_edits(text: str) -> str:
    import yaml

    doc = yaml.safe_load(text)
    mon = doc.setdefault("monitoring", {})
    alerts = mon.setdefault("alerts", {})
    alerts["queueDepth"] = 7
    alerts["errorRate"] = 0.2
    alerts["forDuration"] = "11m"
    mon["scrapeInterval"] = "45s"
    mon.setdefault("dashboard", {})["enabled"] = not mon.get("dashboard", {}).get("enabled", True)
    return yaml.safe_dump(doc, sort_keys=False)


@pytest.mark.parametrize("path", ALL_EXAMPLES, ids=lambda p: p.name)
def test_pod_template_ignores_monitoring_edits(path: Path, tmp_path: Path) -> None:
    """Changing only thresholds, scrape interval or the dashboard must not roll the pods."""
    _, before = render(path)
    _, after = render("", _with_monitoring_edits(path.read_text(encoding="utf-8")), tmp_path)
    assert before.ok and after.ok, [str(d) for d in after.diagnostics if d.is_error]
    pods_before = [E.pod_manifest(w) for _, w in before.workloads]
    pods_after = [E.pod_manifest(w) for _, w in after.workloads]
    assert pods_before == pods_after


def test_render_explain_prints_the_effective_pod() -> None:
    proc = subprocess.run([sys.executable, "-m", "llmdeploy", "render", str(EXAMPLES / "qwen2.5-7b-knative.llmdeploy.yaml"),
                           "--explain"], check=False, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "# effective pod of inference/qwen-7b: Revision qwen-7b-predictor-00001" in proc.stderr
    assert "name: user-port" in proc.stderr and "/wait-for-drain" in proc.stderr
    assert "storage-initializer" in proc.stderr
    assert "effective pod" not in proc.stdout  # manifests stay clean for kubectl


def _variant(path: Path, edit: Callable[[dict[str, Any]], None]) -> str:
    import yaml

    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    edit(doc)
    return yaml.safe_dump(doc, sort_keys=False)


def _mirror_other_port(doc: dict[str, Any]) -> None:
    doc["runtime"]["image"] = "registry.example.com/mirror/vllm-openai:v0.11.0"
    doc["runtime"]["port"] = 9000


def _other_port(doc: dict[str, Any]) -> None:
    doc["runtime"]["port"] = 9000


def _knative_long_name(doc: dict[str, Any]) -> None:
    doc["metadata"]["name"] = "a" * 47
    doc["runtime"]["port"] = 8081


@pytest.mark.parametrize(("base", "edit", "port"), [
    ("llama-3.1-8b-l4.llmdeploy.yaml", _mirror_other_port, 9000),
    ("qwen2.5-7b-knative.llmdeploy.yaml", _mirror_other_port, 9000),
    ("qwen2.5-7b-knative.llmdeploy.yaml", _knative_long_name, 8081),
    ("llama-3.1-8b-canary.llmdeploy.yaml", _other_port, 9000),
], ids=["standard-mirror-9000", "knative-mirror-9000", "knative-47-chars", "canary-9000"])
def test_adversarial_variants_render_and_run(base: str, edit: Callable[[dict[str, Any]], None], port: int,
                                             tmp_path: Path) -> None:
    """Mirrors, other ports and the longest names still give pods that start, serve and are scraped."""
    _, r = render("", _variant(EXAMPLES / base, edit), tmp_path)
    assert r.ok and r.docs, [str(d) for d in r.diagnostics if d.is_error]
    assert not [d for d in r.diagnostics if d.rule.startswith("LD6")]
    for _, w in r.workloads:
        c = w.pod.container("kserve-container")
        assert c is not None and c.arg_value("--port") == str(port) and c.ports[0].number == port
        assert all(p.port in (port, c.ports[0].name) for p in c.probes if p.run_by == "kubelet")
        assert all(len(v) <= 63 for v in w.pod.labels.values())


def test_ld605_a_user_query_on_a_missing_metric_is_a_warning(tmp_path: Path) -> None:
    import yaml

    path = EXAMPLES / "tinyllama-dev-scale-to-zero.llmdeploy.yaml"
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    doc["scaling"]["activationQuery"] = 'sum(rate(vllm:requests_total{namespace="dev"}[2m]))'
    _, r = render("", yaml.safe_dump(doc, sort_keys=False), tmp_path)
    ld = [d for d in r.diagnostics if d.rule == "LD605"]
    assert ld and all(not d.is_error for d in ld) and ld[0].path == "scaling.activationQuery"
    assert "exports no metric vllm:requests_total" in ld[0].message


def test_ld605_reads_a_candidate_on_another_release_with_its_own_metric_names(tmp_path: Path) -> None:
    """Regression: a candidate pinned to an older vLLM was checked against the stable's names."""
    import yaml

    doc = yaml.safe_load((EXAMPLES / "llama-3.1-8b-canary.llmdeploy.yaml").read_text(encoding="utf-8"))
    doc["rollout"]["candidate"]["image"] = "vllm/vllm-openai:v0.9.1"
    _, r = render("", yaml.safe_dump(doc, sort_keys=False), tmp_path)
    assert r.ok and r.docs, [str(d) for d in r.diagnostics if d.is_error]
    rules = [o for o in (d.obj for d in r.docs) if o["kind"] == "PrometheusRule"]
    exprs = " ".join(rr["expr"] for o in rules for g in o["spec"]["groups"] for rr in g["rules"])
    assert "vllm:gpu_cache_usage_perc" in exprs and "vllm:kv_cache_usage_perc" in exprs  # each its own name
    assert not [d for d in r.diagnostics if d.rule == "LD605"]
