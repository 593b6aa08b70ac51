"""router.scorers precisePrefixCache: llm-d's precise-prefix-cache-scorer fed by vLLM's KV events (LD725)."""

from __future__ import annotations

import json
from pathlib import Path

from test_llmisvc import errors, objects, one, render, spec_text

PRECISE = {"scorers": [{"type": "precisePrefixCache", "weight": 3}, {"type": "queue", "weight": 1}]}


def _precise(**sections: object) -> str:
    return spec_text(router=PRECISE, **sections)


def _main(objs: list) -> dict:
    return one(objs, "LLMInferenceService")["spec"]["template"]["containers"][0]


def test_picker_engine_and_network_policy_agree(shared_crds: Path) -> None:
    res = render(_precise(profile="production"), crds=shared_crds)
    objs = objects(res)
    cfg = one(objs, "LLMInferenceService")["spec"]["router"]["scheduler"]["config"]["inline"]
    plugin = next(p for p in cfg["plugins"] if p["type"] == "precise-prefix-cache-scorer")
    params = plugin["parameters"]
    assert params["tokenProcessorConfig"] == {"blockSize": 16, "hashSeed": "42"}
    assert params["indexerConfig"] == {"tokenizersPoolConfig": {"modelName": "meta-llama/Llama-3.1-8B-Instruct"}}
    assert params["kvEventsConfig"] == {"topicFilter": "kv@", "discoverPods": True,
                                        "podDiscoveryConfig": {"socketPort": 5556}}
    assert {"pluginRef": "precise-prefix-cache-scorer", "weight": 3} in cfg["schedulingProfiles"][0]["plugins"]
    main = _main(objs)
    flag = next(a for a in main["args"] if a.startswith("--kv-events-config="))
    events = json.loads(flag.split("=", 1)[1])
    assert events["enable_kv_cache_events"] is True and events["publisher"] == "zmq"
    assert events["endpoint"] == "tcp://*:5556"
    assert events["topic"].startswith("kv@$(POD_IP)@")  # the topic filter's prefix, the pod's IP
    env = {e["name"]: e for e in main["env"]}
    assert env["POD_IP"]["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"
    assert env["PYTHONHASHSEED"]["value"] == params["tokenProcessorConfig"]["hashSeed"]
    np = next(o for o in objs if o["kind"] == "NetworkPolicy")
    assert {"port": 5556, "protocol": "TCP"} in np["spec"]["ingress"][0]["ports"]
    assert not [d for d in res.diagnostics if d.rule == "LD725"]


def test_block_size_follows_the_engine() -> None:
    objs = objects(render(_precise(runtime={"image": "vllm/vllm-openai:v0.11.0", "maxModelLen": 8192,
                                            "extraArgs": ["--block-size=32"]})))
    cfg = one(objs, "LLMInferenceService")["spec"]["router"]["scheduler"]["config"]["inline"]
    plugin = next(p for p in cfg["plugins"] if p["type"] == "precise-prefix-cache-scorer")
    assert plugin["parameters"]["tokenProcessorConfig"]["blockSize"] == 32


def test_without_the_scorer_nothing_changes() -> None:
    objs = objects(render(spec_text(profile="production")))
    main = _main(objs)
    assert not any(a.startswith("--kv-events-config") for a in main["args"])
    assert "PYTHONHASHSEED" not in {e["name"] for e in main.get("env", [])}
    np = next(o for o in objs if o["kind"] == "NetworkPolicy")
    assert all(p["port"] != 5556 for r in np["spec"]["ingress"] for p in r.get("ports", []))


def test_vllm_without_kv_events_is_refused_at_the_scorer() -> None:
    res = render(_precise(runtime={"image": "vllm/vllm-openai:v0.8.5", "maxModelLen": 8192}))
    ld = [d for d in res.diagnostics if d.rule == "LD725"]
    assert len(ld) == 1 and ld[0].is_error
    assert "vLLM 0.8.5 has no --kv-events-config" in ld[0].message and "0.9.0" in (ld[0].hint or "")
    assert errors(res)["LD725"]


def test_prefix_caching_off_and_disaggregation_are_refused() -> None:
    off = render(_precise(runtime={"image": "vllm/vllm-openai:v0.11.0", "maxModelLen": 8192,
                                   "prefixCaching": False}))
    assert any(d.rule == "LD725" and "prefix caching is off" in d.message for d in off.diagnostics)
