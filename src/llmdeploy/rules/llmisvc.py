"""LD7xx: the LLM target — KServe's LLMInferenceService, the llm-d router and LoRA adapters.

The semantic rules (LD701–LD709) stop a spec the llmInferenceService target cannot carry
before anything is rendered; the effective rules (LD710–LD714) read the rendered
LLMInferenceService and router objects the way KServe v0.20.0's webhook and controller
(pkg/apis/serving/v1alpha2/llm_inference_service_validation.go,
pkg/controller/v1alpha2/llmisvc/) and the llm-d router v0.9.0 will, and the LoRA rule
LD713 reads the engine flags of either target.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from ..derive.block_size import VLLM_DEFAULT_BLOCK_SIZE, block_size_arg
from ..derive.lora import VLLM_DEFAULT_MAX_LORA_RANK, lora_limits, supported_rank
from ..diagnostics import Severity
from ..effective import disagg as pd
from ..effective import llmisvc as eff
from .registry import EffectiveContext, Finding, RuleContext, rule
from .runtime import _admits, _policy_selects

LLM_TARGET = "llmInferenceService"
PREFIX_PLUGIN = "prefix-cache-scorer"
LORA_PLUGIN = "lora-affinity-scorer"


def _llm(ctx: RuleContext) -> bool:
    return ctx.spec.deployment.target == LLM_TARGET


# --------------------------------------------------------------------------- semantic


@rule("LD701")
def llm_target_platform(ctx: RuleContext) -> Iterable[Finding]:
    """The llmInferenceService target runs vLLM in Standard mode only.

    KServe's LLMInferenceService controller creates plain Deployments (no Knative
    revision, workload_single_node.go @ v0.20.0), and the preset it always applies
    underneath, `kserve-config-llm-template` (config/llmisvcconfig/config-llm-template.yaml
    @ v0.20.0), starts the container with `vllm serve`: a TGI, SGLang or TensorRT-LLM image would be
    started with a command it does not have (the TensorRT-LLM release image has no `vllm`; its
    server is `trtllm-serve`). The service's own spec is strategic-merged
    over the presets last (pkg/controller/v1alpha1/llmisvc/config_merge.go, read at a 2026
    commit, not re-read at v0.20.0), so a full template could replace the command; llmdeploy
    does not render that, because the rest of this target (the vLLM flags workload_lora.go
    appends, the preset's entrypoint arguments) still assumes vLLM. Use `deployment.mode: standard` and
    `runtime.engine: vllm` on this target, or keep the InferenceService target.
    """
    if not _llm(ctx):
        return
    s = ctx.spec
    if s.deployment.mode != "standard":
        yield Finding(("deployment", "mode"),
                      "an LLMInferenceService has no Knative mode: KServe deploys it as a plain Deployment",
                      "remove deployment.mode (standard) or use deployment.target: inferenceService")
    if s.runtime.engine != "vllm":
        yield Finding(("runtime", "engine"),
                      f"the LLMInferenceService presets start the engine with `vllm serve`; {s.runtime.engine} "
                      "cannot run there", "use runtime.engine: vllm or deployment.target: inferenceService")


@rule("LD702")
def llm_target_port(ctx: RuleContext) -> Iterable[Finding]:
    """The engine listens on port 8000 on the llmInferenceService target.

    KServe's presets pass `--port 8000` to vLLM, the workload Service targets 8000 and
    the managed InferencePool's `targetPorts` is 8000 (workload.go reconcileWorkloadService:
    the port is not configurable; config-llm-scheduler.yaml @ v0.20.0). llmdeploy renders
    8000 on this target; a different `runtime.port` written in the spec would be ignored,
    so it is refused. Remove `runtime.port` or set it to 8000.
    """
    if _llm(ctx) and ctx.user_set(("runtime", "port")) and ctx.spec.runtime.port != eff.ENGINE_PORT:
        yield Finding(("runtime", "port"),
                      f"runtime.port {ctx.spec.runtime.port} is not used on the llmInferenceService target: KServe "
                      f"runs the engine, its Service and the InferencePool on {eff.ENGINE_PORT}",
                      f"remove runtime.port or set it to {eff.ENGINE_PORT}")


@rule("LD703")
def llm_target_scaling(ctx: RuleContext) -> Iterable[Finding]:
    """On the llmInferenceService target the autoscaler is `keda` or `none`.

    KServe's own `spec.scaling` for an LLMInferenceService requires the Workload Variant
    Autoscaler (`wva` is required, llm_inference_service_validation.go
    ValidateWorkloadScaling @ v0.20.0) and there is no Knative KPA or KServe HPA class. llmdeploy scales the
    workload Deployment `<name>-kserve` with a KEDA ScaledObject on the engine's metrics
    (the same scoped PromQL as the InferenceService target) and leaves `spec.replicas`
    unset so the controller keeps KEDA's count (PreserveDeploymentReplicas, workload.go).
    Use `scaling.autoscaler: keda` or `none`.
    """
    if _llm(ctx) and ctx.spec.scaling.autoscaler not in ("keda", "none"):
        yield Finding(("scaling", "autoscaler"),
                      f"autoscaler {ctx.spec.scaling.autoscaler} is not available for an LLMInferenceService",
                      "use scaling.autoscaler: keda (a ScaledObject on the workload Deployment) or none")


@rule("LD704")
def llm_target_rollout(ctx: RuleContext) -> Iterable[Finding]:
    """A rollout on the llmInferenceService target: how the split is rendered, and what it needs.

    With `router.pool: managed` a canary or blue/green is a second LLMInferenceService in
    the same KServe route group (`router.route.group`/`weight`): every member's managed
    HTTPRoute carries weighted backendRefs to all members that serve the same model names
    (router_group.go injectGroupBackendRefs @ v0.20.0). The group splits by weight only, so
    an A/B test by header needs `router.pool: explicit`: llmdeploy then renders the
    candidate's own InferencePool and splits its HTTPRoute by `backendRefs[].weight`
    (canary, blue/green) or by a rule matching `rollout.header` (A/B test, Gateway API
    HTTPRoute v1). A picker serves one pool (InferencePool v1 `endpointPickerRef`), so
    the candidate's pool needs `router.candidateEppService`. Settings no rendering uses
    are warnings: `rollout.gateway` (the route is on `router.gateway`), `header` and
    `headerValue` outside an explicit-pool A/B test, `router.candidateEppService` without
    an explicit-pool rollout.
    """
    if not _llm(ctx):
        return
    r = ctx.spec.rollout
    explicit = ctx.spec.router.pool == "explicit"
    rollout_on = r.strategy != "rolling" and r.candidate is not None
    if r.strategy == "abTest" and not explicit:
        yield Finding(("rollout", "strategy"), "an A/B test by header is not rendered with router.pool: managed "
                      "(KServe's route group splits by weight only)",
                      "set router.pool: explicit (llmdeploy's HTTPRoute matches the header), or use strategy canary")
        return
    if explicit and rollout_on and not ctx.spec.router.candidate_epp_service:
        yield Finding(("router",), f"a {r.strategy} with router.pool: explicit gives the candidate its own "
                      "InferencePool, whose endpoint picker is not named",
                      "set router.candidateEppService to the Service of the candidate pool's endpoint picker")
    if ctx.spec.router.candidate_epp_service and not (explicit and rollout_on):
        yield Finding(("router", "candidateEppService"), "router.candidateEppService is only used by a rollout "
                      "with router.pool: explicit", "remove router.candidateEppService", Severity.WARNING, key=True)
    unused = ["gateway"] + ([] if explicit and r.strategy == "abTest" else ["header", "headerValue"])
    for key in unused:
        if ctx.user_set(("rollout", key)):
            yield Finding(("rollout", key), f"rollout.{key} has no effect on the llmInferenceService target "
                          "(the route is on router.gateway; the header only in an explicit-pool A/B test)",
                          f"remove rollout.{key}", Severity.WARNING, key=True)


@rule("LD705")
def storage_schemes_per_target(ctx: RuleContext) -> Iterable[Finding]:
    """The model's and the adapters' storage schemes are ones the target can load.

    LLMInferenceService: the base model from `hf://`, `s3://`, `pvc://` or `oci://`
    (workload_storage.go attachModelArtifacts @ v0.20.0: any other scheme fails the
    reconcile), adapters from `hf://`, `s3://` or `pvc://` (workload_lora.go
    enumerateLoRAAdapters). InferenceService: KServe downloads only the base model, so
    llmdeploy passes an adapter to vLLM as a Hugging Face repository id, which vLLM
    downloads itself (vllm/lora/utils.py get_adapter_absolute_path): only `hf://`
    adapters work there.
    """
    s = ctx.spec
    if _llm(ctx):
        if not s.model.storage_uri.startswith(eff.MODEL_SCHEMES):
            yield Finding(("model", "storageUri"),
                          "an LLMInferenceService loads its model only from hf://, s3://, pvc:// or oci://",
                          "copy the weights to one of those, or use deployment.target: inferenceService")
        allowed: tuple[str, ...] = eff.LORA_SCHEMES
    else:
        allowed = ("hf://",)
    for i, a in enumerate(s.model.loras):
        if not a.storage_uri.startswith(allowed):
            where = "an LLMInferenceService" if _llm(ctx) else f"the {s.deployment.target} target (vLLM downloads it)"
            yield Finding(("model", "loras", i, "storageUri"),
                          f"adapter {a.name}: {where} loads adapters only from {', '.join(allowed)}",
                          "publish the adapter to a supported location"
                          + ("" if _llm(ctx) else " or use deployment.target: llmInferenceService"))


@rule("LD706")
def lora_names(ctx: RuleContext) -> Iterable[Finding]:
    """Every LoRA adapter has its own name, fits its base model and vLLM's largest rank.

    Clients choose an adapter by passing its name as `model`; two adapters of one name,
    or an adapter named like the base model's served name, make that choice ambiguous.
    KServe's webhook refuses both for an LLMInferenceService
    (llm_inference_service_validation.go validateLoRAAdapters @ v0.20.0) and vLLM serves
    only one of them. An adapter's `baseModel` (its `adapter_config.json`
    `base_model_name_or_path`) must be `model.id`: a LoRA's matrices have the shapes of
    its base model's layers, and vLLM fails to load it on another model. vLLM's largest
    `--max-lora-rank` is 512. More `maxLoras` than adapters reserves GPU memory for
    nothing (a warning).
    """
    s = ctx.spec
    base = s.model.served_name or s.metadata.name
    seen: dict[str, int] = {}
    for i, a in enumerate(s.model.loras):
        if a.name in seen:
            yield Finding(("model", "loras", i, "name"), f"adapter name {a.name} is used twice (also loras[{seen[a.name]}])",
                          "give every adapter its own name")
        seen.setdefault(a.name, i)
        if a.name == base:
            yield Finding(("model", "loras", i, "name"), f"adapter name {a.name} is the base model's served name",
                          "rename the adapter or set model.servedName")
    if s.model.max_loras is not None and s.model.loras and s.model.max_loras > len(s.model.loras):
        yield Finding(("model", "maxLoras"),
                      f"maxLoras {s.model.max_loras} is more than the {len(s.model.loras)} adapters: the extra "
                      "slots reserve GPU memory for nothing", "lower model.maxLoras or remove it", Severity.WARNING)
    for i, a in enumerate(s.model.loras):
        if a.base_model and s.model.id and a.base_model.lower() != s.model.id.lower():
            yield Finding(("model", "loras", i, "baseModel"), f"adapter {a.name} was trained on {a.base_model}, "
                          f"not on {s.model.id}: its weights do not fit this model's layers",
                          "serve it with its base model, or use an adapter trained on this one")
        if supported_rank(a.rank) is None:
            yield Finding(("model", "loras", i, "rank"), f"adapter {a.name}: rank {a.rank} is above vLLM's largest "
                          "--max-lora-rank (512)", "use an adapter of rank 512 or less")


def _scorer_types(ctx: RuleContext) -> list[str] | None:
    """The spec's scorer types (None: the default set, which has a prefix scorer)."""
    sc = ctx.spec.router.scorers
    return None if sc is None else [x.type for x in sc]


@rule("LD707")
def prefix_scorer_matches_engine(ctx: RuleContext) -> Iterable[Finding]:
    """The prefix-cache scorer needs the engine's prefix cache, with the same block size.

    The llm-d router's `prefix-cache-scorer` sends a request to the replica whose cache
    already holds the prompt's leading blocks, by hashing the prompt in blocks of
    `blockSizeTokens` (llm-d-router v0.9.0 approximateprefix/types.go; default 16, vLLM's
    default `--block-size`). With prefix caching off in vLLM the routing buys nothing;
    with another block size the picker's index and vLLM's cache disagree on every block
    boundary. Keep `runtime.prefixCaching` on and leave `router.prefixBlockSize` unset
    (llmdeploy uses the engine's) or equal to the engine's `--block-size`.
    """
    if not _llm(ctx):
        return
    types = _scorer_types(ctx)
    if types is not None and "prefixCache" not in types:
        return
    s = ctx.spec
    if s.runtime.prefix_caching is False:
        yield Finding(("runtime", "prefixCaching"),
                      "the router scores replicas by prefix-cache hits but the engine's prefix cache is off",
                      "set runtime.prefixCaching: true or drop the prefixCache scorer")
    engine_bs = block_size_arg(s.runtime.extra_args) or VLLM_DEFAULT_BLOCK_SIZE
    want = s.router.prefix_block_size
    if want is not None and want != engine_bs:
        yield Finding(("router", "prefixBlockSize"),
                      f"the prefix scorer hashes blocks of {want} tokens but the engine caches blocks of {engine_bs}",
                      "remove router.prefixBlockSize (llmdeploy uses the engine's block size)")


@rule("LD708")
def router_pairing(ctx: RuleContext) -> Iterable[Finding]:
    """The router settings are complete and used.

    An `explicit` pool points at the cluster's own endpoint picker (`router.eppService`:
    the InferencePool's `endpointPickerRef` is required, inference.networking.k8s.io v1
    CRD) and its HTTPRoute must name a Gateway (`router.gateway`), else it attaches to
    nothing, and `router.eppMetricsToken` (for the managed picker's monitoring) has no
    effect there. A `loraAffinity` scorer without adapters scores nothing. On the
    inferenceService target the router section has no effect (there is no endpoint
    picker); that, an unused `loraAffinity` scorer and more `maxLoras` than adapters
    are warnings.
    """
    s = ctx.spec
    r = s.router
    if not _llm(ctx):
        if ctx.user_set(("router",)):
            yield Finding(("router",), f"router settings have no effect on the {s.deployment.target} target "
                          "(it has no endpoint picker)",
                          "set deployment.target: llmInferenceService or remove router", Severity.WARNING, key=True)
        return
    if r.pool == "explicit":
        if not r.epp_service:
            yield Finding(("router", "eppService"), "an explicit InferencePool needs the Service of the cluster's "
                          "endpoint picker", "set router.eppService (or use router.pool: managed)")
        if r.gateway is None:
            yield Finding(("router", "gateway"), "the HTTPRoute of an explicit pool names no Gateway and would "
                          "attach to nothing", "set router.gateway")
        if r.epp_metrics_token is not None:
            yield Finding(("router", "eppMetricsToken"), "router.eppMetricsToken has no effect with an explicit pool "
                          "(the cluster monitors its own endpoint picker)", "remove router.eppMetricsToken",
                          Severity.WARNING, key=True)
    elif r.epp_service:
        yield Finding(("router", "eppService"), "router.eppService is used only with router.pool: explicit "
                      "(KServe runs the managed endpoint picker itself)", "remove router.eppService")
    types = _scorer_types(ctx) or []
    if "loraAffinity" in types and not s.model.loras:
        yield Finding(("router", "scorers"), "the loraAffinity scorer has no adapters to score",
                      "remove it or declare model.loras", Severity.WARNING)


@rule("LD709")
def llm_target_name_length(ctx: RuleContext) -> Iterable[Finding]:
    """The service name leaves room for the names KServe derives from it.

    The LLMInferenceService controller names its objects `kmeta.ChildName(name, suffix)`
    (workload.go, scheduler.go @ v0.20.0); the longest suffix is
    `-kserve-self-signed-certs`. Beyond 63 characters ChildName replaces the tail by a
    hash, and the Deployment, Service and pool names llmdeploy targets (ScaledObject,
    PodMonitor, InferencePool) would no longer be the ones KServe creates. Keep
    `metadata.name` at 38 characters or fewer on this target.
    """
    if _llm(ctx) and len(ctx.spec.metadata.name) > eff.MAX_NAME_LENGTH:
        yield Finding(("metadata", "name"),
                      f"name {ctx.spec.metadata.name!r} is {len(ctx.spec.metadata.name)} characters; KServe hashes "
                      f"the names it derives from names longer than {eff.MAX_NAME_LENGTH}",
                      f"shorten metadata.name to at most {eff.MAX_NAME_LENGTH} characters")


# --------------------------------------------------------------------------- effective


def _llmisvc_obj(ctx: EffectiveContext) -> Mapping[str, Any] | None:
    w = ctx.workload
    if w is None or w.engine_container != eff.MAIN_CONTAINER:
        return None
    for o in ctx.of_kind(eff.LLMISVC_KIND):
        m = o.get("metadata") or {}
        if m.get("name") == w.isvc and m.get("namespace") == w.namespace:
            return o
    return None


def _parallel_size(par: Mapping[str, Any]) -> tuple[bool, bool]:
    """(pipeline parallel, data parallel) as ParallelismSpec.IsPipelineParallel/IsDataParallel read them."""
    pipeline = (par.get("pipeline") or 0) > 1
    data = (par.get("data") or 0) > 1 or (par.get("dataLocal") or 0) > 1
    return pipeline, data


@rule("LD710", stage="effective")
def llmisvc_admission(ctx: EffectiveContext) -> Iterable[Finding]:
    """The LLMInferenceService passes KServe's admission webhook.

    Encodes the checks of llm_inference_service_validation.go @ v0.20.0 that a rendered
    object can fail: `replicas` and `scaling` together; `data` without `dataLocal` (or
    the reverse); pipeline and data parallelism together; a LoRA adapter without a name,
    twice the same name, or named like the base model; `maxRank`/`maxAdapters`/
    `maxCpuAdapters` below 1; a scheduler config with both `inline` and `ref`; HTTPRoute
    `refs` with a managed gateway. The API server would refuse the object at apply time.
    Parallelism is also immutable once created (`validateImmutableParallelism`): changing
    tensor × pipeline × data of a running service needs a new LLMInferenceService.
    """
    obj = _llmisvc_obj(ctx)
    if obj is None:
        return
    spec = obj.get("spec") or {}
    if "replicas" in spec and "scaling" in spec:
        yield Finding(("scaling", "autoscaler"), "the LLMInferenceService sets both replicas and scaling",
                      "report this as a bug in llmdeploy")
    par = spec.get("parallelism") or {}
    if ("data" in par) != ("dataLocal" in par):
        yield Finding(("resources", "parallelism", "data"), "parallelism.data and dataLocal must be set together",
                      "report this as a bug in llmdeploy")
    pipeline, data = _parallel_size(par)
    if pipeline and data:
        yield Finding(("resources", "parallelism"),
                      "KServe refuses pipeline and data parallelism together in one LLMInferenceService",
                      "use tensor and pipeline parallelism, or tensor and data parallelism")
    model = spec.get("model") or {}
    base = model.get("name") or (obj.get("metadata") or {}).get("name")
    lora = model.get("lora") or {}
    for key in ("maxRank", "maxAdapters", "maxCpuAdapters"):
        if key in lora and (not isinstance(lora[key], int) or lora[key] < 1):
            yield Finding(("model", "loras"), f"model.lora.{key} must be at least 1", "report this as a bug in llmdeploy")
    seen: set[str] = set()
    for i, a in enumerate(lora.get("adapters") or []):
        n = a.get("name") if isinstance(a, Mapping) else None
        if not n:
            yield Finding(("model", "loras", i, "name"), "a LoRA adapter has no name", "name every adapter")
        elif n in seen or n == base:
            yield Finding(("model", "loras", i, "name"), f"LoRA adapter name {n} is used twice or is the base "
                          "model's name", "give every adapter its own name")
        if n:
            seen.add(n)
    router = spec.get("router") or {}
    cfg = ((router.get("scheduler") or {}).get("config")) or {}
    if "inline" in cfg and "ref" in cfg:
        yield Finding(("router",), "the scheduler config sets both inline and ref", "report this as a bug in llmdeploy")
    refs = ((router.get("route") or {}).get("http") or {}).get("refs")
    if refs and "gateway" in router and not (router.get("gateway") or {}).get("refs"):
        yield Finding(("router", "gateway"), "HTTPRoute refs cannot be used with a managed gateway",
                      "set router.gateway")


@rule("LD711", stage="effective")
def pool_selects_workload(ctx: EffectiveContext) -> Iterable[Finding]:
    """The InferencePool selects the pods KServe creates, on the port the engine listens on.

    The endpoint picker chooses among the pods the pool's selector matches and sends
    traffic to `targetPorts` (inference.networking.k8s.io/v1 InferencePool); KServe's
    workload pods carry the fixed labels of workload_single_node.go
    (`app.kubernetes.io/name`, `part-of: llminferenceservice`, `kserve.io/component:
    workload`) and the engine listens where the last `--port` of its argv says (8000 from
    the preset). A pool that selects nothing, or a port nobody listens on, routes every
    request to an error. The pod template's labels must also keep the Deployment
    selector's values: `spec.labels` overwrite a fixed key of the same name
    (utils.PropagateMap), and the API server refuses a Deployment whose template does not
    match its selector.
    """
    obj = _llmisvc_obj(ctx)
    w = ctx.workload
    if obj is None or w is None:
        return
    role = pd.role_of(w, obj)
    selector = eff.expected_pod_labels(w) if role == "both" else pd.fixed_labels(w.isvc, role)
    for k, v in selector.items():
        if w.pod.labels.get(k) != v:
            yield Finding(("metadata", "labels"),
                          f"the workload pod label {k}={w.pod.labels.get(k)} differs from the Deployment selector's "
                          f"{k}={v}: the API server refuses the Deployment", f"do not set the label {k}")
    listen = pd.serving_port(w)  # the engine's --port, or the P/D routing sidecar's in front of it
    for name, sel, ports in eff.pools(ctx.objects, obj):
        if not sel or any(w.pod.labels.get(k) != v for k, v in sel.items()):
            yield Finding(("router", "pool"), f"InferencePool {name} selects {sel}, which the pods of Deployment "
                          f"{w.workload_name} do not carry: the endpoint picker has no endpoint",
                          "report this as a bug in llmdeploy")
        if listen is not None and ports and ports[0] != listen:
            yield Finding(("runtime", "extraArgs"), f"InferencePool {name} sends traffic to port {ports[0]} but the "
                          f"engine listens on {listen}", "do not pass --port in runtime.extraArgs")


def _epp_plugins(obj: Mapping[str, Any], objects: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]] | None:
    """The endpoint picker's plugins: the inline config, or the rendered EPP ConfigMap's (explicit pool)."""
    cfg = ((((obj.get("spec") or {}).get("router") or {}).get("scheduler") or {}).get("config") or {})
    inline = cfg.get("inline")
    if isinstance(inline, Mapping):
        return list(inline.get("plugins") or [])
    name = f"{(obj.get('metadata') or {}).get('name')}-epp-config"
    for o in objects:
        if o.get("kind") == "ConfigMap" and (o.get("metadata") or {}).get("name") == name:
            text = (o.get("data") or {}).get("epp")
            try:
                data = json.loads(text) if isinstance(text, str) else None
            except ValueError:
                return None
            return list((data or {}).get("plugins") or [])
    return None


@rule("LD712", stage="effective")
def prefix_routing_reaches_engine(ctx: EffectiveContext) -> Iterable[Finding]:
    """When the endpoint picker scores by prefix, the engine really caches prefixes in the same blocks.

    Read from the rendered objects: the endpoint picker's `prefix-cache-scorer`
    (EndpointPickerConfig) and the argv vLLM receives (the preset's entrypoint plus the
    container's args, KServe v0.20.0). The last `--enable-prefix-caching`/
    `--no-enable-prefix-caching` decides, else the pinned vLLM's default (on from V1,
    0.8.0); `blockSizeTokens` must equal the last `--block-size` (vLLM's default 16).
    """
    obj = _llmisvc_obj(ctx)
    w = ctx.workload
    engine = ctx.resolved.engine
    if obj is None or w is None:
        return
    plugins = _epp_plugins(obj, ctx.objects) or []
    prefix = [p for p in plugins if isinstance(p, Mapping) and p.get("type") == PREFIX_PLUGIN]
    c = w.pod.container(w.engine_container)
    if not prefix or c is None:
        return
    on = engine.defaults.enable_prefix_caching if engine is not None else True
    for a in c.args:
        if a == "--enable-prefix-caching":
            on = True
        elif a == "--no-enable-prefix-caching":
            on = False
    if not on:
        yield Finding(("runtime", "prefixCaching"), "the endpoint picker routes by prefix-cache hits but vLLM "
                      "runs without prefix caching", "set runtime.prefixCaching: true")
    engine_bs = block_size_arg(c.args) or VLLM_DEFAULT_BLOCK_SIZE
    for p in prefix:
        bs = ((p.get("parameters") or {}).get("blockSizeTokens"))
        if isinstance(bs, int) and bs != engine_bs:
            yield Finding(("router", "prefixBlockSize"), f"the prefix scorer hashes {bs}-token blocks; vLLM caches "
                          f"{engine_bs}-token blocks", "remove router.prefixBlockSize")


@rule("LD713", stage="effective")
def lora_rank_fits(ctx: EffectiveContext) -> Iterable[Finding]:
    """Every LoRA adapter's rank fits the engine's `--max-lora-rank`, and LoRA is enabled.

    vLLM refuses to load an adapter whose rank is above `--max-lora-rank` (default 16;
    vllm/lora/models.py from_local_checkpoint), and without `--enable-lora` it loads none.
    Read from the flags the engine really gets: the container's args on the
    inferenceService target, the args KServe appends for `spec.model.lora` on the
    llmInferenceService target (workload_lora.go addLoRAVLLMArgs @ v0.20.0); a
    `--max-lora-rank` in `runtime.extraArgs` comes later and wins.
    """
    w = ctx.workload
    loras = ctx.spec.model.loras
    if w is None or not loras:
        return
    c = w.pod.container(w.engine_container)
    if c is None:
        return
    if "--enable-lora" not in c.args:
        yield Finding(("model", "loras"), "adapters are declared but the engine runs without --enable-lora",
                      "remove --no-enable-lora from runtime.extraArgs")
    value = c.arg_value("--max-lora-rank")
    max_rank = int(value) if value and value.isdigit() else VLLM_DEFAULT_MAX_LORA_RANK
    for i, a in enumerate(loras):
        if a.rank > max_rank:
            yield Finding(("model", "loras", i, "rank"), f"adapter {a.name} has rank {a.rank} but the engine runs "
                          f"with --max-lora-rank {max_rank}: vLLM refuses to load it",
                          "remove --max-lora-rank from runtime.extraArgs (llmdeploy sizes it from the adapters)")


@rule("LD714", stage="effective")
def network_policy_admits_router(ctx: EffectiveContext) -> Iterable[Finding]:
    """The NetworkPolicy lets the endpoint picker and the gateway reach the engine.

    With the llm-d router, requests go from the Gateway straight to the pod the endpoint
    picker chose, on the pool's target port, and the picker itself scrapes every pod's
    `/metrics` on that port for queue and KV-cache scores (llm-d-router v0.9.0
    datastore: the metrics port defaults to the target port). KServe runs the managed
    picker in the service's namespace (scheduler.go @ v0.20.0). A NetworkPolicy that
    admits neither leaves the pool with no usable endpoint. Keep the service's own
    namespace open to the engine port (no `allowFromPodLabels`), and add the gateway's
    namespace (`router.gateway.namespace`) to `deployment.networkPolicy.allowFromNamespaces`.
    """
    obj = _llmisvc_obj(ctx)
    w = ctx.workload
    if obj is None or w is None:
        return
    policies = [p for p in ctx.of_kind("NetworkPolicy") if _policy_selects(p, w.pod.labels)]
    if not policies:
        return
    port = eff.ENGINE_PORT
    r = ctx.spec.router
    if r.pool == "managed":
        epp_labels = eff.scheduler_labels(w.isvc)
        ok = False
        for p in policies:
            for rule_ in (p.get("spec") or {}).get("ingress") or []:
                ports = rule_.get("ports")
                if ports and not any(x.get("port") == port for x in ports):
                    continue
                for peer in rule_.get("from") or [{}]:
                    if "namespaceSelector" in peer:
                        continue
                    sel = (peer.get("podSelector") or {}).get("matchLabels") or {}
                    if all(epp_labels.get(k) == v for k, v in sel.items()):
                        ok = True
        if not ok:
            yield Finding(("deployment", "networkPolicy", "allowFromPodLabels"),
                          f"the NetworkPolicy drops the endpoint picker (pods {epp_labels}) on port {port}: it "
                          "cannot scrape or route to the engine", "remove allowFromPodLabels on this target")
    gw = r.gateway
    if gw is not None:
        ns = gw.namespace or w.namespace
        if not any(_admits(p, ns, port, w.namespace) for p in policies):
            yield Finding(("deployment", "networkPolicy", "allowFromNamespaces"),
                          f"the NetworkPolicy drops requests from the gateway's namespace {ns} on port {port}",
                          f"add {ns} to deployment.networkPolicy.allowFromNamespaces")


@rule("LD715", Severity.INFO)
def lora_slots_memory(ctx: RuleContext) -> Iterable[Finding]:
    """The LoRA slots take GPU memory that the KV cache then lacks.

    vLLM reserves buffers for `--max-loras` adapters at `--max-lora-rank` in every layer
    when it loads the model, before it sizes the KV cache (vllm/lora/layers, stacked
    `lora_a`/`lora_b` per projection slice; sizing/lora.py has the formula). `llmdeploy
    size` subtracts them from the KV cache; this rule says how much of the cache they
    took: information, a warning above a quarter of it or when nothing is left (the
    sizing error then names the shortage). Lower `model.maxLoras`, use adapters of a
    lower rank, or give the replica more GPU memory.
    """
    s = ctx.spec
    limits = lora_limits(s)
    model, sizing = ctx.resolved.model, ctx.resolved.sizing
    if limits is None or model is None or sizing is None or sizing.per_gpu.lora_gib <= 0:
        return
    need_gib = sizing.per_gpu.lora_gib
    kv_gib = sizing.per_gpu.kv_cache_gib
    share = need_gib / (need_gib + kv_gib)
    tokens = int(sizing.kv_cache_tokens * need_gib / kv_gib) if kv_gib > 0 else 0
    what = (f"{limits.max_loras} LoRA slot(s) at rank {limits.max_rank} take {need_gib:.2f} GiB per GPU, "
            f"{share:.0%} of the memory the KV cache would have without them"
            + (f" (about {tokens:,} tokens; llmdeploy size counts them)" if tokens else ""))
    if kv_gib <= 0:
        yield Finding(("model", "loras"), what + ": the engine has no KV cache left and does not start",
                      "lower model.maxLoras or the adapters' rank, or use a larger GPU", Severity.WARNING)
    elif share > 0.25:
        yield Finding(("model", "loras"), what, "lower model.maxLoras or the adapters' rank if the cache is tight",
                      Severity.WARNING)
    else:
        yield Finding(("model", "loras"), what)


@rule("LD724")
def model_rewrites_reach_served_models(ctx: RuleContext) -> Iterable[Finding]:
    """Every target of `router.modelRewrites` is a model the service serves, on a router that has the kind.

    The llm-d router rewrites the request's `model` to a target and then schedules it on
    the pool (InferenceModelRewrite, `llm-d.ai/v1alpha2`, llm-d router ≥ 0.9): a target
    the engines do not serve — neither the served name nor a LoRA adapter's name (`--lora-modules`,
    workload_lora.go @ KServe v0.20.0) — is answered "model not found" by vLLM for every
    request the rule matches. Older routers do not know the kind. On other targets there is
    no router to rewrite (warning).

    Fails::

        model: {loras: [{name: sql, storageUri: hf://org/sql-lora}]}
        router:
          modelRewrites:
            - {model: chat-sql, targets: [{model: sql-v2}]}

    Passes::

        router:
          modelRewrites:
            - {model: chat-sql, targets: [{model: sql, weight: 90}, {model: chat, weight: 10}]}
    """
    s = ctx.spec
    rewrites = s.router.model_rewrites
    if not rewrites:
        return
    if not _llm(ctx):
        yield Finding(("router", "modelRewrites"), f"router.modelRewrites has no effect on the "
                      f"{s.deployment.target} target (it has no llm-d router)",
                      "set deployment.target: llmInferenceService or remove modelRewrites",
                      severity=Severity.WARNING, key=True)
        return
    parts = [int(p) for p in s.router.llmd_router_version.split(".")]
    if (parts + [0])[:2] < [0, 9]:
        yield Finding(("router", "llmdRouterVersion"), f"llm-d router {s.router.llmd_router_version} has no "
                      "InferenceModelRewrite (llm-d.ai/v1alpha2 arrives with 0.9)",
                      "raise router.llmdRouterVersion to your router's release, or remove modelRewrites")
    served = {s.model.served_name or s.metadata.name} | {a.name for a in s.model.loras}
    for i, r in enumerate(rewrites):
        for j, t in enumerate(r.targets):
            if t.model not in served:
                yield Finding(("router", "modelRewrites", i, "targets", j, "model"),
                              f"rewrite target {t.model!r} is not served by the engines (they serve "
                              f"{', '.join(sorted(served))}): every request for {r.model!r} routed there fails",
                              "name the served model or one of model.loras")


KV_EVENTS_FLAG = "--kv-events-config"


@rule("LD725")
def precise_prefix_scorer_needs_kv_events(ctx: RuleContext) -> Iterable[Finding]:
    """The `precisePrefixCache` scorer needs a vLLM that publishes KV-cache events, with prefix caching on.

    llm-d's `precise-prefix-cache-scorer` indexes the blocks each pod holds from vLLM's
    KV-cache events (llm-d-inference-scheduler v0.8.0 `docs/architecture.md`,
    `preciseprefixcache/precise_prefix_cache.go`); vLLM publishes them over ZMQ when started
    with `--kv-events-config` (vllm#16750, first in 0.9.0; `engines/vllm.yaml` has the flag's
    release), and only for blocks its prefix cache keeps. llmdeploy renders the flag, the
    pod IP and hash seed and opens the NetworkPolicy to the picker's subscriptions on TCP
    5556 (plan/kvevents.py). Refused: a pinned vLLM without the flag (the engine would
    refuse it at start), another engine, prefix caching off (no events, so no hits), or a
    disaggregated service (llmdeploy renders the precise scorer in the single-profile
    picker only). On the inferenceService target there is no picker (LD708 warns).

    Fails::

        runtime: {image: vllm/vllm-openai:v0.8.5}
        router: {scorers: [{type: precisePrefixCache}]}
    """
    s = ctx.spec
    scorers = s.router.scorers or []
    idx = next((i for i, sc in enumerate(scorers) if sc.type == "precisePrefixCache"), None)
    if idx is None or not _llm(ctx):
        return
    where = ("router", "scorers", idx, "type")
    engine = ctx.resolved.engine
    if s.runtime.engine != "vllm":
        yield Finding(where, f"the precise prefix-cache scorer reads vLLM's KV-cache events; {s.runtime.engine} "
                      "publishes none", "use the prefixCache scorer")
        return
    if engine is not None and not engine.flag_available(KV_EVENTS_FLAG):
        fi = engine.flag(KV_EVENTS_FLAG)
        since = f"vLLM {fi.added} or later" if fi is not None and fi.added else "a vLLM release that has it"
        yield Finding(where, f"vLLM {engine.version} has no {KV_EVENTS_FLAG}: it publishes no KV-cache events for "
                      "the precise prefix-cache scorer (and would refuse the flag at start)",
                      f"pin {since} (runtime.image), or use the prefixCache scorer")
    if s.runtime.prefix_caching is False:
        yield Finding(("runtime", "prefixCaching"), "the precise prefix-cache scorer indexes the blocks vLLM's "
                      "prefix cache keeps, but prefix caching is off: no events, no hits",
                      "set runtime.prefixCaching: true")
    if s.disaggregation is not None:
        yield Finding(where, "llmdeploy renders the precise prefix-cache scorer for an aggregated pool only; the "
                      "P/D profiles use the prefixCache scorer", "use the prefixCache scorer with disaggregation")
