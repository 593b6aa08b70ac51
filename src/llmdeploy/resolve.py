"""Resolve a validated spec against the catalogs and the engine table.

Looks up the GPU, the model (catalog or local ``config.json``) and the engine
version; each failure becomes a located diagnostic. No network access, ever.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from .diagnostics import Diagnostic

if TYPE_CHECKING:  # pragma: no cover
    from .catalog import GPU, CatalogError, ModelConfig
    from .engines import EngineVersionInfo
    from .sizing import SizingReport
    from .sizing.calibration import Calibration, CalibrationError
    from .sizing.roles import DisaggSizing
    from .spec.models import LLMService
    from .spec.validate import Validated


@dataclass
class Resolved:
    """Facts looked up for one spec; ``None`` where the lookup failed (``*_error`` says why)."""

    gpu: GPU | None = None
    model: ModelConfig | None = None
    engine: EngineVersionInfo | None = None
    sizing: SizingReport | None = None
    # Why a lookup failed (rules LD114 and LD115 report them at the spec line).
    gpu_error: CatalogError | None = None
    model_error: CatalogError | None = None
    # resources.calibration (or the command line's --calibration) read; LD212 reports an error.
    calibration: Calibration | None = None
    calibration_error: CalibrationError | None = None
    # Prefill/decode disaggregation: the prefill pool's GPU, its sizing, and both roles (sizing.roles).
    prefill_gpu: GPU | None = None
    prefill_gpu_error: CatalogError | None = None
    prefill_sizing: SizingReport | None = None
    roles: DisaggSizing | None = None


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
        r.gpu_error = exc
    per_node = spec.resources.gpu.per_node
    if r.gpu is not None and per_node is not None and per_node != r.gpu.gpus_per_node:
        # The user's nodes, not the catalog's typical one (LD204 reads it).
        r.gpu = replace(r.gpu, gpus_per_node=per_node)

    m = spec.model
    if m.config:
        cfg = (v.doc.base_dir / m.config).resolve()
        index = (v.doc.base_dir / m.safetensors_index).resolve() if m.safetensors_index else None
        try:
            r.model = model_from_hf_config(cfg, index)
        except CatalogError as exc:
            r.model_error = exc
    elif m.id:
        try:
            r.model = get_model(m.id)
        except CatalogError as exc:
            r.model_error = exc
    # Both missing is reported by rule LD113.

    r.engine = resolve_engine(spec.runtime.engine, spec.runtime.image, spec.runtime.engine_version)
    if spec.resources.calibration:
        from .sizing.calibration import CalibrationError, read_calibration

        try:
            r.calibration = read_calibration(relative_to_spec(v, spec.resources.calibration))
        except CalibrationError as exc:
            r.calibration_error = exc
    if spec.disaggregation is not None:
        from .sizing.roles import prefill_gpu_type

        try:
            r.prefill_gpu = get_gpu(prefill_gpu_type(spec))
        except CatalogError as exc:
            r.prefill_gpu_error = exc
    return r


def relative_to_spec(v: Validated, p: str) -> Path:
    """Resolve a path written in the spec relative to the spec's folder."""
    return (v.doc.base_dir / p).resolve()
