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
    """Print each spec as the pipeline uses it: profile merged, defaults filled in, and every
    alias or ``auto`` replaced by what it resolved to (the catalog GPU key, the catalog
    model id, the pinned engine version and image, the ``maxNumSeqs`` sizing chose), with a
    comment saying what each came from. The output is itself a valid spec."""
    import io

    from ruamel.yaml import YAML

    yaml = YAML()
    yaml.default_flow_style = False
    yaml.width = 4096
    out = io.StringIO()
    docs = [resolved_document(a) for a in analyses if a.spec is not None]
    yaml.dump_all(docs, out)
    sys.stdout.write(out.getvalue())


def resolved_document(analysis):  # type: ignore[no-untyped-def]
    """One analysed spec as a commented YAML mapping of concrete values (see ``--show-resolved``)."""
    from ruamel.yaml.comments import CommentedMap

    def commented(value):  # type: ignore[no-untyped-def]
        if isinstance(value, dict):
            cm = CommentedMap()
            for k, v in value.items():
                cm[k] = commented(v)
            return cm
        if isinstance(value, list):
            return [commented(v) for v in value]
        return value

    v = analysis.validated
    data = commented(analysis.spec.model_dump(mode="json", by_alias=True))
    notes: dict[tuple[str, ...], str] = {}

    def put(path: tuple[str, ...], value, note: str) -> None:  # type: ignore[no-untyped-def]
        node = data
        for k in path[:-1]:
            node = node[k]
        node[path[-1]] = value
        notes[path] = note

    # Values the profile supplied (the spec did not set them).
    if v.profile_doc is not None:
        for path in _leaf_paths(data):
            if v.profile_doc.has(path) and not v.user_set(path):
                notes[path] = f"from profile {v.profile_name}"
    r = analysis.resolved
    spec = analysis.spec
    if r is not None and r.gpu is not None:
        g = r.gpu
        written = spec.resources.gpu.type
        origin = f"{written!r} → " if written != g.key else ""
        put(("resources", "gpu", "type"), g.key,
            f"{origin}{g.name}, {g.memory_mib} MiB ({g.memory_gib:.2f} GiB), {g.gpus_per_node} per node, {g.resource_name}")
    if r is not None and r.model is not None and spec.model.id and not spec.model.config:
        m = r.model
        origin = f"{spec.model.id!r} → " if spec.model.id != m.hf_id else ""
        put(("model", "id"), m.hf_id, f"{origin}catalog model, {m.num_parameters / 1e9:.1f}B parameters")
    if r is not None and r.engine is not None:
        e = r.engine
        how = "assumed: " + (e.assumed_reason or "the image pins no version") if e.assumed else "from the image tag"
        if spec.runtime.engine_version:
            how = "runtime.engineVersion"
        put(("runtime", "engineVersion"), e.version, f"{e.engine} {e.version} ({how})")
        if not spec.runtime.image:
            vendor = r.gpu.vendor if r.gpu is not None else "nvidia"
            image = e.image_for(vendor)
            if image:
                put(("runtime", "image"), image, "default image of the engine version"
                    + (" (ROCm build for AMD)" if vendor == "amd" else ""))
    if r is not None and r.sizing is not None:
        z = r.sizing
        if spec.runtime.max_num_seqs == "auto":
            put(("runtime", "maxNumSeqs"), z.max_num_seqs, f"auto → {z.max_num_seqs_reason or 'sized'}")
    if analysis.ok:
        # The values the planner derives for `auto` (the same EnginePlan render uses).
        from .plan.kserve import plan_engine
        from .plan.model import plan_context

        e_plan = plan_engine(plan_context(analysis))
        requests = e_plan.resources.get("requests", {})
        res = spec.resources
        for key, attr, value in (("cpu", res.cpu, requests.get("cpu")), ("memory", res.memory, requests.get("memory")),
                                 ("shmSize", res.shm_size, e_plan.shm_size)):
            if attr == "auto" and value is not None:
                put(("resources", key), value, "auto → derived by the planner (docs/sizing.md, render --explain)")
        if spec.deployment.termination_grace_period_seconds == "auto":
            put(("deployment", "terminationGracePeriodSeconds"), e_plan.termination_grace_seconds,
                "auto → the engine plan's drain time")
        if not spec.runtime.image:
            put(("runtime", "image"), e_plan.image, "default image of the engine version"
                + (" (ROCm build for AMD)" if r is not None and r.gpu is not None and r.gpu.vendor == "amd" else ""))
    for path, note in notes.items():
        node = data
        for k in path[:-1]:
            node = node[k]
        if isinstance(node, CommentedMap) and path[-1] in node:
            node.yaml_add_eol_comment(note, path[-1])
    return data


def _leaf_paths(data, path: tuple = ()) -> list[tuple]:  # type: ignore[no-untyped-def,type-arg]
    if isinstance(data, dict):
        out: list[tuple] = []  # type: ignore[type-arg]
        for k, val in data.items():
            out.extend(_leaf_paths(val, (*path, k)))
        return out
    return [path] if path else []


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
            bool, typer.Option("--show-resolved", help="Print each spec after profiles and defaults are applied, aliases and auto resolved.")
        ] = False,
        quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No summary line on success.")] = False,
    ) -> None:
        """Check specs: schema, profiles, catalogs, sizing and every rule. Never writes files.

        Exit 0 when valid (warnings allowed unless --strict), 1 when invalid.
        """
        raise typer.Exit(run(paths, fmt, strict=strict, show_resolved=show_resolved, quiet=quiet))
