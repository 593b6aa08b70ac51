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
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .datafiles import store_cache
from .records import record

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

#: Bump whenever :func:`convert_crd_schema` (or the index format) changes: it is part of every
#: cache key, so stale cache entries are simply never read again.
CONVERTER_VERSION = "3"

#: Environment variable holding CRD files or folders, separated by :data:`os.pathsep`.
CRDS_ENV = "LLMDEPLOY_CRDS"
#: Environment variable overriding the cache base directory.
CACHE_ENV = "LLMDEPLOY_CACHE_DIR"

_CRD_SUFFIXES = frozenset({".yaml", ".yml", ".json"})
_LIST_KINDS = ("List", "CustomResourceDefinitionList")
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


class CRDLoadError(Exception):
    """A CRD path is missing or unreadable, not YAML/JSON, or holds no usable CRD.

    The message always names the offending file.
    """


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


def default_cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Return the cache base directory (``crd-schemas/`` is created below it).

    Args:
        environ: Environment to read (defaults to :data:`os.environ`).

    Returns:
        ``$LLMDEPLOY_CACHE_DIR``, else ``$XDG_CACHE_HOME/llmdeploy``, else
        ``~/.cache/llmdeploy``.
    """
    env = os.environ if environ is None else environ
    if env.get(CACHE_ENV):
        return Path(env[CACHE_ENV]).expanduser()
    if env.get("XDG_CACHE_HOME"):
        return Path(env["XDG_CACHE_HOME"]).expanduser() / "llmdeploy"
    return Path.home() / ".cache" / "llmdeploy"


def supported_kubernetes_versions() -> list[str]:
    """Return the Kubernetes minor versions with strict schemas, e.g. ``["1.25", ..., "1.37"]``."""
    return [f"{major}.{minor}" for major, minor in sorted(_strict_schema_dirs())]


# --------------------------------------------------------------------------------------------
# Lazy imports
# --------------------------------------------------------------------------------------------


def _yaml_loader() -> tuple[Any, Any]:
    """Return ``(yaml module, fastest safe loader class)``."""
    import yaml

    return yaml, getattr(yaml, "CSafeLoader", yaml.SafeLoader)


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
# ObjectMeta
# --------------------------------------------------------------------------------------------

# Patterns use \Z (end of text) rather than $, which in Python also matches before a final
# newline; Go's RE2 $ does not.
_DNS1123_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\Z"
_DNS1123_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z"
_DNS1035_LABEL = r"^[a-z]([-a-z0-9]*[a-z0-9])?\Z"
_LABEL_VALUE = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?\Z"
_QUALIFIED_NAME = (
    r"^((?=[^/]{1,253}/)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"(?=[^/]{1,63}\Z)[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?\Z"
)

# "x-llmdeploy-message" replaces jsonschema's "does not match '<regex>'" by a readable text.
_MSG_SUBDOMAIN = (
    "is not a valid name: a lowercase RFC 1123 subdomain must consist of lower case "
    "alphanumeric characters, '-' or '.', must start and end with an alphanumeric character "
    "and be at most 253 characters long"
)
_MSG_DNS1123_LABEL = (
    "is not a valid name: a lowercase RFC 1123 label must consist of lower case alphanumeric "
    "characters or '-', must start and end with an alphanumeric character and be at most 63 "
    "characters long"
)
_MSG_DNS1035_LABEL = (
    "is not a valid name: a DNS-1035 label must consist of lower case alphanumeric "
    "characters or '-', must start with a letter, end with an alphanumeric character and be "
    "at most 63 characters long"
)
_MSG_LABEL_VALUE = (
    "is not a valid label value: it must be at most 63 characters, empty or consist of "
    "alphanumeric characters, '-', '_' or '.', starting and ending with an alphanumeric "
    "character"
)
_MSG_QUALIFIED_NAME = (
    "is not a valid key: it must be a name of at most 63 alphanumeric characters, '-', '_' "
    "or '.' (starting and ending with an alphanumeric character), optionally prefixed by a "
    "DNS subdomain and '/'"
)


def _checked_string(max_length: int | None, pattern: str, message: str) -> dict[str, Any]:
    out: dict[str, Any] = {"pattern": pattern, "x-llmdeploy-message": message}
    if max_length is not None:
        out["maxLength"] = max_length
    return out


# Kinds whose metadata.name is stricter than a DNS-1123 subdomain (kube-apiserver Go code).
_NAME_RULES: dict[tuple[str, str], tuple[int, str, str]] = {
    ("Service", ""): (63, _DNS1035_LABEL, _MSG_DNS1035_LABEL),
    ("Namespace", ""): (63, _DNS1123_LABEL, _MSG_DNS1123_LABEL),
}


def _object_meta_schema(
    *, strict: bool, kind_group: tuple[str, str] | None = None
) -> dict[str, Any]:
    """ObjectMeta schema.

    Args:
        strict: Full schema with types and ``additionalProperties: false`` (custom resources).
            Otherwise only the value checks kube-apiserver does in Go code (names, label keys
            and values), for core kinds whose own schema already checks the types.
        kind_group: ``(kind, group)`` of the object, for kinds with stricter names.

    Returns:
        The JSON schema of ``metadata``.
    """
    keys = _checked_string(None, _QUALIFIED_NAME, _MSG_QUALIFIED_NAME)
    label_value = _checked_string(63, _LABEL_VALUE, _MSG_LABEL_VALUE)
    name_rule = _NAME_RULES.get(kind_group) if kind_group else None
    name = _checked_string(*(name_rule or (253, _DNS1123_SUBDOMAIN, _MSG_SUBDOMAIN)))
    namespace = _checked_string(63, _DNS1123_LABEL, _MSG_DNS1123_LABEL)
    if not strict:
        return {
            "required": ["name"],
            "properties": {
                "name": name,
                "namespace": namespace,
                "labels": {"propertyNames": keys, "additionalProperties": label_value},
                "annotations": {"propertyNames": keys},
            },
        }
    string = {"type": "string"}
    return {
        "type": "object",
        "required": ["name"],
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string", **name},
            "generateName": string,
            "namespace": {"type": "string", **namespace},
            "labels": {
                "type": "object",
                "propertyNames": keys,
                "additionalProperties": {"type": "string", **label_value},
            },
            "annotations": {
                "type": "object",
                "propertyNames": keys,
                "additionalProperties": string,
            },
            "finalizers": {"type": "array", "items": string},
            "ownerReferences": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["apiVersion", "kind", "name", "uid"],
                    "additionalProperties": False,
                    "properties": {
                        "apiVersion": string,
                        "kind": string,
                        "name": string,
                        "uid": string,
                        "controller": {"type": "boolean"},
                        "blockOwnerDeletion": {"type": "boolean"},
                    },
                },
            },
        },
    }


# --------------------------------------------------------------------------------------------
# CRD schema conversion
# --------------------------------------------------------------------------------------------

_INLINE_FLAGS = re.compile(r"\(\?([imsU]+)\)")


def _rewrite_pattern(pattern: str) -> str | None:
    """Translate a Go RE2 ``pattern`` into an equivalent Python ``re`` pattern.

    * inline global flags such as ``(?i)`` anywhere but at the start (``^(?i)(abort|warn)?$`` in
      PrometheusRule) move to the front, which Python requires;
    * ``\\z`` becomes ``\\Z``;
    * ``$`` (outside classes, without the ``m`` flag) becomes ``\\Z``: RE2's ``$`` only matches
      at the very end, Python's also before a final newline.

    Args:
        pattern: The RE2 pattern.

    Returns:
        The Python pattern (possibly unchanged), or None if it cannot be expressed.
    """
    multiline = "(?m" in pattern or re.search(r"\(\?[a-zA-Z]*m", pattern) is not None
    flags: list[str] = []
    out: list[str] = []
    i, n, in_class = 0, len(pattern), False
    while i < n:
        c = pattern[i]
        if c == "\\":
            esc = pattern[i : i + 2]
            out.append("\\Z" if esc == "\\z" and not in_class else esc)
            i += 2
            continue
        if in_class:
            if c == "]":
                in_class = False
            out.append(c)
            i += 1
            continue
        if c == "[":
            in_class = True
            out.append(c)
            i += 1
            # "[]...]" and "[^]...]": a leading ']' is a literal.
            if pattern.startswith("^", i):
                out.append("^")
                i += 1
            if pattern.startswith("]", i):
                out.append("]")
                i += 1
            continue
        m = _INLINE_FLAGS.match(pattern, i)
        if m:
            flags.extend(f for f in m.group(1) if f not in flags)
            i = m.end()
            continue
        out.append("\\Z" if c == "$" and not multiline else c)
        i += 1
    if "U" in flags:  # RE2 "ungreedy": no Python equivalent
        return None
    result = ("(?" + "".join(flags) + ")" if flags else "") + "".join(out)
    try:
        re.compile(result)
    except re.error:
        return None
    return result


def _convert_node(node: Any, *, structural: bool, preserve_inherited: bool = False) -> Any:
    """Convert one OpenAPI v3 schema node (see :func:`convert_crd_schema`)."""
    if not isinstance(node, dict):
        return node
    preserve = preserve_inherited or node.get("x-kubernetes-preserve-unknown-fields") is True
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "description":
            continue
        if key == "properties" and isinstance(value, dict):
            out[key] = {
                name: _convert_node(sub, structural=structural) for name, sub in value.items()
            }
        elif key == "additionalProperties" and isinstance(value, dict):
            out[key] = _convert_node(value, structural=structural)
        elif key == "items":
            if isinstance(value, list):
                out[key] = [_convert_node(sub, structural=False) for sub in value]
            else:
                # apiextensions skipPrune() keeps unknown fields of array items below a
                # preserve-unknown-fields node.
                out[key] = _convert_node(
                    value, structural=structural, preserve_inherited=structural and preserve
                )
        elif key in ("allOf", "anyOf", "oneOf") and isinstance(value, list):
            out[key] = [_convert_node(sub, structural=False) for sub in value]
        elif key in ("not", "patternProperties", "dependencies", "definitions"):
            if key == "not":
                out[key] = _convert_node(value, structural=False)
            elif isinstance(value, dict):
                out[key] = {k: _convert_node(v, structural=False) for k, v in value.items()}
            else:
                out[key] = value
        else:
            out[key] = value

    # nullable: true -> "null" is a valid value.
    if out.pop("nullable", False) is True:
        typ = out.get("type")
        if isinstance(typ, str):
            out["type"] = [typ, "null"]
        elif isinstance(typ, list) and "null" not in typ:
            out["type"] = [*typ, "null"]
        if isinstance(out.get("enum"), list) and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]
    # Hand-written CRDs may carry x-kubernetes-int-or-string without controller-gen's anyOf.
    if out.get("x-kubernetes-int-or-string") is True and "anyOf" not in out and "oneOf" not in out:
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    # OpenAPI 3.0 boolean exclusiveMinimum/exclusiveMaximum -> JSON Schema 2020-12 numbers.
    for excl, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if isinstance(out.get(excl), bool) and out.pop(excl) and bound in out:
            out[excl] = out.pop(bound)
    if isinstance(out.get("pattern"), str):
        original = out["pattern"]
        rewritten = _rewrite_pattern(original)
        if rewritten is None:
            # Not expressible with Python's re: do not check it rather than crash.
            del out["pattern"]
            out["x-llmdeploy-unchecked-pattern"] = original
        elif rewritten != original:
            out["pattern"] = rewritten
            out["x-llmdeploy-original-pattern"] = original
    list_type = out.get("x-kubernetes-list-type")
    if list_type == "set":
        out["uniqueItems"] = True
    # Pruning made visible: close structural object nodes.
    if (
        structural
        and not preserve
        and (out.get("type") == "object" or "properties" in out)
        and "additionalProperties" not in out
    ):
        if out.get("x-kubernetes-embedded-resource") is True:
            props = out.setdefault("properties", {})
            props.setdefault("apiVersion", {"type": "string"})
            props.setdefault("kind", {"type": "string"})
            props.setdefault("metadata", {"type": "object"})
        out["additionalProperties"] = False
    return out


def convert_crd_schema(
    schema: Mapping[str, Any], group: str, version: str, kind: str
) -> dict[str, Any]:
    """Convert a CRD version's ``openAPIV3Schema`` into a strict JSON Schema (draft 2020-12).

    Adaptations (see ``shared/reference/validation.md`` §2):

    1. ``additionalProperties: false`` on every structural node with ``type: object`` or
       ``properties`` (never inside ``allOf``/``anyOf``/``oneOf``/``not``) unless the node has
       ``x-kubernetes-preserve-unknown-fields: true``; below such a node, nested nodes that
       declare properties are closed again, exactly like apiextensions pruning.
    2. Root ``metadata`` replaced by an ObjectMeta schema (name is a DNS-1123 subdomain,
       labels/annotations are string maps with valid keys and label values, ...),
       ``apiVersion``/``kind`` pinned with ``const`` and required, ``status`` dropped.
    3. ``nullable: true`` adds ``"null"`` to ``type`` (and to ``enum``).
    4. RE2 patterns made Python compatible (inline global flags moved to the front, ``$`` and
       ``\\z`` anchored at the very end); an untranslatable pattern is dropped.
    5. ``x-kubernetes-list-type: set`` adds ``uniqueItems``; ``map`` lists keep their
       ``x-kubernetes-list-map-keys``, which the checker's validator enforces.
    6. OpenAPI 3.0 boolean ``exclusiveMinimum``/``exclusiveMaximum`` become numbers;
       ``x-kubernetes-int-or-string`` without ``anyOf`` gets one.

    Descriptions are dropped to keep the cached schema small.

    Args:
        schema: The ``openAPIV3Schema`` of one version.
        group: The CRD's API group.
        version: The version name.
        kind: The CRD's kind.

    Returns:
        A new JSON-serialisable schema; the input is not modified.
    """
    root: dict[str, Any] = _convert_node(dict(schema), structural=True)
    root["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    root["type"] = "object"
    props = root.setdefault("properties", {})
    props.pop("status", None)
    props["apiVersion"] = {"type": "string", "const": f"{group}/{version}" if group else version}
    props["kind"] = {"type": "string", "const": kind}
    props["metadata"] = _object_meta_schema(strict=True)
    pinned = ("apiVersion", "kind", "metadata")
    others = [r for r in root.get("required", []) if r not in (*pinned, "status")]
    root["required"] = [*pinned, *others]
    if root.get("x-kubernetes-preserve-unknown-fields") is not True:
        root["additionalProperties"] = False
    return root


# --------------------------------------------------------------------------------------------
# Custom keywords
# --------------------------------------------------------------------------------------------


def _kw_list_map_keys(
    validator: Any, keys: Any, instance: Any, schema: Mapping[str, Any]
) -> Iterator[Any]:
    """``x-kubernetes-list-type: map``: the API server rejects duplicate keys."""
    if schema.get("x-kubernetes-list-type") != "map" or not isinstance(instance, list):
        return
    if not isinstance(keys, list) or not keys:
        return
    from jsonschema.exceptions import ValidationError

    items = schema.get("items")
    item_props = items.get("properties", {}) if isinstance(items, dict) else {}
    defaults = {
        k: item_props[k].get("default") if isinstance(item_props.get(k), dict) else None
        for k in keys
    }
    seen: dict[tuple[str, ...], int] = {}
    for index, item in enumerate(instance):
        if not isinstance(item, dict):
            continue
        values = {k: item.get(k, defaults[k]) for k in keys}
        key = tuple(json.dumps(values[k], sort_keys=True, default=str) for k in keys)
        if key in seen:
            shown = json.dumps(values, default=str)
            yield ValidationError(
                f"Duplicate value: {shown} (same key as item {seen[key]})", path=[index]
            )
        else:
            seen[key] = index


_CEL_STATE: dict[str, Any] = {}
_CEL_RESERVED = frozenset(
    {
        "true",
        "false",
        "null",
        "in",
        "as",
        "break",
        "const",
        "continue",
        "else",
        "for",
        "function",
        "if",
        "import",
        "let",
        "loop",
        "package",
        "namespace",
        "return",
        "var",
    }
)
_CEL_IDENT = re.compile(r"[a-zA-Z_.\-/][a-zA-Z0-9_.\-/]*\Z")
_OLD_SELF = re.compile(r"\boldSelf\b")


def _cel_module() -> Any:
    if "celpy" not in _CEL_STATE:
        try:
            celpy: Any = importlib.import_module("celpy")
        except ImportError:  # optional dependency: rules are skipped silently
            celpy = None
        _CEL_STATE["celpy"] = celpy
        _CEL_STATE["programs"] = {}
    return _CEL_STATE["celpy"]


def _cel_split(value: Any, sep: Any, limit: Any = None) -> Any:
    """Kubernetes CEL strings extension ``split`` (absent from cel-python)."""
    celtypes = _CEL_STATE["celpy"].celtypes
    text, separator = str(value), str(sep)
    if limit is None or int(limit) < 0:
        parts = text.split(separator)
    elif int(limit) == 0:
        parts = []
    else:
        parts = text.split(separator, int(limit) - 1)
    return celtypes.ListType([celtypes.StringType(p) for p in parts])


def _cel_program(rule: str) -> Any:
    programs: dict[str, Any] = _CEL_STATE["programs"]
    if rule not in programs:
        celpy = _CEL_STATE["celpy"]
        try:
            env = celpy.Environment()
            programs[rule] = env.program(env.compile(rule), functions={"split": _cel_split})
        except Exception:  # noqa: BLE001 - cel-python cannot compile it: skip the rule
            programs[rule] = None
    return programs[rule]


def _cel_escape(name: str) -> str:
    """Kubernetes escaping of property names for CEL (``namespace`` -> ``__namespace__``)."""
    if name in _CEL_RESERVED:
        return f"__{name}__"
    if not _CEL_IDENT.match(name):
        return name
    return (
        name.replace("__", "__underscores__")
        .replace(".", "__dot__")
        .replace("-", "__dash__")
        .replace("/", "__slash__")
    )


def _cel_data(value: Any, schema: Any) -> Any:
    """Escape object property names (not map keys) the way the API server does for CEL."""
    schema = schema if isinstance(schema, dict) else {}
    if isinstance(value, dict):
        props = schema.get("properties")
        if isinstance(props, dict):
            return {_cel_escape(k): _cel_data(v, props.get(k)) for k, v in value.items()}
        return {k: _cel_data(v, schema.get("additionalProperties")) for k, v in value.items()}
    if isinstance(value, list):
        return [_cel_data(v, schema.get("items")) for v in value]
    return value


_FIELD_PATH_PART = re.compile(r"\.([A-Za-z0-9_\-]+)|\[(\d+)\]|\['([^']*)'\]|\[\"([^\"]*)\"\]")


def _parse_field_path(field_path: str) -> list[str | int]:
    parts: list[str | int] = []
    pos = 0
    while pos < len(field_path):
        m = _FIELD_PATH_PART.match(field_path, pos)
        if not m:
            return []
        ident, idx, sq, dq = m.groups()
        parts.append(int(idx) if idx is not None else (ident or sq or dq or ""))
        pos = m.end()
    return parts


def _kw_cel(validator: Any, rules: Any, instance: Any, schema: Mapping[str, Any]) -> Iterator[Any]:
    """``x-kubernetes-validations``: evaluated with cel-python when it is installed."""
    celpy = _cel_module()
    if celpy is None or not isinstance(rules, list):
        return
    from jsonschema.exceptions import ValidationError

    activation: dict[str, Any] | None = None
    for rule in rules:
        text = rule.get("rule") if isinstance(rule, dict) else None
        if not isinstance(text, str) or _OLD_SELF.search(text):
            continue
        program = _cel_program(text)
        if program is None:
            continue
        try:
            if activation is None:
                activation = {"self": celpy.json_to_cel(_cel_data(instance, schema))}
            result = program.evaluate(activation)
        except Exception:  # noqa: BLE001, S112 - cel-python evaluation error: do not guess
            continue
        if isinstance(result, celpy.celtypes.BoolType) and not bool(result):
            message = rule.get("message") or f"failed rule: {text}"
            field_path = rule.get("fieldPath")
            path = _parse_field_path(field_path) if isinstance(field_path, str) else []
            yield ValidationError(str(message), path=path)


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
            lowered = {str(p).lower(): str(p) for p in props}
            close = difflib.get_close_matches(str(extra).lower(), list(lowered), n=1, cutoff=0.75)
            if close:
                message += f' (did you mean "{lowered[close[0]]}"?)'
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
# CRD files: discovery, index, loading
# --------------------------------------------------------------------------------------------


@record
class _CRDVersion:
    """One served version of a CRD found under --crds, with the file it came from."""

    source: Path
    sha256: str
    doc: int  # document position in the file
    item: int | None  # position in ``items`` of a List document, else None
    group: str
    version: str
    kind: str
    served: bool


def _expand_paths(paths: Iterable[Path | str]) -> list[Path]:
    files: list[Path] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            found = [
                p
                for p in path.rglob("*")
                if p.suffix.lower() in _CRD_SUFFIXES
                and p.is_file()
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            ]
            files.extend(sorted(found))
        elif path.is_file():
            files.append(path)
        elif path.exists():
            raise CRDLoadError(f"{path}: not a regular file or folder")
        else:
            raise CRDLoadError(f"{path}: no such file or folder")
    unique: dict[Path, None] = {}
    for f in files:
        unique.setdefault(f, None)
    return list(unique)


def _is_json(path: Path) -> bool:
    return path.suffix.lower() == ".json"


def _load_crd_documents(data: bytes, source: Path) -> list[Any]:
    """Fully load all documents of a CRD file (CSafeLoader when libyaml is available)."""
    if _is_json(source):
        try:
            return [json.loads(data)]
        except (ValueError, UnicodeDecodeError) as exc:
            raise CRDLoadError(f"{source}: not valid JSON: {exc}") from exc
    yaml, loader = _yaml_loader()
    try:
        return list(yaml.load_all(data, Loader=loader))
    except yaml.YAMLError as exc:
        raise CRDLoadError(f"{source}: not valid YAML: {exc}") from exc


def _crd_objects(doc: Any) -> Iterator[tuple[int | None, Mapping[str, Any]]]:
    if not isinstance(doc, Mapping):
        return
    if doc.get("kind") == "CustomResourceDefinition":
        yield None, doc
    elif doc.get("kind") in _LIST_KINDS and isinstance(doc.get("items"), list):
        for j, item in enumerate(doc["items"]):
            if isinstance(item, Mapping) and item.get("kind") == "CustomResourceDefinition":
                yield j, item


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _index_records_from_objects(docs: Sequence[Any]) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    for d, doc in enumerate(docs):
        for j, crd in _crd_objects(doc):
            spec: Mapping[str, Any] = _mapping(crd.get("spec"))
            names: Mapping[str, Any] = _mapping(spec.get("names"))
            raw_versions = spec.get("versions")
            versions: list[Any] = raw_versions if isinstance(raw_versions, list) else []
            records.append(
                {
                    "doc": d,
                    "item": j,
                    "apiVersion": crd.get("apiVersion"),
                    "group": spec.get("group"),
                    "kind": names.get("kind"),
                    "versions": [
                        {"name": v.get("name"), "served": v.get("served", True)}
                        for v in versions
                        if isinstance(v, Mapping)
                    ],
                }
            )
    return records


def _scan_yaml_index(data: bytes, source: Path) -> list[dict[str, Any]]:
    """Index CRD documents from the YAML *event* stream, without building the schemas.

    For the 2 MB InferenceService CRD this takes ~0.1 s instead of ~0.5 s for a full load.
    """
    yaml, loader = _yaml_loader()
    from yaml import events as ev

    wanted = {
        ("kind",),
        ("apiVersion",),
        ("spec", "group"),
        ("spec", "names", "kind"),
    }

    def rel(path: tuple[Any, ...]) -> tuple[Any, ...] | None:
        if path[:1] == ("items",):
            if len(path) == 1:
                return ()
            if isinstance(path[1], int):
                return path[2:]
            return None
        return path

    def container_wanted(path: tuple[Any, ...]) -> bool:
        r = rel(path)
        if r is None:
            return False
        return r in ((), ("spec",), ("spec", "names"), ("spec", "versions")) or (
            len(r) == 3 and r[:2] == ("spec", "versions") and isinstance(r[2], int)
        )

    def scalar_wanted(path: tuple[Any, ...]) -> bool:
        r = rel(path)
        if r is None:
            return False
        return r in wanted or (
            len(r) == 4 and r[:2] == ("spec", "versions") and r[3] in ("name", "served")
        )

    docs: list[dict[tuple[Any, ...], Any]] = []
    values: dict[tuple[Any, ...], Any] = {}
    # Frame: [is_mapping, path, pending_key (mapping) / next index (sequence), expecting_key]
    stack: list[list[Any]] = []
    skip = 0
    try:
        for event in yaml.parse(data, Loader=loader):
            if skip:
                if isinstance(event, (ev.MappingStartEvent, ev.SequenceStartEvent)):
                    skip += 1
                elif isinstance(event, (ev.MappingEndEvent, ev.SequenceEndEvent)):
                    skip -= 1
                    if not skip:
                        _advance(stack)
                continue
            if isinstance(event, ev.DocumentStartEvent):
                values = {}
                stack = []
                continue
            if isinstance(event, ev.DocumentEndEvent):
                docs.append(values)
                continue
            if not isinstance(
                event,
                (
                    ev.ScalarEvent,
                    ev.AliasEvent,
                    ev.MappingStartEvent,
                    ev.SequenceStartEvent,
                    ev.MappingEndEvent,
                    ev.SequenceEndEvent,
                ),
            ):
                continue
            if isinstance(event, (ev.MappingEndEvent, ev.SequenceEndEvent)):
                stack.pop()
                _advance(stack)
                continue
            top = stack[-1] if stack else None
            if top is not None and top[0] and top[3]:
                # A mapping key.
                if isinstance(event, ev.ScalarEvent):
                    top[2] = event.value
                    top[3] = False
                elif isinstance(event, ev.AliasEvent):
                    top[2] = None
                    top[3] = False
                else:  # complex key: skip it, and its value will be under key None
                    top[2] = None
                    skip = 1
                    top[3] = True  # _advance() after the skip flips it to "value"
                    top.append("complex")
                continue
            path: tuple[Any, ...] = () if top is None else (*top[1], top[2])
            if isinstance(event, ev.ScalarEvent):
                if stack and scalar_wanted(path):
                    values[path] = _scalar_value(event)
                _advance(stack)
            elif isinstance(event, ev.AliasEvent):
                _advance(stack)
            else:
                is_map = isinstance(event, ev.MappingStartEvent)
                if stack and not container_wanted(path):
                    skip = 1
                    continue
                stack.append([is_map, path, None if is_map else 0, True])
    except yaml.YAMLError as exc:
        raise CRDLoadError(f"{source}: not valid YAML: {exc}") from exc

    records: list[dict[str, Any]] = []
    for d, vals in enumerate(docs):
        roots: list[tuple[Any, ...]] = []
        if vals.get(("kind",)) == "CustomResourceDefinition":
            roots.append(())
        elif vals.get(("kind",)) in _LIST_KINDS:
            items = sorted(
                k[1]
                for k, v in vals.items()
                if len(k) == 3
                and k[0] == "items"
                and k[2] == "kind"
                and v == "CustomResourceDefinition"
            )
            roots.extend(("items", j) for j in items)
        for root in roots:
            versions: dict[int, dict[str, Any]] = {}
            for k, v in vals.items():
                r = k[len(root) :]
                if k[: len(root)] == root and len(r) == 4 and r[:2] == ("spec", "versions"):
                    versions.setdefault(r[2], {"name": None, "served": True})[r[3]] = v
            records.append(
                {
                    "doc": d,
                    "item": root[1] if root else None,
                    "apiVersion": vals.get((*root, "apiVersion")),
                    "group": vals.get((*root, "spec", "group")),
                    "kind": vals.get((*root, "spec", "names", "kind")),
                    "versions": [versions[i] for i in sorted(versions)],
                }
            )
    return records


def _advance(stack: list[list[Any]]) -> None:
    """After a complete value: a mapping expects a key again, a sequence moves on."""
    if not stack:
        return
    top = stack[-1]
    if top[0]:
        if len(top) > 4:  # the value of a complex key was skipped... now its value comes
            top.pop()
            top[3] = False
        else:
            top[3] = True
    else:
        top[2] += 1


_YAML_TRUE = frozenset(["true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON"])
_YAML_FALSE = frozenset(["false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF"])


def _scalar_value(event: Any) -> Any:
    """Resolve the few scalar types the index needs (strings and YAML 1.1 booleans)."""
    if event.implicit[0] and event.value in _YAML_TRUE:
        return True
    if event.implicit[0] and event.value in _YAML_FALSE:
        return False
    return event.value


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
        name = "-".join(_SAFE.sub("_", p) for p in parts) + f"-c{CONVERTER_VERSION}.json"
        return self.dir / name

    def read(self, path: Path | None, expect: Mapping[str, Any]) -> Any:
        """Return the cached payload, or None if absent, unreadable, corrupt or mismatched."""
        if path is None:
            return None
        try:
            with open(path, "rb") as fh:
                envelope = json.load(fh)
        except (OSError, ValueError):
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
        store_cache(path, text)


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
            data = path.read_bytes()
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
                data = crd.source.read_bytes()
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
        schema = convert_crd_schema(raw, crd.group, crd.version, crd.kind)
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
                errors = list(self._custom_validator(crd, loaded).iter_errors(doc))
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
