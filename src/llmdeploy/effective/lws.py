"""LeaderWorkerSet v0.10.0: the StatefulSets and pods the LWS controller makes of a LeaderWorkerSet.

Each step encodes the controller at the pinned tag (kubernetes-sigs/lws v0.10.0), read
and cited, never copied:

* the leader StatefulSet is named ``<lws>``, ``serviceName: <lws>`` (the headless
  Service LWS creates), ``podManagementPolicy: Parallel``, one replica per group; its
  pod template gets the labels ``leaderworkerset.sigs.k8s.io/name`` and
  ``.../worker-index: "0"`` and the annotation ``.../size`` (plus
  ``.../exclusive-topology`` when the LeaderWorkerSet has it)
  (pkg/controllers/leaderworkerset_controller.go
  ``constructLeaderStatefulSetApplyConfiguration``);
* each group's worker StatefulSet is named after its leader pod ``<lws>-<group>``, with
  ordinals starting at 1, so workers are ``<lws>-<group>-<index>``; its template gets
  ``.../group-index``, ``.../group-key`` (sha1 of ``<namespace>/<leader pod>``) and the
  annotation ``.../leader-name`` (pkg/controllers/pod_controller.go
  ``constructWorkerStatefulSetApplyConfiguration``);
* the pod webhook adds ``.../group-index`` and ``.../group-key`` to leaders, the
  ``.../worker-index`` label to workers, the exclusive-placement affinities, and puts
  ``LWS_LEADER_ADDRESS`` (``<lws>-<group>.<subdomain>.<namespace>``), ``LWS_GROUP_SIZE``
  and ``LWS_WORKER_INDEX`` first in every container's env
  (pkg/webhooks/pod_webhook.go ``Default``, pkg/utils/pod/pod_utils.go
  ``AddLWSVariables``).

Group 0 stands for every group. :func:`workloads` returns the leaders (the pods that
serve and are scraped) for the LD6xx rules; :func:`groups` returns leader and worker
together for the LD8xx group rules.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

from ..records import record
from .kserve import _merge_list, to_container
from .model import Pod, StorageRead, Workload

__all__ = ["LWS_VERSION", "MODE", "LwsGroup", "groups", "pod_manifest", "pod_regex", "workloads"]

LWS_VERSION = "v0.10.0"
API_GROUP = "leaderworkerset.x-k8s.io"
SET_NAME = "leaderworkerset.sigs.k8s.io/name"
GROUP_INDEX = "leaderworkerset.sigs.k8s.io/group-index"
WORKER_INDEX = "leaderworkerset.sigs.k8s.io/worker-index"
GROUP_KEY = "leaderworkerset.sigs.k8s.io/group-key"
SIZE = "leaderworkerset.sigs.k8s.io/size"
LEADER_NAME = "leaderworkerset.sigs.k8s.io/leader-name"
EXCLUSIVE = "leaderworkerset.sigs.k8s.io/exclusive-topology"
#: The mode of a Workload that a LeaderWorkerSet runs.
MODE = "LeaderWorkerSet"


@record
class LwsGroup:
    """One group (index 0) of a LeaderWorkerSet: its leader and worker pods as the cluster runs them."""

    name: str
    namespace: str
    size: int
    replicas: int
    restart_policy: str
    startup_policy: str
    leader: Workload
    worker: Workload | None
    exclusive_topology: str | None


def pod_regex(names: Iterable[str]) -> str:
    """Every pod of these sets: leaders ``<lws>-<group>`` (StatefulSet ordinals), workers ``<lws>-<group>-<index>``.

    Workers hold GPUs too (DCGM series); only leaders serve HTTP, so the HTTP series match
    leaders alone either way. Names are DNS labels: no escaping needed.
    """
    ns = sorted(set(names))
    alt = ns[0] if len(ns) == 1 else "(" + "|".join(ns) + ")"
    return f"{alt}-[0-9]+(-[0-9]+)?"


def group_key(namespace: str, leader_pod: str) -> str:
    """pod_webhook.go ``genGroupUniqueKey``: sha1 of ``<namespace>/<leader pod name>``, hex."""
    return hashlib.sha1(f"{namespace}/{leader_pod}".encode()).hexdigest()


def _exclusive_affinity(spec: dict[str, Any], key: str, topology: str) -> None:
    """pod_webhook.go ``SetExclusiveAffinities``: the group together in one domain, alone there."""
    aff = spec.setdefault("affinity", {})
    aff.setdefault("podAffinity", {}).setdefault("requiredDuringSchedulingIgnoredDuringExecution", []).append({
        "labelSelector": {"matchExpressions": [{"key": GROUP_KEY, "operator": "In", "values": [key]}]},
        "topologyKey": topology})
    aff.setdefault("podAntiAffinity", {}).setdefault("requiredDuringSchedulingIgnoredDuringExecution", []).append({
        "labelSelector": {"matchExpressions": [{"key": GROUP_KEY, "operator": "Exists"},
                                               {"key": GROUP_KEY, "operator": "NotIn", "values": [key]}]},
        "topologyKey": topology})


def _pod(lws: Mapping[str, Any], template: Mapping[str, Any], worker_index: int) -> tuple[str, dict[str, Any]]:
    """The pod ``worker_index`` of group 0: (pod name, pod mapping with metadata and spec)."""
    meta = lws.get("metadata") or {}
    name, ns = str(meta.get("name", "")), str(meta.get("namespace", ""))
    lt = (lws.get("spec") or {}).get("leaderWorkerTemplate") or {}
    size = int(lt.get("size") or 1)
    leader_pod = f"{name}-0"
    pod_name = leader_pod if worker_index == 0 else f"{leader_pod}-{worker_index}"
    tmeta = template.get("metadata") or {}
    labels = {str(k): str(v) for k, v in (tmeta.get("labels") or {}).items()}
    annotations = {str(k): str(v) for k, v in (tmeta.get("annotations") or {}).items()}
    key = group_key(ns, leader_pod)
    labels.update({SET_NAME: name, WORKER_INDEX: str(worker_index), GROUP_INDEX: "0", GROUP_KEY: key})
    annotations[SIZE] = str(size)
    exclusive = (meta.get("annotations") or {}).get(EXCLUSIVE)
    if exclusive:
        annotations[EXCLUSIVE] = str(exclusive)
    if worker_index:
        annotations[LEADER_NAME] = leader_pod
    spec = copy.deepcopy(dict(template.get("spec") or {}))
    # A StatefulSet pod gets hostname = its name and subdomain = the serviceName (<lws>).
    spec["hostname"] = pod_name
    spec["subdomain"] = name
    if exclusive:
        _exclusive_affinity(spec, key, str(exclusive))
    lws_env = [{"name": "LWS_LEADER_ADDRESS", "value": f"{leader_pod}.{name}.{ns}"},
               {"name": "LWS_GROUP_SIZE", "value": str(size)},
               {"name": "LWS_WORKER_INDEX", "value": str(worker_index)}]
    for c in spec.get("containers") or []:
        own = [e for e in c.get("env") or [] if e.get("name") not in {x["name"] for x in lws_env}]
        c["env"] = _merge_list(lws_env, own, "name")
    return pod_name, {"metadata": {"name": pod_name, "namespace": ns, "labels": labels,
                                   "annotations": annotations}, "spec": spec}


def _storage(pod_spec: Mapping[str, Any], container: Mapping[str, Any], sa: str | None) -> StorageRead:
    """What reads the weights: the engine itself, on every pod of the group.

    ``hf://``: vLLM downloads with ``HF_TOKEN`` from the container env (huggingface_hub
    reads the variable, whatever the Secret key is called); ``pvc://``: the claim mounted
    read-only. ``secrets``/``keys_read`` name what the engine's env references, so LD606
    reads the engine as the reader.
    """
    claims = [v["persistentVolumeClaim"]["claimName"] for v in pod_spec.get("volumes") or []
              if isinstance(v.get("persistentVolumeClaim"), Mapping)]
    args = [str(a) for a in container.get("args") or []]
    model = next((a.split("=", 1)[1] for a in args if a.startswith("--model=")), "")
    if claims:
        return StorageRead(f"pvc://{claims[0]}", "pvc", sa, (), (), (), ())
    env = []
    secrets = []
    for e in container.get("env") or []:
        ref = (e.get("valueFrom") or {}).get("secretKeyRef") or {}
        if e.get("name") == "HF_TOKEN" and ref:
            env.append(("HF_TOKEN", f"{ref.get('name')}/{ref.get('key')}"))
            secrets.append(str(ref.get("name")))
    keys = tuple(src.split("/", 1)[1] for _, src in env)
    # No notes: ``render --explain`` labels them as the storage initializer's, which this target has not.
    return StorageRead(f"hf://{model}" if model else "", "hf" if model else None, sa, tuple(secrets), keys,
                       tuple(env), ())


def _workload(lws: Mapping[str, Any], pod: Mapping[str, Any], kind_name: str, service: str | None,
              port: int) -> Workload:
    meta = lws.get("metadata") or {}
    spec = pod["spec"]
    sc = spec.get("securityContext") or {}
    containers = tuple(to_container(c, sc) for c in spec.get("containers") or [])
    sa = spec.get("serviceAccountName")
    main = (spec.get("containers") or [{}])[0]
    p = Pod(dict(pod["metadata"]["labels"]), dict(pod["metadata"]["annotations"]), containers, sa,
            tuple(str(v.get("name")) for v in spec.get("volumes") or []), spec)
    return Workload(str(meta.get("name", "")), str(meta.get("namespace", "")), MODE, "StatefulSet", kind_name,
                    service or "", port, p, str(main.get("name", "")), _storage(spec, main, sa), None)


def _service_for(objs: list[Mapping[str, Any]], ns: str, labels: Mapping[str, str]) -> tuple[str | None, int]:
    for o in objs:
        if o.get("kind") != "Service" or (o.get("metadata") or {}).get("namespace") != ns:
            continue
        sel = (o.get("spec") or {}).get("selector") or {}
        if sel and all(labels.get(k) == v for k, v in sel.items()):
            ports = (o.get("spec") or {}).get("ports") or [{}]
            return str((o.get("metadata") or {}).get("name")), int(ports[0].get("port") or 0)
    return None, 0


def groups(objects: Iterable[Mapping[str, Any]]) -> list[LwsGroup]:
    """Group 0 of every LeaderWorkerSet among ``objects``."""
    objs = [o for o in objects if isinstance(o, Mapping)]
    out = []
    for o in objs:
        if o.get("kind") != "LeaderWorkerSet" or not str(o.get("apiVersion", "")).startswith(API_GROUP + "/"):
            continue
        meta = o.get("metadata") or {}
        name, ns = str(meta.get("name", "")), str(meta.get("namespace", ""))
        spec = o.get("spec") or {}
        lt = spec.get("leaderWorkerTemplate") or {}
        size = int(lt.get("size") or 1)
        worker_t = lt.get("workerTemplate") or {}
        leader_t = lt.get("leaderTemplate") or worker_t  # no leaderTemplate: the worker template for both
        _, lpod = _pod(o, leader_t, 0)
        svc, port = _service_for(objs, ns, lpod["metadata"]["labels"])
        leader = _workload(o, lpod, name, svc, port)
        worker = None
        if size > 1:
            _, wpod = _pod(o, worker_t, 1)
            worker = _workload(o, wpod, f"{name}-0", None, 0)
        out.append(LwsGroup(name, ns, size, int(spec.get("replicas", 1)),
                            str(lt.get("restartPolicy", "RecreateGroupOnPodRestart")),
                            str(spec.get("startupPolicy", "LeaderCreated")), leader, worker,
                            str(meta.get("annotations", {}).get(EXCLUSIVE)) if (meta.get("annotations") or {}).get(
                                EXCLUSIVE) else None))
    return out


def workloads(objects: Iterable[Mapping[str, Any]]) -> list[Workload]:
    """The leader of every LeaderWorkerSet's group 0: the pod that serves, is probed and scraped."""
    return [g.leader for g in groups(objects)]


def pod_manifest(w: Workload) -> dict[str, Any]:
    """The effective pod as ``kubectl get pod -o yaml`` would show it, less runtime fields (no init container)."""
    name = str(w.pod.raw.get("hostname") or w.workload_name)
    meta = {"name": name, "namespace": w.namespace, "labels": dict(sorted(w.pod.labels.items())),
            "annotations": dict(sorted(w.pod.annotations.items()))}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": dict(w.pod.raw)}
