"""The leaderWorkerSet target (#16): the rendered LeaderWorkerSet, its effective pods, and LD808.

The objects are checked against the upstream CRD (../shared/crds, LWS v0.10.0; skipped
with the reason when the folder is absent); the effective model encodes the LWS
controller and pod webhook at v0.10.0 (effective/lws.py cites the files).
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import yaml
from conftest import EXAMPLES
from typer.testing import CliRunner

from llmdeploy.cli import app
from llmdeploy.effective import workloads
from llmdeploy.effective.lws import group_key, groups

EXAMPLE = EXAMPLES / "llama-3.1-405b-h100-2x8-lws.llmdeploy.yaml"


def _render(path: Path, *extra: str) -> list[dict]:  # type: ignore[type-arg]
    r = CliRunner().invoke(app, ["render", str(path), *extra], catch_exceptions=False)
    assert r.exit_code == 0, r.stderr
    return [d for d in yaml.safe_load_all(r.stdout) if d]


def _one(docs: list, kind: str) -> dict:  # type: ignore[type-arg]
    [d] = [d for d in docs if d["kind"] == kind]
    return d


def test_every_object_passes_the_upstream_crds(shared_crds: Path) -> None:
    from llmdeploy.check import Checker

    docs = _render(EXAMPLE, "--crds", str(shared_crds))
    report = Checker([shared_crds]).check(docs)
    assert not report.problems, [str(p) for p in report.problems]
    assert not report.unchecked
    assert {d["kind"] for d in docs} >= {"LeaderWorkerSet", "Service", "ScaledObject", "PodMonitor",
                                         "PodDisruptionBudget", "NetworkPolicy", "PrometheusRule"}
    assert not [d for d in docs if d["kind"] in ("InferenceService", "ClusterServingRuntime", "ServiceAccount")]


def test_the_group_follows_vllms_recipe() -> None:
    lws = _one(_render(EXAMPLE), "LeaderWorkerSet")
    lt = lws["spec"]["leaderWorkerTemplate"]
    assert lt["size"] == 2 and lt["restartPolicy"] == "RecreateGroupOnPodRestart"
    assert lws["spec"]["startupPolicy"] == "LeaderCreated"
    leader = lt["leaderTemplate"]["spec"]["containers"][0]
    worker = lt["workerTemplate"]["spec"]["containers"][0]
    assert "multi-node-serving.sh leader" in leader["command"][2] and "LWS_GROUP_SIZE" in leader["command"][2]
    assert leader["command"][2].endswith('exec python3 -m vllm.entrypoints.openai.api_server "$@"')
    assert "multi-node-serving.sh worker" in worker["command"][2] and "LWS_LEADER_ADDRESS" in worker["command"][2]
    args = leader["args"]
    assert "--model=meta-llama/Llama-3.1-405B-Instruct" in args
    assert {"--tensor-parallel-size=8", "--pipeline-parallel-size=2", "--distributed-executor-backend=ray"} <= set(args)
    for c in (leader, worker):
        assert c["resources"]["limits"]["nvidia.com/gpu"] == "8"  # 16 GPUs over 2 pods
        assert c["resources"]["limits"]["rdma/ib"] == "1"
        assert "IPC_LOCK" in c["securityContext"]["capabilities"]["add"]
        env = {e["name"]: e for e in c["env"]}
        assert env["HF_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "hf-token", "key": "HF_TOKEN"}
        assert env["USER"]["value"] and env["HOME"]["value"].startswith("/tmp")
        assert "NCCL_IB_DISABLE" not in env  # infiniband
        assert {m["mountPath"] for m in c["volumeMounts"]} >= {"/dev/shm", "/tmp"}
    assert leader["readinessProbe"]["httpGet"]["path"] == "/health"
    assert "raylet" in worker["livenessProbe"]["exec"]["command"][2]
    assert "readinessProbe" not in worker and "ports" not in worker


def test_scaling_monitoring_and_policy_target_the_set() -> None:
    docs = _render(EXAMPLE)
    so = _one(docs, "ScaledObject")
    assert so["spec"]["scaleTargetRef"] == {"apiVersion": "leaderworkerset.x-k8s.io/v1", "kind": "LeaderWorkerSet",
                                            "name": "llama-3-1-405b"}
    pm = _one(docs, "PodMonitor")
    assert pm["spec"]["selector"]["matchLabels"] == {"leaderworkerset.sigs.k8s.io/name": "llama-3-1-405b",
                                                     "leaderworkerset.sigs.k8s.io/worker-index": "0"}
    svc = _one(docs, "Service")
    assert svc["metadata"]["name"] == "llama-3-1-405b-leader"  # LWS owns the headless <name>
    assert svc["spec"]["selector"] == pm["spec"]["selector"]["matchLabels"]
    pdb = _one(docs, "PodDisruptionBudget")
    assert pdb["spec"]["selector"] == {"matchLabels": {"leaderworkerset.sigs.k8s.io/name": "llama-3-1-405b"}}
    np = _one(docs, "NetworkPolicy")
    assert {"from": [{"podSelector": pdb["spec"]["selector"]}]} in np["spec"]["ingress"]  # Ray and NCCL
    # GPU and HTTP series are matched by the set's pod names, not KServe's predictor names.
    text = yaml.safe_dump(docs)
    assert "-predictor" not in text  # (alert prose may say "predictor pod")


def test_topology_key_becomes_lws_exclusive_placement(tmp_path: Path) -> None:
    p = tmp_path / "s.llmdeploy.yaml"
    p.write_text(EXAMPLE.read_text().replace("      rdma/ib: 1\n",
                                             "      rdma/ib: 1\n    topologyKey: example.com/ib-leaf\n"))
    docs = _render(p)
    lws = _one(docs, "LeaderWorkerSet")
    assert lws["metadata"]["annotations"]["leaderworkerset.sigs.k8s.io/exclusive-topology"] == "example.com/ib-leaf"
    [g] = groups(docs)
    aff = g.worker.pod.raw["affinity"]
    term = aff["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]
    assert term["topologyKey"] == "example.com/ib-leaf"
    assert term["labelSelector"]["matchExpressions"][0]["values"] == [group_key("inference", "llama-3-1-405b-0")]


def test_effective_pods_as_the_lws_controller_makes_them() -> None:
    docs = _render(EXAMPLE)
    [g] = groups(docs)
    assert g.size == 2 and g.restart_policy == "RecreateGroupOnPodRestart"
    leader, worker = g.leader, g.worker
    assert worker is not None
    assert (leader.workload_kind, leader.workload_name, worker.workload_name) == ("StatefulSet", "llama-3-1-405b",
                                                                                   "llama-3-1-405b-0")
    assert leader.pod.labels["leaderworkerset.sigs.k8s.io/worker-index"] == "0"
    assert worker.pod.labels["leaderworkerset.sigs.k8s.io/worker-index"] == "1"
    assert worker.pod.annotations["leaderworkerset.sigs.k8s.io/leader-name"] == "llama-3-1-405b-0"
    wc = worker.pod.container("engine")
    assert wc is not None
    assert wc.env[0].name == "LWS_LEADER_ADDRESS"
    assert wc.env_value("LWS_LEADER_ADDRESS") == "llama-3-1-405b-0.llama-3-1-405b.inference"
    assert wc.env_value("LWS_GROUP_SIZE") == "2" and wc.env_value("LWS_WORKER_INDEX") == "1"
    assert leader.service_name == "llama-3-1-405b-leader" and leader.service_port == 8080
    assert leader.storage.scheme == "hf" and leader.storage.secrets == ("hf-token",)
    # The LD6xx rules see the leaders; the worker is read by LD808.
    assert [w.workload_name for w in workloads(docs)] == ["llama-3-1-405b"]
    regex = r"llama-3-1-405b-[0-9]+(-[0-9]+)?"
    assert regex in yaml.safe_dump(_one(docs, "PrometheusRule"))
    assert re.fullmatch(regex, "llama-3-1-405b-0-1") and not re.fullmatch(regex, "llama-3-1-405b-canary-0")


def test_ld808_refuses_a_group_that_cannot_start(tmp_path: Path) -> None:
    """startupPolicy LeaderReady would deadlock (the leader is ready only once the workers joined)."""
    from llmdeploy.pipeline import analyze, load_specs
    from llmdeploy.rules import EffectiveContext, load_all, run_rules

    docs = _render(EXAMPLE)
    [a] = [analyze(d) for d in load_specs([str(EXAMPLE)])[0]]
    load_all()

    def ld808(objs: list) -> list:  # type: ignore[type-arg]
        found = workloads(objs)
        ctx = EffectiveContext(a.validated, a.resolved, found[0], objs, found)
        return [d for d in run_rules(ctx, stage="effective") if d.rule == "LD808"]

    assert ld808(docs) == []
    bad = copy.deepcopy(docs)
    lws = _one(bad, "LeaderWorkerSet")
    lws["spec"]["startupPolicy"] = "LeaderReady"
    wc = lws["spec"]["leaderWorkerTemplate"]["workerTemplate"]["spec"]["containers"][0]
    wc["env"] = [e for e in wc["env"] if e["name"] not in ("USER", "LOGNAME")]
    wc["resources"]["limits"]["nvidia.com/gpu"] = "4"
    msgs = " | ".join(d.message for d in ld808(bad))
    assert "never starts" in msgs and "UID 1000" in msgs and "12 GPUs" in msgs


def test_pvc_weights_are_mounted_read_only(tmp_path: Path) -> None:
    p = tmp_path / "s.llmdeploy.yaml"
    p.write_text(EXAMPLE.read_text().replace("hf://meta-llama/Llama-3.1-405B-Instruct", "pvc://models/llama-405b"))
    lws = _one(_render(p), "LeaderWorkerSet")
    spec = lws["spec"]["leaderWorkerTemplate"]["leaderTemplate"]["spec"]
    assert {"name": "model", "persistentVolumeClaim": {"claimName": "models", "readOnly": True}} in spec["volumes"]
    assert "--model=/mnt/models/llama-405b" in spec["containers"][0]["args"]
    assert "ephemeral-storage" not in spec["containers"][0]["resources"]["limits"]


def test_ethernet_fabric_sets_nccl_env(tmp_path: Path) -> None:
    p = tmp_path / "s.llmdeploy.yaml"
    p.write_text(EXAMPLE.read_text().replace("    fabric: infiniband\n    rdmaResources:\n      rdma/ib: 1\n",
                                             "    fabric: ethernet\n    socketIfname: eth0\n"))
    lws = _one(_render(p), "LeaderWorkerSet")
    c = lws["spec"]["leaderWorkerTemplate"]["workerTemplate"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["NCCL_IB_DISABLE"] == "1" and env["NCCL_SOCKET_IFNAME"] == "eth0" and env["GLOO_SOCKET_IFNAME"] == "eth0"
    assert c["securityContext"]["capabilities"] == {"drop": ["ALL"]}


def test_explain_shows_the_leader_pod_without_a_storage_initializer() -> None:
    r = CliRunner().invoke(app, ["render", str(EXAMPLE), "--explain"], catch_exceptions=False)
    assert r.exit_code == 0, r.stderr
    # (cli_render's explain joins the pod YAML and the next line without a newline: compare text.)
    explained = r.stderr[r.stderr.index("# effective pod of inference/llama-3-1-405b"):]
    assert "  name: llama-3-1-405b-0\n" in explained
    assert "initContainers" not in explained and "storage-initializer" not in explained.split("\n", 1)[1]
    env = explained[explained.index("    env:\n"):]
    assert env.split("\n")[1] == "    - name: LWS_LEADER_ADDRESS"


def test_lora_adapters_reach_the_leader(tmp_path: Path) -> None:
    """hf:// adapters are downloaded by vLLM itself, as on the inferenceService target (LD705)."""
    p = tmp_path / "s.llmdeploy.yaml"
    p.write_text(EXAMPLE.read_text().replace(
        "    secretRef: hf-token\n",
        "    secretRef: hf-token\n  loras:\n    - {name: sql, storageUri: \"hf://org/llama-405b-sql-lora\", rank: 16}\n"))
    lws = _one(_render(p), "LeaderWorkerSet")
    args = lws["spec"]["leaderWorkerTemplate"]["leaderTemplate"]["spec"]["containers"][0]["args"]
    assert args.count("--enable-lora") == 1
    assert args[args.index("--lora-modules") + 1] == "sql=org/llama-405b-sql-lora"
