"""The Python API: validate, size and render LLM services from your own code.

The command line is a thin shell over these functions (``llmdeploy validate`` calls
:func:`validate`); they print nothing, never exit, and never write files. Every result
carries the same located diagnostics the CLI prints, so a notebook, a CI script or an
operator can act on ``file:line:col``, the rule id and the hint::

    from llmdeploy import api

    checked = api.validate("examples/llama-3.1-8b-l4.llmdeploy.yaml")
    assert checked.valid, [str(d) for d in checked.errors]

    rendered = api.render(text=open("my.llmdeploy.yaml").read())
    for obj in rendered.objects:            # plain dicts, as kubectl reads them
        print(obj["kind"], obj["metadata"]["name"])

    for report in api.size("examples/").reports:
        print(report.max_concurrency, report.fits)

A source is a path (file or folder, as for the CLI), a list of paths, or ``text=`` with
the YAML itself (``name=`` names it in diagnostics; relative ``model.config`` paths are
read from ``base_dir``). Errors in the specs are results (``valid``/``ok`` False with the
diagnostics), not exceptions; :class:`llmdeploy.errors.LlmdeployError` is raised only for
problems outside the specs (an unreadable CRD folder, a bug).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .diagnostics import Diagnostic, Severity, sort_diagnostics

if TYPE_CHECKING:  # pragma: no cover
    from .effective import Workload
    from .resolve import Analysis
    from .sizing import SizingReport
    from .spec.models import LLMService

__all__ = ["Checked", "Rendered", "Sized", "render", "size", "validate"]

Source = str | Path | Sequence[str | Path]


@dataclass(frozen=True)
class Checked:
    """The outcome of :func:`validate`."""

    specs: list[LLMService]
    diagnostics: list[Diagnostic]
    analyses: list[Analysis] = field(repr=False, default_factory=list)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.is_error]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity is Severity.WARNING]

    @property
    def valid(self) -> bool:
        """True when no spec has an error (warnings allowed: ``strict`` callers check them)."""
        return not self.errors


@dataclass(frozen=True)
class Sized:
    """The outcome of :func:`size`: one report per valid spec (None where the spec could not be sized)."""

    reports: list[SizingReport | None]
    checked: Checked


@dataclass(frozen=True)
class Rendered:
    """The outcome of :func:`render`: every manifest (empty unless everything passed) and why."""

    objects: list[dict[str, Any]]
    yaml: str
    diagnostics: list[Diagnostic]
    notes: list[str]
    workloads: list[tuple[str, Workload]]

    @property
    def ok(self) -> bool:
        return bool(self.objects) and not any(d.is_error for d in self.diagnostics)


def _load(source: Source | None, text: str | None, name: str, base_dir: str | Path | None) -> tuple[list[Any], list[Diagnostic]]:
    from .spec.loader import load_paths, load_text

    if text is not None:
        if source not in (None, (), []):
            raise TypeError("give a source path or text=, not both")
        return load_text(text, name, Path(base_dir) if base_dir is not None else Path.cwd())
    if source is None:
        raise TypeError("give a source path (file or folder) or text=")
    paths = [str(source)] if isinstance(source, (str, Path)) else [str(p) for p in source]
    if not paths:
        raise TypeError("give at least one source path")
    return load_paths(paths)


def validate(source: Source | None = None, *, text: str | None = None, name: str = "<text>",
             base_dir: str | Path | None = None) -> Checked:
    """Load, validate, resolve, size and run every LD rule on the specs (what ``llmdeploy validate`` does)."""
    from .pipeline import analyze_all

    docs, diags = _load(source, text, name, base_dir)
    analyses = analyze_all(docs)
    all_diags = sort_diagnostics([*diags, *(d for a in analyses for d in a.diagnostics)])
    return Checked([a.spec for a in analyses if a.spec is not None], all_diags, analyses)


def size(source: Source | None = None, *, text: str | None = None, name: str = "<text>",
         base_dir: str | Path | None = None) -> Sized:
    """The sizing report of every spec (memory budget, KV cache, concurrency, capacity)."""
    checked = validate(source, text=text, name=name, base_dir=base_dir)
    reports = [a.resolved.sizing if a.resolved is not None else None for a in checked.analyses if a.spec is not None]
    return Sized(reports, checked)


def render(source: Source | None = None, *, text: str | None = None, name: str = "<text>",
           base_dir: str | Path | None = None, crds: Sequence[str | Path] = (),
           kubernetes_version: str = "1.33") -> Rendered:
    """Render the specs into checked Kubernetes objects (what ``llmdeploy render`` prints).

    Nothing is returned in ``objects`` unless every spec is valid, every document passed
    the strict schema check (core kinds, and custom resources against ``crds``) and the
    runtime-truth rules (LD6xx).
    """
    from .emit import emit_stream
    from .pipeline import analyze_all, render_documents

    docs, diags = _load(source, text, name, base_dir)
    result = render_documents(analyze_all(docs), crd_paths=[Path(p) for p in crds],
                              kubernetes_version=kubernetes_version)
    all_diags = sort_diagnostics([*diags, *result.diagnostics])
    if any(d.is_error for d in all_diags):
        return Rendered([], "", all_diags, list(result.notes), [])
    return Rendered([d.obj for d in result.docs], emit_stream(result.docs), all_diags, list(result.notes),
                    list(result.workloads))
