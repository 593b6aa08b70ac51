"""LD1xx: the spec itself (file, shape, names, storage, engine flags)."""

from __future__ import annotations

from collections.abc import Iterator

from .. import naming
from ..derive.storage import STORAGE_HINTS, STORAGE_PATTERNS, storage_scheme
from ..diagnostics import Severity
from ..spec import problems
from .registry import Finding, RuleContext, documented, rule

# ---- emitted by the loader and the schema stage; registered for their documentation

documented(problems.YAML_UNREADABLE, Severity.ERROR, """The file cannot be read as YAML.

    A syntax error, a file that does not exist or is not UTF-8. The diagnostic points at
    the line and column where the parser stopped.
    """, "load")
documented(problems.DUPLICATE_KEY, Severity.ERROR, """A mapping repeats a key.

    YAML parsers disagree on which value wins, so llmdeploy refuses duplicates.

    Fails::

        runtime:
          maxModelLen: 8192
          maxModelLen: 4096
    """, "load")
documented(problems.TAB_INDENT, Severity.ERROR, """A tab is used for indentation.

    YAML indents with spaces only.
    """, "load")
documented(problems.NO_SPEC, Severity.ERROR, """The file is empty or its root is not a mapping.

    A spec is a mapping that starts with ``apiVersion`` and ``kind``.
    """, "load")
documented(problems.BAD_VALUE, Severity.ERROR, """A value has the wrong type or is out of range.

    Checked against the spec models (the JSON Schema in ``schemas/`` says the same).

    Fails::

        runtime:
          maxModelLen: -1      # must be a positive integer
    """, "schema")
documented(problems.UNKNOWN_KEY, Severity.ERROR, """A key is not part of the spec.

    Unknown keys are errors (they are usually typos); the hint suggests the closest valid
    key.

    Fails::

        runtime:
          gpuMemoryUtilisation: 0.9   # did you mean 'gpuMemoryUtilization'?
    """, "schema")
documented(problems.WRONG_API, Severity.ERROR, """``apiVersion`` or ``kind`` is missing or wrong.

    A spec starts with ``apiVersion: llmdeploy.dev/v1alpha1`` and ``kind: LLMService``.
    """, "schema")
documented(problems.MISSING_KEY, Severity.ERROR, """A required key is missing.

    ``metadata.name``, ``model.storageUri`` and ``resources.gpu.type`` have no default.
    """, "schema")
documented(problems.BAD_PROFILE, Severity.ERROR, """The profile cannot be found or read.

    ``profile`` names a built-in profile (``dev``, ``staging``, ``production``) or the path
    of a team profile file, relative to the spec.
    """, "schema")
#: Emitted by the pipeline, which alone sees every document of a run.
DUPLICATE_SERVICE = "LD109"

documented(DUPLICATE_SERVICE, Severity.ERROR, """Two specs define the same service.

    Within one ``validate`` or ``render`` call every ``metadata.namespace``/``metadata.name``
    pair must be unique; otherwise the second would overwrite the first when applied.
    """, "analyze")


def extra_args_lists(ctx: RuleContext) -> list[tuple[tuple[str, ...], list[str]]]:
    """Every ``extraArgs`` list of the spec with its path: the runtime's, and the rollout candidate's when set."""
    lists: list[tuple[tuple[str, ...], list[str]]] = [(("runtime", "extraArgs"), ctx.spec.runtime.extra_args)]
    cand = ctx.spec.rollout.candidate
    if cand is not None and cand.extra_args:
        lists.append((("rollout", "candidate", "extraArgs"), cand.extra_args))
    return lists


@rule("LD114")
def gpu_in_catalog(ctx: RuleContext) -> Iterator[Finding]:
    """The GPU type is not in the catalog, or names several variants.

    ``resources.gpu.type`` is a catalog key; ``llmdeploy catalog gpus`` lists them. A
    family name that covers several entries (``a100``: 40 and 80 GB; ``h100``: SXM, PCIe,
    NVL) is refused with the choices rather than sized as one of them: an A100 40GB sized
    as the 80GB card is called a fit that runs out of memory.

    Fails::

        resources:
          gpu: {type: a100}      # a100-40gb or a100-80gb?

    Passes::

        resources:
          gpu: {type: a100-80gb}
    """
    err = ctx.resolved.gpu_error
    if err is not None:
        yield Finding(("resources", "gpu", "type"), err.message, err.hint)


@rule("LD115")
def model_resolved(ctx: RuleContext) -> Iterator[Finding]:
    """The model cannot be resolved.

    ``model.id`` must be a catalog entry (``llmdeploy catalog models``), or ``model.config``
    must point at a readable Hugging Face ``config.json``.
    """
    err = ctx.resolved.model_error
    if err is not None:
        yield Finding(("model", "config") if ctx.spec.model.config else ("model", "id"), err.message, err.hint)


@rule("LD117", Severity.WARNING)
def model_read_generically(ctx: RuleContext) -> Iterator[Finding]:
    """The model's ``config.json`` was read by its standard keys only: parts are approximated.

    llmdeploy never refuses a decoder ``config.json`` for its ``model_type``: any config
    with the standard keys (``num_hidden_layers``, ``hidden_size``,
    ``num_attention_heads``, ``num_key_value_heads``, ``head_dim``,
    ``intermediate_size``, ``vocab_size``, the usual MoE and layer-type keys) is sized.
    An architecture without explicit rules gets this warning, listing what was
    approximated (for example the vision tower, a layer pattern, or weights counted
    from the architecture because no ``model.safetensors.index.json`` was given). Give
    ``model.safetensorsIndex`` to size the weights from the checkpoint's exact size.

    Warns::

        model:
          config: ./some-new-arch/config.json   # model_type without explicit rules
    """
    model = ctx.resolved.model
    if model is None or not model.approximations:
        return
    where = ("model", "config") if ctx.spec.model.config else ("model", "id")
    yield Finding(where, f"{model.hf_id} ({model.family}) is read generically: " + "; ".join(model.approximations),
                  "sizes are estimates for these parts; pass the checkpoint's model.safetensors.index.json "
                  "(model.safetensorsIndex) for exact weights")


@rule("LD110")
def name_length(ctx: RuleContext) -> Iterator[Finding]:
    """The service name is too long for the names KServe derives from it.

    KServe names the predictor ``<name>-predictor`` (Standard mode) and Knative names its
    revisions ``<name>-predictor-00001``; each must be a DNS label of at most 63
    characters. Rollouts that add a candidate (``<name>-canary``) need room for the suffix
    too.
    """
    spec = ctx.spec
    suffix = ""
    if spec.rollout.strategy != "rolling" and spec.rollout.candidate is not None:
        suffix = "-" + spec.rollout.candidate.name_suffix
    limit = naming.max_service_name_length(spec.deployment.mode, suffix)
    if len(spec.metadata.name) > limit:
        yield Finding(("metadata", "name"),
                      f"name is {len(spec.metadata.name)} characters; at most {limit} fit "
                      f"{spec.deployment.mode} mode's derived names",
                      f"shorten it to {limit} characters or fewer")


@rule("LD111")
def gpu_count_matches_parallelism(ctx: RuleContext) -> Iterator[Finding]:
    """The GPU count differs from tensor × pipeline parallel size.

    vLLM uses exactly tensor × pipeline GPUs per replica (× data parallel inside the
    pod); more GPUs are wasted, fewer make the engine fail at start.
    """
    r = ctx.spec.resources
    need = r.parallelism.tensor * r.parallelism.pipeline * r.parallelism.data
    if r.gpu.count is not None and r.gpu.count != need:
        yield Finding(("resources", "gpu", "count"),
                      f"gpu.count is {r.gpu.count} but tensor × pipeline × data parallel needs {need}",
                      f"set gpu.count to {need} or remove it (it defaults to the parallelism)")


@rule("LD112")
def storage_uri(ctx: RuleContext) -> Iterator[Finding]:
    """The storage URI has an unknown scheme or a malformed path.

    Supported: ``hf://``, ``s3://``, ``gs://``, ``azureblob://`` (and Azure
    ``https://<account>.blob.core.windows.net/`` URLs), ``pvc://``, ``oci://``
    (modelcars), ``http(s)://``, MLflow ``models:/name/version`` and Kubeflow
    ``model-registry://model/version``. The last two need a storage initializer
    registered for them (a ``ClusterStorageContainer``); see docs/cookbook.md.
    """
    uris: list[tuple[tuple[str, ...], str]] = [(("model", "storageUri"), ctx.spec.model.storage_uri)]
    cand = ctx.spec.rollout.candidate
    if cand is not None and cand.storage_uri:
        uris.append((("rollout", "candidate", "storageUri"), cand.storage_uri))
    for path, uri in uris:
        scheme = storage_scheme(uri)
        if scheme is None:
            yield Finding(path, f"unknown storage URI scheme in {uri!r}",
                          "use one of hf://, s3://, gs://, azureblob://, pvc://, oci://, https://, "
                          "models:/ (MLflow) or model-registry://")
        elif not STORAGE_PATTERNS[scheme].match(uri):
            yield Finding(path, f"malformed {scheme} storage URI {uri!r}", f"expected {STORAGE_HINTS[scheme]}")


@rule("LD113")
def model_identity(ctx: RuleContext) -> Iterator[Finding]:
    """The model is named neither by ``id`` nor by ``config`` (or both disagree).

    Sizing needs the architecture: give a catalog ``id``, or ``config`` with the path of
    the model's ``config.json`` for a model the catalog lacks.
    """
    m = ctx.spec.model
    if not m.id and not m.config:
        yield Finding(("model",), "the model has neither id nor config",
                      "set model.id to a catalog entry or model.config to a config.json path", key=True)


@rule("LD116", Severity.WARNING)
def hf_uri_matches_id(ctx: RuleContext) -> Iterator[Finding]:
    """``model.id`` and an ``hf://`` storage URI name different models.

    Sizing uses ``model.id`` while the pods load ``storageUri``; when they differ the
    numbers describe another model.
    """
    m = ctx.spec.model
    if m.id and "/" in m.id and m.storage_uri.startswith("hf://"):
        repo = m.storage_uri[len("hf://"):].split(":", 1)[0]
        if repo.lower() != m.id.lower():
            yield Finding(("model", "storageUri"), f"storageUri loads {repo} but model.id is {m.id}",
                          "make them name the same model, or size with model.config")


@rule("LD120")
def engine_flags(ctx: RuleContext) -> Iterator[Finding]:
    """An extra engine flag is unknown, removed, or not yet in the pinned version.

    ``runtime.extraArgs`` is checked against the flag table of the pinned engine version
    (``src/llmdeploy/engines/``). Removed flags (``--swap-space``,
    ``--use-v2-block-manager``) and invented ones (``--enable-flash-attention``) are
    errors that say what to do instead; deprecated flags are warnings.

    Fails::

        runtime:
          image: vllm/vllm-openai:v0.11.0
          extraArgs: ["--enable-flash-attention"]
    """
    from ..engines import check_flag, split_arg

    info = ctx.resolved.engine
    if info is None:
        return
    args = ctx.spec.runtime.extra_args
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("-"):
            yield Finding(("runtime", "extraArgs", i), f"{arg!r} is not a flag",
                          "write flags as '--flag=value' (or the flag and its value as two items)")
            i += 1
            continue
        flag, value = split_arg(arg)
        problem = check_flag(info, flag)
        if problem is not None:
            sev = Severity.WARNING if problem.severity == "warning" else Severity.ERROR
            yield Finding(("runtime", "extraArgs", i), problem.message, problem.hint, severity=sev)
        fi = info.flag(flag)
        if value is None and fi is not None and fi.takes_value and i + 1 < len(args) and not args[i + 1].startswith("-"):
            i += 1  # the value is its own list item
        i += 1


@rule("LD121")
def generated_flags_not_repeated(ctx: RuleContext) -> Iterator[Finding]:
    """An extra arg repeats a flag that llmdeploy derives from the spec.

    Flags such as ``--max-model-len`` or ``--tensor-parallel-size`` come from their spec
    fields; setting them again in ``extraArgs`` (or in a rollout candidate's
    ``extraArgs``) would make the two disagree.
    """
    from ..engines import split_arg

    owned = {
        "--model": "model.storageUri", "--served-model-name": "model.servedName", "--port": "runtime.port",
        "--max-model-len": "runtime.maxModelLen", "--gpu-memory-utilization": "runtime.gpuMemoryUtilization",
        "--tensor-parallel-size": "resources.parallelism.tensor", "-tp": "resources.parallelism.tensor",
        "--pipeline-parallel-size": "resources.parallelism.pipeline", "-pp": "resources.parallelism.pipeline",
        "--data-parallel-size": "resources.parallelism.data",
        "--max-num-seqs": "runtime.maxNumSeqs", "--max-num-batched-tokens": "runtime.maxNumBatchedTokens",
        "--dtype": "model.dtype", "--quantization": "model.quantization", "-q": "model.quantization",
        "--kv-cache-dtype": "runtime.kvCacheDtype", "--enable-prefix-caching": "runtime.prefixCaching",
        "--no-enable-prefix-caching": "runtime.prefixCaching", "--enable-chunked-prefill": "runtime.chunkedPrefill",
        "--no-enable-chunked-prefill": "runtime.chunkedPrefill", "--revision": "model.revision",
        "--trust-remote-code": "model.trustRemoteCode", "--enable-expert-parallel": "resources.parallelism.expert",
        # TGI
        "--model-id": "model.storageUri", "--num-shard": "resources.parallelism.tensor",
        "--max-total-tokens": "runtime.maxModelLen", "--quantize": "model.quantization",
        "--max-batch-prefill-tokens": "runtime.maxNumBatchedTokens",
        "--max-concurrent-requests": "runtime.maxNumSeqs", "--cuda-memory-fraction": "runtime.gpuMemoryUtilization",
        # SGLang
        "--model-path": "model.storageUri",
        "--tp-size": "resources.parallelism.tensor", "--pp-size": "resources.parallelism.pipeline",
        "--context-length": "runtime.maxModelLen", "--mem-fraction-static": "runtime.gpuMemoryUtilization",
        "--max-running-requests": "runtime.maxNumSeqs", "--chunked-prefill-size": "runtime.maxNumBatchedTokens",
        "--disable-radix-cache": "runtime.prefixCaching",
        # TensorRT-LLM (trtllm-serve)
        "--max_seq_len": "runtime.maxModelLen", "--max_batch_size": "runtime.maxNumSeqs",
        "--max_num_tokens": "runtime.maxNumBatchedTokens", "--tp_size": "resources.parallelism.tensor",
        "--tensor_parallel_size": "resources.parallelism.tensor", "--pp_size": "resources.parallelism.pipeline",
        "--pipeline_parallel_size": "resources.parallelism.pipeline",
        "--kv_cache_free_gpu_memory_fraction": "runtime.gpuMemoryUtilization",
        "--free_gpu_memory_fraction": "runtime.gpuMemoryUtilization", "--host": "the runtime (0.0.0.0)",
        "--backend": "the runtime (pytorch)", "--enable_chunked_prefill": "runtime.chunkedPrefill",
        "--trust_remote_code": "model.trustRemoteCode",
    }
    for where, args in extra_args_lists(ctx):
        for i, arg in enumerate(args):
            flag, _ = split_arg(arg) if arg.startswith("-") else (arg, None)
            if flag in owned:
                yield Finding((*where, i), f"{flag} is derived from {owned[flag]}",
                              f"set {owned[flag]} instead of passing {flag}")


@rule("LD122", Severity.WARNING)
def image_pinned(ctx: RuleContext) -> Iterator[Finding]:
    """The engine image is not pinned to a known version.

    Flags, metric names and the memory profile depend on the engine version. An image
    without a version tag (``latest``, ``nightly``, a digest) or an unknown version is
    treated as the version named in the warning; pin the tag or set
    ``runtime.engineVersion``.
    """
    info = ctx.resolved.engine
    if info is not None and info.assumed:
        if ctx.user_set(("runtime", "image")):
            where: tuple[str, ...] = ("runtime", "image")
        elif ctx.user_set(("runtime",)):
            where = ("runtime",)
        else:
            where = ("kind",)  # no runtime section at all: point at the top of the spec
        yield Finding(where, info.assumed_reason or f"engine version unknown; assuming {info.version}",
                      "pin the image tag (e.g. vllm/vllm-openai:v" + info.version + ") or set runtime.engineVersion",
                      key=where != ("runtime", "image"))


@rule("LD123")
def engine_features(ctx: RuleContext) -> Iterator[Finding]:
    """The spec asks the engine for a feature it does not have.

    Each engine's table lists what it supports (e.g. TGI has no pipeline parallelism
    and no ``maxNumSeqs``; llmdeploy renders no LoRA adapters for TensorRT-LLM, whose
    ``lora_config`` lives in its extra options file); a spec that needs a missing
    feature gets an error naming the engine and version.
    """
    info = ctx.resolved.engine
    if info is None:
        return
    spec = ctx.spec
    wants: list[tuple[tuple[str | int, ...], str, bool]] = [
        (("runtime", "prefixCaching"), "prefix_caching", spec.runtime.prefix_caching is True),
        (("runtime", "chunkedPrefill"), "chunked_prefill", spec.runtime.chunked_prefill is True),
        (("runtime", "kvCacheDtype"), "kv_cache_dtype_fp8", spec.runtime.kv_cache_dtype != "auto"),
        (("resources", "parallelism", "pipeline"), "pipeline_parallel", spec.resources.parallelism.pipeline > 1),
        (("resources", "parallelism", "data"), "data_parallel", spec.resources.parallelism.data > 1),
        (("resources", "parallelism", "expert"), "expert_parallel", spec.resources.parallelism.expert),
        (("model", "loras"), "lora", bool(spec.model.loras)),
    ]
    for path, feature, asked in wants:
        if asked and not info.supports(feature):
            yield Finding(path, f"{info.engine} {info.version} does not support {feature.replace('_', ' ')}",
                          f"remove {path[-1]} or use an engine that supports it (vllm)")
    q = spec.model.quantization
    if q != "none" and not info.supports_quantization(q):
        yield Finding(("model", "quantization"), f"{info.engine} {info.version} cannot serve {q} quantization",
                      "pick a supported method: " + ", ".join(info.quantization_methods()))


@rule("LD124")
def batch_budget_consistent(ctx: RuleContext) -> Iterator[Finding]:
    """``maxNumBatchedTokens`` is too small for the batch or the context vLLM must schedule.

    vLLM's scheduler config refuses to start when the per-step token budget is below
    ``max_num_seqs`` (one token per running sequence must fit a step), and — with chunked
    prefill off — when it is below ``max_model_len`` (a whole prompt must fit one step)
    (vllm/config/scheduler.py ``SchedulerConfig._verify_args``). ``maxNumSeqs: auto`` is
    checked with the value sizing resolves.

    Fails::

        runtime:
          maxModelLen: 8192
          maxNumBatchedTokens: 16     # below the 51 sequences llmdeploy derives
    """
    info = ctx.resolved.engine
    rt = ctx.spec.runtime
    if info is None or info.engine != "vllm" or rt.max_num_batched_tokens is None:
        return
    tokens = rt.max_num_batched_tokens
    where = ("runtime", "maxNumBatchedTokens")
    seqs = rt.max_num_seqs if isinstance(rt.max_num_seqs, int) else (
        ctx.resolved.sizing.max_num_seqs if ctx.resolved.sizing is not None else None)
    if seqs is not None and tokens < seqs:
        yield Finding(where, f"maxNumBatchedTokens {tokens} is below maxNumSeqs {seqs}: vLLM refuses to start",
                      f"set maxNumBatchedTokens to at least {seqs} (typical: 2048-8192)")
    chunked = rt.chunked_prefill if rt.chunked_prefill is not None else info.defaults.enable_chunked_prefill
    if not chunked and tokens < rt.max_model_len:
        yield Finding(where, f"maxNumBatchedTokens {tokens} is below maxModelLen {rt.max_model_len} with chunked "
                      f"prefill off: vLLM refuses to start",
                      f"raise maxNumBatchedTokens to {rt.max_model_len} or set runtime.chunkedPrefill: true")


# --------------------------------------------------------------------------- TensorRT-LLM (LD140-LD149)
# What only TensorRT-LLM (``trtllm-serve``) has, beside the flag, feature and metric checks every
# engine shares (LD120-LD124, LD5xx), which read ``engines/tensorrt-llm.yaml`` like any table: a
# Prometheus endpoint older releases lack, quantized kernels that need a GPU generation, and no
# quantization at load time.

TRTLLM_ENGINE = "tensorrt-llm"


def _trtllm(ctx: RuleContext) -> bool:
    return ctx.spec.runtime.engine == TRTLLM_ENGINE and ctx.resolved.engine is not None


def _capability(cc: str) -> tuple[int, int] | None:
    major, _, minor = cc.partition(".")
    if not major.isdigit():
        return None  # an AMD gfx target
    return int(major), int(minor or 0)


@rule("LD140")
def trtllm_prometheus_endpoint(ctx: RuleContext) -> Iterator[Finding]:
    """The pinned TensorRT-LLM release serves no Prometheus metrics.

    Before 1.1, ``trtllm-serve``'s ``GET /metrics`` returns JSON iteration statistics
    (a list of per-iteration records, only with ``enable_iter_perf_stats``), which
    Prometheus cannot parse; the ``/prometheus/metrics`` endpoint came with
    NVIDIA/TensorRT-LLM#5785 (merged 2025-08, in 1.1). A PodMonitor would scrape an
    endpoint that answers 404 and every engine-metric alert, recording rule and KEDA
    trigger would stay empty, so the spec is refused. Pin 1.1.0 or later, or set
    ``monitoring.enabled: false`` and scale on CPU/requests.

    Fails::

        runtime:
          engine: tensorrt-llm
          image: nvcr.io/nvidia/tensorrt-llm/release:1.0.0
        monitoring:
          enabled: true
    """
    if not _trtllm(ctx):
        return
    info = ctx.resolved.engine
    assert info is not None
    if info.defaults.extra.get("prometheus_metrics", True):
        return
    s = ctx.spec
    if s.monitoring.enabled:
        where = ("monitoring", "enabled") if ctx.user_set(("monitoring", "enabled")) else ("runtime", "engine")
        yield Finding(where, f"TensorRT-LLM {info.version} serves no Prometheus metrics (GET /metrics is JSON "
                      "iteration stats; /prometheus/metrics came in 1.1): the PodMonitor, alerts and dashboard "
                      "would scrape nothing", "pin nvcr.io/nvidia/tensorrt-llm/release:1.1.0 or later, or set "
                      "monitoring.enabled: false")


@rule("LD141")
def trtllm_quantization_gpu(ctx: RuleContext) -> Iterator[Finding]:
    """TensorRT-LLM cannot run this checkpoint's quantization on this GPU (or this GPU at all).

    TensorRT-LLM runs on NVIDIA GPUs only. Its FP8 GEMMs need compute capability 8.9
    or newer (Ada, Hopper, Blackwell: there is no weight-only FP8 fallback on Ampere
    as in vLLM's Marlin kernels), and NVFP4 needs Blackwell (compute capability 10.0+):
    the support matrix (nvidia.github.io/TensorRT-LLM/0.18.2/reference/support-matrix.html)
    lists FP8 for Hopper (SM90) and Ada (SM89) but not for Ampere (SM80/86), and the
    quantization guide of 1.0.0 (nvidia.github.io/TensorRT-LLM/1.0.0/features/quantization.html)
    says the PyTorch backend runs FP4 on Blackwell. The spec's ``model.quantization`` and
    the checkpoint's own ``quantization_config`` are both checked.

    Fails::

        model:
          id: neuralmagic/Meta-Llama-3.1-8B-Instruct-FP8
        runtime:
          engine: tensorrt-llm
        resources:
          gpu: {type: a100-80gb}
    """
    if not _trtllm(ctx):
        return
    gpu, model = ctx.resolved.gpu, ctx.resolved.model
    if gpu is None:
        return
    if gpu.vendor != "nvidia":
        yield Finding(("resources", "gpu", "type"), f"TensorRT-LLM runs on NVIDIA GPUs only, not on {gpu.name}",
                      "use an NVIDIA GPU type, or runtime.engine: vllm")
        return
    cc = _capability(gpu.compute_capability)
    if cc is None:
        return
    fmt = ""
    q = ctx.spec.model.quantization
    if model is not None and model.quantization is not None:
        mq = model.quantization
        fmt = (mq.scheme or mq.method or "").lower()
    elif q != "none":
        fmt = q
    where = ("model", "quantization") if q != "none" else ("model",)
    if "nvfp4" in fmt and cc < (10, 0):
        yield Finding(where, f"NVFP4 weights need a Blackwell GPU (compute capability 10.0+); {gpu.name} has "
                      f"{gpu.compute_capability}", "use a B200/GB200-class GPU or an FP8/BF16 checkpoint")
    elif "fp8" in fmt and cc < (8, 9):
        yield Finding(where, f"TensorRT-LLM's FP8 kernels need compute capability 8.9+ (Ada, Hopper, Blackwell); "
                      f"{gpu.name} has {gpu.compute_capability}",
                      "use an L4/L40S/H100-class GPU, or a BF16 or INT4-AWQ checkpoint")


@rule("LD142")
def trtllm_no_load_time_quantization(ctx: RuleContext) -> Iterator[Finding]:
    """``trtllm-serve`` does not quantize an unquantized checkpoint, or the KV cache dtype is not FP8 E4M3.

    TensorRT-LLM reads the quantization from the checkpoint (a ModelOpt
    ``hf_quant_config.json`` or a ``quantization_config``); ``trtllm-serve`` has no
    option that quantizes BF16 weights while loading (vLLM's ``--quantization fp8``).
    Quantize offline with NVIDIA ModelOpt and serve that checkpoint. Its FP8 KV cache
    (``kv_cache_config.dtype: fp8``) is E4M3; ``fp8_e5m2`` has no TensorRT-LLM kernel.

    Fails::

        model:
          id: meta-llama/Llama-3.1-8B-Instruct
          quantization: fp8          # a BF16 checkpoint
        runtime:
          engine: tensorrt-llm
    """
    if not _trtllm(ctx):
        return
    s = ctx.spec
    model = ctx.resolved.model
    q = s.model.quantization
    if q != "none" and model is not None and model.quantization is None:
        yield Finding(("model", "quantization"), f"TensorRT-LLM does not quantize to {q} at load time and "
                      f"{model.hf_id} is not a quantized checkpoint",
                      "serve a pre-quantized checkpoint (NVIDIA ModelOpt) or set model.quantization: none")
    if s.runtime.kv_cache_dtype == "fp8_e5m2":
        yield Finding(("runtime", "kvCacheDtype"), "TensorRT-LLM's FP8 KV cache is E4M3; fp8_e5m2 is not available",
                      "set runtime.kvCacheDtype: fp8")
