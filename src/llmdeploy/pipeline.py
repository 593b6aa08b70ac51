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
    from .spec.validate import Validated


def load_specs(paths: Sequence[str]) -> tuple[list[SourceDoc], list[Diagnostic]]:
    """Load spec files/folders (``-`` for stdin) into documents with positions."""
    return load_paths(paths)


def _secret_diagnostics(v: Validated) -> list[Diagnostic]:
    from .rules.security import LITERAL_SECRET, scan_literal_secrets

    out = []
    for f in scan_literal_secrets(v.doc.data):
        file, line, col = v.locate(f.path)
        out.append(Diagnostic(Severity.ERROR, LITERAL_SECRET, f.message, f.hint, file, line, col, camel_path(tuple(f.path))))
    return out


def analyze(doc: SourceDoc, *, with_sizing: bool = True) -> Analysis:
    """Validate, resolve, size and run every rule on one document."""
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
    if with_sizing and r.gpu is not None and r.model is not None and r.engine is not None:
        from .sizing import size_spec

        r.sizing = size_spec(v.spec, r.model, r.gpu, r.engine)
    load_all()
    a.diagnostics.extend(run_rules(RuleContext(v, r)))
    a.diagnostics = sort_diagnostics(a.diagnostics)
    return a


def analyze_all(docs: Sequence[SourceDoc]) -> list[Analysis]:
    """Analyze every document and add cross-document checks (duplicate services)."""
    from .rules.spec import DUPLICATE_SERVICE

    out = [analyze(d) for d in docs]
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
    result.docs = docs
    return result
