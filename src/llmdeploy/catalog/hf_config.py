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

from ..records import record
from .types import CatalogError, MLAConfig, ModelConfig, MoEConfig, QuantizationConfig

# Model types read by explicit rules (anything else with the standard keys is read
# generically, with a warning saying what that approximates).
KNOWN_MODEL_TYPES = (
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
    "deepseek_v32",
    "kimi_k2",
    "glm4_moe",
    "gpt_oss",
    "llama4_text",
    "granite",
    "granitemoe",
    "granitemoeshared",
    "granitemoehybrid",
    "qwen3_next",
    "qwen3_vl_text",
    "qwen3_vl_moe_text",
    "phi",
)
# Kept for callers of the first release: the model types read exactly.
SUPPORTED_MODEL_TYPES = KNOWN_MODEL_TYPES
# Where multimodal checkpoints keep their language model's config.
_TEXT_SECTIONS = ("text_config", "llm_config", "language_config")
# Wrapper model types whose text_config names no model_type of its own.
_TEXT_MODEL_TYPE = {
    "gemma3": "gemma3_text",
    "llama4": "llama4_text",
    "qwen3_vl": "qwen3_vl_text",
    "qwen3_vl_moe": "qwen3_vl_moe_text",
    "mistral3": "mistral",
}

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
        "gpt_oss",
        "llama4_text",
        "glm4_moe",
        "kimi_k2",
        "deepseek_v32",
        "qwen3_next",
        "phi",
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
    "deepseek_v32": "DeepseekV32ForCausalLM",
    "kimi_k2": "DeepseekV3ForCausalLM",
    "glm4_moe": "Glm4MoeForCausalLM",
    "gpt_oss": "GptOssForCausalLM",
    "llama4_text": "Llama4ForCausalLM",
    "granite": "GraniteForCausalLM",
    "granitemoe": "GraniteMoeForCausalLM",
    "granitemoeshared": "GraniteMoeSharedForCausalLM",
    "granitemoehybrid": "GraniteMoeHybridForCausalLM",
    "qwen3_next": "Qwen3NextForCausalLM",
    "phi": "PhiForCausalLM",
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

    def first_key(self, keys: tuple[str, ...]) -> str | None:
        """The first of ``keys`` the config sets (or has a family default for)."""
        return next((k for k in keys if self.get(k) is not None), None)

    def first_int(self, keys: tuple[str, ...], default: int | None = None) -> int:
        """The first of ``keys`` that is set; a missing key is named by the first spelling."""
        key = self.first_key(keys)
        if key is None:
            if default is not None:
                return default
            raise self._missing(keys[0])
        return self.integer(key)


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

    Any decoder config with the standard keys is read (layers, hidden size, heads, KV
    heads, head size, intermediate size, vocabulary, tying, MoE experts/top-k/shared
    experts under their common names, sliding-window and layer-type patterns, the
    ``text_config`` of multimodal checkpoints and their vision tower). Architectures
    that really differ have their own rules: MLA (DeepSeek-V2/V3/V3.2, Kimi K2),
    hybrid Mamba/linear-attention state (Granite 4.0-H, Qwen3-Next, Jamba/Bamba),
    chunked local attention (Llama 4), per-layer KV sharing (Gemma 3n), attention
    sinks and MXFP4 experts (gpt-oss). A model type without explicit rules is read
    generically and :attr:`ModelConfig.approximations` says what that approximates
    (rule LD117 reports it). Nothing is downloaded.

    Args:
        config_path: the ``config.json``, or a folder holding it (and then, unless
            ``index_path`` is given, its ``model.safetensors.index.json`` if present).
        index_path: a ``model.safetensors.index.json`` whose ``metadata.total_size``
            becomes ``weight_bytes`` (the exact checkpoint size the sizing scales to).

    Returns:
        The model, with ``source`` set to the path read.

    Raises:
        CatalogError: the file is missing, not JSON, or lacks a standard key.
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
    for section in _TEXT_SECTIONS:
        if isinstance(top.get(section), dict):
            text_data = top[section]
            prefix = f"{section}."
            break
    model_type = text_data.get("model_type") or top.get("model_type")
    model_type = _TEXT_MODEL_TYPE.get(model_type, model_type) if isinstance(model_type, str) else None
    if not isinstance(model_type, str):
        raise CatalogError(
            f"{config_path}: required key 'model_type' is missing",
            "the file must be the model's config.json from the Hugging Face Hub",
        )
    notes: list[str] = []
    known = model_type in KNOWN_MODEL_TYPES
    if not known:
        notes.append(f"model_type {model_type!r} has no explicit rules: read by the standard "
                     "config.json keys, every layer sized as a dense or MoE decoder layer")
    cfg = _HFConfig(text_data, config_path, model_type, prefix)

    hidden = cfg.first_int(("hidden_size", "n_embd", "d_model"))
    layers = cfg.first_int(("num_hidden_layers", "n_layer", "num_layers", "n_layers"))
    heads = cfg.first_int(("num_attention_heads", "n_head", "num_heads"))
    kv_heads = cfg.first_int(("num_key_value_heads", "num_kv_heads", "n_head_kv",
                              "multi_query_group_num"), default=heads)
    if cfg.get("multi_query") is True and cfg.get("num_key_value_heads") is None:
        kv_heads = 1  # Falcon-style multi-query attention
    mla = _mla_from(cfg) if cfg.get("kv_lora_rank") is not None else None
    if mla is not None:
        head_dim = mla.qk_nope_head_dim + mla.qk_rope_head_dim
    else:
        head_dim = cfg.opt_integer("head_dim") or cfg.opt_integer("kv_channels") \
            or _derived_head_dim(hidden, heads, config_path)
    pattern = _layer_pattern(cfg, model_type, layers, notes)
    moe, dense_intermediate = _moe_from(cfg, model_type, layers, notes)
    intermediate = dense_intermediate if dense_intermediate is not None else _intermediate(cfg, hidden, notes)
    recurrent_state, recurrent_params = (0, 0)
    if pattern.recurrent:
        recurrent_state, recurrent_params = _recurrent_from(cfg, model_type, hidden, notes)

    architectures = top.get("architectures")
    if isinstance(architectures, list) and architectures and isinstance(architectures[0], str):
        architecture = architectures[0]
    else:
        architecture = _ARCHITECTURE_BY_TYPE.get(model_type) or (
            "".join(part.capitalize() for part in model_type.split("_")) + "ForCausalLM")
    if model_type in ("qwen2", "qwen2_moe", "qwen2_vl", "qwen2_5_vl"):
        attention_bias = True  # Qwen2 always has q/k/v biases; its config has no key for it
    else:
        attention_bias = bool(cfg.get("attention_bias", cfg.get("qkv_bias", cfg.get("bias", False))))
    if "tie_word_embeddings" in top or "tie_word_embeddings" in text_data:
        tie = top.get("tie_word_embeddings", text_data.get("tie_word_embeddings"))
    else:
        tie = model_type not in _UNTIED_BY_DEFAULT
        if not known:
            notes.append("tie_word_embeddings absent: taken as tied (transformers' default)")
    dtype = (
        top.get("torch_dtype")
        or top.get("dtype")
        or text_data.get("torch_dtype")
        or text_data.get("dtype")
        # gpt-oss's config names no dtype; its unquantized tensors are bfloat16 (and vLLM
        # serves it in bfloat16). Elsewhere transformers' default applies.
        or ("bfloat16" if model_type == "gpt_oss" else "float32")
    )
    max_pos = cfg.first_int(("max_position_embeddings", "n_positions", "max_sequence_length",
                             "seq_length", "model_max_length"), default=0)
    if not max_pos:
        max_pos = 2048
        notes.append("max_position_embeddings absent: 2048 assumed")
    index = _read_json(index_path, "safetensors index") if index_path is not None else None
    vision = _vision_parameters(top, hidden, config_path, notes)
    quant = _quantization_from(top.get("quantization_config") or text_data.get("quantization_config"),
                               config_path)
    if index is None and not known:
        notes.append("no model.safetensors.index.json: weights counted from the architecture, "
                     "not the checkpoint size")

    return ModelConfig(
        hf_id=_model_id(top, config_path),
        family=model_type.removesuffix("_text"),
        architecture=architecture,
        num_layers=layers,
        hidden_size=hidden,
        num_attention_heads=heads,
        num_kv_heads=kv_heads,
        head_dim=head_dim,
        intermediate_size=intermediate,
        vocab_size=cfg.first_int(("vocab_size", "padded_vocab_size")),
        tie_word_embeddings=bool(tie),
        max_position_embeddings=max_pos,
        torch_dtype=str(dtype),
        sliding_window=pattern.window,
        sliding_window_layers=pattern.sliding,
        moe=moe,
        mla=mla,
        quantization=quant,
        attention_bias=attention_bias,
        vision_parameters=vision,
        mtp_layers=cfg.opt_integer("num_nextn_predict_layers") or 0,
        num_parameters=_index_total_parameters(index, index_path),
        weight_bytes=_index_total_size(index, index_path),
        chunked_attention_size=pattern.chunk,
        chunked_attention_layers=pattern.chunked,
        recurrent_layers=pattern.recurrent,
        recurrent_state_elements=recurrent_state,
        recurrent_layer_parameters=recurrent_params,
        kv_shared_layers=pattern.kv_shared,
        attention_sinks=model_type == "gpt_oss",
        indexer_heads=cfg.opt_integer("index_n_heads") or 0,
        indexer_head_dim=cfg.opt_integer("index_head_dim") or 0,
        mlp_projections=_mlp_projections(cfg, model_type),
        approximations=tuple(notes),
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


@record
class _Pattern:
    """How many layers of each kind: the window, the chunk, and the counts."""

    window: int | None = None
    sliding: int = 0
    chunk: int | None = None
    chunked: int = 0
    recurrent: int = 0
    kv_shared: int = 0


# layer_types / layers_block_type spellings, by kind.
_SLIDING_KINDS = frozenset({"sliding_attention", "sliding", "local_attention", "local"})
_CHUNKED_KINDS = frozenset({"chunked_attention"})
_RECURRENT_KINDS = frozenset({"linear_attention", "mamba", "mamba2", "ssm", "recurrent", "gated_deltanet"})
_FULL_KINDS = frozenset({"full_attention", "attention", "global", "global_attention", "full"})


def _layer_kinds(kinds: list[Any], cfg: _HFConfig, notes: list[str]) -> _Pattern:
    window = cfg.opt_integer("sliding_window")
    sliding = sum(1 for k in kinds if k in _SLIDING_KINDS)
    chunked = sum(1 for k in kinds if k in _CHUNKED_KINDS)
    recurrent = sum(1 for k in kinds if k in _RECURRENT_KINDS)
    unknown = sorted({str(k) for k in kinds} - _SLIDING_KINDS - _CHUNKED_KINDS - _RECURRENT_KINDS - _FULL_KINDS)
    if unknown:
        notes.append(f"layer types {', '.join(unknown)} sized as full attention")
    if sliding and not window:
        notes.append("sliding-window layers without a sliding_window: sized as full attention")
        sliding = 0
    chunk = cfg.opt_integer("attention_chunk_size") if chunked else None
    return _Pattern(window if sliding else None, sliding, chunk, chunked if chunk else 0, recurrent)


def _layer_pattern(cfg: _HFConfig, model_type: str, layers: int, notes: list[str]) -> _Pattern:
    """Which layers slide, attend in chunks, keep a recurrent state or share KV."""
    kv_shared = cfg.opt_integer("num_kv_shared_layers") or 0  # Gemma 3n
    for key in ("layer_types", "layers_block_type"):
        kinds = cfg.data.get(key)
        if isinstance(kinds, list) and kinds:
            # Newer transformers spell the pattern out, one entry per layer.
            p = _layer_kinds(kinds[:layers], cfg, notes)
            return _Pattern(p.window, p.sliding, p.chunk, p.chunked, p.recurrent, kv_shared)
    interval = cfg.opt_integer("full_attention_interval")
    if interval:  # Qwen3-Next: every interval-th layer attends, the rest are gated DeltaNet
        full = sum(1 for i in range(layers) if (i + 1) % interval == 0)
        return _Pattern(recurrent=layers - full, kv_shared=kv_shared)
    period = cfg.opt_integer("attn_layer_period")
    if period:  # Jamba: attention at attn_layer_offset of every period, Mamba elsewhere
        offset = cfg.integer("attn_layer_offset", default=0)
        attention = sum(1 for i in range(layers) if i % period == offset)
        return _Pattern(recurrent=layers - attention, kv_shared=kv_shared)
    pattern = cfg.get("hybrid_override_pattern")
    if isinstance(pattern, str) and pattern:  # Nemotron-H: M = Mamba2, * = attention
        notes.append("hybrid_override_pattern: MLP-only layers ('-') sized as attention layers")
        return _Pattern(recurrent=pattern[:layers].count("M"), kv_shared=kv_shared)
    chunk = cfg.opt_integer("attention_chunk_size")
    if chunk and model_type == "llama4_text":
        # Llama 4: layers with RoPE attend within a chunk, the NoPE ones (every 4th by
        # default) globally (transformers Llama4TextConfig.no_rope_layers; vLLM uses
        # ChunkedLocalAttention for the RoPE layers).
        no_rope = cfg.get("no_rope_layers")
        if isinstance(no_rope, list) and no_rope:
            chunked = sum(1 for flag in no_rope[:layers] if flag)
        else:
            step = cfg.integer("no_rope_layer_interval", default=4)
            chunked = sum(1 for i in range(layers) if (i + 1) % step != 0)
        return _Pattern(chunk=chunk, chunked=chunked, kv_shared=kv_shared)
    window, sliding = _sliding_window_legacy(cfg, model_type, layers, notes)
    return _Pattern(window, sliding, kv_shared=kv_shared)


def _sliding_window_legacy(cfg: _HFConfig, model_type: str, layers: int, notes: list[str]) -> tuple[int | None, int]:
    """(window, windowed layers) for configs without layer_types, by each family's rule."""
    window = cfg.opt_integer("sliding_window")
    if window is None:
        return None, 0
    if model_type.startswith(("qwen2", "qwen3")):
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
    if model_type in KNOWN_MODEL_TYPES:
        return None, 0  # Llama, Gemma 1, DeepSeek: no sliding window
    pattern = cfg.get("sliding_window_pattern")
    if isinstance(pattern, int) and pattern > 1:
        return window, layers - layers // pattern
    notes.append(f"sliding_window {window} without a layer pattern: every layer taken as windowed")
    return window, layers


def _intermediate(cfg: _HFConfig, hidden: int, notes: list[str]) -> int:
    key = cfg.first_key(("intermediate_size", "ffn_hidden_size", "n_inner", "ffn_dim"))
    if key is not None:
        return cfg.integer(key)
    notes.append("intermediate_size absent: 4 x hidden_size assumed")
    return 4 * hidden


def _mlp_projections(cfg: _HFConfig, model_type: str) -> int:
    """3 weight matrices for gated MLPs (SwiGLU/GeGLU), 2 for plain fc1/fc2 ones."""
    if model_type in KNOWN_MODEL_TYPES:
        return 2 if model_type == "phi" else 3
    act = str(cfg.get("hidden_act") or cfg.get("activation_function") or "silu").lower()
    return 3 if act in ("silu", "swiglu", "geglu", "gelu_pytorch_tanh", "swish") else 2


_EXPERT_KEYS = ("num_local_experts", "num_experts", "n_routed_experts", "moe_num_experts")
_TOPK_KEYS = ("num_experts_per_tok", "experts_per_token", "moe_topk", "num_selected_experts", "top_k")


def _moe_from(cfg: _HFConfig, model_type: str, layers: int, notes: list[str]) -> tuple[MoEConfig | None, int | None]:
    """The MoE layout by the common key names, and the dense MLP size when it has its own key."""
    key = cfg.first_key(_EXPERT_KEYS)
    experts = cfg.integer(key) if key else 0
    if model_type == "granitemoehybrid" and not experts:
        # Granite 4.0-H dense models: the "shared" MLP is the only MLP.
        return None, cfg.opt_integer("shared_intermediate_size")
    if not experts or (isinstance(experts, int) and experts <= 1):
        return None, None
    top_k = cfg.first_int(_TOPK_KEYS)
    if model_type == "llama4_text":
        # Every MoE layer also runs one shared expert of intermediate_size; the dense
        # layers (interleave_moe_layer_step > 1) use intermediate_size_mlp.
        step = cfg.integer("interleave_moe_layer_step", default=1)
        sparse = sum(1 for i in range(layers) if (i + 1) % step == 0)
        inner = cfg.integer("intermediate_size")
        return MoEConfig(experts, top_k, inner, 1, layers - sparse, inner), cfg.integer("intermediate_size_mlp")
    moe_inner = cfg.opt_integer("moe_intermediate_size") or cfg.opt_integer("expert_intermediate_size")
    if moe_inner is None:
        moe_inner = cfg.integer("intermediate_size")  # Mixtral, gpt-oss, Granite MoE: experts use it
    shared_count = cfg.first_int(("n_shared_experts", "num_shared_experts", "shared_experts"), default=0)
    shared_size = cfg.opt_integer("shared_expert_intermediate_size") or cfg.opt_integer("shared_intermediate_size")
    if shared_size and not shared_count:
        shared_count = 1
    if cfg.get("mlp_only_layers") is not None or cfg.get("decoder_sparse_step") is not None:
        step = cfg.integer("decoder_sparse_step", default=1)
        dense_only = cfg.get("mlp_only_layers") or []
        sparse = sum(1 for i in range(layers) if i not in dense_only and (i + 1) % step == 0)
    elif cfg.get("first_k_dense_replace") is not None or cfg.get("moe_layer_freq") is not None:
        first_k = cfg.integer("first_k_dense_replace", default=0)
        freq = cfg.integer("moe_layer_freq", default=1)
        sparse = sum(1 for i in range(layers) if i >= first_k and i % freq == 0)
    else:
        sparse = layers
    if model_type not in KNOWN_MODEL_TYPES:
        notes.append(f"MoE read from {key}/{cfg.first_key(_TOPK_KEYS)}: {experts} experts, top-{top_k}")
    return MoEConfig(
        num_experts=experts,
        experts_per_token=top_k,
        moe_intermediate_size=moe_inner,
        num_shared_experts=shared_count,
        first_k_dense_layers=layers - sparse,
        shared_expert_intermediate_size=shared_size or None,
    ), None


def _recurrent_from(cfg: _HFConfig, model_type: str, hidden: int, notes: list[str]) -> tuple[int, int]:
    """(state elements per layer and sequence, parameters per layer) of a recurrent mixer.

    * Gated DeltaNet (Qwen3-Next): conv state ``(k - 1) × (2·Hk·Dk + Hv·Dv)`` plus the
      recurrent state ``Hv × Dk × Dv`` (vllm/model_executor/layers/mamba/mamba_utils.py
      ``gated_delta_net_state_shape``).
    * Mamba2 (Granite 4.0-H, Bamba, Nemotron-H): conv state ``(d_conv - 1) × (d_inner +
      2·groups·d_state)`` plus the SSM state ``heads × head_dim × d_state``
      (``mamba2_state_shape``).
    * Mamba1 (Jamba): ``(d_conv - 1) × d_inner`` plus ``d_inner × d_state``.
    """
    if cfg.get("linear_num_value_heads") is not None:
        kh, kd = cfg.integer("linear_num_key_heads"), cfg.integer("linear_key_head_dim")
        vh, vd = cfg.integer("linear_num_value_heads"), cfg.integer("linear_value_head_dim")
        k = cfg.integer("linear_conv_kernel_dim", default=4)
        conv_dim = 2 * kh * kd + vh * vd
        state = (k - 1) * conv_dim + vh * kd * vd
        params = (hidden * (2 * kh * kd + 2 * vh * vd) + hidden * 2 * vh + conv_dim * k
                  + 2 * vh + vd + vh * vd * hidden)
        return state, params
    d_state = cfg.first_int(("mamba_d_state", "state_size", "ssm_state_size", "d_state"), default=128)
    d_conv = cfg.first_int(("mamba_d_conv", "conv_kernel", "d_conv"), default=4)
    heads = cfg.opt_integer("mamba_n_heads") or cfg.opt_integer("mamba_num_heads")
    if heads:
        head_dim = cfg.first_int(("mamba_d_head", "mamba_head_dim"), default=64)
        groups = cfg.first_int(("mamba_n_groups", "n_groups"), default=1)
        inner = heads * head_dim
        conv_dim = inner + 2 * groups * d_state
        state = (d_conv - 1) * conv_dim + heads * head_dim * d_state
        params = (hidden * (2 * inner + 2 * groups * d_state + heads) + conv_dim * (d_conv + 1)
                  + 3 * heads + inner + inner * hidden)
        return state, params
    expand = cfg.first_int(("mamba_expand", "expand"), default=2)
    inner = expand * hidden
    dt_rank = cfg.opt_integer("mamba_dt_rank") or -(-hidden // 16)
    notes.append("Mamba (v1) state and mixer parameters from mamba_d_state/d_conv/expand")
    state = (d_conv - 1) * inner + inner * d_state
    params = (hidden * 2 * inner + inner * (d_conv + 1) + inner * (dt_rank + 2 * d_state)
              + dt_rank * inner + inner + inner * d_state + inner + inner * hidden)
    return state, params


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
    scheme: str | None = None
    experts_only = False
    if method == "compressed-tensors":
        # llm-compressor: per-group schemes under config_groups.<name>.weights.
        groups = raw.get("config_groups")
        schemes = [g for g in (groups.values() if isinstance(groups, dict) else []) if isinstance(g, dict)]
        weights: list[dict[str, Any]] = [g["weights"] for g in schemes if isinstance(g.get("weights"), dict)]
        if weights:
            w = weights[0]
            bits = w.get("num_bits")
            group_size = w.get("group_size")
            acts = schemes[0].get("input_activations")
            kind = w.get("type", "int")
            if kind == "float" and bits == 4:
                scheme = "nvfp4"  # nvfp4-pack-quantized: FP4 E2M1, an FP8 scale per 16
            elif kind == "float" and bits == 8:
                scheme = "fp8-block" if w.get("strategy") == "block" else "fp8-channel"
            elif bits == 8:
                scheme = "w8a8-int8" if isinstance(acts, dict) else "w8a16"
            elif bits == 4:
                scheme = "w4a16"
    elif method in ("fp8", "fbgemm_fp8"):
        bits = 8
        scheme = "fp8-block" if raw.get("weight_block_size") else "fp8-channel"
    elif method == "mxfp4":
        # gpt-oss: FP4 E2M1 experts with an E8M0 scale per 32 weights; vLLM's Mxfp4Config
        # quantizes only FusedMoE layers (vllm/model_executor/layers/quantization/mxfp4.py).
        bits, group_size, scheme, experts_only = 4, 32, "mxfp4", True
    elif method == "modelopt":
        algo = str(raw.get("quant_algo", "")).upper()
        if algo == "NVFP4":
            bits, group_size, scheme = 4, group_size or 16, "nvfp4"
        elif algo.startswith("FP8"):
            bits, scheme = 8, "fp8-channel"
    elif method == "bitsandbytes":
        bits = 4 if raw.get("load_in_4bit") else 8
    return QuantizationConfig(
        method=method,
        bits=bits if isinstance(bits, int) and not isinstance(bits, bool) else None,
        group_size=group_size if isinstance(group_size, int) and group_size > 0 else None,
        scheme=scheme,
        experts_only=experts_only,
    )


def _vision_parameters(top: dict[str, Any], text_hidden: int, path: Path, notes: list[str]) -> int:
    """Count the vision tower and projector; 0 for text-only configs.

    SigLIP (Gemma 3) is counted exactly; any other ``vision_config`` as a stack of
    standard transformer blocks with a patch embedding and a two-layer projector
    (the note says so).
    """
    vision = top.get("vision_config")
    if not isinstance(vision, dict):
        return 0
    if vision.get("model_type") != "siglip_vision_model":
        return _generic_vision_parameters(vision, text_hidden, path, notes)
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


def _generic_vision_parameters(vision: dict[str, Any], text_hidden: int, path: Path, notes: list[str]) -> int:
    v = _HFConfig(vision, path, str(vision.get("model_type", "vision")), "vision_config.")
    hidden = v.first_int(("hidden_size", "embed_dim", "width", "hidden_dim"))
    layers = v.first_int(("num_hidden_layers", "depth", "num_layers"))
    inner = v.first_int(("intermediate_size", "mlp_dim", "ffn_dim"), default=4 * hidden)
    patch = v.first_int(("patch_size",), default=14)
    channels = v.first_int(("num_channels", "in_channels", "in_chans"), default=3)
    temporal = v.first_int(("temporal_patch_size",), default=1)
    merge = v.first_int(("spatial_merge_size",), default=1)
    out = v.first_int(("out_hidden_size", "projector_output_dim", "output_dim"), default=text_hidden)
    per_layer = 4 * (hidden * hidden + hidden) + 2 * hidden * inner + inner + hidden + 4 * hidden
    embed = channels * patch * patch * temporal * hidden
    merged = hidden * merge * merge
    projector = merged * merged + merged + merged * out + out  # two-layer MLP after the merge
    notes.append(f"vision tower ({vision.get('model_type', 'vision_config')}) counted as {layers} "
                 "standard transformer blocks plus a two-layer projector")
    return embed + layers * per_layer + projector


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
