"""Offline validation of rendered Kubernetes manifests (the ``check`` stage).

Core kinds are validated against the strict schemas of ``kubernetes-validate``, custom
resources against the CRDs the user supplies, without a cluster.  The full description
(what is checked, caching, documented limits) is in :mod:`llmdeploy.check.core`.

* :mod:`llmdeploy.check.core`: :class:`Checker`, :class:`CheckReport`, core kinds, the cache.
* :mod:`llmdeploy.check.crd_files`: finding, indexing and loading CRD files.
* :mod:`llmdeploy.check.crd_schema`: :func:`convert_crd_schema`, the ObjectMeta schema.
* :mod:`llmdeploy.check.cel`: ``x-kubernetes-validations`` rules (optional ``celpy``).

Importing the package is cheap: ``jsonschema``, ``referencing`` and ``yaml`` are imported
lazily, when a :class:`Checker` needs them.
"""

from __future__ import annotations

#: Environment variable overriding the cache base directory.
from ..fsio import CACHE_ENV as CACHE_ENV
from ..fsio import cache_dir as default_cache_dir
from .core import CRDS_ENV as CRDS_ENV
from .core import (
    Checker,
    CheckProblem,
    CheckReport,
    crd_paths_from_env,
    supported_kubernetes_versions,
)
from .crd_files import CRDLoadError
from .crd_schema import CONVERTER_VERSION, convert_crd_schema

__all__ = [
    "CONVERTER_VERSION",
    "CRDLoadError",
    "CheckProblem",
    "CheckReport",
    "Checker",
    "convert_crd_schema",
    "crd_paths_from_env",
    "default_cache_dir",
    "supported_kubernetes_versions",
]
