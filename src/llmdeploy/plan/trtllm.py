"""TensorRT-LLM's ``trtllm-serve`` arguments and its extra LLM API options file.

``trtllm-serve`` is a click command (NVIDIA/TensorRT-LLM
``tensorrt_llm/commands/serve.py``): the model is the first positional argument, options
are spelled with underscores, ``--host`` defaults to ``localhost`` (unreachable from the
pod network, so the runtime passes ``--host=0.0.0.0``). Settings without a command-line
option in every tracked release — KV block reuse (prefix caching), the KV-cache dtype,
chunked prefill (``--enable_chunked_prefill`` is absent before 1.2) and
``return_perf_metrics`` (without it trtllm-serve mounts no ``/prometheus/metrics``) — are
LLM API arguments (``tensorrt_llm/llmapi/llm_args.py``) set in the YAML file given by
``--extra_llm_api_options``; llmdeploy renders that file as a ConfigMap mounted read-only
into the engine container, and only when the spec needs it.
"""

from __future__ import annotations

import json
from typing import Any

from .model import Manifest, PlanContext

OPTIONS_DIR = "/etc/llmdeploy/trtllm"
OPTIONS_FILE = "extra-llm-api-options.yaml"
OPTIONS_VOLUME = "trtllm-options"


def options_configmap_name(ctx: PlanContext) -> str:
    """Name of the service's options ConfigMap (one per service; a rollout candidate shares it)."""
    return f"{ctx.name}-trtllm-options"


def extra_llm_api_options(ctx: PlanContext) -> dict[str, Any]:
    """The LLM API settings the spec asks for that ``trtllm-serve`` has no option for.

    ``kv_cache_config.enable_block_reuse`` is TensorRT-LLM's prefix caching (on by
    default); ``kv_cache_config.dtype: fp8`` stores the KV cache in FP8;
    ``enable_chunked_prefill`` (default false) works in every release, unlike the 1.2
    command-line flag; ``return_perf_metrics`` (default false) is what makes trtllm-serve
    mount ``/prometheus/metrics`` (``OpenAIServer.register_routes`` in
    tensorrt_llm/serve/openai_server.py), so it is set whenever monitoring scrapes a release
    that has the endpoint. Empty when the spec keeps every default, so no file is rendered.
    """
    rt = ctx.spec.runtime
    options: dict[str, Any] = {}
    kv: dict[str, Any] = {}
    if rt.prefix_caching is not None:
        kv["enable_block_reuse"] = bool(rt.prefix_caching)
    if rt.kv_cache_dtype != "auto":
        kv["dtype"] = "fp8"
    if kv:
        options["kv_cache_config"] = kv
    if rt.chunked_prefill:
        options["enable_chunked_prefill"] = True
    if ctx.spec.monitoring.enabled and ctx.engine.defaults.extra.get("prometheus_metrics", False):
        options["return_perf_metrics"] = True
    return options


def trtllm_args(ctx: PlanContext, max_num_seqs: int) -> list[str]:
    """Service-specific ``trtllm-serve`` options, in a stable order (engines/tensorrt-llm.yaml)."""
    s = ctx.spec
    rt = s.runtime
    par = s.resources.parallelism
    args = [
        f"--max_seq_len={rt.max_model_len}",
        f"--max_batch_size={max_num_seqs}",
        f"--kv_cache_free_gpu_memory_fraction={rt.gpu_memory_utilization:g}",
        f"--tp_size={par.tensor}",
    ]
    if par.pipeline > 1:
        args.append(f"--pp_size={par.pipeline}")
    if par.expert:
        # Experts split over every tensor-parallel rank (TensorRT-LLM's MoE EP size).
        args.append(f"--ep_size={par.tensor}")
    if rt.max_num_batched_tokens is not None:
        args.append(f"--max_num_tokens={rt.max_num_batched_tokens}")
    if s.model.trust_remote_code:
        args.append("--trust_remote_code")
    if extra_llm_api_options(ctx):
        args.append(f"--extra_llm_api_options={OPTIONS_DIR}/{OPTIONS_FILE}")
    args.extend(rt.extra_args)
    return args


def options_volume(ctx: PlanContext) -> tuple[tuple[dict[str, Any], ...], tuple[dict[str, Any], ...]]:
    """(volumes, volume mounts) that bring the options file into the container; empty when none."""
    if not extra_llm_api_options(ctx):
        return (), ()
    volume = {"name": OPTIONS_VOLUME, "configMap": {"name": options_configmap_name(ctx)}}
    mount = {"name": OPTIONS_VOLUME, "mountPath": OPTIONS_DIR, "readOnly": True}
    return (volume,), (mount,)


def options_configmap_manifest(ctx: PlanContext) -> Manifest | None:
    """The ConfigMap holding ``extra-llm-api-options.yaml``, or None when the spec needs no file."""
    options = extra_llm_api_options(ctx)
    if ctx.spec.runtime.engine != "tensorrt-llm" or not options:
        return None
    name = options_configmap_name(ctx)
    values = {
        "metadata": ctx.metadata(name, component="engine-options"),
        # JSON is YAML: trtllm-serve reads the file with yaml.safe_load.
        "data": {OPTIONS_FILE: json.dumps(options, indent=2, sort_keys=True) + "\n"},
    }
    return Manifest("kserve/configmap.yaml.j2", "ConfigMap", name, values,
                    namespace=ctx.namespace, aliases=("configmap", "cm"))
