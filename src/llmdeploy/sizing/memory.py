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
    "kv_layers_on_stage",
    "kv_layout",
    "kv_tokens",
    "max_capture_size",
    "max_concurrency",
    "moe_shards",
    "non_torch_bytes",
    "pipeline_stages",
    "quant_format",
    "recurrent_state_bytes",
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
        scheme: the weight format when the method does not say it (``mxfp4``,
            ``nvfp4``, ``w4a16``, ``w8a8-int8``, ``gguf:Q4_K_M`` ...; see
            :data:`QUANT_FORMATS`).
        experts_only: only the routed MoE experts are quantized (gpt-oss MXFP4).
    """

    method: str = "none"
    bits: int = 16
    group_size: int | None = None
    block_fp8: bool = False
    from_checkpoint: bool = False
    mlp_only: bool = False
    scheme: str | None = None
    experts_only: bool = False

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
        if self.scheme in ("mxfp4", "nvfp4") or (self.scheme or "").startswith("gguf:"):
            extra = f" {self.scheme}" + (" experts" if self.experts_only else "")
        where = "checkpoint" if self.from_checkpoint else "at load"
        return f"{self.method} {self.bits}-bit{extra} ({where})"


@record
class QuantFormat:
    """A weight format vLLM serves: its size and what it needs from the GPU.

    Attributes:
        name: the scheme key (``mxfp4``, ``nvfp4`` ...).
        bytes_per_weight: bytes per quantized weight with its scales (0 = by method).
        min_capability: lowest NVIDIA compute capability vLLM runs it on.
        native_capability: compute capability from which it runs natively (below: a
            weight-only fallback kernel, which keeps the memory saving only); None when
            every supported GPU runs it natively.
        amd: whether vLLM's ROCm build runs it.
        kernels: the kernels, for messages.
        source: where the requirement is read.
    """

    name: str
    bytes_per_weight: float
    min_capability: float
    native_capability: float | None
    amd: bool
    kernels: str
    source: str


QUANT_FORMATS: dict[str, QuantFormat] = {
    # FP4 E2M1 values (0.5 B) with one E8M0 scale byte per 32 weights.
    "mxfp4": QuantFormat("mxfp4", 0.5 + 1 / 32, 8.0, 10.0, True,
                         "FlashInfer/TRT-LLM MXFP4 MoE on Blackwell, triton_kernels on Hopper, Marlin MXFP4 on Ampere",
                         "vllm/model_executor/layers/quantization/mxfp4.py (Mxfp4Config.get_min_capability 80)"),
    # FP4 E2M1 values with one FP8 E4M3 scale per 16 weights (plus a per-tensor fp32 scale).
    "nvfp4": QuantFormat("nvfp4", 0.5 + 1 / 16, 8.0, 10.0, False,
                         "CUTLASS/FlashInfer FP4 GEMM on Blackwell; FP4 Marlin (weight-only) on Ampere/Ada/Hopper",
                         "vllm/model_executor/layers/quantization/modelopt.py (ModelOptNvFp4Config.get_min_capability 80)"),
    "fp8-block": QuantFormat("fp8-block", 0.0, 8.0, 8.9, True, "block-scaled FP8 GEMM; FP8 Marlin below 8.9",
                             "vllm/model_executor/layers/quantization/fp8.py (Fp8Config.get_min_capability 80)"),
    "fp8-channel": QuantFormat("fp8-channel", 0.0, 8.0, 8.9, True, "CUTLASS FP8 GEMM; FP8 Marlin below 8.9",
                               "vllm/model_executor/layers/quantization/fp8.py (Fp8Config.get_min_capability 80)"),
    "w8a8-fp8": QuantFormat("w8a8-fp8", 0.0, 8.0, 8.9, True, "CUTLASS FP8 GEMM; FP8 Marlin below 8.9",
                            "compressed_tensors W8A8Fp8 (min capability 80 with the Marlin fallback)"),
    "w8a8-int8": QuantFormat("w8a8-int8", 0.0, 7.5, None, True, "CUTLASS INT8 GEMM",
                             "compressed_tensors_w8a8_int8.py (CompressedTensorsW8A8Int8.get_min_capability 75)"),
    "w4a16": QuantFormat("w4a16", 0.0, 8.0, None, True, "Marlin / Machete (Hopper) WNA16",
                         "compressed_tensors_wNa16.py (CompressedTensorsWNA16.get_min_capability 80)"),
    "w8a16": QuantFormat("w8a16", 0.0, 8.0, None, True, "Marlin WNA16",
                         "compressed_tensors_wNa16.py (CompressedTensorsWNA16.get_min_capability 80)"),
    "gguf": QuantFormat("gguf", 0.0, 6.0, None, True, "GGUF dequantize + GEMM kernels",
                        "vllm/model_executor/layers/quantization/gguf.py (GGUFConfig.get_min_capability 60)"),
}
"""Weight formats with their size and GPU needs (rule LD207 reads them)."""

# Bits per weight of GGUF types: block bytes / weights per block in ggml's block_* structs
# (ggml/src/ggml-common.h: block_q4_0 18 B / 32, block_q8_0 34 B / 32, block_q4_K 144 B / 256,
# block_q5_K 176 / 256, block_q6_K 210 / 256, block_q3_K 110 / 256, block_q2_K 84 / 256,
# block_iq4_xs 136 / 256). The _M/_S mixes keep some tensors at a higher type; their
# figures are llama.cpp's quantize tool's reported averages for Llama-class models.
GGUF_BITS_PER_WEIGHT: dict[str, float] = {
    "F16": 16.0, "BF16": 16.0, "Q8_0": 8.5, "Q6_K": 6.5625, "Q5_K": 5.5, "Q5_K_M": 5.69, "Q5_K_S": 5.54,
    "Q5_0": 5.5, "Q5_1": 6.0, "Q4_K": 4.5, "Q4_K_M": 4.89, "Q4_K_S": 4.58, "Q4_0": 4.5, "Q4_1": 5.0,
    "IQ4_XS": 4.25, "Q3_K": 3.4375, "Q3_K_M": 3.91, "Q3_K_S": 3.5, "Q2_K": 2.625,
}


def quant_format(q: Quantization) -> QuantFormat | None:
    """The :data:`QUANT_FORMATS` entry of a quantization, or None when it has none."""
    if (q.scheme or "").startswith("gguf:") or q.method == "gguf":
        return QUANT_FORMATS["gguf"]
    if q.scheme in QUANT_FORMATS:
        return QUANT_FORMATS[q.scheme]
    if q.method in ("fp8", "fbgemm_fp8") and q.quantized:
        return QUANT_FORMATS["fp8-block" if q.block_fp8 else "fp8-channel"]
    return None


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
        scheme = (q.scheme or "").lower()
        if scheme == "mxfp4" or method == "mxfp4":
            return Quantization("mxfp4", 4, 32, from_checkpoint=True, scheme="mxfp4",
                                experts_only=q.experts_only or method == "mxfp4")
        if scheme == "nvfp4":
            return Quantization(method, 4, q.group_size or 16, from_checkpoint=True, scheme="nvfp4")
        if method == "gguf" or scheme.startswith("gguf:"):
            kind = (q.scheme or "gguf:Q8_0").split(":", 1)[-1].upper()
            return Quantization("gguf", max(1, round(GGUF_BITS_PER_WEIGHT.get(kind, 8.5))), None,
                                from_checkpoint=True, scheme=f"gguf:{kind}")
        if method in ("awq", "awq_marlin"):
            return Quantization("awq", bits if q.bits else 4, q.group_size or 128, from_checkpoint=True)
        if method in ("gptq", "gptq_marlin"):
            return Quantization("gptq", bits if q.bits else 4, q.group_size or 128, from_checkpoint=True)
        if method == "fp8":
            # quant_method "fp8" checkpoints of DeepSeek/Qwen use 128x128 weight blocks.
            return Quantization("fp8", 8, None, block_fp8=scheme != "fp8-channel", from_checkpoint=True,
                                scheme=q.scheme)
        if method == "fbgemm_fp8":
            return Quantization("fbgemm_fp8", 8, None, from_checkpoint=True, mlp_only=True)
        if method == "bitsandbytes":
            return Quantization("bitsandbytes", bits if q.bits else 4, None, from_checkpoint=True)
        if method == "compressed-tensors":
            b = q.bits or 8
            return Quantization("compressed-tensors", b, q.group_size if b < 8 else None, from_checkpoint=True,
                                block_fp8=scheme == "fp8-block", scheme=q.scheme)
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
    * MXFP4 / NVFP4 / GGUF: :data:`QUANT_FORMATS` and :data:`GGUF_BITS_PER_WEIGHT`.
    """
    if not q.quantized:
        return float(act_bytes)
    if q.scheme in QUANT_FORMATS and QUANT_FORMATS[q.scheme].bytes_per_weight:
        return QUANT_FORMATS[q.scheme].bytes_per_weight
    if (q.scheme or "").startswith("gguf:"):
        return GGUF_BITS_PER_WEIGHT.get(q.scheme.split(":", 1)[1], 8.5) / 8  # type: ignore[union-attr]
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
    experts: float = 0.0  # the routed experts alone (part of mlp_linear)


def moe_shards(tp: int, dp: int, ep: bool) -> tuple[int, int]:
    """(tensor split of each routed expert, expert-parallel group size) in vLLM's MoE layers.

    vLLM flattens tensor × data parallel for the fused MoE layers
    (vllm/model_executor/layers/fused_moe/config.py ``FusedMoEParallelConfig.make`` and
    ``flatten_tp_across_dp_and_pcp``, vllm@002d607): without ``--enable-expert-parallel``
    every routed expert is split over all TP × DP GPUs (``tp_size = dp × tp``, ``ep_size
    = 1``); with it each GPU holds whole experts (``tp_size = 1``, ``ep_size = dp × tp``).
    Attention, dense MLPs, shared experts, embeddings and the LM head stay split by TP
    and are replicated on every DP rank.
    """
    group = tp * dp
    return (1, group) if ep and group > 1 else (group, 1)


@lru_cache(maxsize=4096)
def _layer_params(model: ModelConfig, tp: int, moe_layer: bool, dp: int = 1, ep: bool = False) -> _LayerParams:
    """One decoder layer's parameters on one TP rank (vLLM's tensor-parallel layers).

    Routed experts follow :func:`moe_shards`: with expert parallel the rank holding the
    most experts holds ``ceil(E / EP)`` of them whole (vLLM's ``determine_expert_map``,
    vllm/model_executor/layers/fused_moe/layer.py: the first ``E mod EP`` ranks take one
    more).
    """
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
        if model.indexer_heads:
            # DeepSeek-V3.2's indexer projections are replicated on every rank.
            d = model.indexer_head_dim
            attn += (m.q_lora_rank or h) * model.indexer_heads * d + h * d
            plain += 2 * d + h * model.indexer_heads
    else:
        q_dim = model.num_attention_heads * model.head_dim / tp
        kv_dim = _kv_heads_per_rank(model, tp) * model.head_dim
        attn = h * q_dim + 2 * h * kv_dim + q_dim * h
        if model.attention_bias:
            plain += q_dim + 2 * kv_dim
        if model.family in ("qwen3", "qwen3_moe", "gemma3"):
            plain += 2 * model.head_dim  # q_norm, k_norm
    if model.attention_sinks:
        plain += model.num_attention_heads / tp  # one learned sink per head (gpt-oss)
    experts = 0.0
    if moe_layer and model.moe is not None:
        moe = model.moe
        moe_tp, ep_size = moe_shards(tp, dp, ep)
        local = math.ceil(moe.num_experts / ep_size)
        experts = local * 3 * h * moe.moe_intermediate_size / moe_tp
        q = model.quantization
        if q is not None and (q.scheme == "mxfp4" or q.method == "mxfp4"):
            # vLLM's MXFP4 MoE (vllm/model_executor/layers/quantization/mxfp4.py create_weights,
            # triton_kernels / Marlin layout) pads the hidden size to 256 and each rank's
            # intermediate size to 128: gpt-oss-20b logs 13.64 GiB at TP1 and 7.01 at TP2 on
            # H100 (v0.19.0), 6-8 % over the packed count.
            inter = math.ceil(moe.moe_intermediate_size / moe_tp / 128) * 128
            experts = local * 3 * math.ceil(h / 256) * 256 * inter
        mlp = experts + 3 * h * moe.shared_intermediate_size / tp
        plain += h * moe.num_experts  # router (ReplicatedLinear, never quantized)
        if model.family == "qwen2_moe" and moe.shared_intermediate_size:
            plain += h  # shared_expert_gate
    else:
        mlp = model.mlp_projections * h * model.intermediate_size / tp
    return _LayerParams(attn, mlp, plain, experts)


def _stage_share(count: int, model: ModelConfig, stage: StageLayout) -> int:
    """Layers of a kind (spread through the model) that one pipeline stage holds."""
    if not count:
        return 0
    return round(count * stage.num_layers / model.num_layers)


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
    model: ModelConfig, tp: int, stage: StageLayout, pp: int, *, pad: bool, dp: int = 1, ep: bool = False
) -> tuple[float, float, float, float]:
    """(linear params, MLP linear params outside the first/last layer, 16-bit params,
    routed-expert params) of one rank."""
    dense_n, moe_n = _stage_layer_counts(model, stage)
    dense = _layer_params(model, tp, False, dp, ep)
    moe = _layer_params(model, tp, True, dp, ep)
    linear = dense_n * (dense.attn_linear + dense.mlp_linear) + moe_n * (moe.attn_linear + moe.mlp_linear)
    experts = moe_n * moe.experts
    recurrent = _stage_share(model.recurrent_layers, model, stage)
    if recurrent:
        # Mamba / gated-DeltaNet mixers replace the attention projections on those layers
        # (split over TP like the attention heads).
        linear += recurrent * (model.recurrent_layer_parameters / tp - dense.attn_linear)
    plain = dense_n * dense.plain + moe_n * moe.plain
    mlp_inner = dense_n * dense.mlp_linear + moe_n * moe.mlp_linear
    for layer in {0, model.num_layers - 1}:
        if stage.first_layer <= layer < stage.first_layer + stage.num_layers:
            mlp_inner -= _layer_params(model, tp, _is_moe_layer(model, layer), dp, ep).mlp_linear
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
    return linear, mlp_inner, plain, experts


def _rank_bytes(
    model: ModelConfig, q: Quantization, act_bytes: int, tp: int, stage: StageLayout, pp: int,
    *, pad: bool, dp: int = 1, ep: bool = False,
) -> float:
    linear, mlp_inner, plain, experts = _stage_params(model, tp, stage, pp, pad=pad, dp=dp, ep=ep)
    bpp = weight_bytes_per_param(q, act_bytes)
    if q.experts_only:
        return experts * bpp + (linear - experts + plain) * act_bytes
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
    dp: int = 1, ep: bool = False,
) -> tuple[tuple[int, ...], int]:
    """Weight bytes one GPU of each pipeline stage holds, and the total over all GPUs.

    With data parallel ``dp`` > 1 a MoE model's routed experts are spread over the
    TP × DP GPUs (split inside each expert, or whole experts with expert parallel
    ``ep``; :func:`moe_shards`) while the rest is replicated on every DP rank.

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
        lin0, _, plain0, _ = _stage_params(model, 1, whole, 1, pad=False)
        scale = loaded / (lin0 + plain0)
    # Guard against a catalog size that does not describe this architecture. A generically
    # read config (parts approximated) trusts its checkpoint's index much further: that size
    # is exact, the architecture count is not.
    low, high = (0.5, 2.0) if model.approximations else (0.85, 1.15)
    scale = min(max(scale, low), high)
    rope = rope_cache_bytes(model, act)
    per_stage = []
    for st in stages:
        b = _rank_bytes(model, q, act, tp, st, pp, pad=True, dp=dp, ep=ep) * scale
        b += rope + _mla_extra_bytes(model, mm, q, act, tp, st.num_layers)
        per_stage.append(int(b))
    return tuple(per_stage), sum(per_stage) * tp * dp


# --------------------------------------------------------------------------- KV cache


def _kv_elem_bytes(kv_cache_dtype: str, act_dtype: str) -> int:
    """fp8 KV caches store one byte per element; ``auto`` follows the model dtype."""
    return 1 if kv_cache_dtype.startswith("fp8") else dtype_bytes(act_dtype)


def kv_bytes_per_token(
    model: ModelConfig, tp: int, layers: int, kv_cache_dtype: str, act_dtype: str,
    *, mla_latent: bool = True, mla_entry_align: int = 0,
) -> int:
    """KV-cache bytes per token on one GPU holding ``layers`` decoder layers.

    ``2 (K and V) × layers × max(1, kv_heads / TP) × head_dim × bytes``; for MLA the
    cache holds the compressed latent plus the shared rotary key,
    ``(kv_lora_rank + qk_rope_head_dim) × layers × bytes``, which every TP rank keeps
    whole (vllm/v1/kv_cache_interface.py ``MLAAttentionSpec``). Before vLLM 0.7.1
    (``mla_latent=False``) MLA models ran as multi-head attention and cached K and V for
    each of their heads at the query-key head size. Sliding-window layers count in full
    here: this is the cost per token vLLM's "GPU KV cache size" divides by.
    ``mla_entry_align``: V0 0.7.2-0.7.x allocated each MLA entry padded to a multiple of
    256 bytes (vllm/worker/cache_engine.py ``align_to_256bytes``,
    ``VLLM_CUDA_MEM_ALIGN_KV_CACHE`` on by default): DeepSeek's 576 bf16 elements (1,152 B)
    take 1,280 B.
    """
    b = _kv_elem_bytes(kv_cache_dtype, act_dtype)
    if model.mla is not None:
        if not mla_latent:
            return int(2 * layers * model.num_attention_heads / tp * model.head_dim * b)
        # DeepSeek-V3.2: one FP8 indexer key per token and layer plus an fp32 scale per 128
        # (vllm/model_executor/models/deepseek_v2.py DeepseekV32IndexerCache).
        indexer = model.indexer_head_dim + 4 * math.ceil(model.indexer_head_dim / 128) if model.indexer_heads else 0
        entry = model.mla.kv_cache_dim * b
        if mla_entry_align:
            entry = math.ceil(entry / mla_entry_align) * mla_entry_align
        return layers * (entry + indexer)
    return int(2 * layers * _kv_heads_per_rank(model, tp) * model.head_dim * b)


def guides_kv_bytes_per_token(model: ModelConfig, dtype_size: int = 2) -> int:
    """The popular guides' ``2 × layers × hidden_size × bytes``, which ignores GQA."""
    return 2 * model.num_layers * model.hidden_size * dtype_size


def _sliding_layers(model: ModelConfig, stage: StageLayout) -> int:
    return _stage_share(model.sliding_window_layers, model, stage)


def kv_layers_on_stage(model: ModelConfig, stage: StageLayout) -> int:
    """Decoder layers of a stage that hold a KV cache (recurrent and KV-sharing layers hold none)."""
    return max(0, stage.num_layers - _stage_share(model.recurrent_layers, model, stage)
               - _stage_share(model.kv_shared_layers, model, stage))


def recurrent_state_bytes(model: ModelConfig, tp: int, act_dtype: str) -> int:
    """One recurrent (Mamba / linear-attention) layer's state for one sequence on one rank.

    vLLM splits the state's heads over TP and keeps it in the model dtype by default
    (``mamba_ssm_cache_dtype: auto``; vllm/model_executor/layers/mamba/mamba_utils.py).
    """
    return int(math.ceil(model.recurrent_state_elements / tp) * dtype_bytes(act_dtype))


@record
class KVLayout:
    """How vLLM lays the KV cache of one stage out (vllm/v1/core/kv_cache_utils.py).

    V1's hybrid allocator puts layers of one kind (full, sliding window, chunked, Mamba)
    into groups of ``group_size`` layers; kinds whose count is not a multiple are padded
    with empty layers ("Add N padding layers, may waste at most X% KV cache memory").
    Every group draws blocks from one pool of ``page × group_size`` bytes per block, and
    the engine logs ``num_blocks // groups × block_size`` as "GPU KV cache size"
    (``_report_kv_cache_config``). With Mamba/linear-attention layers the attention block
    grows until its page holds one sequence's state (``HybridAttentionMambaModelConfig``:
    ``block = 16 × ceil(state page / (16 × per-token page))``), and each of those groups
    takes one block per request, however long it is.

    Attributes:
        per_layer_token_bytes: KV bytes of one token in one attention layer.
        block_size: tokens per block of the attention groups.
        group_size: layers per group.
        groups: (kind, number of groups) with kind ``full``, ``sliding``, ``chunked``,
            ``recurrent``.
    """

    per_layer_token_bytes: int
    block_size: int
    group_size: int
    groups: tuple[tuple[str, int], ...]

    @property
    def group_count(self) -> int:
        return sum(n for _, n in self.groups)

    @property
    def block_bytes(self) -> int:
        """Bytes of one block across a group (the pool's unit)."""
        return self.per_layer_token_bytes * self.block_size * self.group_size

    @property
    def padded_layers(self) -> int:
        return self.group_size * self.group_count


def kv_layout(model: ModelConfig, mm: MemoryModel, tp: int, stage: StageLayout,
              kv_cache_dtype: str, act_dtype: str) -> KVLayout:
    """The :class:`KVLayout` of a stage; V0 and single-kind models have one group."""
    per_layer = kv_bytes_per_token(model, tp, 1, kv_cache_dtype, act_dtype, mla_latent=mm.mla_latent_cache,
                                   mla_entry_align=mm.mla_entry_align_bytes)
    kv_layers = kv_layers_on_stage(model, stage)
    sliding = _sliding_layers(model, stage)
    chunked = _stage_share(model.chunked_attention_layers, model, stage)
    recurrent = _stage_share(model.recurrent_layers, model, stage)
    block = mm.block_size
    if mm.generation != "V1":
        # V0 sized every attention layer in full; its Mamba state lived outside the cache.
        return KVLayout(per_layer, block, max(1, kv_layers), (("full", 1),))
    full = max(0, kv_layers - sliding - chunked)
    counts = [(kind, n) for kind, n in (("full", full), ("sliding", sliding), ("chunked", chunked),
                                         ("recurrent", recurrent)) if n]
    if not counts:
        return KVLayout(per_layer, block, 1, (("full", 1),))
    low = min(n for _, n in counts)
    high = max(n for _, n in counts)
    group_size = high if high < low * 1.5 else low
    if recurrent and per_layer:
        state = recurrent_state_bytes(model, tp, act_dtype)
        block = max(block, 16 * math.ceil(state / (16 * per_layer)))
    groups = tuple((kind, math.ceil(n / group_size)) for kind, n in counts)
    return KVLayout(per_layer, block, group_size, groups)


def _blocks_per_request(layout: KVLayout, model: ModelConfig, max_model_len: int,
                        max_num_batched_tokens: int) -> int:
    """Blocks one request of ``max_model_len`` tokens takes from the pool (all groups).

    Full attention: every token. Sliding window / chunked attention: ``min(window - 1 +
    max_num_batched_tokens, max_model_len)`` tokens plus one block
    (``SlidingWindowSpec.max_memory_usage_bytes``; ``ChunkedLocalAttentionSpec`` with the
    chunk). Mamba / linear attention: one block (its state).
    """
    block = layout.block_size
    full = math.ceil(max_model_len / block)
    total = 0
    for kind, n in layout.groups:
        if kind == "full":
            total += n * full
        elif kind == "recurrent":
            total += n
        else:
            window = (model.sliding_window if kind == "sliding" else model.chunked_attention_size) or max_model_len
            need = min(window - 1 + max_num_batched_tokens, max_model_len)
            total += n * min(math.ceil(need / block) + 1, full)
    return total


def request_kv_bytes(
    model: ModelConfig, mm: MemoryModel, tp: int, stage: StageLayout, max_model_len: int,
    max_num_batched_tokens: int, kv_cache_dtype: str, act_dtype: str,
) -> int:
    """KV bytes one request of ``max_model_len`` tokens needs on this GPU, in whole blocks.

    Full-attention layers need every token. Sliding-window (and chunked) layers under
    V1's hybrid allocator need ``min(window - 1 + max_num_batched_tokens,
    max_model_len)`` tokens (vllm/v1/kv_cache_interface.py
    ``SlidingWindowSpec.max_memory_usage_bytes``), a Mamba/linear-attention layer one
    block of state; V0 allocated every attention layer in full.
    """
    layout = kv_layout(model, mm, tp, stage, kv_cache_dtype, act_dtype)
    if mm.generation != "V1":
        return layout.per_layer_token_bytes * layout.group_size * math.ceil(max_model_len / layout.block_size) \
            * layout.block_size
    return _blocks_per_request(layout, model, max_model_len, max_num_batched_tokens) * layout.block_bytes


def kv_tokens(
    kv_bytes: int, model: ModelConfig, mm: MemoryModel, tp: int, stage: StageLayout,
    max_model_len: int, max_num_batched_tokens: int, kv_cache_dtype: str, act_dtype: str,
) -> int:
    """The "GPU KV cache size: N tokens" figure vLLM prints.

    ``num_blocks // groups × block_size`` with ``num_blocks = kv / (page × group_size)``
    (vllm/v1/core/kv_cache_utils.py ``_report_kv_cache_config``): for a model with one
    kind of layer, whole blocks of the full per-token cost; for hybrid models every
    group (padding layers and Mamba groups included) counts as if it held every token.
    With a sliding-window credit (``sliding_window_credit``, vLLM ≥ 0.21, vllm#43308)
    the engine reports ``max_concurrency × max_model_len`` instead.
    """
    if kv_bytes <= 0:
        return 0
    layout = kv_layout(model, mm, tp, stage, kv_cache_dtype, act_dtype)
    if layout.block_bytes <= 0:
        return 0
    if mm.sliding_window_credit and model.sliding_window_layers:
        need = request_kv_bytes(model, mm, tp, stage, max_model_len, max_num_batched_tokens,
                                kv_cache_dtype, act_dtype)
        return int(kv_bytes / need * max_model_len) if need else 0
    num_blocks = int(kv_bytes // layout.block_bytes)
    return num_blocks // layout.group_count * layout.block_size


def max_concurrency(
    kv_bytes: int, model: ModelConfig, mm: MemoryModel, tp: int, stage: StageLayout,
    max_model_len: int, max_num_batched_tokens: int, kv_cache_dtype: str, act_dtype: str,
) -> float:
    """Requests of ``max_model_len`` that fit at once ("Maximum concurrency ... X.XXx").

    ``num_blocks / blocks per request`` (``get_max_concurrency_for_kv_cache_config``). For
    dense models this is the token count over ``max_model_len``; for hybrid models the
    windowed and recurrent groups take fewer blocks per request than the token count
    suggests, and a Mamba model's per-sequence state caps it instead of tokens.
    """
    if kv_bytes <= 0 or max_model_len <= 0:
        return 0.0
    layout = kv_layout(model, mm, tp, stage, kv_cache_dtype, act_dtype)
    if layout.block_bytes <= 0:
        return 0.0
    if mm.generation != "V1" or len(layout.groups) == 1 and layout.groups[0][0] == "full":
        return kv_tokens(kv_bytes, model, mm, tp, stage, max_model_len, max_num_batched_tokens,
                         kv_cache_dtype, act_dtype) / max_model_len
    per_request = _blocks_per_request(layout, model, max_model_len, max_num_batched_tokens)
    return int(kv_bytes // layout.block_bytes) / per_request if per_request else 0.0


# --------------------------------------------------------------------------- activations


def _moe_workspace_elements(model: ModelConfig, tp: int, tokens: int) -> float:
    """Elements of the fused-MoE intermediate caches for ``tokens`` tokens.

    vllm/model_executor/layers/fused_moe/fused_moe.py ``fused_experts_impl`` holds
    ``(M, top_k, 2N)``, ``(M·top_k, N)`` and ``(M, top_k, K)`` caches, N being the
    expert intermediate size per rank and K the hidden size; ``tp`` is the MoE layer's
    tensor split (:func:`moe_shards`: 1 with expert parallel).
    """
    moe = model.moe
    if moe is None:
        return 0.0
    return tokens * moe.experts_per_token * (3 * moe.moe_intermediate_size / tp + model.hidden_size)


def sampler_uses_flashinfer(mm: MemoryModel, flashinfer_sampler: bool | None, gpu: GPU | None = None) -> bool:
    """Whether the profile's sampler pass runs FlashInfer's top-k/top-p (``SamplerModel``):
    the release's default with vLLM's image unless the environment says otherwise. A release
    without FlashInfer sampling in V1 (V0, TGI, SGLang tables) never does, nor an AMD GPU
    (``TopKTopPSampler`` takes FlashInfer only when ``current_platform.is_cuda()``)."""
    sm = mm.sampler
    if not sm.flashinfer_bytes_per_logit or (gpu is not None and gpu.vendor == "amd"):
        return False
    return sm.flashinfer_default if flashinfer_sampler is None else flashinfer_sampler


def activation_bytes(
    model: ModelConfig, mm: MemoryModel, q: Quantization, act_dtype: str, tp: int,
    stage: StageLayout, tokens: int, seqs: int, moe_tp: int | None = None,
    flashinfer_sampler: bool | None = None, gpu: GPU | None = None,
) -> int:
    """Peak activation of the profile run on one GPU of ``stage``.

    ``moe_tp`` is the routed experts' tensor split (:func:`moe_shards`; default ``tp``).

    The profile run pushes ``tokens`` (``max_num_batched_tokens``) through the model
    and, on the last stage, samples ``seqs`` rows over the vocabulary. The peak is the
    larger of the two (the forward's intermediates are freed before sampling):

    * forward: ``tokens × (a·I/TP + b·H) × bytes`` for the widest layer (dense MLP,
      shared experts), fitted to 0.10 GiB per 1k tokens for Llama-3.1-8B
      (tests/data/vllm_logs/v064_llama31_8b_rtx3090_len20k/29k);
    * sampler: ``seqs × vocab × c`` bytes (logits, sort values and int64 indices of
      top-k/top-p): c ≈ 40 B in V0 (PR #10511 Llama-3-8B 1.26 GiB, opt-125m 0.50 GiB),
      ≈ 15.6 B in V1 (v0.19.0: Llama-3.1-8B 1.89, Gemma-3-12B 3.94 GiB); with FlashInfer's
      sampler (V1 up to 0.11 with vLLM's image: :func:`sampler_uses_flashinfer`) about 8 B;
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
    if has_moe and q.scheme != "mxfp4":
        # MXFP4 experts run through their own kernels (triton_kernels / FlashInfer / Marlin), not
        # fused_experts' intermediate caches: v0.19.0 gpt-oss-20b logs 2.87 GiB, the sampler alone.
        factor = a.moe_workspace_factor_fp8_block if q.block_fp8 else a.moe_workspace_factor
        moe = factor * _moe_workspace_elements(model, tp if moe_tp is None else moe_tp, tokens) * b
    sampler = 0.0
    if stage.is_last:
        per_logit = (mm.sampler.flashinfer_bytes_per_logit if sampler_uses_flashinfer(mm, flashinfer_sampler, gpu)
                     else a.sampler_bytes_per_logit)
        sampler = min(seqs, tokens) * model.vocab_size * per_logit
    # V1 keeps the MoE workspace allocated beside the sampler; in V0 it is part of the forward.
    peak = max(forward, sampler) + moe if a.moe_workspace_additive else max(forward + moe, sampler)
    if stage.is_last and a.prefill_logits_copies:
        # TGI's warm-up requests ask for prompt logprobs (router: `prefill_logprobs: true`), so
        # the LM head runs on every prompt token, and TGI then reads the free device memory
        # without emptying PyTorch's cache: these tensors count on top of the forward's segments.
        peak += tokens * model.vocab_size * b * a.prefill_logits_copies
    return int(peak)


def non_torch_bytes(mm: MemoryModel, gpu: GPU, tp: int, pp: int, custom_all_reduce: bool | None = None) -> int:
    """Memory the profiler finds outside PyTorch's allocator, per GPU.

    One GPU: cuBLAS/cuDNN workspaces (0.25 GiB in V1 v0.19.0 logs). TP > 1 adds NCCL
    and custom all-reduce buffers: about 2 GiB per rank on NVLink/NVSwitch H100s (v0.19.0
    TP4 2.21 GiB, PR #21429 TP4 2.04 GiB), little on PCIe cards without peer access
    (RTX 4090 TP2 0.25 GiB, RTX 3090 TP16 0.20 GiB). PP without TP: 0.07 GiB
    (llm-d-planner v0.19.0 accuracy report). Without vLLM's custom all-reduce
    (``custom_all_reduce=False``: ``--disable-custom-all-reduce``, no peer-to-peer access —
    "Custom allreduce is disabled because your platform lacks GPU P2P capability" — or a group
    across nodes, ``custom_all_reduce.py``) an NVLink GPU gets the PCIe figure: vLLM 0.10.1.1 on
    A100s without P2P leaves 0.69 GiB for activation and non-torch at TP2 (cases v01011_*).
    """
    nt = mm.non_torch
    if tp <= 1:
        gib = nt.tp1_gib if pp <= 1 else nt.pp_only_gib
    else:
        fast = _fast_link(gpu) and custom_all_reduce is not False
        gib = nt.tp1_gib + (nt.tp_nvlink_extra_gib if fast else nt.tp_pcie_extra_gib)
    return int(gib * GIB)


@record
class HeldAtStart:
    """What a worker holds before its init memory snapshot (:func:`held_before_snapshot_gib`).

    Attributes:
        gib: the total, CUDA context included.
        nccl_gib: of which the NCCL communicators.
        groups: the parallel groups whose communicators count (``tensor parallel 2``, ...).
    """

    gib: float
    nccl_gib: float
    groups: tuple[str, ...]


def _fast_link(gpu: GPU) -> bool:
    """NVLink/NVSwitch or xGMI between the GPUs of a node (PCIe otherwise)."""
    return gpu.interconnect in ("nvlink", "infinity-fabric")


def held_before_snapshot_gib(mm: MemoryModel, model: ModelConfig, tp: int, pp: int, dp: int,
                             context_gib: float, gpu: GPU | None = None) -> HeldAtStart:
    """What the worker holds before its init memory snapshot, and which NCCL groups count.

    The CUDA context always; from vLLM 0.11.0 also the communicators of every tensor- or
    pipeline-parallel group of more than one GPU and, when it exists, the expert-parallel
    group's (``StartupModel``; constants and sources in the ``startup`` rows of
    ``engines/vllm.yaml``). This memory is outside the ``gpu_memory_utilization`` budget
    and lowers the free memory vLLM compares the budget with at start.
    """
    st = mm.startup
    if not st.distributed_before_snapshot:
        return HeldAtStart(context_gib, 0.0, ())
    per_group = st.parallel_group_gib if gpu is None or _fast_link(gpu) else st.parallel_group_pcie_gib
    groups = [f"tensor parallel {tp}"] if tp > 1 else []
    groups += [f"pipeline parallel {pp}"] if pp > 1 else []
    comm = per_group * len(groups)
    if (st.ep_group == "always" or (st.ep_group == "moe" and model.is_moe)) and tp * dp > 1:
        comm += st.ep_group_gib
        groups.append("expert parallel (MoE)" if st.ep_group == "moe" else "expert parallel")
    return HeldAtStart(context_gib + comm, comm, tuple(groups))


# --------------------------------------------------------------------------- CUDA graphs


# The largest batch V1 captures by default; gpt-oss raises it to 1024 (the v0.19.0 gpt-oss-20b
# log: "max_cudagraph_capture_size: 1024", "Profiling CUDA graph memory: PIECEWISE=83
# (largest=1024), FULL=83 (largest=1024)"; Llama-3.1-8B in the same sweep: 51 and 512).
DEFAULT_MAX_CAPTURE = 512
_MAX_CAPTURE_BY_FAMILY = {"gpt_oss": 1024}


def max_capture_size(model: ModelConfig) -> int:
    """The largest batch size V1 (0.11+) captures a CUDA graph for, before ``max_num_seqs`` caps it."""
    return _MAX_CAPTURE_BY_FAMILY.get(model.family, DEFAULT_MAX_CAPTURE)


@lru_cache(maxsize=4096)
def cuda_graph_sizes(mm: MemoryModel, max_num_seqs: int, max_num_batched_tokens: int,
                     max_capture: int = DEFAULT_MAX_CAPTURE) -> tuple[int, int]:
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
    top = min(2 * max_num_seqs, max_capture, max_num_batched_tokens)
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
    cap = max_capture_size(model)
    piecewise, full = cuda_graph_sizes(mm, max_num_seqs, max_num_batched_tokens, cap)
    cg = mm.cuda_graphs
    mib = cg.mib_per_layer_graph * stage.num_layers * (piecewise + full)
    if cg.capture == "v1-full-and-piecewise":
        # Graphs of larger batches hold larger buffers: above the default list, memory grows with
        # the largest size (gpt-oss-20b: 1.84 GiB for 24 layers x 166 graphs up to 1024, 2.2x the
        # per-graph figure of 512-capped models in the same v0.19.0 sweep).
        largest = min(2 * max_num_seqs, cap, max_num_batched_tokens)
        mib *= max(1.0, largest / DEFAULT_MAX_CAPTURE)
    if cg.reference_hidden:
        mib *= model.hidden_size / cg.reference_hidden
    return int(mib * MIB)
