"""``llmdeploy render``: the body (:func:`run`, free of typer) and its typer command.

The typer command and the fast path in ``entry.py`` both call :func:`run`.
"""

# No `from __future__ import annotations` here: typer reads the annotations of the command
# defined inside register(), which refer to names imported there.
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .cli_common import (
    DIAGNOSTIC_FORMATS,
    EXIT_INTERNAL,
    EXIT_INVALID,
    EXIT_OK,
    check_format,
    check_paths,
    fail_usage,
    print_error,
    report,
    write_diagnostics,
)

if TYPE_CHECKING:  # pragma: no cover
    import typer


def run(paths: Sequence[str], output: str | Path | None = None, out_format: str = "yaml", only: str | None = None,
        crds: Sequence[str | Path] | None = None, kubernetes_version: str = "1.33", diag_format: str = "auto",
        strict: bool = False, explain: bool = False) -> int:
    """Render specs into apply-ready manifests; return the exit code.

    Manifests go to stdout (or ``output``); diagnostics to stderr. 1 when a spec is
    invalid, 3 when a rendered manifest fails its schema check.
    """
    check_format(out_format, ("yaml", "json"))
    check_format(diag_format, DIAGNOSTIC_FORMATS)
    check_paths(paths)
    from .check import CRDLoadError, crd_paths_from_env, supported_kubernetes_versions

    versions = supported_kubernetes_versions()
    if kubernetes_version not in versions:
        fail_usage(f"--kubernetes-version {kubernetes_version} is not supported; choose {versions[0]}..{versions[-1]}")
    from .errors import LlmdeployError
    from .pipeline import analyze_all, load_specs, render_documents
    from .render import select, selectable_names

    docs, load_diags = load_specs(paths)
    analyses = analyze_all(docs)
    crd_paths = [Path(p) for p in crds or []] + crd_paths_from_env()
    for p in crd_paths:
        if not p.exists():
            fail_usage(f"--crds {p}: no such file or folder")
    try:
        result = render_documents(analyses, crd_paths=crd_paths, kubernetes_version=kubernetes_version)
    except CRDLoadError as exc:
        print_error(exc)
        return EXIT_INTERNAL
    except LlmdeployError as exc:
        return report(exc)
    diags = list(load_diags) + result.diagnostics
    warnings = [d for d in diags if d.severity.value == "warning"]
    write_diagnostics(diags, diag_format, sys.stderr)
    if load_diags or not result.ok or (strict and warnings):
        sys.stderr.write("nothing rendered: fix the errors above\n")
        return EXIT_INVALID
    if not result.docs:
        sys.stderr.write("nothing rendered: no spec given\n")
        return EXIT_INVALID
    if explain:
        for note in result.notes:
            sys.stderr.write(f"note: {note}\n")
    selected = result.docs
    if only:
        wanted = [o for o in only.split(",") if o.strip()]
        selected = select(result.docs, wanted)
        if not selected:
            fail_usage(f"--only {only} matches nothing; choose from {', '.join(selectable_names(result.docs))}")
    selected_kinds = {d.manifest.kind for d in selected}
    unchecked = [k.split(" ", 1)[0] for k in result.unchecked if k.split(" ", 1)[0] in selected_kinds]
    if unchecked:
        sys.stderr.write("note: custom resources not schema-checked (pass your cluster's CRDs with --crds): "
                         f"{', '.join(unchecked)}\n")
    from .emit import emit_json, emit_stream, write_output_dir

    if output is not None:
        try:
            written = write_output_dir(Path(output), selected)
        except LlmdeployError as exc:
            return report(exc)
        sys.stderr.write(f"wrote {len(written)} files to {output}\n")
        return EXIT_OK
    text = emit_json(selected) if out_format == "json" else emit_stream(selected)
    sys.stdout.write(text)
    sys.stdout.flush()
    return EXIT_OK


def register(app: "typer.Typer") -> None:
    """Add the render command to ``app``."""
    from typing import Annotated, Optional

    import typer

    @app.command()
    def render(
        paths: Annotated[list[str], typer.Argument(help="Spec files or folders; '-' reads stdin.")],
        output: Annotated[
            Optional[Path],  # noqa: UP045
            typer.Option("--output", "-o", help="Write one folder per service plus kustomization.yaml here."),
        ] = None,
        out_format: Annotated[
            str, typer.Option("--format", help="yaml (a multi-document stream) or json (a v1 List).")
        ] = "yaml",
        only: Annotated[
            Optional[str],  # noqa: UP045
            typer.Option("--only", help="Comma-separated kinds (or aliases: isvc, runtime, dashboard, pdb…) to keep."),
        ] = None,
        crds: Annotated[
            Optional[list[Path]],  # noqa: UP045
            typer.Option("--crds", help="CRD files or folders to check custom resources against (also $LLMDEPLOY_CRDS)."),
        ] = None,
        kubernetes_version: Annotated[
            str, typer.Option("--kubernetes-version", help="Kubernetes minor whose schemas check core kinds.")
        ] = "1.33",
        diag_format: Annotated[
            str, typer.Option("--diagnostics-format", help="auto, text, json or github (diagnostics go to stderr).")
        ] = "auto",
        strict: Annotated[bool, typer.Option("--strict", help="Fail on warnings too.")] = False,
        explain: Annotated[
            bool, typer.Option("--explain", help="Print the planner's notes (derived numbers, rollout queries) to stderr.")
        ] = False,
    ) -> None:
        """Render specs into apply-ready manifests (stdout), checked before anything is printed.

        Manifests go to stdout (or --output); diagnostics to stderr. Exit 1 when a spec is
        invalid, 3 when a rendered manifest fails its schema check.
        """
        raise typer.Exit(run(paths, output=output, out_format=out_format, only=only, crds=crds,
                             kubernetes_version=kubernetes_version, diag_format=diag_format, strict=strict,
                             explain=explain))
