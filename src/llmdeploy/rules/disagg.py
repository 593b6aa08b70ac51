"""LD716–LD722: prefill/decode disaggregation (``disaggregation`` in the spec).

A disaggregated service runs a prefill pool beside the decode pool (the service itself);
a KV connector moves each prompt's KV cache from one to the other and the llm-d router
schedules every request on both (KServe v0.20.0 ``LLMInferenceService.spec.prefill``).
These rules refuse the splits the pinned engine, the router or the cluster cannot run, at
the spec line that causes them. Shared decisions live in :mod:`llmdeploy.derive.disagg`.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..derive.disagg import KV_TRANSFER_FLAG, LLMD_SIDECAR_CONNECTOR, connector_class
from ..diagnostics import Severity
from ..engines import releases, resolve_engine
from .registry import Finding, RuleContext, rule

TARGET = "llmInferenceService"
LWS_TARGET = "leaderWorkerSet"


@rule("LD716")
def disaggregation_target(ctx: RuleContext) -> Iterator[Finding]:
    """Prefill/decode disaggregation is rendered on the LLMInferenceService and LeaderWorkerSet targets, with vLLM.

    KServe v0.20.0 renders a prefill pool from ``LLMInferenceService.spec.prefill``
    (``workload_single_node.go`` ``reconcileSingleNodePrefill``: Deployment
    ``<name>-kserve-prefill``, pods labelled ``llm-d.ai/role: prefill``) and the llm-d router
    schedules each request on a prefill and a decode pod; on the leaderWorkerSet target
    llmdeploy renders an LWS v0.10.0 DisaggregatedSet (LD723). The InferenceService target
    has no second pool, and TGI has no KV connector; a replica that spans nodes is not
    rendered with a prefill pool.

    Fails::

        disaggregation: {connector: nixl}
        deployment: {target: inferenceService}

    Passes::

        disaggregation: {connector: nixl}
        deployment: {target: llmInferenceService}
    """
    s = ctx.spec
    if s.disaggregation is None:
        return
    if s.deployment.target not in (TARGET, LWS_TARGET):
        yield Finding(("disaggregation",), "prefill/decode disaggregation is rendered on the llmInferenceService "
                      f"and leaderWorkerSet targets (deployment.target is {s.deployment.target})",
                      f"set deployment.target: {TARGET}, or remove disaggregation", key=True)
    if s.runtime.engine != "vllm":
        yield Finding(("runtime", "engine"), f"{s.runtime.engine} has no KV connector for prefill/decode "
                      "disaggregation", "use engine vllm, or remove disaggregation")
    if s.resources.nodes > 1:
        yield Finding(("resources", "nodes"), "a disaggregated service is rendered with one node per replica "
                      f"(resources.nodes is {s.resources.nodes})",
                      "fit each role on one node (quantize, or raise tensor parallel within the node)")


def _first_release_with(connector: str) -> str | None:
    for v in releases("vllm"):
        if connector in resolve_engine("vllm", None, v).features.kv_connectors:
            return v
    return None


@rule("LD717")
def connector_available(ctx: RuleContext) -> Iterator[Finding]:
    """The KV connector exists in the pinned vLLM, and on the LLM target it is the one the router's sidecar speaks.

    ``disaggregation.connector`` becomes ``--kv-transfer-config
    '{"kv_connector": "<class>", "kv_role": "kv_both"}'`` on both roles; vLLM resolves the
    class in its ``KVConnectorFactory`` registry (vllm/distributed/kv_transfer/kv_connector/
    factory.py) and refuses a name it does not know at start. The registry per release is
    in the engine table (``features.kv_connectors``: NixlConnector and LMCacheConnectorV1
    from 0.9.0, P2pNcclConnector from 0.9.2). On the LLM target the decode pods run the
    llm-d routing sidecar with ``--kv-connector=nixlv2`` (KServe v0.20.0
    config-llm-decode-template.yaml), so the engines must use NixlConnector.

    Fails::

        runtime: {image: vllm/vllm-openai:v0.8.5}
        disaggregation: {connector: nixl}

    Passes::

        runtime: {image: vllm/vllm-openai:v0.11.0}
        disaggregation: {connector: nixl}
    """
    s = ctx.spec
    d = s.disaggregation
    engine = ctx.resolved.engine
    if d is None or engine is None or s.runtime.engine != "vllm":
        return
    if connector_class(s, engine) is None:
        first = _first_release_with(d.connector)
        have = ", ".join(sorted(engine.features.kv_connectors)) or "none"
        hint = (f"pin vLLM {first} or later (runtime.image)" if first else "choose another connector") + \
            f"; connectors of {engine.version}: {have}"
        yield Finding(("disaggregation", "connector"),
                      f"vLLM {engine.version} registers no {d.connector} KV connector: the engines would refuse "
                      f"{KV_TRANSFER_FLAG} at start", hint)
    elif s.deployment.target == TARGET and d.connector != LLMD_SIDECAR_CONNECTOR:
        yield Finding(("disaggregation", "connector"),
                      f"on the {TARGET} target the decode pods' llm-d routing sidecar runs --kv-connector=nixlv2 "
                      f"(KServe v0.20.0 decode preset); {d.connector} engines would never receive the prompt's KV cache",
                      f"set connector: {LLMD_SIDECAR_CONNECTOR}")


@rule("LD718")
def prefill_gpu_known(ctx: RuleContext) -> Iterator[Finding]:
    """The prefill role's GPU is in the catalog.

    ``disaggregation.prefill.gpu`` names the prefill pods' GPU (default: the service's);
    it sets their node selector, GPU count and sizing, so it must be a catalog key
    (``llmdeploy catalog gpus``).

    Fails::

        disaggregation:
          connector: nixl
          prefill: {gpu: h300}

    Passes::

        disaggregation:
          connector: nixl
          prefill: {gpu: h200}
    """
    err = ctx.resolved.prefill_gpu_error
    if err is not None and ctx.spec.disaggregation is not None:
        yield Finding(("disaggregation", "prefill", "gpu"), f"prefill role: {err.message}", err.hint)


@rule("LD719")
def prefill_role_fits(ctx: RuleContext) -> Iterator[Finding]:
    """The prefill role fits its GPUs.

    The prefill pool is sized like a replica of its own (its GPU, its tensor parallel,
    the service's model and ``maxModelLen``; ``llmdeploy size`` shows it): weights, the
    activations of a full token budget and at least one ``maxModelLen`` prompt of KV cache
    must fit, and its tensor group must fit one node. A problem the decode role shares
    (the same GPU and tensor size) is reported once, by the sizing rules (LD2xx).

    Fails::

        resources: {gpu: {type: h200}, parallelism: {tensor: 8}}
        disaggregation:
          connector: nixl
          prefill: {tensor: 2}      # 690 GB of DeepSeek-R1 on 2 GPUs

    Passes::

        disaggregation:
          connector: nixl
          prefill: {tensor: 8}
    """
    s = ctx.spec
    d = s.disaggregation
    rep = ctx.resolved.prefill_sizing
    if d is None or rep is None:
        return
    where = ("disaggregation", "prefill", "tensor") if d.prefill.tensor is not None else ("disaggregation", "prefill")
    decode = ctx.resolved.sizing
    already = {r.message for r in decode.reasons} if decode is not None else set()
    for reason in rep.reasons:
        if reason.message in already:
            continue  # the same shape as the decode role: its LD2xx error already says it
        yield Finding(where, f"prefill role ({rep.gpu_count} × {rep.gpu.key}): {reason.message}", reason.hint,
                      key=d.prefill.tensor is None)


@rule("LD720", Severity.WARNING)
def transfer_network(ctx: RuleContext) -> Iterator[Finding]:
    """The KV transfer has an RDMA network, or the spec knows it runs over TCP.

    NixlConnector moves KV blocks with UCX; without RDMA devices in both pools' pods UCX
    falls back to TCP through host memory, and NVLink between pods is not used (UCX's
    ``cuda_ipc`` transport has no remote memory access). NVIDIA's Dynamo disaggregation
    guide measures 10–40× worse time to first token without RDMA
    (ai-dynamo/dynamo docs/pages/kubernetes/disagg-communication-guide.md). Declare
    ``resources.interconnect.fabric: infiniband`` or ``roce`` with ``rdmaResources`` (rendered
    on both roles' pods); ``ethernet`` is accepted with this warning.

    Fails (warning)::

        disaggregation: {connector: nixl}      # resources.interconnect.fabric: ethernet

    Passes::

        resources:
          interconnect: {fabric: roce, rdmaResources: {rdma/roce: 1}}
        disaggregation: {connector: nixl}
    """
    s = ctx.spec
    if s.disaggregation is None or s.disaggregation.connector == "lmcache":
        return
    ic = s.resources.interconnect
    if ic.fabric == "ethernet":
        roles = ctx.resolved.roles
        extra = f" (≈ {roles.transfer_ms:.0f} ms per typical prompt at 25 Gb/s)" if roles is not None else ""
        yield Finding(("resources", "interconnect", "fabric") if ctx.user_set(("resources", "interconnect", "fabric"))
                      else ("disaggregation", "connector"),
                      f"the KV cache moves from prefill to decode over TCP{extra}: no RDMA fabric is declared",
                      "declare resources.interconnect.fabric: infiniband or roce with rdmaResources")


@rule("LD721")
def kv_transfer_flag_owned(ctx: RuleContext) -> Iterator[Finding]:
    """``--kv-transfer-config`` comes from ``disaggregation``, not from ``runtime.extraArgs``.

    llmdeploy writes the connector's ``--kv-transfer-config`` on both roles; a second one
    in ``extraArgs`` would silently win (argparse keeps the last) on one role and not on
    the other's sizing. Without ``disaggregation`` a hand-written KV connector runs an
    engine that waits for a partner pool nobody renders.

    Fails::

        runtime:
          extraArgs: ['--kv-transfer-config={"kv_connector":"NixlConnector","kv_role":"kv_both"}']

    Passes::

        disaggregation: {connector: nixl}
    """
    for i, a in enumerate(ctx.spec.runtime.extra_args):
        if a == KV_TRANSFER_FLAG or a.startswith((KV_TRANSFER_FLAG + "=", "--kv_transfer_config")):
            if ctx.spec.disaggregation is not None:
                yield Finding(("runtime", "extraArgs", i), "--kv-transfer-config is set by disaggregation.connector; "
                              "this one would override it", "remove it from extraArgs")
            else:
                yield Finding(("runtime", "extraArgs", i), "a KV connector without a prefill pool: the engine would "
                              "wait for KV transfers no pod sends", "declare disaggregation instead",
                              severity=Severity.WARNING)


@rule("LD722", Severity.WARNING)
def prefill_replicas_from_load(ctx: RuleContext) -> Iterator[Finding]:
    """``prefill.replicas: auto`` needs a target load to size from.

    With ``auto`` the prefill replicas come from ``scaling.targetLoad`` (requests per second
    × prompt tokens ÷ the prompt tokens per second of one prefill replica, at 80 %); without
    a target load the pool gets one replica, which may starve or idle the decode pool.

    Fails (warning)::

        disaggregation: {connector: nixl}       # no scaling.targetLoad

    Passes::

        disaggregation: {connector: nixl, prefill: {replicas: 2}}
    """
    s = ctx.spec
    d = s.disaggregation
    if d is not None and d.prefill.replicas == "auto" and s.scaling.target_load is None:
        yield Finding(("disaggregation", "prefill"), "prefill replicas are auto but scaling.targetLoad is not set: "
                      "one prefill replica", "set scaling.targetLoad, or disaggregation.prefill.replicas", key=True)



@rule("LD723", Severity.WARNING)
def disaggregated_set_limits(ctx: RuleContext) -> Iterator[Finding]:
    """A DisaggregatedSet (leaderWorkerSet target) needs a P/D-aware router in front, and is not autoscaled.

    LWS v0.10.0's DisaggregatedSet creates one LeaderWorkerSet per role and rolls them out
    together, but routes nothing: a request must reach a prefill pod first and then a decode
    pod that pulls the KV cache (LWS's own vLLM example: "prefill<->decode wiring are
    deployment-specific"). llmdeploy labels the pods ``llm-d.ai/role: prefill|decode`` (what the
    llm-d router's ``prefill-filter``/``decode-filter`` select) and renders one Service per
    role; the router is the cluster's (warning). Per-role autoscaling goes through
    DisaggregatedSetRoleScaler objects, which llmdeploy does not render: ``scaling.autoscaler:
    keda`` is refused.

    Fails::

        deployment: {target: leaderWorkerSet}
        disaggregation: {connector: nixl}
        scaling: {autoscaler: keda}

    Passes (with the router warning)::

        deployment: {target: leaderWorkerSet}
        disaggregation: {connector: nixl}
        scaling: {autoscaler: none}
    """
    s = ctx.spec
    if s.disaggregation is None or s.deployment.target != LWS_TARGET:
        return
    yield Finding(("disaggregation",), "a DisaggregatedSet routes nothing: requests need a P/D-aware router (the "
                  "llm-d router's P/D profiles) in front of the pods labelled llm-d.ai/role",
                  "point your router at the Services <name>-prefill and <name>-decode, or use deployment.target: "
                  "llmInferenceService (KServe runs the router)", key=True)
    if s.scaling.autoscaler == "keda":
        yield Finding(("scaling", "autoscaler"), "KEDA cannot scale the roles of a DisaggregatedSet (its scale "
                      "subresources are the per-role DisaggregatedSetRoleScalers, not rendered)",
                      "set scaling.autoscaler: none (fixed replicas per role)", severity=Severity.ERROR)
