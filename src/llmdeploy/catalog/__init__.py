"""The built-in GPU and model catalogs, and a reader for local Hugging Face configs.

Two YAML files next to this module are the single source of truth:

* ``gpus.yaml``: memory as the driver reports it (MiB), bandwidth, dense tensor
  throughput, interconnect, the node labels that select the GPU and an indicative
  price, each figure group with its source.
* ``models.yaml``: the architecture values of each model's ``config.json`` on the
  Hugging Face Hub (plus parameter count and checkpoint size), keyed by HF id.

Both load lazily on first use and are cached for the life of the process; importing
this package does no I/O. Lookups are case-insensitive and accept aliases. A model the
catalog lacks can be read from a local ``config.json`` with :func:`model_from_hf_config`
(no network, ever), and :func:`estimate_num_parameters` recomputes a model's size from
its architecture so that a catalog entry or a local config can be checked.

The modules:

* ``types``: the records (:class:`GPU`, :class:`ModelConfig` and its parts),
  :class:`CatalogError` and the node-label keys.
* ``entries``: loading and indexing the two YAML files; :func:`gpus`, :func:`models`,
  :func:`get_gpu`, :func:`get_model`.
* ``hf_config``: :func:`model_from_hf_config`, the local ``config.json`` reader.
* ``parameters``: :func:`estimate_num_parameters` and :func:`estimate_active_parameters`.

Import from the package; the modules are internal. ``types`` depends on nothing else
here, ``parameters`` on ``types`` only, ``entries`` and ``hf_config`` on ``types``.
"""

from __future__ import annotations

from .entries import (
    GPU_CATALOG_PATH,
    MODEL_CATALOG_PATH,
    get_gpu,
    get_model,
    gpu_family_choices,
    gpus,
    models,
)
from .hf_config import SUPPORTED_MODEL_TYPES, model_from_hf_config
from .parameters import estimate_active_parameters, estimate_num_parameters
from .types import (
    EKS_ACCELERATOR_LABEL,
    GFD_PRODUCT_LABEL,
    GKE_ACCELERATOR_LABEL,
    GPU,
    KARPENTER_GPU_NAME_LABEL,
    NODE_LABEL_KEYS,
    CatalogError,
    MLAConfig,
    ModelConfig,
    MoEConfig,
    QuantizationConfig,
)

__all__ = [
    "EKS_ACCELERATOR_LABEL",
    "GFD_PRODUCT_LABEL",
    "GKE_ACCELERATOR_LABEL",
    "GPU",
    "GPU_CATALOG_PATH",
    "KARPENTER_GPU_NAME_LABEL",
    "MODEL_CATALOG_PATH",
    "NODE_LABEL_KEYS",
    "SUPPORTED_MODEL_TYPES",
    "CatalogError",
    "MLAConfig",
    "MoEConfig",
    "ModelConfig",
    "QuantizationConfig",
    "estimate_active_parameters",
    "estimate_num_parameters",
    "get_gpu",
    "get_model",
    "gpu_family_choices",
    "gpus",
    "model_from_hf_config",
    "models",
]
