"""Offline validation of rendered Kubernetes manifests (the ``check`` stage).

Two kinds of documents are checked, without a cluster:

* **Core kinds** (``v1``, ``apps/v1``, ``policy/v1``, ``networking.k8s.io/v1``, ...): against
  the strict JSON schemas shipped as package data by ``kubernetes-validate`` for the chosen
  Kubernetes minor version.  One validator is built per kind and all errors are reported (not
  just the first one, as ``kubernetes_validate.validate()`` does).  ``metadata.name``, the
  namespace and the label keys/values are additionally checked the way the API server does,
  because those schemas do not.

* **Custom resources** (KServe, KEDA, prometheus-operator, Gateway API, ...): against the
  ``openAPIV3Schema`` of the matching version of a user supplied ``CustomResourceDefinition``,
  converted into a *strict* JSON Schema (draft 2020-12).  The conversion makes pruning visible
  (a field the API server would silently drop is an error), replaces ``metadata`` by an
  ObjectMeta schema and adapts the OpenAPI/Kubernetes dialect to JSON Schema, see
  :func:`convert_crd_schema`.  A custom resource whose group/version/kind is not defined by any
  of the given CRDs is not an error: it is listed in :attr:`CheckReport.unchecked`.

CRD files are indexed cheaply (a YAML *event* scan, no object construction) when the
:class:`Checker` is created; a version's schema is only loaded (``yaml.CSafeLoader`` when
libyaml is available) and converted when a document of that kind is checked.  Converted
schemas and file indexes are cached as JSON under ``<cache dir>/crd-schemas/``, keyed by the
SHA-256 of the CRD file bytes, the group/version/kind and :data:`CONVERTER_VERSION`.  The
cache is best effort: an unwritable directory disables it and a corrupt entry is rebuilt.

CEL (``x-kubernetes-validations``) rules are evaluated only when the optional ``cel-python``
package (``celpy``) is importable; otherwise they are skipped silently.  Rules that use
``oldSelf`` (transition rules) are always skipped, since rendered manifests are creations.  A
rule that cel-python cannot compile or evaluate (for example a Kubernetes CEL library
function it lacks) is skipped too: only a rule that evaluates to ``false`` is reported.

Not checked (documented limits): ``format`` (``int32``, ``date-time``, ...), defaulting,
admission webhooks and any validation the API server does in Go code beyond ObjectMeta names
and labels.

``jsonschema``, ``referencing`` and ``yaml`` are imported lazily so that importing this
module is cheap.

The package is split by subsystem: :mod:`llmdeploy.check.crd_files` finds, indexes and loads
CRD files, :mod:`llmdeploy.check.crd_schema` converts their schemas (:func:`convert_crd_schema`)
and :mod:`llmdeploy.check.cel` evaluates ``x-kubernetes-validations``; this module holds the
:class:`Checker`, its report types, the core-kind validators and the schema cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..diagnostics import close_matches
from ..fsio import CACHE_VERSION, MAX_CRD_BYTES, load_cache, read_bounded, store_cache
from ..fsio import cache_dir as default_cache_dir
from ..records import record
from .cel import _kw_cel
from .crd_files import (
    CRDLoadError,
    _CRDVersion,
    _expand_paths,
    _index_records_from_objects,
    _is_json,
    _load_crd_documents,
    _mapping,
    _scan_yaml_index,
)
from .crd_schema import (
    CONVERTER_VERSION,
    RE2_PATTERN,
    CRDSchemaError,
    _kw_list_map_keys,
    _kw_re2_pattern,
    _object_meta_schema,
    convert_crd_schema,
)

#: Environment variable holding CRD files or folders, separated by :data:`os.pathsep`.
CRDS_ENV = "LLMDEPLOY_CRDS"

_SCHEMA_PACKAGE = "kubernetes_validate"
_SCHEMA_FOLDER = "kubernetes-json-schema"

# API groups served by kube-apiserver itself (from the x-kubernetes-group-version-kind of the
# kubernetes-validate definitions, 1.25-1.37).  Groups without a dot (apps, batch, policy,
# autoscaling, extensions, ...) are built in as well.  Everything else, including
# gateway.networking.k8s.io and inference.networking.k8s.io, is served by CRDs.
_BUILTIN_GROUPS = frozenset(
    {
        "",
        "admission.k8s.io",
        "admissionregistration.k8s.io",
        "apiextensions.k8s.io",
        "apiregistration.k8s.io",
        "authentication.k8s.io",
        "authorization.k8s.io",
        "certificates.k8s.io",
        "coordination.k8s.io",
        "discovery.k8s.io",
        "events.k8s.io",
        "flowcontrol.apiserver.k8s.io",
        "imagepolicy.k8s.io",
        "internal.apiserver.k8s.io",
        "lifecycle.k8s.io",
        "networking.k8s.io",
        "node.k8s.io",
        "rbac.authorization.k8s.io",
        "resource.k8s.io",
        "scheduling.k8s.io",
        "storage.k8s.io",
        "storagemigration.k8s.io",
    }
)

# --------------------------------------------------------------------------------------------
# Public data types
# --------------------------------------------------------------------------------------------


@record
class CheckProblem:
    """One validation error in one rendered document.

    Attributes:
        doc_index: 0-based position of the document in the sequence given to
            :meth:`Checker.check` (the rendered stream).
        kind: The document's ``kind`` (empty if it has none).
        api_version: The document's ``apiVersion`` (empty if it has none).
        name: The document's ``metadata.name`` (empty if it has none).
        path: Location inside the document, e.g. ``spec.predictor.minReplicas``,
            ``spec.triggers[0].metadata.threshold`` or ``metadata.labels[app.kubernetes.io/name]``
            (map keys that are not plain identifiers are written in brackets, as Kubernetes
            field paths do).  Empty for the document root.
        message: What is wrong.
    """

    doc_index: int
    kind: str
    api_version: str
    name: str
    path: str
    message: str

    def __str__(self) -> str:
        """Render as ``Kind/name (document N) at path: message``."""
        if self.kind:
            where = f"{self.kind}/{self.name or '<unnamed>'} (document {self.doc_index})"
        else:
            where = f"document {self.doc_index}"
        if self.path:
            where += f" at {self.path}"
        return f"{where}: {self.message}"


@record
class CheckReport:
    """Outcome of :meth:`Checker.check`.

    Attributes:
        problems: All validation errors, sorted by document, path and message, without
            duplicates.
        unchecked: ``"Kind apiVersion"`` of the custom resources for which no CRD was given;
            sorted, unique.  A warning for the caller, not an error.
    """

    problems: tuple[CheckProblem, ...] = ()
    unchecked: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True if no problem was found (unchecked custom resources do not count)."""
        return not self.problems


# --------------------------------------------------------------------------------------------
# Environment helpers
# --------------------------------------------------------------------------------------------


def crd_paths_from_env(environ: Mapping[str, str] | None = None) -> list[Path]:
    """Return the CRD files/folders listed in ``$LLMDEPLOY_CRDS``.

    Args:
        environ: Environment to read (defaults to :data:`os.environ`).

    Returns:
        The entries of the :data:`os.pathsep`-separated variable, in order, with ``~``
        expanded and empty entries dropped; an empty list if the variable is unset.
    """
    env = os.environ if environ is None else environ
    raw = env.get(CRDS_ENV, "")
    return [Path(part).expanduser() for part in raw.split(os.pathsep) if part.strip()]


def supported_kubernetes_versions() -> list[str]:
    """Return the Kubernetes minor versions with strict schemas, e.g. ``["1.25", ..., "1.37"]``."""
    return [f"{major}.{minor}" for major, minor in sorted(_strict_schema_dirs())]


# --------------------------------------------------------------------------------------------
# Lazy imports
# --------------------------------------------------------------------------------------------


_VALIDATOR_CLASS: Any = None


def _validator_class() -> Any:
    """Draft 2020-12 validator extended with the Kubernetes list-map and CEL keywords."""
    global _VALIDATOR_CLASS
    if _VALIDATOR_CLASS is None:
        from jsonschema import Draft202012Validator, validators

        factory: Any = validators  # jsonschema's extend() is untyped
        _VALIDATOR_CLASS = factory.extend(
            Draft202012Validator,
            {
                "x-kubernetes-list-map-keys": _kw_list_map_keys,
                RE2_PATTERN: _kw_re2_pattern,
                "x-kubernetes-validations": _kw_cel,
            },
        )
    return _VALIDATOR_CLASS


# --------------------------------------------------------------------------------------------
# Paths and messages
# --------------------------------------------------------------------------------------------

_PLAIN_KEY = re.compile(r"[A-Za-z_$][A-Za-z0-9_$-]*\Z")


def _format_path(parts: Iterable[str | int]) -> str:
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _PLAIN_KEY.match(part):
            out += f".{part}" if out else part
        else:
            out += f"[{part}]"
    return out


def _path_sort_key(parts: Sequence[str | int]) -> tuple[tuple[int, int, str], ...]:
    return tuple((0, p, "") if isinstance(p, int) else (1, 0, p) for p in parts)


# --------------------------------------------------------------------------------------------
# Errors -> problems
# --------------------------------------------------------------------------------------------


def _type_names(schema: Any) -> list[str]:
    typ = schema.get("type") if isinstance(schema, dict) else None
    if isinstance(typ, str):
        return [typ]
    return [t for t in typ if isinstance(t, str)] if isinstance(typ, list) else []


def _messages_for(error: Any) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Yield ``(absolute path, message)`` for one jsonschema error."""
    from jsonschema.exceptions import best_match

    path = tuple(error.absolute_path)
    schema = error.schema if isinstance(error.schema, dict) else {}
    if error.validator == "additionalProperties" and error.validator_value is False:
        instance = error.instance if isinstance(error.instance, dict) else {}
        props = schema.get("properties") or {}
        patterns = list((schema.get("patternProperties") or {}).keys())
        extras = [
            k
            for k in instance
            if k not in props and not any(re.search(p, str(k)) for p in patterns)
        ]
        if not extras:
            yield path, error.message
            return
        for extra in extras:
            message = f'unknown field "{extra}"'
            close = close_matches(str(extra), [str(p) for p in props], normalize=True)
            if close:
                message += f' (did you mean "{close[0]}"?)'
            yield (*path, extra), message
        return
    if error.validator in ("anyOf", "oneOf") and error.context:
        same_place = [e for e in error.context if not e.relative_path]
        if len(same_place) == len(error.context) and all(e.validator == "type" for e in same_place):
            # e.g. int-or-string: "True is not of type 'integer', 'string'".
            names: list[str] = []
            for sub in error.validator_value:
                names.extend(t for t in _type_names(sub) if t not in names)
            yield path, f"{error.instance!r} is not of type {', '.join(repr(t) for t in names)}"
            return
        best = best_match([error])
        if best is not None and best is not error:
            yield from _messages_for(best)
            return
    in_property_names = list(error.relative_schema_path)[-2:-1] == ["propertyNames"]
    if in_property_names and isinstance(error.instance, str):
        # A bad map key: point at the key itself rather than at the map.
        path = (*path, error.instance)
    if error.validator in ("pattern", "maxLength") and "x-llmdeploy-message" in schema:
        yield path, f"{error.instance!r} {schema['x-llmdeploy-message']}"
        return
    if error.validator == "pattern" and "x-llmdeploy-original-pattern" in schema:
        yield path, f"{error.instance!r} does not match {schema['x-llmdeploy-original-pattern']!r}"
        return
    yield path, error.message


# --------------------------------------------------------------------------------------------
# Core (built-in) kinds
# --------------------------------------------------------------------------------------------

_CORE_CACHE: dict[str, Any] = {}


def _schema_root() -> Any:
    # Locate the package's data without importing it: importing kubernetes_validate pulls
    # in its CLI helpers and costs ~70 ms, while only its JSON files are needed here.
    from importlib.util import find_spec
    from pathlib import Path

    spec = find_spec(_SCHEMA_PACKAGE)
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations))) / _SCHEMA_FOLDER
    from importlib.resources import files

    return files(_SCHEMA_PACKAGE).joinpath(_SCHEMA_FOLDER)


def _strict_schema_dirs() -> dict[tuple[int, int], str]:
    if "dirs" not in _CORE_CACHE:
        found: dict[tuple[int, int], str] = {}
        try:
            entries = list(_schema_root().iterdir())
        except (ModuleNotFoundError, FileNotFoundError, NotADirectoryError):
            entries = []
        for entry in entries:
            m = re.fullmatch(r"v(\d+)\.(\d+)\.\d+-local-strict", entry.name)
            if m:
                found[(int(m.group(1)), int(m.group(2)))] = entry.name
        _CORE_CACHE["dirs"] = found
    result: dict[tuple[int, int], str] = _CORE_CACHE["dirs"]
    return result


def _resolve_version(kubernetes_version: str) -> tuple[str, str]:
    """Return ``("1.33", "v1.33.0-local-strict")`` for ``"1.33"``, ``"v1.33"`` or ``"1.33.4"``."""
    m = re.fullmatch(r"v?(\d+)\.(\d+)(?:\.\d+)?", kubernetes_version.strip())
    if not m:
        raise ValueError(f"invalid Kubernetes version {kubernetes_version!r}: expected e.g. '1.33'")
    wanted = (int(m.group(1)), int(m.group(2)))
    dirs = _strict_schema_dirs()
    if not dirs:
        raise ValueError("kubernetes-validate is not installed: core kinds cannot be checked")
    if wanted not in dirs:
        known = ", ".join(supported_kubernetes_versions())
        raise ValueError(
            f"Kubernetes {wanted[0]}.{wanted[1]} is not supported by the installed "
            f"kubernetes-validate (supported: {known})"
        )
    return f"{wanted[0]}.{wanted[1]}", dirs[wanted]


def _core_registry(schema_dir: str) -> Any:
    key = f"registry:{schema_dir}"
    if key not in _CORE_CACHE:
        from referencing import Registry, Resource

        defs = json.loads(_schema_root().joinpath(schema_dir, "_definitions.json").read_bytes())
        _CORE_CACHE[key] = Resource.from_contents(defs) @ Registry()
    return _CORE_CACHE[key]


def _core_validator(schema_dir: str, group: str, version: str, kind: str) -> Any:
    """Validator for a built-in kind, or None if kubernetes-validate has no schema for it."""
    prefix = group.split(".")[0]
    filename = "-".join(p for p in (kind.lower(), prefix, version) if p) + ".json"
    key = f"validator:{schema_dir}/{filename}"
    if key not in _CORE_CACHE:
        ref = _schema_root().joinpath(schema_dir, filename)
        try:
            schema = json.loads(ref.read_bytes())
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            schema = None
        validator = None
        if isinstance(schema, dict):
            from referencing import Resource

            registry = Resource.from_contents(schema) @ _core_registry(schema_dir)
            validator = _validator_class()(schema, registry=registry)
        _CORE_CACHE[key] = validator
    return _CORE_CACHE[key]


def _core_meta_validator(kind: str, group: str) -> Any:
    key = f"meta:{kind}:{group}"
    if key not in _CORE_CACHE:
        meta = _object_meta_schema(strict=False, kind_group=(kind, group))
        schema = {"required": ["metadata"], "properties": {"metadata": meta}}
        _CORE_CACHE[key] = _validator_class()(schema)
    return _CORE_CACHE[key]


def _null_int_or_string(error: Any) -> bool:
    """kubernetes-validate quirk: IntOrString/Quantity are ``oneOf`` two nullable types.

    ``null`` then matches both branches and fails ``oneOf``, while the API server treats it
    as an absent field.
    """
    return error.validator == "oneOf" and error.instance is None and not error.context


# --------------------------------------------------------------------------------------------
# Cache
# --------------------------------------------------------------------------------------------

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


class _Cache:
    """Best-effort JSON cache under ``<base>/crd-schemas``."""

    def __init__(self, base: Path | None) -> None:
        self.dir = base / "crd-schemas" if base is not None else None

    def path(self, *parts: str) -> Path | None:
        if self.dir is None:
            return None
        name = "-".join(_SAFE.sub("_", p) for p in parts) + f"-c{CONVERTER_VERSION}-v{CACHE_VERSION}.json"
        return self.dir / name

    def read(self, path: Path | None, expect: Mapping[str, Any]) -> Any:
        """Return the cached payload, or None if absent, unreadable, corrupt or mismatched."""
        if path is None:
            return None
        text = load_cache(path, json.dumps(dict(expect), sort_keys=True))  # hash-verified, never a FIFO
        if text is None:
            return None
        try:
            envelope = json.loads(text)
        except ValueError:
            return None
        if not isinstance(envelope, dict) or "payload" not in envelope:
            return None
        if any(envelope.get(k) != v for k, v in expect.items()):
            return None
        return envelope["payload"]

    def write(self, path: Path | None, expect: Mapping[str, Any], payload: Any) -> None:
        """Atomically write ``payload``; any OS error just means no caching."""
        if path is None:
            return
        try:
            text = json.dumps({**expect, "payload": payload}, separators=(",", ":"))
        except (TypeError, ValueError):
            return
        store_cache(path, text, json.dumps(dict(expect), sort_keys=True))


# --------------------------------------------------------------------------------------------
# Document normalisation
# --------------------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """Copy a (ruamel/PyYAML/pydantic-dumped) document into plain JSON-like Python data."""
    if isinstance(value, Mapping):
        return {_plain_key(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None:
        return None
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    if hasattr(value, "isoformat"):  # YAML timestamps: kubectl sends them as strings
        return str(value.isoformat())
    return value


def _plain_key(key: Any) -> str:
    if isinstance(key, bool):
        return "true" if key else "false"
    return str(key)


# --------------------------------------------------------------------------------------------
# Checker
# --------------------------------------------------------------------------------------------


@dataclass
class _Stats:
    """What a :class:`Checker` had to do (for tests, timing and ``--verbose`` output)."""

    converted: int = 0
    cache_hits: int = 0
    full_loads: int = 0
    index_scans: int = 0


class Checker:
    """Validate rendered manifests offline (see the module docstring).

    Creating a checker indexes the CRD files (cheap, cached); schemas are loaded, converted
    and cached per kind on first use.  One checker can be reused for many :meth:`check` calls.

    Args:
        crd_paths: CRD files or folders (searched recursively for ``*.yaml``, ``*.yml`` and
            ``*.json``; hidden folders are skipped).  Files may hold several documents (and
            ``List``s); documents that are not CRDs are ignored, but a file given explicitly
            must contain at least one CRD.  If two files define the same group/version/kind,
            the first one wins.
        kubernetes_version: Minor version whose core schemas are used, e.g. ``"1.33"``.
        cache_dir: Cache base directory (converted schemas go to ``crd-schemas/`` below it);
            defaults to :func:`default_cache_dir`.

    Attributes:
        kubernetes_version: The normalised minor version, e.g. ``"1.33"``.
        stats: Counters: schemas ``converted``, schema ``cache_hits``, ``full_loads`` of CRD
            files and ``index_scans`` (files indexed without a cache hit).

    Raises:
        CRDLoadError: A CRD path does not exist, cannot be read, is not YAML/JSON, or an
            explicitly given file holds no CRD.
        ValueError: ``kubernetes_version`` is malformed or not shipped by kubernetes-validate.
    """

    def __init__(
        self,
        crd_paths: Sequence[Path] = (),
        kubernetes_version: str = "1.33",
        cache_dir: Path | None = None,
    ) -> None:
        self.kubernetes_version, self._schema_dir = _resolve_version(kubernetes_version)
        self._cache = _Cache(cache_dir if cache_dir is not None else default_cache_dir())
        self.stats = _Stats()
        self._crds: dict[tuple[str, str, str], _CRDVersion] = {}
        self._validators: dict[tuple[str, str, str], Any] = {}
        explicit = {Path(p).expanduser() for p in crd_paths if Path(p).expanduser().is_file()}
        for path in _expand_paths(crd_paths):
            self._index_file(path, must_have_crd=path in explicit)

    # -- index ----------------------------------------------------------------------------

    def _index_file(self, path: Path, *, must_have_crd: bool) -> None:
        try:
            data = read_bounded(path, MAX_CRD_BYTES)  # no FIFO, no /dev/zero, size-capped
        except OSError as exc:
            raise CRDLoadError(f"{path}: cannot read: {exc.strerror or exc}") from exc
        sha = hashlib.sha256(data).hexdigest()
        cache_path = self._cache.path("index", sha)
        expect = {"sha256": sha, "converter": CONVERTER_VERSION}
        records = self._cache.read(cache_path, expect)
        if not isinstance(records, list):
            self.stats.index_scans += 1
            if _is_json(path):
                records = _index_records_from_objects(_load_crd_documents(data, path))
            else:
                records = _scan_yaml_index(data, path)
            self._cache.write(cache_path, expect, records)
        if not records:
            if must_have_crd:
                raise CRDLoadError(f"{path}: no CustomResourceDefinition in this file")
            return
        for rec in records:
            group, kind = rec.get("group"), rec.get("kind")
            api_version = rec.get("apiVersion")
            if api_version != "apiextensions.k8s.io/v1":
                raise CRDLoadError(
                    f"{path}: CustomResourceDefinition {kind}.{group} has apiVersion "
                    f"{api_version!r}; only apiextensions.k8s.io/v1 is supported"
                )
            if not isinstance(group, str) or not isinstance(kind, str) or not rec.get("versions"):
                raise CRDLoadError(
                    f"{path}: CustomResourceDefinition (document {rec.get('doc')}) lacks "
                    "spec.group, spec.names.kind or spec.versions"
                )
            for ver in rec["versions"]:
                name = ver.get("name")
                if not isinstance(name, str):
                    raise CRDLoadError(f"{path}: a version of {kind}.{group} has no name")
                self._crds.setdefault(
                    (group, name, kind),
                    _CRDVersion(
                        source=path,
                        sha256=sha,
                        doc=int(rec["doc"]),
                        item=rec.get("item"),
                        group=group,
                        version=name,
                        kind=kind,
                        served=ver.get("served", True) is not False,
                    ),
                )

    def known_kinds(self) -> list[tuple[str, str, str]]:
        """Return the ``(group, version, kind)`` defined by the given CRDs, sorted."""
        return sorted(self._crds)

    # -- custom resources -----------------------------------------------------------------

    def _strict_schema(self, crd: _CRDVersion, loaded: dict[Path, list[Any]]) -> dict[str, Any]:
        cache_path = self._cache.path(crd.sha256, crd.group, crd.version, crd.kind)
        expect = {
            "sha256": crd.sha256,
            "group": crd.group,
            "version": crd.version,
            "kind": crd.kind,
            "converter": CONVERTER_VERSION,
        }
        cached = self._cache.read(cache_path, expect)
        if isinstance(cached, dict):
            self.stats.cache_hits += 1
            return dict(cached)
        if crd.source not in loaded:
            try:
                data = read_bounded(crd.source, MAX_CRD_BYTES)
            except OSError as exc:
                raise CRDLoadError(f"{crd.source}: cannot read: {exc.strerror or exc}") from exc
            if hashlib.sha256(data).hexdigest() != crd.sha256:
                raise CRDLoadError(f"{crd.source}: the file changed while llmdeploy was running")
            self.stats.full_loads += 1
            loaded[crd.source] = _load_crd_documents(data, crd.source)
        try:
            obj = loaded[crd.source][crd.doc]
            if crd.item is not None:
                obj = obj["items"][crd.item]
            entry = next(v for v in obj["spec"]["versions"] if v.get("name") == crd.version)
            raw = entry["schema"]["openAPIV3Schema"]
            if not isinstance(raw, Mapping):
                raise TypeError("openAPIV3Schema is not a mapping")
        except (LookupError, TypeError, AttributeError, StopIteration) as exc:
            raise CRDLoadError(
                f"{crd.source}: CustomResourceDefinition {crd.kind}.{crd.group} version "
                f"{crd.version} has no usable schema.openAPIV3Schema ({exc})"
            ) from exc
        try:
            schema = convert_crd_schema(raw, crd.group, crd.version, crd.kind)
        except (CRDSchemaError, RecursionError) as exc:
            where = exc if isinstance(exc, CRDSchemaError) else "the schema nests too deeply"
            raise CRDLoadError(
                f"{crd.source}: CustomResourceDefinition {crd.kind}.{crd.group} version {crd.version}: "
                f"openAPIV3Schema {where}"
            ) from None
        self.stats.converted += 1
        # Round-trip through JSON so the first run sees exactly what the cache will return.
        strict = dict(_mapping(json.loads(json.dumps(schema, default=str))))
        self._cache.write(cache_path, expect, strict)
        return strict

    def _custom_validator(self, crd: _CRDVersion, loaded: dict[Path, list[Any]]) -> Any:
        key = (crd.group, crd.version, crd.kind)
        if key not in self._validators:
            self._validators[key] = _validator_class()(self._strict_schema(crd, loaded))
        return self._validators[key]

    # -- checking -------------------------------------------------------------------------

    def check(self, docs: Sequence[Mapping[str, Any] | None]) -> CheckReport:
        """Validate rendered documents.

        Args:
            docs: The rendered documents, in stream order (``None`` entries, i.e. empty YAML
                documents, are skipped).

        Returns:
            All problems (sorted, de-duplicated) and the custom resources left unchecked.

        Raises:
            CRDLoadError: The CRD needed for a document cannot be loaded.
        """
        found: list[tuple[int, tuple[str | int, ...], CheckProblem]] = []
        unchecked: set[str] = set()
        loaded: dict[Path, list[Any]] = {}
        for index, raw in enumerate(docs):
            if raw is None:
                continue
            if not isinstance(raw, Mapping):
                msg = f"document is a {type(raw).__name__}, not a mapping"
                found.append((index, (), CheckProblem(index, "", "", "", "", msg)))
                continue
            doc = _plain(raw)
            api_version = doc.get("apiVersion")
            kind = doc.get("kind")
            meta = doc.get("metadata")
            name = meta.get("name") if isinstance(meta, dict) else None
            name = name if isinstance(name, str) else ""
            api_str = api_version if isinstance(api_version, str) else ""
            kind_str = kind if isinstance(kind, str) else ""

            def add(
                path: tuple[str | int, ...],
                message: str,
                index: int = index,
                kind: str = kind_str,
                api: str = api_str,
                name: str = name,
            ) -> None:
                problem = CheckProblem(index, kind, api, name, _format_path(path), message)
                found.append((index, path, problem))

            if not api_str or not kind_str:
                missing = "apiVersion" if not api_str else "kind"
                add((), f"'{missing}' is a required property (a non-empty string)")
                continue
            group, _, version = api_str.rpartition("/")
            if not version:
                add(("apiVersion",), f"invalid apiVersion {api_str!r}")
                continue
            if group in _BUILTIN_GROUPS or "." not in group:
                validator = _core_validator(self._schema_dir, group, version, kind_str)
                if validator is None:
                    add(
                        ("kind",),
                        f"unknown kind {kind_str!r} for apiVersion {api_str!r} in Kubernetes "
                        f"{self.kubernetes_version}",
                    )
                    continue
                errors = [
                    *(e for e in validator.iter_errors(doc) if not _null_int_or_string(e)),
                    *_core_meta_validator(kind_str, group).iter_errors(doc),
                ]
            else:
                crd = self._crds.get((group, version, kind_str))
                if crd is None:
                    unchecked.add(f"{kind_str} {api_str}")
                    continue
                if not crd.served:
                    add(
                        ("apiVersion",),
                        f"version {version} of {kind_str}.{group} is not served "
                        f"(served: false in {crd.source.name})",
                    )
                    continue
                validator = self._custom_validator(crd, loaded)
                try:
                    errors = list(validator.iter_errors(doc))
                except (RecursionError, TypeError, ValueError, OverflowError, LookupError) as exc:
                    # A schema check_crd_schema let through that jsonschema still cannot apply.
                    raise CRDLoadError(
                        f"{crd.source}: CustomResourceDefinition {kind_str}.{group} version {version}: "
                        f"its schema cannot be applied ({type(exc).__name__})"
                    ) from None
            for error in errors:
                for path, message in _messages_for(error):
                    add(path, message)

        seen: set[tuple[int, str, str]] = set()
        problems: list[CheckProblem] = []
        for _, _, problem in sorted(
            found, key=lambda t: (t[0], _path_sort_key(t[1]), t[2].message)
        ):
            key = (problem.doc_index, problem.path, problem.message)
            if key not in seen:
                seen.add(key)
                problems.append(problem)
        return CheckReport(problems=tuple(problems), unchecked=tuple(sorted(unchecked)))
