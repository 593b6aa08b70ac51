"""llmdeploy: validate, size and render LLM services for Kubernetes.

The public Python API is ``llmdeploy.api`` (docs/api.md) and what ``__all__`` lists;
every other module is internal and may change without notice (see docs/architecture.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"  # the one place the version is written (pyproject.toml reads it; docs/release.md)

__all__ = ["__version__", "load_specs", "analyze", "render_documents"]

if TYPE_CHECKING:  # pragma: no cover
    from .pipeline import analyze, load_specs, render_documents


def __getattr__(name: str) -> Any:
    # Lazy so that `llmdeploy --help` does not pay for pydantic and jinja.
    if name in {"load_specs", "analyze", "render_documents"}:
        from . import pipeline

        return getattr(pipeline, name)
    raise AttributeError(name)
