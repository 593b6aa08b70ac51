"""The command line: a thin typer layer over the library core.

Each command turns its options into arguments of one core function and maps the
result to an exit code: 0 OK, 1 invalid input (or a model that does not fit),
2 usage error, 3 internal error. Imports of heavy modules happen inside the commands
so that ``--help`` and ``validate`` start fast.
"""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer
from typer.core import TyperGroup

from . import __version__
from .cli_common import report


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


# Every command lives in its own module, in one shape: a typer-free ``run()`` that returns
# the exit code (the fast path in entry.py calls it directly) and ``register(app)`` that adds
# the typer command calling it. Each module imports its heavy dependencies lazily.
from . import (  # noqa: E402
    cli_calibrate,
    cli_completion,
    cli_docs,
    cli_init,
    cli_render,
    cli_schema,
    cli_size,
    cli_validate,
)

for _module in (cli_validate, cli_schema, cli_docs, cli_init, cli_size, cli_render, cli_calibrate, cli_completion):
    _module.register(app)

# Shell completion (`llmdeploy completion SHELL` prints the script): typer's completion
# classes answer `_LLMDEPLOY_COMPLETE=complete_<shell>` requests from the real command tree.
from typer.completion import completion_init  # noqa: E402

completion_init()


def main() -> None:
    """Run the CLI (kept for callers of ``llmdeploy.cli:main``; see :mod:`llmdeploy.entry`)."""
    from .entry import main as entry_main

    entry_main()
