"""The catalog's record types and its error: GPUs, models and their parts.

The node-label constants name the label keys behind :attr:`GPU.node_labels`.
Everything here is plain data; loading the catalogs is :mod:`.entries`' job.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import field
from types import MappingProxyType

from ..errors import LlmdeployError
from ..records import record


class CatalogError(LlmdeployError):
    """An unknown catalog key, or a local ``config.json`` that cannot be read.

    Attributes:
        message: what went wrong, naming the key or the file.
        hint: how to fix it (a did-you-mean, or the command that lists the entries).
    """

    exit_code = 1


# --------------------------------------------------------------------------- GPUs

# Label keys behind GPU.node_labels.
GFD_PRODUCT_LABEL = "nvidia.com/gpu.product"  # NVIDIA GPU feature discovery
GKE_ACCELERATOR_LABEL = "cloud.google.com/gke-accelerator"
EKS_ACCELERATOR_LABEL = "k8s.amazonaws.com/accelerator"  # set by node-group config, not by EKS
# Karpenter on AWS; EKS Auto Mode sets the same values on eks.amazonaws.com/instance-gpu-name.
KARPENTER_GPU_NAME_LABEL = "karpenter.k8s.aws/instance-gpu-name"

# Label key behind each node_labels entry of a GPU.
# The AMD GPU operator's node labeller sets the product name here; on AMD GPUs the
# catalog's ``gfd`` kind holds its value (ROCm/gpu-operator, ROCm/k8s-device-plugin labeller).
AMD_PRODUCT_LABEL = "amd.com/gpu.product-name"

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
        families: names that cover several entries (``a100``, ``h100``); looking one up
            is refused with the choices rather than picking a variant.
        memory_mib: total memory as nvidia-smi / rocm-smi report it, in MiB.
        memory_bandwidth_gbs: memory bandwidth, GB/s.
        fp16_tflops: dense FP16 tensor TFLOPS (FP32 accumulate).
        bf16_tflops: dense BF16 tensor TFLOPS; ``None`` when the GPU has no BF16.
        fp8_tflops: dense FP8 tensor TFLOPS; ``None`` without FP8 tensor cores.
        fp4_tflops: dense FP4 tensor TFLOPS (NVFP4/MXFP4 on Blackwell, MXFP4 on CDNA4);
            ``None`` without FP4 tensor cores.
        fp8: native FP8 tensor cores (Ada, Hopper, Blackwell, MI300).
        fp8_weight_only: no native FP8, but vLLM runs FP8 checkpoints weight-only
            through its FP8 Marlin kernels (Ampere, compute capability 8.x).
        compute_capability: CUDA compute capability, or the gfx target on AMD.
        interconnect: ``nvlink``, ``pcie`` or ``infinity-fabric``.
        interconnect_gbs: GPU-to-GPU bandwidth, GB/s (bidirectional, as marketed).
        gpus_per_node: GPUs in a typical node or cloud instance.
        nvlink_domain: GPUs one NVLink domain joins across nodes (GB200/GB300 NVL72: 72
            GPUs over 18 trays of 4); ``None`` where GPU-to-GPU links end at the node.
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
    families: tuple[str, ...] = ()
    fp4_tflops: float | None = None
    nvlink_domain: int | None = None

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
            (AMD_PRODUCT_LABEL if kind == "gfd" and self.vendor == "amd" else NODE_LABEL_KEYS[kind]): value
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
        scheme: the weight format when the method alone does not say it: ``mxfp4``,
            ``nvfp4``, ``fp8-block``, ``fp8-channel``, ``w4a16``, ``w8a8-int8``,
            ``w8a8-fp8`` or a GGUF type (``gguf:Q4_K_M``); ``None`` when the method does.
        experts_only: only the MoE experts are quantized; attention, router,
            embeddings and LM head stay 16-bit (gpt-oss's MXFP4 checkpoints).
    """

    method: str
    bits: int | None = None
    group_size: int | None = None
    scheme: str | None = None
    experts_only: bool = False


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
        chunked_attention_size: chunk of the chunked local-attention layers (Llama 4's
            ``attention_chunk_size``), or ``None``.
        chunked_attention_layers: how many layers attend within their chunk only.
        recurrent_layers: layers whose mixer keeps a fixed-size state per sequence
            instead of a KV cache (Mamba/Mamba2, gated DeltaNet linear attention).
        recurrent_state_elements: elements of that state per layer and sequence (conv
            state plus SSM / recurrent state), one rank, no TP split.
        recurrent_layer_parameters: parameters of one recurrent mixer (replaces the
            attention projections on those layers).
        kv_shared_layers: layers that read another layer's KV cache and hold none
            (Gemma 3n's ``num_kv_shared_layers``).
        attention_sinks: learned per-head attention sinks (gpt-oss); they add no KV.
        indexer_heads: heads of DeepSeek sparse attention's lightning indexer (V3.2), 0 without.
        indexer_head_dim: its head size; vLLM caches one FP8 indexer key per token and
            layer beside the MLA latent.
        mlp_projections: weight matrices of a dense MLP: 3 for gated (SwiGLU/GeGLU),
            2 for a plain up/down MLP (Phi-2, GPT-2, OPT, Falcon).
        approximations: what the reader could only approximate (read generically, by
            the standard keys); empty for the architectures it knows.
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
    chunked_attention_size: int | None = None
    chunked_attention_layers: int = 0
    recurrent_layers: int = 0
    recurrent_state_elements: int = 0
    recurrent_layer_parameters: int = 0
    kv_shared_layers: int = 0
    attention_sinks: bool = False
    indexer_heads: int = 0
    indexer_head_dim: int = 0
    mlp_projections: int = 3
    approximations: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    source: str = "catalog"

    @property
    def is_moe(self) -> bool:
        """Whether the model routes tokens to experts."""
        return self.moe is not None

    @property
    def full_attention_layers(self) -> int:
        """Layers that attend over the whole context (minus sliding, chunked, recurrent, KV-shared)."""
        return (self.num_layers - self.sliding_window_layers - self.chunked_attention_layers
                - self.recurrent_layers - self.kv_shared_layers)

    @property
    def kv_cache_layers(self) -> int:
        """Layers that hold a KV cache of their own (all but recurrent and KV-sharing layers)."""
        return self.num_layers - self.recurrent_layers - self.kv_shared_layers

    @property
    def is_hybrid(self) -> bool:
        """Whether layers differ in what they cache (window, chunk, recurrent state)."""
        return bool(self.sliding_window_layers or self.chunked_attention_layers or self.recurrent_layers)

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
    "chunked_attention_size",
    "chunked_attention_layers",
    "recurrent_layers",
    "recurrent_state_elements",
    "recurrent_layer_parameters",
    "kv_shared_layers",
    "attention_sinks",
    "indexer_heads",
    "indexer_head_dim",
    "mlp_projections",
)
