"""Diagnostics: the model, sorting, and the text / json / github reporters."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llmdeploy.cli import app
from llmdeploy.diagnostics import (
    Diagnostic,
    Severity,
    format_github,
    format_json,
    format_text,
    resolve_format,
    sort_diagnostics,
)

E = Severity.ERROR
W = Severity.WARNING
INFO = Severity.INFO


def diag(sev: Severity = E, rule: str = "LD104", msg: str = "maxModelLen must be a positive integer (got 0)",
         hint: str | None = "set it", file: str = "spec.yaml", line: int = 12, col: int = 5,
         path: str = "runtime.maxModelLen") -> Diagnostic:
    return Diagnostic(sev, rule, msg, hint, file, line, col, path)


# --------------------------------------------------------------------------- text


def test_text_line_shape() -> None:
    assert format_text([diag()]) == (
        "spec.yaml:12:5: error LD104 maxModelLen must be a positive integer (got 0) (hint: set it)\n"
    )
    assert format_text([diag(W, "LD404", "no token", None)]) == "spec.yaml:12:5: warning LD404 no token\n"
    assert format_text([]) == ""


def test_text_without_a_position_names_only_the_file() -> None:
    assert format_text([diag(line=0, col=0, msg="file not found", hint=None)]) == (
        "spec.yaml: error LD104 file not found\n"
    )
    assert diag(file="", line=0).location() == "<input>"


def test_sort_orders_by_file_line_col_severity_and_drops_duplicates() -> None:
    a = diag(W, "LD404", line=3, col=1)
    b = diag(E, "LD104", line=3, col=1)
    c = diag(E, "LD105", line=2, col=9)
    d = diag(file="a.yaml", line=50)
    assert sort_diagnostics([a, b, c, d, b]) == [d, c, b, a]


def test_is_error() -> None:
    assert diag(E).is_error
    assert not diag(W).is_error
    assert not diag(INFO).is_error


# --------------------------------------------------------------------------- json


def test_json_payload() -> None:
    payload = json.loads(format_json([diag(), diag(W, "LD404", hint=None)], {"specs": 1, "errors": 1}))
    assert payload["summary"] == {"specs": 1, "errors": 1}
    assert payload["diagnostics"][0] == {
        "severity": "error", "rule": "LD104", "message": "maxModelLen must be a positive integer (got 0)",
        "hint": "set it", "file": "spec.yaml", "line": 12, "col": 5, "path": "runtime.maxModelLen",
    }
    assert payload["diagnostics"][1]["hint"] is None
    assert "summary" not in json.loads(format_json([]))


def test_json_extra_is_not_serialized() -> None:
    d = Diagnostic(E, "LD201", "does not fit", None, "s.yaml", 1, 1, "", {"need_gib": 80.5})
    assert "extra" not in json.loads(format_json([d]))["diagnostics"][0]


# --------------------------------------------------------------------------- github


def test_github_workflow_commands() -> None:
    out = format_github([diag(), diag(W, "LD404", "no token", None, line=8, col=15), diag(INFO, "LD999", "fyi", None)])
    assert out.splitlines() == [
        "::error file=spec.yaml,line=12,col=5,title=LD104::maxModelLen must be a positive integer (got 0) (hint: set it)",
        "::warning file=spec.yaml,line=8,col=15,title=LD404::no token",
        "::notice file=spec.yaml,line=12,col=5,title=LD999::fyi",
    ]


def test_github_escaping() -> None:
    # https://github.com/actions/toolkit/blob/main/packages/core/src/command.ts
    d = diag(msg="100% sure\r\nsecond line: a, b", hint=None, file="dir,1/odd:name%.yaml")
    (line,) = format_github([d]).splitlines()
    assert line == (
        "::error file=dir%2C1/odd%3Aname%25.yaml,line=12,col=5,title=LD104::"
        "100%25 sure%0D%0Asecond line: a, b"
    )


def test_github_without_a_position() -> None:
    assert format_github([diag(line=0, col=0, hint=None, msg="x")]) == "::error file=spec.yaml,title=LD104::x\n"


# --------------------------------------------------------------------------- format selection


def test_auto_format_follows_github_actions(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_format("auto") == "text"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    assert resolve_format("auto") == "github"
    assert resolve_format("text") == "text"
    assert resolve_format("json") == "json"
    monkeypatch.setenv("GITHUB_ACTIONS", "false")
    assert resolve_format("auto") == "text"


BAD = """\
apiVersion: llmdeploy.dev/v1alpha1
kind: LLMService
metadata:
  name: chat
model:
  id: meta-llama/Llama-3.1-8B-Instruct
  storageUri: hf://meta-llama/Llama-3.1-8B-Instruct
runtime:
  maxModelLen: 0
resources:
  gpu:
    type: a100-80gb
"""


@pytest.fixture
def bad_spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "bad.yaml").write_text(BAD, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return "bad.yaml"


def test_cli_auto_format_is_github_under_actions(bad_spec: str) -> None:
    result = CliRunner().invoke(app, ["validate", bad_spec], env={"GITHUB_ACTIONS": "true"})
    assert result.exit_code == 1
    first = result.stdout.splitlines()[0]
    assert first.startswith("::error file=bad.yaml,line=9,col=16,title=LD104::maxModelLen must be a positive")
    # an explicit format wins
    result = CliRunner().invoke(app, ["validate", "--format", "text", bad_spec], env={"GITHUB_ACTIONS": "true"})
    assert result.stdout.startswith("bad.yaml:9:16: error LD104 ")


def test_cli_json_format_is_one_document(bad_spec: str) -> None:
    result = CliRunner().invoke(app, ["validate", "--format", "json", bad_spec])
    assert result.exit_code == 1
    payload = json.loads(result.stdout)  # no summary line after the JSON
    assert payload["summary"] == {"specs": 1, "errors": 1, "warnings": 0, "valid": False}
    assert [(d["file"], d["line"], d["col"], d["rule"]) for d in payload["diagnostics"]] == [
        ("bad.yaml", 9, 16, "LD104"),
    ]
