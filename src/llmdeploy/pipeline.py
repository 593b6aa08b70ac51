"""The pipeline: load → validate → resolve → size → rules (→ plan → render → check → emit).

This module is the library core behind the CLI; it does no printing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .diagnostics import Diagnostic, Severity, sort_diagnostics
from .spec.loader import SourceDoc, load_paths
from .spec.models import camel_path

if TYPE_CHECKING:  # pragma: no cover
    from .resolve import Resolved
    from .spec.models import LLMService
    from .spec.validate import Validated


@dataclass
class Analysis:
    """Everything known about one spec document after the checks."""

    validated: Validated
    resolved: Resolved | None
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def spec(self) -> LLMService | None:
        return self.validated.spec

    @property
    def ok(self) -> bool:
        return self.spec is not None and not any(d.is_error for d in self.diagnostics)

    @property
    def label(self) -> str:
        s = self.spec
        if s is not None:
            return f"{s.metadata.namespace}/{s.metadata.name}"
        return f"{self.validated.doc.file}#{self.validated.doc.index}"


def load_specs(paths: Sequence[str]) -> tuple[list[SourceDoc], list[Diagnostic]]:
    """Load spec files/folders (``-`` for stdin) into documents with positions."""
    return load_paths(paths)


def _secret_diagnostics(v: Validated) -> list[Diagnostic]:
    from .rules.security import scan_literal_secrets

    out = []
    for f in scan_literal_secrets(v.doc.data):
        file, line, col = v.locate(f.path)
        out.append(Diagnostic(Severity.ERROR, "LD401", f.message, f.hint, file, line, col, camel_path(tuple(f.path))))
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
    a.diagnostics.extend(r.diagnostics)
    if with_sizing and r.gpu is not None and r.model is not None and r.engine is not None:
        from .sizing import size_spec

        r.sizing = size_spec(v.spec, r.model, r.gpu, r.engine)
    load_all()
    a.diagnostics.extend(run_rules(RuleContext(v, r)))
    a.diagnostics = sort_diagnostics(a.diagnostics)
    return a


def analyze_all(docs: Sequence[SourceDoc]) -> list[Analysis]:
    """Analyze every document and add cross-document checks (duplicate services)."""
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
                Severity.ERROR, "LD109", f"service {key[0]}/{key[1]} is defined twice",
                f"the first definition is at {first.file}:{first.locate(('metadata', 'name'))[0]}; "
                "rename one of them", file, line, col, "metadata.name"))
        else:
            seen[key] = a
    return out
