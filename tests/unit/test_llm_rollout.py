"""Rollouts with router.pool: explicit on the llmInferenceService target: two pools behind one HTTPRoute."""

from __future__ import annotations

from pathlib import Path

from test_llmisvc import objects, one, render, spec_text

EXPLICIT = {"pool": "explicit", "eppService": "epp", "candidateEppService": "epp-canary",
            "gateway": {"name": "gw", "namespace": "gateway-system"}}
CAND = {"image": "vllm/vllm-openai:v0.11.0"}


def _objs(strategy: str, crds: Path | None = None, **rollout: object) -> list:
    res = render(spec_text(router=EXPLICIT, rollout={"strategy": strategy, "candidate": CAND, **rollout}), crds=crds)
    assert not [d for d in res.diagnostics if d.rule == "LD704"], [d.to_text() for d in res.diagnostics]
    return objects(res)


def _pools(objs: list) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in objs if o["kind"] == "InferencePool"}


def test_canary_splits_the_route_by_weight_between_two_pools(shared_crds: Path) -> None:
    objs = _objs("canary", shared_crds, trafficPercent=20)
    pools = _pools(objs)
    assert set(pools) == {"chat-inference-pool", "chat-canary-inference-pool"}
    cand = pools["chat-canary-inference-pool"]["spec"]
    assert cand["endpointPickerRef"]["name"] == "epp-canary"
    assert pools["chat-inference-pool"]["spec"]["endpointPickerRef"]["name"] == "epp"
    assert cand["selector"] != pools["chat-inference-pool"]["spec"]["selector"]
    routes = [o for o in objs if o["kind"] == "HTTPRoute"]
    assert len(routes) == 1
    (rule,) = routes[0]["spec"]["rules"]
    assert [(b["name"], b["weight"]) for b in rule["backendRefs"]] == [
        ("chat-inference-pool", 80), ("chat-canary-inference-pool", 20)]
    isvcs = {o["metadata"]["name"]: o for o in objs if o["kind"] == "LLMInferenceService"}
    assert isvcs["chat-canary"]["spec"]["router"]["scheduler"]["pool"]["ref"]["name"] == "chat-canary-inference-pool"
    assert isvcs["chat-canary"]["spec"]["router"]["route"]["http"]["refs"] == [{"name": "chat-route"}]
    assert {o["metadata"]["name"] for o in objs if o["kind"] == "ConfigMap"} >= {"chat-epp-config",
                                                                                 "chat-canary-epp-config"}


def test_ab_test_routes_the_header_to_the_candidate(shared_crds: Path) -> None:
    objs = _objs("abTest", shared_crds, header="X-Variant", headerValue="new")
    route = one(objs, "HTTPRoute")
    first, rest = route["spec"]["rules"]
    assert first["matches"][0]["headers"] == [{"type": "Exact", "name": "X-Variant", "value": "new"}]
    assert first["matches"][0]["path"] == rest["matches"][0]["path"]
    assert [b["name"] for b in first["backendRefs"]] == ["chat-canary-inference-pool"]
    assert [b["name"] for b in rest["backendRefs"]] == ["chat-inference-pool"]
    assert "weight" not in rest["backendRefs"][0]


def test_blue_green_sends_everything_to_one_pool() -> None:
    objs = _objs("blueGreen", trafficPercent=100)
    (rule,) = one(objs, "HTTPRoute")["spec"]["rules"]
    assert [(b["name"], b["weight"]) for b in rule["backendRefs"]] == [
        ("chat-inference-pool", 0), ("chat-canary-inference-pool", 100)]


def test_rollback_is_weight_zero_and_promotion_drops_the_candidate() -> None:
    back = _objs("canary", trafficPercent=0)
    (rule,) = one(back, "HTTPRoute")["spec"]["rules"]
    assert [b["weight"] for b in rule["backendRefs"]] == [100, 0]
    done = objects(render(spec_text(router=EXPLICIT | {"candidateEppService": None},
                                    rollout={"strategy": "rolling"})))
    assert set(_pools(done)) == {"chat-inference-pool"}
    (rule,) = one(done, "HTTPRoute")["spec"]["rules"]
    assert "weight" not in rule["backendRefs"][0]


def test_ab_test_with_a_managed_pool_is_still_refused_with_a_hint() -> None:
    res = render(spec_text(rollout={"strategy": "abTest", "candidate": CAND}))
    ld = [d for d in res.diagnostics if d.rule == "LD704"]
    assert ld and ld[0].is_error and "router.pool: explicit" in (ld[0].hint or "")


def test_explicit_rollout_without_the_candidate_picker_is_refused() -> None:
    res = render(spec_text(router=EXPLICIT | {"candidateEppService": None},
                           rollout={"strategy": "canary", "candidate": CAND}))
    ld = [d for d in res.diagnostics if d.rule == "LD704"]
    assert ld and ld[0].is_error and "candidateEppService" in (ld[0].hint or "")


def test_managed_canary_monitors_both_pickers(shared_crds: Path) -> None:
    res = render(spec_text(profile="production",
                           router={"eppMetricsToken": {"name": "epp-token", "key": "token"}},
                           deployment={"target": "llmInferenceService",
                                       "networkPolicy": {"allowFromNamespaces": ["gateway-system"]}},
                           rollout={"strategy": "canary", "candidate": CAND, "trafficPercent": 10}),
                 crds=shared_crds)
    objs = objects(res)
    pm = next(o for o in objs if o["kind"] == "PodMonitor" and o["metadata"]["name"] == "chat-epp")
    sel = pm["spec"]["selector"]
    assert sel["matchExpressions"] == [{"key": "app.kubernetes.io/name", "operator": "In",
                                        "values": ["chat", "chat-canary"]}]
    assert "app.kubernetes.io/name" not in sel["matchLabels"]
    rules = next(o for o in objs if o["kind"] == "PrometheusRule" and o["metadata"]["name"] == "chat-router-rules")
    alerts = {a["alert"]: a["expr"] for g in rules["spec"]["groups"] for a in g["rules"] if "alert" in a}
    down = alerts["LLMServiceRouterDown"]
    assert 'pod=~"chat-kserve-router-scheduler-' in down and 'pod=~"chat-canary-kserve-router-scheduler-' in down
    assert " or " in down
    assert alerts["LLMServiceRouterNoEndpoints"].startswith("max by (name) (")
    assert 'name=~"chat-inference-pool|chat-canary-inference-pool"' in alerts["LLMServiceRouterNoEndpoints"]
    assert "(chat-kserve-router-scheduler|chat-canary-kserve-router-scheduler)" in \
        alerts["LLMServiceRouterSchedulingFailures"]


def test_without_a_candidate_the_picker_monitoring_is_unchanged() -> None:
    objs = objects(render(spec_text(router={"eppMetricsToken": {"name": "epp-token", "key": "token"}})))
    pm = next(o for o in objs if o["kind"] == "PodMonitor" and o["metadata"]["name"] == "chat-epp")
    assert "matchExpressions" not in pm["spec"]["selector"]
    assert pm["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"] == "chat"
