"""`size`/`plan`/`validate -o json` against their published JSON Schemas (#18 item 5).

Real outputs of every example and of failing inputs validate against schemas/<command>-output
.schema.json, their verdict keys agree with the exit code, and the published files are the
ones `llmdeploy schema --for <command>` prints.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from conftest import EXAMPLES, ROOT, run_cli

from llmdeploy.schema import OUTPUTS, output_schema, output_schema_text

SCHEMAS = ROOT / "schemas"
EXAMPLE_FILES = sorted(str(p) for p in EXAMPLES.glob("*.llmdeploy.yaml"))
BROKEN = str(ROOT / "docs" / "examples" / "broken.llmdeploy.yaml")


@pytest.mark.parametrize("command", OUTPUTS)
def test_published_output_schemas_are_current(command: str) -> None:
    # Regenerate with: llmdeploy schema --for <command> --output-file schemas/<command>-output.schema.json
    published = (SCHEMAS / f"{command}-output.schema.json").read_text(encoding="utf-8")
    assert published == output_schema_text(command)
    jsonschema.Draft202012Validator.check_schema(output_schema(command))
    cli = run_cli("schema", "--for", command)
    assert (cli.returncode, cli.stdout) == (0, published)


def _check(command: str, *args: str, cwd: Path | None = None) -> tuple[int, object]:
    r = run_cli(command, *args, "-o", "json", cwd=cwd)
    assert r.returncode in (0, 1), r.stderr
    data = json.loads(r.stdout)
    jsonschema.validate(data, json.loads((SCHEMAS / f"{command}-output.schema.json").read_text(encoding="utf-8")))
    return r.returncode, data


def _passes(doc: dict) -> bool:  # type: ignore[type-arg]
    return bool(doc["valid"] and doc["fits"] and not doc["errors"])


SIZE_CASES = [(p,) for p in EXAMPLE_FILES] + [
    (BROKEN,),
    ("--model", "Qwen/Qwen2.5-72B-Instruct", "--gpu", "l4"),                      # does not fit
    ("--model", "meta-llama/Llama-3.1-8B-Instruct", "--gpu", "l4"),              # fits
    ("--model", "no-such/model", "--gpu", "l4"),                                  # unknown model
    ("--model", "meta-llama/Llama-3.1-8B-Instruct", "--gpu", "no-such-gpu"),      # unknown GPU
    ("--model", "microsoft/Phi-3-mini-4k-instruct", "--gpu", "l4", "--max-model-len", "8192"),  # LD206
]


@pytest.mark.parametrize("args", SIZE_CASES, ids=lambda a: Path(a[0]).name if len(a) == 1 else "-".join(a[1::2]))
def test_size_json_matches_its_schema_and_exit_code(args: tuple[str, ...]) -> None:
    code, data = _check("size", *args)
    docs = data if isinstance(data, list) else [data]
    assert (code == 0) == all(_passes(d) for d in docs)


PLAN_CASES = [
    ("--model", "Qwen/Qwen2.5-7B-Instruct", "--gpu", "l4"),
    ("--model", "meta-llama/Llama-3.1-70B-Instruct", "--gpu", "h100-sxm,a100-80gb", "--request-rate", "5"),
    ("--model", "meta-llama/Llama-3.1-405B-Instruct", "--gpu", "l4", "--max-model-len", "131072"),  # nothing fits
    ("--model", "no-such/model"),
    ("--model", "Qwen/Qwen2.5-7B-Instruct", "--gpu", "no-such-gpu"),
]


@pytest.mark.parametrize("args", PLAN_CASES, ids=lambda a: "-".join(a[1::2]))
def test_plan_json_matches_its_schema_and_exit_code(args: tuple[str, ...]) -> None:
    code, data = _check("plan", *args)
    assert isinstance(data, dict)
    assert (code == 0) == _passes(data)


@pytest.mark.parametrize("args", [(p,) for p in EXAMPLE_FILES] + [(BROKEN,), (BROKEN, EXAMPLE_FILES[0]),
                                                                  ("--strict", EXAMPLE_FILES[0]),
                                                                  (str(EXAMPLES),)],
                         ids=lambda a: "+".join(Path(x).name for x in a))
def test_validate_json_matches_its_schema_and_exit_code(args: tuple[str, ...]) -> None:
    code, data = _check("validate", *args)
    assert isinstance(data, dict)
    assert (code == 0) == data["valid"] == data["summary"]["valid"]
    assert len(data["errors"]) == data["summary"]["errors"]
    assert len(data["warnings"]) == data["summary"]["warnings"]

