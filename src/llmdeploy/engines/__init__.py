"""Per-engine facts keyed by release: flags, metric names, defaults, memory profile, image.

One YAML table per engine (``vllm.yaml``, ``tgi.yaml`` next to this file) holds what
upstream source says about each release; this package turns it into typed answers for
one pinned version. Tables are read lazily on first use and cached, so importing this
package costs no YAML parsing.

Typical use::

    info = resolve_engine("vllm", "vllm/vllm-openai:v0.8.5", None)
    info.metric("kv_cache_usage")          # 'vllm:gpu_cache_usage_perc'
    check_flag(info, "--swap-space")       # None on 0.8.5; an error from 0.18.0 on

Version ranges in the tables are half-open: ``from`` is the first release with a value,
``until`` the first release without it.

Modules, each importing only those before it:

- ``version``: :class:`Version`, :func:`parse_image_version`, version ranges.
- ``table``: loading and checking a table, :class:`FlagInfo` and the lazily built flag
  table, :func:`split_arg`.
- ``info``: :class:`EngineVersionInfo` (metric names, flags, features, defaults, memory
  profile of one release) and :func:`resolve_engine`.
- ``args``: checking argument lists against a version's flags (:func:`check_args`).
- ``memory_model``: the fitted memory-model constants the sizing uses, imported on
  first use (:attr:`EngineVersionInfo.memory_model`).
"""

from __future__ import annotations

from .args import FlagProblem, ParsedArg, check_args, check_flag, iter_flag_names, parse_args
from .info import (
    BatchDefaults,
    EngineDefaults,
    EngineFeatures,
    EngineVersionInfo,
    MemoryProfile,
    MetricInfo,
    MetricUnavailableError,
    QuantizationSupport,
    resolve_engine,
)
from .table import (
    EngineTableError,
    FlagInfo,
    UnknownEngineError,
    known_engines,
    releases,
    split_arg,
)
from .version import Version, parse_image_version

__all__ = [
    "BatchDefaults",
    "EngineDefaults",
    "EngineFeatures",
    "EngineTableError",
    "EngineVersionInfo",
    "FlagInfo",
    "FlagProblem",
    "MemoryProfile",
    "MetricInfo",
    "MetricUnavailableError",
    "ParsedArg",
    "QuantizationSupport",
    "UnknownEngineError",
    "Version",
    "check_args",
    "check_flag",
    "iter_flag_names",
    "known_engines",
    "parse_args",
    "parse_image_version",
    "releases",
    "resolve_engine",
    "split_arg",
]
