"""The pipeline: load → validate → resolve → size → rules (→ plan → render → check → emit).

This module is the library core behind the CLI; it does no printing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .diagnostics import Diagnostic, Severity, sort_diagnostics
from .resolve import Analysis
from .spec.loader import SourceDoc, load_paths
from .spec.models import camel_path

if TYPE_CHECKING:  # pragma: no cover
    from .sizing.calibration import Calibration
    from .spec.validate import Validated


def load_specs(paths: Sequence[str]) -> tuple[list[SourceDoc], list[Diagnostic]]:
    """Load spec files/folders (``-`` for stdin) into documents with positions."""
    return load_paths(paths)


def _secret_diagnostics(v: Validated) -> list[Diagnostic]:
    """LD401 for every secret-shaped string of the spec and of the profile it merges."""
    from .rules.security import LITERAL_SECRET, scan_literal_secrets

    out = []
    for f in scan_literal_secrets(v.merged or v.doc.data):
        file, line, col = v.locate(f.path)
        out.append(Diagnostic(Severity.ERROR, LITERAL_SECRET, v.explain_origin(f.path, f.message), f.hint, file, line,
                              col, camel_path(tuple(f.path))))
    return out


def analyze(doc: SourceDoc, *, with_sizing: bool = True, calibration: Calibration | None = None) -> Analysis:
    """Validate, resolve, size and run every rule on one document (``calibration``: the command
    line's ``--calibration`` file, which replaces the spec's ``resources.calibration``)."""
    from .spec.validate import validate_doc

    v = validate_doc(doc)
    a = Analysis(v, None, list(v.diagnostics))
    a.diagnostics.extend(_secret_diagnostics(v))
    if v.spec is None:
        a.diagnostics = sort_diagnostics(a.diagnostics)
        return a
    from .resolve import resolve
    from .rules import RuleContext, load_all, run_rules

    r = resolve(v)
    a.resolved = r
    if calibration is not None:
        r.calibration, r.calibration_error = calibration, None
    if with_sizing and r.gpu is not None and r.model is not None and r.engine is not None:
        from .sizing.topology import size_spec  # knows a replica may span nodes (resources.nodes)

        r.sizing = size_spec(v.spec, r.model, r.gpu, r.engine, r.calibration)
        if v.spec.disaggregation is not None and r.prefill_gpu is not None:
            from .sizing.roles import size_disaggregated

            r.prefill_sizing, r.roles = size_disaggregated(v.spec, r.model, r.gpu, r.prefill_gpu, r.engine, r.sizing)
    load_all()
    a.diagnostics.extend(run_rules(RuleContext(v, r)))
    a.diagnostics = sort_diagnostics(a.diagnostics)
    return a


def analyze_all(docs: Sequence[SourceDoc], *, calibration: Calibration | None = None) -> list[Analysis]:
    """Analyze every document and add cross-document checks (duplicate services)."""
    from .rules.spec import DUPLICATE_SERVICE

    out = [analyze(d, calibration=calibration) for d in docs]
    seen: dict[tuple[str, str], Analysis] = {}
    for a in out:
        s = a.spec
        if s is None:
            continue
        key = (s.metadata.namespace, s.metadata.name)
        if key in seen:
            first = seen[key].validated.doc
            file, line, col = a.validated.locate(("metadata", "name"))
            a.diagnostics.append(Diagnostic(
                Severity.ERROR, DUPLICATE_SERVICE, f"service {key[0]}/{key[1]} is defined twice",
                f"the first definition is at {first.file}:{first.locate(('metadata', 'name'))[0]}; "
                "rename one of them", file, line, col, "metadata.name"))
        else:
            seen[key] = a
    return out


@dataclass
class RenderResult:
    """The outcome of rendering: the documents (empty when anything failed) and why."""

    analyses: list[Analysis]
    docs: list  # list[RenderedDoc]
    diagnostics: list[Diagnostic]
    unchecked: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    workloads: list = field(default_factory=list)  # [(namespace/name, effective.Workload)]

    @property
    def ok(self) -> bool:
        return not any(d.is_error for d in self.diagnostics)


def parse_stream_docs(texts: Sequence[str]) -> list[object]:
    """Parse rendered documents back (the check stage reads what kubectl will read)."""
    try:
        import yaml  # PyYAML (a dependency of kubernetes-validate); libyaml is much faster

        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        return [yaml.load(t, Loader=loader) for t in texts]  # noqa: S506 - a safe loader
    except ImportError:  # pragma: no cover
        from ruamel.yaml import YAML

        y = YAML(typ="safe")
        return [y.load(t) for t in texts]


def render_documents(analyses: Sequence[Analysis], *, crd_paths: Sequence[object] = (),
                     kubernetes_version: str = "1.33") -> RenderResult:
    """Plan, render and check every (valid) analyzed spec; nothing is returned unless all pass."""
    from .errors import InternalError
    from .plan import build_plan
    from .render import render_plan

    diags = [d for a in analyses for d in a.diagnostics]
    result = RenderResult(list(analyses), [], sort_diagnostics(diags))
    if not result.ok or any(a.spec is None for a in analyses):
        return result
    shared: dict[tuple[str, str], object] = {}
    docs = []
    for a in analyses:
        plan = build_plan(a)
        result.notes.extend(plan.notes)
        for d in render_plan(plan):
            if d.manifest.shared:
                key = (d.manifest.kind, d.manifest.name)
                prev = shared.get(key)
                if prev is not None:
                    if prev.text != d.text:  # type: ignore[attr-defined]
                        raise InternalError(f"two services render different {key[0]} {key[1]}")
                    continue
                shared[key] = d
            docs.append(d)
    # Shared, cluster-scoped objects first, then each service's objects in plan order.
    docs.sort(key=lambda d: (0 if d.manifest.shared else 1))
    from dataclasses import replace

    parsed = parse_stream_docs([d.text for d in docs])
    docs = [replace(d, obj=obj) for d, obj in zip(docs, parsed, strict=True)]
    for d, obj in zip(docs, parsed, strict=True):
        if not isinstance(obj, dict) or obj.get("kind") != d.manifest.kind or \
                (obj.get("metadata") or {}).get("name") != d.manifest.name:
            raise InternalError(f"rendered {d.manifest.kind} {d.manifest.name} does not parse back as itself "
                                f"(template {d.manifest.template})")
    secret_diags = _manifest_secret_diagnostics(analyses, docs)
    if secret_diags:
        result.diagnostics = sort_diagnostics([*result.diagnostics, *secret_diags])
        return result
    from pathlib import Path

    from .check import Checker

    checker = Checker([Path(str(p)) for p in crd_paths], kubernetes_version=kubernetes_version)
    report = checker.check(parsed)  # type: ignore[arg-type]
    if report.problems:
        lines = "\n".join(f"  {p}" for p in report.problems)
        raise InternalError(
            f"{len(report.problems)} rendered document(s) failed the schema check:\n{lines}",
            "this is a bug in llmdeploy's templates or a CRD version mismatch; nothing was written",
        )
    result.unchecked = list(report.unchecked)
    effective_diags = _effective_stage(analyses, docs, result)
    if any(d.is_error for d in effective_diags):
        result.diagnostics = sort_diagnostics([*result.diagnostics, *effective_diags])
        return result
    result.diagnostics = sort_diagnostics([*result.diagnostics, *effective_diags])
    result.docs = docs
    return result


def _effective_stage(analyses: Sequence[Analysis], docs: Sequence[object], result: RenderResult) -> list[Diagnostic]:
    """The effective workload of every service and the LD6xx rules over it.

    What KServe, Knative and prometheus-operator will make of the checked documents
    (``llmdeploy.effective``); each service's InferenceServices (stable and candidate)
    are checked with the service's own documents and the shared runtimes.
    """
    from .effective import workloads
    from .effective.kserve import multinode_groups
    from .effective.llmisvc import worker_workloads as llmisvc_worker_workloads
    from .rules import EffectiveContext, load_all, run_rules

    load_all()
    shared = [d.obj for d in docs if not d.service]  # type: ignore[attr-defined]
    out: list[Diagnostic] = []
    for a in analyses:
        if a.spec is None or a.resolved is None:
            continue
        key = f"{a.spec.metadata.namespace}/{a.spec.metadata.name}"
        objects = shared + [d.obj for d in docs if d.service == key]  # type: ignore[attr-defined]
        found = workloads(objects)
        for w in found:
            result.workloads.append((key, w))
            out.extend(run_rules(EffectiveContext(a.validated, a.resolved, w, objects, found), stage="effective"))
        # The worker pods of a multi-node InferenceService: shown by --explain, checked by LD811.
        result.workloads.extend((key, g.worker) for g in multinode_groups(objects) if g.worker is not None)
        # The worker pods of a multi-node data-parallel LLMInferenceService: shown by --explain.
        result.workloads.extend((key, w) for w in llmisvc_worker_workloads(objects))
    return out


def _manifest_secret_diagnostics(analyses: Sequence[Analysis], docs: Sequence[object]) -> list[Diagnostic]:
    """LD401 for a secret-shaped string in a rendered manifest (the last gate before output).

    The spec scan catches what the user wrote; this one reads every string of every
    parsed-back document, so a credential that reached a manifest another way (a
    profile, a catalog entry, a value assembled from parts) is refused too. Values the
    spec exempts in ``security.allowSecretLike`` pass. The message names the document and
    the field, never the value.
    """
    from .rules.security import LITERAL_SECRET, allowed_values
    from .secrets import describe, find_secrets

    allowed = [v for a in analyses for v in allowed_values(a.validated.merged or a.validated.doc.data)]
    by_service = {f"{a.spec.metadata.namespace}/{a.spec.metadata.name}": a for a in analyses if a.spec is not None}
    out = []
    for d in docs:
        for path, value in _strings(d.obj):  # type: ignore[attr-defined]
            spans = [s for s in find_secrets(value) if not any(value[s.start:s.end] in ok for ok in allowed)]
            if not spans:
                continue
            a = by_service.get(d.service) or analyses[0]  # type: ignore[attr-defined]
            file, line, col = a.validated.locate(("metadata", "name"))
            m = d.manifest  # type: ignore[attr-defined]
            out.append(Diagnostic(
                Severity.ERROR, LITERAL_SECRET,
                f"{describe(spans)} would be written to {m.kind} {m.name} at {camel_path(path)}",
                "keep credentials in Secrets and reference them; if the value is not a credential, add its spec "
                "path to security.allowSecretLike", file, line, col, "metadata.name"))
    return out


def _strings(node: object, path: tuple[str | int, ...] = ()) -> list[tuple[tuple[str | int, ...], str]]:
    out: list[tuple[tuple[str | int, ...], str]] = []
    stack: list[tuple[object, tuple[str | int, ...]]] = [(node, path)]
    while stack:
        n, p = stack.pop()
        if isinstance(n, dict):
            stack.extend((v, (*p, str(k))) for k, v in n.items())
        elif isinstance(n, list):
            stack.extend((v, (*p, i)) for i, v in enumerate(n))
        elif isinstance(n, str):
            out.append((p, n))
    out.sort(key=lambda item: [str(x) for x in item[0]])
    return out
