"""The command line: a thin typer layer over the library core.

Each command turns its options into arguments of one core function and maps the
result to an exit code: 0 OK, 1 invalid input (or a model that does not fit),
2 usage error, 3 internal error. Imports of heavy modules happen inside the commands
so that ``--help`` and ``validate`` start fast.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from typer.core import TyperGroup

from . import __version__
from .cli_common import EXIT_INVALID, EXIT_OK, fail_usage, report


class _Group(TyperGroup):
    """Maps the errors llmdeploy raises on purpose to their exit codes inside the app itself.

    So the exit code is the same whether the app runs from ``main()`` (the console script)
    or in-process (``typer.testing.CliRunner``, other Python callers). Anything else is a
    bug and propagates; ``main()`` turns it into exit 3.
    """

    def invoke(self, ctx: typer.Context) -> object:
        from .errors import LlmdeployError

        try:
            return super().invoke(ctx)
        except LlmdeployError as exc:
            raise typer.Exit(report(exc)) from None


app = typer.Typer(
    cls=_Group,
    name="llmdeploy",
    help=(
        "Validate, size and render LLM services for Kubernetes (KServe + vLLM, KEDA, "
        "Prometheus) from one typed spec."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

FormatOpt = Annotated[
    str,
    typer.Option("--format", "-f", help="Diagnostics format: auto (github under GitHub Actions, else text), text, json, github."),
]


def _version(value: bool) -> None:
    if value:
        sys.stdout.write(f"llmdeploy {__version__}\n")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        Optional[bool],  # noqa: UP045 - typer needs Optional on 3.10
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit."),
    ] = None,
) -> None:
    """llmdeploy: typed spec in, apply-ready manifests out."""


# --------------------------------------------------------------------------- validate


@app.command()
def validate(
    paths: Annotated[list[str], typer.Argument(help="Spec files or folders (*.yaml inside); '-' reads stdin.")],
    fmt: FormatOpt = "auto",
    strict: Annotated[bool, typer.Option("--strict", help="Fail on warnings too.")] = False,
    show_resolved: Annotated[
        bool, typer.Option("--show-resolved", help="Print each spec after profiles and defaults are applied.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No summary line on success.")] = False,
) -> None:
    """Check specs: schema, profiles, catalogs, sizing and every rule. Never writes files.

    Exit 0 when valid (warnings allowed unless --strict), 1 when invalid.
    """
    from .cli_validate import run

    raise typer.Exit(run(paths, fmt, strict=strict, show_resolved=show_resolved, quiet=quiet))


# --------------------------------------------------------------------------- schema


@app.command()
def schema(
    output: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--output", "-o", help="Write to this file instead of stdout."),
    ] = None,
) -> None:
    """Print the JSON Schema of the spec (for editors and check-jsonschema)."""
    from .schema import schema_text

    text = schema_text()
    if output is None:
        sys.stdout.write(text)
    else:
        from .emit import write_atomic

        write_atomic(output, text)


# --------------------------------------------------------------------------- docs (hidden)


@app.command(hidden=True)
def docs(
    check: Annotated[bool, typer.Option("--check", help="Exit 1 when a generated page is stale.")] = False,
    write: Annotated[bool, typer.Option("--write", help="Regenerate the pages.")] = False,
    root: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--root", help="The source checkout (default: the one llmdeploy runs from)."),
    ] = None,
) -> None:
    """Check or regenerate docs/rules.md and docs/spec.md (for developers and tests)."""
    if check == write:
        fail_usage("pass exactly one of --check and --write")
    from .docgen import default_root, stale_pages, write_pages

    base = root or default_root()
    if not (base / "pyproject.toml").is_file():
        fail_usage(f"{base} is not an llmdeploy source checkout (pass --root)")
    if write:
        for rel in write_pages(base):
            sys.stderr.write(f"wrote {rel}\n")
        return
    stale = stale_pages(base)
    for rel in stale:
        sys.stderr.write(f"{rel} is stale; regenerate it with `llmdeploy docs --write`\n")
    raise typer.Exit(EXIT_INVALID if stale else EXIT_OK)


# --------------------------------------------------------------------------- init


@app.command()
def init(
    model: Annotated[str, typer.Option("--model", "-m", help="Catalog id or Hugging Face id of the model.")],
    gpu: Annotated[str, typer.Option("--gpu", "-g", help="GPU catalog key, e.g. a100-80gb, h100, l4.")],
    name: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--name", help="Service name (default: derived from the model)."),
    ] = None,
    namespace: Annotated[str, typer.Option("--namespace", "-n", help="Namespace.")] = "default",
    profile: Annotated[str, typer.Option("--profile", "-p", help="dev, staging or production.")] = "production",
    max_model_len: Annotated[int, typer.Option("--max-model-len", help="Longest request in tokens.")] = 8192,
    output: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--output", "-o", help="Write the spec to this file (never overwritten without --force)."),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite --output if it exists.")] = False,
) -> None:
    """Write a commented starter spec for a model on a GPU type."""
    from .errors import LlmdeployError
    from .init import starter_spec

    try:
        text = starter_spec(model=model, gpu=gpu, name=name, namespace=namespace, profile=profile,
                            max_model_len=max_model_len)
    except LlmdeployError as exc:
        sys.stderr.write(f"llmdeploy init: error: {exc}\n")
        raise typer.Exit(exc.exit_code) from None
    if output is None:
        sys.stdout.write(text)
        return
    if output.exists() and not force:
        sys.stderr.write(f"llmdeploy init: error: {output} exists (hint: pass --force to overwrite it)\n")
        raise typer.Exit(EXIT_INVALID)
    from .emit import write_atomic

    write_atomic(output, text)
    sys.stderr.write(f"wrote {output}\n")


# Commands that live in their own modules; they import their heavy dependencies lazily.
from . import cli_render, cli_size

cli_size.register(app)
cli_render.register(app)


def main() -> None:
    """Run the CLI (kept for callers of ``llmdeploy.cli:main``; see :mod:`llmdeploy.entry`)."""
    from .entry import main as entry_main

    entry_main()
