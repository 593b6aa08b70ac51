"""The engine container and the KServe objects: ClusterServingRuntime and InferenceService.

Split of responsibilities (docs/architecture.md, "shared runtime"): the
ClusterServingRuntime carries what is the same for every service on one engine
version (image, command, port, model path); the InferenceService carries what is
specific to the service (engine args derived from the spec and the sizing,
resources, probes, env, scheduling). KServe appends the InferenceService's
``model.args`` to the runtime container's args and merges env and resources
(pkg/controller/v1beta1/inferenceservice/utils: MergeRuntimeContainers).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import field
from typing import Any

from .. import naming
from ..records import record
from .model import Manifest, PlanContext

MODEL_MOUNT = "/mnt/models"  # where KServe's storage initializer puts the weights
SHM_VOLUME = "dshm"
PRESTOP_SETTLE_SECONDS = 10  # endpoints stop routing to a terminating pod within seconds
PROBE_PERIOD_SECONDS = 10


@record
class EnginePlan:
    """The engine container and pod settings of one service, all values final."""

    engine: str
    version: str
    image: str
    runtime_name: str
    model_format: str
    command: tuple[str, ...]
    runtime_args: tuple[str, ...]
    args: tuple[str, ...]
    port: int
    port_name: str
    metrics_path: str
    health_path: str
    env: tuple[dict[str, Any], ...]
    resources: dict[str, Any]
    gpu_count: int
    gpu_resource: str
    shm_size: str
    startup_probe: dict[str, Any]
    readiness_probe: dict[str, Any]
    liveness_probe: dict[str, Any]
    prestop: dict[str, Any]
    termination_grace_seconds: int
    container_security: dict[str, Any]
    pod_security: dict[str, Any]
    node_selector: dict[str, str]
    tolerations: tuple[dict[str, Any], ...]
    service_account: str | None
    storage_uri: str
    load_seconds: int
    max_num_seqs: int
    volumes: tuple[dict[str, Any], ...] = field(default=())
    volume_mounts: tuple[dict[str, Any], ...] = field(default=())


# --------------------------------------------------------------------------- quantities


def gib(n: float) -> str:
    """A whole number of GiB as a Kubernetes quantity."""
    return f"{max(1, math.ceil(n))}Gi"


def quantity_gib(q: str) -> float:
    """Parse a Kubernetes quantity into GiB (only the suffixes the spec allows)."""
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
             "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18, "m": 1e-3, "u": 1e-6, "n": 1e-9}
    for suffix in sorted(units, key=len, reverse=True):
        if q.endswith(suffix):
            return float(q[: -len(suffix)]) * units[suffix] / 2**30
    return float(q) / 2**30


# --------------------------------------------------------------------------- engine args


def _bool_flag(info: Any, on: str, off: str, value: bool | None) -> list[str]:
    """``--x``/``--no-x`` when the user chose a value; nothing when they kept the default."""
    if value is None:
        return []
    return [on if value else off]


def vllm_args(ctx: PlanContext, max_num_seqs: int) -> list[str]:
    """Service-specific vLLM flags, in a stable order. Flag spellings: facts.md, engines/vllm.yaml."""
    s = ctx.spec
    rt = s.runtime
    par = s.resources.parallelism
    args = [
        f"--served-model-name={ctx.served_model_name}",
        f"--max-model-len={rt.max_model_len}",
        f"--gpu-memory-utilization={rt.gpu_memory_utilization:g}",
        f"--tensor-parallel-size={par.tensor}",
    ]
    if par.pipeline > 1:
        args.append(f"--pipeline-parallel-size={par.pipeline}")
    if par.data > 1:
        args.append(f"--data-parallel-size={par.data}")
    if par.expert:
        args.append("--enable-expert-parallel")
    args.append(f"--max-num-seqs={max_num_seqs}")
    if rt.max_num_batched_tokens is not None:
        args.append(f"--max-num-batched-tokens={rt.max_num_batched_tokens}")
    if s.model.dtype != "auto":
        args.append(f"--dtype={s.model.dtype}")
    q = quantization_flag(ctx)
    if q:
        args.append(f"--quantization={q}")
    if rt.kv_cache_dtype != "auto":
        args.append(f"--kv-cache-dtype={rt.kv_cache_dtype}")
    args += _bool_flag(ctx.engine, "--enable-prefix-caching", "--no-enable-prefix-caching", rt.prefix_caching)
    args += _bool_flag(ctx.engine, "--enable-chunked-prefill", "--no-enable-chunked-prefill", rt.chunked_prefill)
    if s.model.trust_remote_code:
        args.append("--trust-remote-code")
    if s.deployment.target != "llmInferenceService":
        # On the llmInferenceService target KServe adds them from spec.model.lora (plan/llmisvc.py).
        args.extend(lora_args(ctx))
    if ctx.engine.flag("--shutdown-timeout") is not None and ctx.engine.flag_available("--shutdown-timeout"):
        # vLLM >= 0.18 drains in-flight requests on SIGTERM for this long.
        args.append(f"--shutdown-timeout={max(1, termination_grace(ctx) - PRESTOP_SETTLE_SECONDS - 10)}")
    args.extend(rt.extra_args)
    return args


def lora_args(ctx: PlanContext) -> list[str]:
    """vLLM's LoRA flags for ``model.loras``: the limits (derive/lora.py) and the adapters.

    On this target KServe downloads only the base model, so an adapter is given to vLLM as
    its Hugging Face repository id (``--lora-modules name=org/adapter``), which vLLM
    resolves and downloads itself (vllm/lora/utils.py ``get_adapter_absolute_path``); other
    storage schemes need the llmInferenceService target (LD705).
    """
    from ..derive.lora import lora_limits

    limits = lora_limits(ctx.spec)
    if limits is None:
        return []
    args = ["--enable-lora", f"--max-loras={limits.max_loras}", f"--max-lora-rank={limits.max_rank}",
            f"--max-cpu-loras={limits.max_cpu_loras}", "--lora-modules"]
    args += [f"{a.name}={a.storage_uri.removeprefix('hf://')}" for a in ctx.spec.model.loras]
    return args


def tgi_args(ctx: PlanContext, max_num_seqs: int) -> list[str]:
    """Service-specific text-generation-inference launcher flags."""
    s = ctx.spec
    rt = s.runtime
    par = s.resources.parallelism
    info = ctx.engine
    input_flag = "--max-input-tokens" if info.flag_available("--max-input-tokens") else "--max-input-length"
    args = [
        f"--num-shard={par.tensor}",
        f"--max-total-tokens={rt.max_model_len}",
        f"{input_flag}={max(1, rt.max_model_len - 1)}",
        f"--max-concurrent-requests={max_num_seqs}",
        f"--cuda-memory-fraction={rt.gpu_memory_utilization:g}",
    ]
    if rt.max_num_batched_tokens is not None:
        args.append(f"--max-batch-prefill-tokens={rt.max_num_batched_tokens}")
    if s.model.dtype not in ("auto", "float32"):
        args.append(f"--dtype={s.model.dtype}")
    q = quantization_flag(ctx)
    if q:
        args.append(f"--quantize={q}")
    if rt.kv_cache_dtype != "auto":
        args.append(f"--kv-cache-dtype={'fp8_e4m3fn' if rt.kv_cache_dtype in ('fp8', 'fp8_e4m3') else 'fp8_e5m2'}")
    if s.model.trust_remote_code:
        args.append("--trust-remote-code")
    args.extend(rt.extra_args)
    return args


def quantization_flag(ctx: PlanContext) -> str | None:
    """The quantization flag value, or None when the engine should detect it.

    A pre-quantized checkpoint (AWQ, GPTQ, FP8, compressed-tensors) carries a
    ``quantization_config``; vLLM reads it and picks the fastest kernel (e.g.
    awq_marlin), so forcing ``--quantization awq`` would only select a slower one.
    Only quantization done at load time (fp8, bitsandbytes on an unquantized
    checkpoint) needs the flag.
    """
    q = ctx.spec.model.quantization
    if q == "none":
        return None
    if ctx.model.quantization:  # the checkpoint says it
        return None
    return q


# --------------------------------------------------------------------------- timings


def load_seconds(ctx: PlanContext) -> int:
    """Estimated seconds from container start to ready (weights from local disk, engine warm-up)."""
    return int(ctx.sizing.load_time_seconds)


def startup_budget(ctx: PlanContext) -> int:
    """Seconds the startupProbe allows: the spec's, else twice the load estimate and at least 5 minutes."""
    given = ctx.spec.deployment.startup_timeout_seconds
    if isinstance(given, int):
        return given
    return max(300, 2 * load_seconds(ctx))


def termination_grace(ctx: PlanContext) -> int:
    """Grace period: enough to finish a maxModelLen generation at full batch, 120 s .. 1 h.

    Capped by the request timeout (``deployment.requestTimeoutSeconds``): a generation
    that runs longer is cut off by KServe/the gateway anyway, so waiting longer would
    only slow every rollout and node drain.
    """
    d = ctx.spec.deployment
    g = d.termination_grace_period_seconds
    if isinstance(g, int):
        return g
    cap = ctx.sizing.capacity
    per_seq = cap.decode_tokens_per_s_per_sequence if cap is not None else 0.0
    gen = ctx.spec.runtime.max_model_len / per_seq if per_seq > 0 else 120.0
    gen = min(gen, float(d.request_timeout_seconds))
    return int(min(3600, max(120, math.ceil(PRESTOP_SETTLE_SECONDS + gen + 20))))


def _drain_script(ctx: PlanContext, port: int, deadline: int) -> str:
    """preStop: wait until the engine has no running or waiting request, bounded by ``deadline``.

    Uses the Python interpreter every engine image ships; reads the engine's own
    metrics (names from the pinned version's table) so it drains the real queue.
    """
    if not (ctx.engine.has_metric("num_requests_running") and ctx.engine.has_metric("num_requests_waiting")):
        # No queue gauges in this version (TensorRT-LLM before 1.2): only wait until endpoints
        # stopped routing here. The SIGTERM that follows reaches uvicorn, which stops accepting
        # and waits for open requests to finish before the app shuts down (uvicorn Server.shutdown;
        # trtllm-serve runs its OpenAI app under uvicorn), within terminationGracePeriodSeconds.
        return (
            "import time\n"
            f"time.sleep({PRESTOP_SETTLE_SECONDS})\n"
        )
    running = ctx.engine.metric("num_requests_running")
    waiting = ctx.engine.metric("num_requests_waiting")
    path = ctx.engine.metrics_path
    return (
        "import re,time,urllib.request\n"
        f"time.sleep({PRESTOP_SETTLE_SECONDS})\n"
        f"end=time.time()+{deadline}\n"
        "while time.time()<end:\n"
        "    try:\n"
        f"        t=urllib.request.urlopen('http://127.0.0.1:{port}{path}',timeout=2).read().decode()\n"
        f"        n=sum(float(v) for v in re.findall(r'^(?:{re.escape(running)}|{re.escape(waiting)})(?:{{[^}}]*}})? ([0-9.e+-]+)$',t,re.M))\n"
        "    except Exception:\n"
        "        break\n"
        "    if n==0:\n"
        "        break\n"
        "    time.sleep(2)\n"
    )


# --------------------------------------------------------------------------- resources


def _resources(ctx: PlanContext, gpus: int, shm_gib: float) -> dict[str, Any]:
    r = ctx.spec.resources
    # Each pod of a multi-node replica loads only its pipeline stages' share of the weights.
    weights_gib = ctx.sizing.weights_bytes_total / 2**30 / r.nodes
    if r.cpu == "auto":
        cpu = str(max(4, 4 * gpus))
    else:
        cpu = r.cpu
    if r.memory == "auto":
        # vLLM memory-maps safetensors shards while loading; each GPU worker holds at most
        # its shard, so host memory ≈ the weights plus 10 % and 8 GiB for Python, the
        # tokenizer and CUDA host buffers. The /dev/shm emptyDir (medium: Memory) counts
        # against the container's memory limit, so it is added on top, and so is each GPU
        # worker's LoRA adapter cache (--max-cpu-loras adapters, sizing/lora.py).
        lora_cpu_gib = (ctx.sizing.lora_cpu_cache_bytes or 0) / 2**30 * gpus
        memory = gib(weights_gib * 1.1 + 8 + shm_gib + lora_cpu_gib)
    else:
        memory = r.memory
    res_name = ctx.gpu.resource_name
    requests: dict[str, Any] = {"cpu": cpu, "memory": memory, res_name: str(gpus)}
    limits: dict[str, Any] = {"cpu": cpu, "memory": memory, res_name: str(gpus)}
    if r.ephemeral_storage:
        eph = r.ephemeral_storage if r.ephemeral_storage != "auto" else gib(weights_gib * 1.2 + 10)
        requests["ephemeral-storage"] = eph
        limits["ephemeral-storage"] = eph
    return {"requests": requests, "limits": limits}


def _shm_gib(ctx: PlanContext, gpus: int) -> float:
    s = ctx.spec.resources.shm_size
    if s != "auto":
        return quantity_gib(s)
    # NCCL uses /dev/shm for intra-node transfers with tensor/pipeline parallel; the pod
    # default is 64 MiB. One GPU needs little (2 GiB for the tokenizer workers), more
    # GPUs 4 GiB each up to 32 GiB (practices.md: 4-16 GiB, larger with TP).
    return 2.0 if gpus == 1 else float(min(32, 4 * gpus))


# --------------------------------------------------------------------------- the plan


# The user name the engine runs as (see the USER/LOGNAME env below); UID/GID 1000.
NON_ROOT_USER = "llmdeploy"


def runtime_name(engine: str, version: str, spec: Mapping[str, Any]) -> str:
    """ClusterServingRuntime name: engine, version and a hash of the runtime's whole ``spec``.

    A ClusterServingRuntime is cluster-scoped and shared, and KServe re-reconciles every
    InferenceService that uses one when it changes (the InferenceService controller watches
    ServingRuntimes). Two services that need another image (a mirror) or port must not
    overwrite each other's runtime, so the name follows the content: equal names always
    mean equal objects (``pipeline.render_documents`` checks it).
    """
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:8]
    return f"llmdeploy-{engine}-{naming.label_safe(version).replace('.', '-').lower()}-{digest}"


def plan_engine(ctx: PlanContext) -> EnginePlan:
    """Decide every value of the engine container and pod."""
    s = ctx.spec
    info = ctx.engine
    par = s.resources.parallelism
    # One pod per node: a multi-node replica (resources.nodes, LD802) splits its GPUs evenly.
    gpus = par.tensor * par.pipeline * par.data // s.resources.nodes
    max_num_seqs = ctx.sizing.max_num_seqs
    port = s.runtime.port
    # AMD GPUs need the engine's ROCm build (LD211 refuses a release without one).
    image = s.runtime.image or info.image_for(ctx.gpu.vendor) or info.default_image
    if s.runtime.engine == "vllm":
        command: tuple[str, ...] = info.recommended_command
        runtime_args: tuple[str, ...] = (f"--model={MODEL_MOUNT}", f"--port={port}")
        args = vllm_args(ctx, max_num_seqs)
        model_format = "vLLM"
    elif s.runtime.engine == "sglang":
        from .sglang import sglang_args

        command = info.recommended_command
        runtime_args = (f"--model-path={MODEL_MOUNT}", f"--port={port}", "--host=0.0.0.0")
        args = sglang_args(ctx)
        model_format = "sglang"
    elif s.runtime.engine == "tensorrt-llm":
        from .trtllm import trtllm_args

        command = info.recommended_command
        # trtllm-serve: the model is positional, --host defaults to localhost; always the PyTorch backend.
        runtime_args = (MODEL_MOUNT, "--host=0.0.0.0", f"--port={port}", "--backend=pytorch")
        args = trtllm_args(ctx, max_num_seqs)
        model_format = "tensorrt-llm"
    else:
        command = info.recommended_command
        runtime_args = (f"--model-id={MODEL_MOUNT}", f"--port={port}", "--hostname=0.0.0.0")
        args = tgi_args(ctx, max_num_seqs)
        model_format = "tgi"

    shm = _shm_gib(ctx, gpus)
    grace = termination_grace(ctx)
    budget = startup_budget(ctx)
    health = info.health_path
    env: list[dict[str, Any]] = []
    creds = s.model.credentials
    if s.model.storage_uri.startswith("hf://") and creds.secret_ref:
        # The engine reads HF_TOKEN for gated tokenizer/config files it may fetch; the storage
        # initializer gets the same Secret through the ServiceAccount (see below).
        env.append({"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": creds.secret_ref, "key": creds.token_key}}})
    non_root = info.runs_as_non_root or info.can_run_as_non_root
    if non_root:
        # The image's defaults point caches at /root; a non-root user needs writable ones.
        env += [
            {"name": "HOME", "value": "/tmp/home"},
            {"name": "HF_HOME", "value": "/tmp/hf-home"},
            {"name": "XDG_CACHE_HOME", "value": "/tmp/cache"},
            # The image has no passwd entry for the UID we run as. torch 2.8.0's inductor
            # (torch/_inductor/codecache.py) calls getpass.getuser() when vLLM imports the
            # model class; without a name it raises KeyError (getpwuid) and the pod
            # crash-loops. getpass reads LOGNAME and USER before the passwd file.
            {"name": "USER", "value": NON_ROOT_USER},
            {"name": "LOGNAME", "value": NON_ROOT_USER},
        ]
        if s.runtime.engine == "vllm":
            env.append({"name": "VLLM_CACHE_ROOT", "value": "/tmp/cache/vllm"})
    for e in s.runtime.env:
        if e.secret_key_ref is not None:
            env.append({"name": e.name, "valueFrom": {"secretKeyRef": {"name": e.secret_key_ref.name, "key": e.secret_key_ref.key}}})
        else:
            env.append({"name": e.name, "value": e.value or ""})
    # A later entry with the same name overrides an earlier one (the user's win).
    dedup: dict[str, dict[str, Any]] = {}
    for e in env:
        dedup[e["name"]] = e
    env = list(dedup.values())

    # Knative renames the serving port to `user-port` and rewrites only the liveness probe's
    # named port (knative serving pkg/reconciler/revision/resources/deploy.go, knative-v1.23.0):
    # a startupProbe on `http1` would not resolve. The number works everywhere in Knative mode.
    http_get = {"path": health,
                "port": port if s.deployment.mode == "knative" else port_name(s.deployment.mode)}
    startup_probe = {
        "httpGet": http_get,
        "periodSeconds": PROBE_PERIOD_SECONDS,
        "timeoutSeconds": 5,
        "failureThreshold": math.ceil(budget / PROBE_PERIOD_SECONDS),
    }
    readiness_probe = {"httpGet": http_get, "periodSeconds": 10, "timeoutSeconds": 5, "failureThreshold": 3}
    liveness_probe = {"httpGet": http_get, "periodSeconds": 30, "timeoutSeconds": 10, "failureThreshold": 5}
    drain = max(1, grace - PRESTOP_SETTLE_SECONDS - 5)
    prestop = {"exec": {"command": ["python3", "-c", _drain_script(ctx, port, drain)]}}

    container_security: dict[str, Any] = {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    pod_security: dict[str, Any] = {"seccompProfile": {"type": "RuntimeDefault"}}
    if non_root:
        container_security.update({"runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 1000})
        pod_security.update({"runAsNonRoot": True, "fsGroup": 1000})

    if s.deployment.node_selector is not None:
        node_selector = dict(sorted(s.deployment.node_selector.items()))
    else:
        node_selector = gpu_node_selector(ctx)
    if s.deployment.tolerations is not None:
        tolerations = tuple(t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in s.deployment.tolerations)
    else:
        tolerations = ({"key": ctx.gpu.resource_name, "operator": "Exists", "effect": "NoSchedule"},)

    storage = s.model.storage_uri
    if storage.startswith("hf://") and s.model.revision and ":" not in storage[len("hf://"):]:
        storage = f"{storage}:{s.model.revision}"

    volumes = ({"name": SHM_VOLUME, "emptyDir": {"medium": "Memory", "sizeLimit": gib(shm)}},)
    mounts = ({"name": SHM_VOLUME, "mountPath": "/dev/shm"},)
    if s.runtime.engine == "tensorrt-llm":
        from .trtllm import options_volume

        extra_volumes, extra_mounts = options_volume(ctx)
        volumes += extra_volumes
        mounts += extra_mounts
    return EnginePlan(
        engine=s.runtime.engine,
        version=info.version,
        image=image,
        runtime_name=runtime_name(s.runtime.engine, info.version, runtime_spec(
            image=image, command=command, runtime_args=runtime_args, port=port,
            port_name=port_name(s.deployment.mode), model_format=model_format, metrics_path=info.metrics_path)),
        model_format=model_format,
        command=command,
        runtime_args=runtime_args,
        args=tuple(args),
        port=port,
        port_name=port_name(s.deployment.mode),
        metrics_path=info.metrics_path,
        health_path=health,
        env=tuple(env),
        resources=_resources(ctx, gpus, shm),
        gpu_count=gpus,
        gpu_resource=ctx.gpu.resource_name,
        shm_size=gib(shm),
        startup_probe=startup_probe,
        readiness_probe=readiness_probe,
        liveness_probe=liveness_probe,
        prestop=prestop,
        termination_grace_seconds=grace,
        container_security=container_security,
        pod_security=pod_security,
        node_selector=node_selector,
        tolerations=tolerations,
        service_account=(s.deployment.service_account or s.model.credentials.service_account
                         or (storage_service_account_name(ctx) if needs_storage_service_account(ctx) else None)),
        storage_uri=storage,
        load_seconds=load_seconds(ctx),
        max_num_seqs=max_num_seqs,
        volumes=volumes,
        volume_mounts=mounts,
    )


def kserve_storage_uri(uri: str) -> str:
    """The URI as KServe's storage initializer understands it.

    ``azureblob://<account>/<container>/<path>`` is accepted in specs for symmetry with
    ``s3://``/``gs://``, but KServe only recognises Azure Blob storage by its HTTPS form
    ``https://<account>.blob.core.windows.net/<container>/<path>`` (the webhook's
    supported prefixes and the storage initializer's ``_AZURE_BLOB_RE``), so it is
    rendered in that form.
    """
    if uri.startswith("azureblob://"):
        account, _, rest = uri[len("azureblob://"):].partition("/")
        return f"https://{account}.blob.core.windows.net/{rest}"
    return uri


def gpu_node_selector(ctx: PlanContext) -> dict[str, str]:
    """Select nodes with the catalog GPU by the label GPU feature discovery sets.

    NVIDIA GPU feature discovery labels nodes ``nvidia.com/gpu.product=<product>``;
    AMD's node labeller sets ``amd.com/gpu.product-name``. Clusters without GFD
    override ``deployment.nodeSelector`` (GKE: ``cloud.google.com/gke-accelerator``).
    """
    gfd = ctx.gpu.node_labels.get("gfd")
    if not gfd:
        return {}
    key = "amd.com/gpu.product-name" if ctx.gpu.vendor == "amd" else "nvidia.com/gpu.product"
    return {key: gfd}


def port_name(mode: str) -> str:
    """Container port name: Knative requires ``http1`` (or ``h2c``); we use it in both modes."""
    return "http1"


# Storage schemes whose credentials KServe's storage initializer reads from the Secrets
# listed on the predictor's ServiceAccount (pkg/credentials: the credential builder
# mounts them into the storage-initializer init container; HF_TOKEN for hf://, the
# S3/GCS/Azure keys with their serving.kserve.io/* annotations for object stores).
SA_CREDENTIAL_SCHEMES = ("hf", "s3", "gs", "azureblob", "http")


def needs_storage_service_account(ctx: PlanContext) -> bool:
    """True when llmdeploy renders a ServiceAccount that carries the storage Secret.

    Only when the spec names a Secret (``model.credentials.secretRef``) and no
    ServiceAccount of its own (``deployment.serviceAccount``/``credentials.serviceAccount``).
    """
    from ..derive.storage import storage_scheme

    s = ctx.spec
    c = s.model.credentials
    if not c.secret_ref or s.deployment.service_account or c.service_account:
        return False
    return storage_scheme(s.model.storage_uri) in SA_CREDENTIAL_SCHEMES


def storage_service_account_name(ctx: PlanContext) -> str:
    return f"{ctx.name}-storage"


def storage_service_account_manifest(ctx: PlanContext) -> Manifest | None:
    """A ServiceAccount listing the storage Secret, so the storage initializer can use it.

    KServe's storage initializer does not read the predictor container's env: it takes
    credentials from the Secrets attached to the pod's ServiceAccount (KServe docs,
    "Deploy InferenceService with model from Hugging Face Hub": a Secret with HF_TOKEN
    and a ServiceAccount that lists it). The token stays a reference either way.
    """
    if not needs_storage_service_account(ctx):
        return None
    name = storage_service_account_name(ctx)
    values = {
        "metadata": ctx.metadata(name, component="storage-credentials"),
        "secrets": [{"name": ctx.spec.model.credentials.secret_ref}],
    }
    return Manifest("kserve/serviceaccount.yaml.j2", "ServiceAccount", name, values,
                    namespace=ctx.namespace, aliases=("serviceaccount", "sa"))


def runtime_spec(*, image: str, command: tuple[str, ...], runtime_args: tuple[str, ...], port: int,
                 port_name: str, model_format: str, metrics_path: str) -> dict[str, Any]:
    """The ``spec`` of a ClusterServingRuntime; its name (:func:`runtime_name`) hashes exactly this."""
    return {
        # What reaches the pods is the runtime's spec.annotations (KServe merges them into
        # the predictor's pod metadata, components/predictor.go at v0.20.0); KServe's
        # metrics aggregation reads these two keys there.
        "annotations": {
            "prometheus.kserve.io/path": metrics_path,
            "prometheus.kserve.io/port": str(port),
        },
        "supportedModelFormats": [{"name": model_format, "version": "1", "autoSelect": False}],
        "protocolVersions": ["v1"],
        "multiModel": False,
        "containers": [{
            "name": "kserve-container",
            "image": image,
            "command": list(command),
            "args": list(runtime_args),
            "ports": [{"name": port_name, "containerPort": port, "protocol": "TCP"}],
        }],
    }


def runtime_manifest(ctx: PlanContext, engine: EnginePlan) -> Manifest:
    """The shared ClusterServingRuntime of the engine version."""
    values = {
        "metadata": {
            "name": engine.runtime_name,
            "labels": {
                "app.kubernetes.io/managed-by": "llmdeploy",
                "app.kubernetes.io/name": engine.runtime_name,
                "app.kubernetes.io/component": "serving-runtime",
                "app.kubernetes.io/version": naming.label_safe(engine.version),
            },
        },
        "spec": runtime_spec(image=engine.image, command=engine.command, runtime_args=engine.runtime_args,
                             port=engine.port, port_name=engine.port_name, model_format=engine.model_format,
                             metrics_path=engine.metrics_path),
    }
    return Manifest("kserve/clusterservingruntime.yaml.j2", "ClusterServingRuntime", engine.runtime_name,
                    values, namespace=None, shared=True, aliases=("runtime",))


def predictor_spec(ctx: PlanContext, engine: EnginePlan, extra: dict[str, Any], *,
                   args: tuple[str, ...] | None = None, storage_uri: str | None = None,
                   isvc_name: str | None = None) -> dict[str, Any]:
    """The ``spec.predictor`` mapping of an InferenceService (also used for candidates)."""
    s = ctx.spec
    name = isvc_name or ctx.name
    # Pod labels: nothing that changes when only monitoring or alert fields change (the spec
    # hash would roll every GPU pod on an alert edit).
    labels = ctx.labels("predictor", spec_hash=False)
    labels["app.kubernetes.io/instance"] = name
    # prometheus.io/* pod annotations only when they are how Prometheus finds the pods: a
    # cluster with an annotation-based scrape job would otherwise scrape the pods a
    # second time next to the PodMonitor/ServiceMonitor and double every sum.
    pod_annotations: dict[str, str] = {}
    if s.monitoring.enabled and s.monitoring.scrape == "annotations":
        pod_annotations = {
            "prometheus.io/scrape": "true",
            "prometheus.io/port": str(engine.port),
            "prometheus.io/path": engine.metrics_path,
        }
    model: dict[str, Any] = {
        "modelFormat": {"name": engine.model_format},
        "runtime": engine.runtime_name,
        "storageUri": kserve_storage_uri(storage_uri or engine.storage_uri),
        "args": list(args if args is not None else engine.args),
    }
    if engine.env:
        model["env"] = [dict(e) for e in engine.env]
    model.update({
        "resources": engine.resources,
        "startupProbe": engine.startup_probe,
        "readinessProbe": engine.readiness_probe,
        "livenessProbe": engine.liveness_probe,

        "securityContext": engine.container_security,
        "volumeMounts": [dict(m) for m in engine.volume_mounts],
    })
    knative = s.deployment.mode == "knative"
    if not knative:
        # Knative's container schema has no `lifecycle` (serving.knative.dev Service CRD,
        # knative-v1.23): there queue-proxy drains requests and vLLM's --shutdown-timeout
        # finishes the running ones.
        model["lifecycle"] = {"preStop": engine.prestop}
    pred: dict[str, Any] = {"labels": dict(sorted(labels.items()))}
    if pod_annotations:
        pred["annotations"] = pod_annotations
    pred.update({k: extra[k] for k in ("minReplicas", "maxReplicas") if k in extra})
    for key in ("scaleMetric", "scaleMetricType", "scaleTarget", "containerConcurrency", "canaryTrafficPercent",
                "autoScaling", "deploymentStrategy"):
        if key in extra:
            pred[key] = extra[key]
    pred["timeout"] = s.deployment.request_timeout_seconds
    pred["model"] = model
    pred["volumes"] = [dict(v) for v in engine.volumes]
    pred["nodeSelector"] = engine.node_selector
    pred["tolerations"] = [dict(t) for t in engine.tolerations]
    if engine.service_account:
        pred["serviceAccountName"] = engine.service_account
    if s.deployment.priority_class_name:
        pred["priorityClassName"] = s.deployment.priority_class_name
    pred["securityContext"] = engine.pod_security
    if not knative:
        # Knative derives the grace period from the revision timeout (`timeout` above); its
        # pod spec has no terminationGracePeriodSeconds.
        pred["terminationGracePeriodSeconds"] = engine.termination_grace_seconds
    return pred


def isvc_annotations(ctx: PlanContext, extra: dict[str, str]) -> dict[str, str]:
    """InferenceService annotations: the deployment mode always (facts.md: the cluster default is often Knative)."""
    ann = dict(ctx.spec.metadata.annotations)
    ann["serving.kserve.io/deploymentMode"] = "Standard" if ctx.spec.deployment.mode == "standard" else "Knative"
    ann.update(extra)
    return dict(sorted(ann.items()))


def isvc_manifest(ctx: PlanContext, engine: EnginePlan, *, name: str, annotations: dict[str, str],
                  predictor: dict[str, Any], extra_spec: dict[str, Any] | None = None,
                  component: str = "inference-service") -> Manifest:
    """One InferenceService manifest."""
    # KServe copies the InferenceService's own labels and annotations into the predictor's pod
    # template (components/predictor.go buildObjectMeta, v0.20.0; in Knative mode a change
    # is a new Revision), so they carry no spec hash: an alert edit must not restart GPUs.
    meta = ctx.metadata(name, component=component, annotations=isvc_annotations(ctx, annotations),
                        spec_hash=False)
    meta["labels"]["app.kubernetes.io/instance"] = name
    spec: dict[str, Any] = {"predictor": predictor}
    if extra_spec:
        spec.update(extra_spec)
    return Manifest("kserve/inferenceservice.yaml.j2", "InferenceService", name,
                    {"metadata": meta, "spec": spec}, namespace=ctx.namespace, aliases=("isvc",))


def isvc_manifests(ctx: PlanContext, engine: EnginePlan, annotations: dict[str, str],
                   predictor_extra: dict[str, Any], isvc_spec: dict[str, Any]) -> list[Manifest]:
    """The service's primary InferenceService."""
    pred = predictor_spec(ctx, engine, predictor_extra)
    return [isvc_manifest(ctx, engine, name=ctx.name, annotations=annotations, predictor=pred,
                          extra_spec=isvc_spec)]
