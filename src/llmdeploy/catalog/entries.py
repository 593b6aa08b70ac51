"""The built-in catalogs: loading ``gpus.yaml`` and ``models.yaml``, and looking entries up.

Each file loads on first use and is cached for the life of the process; importing
this module does no I/O. Lookups are case-insensitive and accept aliases (GPUs also
their driver name and GPU-feature-discovery product label); an unknown key gets a
did-you-mean hint.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any, Generic, TypeVar

from ..errors import InternalError
from ..records import record
from .types import (
    GPU,
    NODE_LABEL_KEYS,
    CatalogError,
    MLAConfig,
    ModelConfig,
    MoEConfig,
    QuantizationConfig,
)

_HERE = Path(__file__).resolve().parent
GPU_CATALOG_PATH = _HERE / "gpus.yaml"
MODEL_CATALOG_PATH = _HERE / "models.yaml"


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
        choices = _gpu_families().get(_normalize(key))
        if choices:
            listing = ", ".join(f"{c!r} ({index.entries[c].name}, {index.entries[c].memory_mib} MiB)"
                                for c in choices)
            raise CatalogError(
                f"GPU type {key!r} is ambiguous: it names {listing}",
                "did you mean " + " or ".join(repr(c) for c in choices)
                + "? write the exact key (sizes differ between the variants)",
            )
        raise CatalogError(
            f"unknown GPU type {key!r}",
            _did_you_mean(key, index.suggestions, "llmdeploy catalog gpus"),
        )
    return index.entries[found]


def gpu_family_choices(key: str) -> tuple[str, ...]:
    """The catalog keys an ambiguous GPU name (``a100``, ``h100``) covers; empty if none."""
    return _gpu_families().get(_normalize(key), ())


@cache
def _gpu_families() -> Mapping[str, tuple[str, ...]]:
    out: dict[str, list[str]] = {}
    for gpu in _gpu_index().entries.values():
        for family in gpu.families:
            out.setdefault(_normalize(family), []).append(gpu.key)
    return MappingProxyType({k: tuple(v) for k, v in out.items()})


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
        hint = _did_you_mean(key_or_hf_id, _related_models(key_or_hf_id, index.suggestions),
                             "llmdeploy catalog models")
        hint += ("; for a model the catalog lacks, download its config.json and set model.config: "
                 "<path to config.json> in the spec (`llmdeploy init --model-config path/to/config.json` "
                 "writes one; `llmdeploy size --model path/to/config.json` sizes it)")
        raise CatalogError(f"unknown model {key_or_hf_id!r}", hint)
    return index.entries[found]


_SIZE = re.compile(r"(?<![a-z0-9.])(\d+(?:\.\d+)?(?:x\d+(?:\.\d+)?)?)b(?![a-z])")


def _related_models(key: str, names: Mapping[str, str]) -> Mapping[str, str]:
    """The names of catalog models a "did you mean" may propose for ``key``.

    Spelling alone proposes unrelated models (``granite-3.1-8b`` is as close to
    ``Llama-3.1-8B`` as to ``granite-3.3-8b``). A proposal must come from the same
    publisher (the part before ``/``) when ``key`` names one, and have the same parameter
    count (``8b``, ``8x7b``) when ``key`` names one: a model of another (or an unstated)
    size is another model, with other memory needs, never the one meant.
    """
    probe = _normalize(key)
    org = probe.split("/", 1)[0] if "/" in probe else None
    size = _SIZE.findall(probe.rsplit("/", 1)[-1])
    out = {}
    for name, hf_id in names.items():
        target = _normalize(hf_id)
        if org is not None and target.split("/", 1)[0] != org:
            continue
        target_size = _SIZE.findall(target.rsplit("/", 1)[-1])
        if size and target_size[:1] != size[:1]:
            continue
        out[name] = hf_id
    return out


def _normalize(key: str) -> str:
    return key.strip().lower()


def _did_you_mean(key: str, names: Mapping[str, str], list_command: str) -> str:
    """Suggest up to three entries whose key or alias is close to ``key``."""
    from ..diagnostics import close_matches

    close = close_matches(_normalize(key), names, n=6)
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
_KEBAB = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*\Z")


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
        families=entry.texts("families"),
        memory_mib=entry.integer("memory_mib"),
        memory_bandwidth_gbs=entry.number("memory_bandwidth_gbs"),
        fp16_tflops=entry.number("fp16_tflops"),
        bf16_tflops=entry.opt_number("bf16_tflops"),
        fp8_tflops=entry.opt_number("fp8_tflops"),
        fp4_tflops=entry.opt_number("fp4_tflops"),
        fp8=entry.flag("fp8"),
        fp8_weight_only=entry.flag("fp8_weight_only"),
        compute_capability=entry.text("compute_capability"),
        interconnect=interconnect,
        interconnect_gbs=entry.number("interconnect_gbs"),
        gpus_per_node=entry.integer("gpus_per_node"),
        nvlink_domain=entry.opt_integer("nvlink_domain"),
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
    for gpu in entries.values():
        for family in gpu.families:
            if _normalize(family) in lookup:
                raise InternalError(f"{path}: family {family!r} of {gpu.key!r} is also a GPU key or alias")
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
        scheme=entry.opt_text("scheme"),
        experts_only=entry.flag("experts_only") if entry.has("experts_only") else False,
    )


def _opt_int(entry: _Entry, key: str, default: int = 0) -> int:
    return entry.integer(key) if entry.has(key) else default


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
        mtp_layers=_opt_int(entry, "mtp_layers"),
        chunked_attention_size=entry.opt_integer("chunked_attention_size"),
        chunked_attention_layers=_opt_int(entry, "chunked_attention_layers"),
        recurrent_layers=_opt_int(entry, "recurrent_layers"),
        recurrent_state_elements=_opt_int(entry, "recurrent_state_elements"),
        recurrent_layer_parameters=_opt_int(entry, "recurrent_layer_parameters"),
        kv_shared_layers=_opt_int(entry, "kv_shared_layers"),
        attention_sinks=entry.flag("attention_sinks") if entry.has("attention_sinks") else False,
        indexer_heads=_opt_int(entry, "indexer_heads"),
        indexer_head_dim=_opt_int(entry, "indexer_head_dim"),
        mlp_projections=_opt_int(entry, "mlp_projections", 3),
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
    if (model.chunked_attention_size is None) != (model.chunked_attention_layers == 0):
        problems.append("chunked_attention_size and chunked_attention_layers must be set together")
    if bool(model.recurrent_layers) != bool(model.recurrent_state_elements):
        problems.append("recurrent_layers and recurrent_state_elements must be set together")
    if model.full_attention_layers < 0:
        problems.append("sliding, chunked, recurrent and KV-shared layers exceed num_layers")
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
