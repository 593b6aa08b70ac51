"""``llmdeploy init``: a commented starter spec for a model on a GPU type."""

# No `from __future__ import annotations` here: typer reads the annotations of the command
# defined inside register(), which refer to names imported there.
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from .cli_common import EXIT_INVALID, EXIT_OK, print_error

if TYPE_CHECKING:  # pragma: no cover
    import typer


def run(model: str, gpu: str, name: Optional[str] = None, namespace: str = "default",  # noqa: UP045
        profile: str = "production", max_model_len: int = 8192, output: Optional[Path] = None,  # noqa: UP045
        force: bool = False) -> int:
    """Write the starter spec to stdout or ``output`` (never overwritten without ``force``); the exit code.

    An unknown model or GPU raises :class:`~llmdeploy.errors.LlmdeployError`, which the
    command line reports like every other deliberate error.
    """
    from .init import starter_spec

    text = starter_spec(model=model, gpu=gpu, name=name, namespace=namespace, profile=profile,
                        max_model_len=max_model_len)
    if output is None:
        sys.stdout.write(text)
        return EXIT_OK
    if output.exists() and not force:
        print_error(f"{output} exists (hint: pass --force to overwrite it)")
        return EXIT_INVALID
    from .fsio import write_atomic

    write_atomic(output, text)
    sys.stderr.write(f"wrote {output}\n")
    return EXIT_OK


def register(app: "typer.Typer") -> None:
    """Add the init command to ``app``."""
    from typing import Annotated

    import typer

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
        raise typer.Exit(run(model, gpu, name, namespace, profile, max_model_len, output, force))
