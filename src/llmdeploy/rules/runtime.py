"""LD6xx: runtime truth — what the cluster will make of the rendered objects.

These rules (stage ``effective``) run on every render, after the strict schema check,
over the effective workload (``llmdeploy.effective``): the pod KServe v0.20.0 builds
from the InferenceService and its ClusterServingRuntime, Knative knative-v1.23.0's
rewrites, the labels prometheus-operator v0.93.0 gives the scraped series, and what the
storage initializer reads. A manifest can pass every schema and still never start,
become ready, scale or be watched; each rule below names one such way, cites the
upstream file it encodes, and points at the spec field to change.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from .. import naming
from ..diagnostics import Severity
from ..effective import Selector, Workload, selectors, series_labels
from ..effective.knative import QUEUE_PORTS
from ..promql import quote_label_value
from .registry import EffectiveContext, Finding, RuleContext, rule

HF_TOKEN_KEY = "HF_TOKEN"
KNATIVE_SYSTEM_NAMESPACE = "knative-serving"


# --------------------------------------------------------------------------- spec-level


@rule("LD607")
def hf_token_key(ctx: RuleContext) -> Iterable[Finding]:
    """The storage initializer reads the Hugging Face token only from the key `HF_TOKEN`.

    KServe's storage initializer (which downloads `hf://` weights before the engine
    starts) gets its credentials from the Secrets of the pod's ServiceAccount and maps
    only the data key `HF_TOKEN` to the `HF_TOKEN` variable
    (pkg/credentials/hf/hf_secret.go, classification in
    pkg/credentials/service_account_credentials.go @ v0.20.0). A token stored under any
    other key is never read: the download of a gated model fails with 401 while the
    engine container, which llmdeploy points at the same key, would have it. Store the
    token under `HF_TOKEN` (`kubectl create secret generic hf-token
    --from-literal=HF_TOKEN=...`) and drop `tokenKey`. (The `leaderWorkerSet` target has
    no storage initializer: there the engine downloads, and any key works.)
    """
    s = ctx.spec
    creds = s.model.credentials
    if s.deployment.target == "leaderWorkerSet":
        return  # no storage initializer: the engine downloads, reading HF_TOKEN from whatever key
    if s.model.storage_uri.startswith("hf://") and creds.secret_ref and creds.token_key != HF_TOKEN_KEY:
        yield Finding(("model", "credentials", "tokenKey"),
                      f"the storage initializer reads only the key {HF_TOKEN_KEY} of Secret {creds.secret_ref}; "
                      f"a token under {creds.token_key!r} is never used for the download",
                      f"store the token under HF_TOKEN in Secret {creds.secret_ref} and remove tokenKey")


# --------------------------------------------------------------------------- effective


def _engine_port(c: Any) -> int | None:
    value = c.arg_value("--port")
    return int(value) if value and value.isdigit() else None


@rule("LD601", stage="effective")
def probe_ports_resolve(ctx: EffectiveContext) -> Iterable[Finding]:
    """Every probe and the serving port point at the port the engine listens on.

    The kubelet resolves a named probe port against the container's declared ports at
    probe time; Knative renames the serving port to `user-port` and rewrites only the
    liveness probe (pkg/reconciler/revision/resources/deploy.go @ knative-v1.23.0), so a
    startup probe on `http1` can never succeed and the revision never becomes ready. The
    engine listens where its last `--port` flag says (KServe concatenates runtime and
    predictor args, utils.go `MergeRuntimeContainers` @ v0.20.0; argparse keeps the last),
    and KServe's Service sends traffic to the first declared containerPort
    (service_reconciler.go): if `extraArgs` moves the engine to another port, probes and
    traffic miss it.
    """
    w = ctx.workload
    if w is None:
        return
    c = w.pod.container(w.engine_container)
    if c is None:
        return
    names = {p.name: p.number for p in c.ports if p.name}
    numbers = {p.number for p in c.ports}
    listen = _engine_port(c)
    if listen is not None and c.ports and c.ports[0].number != listen:
        yield Finding(("runtime", "extraArgs"),
                      f"the engine listens on port {listen} (its last --port flag) but the container declares "
                      f"{c.ports[0].number}: the Service and the probes reach a port nobody listens on",
                      "set runtime.port instead of passing --port in extraArgs")
    for p in c.probes:
        if p.run_by != "kubelet" or p.port is None:
            continue
        if isinstance(p.port, str):
            if p.port not in names:
                where = " after Knative renamed the serving port to user-port" if w.mode == "Knative" else ""
                yield Finding(("deployment", "mode"),
                              f"the {p.kind} probe of {c.name} names port {p.port!r}, which the container does "
                              f"not declare{where}: the kubelet cannot resolve it and the pod never becomes ready",
                              "llmdeploy renders numeric probe ports in Knative mode; report this as a bug")
            continue
        target = listen if listen is not None else (c.ports[0].number if c.ports else None)
        if p.port not in numbers and p.port != target:
            yield Finding(("runtime", "port"),
                          f"the {p.kind} probe of {c.name} checks port {p.port}, where the engine does not listen "
                          f"({target})", "keep runtime.port and the probes on one port")


@rule("LD602", stage="effective")
def non_root_identity(ctx: EffectiveContext) -> Iterable[Finding]:
    """A non-root engine needs a user name and a writable HOME the image does not give it.

    The vLLM (v0.10.2, v0.11.0) and TGI (v3.3.7) images define no user besides root
    (docker/Dockerfile: no USER, no useradd). Run under another UID, torch 2.8's
    inductor calls `getpass.getuser()` at import (torch/_inductor/codecache.py), which
    reads `LOGNAME`/`USER` before `/etc/passwd` and raises `KeyError: getpwuid(): uid not
    found` otherwise: the pod crash-loops at start-up (kserve/kserve#5666). HOME and the
    caches default under `~`, which is `/` or missing for an unknown UID.
    """
    w = ctx.workload
    engine = ctx.resolved.engine
    if w is None or engine is None:
        return
    c = w.pod.container(w.engine_container)
    if c is None or not c.run_as_user or c.run_as_user in engine.image_passwd_uids:
        return
    if not (c.env_value("USER") or c.env_value("LOGNAME")):
        yield Finding(("runtime", "env"),
                      f"{c.name} runs as UID {c.run_as_user}, which the {engine.display_name} image does not define, "
                      "and sets neither USER nor LOGNAME: torch's getpass.getuser() raises KeyError at start-up",
                      "add env USER (any name) or run the image's own user")
    if not c.env_value("HOME"):
        yield Finding(("runtime", "env"),
                      f"{c.name} runs as UID {c.run_as_user} without HOME: caches go to a directory it cannot write",
                      "set HOME to a writable path (an emptyDir or /tmp)")


@rule("LD603", stage="effective")
def pod_labels_valid(ctx: EffectiveContext) -> Iterable[Finding]:
    """Every label KServe and Knative put on the pod is a valid label value.

    KServe adds `app: isvc.<name>-predictor` in Standard mode
    (constants.go `GetRawServiceLabel`, deployment_reconciler.go @ v0.20.0) and Knative
    `serving.knative.dev/revision: <name>-predictor-00001` and `app: <revision>`
    (resources/meta.go @ knative-v1.23.0). A value over 63 characters makes the
    Deployment (and its selector) invalid: the InferenceService never gets pods.
    """
    w = ctx.workload
    if w is None:
        return
    for key, value in sorted(w.pod.labels.items()):
        problem = naming.label_value_problem(value) or naming.label_key_problem(key)
        if problem:
            yield Finding(("metadata", "name"),
                          f"the pod label {key}={value} that {w.mode} mode adds is invalid: {problem}",
                          f"shorten metadata.name to at most {naming.max_service_name_length(w.mode.lower())} "
                          "characters")


def _policy_selects(policy: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    sel = (policy.get("spec") or {}).get("podSelector") or {}
    return all(labels.get(k) == v for k, v in (sel.get("matchLabels") or {}).items())


def _admits(policy: Mapping[str, Any], namespace: str, port: int, own_namespace: str) -> bool:
    """True when one ingress rule admits TCP ``port`` from pods of ``namespace``."""
    for r in (policy.get("spec") or {}).get("ingress") or []:
        ports = r.get("ports")
        if ports and not any(p.get("port") == port for p in ports):
            continue
        peers = r.get("from")
        if not peers:
            return True
        for peer in peers:
            ns_sel = peer.get("namespaceSelector")
            if ns_sel is None and "podSelector" in peer and namespace == own_namespace:
                return True
            if ns_sel is not None:
                want = (ns_sel.get("matchLabels") or {}).get("kubernetes.io/metadata.name")
                if not ns_sel or want == namespace:
                    return True
    return False


def _metrics_port(w: Workload, monitor: Mapping[str, Any] | None) -> int | None:
    if monitor is None:
        return None
    c = w.pod.container(w.engine_container)
    eps = (monitor.get("spec") or {}).get("podMetricsEndpoints") or []
    name = eps[0].get("port") if eps else None
    for cont in w.pod.containers:
        for p in cont.ports:
            if p.name == name:
                return p.number
    return c.ports[0].number if c is not None and c.ports else None


@rule("LD604", stage="effective")
def network_policy_paths(ctx: EffectiveContext) -> Iterable[Finding]:
    """The NetworkPolicy admits every path the platform really uses.

    Standard mode: clients (the gateway) reach the engine port and Prometheus scrapes the
    metrics port. Knative mode: requests enter through the queue-proxy (8012, 8013 for
    h2c: queue.go @ knative-v1.23.0), from the activator in `knative-serving` while it is
    in the path and straight from the ingress gateway once the revision has capacity
    (pkg/reconciler/autoscaling/kpa/kpa.go: Serve mode when want > 0 and the excess
    burst capacity is ≥ 0); the autoscaler in `knative-serving` scrapes the queue-proxy's
    9090; Prometheus scrapes the engine's metrics port. A path the policy misses is
    traffic that silently times out. The kubelet's probes need no rule: traffic from the
    pod's own node is always allowed (kubernetes.io, Network Policies, "ipBlock").
    """
    w = ctx.workload
    if w is None:
        return
    policies = [p for p in ctx.of_kind("NetworkPolicy") if _policy_selects(p, w.pod.labels)]
    if not policies:
        return
    np = ctx.spec.deployment.network_policy
    monitors = ctx.of_kind("PodMonitor")
    needed: list[tuple[str, int, str, tuple[str, ...]]] = []
    mport = _metrics_port(w, monitors[0] if monitors else None)
    if mport is not None and ctx.spec.monitoring.enabled:
        needed.append((np.prometheus_namespace, mport, "Prometheus scraping the engine's metrics",
                       ("deployment", "networkPolicy", "prometheusNamespace")))
    if w.mode == "Knative":
        queue = w.pod.container("queue-proxy")
        qports = {p.name: p.number for p in queue.ports} if queue else dict(QUEUE_PORTS)
        serving = qports.get("queue-port", 8012)
        needed.append((KNATIVE_SYSTEM_NAMESPACE, serving, "the activator forwarding requests",
                       ("deployment", "networkPolicy")))
        needed.append((KNATIVE_SYSTEM_NAMESPACE, qports.get("http-autometric", 9090),
                       "the Knative autoscaler scraping the queue-proxy", ("deployment", "networkPolicy")))
        if np.gateway_namespace:
            needed.append((np.gateway_namespace, serving, "the ingress gateway once the activator leaves the path",
                           ("deployment", "networkPolicy", "gatewayNamespace")))
    elif np.gateway_namespace:
        c = w.pod.container(w.engine_container)
        if c is not None and c.ports:
            needed.append((np.gateway_namespace, c.ports[0].number, "the gateway sending requests",
                           ("deployment", "networkPolicy", "gatewayNamespace")))
    for ns, port, what, path in needed:
        if not any(_admits(p, ns, port, w.namespace) for p in policies):
            yield Finding(path, f"the NetworkPolicy drops {what}: nothing admits port {port} from namespace {ns}",
                          "add the namespace to deployment.networkPolicy (or report the missing rule as a bug)")


# PromQL selectors -----------------------------------------------------------------------------

_HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def _engine_series(engine: Any) -> dict[str, tuple[set[str], bool]]:
    """Exported metric name → (its own labels, carries the engine-wide labels)."""
    out: dict[str, tuple[set[str], bool]] = {}
    if engine is None:
        return out
    for logical in engine.logical_metrics:
        info = engine.metric_info(logical)
        if info.name is None:
            continue
        own = set(info.labels)
        if info.type == "histogram":
            for suffix in _HISTOGRAM_SUFFIXES:
                out[info.name + suffix] = (own | ({"le"} if suffix == "_bucket" else set()), info.engine_labels)
        else:
            out[info.name] = (own, info.engine_labels)
    return out


def _engine_of(ctx: EffectiveContext, w: Workload) -> Any:
    """The engine release a workload runs: the spec's, or the candidate image's own tag."""
    from ..engines import resolve_engine

    base = ctx.resolved.engine
    c = w.pod.container(w.engine_container)
    first = ctx.workloads[0].pod.container(ctx.workloads[0].engine_container) if ctx.workloads else None
    if base is None or c is None or first is None or c.image == first.image:
        return base
    try:
        return resolve_engine(ctx.spec.runtime.engine, c.image, None)
    except Exception:  # noqa: BLE001 - an image the table cannot read: the spec's engine stands in
        return base


def _recorded_series(ctx: EffectiveContext) -> dict[str, set[str]]:
    """Recording-rule name → the labels its series carry (``by`` list, label_replace, rule labels)."""
    out: dict[str, set[str]] = {}
    for pr in ctx.of_kind("PrometheusRule"):
        for g in (pr.get("spec") or {}).get("groups") or []:
            for r in g.get("rules") or []:
                if "record" not in r:
                    continue
                expr = str(r.get("expr", ""))
                labels: set[str] = set(r.get("labels") or {})
                by = re.search(r"\bby\s*\(([^)]*)\)", expr)
                if by:
                    labels |= {x.strip() for x in by.group(1).split(",") if x.strip()} - {"le"}
                labels |= set(re.findall(r'label_replace\([^"]*"([a-zA-Z_]\w*)"', expr))
                out.setdefault(r["record"], set()).update(labels)
    return out


_VARIABLE = re.compile(r"\$\{(\w+)\}|\$(\w+)")
_LABEL_VALUES = re.compile(r"^\s*label_values\((.*),\s*([a-zA-Z_]\w*)\s*\)\s*\Z", re.DOTALL)


def _dashboard_sources(dash: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Panel queries (and ``label_values`` variable queries) with the variables set to their
    rendered ``current`` values, as Grafana sends them to Prometheus."""
    values = {}
    for v in (dash.get("templating") or {}).get("list") or []:
        current = (v.get("current") or {}).get("value")
        if isinstance(current, str):
            values[v.get("name")] = current

    def expand(expr: str) -> str:
        # The value as the string it stands for inside a quoted matcher (escaped like a
        # PromQL string), so that the check reads the value the panel means.
        def value(m: re.Match[str]) -> str:
            v = values.get(m.group(1) or m.group(2))
            return m.group(0) if v is None else quote_label_value(v)[1:-1]

        return _VARIABLE.sub(value, expr)

    out: list[tuple[str, str]] = []

    def walk(panels: Any) -> None:
        for p in panels or []:
            for t in p.get("targets") or []:
                if t.get("expr"):
                    out.append((f"dashboard panel {p.get('title')!r}", expand(str(t["expr"]))))
            walk(p.get("panels"))

    walk(dash.get("panels"))
    for v in (dash.get("templating") or {}).get("list") or []:
        m = _LABEL_VALUES.match(str(v.get("query") or "")) if v.get("type") == "query" else None
        if m:
            # label_values(selector, label): the label must be one the selected series carry.
            selector, label = expand(m.group(1)).strip(), m.group(2)
            matcher = f'{label}!=""'
            query = selector.replace("}", "," + matcher + "}", 1) if "{" in selector else f"{selector}{{{matcher}}}"
            out.append((f"dashboard variable {v.get('name')!r}", query))
    return out


def _promql_sources(ctx: EffectiveContext) -> list[tuple[str, str]]:
    import json

    out: list[tuple[str, str]] = []
    for cm in ctx.of_kind("ConfigMap"):
        for key, text in ((cm.get("data") or {}).items()):
            if key.endswith(".json"):
                try:
                    dash = json.loads(text)
                except ValueError:
                    continue
                if isinstance(dash, dict) and "panels" in dash:
                    out += _dashboard_sources(dash)
    user_query = ctx.spec.scaling.activation_query
    for so in ctx.of_kind("ScaledObject"):
        for t in (so.get("spec") or {}).get("triggers") or []:
            if t.get("type") == "prometheus":
                query = str((t.get("metadata") or {}).get("query", ""))
                what = "scaling.activationQuery (yours)" if query == user_query else "ScaledObject trigger"
                out.append((what, query))
    for pr in ctx.of_kind("PrometheusRule"):
        for g in (pr.get("spec") or {}).get("groups") or []:
            for r in g.get("rules") or []:
                what = f"alert {r['alert']}" if "alert" in r else f"recording rule {r.get('record')}"
                out.append((what, str(r.get("expr", ""))))
    return out


def _matches(sel: Selector, series: Mapping[str, str], free: set[str] | frozenset[str] = frozenset()) -> bool:
    """True when the selector can match a series with these labels (``free`` labels take any value)."""
    for m in sel.matchers:
        if m.label in free:
            continue
        v = series.get(m.label, "")  # an absent label matches as the empty string
        if m.op in ("=~", "!~"):
            try:
                hit = re.fullmatch(m.value, v) is not None  # Prometheus anchors its regexes
            except re.error:
                continue  # RE2 syntax Python's re does not read: not ours to judge here
            ok = hit if m.op == "=~" else not hit
        else:
            ok = (v == m.value) if m.op == "=" else (v != m.value)
        if not ok:
            return False
    return True


@rule("LD605", stage="effective")
def promql_matches_scrape(ctx: EffectiveContext) -> Iterable[Finding]:
    """Every PromQL selector names a metric the pinned engine exports and labels the scrape attaches.

    The series of the engine carry the engine's own labels (vLLM: `model_name` = the
    first `--served-model-name`, `engine`) plus what the PodMonitor's relabelling gives
    them (pkg/prometheus/promcfg.go `generatePodMonitorConfig` @ prometheus-operator
    v0.93.0: `namespace`, `pod`, `container`, `endpoint`, `job = <namespace>/<monitor>`,
    the `podTargetLabels`). A KEDA trigger, recording rule or alert whose selector names
    a metric the version does not export, a label the series do not carry, or a value
    they never have returns nothing: KEDA falls back or never scales, the alert never
    fires. Recorded series are checked against the labels their recording rule keeps.
    """
    if ctx.workload is None or not ctx.first or not ctx.spec.monitoring.enabled:
        return
    monitors = ctx.of_kind("PodMonitor") + ctx.of_kind("ServiceMonitor")
    if not monitors:
        return
    services = ctx.of_kind("Service")
    # Each InferenceService's own engine: a candidate may pin another vLLM release.
    scraped: list[tuple[Any, dict[str, tuple[set[str], bool]], list[dict[str, str]]]] = []
    for w in ctx.workloads:
        c = w.pod.container(w.engine_container)
        served = c.arg_value("--served-model-name") if c else None
        found = [t for m in monitors for t in series_labels(w, m, services=services)]
        if not found:
            yield Finding(("monitoring", "scrape"),
                          f"no {monitors[0]['kind']} selects a port of the {w.workload_kind} {w.workload_name}: "
                          "Prometheus scrapes nothing of it", "report this as a bug in llmdeploy")
            continue
        engine = _engine_of(ctx, w)
        # The engine's own labels (vLLM: model_name = the --served-model-name llmdeploy passes).
        targets = [{**t, **({"model_name": served} if served else {})} for t in found]
        scraped.append((engine, _engine_series(engine), targets))
    if not scraped:
        return
    recorded = _recorded_series(ctx)
    problems: set[str] = set()
    for what, expr in _promql_sources(ctx):
        for sel in selectors(expr):
            name = sel.metric
            if name is None:
                continue
            if name in recorded:
                unknown = [m.label for m in sel.matchers if m.label not in recorded[name] | {"__name__"}]
                if unknown:
                    problems.add(f"{what}: {name} has no label {', '.join(sorted(set(unknown)))} "
                                 "(its recording rule does not keep it)")
                continue
            candidates: list[tuple[dict[str, str], set[str]]] = []
            if name == "up":
                candidates = [({k: v for k, v in t.items() if k != "model_name"}, set())
                              for _, _, targets in scraped for t in targets]
            elif name.startswith(("vllm:", "tgi_", "sglang:", "http_")):
                exporters = [(e, series, targets) for e, series, targets in scraped if name in series]
                if not exporters:
                    versions = sorted({f"{e.display_name} {e.version}" for e, _, _ in scraped if e is not None})
                    problems.add(f"{what}: {' / '.join(versions) or 'the engine'} exports no metric {name}")
                    continue
                unknown_sets = []
                for e, series, targets in exporters:
                    own, wide = series[name]
                    engine_wide = set(e.metric_labels) if e is not None else set()
                    labelled = [t if wide else {k: v for k, v in t.items() if k not in engine_wide} for t in targets]
                    allowed = set(labelled[0]) | own | (engine_wide if wide else set())
                    unknown_sets.append({m.label for m in sel.matchers if m.label not in allowed})
                    candidates += [(t, own) for t in labelled]
                unknown = sorted(set.intersection(*unknown_sets))
                if unknown:
                    problems.add(f"{what}: {name} has no label {', '.join(unknown)}")
                    continue
            else:
                continue  # DCGM, Istio, kube-state-metrics: other exporters' series
            if not any(_matches(sel, t, own) for t, own in candidates):
                got = ", ".join(f"{m.label}{m.op}{m.value!r}" for m in sel.matchers)
                seen = "; ".join(", ".join(f"{k}={t[k]!r}" for k in sorted(t)) for t, _ in candidates)
                problems.add(f"{what}: the selector of {name} ({got}) matches none of the service's series "
                             f"(they carry {seen})")
    engine_series = {}
    for _, series, _ in scraped:
        engine_series.update(series)
    problems |= _drain_script_problems(ctx, engine_series)
    for p in sorted(problems):
        if p.startswith("scaling.activationQuery (yours)"):
            # A query the user wrote may rely on relabelling llmdeploy cannot see: warn.
            yield Finding(("scaling", "activationQuery"), p,
                          "check the metric and label names against the pinned engine version", Severity.WARNING)
        else:
            yield Finding(("monitoring",), p, "report this as a bug in llmdeploy (the query would return nothing)")


_SCRIPT_METRIC = re.compile(r"\b(vllm:[a-zA-Z_:]+|sglang:[a-zA-Z_:]+|tgi_[a-zA-Z_]+)")
_SCRIPT_URL = re.compile(r"127\.0\.0\.1:(\d+)(/[\w/]*)")


def _drain_script_problems(ctx: EffectiveContext, engine_series: Mapping[str, Any]) -> set[str]:
    """The preStop drain script polls the engine's own /metrics: its metric names and port must exist."""
    out: set[str] = set()
    for w in ctx.workloads:
        c = w.pod.container(w.engine_container)
        pre = ((c.raw.get("lifecycle") or {}).get("preStop") or {}) if c else {}
        script = " ".join(str(x) for x in (pre.get("exec") or {}).get("command") or [])
        if not script or c is None:
            continue
        for name in sorted(set(_SCRIPT_METRIC.findall(script))):
            if name not in engine_series:
                out.add(f"preStop drain of {w.isvc}: the engine exports no {name}, so the drain stops waiting at once")
        listen = _engine_port(c)
        for port, _path in _SCRIPT_URL.findall(script):
            if listen is not None and int(port) != listen:
                out.add(f"preStop drain of {w.isvc}: polls port {port}, but the engine listens on {listen}")
    return out


@rule("LD606", stage="effective")
def credentials_reach_reader(ctx: EffectiveContext) -> Iterable[Finding]:
    """The weights' credentials reach the storage initializer, which does the download.

    KServe's storage initializer, not the engine, downloads `storageUri` before the engine
    starts; it reads only the Secrets listed in the pod's ServiceAccount and, for `hf://`,
    only their `HF_TOKEN` key (pkg/credentials/service_account_credentials.go,
    pkg/credentials/hf/hf_secret.go @ v0.20.0). An engine env that references a Secret
    the ServiceAccount does not list, or a key the initializer does not read, means the
    download runs without credentials. A ServiceAccount of your own (not rendered by
    llmdeploy) cannot be seen here: it must list the Secret itself.
    """
    w = ctx.workload
    if w is None:
        return
    st = w.storage
    c = w.pod.container(w.engine_container)
    if c is None or st.scheme != "hf":
        return
    for e in c.env:
        if e.name != "HF_TOKEN" or e.secret is None:
            continue
        if e.secret not in st.secrets and st.account_known:
            yield Finding(("model", "credentials"),
                          f"the engine reads HF_TOKEN from Secret {e.secret}, but the pod's ServiceAccount "
                          f"{st.service_account or 'default'} does not list it: the storage initializer downloads "
                          "without a token", "set model.credentials.secretRef (llmdeploy then lists it) or add the "
                          "Secret to the ServiceAccount given in deployment.serviceAccount")
        elif e.key not in st.keys_read:
            yield Finding(("model", "credentials", "tokenKey"),
                          f"the storage initializer reads key {', '.join(st.keys_read)} of Secret {e.secret}, "
                          f"not {e.key!r}: the download runs without a token",
                          "store the token under HF_TOKEN")


__all__ = ["HF_TOKEN_KEY"]
