"""vLLM's memory split, one pure formula per term (docs/sizing.md has the derivations).

Everything here is arithmetic on the model architecture, the GPU and the engine
version's :class:`~llmdeploy.engines.memory_model.MemoryModel`; nothing reads files. Sizes
are bytes per GPU unless a name says otherwise. The engine under test is vLLM; TGI
reuses the same terms with its own constants.

The budget every vLLM release since 0.6.4 applies (vllm/worker/worker.py
``determine_num_available_blocks`` in V0, vllm/v1/worker/gpu_worker.py
``determine_available_memory`` in V1)::

    kv_cache = total × gpu_memory_utilization
               − weights − peak activation of the profile run − non-torch memory
               − CUDA-graph memory            (only from v0.21.0, vllm#30515)
    tokens   = floor(kv_cache / (bytes_per_token × block_size)) × block_size
"""

from __future__ import annotations

import math
from dataclasses import replace
from functools import lru_cache

from ..catalog import GPU, ModelConfig, estimate_num_parameters
from ..engines.memory_model import MemoryModel
from ..records import record

GIB = 2**30
MIB = 2**20

__all__ = [
    "GIB",
    "MIB",
    "Quantization",
    "StageLayout",
    "activation_bytes",
    "cuda_graph_bytes",
    "cuda_graph_sizes",
    "cuda_total_bytes",
    "dtype_bytes",
    "guides_kv_bytes_per_token",
    "kv_bytes_per_token",
    "kv_tokens",
    "non_torch_bytes",
    "pipeline_stages",
    "request_kv_bytes",
    "resolve_dtype",
    "resolve_quantization",
    "rope_cache_bytes",
    "weight_bytes_per_param",
    "weights_per_stage",
]

# Bytes per element of the dtypes vLLM's --dtype accepts.
_DTYPE_BYTES = {"float32": 4, "float": 4, "bfloat16": 2, "float16": 2, "half": 2}

# Block-wise quantization tile of the FP8 checkpoints DeepSeek and Qwen publish
# ("weight_block_size": [128, 128]); one fp32 scale per tile.
FP8_BLOCK = 128 * 128
# bitsandbytes 4-bit (NF4) stores one fp32 absmax per block of 64 weights
# (bitsandbytes.functional.quantize_4bit, blocksize=64).
BNB4_BLOCK = 64
# vLLM pads embedding and LM-head rows to a multiple of 64 per rank
# (vllm/model_executor/layers/vocab_parallel_embedding.py, DEFAULT_VOCAB_PADDING_SIZE).
VOCAB_PADDING = 64


def dtype_bytes(dtype: str) -> int:
    """Bytes per element of a torch dtype name (``bfloat16`` → 2)."""
    return _DTYPE_BYTES.get(dtype.lower().removeprefix("torch."), 2)


def cuda_total_bytes(gpu: GPU, mm: MemoryModel) -> int:
    """Memory CUDA lets a process use: the driver's figure minus what it keeps back.

    ``nvidia-smi`` reports 81,559 MiB on an H100 80GB but ``torch.cuda.mem_get_info()``
    79.19 GiB (tests/data/vllm_logs/v0190_*), and 24,576 MiB vs 23.58 GiB on an RTX 3090
    (v064_*); ``cuda_reserved_gib`` is that difference.
    """
    return int(gpu.memory_mib * MIB - mm.cuda_reserved_gib * GIB)


def resolve_dtype(model: ModelConfig, dtype: str, gpu: GPU) -> str:
    """The dtype vLLM computes in: ``auto`` follows the checkpoint, bf16 falls back to fp16 without bf16.

    vLLM's ``auto`` takes ``torch_dtype`` from config.json, except that float32
    checkpoints are served in 16 bit and bfloat16 becomes float16 on GPUs without
    bfloat16 (compute capability < 8.0) (vllm/config ``_get_and_verify_dtype``).
    """
    if dtype != "auto":
        return dtype
    d = (model.torch_dtype or "bfloat16").lower().removeprefix("torch.")
    if d in ("float32", "float"):
        d = "bfloat16" if gpu.supports_bf16 else "float16"
    if d == "bfloat16" and not gpu.supports_bf16:
        d = "float16"
    return d if d in _DTYPE_BYTES else "bfloat16"


# --------------------------------------------------------------------------- quantization


@record
class Quantization:
    """How the linear layers of the served model are stored.

    Attributes:
        method: ``none``, ``fp8``, ``int8``, ``awq``, ``gptq``, ``bitsandbytes``,
            ``fbgemm_fp8`` or ``compressed-tensors``.
        bits: bits per quantized weight (16 when not quantized).
        group_size: quantization group of int4 methods (scale and zero per group).
        block_fp8: FP8 with 128×128 block scales (DeepSeek/Qwen checkpoints).
        from_checkpoint: the checkpoint is already quantized (else: at load time).
        mlp_only: only MLP weights are quantized and the first/last layer stay 16-bit
            (Meta's FBGEMM FP8 405B checkpoint).
    """

    method: str = "none"
    bits: int = 16
    group_size: int | None = None
    block_fp8: bool = False
    from_checkpoint: bool = False
    mlp_only: bool = False

    @property
    def quantized(self) -> bool:
        """Whether any linear weight is stored below 16 bits."""
        return self.bits < 16

    @property
    def label(self) -> str:
        """Short description for reports (``awq int4 g128``)."""
        if not self.quantized:
            return "none"
        extra = f" g{self.group_size}" if self.group_size else ""
        if self.block_fp8:
            extra = " block-128"
        where = "checkpoint" if self.from_checkpoint else "at load"
        return f"{self.method} {self.bits}-bit{extra} ({where})"


def resolve_quantization(model: ModelConfig, requested: str) -> Quantization:
    """The quantization vLLM will run: the checkpoint's when it has one, else the requested one.

    A pre-quantized checkpoint carries ``quantization_config`` and vLLM follows it
    whatever ``--quantization`` says (awq → awq_marlin on Ampere+ keeps the same bytes).
    On an unquantized checkpoint only ``fp8`` (dynamic, per-tensor) and
    ``bitsandbytes`` (in-flight NF4) quantize at load; AWQ/GPTQ/int8 cannot be
    produced on the fly (rule LD208), so the model is sized unquantized then.
    """
    q = model.quantization
    if q is not None:
        method = q.method.lower()
        bits = q.bits or 16
        if method in ("awq", "awq_marlin"):
            return Quantization("awq", bits if q.bits else 4, q.group_size or 128, from_checkpoint=True)
        if method in ("gptq", "gptq_marlin"):
            return Quantization("gptq", bits if q.bits else 4, q.group_size or 128, from_checkpoint=True)
        if method == "fp8":
            # quant_method "fp8" checkpoints of DeepSeek/Qwen use 128x128 weight blocks.
            return Quantization("fp8", 8, None, block_fp8=True, from_checkpoint=True)
        if method == "fbgemm_fp8":
            return Quantization("fbgemm_fp8", 8, None, from_checkpoint=True, mlp_only=True)
        if method == "bitsandbytes":
            return Quantization("bitsandbytes", bits if q.bits else 4, None, from_checkpoint=True)
        if method == "compressed-tensors":
            b = q.bits or 8
            return Quantization("compressed-tensors", b, q.group_size if b < 8 else None, from_checkpoint=True)
        return Quantization(method, bits, q.group_size, from_checkpoint=True)
    r = requested.lower()
    if r == "fp8":
        return Quantization("fp8", 8, None)
    if r == "bitsandbytes":
        return Quantization("bitsandbytes", 4, None)
    return Quantization()


def weight_bytes_per_param(q: Quantization, act_bytes: int) -> float:
    """Bytes per weight of a quantized linear layer, scales and zero points included.

    * 16-bit: the dtype's size.
    * FP8/INT8: 1 byte, plus one fp32 scale per 128×128 block for block FP8
      (per-tensor or per-channel scales are negligible).
    * AWQ/GPTQ int4 with group g: 0.5 byte plus, per group of g input rows and per
      output column, an fp16 scale (2 B) and a packed 4-bit zero point (0.5 B):
      ``0.5 + 2.5/g`` (≈ +3.9 % at g = 128) (AutoAWQ/GPTQ tensor layout: qweight,
      scales, qzeros).
    * bitsandbytes NF4: 0.5 byte plus an fp32 absmax per block of 64.
    """
    if not q.quantized:
        return float(act_bytes)
    if q.method == "bitsandbytes":
        return 0.5 + 4 / BNB4_BLOCK if q.bits == 4 else 1.0
    if q.bits >= 8:
        return q.bits / 8 + (4 / FP8_BLOCK if q.block_fp8 else 0.0)
    group = q.group_size or 128
    return q.bits / 8 + 2.5 / group


# --------------------------------------------------------------------------- layout


@record
class StageLayout:
    """Which decoder layers one pipeline stage holds.

    Attributes:
        index: stage number (0 = first).
        first_layer: index of the first decoder layer of the stage.
        num_layers: decoder layers on the stage.
        is_first: holds the embeddings (and a vision tower).
        is_last: holds the final norm, the LM head and runs the sampler.
    """

    index: int
    first_layer: int
    num_layers: int
    is_first: bool
    is_last: bool


def pipeline_stages(num_layers: int, pp: int, remainder: str = "before_last") -> tuple[StageLayout, ...]:
    """Split layers over pipeline stages the way vLLM does.

    vllm/distributed/utils.py ``get_pp_indices``: every stage gets ``L // pp`` layers.
    Up to 0.7 the last stage took the remainder (``remainder="last"``); later releases
    give one extra layer each to the stages before the last, counting backwards from
    the second-to-last (the last stage also carries the LM head and the sampler).
    """
    pp = max(1, min(pp, num_layers))
    parts = [num_layers // pp] * pp
    if remainder == "last":
        parts[-1] += num_layers % pp
    else:
        for i in range(2, num_layers % pp + 2):
            parts[-i] += 1
    out, start = [], 0
    for i, n in enumerate(parts):
        out.append(StageLayout(i, start, n, i == 0, i == pp - 1))
        start += n
    return tuple(out)


def _kv_heads_per_rank(model: ModelConfig, tp: int) -> float:
    """KV heads one rank holds: ``kv_heads / TP``, at least one (replicated when TP > kv_heads).

    vllm/model_executor/layers/linear.py ``QKVParallelLinear``: with TP ≥ kv heads
    each rank keeps one head and ``num_kv_head_replicas = TP / kv_heads``.
    """
    return max(1.0, model.num_kv_heads / tp)


def _is_moe_layer(model: ModelConfig, layer: int) -> bool:
    return model.moe is not None and layer >= model.moe.first_k_dense_layers


@record
class _LayerParams:
    """Parameters one rank holds for one decoder layer, by storage class."""

    attn_linear: float  # attention projections (quantized unless mlp_only)
    mlp_linear: float  # dense MLP / experts / shared experts
    plain: float  # norms, biases, router: always 16-bit


@lru_cache(maxsize=4096)
def _layer_params(model: ModelConfig, tp: int, moe_layer: bool) -> _LayerParams:
    """One decoder layer's parameters on one TP rank (vLLM's tensor-parallel layers)."""
    h = model.hidden_size
    plain: float = (4 if model.family in ("gemma2", "gemma3") else 2) * h  # RMSNorms, replicated
    if model.mla is not None:
        m = model.mla
        n_rank = model.num_attention_heads / tp
        qk = m.qk_nope_head_dim + m.qk_rope_head_dim
        if m.q_lora_rank:
            # q_a_proj is a ReplicatedLinear (every rank holds it); q_b_proj is split.
            attn = h * m.q_lora_rank + m.q_lora_rank * n_rank * qk
            plain += m.q_lora_rank
        else:
            attn = h * n_rank * qk
        # kv_a_proj_with_mqa is replicated; kv_b_proj and o_proj are split.
        attn += h * (m.kv_lora_rank + m.qk_rope_head_dim)
        attn += m.kv_lora_rank * n_rank * (m.qk_nope_head_dim + m.v_head_dim)
        attn += n_rank * m.v_head_dim * h
        plain += m.kv_lora_rank
    else:
        q_dim = model.num_attention_heads * model.head_dim / tp
        kv_dim = _kv_heads_per_rank(model, tp) * model.head_dim
        attn = h * q_dim + 2 * h * kv_dim + q_dim * h
        if model.attention_bias:
            plain += q_dim + 2 * kv_dim
        if model.family in ("qwen3", "qwen3_moe", "gemma3"):
            plain += 2 * model.head_dim  # q_norm, k_norm
    if moe_layer and model.moe is not None:
        moe = model.moe
        mlp = moe.num_experts * 3 * h * moe.moe_intermediate_size / tp
        mlp += 3 * h * moe.shared_intermediate_size / tp
        plain += h * moe.num_experts  # router (ReplicatedLinear, never quantized)
        if model.family == "qwen2_moe" and moe.shared_intermediate_size:
            plain += h  # shared_expert_gate
    else:
        mlp = 3 * h * model.intermediate_size / tp
    return _LayerParams(attn, mlp, plain)


def _padded_vocab(vocab: int, tp: int) -> int:
    unit = VOCAB_PADDING * tp
    return math.ceil(vocab / unit) * unit


def rope_cache_bytes(model: ModelConfig, act_bytes: int) -> int:
    """The rotary cos/sin cache vLLM allocates with the model.

    ``RotaryEmbedding`` keeps a ``(max_position, rotary_dim)`` cache in the model dtype
    (vllm/model_executor/layers/rotary_embedding.py); Llama-3.1-8B's 131,072 × 128 × 2 B
    = 32 MiB is exactly the gap between its 14.957 GiB checkpoint and the 14.99 GiB vLLM
    logs (tests/data/vllm_logs/v0190_llama31_8b_h100_len16k.yaml). Gemma 3 has two
    (local and global theta). Models with learned positions (OPT) have none.
    """
    if model.family in ("opt", "gpt2"):
        return 0
    rotary = model.mla.qk_rope_head_dim if model.mla is not None else model.head_dim
    variants = 2 if model.family == "gemma3" else 1
    return model.max_position_embeddings * rotary * act_bytes * variants


def _stage_layer_counts(model: ModelConfig, stage: StageLayout) -> tuple[int, int]:
    """(dense layers, MoE layers) on a stage; MoE layers follow the first-k dense ones."""
    k = model.moe.first_k_dense_layers if model.moe is not None else model.num_layers
    start, end = stage.first_layer, stage.first_layer + stage.num_layers
    dense = max(0, min(end, k) - start)
    return dense, stage.num_layers - dense


@lru_cache(maxsize=4096)
def _stage_params(
    model: ModelConfig, tp: int, stage: StageLayout, pp: int, *, pad: bool
) -> tuple[float, float, float]:
    """(linear params, MLP linear params outside the first/last layer, 16-bit params) of one rank."""
    dense_n, moe_n = _stage_layer_counts(model, stage)
    dense = _layer_params(model, tp, False)
    moe = _layer_params(model, tp, True)
    linear = dense_n * (dense.attn_linear + dense.mlp_linear) + moe_n * (moe.attn_linear + moe.mlp_linear)
    plain = dense_n * dense.plain + moe_n * moe.plain
    mlp_inner = dense_n * dense.mlp_linear + moe_n * moe.mlp_linear
    for layer in {0, model.num_layers - 1}:
        if stage.first_layer <= layer < stage.first_layer + stage.num_layers:
            mlp_inner -= _layer_params(model, tp, _is_moe_layer(model, layer)).mlp_linear
    vocab = _padded_vocab(model.vocab_size, tp) if pad else model.vocab_size
    rows = vocab / tp
    if stage.is_first:
        plain += rows * model.hidden_size + model.vision_parameters / tp
    if stage.is_last:
        plain += model.hidden_size  # final norm
        # A tied LM head shares the embedding, except on a last stage that does not
        # hold the embedding (PP > 1): vLLM then creates and loads its own copy.
        if not model.tie_word_embeddings or (pp > 1 and not stage.is_first):
            plain += rows * model.hidden_size
    return linear, mlp_inner, plain


def _rank_bytes(
    model: ModelConfig, q: Quantization, act_bytes: int, tp: int, stage: StageLayout, pp: int,
    *, pad: bool,
) -> float:
    linear, mlp_inner, plain = _stage_params(model, tp, stage, pp, pad=pad)
    bpp = weight_bytes_per_param(q, act_bytes)
    if q.mlp_only:
        return mlp_inner * bpp + (linear - mlp_inner + plain) * act_bytes
    return linear * bpp + plain * act_bytes


def _mla_extra_bytes(model: ModelConfig, mm: MemoryModel, q: Quantization, act_bytes: int,
                     tp: int, layers: int) -> float:
    """Decode-only copies that vLLM's MLA backends derive from the MLA weights.

    * V0 0.7.1-0.7.x (``VLLM_MLA_PERFORM_MATRIX_ABSORPTION``, on by default): every
      layer keeps ``W_Q_UK`` (Lq × N × Lkv) and ``W_UV_O`` (N × Lkv × H), re-quantized
      to FP8 for FP8 checkpoints, plus ``W_QR`` (Lq × N × R) in the model dtype
      (vllm/attention/backends/mla/utils.py ``process_weights_after_loading`` at 0.7.x).
      This is why DeepSeek-R1 at TP8×PP2 logs 39.66 GiB of weights per rank, not 37.6
      (tests/data/vllm_logs/v07x_deepseek_r1_h20_tp8_pp2.yaml).
    * Later versions keep ``W_UK_T``/``W_UV``, a dequantized copy of ``kv_b_proj``,
      only when the weights are quantized (vllm/v1/attention/backends/mla/common.py).
    """
    m = model.mla
    if m is None or layers == 0:
        return 0.0
    n = model.num_attention_heads / tp
    lq = m.q_lora_rank or model.hidden_size
    if mm.mla_absorbed_weights:
        absorbed_bytes = 1 if (q.quantized and q.bits == 8) else act_bytes
        per_layer = (lq * n * m.kv_lora_rank + n * m.kv_lora_rank * model.hidden_size) * absorbed_bytes
        per_layer += lq * n * m.qk_rope_head_dim * act_bytes
        return per_layer * layers
    if mm.mla_dequantized_decode_weights and q.quantized:
        return m.kv_lora_rank * n * (m.qk_nope_head_dim + m.v_head_dim) * act_bytes * layers
    return 0.0


def _loaded_parameters(model: ModelConfig) -> int | None:
    """The published parameter count minus the MTP modules vLLM does not load."""
    if model.num_parameters is None:
        return None
    if not model.mtp_layers:
        return model.num_parameters
    mtp = estimate_num_parameters(model) - estimate_num_parameters(replace(model, mtp_layers=0))
    return model.num_parameters - mtp


@lru_cache(maxsize=4096)
def weights_per_stage(
    model: ModelConfig, mm: MemoryModel, q: Quantization, dtype: str, tp: int, pp: int,
) -> tuple[tuple[int, ...], int]:
    """Weight bytes one GPU of each pipeline stage holds, and the total over all GPUs.

    Linear layers are split over TP (column/row parallel) except MLA's down
    projections and the MoE router (replicated); KV projections are replicated once
    TP exceeds the KV heads; embeddings and LM head are vocab-parallel (padded to 64
    rows per rank) and live on the first/last stage. Quantized layers use
    :func:`weight_bytes_per_param`; norms, biases, router, embeddings and LM head stay
    16-bit.

    When the checkpoint is served as stored (its own dtype and quantization), the
    architecture count is scaled to the catalog's exact size: ``weight_bytes`` of the
    safetensors index (minus MTP modules vLLM skips), else ``num_parameters``. The
    rotary cache and MLA decode copies are added on top.

    Returns:
        (bytes per GPU for each stage, bytes over all TP × PP GPUs).
    """
    act = dtype_bytes(dtype)
    stages = pipeline_stages(model.num_layers, pp, mm.pp_remainder)
    whole = StageLayout(0, 0, model.num_layers, True, True)
    scale = 1.0
    stored_as_is = dtype_bytes(model.torch_dtype) == act and (not q.quantized or q.from_checkpoint)
    loaded = _loaded_parameters(model)
    if model.weight_bytes and stored_as_is:
        ckpt = _rank_bytes(model, q, act, 1, whole, 1, pad=False)
        mtp_bytes = 0.0
        if model.mtp_layers and loaded is not None and model.num_parameters:
            # MTP modules are stored like the rest; take their share of the file.
            mtp_bytes = model.weight_bytes * (1 - loaded / model.num_parameters)
        scale = (model.weight_bytes - mtp_bytes) / ckpt
    elif loaded:
        lin0, _, plain0 = _stage_params(model, 1, whole, 1, pad=False)
        scale = loaded / (lin0 + plain0)
    # Guard against a catalog size that does not describe this architecture.
    scale = min(max(scale, 0.85), 1.15)
    rope = rope_cache_bytes(model, act)
    per_stage = []
    for st in stages:
        b = _rank_bytes(model, q, act, tp, st, pp, pad=True) * scale
        b += rope + _mla_extra_bytes(model, mm, q, act, tp, st.num_layers)
        per_stage.append(int(b))
    return tuple(per_stage), sum(per_stage) * tp


# --------------------------------------------------------------------------- KV cache


def _kv_elem_bytes(kv_cache_dtype: str, act_dtype: str) -> int:
    """fp8 KV caches store one byte per element; ``auto`` follows the model dtype."""
    return 1 if kv_cache_dtype.startswith("fp8") else dtype_bytes(act_dtype)


def kv_bytes_per_token(
    model: ModelConfig, tp: int, layers: int, kv_cache_dtype: str, act_dtype: str,
    *, mla_latent: bool = True,
) -> int:
    """KV-cache bytes per token on one GPU holding ``layers`` decoder layers.

    ``2 (K and V) × layers × max(1, kv_heads / TP) × head_dim × bytes``; for MLA the
    cache holds the compressed latent plus the shared rotary key,
    ``(kv_lora_rank + qk_rope_head_dim) × layers × bytes``, which every TP rank keeps
    whole (vllm/v1/kv_cache_interface.py ``MLAAttentionSpec``). Before vLLM 0.7.1
    (``mla_latent=False``) MLA models ran as multi-head attention and cached K and V for
    each of their heads at the query-key head size. Sliding-window layers count in full
    here: this is the cost per token vLLM's "GPU KV cache size" divides by.
    """
    b = _kv_elem_bytes(kv_cache_dtype, act_dtype)
    if model.mla is not None:
        if not mla_latent:
            return int(2 * layers * model.num_attention_heads / tp * model.head_dim * b)
        return layers * model.mla.kv_cache_dim * b
    return int(2 * layers * _kv_heads_per_rank(model, tp) * model.head_dim * b)


def guides_kv_bytes_per_token(model: ModelConfig, dtype_size: int = 2) -> int:
    """The popular guides' ``2 × layers × hidden_size × bytes``, which ignores GQA."""
    return 2 * model.num_layers * model.hidden_size * dtype_size


def _sliding_layers(model: ModelConfig, stage: StageLayout) -> int:
    if not model.sliding_window_layers:
        return 0
    return round(model.sliding_window_layers * stage.num_layers / model.num_layers)


def request_kv_bytes(
    model: ModelConfig, mm: MemoryModel, tp: int, stage: StageLayout, max_model_len: int,
    max_num_batched_tokens: int, kv_cache_dtype: str, act_dtype: str,
) -> int:
    """KV bytes one request of ``max_model_len`` tokens needs on this GPU, in whole blocks.

    Full-attention layers need every token. Sliding-window layers under V1's hybrid
    allocator need ``min(window - 1 + max_num_batched_tokens, max_model_len)`` tokens
    (vllm/v1/kv_cache_interface.py ``SlidingWindowSpec.max_memory_usage_bytes``); V0
    allocated them in full.
    """
    per_layer = kv_bytes_per_token(model, tp, 1, kv_cache_dtype, act_dtype,
                                   mla_latent=mm.mla_latent_cache)
    block = mm.block_size
    full_tokens = math.ceil(max_model_len / block) * block
    sliding = _sliding_layers(model, stage) if mm.generation == "V1" else 0
    window = model.sliding_window or max_model_len
    sw_tokens = min(window - 1 + max_num_batched_tokens, max_model_len)
    sw_tokens = (math.ceil(sw_tokens / block) + 1) * block if sliding else 0
    sw_tokens = min(sw_tokens, full_tokens)
    return per_layer * ((stage.num_layers - sliding) * full_tokens + sliding * sw_tokens)


def kv_tokens(
    kv_bytes: int, model: ModelConfig, mm: MemoryModel, tp: int, stage: StageLayout,
    max_model_len: int, max_num_batched_tokens: int, kv_cache_dtype: str, act_dtype: str,
) -> int:
    """The "GPU KV cache size: N tokens" figure vLLM prints.

    Whole blocks of the full per-token cost (vllm/v1/core/kv_cache_utils.py); with a
    sliding-window credit (``sliding_window_credit``, vLLM ≥ 0.21, vllm#43308) the
    engine reports ``max_concurrency × max_model_len`` instead, where a request's
    sliding layers only hold their window.
    """
    if kv_bytes <= 0:
        return 0
    per_token = kv_bytes_per_token(model, tp, stage.num_layers, kv_cache_dtype, act_dtype,
                                   mla_latent=mm.mla_latent_cache)
    block = mm.block_size
    if per_token <= 0:
        return 0
    if mm.sliding_window_credit and model.sliding_window_layers:
        need = request_kv_bytes(model, mm, tp, stage, max_model_len, max_num_batched_tokens,
                                kv_cache_dtype, act_dtype)
        return int(kv_bytes / need * max_model_len) if need else 0
    return int(kv_bytes // (per_token * block)) * block


# --------------------------------------------------------------------------- activations


def _moe_workspace_elements(model: ModelConfig, tp: int, tokens: int) -> float:
    """Elements of the fused-MoE intermediate caches for ``tokens`` tokens.

    vllm/model_executor/layers/fused_moe/fused_moe.py ``fused_experts_impl`` holds
    ``(M, top_k, 2N)``, ``(M·top_k, N)`` and ``(M, top_k, K)`` caches, N being the
    expert intermediate size per rank and K the hidden size.
    """
    moe = model.moe
    if moe is None:
        return 0.0
    return tokens * moe.experts_per_token * (3 * moe.moe_intermediate_size / tp + model.hidden_size)


def activation_bytes(
    model: ModelConfig, mm: MemoryModel, q: Quantization, act_dtype: str, tp: int,
    stage: StageLayout, tokens: int, seqs: int,
) -> int:
    """Peak activation of the profile run on one GPU of ``stage``.

    The profile run pushes ``tokens`` (``max_num_batched_tokens``) through the model
    and, on the last stage, samples ``seqs`` rows over the vocabulary. The peak is the
    larger of the two (the forward's intermediates are freed before sampling):

    * forward: ``tokens × (a·I/TP + b·H) × bytes`` for the widest layer (dense MLP,
      shared experts), fitted to 0.10 GiB per 1k tokens for Llama-3.1-8B
      (tests/data/vllm_logs/v064_llama31_8b_rtx3090_len20k/29k);
    * sampler: ``seqs × vocab × c`` bytes (logits, sort values and int64 indices of
      top-k/top-p): c ≈ 40 B in V0 (PR #10511 Llama-3-8B 1.26 GiB, opt-125m 0.50 GiB),
      ≈ 15.6 B in V1 (v0.19.0: Llama-3.1-8B 1.89, Gemma-3-12B 3.94 GiB);
    * fused MoE workspace ``f × tokens × top_k × (3·I_moe/TP + H) × bytes``: part of
      the forward in V0, kept beside the sampler in V1; f is much larger for
      block-FP8 experts (Qwen3-235B-A22B-FP8: 5.62 GiB at TP4, PR #21429);
    * TGI's warm-up: ``k × tokens × vocab × bytes`` more, the logits of every prompt
      token (k = 2 before TGI 3.0, whose log-softmax was out of place; 1 from 3.0,
      ``torch.log_softmax(out, -1, out=out)``), tests/data/tgi_logs.
    """
    a = mm.activation
    b = dtype_bytes(act_dtype)
    h = model.hidden_size
    dense_n, moe_n = _stage_layer_counts(model, stage)
    dense_i = model.intermediate_size / tp if dense_n else 0.0
    has_moe = moe_n > 0
    if has_moe and model.moe is not None:
        dense_i = max(dense_i, model.moe.shared_intermediate_size / tp)
    forward = tokens * (a.intermediate_factor * dense_i + a.hidden_factor * h) * b
    moe = 0.0
    if has_moe:
        factor = a.moe_workspace_factor_fp8_block if q.block_fp8 else a.moe_workspace_factor
        moe = factor * _moe_workspace_elements(model, tp, tokens) * b
    sampler = 0.0
    if stage.is_last:
        sampler = min(seqs, tokens) * model.vocab_size * a.sampler_bytes_per_logit
    # V1 keeps the MoE workspace allocated beside the sampler; in V0 it is part of the forward.
    peak = max(forward, sampler) + moe if a.moe_workspace_additive else max(forward + moe, sampler)
    if stage.is_last and a.prefill_logits_copies:
        # TGI's warm-up requests ask for prompt logprobs (router: `prefill_logprobs: true`), so
        # the LM head runs on every prompt token, and TGI then reads the free device memory
        # without emptying PyTorch's cache: these tensors count on top of the forward's segments.
        peak += tokens * model.vocab_size * b * a.prefill_logits_copies
    return int(peak)


def non_torch_bytes(mm: MemoryModel, gpu: GPU, tp: int, pp: int) -> int:
    """Memory the profiler finds outside PyTorch's allocator, per GPU.

    One GPU: cuBLAS/cuDNN workspaces (0.25 GiB in V1 v0.19.0 logs). TP > 1 adds NCCL
    and custom all-reduce buffers: about 2 GiB per rank on NVLink/NVSwitch H100s (v0.19.0
    TP4 2.21 GiB, PR #21429 TP4 2.04 GiB), little on PCIe cards without peer access
    (RTX 4090 TP2 0.25 GiB, RTX 3090 TP16 0.20 GiB). PP without TP: 0.07 GiB
    (llm-d-planner v0.19.0 accuracy report).
    """
    nt = mm.non_torch
    if tp <= 1:
        gib = nt.tp1_gib if pp <= 1 else nt.pp_only_gib
    else:
        fast = gpu.interconnect in ("nvlink", "infinity-fabric")
        gib = nt.tp1_gib + (nt.tp_nvlink_extra_gib if fast else nt.tp_pcie_extra_gib)
    return int(gib * GIB)


# --------------------------------------------------------------------------- CUDA graphs


@lru_cache(maxsize=4096)
def cuda_graph_sizes(mm: MemoryModel, max_num_seqs: int, max_num_batched_tokens: int) -> tuple[int, int]:
    """(piecewise graphs, full graphs) the version captures.

    * V0: batch sizes [1, 2, 4] + 8..256 step 8, up to the first size ≥ max_num_seqs
      (vllm/worker/model_runner.py ``_BATCH_SIZES_TO_CAPTURE``); whole-model graphs.
    * V1 0.8-0.10: piecewise graphs for [1, 2, 4] + 8..512 step 8, up to
      ``max_num_batched_tokens``.
    * V1 0.11+: piecewise sizes [1, 2, 4] + 8..248 step 8 + 256..max step 16 with
      ``max = min(2 × max_num_seqs, 512, max_num_batched_tokens)``, plus full decode
      graphs for the sizes ≤ max_num_seqs (FULL_AND_PIECEWISE; the v0.19.0 logs show
      "PIECEWISE=51 (largest=512), FULL=51" at 1024 seqs, v0.21.0 51 + 35 at 256 seqs).
    * TGI: ``--cuda-graphs`` 1, 2, 4, 8, 16, 32.
    """
    cap = mm.cuda_graphs.capture
    if cap == "none":
        return 0, 0
    if cap == "tgi":
        return 0, 6
    if cap == "v0":
        sizes = [1, 2, 4] + list(range(8, 257, 8))
        limit = next((s for s in sizes if s >= min(max_num_seqs, 256)), 256)
        return 0, sum(1 for s in sizes if s <= limit)
    if cap == "v1-piecewise":
        sizes = [1, 2, 4] + list(range(8, 513, 8))
        return sum(1 for s in sizes if s <= max_num_batched_tokens), 0
    top = min(2 * max_num_seqs, 512, max_num_batched_tokens)
    sizes = [1, 2, 4] + list(range(8, 256, 8)) + list(range(256, top + 1, 16))
    piecewise = [s for s in sizes if s <= top]
    full = [s for s in piecewise if s <= max_num_seqs]
    return len(piecewise), len(full)


def cuda_graph_bytes(
    model: ModelConfig, mm: MemoryModel, stage: StageLayout, max_num_seqs: int,
    max_num_batched_tokens: int, enforce_eager: bool = False,
) -> int:
    """CUDA-graph pool memory on one GPU: ``layers × graphs × c`` MiB.

    c is fitted to vLLM's own estimates at v0.19/0.21 (0.84 GiB for Llama-3.1-8B, 1.70
    GiB per rank for Llama-3.3-70B TP4, 0.52 GiB for Qwen3-8B); V0 graphs scale with
    the hidden size (3.34 GiB for a 49B 8192-wide model, PR #15664 thread).
    """
    if enforce_eager:
        return 0
    piecewise, full = cuda_graph_sizes(mm, max_num_seqs, max_num_batched_tokens)
    cg = mm.cuda_graphs
    mib = cg.mib_per_layer_graph * stage.num_layers * (piecewise + full)
    if cg.reference_hidden:
        mib *= model.hidden_size / cg.reference_hidden
    return int(mib * MIB)
