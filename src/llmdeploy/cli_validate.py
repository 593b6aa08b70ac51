"""``llmdeploy validate``: the body (:func:`run`, free of typer) and its typer command.

The typer command and the fast path in ``entry.py`` both call :func:`run`, so the two
ways in behave the same (``tests/unit/test_entry.py`` compares them).
"""

# No `from __future__ import annotations` here: typer reads the annotations of the command
# defined inside register(), which refer to names imported there.
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .cli_common import (
    DIAGNOSTIC_FORMATS,
    EXIT_INVALID,
    EXIT_OK,
    OUTPUT_NAMES,
    check_format,
    check_paths,
    write_diagnostics,
)

if TYPE_CHECKING:  # pragma: no cover
    import typer


def run(paths: Sequence[str], fmt: str = "auto", strict: bool = False, show_resolved: bool = False,
        quiet: bool = False) -> int:
    """Check specs; return the exit code (0 valid, 1 invalid). Never writes files."""
    check_format(fmt, DIAGNOSTIC_FORMATS)
    check_paths(paths)
    from .api import validate
    from .diagnostics import resolve_format

    checked = validate(list(paths))
    analyses, all_diags = checked.analyses, checked.diagnostics
    if not analyses and not all_diags:
        # Like render: a pre-commit or CI gate that checked nothing must not pass.
        from .cli_common import print_error

        print_error(f"no spec found in {', '.join(paths)} (hint: a spec is a YAML document with "
                    "apiVersion: llmdeploy.dev/v1alpha1 and kind: LLMService)")
        return EXIT_INVALID
    errors = sum(d.is_error for d in all_diags)
    warnings = sum(d.severity.value == "warning" for d in all_diags)
    failed = errors > 0 or (strict and warnings > 0)
    summary = {"specs": len(analyses), "errors": errors, "warnings": warnings, "valid": not failed}
    # With --show-resolved, stdout carries only the resolved YAML (it can be piped or saved);
    # the diagnostics and the summary move to stderr.
    report = sys.stderr if show_resolved else sys.stdout
    # The verdict at the top (schemas/validate-output.schema.json): `valid` is the exit code.
    verdict = {"valid": not failed, "fits": _fits(analyses),
               "errors": [d.to_json() for d in all_diags if d.is_error],
               "warnings": [d.to_json() for d in all_diags if d.severity.value == "warning"]}
    write_diagnostics(all_diags, fmt, report, summary, verdict)
    if show_resolved and not failed:
        _print_resolved(analyses)
    if resolve_format(fmt) != "json" and not quiet:
        n = len(analyses)
        what = f"{n} spec{'s' if n != 1 else ''}"
        if failed:
            report.write(f"✗ {what}: {errors} error(s), {warnings} warning(s)\n")
        else:
            note = f" ({warnings} warning{'s' if warnings != 1 else ''})" if warnings else ""
            report.write(f"✓ {what} valid{note}\n")
    return EXIT_INVALID if failed else EXIT_OK


def _fits(analyses: list) -> bool | None:  # type: ignore[type-arg]
    """Every spec fits its GPUs (the sizing rules found no error); None when one could not be sized."""
    from .rules.sizing import RULE_IDS

    sizing_rules = set(RULE_IDS.values())
    reports = [a.resolved.sizing if a.resolved is not None else None for a in analyses]
    if not reports or any(r is None for r in reports):
        return None
    return all(r.fits for r in reports) and not any(
        d.is_error and d.rule in sizing_rules for a in analyses for d in a.diagnostics)


def _print_resolved(analyses: list) -> None:  # type: ignore[type-arg]
    import io

    from ruamel.yaml import YAML

    yaml = YAML()
    yaml.default_flow_style = False
    out = io.StringIO()
    docs = [a.spec.model_dump(mode="json", by_alias=True) for a in analyses if a.spec is not None]
    yaml.dump_all(docs, out)
    sys.stdout.write(out.getvalue())


def register(app: "typer.Typer") -> None:
    """Add the validate command to ``app``."""
    from typing import Annotated

    import typer

    @app.command()
    def validate(
        paths: Annotated[list[str], typer.Argument(help="Spec files or folders (*.yaml inside); '-' reads stdin.")],
        fmt: Annotated[
            str,
            typer.Option(*OUTPUT_NAMES, help="Output format of the report: auto (github under GitHub Actions, else text), "
                                                "text, json, github."),
        ] = "auto",
        strict: Annotated[bool, typer.Option("--strict", help="Fail on warnings too.")] = False,
        show_resolved: Annotated[
            bool, typer.Option("--show-resolved", help="Print each spec after profiles and defaults are applied.")
        ] = False,
        quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No summary line on success.")] = False,
    ) -> None:
        """Check specs: schema, profiles, catalogs, sizing and every rule. Never writes files.

        Exit 0 when valid (warnings allowed unless --strict), 1 when invalid.
        """
        raise typer.Exit(run(paths, fmt, strict=strict, show_resolved=show_resolved, quiet=quiet))
