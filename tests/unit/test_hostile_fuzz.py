"""A fuzz test over every spec field, through render (issue #19, item 7).

Every field of the spec models (found by walking ``spec/models.py``, so a new field is
fuzzed the day it is added) gets hostile values: non-finite and huge numbers, wrong types,
newlines, secret-shaped strings, long strings. Whatever the value, the whole pipeline
(validate, resolve, size, rules, plan, render, parse back, schema check) gives located
diagnostics or manifests, never an exception; and manifests it does produce hold no
NaN/Infinity and no secret-shaped string. Bounded: derandomized, a fixed number of
examples, seconds in the regular run.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import typing
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel
from ruamel.yaml import YAML

from llmdeploy.pipeline import analyze_all, render_documents
from llmdeploy.secrets import find_secrets
from llmdeploy.spec.loader import load_text
from llmdeploy.spec.models import LLMService

ROOT = Path(__file__).resolve().parents[2]
BASE = YAML(typ="safe").load((ROOT / "examples" / "llama-3.1-8b-l4.llmdeploy.yaml").read_text(encoding="utf-8"))


def _models_in(annotation: Any) -> list[tuple[str, type[BaseModel]]]:
    """(container, model) pairs inside an annotation: "" for the model itself, "list", "dict"."""
    origin = typing.get_origin(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [("", annotation)]
    out = []
    for arg in typing.get_args(annotation):
        for container, model in _models_in(arg):
            kind = "list" if origin is list else "dict" if origin is dict else container
            out.append((kind or container, model))
    return out


def field_paths(model: type[BaseModel], prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every field path of the spec (camelCase, list items as index 0, map entries as key "k")."""
    out = []
    for name, info in model.model_fields.items():
        path = (*prefix, info.alias or name)
        out.append(path)
        for container, sub in _models_in(info.annotation):
            inner = (*path, 0) if container == "list" else (*path, "k") if container == "dict" else path
            out.extend(field_paths(sub, inner))
    return sorted(set(out), key=str)


FIELDS = field_paths(LLMService)

HOSTILE = st.one_of(
    st.sampled_from([
        math.nan, math.inf, -math.inf, 1e308, -1e308, 10**30, -(10**30), 2**63, 0, -1, 0.0, 1e-300, True, None,
        "", " ", "a\nb: injected", "x\n", "---\nkind: Secret", "{{ 7 * 7 }}", "../../etc/passwd", "é☃🦙",
        "hf_" + "a" * 34, "https://u:pw12345678@h/x", "s3://b/m?X-Amz-Signature=abcdef123456", "--api_key=zz9Plural",
        "a" * 5000, "auto", "8Gi", "-1Gi", "1e400", ".nan", [], {}, [1, "a"], {"a": {"b": None}},
    ]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.text(max_size=40),
)


def put(data: Any, path: tuple[Any, ...], value: Any) -> Any:
    """``data`` with ``value`` at ``path``, creating the mappings and lists on the way."""
    data = json.loads(json.dumps(data))
    node = data
    for part, nxt in itertools.pairwise(path):
        child = node[part] if isinstance(node, list) else node.get(part)
        if isinstance(nxt, int):
            if not isinstance(child, list) or not child:
                child = [{}]
        elif not isinstance(child, dict):
            child = {}
        node[part] = child
        node = child
    node[path[-1]] = value
    return data


NON_FINITE = re.compile(r"(?<![A-Za-z_])(NaN|-?Infinity)(?![A-Za-z_])")


def _numbers(node: Any) -> list[float]:
    if isinstance(node, dict):
        return [n for v in node.values() for n in _numbers(v)]
    if isinstance(node, list):
        return [n for v in node for n in _numbers(v)]
    return [node] if isinstance(node, float) else []


def _strings(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [s for k, v in node.items() for s in (str(k), *_strings(v))]
    if isinstance(node, list):
        return [s for v in node for s in _strings(v)]
    return [node] if isinstance(node, str) else []


@settings(max_examples=250, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(path=st.sampled_from(FIELDS), value=HOSTILE)
def test_every_field_with_hostile_values_renders_or_diagnoses(path: tuple[Any, ...], value: Any) -> None:
    data = put(BASE, path, value)
    text = json.dumps(data, allow_nan=True)  # JSON is YAML; NaN/Infinity arrive as .nan-like floats
    text = text.replace("NaN", ".nan").replace("-Infinity", "-.inf").replace("Infinity", ".inf")
    docs, diags = load_text(text, "spec.yaml", ROOT / "examples")
    analyses = analyze_all(docs)
    result = render_documents(analyses)
    for d in [*diags, *result.diagnostics]:
        assert d.file and d.message and d.rule.startswith("LD"), d
    if result.docs:
        assert not any(d.is_error for d in result.diagnostics)
        for doc in result.docs:
            assert all(math.isfinite(n) for n in _numbers(doc.obj)), (path, value)
            for s in _strings(doc.obj):
                assert not find_secrets(s), (path, s)
                assert not NON_FINITE.search(s), (path, s)  # e.g. in the dashboard JSON
                assert "\x00" not in s


def test_the_field_walk_reaches_nested_and_list_fields() -> None:
    assert ("runtime", "env", 0, "value") in FIELDS
    assert ("scaling", "targetLoad", "requestsPerSecond") in FIELDS
    assert ("security", "allowSecretLike", 0, "reason") in FIELDS
    assert len(FIELDS) > 100


def test_escaped_surrogates_are_joined_or_refused() -> None:
    """Found by the fuzz test: JSON writes 🦙 as "\\ud83e\\udd99"; ruamel kept the two halves,
    and rendering ended in UnicodeEncodeError (exit 3). A pair is joined; a lone half is LD100."""
    text = json.dumps(put(BASE, ("metadata", "annotations", "k"), "🦙"))  # ensure_ascii: escapes
    assert "\\ud83e\\udd99" in text
    docs, diags = load_text(text, "spec.yaml", ROOT / "examples")
    assert not diags and docs[0].data["metadata"]["annotations"]["k"] == "🦙"
    result = render_documents(analyze_all(docs))
    assert result.docs and not any(d.is_error for d in result.diagnostics)
    lone = 'apiVersion: llmdeploy.dev/v1alpha1\nkind: LLMService\nmetadata:\n  name: "x\\ud800"\n'
    _, diags = load_text(lone, "spec.yaml", ROOT)
    assert [(d.rule, d.line) for d in diags] == [("LD100", 4)]
