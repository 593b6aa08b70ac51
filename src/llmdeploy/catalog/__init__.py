"""The built-in GPU and model catalogs, and a reader for local Hugging Face configs.

Two YAML files next to this module are the single source of truth:

* ``gpus.yaml``: memory as the driver reports it (MiB), bandwidth, dense tensor
  throughput, interconnect, the node labels that select the GPU and an indicative
  price, each figure group with its source.
* ``models.yaml``: the architecture values of each model's ``config.json`` on the
  Hugging Face Hub (plus parameter count and checkpoint size), keyed by HF id.

Both load lazily on first use and are cached for the life of the process; importing
this module does no I/O. Lookups are case-insensitive and accept aliases. A model the
catalog lacks can be read from a local ``config.json`` with :func:`model_from_hf_config`
(no network, ever), and :func:`estimate_num_parameters` recomputes a model's size from
its architecture so that a catalog entry or a local config can be checked.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import field
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any, Generic, TypeVar

from ..errors import InternalError, LlmdeployError
from ..records import record

__all__ = [
    "EKS_ACCELERATOR_LABEL",
    "GFD_PRODUCT_LABEL",
    "GKE_ACCELERATOR_LABEL",
    "GPU",
    "GPU_CATALOG_PATH",
    "KARPENTER_GPU_NAME_LABEL",
    "MODEL_CATALOG_PATH",
    "NODE_LABEL_KEYS",
    "SUPPORTED_MODEL_TYPES",
    "CatalogError",
    "MLAConfig",
    "MoEConfig",
    "ModelConfig",
    "QuantizationConfig",
    "estimate_active_parameters",
    "estimate_num_parameters",
    "get_gpu",
    "get_model",
    "gpus",
    "model_from_hf_config",
    "models",
]

_HERE = Path(__file__).resolve().parent
GPU_CATALOG_PATH = _HERE / "gpus.yaml"
MODEL_CATALOG_PATH = _HERE / "models.yaml"

# Label keys behind GPU.node_labels.
GFD_PRODUCT_LABEL = "nvidia.com/gpu.product"  # NVIDIA GPU feature discovery
GKE_ACCELERATOR_LABEL = "cloud.google.com/gke-accelerator"
EKS_ACCELERATOR_LABEL = "k8s.amazonaws.com/accelerator"  # set by node-group config, not by EKS
# Karpenter on AWS; EKS Auto Mode sets the same values on eks.amazonaws.com/instance-gpu-name.
KARPENTER_GPU_NAME_LABEL = "karpenter.k8s.aws/instance-gpu-name"


class CatalogError(LlmdeployError):
    """An unknown catalog key, or a local ``config.json`` that cannot be read.

    Attributes:
        message: what went wrong, naming the key or the file.
        hint: how to fix it (a did-you-mean, or the command that lists the entries).
    """

    exit_code = 1


# --------------------------------------------------------------------------- GPUs


# Label key behind each node_labels entry of a GPU.
NODE_LABEL_KEYS: Mapping[str, str] = MappingProxyType(
    {
        "gfd": GFD_PRODUCT_LABEL,
        "gke": GKE_ACCELERATOR_LABEL,
        "eks": EKS_ACCELERATOR_LABEL,
        "karpenter": KARPENTER_GPU_NAME_LABEL,
    }
)


@record
class GPU:
    """One GPU type of the catalog.

    Throughput figures are dense (no structured sparsity) tensor-core peaks.

    Attributes:
        key: catalog key, lowercase kebab (``a100-80gb``).
        name: the name the driver reports (``NVIDIA A100-SXM4-80GB``).
        vendor: ``nvidia`` or ``amd``.
        aliases: other keys accepted by :func:`get_gpu`.
        memory_mib: total memory as nvidia-smi / rocm-smi report it, in MiB.
        memory_bandwidth_gbs: memory bandwidth, GB/s.
        fp16_tflops: dense FP16 tensor TFLOPS (FP32 accumulate).
        bf16_tflops: dense BF16 tensor TFLOPS; ``None`` when the GPU has no BF16.
        fp8_tflops: dense FP8 tensor TFLOPS; ``None`` without FP8 tensor cores.
        fp8: native FP8 tensor cores (Ada, Hopper, Blackwell, MI300).
        fp8_weight_only: no native FP8, but vLLM runs FP8 checkpoints weight-only
            through its FP8 Marlin kernels (Ampere, compute capability 8.x).
        compute_capability: CUDA compute capability, or the gfx target on AMD.
        interconnect: ``nvlink``, ``pcie`` or ``infinity-fabric``.
        interconnect_gbs: GPU-to-GPU bandwidth, GB/s (bidirectional, as marketed).
        gpus_per_node: GPUs in a typical node or cloud instance.
        resource_name: extended resource to request (``nvidia.com/gpu``).
        node_labels: label values that select this GPU, by kind: ``gfd``
            (``nvidia.com/gpu.product`` from GPU feature discovery), ``gke``
            (``cloud.google.com/gke-accelerator``), ``eks``
            (``k8s.amazonaws.com/accelerator``, which EKS itself never sets) and
            ``karpenter`` (``karpenter.k8s.aws/instance-gpu-name``, also EKS Auto
            Mode's ``eks.amazonaws.com/instance-gpu-name``; it names the chip only, so
            both A100 sizes share ``a100``). Every kind is present; ``None`` where the
            label has no value for this GPU.
        instance_types: cloud instance types by provider (``aws``, ``gcp``, ``azure``).
        price_per_gpu_hour_usd: indicative on-demand price per GPU-hour; teams
            override it; ``None`` when no representative list price exists.
        sources: where each figure group comes from (memory, bandwidth, tflops,
            labels, price).
    """

    key: str
    name: str
    vendor: str
    aliases: tuple[str, ...]
    memory_mib: int
    memory_bandwidth_gbs: float
    fp16_tflops: float
    bf16_tflops: float | None
    fp8_tflops: float | None
    fp8: bool
    fp8_weight_only: bool
    compute_capability: str
    interconnect: str
    interconnect_gbs: float
    gpus_per_node: int
    resource_name: str
    node_labels: Mapping[str, str | None] = field(hash=False)
    instance_types: Mapping[str, tuple[str, ...]] = field(hash=False)
    price_per_gpu_hour_usd: float | None = None
    sources: Mapping[str, str] = field(default_factory=dict, hash=False)

    @property
    def memory_bytes(self) -> int:
        """Total memory in bytes."""
        return self.memory_mib * 1024 * 1024

    @property
    def memory_gib(self) -> float:
        """Total memory in GiB."""
        return self.memory_mib / 1024

    def label_selectors(self) -> dict[str, str]:
        """Return ``{label key: value}`` for every node label this GPU has a value for."""
        return {
            NODE_LABEL_KEYS[kind]: value
            for kind, value in self.node_labels.items()
            if value is not None
        }

    @property
    def supports_bf16(self) -> bool:
        """Whether the GPU computes in bfloat16 (Turing does not; vLLM falls back to fp16)."""
        return self.bf16_tflops is not None

    @property
    def runs_fp8_checkpoints(self) -> bool:
        """Whether vLLM can serve an FP8 checkpoint here (natively or weight-only)."""
        return self.fp8 or self.fp8_weight_only


# ------------------------------------------------------------------------- models


@record
class MoEConfig:
    """Mixture-of-experts layout.

    Attributes:
        num_experts: routed experts per MoE layer.
        experts_per_token: routed experts each token uses (top-k).
        moe_intermediate_size: intermediate size of one routed expert.
        num_shared_experts: always-active shared experts (DeepSeek, Qwen2-MoE).
        first_k_dense_layers: layers with a dense MLP instead of experts (DeepSeek's
            ``first_k_dense_replace``; for other layouts, the count of dense layers).
        shared_expert_intermediate_size: total intermediate size of the shared
            experts when the config gives it (Qwen2-MoE); otherwise
            ``num_shared_experts * moe_intermediate_size``.
    """

    num_experts: int
    experts_per_token: int
    moe_intermediate_size: int
    num_shared_experts: int = 0
    first_k_dense_layers: int = 0
    shared_expert_intermediate_size: int | None = None

    @property
    def shared_intermediate_size(self) -> int:
        """Intermediate size of all shared experts together (0 without shared experts)."""
        if self.shared_expert_intermediate_size is not None:
            return self.shared_expert_intermediate_size
        return self.num_shared_experts * self.moe_intermediate_size


@record
class MLAConfig:
    """Multi-head latent attention (DeepSeek-V2/V3/R1).

    Attributes:
        kv_lora_rank: rank of the compressed KV latent.
        q_lora_rank: rank of the compressed query, ``None`` when queries are not
            compressed (DeepSeek-V2-Lite).
        qk_rope_head_dim: rotary part of each query/key head.
        qk_nope_head_dim: non-rotary part of each query/key head.
        v_head_dim: value head size.
    """

    kv_lora_rank: int
    q_lora_rank: int | None
    qk_rope_head_dim: int
    qk_nope_head_dim: int
    v_head_dim: int

    @property
    def kv_cache_dim(self) -> int:
        """Cached elements per token per layer: the latent plus the shared rotary key."""
        return self.kv_lora_rank + self.qk_rope_head_dim


@record
class QuantizationConfig:
    """How a checkpoint's weights are quantized.

    Attributes:
        method: ``quant_method`` of the config (``awq``, ``gptq``, ``fp8``,
            ``fbgemm_fp8``, ``compressed-tensors``, ``bitsandbytes`` ...).
        bits: weight bits when known.
        group_size: quantization group size when the method uses groups.
    """

    method: str
    bits: int | None = None
    group_size: int | None = None


@record
class ModelConfig:
    """A model's architecture as its ``config.json`` describes it.

    Attributes:
        hf_id: Hugging Face id (for a local config, its ``_name_or_path`` when that is
            an id, else the folder name, or the file name without ``.json``).
        family: normalized ``model_type`` (``llama``, ``qwen3_moe``, ``gemma3`` ...).
        architecture: the ``architectures[0]`` class name.
        num_layers: decoder layers (``num_hidden_layers``).
        hidden_size: model width.
        num_attention_heads: query heads.
        num_kv_heads: key/value heads (grouped-query attention).
        head_dim: size of one query/key head (MLA: nope + rope part).
        intermediate_size: dense MLP intermediate size.
        vocab_size: embedding rows.
        tie_word_embeddings: whether the LM head shares the embedding matrix.
        max_position_embeddings: longest context the config allows.
        torch_dtype: dtype of the checkpoint's unquantized tensors.
        sliding_window: window in tokens of the sliding-window layers, or ``None``.
        sliding_window_layers: how many layers use the window.
        moe: the mixture-of-experts layout, or ``None`` for a dense model.
        mla: the latent-attention layout, or ``None``.
        quantization: the checkpoint's quantization, or ``None``.
        attention_bias: whether q/k/v projections carry a bias (Qwen2).
        vision_parameters: parameters outside the language model that the
            checkpoint holds (vision tower and projector), 0 for text-only models.
        mtp_layers: multi-token-prediction modules in the checkpoint (DeepSeek-V3's
            ``num_nextn_predict_layers``); vLLM loads them only for speculative decoding.
        num_parameters: published total parameter count, ``None`` if unknown.
        weight_bytes: ``metadata.total_size`` of ``model.safetensors.index.json``.
        aliases: other keys accepted by :func:`get_model`.
        sources: where the values come from.
        source: ``"catalog"`` or the path of the ``config.json`` read.
    """

    hf_id: str
    family: str
    architecture: str
    num_layers: int
    hidden_size: int
    num_attention_heads: int
    num_kv_heads: int
    head_dim: int
    intermediate_size: int
    vocab_size: int
    tie_word_embeddings: bool
    max_position_embeddings: int
    torch_dtype: str
    sliding_window: int | None = None
    sliding_window_layers: int = 0
    moe: MoEConfig | None = None
    mla: MLAConfig | None = None
    quantization: QuantizationConfig | None = None
    attention_bias: bool = False
    vision_parameters: int = 0
    mtp_layers: int = 0
    num_parameters: int | None = None
    weight_bytes: int | None = None
    aliases: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    source: str = "catalog"

    @property
    def is_moe(self) -> bool:
        """Whether the model routes tokens to experts."""
        return self.moe is not None

    @property
    def full_attention_layers(self) -> int:
        """Layers that attend over the whole context (all minus the sliding-window ones)."""
        return self.num_layers - self.sliding_window_layers

    def architecture_fields(self) -> dict[str, object]:
        """The fields that come from ``config.json``, for comparing two configs.

        Leaves out what only the catalog knows (hf_id, aliases, parameter count,
        checkpoint size, sources).
        """
        return {name: getattr(self, name) for name in _ARCHITECTURE_FIELDS}


_ARCHITECTURE_FIELDS = (
    "family",
    "architecture",
    "num_layers",
    "hidden_size",
    "num_attention_heads",
    "num_kv_heads",
    "head_dim",
    "intermediate_size",
    "vocab_size",
    "tie_word_embeddings",
    "max_position_embeddings",
    "torch_dtype",
    "sliding_window",
    "sliding_window_layers",
    "moe",
    "mla",
    "quantization",
    "attention_bias",
    "vision_parameters",
    "mtp_layers",
)


# --------------------------------------------------------------- lookups (public)


def gpus() -> dict[str, GPU]:
    """Return every catalog GPU by key, in catalog order."""
    return dict(_gpu_index().entries)


def models() -> dict[str, ModelConfig]:
    """Return every catalog model by Hugging Face id, in catalog order."""
    return dict(_model_index().entries)


def get_gpu(key: str) -> GPU:
    """Look up a GPU by key, alias, driver name or GPU-feature-discovery product label.

    Args:
        key: ``a100-80gb``, ``A100``, ``NVIDIA-A100-SXM4-80GB`` ... (case-insensitive).

    Returns:
        The catalog entry.

    Raises:
        CatalogError: the key matches no entry; the hint suggests the closest keys.
    """
    index = _gpu_index()
    found = index.lookup.get(_normalize(key))
    if found is None:
        raise CatalogError(
            f"unknown GPU type {key!r}",
            _did_you_mean(key, index.suggestions, "llmdeploy catalog gpus"),
        )
    return index.entries[found]


def get_model(key_or_hf_id: str) -> ModelConfig:
    """Look up a model by Hugging Face id or alias (case-insensitive).

    Args:
        key_or_hf_id: ``meta-llama/Llama-3.1-8B-Instruct`` or ``llama-3.1-8b-instruct``.

    Returns:
        The catalog entry.

    Raises:
        CatalogError: the key matches no entry; the hint suggests the closest ids
            and how to use a local ``config.json`` instead.
    """
    index = _model_index()
    found = index.lookup.get(_normalize(key_or_hf_id))
    if found is None:
        hint = _did_you_mean(key_or_hf_id, index.suggestions, "llmdeploy catalog models")
        hint += "; for a model the catalog lacks, point the spec at its config.json"
        raise CatalogError(f"unknown model {key_or_hf_id!r}", hint)
    return index.entries[found]


def _normalize(key: str) -> str:
    return key.strip().lower()


def _did_you_mean(key: str, names: Mapping[str, str], list_command: str) -> str:
    """Suggest up to three entries whose key or alias is close to ``key``."""
    import difflib  # lazy: only for did-you-mean hints

    close = difflib.get_close_matches(_normalize(key), list(names), n=6, cutoff=0.6)
    entries = list(dict.fromkeys(names[name] for name in close))[:3]
    listing = f"list the entries with `{list_command}`"
    if not entries:
        return listing
    return f"did you mean {' or '.join(repr(e) for e in entries)}? {listing}"


# ------------------------------------------------------------ loading the catalogs


_T = TypeVar("_T")


@record
class _Index(Generic[_T]):
    """One catalog: its entries and every name, alias and normalized key that finds one."""

    entries: Mapping[str, _T]
    lookup: Mapping[str, str]  # normalized key, alias or name -> entry key
    suggestions: Mapping[str, str]  # normalized key or alias -> entry key, for did-you-mean


def _load_yaml(path: Path) -> Any:
    # Imported here so that importing the catalog (and `llmdeploy --help`) stays cheap.
    from ..datafiles import DataFileError, load_yaml_data

    try:
        return load_yaml_data(path)
    except DataFileError as exc:
        raise InternalError(f"cannot read the built-in catalog {path}: {exc}") from exc


class _Entry:
    """Typed access to one YAML mapping; every failure names the file, entry and key."""

    def __init__(self, data: object, path: Path, where: str) -> None:
        if not isinstance(data, dict):
            raise InternalError(f"{path}: {where} must be a mapping")
        self.data: dict[str, Any] = data
        self.path = path
        self.where = where

    def _fail(self, key: str, expected: str) -> InternalError:
        value = self.data.get(key, "<missing>")
        return InternalError(f"{self.path}: {self.where}.{key} must be {expected}, got {value!r}")

    def has(self, key: str) -> bool:
        return key in self.data

    def integer(self, key: str) -> int:
        value = self.data.get(key)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._fail(key, "an integer")
        return value

    def opt_integer(self, key: str) -> int | None:
        return None if self.data.get(key) is None else self.integer(key)

    def number(self, key: str) -> float:
        value = self.data.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self._fail(key, "a number")
        return float(value)

    def opt_number(self, key: str) -> float | None:
        return None if self.data.get(key) is None else self.number(key)

    def text(self, key: str) -> str:
        value = self.data.get(key)
        if not isinstance(value, str) or not value:
            raise self._fail(key, "a non-empty string")
        return value

    def opt_text(self, key: str) -> str | None:
        return None if self.data.get(key) is None else self.text(key)

    def flag(self, key: str) -> bool:
        value = self.data.get(key)
        if not isinstance(value, bool):
            raise self._fail(key, "true or false")
        return value

    def texts(self, key: str) -> tuple[str, ...]:
        value = self.data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self._fail(key, "a list of strings")
        return tuple(value)

    def sub(self, key: str) -> _Entry:
        return _Entry(self.data.get(key), self.path, f"{self.where}.{key}")

    def opt_sub(self, key: str) -> _Entry | None:
        return None if self.data.get(key) is None else self.sub(key)


_VENDORS = frozenset({"nvidia", "amd"})
_INTERCONNECTS = frozenset({"nvlink", "pcie", "infinity-fabric"})
_GPU_SOURCE_GROUPS = ("memory", "bandwidth", "tflops", "labels", "price")
_KEBAB = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


def _parse_gpu(key: str, entry: _Entry) -> GPU:
    vendor = entry.text("vendor")
    if vendor not in _VENDORS:
        raise InternalError(f"{entry.path}: {entry.where}.vendor must be one of {sorted(_VENDORS)}")
    interconnect = entry.text("interconnect")
    if interconnect not in _INTERCONNECTS:
        raise InternalError(
            f"{entry.path}: {entry.where}.interconnect must be one of {sorted(_INTERCONNECTS)}"
        )
    labels = entry.sub("node_labels")
    unknown = sorted(set(labels.data) - set(NODE_LABEL_KEYS))
    if unknown:
        raise InternalError(
            f"{entry.path}: {entry.where}.node_labels has unknown kinds {unknown}; "
            f"expected {sorted(NODE_LABEL_KEYS)}"
        )
    instance_types = entry.sub("instance_types")
    sources = entry.sub("sources")
    return GPU(
        key=key,
        name=entry.text("name"),
        vendor=vendor,
        aliases=entry.texts("aliases"),
        memory_mib=entry.integer("memory_mib"),
        memory_bandwidth_gbs=entry.number("memory_bandwidth_gbs"),
        fp16_tflops=entry.number("fp16_tflops"),
        bf16_tflops=entry.opt_number("bf16_tflops"),
        fp8_tflops=entry.opt_number("fp8_tflops"),
        fp8=entry.flag("fp8"),
        fp8_weight_only=entry.flag("fp8_weight_only"),
        compute_capability=entry.text("compute_capability"),
        interconnect=interconnect,
        interconnect_gbs=entry.number("interconnect_gbs"),
        gpus_per_node=entry.integer("gpus_per_node"),
        resource_name=entry.text("resource_name"),
        node_labels=MappingProxyType({kind: labels.opt_text(kind) for kind in NODE_LABEL_KEYS}),
        instance_types=MappingProxyType(
            {provider: instance_types.texts(provider) for provider in instance_types.data}
        ),
        price_per_gpu_hour_usd=entry.opt_number("price_per_gpu_hour_usd"),
        sources=MappingProxyType({group: sources.text(group) for group in _GPU_SOURCE_GROUPS}),
    )


@cache
def _gpu_index() -> _Index[GPU]:
    path = GPU_CATALOG_PATH
    raw = _load_yaml(path)
    if not isinstance(raw, dict) or not raw:
        raise InternalError(f"{path}: expected a mapping of GPU keys to entries")
    entries: dict[str, GPU] = {}
    lookup: dict[str, str] = {}
    suggestions: dict[str, str] = {}
    for key, data in raw.items():
        if not isinstance(key, str) or not _KEBAB.match(key):
            raise InternalError(f"{path}: GPU key {key!r} must be lowercase kebab-case")
        gpu = _parse_gpu(key, _Entry(data, path, key))
        entries[key] = gpu
        suggestions.update((_normalize(name), key) for name in (key, *gpu.aliases))
        gfd = gpu.node_labels["gfd"]
        names = (key, *gpu.aliases, gpu.name, *([gfd] if gfd else []))
        for name in names:
            _register(lookup, _normalize(name), key, path)
    return _Index(
        MappingProxyType(entries), MappingProxyType(lookup), MappingProxyType(suggestions)
    )


def _register(lookup: dict[str, str], name: str, key: str, path: Path) -> None:
    owner = lookup.setdefault(name, key)
    if owner != key:
        raise InternalError(f"{path}: {name!r} names both {owner!r} and {key!r}")


def _parse_quantization(entry: _Entry | None) -> QuantizationConfig | None:
    if entry is None:
        return None
    return QuantizationConfig(
        method=entry.text("method"),
        bits=entry.opt_integer("bits"),
        group_size=entry.opt_integer("group_size"),
    )


def _parse_model(hf_id: str, entry: _Entry) -> ModelConfig:
    moe = entry.opt_sub("moe")
    mla = entry.opt_sub("mla")
    sources = entry.texts("sources")
    if not sources:
        raise InternalError(f"{entry.path}: {entry.where}.sources must name at least one source")
    model = ModelConfig(
        hf_id=hf_id,
        aliases=entry.texts("aliases"),
        family=entry.text("family"),
        architecture=entry.text("architecture"),
        num_layers=entry.integer("num_layers"),
        hidden_size=entry.integer("hidden_size"),
        num_attention_heads=entry.integer("num_attention_heads"),
        num_kv_heads=entry.integer("num_kv_heads"),
        head_dim=entry.integer("head_dim"),
        intermediate_size=entry.integer("intermediate_size"),
        vocab_size=entry.integer("vocab_size"),
        tie_word_embeddings=entry.flag("tie_word_embeddings"),
        max_position_embeddings=entry.integer("max_position_embeddings"),
        torch_dtype=entry.text("torch_dtype"),
        sliding_window=entry.opt_integer("sliding_window"),
        sliding_window_layers=entry.integer("sliding_window_layers"),
        moe=None
        if moe is None
        else MoEConfig(
            num_experts=moe.integer("num_experts"),
            experts_per_token=moe.integer("experts_per_token"),
            moe_intermediate_size=moe.integer("moe_intermediate_size"),
            num_shared_experts=moe.integer("num_shared_experts"),
            first_k_dense_layers=moe.integer("first_k_dense_layers"),
            shared_expert_intermediate_size=moe.opt_integer("shared_expert_intermediate_size"),
        ),
        mla=None
        if mla is None
        else MLAConfig(
            kv_lora_rank=mla.integer("kv_lora_rank"),
            q_lora_rank=mla.opt_integer("q_lora_rank"),
            qk_rope_head_dim=mla.integer("qk_rope_head_dim"),
            qk_nope_head_dim=mla.integer("qk_nope_head_dim"),
            v_head_dim=mla.integer("v_head_dim"),
        ),
        quantization=_parse_quantization(entry.opt_sub("quantization")),
        attention_bias=entry.flag("attention_bias") if entry.has("attention_bias") else False,
        vision_parameters=entry.integer("vision_parameters")
        if entry.has("vision_parameters")
        else 0,
        mtp_layers=entry.integer("mtp_layers") if entry.has("mtp_layers") else 0,
        num_parameters=entry.opt_integer("num_parameters"),
        weight_bytes=entry.opt_integer("weight_bytes"),
        sources=sources,
        source="catalog",
    )
    _check_consistency(model, entry)
    return model


def _check_consistency(model: ModelConfig, entry: _Entry) -> None:
    problems = []
    if (model.sliding_window is None) != (model.sliding_window_layers == 0):
        problems.append("sliding_window and sliding_window_layers must be set together")
    if not 0 <= model.sliding_window_layers <= model.num_layers:
        problems.append("sliding_window_layers must be between 0 and num_layers")
    if model.num_attention_heads % model.num_kv_heads:
        problems.append("num_attention_heads must be a multiple of num_kv_heads")
    if model.moe is not None and model.moe.first_k_dense_layers > model.num_layers:
        problems.append("moe.first_k_dense_layers exceeds num_layers")
    if problems:
        raise InternalError(f"{entry.path}: {entry.where}: " + "; ".join(problems))


@cache
def _model_index() -> _Index[ModelConfig]:
    path = MODEL_CATALOG_PATH
    raw = _load_yaml(path)
    if not isinstance(raw, dict) or not raw:
        raise InternalError(f"{path}: expected a mapping of Hugging Face ids to entries")
    entries: dict[str, ModelConfig] = {}
    lookup: dict[str, str] = {}
    suggestions: dict[str, str] = {}
    for hf_id, data in raw.items():
        if not isinstance(hf_id, str) or "/" not in hf_id:
            raise InternalError(f"{path}: model key {hf_id!r} must be a Hugging Face id (org/name)")
        model = _parse_model(hf_id, _Entry(data, path, hf_id))
        entries[hf_id] = model
        for name in (hf_id, *model.aliases):
            _register(lookup, _normalize(name), hf_id, path)
            suggestions[_normalize(name)] = hf_id
    return _Index(
        MappingProxyType(entries), MappingProxyType(lookup), MappingProxyType(suggestions)
    )


# ------------------------------------------------------------- local config.json

SUPPORTED_MODEL_TYPES = (
    "llama",
    "mistral",
    "mixtral",
    "qwen2",
    "qwen2_moe",
    "qwen3",
    "qwen3_moe",
    "gemma",
    "gemma2",
    "gemma3_text",
    "phi3",
    "deepseek_v2",
    "deepseek_v3",
)

# What transformers' config classes assume when a key is absent; only the keys a
# published config may leave out. Gemma 3's text_config omits most of them
# (transformers Gemma3TextConfig defaults; SiglipVisionConfig for the vision tower).
_CONFIG_DEFAULTS: dict[str, dict[str, Any]] = {
    "gemma3_text": {
        "num_attention_heads": 8,
        "num_key_value_heads": 4,
        "head_dim": 256,
        "vocab_size": 262208,
        "max_position_embeddings": 131072,
        "sliding_window": 4096,
        "sliding_window_pattern": 6,
    },
    "gemma": {"head_dim": 256},
    "gemma2": {"head_dim": 256},
}
_SIGLIP_DEFAULTS = {
    "hidden_size": 768,
    "intermediate_size": 3072,
    "num_hidden_layers": 12,
    "num_channels": 3,
    "image_size": 224,
    "patch_size": 16,
}
# PretrainedConfig ties embeddings by default; these config classes default to untied.
_UNTIED_BY_DEFAULT = frozenset(
    {
        "llama",
        "mistral",
        "mixtral",
        "qwen2",
        "qwen2_moe",
        "qwen3",
        "qwen3_moe",
        "phi3",
        "deepseek_v2",
        "deepseek_v3",
    }
)
_ARCHITECTURE_BY_TYPE = {
    "llama": "LlamaForCausalLM",
    "mistral": "MistralForCausalLM",
    "mixtral": "MixtralForCausalLM",
    "qwen2": "Qwen2ForCausalLM",
    "qwen2_moe": "Qwen2MoeForCausalLM",
    "qwen3": "Qwen3ForCausalLM",
    "qwen3_moe": "Qwen3MoeForCausalLM",
    "gemma": "GemmaForCausalLM",
    "gemma2": "Gemma2ForCausalLM",
    "gemma3_text": "Gemma3ForCausalLM",
    "phi3": "Phi3ForCausalLM",
    "deepseek_v2": "DeepseekV2ForCausalLM",
    "deepseek_v3": "DeepseekV3ForCausalLM",
}
_HF_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


class _HFConfig:
    """Typed reads from a parsed config.json; errors name the key and the file."""

    def __init__(self, data: dict[str, Any], path: Path, model_type: str, prefix: str = "") -> None:
        self.data = data
        self.path = path
        self.prefix = prefix
        self.defaults = _CONFIG_DEFAULTS.get(model_type, {})

    def _missing(self, key: str) -> CatalogError:
        return CatalogError(
            f"{self.path}: required key '{self.prefix}{key}' is missing",
            "the file must be the model's config.json from the Hugging Face Hub",
        )

    def get(self, key: str, default: Any = None) -> Any:
        value = self.data.get(key)
        if value is None:
            return self.defaults.get(key, default)
        return value

    def integer(self, key: str, default: int | None = None) -> int:
        value = self.get(key, default)
        if value is None:
            raise self._missing(key)
        if isinstance(value, bool) or not isinstance(value, int):
            raise CatalogError(
                f"{self.path}: {self.prefix}{key} must be an integer, got {value!r}",
                "the file must be the model's config.json from the Hugging Face Hub",
            )
        return value

    def opt_integer(self, key: str) -> int | None:
        return None if self.get(key) is None else self.integer(key)


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CatalogError(
            f"cannot read {what} {path}: {exc.strerror or exc}",
            "check the path; llmdeploy reads local files only and never downloads",
        ) from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CatalogError(
            f"{path}:{exc.lineno}:{exc.colno}: {what} is not valid JSON: {exc.msg}"
        ) from exc
    if not isinstance(data, dict):
        raise CatalogError(f"{path}: {what} must be a JSON object")
    return data


def model_from_hf_config(config_path: Path, index_path: Path | None = None) -> ModelConfig:
    """Read a model's architecture from a local Hugging Face ``config.json``.

    Handles Llama, Mistral, Mixtral, Qwen2/2.5, Qwen2-MoE, Qwen3, Qwen3-MoE, Gemma,
    Gemma 2, Gemma 3 (the ``text_config`` of the multimodal checkpoints, plus the
    SigLIP vision tower's size), Phi-3/Phi-4 and DeepSeek-V2/V3/R1 (MLA, MoE).
    Nothing is downloaded.

    Args:
        config_path: the ``config.json``, or a folder holding it (and then, unless
            ``index_path`` is given, its ``model.safetensors.index.json`` if present).
        index_path: a ``model.safetensors.index.json`` whose ``metadata.total_size``
            becomes ``weight_bytes``.

    Returns:
        The model, with ``source`` set to the path read.

    Raises:
        CatalogError: the file is missing, not JSON, lacks a required key, or
            describes an architecture this reader does not support.
    """
    config_path = Path(config_path)
    if config_path.is_dir():
        folder = config_path
        config_path = folder / "config.json"
        default_index = folder / "model.safetensors.index.json"
        if index_path is None and default_index.is_file():
            index_path = default_index
    top = _read_json(config_path, "config.json")

    text_data: dict[str, Any] = top
    prefix = ""
    if isinstance(top.get("text_config"), dict):
        text_data = top["text_config"]
        prefix = "text_config."
    model_type = text_data.get("model_type") or top.get("model_type")
    if model_type == "gemma3":  # a text_config without its own model_type
        model_type = "gemma3_text"
    if not isinstance(model_type, str):
        raise CatalogError(
            f"{config_path}: required key 'model_type' is missing",
            "the file must be the model's config.json from the Hugging Face Hub",
        )
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise CatalogError(
            f"{config_path}: model_type {model_type!r} is not supported",
            "supported model types: " + ", ".join(SUPPORTED_MODEL_TYPES),
        )
    cfg = _HFConfig(text_data, config_path, model_type, prefix)

    hidden = cfg.integer("hidden_size")
    layers = cfg.integer("num_hidden_layers")
    heads = cfg.integer("num_attention_heads")
    kv_heads = cfg.integer("num_key_value_heads", default=heads)
    mla = _mla_from(cfg) if model_type in ("deepseek_v2", "deepseek_v3") else None
    if mla is not None:
        head_dim = mla.qk_nope_head_dim + mla.qk_rope_head_dim
    else:
        head_dim = cfg.opt_integer("head_dim") or _derived_head_dim(hidden, heads, config_path)
    sliding_window, sliding_layers = _sliding_window_from(cfg, model_type, layers)

    architectures = top.get("architectures")
    if isinstance(architectures, list) and architectures and isinstance(architectures[0], str):
        architecture = architectures[0]
    else:
        architecture = _ARCHITECTURE_BY_TYPE[model_type]
    if model_type in ("qwen2", "qwen2_moe"):
        attention_bias = True  # Qwen2 always has q/k/v biases; its config has no key for it
    else:
        attention_bias = bool(cfg.get("attention_bias", False))
    tie_default = model_type not in _UNTIED_BY_DEFAULT
    tie = top.get("tie_word_embeddings", text_data.get("tie_word_embeddings", tie_default))
    dtype = (
        top.get("torch_dtype")
        or top.get("dtype")
        or text_data.get("torch_dtype")
        or text_data.get("dtype")
        or "float32"  # transformers' default when the config names none
    )
    index = _read_json(index_path, "safetensors index") if index_path is not None else None

    return ModelConfig(
        hf_id=_model_id(top, config_path),
        family=model_type.removesuffix("_text"),
        architecture=architecture,
        num_layers=layers,
        hidden_size=hidden,
        num_attention_heads=heads,
        num_kv_heads=kv_heads,
        head_dim=head_dim,
        intermediate_size=cfg.integer("intermediate_size"),
        vocab_size=cfg.integer("vocab_size"),
        tie_word_embeddings=bool(tie),
        max_position_embeddings=cfg.integer("max_position_embeddings"),
        torch_dtype=str(dtype),
        sliding_window=sliding_window,
        sliding_window_layers=sliding_layers,
        moe=_moe_from(cfg, model_type, layers),
        mla=mla,
        quantization=_quantization_from(top.get("quantization_config"), config_path),
        attention_bias=attention_bias,
        vision_parameters=_vision_parameters(top, hidden, config_path),
        mtp_layers=cfg.opt_integer("num_nextn_predict_layers") or 0,
        num_parameters=_index_total_parameters(index, index_path),
        weight_bytes=_index_total_size(index, index_path),
        sources=(str(config_path),) + ((str(index_path),) if index_path is not None else ()),
        source=str(config_path),
    )


def _model_id(top: dict[str, Any], config_path: Path) -> str:
    name = top.get("_name_or_path")
    if isinstance(name, str) and _HF_ID.match(name):
        return name
    if config_path.name == "config.json":  # a snapshot folder named after the model
        return config_path.resolve().parent.name
    return config_path.stem


def _derived_head_dim(hidden: int, heads: int, path: Path) -> int:
    if heads <= 0 or hidden % heads:
        raise CatalogError(
            f"{path}: 'head_dim' is missing and hidden_size {hidden} is not a multiple "
            f"of num_attention_heads {heads}",
            "add head_dim to the config.json",
        )
    return hidden // heads


def _sliding_window_from(cfg: _HFConfig, model_type: str, layers: int) -> tuple[int | None, int]:
    """Return (window, number of windowed layers) following each family's rule."""
    window = cfg.opt_integer("sliding_window")
    layer_types = cfg.data.get("layer_types")
    if isinstance(layer_types, list) and layer_types:
        # Newer transformers spell the pattern out, one entry per layer.
        windowed = sum(1 for kind in layer_types if kind == "sliding_attention")
        return (window, windowed) if window and windowed else (None, 0)
    if window is None:
        return None, 0
    if model_type in ("qwen2", "qwen2_moe", "qwen3", "qwen3_moe"):
        # Qwen configs carry a window but leave it off; when on, layers from
        # max_window_layers upwards use it (transformers Qwen2Attention).
        if not cfg.get("use_sliding_window", False):
            return None, 0
        first = cfg.integer("max_window_layers", default=layers)
        windowed = max(0, layers - first)
        return (window, windowed) if windowed else (None, 0)
    if model_type == "gemma2":
        return window, (layers + 1) // 2  # even-numbered layers slide
    if model_type == "gemma3_text":
        pattern = cfg.get("sliding_window_pattern") or cfg.get("_sliding_window_pattern") or 6
        full = layers // int(pattern)  # every pattern-th layer attends globally
        return window, layers - full
    if model_type in ("mistral", "mixtral", "phi3"):
        return window, layers  # one window for every layer
    return None, 0  # Llama, Gemma 1, DeepSeek: no sliding window


def _moe_from(cfg: _HFConfig, model_type: str, layers: int) -> MoEConfig | None:
    if model_type == "mixtral":
        return MoEConfig(
            num_experts=cfg.integer("num_local_experts"),
            experts_per_token=cfg.integer("num_experts_per_tok"),
            moe_intermediate_size=cfg.integer("intermediate_size"),
        )
    if model_type in ("qwen2_moe", "qwen3_moe"):
        experts = cfg.integer("num_experts")
        step = cfg.integer("decoder_sparse_step", default=1)
        dense_only = cfg.get("mlp_only_layers") or []
        sparse = sum(
            1 for i in range(layers) if i not in dense_only and experts > 0 and (i + 1) % step == 0
        )
        shared = cfg.opt_integer("shared_expert_intermediate_size")
        return MoEConfig(
            num_experts=experts,
            experts_per_token=cfg.integer("num_experts_per_tok"),
            moe_intermediate_size=cfg.integer("moe_intermediate_size"),
            num_shared_experts=1 if shared else 0,
            first_k_dense_layers=layers - sparse,
            shared_expert_intermediate_size=shared or None,
        )
    if model_type in ("deepseek_v2", "deepseek_v3"):
        routed = cfg.opt_integer("n_routed_experts")
        if not routed:
            return None
        first_k = cfg.integer("first_k_dense_replace", default=0)
        freq = cfg.integer("moe_layer_freq", default=1)
        sparse = sum(1 for i in range(layers) if i >= first_k and i % freq == 0)
        return MoEConfig(
            num_experts=routed,
            experts_per_token=cfg.integer("num_experts_per_tok"),
            moe_intermediate_size=cfg.integer("moe_intermediate_size"),
            num_shared_experts=cfg.integer("n_shared_experts", default=0),
            first_k_dense_layers=layers - sparse,
        )
    return None


def _mla_from(cfg: _HFConfig) -> MLAConfig:
    return MLAConfig(
        kv_lora_rank=cfg.integer("kv_lora_rank"),
        q_lora_rank=cfg.opt_integer("q_lora_rank"),
        qk_rope_head_dim=cfg.integer("qk_rope_head_dim"),
        qk_nope_head_dim=cfg.integer("qk_nope_head_dim"),
        v_head_dim=cfg.integer("v_head_dim"),
    )


def _quantization_from(raw: object, path: Path) -> QuantizationConfig | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or not isinstance(raw.get("quant_method"), str):
        raise CatalogError(
            f"{path}: quantization_config must be an object with a 'quant_method'",
            "the file must be the model's config.json from the Hugging Face Hub",
        )
    method = raw["quant_method"]
    bits = raw.get("bits", raw.get("w_bit"))
    group_size = raw.get("group_size", raw.get("q_group_size"))
    if method == "compressed-tensors":
        # llm-compressor: per-group schemes under config_groups.<name>.weights.
        groups = raw.get("config_groups")
        weights: list[dict[str, Any]] = [
            g["weights"]
            for g in (groups.values() if isinstance(groups, dict) else [])
            if isinstance(g, dict) and isinstance(g.get("weights"), dict)
        ]
        if weights:
            bits = weights[0].get("num_bits")
            group_size = weights[0].get("group_size")
    elif method in ("fp8", "fbgemm_fp8"):
        bits = 8
    elif method == "bitsandbytes":
        bits = 4 if raw.get("load_in_4bit") else 8
    return QuantizationConfig(
        method=method,
        bits=bits if isinstance(bits, int) and not isinstance(bits, bool) else None,
        group_size=group_size if isinstance(group_size, int) and group_size > 0 else None,
    )


def _vision_parameters(top: dict[str, Any], text_hidden: int, path: Path) -> int:
    """Count a SigLIP vision tower and Gemma 3's projector; 0 for text-only configs."""
    vision = top.get("vision_config")
    if not isinstance(vision, dict):
        return 0
    if vision.get("model_type") != "siglip_vision_model":
        raise CatalogError(
            f"{path}: vision_config.model_type {vision.get('model_type')!r} is not supported",
            "only SigLIP vision towers (Gemma 3) are understood",
        )
    v = _HFConfig({**_SIGLIP_DEFAULTS, **vision}, path, "siglip", "vision_config.")
    hidden = v.integer("hidden_size")
    inner = v.integer("intermediate_size")
    patch = v.integer("patch_size")
    patches = (v.integer("image_size") // patch) ** 2
    embeddings = v.integer("num_channels") * patch * patch * hidden + hidden + patches * hidden
    per_layer = (
        4 * (hidden * hidden + hidden)  # q, k, v, out projections with bias
        + (hidden * inner + inner)
        + (inner * hidden + hidden)  # fc1, fc2
        + 2 * 2 * hidden  # two LayerNorms (weight and bias)
    )
    tower = embeddings + v.integer("num_hidden_layers") * per_layer + 2 * hidden  # post-LayerNorm
    projector = hidden * text_hidden + hidden  # mm_input_projection + mm_soft_emb_norm
    return tower + projector


def _index_total_size(index: dict[str, Any] | None, path: Path | None) -> int | None:
    if index is None:
        return None
    metadata = index.get("metadata")
    total = metadata.get("total_size") if isinstance(metadata, dict) else None
    if isinstance(total, bool) or not isinstance(total, int) or total <= 0:
        raise CatalogError(
            f"{path}: required key 'metadata.total_size' is missing or not a positive integer",
            "the file must be a model.safetensors.index.json",
        )
    return total


def _index_total_parameters(index: dict[str, Any] | None, path: Path | None) -> int | None:
    if index is None:
        return None
    metadata = index.get("metadata")
    total = metadata.get("total_parameters") if isinstance(metadata, dict) else None
    return total if isinstance(total, int) and not isinstance(total, bool) else None


# ------------------------------------------------------------ parameter estimates

# Families with four RMSNorms per layer (pre/post attention and feed-forward).
_SANDWICH_NORM_FAMILIES = frozenset({"gemma2", "gemma3"})
# Families that normalize queries and keys per head.
_QK_NORM_FAMILIES = frozenset({"qwen3", "qwen3_moe", "gemma3"})


def _attention_parameters(cfg: ModelConfig) -> int:
    h = cfg.hidden_size
    if cfg.mla is not None:
        m = cfg.mla
        q_dim = cfg.num_attention_heads * (m.qk_nope_head_dim + m.qk_rope_head_dim)
        if m.q_lora_rank is None:
            query = h * q_dim
        else:  # down-projection, its norm, up-projection
            query = h * m.q_lora_rank + m.q_lora_rank + m.q_lora_rank * q_dim
        kv = (
            h * (m.kv_lora_rank + m.qk_rope_head_dim)  # kv_a_proj_with_mqa
            + m.kv_lora_rank  # kv_a_layernorm
            + m.kv_lora_rank * cfg.num_attention_heads * (m.qk_nope_head_dim + m.v_head_dim)
        )
        return query + kv + cfg.num_attention_heads * m.v_head_dim * h
    q_dim = cfg.num_attention_heads * cfg.head_dim
    kv_dim = cfg.num_kv_heads * cfg.head_dim
    params = h * q_dim + 2 * h * kv_dim + q_dim * h
    if cfg.attention_bias:
        params += q_dim + 2 * kv_dim
    if cfg.family in _QK_NORM_FAMILIES:
        params += 2 * cfg.head_dim
    return params


def _layer_norm_parameters(cfg: ModelConfig) -> int:
    return (4 if cfg.family in _SANDWICH_NORM_FAMILIES else 2) * cfg.hidden_size


def _moe_layer_parameters(cfg: ModelConfig, moe: MoEConfig, experts: int) -> int:
    h = cfg.hidden_size
    params = experts * 3 * h * moe.moe_intermediate_size  # gate, up, down per expert
    params += h * moe.num_experts  # router
    if moe.shared_intermediate_size:
        params += 3 * h * moe.shared_intermediate_size
        if cfg.family == "qwen2_moe":
            params += h  # shared_expert_gate
    return params


def _parameters(cfg: ModelConfig, active_only: bool) -> int:
    h = cfg.hidden_size
    embeddings = cfg.vocab_size * h
    lm_head = 0 if cfg.tie_word_embeddings else cfg.vocab_size * h
    per_layer = _attention_parameters(cfg) + _layer_norm_parameters(cfg)
    dense_mlp = 3 * h * cfg.intermediate_size  # gate, up, down
    if cfg.moe is None:
        layers = cfg.num_layers * (per_layer + dense_mlp)
        moe_layer = 0
    else:
        moe = cfg.moe
        experts = moe.experts_per_token if active_only else moe.num_experts
        moe_layer = per_layer + _moe_layer_parameters(cfg, moe, experts)
        dense = moe.first_k_dense_layers
        layers = dense * (per_layer + dense_mlp) + (cfg.num_layers - dense) * moe_layer
    total = embeddings + lm_head + layers + h  # + final norm
    if cfg.mtp_layers and not active_only:
        # DeepSeek-V3 MTP module: one decoder layer, eh_proj, enorm/hnorm, its own norm,
        # and its copies of the embedding and output head as stored in the checkpoint.
        block = moe_layer or (per_layer + dense_mlp)
        total += cfg.mtp_layers * (block + 2 * h * h + 3 * h + 2 * cfg.vocab_size * h)
    if not active_only:
        total += cfg.vision_parameters
    return total


def estimate_num_parameters(cfg: ModelConfig) -> int:
    """Count a model's parameters from its architecture.

    Sums embeddings, attention (grouped-query or MLA, with biases and q/k norms
    where the family has them), dense MLPs (gate, up, down), MoE experts with the
    router and shared experts, norms, the LM head unless tied, DeepSeek's MTP
    modules and a vision tower when the checkpoint holds one. Quantization does
    not change the count (it is the unquantized model's size).

    Args:
        cfg: the model.

    Returns:
        The parameter count.
    """
    return _parameters(cfg, active_only=False)


def estimate_active_parameters(cfg: ModelConfig) -> int:
    """Count the parameters one token passes through (all of them for a dense model).

    For a MoE model only ``experts_per_token`` routed experts count; MTP modules
    and the vision tower are left out. Decode reads roughly these weights per step.

    Args:
        cfg: the model.

    Returns:
        The active parameter count.
    """
    return _parameters(cfg, active_only=True)
