"""Conversion of a CRD's OpenAPI v3 schema into a strict JSON Schema (draft 2020-12).

See :func:`convert_crd_schema`.  Also the ObjectMeta schema (names, namespaces, label keys
and values checked the way kube-apiserver does, used for core kinds too) and the
``x-kubernetes-list-map-keys`` keyword.  ``jsonschema`` is imported lazily.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

#: Bump whenever :func:`convert_crd_schema` (or the index format) changes: it is part of every
#: cache key, so stale cache entries are simply never read again.
#: The converter's own version (a cached schema records it); file names also carry
#: :data:`llmdeploy.fsio.CACHE_VERSION`, the one version of every cache entry's shape.
CONVERTER_VERSION = "3"


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
