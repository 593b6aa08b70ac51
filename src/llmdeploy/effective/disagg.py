"""KServe v0.20.0: the two workloads of a disaggregated LLMInferenceService (``spec.prefill``).

Read from kserve/kserve v0.20.0 (cited, never copied):

* ``config_merge.go`` ``combineBaseRefsConfig``: with ``spec.prefill`` (and no ``worker``)
  the service takes ``kserve-config-llm-decode-template`` and its ``prefill`` takes
  ``kserve-config-llm-prefill-template`` (instead of ``kserve-config-llm-template``).
* ``config-llm-decode-template.yaml``: the ``main`` container runs ``vllm serve /mnt/models
  --served-model-name <name> publishers/<ns>/models/<name> --port 8001 … "$@"``, probes and
  port on 8001, plus the init container ``llm-d-routing-sidecar``
  (``restartPolicy: Always``: a sidecar; ``/app/pd-sidecar --port=8000 --vllm-port=8001
  --kv-connector=nixlv2 …``) that receives the pool's traffic on 8000.
* ``config-llm-prefill-template.yaml``: ``main`` runs ``vllm serve /mnt/models
  --served-model-name <name> --port 8000 [--tensor-parallel-size <prefill.parallelism.tensor>] … "$@"``.
* ``workload_single_node.go``: the decode Deployment ``<name>-kserve`` with ``llm-d.ai/role:
  decode``; ``expectedPrefillMainDeployment``: Deployment ``<name>-kserve-prefill``, pod labels
  ``app.kubernetes.io/component: llminferenceservice-workload-prefill``, name, part-of,
  ``kserve.io/component: workload``, ``llm-d.ai/role: prefill``, then ``prefill.labels`` and
  ``prefill.annotations``; the model is attached to both (``attachModelArtifacts``).
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from .llmisvc import (
    APP_COMPONENT,
    APP_NAME,
    ENGINE_PORT,
    KSERVE_COMPONENT,
    LLMD_ROLE,
    MAIN_CONTAINER,
    MODEL_MOUNT,
    PART_OF,
    PRESET_MAIN,
    PRESET_POD,
    deployment_name,
    is_llmisvc,
    merge_pod_spec,
    propagated_pod_metadata,
    serve_containers,
    workload_service_name,
)
from .model import Pod, Workload
from .storage import service_accounts, storage_read

__all__ = ["DECODE_PORT", "ROUTING_SIDECAR", "dset_leaderworkersets", "dset_pod_regex", "fixed_labels",
           "prefill_deployment_name", "revision", "role_of", "serving_port", "workloads"]

DECODE_PORT = 8001
ROUTING_SIDECAR = "llm-d-routing-sidecar"
# The decode preset's routing sidecar, summarised (TLS off): what a reader of the pod needs.
SIDECAR: dict[str, Any] = {
    "name": ROUTING_SIDECAR,
    "image": "ghcr.io/llm-d/llm-d-router-disagg-sidecar:v0.9.0",
    "restartPolicy": "Always",
    "ports": [{"containerPort": ENGINE_PORT, "protocol": "TCP"}],
    "command": ["/app/pd-sidecar", f"--port={ENGINE_PORT}", f"--vllm-port={DECODE_PORT}", "--kv-connector=nixlv2",
                "--enable-ssrf-protection=true", "--pool-group=inference.networking.x-k8s.io",
                "--inference-pool=<namespace>/<name>-inference-pool", "--secure-proxy=false"],
    "env": [{"name": "INFERENCE_POOL_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}],
    "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": False, "runAsNonRoot": True,
                        "capabilities": {"drop": ["ALL"]}},
}


def prefill_deployment_name(name: str) -> str:
    """``prefillDeploymentName``: ``kmeta.ChildName(name, "-kserve-prefill")``."""
    return f"{name}-kserve-prefill"


def _preset(name: str, port: int, sidecar: bool) -> dict[str, Any]:
    main = copy.deepcopy(PRESET_MAIN)
    main["ports"] = [{"containerPort": port, "protocol": "TCP"}]
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        main[probe]["httpGet"]["port"] = port
    pod = copy.deepcopy(PRESET_POD)
    pod["containers"] = [main]
    pod["volumes"][-1]["secret"]["secretName"] = f"{name}-kserve-self-signed-certs"
    if sidecar:
        side = copy.deepcopy(SIDECAR)
        side["command"] = [c.replace("<name>", name) for c in side["command"]]
        pod["initContainers"] = [side]
    return pod


def _workload(o: Mapping[str, Any], part: Mapping[str, Any], role: str, accounts: Mapping[Any, Any]) -> Workload:
    meta = o.get("metadata") or {}
    spec = o.get("spec") or {}
    name, ns = str(meta.get("name", "")), str(meta.get("namespace", ""))
    decode = role == "decode"
    port = DECODE_PORT if decode else ENGINE_PORT
    pod_spec = merge_pod_spec(_preset(name, port, decode), part.get("template") or {})
    model = spec.get("model") or {}
    uri = str(model.get("uri", ""))
    served = str(model.get("name") or name)
    argv = [MODEL_MOUNT, "--served-model-name", served]
    if decode:
        argv.append(f"publishers/{ns}/models/{served}")
    argv += ["--port", str(port)]
    tensor = (part.get("parallelism") or {}).get("tensor")
    if tensor:
        argv += ["--tensor-parallel-size", str(tensor)]
    containers = serve_containers(o, pod_spec, uri, argv)
    component = "llminferenceservice-workload" + ("" if decode else "-prefill")
    fixed = {APP_COMPONENT: component, APP_NAME: name, PART_OF: "llminferenceservice",
             KSERVE_COMPONENT: "workload", LLMD_ROLE: role}
    labels, annotations = propagated_pod_metadata(meta, part, fixed)
    sa_name = pod_spec.get("serviceAccountName")
    storage = storage_read(uri, sa_name, accounts.get((ns, sa_name)))
    pod = Pod(labels, annotations, containers, sa_name,
              tuple(str(v.get("name")) for v in pod_spec.get("volumes") or []), pod_spec)
    workload_name = deployment_name(name) if decode else prefill_deployment_name(name)
    return Workload(name, ns, "Standard", "Deployment", workload_name, workload_service_name(name),
                    port, pod, MAIN_CONTAINER, storage, None)


def workloads(objects: Iterable[Mapping[str, Any]]) -> list[Workload]:
    """The decode and prefill workloads of every single-node LLMInferenceService with ``spec.prefill``."""
    objs = [o for o in objects if isinstance(o, Mapping)]
    accounts = service_accounts(objs)
    out = []
    for o in objs:
        spec = o.get("spec") or {}
        if not is_llmisvc(o) or spec.get("prefill") is None or spec.get("worker") is not None:
            continue
        out.append(_workload(o, spec, "decode", accounts))
        out.append(_workload(o, spec.get("prefill") or {}, "prefill", accounts))
    return out


def fixed_labels(name: str, role: str) -> dict[str, str]:
    """The Deployment selector of a P/D role (``decode``: ``<name>-kserve``; ``prefill``: ``<name>-kserve-prefill``)."""
    component = "llminferenceservice-workload" + ("-prefill" if role == "prefill" else "")
    return {APP_COMPONENT: component, APP_NAME: name, PART_OF: "llminferenceservice", KSERVE_COMPONENT: "workload",
            LLMD_ROLE: role}


def role_of(w: Workload, obj: Mapping[str, Any]) -> str:
    """``both`` (no prefill pool), ``decode`` or ``prefill``: which workload of the LLMInferenceService ``w`` is."""
    if (obj.get("spec") or {}).get("prefill") is None:
        return "both"
    return "prefill" if w.workload_name == prefill_deployment_name(w.isvc) else "decode"


def serving_port(w: Workload) -> int | None:
    """The port the pool's traffic must reach on this pod: the routing sidecar's when it fronts the engine.

    On a decode pod the sidecar listens on ``--port`` and forwards to ``--vllm-port``; when
    that is not where vLLM listens, nothing serves (None).
    """
    engine = w.pod.container(w.engine_container)
    value = engine.arg_value("--port") if engine is not None else None
    listen = int(value) if value and value.isdigit() else None
    side = w.pod.raw.get("initContainers") or []
    for c in side:
        if c.get("name") != ROUTING_SIDECAR:
            continue
        flags = dict(str(a).split("=", 1) for a in c.get("command") or [] if str(a).startswith("--") and "=" in str(a))
        if flags.get("--vllm-port", "").isdigit() and int(flags["--vllm-port"]) != listen:
            return None
        port = flags.get("--port", "")
        return int(port) if port.isdigit() else None
    return listen


# --------------------------------------------------------------------------- DisaggregatedSet (LWS v0.10.0)

DSET_GROUP = "disaggregatedset.x-k8s.io"


def revision(roles: Any) -> str:
    """``ComputeRevision``: the first 8 hex digits of sha256 over ``[{name, template}]`` of the roles.

    Go's encoding/json writes the typed LeaderWorkerTemplate (its field order, its omitted
    defaults), which this JSON of the rendered mapping only approximates: the value names
    objects and labels here, it is not guaranteed to be the controller's.
    """
    data = [{"name": r.get("name"), "template": (r.get("spec") or {}).get("leaderWorkerTemplate")}
            for r in roles or [] if isinstance(r, Mapping)]
    return hashlib.sha256(json.dumps(data, separators=(",", ":"), sort_keys=True).encode()).hexdigest()[:8]


def dset_pod_regex(names: Iterable[str]) -> str:
    """Every pod of these DisaggregatedSets: ``<set>-<slice>-<revision>-<role>-<group>[-<worker>]``."""
    ns = sorted(set(names))
    alt = ns[0] if len(ns) == 1 else "(" + "|".join(ns) + ")"
    return f"{alt}-[0-9]+-[0-9a-f]+-[a-z0-9-]+-[0-9]+(-[0-9]+)?"


def dset_leaderworkersets(objects: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The LeaderWorkerSets the DisaggregatedSet controller creates for slice 0 of every DisaggregatedSet.

    ``lws_manager.go`` ``Create`` @ LWS v0.10.0: name ``<set>-0-<revision>-<role>``
    (``GenerateName``), the role's LeaderWorkerSet spec, and the set's labels
    (``GenerateLabels``: ``app``, name, role, slice, revision) merged over the leader and
    worker templates' own labels.
    """
    out = []
    for o in objects:
        if not isinstance(o, Mapping) or o.get("kind") != "DisaggregatedSet" \
                or not str(o.get("apiVersion", "")).startswith(DSET_GROUP + "/"):
            continue
        meta = o.get("metadata") or {}
        name, ns = str(meta.get("name", "")), str(meta.get("namespace", ""))
        roles = (o.get("spec") or {}).get("roles") or []
        rev = revision(roles)
        for role in roles:
            rname = str(role.get("name", ""))
            auto = {"app": f"{name}-0-{rname}", f"{DSET_GROUP}/name": name, f"{DSET_GROUP}/role": rname,
                    f"{DSET_GROUP}/slice": "0", f"{DSET_GROUP}/revision": rev}
            spec = copy.deepcopy(dict(role.get("spec") or {}))
            lt = spec.get("leaderWorkerTemplate") or {}
            for key in ("leaderTemplate", "workerTemplate"):
                t = lt.get(key)
                if t is not None:
                    t.setdefault("metadata", {})["labels"] = {**(t["metadata"].get("labels") or {}), **auto}
            out.append({"apiVersion": "leaderworkerset.x-k8s.io/v1", "kind": "LeaderWorkerSet",
                        "metadata": {"name": f"{name}-0-{rev}-{rname}", "namespace": ns, "labels": auto},
                        "spec": spec})
    return out
