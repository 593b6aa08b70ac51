"""LD2xx: sizing rules (the model must fit the GPUs it is given).

The arithmetic lives in :mod:`llmdeploy.sizing` (docs/sizing.md); each reason it
returns names its kind of problem (:class:`~llmdeploy.sizing.SizingProblem`) and the
spec field it belongs to. Each rule here declares the id of one kind of problem
(:data:`RULE_IDS`) and turns the reasons of ``ctx.resolved.sizing`` into located
diagnostics, so that every id is documented and can be looked up. When the GPU, the model or the engine
could not be resolved there is no sizing and these rules stay silent (LD114/LD115
report why).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from ..diagnostics import Severity
from ..sizing.reasons import SizingProblem
from .registry import Finding, RuleContext, rule

if TYPE_CHECKING:  # pragma: no cover
    from ..sizing import Reason

#: The rule id of each kind of sizing problem (``size -o json`` prints them too).
RULE_IDS: dict[SizingProblem, str] = {}


def _sizing_rule(rule_id: str, problem: SizingProblem, severity: Severity = Severity.ERROR):  # type: ignore[no-untyped-def]
    """Register a rule for one kind of sizing problem; its id is written here, once."""
    RULE_IDS[problem] = rule_id
    return rule(rule_id, severity)


def _findings(ctx: RuleContext, problem: SizingProblem) -> Iterator[Finding]:
    report = ctx.resolved.sizing
    if report is None:
        return
    for severity, reasons in ((Severity.ERROR, report.reasons), (Severity.WARNING, report.warnings)):
        r: Reason
        for r in reasons:
            if r.problem is problem:
                yield Finding(r.field, r.message, r.hint, severity=severity)


@_sizing_rule("LD201", SizingProblem.WEIGHTS_DO_NOT_FIT)
def weights_fit(ctx: RuleContext) -> Iterator[Finding]:
    """The model's weights do not fit the GPU memory the engine may use.

    Weights per GPU (split over tensor parallel ranks, embeddings and LM head on the
    first and last pipeline stage, quantized layers at their packed size) must fit in
    ``GPU memory × gpuMemoryUtilization``. The hint names the tensor-parallel size that
    would fit on one node, else a bigger GPU or a quantized checkpoint.

    Fails::

        model:
          id: meta-llama/Llama-3.1-70B-Instruct    # 131 GiB of bf16 weights
        resources:
          gpu: {type: h100-sxm}
          parallelism: {tensor: 1}

    Passes::

        model:
          id: meta-llama/Llama-3.1-70B-Instruct
        resources:
          gpu: {type: h100-sxm}
          parallelism: {tensor: 4}
    """
    yield from _findings(ctx, SizingProblem.WEIGHTS_DO_NOT_FIT)


@_sizing_rule("LD202", SizingProblem.KV_CACHE_TOO_SMALL)
def one_request_fits_kv_cache(ctx: RuleContext) -> Iterator[Finding]:
    """The KV cache cannot hold one request of ``maxModelLen`` tokens.

    After weights, the activation peak of the engine's profile run, non-torch memory
    (and, from vLLM 0.21, CUDA graphs) what is left of ``GPU memory ×
    gpuMemoryUtilization`` becomes the KV cache. vLLM refuses to start when one
    request of ``maxModelLen`` tokens does not fit in it ("The model's max seq len is
    larger than the maximum number of tokens that can be stored in KV cache"). The
    hint gives the longest ``maxModelLen`` that fits.

    Fails::

        model: {id: meta-llama/Llama-3.1-8B-Instruct}
        runtime:
          maxModelLen: 131072
        resources:
          gpu: {type: l4}

    Passes::

        model: {id: meta-llama/Llama-3.1-8B-Instruct}
        runtime:
          maxModelLen: 32768
        resources:
          gpu: {type: l4}
    """
    yield from _findings(ctx, SizingProblem.KV_CACHE_TOO_SMALL)


@_sizing_rule("LD203", SizingProblem.PARALLELISM_DOES_NOT_DIVIDE)
def parallelism_divides_model(ctx: RuleContext) -> Iterator[Finding]:
    """The tensor- or pipeline-parallel size does not divide the model.

    vLLM shards attention heads over tensor-parallel ranks: the TP size must divide the
    attention heads, and the KV heads must divide by it (or it by them, when each
    rank keeps a replica). Pipeline parallelism cannot exceed the number of layers.

    Fails::

        model: {id: google/gemma-3-27b-it}   # 32 heads
        resources:
          parallelism: {tensor: 3}

    Passes::

        model: {id: google/gemma-3-27b-it}
        resources:
          parallelism: {tensor: 2}
    """
    yield from _findings(ctx, SizingProblem.PARALLELISM_DOES_NOT_DIVIDE)


@_sizing_rule("LD204", SizingProblem.MORE_GPUS_THAN_A_NODE)
def parallelism_fits_a_node(ctx: RuleContext) -> Iterator[Finding]:
    """Tensor × pipeline parallel needs more GPUs than one node of this type has.

    A replica is one pod on one node here; the catalog gives the GPUs a typical node or
    instance of the type has (``gpus_per_node``). Spanning nodes needs a multi-node
    deployment (LeaderWorkerSet), which this spec does not describe.

    Fails::

        resources:
          gpu: {type: l4}          # 8 per node
          parallelism: {tensor: 8, pipeline: 2}

    Passes::

        resources:
          gpu: {type: l4}
          parallelism: {tensor: 8}
    """
    yield from _findings(ctx, SizingProblem.MORE_GPUS_THAN_A_NODE)


@_sizing_rule("LD205", SizingProblem.LOW_CONCURRENCY, Severity.WARNING)
def enough_concurrency(ctx: RuleContext) -> Iterator[Finding]:
    """The KV cache holds fewer requests than the service is set up to run.

    Warns when fewer than 1.5 requests of ``maxModelLen`` tokens fit at once (one long
    request stalls the rest), or when an explicit ``maxNumSeqs`` exceeds what the KV
    cache holds at ``maxModelLen`` (long requests get preempted). ``maxNumSeqs: auto``
    derives the value from the KV capacity and never triggers the second case.

    Fails::

        model: {id: meta-llama/Llama-3.1-8B-Instruct}
        runtime:
          maxModelLen: 32768
        resources:
          gpu: {type: l4}

    Passes::

        model: {id: meta-llama/Llama-3.1-8B-Instruct}
        runtime:
          maxModelLen: 8192
          maxNumSeqs: auto
        resources:
          gpu: {type: l4}
    """
    yield from _findings(ctx, SizingProblem.LOW_CONCURRENCY)


@_sizing_rule("LD206", SizingProblem.CONTEXT_BEYOND_MODEL)
def context_within_model_limit(ctx: RuleContext) -> Iterator[Finding]:
    """``maxModelLen`` is longer than the model's ``max_position_embeddings``.

    vLLM refuses to start unless ``VLLM_ALLOW_LONG_MAX_MODEL_LEN=1`` is set, and the
    model was not trained for positions beyond its limit. An error; a warning when the
    spec sets that variable in ``runtime.env`` (it chose to go beyond on purpose).

    Fails::

        model: {id: microsoft/Phi-3-mini-4k-instruct}   # 4096 positions
        runtime:
          maxModelLen: 8192

    Passes::

        model: {id: microsoft/Phi-3-mini-4k-instruct}
        runtime:
          maxModelLen: 4096
    """
    # The sizing report holds it as an error, or as a warning when the spec sets the variable
    # (sizing.allows_long_max_model_len): one severity in validate, size's verdict and its JSON.
    yield from _findings(ctx, SizingProblem.CONTEXT_BEYOND_MODEL)


@_sizing_rule("LD207", SizingProblem.GPU_CANNOT_RUN_DTYPE)
def gpu_runs_dtype_and_quantization(ctx: RuleContext) -> Iterator[Finding]:
    """The GPU cannot run the requested dtype or quantization.

    Errors: FP8 weights on a GPU with neither FP8 tensor cores nor vLLM's FP8 Marlin
    kernels (Turing), ``dtype: bfloat16`` without bfloat16 support (compute capability
    < 8.0), Marlin kernels (``awq_marlin``, ``gptq_marlin``) below compute capability
    8.0 or on AMD. Warnings: FP8 weights on Ampere run weight-only (FP8 Marlin), and a
    bfloat16 checkpoint on a GPU without bfloat16 is served in float16.

    Fails::

        model: {id: neuralmagic/Meta-Llama-3.1-8B-Instruct-FP8}
        resources:
          gpu: {type: t4}

    Passes::

        model: {id: neuralmagic/Meta-Llama-3.1-8B-Instruct-FP8}
        resources:
          gpu: {type: l4}
    """
    yield from _findings(ctx, SizingProblem.GPU_CANNOT_RUN_DTYPE)


@_sizing_rule("LD208", SizingProblem.QUANTIZATION_MISMATCH)
def quantization_matches_checkpoint(ctx: RuleContext) -> Iterator[Finding]:
    """The quantization needs a pre-quantized checkpoint, or contradicts the checkpoint's.

    AWQ, GPTQ, INT8 (W8A8) and compressed-tensors weights are produced offline; vLLM
    cannot quantize an unquantized checkpoint to them at load time (only ``fp8`` and
    ``bitsandbytes`` quantize on the fly). A pre-quantized checkpoint is detected by
    vLLM from its ``quantization_config``; asking for another method fails.

    Fails::

        model:
          id: meta-llama/Llama-3.1-8B-Instruct
          quantization: awq

    Passes::

        model:
          id: hugging-quants/Meta-Llama-3.1-8B-Instruct-AWQ-INT4
          quantization: awq
    """
    yield from _findings(ctx, SizingProblem.QUANTIZATION_MISMATCH)


@_sizing_rule("LD209", SizingProblem.CUDA_GRAPHS_OUTSIDE_BUDGET, Severity.WARNING)
def cuda_graphs_fit_headroom(ctx: RuleContext) -> Iterator[Finding]:
    """CUDA graphs may not fit in the memory left above ``gpuMemoryUtilization``.

    Before vLLM 0.21 the KV cache takes the whole ``gpuMemoryUtilization`` budget and
    CUDA graphs are captured afterwards, on top of it. With a utilization close to 1
    the remaining memory (minus the CUDA context) can be smaller than the graphs and
    the engine runs out of memory at start. TGI turns only 95 % of what its warm-up
    leaves into KV blocks and captures its graphs in the rest, which counts as room too.

    Fails::

        runtime:
          image: vllm/vllm-openai:v0.19.0
          gpuMemoryUtilization: 0.99

    Passes::

        runtime:
          image: vllm/vllm-openai:v0.19.0
          gpuMemoryUtilization: 0.92
    """
    yield from _findings(ctx, SizingProblem.CUDA_GRAPHS_OUTSIDE_BUDGET)


@_sizing_rule("LD210", SizingProblem.SAMPLER_WARMUP_OOM)
def sampler_warmup_fits(ctx: RuleContext) -> Iterator[Finding]:
    """The sampler warm-up after the KV cache is allocated would run out of memory.

    vLLM V1 allocates the KV cache from the profile run's budget, captures the CUDA graphs
    (outside ``gpuMemoryUtilization`` before 0.21), then warms the sampler up with
    ``maxNumSeqs`` dummy requests (vllm/v1/worker/gpu_worker.py ``compile_or_warm_up_model``
    → gpu_model_runner.py ``_dummy_sampler_run``, v0.19.0). That pass needs about five fp32
    copies of ``maxNumSeqs × vocabulary`` logits in what is left, and gpt-oss about 1.1 GiB
    more (its MXFP4 expert kernels leave buffers cached); with a large vocabulary, 1024 sequences and a
    high utilization it fails: gpt-oss-20b (201,088 tokens) at 0.95 on an H100 stops with "CUDA
    out of memory occurred when warming up sampler with 1024 dummy requests" at TP1 and TP2 and
    starts at 0.90 (tests/data/vllm_logs/sweeps). Below 1.0× of the need it is an error, up to
    1.15× a warning (the predicted free memory's error, docs/sizing.md §4). The hint
    gives the largest ``maxNumSeqs`` and the utilization that leave room.

    Fails::

        model: {id: openai/gpt-oss-20b}
        runtime:
          gpuMemoryUtilization: 0.95
          maxNumSeqs: 1024
        resources:
          gpu: {type: h100-sxm}

    Passes::

        runtime:
          gpuMemoryUtilization: 0.90
    """
    yield from _findings(ctx, SizingProblem.SAMPLER_WARMUP_OOM)


@_sizing_rule("LD213", SizingProblem.STARTUP_FREE_MEMORY)
def utilization_fits_free_memory_at_start(ctx: RuleContext) -> Iterator[Finding]:
    """``gpuMemoryUtilization`` asks for more memory than is free when the vLLM worker starts.

    vLLM V1 (0.9.2 and later) takes a memory snapshot as each worker starts and refuses to go
    on when ``total × gpuMemoryUtilization`` exceeds the free memory it sees ("Free memory on
    device … on startup is less than desired GPU memory utilization"; vllm/v1/worker/
    gpu_worker.py ``init_device``, v1/worker/utils.py ``request_memory`` from v0.14.0). The
    CUDA context is held by then and, from 0.11.0, the NCCL communicators too: the distributed
    set-up moved before the snapshot ("Initialize the distributed environment BEFORE taking
    memory snapshot", v0.11.0), and from 0.14.0 MoE models also build an expert-parallel group
    (distributed/parallel_state.py, ``model_config.is_moe``). On an H100 the v0.19.0 logs show
    78.68 of 79.19 GiB free on one GPU, 77.64-77.76 GiB with one tensor- or pipeline-parallel
    group and 77.18 GiB for MoE models at tensor parallel 2 (tests/data/vllm_logs/sweeps), so
    0.98 starts a dense model at TP2 and not a MoE one. The hint gives the highest utilization
    that starts. Constants and sources: the ``startup`` rows of engines/vllm.yaml.

    Fails::

        model: {id: mistralai/Mixtral-8x7B-Instruct-v0.1}
        runtime:
          image: vllm/vllm-openai:v0.19.0
          gpuMemoryUtilization: 0.98
        resources:
          gpu: {type: h100-sxm}
          parallelism: {tensor: 2}

    Passes::

        model: {id: mistralai/Mixtral-8x7B-Instruct-v0.1}
        runtime:
          image: vllm/vllm-openai:v0.19.0
          gpuMemoryUtilization: 0.97
        resources:
          gpu: {type: h100-sxm}
          parallelism: {tensor: 2}
    """
    yield from _findings(ctx, SizingProblem.STARTUP_FREE_MEMORY)


@rule("LD211")
def engine_image_runs_on_the_gpu(ctx: RuleContext) -> Iterator[Finding]:
    """The engine image is a CUDA build but the GPU is an AMD Instinct (ROCm).

    ``vllm/vllm-openai`` and the other default images are built against CUDA; on an AMD GPU
    (``amd.com/gpu``) the engine finds no device and the pod crash-loops. Without
    ``runtime.image`` llmdeploy renders the engine's ROCm build — vLLM publishes
    ``vllm/vllm-openai-rocm:v<version>`` from v0.14.0 (``images.rocm`` in
    engines/vllm.yaml; vLLM's release pipeline, .buildkite/scripts/annotate-release.sh) —
    and refuses a release for which the project publishes none. An explicit image is accepted
    on AMD when its reference names a ROCm build (``rocm`` in the repository or tag:
    ``vllm/vllm-openai-rocm:v0.19.0``, ``rocm/vllm:rocm7.12.0_…_vllm_0.16.0``,
    ``text-generation-inference:3.3.4-rocm``). Quantization formats without ROCm kernels
    (NVFP4) are LD207.

    Fails::

        runtime:
          image: vllm/vllm-openai:v0.19.0
        resources:
          gpu: {type: mi300x}

    Passes::

        runtime:
          image: vllm/vllm-openai-rocm:v0.19.0
        resources:
          gpu: {type: mi300x}
    """
    gpu, engine = ctx.resolved.gpu, ctx.resolved.engine
    if gpu is None or engine is None or gpu.vendor != "amd":
        return
    image = ctx.spec.runtime.image
    if image:
        if "rocm" not in image.lower():
            yield Finding(("runtime", "image"),
                          f"{image} is a CUDA build; it does not run on {gpu.name} ({gpu.compute_capability}, ROCm)",
                          f"use {engine.rocm_image}" if engine.rocm_image else engine.rocm_note)
        return
    if engine.rocm_image is None:
        yield Finding(("resources", "gpu", "type"),
                      f"{engine.engine} {engine.version} has no ROCm image from its project, and {gpu.name} is an "
                      "AMD GPU (the default image is a CUDA build)",
                      engine.rocm_note)


@rule("LD212")
def calibration_file_is_readable(ctx: RuleContext) -> Iterator[Finding]:
    """The calibration file named by ``resources.calibration`` cannot be read or is malformed.

    ``resources.calibration`` names a file ``llmdeploy calibrate LOG… --write FILE`` wrote from
    the cluster's own vLLM start-up logs (``kind: SizingCalibration``; docs/sizing.md §8),
    relative to the spec file. The message carries the file, line and column of the problem in
    the calibration file; the finding points at the spec's field.

    Fails::

        resources:
          calibration: calibration/h100.yaml     # missing, or not a SizingCalibration

    Passes::

        resources:
          calibration: calibration/h100.yaml     # written by llmdeploy calibrate --write
    """
    err = ctx.resolved.calibration_error
    if err is not None:
        yield Finding(("resources", "calibration"), err.message, err.hint)
