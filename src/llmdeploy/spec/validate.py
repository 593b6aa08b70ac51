"""Turn a loaded document into a validated :class:`LLMService` or located diagnostics.

Steps: check ``apiVersion``/``kind``; merge the profile under the spec (the spec wins,
maps merge, lists replace); validate the merged data with pydantic; map each pydantic
error back to the line and column of the offending key or value, with a hint.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from ..diagnostics import Diagnostic, Severity
from .loader import SourceDoc, load_text
from .models import API_VERSION, KIND, QUANTITY_RE, LLMService, camel_path, json_schema

BUILTIN_PROFILES = ("dev", "staging", "production")


@dataclass
class Validated:
    """Result of validating one document."""

    doc: SourceDoc
    spec: LLMService | None
    diagnostics: list[Diagnostic]
    profile_name: str | None = None
    profile_doc: SourceDoc | None = None
    merged: dict[str, Any] = field(default_factory=dict)

    def locate(self, path: Sequence[str | int], *, key: bool = False) -> tuple[str, int, int]:
        """File, line and column for ``path``: the spec if the user wrote it, else the profile."""
        p = tuple(path)
        if self.doc.has(p) or self.profile_doc is None:
            return (self.doc.file, *self.doc.locate(p, key=key))
        # The value came from the profile: point there when the profile has it.
        if self.profile_doc.has(p):
            return (self.profile_doc.file, *self.profile_doc.locate(p, key=key))
        return (self.doc.file, *self.doc.locate(p, key=key))

    def user_set(self, path: Sequence[str | int]) -> bool:
        """True when the spec itself (not a profile or default) sets ``path``."""
        return self.doc.has(tuple(path))


def deep_merge(base: Any, override: Any) -> Any:
    """Merge ``override`` onto ``base``: mappings merge key by key, anything else replaces."""
    if isinstance(base, dict) and isinstance(override, dict):
        out = dict(base)
        for key, value in override.items():
            out[key] = deep_merge(base[key], value) if key in base else value
        return out
    return override


def _err(doc: SourceDoc, path: Sequence[str | int], rule: str, message: str, hint: str | None,
         *, key: bool = False) -> Diagnostic:
    line, col = doc.locate(path, key=key)
    return Diagnostic(Severity.ERROR, rule, message, hint, doc.file, line, col, camel_path(tuple(path)))


def _load_profile(name: str, doc: SourceDoc) -> tuple[SourceDoc | None, list[Diagnostic]]:
    from ..resources import profiles_dir

    where = ("profile",)
    if name in BUILTIN_PROFILES:
        path = profiles_dir() / f"{name}.yaml"
        display = f"profiles/{name}.yaml"
    elif name.endswith((".yaml", ".yml")) or "/" in name:
        path = (doc.base_dir / name).resolve()
        display = str(Path(name))
    else:
        close = difflib.get_close_matches(name, BUILTIN_PROFILES, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        return None, [_err(doc, where, "LD108", f"unknown profile {name!r}",
                           hint + f"use one of {', '.join(BUILTIN_PROFILES)} or the path of a profile file")]
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return None, [_err(doc, where, "LD108", f"profile file {display} cannot be read",
                           "give a path relative to the spec file")]
    docs, diags = load_text(text, display, path.parent)
    if diags:
        return None, diags
    if len(docs) != 1:
        return None, [_err(doc, where, "LD108", f"profile {display} must hold exactly one document", None)]
    pdoc = docs[0]
    pdata = dict(pdoc.data)
    for meta in ("apiVersion", "kind", "metadata", "description"):
        pdata.pop(meta, None)
    if pdoc.data.get("kind", "LLMServiceProfile") != "LLMServiceProfile":
        return None, [_err(pdoc, ("kind",), "LD108", "a profile has `kind: LLMServiceProfile`", None)]
    pdoc.data = pdata
    return pdoc, []


@cache
def _schema() -> dict[str, Any]:
    return json_schema()


def _schema_node(path: Sequence[str | int]) -> dict[str, Any] | None:
    """The JSON-schema node for ``path`` (refs and unions followed), to list valid keys."""
    schema = _schema()
    defs = schema.get("$defs", {})

    def deref(node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            node = defs[node["$ref"].rsplit("/", 1)[-1]]
        for branch in node.get("anyOf", []):
            b = deref(branch)
            if "properties" in b or "items" in b:
                return b
        return node

    node = deref(schema)
    for part in path:
        if isinstance(part, int):
            node = deref(node.get("items", {}))
        else:
            props = node.get("properties", {})
            if part not in props:
                return None
            node = deref(props[part])
    return node


def _field_description(path: Sequence[str | int]) -> str | None:
    parent = _schema_node(path[:-1]) if path else None
    if not parent or not path or isinstance(path[-1], int):
        return None
    prop = parent.get("properties", {}).get(path[-1], {})
    desc = prop.get("description")
    if not desc:
        return None
    return desc.split(". ")[0].rstrip(".")


_TAG_WORDS = {"int", "float", "str", "bool", "none", "list", "dict"}


def _looks_like_tag(part: str) -> bool:
    """pydantic adds union-branch tags such as ``int`` or ``literal['auto']`` to ``loc``."""
    return part in _TAG_WORDS or any(c in part for c in "[(-")


def _real_path(data: Any, loc: Sequence[Any]) -> tuple[str | int, ...]:
    """Map pydantic's ``loc`` onto the data: drop union tags, keep missing/unknown keys."""
    out: list[str | int] = []
    node = data
    for part in loc:
        if isinstance(node, dict) and isinstance(part, str):
            if part in node:
                out.append(part)
                node = node[part]
            elif not _looks_like_tag(part):
                out.append(part)  # a missing key: name it
                node = None
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            out.append(part)
            node = node[part]
    return tuple(out)


def _describe(err: dict[str, Any]) -> tuple[str, str | None]:
    """A readable problem and hint for one pydantic error."""
    t = err["type"]
    ctx = err.get("ctx") or {}
    got = err.get("input")
    shown = repr(got) if not isinstance(got, (dict, list)) else type(got).__name__
    if t in {"int_parsing", "int_type", "int_from_float"}:
        return f"must be an integer (got {shown})", None
    if t in {"float_parsing", "float_type"}:
        return f"must be a number (got {shown})", None
    if t in {"bool_parsing", "bool_type"}:
        return f"must be true or false (got {shown})", None
    if t in {"string_type"}:
        return f"must be a string (got {shown})", "quote the value"
    if t in {"dict_type", "model_type", "model_attributes_type"}:
        return f"must be a mapping (got {shown})", None
    if t in {"list_type"}:
        return f"must be a list (got {shown})", None
    if t == "greater_than_equal":
        ge = ctx.get("ge")
        if ge == 1:
            return f"must be a positive integer (got {shown})", None
        return f"must be at least {ge} (got {shown})", None
    if t == "greater_than":
        return f"must be greater than {ctx.get('gt')} (got {shown})", None
    if t == "less_than_equal":
        return f"must be at most {ctx.get('le')} (got {shown})", None
    if t == "less_than":
        return f"must be less than {ctx.get('lt')} (got {shown})", None
    if t == "literal_error":
        expected = str(ctx.get("expected"))
        if " or " not in expected and "," not in expected:
            return f"must be {expected} (got {shown})", None
        return f"must be one of {expected} (got {shown})", None
    if t == "string_pattern_mismatch":
        if ctx.get("pattern") == QUANTITY_RE:
            return (f"must be a Kubernetes quantity (got {shown})",
                    "write a quantity such as 8, 500m, 32Gi or 1.5Ti")
        return f"has an invalid format (got {shown})", f"it must match {ctx.get('pattern')}"
    if t == "string_too_short":
        return "must not be empty", None
    if t == "string_too_long":
        return f"must be at most {ctx.get('max_length')} characters", None
    if t == "missing":
        return "is required", None
    if t == "value_error":
        msg = str(err.get("msg", "")).removeprefix("Value error, ")
        return msg, None
    return str(err.get("msg", "is invalid")), None


def _pydantic_diagnostics(v: Validated, exc: Any) -> list[Diagnostic]:
    groups: dict[tuple[str | int, ...], list[dict[str, Any]]] = {}
    for err in exc.errors(include_url=False):
        path = _real_path(v.merged, err["loc"])
        groups.setdefault(path, []).append(err)
    out = []
    for path, errs in groups.items():
        name = camel_path(path) or "spec"
        leaf = str(path[-1]) if path and isinstance(path[-1], str) else name
        types = {e["type"] for e in errs}
        file, line, col = v.locate(path, key="extra_forbidden" in types or "missing" in types)
        if "extra_forbidden" in types:
            parent = _schema_node(path[:-1])
            valid = sorted(parent.get("properties", {})) if parent else []
            close = difflib.get_close_matches(leaf, valid, n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}?" if close else (
                f"valid keys here: {', '.join(valid)}" if valid else "remove it")
            out.append(Diagnostic(Severity.ERROR, "LD105", f"unknown key {leaf!r}", hint,
                                  file, line, col, name))
            continue
        if "missing" in types:
            desc = _field_description(path)
            out.append(Diagnostic(Severity.ERROR, "LD107", f"{leaf} is required", desc and f"{leaf}: {desc}",
                                  file, line, col, name))
            continue
        problems = []
        hints = []
        for e in errs:
            p, h = _describe(e)
            if p not in problems:
                problems.append(p)
            if h and h not in hints:
                hints.append(h)
        if len(problems) > 1:
            # A union (e.g. int or 'auto'): say what is accepted once.
            got = errs[0].get("input")
            accepted = []
            for e in errs:
                p, _ = _describe(e)
                accepted.append(p.split(" (got")[0].removeprefix("must be "))
            problem = f"must be {' or '.join(dict.fromkeys(accepted))} (got {got!r})"
        else:
            problem = problems[0]
        desc = _field_description(path)
        hint = "; ".join(hints) or (f"{leaf}: {desc}" if desc else None)
        out.append(Diagnostic(Severity.ERROR, "LD104", f"{leaf} {problem}", hint, file, line, col, name))
    return out


def validate_doc(doc: SourceDoc) -> Validated:
    """Validate one loaded document (profile merge + pydantic)."""
    from pydantic import ValidationError

    v = Validated(doc, None, [])
    data = doc.data
    api = data.get("apiVersion")
    kind = data.get("kind")
    if api != API_VERSION:
        what = "missing" if api is None else f"{api!r} is not supported"
        v.diagnostics.append(_err(doc, ("apiVersion",), "LD106", f"apiVersion {what}",
                                  f"use `apiVersion: {API_VERSION}`", key=api is None))
    if kind != KIND:
        what = "missing" if kind is None else f"{kind!r} is not an llmdeploy spec"
        v.diagnostics.append(_err(doc, ("kind",), "LD106", f"kind {what}", f"use `kind: {KIND}`",
                                  key=kind is None))
    if v.diagnostics:
        return v
    merged = data
    profile = data.get("profile")
    if isinstance(profile, str):
        pdoc, pdiags = _load_profile(profile, doc)
        if pdiags:
            v.diagnostics.extend(pdiags)
            return v
        assert pdoc is not None
        v.profile_doc = pdoc
        v.profile_name = Path(profile).stem if profile not in BUILTIN_PROFILES else profile
        merged = deep_merge(pdoc.data, data)
    v.merged = merged
    try:
        v.spec = LLMService.model_validate(merged)
    except ValidationError as exc:
        v.diagnostics.extend(_pydantic_diagnostics(v, exc))
    return v
