"""CEL (``x-kubernetes-validations``) rules of custom resources.

Rules are evaluated only when the optional ``cel-python`` package (``celpy``) is importable;
otherwise they are skipped silently.  Rules that use ``oldSelf`` (transition rules) are always
skipped, since rendered manifests are creations.  A rule that cel-python cannot compile or
evaluate (for example a Kubernetes CEL library function it lacks) is skipped too: only a rule
that evaluates to ``false`` is reported.  ``celpy`` and ``jsonschema`` are imported lazily.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator, Mapping
from typing import Any

from .crd_schema import pattern_is_safe

# --------------------------------------------------------------------------------------------
# CEL (x-kubernetes-validations)
# --------------------------------------------------------------------------------------------

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


_MATCHES_CALL = re.compile(r"\bmatches\s*\(")
_MATCHES_LITERAL = re.compile(r"""\bmatches\s*\(\s*(?:[A-Za-z_][\w.]*\s*,\s*)?(?:r?'([^'\\]*)'|r?"([^"\\]*)")\s*\)""")


def _regexes_are_safe(rule: str) -> bool:
    """cel-python runs ``matches()`` on Python's backtracking ``re`` (the API server uses RE2):
    a rule whose regular expression could backtrack without bound, or is not a plain string
    literal, is not evaluated."""
    calls = len(_MATCHES_CALL.findall(rule))
    literals = _MATCHES_LITERAL.findall(rule)
    if len(literals) != calls:
        return False
    return all(pattern_is_safe(a or b) for a, b in literals)


def _cel_program(rule: str) -> Any:
    programs: dict[str, Any] = _CEL_STATE["programs"]
    if rule not in programs and not _regexes_are_safe(rule):
        programs[rule] = None
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
