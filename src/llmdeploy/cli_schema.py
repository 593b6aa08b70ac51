"""``llmdeploy schema``: the JSON Schema of the spec (for editors and check-jsonschema)."""

# No `from __future__ import annotations` here: typer reads the annotations of the command
# defined inside register(), which refer to names imported there.
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from .cli_common import EXIT_OK, OUTPUT_NAMES, check_format

if TYPE_CHECKING:  # pragma: no cover
    import typer


def run(output_file: Optional[Path] = None, out_format: str = "json", of: str = "spec") -> int:  # noqa: UP045
    """Print the schema, or write it atomically to ``output_file``; return the exit code.

    ``of`` is ``spec`` (the spec) or a command whose ``-o json`` output it describes
    (``size``, ``plan``, ``validate``).
    """
    check_format(out_format, ("json",), hint="write the schema to a file with --output-file {value}")
    from .schema import OUTPUTS, output_schema_text, schema_text

    if of != "spec" and of not in OUTPUTS:
        from .cli_common import fail_usage

        fail_usage(f"--for must be one of spec, {', '.join(OUTPUTS)} (got {of!r})")
    text = schema_text() if of == "spec" else output_schema_text(of)
    if output_file is None:
        sys.stdout.write(text)
    else:
        from .fsio import write_atomic

        write_atomic(output_file, text)
    return EXIT_OK


def register(app: "typer.Typer") -> None:
    """Add the schema command to ``app``."""
    from typing import Annotated

    import typer

    @app.command()
    def schema(
        out_format: Annotated[str, typer.Option(*OUTPUT_NAMES, help="Output format: json (the only one).")] = "json",
        output_file: Annotated[
            Optional[Path],  # noqa: UP045
            typer.Option("--output-file", help="Write to this file (atomically) instead of stdout."),
        ] = None,
        of: Annotated[
            str, typer.Option("--for", help="spec (default), or size, plan, validate: the schema of that "
                                            "command's -o json output.")
        ] = "spec",
    ) -> None:
        """Print the JSON Schema of the spec (for editors and check-jsonschema), or of a command's JSON output."""
        raise typer.Exit(run(output_file, out_format, of))
