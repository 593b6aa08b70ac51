"""Parameter counts recomputed from a model's architecture.

They let a catalog entry or a local ``config.json`` be checked against its published
size, and give sizing the weights one token passes through (MoE models).
"""

from __future__ import annotations

from .types import ModelConfig, MoEConfig

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
        indexer = 0
        if cfg.indexer_heads:
            # DeepSeek-V3.2 lightning indexer: wq_b, wk, its k_norm and weights_proj.
            d = cfg.indexer_head_dim
            indexer = (m.q_lora_rank or h) * cfg.indexer_heads * d + h * d + 2 * d + h * cfg.indexer_heads
        return query + kv + cfg.num_attention_heads * m.v_head_dim * h + indexer
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
    attention = _attention_parameters(cfg)
    if cfg.attention_sinks:
        attention += cfg.num_attention_heads
    per_layer = attention + _layer_norm_parameters(cfg)
    dense_mlp = cfg.mlp_projections * h * cfg.intermediate_size  # gate, up, down (or fc1, fc2)
    if cfg.moe is None:
        layers = cfg.num_layers * (per_layer + dense_mlp)
        moe_layer = 0
    else:
        moe = cfg.moe
        experts = moe.experts_per_token if active_only else moe.num_experts
        moe_layer = per_layer + _moe_layer_parameters(cfg, moe, experts)
        dense = moe.first_k_dense_layers
        layers = dense * (per_layer + dense_mlp) + (cfg.num_layers - dense) * moe_layer
    # Mamba / linear-attention mixers replace the attention projections on their layers.
    layers += cfg.recurrent_layers * (cfg.recurrent_layer_parameters - attention)
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
