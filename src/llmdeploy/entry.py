"""The console entry point: start fast, hand anything unusual to the typer app.

``llmdeploy validate`` runs as a pre-commit hook and ``llmdeploy render`` in CI, each as
a fresh process, often many times a day, and ``size``/``plan`` answer what-ifs by hand
and in scripts, so their start-up matters (targets and numbers in
``benchmarks/README.md``). Two things here keep it short:

* **The fast path.** A plain, well-formed ``validate``, ``render``, ``size`` or ``plan``
  command line (known options, the arguments and required options the command needs) is
  parsed here from the small tables below and goes straight to the command's typer-free
  body: no typer import, no click context, no pydantic adapters for the options (~25 ms
  for ``validate``, ~70 ms for ``size``, whose flags-only form then needs no pydantic at
  all). Integer and float options are converted here only when the value is plain digits
  (a float: with at most one decimal point), where Python's ``int``/``float`` and typer's
  conversion agree. Anything else (``--help``, a typo, a missing value, ``--tp two``,
  ``1e3``, an option the tables do not know, another command) goes to the typer app,
  which parses and reports it as always. Both ways call the same body;
  ``tests/unit/test_entry.py`` checks the tables against the typer commands and compares
  the output of both ways. ``LLMDEPLOY_NO_FAST_PATH=1`` turns the fast path off.
* **A quick exit** (:func:`console`): once the command has flushed its output, the
  process ends without CPython's interpreter teardown (~20-40 ms of freeing objects).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

# kind: "flag" (True), "off" (False: the --no-… of a flag), "value" (a string; the last
# one wins), "int" / "float" (a plain number, converted here; anything else goes to typer),
# "multi" (a string, repeatable).
_OptionTable = dict[str, tuple[str, str]]

VALIDATE_OPTIONS: _OptionTable = {
    "--output": ("fmt", "value"),
    "-o": ("fmt", "value"),
    "--format": ("fmt", "value"),
    "-f": ("fmt", "value"),
    "--strict": ("strict", "flag"),
    "--show-resolved": ("show_resolved", "flag"),
    "--quiet": ("quiet", "flag"),
    "-q": ("quiet", "flag"),
}
RENDER_OPTIONS: _OptionTable = {
    "--output": ("out_format", "value"),
    "-o": ("out_format", "value"),
    "--format": ("out_format", "value"),
    "-f": ("out_format", "value"),
    "--output-dir": ("output_dir", "value"),
    "--only": ("only", "value"),
    "--crds": ("crds", "multi"),
    "--kubernetes-version": ("kubernetes_version", "value"),
    "--diagnostics-format": ("diag_format", "value"),
    "--strict": ("strict", "flag"),
    "--explain": ("explain", "flag"),
    "--prune": ("prune", "flag"),
    "--calibration": ("calibration", "value"),
}
# The options `size` and `plan` share.
_SIZING_OPTIONS: _OptionTable = {
    "--model": ("model", "value"),
    "-m": ("model", "value"),
    "--gpu": ("gpu", "value"),
    "-g": ("gpu", "value"),
    "--dtype": ("dtype", "value"),
    "--quantization": ("quantization", "value"),
    "--kv-cache-dtype": ("kv_cache_dtype", "value"),
    "--max-model-len": ("max_model_len", "int"),
    "--gpu-memory-utilization": ("gpu_memory_utilization", "float"),
    "--engine": ("engine", "value"),
    "--engine-version": ("engine_version", "value"),
    "--prompt-tokens": ("prompt_tokens", "int"),
    "--output-tokens": ("output_tokens", "int"),
    "--concurrency": ("concurrency", "value"),
    "--request-rate": ("request_rate", "float"),
    "--ttft-p95-ms": ("ttft_p95_ms", "float"),
    "--tpot-ms": ("tpot_ms", "float"),
    "--output": ("fmt", "value"),
    "-o": ("fmt", "value"),
    "--format": ("fmt", "value"),
    "-f": ("fmt", "value"),
    "--calibration": ("calibration", "value"),
}
SIZE_OPTIONS: _OptionTable = {
    **_SIZING_OPTIONS,
    "--tensor-parallel": ("tensor_parallel", "int"),
    "--tp": ("tensor_parallel", "int"),
    "--pipeline-parallel": ("pipeline_parallel", "int"),
    "--pp": ("pipeline_parallel", "int"),
    "--data-parallel": ("data_parallel", "int"),
    "--dp": ("data_parallel", "int"),
    "--expert-parallel": ("expert_parallel", "flag"),
    "--ep": ("expert_parallel", "flag"),
    "--nodes": ("nodes", "int"),
    "--max-num-batched-tokens": ("max_num_batched_tokens", "int"),
    "--max-num-seqs": ("max_num_seqs", "int"),
    "--price-per-gpu-hour": ("price", "float"),
}
PLAN_OPTIONS: _OptionTable = {
    **_SIZING_OPTIONS,
    "--disaggregation": ("disaggregation", "flag"),
    "--no-disaggregation": ("disaggregation", "off"),
}


class FastCommand:
    """What the fast path needs to know of one command.

    ``target`` is ``module:function`` (the typer-free body, called with keyword arguments);
    ``argument`` the name of its positional parameter (None: it takes none), taking at
    least ``min_args`` and at most ``max_args`` values (None: any number, passed as a
    list; 1: one value or the parameter's default); ``required`` the options typer
    requires.
    """

    __slots__ = ("argument", "max_args", "min_args", "options", "required", "target")

    def __init__(self, target: str, options: _OptionTable, argument: str | None = None, min_args: int = 0,
                 max_args: int | None = 1, required: tuple[str, ...] = ()) -> None:
        self.target = target
        self.options = options
        self.argument = argument
        self.min_args = min_args
        self.max_args = max_args
        self.required = required


FAST_COMMANDS: dict[str, FastCommand] = {
    "validate": FastCommand("llmdeploy.cli_validate:run", VALIDATE_OPTIONS, "paths", 1, None),
    "render": FastCommand("llmdeploy.cli_render:run", RENDER_OPTIONS, "paths", 1, None),
    "size": FastCommand("llmdeploy.cli_size:run_size", SIZE_OPTIONS, "spec", 0, 1),
    "plan": FastCommand("llmdeploy.cli_size:run_plan", PLAN_OPTIONS, None, 0, 0, required=("model",)),
}


def _plain_number(value: str, kind: str) -> int | float | None:
    """``value`` as typer would convert it, when it is a plain number: digits, and for a
    float at most one decimal point between digits. None for anything else (a sign, an
    exponent, ``1_000``, ``nan``, spaces): typer converts or rejects those itself."""
    whole, dot, frac = value.partition(".")
    if not (whole.isascii() and whole.isdigit() and len(whole) <= 15):
        return None
    if kind == "int":
        return None if dot else int(whole)
    if dot and not (frac.isascii() and frac.isdigit() and len(frac) <= 15):
        return None
    return float(value)


def parse_fast(argv: Sequence[str]) -> tuple[str, dict[str, Any]] | None:
    """``("module:function", keyword arguments)`` for a plain command line, else None.

    None means "let typer parse it": this parser never reports errors itself.
    """
    if not argv or argv[0] not in FAST_COMMANDS:
        return None
    command = FAST_COMMANDS[argv[0]]
    table = command.options
    kwargs: dict[str, Any] = {}
    positional: list[str] = []
    rest = iter(argv[1:])
    only_positional = False
    for token in rest:
        if only_positional or token == "-" or not token.startswith("-"):
            positional.append(token)
            continue
        if token == "--":
            only_positional = True
            continue
        name, eq, value = token.partition("=") if token.startswith("--") else (token, "", "")
        if name not in table:
            return None  # --help, an unknown option, bundled short options (-qf json), ...
        param, kind = table[name]
        if kind in ("flag", "off"):
            if eq:
                return None
            kwargs[param] = kind == "flag"
            continue
        if not eq:
            nxt = next(rest, None)
            if nxt is None:
                return None  # typer reports the missing value
            value = nxt
        if value.startswith("-") and value != "-":
            return None  # an option where a value belongs (`--model --gpu l4`): typer decides
        if kind == "multi":
            kwargs.setdefault(param, []).append(value)
        elif kind in ("int", "float"):
            number = _plain_number(value, kind)
            if number is None:
                return None
            kwargs[param] = number
        else:
            kwargs[param] = value
    if len(positional) < command.min_args or (command.max_args is not None and len(positional) > command.max_args):
        return None  # typer reports the missing or extra argument
    if any(param not in kwargs for param in command.required):
        return None  # typer reports the missing option
    if command.argument is not None and positional:
        kwargs[command.argument] = positional if command.max_args is None else positional[0]
    return command.target, kwargs


class _ClosedStream:
    """Stands in for ``sys.stdout`` when the process started with fd 1 closed (``>&-``).

    Writing raises ``OSError(EBADF)``, which the commands report as a clear error (exit 1),
    as ``cat`` does, instead of an ``AttributeError`` on ``None``.
    """

    encoding = "utf-8"

    def __init__(self, name: str) -> None:
        self.name = name

    def write(self, text: str) -> int:
        import errno

        raise OSError(errno.EBADF, f"{self.name} is closed")

    def flush(self) -> None:
        return None

    def isatty(self) -> bool:
        return False


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Run the CLI; always ends with SystemExit carrying the exit code."""
    if sys.stdout is None:
        sys.stdout = _ClosedStream("standard output")  # type: ignore[assignment]
    for stream in (sys.stdout, sys.stderr):
        # Messages ("✓ 1 spec valid", a quoted "Zoë") on a stream whose encoding cannot hold
        # them (PYTHONIOENCODING=ascii): replaced characters, not a UnicodeEncodeError. The
        # manifests themselves go out as UTF-8 bytes (cli_common.write_stdout).
        encoding = (getattr(stream, "encoding", None) or "utf-8").lower().replace("_", "-")
        if encoding not in ("utf-8", "utf8") and hasattr(stream, "reconfigure"):
            with contextlib.suppress(Exception):
                stream.reconfigure(errors="replace")
    args = sys.argv[1:] if argv is None else list(argv)
    fast = None if os.environ.get("LLMDEPLOY_NO_FAST_PATH") else parse_fast(args)
    try:
        if fast is None:
            from .cli import app

            app(args=args, prog_name="llmdeploy", standalone_mode=True)
            raise SystemExit(0)  # pragma: no cover - typer always exits in standalone mode
        import importlib

        target, kwargs = fast
        module, _, function = target.partition(":")
        raise SystemExit(getattr(importlib.import_module(module), function)(**kwargs))
    except SystemExit:
        raise
    except KeyboardInterrupt:
        from .cli_common import write_stderr

        write_stderr("interrupted\n")
        raise SystemExit(130) from None
    except BrokenPipeError:
        raise SystemExit(0) from None  # the reader went away (e.g. `| head`): not our error
    except OSError as exc:  # a full disk, a closed stream, a vanished file: the environment, not a bug
        if os.environ.get("LLMDEPLOY_DEBUG"):
            raise
        from .cli_common import print_error

        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        print_error(f"{exc.strerror or exc}{where} (hint: check free space, permissions and the output streams)")
        raise SystemExit(1) from None
    except Exception as exc:  # the last line of defence: never a bare traceback
        from .errors import LlmdeployError

        if isinstance(exc, LlmdeployError):
            from .cli_common import report

            raise SystemExit(report(exc)) from None
        if os.environ.get("LLMDEPLOY_DEBUG"):
            raise
        from .cli_common import write_stderr
        from .secrets import redact

        write_stderr(
            f"llmdeploy: internal error: {type(exc).__name__}: {redact(str(exc))}\n"
            "This is a bug in llmdeploy; rerun with LLMDEPLOY_DEBUG=1 for the traceback and report it.\n"
        )
        raise SystemExit(3) from None


def console() -> NoReturn:
    """The ``llmdeploy`` console script and ``python -m llmdeploy``."""
    import gc

    # A short-lived process: most objects it makes (modules, classes, pydantic schemas)
    # live until the end, so cycle collection only burns time (one young-generation pass
    # over pydantic's objects takes ~13 ms). Peak memory for `render` of 100 specs is the
    # same with or without it (~110 MB), so the process runs without.
    gc.disable()
    # llmdeploy validates its own spec models; third-party pydantic plugins (found by
    # scanning every installed package's entry points) have no business there.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    try:
        main()
    except SystemExit as exc:
        exit_now(exc.code)


def exit_now(code: object) -> NoReturn:
    """Flush stdout and stderr, then end the process without tearing the interpreter down.

    Everything llmdeploy writes is complete by now (output files are renamed into place
    before a command returns), so the 20-40 ms CPython spends freeing every module and
    object at exit buy nothing. Under coverage or LLMDEPLOY_DEBUG the normal exit runs
    instead, so their exit hooks still run.
    """
    from .cli_common import print_error, write_stderr

    if code is None:
        code = 0
    elif not isinstance(code, int):
        write_stderr(f"{code}\n")
        code = 1
    broken = False
    try:
        if sys.stdout is not None:
            sys.stdout.flush()
    except BrokenPipeError:
        broken = True  # the reader went away (e.g. `| head`): not our error
    except (OSError, ValueError) as exc:  # a full disk under buffered output: say so, exit 1
        broken = True
        if not code:
            print_error(f"cannot write to standard output: {getattr(exc, 'strerror', None) or exc}")
            code = 1
    with contextlib.suppress(OSError, ValueError, AttributeError):
        sys.stderr.flush()
    if "coverage" in sys.modules or os.environ.get("LLMDEPLOY_DEBUG"):
        if broken:  # or the interpreter's own last flush complains about the closed pipe
            with contextlib.suppress(OSError, ValueError, AttributeError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(code)
    os._exit(code)
