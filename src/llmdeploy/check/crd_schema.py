"""Conversion of a CRD's OpenAPI v3 schema into a strict JSON Schema (draft 2020-12).

See :func:`convert_crd_schema`.  Also the ObjectMeta schema (names, namespaces, label keys
and values checked the way kube-apiserver does, used for core kinds too) and the
``x-kubernetes-list-map-keys`` keyword.  ``jsonschema`` is imported lazily.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping
from typing import Any

#: Bump whenever :func:`convert_crd_schema` (or the index format) changes: it is part of every
#: cache key, so stale cache entries are simply never read again.
#: The converter's own version (a cached schema records it); file names also carry
#: :data:`llmdeploy.fsio.CACHE_VERSION`, the one version of every cache entry's shape.
CONVERTER_VERSION = "4"


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

#: Bounds of one version's ``openAPIV3Schema``. Real CRDs are far inside them (KServe's
#: LLMInferenceService: ~22,000 values, 28 levels); beyond them a file is hostile or broken.
MAX_SCHEMA_DEPTH = 128
MAX_SCHEMA_VALUES = 2_000_000
#: Numbers in a schema (minimum, maxLength, ...) must fit an int64 like the API server's.
_NUMBER_BOUND = 2**63

_TYPES = frozenset({"object", "array", "string", "integer", "number", "boolean", "null"})
_SCHEMA_MAPS = ("properties", "definitions")
_SCHEMA_ONE = ("additionalProperties", "not", "additionalItems")
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf")
# JSON Schema keywords that are not fields of a CRD's JSONSchemaProps (apiextensions.k8s.io/v1):
# the API server never applies them, and jsonschema would run them (patterns included) on
# Python's re. A CRD that carries one is refused.
_NOT_CRD_KEYWORDS = ("patternProperties", "propertyNames", "contains", "if", "then", "else", "$defs",
                     "dependentSchemas", "dependentRequired", "unevaluatedProperties", "unevaluatedItems",
                     "prefixItems", "$anchor", "$dynamicAnchor", "$id", "$schema")
_NUMBERS = ("minimum", "maximum", "multipleOf")
_COUNTS = ("minLength", "maxLength", "minItems", "maxItems", "minProperties", "maxProperties")


class CRDSchemaError(ValueError):
    """A CRD schema that kube-apiserver would refuse, or too large or deep to check safely.

    ``path`` is where in the ``openAPIV3Schema`` (``properties.spec.properties.x.enum``).
    """

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"at {path or 'the root'}: {message}")
        self.path = path


def _where(path: tuple[str | int, ...]) -> str:
    return ".".join(str(p) for p in path)


def check_crd_schema(schema: Any) -> None:
    """Refuse a schema that is not a plain, bounded OpenAPI v3 schema (:class:`CRDSchemaError`).

    Every keyword the validator runs must have its type (``type`` a known type name,
    ``enum`` a list, ``required`` a list of strings, bounds finite numbers within int64,
    ``pattern`` a string); ``$ref`` is refused as kube-apiserver refuses it in a CRD; and
    the schema, counted with every YAML alias expanded, must stay within
    :data:`MAX_SCHEMA_VALUES` values and :data:`MAX_SCHEMA_DEPTH` levels (an alias bomb or a
    recursive alias fails here, before anything copies it).
    """
    budget = [MAX_SCHEMA_VALUES]
    stack: list[tuple[Any, tuple[str | int, ...], bool]] = [(schema, (), True)]
    while stack:
        node, path, is_schema = stack.pop()
        budget[0] -= 1
        if budget[0] < 0:
            raise CRDSchemaError(_where(path), f"the schema holds more than {MAX_SCHEMA_VALUES:,} values "
                                               "(YAML aliases expanded)")
        if len(path) > MAX_SCHEMA_DEPTH:
            raise CRDSchemaError(_where(path[:8]) + ".…", f"the schema nests deeper than {MAX_SCHEMA_DEPTH} "
                                                          "levels (a recursive YAML alias?)")
        if isinstance(node, float) and not math.isfinite(node):
            raise CRDSchemaError(_where(path), "a number is not finite")
        if isinstance(node, int) and not isinstance(node, bool) and abs(node) >= _NUMBER_BOUND:
            raise CRDSchemaError(_where(path), "a number does not fit in 64 bits")
        if isinstance(node, dict):
            if is_schema:
                _check_keywords(node, path)
            for key, value in node.items():
                if not isinstance(key, str):
                    raise CRDSchemaError(_where(path), f"key {key!r} is not a string")
                child_schema = False
                if is_schema:
                    child_schema = key in _SCHEMA_ONE or key == "items"
                    if key in _SCHEMA_MAPS:  # _check_keywords made sure of the shapes
                        stack.extend((sub, (*path, key, k), True) for k, sub in value.items())
                        continue
                    if key == "dependencies" and isinstance(value, dict):
                        stack.extend((sub, (*path, key, k), isinstance(sub, dict)) for k, sub in value.items())
                        continue
                    if key in _SCHEMA_LISTS or (key == "items" and isinstance(value, list)):
                        stack.extend((sub, (*path, key, i), True) for i, sub in enumerate(value))
                        continue
                stack.append((value, (*path, key), child_schema))
        elif isinstance(node, list):
            for i, value in enumerate(node):
                stack.append((value, (*path, i), False))


def _check_keywords(node: dict[str, Any], path: tuple[str | int, ...]) -> None:
    def bad(key: str, what: str) -> CRDSchemaError:
        return CRDSchemaError(_where((*path, key)), f"{key!r} must be {what} (got {type(node[key]).__name__})")

    for ref in ("$ref", "$dynamicRef", "$recursiveRef"):
        if ref in node:
            raise CRDSchemaError(_where((*path, ref)), f"{ref} is not allowed in a CRD schema "
                                                       "(kube-apiserver refuses references)")
    for key in _NOT_CRD_KEYWORDS:
        if key in node:
            raise CRDSchemaError(_where((*path, key)), f"{key!r} is not a keyword of a CRD schema "
                                                       "(apiextensions.k8s.io/v1 JSONSchemaProps)")
    if "type" in node:
        t = node["type"]
        names = t if isinstance(t, list) else [t]
        if not names or not all(isinstance(n, str) and n in _TYPES for n in names):
            raise bad("type", "one of " + ", ".join(sorted(_TYPES)) + " (or a list of them)")
    if "enum" in node and not isinstance(node["enum"], list):
        raise bad("enum", "a list")
    if "required" in node and not (isinstance(node["required"], list)
                                   and all(isinstance(r, str) for r in node["required"])):
        raise bad("required", "a list of property names")
    for key in _SCHEMA_MAPS:
        if key in node and not (isinstance(node[key], dict)
                                and all(isinstance(v, (dict, bool)) for v in node[key].values())):
            raise bad(key, "a mapping of schemas")
    for key in _SCHEMA_LISTS:
        if key in node and not (isinstance(node[key], list) and node[key]
                                and all(isinstance(v, (dict, bool)) for v in node[key])):
            raise bad(key, "a non-empty list of schemas")
    for key in _SCHEMA_ONE:
        if key in node and not isinstance(node[key], (dict, bool)):
            raise bad(key, "a schema (a mapping) or a boolean")
    if "items" in node and not isinstance(node["items"], (dict, bool, list)):
        raise bad("items", "a schema (a mapping)")
    for key in _NUMBERS:
        if key in node:
            v = node[key]
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise bad(key, "a number")
            if key == "multipleOf" and not v > 0:
                raise CRDSchemaError(_where((*path, key)), "'multipleOf' must be greater than 0")
    for key in ("exclusiveMinimum", "exclusiveMaximum"):
        if key in node and not isinstance(node[key], (bool, int, float)):
            raise bad(key, "a boolean or a number")
    for key in _COUNTS:
        if key in node:
            v = node[key]
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise bad(key, "a non-negative integer")
    for key in ("pattern", "format"):
        if key in node and not isinstance(node[key], str):
            raise bad(key, "a string")
    if "uniqueItems" in node and not isinstance(node["uniqueItems"], bool):
        raise bad("uniqueItems", "a boolean")
    rules = node.get("x-kubernetes-validations")
    if rules is not None and not (isinstance(rules, list) and all(isinstance(r, dict) for r in rules)):
        raise bad("x-kubernetes-validations", "a list of rules")
    keys = node.get("x-kubernetes-list-map-keys")
    if keys is not None and not (isinstance(keys, list) and all(isinstance(k, str) for k in keys)):
        raise bad("x-kubernetes-list-map-keys", "a list of property names")


def _may_match(sub: Any, code: int) -> bool:
    """Whether the repeated part ``sub`` can match the character ``code`` (True when unsure)."""
    try:
        import re._parser as sre_parse  # type: ignore[import-not-found]
    except ImportError:  # pragma: no cover - Python < 3.11
        import sre_parse  # type: ignore[import-not-found, no-redef]
    c = sre_parse
    items = list(sub)
    if len(items) != 1:
        return True
    op, av = items[0]
    if op is c.LITERAL:
        return bool(av == code)
    if op is c.NOT_LITERAL:
        return bool(av != code)
    if op is not c.IN:
        return True
    categories = {c.CATEGORY_DIGIT: r"\d", c.CATEGORY_NOT_DIGIT: r"\D", c.CATEGORY_SPACE: r"\s",
                  c.CATEGORY_NOT_SPACE: r"\S", c.CATEGORY_WORD: r"\w", c.CATEGORY_NOT_WORD: r"\W"}
    negate, hit = False, False
    for kind, value in av:
        if kind is c.NEGATE:
            negate = True
        elif kind is c.LITERAL:
            hit = hit or value == code
        elif kind is c.RANGE:
            hit = hit or value[0] <= code <= value[1]
        elif kind is c.CATEGORY and value in categories:
            hit = hit or re.match(categories[value], chr(code)) is not None
        else:
            return True
    return hit != negate


#: The keyword a converted CRD schema carries its RE2 patterns under (see :func:`_kw_re2_pattern`).
RE2_PATTERN = "x-llmdeploy-re2-pattern"
_COMPILED: dict[str, Any] = {}


def compile_crd_pattern(pattern: str) -> Any:
    """A compiled pattern with a ``search`` method, or None when it is not checked.

    With ``google-re2`` (a dependency; wheels for Linux, macOS and Windows): the pattern as
    the API server runs it (Go's regexp is RE2), in time linear in the input. Without it
    (a platform with no wheel): the pattern translated to Python's ``re``
    (:func:`_rewrite_pattern`) when :func:`pattern_is_safe` finds no way for it to backtrack
    without bound; otherwise None (the value is left unchecked rather than hanging).
    """
    if pattern in _COMPILED:
        return _COMPILED[pattern]
    compiled: Any = None
    if len(pattern) <= MAX_PATTERN_LENGTH:
        try:
            import re2  # type: ignore[import-not-found, import-untyped]
        except ImportError:
            rewritten = _rewrite_pattern(pattern)
            if rewritten is not None and pattern_is_safe(rewritten):
                compiled = re.compile(rewritten)
        else:
            options = re2.Options()
            options.log_errors = False  # a bad pattern is reported by us, not logged by absl
            try:
                compiled = re2.compile(pattern, options)
            except Exception:  # noqa: BLE001 - re2.error: not an RE2 pattern, the API server refuses it too
                compiled = None
    _COMPILED[pattern] = compiled
    return compiled


def _kw_re2_pattern(validator: Any, pattern: Any, instance: Any, schema: Mapping[str, Any]) -> Iterator[Any]:
    """``pattern`` of a CRD, run with RE2 semantics (see :func:`compile_crd_pattern`)."""
    if not isinstance(instance, str) or not isinstance(pattern, str):
        return
    compiled = compile_crd_pattern(pattern)
    if compiled is not None and compiled.search(instance) is None:
        from jsonschema.exceptions import ValidationError

        yield ValidationError(f"{instance!r} does not match {pattern!r}")


# A regular expression runs in linear time on RE2 (the API server's engine) but may backtrack
# exponentially on Python's re. Patterns whose structure allows that are not run (the value is
# left unchecked, as with any pattern re cannot express). See pattern_is_safe.
MAX_PATTERN_LENGTH = 4096


def pattern_is_safe(pattern: str) -> bool:
    """True when Python's backtracking ``re`` runs ``pattern`` without catastrophic backtracking.

    Refused (False): longer than :data:`MAX_PATTERN_LENGTH`; a repeat (``*``, ``+``,
    ``{n,}``, ``{n,m}`` with m > 1) around a part that itself repeats or branches
    (``(a+)+``, ``(.+)+X``, ``(a|ab)*``, star height above one), and back references
    (RE2 has none). Single repeats, classes, anchors and bounded counts pass; they run in
    polynomial time, and the strings llmdeploy checks are its own short manifest values.
    """
    if len(pattern) > MAX_PATTERN_LENGTH:
        return False
    try:
        import re._parser as sre_parse  # type: ignore[import-not-found]
    except ImportError:  # pragma: no cover - Python < 3.11
        import sre_parse  # type: ignore[import-not-found, no-redef]
    try:
        parsed = sre_parse.parse(pattern)
    except (re.error, RecursionError, OverflowError, ValueError):
        return False
    constants = sre_parse  # MAX_REPEAT, BRANCH, ... live in the parser's namespace

    ignore_case = bool(parsed.state.flags & re.IGNORECASE)
    repeat_ops = (constants.MAX_REPEAT, constants.MIN_REPEAT, getattr(constants, "POSSESSIVE_REPEAT", None))

    def first_of(items: Any, end: int = 0) -> Any:
        """The first (``end=-1``: last) single-character item of ``items`` through groups, else None."""
        items = list(items)
        while items and items[end][0] is constants.SUBPATTERN:
            items = list(items[end][1][-1])
        return items[end] if items and items[end][0] in (constants.LITERAL, constants.IN) else None

    def codes(item: Any) -> set[int]:
        """The ASCII characters a single-character item matches."""
        return {c for c in range(128) if _may_match([item], c)
                or (ignore_case and (_may_match([item], ord(chr(c).lower())) or _may_match([item], ord(chr(c).upper()))))}

    def repeated_parts(items: Any, out: list[Any]) -> list[Any]:
        for op, av in items:
            if op in repeat_ops:
                if av[0] != av[1]:  # a variable part, optional ones (`?`) included
                    out.append(av[2])
                repeated_parts(av[2], out)
            elif op is constants.SUBPATTERN:
                repeated_parts(av[-1], out)
            elif op is constants.BRANCH:
                for alt in av[1]:
                    repeated_parts(alt, out)
        return out

    def delimited(sub: Any) -> bool:
        """Each iteration of the repeated ``sub`` starts (or ends) with a character no repeat
        inside it can match (``(\\.[a-z0-9]+)*``, ``([a-z]+\\.)*``): an iteration cannot
        backtrack into the next one."""
        inner: set[int] = set()
        for part in repeated_parts(sub, []):
            inner |= chars_of(part)
        for end in (0, -1):
            edge = first_of(sub, end)
            if edge is not None and codes(edge) and not codes(edge) & inner:
                return True
        return False

    def disjoint(alternatives: Any) -> bool:
        """Alternatives that start with pairwise different characters (``[a-z]|%[0-9a-f]{2}``)."""
        seen: set[int] = set()
        for alt in alternatives:
            first = first_of(alt)
            if first is None:
                return False
            chars = codes(first)
            if chars & seen:
                return False
            seen |= chars
        return True

    every = set(range(128))

    def chars_of(items: Any) -> set[int]:
        """Every ASCII character some single-character item in ``items`` can match."""
        out: set[int] = set()
        for op, av in items:
            if op in (constants.LITERAL, constants.IN, constants.NOT_LITERAL):
                out |= codes((op, av)) if op is not constants.NOT_LITERAL else every - {av}
            elif op is constants.ANY:
                out |= every
            elif op in repeat_ops:
                out |= chars_of(av[2])
            elif op is constants.SUBPATTERN:
                out |= chars_of(av[-1])
            elif op is constants.BRANCH:
                for alt in av[1]:
                    out |= chars_of(alt)
        return out

    def flat(items: Any) -> list[Any]:
        out: list[Any] = []
        for op, av in items:
            if op is constants.SUBPATTERN:
                out.extend(flat(av[-1]))
            else:
                out.append((op, av))
        return out

    def ambiguous(items: Any) -> bool:
        """More than one way to match one span: two variable parts in a row that can take the
        same character (``a*a*``, ``a*(a)?``), alternatives that can start alike (``a|a``)."""
        open_: set[int] = set()
        for op, av in flat(items):
            if op is constants.AT:
                continue
            if op is constants.BRANCH:
                if not disjoint(av[1]) or any(ambiguous(alt) for alt in av[1]):
                    return True
                first = set().union(*(codes(f) for f in (first_of(alt) for alt in av[1]) if f is not None))
                if first & open_:
                    return True
                open_ |= chars_of([(op, av)])
            elif op in repeat_ops:
                lo, hi, sub = av
                if ambiguous(sub):
                    return True
                first_item = first_of(sub)
                first = codes(first_item) if first_item is not None else chars_of(sub)
                if lo == hi:  # a fixed count is a fixed part
                    if not first & open_:
                        open_ = set()
                    continue
                if first & open_:
                    return True
                open_ |= chars_of(sub)
            elif op in (constants.LITERAL, constants.IN, constants.NOT_LITERAL, constants.ANY):
                if not chars_of([(op, av)]) & open_:
                    open_ = set()
            else:
                return True  # back references, look-arounds inside a repeat: not analysed
        return False

    def risky(items: Any, inside: bool) -> bool:
        """``inside``: within an unbounded repeat whose iterations are not delimited."""
        for op, av in items:
            if op in repeat_ops:
                lo, hi, sub = av
                if lo != hi and inside:  # a choice ({2} is a fixed count, `?` is a choice)
                    return True
                unbounded = hi > 16  # MAXREPEAT included; {1,4} around {1,5} stays small
                if unbounded and ambiguous(sub):  # each iteration's choices multiply
                    return True
                if risky(sub, inside or (unbounded and not delimited(sub))):
                    return True
            elif op is constants.SUBPATTERN:
                if risky(av[-1], inside):
                    return True
            elif op is constants.BRANCH:
                if inside and not disjoint(av[1]):
                    return True
                if any(risky(b, inside) for b in av[1]):
                    return True
            elif op in (constants.GROUPREF, getattr(constants, "GROUPREF_EXISTS", None)):
                return True
            elif op in (constants.ASSERT, constants.ASSERT_NOT):
                if risky(av[1], inside):
                    return True
            elif op is getattr(constants, "ATOMIC_GROUP", None) and risky(av, inside):
                return True
        return False

    try:
        return not risky(parsed, False)
    except RecursionError:
        return False


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
        elif key in ("additionalProperties", "additionalItems") and isinstance(value, dict):
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
        elif key in ("not", "dependencies", "definitions"):
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
        # A CRD's pattern is the user's: it runs on RE2 (linear time, the API server's
        # semantics) through the x-llmdeploy-re2-pattern keyword, never on jsonschema's re.
        out[RE2_PATTERN] = out.pop("pattern")
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
    4. ``pattern`` becomes ``x-llmdeploy-re2-pattern``, run by RE2 as the API server runs it
       (:func:`compile_crd_pattern`: linear time; without google-re2, a safe translation to
       Python's ``re`` or no check at all, never a pattern that can backtrack without bound).

    The schema is first checked by :func:`check_crd_schema` (keyword types, ``$ref``,
    size and depth with aliases expanded); :class:`CRDSchemaError` says where it fails.
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
    check_crd_schema(schema)
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
