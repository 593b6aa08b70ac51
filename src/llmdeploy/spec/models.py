"""The LLMService spec: the single source of truth for what a user may write.

Every field has a ``description``; it feeds the generated JSON Schema
(``schemas/llmdeploy.schema.json``), the editor hints and ``docs/spec.md``.
Keys are camelCase like the Kubernetes objects users already write; unknown keys are
errors. Cross-field checks live in the rule registry (``llmdeploy.rules``), not here:
these models check the shape and the ranges of single values.
"""

# No `from __future__ import annotations`: with real annotations pydantic need not compile
# ~140 strings back into types when it builds the models (~3 ms of every run).

from typing import Annotated, Any, Literal, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)
from pydantic.alias_generators import to_camel

from .. import naming

API_VERSION = "llmdeploy.dev/v1alpha1"
KIND = "LLMService"

# Kubernetes resource.Quantity, as apimachinery's regular expression accepts it.
# https://github.com/kubernetes/apimachinery/blob/master/pkg/api/resource/quantity.go
QUANTITY_RE = r"^[+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+|Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$"
Quantity = Annotated[str, StringConstraints(pattern=QUANTITY_RE)]
DNS1123Label = Annotated[
    str, StringConstraints(pattern=naming.DNS1123_LABEL_RE, min_length=1, max_length=63)
]

# Upper bounds of the numeric fields: far above any real deployment, low enough that
# sizing, PromQL thresholds and dashboard JSON stay ordinary numbers (docs/security.md).
MAX_REPLICAS = 1000
MAX_NUM_SEQS = 65_536
#: Largest scaling target or activation threshold (tokens/s per replica is the largest metric).
MAX_SCALING_TARGET = 1_000_000


# Default factories are plain functions, not the builtins `list` and `dict`: pydantic
# inspects every factory's signature, and for a builtin that means parsing its text
# signature with tokenize (~2 ms of every run, mostly compiling tokenize's patterns).
def _list() -> list[Any]:
    return []


def _dict() -> dict[Any, Any]:
    return {}


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        frozen=True,
        str_strip_whitespace=False,
        use_attribute_docstrings=False,
        # NaN and ±infinity pass a `gt=0` bound and reach KEDA thresholds and dashboard JSON
        # (where strict parsers reject `Infinity`): every float field must be finite.
        allow_inf_nan=False,
    )


def _label_key(key: str) -> str:
    problem = naming.label_key_problem(key)
    if problem:
        raise ValueError(f"is not a valid label key: {problem}")
    return key


def _label_value(value: str) -> str:
    problem = naming.label_value_problem(value)
    if problem:
        raise ValueError(f"is not a valid label value: {problem}")
    return value


# Checked key by key so that an error points at the offending label.
LabelKey = Annotated[str, AfterValidator(_label_key)]
LabelValue = Annotated[str, AfterValidator(_label_value)]


# --------------------------------------------------------------------------- metadata


class Metadata(_Model):
    """Identity of the service in Kubernetes."""

    name: str = Field(
        description=(
            "Name of the InferenceService and prefix of every object llmdeploy renders. A DNS-1035 "
            "label (lowercase letters, digits, '-', starting with a letter) short enough for the "
            "names KServe derives from it (`<name>-predictor`, Knative revisions)."
        ),
        min_length=1,
        max_length=63,
    )
    namespace: DNS1123Label = Field("default", description="Namespace the service runs in.")
    labels: dict[LabelKey, LabelValue] = Field(
        default_factory=_dict, description="Extra labels put on every rendered object."
    )
    annotations: dict[str, str] = Field(
        default_factory=_dict, description="Extra annotations put on the InferenceService."
    )

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        problem = naming.dns1035_problem(v)
        if problem:
            raise ValueError(problem)
        return v


# --------------------------------------------------------------------------- model


class SecretKeyRef(_Model):
    """A key inside a Kubernetes Secret in the service's namespace."""

    name: DNS1123Label = Field(description="Name of the Secret.")
    key: str = Field(description="Key inside the Secret.", min_length=1)


class Credentials(_Model):
    """How the storage initializer and the engine authenticate. References only: never values."""

    secret_ref: DNS1123Label | None = Field(
        None,
        description=(
            "Secret holding the credential. For `hf://` storage it must hold the Hugging Face "
            "token under the key `HF_TOKEN` (the only key KServe's storage initializer reads); "
            "for s3 it holds `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY` (the names KServe's shipped "
            "ConfigMap sets), for gs "
            "`gcloud-application-credentials.json`, for Azure `AZURE_CLIENT_ID`/"
            "`AZURE_CLIENT_SECRET`/`AZURE_TENANT_ID` (KServe v0.20 pkg/credentials)."
        ),
    )
    token_key: str = Field(
        "HF_TOKEN",
        description=(
            "Key of the Hugging Face token inside `secretRef`. Must be `HF_TOKEN` for `hf://` "
            "storage: the storage initializer reads no other key (LD607)."
        ),
        min_length=1,
    )
    service_account: DNS1123Label | None = Field(
        None,
        description=(
            "ServiceAccount whose annotations carry the cloud storage credentials "
            "(KServe's S3/GCS service-account credentials or workload identity)."
        ),
    )


Dtype = Literal["auto", "bfloat16", "float16", "float32"]


class LoraAdapter(_Model):
    """A LoRA adapter served on top of the base model (requests name it as their `model`)."""

    name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")] = Field(
        description=(
            "Name clients pass as `model` to use the adapter. Letters, digits, `.`, `_`, `-`; unique, "
            "and not the base model's served name."
        ),
        min_length=1,
        max_length=63,
    )
    storage_uri: str = Field(
        description=(
            "Where the adapter's weights are: `hf://org/adapter` (both targets), `s3://` or "
            "`pvc://claim/path` (llmInferenceService target: KServe downloads or mounts them). "
            "Read with the same `model.credentials`."
        ),
        min_length=1,
    )
    rank: int = Field(
        description=(
            "The adapter's LoRA rank (`r` in its `adapter_config.json`); `--max-lora-rank` is sized "
            "to the largest."
        ),
        ge=1,
        le=512,
    )
    base_model: str | None = Field(
        None,
        description=(
            "The model the adapter was trained on (`base_model_name_or_path` in its "
            "`adapter_config.json`): checked against `model.id` (LD706). A LoRA only fits its base model."
        ),
        min_length=1,
        max_length=253,
    )


Quantization = Literal["none", "awq", "awq_marlin", "gptq", "gptq_marlin", "fp8", "int8", "bitsandbytes", "compressed-tensors"]


class ModelSource(_Model):
    """Which model to serve and where its weights live."""

    id: str | None = Field(
        None,
        description=(
            "Catalog key or Hugging Face id of the model (`llmdeploy catalog models`). Sizing uses "
            "the catalog's architecture; give `config` for a model the catalog lacks."
        ),
        min_length=1,
    )
    config: str | None = Field(
        None,
        description=(
            "Path (relative to the spec file) of the model's Hugging Face `config.json`, for a model "
            "the catalog lacks. Read locally; nothing is downloaded."
        ),
    )
    safetensors_index: str | None = Field(
        None,
        description=(
            "Optional path of the model's `model.safetensors.index.json`: its `metadata.total_size` "
            "gives the exact weight bytes."
        ),
    )
    storage_uri: str = Field(
        description=(
            "Where the weights are: `hf://org/model`, `s3://`, `gs://`, `azureblob://` (or an "
            "`https://<account>.blob.core.windows.net/` URL), `pvc://claim/path`, `oci://` "
            "(modelcar), `http(s)://`, MLflow `models:/name/version`, or Kubeflow "
            "`model-registry://model/version`."
        ),
        min_length=1,
    )
    served_name: str | None = Field(
        None,
        description=(
            "Name clients pass as `model` in OpenAI requests and the `model_name` label on the "
            "engine's metrics. Defaults to `metadata.name`."
        ),
        min_length=1,
        max_length=253,
    )
    revision: str | None = Field(
        None, description="Model revision (git branch, tag or commit) for `hf://` sources."
    )
    dtype: Dtype = Field("auto", description="Weight and activation dtype (`auto` follows the checkpoint).")
    quantization: Quantization = Field(
        "none",
        description=(
            "Quantization method of the weights. For a pre-quantized checkpoint (AWQ, GPTQ, FP8) the "
            "engine detects it; `fp8` on an unquantized checkpoint quantizes at load time."
        ),
    )
    credentials: Credentials = Field(
        default_factory=Credentials, description="Credentials, by reference only."
    )
    trust_remote_code: bool = Field(
        False, description="Allow the model repository's own Python code (`--trust-remote-code`)."
    )
    loras: list[LoraAdapter] = Field(
        default_factory=_list,
        description=(
            "LoRA adapters served with the base model: `--enable-lora`, `--max-loras`, "
            "`--max-lora-rank`, `--max-cpu-loras` and the adapters (on the llmInferenceService "
            "target through `spec.model.lora`)."
        ),
        max_length=64,
    )
    max_loras: int | None = Field(
        None,
        description="Adapters held on the GPU at once (`--max-loras`). Default: every adapter of `loras`.",
        ge=1,
        le=64,
    )


# --------------------------------------------------------------------------- runtime


class EnvVar(_Model):
    """An environment variable for the engine container."""

    name: Annotated[str, StringConstraints(pattern=r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")] = Field(
        description="Variable name."
    )
    value: str | None = Field(None, description="Literal value (never a credential).")
    secret_key_ref: SecretKeyRef | None = Field(
        None, description="Take the value from a Secret key instead."
    )


class Runtime(_Model):
    """The serving engine and its settings."""

    engine: Literal["vllm", "tgi", "sglang", "tensorrt-llm"] = Field("vllm", description="Serving engine.")
    image: str | None = Field(
        None,
        description=(
            "Engine image, pinned to a version tag (`vllm/vllm-openai:v0.11.0`) or a digest. "
            "Defaults to the newest release llmdeploy knows for the engine."
        ),
        min_length=1,
    )
    engine_version: str | None = Field(
        None,
        description=(
            "Engine version for a custom image whose tag does not say it (e.g. `0.10.2`). "
            "Decides flags, metric names and the memory profile."
        ),
        pattern=r"^v?\d+\.\d+(\.\d+)*([.-]?(post|rc|dev)\d*)?$",
    )
    max_model_len: int = Field(
        8192,
        description=(
            "Longest request (prompt + output tokens) the engine accepts. Bounds the KV cache one "
            "request may use; set it to what the service needs, not the model's maximum."
        ),
        ge=1,
        le=10_000_000,
    )
    gpu_memory_utilization: float = Field(
        0.90,
        description="Share of each GPU's memory the engine may use (weights, activations, KV cache).",
        gt=0.0,
        le=1.0,
    )
    max_num_seqs: int | Literal["auto"] = Field(
        "auto",
        description=(
            "Most requests batched at once. `auto` derives it from the KV-cache capacity at "
            "`maxModelLen` (llmdeploy size shows the number)."
        ),
    )
    max_num_batched_tokens: int | None = Field(
        None,
        description="Token budget of one scheduler step (prefill chunk size). Default: the engine's.",
        ge=1,
        le=10_000_000,
    )
    prefix_caching: bool | None = Field(
        None, description="Automatic prefix caching. Default: the pinned engine version's default."
    )
    chunked_prefill: bool | None = Field(
        None, description="Chunked prefill. Default: the pinned engine version's default."
    )
    kv_cache_dtype: Literal["auto", "fp8", "fp8_e4m3", "fp8_e5m2"] = Field(
        "auto", description="KV-cache element type; fp8 halves the KV bytes per token."
    )
    port: int = Field(8080, description="Container port of the OpenAI-compatible server.", ge=1, le=65535)
    extra_args: list[str] = Field(
        default_factory=_list,
        description=(
            "More engine flags, checked against the pinned version's flag table "
            "(e.g. `[\"--enable-lora\", \"--max-loras=4\"]`)."
        ),
    )
    env: list[EnvVar] = Field(default_factory=_list, description="Extra environment variables.")

    @field_validator("max_num_seqs")
    @classmethod
    def _max_num_seqs(cls, v: int | str) -> int | str:
        if isinstance(v, int) and not 1 <= v <= MAX_NUM_SEQS:
            raise ValueError(f"must be 'auto' or an integer between 1 and {MAX_NUM_SEQS} (got {v})")
        return v


# --------------------------------------------------------------------------- resources


class GPU(_Model):
    """Which GPUs each replica gets."""

    type: str = Field(
        description="GPU catalog key (`llmdeploy catalog gpus`), e.g. `a100-80gb`, `h100-sxm`, `l4`; "
        "a family name that covers several variants (`a100`, `h100`) is refused with the choices.",
        min_length=1,
    )
    count: int | None = Field(
        None,
        description="GPUs per replica. Defaults to tensor × pipeline parallel size; must equal it.",
        ge=1,
        le=64,
    )
    per_node: int | None = Field(
        None,
        description="GPUs of this type in one node of your cluster, when it differs from the catalog's "
        "typical node (AWS g5.48xlarge holds 8 A10G, the catalog's g5.12xlarge 4); bounds tensor × pipeline "
        "parallel on one node.",
        ge=1,
        le=72,
    )


class Parallelism(_Model):
    """How one replica spreads the model over its GPUs."""

    tensor: int = Field(1, description="Tensor-parallel size (GPUs that split every layer).", ge=1, le=64)
    pipeline: int = Field(1, description="Pipeline-parallel size (stages of consecutive layers).", ge=1, le=64)
    data: int = Field(
        1, description="Data-parallel engines of one replica (vLLM `--data-parallel-size`), each with its own KV "
        "cache; a MoE model's experts are spread over tensor × data GPUs. Across nodes: the "
        "`llmInferenceService` target's `worker` (docs/topologies.md).", ge=1, le=64
    )
    expert: bool = Field(False, description="Expert parallelism for MoE models (`--enable-expert-parallel`).")
    tensor_across_nodes: bool = Field(
        False,
        description=(
            "Allow tensor parallel to span nodes (multi-node only). Every layer then all-reduces over "
            "the network, which is many times slower than NVLink; without this, tensor parallel stays "
            "inside a node and pipeline parallel crosses nodes (LD803)."
        ),
    )


AutoOrQuantity = Union[Literal["auto"], Quantity]


# An extended resource name a device plugin advertises (`rdma/ib`, `nvidia.com/hostdev`).
ExtendedResourceName = Annotated[
    str, StringConstraints(pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?/[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$",
                           max_length=253)
]


class Interconnect(_Model):
    """The network between the nodes of one multi-node replica (`resources.nodes` > 1)."""

    fabric: Literal["infiniband", "roce", "ethernet"] = Field(
        "ethernet",
        description=(
            "Node-to-node network NCCL uses: `infiniband` or `roce` (GPUDirect RDMA through the "
            "`rdmaResources` device plugin) or `ethernet` (TCP sockets over the pod network; NCCL's "
            "InfiniBand transport is switched off)."
        ),
    )
    rdma_resources: dict[ExtendedResourceName, Annotated[int, Field(ge=1, le=64)]] = Field(
        default_factory=_dict,
        description=(
            "Extended resources every pod of a group requests for RDMA, e.g. `{rdma/ib: 1}` (Mellanox "
            "k8s-rdma-shared-dev-plugin) or `{nvidia.com/hostdev: 8}`; needed for `infiniband`/`roce`."
        ),
    )
    socket_ifname: Annotated[str, StringConstraints(pattern=r"^\^?=?[A-Za-z0-9_.,:-]+$", max_length=128)] | None = Field(
        None,
        description=(
            "Network interface(s) NCCL and Gloo bootstrap over (`NCCL_SOCKET_IFNAME`, "
            "`GLOO_SOCKET_IFNAME`), e.g. `eth0`. Default: the pod's first interface as NCCL picks it."
        ),
    )
    topology_key: LabelKey | None = Field(
        None,
        description=(
            "Node label whose value names one fast domain (rack, NVLink domain, InfiniBand leaf), e.g. "
            "`nvidia.com/gpu.clique`. Every pod of a group lands in one domain and a domain serves one "
            "group (LeaderWorkerSet `leaderworkerset.sigs.k8s.io/exclusive-topology`)."
        ),
    )


class Resources(_Model):
    """Compute resources of one replica."""

    gpu: GPU = Field(description="GPU type and count.")
    parallelism: Parallelism = Field(default_factory=Parallelism, description="Parallelism of one replica.")
    cpu: AutoOrQuantity = Field(
        "auto", description="CPU request/limit, or `auto` (from the GPU count)."
    )
    memory: AutoOrQuantity = Field(
        "auto",
        description="Host memory request/limit, or `auto` (enough to load the weights plus headroom).",
    )
    shm_size: AutoOrQuantity = Field(
        "auto", description="Size of the `/dev/shm` memory volume, or `auto` (grows with parallelism)."
    )
    ephemeral_storage: AutoOrQuantity | None = Field(
        None, description="Ephemeral storage request (the downloaded weights live there for hf:// and s3://)."
    )
    nodes: int = Field(
        1,
        description=(
            "Nodes one replica spans. Above 1 each node runs one pod with tensor × pipeline ÷ nodes "
            "GPUs (tensor parallel inside a node, pipeline stages across nodes); needs "
            "`deployment.target: leaderWorkerSet` or `inferenceService` (KServe's workerSpec), or "
            "data parallel over the nodes on `llmInferenceService` (its `worker`; docs/topologies.md)."
        ),
        ge=1,
        le=64,
    )
    calibration: str | None = Field(
        None,
        description=(
            "Calibration file written by `llmdeploy calibrate LOG… --write` from this cluster's own vLLM "
            "start-up logs, relative to the spec file; size, render and plan apply its matching correction "
            "(docs/sizing.md §8)."
        ),
    )
    interconnect: Interconnect = Field(
        default_factory=Interconnect, description="The network between the nodes of one replica (multi-node)."
    )


# --------------------------------------------------------------------------- deployment


class Toleration(_Model):
    """A Kubernetes toleration."""

    key: str | None = Field(None, description="Taint key.")
    operator: Literal["Exists", "Equal"] = Field("Exists", description="Match operator.")
    value: str | None = Field(None, description="Taint value (with `Equal`).")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(None, description="Taint effect.")
    toleration_seconds: int | None = Field(
        None, description="For NoExecute: how long the pod stays bound (seconds, at most a year).", ge=0, le=31_536_000
    )


class NetworkPolicySpec(_Model):
    """Who may reach the model pods."""

    enabled: bool | None = Field(None, description="Render a NetworkPolicy. Default: the profile's (on in production).")
    allow_from_namespaces: list[DNS1123Label] = Field(
        default_factory=_list,
        description="Namespaces whose pods may call the model (besides the service's own namespace).",
    )
    allow_from_pod_labels: dict[str, str] = Field(
        default_factory=_dict, description="Pods in the service's namespace with these labels may call the model."
    )
    gateway_namespace: DNS1123Label | None = Field(
        None, description="Namespace of the ingress gateway (Istio, Envoy Gateway…) that fronts the service."
    )
    prometheus_namespace: DNS1123Label = Field(
        "monitoring", description="Namespace of the Prometheus that scrapes the metrics port."
    )


class Disruption(_Model):
    """PodDisruptionBudget for voluntary disruptions (node drains, upgrades)."""

    enabled: bool | None = Field(None, description="Render a PodDisruptionBudget. Default: the profile's.")
    max_unavailable: int = Field(1, description="Replicas a drain may take down at once.", ge=0, le=MAX_REPLICAS)


class Deployment(_Model):
    """How KServe deploys the predictor."""

    mode: Literal["standard", "knative"] = Field(
        "standard",
        description=(
            "KServe deployment mode: `standard` (plain Deployment + Service, formerly RawDeployment) "
            "or `knative` (Knative Service, formerly Serverless). Always written to the "
            "`serving.kserve.io/deploymentMode` annotation."
        ),
    )
    target: Literal["inferenceService", "llmInferenceService", "leaderWorkerSet"] = Field(
        "inferenceService",
        description=(
            "What llmdeploy renders: `inferenceService` (a KServe InferenceService on a "
            "ClusterServingRuntime, round-robin Service) or `llmInferenceService` (a KServe v0.20 "
            "LLMInferenceService behind the llm-d router: prefix- and KV-cache-aware scheduling, "
            "`router`). docs/targets.md compares them. `leaderWorkerSet`: a plain LeaderWorkerSet "
            "(leaderworkerset.x-k8s.io/v1, no KServe) whose groups span `resources.nodes` nodes "
            "with vLLM's Ray bootstrap (docs/topologies.md)."
        ),
    )
    node_selector: dict[str, str] | None = Field(
        None, description="Node selector; replaces the one derived from the GPU catalog."
    )
    tolerations: list[Toleration] | None = Field(
        None, description="Tolerations; replace the default `nvidia.com/gpu` toleration."
    )
    service_account: DNS1123Label | None = Field(None, description="ServiceAccount of the predictor pods.")
    priority_class_name: str | None = Field(None, description="PriorityClass of the predictor pods.")
    request_timeout_seconds: int = Field(
        300, description="KServe component timeout for one request (seconds).", ge=1, le=3600
    )
    startup_timeout_seconds: int | Literal["auto"] = Field(
        "auto",
        description=(
            "How long the startupProbe waits for the engine to load the model, or `auto` (twice the "
            "load estimate of `llmdeploy size`, at least 300 s). Raise it for slow storage (NFS, cold PVCs)."
        ),
    )
    termination_grace_period_seconds: int | Literal["auto"] = Field(
        "auto",
        description="Grace period to finish in-flight generations, or `auto` (from maxModelLen and decode speed).",
    )
    network_policy: NetworkPolicySpec = Field(default_factory=NetworkPolicySpec, description="NetworkPolicy.")
    disruption_budget: Disruption = Field(default_factory=Disruption, description="PodDisruptionBudget.")

    @field_validator("startup_timeout_seconds", "termination_grace_period_seconds")
    @classmethod
    def _seconds(cls, v: int | str) -> int | str:
        if isinstance(v, int) and not 1 <= v <= 86400:
            raise ValueError(f"must be 'auto' or a number of seconds between 1 and 86400 (got {v})")
        return v


# --------------------------------------------------------------------------- scaling


class TargetLoad(_Model):
    """The load the service must carry; replicas are derived from it."""

    requests_per_second: float = Field(description="Peak requests per second.", gt=0, le=1_000_000)
    avg_prompt_tokens: int = Field(512, description="Average prompt length (tokens).", ge=1, le=10_000_000)
    avg_output_tokens: int = Field(256, description="Average output length (tokens).", ge=1, le=10_000_000)
    concurrency: int | None = Field(
        None,
        description=(
            "Requests in flight per replica at peak (offered load, not the engine's maxNumSeqs); "
            "`maxNumSeqs: auto` is never set below it."
        ),
        ge=1,
        le=1_000_000,
    )
    prefix_cache_hit_rate: float | None = Field(
        None,
        description=(
            "Share of prompt tokens served from the engine's prefix cache (shared system prompts, "
            "multi-turn history): the capacity model prefills only the rest (they still attend to "
            "the cached tokens). Default: no hits."
        ),
        ge=0,
        lt=1,
    )


class PrometheusSource(_Model):
    """Where KEDA reads the metrics it scales on."""

    server_address: str = Field(
        "http://prometheus-operated.monitoring.svc:9090",
        description="Prometheus base URL as KEDA's operator reaches it.",
        min_length=1,
    )
    auth_secret_ref: DNS1123Label | None = Field(
        None,
        description=(
            "Secret with Prometheus credentials; llmdeploy renders a TriggerAuthentication from it "
            "(keys per `authModes`)."
        ),
    )
    auth_modes: Literal["bearer", "basic", "tls", "custom"] = Field(
        "bearer", description="KEDA Prometheus authModes used with `authSecretRef`."
    )


class KnativeScaling(_Model):
    """Knative Pod Autoscaler knobs (deployment.mode knative)."""

    initial_scale: int | None = Field(
        None, description="`autoscaling.knative.dev/initial-scale`.", ge=0, le=MAX_REPLICAS
    )
    scale_to_zero_grace_period: str | None = Field(
        None, description="`autoscaling.knative.dev/scale-to-zero-pod-retention-period`, e.g. `10m`.",
        pattern=r"^\d+(s|m|h)$",
    )
    scale_down_delay: str | None = Field(
        None, description="`autoscaling.knative.dev/scale-down-delay`, e.g. `5m`.", pattern=r"^\d+(s|m|h)$"
    )
    container_concurrency: int | None = Field(
        None,
        description=(
            "Hard limit of concurrent requests per pod (0 = unlimited; at most 1000, Knative's "
            "default `container-concurrency-max-limit`)."
        ),
        ge=0,
        le=1000,
    )


ScalingMetric = Literal[
    "queueDepth", "ttftP95", "itlP95", "kvCacheUsage", "runningRequests", "generationTokens",
    "concurrency", "rps", "cpu", "memory",
]


class Scaling(_Model):
    """How the number of replicas follows the load."""

    autoscaler: Literal["keda", "kpa", "hpa", "none"] = Field(
        "keda",
        description=(
            "`keda` (Standard mode: a ScaledObject on LLM metrics), `kpa` (Knative mode), `hpa` "
            "(KServe's own HPA on cpu/memory) or `none` (fixed replicas)."
        ),
    )
    min_replicas: int = Field(1, description="Fewest replicas (0 only with scaleToZero).", ge=0, le=MAX_REPLICAS)
    max_replicas: int | Literal["auto"] = Field(
        3, description="Most replicas, or `auto` (from targetLoad and the capacity estimate)."
    )
    metric: ScalingMetric = Field(
        "queueDepth",
        description=(
            "Signal to scale on: queueDepth (waiting requests per replica), ttftP95 / itlP95 "
            "(seconds), kvCacheUsage (0–1), runningRequests, generationTokens (tokens/s per "
            "replica); concurrency / rps (Knative); cpu / memory (HPA)."
        ),
    )
    target: float | Literal["auto"] = Field(
        "auto", description="Target value per replica for `metric`, or `auto` (the profile's or derived)."
    )
    activation_target: float | None = Field(
        None, description="KEDA activation threshold (scale from zero above it)."
    )
    activation_query: str | None = Field(
        None,
        description=(
            "KEDA scale-to-zero: PromQL measured outside the engine pods that is above 0 while "
            "clients call the service, e.g. the gateway's request rate for its route. The engine's "
            "own metrics vanish with the last pod, so only such a query can wake a service at zero."
        ),
        min_length=1,
    )
    scale_to_zero: bool = Field(False, description="Allow zero replicas when idle (first request waits for a model load).")
    polling_interval_seconds: int = Field(15, description="KEDA polling interval.", ge=1, le=3600)
    cooldown_period_seconds: int = Field(300, description="KEDA cooldown before scaling to zero.", ge=0, le=86400)
    scale_up_stabilization_seconds: int = Field(30, description="HPA scale-up stabilization window.", ge=0, le=3600)
    scale_down_stabilization_seconds: int = Field(300, description="HPA scale-down stabilization window.", ge=0, le=3600)
    target_load: TargetLoad | None = Field(None, description="Expected peak load; sizes maxReplicas when `auto`.")
    prometheus: PrometheusSource = Field(default_factory=PrometheusSource, description="Prometheus for KEDA.")
    knative: KnativeScaling = Field(default_factory=KnativeScaling, description="Knative autoscaling knobs.")

    @field_validator("max_replicas")
    @classmethod
    def _max_replicas(cls, v: int | str) -> int | str:
        if isinstance(v, int) and not 1 <= v <= MAX_REPLICAS:
            raise ValueError(f"must be 'auto' or an integer between 1 and {MAX_REPLICAS} (got {v})")
        return v

    @field_validator("target", "activation_target")
    @classmethod
    def _threshold(cls, v: float | str | None) -> float | str | None:
        # Below zero is the scaling rules' to explain (what the metric can reach); absurdly large here.
        if isinstance(v, float) and abs(v) > MAX_SCALING_TARGET:
            raise ValueError(f"must be at most {MAX_SCALING_TARGET:,} (got {v:g})")
        return v


# --------------------------------------------------------------------------- rollout


class Gateway(_Model):
    """The Gateway API gateway that routes to the service (Standard-mode rollouts)."""

    name: DNS1123Label = Field(description="Gateway name.")
    namespace: DNS1123Label | None = Field(None, description="Gateway namespace (default: the service's).")
    section_name: str | None = Field(None, description="Listener name on the gateway.")
    hostnames: list[str] = Field(default_factory=_list, description="Hostnames the route answers.")


class Candidate(_Model):
    """The new version under test: only what differs from the current one."""

    name_suffix: DNS1123Label = Field("canary", description="Suffix of the candidate InferenceService name.")
    image: str | None = Field(None, description="Engine image of the candidate.")
    storage_uri: str | None = Field(None, description="Weights of the candidate.")
    revision: str | None = Field(None, description="Model revision of the candidate.")
    extra_args: list[str] | None = Field(None, description="Engine flags of the candidate (replace the current ones).")


class Rollout(_Model):
    """How a new version takes traffic."""

    strategy: Literal["rolling", "canary", "abTest", "blueGreen"] = Field(
        "rolling",
        description=(
            "`rolling` (surge one new pod, never drop capacity), `canary` (a share of traffic), "
            "`abTest` (by request header), `blueGreen` (all traffic flips at once)."
        ),
    )
    traffic_percent: int = Field(
        10, description="Share of traffic for the candidate (canary) or for green (blueGreen: 0 or 100).", ge=0, le=100
    )
    header: str = Field("X-Experiment-Group", description="Header that selects the candidate (abTest).")
    header_value: str = Field("B", description="Header value that selects the candidate (abTest).")
    candidate: Candidate | None = Field(None, description="The candidate version (canary, abTest, blueGreen).")
    gateway: Gateway | None = Field(None, description="Gateway for the HTTPRoute (Standard mode).")
    flagger: bool = Field(
        False,
        description=(
            "Reserved: a Flagger Canary cannot drive KServe's predictor Deployment, so `true` is refused "
            "(LD314); docs/scaling.md has the promotion recipe instead."
        ),
    )


# --------------------------------------------------------------------------- monitoring


class Alerts(_Model):
    """Alert thresholds (profiles set defaults)."""

    enabled: bool = Field(True, description="Render alerting rules.")
    queue_depth: float = Field(
        20, description="Waiting requests (sum over replicas) that count as backed up.", gt=0, le=1_000_000
    )
    kv_cache_usage: float = Field(0.95, description="KV-cache usage (0–1) that counts as nearly full.", gt=0, le=1)
    ttft_p95_seconds: float = Field(2.0, description="p95 time-to-first-token SLO (seconds).", gt=0, le=3600)
    itl_p95_seconds: float = Field(0.1, description="p95 inter-token latency SLO (seconds).", gt=0, le=3600)
    error_rate: float = Field(0.01, description="Error budget: share of requests that may fail.", gt=0, le=1)
    preemptions_per_second: float = Field(
        0.5, description="Preemption rate that signals KV-cache pressure.", gt=0, le=1_000_000
    )
    gpu_memory_usage: float = Field(0.9, description="GPU framebuffer usage (0–1) alert (DCGM).", gt=0, le=1)
    for_duration: Annotated[str, StringConstraints(pattern=r"^\d+(s|m|h)$")] = Field(
        "5m", description="How long a condition must hold before an alert fires."
    )
    runbook_base_url: str = Field(
        "https://github.com/llmdeploy/llmdeploy/blob/main/docs/monitoring.md",
        description="Base URL of the runbooks; each alert links `<base>#<alert-name-lowercase>`.",
    )


class Dashboard(_Model):
    """Grafana dashboard as a ConfigMap for the Grafana sidecar."""

    enabled: bool = Field(True, description="Render the dashboard ConfigMap.")
    namespace: DNS1123Label | None = Field(None, description="Namespace of the ConfigMap (default: the service's).")
    labels: dict[str, str] = Field(
        default_factory=lambda: {"grafana_dashboard": "1"},
        description="Labels the Grafana sidecar selects on (kube-prometheus-stack: `grafana_dashboard: \"1\"`).",
    )


class Monitoring(_Model):
    """Metrics scraping, alerts and dashboards."""

    enabled: bool = Field(True, description="Render monitoring objects.")
    scrape: Literal["podMonitor", "serviceMonitor", "annotations"] = Field(
        "podMonitor",
        description="How Prometheus finds the pods: a PodMonitor, a ServiceMonitor, or only `prometheus.io` annotations.",
    )
    scrape_interval: Annotated[str, StringConstraints(pattern=r"^\d+(s|m)$")] = Field(
        "15s", description="Scrape interval."
    )
    labels: dict[str, str] = Field(
        default_factory=lambda: {"release": "kube-prometheus-stack"},
        description=(
            "Labels the Prometheus operator selects monitors and rules by (kube-prometheus-stack "
            "default: `release: <helm release name>`)."
        ),
    )
    alerts: Alerts = Field(default_factory=Alerts, description="Alert thresholds.")
    dashboard: Dashboard = Field(default_factory=Dashboard, description="Grafana dashboard.")
    dcgm: bool = Field(True, description="Include GPU panels and alerts from the DCGM exporter.")
    dcgm_honor_labels: bool = Field(
        False,
        description=(
            "Whether the Prometheus job that scrapes the DCGM exporter keeps the exporter's labels "
            "(`honorLabels: true`): GPU series then name the workload in `namespace`/`pod`. With "
            "`false` (the dcgm-exporter chart's default) they carry `exported_namespace`/`exported_pod`."
        ),
    )


# --------------------------------------------------------------------------- router


ScorerType = Literal["prefixCache", "precisePrefixCache", "kvCacheUtilization", "queue", "loraAffinity",
                     "activeRequest", "noHitLru"]


class RouterScorer(_Model):
    """One scorer of the llm-d endpoint picker and its weight."""

    type: ScorerType = Field(
        description=(
            "`prefixCache` (the replica that already holds the prompt's prefix, as the picker estimates it), "
            "`precisePrefixCache` (the same from vLLM's own KV-cache events: vLLM ≥ 0.9 publishes them over "
            "ZMQ, llmdeploy sets `--kv-events-config`), `kvCacheUtilization` "
            "(free KV cache), `queue` (short queue), `loraAffinity` (the adapter is loaded), "
            "`activeRequest` (fewest requests in flight), `noHitLru` (spread cold prompts)."
        ),
    )
    weight: int = Field(1, description="Weight of the scorer in the picker's sum.", ge=1, le=100)


class RouterGateway(_Model):
    """The Gateway API gateway the route attaches to."""

    name: DNS1123Label = Field(description="Gateway name.")
    namespace: DNS1123Label | None = Field(None, description="Gateway namespace (default: the service's).")
    section_name: str | None = Field(None, description="Listener name on the gateway.", min_length=1, max_length=253)


class RouterObjective(_Model):
    """Request priority of the service's traffic in the endpoint picker (an InferenceObjective)."""

    priority: int = Field(
        description="Higher is served first when the pool is saturated; negative may be shed first.",
        ge=-1000,
        le=1000,
    )


class RewriteTarget(_Model):
    """One model a rewritten request may go to, and its share."""

    model: str = Field(description="A model the service serves: its served name or a LoRA adapter's name.",
                       min_length=1, max_length=256)
    weight: int = Field(1, description="Relative share of the requests (weight ÷ sum of the weights).", ge=1,
                        le=1_000_000)


class ModelRewrite(_Model):
    """Requests that name ``model`` are served by the ``targets`` (an llm-d InferenceModelRewrite)."""

    model: str = Field(description="The model name clients send (the request body's `model`).", min_length=1,
                       max_length=256)
    targets: list[RewriteTarget] = Field(description="Where those requests go, weighted.", min_length=1,
                                         max_length=16)


class Router(_Model):
    """The llm-d router in front of the llmInferenceService target."""

    pool: Literal["managed", "explicit"] = Field(
        "managed",
        description=(
            "`managed`: KServe creates the InferencePool, the endpoint picker (EPP) and the HTTPRoute "
            "from the LLMInferenceService. `explicit`: llmdeploy renders the InferencePool, the "
            "HTTPRoute and the EPP configuration for an llm-d router the cluster runs itself (`eppService`)."
        ),
    )
    gateway: RouterGateway | None = Field(
        None, description="Gateway of the route. Default: the gateway KServe's configuration names."
    )
    scorers: list[RouterScorer] | None = Field(
        None,
        description=(
            "Scorers of the endpoint picker. Default: KServe v0.20's baseline (queue 2, "
            "kvCacheUtilization 2, prefixCache 3, noHitLru 2; loraAffinity 4 with adapters)."
        ),
        min_length=1,
        max_length=6,
    )
    prefix_block_size: int | None = Field(
        None,
        description=(
            "Tokens per block the prefix scorer hashes; must equal the engine's `--block-size`. "
            "Default: the engine's."
        ),
        ge=1,
        le=1024,
    )
    scheduler_replicas: int = Field(1, description="Endpoint picker replicas (more than one elects a leader).",
                                    ge=1, le=10)
    epp_service: DNS1123Label | None = Field(
        None, description="`explicit` pool: the Service of the cluster's endpoint picker (gRPC port 9002)."
    )
    candidate_epp_service: DNS1123Label | None = Field(
        None,
        description=(
            "`explicit` pool with a canary, A/B test or blue/green: the Service of the endpoint picker of the "
            "candidate's own InferencePool (a picker serves one pool)."
        ),
    )
    epp_metrics_token: SecretKeyRef | None = Field(
        None,
        description=(
            "`managed` pool: a Secret key holding a bearer token that may read the endpoint picker's "
            "`/metrics` (it checks the token; a ServiceAccount token whose role allows `get` on the "
            "non-resource URL `/metrics`). With it llmdeploy renders the picker's PodMonitor and alerts."
        ),
    )
    objective: RouterObjective | None = Field(
        None, description="Request priority in the endpoint picker (renders an InferenceObjective)."
    )
    model_rewrites: list[ModelRewrite] = Field(
        default_factory=_list,
        description=(
            "Route a client-facing model name to served models or LoRA adapters by weight (an llm-d.ai "
            "InferenceModelRewrite; llm-d router ≥ 0.9)."
        ),
        max_length=32,
    )
    llmd_router_version: Annotated[str, StringConstraints(pattern=r"^\d+\.\d+(\.\d+)?$")] = Field(
        "0.9.0",
        description=(
            "llm-d router release of the cluster: from 0.9 InferenceObjective is `llm-d.ai/v1alpha2`, "
            "before `inference.networking.x-k8s.io/v1alpha2`."
        ),
    )


# --------------------------------------------------------------------------- disaggregation


KvConnector = Literal["nixl", "lmcache", "p2pNccl"]


class PrefillRole(_Model):
    """The prefill pool of a disaggregated service; the decode pool is the service itself (`resources`, `scaling`)."""

    replicas: int | Literal["auto"] = Field(
        "auto",
        description=(
            "Prefill replicas, or `auto`: from `scaling.targetLoad` and the per-role model (prompt tokens per "
            "second of one prefill replica, `llmdeploy size`); 1 without a target load."
        ),
    )
    tensor: int | None = Field(
        None, description="Tensor-parallel size of a prefill replica. Default: `resources.parallelism.tensor`.",
        ge=1, le=64,
    )
    gpu: str | None = Field(
        None,
        description="GPU catalog key of the prefill pods (`llmdeploy catalog gpus`). Default: `resources.gpu.type`.",
        min_length=1,
        max_length=64,
    )

    @field_validator("replicas")
    @classmethod
    def _replicas(cls, v: int | str) -> int | str:
        if isinstance(v, int) and not 1 <= v <= MAX_REPLICAS:
            raise ValueError(f"must be 'auto' or an integer between 1 and {MAX_REPLICAS} (got {v})")
        return v


class Disaggregation(_Model):
    """Prefill/decode disaggregation: prompts run on a prefill pool, generation on the decode pool (docs/topologies.md)."""

    connector: KvConnector = Field(
        description=(
            "KV-cache connector that moves each prompt's KV cache from prefill to decode (vLLM "
            "`--kv-transfer-config`): `nixl` (NixlConnector, vLLM ≥ 0.9.0, over UCX: RDMA when the pods have it), "
            "`lmcache` (LMCacheConnectorV1), `p2pNccl` (P2pNcclConnector, vLLM ≥ 0.9.2)."
        ),
    )
    prefill: PrefillRole = Field(default_factory=PrefillRole, description="The prefill pool.")


# --------------------------------------------------------------------------- security


class AllowedSecret(_Model):
    """A value the secret scan flags that is not a credential."""

    path: str = Field(
        description=(
            "JSON path of the value as the LD401 diagnostic names it, e.g. `runtime.env[2].value` "
            "(the value itself is never written here)."
        ),
        min_length=1,
        max_length=512,
    )
    reason: str = Field(description="Why the value is not a credential (read in review).", min_length=1,
                        max_length=1024)


class Security(_Model):
    """The secret scan's allow-list."""

    allow_secret_like: list[AllowedSecret] = Field(
        default_factory=_list,
        description=(
            "Values that look like credentials but are not (a public build id, a test fixture): "
            "the secret scan skips them in the spec and in the rendered manifests. Never a comment: "
            "the exception is part of the reviewed spec."
        ),
        max_length=256,
    )


# --------------------------------------------------------------------------- root


class LLMService(_Model):
    """An LLM service: one model served by one engine on Kubernetes."""

    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        frozen=True,
        allow_inf_nan=False,
        json_schema_extra={"title": "LLMService", "$id": "https://llmdeploy.dev/schemas/llmdeploy.schema.json"},
    )

    api_version: Literal["llmdeploy.dev/v1alpha1"] = Field(
        description="Spec version: `llmdeploy.dev/v1alpha1`."
    )
    kind: Literal["LLMService"] = Field(description="Always `LLMService`.")
    metadata: Metadata = Field(description="Name, namespace and labels.")
    profile: str | None = Field(
        None,
        description=(
            "Defaults to start from: a built-in profile (`dev`, `staging`, `production`) or the path "
            "of a team profile (relative to the spec). The spec wins over the profile; maps merge, "
            "lists replace."
        ),
    )
    model: ModelSource = Field(description="The model and its weights.")
    runtime: Runtime = Field(default_factory=Runtime, description="Serving engine settings.")
    resources: Resources = Field(description="GPUs and other resources of one replica.")
    deployment: Deployment = Field(default_factory=Deployment, description="KServe deployment settings.")
    scaling: Scaling = Field(default_factory=Scaling, description="Autoscaling.")
    rollout: Rollout = Field(default_factory=Rollout, description="Rollout strategy.")
    router: Router = Field(default_factory=Router, description="The llm-d router (llmInferenceService target).")
    disaggregation: Disaggregation | None = Field(
        None, description="Prefill/decode disaggregation (llmInferenceService target): a prefill pool beside this one."
    )
    monitoring: Monitoring = Field(default_factory=Monitoring, description="Monitoring.")
    security: Security = Field(default_factory=Security, description="The secret scan's allow-list.")


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the spec, as written to ``schemas/llmdeploy.schema.json``."""
    schema = LLMService.model_json_schema(by_alias=True, mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


def camel_path(parts: tuple[str | int, ...]) -> str:
    """Render a JSON path as ``runtime.extraArgs[2]``."""
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += ("." if out else "") + p
    return out

