"""``llmdeploy calibrate LOG…``: the memory model against your own vLLM or SGLang start-up logs.

For each log: the configuration it prints (release, model, parallelism, dtype, KV dtype,
utilization) is sized on the GPU its CUDA total names (or ``--gpu``), and every figure the
log printed — weights, activation peak, non-torch memory, KV GiB and tokens, concurrency,
whether the engine started — is set beside the prediction with its error.
"""

# No `from __future__ import annotations` here: typer reads the annotations of the command
# defined inside register(), which refer to names imported there.
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from .cli_common import EXIT_INVALID, EXIT_OK, EXIT_USAGE, OUTPUT_NAMES, print_error, write_stdout

if TYPE_CHECKING:  # pragma: no cover
    import typer

FORMATS = ("table", "json")


def run(logs: list[Path], gpu: Optional[str] = None, model_config: Optional[Path] = None,  # noqa: UP045
        fmt: str = "table", write: Optional[Path] = None, calibration: Optional[Path] = None) -> int:  # noqa: UP045
    """Compare each log with the memory model and print the result; return the exit code.

    With ``write``, also record the per-setup corrections in that calibration file
    (sizing/calibration.py); with ``calibration``, compare after applying that file's
    corrections (how a calibration is checked on logs it was not written from).
    Exit 1 when a log cannot be read or sized (the others are still reported, nothing is
    written), 2 on a usage error.
    """
    from .catalog import CatalogError, get_gpu, model_from_hf_config
    from .engines.startup_log import parse_startup_log
    from .engines.startup_log_sglang import is_sglang_log, parse_sglang_log
    from .sizing.calibrate import calibrate, compare_log
    from .sizing.calibrate_sglang import compare_sglang_log
    from .sizing.calibration import CalibrationError, read_calibration, write_calibration

    if fmt not in FORMATS:
        print_error(f"-o/--output takes a format: {', '.join(FORMATS)} (got {fmt!r}) (hint: use table or json)")
        return EXIT_USAGE
    if not logs:
        print_error("give at least one vLLM start-up log (hint: llmdeploy calibrate vllm.log)")
        return EXIT_USAGE
    try:
        g = get_gpu(gpu) if gpu else None
        m = model_from_hf_config(model_config) if model_config else None
        cal = read_calibration(calibration) if calibration else None
    except (CatalogError, CalibrationError) as exc:
        print_error(exc)
        return EXIT_INVALID
    results, failed, read = [], False, []
    for path in logs:
        try:
            text = Path(path).read_text(encoding="utf-8", errors="replace")
            if is_sglang_log(text):  # SGLang logs are compared; calibration files are vLLM's (sizing/calibration.py)
                results.append(compare_sglang_log(parse_sglang_log(text, path), gpu=g, model=m))
            else:
                log = parse_startup_log(text, str(path))
                results.append(compare_log(log, gpu=g, model=m, calibration=cal))
                read.append(log)
        except OSError as exc:
            print_error(f"cannot read {path}: {exc.strerror or exc} (hint: check the path)")
            failed = True
        except CatalogError as exc:
            print_error(exc)
            failed = True
    if write is not None and not failed:
        from .fsio import write_atomic

        entries = calibrate(read, gpu=g, model=m)
        if not entries:
            print_error(f"no log started with a logged KV cache size, so there is nothing to calibrate "
                        f"(hint: give logs of engines that started; {write} was not written)")
            return EXIT_INVALID
        try:
            write_atomic(write, write_calibration(entries))
        except OSError as exc:
            print_error(f"cannot write {write}: {exc.strerror or exc} (hint: check the folder exists and is writable)")
            return EXIT_INVALID
        sys.stderr.write(f"wrote {write}: {len(entries)} correction{'s' if len(entries) != 1 else ''} from "
                         f"{len(read)} log{'s' if len(read) != 1 else ''}\n")
    if fmt == "json":
        write_stdout(json.dumps([r.to_json() for r in results], indent=2) + "\n")
    else:
        lines = []
        for r in results:
            lines.append(f"{r.path}: {'SGLang' if r.engine == 'sglang' else 'vLLM'} {r.version}, {r.model} on {r.gpu}"
                         + (" (calibrated)" if r.calibrated else ""))
            for c in r.checks:
                fmt_v = "{:,.0f}" if c.name in ("kv_cache_tokens", "kv_tokens_from_log") else "{:.2f}"
                lines.append(f"  {c.name:<16} logged {fmt_v.format(c.logged):>12}  predicted "
                             f"{fmt_v.format(c.predicted):>12}  error {c.error:+.1%}")
            start = "started" if r.started else "did not start"
            predicted = "fits" if r.predicted_start else "does not fit"
            lines.append(f"  verdict          {start}; llmdeploy: {predicted} -> {r.verdict}"
                         + (f" ({', '.join(r.reasons)})" if r.reasons else ""))
        write_stdout("\n".join(lines) + ("\n" if lines else ""))
    return EXIT_INVALID if failed else EXIT_OK


def register(app: "typer.Typer") -> None:
    """Add the calibrate command to ``app``."""
    from typing import Annotated

    import typer

    @app.command()
    def calibrate(
        logs: Annotated[list[Path], typer.Argument(help="vLLM or SGLang start-up logs (the engine's stdout/stderr).")],
        gpu: Annotated[
            Optional[str],  # noqa: UP045
            typer.Option("--gpu", "-g", help="Catalog GPU the logs ran on (default: told from the logged CUDA total)."),
        ] = None,
        model_config: Annotated[
            Optional[Path],  # noqa: UP045
            typer.Option("--model-config", help="config.json of a model the catalog lacks."),
        ] = None,
        fmt: Annotated[str, typer.Option(*OUTPUT_NAMES, help="Output format: table or json.")] = "table",
        write: Annotated[
            Optional[Path],  # noqa: UP045
            typer.Option("--write", help="Record per-setup corrections in this calibration file "
                         "(for size/render/plan --calibration)."),
        ] = None,
        calibration: Annotated[
            Optional[Path],  # noqa: UP045
            typer.Option("--calibration", help="Compare after applying this calibration file's corrections."),
        ] = None,
    ) -> None:
        """Compare the memory model with your own vLLM or SGLang start-up logs."""
        raise typer.Exit(run(logs, gpu, model_config, fmt, write, calibration))
