"""Machine-readable output is only machine-readable (#18 item 6): `render --diagnostics-format
json` writes one JSON document to stderr, whatever happens."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import EXAMPLES, ROOT

L4 = EXAMPLES / "llama-3.1-8b-l4.llmdeploy.yaml"


def render(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "llmdeploy", "render", *args, "--diagnostics-format", "json"],
                          check=False, capture_output=True, text=True, timeout=120, cwd=ROOT)


def test_success_stderr_is_one_json_document() -> None:
    proc = render(str(L4), "--explain")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stderr)  # no plain `note:` lines after it
    assert doc["summary"]["rendered"] is True and doc["summary"]["errors"] == 0
    assert any("not schema-checked" in n for n in doc["summary"]["notes"])
    assert any("effective pod" in n for n in doc["summary"]["notes"])
    assert proc.stdout.startswith("---")


def test_failure_stderr_is_one_json_document(tmp_path: Path) -> None:
    bad = tmp_path / "bad.llmdeploy.yaml"
    bad.write_text(L4.read_text(encoding="utf-8").replace("maxModelLen: 8192", "maxModelLen: 0"), encoding="utf-8")
    proc = render(str(bad))
    assert proc.returncode == 1 and proc.stdout == ""
    doc = json.loads(proc.stderr)
    assert doc["summary"]["rendered"] is False and doc["summary"]["errors"] >= 1
    assert doc["diagnostics"][0]["rule"].startswith("LD")
