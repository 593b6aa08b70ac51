"""A model's architecture read from a local Hugging Face ``config.json``.

For a model the catalog lacks: :func:`model_from_hf_config` reads the ``config.json``
(and, when there is one, ``model.safetensors.index.json`` for the checkpoint size)
from disk and returns the same :class:`~.types.ModelConfig` a catalog entry has.
Nothing is downloaded, ever.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from .types import CatalogError, MLAConfig, ModelConfig, MoEConfig, QuantizationConfig

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
_HF_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+\Z")


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
