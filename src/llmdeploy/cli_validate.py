"""``llmdeploy validate``: the body of the command, free of typer.

The typer command in ``cli.py`` and the fast path in ``entry.py`` both call :func:`run`,
so the two ways in behave the same (``tests/unit/test_entry.py`` compares them).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from .cli_common import (
    DIAGNOSTIC_FORMATS,
    EXIT_INVALID,
    EXIT_OK,
    check_format,
    check_paths,
    write_diagnostics,
)


def run(paths: Sequence[str], fmt: str = "auto", strict: bool = False, show_resolved: bool = False,
        quiet: bool = False) -> int:
    """Check specs; return the exit code (0 valid, 1 invalid). Never writes files."""
    check_format(fmt, DIAGNOSTIC_FORMATS)
    check_paths(paths)
    from .diagnostics import resolve_format, sort_diagnostics
    from .pipeline import analyze_all, load_specs

    docs, diags = load_specs(paths)
    analyses = analyze_all(docs)
    all_diags = list(diags)
    for a in analyses:
        all_diags.extend(a.diagnostics)
    all_diags = sort_diagnostics(all_diags)
    errors = sum(d.is_error for d in all_diags)
    warnings = sum(d.severity.value == "warning" for d in all_diags)
    failed = errors > 0 or (strict and warnings > 0)
    summary = {"specs": len(analyses), "errors": errors, "warnings": warnings, "valid": not failed}
    # With --show-resolved, stdout carries only the resolved YAML (it can be piped or saved);
    # the diagnostics and the summary move to stderr.
    report = sys.stderr if show_resolved else sys.stdout
    write_diagnostics(all_diags, fmt, report, summary)
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


def _print_resolved(analyses: list) -> None:  # type: ignore[type-arg]
    import io

    from ruamel.yaml import YAML

    yaml = YAML()
    yaml.default_flow_style = False
    out = io.StringIO()
    docs = [a.spec.model_dump(mode="json", by_alias=True) for a in analyses if a.spec is not None]
    yaml.dump_all(docs, out)
    sys.stdout.write(out.getvalue())
