"""Read llmdeploy's own YAML data files (catalogs, engine tables) fast.

They are parsed with libyaml through PyYAML (installed with kubernetes-validate) when
it is available, else with ruamel.yaml, and the parsed data is cached as JSON in the
user cache folder keyed by the file's SHA-256, so a CLI run pays ~1 ms per table
instead of a full YAML parse. A missing or unwritable cache only costs speed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .fsio import CACHE_VERSION, cache_dir, load_cache, store_cache


def deep_merge(base: Any, override: Any) -> Any:
    """Merge ``override`` onto ``base``: mappings merge key by key, anything else replaces.

    The one merge rule of llmdeploy: profiles under specs, version ranges of the engine
    tables, memory-model eras over their base.
    """
    if isinstance(base, Mapping) and isinstance(override, Mapping):
        out = dict(base)
        for key, value in override.items():
            out[key] = deep_merge(base[key], value) if key in base else value
        return out
    return override


class DataFileError(Exception):
    """A data file cannot be read or parsed."""


def _parse(text: str) -> Any:
    try:
        import yaml

        loader = getattr(yaml, "CSafeLoader", None) or yaml.SafeLoader
        return yaml.load(text, Loader=loader)  # noqa: S506 - a safe loader
    except ImportError:  # pragma: no cover - PyYAML comes with kubernetes-validate
        from ruamel.yaml import YAML

        return YAML(typ="safe", pure=True).load(text)


def load_yaml_data(path: Path) -> Any:
    """Parsed content of one of llmdeploy's data files (JSON-cached by content hash)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataFileError(f"cannot read {path}: {exc.strerror}") from exc
    digest = hashlib.sha256(raw).hexdigest()
    cached = cache_dir() / "data" / f"{path.stem}-{digest[:24]}-v{CACHE_VERSION}.json"
    text = load_cache(cached, digest)  # verified against the file's and its own hash
    if text is not None:
        try:
            return json.loads(text)
        except ValueError:
            pass
    try:
        data = _parse(raw.decode("utf-8"))
    except Exception as exc:  # noqa: BLE001 - any parser error is a broken data file
        raise DataFileError(f"cannot parse {path}: {exc}") from exc
    store_cache(cached, json.dumps(data, separators=(",", ":"), default=str), digest)
    return data

