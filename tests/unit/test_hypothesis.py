"""Property tests: no input makes the loader, `analyze` or the CLI raise.

Whatever the YAML text, and whatever value lands at whatever path of a real spec, the
result is diagnostics (or a valid spec), each naming its file and, for problems found
while reading the YAML or checking its shape, a line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML
from typer.testing import CliRunner

from llmdeploy.cli import app
from llmdeploy.diagnostics import Diagnostic
from llmdeploy.pipeline import analyze_all
from llmdeploy.spec.loader import load_text

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
BASES = [YAML(typ="safe").load(p.read_text(encoding="utf-8")) for p in EXAMPLES]

# Problems found while reading YAML or checking the document's shape always have a line.
LOCATED_RULES = {"LD100", "LD101", "LD102", "LD103", "LD104", "LD105", "LD106", "LD107"}

SETTINGS = settings(max_examples=150, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


def check_diagnostics(diags: list[Diagnostic], file: str) -> None:
    for d in diags:
        assert d.file, d
        assert d.message, d
        assert d.rule.startswith("LD"), d
        if d.rule in LOCATED_RULES and d.file == file:
            assert d.line > 0 and d.col > 0, d


def run_all(text: str, file: str = "spec.yaml") -> list[Diagnostic]:
    docs, diags = load_text(text, file, ROOT / "examples")
    check_diagnostics(diags, file)
    out = list(diags)
    for a in analyze_all(docs):
        check_diagnostics(a.diagnostics, file)
        out += a.diagnostics
    return out


# --------------------------------------------------------------------------- arbitrary YAML text

YAML_BITS = st.sampled_from([
    "\n", " ", "  ", "\t", ":", ": ", "- ", "-", "---\n", "...\n", "#", "&a ", "*a", "<<: ", "!!str ", "!x ",
    "? ", "{", "}", "[", "]", ",", "'", '"', "|\n", ">-\n", "%YAML 1.2\n", "\\", "\ufeff", "\x00", "\x85",
    "apiVersion: llmdeploy.dev/v1alpha1\n", "kind: LLMService\n", "metadata:\n  name: a\n", "name", "1e9",
    "null", "~", "yes", "0x1F", "2024-01-01", "\u2028", "é", "🦙",
])
YAML_TEXT = st.one_of(
    st.text(max_size=200),
    st.lists(YAML_BITS | st.text(max_size=8), max_size=60).map("".join),
)


@SETTINGS
@given(text=YAML_TEXT)
def test_arbitrary_text_gives_diagnostics_not_exceptions(text: str) -> None:
    run_all(text)


# --------------------------------------------------------------------------- values at random paths

SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30),
    st.sampled_from(["auto", "hf://a/b", "s3://", "--swap-space", "hf_" + "a" * 30, "8Gi", "4x", "0", "-1",
                     "none", "production", "../../etc/passwd", "a" * 300]),
)
VALUES = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += paths(v, (*prefix, i))
    return out


@st.composite
def mutated_specs(draw: st.DrawFn) -> tuple[str, Any]:
    base = draw(st.sampled_from(BASES))
    data = json.loads(json.dumps(base))
    path = draw(st.sampled_from(paths(data)))
    new_key = draw(st.none() | st.sampled_from(["", "extra", "maxModelLen", "count", "profile", "password"]))
    value = draw(VALUES)
    parent = data
    for part in path[:-1]:
        parent = parent[part]
    if new_key is not None and isinstance(parent[path[-1]], dict):
        parent[path[-1]][new_key] = value        # add a key below the path
    else:
        parent[path[-1]] = value                 # replace the value at the path
    return draw(st.sampled_from(["json", "yaml"])), data


def dump(fmt: str, data: Any) -> str:
    if fmt == "json":
        return json.dumps(data, ensure_ascii=True)
    import io

    out = io.StringIO()
    YAML(typ="safe", pure=True).dump(data, out)
    return out.getvalue()


@SETTINGS
@given(case=mutated_specs())
def test_any_value_anywhere_in_a_spec_gives_diagnostics_not_exceptions(case: tuple[str, Any]) -> None:
    fmt, data = case
    run_all(dump(fmt, data))


@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(case=mutated_specs())
def test_the_cli_exits_0_or_1_on_any_spec(case: tuple[str, Any]) -> None:
    fmt, data = case
    result = CliRunner().invoke(app, ["validate", "--format", "json", "-"], input=dump(fmt, data),
                                catch_exceptions=False)
    assert result.exit_code in (0, 1), result.stdout
    payload = json.loads(result.stdout)
    assert payload["summary"]["valid"] is (result.exit_code == 0)
