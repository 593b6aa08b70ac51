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
    """The one way a command reports a failure: ``llmdeploy: error: <what> (hint: <how to fix>)``.

    Secret-shaped values in the message are redacted (:func:`llmdeploy.secrets.redact`).
    """
    from .secrets import redact

    write_stderr(f"{ERROR_PREFIX}{redact(str(message))}\n")


def write_stderr(text: str) -> None:
    """Write to stderr if it can take it: a closed, full or broken stderr never stops a command.

    Diagnostics and notes go to stderr before the manifests go to stdout; a CI job whose
    log stream is gone must still get its manifests. Text the stream's encoding cannot
    hold is written with replacement characters.
    """
    stream = sys.stderr
    if stream is None:  # the process was started with fd 2 closed
        return
    try:
        try:
            stream.write(text)
        except UnicodeEncodeError:
            encoding = getattr(stream, "encoding", None) or "ascii"
            stream.write(text.encode(encoding, "replace").decode(encoding))
        stream.flush()
    except (OSError, ValueError):  # full disk, closed pipe, closed file
        pass


def write_stdout(text: str) -> int:
    """Write the command's product to stdout; the exit code.

    Manifests are YAML or JSON, which are UTF-8 whatever the locale says: on a stream
    whose encoding is not UTF-8 (``LC_ALL=C`` on an old Python, a Windows console
    redirected to a file) the UTF-8 bytes go to the underlying binary stream. A reader
    that went away (``| head``) ends the command quietly (exit 0, as ``cat`` does under
    ``SIGPIPE``); a closed stdout or a full disk is a clear error (exit 1), never a
    traceback.
    """
    import codecs

    stream = sys.stdout
    if stream is None:
        print_error("cannot write to standard output: it is closed (hint: redirect it to a file or use --output)")
        return EXIT_INVALID
    try:
        encoding = getattr(stream, "encoding", None) or "utf-8"
        try:
            utf8 = codecs.lookup(encoding).name == "utf-8"
        except LookupError:
            utf8 = False
        buffer = getattr(stream, "buffer", None)
        if utf8 or buffer is None:
            stream.write(text)
            stream.flush()
        else:
            stream.flush()
            buffer.write(text.encode("utf-8"))
            buffer.flush()
    except BrokenPipeError:
        silence_stdout()
        return EXIT_OK
    except UnicodeEncodeError as exc:
        print_error(f"cannot write to standard output: its encoding {exc.encoding} cannot hold the output "
                    "(hint: set PYTHONIOENCODING=utf-8 or use --output)")
        return EXIT_INVALID
    except (OSError, ValueError) as exc:
        silence_stdout()
        reason = getattr(exc, "strerror", None) or str(exc)
        print_error(f"cannot write to standard output: {reason} (hint: free space on the target or use --output)")
        return EXIT_INVALID
    return EXIT_OK


def silence_stdout() -> None:
    """Point fd 1 at /dev/null so the interpreter's last flush of the dead stream stays quiet."""
    try:
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, sys.stdout.fileno())
        os.close(fd)
    except (OSError, ValueError, AttributeError):
        pass


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


def check_format(fmt: str, allowed: tuple[str, ...], hint: str | None = None, flag: str = "-o/--output") -> str:
    """``fmt`` if it is one of ``allowed``, else a usage error (exit 2).

    ``-o/--output`` is a format in every command (kubectl/helm style, docs/cli.md); a value
    that is not one (a file or folder name from before the scheme) gets ``hint``, which names
    the flag that writes files (``--output-dir``, ``--output-file``) instead of a folder or
    file silently appearing.
    """
    if fmt not in allowed:
        message = f"{flag} takes a format: {', '.join(allowed)} (got {fmt!r})"
        fail_usage(f"{message} (hint: {hint.format(value=fmt)})" if hint else message)
    return fmt


# The one spelling of the output options in every command (docs/cli.md#output); `--format`
# and `-f` stay as aliases of `-o/--output` for command lines written before the scheme.
OUTPUT_NAMES = ("--output", "-o", "--format", "-f")


def write_diagnostics(diags: list, fmt: str, stream: TextIO, summary: dict | None = None,  # type: ignore[type-arg]
                      top: dict | None = None) -> None:  # type: ignore[type-arg]
    from .diagnostics import format_github, format_json, format_text, resolve_format

    fmt = resolve_format(fmt)
    if fmt == "json":
        text = format_json(diags, summary, top)
    elif fmt == "github":
        text = format_github(diags)
    else:
        text = format_text(diags)
    if stream is sys.stderr:
        write_stderr(text)
    else:
        stream.write(text)

