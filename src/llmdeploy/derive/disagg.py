"""Prefill/decode disaggregation: the decisions the rules and the planner share.

A disaggregated service (``disaggregation`` in the spec) runs two pools of vLLM engines:
the **decode** pool is the service as the spec describes it (``resources``, ``scaling``),
the **prefill** pool a second set of pods that only compute prompts and hand their KV
cache to a decode pod through a KV connector (vLLM ``--kv-transfer-config``). The router
sends each request to a prefill pod and a decode pod (llm-d's P/D scheduling profiles);
the decode pod's routing sidecar asks the prefill pod for the prompt first.

Written once here:

* :func:`connector_class` — the ``kv_connector`` name the pinned vLLM registers for the
  spec's connector (engine table ``features.kv_connectors``), or None.
* :func:`kv_transfer_config` — the ``--kv-transfer-config`` JSON both roles run with.
* :func:`transfer_failures_metric` — the KV-transfer failure counter the pinned vLLM exports
  for the spec's connector (``vllm:nixl_num_failed_transfers_total``, NIXL from 0.11.1), or None.
* :func:`prefill_spec` (from :mod:`llmdeploy.sizing.roles`) — the spec of the prefill
  pool: the service with the prefill role's GPU and tensor parallel.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from ..sizing.roles import prefill_gpu_type, prefill_spec, prefill_tensor

if TYPE_CHECKING:  # pragma: no cover
    from ..engines import EngineVersionInfo
    from ..spec.models import LLMService

__all__ = [
    "KV_TRANSFER_FLAG",
    "LLMD_SIDECAR_CONNECTOR",
    "NIXL_SIDE_CHANNEL_HOST_ENV",
    "TRANSFER_FAILURES",
    "connector_class",
    "is_disaggregated",
    "kv_transfer_config",
    "prefill_gpu_type",
    "prefill_spec",
    "prefill_tensor",
    "transfer_failures_metric",
]

#: The engine table's logical metric of failed KV transfers (engines/vllm.yaml ``nixl_failed_transfers``).
TRANSFER_FAILURES = "nixl_failed_transfers"

KV_TRANSFER_FLAG = "--kv-transfer-config"
#: The connector KServe v0.20.0's decode preset gives the llm-d routing sidecar
#: (config-llm-decode-template.yaml: ``--kv-connector=nixlv2``): on the LLM target the
#: engines must speak NIXL (llm-d-inference-scheduler cmd/pd-sidecar: nixlv2, shared-storage, sglang).
LLMD_SIDECAR_CONNECTOR = "nixl"
#: NixlConnector's handshake listens on this host (vLLM envs.py ``VLLM_NIXL_SIDE_CHANNEL_HOST``,
#: default ``localhost``): another pod can only reach it on the pod IP.
NIXL_SIDE_CHANNEL_HOST_ENV = "VLLM_NIXL_SIDE_CHANNEL_HOST"


def is_disaggregated(spec: LLMService) -> bool:
    return spec.disaggregation is not None


def connector_class(spec: LLMService, engine: EngineVersionInfo) -> str | None:
    """The vLLM ``kv_connector`` of the spec's connector at the pinned release (None: it has none)."""
    d = spec.disaggregation
    if d is None:
        return None
    return engine.features.kv_connectors.get(d.connector)


def kv_transfer_config(spec: LLMService, engine: EngineVersionInfo) -> str | None:
    """The ``--kv-transfer-config`` value of both roles: ``kv_both`` (each engine may send and receive).

    NixlConnector and LMCacheConnectorV1 run with ``kv_role: kv_both`` on both pools (vLLM's
    NixlConnector usage guide and the llm-d P/D guide run both roles with it); the router,
    not the engine, decides which pod prefills.
    """
    cls = connector_class(spec, engine)
    if cls is None:
        return None
    return json.dumps({"kv_connector": cls, "kv_role": "kv_both"}, separators=(",", ":"), sort_keys=True)


def transfer_failures_metric(spec: LLMService, engine: EngineVersionInfo) -> str | None:
    """The exported KV-transfer failure counter for the spec's connector, or None when there is none.

    Only vLLM's NixlConnector counts failed transfers (``NixlPromMetrics``, from 0.11.1; read in
    the PyPI sdists, see engines/vllm.yaml ``nixl_failed_transfers``); LMCache and P2pNccl export
    no such counter, and before 0.11.1 the connector statistics were only logged.
    """
    d = spec.disaggregation
    if d is None or d.connector != "nixl" or not engine.has_metric(TRANSFER_FAILURES):
        return None
    return engine.metric(TRANSFER_FAILURES)
