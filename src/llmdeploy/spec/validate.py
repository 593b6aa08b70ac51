"""Turn a loaded document into a validated :class:`LLMService` or located diagnostics.

Steps: check ``apiVersion``/``kind``; merge the profile under the spec (the spec wins,
maps merge, lists replace); validate the merged data with pydantic; map each pydantic
error back to the line and column of the offending key or value, with a hint.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, get_args

from pydantic import BaseModel

from .. import naming
from ..datafiles import deep_merge
from ..diagnostics import Diagnostic, Severity, close_matches
from ..fsio import MAX_SPEC_BYTES, read_bounded
from . import problems
from .loader import SourceDoc, load_text_cached
from .models import API_VERSION, KIND, QUANTITY_RE, LLMService, camel_path

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
    profile_builtin: bool = False  # `profile: dev|staging|production` (a file inside the package)

    def from_builtin_profile(self, path: Sequence[str | int]) -> bool:
        """True when the value at ``path`` comes from a built-in profile, not from the spec."""
        p = tuple(path)
        return (self.profile_builtin and self.profile_doc is not None and not self.doc.has(p)
                and self.profile_doc.has(p))

    def locate(self, path: Sequence[str | int], *, key: bool = False) -> tuple[str, int, int]:
        """File, line and column for ``path``: the spec if the user wrote it, else the profile.

        A value from a built-in profile points at the spec's ``profile:`` line: the profile
        file lives inside the installed package, not in the user's repository (#18), and the
        line that selected it is the one to change (or to override next to).
        """
        p = tuple(path)
        if self.from_builtin_profile(p):
            return (self.doc.file, *self.doc.locate(("profile",)))
        if self.doc.has(p) or self.profile_doc is None:
            return (self.doc.file, *self.doc.locate(p, key=key))
        # The value came from the profile: point there when the profile has it.
        if self.profile_doc.has(p):
            return (self.profile_doc.file, *self.profile_doc.locate(p, key=key))
        return (self.doc.file, *self.doc.locate(p, key=key))

    def explain_origin(self, path: Sequence[str | int], message: str) -> str:
        """``message``, plus which built-in profile value caused it when one did."""
        p = tuple(path)
        if not self.from_builtin_profile(p) or self.profile_doc is None:
            return message
        value = self.profile_doc.get(p)
        shown = f": {value}" if isinstance(value, (str, int, float, bool)) else ""
        return (f"{message} [{camel_path(p)}{shown} comes from profile {self.profile_name}; "
                "set it in this spec to override]")

    def user_set(self, path: Sequence[str | int]) -> bool:
        """True when the spec itself (not a profile or default) sets ``path``."""
        return self.doc.has(tuple(path))


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
        # Name the file the way the user named the spec, so that `file:line:col` opens it.
        spec_dir = Path(doc.file).parent if not doc.file.startswith("<") else Path()
        display = str(spec_dir / name) if not Path(name).is_absolute() else name
    else:
        close = close_matches(name, BUILTIN_PROFILES)
        hint = f"did you mean {close[0]!r}? " if close else ""
        return None, [_err(doc, where, problems.BAD_PROFILE, f"unknown profile {name!r}",
                           hint + f"use one of {', '.join(BUILTIN_PROFILES)} or the path of a profile file")]
    try:
        text = read_bounded(path, MAX_SPEC_BYTES).decode("utf-8")  # no FIFO, no /dev/zero, size-capped
    except FileNotFoundError:
        return None, [_err(doc, where, problems.BAD_PROFILE, f"profile file {display} does not exist",
                           "give the path of the profile relative to the spec file")]
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8 text"
        return None, [_err(doc, where, problems.BAD_PROFILE, f"profile file {display} cannot be read ({reason})",
                           "give the path of a readable profile file relative to the spec file")]
    docs, diags = load_text_cached(text, display, path.parent)
    if diags:
        return None, diags
    if len(docs) != 1:
        return None, [_err(doc, where, problems.BAD_PROFILE, f"profile {display} must hold exactly one document", None)]
    pdoc = docs[0]
    pdata = dict(pdoc.data)
    for meta in ("apiVersion", "kind", "metadata", "description"):
        pdata.pop(meta, None)
    if pdoc.data.get("kind", "LLMServiceProfile") != "LLMServiceProfile":
        return None, [_err(pdoc, ("kind",), problems.BAD_PROFILE, "a profile has `kind: LLMServiceProfile`", None)]
    pdoc.data = pdata
    return pdoc, []


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The spec model inside ``annotation`` (through Optional, unions, lists, Annotated)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


@cache
def _fields(model: type[BaseModel]) -> dict[str, Any]:
    """The fields of ``model`` by the key a user writes (the camelCase alias)."""
    return {f.alias or name: f for name, f in model.model_fields.items()}


def _model_at(path: Sequence[str | int]) -> type[BaseModel] | None:
    """The model class that holds the keys at ``path`` (list indexes are stepped through).

    Walking the pydantic fields is much cheaper than generating the JSON schema, and an
    error message only needs the valid keys and a field's description.
    """
    model: type[BaseModel] | None = LLMService
    for part in path:
        if isinstance(part, int):
            continue
        info = _fields(model).get(part) if model is not None else None
        if info is None:
            return None
        model = _model_in(info.annotation)
    return model


def _valid_keys(path: Sequence[str | int]) -> list[str]:
    model = _model_at(path)
    return sorted(_fields(model)) if model is not None else []


def _field_description(path: Sequence[str | int]) -> str | None:
    if not path or isinstance(path[-1], int):
        return None
    parent = _model_at(path[:-1])
    info = _fields(parent).get(path[-1]) if parent is not None else None
    desc = info.description if info is not None else None
    if not desc:
        return None
    return _FIRST_SENTENCE.split(desc, maxsplit=1)[0].rstrip(".")


# A sentence ends at '. ' before a capital letter; 'e.g. `x`' does not end one.
_FIRST_SENTENCE = re.compile(r"(?<!\be\.g)(?<!\bi\.e)\.\s+(?=[A-Z`])")


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


# Say what a pattern means instead of quoting the regular expression.
_PATTERN_PROBLEMS: dict[str, tuple[str, str]] = {
    QUANTITY_RE: ("a Kubernetes quantity", "write a quantity such as 8, 500m, 32Gi or 1.5Ti"),
    naming.DNS1123_LABEL_RE: (
        "a DNS-1123 label",
        "use lowercase letters, digits and '-', starting and ending with a letter or digit",
    ),
    r"^\d+(s|m|h)$": ("a duration", "write a duration such as 30s, 5m or 1h"),
    r"^\d+(s|m)$": ("a duration", "write a duration such as 15s or 1m"),
}


def _show(value: Any) -> str:
    """A value as the user wrote it in YAML (``null``, ``true``), not as Python prints it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def _describe(err: dict[str, Any]) -> tuple[str, str | None]:
    """A readable problem and hint for one pydantic error."""
    t = err["type"]
    ctx = err.get("ctx") or {}
    got = err.get("input")
    shown = _show(got)
    if t in {"int_parsing", "int_type", "int_from_float"}:
        return f"must be an integer (got {shown})", None
    if t in {"float_parsing", "float_type"}:
        return f"must be a number (got {shown})", None
    if t == "finite_number":  # .nan, .inf, 1e400 (models.py: allow_inf_nan=False)
        return f"must be a finite number (got {shown})", None
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
        known = _PATTERN_PROBLEMS.get(str(ctx.get("pattern")))
        if known is not None:
            return f"must be {known[0]} (got {shown})", known[1]
        return f"has an invalid format (got {shown})", f"it must match {ctx.get('pattern')}"
    if t == "string_too_short":
        return "must not be empty", None
    if t == "string_too_long":
        has = f" (has {len(got)})" if isinstance(got, str) else ""
        return f"must be at most {ctx.get('max_length')} characters{has}", None
    if t == "missing":
        return "is required", None
    if t == "value_error":
        msg = str(err.get("msg", "")).removeprefix("Value error, ")
        return msg, None
    return str(err.get("msg", "is invalid")), None


def _pydantic_diagnostics(v: Validated, exc: Any) -> list[Diagnostic]:
    # Group by path (a union reports one error per branch) and by whether the error is about
    # a mapping key itself (pydantic ends the loc of a dict-key error with '[key]').
    groups: dict[tuple[tuple[str | int, ...], bool], list[dict[str, Any]]] = {}
    for err in exc.errors(include_url=False):
        path = _real_path(v.merged, err["loc"])
        about_key = bool(err["loc"]) and err["loc"][-1] == "[key]"
        groups.setdefault((path, about_key), []).append(err)
    out = []
    for (path, about_key), errs in groups.items():
        name = camel_path(path) or "spec"
        leaf = str(path[-1]) if path and isinstance(path[-1], str) else name
        types = {e["type"] for e in errs}
        file, line, col = v.locate(path, key=about_key or "extra_forbidden" in types or "missing" in types)
        subject = leaf
        if about_key:
            subject = f"key {leaf!r}"
        elif len(path) >= 2 and isinstance(path[-1], str) and _model_at(path[:-1]) is None:
            # an entry of a free-form mapping such as metadata.labels: name the mapping too
            subject = f"{path[-2]}[{leaf!r}]" if isinstance(path[-2], str) else f"{leaf!r}"
        if "extra_forbidden" in types:
            valid = _valid_keys(path[:-1])
            close = close_matches(leaf, valid)
            hint = f"did you mean {close[0]!r}?" if close else (
                f"valid keys here: {', '.join(valid)}" if valid else "remove it")
            out.append(Diagnostic(Severity.ERROR, problems.UNKNOWN_KEY, f"unknown key {leaf!r}", hint,
                                  file, line, col, name))
            continue
        if "missing" in types:
            desc = _field_description(path)
            out.append(Diagnostic(Severity.ERROR, problems.MISSING_KEY, f"{leaf} is required", desc and f"{leaf}: {desc}",
                                  file, line, col, name))
            continue
        found = []
        hints = []
        for e in errs:
            p, h = _describe(e)
            if p not in found:
                found.append(p)
            if h and h not in hints:
                hints.append(h)
        if len(found) > 1:
            # A union (e.g. int or 'auto'): say what is accepted once.
            got = errs[0].get("input")
            accepted = []
            for e in errs:
                p, _ = _describe(e)
                accepted.append(p.split(" (got")[0].removeprefix("must be "))
            problem = f"must be {' or '.join(dict.fromkeys(accepted))} (got {_show(got)})"
        else:
            problem = found[0]
        desc = _field_description(path)
        hint = "; ".join(hints) or (f"{leaf}: {desc}" if desc else None)
        out.append(Diagnostic(Severity.ERROR, problems.BAD_VALUE, f"{subject} {problem}", hint, file, line, col, name))
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
        v.diagnostics.append(_err(doc, ("apiVersion",), problems.WRONG_API, f"apiVersion {what}",
                                  f"use `apiVersion: {API_VERSION}`", key=api is None))
    if kind != KIND:
        what = "missing" if kind is None else f"{kind!r} is not an llmdeploy spec"
        v.diagnostics.append(_err(doc, ("kind",), problems.WRONG_API, f"kind {what}", f"use `kind: {KIND}`",
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
        v.profile_builtin = profile in BUILTIN_PROFILES
        merged = deep_merge(pdoc.data, data)
    v.merged = merged
    try:
        v.spec = LLMService.model_validate(merged)
    except ValidationError as exc:
        v.diagnostics.extend(_pydantic_diagnostics(v, exc))
    return v
