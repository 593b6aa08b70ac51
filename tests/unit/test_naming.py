"""The Kubernetes name rules: one place (``llmdeploy.naming``), anchored at the very end.

Python's ``$`` also matches before a trailing newline, so ``"search\\n"`` passed every
``re.match(r"...$")`` check: validate said the spec was fine and render then failed its
own schema check (exit 3, "a bug in llmdeploy's templates"), or the newline reached
``image:`` / ``storageUri:``. Each value below ends in a newline and must be refused
where the user wrote it.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from llmdeploy import naming
from llmdeploy.pipeline import analyze_all, load_specs

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "llama-3.1-8b-l4.llmdeploy.yaml"


@pytest.mark.parametrize(
    ("check", "value"),
    [
        (naming.label_value_problem, "search\n"),
        (naming.label_key_problem, "team\n"),
        (naming.label_key_problem, "example.com\n/team"),
        (naming.dns1035_problem, "llama\n"),
    ],
)
def test_a_trailing_newline_is_not_a_valid_name(check, value: str) -> None:  # type: ignore[no-untyped-def]
    assert check(value) is not None


def test_a_trailing_newline_is_not_a_subdomain() -> None:
    assert not naming.is_dns1123_subdomain("example.com\n")


@pytest.mark.parametrize(
    ("old", "new", "rule"),
    [
        ("    team: search", '    team: "search\\n"', "LD104"),
        ("  storageUri: hf://meta-llama/Llama-3.1-8B-Instruct",
         '  storageUri: "hf://meta-llama/Llama-3.1-8B-Instruct\\n"', "LD112"),
    ],
)
def test_validate_refuses_what_render_would_refuse(tmp_path: Path, old: str, new: str, rule: str) -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    assert old in text
    spec = tmp_path / "s.llmdeploy.yaml"
    spec.write_text(text.replace(old, new), encoding="utf-8")
    docs, problems = load_specs([str(spec)])
    assert problems == []
    (analysis,) = analyze_all(docs)
    assert [d.rule for d in analysis.diagnostics if d.is_error] == [rule]


def _compiled_patterns() -> list[tuple[str, int, str]]:
    found = []
    for path in sorted((ROOT / "src" / "llmdeploy").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "re"
                    and node.func.attr in {"compile", "match", "fullmatch", "search"}
                    and node.args and isinstance(node.args[0], ast.Constant)
                    and isinstance(node.args[0].value, str)):
                found.append((str(path.relative_to(ROOT)), node.lineno, node.args[0].value))
    return found


def test_no_python_pattern_ends_in_a_dollar() -> None:
    """Patterns run by Python's ``re`` end in ``\\Z`` (or are used with ``fullmatch``), never ``$``."""
    patterns = _compiled_patterns()
    assert len(patterns) > 10
    offenders = [f"{f}:{line}: {p!r}" for f, line, p in patterns if re.search(r"(?<!\\)\$\)?\Z", p)]
    assert offenders == []
