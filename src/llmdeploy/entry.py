"""The console entry point: start fast, hand anything unusual to the typer app.

``llmdeploy validate`` runs as a pre-commit hook and ``llmdeploy render`` in CI, each as
a fresh process, often many times a day, so their start-up matters (targets and numbers
in ``benchmarks/README.md``). Two things here keep it short:

* **The fast path.** A plain, well-formed ``validate`` or ``render`` command line (known
  options, at least one path) is parsed here from the small tables below and goes
  straight to the command's typer-free ``run()``: no typer import, no click context, no
  pydantic adapters for the options (~25 ms). Anything else (``--help``, a typo, a
  missing value, an option the tables do not know, another command) goes to the typer
  app, which parses and reports it as always. Both ways call the same ``run()``;
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

# kind: "flag" (no value), "value" (one value; the last one wins), "multi" (repeatable).
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
# command → (module with run(paths, **options), its option table)
FAST_COMMANDS: dict[str, tuple[str, _OptionTable]] = {
    "validate": ("llmdeploy.cli_validate", VALIDATE_OPTIONS),
    "render": ("llmdeploy.cli_render", RENDER_OPTIONS),
}


def parse_fast(argv: Sequence[str]) -> tuple[str, dict[str, Any]] | None:
    """``(module, keyword arguments of run())`` for a plain command line, else None.

    None means "let typer parse it": this parser never reports errors itself.
    """
    if not argv or argv[0] not in FAST_COMMANDS:
        return None
    module, table = FAST_COMMANDS[argv[0]]
    kwargs: dict[str, Any] = {}
    paths: list[str] = []
    rest = iter(argv[1:])
    only_paths = False
    for token in rest:
        if only_paths or token == "-" or not token.startswith("-"):
            paths.append(token)
            continue
        if token == "--":
            only_paths = True
            continue
        name, eq, value = token.partition("=") if token.startswith("--") else (token, "", "")
        if name not in table:
            return None  # --help, an unknown option, bundled short options (-qf json), ...
        param, kind = table[name]
        if kind == "flag":
            if eq:
                return None
            kwargs[param] = True
            continue
        if not eq:
            nxt = next(rest, None)
            if nxt is None:
                return None  # typer reports the missing value
            value = nxt
        if kind == "multi":
            kwargs.setdefault(param, []).append(value)
        else:
            kwargs[param] = value
    if not paths:
        return None  # typer reports the missing argument
    kwargs["paths"] = paths
    return module, kwargs


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

        module, kwargs = fast
        raise SystemExit(importlib.import_module(module).run(**kwargs))
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
