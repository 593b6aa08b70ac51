"""``llmdeploy schema``: the JSON Schema of the spec (for editors and check-jsonschema)."""

# No `from __future__ import annotations` here: typer reads the annotations of the command
# defined inside register(), which refer to names imported there.
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from .cli_common import EXIT_OK

if TYPE_CHECKING:  # pragma: no cover
    import typer


def run(output: Optional[Path] = None) -> int:  # noqa: UP045
    """Print the schema, or write it atomically to ``output``; return the exit code."""
    from .schema import schema_text

    text = schema_text()
    if output is None:
        sys.stdout.write(text)
    else:
        from .fsio import write_atomic

        write_atomic(output, text)
    return EXIT_OK


def register(app: "typer.Typer") -> None:
    """Add the schema command to ``app``."""
    from typing import Annotated

    import typer

    @app.command()
    def schema(
        output: Annotated[
            Optional[Path],  # noqa: UP045
            typer.Option("--output", "-o", help="Write to this file instead of stdout."),
        ] = None,
    ) -> None:
        """Print the JSON Schema of the spec (for editors and check-jsonschema)."""
        raise typer.Exit(run(output))
