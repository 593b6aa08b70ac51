"""``llmdeploy size``, ``plan`` and ``catalog`` (registered on the main app).

``size`` answers "does this fit, how many KV tokens, at what throughput and cost" for
a spec file or for flags alone; ``plan`` lists every GPU × tensor-parallel size that
fits, cheapest first; ``catalog`` lists the GPUs and models llmdeploy knows. Tables go
to stdout through rich, JSON (``--format json``) goes to stdout alone, diagnostics go
to stderr. Exit codes as everywhere: 0 fits, 1 does not fit or invalid input, 2 usage.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, Optional

import typer

from .cli_common import EXIT_INVALID, EXIT_OK, fail_usage, print_error
from .records import record as record_load

if TYPE_CHECKING:  # pragma: no cover
    from rich.console import Console

    from .catalog import GPU, ModelConfig
    from .engines import EngineVersionInfo
    from .sizing import Option, SizingReport

DTYPES = ("auto", "bfloat16", "float16", "float32")
QUANTIZATIONS = ("none", "awq", "awq_marlin", "gptq", "gptq_marlin", "fp8", "int8", "bitsandbytes",
                 "compressed-tensors")
KV_DTYPES = ("auto", "fp8", "fp8_e4m3", "fp8_e5m2")
ENGINES = ("vllm", "tgi")


def _rule_ids() -> dict[Any, str]:
    """The rule id of each kind of sizing problem (declared by the rules, imported when needed)."""
    from .rules.sizing import RULE_IDS

    return RULE_IDS


def _fail_input(message: str, hint: str | None = None) -> NoReturn:
    from .errors import InvalidSpecError

    raise InvalidSpecError(message, hint)


@contextlib.contextmanager
def _json_errors(fmt: str) -> Iterator[None]:
    """With ``--format json``, an input error is also a JSON document on stdout.

    A script that parses stdout gets ``{"valid": false, "fits": false, "errors": [...]}``
    instead of nothing; stderr and the exit code (1) stay as for the table.
    """
    from .errors import InvalidSpecError

    try:
        yield
    except InvalidSpecError as exc:
        if fmt == "json":
            from .secrets import redact

            _write_json({"valid": False, "fits": False,
                         "errors": [{"message": redact(str(exc.message)),
                                     "hint": redact(exc.hint) if exc.hint else None}]})
        raise


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        fail_usage(f"{name} must be one of {', '.join(allowed)} (got {value!r})")
    return value


def _check_engine_choices(dtype: str, quantization: str, kv_cache_dtype: str, engine: str) -> None:
    """The engine-setting flags ``size`` and ``plan`` share."""
    _choice("--dtype", dtype, DTYPES)
    _choice("--quantization", quantization, QUANTIZATIONS)
    _choice("--kv-cache-dtype", kv_cache_dtype, KV_DTYPES)
    _choice("--engine", engine, ENGINES)


def _check_gpu_memory_utilization(value: float | None) -> None:
    if value is not None and not 0 < value <= 1:
        fail_usage(f"--gpu-memory-utilization must be in (0, 1] (got {value:g})")


@record_load
class _Load:
    """The offered load and latency targets given on the command line."""

    prompt_tokens: int | None = None
    output_tokens: int | None = None
    concurrencies: tuple[int, ...] | None = None
    request_rate: float | None = None
    ttft_p95_ms: float | None = None
    tpot_ms: float | None = None

    @property
    def given(self) -> bool:
        return any(v is not None for v in self.__dict__.values())

    def target_load(self, base: Any = None) -> Any:
        """A sizing TargetLoad: these flags over ``base`` (the spec's), None when neither says anything."""
        from .sizing import TargetLoad

        if base is None and self.prompt_tokens is None and self.output_tokens is None and self.request_rate is None \
                and self.concurrencies is None:
            return None
        b = base or TargetLoad()
        return TargetLoad(
            requests_per_second=self.request_rate if self.request_rate is not None else b.requests_per_second,
            avg_prompt_tokens=self.prompt_tokens or b.avg_prompt_tokens,
            avg_output_tokens=self.output_tokens or b.avg_output_tokens,
            concurrency=max(self.concurrencies) if self.concurrencies else b.concurrency,
            prefix_cache_hit_rate=b.prefix_cache_hit_rate,
        )

    def slo(self, base: Any = None) -> Any:
        from .sizing import Slo

        if self.ttft_p95_ms is None and self.tpot_ms is None:
            return base
        b = base or Slo()
        return Slo(ttft_p95_ms=self.ttft_p95_ms if self.ttft_p95_ms is not None else b.ttft_p95_ms,
                   tpot_ms=self.tpot_ms if self.tpot_ms is not None else b.tpot_ms)


def _parse_load(prompt_tokens: int | None, output_tokens: int | None, concurrency: str | None,
                request_rate: float | None, ttft_p95_ms: float | None, tpot_ms: float | None) -> _Load:
    """Check the load flags ``size`` and ``plan`` share (usage errors name the flag)."""
    for name, value in (("--prompt-tokens", prompt_tokens), ("--output-tokens", output_tokens)):
        if value is not None and value < 1:
            fail_usage(f"{name} must be at least 1 (got {value})")
    for name, fvalue in (("--request-rate", request_rate), ("--ttft-p95-ms", ttft_p95_ms), ("--tpot-ms", tpot_ms)):
        if fvalue is not None and not fvalue > 0:
            fail_usage(f"{name} must be above 0 (got {fvalue:g})")
    levels = None
    if concurrency is not None:
        try:
            levels = tuple(sorted({int(x) for x in concurrency.split(",") if x.strip()}))
        except ValueError:
            fail_usage(f"--concurrency takes whole numbers separated by commas, e.g. 1,8,64 (got {concurrency!r})")
        if not levels or min(levels) < 1 or max(levels) > 100_000:
            fail_usage(f"--concurrency values must be between 1 and 100000 (got {concurrency!r})")
    return _Load(prompt_tokens, output_tokens, levels, request_rate, ttft_p95_ms, tpot_ms)


def _console(*, natural: bool = False) -> Console:
    """A console on stdout. Not a terminal (a pipe, a test runner): a fixed width of 110
    keeps reports readable; ``natural`` tables (the catalogs, whose cells users copy) take
    the width they need instead, so nothing is cut or wrapped."""
    from rich.console import Console

    width = None if sys.stdout.isatty() else (250 if natural else 110)
    return Console(file=sys.stdout, width=width, highlight=False, soft_wrap=False)


def _resolve_model(ref: str) -> ModelConfig:
    """A catalog id/alias, or the path of a local config.json (or its folder)."""
    from .catalog import CatalogError, get_model, model_from_hf_config

    try:
        if os.path.exists(ref):
            from pathlib import Path

            return model_from_hf_config(Path(ref))
        return get_model(ref)
    except CatalogError as exc:
        _fail_input(exc.message, exc.hint)


def _resolve_gpu(key: str) -> GPU:
    from .catalog import CatalogError, get_gpu

    try:
        return get_gpu(key)
    except CatalogError as exc:
        _fail_input(exc.message, exc.hint)


def _resolve_engine(engine: str, version: str | None, image: str | None = None) -> EngineVersionInfo:
    from .engines import resolve_engine

    return resolve_engine(engine, image, version)


# --------------------------------------------------------------------------- rendering


def _bar(part: float, total: float, width: int = 28) -> str:
    n = 0 if total <= 0 else round(width * max(part, 0.0) / total)
    return "█" * min(n, width) + "·" * max(width - n, 0)


def _money(x: float | None, digits: int = 2) -> str:
    return "n/a" if x is None else f"${x:,.{digits}f}"


def render_report(console: Console, report: SizingReport, title: str | None = None) -> None:
    """A sizing report as rich tables: memory, KV cache, verdict, advice, capacity."""
    from rich.table import Table

    r = report
    head = title or f"{r.model.hf_id} on {r.gpu_count} × {r.gpu.name}"
    console.print(f"[bold]{head}[/bold]")
    console.print(
        f"{r.engine} {r.engine_version} ({r.engine_era}) · TP {r.tensor_parallel} × PP {r.pipeline_parallel}"
        + (f" × DP {r.data_parallel}" if r.data_parallel > 1 else "")
        + f" · dtype {r.dtype} · quantization {r.quantization} · KV cache {r.kv_cache_dtype} · "
        f"gpuMemoryUtilization {r.gpu_memory_utilization:g}"
    )
    b = r.per_gpu
    mem = Table(title="Memory per GPU (the rank that limits the KV cache)", title_justify="left")
    mem.add_column("part")
    mem.add_column("GiB", justify="right")
    mem.add_column("share of total", justify="right")
    mem.add_column("")
    rows = [
        ("weights", b.weights_gib), ("activation peak", b.activation_gib), ("non-torch", b.non_torch_gib),
        ("CUDA graphs" + ("" if r.cuda_graphs_counted else " (above budget)"), b.cuda_graph_gib),
        ("KV cache", b.kv_cache_gib),
    ]
    for name, gib in rows:
        mem.add_row(name, f"{gib:.2f}", f"{gib / b.total_gib:.1%}" if b.total_gib else "-", _bar(gib, b.total_gib))
    mem.add_row("usable (total × utilization)", f"{b.usable_gib:.2f}", f"{b.usable_gib / b.total_gib:.1%}",
                _bar(b.usable_gib, b.total_gib))
    mem.add_row("total (CUDA-visible)", f"{b.total_gib:.2f}", "100.0%", _bar(b.total_gib, b.total_gib))
    console.print(mem)
    kv = Table(title="KV cache", title_justify="left", show_header=False)
    kv.add_column("")
    kv.add_column("", justify="right")
    kv.add_row("bytes per token per GPU", f"{r.kv_bytes_per_token:,}")
    kv.add_row("GPU KV cache size (tokens)", f"{r.kv_cache_tokens:,}")
    kv.add_row(f"max concurrency at {r.max_model_len:,} tokens", f"{r.max_concurrency:.2f}×")
    kv.add_row("max_num_seqs (resolved)", f"{r.max_num_seqs:,}")
    kv.add_row("max_num_batched_tokens", f"{r.max_num_batched_tokens:,}")
    kv.add_row("weights over all GPUs", f"{r.weights_bytes_total / 2**30:.2f} GiB")
    kv.add_row("start-up time (estimate)", f"{r.load_time_seconds:.0f} s")
    console.print(kv)
    verdict = "[green]FITS[/green]" if r.fits else "[red]DOES NOT FIT[/red]"
    console.print(f"Verdict: {verdict}")
    for reason in r.reasons:
        console.print(f"  [red]error[/red] {_rule_ids()[reason.problem]} {'.'.join(map(str, reason.field))}: {reason.message}")
        if reason.hint:
            console.print(f"        hint: {reason.hint}")
    for w in r.warnings:
        console.print(f"  [yellow]warning[/yellow] {_rule_ids()[w.problem]} {'.'.join(map(str, w.field))}: {w.message}")
        if w.hint:
            console.print(f"        hint: {w.hint}")
    if r.suggestions:
        console.print("Suggestions:")
        for s in r.suggestions:
            console.print(f"  • {s}")
    if r.max_num_seqs_reason:
        console.print(f"max_num_seqs {r.max_num_seqs:,}: {r.max_num_seqs_reason}")
    c = r.capacity
    if c is not None:
        curve = Table(title=f"Capacity per replica at {c.prompt_tokens} prompt + {c.output_tokens} output tokens "
                            "(estimates)", title_justify="left")
        for col in ("conc.", "running", "out tok/s", "tok/s/seq", "TPOT ms", "TTFT ms", "req/s", "$/1M out",
                    "bound", ""):
            curve.add_column(col, justify="left" if col in ("bound", "") else "right")
        top = max((p.output_tokens_per_s for p in c.points), default=0.0)
        for p in c.points:
            curve.add_row(f"{p.concurrency:,}", f"{p.running:,}", f"{p.output_tokens_per_s:,.0f}",
                          f"{p.per_sequence_tokens_per_s:,.1f}", f"{p.tpot_ms:,.1f}", f"{p.ttft_ms:,.0f}",
                          f"{p.requests_per_s:,.2f}", _money(p.cost_per_1m_output_tokens, 3), p.bound,
                          _bar(p.output_tokens_per_s, top, 10))
        console.print(curve)
        cap = Table(title="Operating point and cost per replica (estimates)", title_justify="left", show_header=False)
        cap.add_column("")
        cap.add_column("", justify="right")
        cap.add_row("sequences decoding at once", f"{c.concurrency:,}")
        cap.add_row("output tokens/s", f"{c.decode_tokens_per_s:,.0f}")
        cap.add_row("tokens/s per sequence", f"{c.decode_tokens_per_s_per_sequence:,.1f}")
        cap.add_row("limited by", c.bound)
        cap.add_row("prefill tokens/s", f"{c.prefill_tokens_per_s:,.0f}")
        cap.add_row("time to first token", f"{c.ttft_seconds_estimate:.2f} s")
        cap.add_row("requests/s", f"{c.requests_per_s_per_replica:,.2f}")
        if c.replicas_needed is not None:
            cap.add_row("replicas for the target load", f"{c.replicas_needed}")
        if c.slo_missed:
            cap.add_row("latency SLO", f"missed: {c.slo_missed}")
        cap.add_row("cost per hour", _money(c.cost_per_hour))
        cap.add_row("cost per 1M output tokens", _money(c.cost_per_1m_output_tokens, 3))
        cap.add_row("cost per 1K requests", _money(c.cost_per_1k_requests, 3))
        console.print(cap)
        console.print("Assumptions:")
        for a in c.assumptions:
            console.print(f"  - {a}")
    console.print("Memory model:")
    for a in r.assumptions:
        console.print(f"  - {a}")


def _write_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


# --------------------------------------------------------------------------- size


def _size_spec_paths(spec_path: str, fmt: str, engine_version: str | None, load: _Load | None = None) -> int:
    from dataclasses import replace

    from .diagnostics import format_text, sort_diagnostics
    from .pipeline import analyze_all, load_specs
    from .sizing import input_from_spec, size
    from .sizing.topology import size_spec  # a replica may span nodes (resources.nodes)

    docs, load_diags = load_specs([spec_path])
    analyses = analyze_all(docs)
    diags = sort_diagnostics([*load_diags, *(d for a in analyses for d in a.diagnostics)])
    if diags:
        sys.stderr.write(format_text(diags))
    reports: list[tuple[str, SizingReport]] = []
    for a in analyses:
        r = a.resolved
        if a.spec is None or r is None or r.sizing is None:
            continue
        report = r.sizing
        if (engine_version is not None or (load is not None and load.given)) and r.model is not None \
                and r.gpu is not None:
            engine = _resolve_engine(a.spec.runtime.engine, engine_version, None) if engine_version is not None \
                else r.engine
            if load is not None and load.given:
                inp = replace(input_from_spec(a.spec, r.model, r.gpu, engine), multi_node=a.spec.resources.nodes > 1)
                report = size(replace(inp, target_load=load.target_load(inp.target_load), slo=load.slo(inp.slo),
                                      concurrencies=load.concurrencies))
            else:
                report = size_spec(a.spec, r.model, r.gpu, engine)
        reports.append((a.label, report))
    if not reports:
        print_error("nothing to size (the spec is invalid or its GPU/model/engine unknown)")
        return EXIT_INVALID
    if fmt == "json":
        _write_json(reports[0][1].to_json(_rule_ids()) if len(reports) == 1 else
                    [{"service": label, **rep.to_json(_rule_ids())} for label, rep in reports])
    else:
        console = _console()
        for i, (label, rep) in enumerate(reports):
            if i:
                console.print()
            render_report(console, rep, f"{label}: {rep.model.hf_id} on {rep.gpu_count} × {rep.gpu.name}")
    failed = any(d.is_error for d in diags) or not all(rep.fits for _, rep in reports)
    return EXIT_INVALID if failed else EXIT_OK


def _run_size(spec: str | None = None, *, model: str | None = None, gpu: str | None = None, tensor_parallel: int = 1,
             pipeline_parallel: int = 1, dtype: str = "auto", quantization: str = "none",
             kv_cache_dtype: str = "auto", max_model_len: int = 8192, gpu_memory_utilization: float | None = None,
             max_num_batched_tokens: int | None = None, max_num_seqs: int | None = None, engine: str = "vllm",
             engine_version: str | None = None, price: float | None = None, fmt: str = "table",
             prompt_tokens: int | None = None, output_tokens: int | None = None, concurrency: str | None = None,
             request_rate: float | None = None, ttft_p95_ms: float | None = None,
             tpot_ms: float | None = None) -> int:
    """Show whether a model fits its GPUs: memory per GPU, KV tokens, concurrency, capacity and cost.

    Give a spec file, or --model and --gpu (with any engine setting). Exit 0 when it
    fits, 1 when it does not fit or the input is invalid, 2 on usage errors.
    """
    _choice("--format", fmt, ("table", "json"))
    load = _parse_load(prompt_tokens, output_tokens, concurrency, request_rate, ttft_p95_ms, tpot_ms)
    if spec is not None:
        if model is not None or gpu is not None:
            fail_usage("give either a spec file or --model/--gpu, not both")
        if spec != "-" and not os.path.exists(spec):
            fail_usage(f"{spec}: no such file")
        return _size_spec_paths(spec, fmt, engine_version, load)
    if model is None or gpu is None:
        fail_usage("give a spec file, or both --model and --gpu")
    assert model is not None and gpu is not None
    _check_engine_choices(dtype, quantization, kv_cache_dtype, engine)
    for name, value in (("--tensor-parallel", tensor_parallel), ("--pipeline-parallel", pipeline_parallel),
                        ("--max-model-len", max_model_len)):
        if value < 1:
            fail_usage(f"{name} must be at least 1 (got {value})")
    _check_gpu_memory_utilization(gpu_memory_utilization)
    for name, opt in (("--max-num-batched-tokens", max_num_batched_tokens), ("--max-num-seqs", max_num_seqs)):
        if opt is not None and opt < 1:
            fail_usage(f"{name} must be at least 1 (got {opt})")
    from .sizing import SizingInput
    from .sizing import size as size_fn

    report = size_fn(SizingInput(
        model=_resolve_model(model), gpu=_resolve_gpu(gpu), engine=_resolve_engine(engine, engine_version),
        tensor_parallel=tensor_parallel, pipeline_parallel=pipeline_parallel, dtype=dtype,
        quantization=quantization, kv_cache_dtype=kv_cache_dtype, max_model_len=max_model_len,
        gpu_memory_utilization=gpu_memory_utilization, max_num_batched_tokens=max_num_batched_tokens,
        max_num_seqs=max_num_seqs, price_per_gpu_hour=price, target_load=load.target_load(),
        slo=load.slo(), concurrencies=load.concurrencies,
    ))
    if fmt == "json":
        _write_json(report.to_json(_rule_ids()))
    else:
        render_report(_console(), report)
    return EXIT_OK if report.fits else EXIT_INVALID


def _run_plan(model: str, *, max_model_len: int = 8192, gpu: str | None = None, dtype: str = "auto",
             quantization: str = "none", kv_cache_dtype: str = "auto", gpu_memory_utilization: float | None = None,
             engine: str = "vllm", engine_version: str | None = None, fmt: str = "table",
             prompt_tokens: int | None = None, output_tokens: int | None = None, concurrency: str | None = None,
             request_rate: float | None = None, ttft_p95_ms: float | None = None,
             tpot_ms: float | None = None) -> int:
    """List every GPU type × tensor-parallel size (× quantization) that fits the model, cheapest first.

    With --request-rate (and --ttft-p95-ms/--tpot-ms) each option gets the replicas the
    rate needs and its $/1M output tokens at that load, cheapest first; options that
    miss the SLO come last with the reason. Exit 0 when at least one configuration
    fits, 1 when none does.
    """
    _choice("--format", fmt, ("table", "json"))
    quants = tuple(dict.fromkeys(q.strip() for q in quantization.split(",") if q.strip())) or ("none",)
    for q in quants:
        _check_engine_choices(dtype, q, kv_cache_dtype, engine)
    if max_model_len < 1:
        fail_usage(f"--max-model-len must be at least 1 (got {max_model_len})")
    _check_gpu_memory_utilization(gpu_memory_utilization)
    load = _parse_load(prompt_tokens, output_tokens, concurrency, request_rate, ttft_p95_ms, tpot_ms)
    m = _resolve_model(model)
    gpus = [_resolve_gpu(k.strip()) for k in gpu.split(",") if k.strip()] if gpu else None
    info = _resolve_engine(engine, engine_version)
    from .sizing import plan_options

    options = plan_options(m, max_model_len=max_model_len, engine=info, dtype=dtype, quantizations=quants,
                           kv_cache_dtype=kv_cache_dtype, gpu_memory_utilization=gpu_memory_utilization,
                           gpus=gpus, target_load=load.target_load(), slo=load.slo())
    if fmt == "json":
        _write_json({"model": m.hf_id, "max_model_len": max_model_len, "engine": info.engine,
                     "engine_version": info.version,
                     "load": {"prompt_tokens": load.prompt_tokens, "output_tokens": load.output_tokens,
                              "request_rate": load.request_rate, "ttft_p95_ms": load.ttft_p95_ms,
                              "tpot_ms": load.tpot_ms},
                     "options": [o.to_json() for o in options]})
    else:
        _render_options(_console(), m, max_model_len, info, options, load)
    return EXIT_OK if options else EXIT_INVALID


def run_catalog_gpus(fmt: str = "table") -> int:
    """List the GPU catalog: memory, bandwidth, tensor throughput, node size, price."""
    _choice("--format", fmt, ("table", "json"))
    from .catalog import gpus

    items = list(gpus().values())
    if fmt == "json":
        _write_json([_gpu_json(g) for g in items])
        return EXIT_OK
    from rich.table import Table

    t = Table(title="GPU catalog")
    t.add_column("key", justify="left", no_wrap=True, min_width=max((len(g.key) for g in items), default=3))
    for col in ("name", "memory GiB", "GB/s", "bf16 TFLOPS", "fp8", "cc", "per node", "$/GPU-h"):
        t.add_column(col, justify="right" if col not in ("name", "fp8") else "left")
    for g in items:
        fp8 = "yes" if g.fp8 else ("weight-only" if g.fp8_weight_only else "no")
        t.add_row(g.key, g.name, f"{g.memory_gib:.1f}", f"{g.memory_bandwidth_gbs:g}",
                  f"{g.bf16_tflops:g}" if g.bf16_tflops else "-", fp8, g.compute_capability,
                  str(g.gpus_per_node), _money(g.price_per_gpu_hour_usd))
    _console(natural=True).print(t)
    return EXIT_OK


def run_catalog_models(fmt: str = "table") -> int:
    """List the model catalog: size, layers, attention layout, KV bytes per token."""
    _choice("--format", fmt, ("table", "json"))
    from .catalog import models

    items = list(models().values())
    if fmt == "json":
        _write_json([_model_json(m) for m in items])
        return EXIT_OK
    from rich.table import Table

    t = Table(title="Model catalog")
    # The id is the column users copy: never cut or wrapped, whatever the terminal width.
    t.add_column("id", justify="left", no_wrap=True, min_width=max((len(m.hf_id) for m in items), default=2))
    for col in ("params (B)", "layers", "heads / kv", "KV KiB/token", "context", "quantization"):
        t.add_column(col, justify="left" if col == "quantization" else "right")
    for m in items:
        j = _model_json(m)
        t.add_row(m.hf_id, f"{(m.num_parameters or 0) / 1e9:.1f}", str(m.num_layers),
                  f"{m.num_attention_heads} / {m.num_kv_heads}" + (" MLA" if m.mla else ""),
                  f"{j['kv_bytes_per_token_bf16'] / 1024:.0f}", f"{m.max_position_embeddings:,}",
                  m.quantization.method if m.quantization else "-")
    _console(natural=True).print(t)
    return EXIT_OK


# The load and SLO options `size` and `plan` share, declared once.
PromptTokens = Annotated[
    Optional[int],  # noqa: UP045 - typer needs Optional on 3.10
    typer.Option("--prompt-tokens", help="Typical prompt length in tokens (default: the spec's targetLoad or 512)."),
]
OutputTokens = Annotated[
    Optional[int],  # noqa: UP045
    typer.Option("--output-tokens", help="Typical output length in tokens (default: the spec's targetLoad or 256)."),
]
Concurrency = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option("--concurrency", help="Offered load: requests in flight per replica, e.g. 1,8,64 (a curve)."),
]
RequestRate = Annotated[
    Optional[float],  # noqa: UP045
    typer.Option("--request-rate", help="Target requests per second (sizes the replicas)."),
]
TtftP95Ms = Annotated[
    Optional[float],  # noqa: UP045
    typer.Option("--ttft-p95-ms", help="p95 time-to-first-token target in ms."),
]
TpotMs = Annotated[
    Optional[float],  # noqa: UP045
    typer.Option("--tpot-ms", help="p95 time-per-output-token (inter-token latency) target in ms."),
]


def register(app: typer.Typer) -> None:
    """Add the sizing commands (size, plan, catalog gpus|models) to ``app``."""

    @app.command()
    def size(
        spec: Annotated[
            Optional[str],  # noqa: UP045 - typer needs Optional on 3.10
            typer.Argument(help="Spec file ('-' reads stdin). Leave out to size from the flags alone."),
        ] = None,
        model: Annotated[
            Optional[str],  # noqa: UP045
            typer.Option("--model", "-m", help="Catalog id, or path of a config.json (flags-only form)."),
        ] = None,
        gpu: Annotated[Optional[str], typer.Option("--gpu", "-g", help="GPU catalog key.")] = None,  # noqa: UP045
        tensor_parallel: Annotated[int, typer.Option("--tensor-parallel", "--tp", help="Tensor-parallel size.")] = 1,
        pipeline_parallel: Annotated[int, typer.Option("--pipeline-parallel", "--pp", help="Pipeline stages.")] = 1,
        dtype: Annotated[str, typer.Option("--dtype", help="auto, bfloat16, float16 or float32.")] = "auto",
        quantization: Annotated[str, typer.Option("--quantization", help="none, awq, gptq, fp8, ...")] = "none",
        kv_cache_dtype: Annotated[str, typer.Option("--kv-cache-dtype", help="auto or fp8.")] = "auto",
        max_model_len: Annotated[int, typer.Option("--max-model-len", help="Longest request in tokens.")] = 8192,
        gpu_memory_utilization: Annotated[
            Optional[float],  # noqa: UP045
            typer.Option("--gpu-memory-utilization", help="Share of GPU memory (default: the engine's)."),
        ] = None,
        max_num_batched_tokens: Annotated[
            Optional[int],  # noqa: UP045
            typer.Option("--max-num-batched-tokens", help="Scheduler token budget (default: the engine's)."),
        ] = None,
        max_num_seqs: Annotated[
            Optional[int],  # noqa: UP045
            typer.Option("--max-num-seqs", help="Concurrent sequences (default: derived from the KV cache)."),
        ] = None,
        engine: Annotated[str, typer.Option("--engine", help="vllm or tgi.")] = "vllm",
        engine_version: Annotated[
            Optional[str],  # noqa: UP045
            typer.Option("--engine-version", help="Engine version whose memory profile to use (e.g. 0.10.2)."),
        ] = None,
        price: Annotated[
            Optional[float],  # noqa: UP045
            typer.Option("--price-per-gpu-hour", help="USD per GPU-hour (default: the catalog's)."),
        ] = None,
        prompt_tokens: PromptTokens = None,
        output_tokens: OutputTokens = None,
        concurrency: Concurrency = None,
        request_rate: RequestRate = None,
        ttft_p95_ms: TtftP95Ms = None,
        tpot_ms: TpotMs = None,
        fmt: Annotated[str, typer.Option("--format", "-f", help="table or json.")] = "table",
    ) -> None:
        """Show whether a model fits its GPUs: memory per GPU, KV tokens, concurrency, capacity and cost.

        Give a spec file, or --model and --gpu (with any engine setting). Exit 0 when it
        fits, 1 when it does not fit or the input is invalid, 2 on usage errors.
        """
        raise typer.Exit(run_size(
            spec, model=model, gpu=gpu, tensor_parallel=tensor_parallel, pipeline_parallel=pipeline_parallel,
            dtype=dtype, quantization=quantization, kv_cache_dtype=kv_cache_dtype, max_model_len=max_model_len,
            gpu_memory_utilization=gpu_memory_utilization, max_num_batched_tokens=max_num_batched_tokens,
            max_num_seqs=max_num_seqs, engine=engine, engine_version=engine_version, price=price, fmt=fmt,
            prompt_tokens=prompt_tokens, output_tokens=output_tokens, concurrency=concurrency,
            request_rate=request_rate, ttft_p95_ms=ttft_p95_ms, tpot_ms=tpot_ms))

    @app.command()
    def plan(
        model: Annotated[str, typer.Option("--model", "-m", help="Catalog id, or path of a config.json.")],
        max_model_len: Annotated[int, typer.Option("--max-model-len", help="Longest request in tokens.")] = 8192,
        gpu: Annotated[
            Optional[str],  # noqa: UP045
            typer.Option("--gpu", "-g", help="Comma-separated GPU keys to consider (default: every catalog GPU)."),
        ] = None,
        dtype: Annotated[str, typer.Option("--dtype", help="auto, bfloat16, float16 or float32.")] = "auto",
        quantization: Annotated[
            str, typer.Option("--quantization", help="none, fp8, ... or several separated by commas (none,fp8).")
        ] = "none",
        kv_cache_dtype: Annotated[str, typer.Option("--kv-cache-dtype", help="auto or fp8.")] = "auto",
        gpu_memory_utilization: Annotated[
            Optional[float],  # noqa: UP045
            typer.Option("--gpu-memory-utilization", help="Share of GPU memory (default: the engine's)."),
        ] = None,
        engine: Annotated[str, typer.Option("--engine", help="vllm or tgi.")] = "vllm",
        engine_version: Annotated[
            Optional[str],  # noqa: UP045
            typer.Option("--engine-version", help="Engine version whose memory profile to use."),
        ] = None,
        prompt_tokens: PromptTokens = None,
        output_tokens: OutputTokens = None,
        concurrency: Concurrency = None,
        request_rate: RequestRate = None,
        ttft_p95_ms: TtftP95Ms = None,
        tpot_ms: TpotMs = None,
        fmt: Annotated[str, typer.Option("--format", "-f", help="table or json.")] = "table",
    ) -> None:
        """List every GPU type × tensor-parallel size that fits the model, cheapest first.

        Exit 0 when at least one configuration fits, 1 when none does.
        """
        raise typer.Exit(run_plan(
            model, max_model_len=max_model_len, gpu=gpu, dtype=dtype, quantization=quantization,
            kv_cache_dtype=kv_cache_dtype, gpu_memory_utilization=gpu_memory_utilization, engine=engine,
            engine_version=engine_version, fmt=fmt, prompt_tokens=prompt_tokens, output_tokens=output_tokens,
            concurrency=concurrency, request_rate=request_rate, ttft_p95_ms=ttft_p95_ms, tpot_ms=tpot_ms))

    catalog_app = typer.Typer(help="List the GPUs and models llmdeploy knows.", no_args_is_help=True)
    app.add_typer(catalog_app, name="catalog")

    @catalog_app.command("gpus")
    def catalog_gpus(fmt: Annotated[str, typer.Option("--format", "-f", help="table or json.")] = "table") -> None:
        """List the GPU catalog: memory, bandwidth, tensor throughput, node size, price."""
        raise typer.Exit(run_catalog_gpus(fmt))

    @catalog_app.command("models")
    def catalog_models(fmt: Annotated[str, typer.Option("--format", "-f", help="table or json.")] = "table") -> None:
        """List the model catalog: size, layers, attention layout, KV bytes per token."""
        raise typer.Exit(run_catalog_models(fmt))


def _gpu_json(g: GPU) -> dict[str, Any]:
    return {
        "key": g.key, "name": g.name, "vendor": g.vendor, "aliases": list(g.aliases), "memory_mib": g.memory_mib,
        "memory_gib": round(g.memory_gib, 3), "memory_bandwidth_gbs": g.memory_bandwidth_gbs,
        "fp16_tflops": g.fp16_tflops, "bf16_tflops": g.bf16_tflops, "fp8_tflops": g.fp8_tflops, "fp8": g.fp8,
        "fp8_weight_only": g.fp8_weight_only, "compute_capability": g.compute_capability,
        "interconnect": g.interconnect, "gpus_per_node": g.gpus_per_node, "resource_name": g.resource_name,
        "price_per_gpu_hour_usd": g.price_per_gpu_hour_usd,
    }


def _model_json(m: ModelConfig) -> dict[str, Any]:
    from .sizing.memory import kv_bytes_per_token

    return {
        "id": m.hf_id, "family": m.family, "architecture": m.architecture, "aliases": list(m.aliases),
        "num_parameters": m.num_parameters, "num_layers": m.num_layers, "hidden_size": m.hidden_size,
        "num_attention_heads": m.num_attention_heads, "num_kv_heads": m.num_kv_heads, "head_dim": m.head_dim,
        "vocab_size": m.vocab_size, "max_position_embeddings": m.max_position_embeddings,
        "torch_dtype": m.torch_dtype, "moe": m.moe is not None, "mla": m.mla is not None,
        "sliding_window": m.sliding_window, "quantization": m.quantization.method if m.quantization else None,
        "weight_bytes": m.weight_bytes,
        "kv_bytes_per_token_bf16": kv_bytes_per_token(m, 1, m.num_layers, "auto", "bfloat16"),
    }


def _render_options(console: Console, m: ModelConfig, max_model_len: int, info: EngineVersionInfo,
                    options: list[Option], load: _Load | None = None) -> None:
    from rich.table import Table

    rated = load is not None and load.request_rate is not None
    what = (f"for {load.request_rate:g} req/s, cheapest per 1M output tokens first" if rated and load
            else "cheapest first")
    t = Table(title=f"{m.hf_id} at maxModelLen {max_model_len:,} ({info.engine} {info.version}): "
                    f"{len(options)} configurations fit, {what}")
    cols = ["GPU", "TP", "quant", "GPUs", "GiB/GPU", "KV tokens", "out tok/s", "$/hour"]
    if rated:
        cols += ["replicas"]
    cols += ["$/1M out", "SLO"]
    for col in cols:
        t.add_column(col, justify="left" if col in ("GPU", "quant", "SLO") else "right")
    for o in options:
        cap = o.report.capacity
        row = [o.gpu_key, str(o.tensor_parallel), o.quantization.split(" ")[0], str(o.gpu_count),
               f"{o.weights_gib_per_gpu:.1f}", f"{o.kv_cache_tokens:,}",
               f"{cap.decode_tokens_per_s:,.0f}" if cap else "-", _money(o.cost_per_hour)]
        if rated:
            row.append("-" if o.replicas is None else str(o.replicas))
        row += [_money(o.cost_per_1m_output_tokens, 3), "ok" if o.slo_missed is None else f"missed: {o.slo_missed}"]
        t.add_row(*row)
    console.print(t)
    if not options:
        console.print("Nothing fits: try a shorter --max-model-len, --quantization fp8 or a quantized checkpoint.")


def run_size(*args: Any, **kwargs: Any) -> int:
    """``llmdeploy size`` (:func:`_run_size`); with ``--format json`` input errors are JSON too."""
    with _json_errors(kwargs.get("fmt", "table")):
        return _run_size(*args, **kwargs)


def run_plan(*args: Any, **kwargs: Any) -> int:
    """``llmdeploy plan`` (:func:`_run_plan`); with ``--format json`` input errors are JSON too."""
    with _json_errors(kwargs.get("fmt", "table")):
        return _run_plan(*args, **kwargs)
