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


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "llmdeploy", *args], check=False, capture_output=True, text=True,
                          timeout=120, cwd=ROOT)


def test_size_json_reports_an_input_error_as_json() -> None:
    """Regression: `size --format json` printed nothing on stdout for an unknown GPU."""
    proc = _cli("size", "--model", "meta-llama/Llama-3.1-8B-Instruct", "--gpu", "no-such-gpu", "--format", "json")
    assert proc.returncode == 1 and "unknown GPU type" in proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["valid"] is False and doc["fits"] is False and "unknown GPU type" in doc["errors"][0]["message"]


def test_piped_catalog_tables_never_cut_the_ids() -> None:
    """Regression: piped `catalog models` truncated the ids (the column users copy) with '…'."""
    from llmdeploy.catalog import gpus, models

    out = _cli("catalog", "models").stdout
    assert "…" not in out
    assert all(m.hf_id in out for m in models().values())
    gout = _cli("catalog", "gpus").stdout
    assert "…" not in gout and all(k in gout for k in gpus())
