"""prometheus-operator v0.93.0: the scrape job a PodMonitor becomes, and the labels its series carry.

``podmonitor_scrape_config`` writes the Prometheus scrape configuration the operator
generates for a PodMonitor endpoint (pkg/prometheus/promcfg.go
``generatePodMonitorConfig`` @ v0.93.0): the job-name carry-over (``initRelabelings``),
the phase filter that drops only Failed/Succeeded pods (``generateRunningFilter``: not-ready
and Pending pods stay targets), one keep rule per ``matchLabels`` entry on the
``__meta_kubernetes_pod_label_*``/``labelpresent_*`` pair, the port keep rule, the
``namespace``/``container``/``pod`` labels, ``podTargetLabels`` (sanitised names), ``job =
<namespace>/<name>`` (or the ``jobLabel`` pod label) and ``endpoint = <port>``.

``pod_targets`` lists the targets Prometheus' Kubernetes service discovery (role ``pod``)
finds for an effective pod: one per declared container port, with the ``__meta_*`` labels
of discovery/kubernetes/pod.go. ``relabel`` applies relabel rules the way Prometheus
does (model/relabel/relabel.go: anchored RE2 regexes, ``;`` separator, ``$1`` expansion,
an empty replacement result deletes the label). Together they give the labels every
scraped series will carry, which ``series_labels`` returns; the live-Prometheus test feeds
the same configuration to a real Prometheus.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from .model import Workload

__all__ = ["OPERATOR_VERSION", "endpoint_targets", "pod_targets", "podmonitor_scrape_config", "relabel", "sanitize",
           "series_labels", "servicemonitor_scrape_config"]

OPERATOR_VERSION = "v0.93.0"
_INVALID = re.compile(r"[^a-zA-Z0-9_]")
POD_IP = "10.0.0.10"


def sanitize(name: str) -> str:
    """A Kubernetes label key as a Prometheus label name (promcfg.go ``sanitizeLabelName``)."""
    return _INVALID.sub("_", name)


def podmonitor_scrape_config(pm: Mapping[str, Any], endpoint_index: int = 0) -> dict[str, Any]:
    """The Prometheus scrape config prometheus-operator generates for one PodMonitor endpoint."""
    meta = pm.get("metadata") or {}
    spec = pm.get("spec") or {}
    ns, name = meta.get("namespace", ""), meta.get("name", "")
    ep = (spec.get("podMetricsEndpoints") or [{}])[endpoint_index]
    rules: list[dict[str, Any]] = [{"source_labels": ["job"], "target_label": "__tmp_prometheus_job_name"}]
    if ep.get("filterRunning", True):
        rules.append({"action": "drop", "source_labels": ["__meta_kubernetes_pod_phase"], "regex": "(Failed|Succeeded)"})
    selector = spec.get("selector") or {}
    for k in sorted(selector.get("matchLabels") or {}):
        s = sanitize(k)
        rules.append({"action": "keep",
                      "source_labels": [f"__meta_kubernetes_pod_label_{s}", f"__meta_kubernetes_pod_labelpresent_{s}"],
                      "regex": f"({selector['matchLabels'][k]});true"})
    for exp in selector.get("matchExpressions") or []:
        s = sanitize(exp["key"])
        values = "|".join(exp.get("values") or [])
        op = exp.get("operator")
        if op in ("In", "NotIn"):
            rules.append({"action": "keep" if op == "In" else "drop",
                          "source_labels": [f"__meta_kubernetes_pod_label_{s}", f"__meta_kubernetes_pod_labelpresent_{s}"],
                          "regex": f"({values});true"})
        elif op in ("Exists", "DoesNotExist"):
            rules.append({"action": "keep" if op == "Exists" else "drop",
                          "source_labels": [f"__meta_kubernetes_pod_labelpresent_{s}"], "regex": "true"})
    if ep.get("port"):
        rules.append({"action": "keep", "source_labels": ["__meta_kubernetes_pod_container_port_name"],
                      "regex": str(ep["port"])})
    elif ep.get("portNumber"):
        rules.append({"action": "keep", "source_labels": ["__meta_kubernetes_pod_container_port_number"],
                      "regex": str(ep["portNumber"])})
    rules += [
        {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
        {"source_labels": ["__meta_kubernetes_pod_container_name"], "target_label": "container"},
        {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
    ]
    for label in spec.get("podTargetLabels") or []:
        rules.append({"source_labels": [f"__meta_kubernetes_pod_label_{sanitize(label)}"],
                      "target_label": sanitize(label), "regex": "(.+)", "replacement": "${1}"})
    rules.append({"target_label": "job", "replacement": f"{ns}/{name}"})
    if spec.get("jobLabel"):
        rules.append({"source_labels": [f"__meta_kubernetes_pod_label_{sanitize(spec['jobLabel'])}"],
                      "target_label": "job", "regex": "(.+)", "replacement": "${1}"})
    if ep.get("port"):
        rules.append({"target_label": "endpoint", "replacement": str(ep["port"])})
    rules += [dict(r) for r in ep.get("relabelings") or []]
    namespaces = (spec.get("namespaceSelector") or {}).get("matchNames") or [ns]
    cfg: dict[str, Any] = {
        "job_name": f"podMonitor/{ns}/{name}/{endpoint_index}",
        "metrics_path": ep.get("path", "/metrics"),
        "scheme": ep.get("scheme", "http"),
        "kubernetes_sd_configs": [{"role": "pod", "namespaces": {"names": list(namespaces)}}],
        "relabel_configs": rules,
    }
    if ep.get("interval"):
        cfg["scrape_interval"] = ep["interval"]
    return cfg


def pod_targets(w: Workload, *, pod_name: str | None = None, phase: str = "Running") -> list[dict[str, str]]:
    """The targets Kubernetes SD (role pod) discovers for one pod of the workload.

    discovery/kubernetes/pod.go: a target per declared container port (``__address__`` =
    pod IP:port) with the pod's labels as ``__meta_kubernetes_pod_label_<name>`` and
    ``..._labelpresent_<name>="true"``, its namespace, name, phase and readiness, and the
    container and port names. A container without ports yields one port-less target.
    """
    if pod_name is None:  # a StatefulSet's first pod is <name>-0; a Deployment's <name>-<hash>-<id>
        pod_name = f"{w.workload_name}-0" if w.workload_kind == "StatefulSet" else f"{w.workload_name}-7c9d5f6b8-aaaaa"
    base = {
        "__meta_kubernetes_namespace": w.namespace,
        "__meta_kubernetes_pod_name": pod_name,
        "__meta_kubernetes_pod_phase": phase,
        "__meta_kubernetes_pod_ready": "true",
        "__meta_kubernetes_pod_ip": POD_IP,
    }
    for k, v in w.pod.labels.items():
        base[f"__meta_kubernetes_pod_label_{sanitize(k)}"] = v
        base[f"__meta_kubernetes_pod_labelpresent_{sanitize(k)}"] = "true"
    for k, v in w.pod.annotations.items():
        base[f"__meta_kubernetes_pod_annotation_{sanitize(k)}"] = v
        base[f"__meta_kubernetes_pod_annotationpresent_{sanitize(k)}"] = "true"
    out = []
    for c in w.pod.containers:
        if not c.ports:
            out.append({**base, "__address__": POD_IP, "__meta_kubernetes_pod_container_name": c.name,
                        "__meta_kubernetes_pod_container_init": "false"})
        for p in c.ports:
            out.append({**base, "__address__": f"{POD_IP}:{p.number}",
                        "__meta_kubernetes_pod_container_name": c.name,
                        "__meta_kubernetes_pod_container_init": "false",
                        "__meta_kubernetes_pod_container_port_name": p.name or "",
                        "__meta_kubernetes_pod_container_port_number": str(p.number),
                        "__meta_kubernetes_pod_container_port_protocol": p.protocol})
    return out


def _expand(template: str, m: re.Match[str]) -> str:
    """``$1``/``${1}``/``${name}`` expansion (an unknown group expands to "")."""

    def sub(x: re.Match[str]) -> str:
        key = x.group(1) or x.group(2)
        try:
            got = m.group(int(key) if key.isdigit() else key)
        except (IndexError, re.error):
            return ""
        return got or ""

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", sub, template)


def relabel(labels: Mapping[str, str], rules: Sequence[Mapping[str, Any]]) -> dict[str, str] | None:
    """Apply Prometheus relabel rules to a label set; None when a rule drops the target."""
    lb = dict(labels)
    for r in rules:
        action = r.get("action", "replace")
        sources = r.get("source_labels") or []
        value = r.get("separator", ";").join(lb.get(s, "") for s in sources)
        regex = re.compile(f"^(?:{r.get('regex', '(.*)')})$")
        if action == "keep":
            if not regex.match(value):
                return None
        elif action == "drop":
            if regex.match(value):
                return None
        elif action == "replace":
            m = regex.match(value)
            if m is None:
                continue
            target = _expand(str(r["target_label"]), m)
            res = _expand(str(r.get("replacement", "$1")), m)
            if res == "":
                lb.pop(target, None)
            else:
                lb[target] = res
        elif action == "labelmap":
            for k, v in list(lb.items()):
                m = regex.match(k)
                if m:
                    lb[_expand(str(r.get("replacement", "$1")), m)] = v
        elif action == "labeldrop":
            lb = {k: v for k, v in lb.items() if not regex.match(k)}
        elif action == "labelkeep":
            lb = {k: v for k, v in lb.items() if regex.match(k)}
    return lb


def servicemonitor_scrape_config(sm: Mapping[str, Any], endpoint_index: int = 0) -> dict[str, Any]:
    """The Prometheus scrape config prometheus-operator generates for one ServiceMonitor endpoint.

    pkg/prometheus/promcfg.go ``generateServiceMonitorConfig`` @ v0.93.0: keep rules on the
    ``__meta_kubernetes_service_label_*`` pair, the endpoint-port keep rule, ``node``/``pod``
    from the address target, ``namespace``/``service``/``pod``/``container``, the phase
    filter, ``targetLabels`` and ``podTargetLabels``, ``job`` = the Service name (or the
    ``jobLabel`` Service label) and ``endpoint`` = the port name.
    """
    meta = sm.get("metadata") or {}
    spec = sm.get("spec") or {}
    ns, name = meta.get("namespace", ""), meta.get("name", "")
    ep = (spec.get("endpoints") or [{}])[endpoint_index]
    rules: list[dict[str, Any]] = [{"source_labels": ["job"], "target_label": "__tmp_prometheus_job_name"}]
    selector = spec.get("selector") or {}
    for k in sorted(selector.get("matchLabels") or {}):
        s = sanitize(k)
        rules.append({"action": "keep", "source_labels": [f"__meta_kubernetes_service_label_{s}",
                                                          f"__meta_kubernetes_service_labelpresent_{s}"],
                      "regex": f"({selector['matchLabels'][k]});true"})
    if ep.get("port"):
        rules.append({"action": "keep", "source_labels": ["__meta_kubernetes_endpoint_port_name"],
                      "regex": str(ep["port"])})
    kind_name = ["__meta_kubernetes_endpoint_address_target_kind", "__meta_kubernetes_endpoint_address_target_name"]
    rules += [
        {"source_labels": kind_name, "separator": ";", "regex": "Node;(.*)", "replacement": "${1}",
         "target_label": "node"},
        {"source_labels": kind_name, "separator": ";", "regex": "Pod;(.*)", "replacement": "${1}",
         "target_label": "pod"},
        {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
        {"source_labels": ["__meta_kubernetes_service_name"], "target_label": "service"},
        {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
        {"source_labels": ["__meta_kubernetes_pod_container_name"], "target_label": "container"},
    ]
    if ep.get("filterRunning", True):
        rules.append({"action": "drop", "source_labels": ["__meta_kubernetes_pod_phase"], "regex": "(Failed|Succeeded)"})
    for label in spec.get("targetLabels") or []:
        rules.append({"source_labels": [f"__meta_kubernetes_service_label_{sanitize(label)}"],
                      "target_label": sanitize(label), "regex": "(.+)", "replacement": "${1}"})
    for label in spec.get("podTargetLabels") or []:
        rules.append({"source_labels": [f"__meta_kubernetes_pod_label_{sanitize(label)}"],
                      "target_label": sanitize(label), "regex": "(.+)", "replacement": "${1}"})
    rules.append({"source_labels": ["__meta_kubernetes_service_name"], "target_label": "job", "replacement": "${1}"})
    if spec.get("jobLabel"):
        rules.append({"source_labels": [f"__meta_kubernetes_service_label_{sanitize(spec['jobLabel'])}"],
                      "target_label": "job", "regex": "(.+)", "replacement": "${1}"})
    if ep.get("port"):
        rules.append({"target_label": "endpoint", "replacement": str(ep["port"])})
    rules += [dict(r) for r in ep.get("relabelings") or []]
    namespaces = (spec.get("namespaceSelector") or {}).get("matchNames") or [ns]
    return {
        "job_name": f"serviceMonitor/{ns}/{name}/{endpoint_index}",
        "metrics_path": ep.get("path", "/metrics"),
        "scheme": ep.get("scheme", "http"),
        "kubernetes_sd_configs": [{"role": "endpoints", "namespaces": {"names": list(namespaces)}}],
        "relabel_configs": rules,
    }


def endpoint_targets(w: Workload, service: Mapping[str, Any], *, pod_name: str | None = None) -> list[dict[str, str]]:
    """The targets Kubernetes SD (role endpoints) finds for ``service`` backed by this workload's pod.

    discovery/kubernetes/endpoints.go: one target per Service port whose selector selects
    the pod, addressed at the pod IP and the resolved target port, with the Service's and
    the pod's labels and the container that declares the port.
    """
    spec = service.get("spec") or {}
    selector = spec.get("selector") or {}
    if not selector or any(w.pod.labels.get(k) != v for k, v in selector.items()):
        return []
    meta = service.get("metadata") or {}
    out = []
    for t in pod_targets(w, pod_name=pod_name):
        for sp in spec.get("ports") or []:
            target = sp.get("targetPort", sp.get("port"))
            name_ok = isinstance(target, str) and t.get("__meta_kubernetes_pod_container_port_name") == target
            num_ok = str(target) == t.get("__meta_kubernetes_pod_container_port_number")
            if not (name_ok or num_ok):
                continue
            labels = {**t, "__meta_kubernetes_service_name": str(meta.get("name", "")),
                      "__meta_kubernetes_endpoint_port_name": str(sp.get("name", "")),
                      "__meta_kubernetes_endpoint_address_target_kind": "Pod",
                      "__meta_kubernetes_endpoint_address_target_name": t["__meta_kubernetes_pod_name"],
                      "__meta_kubernetes_endpoint_ready": "true"}
            for k, v in (meta.get("labels") or {}).items():
                labels[f"__meta_kubernetes_service_label_{sanitize(k)}"] = str(v)
                labels[f"__meta_kubernetes_service_labelpresent_{sanitize(k)}"] = "true"
            out.append(labels)
    return out


def series_labels(w: Workload, monitor: Mapping[str, Any], *, pod_name: str | None = None,
                  services: Sequence[Mapping[str, Any]] = ()) -> list[dict[str, str]]:
    """The target labels every series scraped from this workload's pod through ``monitor`` carries.

    ``monitor`` is a PodMonitor, or a ServiceMonitor together with the ``services`` it may
    select (the Services the pod is behind).
    """
    if monitor.get("kind") == "ServiceMonitor":
        cfg = servicemonitor_scrape_config(monitor)
        discovered = [t for svc in services for t in endpoint_targets(w, svc, pod_name=pod_name)]
    else:
        cfg = podmonitor_scrape_config(monitor)
        discovered = pod_targets(w, pod_name=pod_name)
    out = []
    for t in discovered:
        got = relabel({**t, "job": cfg["job_name"]}, cfg["relabel_configs"])
        if got is None:
            continue
        got.setdefault("instance", got["__address__"])
        out.append({k: v for k, v in got.items() if not k.startswith("__")})
    return out
