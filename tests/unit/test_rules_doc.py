"""The rule registry and the generated reference pages (docs/rules.md, docs/spec.md)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from llmdeploy import docgen
from llmdeploy.rules import RULES, load_all
from llmdeploy.spec.models import LLMService

ROOT = Path(__file__).resolve().parents[2]
CASES = ROOT / "tests" / "cases"

# The modules of each id family (LD3xx: scaling, and the rollout rules LD311-LD315 beside them).
CATEGORY_MODULE = {"1": ("spec",), "2": ("sizing",), "3": ("scaling", "rollout"), "4": ("security",),
                   "5": ("monitoring",), "6": ("runtime",), "7": ("llmisvc", "disagg"), "8": ("topology", "disagg")}


def rule_ids() -> list[str]:
    try:
        load_all()
    except Exception:  # noqa: BLE001 - each test calls load_all() again and fails with the cause
        return ["registry-did-not-load"]
    return sorted(RULES)


def test_rules_md_is_not_stale() -> None:
    # Regenerate with: llmdeploy docs --write
    assert (ROOT / docgen.RULES_PAGE).read_text(encoding="utf-8") == docgen.rules_markdown()


def test_spec_md_is_not_stale() -> None:
    # Regenerate with: llmdeploy docs --write
    assert (ROOT / docgen.SPEC_PAGE).read_text(encoding="utf-8") == docgen.spec_markdown()


def test_stale_pages_are_detected(tmp_path: Path) -> None:
    assert docgen.stale_pages(ROOT) == []
    assert docgen.stale_pages(tmp_path) == [docgen.RULES_PAGE, docgen.SPEC_PAGE]
    assert docgen.write_pages(tmp_path) == [docgen.RULES_PAGE, docgen.SPEC_PAGE]
    assert docgen.write_pages(tmp_path) == []
    assert docgen.stale_pages(tmp_path) == []


@pytest.mark.parametrize("rule_id", rule_ids())
def test_every_rule_is_documented_and_well_named(rule_id: str) -> None:
    load_all()
    r = RULES[rule_id]
    assert re.fullmatch(r"LD[1-8]\d\d", r.id)
    assert r.title and not r.title.endswith(".")
    assert r.title[0].isupper() or r.title[0] in "`"
    assert len(r.doc.splitlines()) >= 3, f"{rule_id}: say more than the title (why, and how to fix it)"
    assert r.stage in docgen.STAGES
    if r.check is not None:
        assert r.check.__doc__, f"{rule_id}: the docstring is the documentation"
        module = r.check.__module__.rsplit(".", 1)[-1]
        assert module in CATEGORY_MODULE[r.id[2]], f"{rule_id} lives in rules/{module}.py"


@pytest.mark.parametrize("rule_id", rule_ids())
def test_every_rule_is_in_rules_md(rule_id: str) -> None:
    load_all()
    text = (ROOT / docgen.RULES_PAGE).read_text(encoding="utf-8")
    assert f"\n### {rule_id}\n" in text
    assert f"| [{rule_id}](#{rule_id.lower()}) |" in text


def test_docstring_examples_are_valid_yaml() -> None:
    load_all()
    checked = 0
    for r in RULES.values():
        if r.stage == "load":
            continue  # their examples are broken YAML on purpose
        for block in re.findall(r"```yaml\n(.*?)```", docgen._rst_to_markdown(r.doc), flags=re.DOTALL):
            YAML(typ="safe").load(block)
            checked += 1
    assert checked >= 5


def test_every_rule_id_a_case_expects_is_registered() -> None:
    load_all()
    used = set()
    for expected in CASES.glob("*/*/expected.txt"):
        used |= set(re.findall(r" (LD\d{3}) ", expected.read_text(encoding="utf-8")))
    assert used
    assert used - set(RULES) == set()


def test_rst_to_markdown() -> None:
    body = "Use ``x`` here.\n\nFails::\n\n    a:\n      b: 1\n\nPasses::\n\n    a: {}\n"
    assert docgen._rst_to_markdown(body) == (
        "Use `x` here.\n\nFails:\n\n```yaml\na:\n  b: 1\n```\n\nPasses:\n\n```yaml\na: {}\n```\n"
    )


def field_paths(model: type, prefix: str = "") -> set[str]:
    from llmdeploy.docgen import _sub_model

    out = set()
    for name, info in model.model_fields.items():
        path = f"{prefix}.{info.alias or name}" if prefix else (info.alias or name)
        out.add(path)
        sub = _sub_model(info.annotation)
        if sub is not None:
            out |= field_paths(sub[0], path + ("[]" if sub[1] else ""))
    return out


def test_spec_md_lists_every_field() -> None:
    text = (ROOT / docgen.SPEC_PAGE).read_text(encoding="utf-8")
    rows = set(re.findall(r"^\| `([^`]+)` \|", text, flags=re.MULTILINE))
    assert rows == field_paths(LLMService)
    assert "| `metadata.name` | string (at most 63 characters) | **required** |" in text
    assert "| `runtime.maxModelLen` | integer (≥ 1, ≤ 10000000) | `8192` |" in text
