"""Prefill/decode disaggregation (#16 item 3–5): spec, LD716–LD722, per-role sizing, rendering.

The DeepSeek-R1 H200 example renders an LLMInferenceService with ``spec.prefill`` that
passes the strict CRD check; both roles' effective pods are checked by the LD6xx/LD7xx
rules; every refused split is reported at its spec line with a hint; the per-role model is
compared with public P/D deployment reports (tests/data/pd_reports/reports.yaml).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import EXAMPLES, ROOT

from llmdeploy.pipeline import analyze, analyze_all, load_specs, render_documents
from llmdeploy.sizing.roles import LINK_BYTES_PER_S

EXAMPLE = EXAMPLES / "deepseek-r1-h200-pd.llmdeploy.yaml"
BASE = EXAMPLE.read_text(encoding="utf-8")
REPORTS = yaml.safe_load((ROOT / "tests" / "data" / "pd_reports" / "reports.yaml").read_text(encoding="utf-8"))


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "s.llmdeploy.yaml"
    p.write_text(text, encoding="utf-8")
    return p


def _analysis(tmp_path: Path, text: str):  # type: ignore[no-untyped-def]
    docs, problems = load_specs([str(_write(tmp_path, text))])
    assert not problems
    return analyze(docs[0])


def _only(tmp_path: Path, text: str, rule: str) -> list:  # type: ignore[type-arg]
    return [d for d in _analysis(tmp_path, text).diagnostics if d.rule == rule]


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def _render(tmp_path: Path, text: str, crds: Path | None = None):  # type: ignore[no-untyped-def]
    docs, problems = load_specs([str(_write(tmp_path, text))])
    assert not problems
    return render_documents(analyze_all(docs), crd_paths=[crds] if crds else ())


def _objs(res) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    assert res.ok, [d.to_text() for d in res.diagnostics if d.is_error]
    return [d.obj for d in res.docs]


# --------------------------------------------------------------------------- rendering


def test_example_renders_both_roles_and_passes_the_crds(tmp_path: Path, shared_crds: Path) -> None:
    res = _render(tmp_path, BASE, shared_crds)
    objs = _objs(res)
    assert not res.unchecked
    [svc] = [o for o in objs if o["kind"] == "LLMInferenceService"]
    spec = svc["spec"]
    kv = '--kv-transfer-config={"kv_connector":"NixlConnector","kv_role":"kv_both"}'
    decode_main = spec["template"]["containers"][0]
    prefill = spec["prefill"]
    prefill_main = prefill["template"]["containers"][0]
    assert kv in decode_main["args"] and kv in prefill_main["args"]
    # The decode preset runs vLLM on 8001 behind the routing sidecar; the prefill preset on 8000.
    assert decode_main["ports"][0]["containerPort"] == 8001
    assert prefill_main["ports"][0]["containerPort"] == 8000
    assert prefill["parallelism"] == {"tensor": 8}
    assert "replicas" not in prefill  # KEDA owns the count (PreserveDeploymentReplicas)
    for c in (decode_main, prefill_main):
        assert {"name": "VLLM_NIXL_SIDE_CHANNEL_HOST", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}} \
            in c["env"]
        assert c["resources"]["limits"]["rdma/roce"] == "1"
        assert "IPC_LOCK" in c["securityContext"]["capabilities"]["add"]
    # Both roles are effective workloads (render --explain shows both, the LD6xx rules ran on both).
    names = sorted(w.workload_name for _, w in res.workloads)
    assert names == ["deepseek-r1-pd-kserve", "deepseek-r1-pd-kserve-prefill"]
    roles = {w.pod.labels["llm-d.ai/role"] for _, w in res.workloads}
    assert roles == {"decode", "prefill"}
    decode = next(w for _, w in res.workloads if w.workload_name == "deepseek-r1-pd-kserve")
    assert decode.pod.container("main").arg_value("--port") == "8001"
    assert [c["name"] for c in decode.pod.raw["initContainers"]] == ["llm-d-routing-sidecar"]


def test_scheduler_runs_the_pd_profiles(tmp_path: Path) -> None:
    [svc] = [o for o in _objs(_render(tmp_path, BASE)) if o["kind"] == "LLMInferenceService"]
    cfg = svc["spec"]["router"]["scheduler"]["config"]["inline"]
    types = [p["type"] for p in cfg["plugins"]]
    for needed in ("disagg-headers-handler", "prefill-filter", "decode-filter", "always-disagg-pd-decider",
                   "disagg-profile-handler"):
        assert needed in types
    profiles = {p["name"]: [r["pluginRef"] for r in p["plugins"]] for p in cfg["schedulingProfiles"]}
    assert profiles["prefill"][0] == "prefill-filter" and profiles["decode"][0] == "decode-filter"
    assert "prefix-cache-scorer" in profiles["prefill"] and "active-request-scorer" in profiles["decode"]


def test_network_policy_opens_the_kv_transfer_but_not_the_decode_engine(tmp_path: Path) -> None:
    [np] = [o for o in _objs(_render(tmp_path, BASE)) if o["kind"] == "NetworkPolicy"]
    ingress = np["spec"]["ingress"]
    assert ingress[0]["ports"] == [{"port": 8000, "protocol": "TCP"}]  # callers: sidecar and prefill engines
    peers = [r for r in ingress if "ports" not in r]
    assert peers and peers[0]["from"][0]["podSelector"]["matchLabels"]["kserve.io/component"] == "workload"


def test_without_disaggregation_nothing_changes(tmp_path: Path) -> None:
    text = BASE.split("disaggregation:")[0] + "scaling:" + BASE.split("scaling:")[1]
    [svc] = [o for o in _objs(_render(tmp_path, text)) if o["kind"] == "LLMInferenceService"]
    assert "prefill" not in svc["spec"]
    assert svc["spec"]["template"]["containers"][0]["ports"][0]["containerPort"] == 8000
    assert not any(a.startswith("--kv-transfer-config") for a in svc["spec"]["template"]["containers"][0]["args"])


def test_keda_scales_each_role_on_its_own_signal(tmp_path: Path) -> None:
    objs = _objs(_render(tmp_path, BASE))
    sos = {o["metadata"]["name"]: o["spec"] for o in objs if o["kind"] == "ScaledObject"}
    decode, prefill = sos["deepseek-r1-pd"], sos["deepseek-r1-pd-prefill"]
    assert decode["scaleTargetRef"]["name"] == "deepseek-r1-pd-kserve"
    assert prefill["scaleTargetRef"]["name"] == "deepseek-r1-pd-kserve-prefill"
    [dq] = [t["metadata"]["query"] for t in decode["triggers"]]
    [pq] = [t["metadata"]["query"] for t in prefill["triggers"]]
    assert "kv_cache_usage" in dq and 'pod=~"deepseek-r1-pd-kserve-[a-z0-9]+-[a-z0-9]+"' in dq
    assert "num_requests_waiting" in pq and 'pod=~"deepseek-r1-pd-kserve-prefill-[a-z0-9]+-[a-z0-9]+"' in pq
    rules = [o for o in objs if o["kind"] == "PrometheusRule" and o["metadata"]["name"] == "deepseek-r1-pd-pd-rules"]
    alerts = {r["alert"] for g in rules[0]["spec"]["groups"] for r in g["rules"]}
    assert alerts == {"LLMServicePrefillBacklog", "LLMServiceDecodeSaturated"}


def test_dashboard_has_a_row_per_role(tmp_path: Path) -> None:
    objs = _objs(_render(tmp_path, BASE))
    [cm] = [o for o in objs if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "deepseek-r1-pd-roles-dashboard"]
    board = json.loads(next(iter(cm["data"].values())))
    rows = [p["title"] for p in board["panels"] if p["type"] == "row"]
    assert rows == ["Prefill pool", "Decode pool"]
    text = json.dumps(board)
    assert "deepseek-r1-pd-kserve-prefill-[a-z0-9]+-[a-z0-9]+" in text


def test_fixed_replicas_set_the_prefill_count(tmp_path: Path) -> None:
    text = BASE.replace("  autoscaler: keda\n", "  autoscaler: none\n").replace("    replicas: auto\n",
                                                                               "    replicas: 3\n")
    [svc] = [o for o in _objs(_render(tmp_path, text)) if o["kind"] == "LLMInferenceService"]
    assert svc["spec"]["prefill"]["replicas"] == 3


# --------------------------------------------------------------------------- rules


def test_example_is_clean(tmp_path: Path) -> None:
    diags = _analysis(tmp_path, BASE).diagnostics
    assert [d.to_text() for d in diags if d.rule.startswith(("LD71", "LD72")) or d.is_error] == []


def test_wrong_target_is_refused_at_the_disaggregation_key(tmp_path: Path) -> None:
    text = BASE.replace("  target: llmInferenceService\n", "  target: inferenceService\n")
    [d] = _only(tmp_path, text, "LD716")
    assert d.is_error and d.line == _line_of(text, "disaggregation:")
    assert "llmInferenceService" in (d.hint or "")


def test_connector_the_pinned_vllm_lacks_is_refused_with_the_first_release(tmp_path: Path) -> None:
    text = BASE.replace("vllm/vllm-openai:v0.11.0", "vllm/vllm-openai:v0.8.5")
    [d] = _only(tmp_path, text, "LD717")
    assert d.is_error and d.line == _line_of(text, "connector: nixl")
    assert "0.9.0" in (d.hint or "")


def test_connector_the_routing_sidecar_does_not_speak_is_refused(tmp_path: Path) -> None:
    text = BASE.replace("connector: nixl", "connector: lmcache")
    [d] = _only(tmp_path, text, "LD717")
    assert "nixlv2" in d.message and "connector: nixl" in (d.hint or "")


def test_unknown_prefill_gpu_is_refused_at_its_line(tmp_path: Path) -> None:
    text = BASE.replace("    tensor: 8\nscaling", "    tensor: 8\n    gpu: h300\nscaling")
    assert "gpu: h300" in text
    [d] = _only(tmp_path, text, "LD718")
    assert d.is_error and d.line == _line_of(text, "gpu: h300")


def test_prefill_role_that_does_not_fit_is_refused(tmp_path: Path) -> None:
    text = BASE.replace("    replicas: auto\n    tensor: 8\n", "    replicas: auto\n    tensor: 2\n")
    found = _only(tmp_path, text, "LD719")
    assert found and all(d.is_error for d in found)
    assert found[0].line == _line_of(text, "tensor: 2")


def test_a_prefill_shape_shared_with_decode_is_reported_once(tmp_path: Path) -> None:
    """Regression: LD719 repeated the decode role's LD201 when both roles run the same GPUs."""
    text = BASE.replace("    type: h200\n", "    type: l4\n")
    diags = _analysis(tmp_path, text).diagnostics
    assert [d for d in diags if d.rule == "LD201"]
    assert not [d for d in diags if d.rule == "LD719"]


def test_kv_transfer_over_tcp_warns(tmp_path: Path) -> None:
    text = BASE.replace("    fabric: roce\n    rdmaResources:\n      rdma/roce: 1\n", "    fabric: ethernet\n")
    [d] = _only(tmp_path, text, "LD720")
    assert not d.is_error and "TCP" in d.message
    assert not _only(tmp_path, BASE, "LD720")


def test_hand_written_kv_transfer_config_is_refused(tmp_path: Path) -> None:
    text = BASE.replace("  gpuMemoryUtilization: 0.92\n", "  gpuMemoryUtilization: 0.92\n  extraArgs:\n"
                        "    - '--kv-transfer-config={\"kv_connector\":\"NixlConnector\",\"kv_role\":\"kv_both\"}'\n")
    [d] = _only(tmp_path, text, "LD721")
    assert d.is_error and d.line == _line_of(text, "--kv-transfer-config")


def test_auto_prefill_replicas_without_a_load_warns(tmp_path: Path) -> None:
    text = BASE.replace("  targetLoad:\n    requestsPerSecond: 4\n    avgPromptTokens: 4096\n"
                        "    avgOutputTokens: 1024\n", "")
    [d] = _only(tmp_path, text, "LD722")
    assert not d.is_error


def test_interconnect_on_one_node_is_not_flagged_when_disaggregated(tmp_path: Path) -> None:
    assert not _only(tmp_path, BASE, "LD806")


# --------------------------------------------------------------------------- sizing per role


def _roles(tmp_path: Path, text: str):  # type: ignore[no-untyped-def]
    a = _analysis(tmp_path, text)
    assert a.resolved is not None and a.resolved.roles is not None
    return a.resolved


def test_roles_scale_with_the_load_and_decode_beats_aggregated_tpot(tmp_path: Path) -> None:
    r = _roles(tmp_path, BASE)
    roles = r.roles
    assert roles.prefill.role == "prefill" and roles.decode.role == "decode"
    # Decode-only steps: no prompt shares them, so TPOT is below the aggregated replica's.
    assert roles.decode.latency_ms < r.sizing.capacity.decode_step_seconds * 1e3
    more = _roles(tmp_path, BASE.replace("requestsPerSecond: 4", "requestsPerSecond: 40")).roles
    assert more.prefill.replicas > roles.prefill.replicas and more.decode.replicas > roles.decode.replicas
    assert more.cheaper in ("aggregated", "disaggregated") and "req/s" in more.why


def test_transfer_time_follows_the_fabric(tmp_path: Path) -> None:
    roce = _roles(tmp_path, BASE).roles.transfer_ms
    eth = _roles(tmp_path, BASE.replace("    fabric: roce\n    rdmaResources:\n      rdma/roce: 1\n",
                                        "    fabric: ethernet\n")).roles.transfer_ms
    assert eth / roce == pytest.approx(LINK_BYTES_PER_S["roce"] / LINK_BYTES_PER_S["ethernet"])


def test_p2p_nccl_buffer_comes_out_of_the_kv_cache(tmp_path: Path) -> None:
    text = BASE.replace("target: llmInferenceService", "target: llmInferenceService").replace(
        "connector: nixl", "connector: p2pNccl")
    r = _roles(tmp_path, text)
    assert r.roles.decode.connector_buffer_gib == pytest.approx(1e9 / 2**30)
    assert r.roles.decode.kv_cache_tokens < r.sizing.kv_cache_tokens


def test_size_json_has_both_roles() -> None:
    from typer.testing import CliRunner

    from llmdeploy.cli import app

    res = CliRunner().invoke(app, ["size", str(EXAMPLE), "--format", "json"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    d = out["disaggregation"]
    assert d["prefill"]["role"] == "prefill" and d["decode"]["role"] == "decode"
    assert d["ratio"].startswith("P:D = ")


# --------------------------------------------------------------------------- against public reports


def _report(rid: str) -> dict[str, Any]:
    return next(r for r in REPORTS["reports"] if r["id"] == rid)


def test_decode_speed_per_user_matches_deepseeks_report(tmp_path: Path) -> None:
    """DeepSeek's own service decodes at 20–22 tokens/s per user; the decode role at its TPOT target agrees."""
    lo, hi = _report("deepseek-v3-r1-inference-system")["figures"]["output_tokens_per_s_per_user"]
    per_user = 1e3 / _roles(tmp_path, BASE).roles.decode.latency_ms
    assert lo * 0.75 <= per_user <= hi * 1.25, per_user


def test_prefill_throughput_per_gpu_is_within_the_reported_range(tmp_path: Path) -> None:
    """Prefill tokens/s per GPU against DeepSeek's (cache misses only) and SGLang's tensor-parallel figure.

    The reports run expert parallelism; SGLang measures 3.3× over tensor parallelism, which the
    role model sizes. The estimate must lie between the TP figure ÷ 1.5 and DeepSeek's EP figure.
    """
    text = BASE.replace("avgPromptTokens: 4096", "avgPromptTokens: 2000")
    p = _roles(tmp_path, text).roles.prefill
    per_gpu = p.tokens_per_s_per_replica / p.gpus_per_replica
    tp = _report("sglang-large-scale-ep")["derived"]["tp_prefill_tokens_per_s_per_gpu"]
    ep = _report("deepseek-v3-r1-inference-system")["derived"]["prefill_computed_tokens_per_s_per_gpu"]
    assert tp / 1.5 <= per_gpu <= ep, per_gpu


def test_decode_throughput_per_gpu_is_near_sglangs_tensor_parallel_figure(tmp_path: Path) -> None:
    """SGLang's 22.3k output tokens/s per node is 5× what vanilla tensor parallelism reached; within 2× of that."""
    text = BASE.replace("avgPromptTokens: 4096", "avgPromptTokens: 2000")
    d = _roles(tmp_path, text).roles.decode
    per_gpu = d.tokens_per_s_per_replica / d.gpus_per_replica
    tp = _report("sglang-large-scale-ep")["derived"]["tp_decode_output_tokens_per_s_per_gpu"]
    assert tp / 2 <= per_gpu <= tp * 2, per_gpu


# --------------------------------------------------------------------------- the leaderWorkerSet target: DisaggregatedSet

LWS_EXAMPLE = EXAMPLES / "deepseek-r1-h200-pd-lws.llmdeploy.yaml"
LWS_BASE = LWS_EXAMPLE.read_text(encoding="utf-8")


def test_lws_target_renders_a_disaggregatedset_that_passes_the_crd(tmp_path: Path, shared_crds: Path) -> None:
    res = _render(tmp_path, LWS_BASE, shared_crds)
    objs = _objs(res)
    assert not res.unchecked
    [ds] = [o for o in objs if o["kind"] == "DisaggregatedSet"]
    assert ds["apiVersion"] == "disaggregatedset.x-k8s.io/v1"
    roles = {r["name"]: r["spec"] for r in ds["spec"]["roles"]}
    assert set(roles) == {"prefill", "decode"}
    kv = '--kv-transfer-config={"kv_connector":"NixlConnector","kv_role":"kv_both"}'
    for name, spec in roles.items():
        leader = spec["leaderWorkerTemplate"]["leaderTemplate"]
        assert leader["metadata"]["labels"]["llm-d.ai/role"] == name
        assert kv in leader["spec"]["containers"][0]["args"]
        assert spec["replicas"] >= 1
    assert ds["spec"]["placementPolicy"] == {"type": "ExclusiveTopology", "topology": "nvidia.com/gpu.clique"}
    # The effective pods are the two roles' leaders, under the names the controller gives them.
    names = sorted(w.workload_name for _, w in res.workloads)
    assert len(names) == 2 and names[0].endswith("-decode") and names[1].endswith("-prefill")
    assert all(n.startswith("deepseek-r1-pd-lws-0-") for n in names)
    # Monitoring and the PDB select the set's pods, not a LeaderWorkerSet of the service's name.
    [pm] = [o for o in objs if o["kind"] == "PodMonitor"]
    assert pm["spec"]["selector"]["matchLabels"]["disaggregatedset.x-k8s.io/name"] == "deepseek-r1-pd-lws"
    services = {o["metadata"]["name"] for o in objs if o["kind"] == "Service"}
    assert {"deepseek-r1-pd-lws-prefill", "deepseek-r1-pd-lws-decode"} <= services


def test_lws_target_warns_that_it_needs_a_router_and_refuses_keda(tmp_path: Path) -> None:
    [d] = _only(tmp_path, LWS_BASE, "LD723")
    assert not d.is_error and d.line == _line_of(LWS_BASE, "disaggregation:")
    text = LWS_BASE.replace("  autoscaler: none\n", "  autoscaler: keda\n  maxReplicas: 4\n")
    errors = [d for d in _only(tmp_path, text, "LD723") if d.is_error]
    assert errors and errors[0].line == _line_of(text, "autoscaler: keda")


# --------------------------------------------------------------------------- KV-transfer failures (#16 item 5)

V0111 = BASE.replace("vllm-openai:v0.11.0", "vllm-openai:v0.11.1")


def _pd_rules(objs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    [rule] = [o for o in objs if o["kind"] == "PrometheusRule" and o["metadata"]["name"] == "deepseek-r1-pd-pd-rules"]
    return {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"]}


def _roles_panels(objs: list[dict[str, Any]]) -> list[str]:
    [cm] = [o for o in objs if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "deepseek-r1-pd-roles-dashboard"]
    return [p["title"] for p in json.loads(next(iter(cm["data"].values())))["panels"]]


def test_kv_transfer_failures_alerted_where_vllm_counts_them(tmp_path: Path) -> None:
    """vLLM 0.11.1 + NIXL: the alert names the pinned release's counter, scoped to the decode pods; a panel too."""
    from llmdeploy.engines import resolve_engine

    assert "vllm-openai:v0.11.0" in BASE  # the example pins a release without the counter
    res = _render(tmp_path, V0111)
    assert not [d for d in res.diagnostics if d.rule == "LD605"]  # the pinned release exports it, labels match
    objs = _objs(res)
    alerts = _pd_rules(objs)
    assert set(alerts) == {"LLMServicePrefillBacklog", "LLMServiceDecodeSaturated", "LLMServiceKVTransferFailures"}
    a = alerts["LLMServiceKVTransferFailures"]
    counter = resolve_engine("vllm", None, "0.11.1").metric("nixl_failed_transfers")
    assert counter == "vllm:nixl_num_failed_transfers_total"
    assert a["expr"].startswith(f"sum(rate({counter}{{") and a["expr"].endswith(") > 0")
    assert 'pod=~"deepseek-r1-pd-kserve-[a-z0-9]+-[a-z0-9]+"' in a["expr"]  # decode pods, not the prefill ones
    assert a["for"] == "5m" and a["annotations"]["runbook_url"].endswith("#llmservicekvtransferfailures")
    assert "### LLMServiceKVTransferFailures" in (ROOT / "docs" / "monitoring.md").read_text(encoding="utf-8")
    assert "KV transfer failures" in _roles_panels(objs)
    assert not [d for d in _only(tmp_path, V0111, "LD501") if "KV-transfer" in d.message]


def test_no_kv_transfer_alert_before_the_counter_but_a_note(tmp_path: Path) -> None:
    """vLLM 0.11.0 only logs connector statistics: no alert, no panel, LD501 says where failures show."""
    objs = _objs(_render(tmp_path, BASE))
    assert "LLMServiceKVTransferFailures" not in _pd_rules(objs)
    assert "KV transfer failures" not in _roles_panels(objs)
    [note] = [d for d in _only(tmp_path, BASE, "LD501") if "KV-transfer" in d.message]
    assert note.severity.value == "info" and note.line == _line_of(BASE, "connector: nixl")
    assert "vLLM 0.11.0" in note.message and "decode pods' errors" in note.message
    assert note.hint is not None and "0.11.1" in note.hint


def test_transfer_failure_counter_follows_the_connector_and_release(tmp_path: Path) -> None:
    from llmdeploy.derive.disagg import transfer_failures_metric
    from llmdeploy.engines import resolve_engine

    spec = _analysis(tmp_path, V0111).spec
    lmcache = spec.model_copy(update={"disaggregation": spec.disaggregation.model_copy(update={"connector": "lmcache"})})
    for v, want in [("0.10.2", None), ("0.11.0", None), ("0.11.1", "vllm:nixl_num_failed_transfers_total"),
                    ("0.12.0", "vllm:nixl_num_failed_transfers_total"), ("0.30.0", "vllm:nixl_num_failed_transfers_total")]:
        engine = resolve_engine("vllm", None, v)
        assert transfer_failures_metric(spec, engine) == want, v
        assert transfer_failures_metric(lmcache, engine) is None, v


def test_kv_transfer_alert_fires_on_decode_failures_only(tmp_path: Path) -> None:
    """promtool: failures on a decode pod fire after `for`; failures on a prefill pod or none stay quiet."""
    from monitoring_support import run_promtool, write_yaml

    objs = _objs(_render(tmp_path, V0111))
    [rule] = [o for o in objs if o["kind"] == "PrometheusRule" and o["metadata"]["name"] == "deepseek-r1-pd-pd-rules"]
    group = next(g for g in rule["spec"]["groups"])
    group = {**group, "rules": [r for r in group["rules"] if r["alert"] == "LLMServiceKVTransferFailures"]}
    rules = write_yaml(tmp_path / "rules.yaml", {"groups": [group]})
    base = 'vllm:nixl_num_failed_transfers_total{model_name="deepseek-r1-pd",namespace="inference",engine="0",pod="%s"}'
    decode, prefill = "deepseek-r1-pd-kserve-5d8f9c7b6-abcde", "deepseek-r1-pd-kserve-prefill-7c9d8b5f4-xyz12"
    climbing, flat = "0+1x20", "3x20"

    def case(series: dict[str, str], fires: bool) -> dict[str, Any]:
        exp = [{"exp_labels": {"severity": "warning", "inferenceservice": "deepseek-r1-pd"}}] if fires else []
        return {"interval": "1m", "input_series": [{"series": base % pod, "values": v} for pod, v in series.items()],
                "alert_rule_test": [{"eval_time": "10m", "alertname": "LLMServiceKVTransferFailures",
                                     "exp_alerts": exp},
                                    {"eval_time": "3m", "alertname": "LLMServiceKVTransferFailures",
                                     "exp_alerts": []}]}

    tests = {"rule_files": [str(rules)], "evaluation_interval": "1m",
             "tests": [case({decode: climbing}, True), case({decode: flat}, False),
                       case({prefill: climbing, decode: flat}, False)]}
    for t in tests["tests"]:  # annotations are not compared when absent; the labels are
        for c in t["alert_rule_test"]:
            for e in c["exp_alerts"]:
                e["exp_annotations"] = {k: v.replace("{{ $value | humanize }}", "16.67m")
                                        for k, v in group["rules"][0]["annotations"].items()}
    result = run_promtool("test", "rules", str(write_yaml(tmp_path / "tests.yaml", tests)), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
