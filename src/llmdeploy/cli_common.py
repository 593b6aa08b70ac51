"""What every command shares, free of typer so the fast path (``entry.py``) can use it.

Exit codes everywhere: 0 OK, 1 invalid input (or a model that does not fit), 2 usage
error, 3 internal error. Usage problems raise :class:`~llmdeploy.errors.UsageError`;
the entry point (or the typer group, in-process) prints ``llmdeploy: error: …`` and
exits 2.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, NoReturn, TextIO

if TYPE_CHECKING:  # pragma: no cover
    from .errors import LlmdeployError

EXIT_OK, EXIT_INVALID, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3
DIAGNOSTIC_FORMATS = ("auto", "text", "json", "github")


ERROR_PREFIX = "llmdeploy: error: "


def print_error(message: object) -> None:
    """The one way a command reports a failure: ``llmdeploy: error: <what> (hint: <how to fix>)``."""
    sys.stderr.write(f"{ERROR_PREFIX}{message}\n")


def report(exc: LlmdeployError) -> int:
    """Print an error llmdeploy raised on purpose; its exit code."""
    print_error(exc)
    return exc.exit_code


def fail_usage(message: str) -> NoReturn:
    from .errors import UsageError

    raise UsageError(message)


def check_paths(paths: Sequence[str]) -> None:
    for p in paths:
        if p != "-" and not os.path.exists(p):
            fail_usage(f"{p}: no such file or folder")


def check_format(fmt: str, allowed: tuple[str, ...]) -> str:
    if fmt not in allowed:
        fail_usage(f"--format must be one of {', '.join(allowed)} (got {fmt!r})")
    return fmt


def write_diagnostics(diags: list, fmt: str, stream: TextIO, summary: dict | None = None) -> None:  # type: ignore[type-arg]
    from .diagnostics import format_github, format_json, format_text, resolve_format

    fmt = resolve_format(fmt)
    if fmt == "json":
        text = format_json(diags, summary)
    elif fmt == "github":
        text = format_github(diags)
    else:
        text = format_text(diags)
    stream.write(text)

