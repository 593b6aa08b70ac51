"""``llmdeploy init``: a commented starter spec for a model on a GPU type."""

# No `from __future__ import annotations` here: typer reads the annotations of the command
# defined inside register(), which refer to names imported there.
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from .cli_common import EXIT_INVALID, EXIT_OK, OUTPUT_NAMES, check_format, print_error

if TYPE_CHECKING:  # pragma: no cover
    import typer


def run(model: Optional[str], gpu: str, name: Optional[str] = None, namespace: str = "default",  # noqa: UP045
        profile: str = "production", max_model_len: int = 8192, output_file: Optional[Path] = None,  # noqa: UP045
        force: bool = False, out_format: str = "yaml", model_config: Optional[Path] = None) -> int:  # noqa: UP045
    """Write the starter spec to stdout or ``output_file`` (never overwritten without ``force``); the exit code.

    An unknown model or GPU raises :class:`~llmdeploy.errors.LlmdeployError`, which the
    command line reports like every other deliberate error.
    """
    check_format(out_format, ("yaml",), hint="write the spec to a file with --output-file {value}")
    from .cli_common import fail_usage

    if model is None and model_config is None:
        fail_usage("give --model (a catalog id) or --model-config (a Hugging Face config.json)")
    if model_config is not None and not model_config.is_file():
        fail_usage(f"--model-config {model_config}: no such file")
    if output_file is not None and output_file.exists() and not force:
        print_error(f"{output_file} exists (hint: pass --force to overwrite it)")
        return EXIT_INVALID
    from .init import check_starter, starter_spec

    spec_dir = output_file.parent if output_file is not None else Path.cwd()
    text = starter_spec(model=model, gpu=gpu, name=name, namespace=namespace, profile=profile,
                        max_model_len=max_model_len, model_config=model_config, spec_dir=spec_dir)
    remaining = check_starter(text, spec_dir)
    if remaining:  # e.g. a model that does not fit: say so now, not at the first `validate --strict`
        from .diagnostics import format_text

        where = str(output_file) if output_file is not None else "the starter spec"
        sys.stderr.write(f"note: {where} does not pass `llmdeploy validate --strict` yet:\n"
                         + format_text([replace(d, file=str(output_file or "<stdout>")) for d in remaining]))
    if output_file is None:
        sys.stdout.write(text)
        return EXIT_OK
    from .fsio import write_atomic

    write_atomic(output_file, text)
    sys.stderr.write(f"wrote {output_file}\n")
    return EXIT_OK


def register(app: "typer.Typer") -> None:
    """Add the init command to ``app``."""
    from typing import Annotated

    import typer

    @app.command()
    def init(
        gpu: Annotated[str, typer.Option("--gpu", "-g", help="GPU catalog key, e.g. a100-80gb, h100, l4.")],
        model: Annotated[
            Optional[str],  # noqa: UP045
            typer.Option("--model", "-m", help="Catalog id or Hugging Face id of the model (with --model-config: "
                                               "the id its weights are pulled from)."),
        ] = None,
        name: Annotated[
            Optional[str],  # noqa: UP045
            typer.Option("--name", help="Service name (default: derived from the model)."),
        ] = None,
        namespace: Annotated[str, typer.Option("--namespace", "-n", help="Namespace.")] = "default",
        profile: Annotated[str, typer.Option("--profile", "-p", help="dev, staging or production.")] = "production",
        max_model_len: Annotated[int, typer.Option("--max-model-len", help="Longest request in tokens.")] = 8192,
        out_format: Annotated[str, typer.Option(*OUTPUT_NAMES, help="Output format: yaml (the only one).")] = "yaml",
        output_file: Annotated[
            Optional[Path],  # noqa: UP045
            typer.Option("--output-file", help="Write the spec to this file (never overwritten without --force)."),
        ] = None,
        force: Annotated[bool, typer.Option("--force", help="Overwrite --output-file if it exists.")] = False,
        model_config: Annotated[
            Optional[Path],  # noqa: UP045
            typer.Option("--model-config", help="Start from a Hugging Face config.json (a model the catalog lacks)."),
        ] = None,
    ) -> None:
        """Write a commented starter spec for a model on a GPU type.

        A model the catalog lacks: --model-config path/to/config.json (the spec's model.config).
        """
        raise typer.Exit(run(model, gpu, name, namespace, profile, max_model_len, output_file, force, out_format,
                             model_config))
