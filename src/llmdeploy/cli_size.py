"""``llmdeploy size``, ``plan`` and ``catalog`` (registered on the main app).

``size`` answers "does this fit, how many KV tokens, at what throughput and cost" for
a spec file or for flags alone; ``plan`` lists every GPU × tensor-parallel size that
fits, cheapest first; ``catalog`` lists the GPUs and models llmdeploy knows. Tables go
to stdout (the size and plan reports through :class:`~llmdeploy.cli_table.Report`: rich
on a terminal, the same bytes without rich on a pipe when they are plain), JSON (``-o
json``) goes to stdout alone, diagnostics go to stderr. Exit codes as everywhere: 0
fits, 1 does not fit or invalid input, 2 usage. :func:`run_size` and :func:`run_plan`
are the commands' typer-free bodies (the fast path in ``entry.py`` calls them).
"""

# No `from __future__ import annotations` here: typer reads the annotations of the commands
# defined inside register(), which refer to names imported there. The module itself is
# free of typer (and of rich and pydantic until a table or a spec file needs them), so the
# fast path in entry.py can call run_size()/run_plan() without them.
import contextlib
import functools
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from .cli_common import EXIT_INVALID, EXIT_OK, OUTPUT_NAMES, check_format, fail_usage, print_error
from .records import record as record_load

if TYPE_CHECKING:  # pragma: no cover
    import typer
    from rich.console import Console

    from .catalog import GPU, ModelConfig
    from .cli_table import Report
    from .engines import EngineVersionInfo
    from .sizing import Option, SizingReport
    from .sizing.roles import DisaggSizing

DTYPES = ("auto", "bfloat16", "float16", "float32")
QUANTIZATIONS = ("none", "awq", "awq_marlin", "gptq", "gptq_marlin", "fp8", "int8", "bitsandbytes",
                 "compressed-tensors")
KV_DTYPES = ("auto", "fp8", "fp8_e4m3", "fp8_e5m2")
ENGINES = ("vllm", "tgi", "sglang", "tensorrt-llm")


def _rule_ids() -> dict[Any, str]:
    """The rule id of each kind of sizing problem (declared by the rules, imported when needed)."""
    from .rules.sizing import RULE_IDS

    return RULE_IDS


def _fail_input(message: str, hint: str | None = None) -> NoReturn:
    from .errors import InvalidSpecError

    raise InvalidSpecError(message, hint)


@contextlib.contextmanager
def _json_errors(fmt: str) -> Iterator[None]:
    """With ``-o json``, an input error is also a JSON document on stdout.

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
                                     "hint": redact(exc.hint) if exc.hint else None}],
                         "warnings": []})
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
        if fvalue is not None and not 0 < fvalue < float("inf"):
            fail_usage(f"{name} must be a finite number above 0 (got {fvalue:g})")
    levels = None
    if concurrency is not None:
        try:
            levels = tuple(sorted({int(x) for x in concurrency.split(",") if x.strip()}))
        except ValueError:
            fail_usage(f"--concurrency takes whole numbers separated by commas, e.g. 1,8,64 (got {concurrency!r})")
        if not levels or min(levels) < 1 or max(levels) > 100_000:
            fail_usage(f"--concurrency values must be between 1 and 100000 (got {concurrency!r})")
    return _Load(prompt_tokens, output_tokens, levels, request_rate, ttft_p95_ms, tpot_ms)


def _console(*, natural: bool = False) -> "Console":
    """A console on stdout. Not a terminal (a pipe, a test runner): a fixed width of 110
    keeps the tables readable, and the text lines (reasons, hints, assumptions) are not
    wrapped at all, so ``grep`` finds a message whole and no number is split over two
    lines; ``natural`` tables (the catalogs, whose cells users copy) take the width they
    need instead, so nothing is cut or wrapped.

    A reader that goes away (``size … | grep -q FITS``) does not end the command: rich's
    default turns the broken pipe into exit 1, which reads as "does not fit"; here the rest
    of the report goes to /dev/null and the exit code stays the verdict.
    """
    from rich.console import Console

    from .cli_common import silence_stdout

    class _ReportConsole(Console):
        def on_broken_pipe(self) -> None:
            self.quiet = True
            silence_stdout()

    tty = sys.stdout.isatty()
    width = None if tty else (250 if natural else 110)
    return _ReportConsole(file=sys.stdout, width=width, highlight=False, soft_wrap=not tty)


def _resolve_model(ref: str) -> "ModelConfig":
    """A catalog id/alias, or the path of a local config.json (or its folder)."""
    from .catalog import CatalogError, get_model, model_from_hf_config

    try:
        if os.path.exists(ref):
            from pathlib import Path

            return model_from_hf_config(Path(ref))
        return get_model(ref)
    except CatalogError as exc:
        _fail_input(exc.message, exc.hint)


def _resolve_gpu(key: str) -> "GPU":
    from .catalog import CatalogError, get_gpu

    try:
        return get_gpu(key)
    except CatalogError as exc:
        _fail_input(exc.message, exc.hint)


def _read_calibration(path: str | None) -> Any:
    """The ``--calibration`` file, or None; a bad file is an input error (exit 1) with its location."""
    if path is None:
        return None
    from .sizing.calibration import CalibrationError, read_calibration

    try:
        return read_calibration(path)
    except CalibrationError as exc:
        _fail_input(exc.message, exc.hint)


def _resolve_engine(engine: str, version: str | None, image: str | None = None) -> "EngineVersionInfo":
    from .engines import resolve_engine

    return resolve_engine(engine, image, version)


# --------------------------------------------------------------------------- rendering


def _bar(part: float, total: float, width: int = 28) -> str:
    n = 0 if total <= 0 else round(width * max(part, 0.0) / total)
    return "█" * min(n, width) + "·" * max(width - n, 0)


def _money(x: float | None, digits: int = 2) -> str:
    return "n/a" if x is None else f"${x:,.{digits}f}"


def render_report(console: "Console | Report", report: "SizingReport", title: str | None = None) -> None:
    """A sizing report as tables: memory, KV cache, verdict, advice, capacity (through rich,
    or as the same plain text when rich would add nothing: :class:`~llmdeploy.cli_table.Report`)."""
    from .cli_table import Table

    r = report
    head = title or f"{r.model.hf_id} on {r.gpu_count} × {r.gpu.name}"
    console.print(f"[bold]{head}[/bold]")
    console.print(
        f"{r.engine} {r.engine_version} ({r.engine_era}) · TP {r.tensor_parallel} × PP {r.pipeline_parallel}"
        + (f" × DP {r.data_parallel}" if r.data_parallel > 1 else "")
        + (f" · EP {r.expert_parallel_size} (whole experts per GPU)" if r.expert_parallel_size > 1 else "")
        + f" · dtype {r.dtype} · quantization {r.quantization} · KV cache {r.kv_cache_dtype} · "
        + (f"--mem-fraction-static {r.gpu_memory_utilization:g}" if r.engine == "sglang"
           else f"gpuMemoryUtilization {r.gpu_memory_utilization:g}")
    )
    b = r.per_gpu
    mem = Table(title="Memory per GPU (the rank that limits the KV cache)", title_justify="left")
    mem.add_column("part")
    mem.add_column("GiB", justify="right")
    mem.add_column("share of total", justify="right")
    mem.add_column("")
    rows = [
        ("weights", b.weights_gib), *([("LoRA slots", b.lora_gib)] if b.lora_gib > 0 else []),
        ("activation peak", b.activation_gib), ("non-torch", b.non_torch_gib),
        ("CUDA graphs" + ("" if r.cuda_graphs_counted else " (above budget)"), b.cuda_graph_gib),
        ("KV cache", b.kv_cache_gib),
    ]
    for name, gib in rows:
        mem.add_row(name, f"{gib:.2f}", f"{gib / b.total_gib:.1%}" if b.total_gib else "-", _bar(gib, b.total_gib))
    # TensorRT-LLM's fraction applies to what its profiling run leaves, so the whole device is usable.
    usable = "usable (the whole device)" if b.usable_gib == b.total_gib else "usable (total × utilization)"
    mem.add_row(usable, f"{b.usable_gib:.2f}", f"{b.usable_gib / b.total_gib:.1%}",
                _bar(b.usable_gib, b.total_gib))
    mem.add_row("total (CUDA-visible)", f"{b.total_gib:.2f}", "100.0%", _bar(b.total_gib, b.total_gib))
    console.print(mem)
    kv = Table(title="KV cache", title_justify="left", show_header=False)
    kv.add_column("")
    kv.add_column("", justify="right")
    kv.add_row("bytes per token per GPU", f"{r.kv_bytes_per_token:,}")
    band = r.kv_cache_tokens_range
    kv.add_row("GPU KV cache size (tokens)" + (" per DP rank" if r.data_parallel > 1 else ""),
               f"{r.kv_cache_tokens:,}" + (
        f" ± {r.kv_error_band:.1%} ({band[0]:,}–{band[1]:,})" if band is not None and r.kv_error_band else ""))
    if r.data_parallel > 1:
        kv.add_row(f"KV cache over the {r.data_parallel} DP ranks (tokens)",
                   f"{r.kv_cache_tokens * r.data_parallel:,}")
    kv.add_row(f"max concurrency at {r.max_model_len:,} tokens"
               + (" (sum over DP ranks)" if r.data_parallel > 1 else ""), f"{r.max_concurrency:.2f}×")
    kv.add_row("max_num_seqs (resolved)", f"{r.max_num_seqs:,}")
    kv.add_row("max_num_batched_tokens", f"{r.max_num_batched_tokens:,}")
    kv.add_row("weights over all GPUs", f"{r.weights_bytes_total / 2**30:.2f} GiB")
    if r.lora_cpu_cache_bytes is not None:
        kv.add_row("LoRA CPU cache per engine worker", f"{r.lora_cpu_cache_bytes / 2**30:.2f} GiB")
    kv.add_row("start-up time (estimate)", f"{r.load_time_seconds:.0f} s")
    console.print(kv)
    verdict = ("[red]DOES NOT FIT[/red]" if not r.fits else
               "[yellow]FITS, AT RISK[/yellow]" if r.verdict == "at risk" else "[green]FITS[/green]")
    console.print(f"Verdict: {verdict}")
    if r.calibration is not None:
        console.print(f"  {r.calibration.describe()}")
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
        for col in ("conc.", "running", "out tok/s", "tok/s/seq", "TPOT ms", "TTFT ms", "req/s", "$/1M out"):
            curve.add_column(col, justify="right")
        # The bound is a word users grep for (memory_bandwidth): on a narrow page the bar gives way.
        curve.add_column("bound", squeeze="keep")
        curve.add_column("", squeeze="crop")
        top = max((p.output_tokens_per_s for p in c.points), default=0.0)
        for p in c.points:
            curve.add_row(f"{p.concurrency:,}", f"{p.running:,}", f"{p.output_tokens_per_s:,.0f}",
                          f"{p.per_sequence_tokens_per_s:,.1f}", f"{p.tpot_ms:,.1f}", f"{p.ttft_ms:,.0f}",
                          f"{p.requests_per_s:,.2f}", _money(p.cost_per_1m_output_tokens, 3), p.bound,
                          _bar(p.output_tokens_per_s, top, 6))
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


def render_roles(console: "Console | Report", roles: "DisaggSizing") -> None:
    """Both pools of a disaggregated service (``sizing.roles``): shape, rate, latency, ratio, and the alternative."""
    from .cli_table import Table

    t = Table(title=f"Prefill/decode disaggregation ({roles.connector} KV transfer, estimates)", title_justify="left")
    for col in ("role", "GPUs/replica", "replicas", "req/s/replica", "tok/s/replica", "latency", "batch", "KV tokens"):
        t.add_column(col, justify="left" if col == "role" else "right")
    for r, latency in ((roles.prefill, "TTFT"), (roles.decode, "TPOT")):
        t.add_row(r.role, f"{r.gpus_per_replica} × {r.gpu}", f"{r.replicas}", f"{r.requests_per_s_per_replica:,.2f}",
                  f"{r.tokens_per_s_per_replica:,.0f}", f"{latency} {r.latency_ms:,.0f} ms", f"{r.concurrency:,}",
                  f"{r.kv_cache_tokens:,}")
    console.print(t)
    console.print(f"{roles.ratio}; KV transfer ≈ {roles.transfer_ms:.1f} ms per typical prompt; {roles.gpus} GPUs"
                  + (f" ({_money(roles.cost_per_hour)}/h)" if roles.cost_per_hour is not None else ""))
    console.print(f"Cheaper: {roles.cheaper} ({roles.why})")
    console.print("Assumptions (roles):")
    for a in roles.assumptions:
        console.print(f"  - {a}")


def _write_json(data: Any) -> None:
    """Print one JSON document. A reader that went away is not an error (the exit code stays
    the verdict); a stdout that cannot be written (a full disk) ends the command with exit 1."""
    from .cli_common import write_stdout

    code = write_stdout(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    if code:
        raise SystemExit(code)


# --------------------------------------------------------------------------- size


def _size_spec_paths(spec_path: str, fmt: str, engine_version: str | None, load: _Load | None = None,
                     calibration: Any = None) -> int:
    from dataclasses import replace

    from .diagnostics import format_text, sort_diagnostics
    from .pipeline import analyze_all, load_specs
    from .sizing import input_from_spec, size
    from .sizing.topology import size_spec  # a replica may span nodes (resources.nodes)

    docs, load_diags = load_specs([spec_path])
    analyses = analyze_all(docs, calibration=calibration)
    diags = sort_diagnostics([*load_diags, *(d for a in analyses for d in a.diagnostics)])
    if diags:
        sys.stderr.write(format_text(diags))
    reports: list[tuple[str, SizingReport]] = []
    roles: dict[str, DisaggSizing] = {}  # disaggregated services: both pools (spec's target load)
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
                inp = replace(input_from_spec(a.spec, r.model, r.gpu, engine, r.calibration),
                              multi_node=a.spec.resources.nodes > 1)
                report = size(replace(inp, target_load=load.target_load(inp.target_load), slo=load.slo(inp.slo),
                                      concurrencies=load.concurrencies))
            else:
                report = size_spec(a.spec, r.model, r.gpu, engine, r.calibration)
        reports.append((a.label, report))
        if r.roles is not None:
            roles[a.label] = r.roles
    if not reports:
        print_error("nothing to size (the spec is invalid or its GPU/model/engine unknown)")
        if fmt == "json":
            _write_json({"valid": False, "fits": False, "warnings": [],
                         "errors": [{"code": d.rule, "message": d.message, "hint": d.hint, "field": d.path}
                                    for d in diags if d.is_error]
                         or [{"message": "nothing to size (the spec is invalid or its GPU/model/engine unknown)",
                              "hint": None}]})
        return EXIT_INVALID
    by_label = {a.label: a for a in analyses}
    verdicts = [(label, rep, _verdict(rep, by_label[label].diagnostics if label in by_label else []))
                for label, rep in reports]
    if fmt == "json":
        def one(label: str, rep: "SizingReport", v: dict[str, Any]) -> dict[str, Any]:
            out = {**rep.to_json(_rule_ids()), **v}
            if label in roles:
                out["disaggregation"] = roles[label].to_json()
            return out
        _write_json(one(*verdicts[0]) if len(reports) == 1 else
                    [{"service": label, **one(label, rep, v)} for label, rep, v in verdicts])
    else:
        from .cli_table import Report

        console = Report(_console)
        for i, (label, rep) in enumerate(reports):
            if i:
                console.print()
            render_report(console, rep, f"{label}: {rep.model.hf_id} on {rep.gpu_count} × {rep.gpu.name}"
                          + (" (decode role)" if label in roles else ""))
            if label in roles:
                render_roles(console, roles[label])
    failed = any(d.is_error for d in diags) or not all(_passes(v) for _, _, v in verdicts)
    return EXIT_INVALID if failed else EXIT_OK


def _passes(verdict: dict[str, Any]) -> bool:
    """Exit 0 for this report (schemas/size-output.schema.json): valid, fits, no errors."""
    return bool(verdict["valid"] and verdict["fits"] and not verdict["errors"])


def _verdict(report: "SizingReport", diags: Sequence[Any] = ()) -> dict[str, Any]:
    """``valid``, ``fits``, ``errors`` and ``warnings`` of one report, which decide the exit code.

    ``errors`` are the sizing reasons plus the spec's other error diagnostics, ``warnings``
    the sizing warnings plus the spec's other warnings (each once); ``valid`` is False when
    the spec has an error that is not about sizing, ``fits`` when a sizing rule raised one.
    """
    ids = _rule_ids()
    sizing_ids = set(ids.values())
    errors = [r.to_json(ids) for r in report.reasons]
    warnings = [r.to_json(ids) for r in report.warnings]
    seen = {(e["code"], e["field"]) for e in errors + warnings}
    valid, fits = True, report.fits
    for d in diags:
        if d.severity.value not in ("error", "warning"):
            continue
        if d.is_error:
            if d.rule in sizing_ids:
                fits = False
            else:
                valid = False
        key = (d.rule, d.path)
        if key in seen:
            continue
        seen.add(key)
        item = {"code": d.rule, "message": d.message, "hint": d.hint, "field": d.path}
        (errors if d.is_error else warnings).append(item)
    return {"valid": valid, "fits": fits, "errors": errors, "warnings": warnings}


def _run_size(spec: str | None = None, *, model: str | None = None, gpu: str | None = None, tensor_parallel: int = 1,
             pipeline_parallel: int = 1, data_parallel: int = 1, expert_parallel: bool = False, nodes: int = 1,
             dtype: str = "auto", quantization: str = "none",
             kv_cache_dtype: str = "auto", max_model_len: int = 8192, gpu_memory_utilization: float | None = None,
             max_num_batched_tokens: int | None = None, max_num_seqs: int | None = None, engine: str = "vllm",
             engine_version: str | None = None, price: float | None = None, fmt: str = "table",
             prompt_tokens: int | None = None, output_tokens: int | None = None, concurrency: str | None = None,
             request_rate: float | None = None, ttft_p95_ms: float | None = None,
             tpot_ms: float | None = None, calibration: str | None = None) -> int:
    """Show whether a model fits its GPUs: memory per GPU, KV tokens, concurrency, capacity and cost.

    Give a spec file, or --model and --gpu (with any engine setting). Exit 0 when it
    fits, 1 when it does not fit or the input is invalid, 2 on usage errors.
    """
    check_format(fmt, ("table", "json"))
    load = _parse_load(prompt_tokens, output_tokens, concurrency, request_rate, ttft_p95_ms, tpot_ms)
    if spec is not None:
        if model is not None or gpu is not None:
            fail_usage("give either a spec file or --model/--gpu, not both")
        if spec != "-" and not os.path.exists(spec):
            fail_usage(f"{spec}: no such file")
        return _size_spec_paths(spec, fmt, engine_version, load, _read_calibration(calibration))
    if model is None or gpu is None:
        fail_usage("give a spec file, or both --model and --gpu")
    assert model is not None and gpu is not None
    _check_engine_choices(dtype, quantization, kv_cache_dtype, engine)
    for name, value in (("--tensor-parallel", tensor_parallel), ("--pipeline-parallel", pipeline_parallel),
                        ("--data-parallel", data_parallel), ("--nodes", nodes), ("--max-model-len", max_model_len)):
        if value < 1:
            fail_usage(f"{name} must be at least 1 (got {value})")
    _check_gpu_memory_utilization(gpu_memory_utilization)
    if price is not None and not 0 <= price < float("inf"):
        fail_usage(f"--price-per-gpu-hour must be a finite number of at least 0 (got {price:g})")
    for name, opt in (("--max-num-batched-tokens", max_num_batched_tokens), ("--max-num-seqs", max_num_seqs)):
        if opt is not None and opt < 1:
            fail_usage(f"{name} must be at least 1 (got {opt})")
    from .sizing import SizingInput
    from .sizing import size as size_fn

    cal = _read_calibration(calibration)
    m, g, e = _resolve_model(model), _resolve_gpu(gpu), _resolve_engine(engine, engine_version)
    report = size_fn(SizingInput(
        model=m, gpu=g, engine=e,
        calibration=None if cal is None else cal.match(g.key, e.engine, e.version, tensor_parallel, m.hf_id),
        tensor_parallel=tensor_parallel, pipeline_parallel=pipeline_parallel, data_parallel=data_parallel,
        expert_parallel=expert_parallel, multi_node=nodes > 1, dtype=dtype,
        quantization=quantization, kv_cache_dtype=kv_cache_dtype, max_model_len=max_model_len,
        gpu_memory_utilization=gpu_memory_utilization, max_num_batched_tokens=max_num_batched_tokens,
        max_num_seqs=max_num_seqs, price_per_gpu_hour=price, target_load=load.target_load(),
        slo=load.slo(), concurrencies=load.concurrencies,
    ))
    verdict = _verdict(report)
    if fmt == "json":
        _write_json({**report.to_json(_rule_ids()), **verdict})
    else:
        from .cli_table import Report

        render_report(Report(_console), report)
    return EXIT_OK if _passes(verdict) else EXIT_INVALID


def _run_plan(model: str, *, max_model_len: int = 8192, gpu: str | None = None, dtype: str = "auto",
             quantization: str = "none", kv_cache_dtype: str = "auto", gpu_memory_utilization: float | None = None,
             engine: str = "vllm", engine_version: str | None = None, fmt: str = "table",
             prompt_tokens: int | None = None, output_tokens: int | None = None, concurrency: str | None = None,
             request_rate: float | None = None, ttft_p95_ms: float | None = None,
             tpot_ms: float | None = None, calibration: str | None = None, disaggregation: bool = True) -> int:
    """List every GPU type × tensor-parallel size (× quantization) that fits the model, cheapest first.

    A model no node holds gets the fewest whole nodes that do (tensor parallel inside a
    node, pipeline across nodes), marked ``8×2pp`` with the reason below the table.

    With --request-rate (and --ttft-p95-ms/--tpot-ms) each option gets the replicas the
    rate needs and its $/1M output tokens at that load, cheapest first; options that
    miss the SLO come last with the reason. With a rate each shape also comes
    disaggregated (prefill and decode pools, ``sizing.roles``) unless
    --no-disaggregation, and the cheapest shape's verdict says why. Exit 0 when at least
    one configuration fits, 1 when none does.
    """
    check_format(fmt, ("table", "json"))
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
                           gpus=gpus, target_load=load.target_load(), slo=load.slo(),
                           calibration=_read_calibration(calibration))
    if disaggregation:
        from .sizing.roles import with_disaggregated

        options = with_disaggregated(options, load.target_load(), load.slo())
    if fmt == "json":
        _write_json({"model": m.hf_id, "max_model_len": max_model_len, "engine": info.engine,
                     "engine_version": info.version,
                     "load": {"prompt_tokens": load.prompt_tokens, "output_tokens": load.output_tokens,
                              "request_rate": load.request_rate, "ttft_p95_ms": load.ttft_p95_ms,
                              "tpot_ms": load.tpot_ms},
                     "options": [o.to_json() for o in options],
                     "valid": True, "fits": bool(options),
                     "errors": [] if options else [
                         {"message": f"no GPU type and tensor-parallel size fits {m.hf_id} at {max_model_len:,} tokens",
                          "hint": "lower --max-model-len, allow quantization (--quantization none,fp8) or more GPUs"}],
                     "warnings": []})
    else:
        from .cli_table import Report

        _render_options(Report(_console), m, max_model_len, info, options, load)
    return EXIT_OK if options else EXIT_INVALID


def run_catalog_gpus(fmt: str = "table") -> int:
    """List the GPU catalog: memory, bandwidth, tensor throughput, node size, price."""
    check_format(fmt, ("table", "json"))
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
    check_format(fmt, ("table", "json"))
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


def register(app: "typer.Typer") -> None:
    """Add the sizing commands (size, plan, catalog gpus|models) to ``app``."""
    from typing import Annotated, Optional

    import typer

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
    CalibrationFile = Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--calibration", help="Calibration file from `llmdeploy calibrate LOG… --write` "
                     "(replaces the spec's resources.calibration)."),
    ]
    TpotMs = Annotated[
        Optional[float],  # noqa: UP045
        typer.Option("--tpot-ms", help="p95 time-per-output-token (inter-token latency) target in ms."),
    ]

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
        data_parallel: Annotated[
            int, typer.Option("--data-parallel", "--dp", help="Data-parallel ranks (each its own KV cache).")] = 1,
        expert_parallel: Annotated[
            bool, typer.Option("--expert-parallel", "--ep",
                               help="Whole MoE experts per GPU over tensor × data (--enable-expert-parallel).")] = False,
        nodes: Annotated[int, typer.Option("--nodes", help="Nodes the replica spans (lifts the one-node bound).")] = 1,
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
        engine: Annotated[str, typer.Option("--engine", help="vllm, tgi, sglang or tensorrt-llm.")] = "vllm",
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
        fmt: Annotated[str, typer.Option(*OUTPUT_NAMES, help="Output format: table or json.")] = "table",
        calibration: CalibrationFile = None,
    ) -> None:
        """Show whether a model fits its GPUs: memory per GPU, KV tokens, concurrency, capacity and cost.

        Give a spec file, or --model and --gpu (with any engine setting). --model takes a
        catalog id (llmdeploy catalog models) or, for a model the catalog lacks, the path
        of its Hugging Face config.json. Exit 0 when it fits, 1 when it does not fit or
        the input is invalid, 2 on usage errors.
        """
        raise typer.Exit(run_size(
            spec, model=model, gpu=gpu, tensor_parallel=tensor_parallel, pipeline_parallel=pipeline_parallel,
            data_parallel=data_parallel, expert_parallel=expert_parallel, nodes=nodes,
            dtype=dtype, quantization=quantization, kv_cache_dtype=kv_cache_dtype, max_model_len=max_model_len,
            gpu_memory_utilization=gpu_memory_utilization, max_num_batched_tokens=max_num_batched_tokens,
            max_num_seqs=max_num_seqs, engine=engine, engine_version=engine_version, price=price, fmt=fmt,
            prompt_tokens=prompt_tokens, output_tokens=output_tokens, concurrency=concurrency,
            request_rate=request_rate, ttft_p95_ms=ttft_p95_ms, tpot_ms=tpot_ms, calibration=calibration))

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
        engine: Annotated[str, typer.Option("--engine", help="vllm, tgi, sglang or tensorrt-llm.")] = "vllm",
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
        disaggregation: Annotated[bool, typer.Option(
            "--disaggregation/--no-disaggregation",
            help="With --request-rate, also rank each shape as prefill/decode pools (P/D).")] = True,
        fmt: Annotated[str, typer.Option(*OUTPUT_NAMES, help="Output format: table or json.")] = "table",
        calibration: CalibrationFile = None,
    ) -> None:
        """List every GPU type × tensor-parallel size that fits the model, cheapest first.

        Exit 0 when at least one configuration fits, 1 when none does.
        """
        raise typer.Exit(run_plan(
            model, max_model_len=max_model_len, gpu=gpu, dtype=dtype, quantization=quantization,
            kv_cache_dtype=kv_cache_dtype, gpu_memory_utilization=gpu_memory_utilization, engine=engine,
            engine_version=engine_version, fmt=fmt, prompt_tokens=prompt_tokens, output_tokens=output_tokens,
            concurrency=concurrency, request_rate=request_rate, ttft_p95_ms=ttft_p95_ms, tpot_ms=tpot_ms,
            calibration=calibration, disaggregation=disaggregation))

    catalog_app = typer.Typer(help="List the GPUs and models llmdeploy knows.", no_args_is_help=True)
    app.add_typer(catalog_app, name="catalog")

    @catalog_app.command("gpus")
    def catalog_gpus(fmt: Annotated[str, typer.Option(*OUTPUT_NAMES, help="Output format: table or json.")] = "table") -> None:
        """List the GPU catalog: memory, bandwidth, tensor throughput, node size, price."""
        raise typer.Exit(run_catalog_gpus(fmt))

    @catalog_app.command("models")
    def catalog_models(fmt: Annotated[str, typer.Option(*OUTPUT_NAMES, help="Output format: table or json.")] = "table") -> None:
        """List the model catalog: size, layers, attention layout, KV bytes per token."""
        raise typer.Exit(run_catalog_models(fmt))


def _gpu_json(g: "GPU") -> dict[str, Any]:
    return {
        "key": g.key, "name": g.name, "vendor": g.vendor, "aliases": list(g.aliases), "memory_mib": g.memory_mib,
        "memory_gib": round(g.memory_gib, 3), "memory_bandwidth_gbs": g.memory_bandwidth_gbs,
        "fp16_tflops": g.fp16_tflops, "bf16_tflops": g.bf16_tflops, "fp8_tflops": g.fp8_tflops,
        "fp4_tflops": g.fp4_tflops, "fp8": g.fp8,
        "fp8_weight_only": g.fp8_weight_only, "compute_capability": g.compute_capability,
        "interconnect": g.interconnect, "gpus_per_node": g.gpus_per_node,
        "nvlink_domain": g.nvlink_domain, "resource_name": g.resource_name,
        "price_per_gpu_hour_usd": g.price_per_gpu_hour_usd,
    }


def _model_json(m: "ModelConfig") -> dict[str, Any]:
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


def _render_options(console: "Console | Report", m: "ModelConfig", max_model_len: int, info: "EngineVersionInfo",
                    options: "list[Option]", load: _Load | None = None) -> None:
    """The ``plan`` table and its notes (on a :class:`~llmdeploy.cli_table.Report`: plain
    text when rich would add nothing, which a hundred-row table makes worth it)."""
    from .cli_table import Table

    rated = load is not None and load.request_rate is not None
    what = (f"for {load.request_rate:g} req/s, cheapest per 1M output tokens first" if rated and load
            else "cheapest first")
    t = Table(title=f"{m.hf_id} at maxModelLen {max_model_len:,} ({info.engine} {info.version}): "
                    f"{len(options)} configurations fit, {what}")
    pd = any(o.disaggregation is not None for o in options)
    cols = ["GPU", "TP", "quant"] + (["topology"] if pd else []) + ["GPUs", "GiB/GPU", "KV tokens", "out tok/s",
                                                                    "$/hour"]
    if rated:
        cols += ["replicas"]
    cols += ["$/1M out", "SLO"]
    for col in cols:
        t.add_column(col, justify="left" if col in ("GPU", "quant", "topology", "SLO") else "right")
    for o in options:
        cap = o.report.capacity
        ds = o.disaggregation
        tp = str(o.tensor_parallel) if o.nodes == 1 else f"{o.tensor_parallel}×{o.pipeline_parallel}pp"
        row = [o.gpu_key, tp, o.quantization.split(" ")[0]] + (
            [o.topology if o.disaggregation is not None else "agg"] if pd else []) + [
            str(o.gpu_count), f"{o.weights_gib_per_gpu:.1f}", f"{o.kv_cache_tokens:,}",
            (f"{ds.decode.tokens_per_s_per_replica:,.0f}" if ds is not None
             else f"{cap.decode_tokens_per_s:,.0f}" if cap else "-"), _money(o.cost_per_hour)]
        if rated:
            row.append("-" if o.replicas is None else
                       f"{ds.prefill.replicas}+{ds.decode.replicas}" if ds is not None else str(o.replicas))
        row += [_money(o.cost_per_1m_output_tokens, 3), "ok" if o.slo_missed is None else f"missed: {o.slo_missed}"]
        t.add_row(*row)
    console.print(t)
    for o in options:
        if o.why:
            console.print(f"{o.gpu_key} {o.tensor_parallel}×{o.pipeline_parallel}pp spans {o.nodes} nodes: {o.why} "
                          "(deployment.target leaderWorkerSet or inferenceService, docs/topologies.md)")
    if pd:
        best = options[0]
        same = next(o for o in options if o.disaggregation is not None and (o.gpu_key, o.tensor_parallel,
                                                                           o.quantization) ==
                    (best.gpu_key, best.tensor_parallel, best.quantization))
        assert same.disaggregation is not None
        console.print(f"Aggregated vs P/D on {best.gpu_key} TP {best.tensor_parallel}: {same.disaggregation.cheaper} "
                      f"is cheaper ({same.disaggregation.why}). P/D rows: prefill and decode pools of this shape, "
                      "NIXL over RDMA (agg: one pool); out tok/s is one decode replica's; replicas are prefill+decode.")
    if not options:
        console.print("Nothing fits: try a shorter --max-model-len, --quantization fp8 or a quantized checkpoint.")


def _input_errors_as_json(body: Callable[..., int]) -> Callable[..., int]:
    """``body`` with ``-o json`` input errors as JSON too (:func:`_json_errors`); same signature."""

    @functools.wraps(body)
    def run(*args: Any, **kwargs: Any) -> int:
        with _json_errors(kwargs.get("fmt", "table")):
            return body(*args, **kwargs)

    return run


# The commands' typer-free bodies: the typer commands (register) and the fast path in
# entry.py both call these.
run_size = _input_errors_as_json(_run_size)
run_plan = _input_errors_as_json(_run_plan)
