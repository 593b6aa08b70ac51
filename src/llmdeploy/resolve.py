"""Resolve a validated spec against the catalogs and the engine table.

Looks up the GPU, the model (catalog or local ``config.json``) and the engine
version; each failure becomes a located diagnostic. No network access, ever.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .diagnostics import Diagnostic, Severity
from .spec.models import camel_path

if TYPE_CHECKING:  # pragma: no cover
    from .catalog import GPU, ModelConfig
    from .engines import EngineVersionInfo
    from .sizing import SizingReport
    from .spec.validate import Validated


@dataclass
class Resolved:
    """Facts looked up for one spec; ``None`` where the lookup failed (a diagnostic says why)."""

    gpu: GPU | None = None
    model: ModelConfig | None = None
    engine: EngineVersionInfo | None = None
    sizing: SizingReport | None = None
    diagnostics: list[Diagnostic] = field(default_factory=list)


def _diag(v: Validated, path: tuple[str | int, ...], rule: str, message: str, hint: str | None,
          severity: Severity = Severity.ERROR) -> Diagnostic:
    file, line, col = v.locate(path)
    return Diagnostic(severity, rule, message, hint, file, line, col, camel_path(path))


def resolve(v: Validated) -> Resolved:
    """Look up GPU, model and engine for a validated spec."""
    from .catalog import CatalogError, get_gpu, get_model, model_from_hf_config
    from .engines import resolve_engine

    spec = v.spec
    assert spec is not None
    r = Resolved()
    try:
        r.gpu = get_gpu(spec.resources.gpu.type)
    except CatalogError as exc:
        r.diagnostics.append(_diag(v, ("resources", "gpu", "type"), "LD114", exc.message, exc.hint))

    m = spec.model
    if m.config:
        cfg = (v.doc.base_dir / m.config).resolve()
        index = (v.doc.base_dir / m.safetensors_index).resolve() if m.safetensors_index else None
        try:
            r.model = model_from_hf_config(cfg, index)
        except CatalogError as exc:
            r.diagnostics.append(_diag(v, ("model", "config"), "LD115", exc.message, exc.hint))
    elif m.id:
        try:
            r.model = get_model(m.id)
        except CatalogError as exc:
            r.diagnostics.append(_diag(v, ("model", "id"), "LD115", exc.message, exc.hint))
    # Both missing is reported by rule LD113.

    r.engine = resolve_engine(spec.runtime.engine, spec.runtime.image, spec.runtime.engine_version)
    return r


def relative_to_spec(v: Validated, p: str) -> Path:
    """Resolve a path written in the spec relative to the spec's folder."""
    return (v.doc.base_dir / p).resolve()
