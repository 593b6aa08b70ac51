"""``llmdeploy docs`` (hidden): check or regenerate the generated pages, for developers and tests."""

# No `from __future__ import annotations` here: typer reads the annotations of the command
# defined inside register(), which refer to names imported there.
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from .cli_common import EXIT_INVALID, EXIT_OK, fail_usage

if TYPE_CHECKING:  # pragma: no cover
    import typer


def run(check: bool = False, write: bool = False, root: Optional[Path] = None) -> int:  # noqa: UP045
    """``--check``: exit 1 when docs/rules.md or docs/spec.md is stale; ``--write``: regenerate them."""
    if check == write:
        fail_usage("pass exactly one of --check and --write")
    from .docgen import default_root, stale_pages, write_pages

    base = root or default_root()
    if not (base / "pyproject.toml").is_file():
        fail_usage(f"{base} is not an llmdeploy source checkout (pass --root)")
    if write:
        for rel in write_pages(base):
            sys.stderr.write(f"wrote {rel}\n")
        return EXIT_OK
    stale = stale_pages(base)
    for rel in stale:
        sys.stderr.write(f"{rel} is stale; regenerate it with `llmdeploy docs --write`\n")
    return EXIT_INVALID if stale else EXIT_OK


def register(app: "typer.Typer") -> None:
    """Add the hidden docs command to ``app``."""
    from typing import Annotated

    import typer

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
        raise typer.Exit(run(check, write, root))
