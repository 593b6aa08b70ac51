"""The plain LeaderWorkerSet target: one multi-node replica per group, no KServe.

``deployment.target: leaderWorkerSet`` renders a LeaderWorkerSet
(``leaderworkerset.x-k8s.io/v1``, LWS v0.10.0) whose groups have ``resources.nodes`` pods
— a leader and ``nodes − 1`` workers, one per node — following vLLM's own LWS recipe
(docs/deployment/frameworks/lws.md and examples/online_serving/multi-node-serving.sh in
vLLM v0.11.0; the script is in the ``vllm/vllm-openai`` image under
``/vllm-workspace``, docker/Dockerfile ``COPY examples examples``):

* the leader starts a Ray head and waits until ``LWS_GROUP_SIZE`` Ray nodes are alive,
  then runs the OpenAI server with ``--distributed-executor-backend=ray``; the workers
  join the head at ``LWS_LEADER_ADDRESS`` (LWS injects both variables into every
  container: pkg/utils/pod/pod_utils.go ``AddLWSVariables`` at v0.10.0);
* ``restartPolicy: RecreateGroupOnPodRestart``: a lost worker takes its Ray node and
  the engine's ranks with it, so the whole group restarts;
* ``startupPolicy: LeaderCreated``: the workers must start before the leader can become
  ready (its server starts only once every Ray node joined), so ``LeaderReady`` would
  wait forever;
* the leader's probes are the engine's ``/health``, which answers only after the Ray
  cluster is complete and every rank loaded its weights: "ready" means the whole group
  serves. Workers have no server; their startup and liveness probes check that the Ray
  worker process (``raylet``) lives.

The engine container (args, env, resources per pod, probes, drain, security) is the one
:func:`llmdeploy.plan.kserve.plan_engine` decides for every target; this module only
changes what a LeaderWorkerSet needs differently: the command, the weights (no storage
initializer: the engine downloads ``hf://`` itself or reads a mounted ``pvc://``), a
writable ``/tmp`` for Ray's session files, NCCL's environment and the RDMA devices.
Scaling (KEDA on the LWS scale subresource), the PodMonitor on the leaders, the
PrometheusRule and the dashboard reuse the section planners of the KServe target.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

from .. import naming
from ..derive.storage import storage_scheme
from ..sizing.topology import node_layout
from . import kserve, monitoring, policy, scaling
from .kserve import EnginePlan, gib
from .model import Manifest, Plan, PlanContext

API_VERSION = "leaderworkerset.x-k8s.io/v1"
KIND = "LeaderWorkerSet"
# api/leaderworkerset/v1/leaderworkerset_types.go at v0.10.0.
SET_NAME_LABEL = "leaderworkerset.sigs.k8s.io/name"
WORKER_INDEX_LABEL = "leaderworkerset.sigs.k8s.io/worker-index"
EXCLUSIVE_TOPOLOGY = "leaderworkerset.sigs.k8s.io/exclusive-topology"
# vLLM v0.11.0 docker/Dockerfile: WORKDIR /vllm-workspace, COPY examples examples.
RAY_SCRIPT = "/vllm-workspace/examples/online_serving/multi-node-serving.sh"
RAY_PORT = 6379  # the script's default --ray_port (the Ray head's GCS)
ENGINE_CONTAINER = "engine"
TMP_VOLUME = "tmp"
MODEL_VOLUME = "model"
MODEL_MOUNT = "/mnt/models"
# Probing for the Ray worker process: the image has Python but not necessarily procps.
RAYLET_CHECK = ("import os,sys\n"
                "def cmd(p):\n"
                "    try:\n"
                "        return open('/proc/'+p+'/cmdline','rb').read()\n"
                "    except OSError:\n"
                "        return b''\n"
                "sys.exit(0 if any(b'raylet' in cmd(p) for p in os.listdir('/proc') if p.isdigit()) else 1)\n")


def leader_name(ctx: PlanContext) -> str:
    """The Service clients call: the leaders of every group (LWS itself owns the headless ``<name>``)."""
    return naming.child(ctx.name, "leader")


def leader_selector(name: str) -> dict[str, str]:
    """Labels LWS puts on every leader pod (the leader StatefulSet's selector, v0.10.0)."""
    return {SET_NAME_LABEL: name, WORKER_INDEX_LABEL: "0"}


def _model_args(ctx: PlanContext) -> tuple[list[str], list[dict[str, Any]], list[dict[str, Any]]]:
    """The ``--model`` flag and the volume (and mount) that give the engine its weights."""
    m = ctx.spec.model
    uri = m.storage_uri
    if storage_scheme(uri) == "pvc":
        claim, _, path = uri[len("pvc://"):].partition("/")
        volume = {"name": MODEL_VOLUME, "persistentVolumeClaim": {"claimName": claim, "readOnly": True}}
        mount = {"name": MODEL_VOLUME, "mountPath": MODEL_MOUNT, "readOnly": True}
        target = f"{MODEL_MOUNT}/{path}".rstrip("/")
        return [f"--model={target}"], [volume], [mount]
    # hf://org/model[:revision]: vLLM downloads it from the Hub into HF_HOME on every node.
    repo, _, rev = uri[len("hf://"):].partition(":")
    args = [f"--model={repo}"]
    revision = rev or m.revision
    if revision:
        args.append(f"--revision={revision}")
    return args, [], []


def _nccl_env(ctx: PlanContext) -> list[dict[str, Any]]:
    """NCCL and Gloo settings for the declared interconnect (NCCL environment variables docs)."""
    ic = ctx.spec.resources.interconnect
    env: list[dict[str, Any]] = []
    if ic.fabric == "ethernet":
        # No RDMA devices in the pod: make NCCL's choice explicit instead of probing for HCAs.
        env.append({"name": "NCCL_IB_DISABLE", "value": "1"})
    if ic.socket_ifname:
        env.append({"name": "NCCL_SOCKET_IFNAME", "value": ic.socket_ifname})
        env.append({"name": "GLOO_SOCKET_IFNAME", "value": ic.socket_ifname})
    return env


def _env(ctx: PlanContext, engine: EnginePlan) -> list[dict[str, Any]]:
    """The engine's env with the topology's NCCL settings; the user's own entries still win."""
    user = {e.name for e in ctx.spec.runtime.env}
    out = [dict(e) for e in engine.env]
    names = {e["name"] for e in out}
    for e in _nccl_env(ctx):
        if e["name"] not in user and e["name"] not in names:
            out.append(e)
    return out


def _resources(ctx: PlanContext, engine: EnginePlan) -> dict[str, Any]:
    """Per-pod resources: the engine's, plus RDMA devices and room for a full hf:// download.

    vLLM's default loader downloads every ``*.safetensors`` file of the repository on each
    node (model_executor/model_loader/default_loader.py ``_prepare_weights``, v0.11.0),
    whatever stages the node runs, so the ephemeral storage is for the whole model.
    """
    res = copy.deepcopy(engine.resources)
    r = ctx.spec.resources
    for k, v in sorted(r.interconnect.rdma_resources.items()):
        res["requests"][k] = str(v)
        res["limits"][k] = str(v)
    if storage_scheme(ctx.spec.model.storage_uri) == "hf" and r.ephemeral_storage in (None, "auto"):
        eph = gib(ctx.sizing.weights_bytes_total / 2**30 * 1.1 + 20)
        res["requests"]["ephemeral-storage"] = eph
        res["limits"]["ephemeral-storage"] = eph
    return res


def _security(ctx: PlanContext, engine: EnginePlan) -> dict[str, Any]:
    sc = copy.deepcopy(engine.container_security)
    if ctx.spec.resources.interconnect.fabric in ("infiniband", "roce"):
        # RDMA registers (pins) GPU and host memory: the verbs library needs IPC_LOCK for the
        # locked-memory limit (NVIDIA Network Operator / GPUDirect RDMA pod examples).
        sc["capabilities"] = {"drop": ["ALL"], "add": ["IPC_LOCK"]}
    return sc


def _script(role: str, budget: int) -> str:
    """The shell line that starts Ray (and, on the leader, the engine with the container's args)."""
    if role == "leader":
        return (f'bash {RAY_SCRIPT} leader --ray_cluster_size="${{LWS_GROUP_SIZE}}" --ray_port={RAY_PORT} '
                f'--ray_init_timeout={budget} && exec python3 -m vllm.entrypoints.openai.api_server "$@"')
    return (f'exec bash {RAY_SCRIPT} worker --ray_address="${{LWS_LEADER_ADDRESS}}" --ray_port={RAY_PORT} '
            f"--ray_init_timeout={budget}")


def _pod_spec(ctx: PlanContext, engine: EnginePlan, container: dict[str, Any],
              volumes: list[dict[str, Any]]) -> dict[str, Any]:
    s = ctx.spec
    spec: dict[str, Any] = {"containers": [container], "volumes": volumes}
    sa = s.deployment.service_account or s.model.credentials.service_account
    if sa:
        spec["serviceAccountName"] = sa
    if engine.node_selector:
        spec["nodeSelector"] = dict(engine.node_selector)
    spec["tolerations"] = [dict(t) for t in engine.tolerations]
    if s.deployment.priority_class_name:
        spec["priorityClassName"] = s.deployment.priority_class_name
    spec["securityContext"] = dict(engine.pod_security)
    spec["terminationGracePeriodSeconds"] = engine.termination_grace_seconds
    return spec


def _templates(ctx: PlanContext, engine: EnginePlan) -> tuple[dict[str, Any], dict[str, Any]]:
    """The leader and worker pod templates."""
    s = ctx.spec
    budget = kserve.startup_budget(ctx)
    model_args, model_volumes, model_mounts = _model_args(ctx)
    env = _env(ctx, engine)
    resources = _resources(ctx, engine)
    security = _security(ctx, engine)
    # /tmp: Ray's session directory (/tmp/ray) and, for a non-root engine, HOME, HF_HOME and
    # the caches (plan_engine points them there); sized for a full hf:// download.
    tmp_limit = resources["limits"].get("ephemeral-storage")
    tmp = {"name": TMP_VOLUME, "emptyDir": ({"sizeLimit": tmp_limit} if tmp_limit else {})}
    volumes = [dict(v) for v in engine.volumes] + [tmp] + model_volumes
    mounts = [dict(m) for m in engine.volume_mounts] + [{"name": TMP_VOLUME, "mountPath": "/tmp"}] + model_mounts

    args = [*model_args, f"--port={engine.port}", "--distributed-executor-backend=ray", *engine.args]
    if "--enable-lora" not in engine.args:
        # hf:// adapters, downloaded by vLLM itself as on the inferenceService target (LD705).
        args += kserve.lora_args(ctx)
    leader_c: dict[str, Any] = {
        "name": ENGINE_CONTAINER,
        "image": engine.image,
        "command": ["/bin/bash", "-c", _script("leader", budget), "vllm-leader"],
        "args": args,
        "ports": [{"name": engine.port_name, "containerPort": engine.port, "protocol": "TCP"},
                  {"name": "ray-gcs", "containerPort": RAY_PORT, "protocol": "TCP"}],
        "env": env,
        "resources": resources,
        "startupProbe": engine.startup_probe,
        "readinessProbe": engine.readiness_probe,
        "livenessProbe": engine.liveness_probe,
        "lifecycle": {"preStop": engine.prestop},
        "securityContext": security,
        "volumeMounts": mounts,
    }
    raylet = {"exec": {"command": ["python3", "-c", RAYLET_CHECK]}}
    worker_c: dict[str, Any] = {
        "name": ENGINE_CONTAINER,
        "image": engine.image,
        "command": ["/bin/bash", "-c", _script("worker", budget), "vllm-worker"],
        "env": env,
        "resources": resources,
        "startupProbe": {**raylet, "periodSeconds": kserve.PROBE_PERIOD_SECONDS, "timeoutSeconds": 5,
                         "failureThreshold": max(1, budget // kserve.PROBE_PERIOD_SECONDS)},
        "livenessProbe": {**raylet, "periodSeconds": 30, "timeoutSeconds": 10, "failureThreshold": 3},
        "securityContext": security,
        "volumeMounts": mounts,
    }
    leader_labels = ctx.labels("leader", spec_hash=False)
    worker_labels = ctx.labels("worker", spec_hash=False)
    leader_meta: dict[str, Any] = {"labels": leader_labels}
    if s.monitoring.enabled and s.monitoring.scrape == "annotations":
        leader_meta["annotations"] = {"prometheus.io/scrape": "true", "prometheus.io/port": str(engine.port),
                                      "prometheus.io/path": engine.metrics_path}
    leader = {"metadata": leader_meta, "spec": _pod_spec(ctx, engine, leader_c, volumes)}
    worker = {"metadata": {"labels": worker_labels}, "spec": _pod_spec(ctx, engine, worker_c, volumes)}
    return leader, worker


def lws_manifest(ctx: PlanContext, engine: EnginePlan, replicas: int) -> Manifest:
    """The LeaderWorkerSet: ``replicas`` groups of ``resources.nodes`` pods."""
    s = ctx.spec
    leader, worker = _templates(ctx, engine)
    annotations = dict(s.metadata.annotations)
    if s.resources.interconnect.topology_key:
        # Copied to every pod; LWS's pod webhook turns it into a required podAffinity (same
        # domain for the group) and podAntiAffinity (no other group there) on the key
        # (pkg/webhooks/pod_webhook.go SetExclusiveAffinities, v0.10.0).
        annotations[EXCLUSIVE_TOPOLOGY] = s.resources.interconnect.topology_key
    # No spec hash on the LeaderWorkerSet: its labels reach the StatefulSets, not the pods,
    # but an alert edit must not show up as a change of the GPU workload either.
    meta = ctx.metadata(ctx.name, component="inference-server", annotations=annotations, spec_hash=False)
    spec = {
        "replicas": replicas,
        "startupPolicy": "LeaderCreated",
        # rollout.strategy rolling: surge one group, never drop serving capacity (needs the
        # nodes of one spare group during a rollout).
        "rolloutStrategy": {"type": "RollingUpdate",
                            "rollingUpdateConfiguration": {"maxUnavailable": 0, "maxSurge": 1}},
        "leaderWorkerTemplate": {
            "size": s.resources.nodes,
            "restartPolicy": "RecreateGroupOnPodRestart",
            "leaderTemplate": leader,
            "workerTemplate": worker,
        },
    }
    return Manifest("lws/leaderworkerset.yaml.j2", KIND, ctx.name, {"metadata": meta, "spec": spec},
                    namespace=ctx.namespace, aliases=("lws", "leaderworkerset"))


def service_manifest(ctx: PlanContext, engine: EnginePlan) -> Manifest:
    """A ClusterIP Service on the leaders' serving port (vLLM's LWS recipe: ``<name>-leader``)."""
    name = leader_name(ctx)
    spec = {
        "type": "ClusterIP",
        "selector": leader_selector(ctx.name),
        "ports": [{"name": "http", "port": engine.port, "targetPort": engine.port_name, "protocol": "TCP"}],
    }
    return Manifest("lws/service.yaml.j2", "Service", name,
                    {"metadata": ctx.metadata(name, component="inference-server"), "spec": spec},
                    namespace=ctx.namespace, aliases=("service", "svc"))


def _group_selector(ctx: PlanContext, set_label: str = SET_NAME_LABEL) -> dict[str, Any]:
    return {"matchLabels": {set_label: ctx.name}}


def pdb_manifest(ctx: PlanContext, set_label: str = SET_NAME_LABEL) -> Manifest | None:
    """One PodDisruptionBudget over every pod of the set.

    Losing any pod recreates its whole group (RecreateGroupOnPodRestart), so a budget in
    pods is a budget in groups: ``maxUnavailable: 1`` lets a drain take one group down at a
    time, and none while another group is still (re)loading. ``set_label`` is the label
    that names the set on its pods (a DisaggregatedSet's for its roles' pods).
    """
    return policy.pdb_manifest(ctx, [ctx.name], policy_pods(ctx, set_label))


def policy_pods(ctx: PlanContext, set_label: str = SET_NAME_LABEL) -> policy.PolicyPods:
    """Every pod of the set (leaders and workers), under the set's own name."""
    return policy.PolicyPods(selector=_group_selector(ctx, set_label), name=ctx.name)


def network_ingress(ctx: PlanContext, set_label: str = SET_NAME_LABEL) -> policy.PolicyIngress:
    """The pods of the set admit each other on every port (:func:`networkpolicy_manifest`)."""
    return policy.PolicyIngress(peer_selectors=(_group_selector(ctx, set_label),))


def networkpolicy_manifest(ctx: PlanContext, engine: EnginePlan, set_label: str = SET_NAME_LABEL) -> Manifest | None:
    """The KServe target's ingress rules on the leaders' port, plus every port between the group's pods.

    Ray (GCS 6379, raylet, object manager and worker ports it picks at random) and NCCL's
    socket bootstrap connect pod to pod inside a group, so the pods of the set admit each
    other on all ports. ``set_label`` as in :func:`pdb_manifest`.
    """
    return policy.networkpolicy_manifest(ctx, engine, [ctx.name], [network_ingress(ctx, set_label)],
                                         policy_pods(ctx, set_label))


def scaledobject_manifest(ctx: PlanContext, target: scaling.ScaleTarget) -> tuple[Manifest, list[str]]:
    """KEDA on the LeaderWorkerSet's scale subresource (``.spec.replicas``: groups)."""
    base, notes = scaling.scaledobject_manifest(ctx, target)
    values = copy.deepcopy(dict(base.values))
    values["spec"]["scaleTargetRef"] = {"apiVersion": API_VERSION, "kind": KIND, "name": ctx.name}
    return replace(base, values=values), notes


def build_plan(ctx: PlanContext) -> Plan:
    """Every manifest of a service on the leaderWorkerSet target."""
    engine = kserve.plan_engine(ctx)
    s = ctx.spec
    target = scaling.primary_target(ctx)
    b = target.bounds
    notes = [f"scaling: {ctx.name} groups {b.floor}..{b.max} ({b.reason})"]
    reason = ctx.sizing.max_num_seqs_reason
    if reason:
        notes.insert(0, f"engine: max-num-seqs {engine.max_num_seqs}: {reason}")
    layout = node_layout(s, ctx.model, ctx.gpu, ctx.engine)
    per_node = [", ".join(map(str, st)) for st in layout.stages_per_node]
    # vLLM gives the first ranks to the driver's node (the leader), the rest to the other
    # nodes ordered by IP (sort_by_driver_then_worker_ip), not by LWS worker index.
    where = (f"leader: stage {per_node[0]}; the other nodes, ordered by IP: " + " | ".join(per_node[1:])
             if per_node else "tensor parallel spans the nodes")
    notes.append(f"topology: {ctx.name} {layout.nodes} nodes × {layout.gpus_per_pod} GPUs per group; layers per "
                 f"stage {', '.join(map(str, layout.layers))}; {where}")
    manifests: list[Manifest] = []
    manifests.append(lws_manifest(ctx, engine, b.min))
    manifests.append(service_manifest(ctx, engine))
    if s.scaling.autoscaler == "keda":
        auth = scaling.trigger_auth_manifest(ctx)
        if auth is not None:
            manifests.append(auth)
        so, so_notes = scaledobject_manifest(ctx, target)
        manifests.append(so)
        notes.extend(so_notes)
    mon = monitoring.plan_monitoring(ctx, engine)
    manifests.extend(mon.manifests)
    notes.extend(mon.notes)
    for m in (pdb_manifest(ctx), networkpolicy_manifest(ctx, engine)):
        if m is not None:
            manifests.append(m)
    manifests.sort(key=Manifest.sort_key)
    return Plan(ctx, tuple(manifests), tuple(notes))
