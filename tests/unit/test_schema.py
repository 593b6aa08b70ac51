"""The generated JSON Schema: fresh, a valid Draft 2020-12 schema, and in agreement with the models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from ruamel.yaml import YAML
from typer.testing import CliRunner

from llmdeploy.cli import app
from llmdeploy.schema import HEADER, HEADER_KEY, schema_dict, schema_text

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_FILE = ROOT / "schemas" / "llmdeploy.schema.json"
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
VALID_CASES = sorted((ROOT / "tests" / "cases" / "valid").glob("*/spec.yaml"))


def yaml_documents(path: Path) -> list[Any]:
    return [d for d in YAML(typ="safe").load_all(path.read_text(encoding="utf-8")) if d is not None]


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json.loads(SCHEMA_FILE.read_text(encoding="utf-8")))


def test_checked_in_schema_is_not_stale() -> None:
    # Regenerate with: llmdeploy schema --output-file schemas/llmdeploy.schema.json
    assert SCHEMA_FILE.read_text(encoding="utf-8") == schema_text()


def test_schema_command_prints_the_same_text(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["schema"], catch_exceptions=False)
    assert result.exit_code == 0
    assert result.stdout == SCHEMA_FILE.read_text(encoding="utf-8")
    out = tmp_path / "sub" / "llmdeploy.schema.json"
    written = CliRunner().invoke(app, ["schema", "--output-file", str(out)], catch_exceptions=False)
    assert (written.exit_code, written.stdout) == (0, "")
    assert out.read_text(encoding="utf-8") == result.stdout
    assert out.stat().st_mode & 0o044  # readable by others, like a file the user writes


def test_header_comes_first_and_says_how_to_regenerate() -> None:
    text = SCHEMA_FILE.read_text(encoding="utf-8")
    assert text.startswith('{\n  "$comment": "Generated from the pydantic models')
    assert schema_dict()[HEADER_KEY] == HEADER
    assert "llmdeploy schema --output-file schemas/llmdeploy.schema.json" in HEADER


def test_is_a_valid_draft_2020_12_schema() -> None:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)
    assert jsonschema.validators.validator_for(schema) is jsonschema.Draft202012Validator
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) >= {"apiVersion", "kind", "metadata", "model", "resources"}


@pytest.mark.parametrize("example", EXAMPLES + VALID_CASES,
                         ids=[p.name for p in EXAMPLES] + [p.parent.name for p in VALID_CASES])
def test_examples_and_valid_cases_validate_against_the_schema(example: Path,
                                                              validator: jsonschema.Draft202012Validator) -> None:
    docs = yaml_documents(example)
    assert docs
    for doc in docs:
        errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(doc)]
        assert errors == []


@pytest.mark.parametrize(
    ("change", "path"),
    [
        (lambda d: d["runtime"].update(gpuMemoryUtilisation=0.9), ["runtime"]),
        (lambda d: d["runtime"].update(gpuMemoryUtilization=1.5), ["runtime", "gpuMemoryUtilization"]),
        (lambda d: d["runtime"].update(maxModelLen=0), ["runtime", "maxModelLen"]),
        (lambda d: d["resources"].update(cpu="4x"), ["resources", "cpu"]),
        (lambda d: d["metadata"].pop("name"), ["metadata"]),
        (lambda d: d.update(kind="InferenceService"), ["kind"]),
        (lambda d: d["scaling"].update(metric="gpuTemperature"), ["scaling", "metric"]),
    ],
    ids=["unknown-key", "above-maximum", "below-minimum", "quantity", "required", "const", "enum"],
)
def test_schema_rejects_what_the_models_reject(change: Any, path: list[str],
                                               validator: jsonschema.Draft202012Validator) -> None:
    doc = yaml_documents(ROOT / "examples" / "llama-3.1-8b-l4.llmdeploy.yaml")[0]
    change(doc)
    errors = list(validator.iter_errors(doc))
    assert [list(e.absolute_path) for e in errors] == [path]
