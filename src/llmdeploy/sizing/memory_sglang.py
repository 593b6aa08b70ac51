"""SGLang's own start-up defaults: ``mem_fraction_static``, ``chunked_prefill_size``,
``cuda_graph_max_bs`` and the CUDA-graph batch sizes, by release.

SGLang sizes its KV pool from one number, ``--mem-fraction-static`` (weights + KV pool as a
share of the GPU; activations and CUDA graphs live in the rest):
``max_total_num_tokens = (free after weights - free at start x (1 - mfs)) / bytes per token``
(``ModelRunner.profile_max_num_token``, model_runner.py, read in the 0.4.0-0.5.12 wheels). When
the flag is not set, ``ServerArgs.__post_init__`` picks it from the GPU memory (``nvidia-smi``
MiB of the smallest GPU), TP x PP and, from 0.5.3, from the chunked-prefill size and the
largest captured CUDA-graph batch. The rule changed five times; the engine table
(``engines/sglang.yaml``, ``defaults.mem_fraction_rule``) names the one each release uses
and this module implements them. The memory split itself goes through the common sizing
core with the SGLang memory model (activations and graphs outside the budget).
"""

from __future__ import annotations

from ..engines import EngineVersionInfo
from ..records import record

__all__ = [
    "SGLangDefaults",
    "cuda_graph_batch_sizes",
    "max_running_requests",
    "mem_fraction_static",
    "sglang_defaults",
    "speculative_reserve_mib",
]


@record
class SGLangDefaults:
    """What SGLang picks by itself for one GPU and parallel layout.

    Attributes:
        mem_fraction_static: the static share (weights + KV pool) of the GPU.
        chunked_prefill_size: tokens per prefill chunk.
        cuda_graph_max_bs: the largest decode batch captured in a CUDA graph.
        reserved_mib: what the rule keeps outside the static share, in MiB (0 for the
            table rules of 0.4.0-0.4.7, which name the fraction directly).
        rule: the rule's name in the engine table.
    """

    mem_fraction_static: float
    chunked_prefill_size: int
    cuda_graph_max_bs: int
    reserved_mib: float
    rule: str


def _tp_table(parallel: int) -> float:
    # server_args.py 0.4.0-0.4.5 (tp_size), 0.4.6-0.4.7 (tp_size x pp_size)
    if parallel >= 16:
        return 0.79
    if parallel >= 8:
        return 0.81
    if parallel >= 4:
        return 0.85
    if parallel >= 2:
        return 0.87
    return 0.88


def _chunk_and_graphs(rule: str, gpu_mib: int, tp: int) -> tuple[int, int]:
    """(chunked_prefill_size, cuda_graph_max_bs) by the release's rule."""
    if rule == "tiers_0_5_3":
        # 0.5.3+ _handle_gpu_memory_settings (CUDA GPUs; the NPU branches are left out)
        if gpu_mib < 20 * 1024:
            return 2048, 8
        if gpu_mib < 35 * 1024:
            return 2048, 24 if tp < 4 else 80
        if gpu_mib < 60 * 1024:
            return 4096, 32 if tp < 4 else 160
        if gpu_mib < 160 * 1024:
            return 8192, 256 if tp < 4 else 512
        return 16384, 512
    if rule == "by_gpu_35g_160g":
        # 0.4.8-0.5.2: 2048 under 35 GiB, 8192 under 160 GiB, 16384 above; graphs 8/80 under 35 GiB, else 160
        if gpu_mib < 35 * 1024:
            return 2048, 8 if tp < 4 else 80
        return (8192 if gpu_mib < 160 * 1024 else 16384), 160
    if rule == "by_gpu_25g_180g":
        # 0.4.7: 16384 above 180,000 MiB, 2048 under 25,000 MiB, else 8192; graphs 8 under 25,000 MiB else 160
        if gpu_mib > 180_000:
            return 16384, 160
        if gpu_mib < 25_000:
            return 2048, 8
        return 8192, 160
    # by_gpu_25g: 0.4.0-0.4.6
    return (2048, 8) if gpu_mib < 25_000 else (8192, 160)


def cuda_graph_batch_sizes(max_bs: int, *, speculative: bool = False) -> tuple[int, ...]:
    """The decode batch sizes SGLang captures up to ``max_bs`` (0.5.x ``_generate_cuda_graph_batch_sizes``)."""
    if speculative:
        sizes = [*range(1, 9), *range(10, 33, 2), *range(40, 65, 4), *range(72, 257, 8), *range(272, max_bs + 1, 16)]
    else:
        sizes = [1, 2, 4, 8, 12, *range(16, 257, 8), *range(272, 512, 16), *range(512, max_bs + 1, 32)]
    return tuple(bs for bs in sizes if bs <= max_bs)


def _piecewise_token_sizes(max_tokens: int) -> int:
    """How many token counts 0.5.10+ captures as piecewise CUDA graphs (``_generate_piecewise_cuda_graph_tokens``)."""
    sizes = [*range(4, 33, 4), *range(48, 257, 16), *range(288, 513, 32), *range(576, 1025, 64),
             *range(1280, 4097, 256), *range(4608, max_tokens + 1, 512)]
    return sum(1 for s in sizes if s <= max_tokens)


def speculative_reserve_mib(rule: str, algorithm: bool | str) -> float:
    """What SGLang's own fraction keeps outside the static share for speculative decoding, in MiB.

    ``_handle_gpu_memory_settings`` (server_args.py, read in the wheels): 0.4.8-0.5.2 add 2 GiB for
    any algorithm; 0.5.3-0.5.9 6 GiB for STANDALONE (a whole draft model and its graphs), none for
    NGRAM (no draft model), 2 GiB for the EAGLE family; 0.5.10+ the same but 4 GiB for the EAGLE
    family. ``True`` stands for an EAGLE-like algorithm; the 0.4.x table rules have no such term.
    """
    if not algorithm or rule not in ("reserved_by_gpu", "reserved_by_chunk", "reserved_by_chunk_piecewise"):
        return 0.0
    if rule == "reserved_by_gpu":
        return 2 * 1024
    name = algorithm.upper() if isinstance(algorithm, str) else "EAGLE"
    if name == "STANDALONE":
        return 6 * 1024
    if name == "NGRAM":
        return 0.0
    return (4 if rule == "reserved_by_chunk_piecewise" else 2) * 1024


def sglang_defaults(engine: EngineVersionInfo, gpu_mib: int, tp: int, pp: int = 1, *,
                    chunked_prefill_size: int | None = None, speculative: bool | str = False,
                    mla: bool = False) -> SGLangDefaults:
    """SGLang's own choice of ``mem_fraction_static`` (and what it depends on) for this GPU.

    Args:
        engine: the SGLang release (its table row names the rules).
        gpu_mib: GPU memory as ``nvidia-smi`` reports it (the catalog's ``memory_mib``).
        tp: tensor-parallel size. pp: pipeline-parallel size.
        chunked_prefill_size: the user's ``--chunked-prefill-size``; None for SGLang's default.
        speculative: the ``--speculative-algorithm`` (its name, or True for an EAGLE-like one);
            what it adds to the reserve is :func:`speculative_reserve_mib`.
        mla: the model uses MLA (0.5.10+ caps the piecewise graphs at 2048 tokens).
    """
    extra = engine.defaults.extra
    rule = str(extra.get("mem_fraction_rule", "tp_table"))
    chunk_rule = str(extra.get("chunked_prefill_rule", "by_gpu_25g"))
    chunk, max_bs = _chunk_and_graphs(chunk_rule, gpu_mib, tp)
    if chunked_prefill_size is not None:
        chunk = chunked_prefill_size
    parallel = tp * pp
    reserved = 0.0
    if rule == "tp_table":
        frac = _tp_table(tp)
    elif rule == "tp_pp_table_81920":
        frac = _tp_table(parallel) if gpu_mib <= 81920 else 0.88
    elif rule == "tp_pp_table_large_gpu":
        frac = _tp_table(parallel) if gpu_mib <= 81920 else 0.88
        if gpu_mib > 180 * 1000:
            frac = 0.79
        elif gpu_mib > 96 * 1024:
            keep = 1024 * (20 if speculative else 18)
            frac = min(frac + 48 * 1024 * (1 - frac) / gpu_mib, (gpu_mib - keep) / gpu_mib)
        elif speculative:
            frac *= 0.95
    elif rule == "reserved_by_gpu":
        if gpu_mib < 35 * 1024:
            reserved = (2.8 + parallel / 10) * 1024
        elif gpu_mib < 90 * 1024:
            reserved = (9.5 + parallel / 2) * 1024
        elif gpu_mib < 160 * 1024:
            reserved = (12 + parallel / 2) * 1024
        else:
            reserved = 32 * 1024
        reserved += speculative_reserve_mib(rule, speculative)
        frac = round((gpu_mib - reserved) / gpu_mib, 3)
    elif rule in ("reserved_by_chunk", "reserved_by_chunk_piecewise"):
        reserved = 512 + max(chunk, 2048) * 1.5 + max_bs * 2 + parallel / 8 * 1024
        if rule == "reserved_by_chunk_piecewise":
            # 0.5.10+: non-MLA models 8 MiB per captured token size; MLA a flat 1.5 GiB
            # ("the memory overhead is much higher than expected with fa3")
            reserved += 1.5 * 1024 if mla else _piecewise_token_sizes(chunk) * 8
        if gpu_mib > 60 * 1024:
            reserved = max(reserved, 10 * 1024)
        reserved += speculative_reserve_mib(rule, speculative)
        frac = round((gpu_mib - reserved) / gpu_mib, 3)
    else:  # pragma: no cover - the table test checks every rule name
        raise ValueError(f"unknown SGLang mem_fraction_rule {rule!r}")
    return SGLangDefaults(round(frac, 3), chunk, max_bs, reserved, rule)


def max_running_requests(max_total_tokens: int, context_len: int) -> int:
    """SGLang's request-pool size when ``--max-running-requests`` is not set.

    ``ModelRunner.init_memory_pool``: ``max_num_reqs = min(max(int(max_total_num_tokens /
    context_len * 512), 2048), 4096)`` (the 0.4.x-0.5.x wheels); the scheduler then admits at
    most that many running requests.
    """
    if context_len <= 0:
        return 2048
    return min(max(int(max_total_tokens / context_len * 512), 2048), 4096)


# The request pool SGLang sizes when --max-running-requests is unset is at least this large
# (``max_running_requests``); the KV pool, not this number, bounds the running batch.
DEFAULT_POOL_FLOOR = 2048


def prep_defaults(engine: EngineVersionInfo, gpu_mib: int, tp: int, pp: int, *, mla: bool,
                  max_num_batched_tokens: int | None, speculative: str | None = None) -> tuple[float, int, int]:
    """(mem_fraction_static, chunked_prefill_size, default running-request cap) for the sizing core.

    ``speculative``: the configured ``--speculative-algorithm``; SGLang's own rule then keeps more
    outside the static share (:func:`speculative_reserve_mib`; 0.4.7 x0.95 or 20 GiB kept above
    96 GiB), which the fraction llmdeploy renders keeps too.
    """
    d = sglang_defaults(engine, gpu_mib, tp, pp, chunked_prefill_size=max_num_batched_tokens, mla=mla,
                        speculative=speculative or False)
    return d.mem_fraction_static, d.chunked_prefill_size, DEFAULT_POOL_FLOOR


def mem_fraction_static(default: float, gpu_memory_utilization: float) -> float:
    """The ``--mem-fraction-static`` llmdeploy renders for ``runtime.gpuMemoryUtilization``.

    The spec's field is the share of the GPU the engine may use in all (weights, KV cache,
    activations, CUDA graphs). SGLang's own default already leaves its activation and
    CUDA-graph reserve outside the static share and uses the whole GPU, so llmdeploy keeps
    that reserve and takes the rest of the GPU away from the static share:
    ``mfs = SGLang's default - (1 - gpuMemoryUtilization)`` (0.835 - 0.10 = 0.735 on an H100
    at 0.90). ``gpuMemoryUtilization: 1.0`` renders SGLang's own default.
    """
    return round(default - (1.0 - gpu_memory_utilization), 3)


def utilization_for(default: float, mem_fraction: float) -> float:
    """The ``gpuMemoryUtilization`` that renders ``mem_fraction`` (the inverse of :func:`mem_fraction_static`)."""
    return round(1.0 - (default - mem_fraction), 6)


# PyTorch's CUDA caching allocator (c10/cuda/CUDACachingAllocator.cpp): a request of at least
# kMinLargeAlloc (10 MiB) gets its own segment rounded up to kRoundLarge (2 MiB); smaller ones
# share 2 MiB / 20 MiB segments. SGLang reads its memory with ``torch.cuda.mem_get_info`` after
# ``empty_cache`` (utils.py ``get_available_gpu_memory``), so it sees whole segments, not tensors.
_MIN_LARGE_ALLOC = 10 << 20
_ROUND_LARGE = 2 << 20


def _segment_waste(nbytes: float) -> int:
    n = int(nbytes)
    if n < _MIN_LARGE_ALLOC:
        return 0
    return -n % _ROUND_LARGE


def loader_extra_bytes(model, tp: int, act_bytes: int, linear_bytes: float, stage, *, rope_fp32: bool = True) -> int:
    """What SGLang's ``Load weight end ... mem usage`` holds beyond the checkpoint's bytes, per GPU.

    Two things read in the wheels, neither fitted on the logs:

    * from 0.4.3 the rotary cos/sin cache stays FP32 on CUDA (``RotaryEmbedding.__init__``, "cache
      needs to be in FP32 for numerical stability", rotary_embedding.py in the 0.4.3 and 0.4.3.post4
      wheels; 0.4.0-0.4.2 keep the model dtype: ``rope_cache_fp32`` in engines/sglang.yaml), where
      the common weight model counts it in the model dtype;
    * every weight tensor of 10 MiB or more sits in its own allocator segment rounded up to
      2 MiB (PyTorch's caching allocator), and SGLang measures free memory, so the rounding
      counts: the merged QKV, O, gate/up and down projections of each layer (SGLang's
      ``QKVParallelLinear``/``MergedColumnParallelLinear`` shards), the routed experts' two
      stacked tensors (``FusedMoE`` ``w13_weight``/``w2_weight``), the vocab-parallel embedding
      and an untied LM head. QwQ-32B at TP4 wastes 3.5 MiB a layer (0.22 GiB over 64 layers),
      Llama-3.1-8B at TP1 nothing (its projections are whole MiB multiples of 2).

    Args:
        model: the catalog model. tp: tensor-parallel size. act_bytes: bytes of the model dtype.
        linear_bytes: bytes per weight of its linear layers (quantization included).
        stage: the pipeline stage (:class:`~llmdeploy.sizing.memory.StageLayout`).
        rope_fp32: the release keeps the rotary cache in FP32 (the engine table's ``rope_cache_fp32``).
    """
    from .memory import VOCAB_PADDING, rope_cache_bytes

    h, hd = model.hidden_size, model.head_dim
    q_heads = max(model.num_attention_heads // tp, 1)
    kv_heads = max(model.num_kv_heads // tp, 1)
    waste = 0
    if model.mla is None:
        per_layer = (_segment_waste(h * (q_heads + 2 * kv_heads) * hd * linear_bytes)
                     + _segment_waste(q_heads * hd * h * linear_bytes))
    else:  # MLA projections: too many shapes to follow; the dense part below still counts
        per_layer = 0
    moe = model.moe
    k_dense = moe.first_k_dense_layers if moe is not None else model.num_layers
    start, end = stage.first_layer, stage.first_layer + stage.num_layers
    dense_layers = max(0, min(end, k_dense) - start)
    moe_layers = stage.num_layers - dense_layers
    inter = model.intermediate_size // tp
    dense_mlp = _segment_waste(2 * inter * h * linear_bytes) + _segment_waste(inter * h * linear_bytes)
    waste += per_layer * stage.num_layers + dense_mlp * dense_layers
    if moe is not None and moe_layers:
        e_inter = moe.moe_intermediate_size // tp
        experts = (_segment_waste(moe.num_experts * 2 * e_inter * h * linear_bytes)
                   + _segment_waste(moe.num_experts * e_inter * h * linear_bytes))
        waste += experts * moe_layers
    unit = VOCAB_PADDING * tp  # vocab_parallel_embedding.py pads to 64 rows per rank, as vLLM
    vocab_rows = -(-model.vocab_size // unit) * unit // tp
    if stage.is_first:
        waste += _segment_waste(vocab_rows * h * act_bytes)
    if stage.is_last and not model.tie_word_embeddings:
        waste += _segment_waste(vocab_rows * h * act_bytes)
    rope_extra = rope_cache_bytes(model, 4) - rope_cache_bytes(model, act_bytes) if rope_fp32 else 0
    return int(waste + rope_extra)
