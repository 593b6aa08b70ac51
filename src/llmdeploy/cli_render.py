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
    EXIT_INVALID,
    EXIT_OK,
    EXIT_USAGE,
    OUTPUT_NAMES,
    check_format,
    check_paths,
    fail_usage,
    print_error,
    report,
    write_diagnostics,
    write_stderr,
    write_stdout,
)

if TYPE_CHECKING:  # pragma: no cover
    import typer


def run(paths: Sequence[str], output_dir: str | Path | None = None, out_format: str = "yaml",
        only: str | None = None, crds: Sequence[str | Path] | None = None, kubernetes_version: str = "1.33",
        diag_format: str = "auto", strict: bool = False, explain: bool = False, prune: bool = False,
        calibration: str | None = None) -> int:
    """Render specs into apply-ready manifests; return the exit code.

    Manifests go to stdout in ``out_format`` (``-o yaml|json``), or to ``output_dir``
    (``--output-dir``: one folder per service plus kustomization.yaml); diagnostics to
    stderr. 1 when a spec is invalid (or the output cannot be written), 3 when a rendered
    manifest fails its schema check. With ``output_dir``, files of services not rendered
    in this run are kept unless ``prune``.
    """
    file_like = str(out_format).lower().endswith((".yaml", ".yml", ".json"))
    check_format(out_format, ("yaml", "json"),
                 hint=("write one file with > {value}, or one folder per service with --output-dir DIR" if file_like
                       else "write one folder per service with --output-dir {value}, or one file with > FILE"
                       if str(out_format).strip() else "write one folder per service with --output-dir DIR"))
    check_format(diag_format, DIAGNOSTIC_FORMATS, flag="--diagnostics-format")
    check_paths(paths)
    if output_dir is not None and not str(output_dir).strip():
        fail_usage("--output-dir needs a folder name (got an empty string)")
    if prune and output_dir is None:
        fail_usage("--prune works with --output-dir (it removes files of services not rendered in this run)")
    from .check import CRDLoadError, crd_paths_from_env, supported_kubernetes_versions

    versions = supported_kubernetes_versions()
    if kubernetes_version not in versions:
        fail_usage(f"--kubernetes-version {kubernetes_version} is not supported; choose {versions[0]}..{versions[-1]}")
    from .errors import LlmdeployError
    from .pipeline import analyze_all, load_specs, render_documents
    from .render import select, selectable_names

    cal = None
    if calibration is not None:
        from .sizing.calibration import CalibrationError, read_calibration

        try:
            cal = read_calibration(calibration)
        except CalibrationError as exc:
            return report(exc)
    docs, load_diags = load_specs(paths)
    analyses = analyze_all(docs, calibration=cal)
    crd_paths = [Path(p) for p in crds or []] + crd_paths_from_env()
    for p in crd_paths:
        if not p.exists():
            fail_usage(f"--crds {p}: no such file or folder")
    try:
        result = render_documents(analyses, crd_paths=crd_paths, kubernetes_version=kubernetes_version)
    except CRDLoadError as exc:  # a file the user passed with --crds: a usage error, located
        print_error(f"--crds: {exc} (hint: pass the CustomResourceDefinition files your cluster has installed)")
        return EXIT_USAGE
    except LlmdeployError as exc:
        return report(exc)
    diags = list(load_diags) + result.diagnostics
    warnings = [d for d in diags if d.severity.value == "warning"]
    from .diagnostics import resolve_format

    # With --diagnostics-format json, stderr is one JSON document: the notes go into its
    # summary instead of plain lines after it (#18: machine-readable output that is).
    json_mode = resolve_format(diag_format) == "json"
    notes: list[str] = []

    def note(message: str) -> None:
        if json_mode:
            notes.append(message)
        else:
            write_stderr(message + "\n")

    def finish(code: int, rendered: bool) -> int:
        if json_mode:
            write_diagnostics(diags, diag_format, sys.stderr,
                              {"errors": sum(d.is_error for d in diags), "warnings": len(warnings),
                               "rendered": rendered, "notes": notes})
        return code

    if not json_mode:
        write_diagnostics(diags, diag_format, sys.stderr)
    if load_diags or not result.ok or (strict and warnings):
        note("nothing rendered: fix the errors above")
        return finish(EXIT_INVALID, False)
    if not result.docs:
        note("nothing rendered: no spec given")
        return finish(EXIT_INVALID, False)
    if explain:
        for n in result.notes:
            note(f"note: {n}")
        pods = explain_pods(result.workloads)
        if json_mode:
            notes.append(pods)
        else:
            write_stderr(pods)
    selected = result.docs
    if only:
        wanted = [o for o in only.split(",") if o.strip()]
        selected = select(result.docs, wanted)
        if not selected:
            fail_usage(f"--only {only} matches nothing; choose from {', '.join(selectable_names(result.docs))}")
    selected_kinds = {d.manifest.kind for d in selected}
    unchecked = [k.split(" ", 1)[0] for k in result.unchecked if k.split(" ", 1)[0] in selected_kinds]
    if unchecked:
        note("note: custom resources not schema-checked (pass your cluster's CRDs with --crds): "
             f"{', '.join(unchecked)}")
    from .emit import emit_json, emit_stream, write_output_dir

    if output_dir is not None:
        try:
            summary = write_output_dir(Path(output_dir), selected, prune=prune)
        except LlmdeployError as exc:
            finish(EXIT_INVALID, False)
            return report(exc)
        note(summary.describe(str(output_dir)))
        return finish(EXIT_OK, True)
    text = emit_json(selected) if out_format == "json" else emit_stream(selected)
    code = write_stdout(text)
    return finish(code, code == EXIT_OK)


def explain_pods(workloads: Sequence[tuple[str, object]]) -> str:
    """The effective serving pod of every workload, as YAML for stderr (``render --explain``)."""
    from .effective import KNATIVE_VERSION, KSERVE_VERSION, pod_manifest
    from .effective.lws import LWS_VERSION
    from .render import to_yaml

    runners = {"Knative": f"KServe {KSERVE_VERSION} and Knative {KNATIVE_VERSION}",
               "LeaderWorkerSet": f"the LeaderWorkerSet controller {LWS_VERSION}"}
    out = []
    for service, w in workloads:
        runner = runners.get(w.mode, f"KServe {KSERVE_VERSION}")  # type: ignore[attr-defined]
        out.append(f"# effective pod of {service}: {w.workload_kind} {w.workload_name} "  # type: ignore[attr-defined]
                   f"(what {runner} will run)\n")
        text = to_yaml(pod_manifest(w))  # type: ignore[arg-type]
        out.append(text if text.endswith("\n") else text + "\n")
        for note in w.storage.notes:  # type: ignore[attr-defined]
            out.append(f"# storage-initializer: {note}\n")
    return "".join(out)


def register(app: "typer.Typer") -> None:
    """Add the render command to ``app``."""
    from typing import Annotated, Optional

    import typer

    @app.command()
    def render(
        paths: Annotated[list[str], typer.Argument(help="Spec files or folders; '-' reads stdin.")],
        out_format: Annotated[
            str, typer.Option(*OUTPUT_NAMES, help="Output format: yaml (a multi-document stream) or json (a v1 List).")
        ] = "yaml",
        output_dir: Annotated[
            Optional[str],  # noqa: UP045
            typer.Option("--output-dir", help="Write one folder per service plus kustomization.yaml here "
                                              "instead of stdout."),
        ] = None,
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
            bool, typer.Option("--explain", help="Print the planner's notes (derived numbers, rollout queries) and the effective serving pod "
                 "(what the cluster will run) to stderr.")
        ] = False,
        prune: Annotated[
            bool, typer.Option("--prune", help="With --output-dir: also remove files of services not rendered in this run.")
        ] = False,
        calibration: Annotated[
            Optional[str],  # noqa: UP045
            typer.Option("--calibration", help="Calibration file from `llmdeploy calibrate LOG… --write` "
                         "(replaces each spec's resources.calibration)."),
        ] = None,
    ) -> None:
        """Render specs into apply-ready manifests (stdout), checked before anything is printed.

        Manifests go to stdout (-o yaml|json) or to --output-dir; diagnostics to stderr. Exit 1 when a spec is
        invalid, 3 when a rendered manifest fails its schema check.
        """
        raise typer.Exit(run(paths, output_dir=output_dir, out_format=out_format, only=only, crds=crds,
                             kubernetes_version=kubernetes_version, diag_format=diag_format, strict=strict,
                             explain=explain, prune=prune, calibration=calibration))
