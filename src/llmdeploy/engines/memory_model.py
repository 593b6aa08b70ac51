"""The fitted constants of the memory model, typed, for one engine version.

The numbers live in the engine tables (``engines/vllm.yaml`` and ``engines/tgi.yaml``,
section ``memory_model``), keyed by version range like every other engine fact, each
with the log cases or pull requests it was fitted to. This module only turns the raw
mapping into a frozen :class:`MemoryModel`; :attr:`EngineVersionInfo.memory_model
<llmdeploy.engines.EngineVersionInfo.memory_model>` is the accessor that calls it.

The section has a ``base`` mapping and a list of ``eras``; an era applies to the
versions ``from <= v < until`` (either end open when null) *and* to one engine
generation: vLLM 0.8-0.10 could run either the V0 or the V1 engine, and the two size
their KV cache differently.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..datafiles import deep_merge
from ..errors import InternalError
from ..records import record

__all__ = [
    "ActivationModel",
    "CudaGraphModel",
    "MemoryModel",
    "NonTorchModel",
    "memory_model_from_table",
]


@record
class ActivationModel:
    """Peak activation of the engine's profile run (see docs/sizing.md, "Activation").

    Attributes:
        intermediate_factor: activation elements per token per MLP intermediate
            channel of one rank (gate/up output 2·I plus the activation output I: 3).
        hidden_factor: activation elements per token per hidden channel (residual,
            normalised input, attention output: about 3).
        sampler_bytes_per_logit: bytes the sampler's dummy pass holds per logit
            (rows = profiled sequences, columns = vocabulary); 0 where the profile run
            did not sample.
        moe_workspace_factor: share of the fused-MoE workspace
            ``tokens × top_k × (3·I_moe/TP + H)`` elements that counts in the peak.
        moe_workspace_factor_fp8_block: the same for block-quantized FP8 experts.
        moe_workspace_additive: True when the MoE workspace stays allocated while the
            sampler runs (V1), False when it is only part of the forward peak (V0).
        chunked_prefill_threshold: V0's OpenAI server turned chunked prefill on by
            itself above this ``max_model_len``; None when the engine decides otherwise.
        chunked_prefill_batched_tokens: V0's ``max_num_batched_tokens`` with chunked
            prefill on, when the era's logs disagree with the engine table's default;
            None to use the engine table's value.
        prefill_logits_copies: logits tensors of ``tokens × vocabulary`` elements the
            profile run holds on top of the forward (TGI's warm-up asks for prompt
            logprobs: the logits of every prompt token and, before 3.0, their
            out-of-place log-softmax); 0 where only sampled rows get logits.
        sampler_warmup_copies: fp32 ``max_num_seqs × vocabulary`` logits tensors the
            sampler warm-up needs free *after* the KV cache and CUDA graphs are allocated
            (V1 ``compile_or_warm_up_model`` → ``_dummy_sampler_run``); 0 where there is
            no such warm-up.
        sampler_warmup_mxfp4_moe_gib: what a MoE model whose experts run the MXFP4 kernels (gpt-oss) needs free on top of those copies: the
            eager ``_dummy_run`` of ``max_num_seqs`` tokens just before the sampler leaves
            the expert kernels' buffers in PyTorch's cache (the gpt-oss-20b traceback: 1.78
            GiB reserved but unallocated at the failure).
    """

    intermediate_factor: float
    hidden_factor: float
    sampler_bytes_per_logit: float
    moe_workspace_factor: float
    moe_workspace_factor_fp8_block: float
    moe_workspace_additive: bool
    chunked_prefill_threshold: int | None
    chunked_prefill_batched_tokens: int | None
    prefill_logits_copies: float
    sampler_warmup_copies: float = 0.0
    sampler_warmup_mxfp4_moe_gib: float = 0.0


@record
class NonTorchModel:
    """Memory outside PyTorch's allocator that the profiler charges to the budget.

    Attributes:
        tp1_gib: one GPU, no tensor parallelism (cuBLAS/cuDNN workspaces and what the
            profile run adds outside torch).
        pp_only_gib: pipeline parallelism without tensor parallelism.
        tp_nvlink_extra_gib: added with TP > 1 on NVLink/NVSwitch GPUs (NCCL, custom
            all-reduce and NVLS buffers).
        tp_pcie_extra_gib: added with TP > 1 on PCIe GPUs (custom all-reduce off or
            small without peer-to-peer access).
    """

    tp1_gib: float
    pp_only_gib: float
    tp_nvlink_extra_gib: float
    tp_pcie_extra_gib: float


@record
class CudaGraphModel:
    """Memory of the CUDA graphs captured at start.

    Attributes:
        capture: which capture list the version uses: ``v0`` (full-model graphs for
            batch 1, 2, 4, 8..256 up to ``max_num_seqs``), ``v1-piecewise`` (0.8-0.10:
            1, 2, 4, 8..512 step 8), ``v1-full-and-piecewise`` (0.11+: piecewise sizes up
            to ``min(2·max_num_seqs, 512)`` plus full decode graphs up to
            ``max_num_seqs``), ``tgi`` (``--cuda-graphs`` 1..32), or ``none``.
        mib_per_layer_graph: MiB per decoder layer per captured graph.
        reference_hidden: when set, the per-layer-graph figure scales with
            ``hidden_size / reference_hidden`` (V0 graphs hold whole-model activations).
    """

    capture: str
    mib_per_layer_graph: float
    reference_hidden: int | None


@record
class StartupModel:
    """What a worker holds before it measures memory, and the check it makes there.

    vLLM V1 takes an "init memory snapshot" in ``gpu_worker.py`` ``init_device`` and, from
    0.9.2, refuses to start when ``gpu_memory_utilization × total`` exceeds the free memory
    it sees there (``Free memory on device … on startup is less than desired GPU memory
    utilization``; ``v1/worker/utils.py`` ``request_memory`` from 0.14.0). Up to 0.10.x the
    snapshot comes before the distributed set-up, so NCCL's memory lands in the profiled
    non-torch memory; from 0.11.0 ("Initialize the distributed environment BEFORE taking
    memory snapshot") it is outside the budget and lowers the free memory the check sees.

    Attributes:
        free_memory_check: the worker refuses a utilization above the free memory at start.
        distributed_before_snapshot: communicators exist before the snapshot (0.11+).
        parallel_group_gib: per rank, for each tensor- or pipeline-parallel group of more
            than one GPU created before the snapshot (NCCL and custom all-reduce buffers),
            on NVLink/NVSwitch or xGMI GPUs.
        parallel_group_pcie_gib: the same on PCIe GPUs (NCCL sizes its buffers per channel,
            and a PCIe ring uses a few channels where NVSwitch uses 16-32).
        ep_group_gib: per rank, for the expert-parallel group's communicator.
        ep_group: when that group exists: ``never``, ``always`` (0.11-0.13: every model
            with tensor × data parallel > 1) or ``moe`` (0.14+: MoE models only,
            ``distributed/parallel_state.py`` ``model_config.is_moe``).
    """

    free_memory_check: bool
    distributed_before_snapshot: bool
    parallel_group_gib: float
    ep_group_gib: float
    ep_group: str
    parallel_group_pcie_gib: float = 0.0


@record
class SamplerModel:
    """Which top-k/top-p implementation the profile run's dummy sampler pass uses.

    vLLM V1 up to 0.11.x samples with FlashInfer whenever it is installed (the official
    images install it) unless ``VLLM_USE_FLASHINFER_SAMPLER=0``; from 0.12.0 FlashInfer is
    opt-in (``=1``) and the PyTorch path sorts the logits
    (``v1/sample/ops/topk_topp_sampler.py`` ``TopKTopPSampler.__init__`` at each tag).

    Attributes:
        flashinfer_default: FlashInfer is used unless the environment turns it off.
        flashinfer_bytes_per_logit: what FlashInfer's pass holds per logit (no sort).
    """

    flashinfer_default: bool
    flashinfer_bytes_per_logit: float


NATIVE_SAMPLER = SamplerModel(flashinfer_default=False, flashinfer_bytes_per_logit=0.0)


NO_STARTUP_CHECK = StartupModel(free_memory_check=False, distributed_before_snapshot=False,
                                parallel_group_gib=0.0, ep_group_gib=0.0, ep_group="never")


@record
class MemoryModel:
    """Everything the sizing needs to mimic one engine version's memory split.

    Attributes:
        engine: ``vllm``, ``tgi`` or ``tensorrt-llm``.
        version: the engine version the model was selected for.
        era: name of the table row that applied.
        generation: ``V0``, ``V1``, ``tgi`` or ``tensorrt-llm``.
        budget: how the KV budget is formed, in words (for reports).
        default_gpu_memory_utilization: the engine's default share of GPU memory.
        block_size: tokens per KV-cache block (the count is floored to whole blocks).
        cudagraph_in_budget: CUDA-graph memory is subtracted before sizing the KV cache.
        kv_budget_fraction: share of the remaining memory turned into KV blocks (TGI
            keeps 5 % back).
        cuda_reserved_gib: what the driver reports (``nvidia-smi``) minus what CUDA
            lets a process use (``torch.cuda.mem_get_info()[1]``).
        sliding_window_credit: the reported KV token count credits sliding-window
            layers (they only keep the window).
        mla_absorbed_weights: MLA layers keep absorbed ``W_UQ_UK``/``W_UV_O`` copies
            beside the checkpoint weights (V0 0.7.1-0.7.x).
        mla_dequantized_decode_weights: quantized MLA layers keep a dequantized
            ``kv_b_proj`` (``W_UK_T``/``W_UV``) for decode.
        pp_remainder: where ``num_layers % PP`` extra layers go: ``last`` (the last
            stage, vLLM ≤ 0.7) or ``before_last`` (one each to the stages before the last).
        mla_latent_cache: MLA models cache the compressed latent; before vLLM 0.7.1
            DeepSeek-V2/V3 ran as plain multi-head attention and cached full K and V
            per head (V padded to the query-key head size).
        activation: the activation peak constants.
        non_torch: the non-torch memory constants.
        cuda_graphs: the CUDA-graph constants.
        sources: where the era's constants come from (log cases, pull requests).
        fraction_of_free: the utilization is a share of what is left after the profile
            run, not of the device (TensorRT-LLM's ``kv_cache_free_gpu_memory_fraction``:
            KV = (total - peak) x fraction); False: KV = total x utilization - peak.
        startup: what the worker holds before its memory snapshot and whether it
            refuses a utilization above the free memory there (:class:`StartupModel`).
        sampler: the profile run's sampler implementation (:class:`SamplerModel`).
        mla_entry_align_bytes: MLA cache entries are allocated padded to a multiple of
            this many bytes (V0 0.7.2-0.7.x: 256); 0: unpadded.
    """

    engine: str
    version: str
    era: str
    generation: str
    budget: str
    default_gpu_memory_utilization: float
    block_size: int
    cudagraph_in_budget: bool
    kv_budget_fraction: float
    cuda_reserved_gib: float
    sliding_window_credit: bool
    mla_absorbed_weights: bool
    mla_dequantized_decode_weights: bool
    mla_latent_cache: bool
    pp_remainder: str
    activation: ActivationModel
    non_torch: NonTorchModel
    cuda_graphs: CudaGraphModel
    sources: tuple[str, ...]
    fraction_of_free: bool = False
    startup: StartupModel = NO_STARTUP_CHECK
    sampler: SamplerModel = NATIVE_SAMPLER
    mla_entry_align_bytes: int = 0


def _version_key(text: str) -> tuple[int, ...]:
    """A sortable key for a release string (``0.10.1.1`` > ``0.9.2``); suffixes ignored."""
    parts: list[int] = []
    for piece in text.strip().lstrip("v").split("."):
        digits = ""
        for ch in piece:
            if not ch.isdigit():
                break
            digits += ch
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def _covers(era: Mapping[str, Any], version: str) -> bool:
    v = _version_key(version)
    start, until = era.get("from"), era.get("until")
    if start is not None and v < _version_key(str(start)):
        return False
    return not (until is not None and v >= _version_key(str(until)))


def _row(rows: Any, version: str, generation: str) -> Mapping[str, Any] | None:
    """The last row of a version-keyed list (``eras``, ``startup``, ``sampler``) that covers
    ``version`` for ``generation`` (a row without ``generation`` covers every one); None if none."""
    matches = [row for row in rows if isinstance(row, Mapping) and _covers(row, version)
               and str(row.get("generation", generation)) == generation]
    return matches[-1] if matches else None


class _Reader:
    """Typed reads with errors that name the table key."""

    def __init__(self, data: Mapping[str, Any], where: str) -> None:
        self.data = data
        self.where = where

    def _fail(self, key: str, expected: str) -> InternalError:
        return InternalError(
            f"engine table memory_model ({self.where}): {key} must be {expected}, "
            f"got {self.data.get(key, '<missing>')!r}"
        )

    def number(self, key: str) -> float:
        value = self.data.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self._fail(key, "a number")
        return float(value)

    def flag(self, key: str) -> bool:
        value = self.data.get(key)
        if not isinstance(value, bool):
            raise self._fail(key, "true or false")
        return value

    def text(self, key: str) -> str:
        value = self.data.get(key)
        if not isinstance(value, str) or not value:
            raise self._fail(key, "a string")
        return value

    def opt_int(self, key: str) -> int | None:
        value = self.data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._fail(key, "an integer or null")
        return value

    def sub(self, key: str) -> _Reader:
        value = self.data.get(key)
        if not isinstance(value, Mapping):
            raise self._fail(key, "a mapping")
        return _Reader(value, f"{self.where}.{key}")


def _pp_remainder(r: _Reader) -> str:
    value = r.text("pp_remainder")
    if value not in ("last", "before_last"):
        raise r._fail("pp_remainder", "last or before_last")
    return value


_CAPTURES = frozenset({"v0", "v1-piecewise", "v1-full-and-piecewise", "tgi", "none"})


def memory_model_from_table(
    engine: str,
    version: str,
    raw: Mapping[str, Any],
    *,
    generation: str,
    default_gpu_memory_utilization: float,
    block_size: int | None,
    cudagraph_in_budget: bool,
) -> MemoryModel:
    """Select and type the memory-model constants for one engine version.

    Args:
        engine: engine name (``vllm``, ``tgi``).
        version: resolved engine version.
        raw: the table's ``memory_model`` mapping.
        generation: engine generation to select (``V0``/``V1`` for vLLM, ``tgi``).
        default_gpu_memory_utilization: the version's default utilization (engine
            table ``defaults``).
        block_size: the version's KV block size (engine table ``defaults``); None
            means one token per block.
        cudagraph_in_budget: whether the version subtracts CUDA-graph memory from the
            KV budget (engine table ``defaults``).

    Returns:
        The typed constants.

    Raises:
        InternalError: the table has no era for this version and generation, or a
            value has the wrong type.
    """
    if not isinstance(raw, Mapping) or not isinstance(raw.get("eras"), (list, tuple)):
        raise InternalError(f"engine table of {engine} has no memory_model.eras section")
    base = raw.get("base") or {}
    era = _row(raw["eras"], version, generation)
    if era is None:
        raise InternalError(
            f"engine table of {engine} has no memory_model era for version {version} ({generation})"
        )
    merged = deep_merge(base, era.get("set") or {})
    where = f"{engine} {era.get('name', '?')}"
    r = _Reader(merged, where)
    act, nt, cg = r.sub("activation"), r.sub("non_torch"), r.sub("cuda_graphs")
    capture = cg.text("capture")
    if capture not in _CAPTURES:
        raise cg._fail("capture", "one of " + ", ".join(sorted(_CAPTURES)))
    sources = era.get("source") or ()
    if isinstance(sources, str):
        sources = (sources,)
    return MemoryModel(
        engine=engine,
        version=version,
        era=str(era.get("name", "")),
        generation=generation,
        budget=r.text("budget"),
        default_gpu_memory_utilization=float(default_gpu_memory_utilization),
        block_size=int(block_size) if block_size else 1,
        cudagraph_in_budget=bool(cudagraph_in_budget),
        kv_budget_fraction=r.number("kv_budget_fraction"),
        cuda_reserved_gib=r.number("cuda_reserved_gib"),
        sliding_window_credit=r.flag("sliding_window_credit"),
        mla_absorbed_weights=r.flag("mla_absorbed_weights"),
        mla_dequantized_decode_weights=r.flag("mla_dequantized_decode_weights"),
        mla_latent_cache=r.flag("mla_latent_cache"),
        pp_remainder=_pp_remainder(r),
        activation=ActivationModel(
            intermediate_factor=act.number("intermediate_factor"),
            hidden_factor=act.number("hidden_factor"),
            sampler_bytes_per_logit=act.number("sampler_bytes_per_logit"),
            moe_workspace_factor=act.number("moe_workspace_factor"),
            moe_workspace_factor_fp8_block=act.number("moe_workspace_factor_fp8_block"),
            moe_workspace_additive=act.flag("moe_workspace_additive"),
            chunked_prefill_threshold=act.opt_int("chunked_prefill_threshold"),
            chunked_prefill_batched_tokens=act.opt_int("chunked_prefill_batched_tokens"),
            prefill_logits_copies=act.number("prefill_logits_copies"),
            sampler_warmup_copies=act.number("sampler_warmup_copies") if "sampler_warmup_copies" in act.data else 0.0,
            sampler_warmup_mxfp4_moe_gib=(act.number("sampler_warmup_mxfp4_moe_gib")
                                    if "sampler_warmup_mxfp4_moe_gib" in act.data else 0.0),
        ),
        non_torch=NonTorchModel(
            tp1_gib=nt.number("tp1_gib"),
            pp_only_gib=nt.number("pp_only_gib"),
            tp_nvlink_extra_gib=nt.number("tp_nvlink_extra_gib"),
            tp_pcie_extra_gib=nt.number("tp_pcie_extra_gib"),
        ),
        cuda_graphs=CudaGraphModel(
            capture=capture,
            mib_per_layer_graph=cg.number("mib_per_layer_graph"),
            reference_hidden=cg.opt_int("reference_hidden"),
        ),
        sources=tuple(str(s) for s in sources),
        fraction_of_free=r.flag("fraction_of_free") if "fraction_of_free" in r.data else False,
        startup=_startup(raw, version, generation, where),
        sampler=_sampler(raw, version, generation, where),
        mla_entry_align_bytes=int(r.number("mla_entry_align_bytes")) if "mla_entry_align_bytes" in r.data else 0,
    )


def _sampler(raw: Mapping[str, Any], version: str, generation: str, where: str) -> SamplerModel:
    """The ``sampler`` row of the table for ``version`` and ``generation`` (none: PyTorch's)."""
    row = _row(raw.get("sampler") or (), version, generation)
    if row is None:
        return NATIVE_SAMPLER
    r = _Reader(row, f"{where}.sampler")
    return SamplerModel(flashinfer_default=r.flag("flashinfer_default"),
                        flashinfer_bytes_per_logit=r.number("flashinfer_bytes_per_logit"))


_EP_GROUPS = frozenset({"never", "always", "moe"})


def _startup(raw: Mapping[str, Any], version: str, generation: str, where: str) -> StartupModel:
    """The ``startup`` row of the table for ``version`` and ``generation`` (none: no check)."""
    row = _row(raw.get("startup") or (), version, generation)
    if row is None:
        return NO_STARTUP_CHECK
    r = _Reader(row, f"{where}.startup")
    ep_group = r.text("ep_group")
    if ep_group not in _EP_GROUPS:
        raise r._fail("ep_group", "never, always or moe")
    return StartupModel(
        free_memory_check=r.flag("free_memory_check"),
        distributed_before_snapshot=r.flag("distributed_before_snapshot"),
        parallel_group_gib=r.number("parallel_group_gib"),
        ep_group_gib=r.number("ep_group_gib"),
        ep_group=ep_group,
        parallel_group_pcie_gib=r.number("parallel_group_pcie_gib"),
    )
