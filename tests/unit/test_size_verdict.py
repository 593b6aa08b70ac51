"""``size`` says one thing everywhere (#18 item 6): the diagnostics, the verdict, the JSON
and the exit code agree; a closed pipe does not change the exit code; piped reports keep
each message on one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import EXAMPLES, ROOT, run_cli

PHI = (EXAMPLES / "phi-3-mini-hpa-cpu.llmdeploy.yaml").read_text(encoding="utf-8")
L4 = str(EXAMPLES / "llama-3.1-8b-l4.llmdeploy.yaml")


def _phi_spec(tmp_path: Path, *, allow_long: bool) -> str:
    """Phi-3-mini-4k (4,096 positions) asked for 8,192 tokens; optionally with vLLM's override."""
    text = PHI.replace("  maxModelLen: 4096\n", "  maxModelLen: 8192\n")
    if allow_long:
        text = text.replace("  maxModelLen: 8192\n",
                            "  maxModelLen: 8192\n  env:\n    - name: VLLM_ALLOW_LONG_MAX_MODEL_LEN\n      value: \"1\"\n")
    path = tmp_path / "phi.llmdeploy.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_ld206_is_an_error_in_every_view_without_the_override(tmp_path: Path) -> None:
    """Regression: the diagnostics said `error LD206`, the verdict `warning LD206`, the JSON
    `fits: true`, and the exit code was 1."""
    spec = _phi_spec(tmp_path, allow_long=False)
    table = run_cli("size", spec)
    assert table.returncode == 1
    assert "error LD206" in table.stderr
    assert "DOES NOT FIT" in table.stdout
    assert "error LD206" in table.stdout and "warning LD206" not in table.stdout
    as_json = run_cli("size", spec, "-o", "json")
    assert as_json.returncode == 1
    data = json.loads(as_json.stdout)
    assert data["fits"] is False
    assert [r["code"] for r in data["reasons"]].count("LD206") == 1
    assert "LD206" not in [w["code"] for w in data["warnings"]]
    check = run_cli("validate", spec, "-o", "json")
    assert check.returncode == 1
    assert [d["severity"] for d in json.loads(check.stdout)["diagnostics"] if d["rule"] == "LD206"] == ["error"]


def test_ld206_is_a_warning_in_every_view_with_the_override(tmp_path: Path) -> None:
    spec = _phi_spec(tmp_path, allow_long=True)
    table = run_cli("size", spec)
    assert table.returncode == 0, table.stdout + table.stderr
    assert "warning LD206" in table.stderr and "warning LD206" in table.stdout
    assert "error LD206" not in table.stdout + table.stderr
    data = json.loads(run_cli("size", spec, "-o", "json").stdout)
    assert data["fits"] is True
    assert "LD206" in [w["code"] for w in data["warnings"]]


def test_flags_only_size_beyond_the_positions_does_not_fit() -> None:
    r = run_cli("size", "--model", "microsoft/Phi-3-mini-4k-instruct", "--gpu", "l4", "--max-model-len", "8192",
                "-o", "json")
    assert r.returncode == 1
    assert json.loads(r.stdout)["fits"] is False


def _closed_pipe_exit(*args: str) -> int:
    """The exit code of llmdeploy when its reader has gone before it writes (`| grep -q`)."""
    proc = subprocess.Popen([sys.executable, "-m", "llmdeploy", *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    proc.stdout.close()
    return proc.wait(timeout=120)


@pytest.mark.parametrize("fmt", ["table", "json"])
def test_a_closed_pipe_keeps_the_verdict_as_exit_code(fmt: str) -> None:
    """Regression: `size spec | grep -q FITS` exited 1 (rich's broken-pipe exit), read as "does not fit"."""
    assert _closed_pipe_exit("size", L4, "-o", fmt) == 0
    assert _closed_pipe_exit("size", "--model", "Qwen/Qwen2.5-72B-Instruct", "--gpu", "l4", "-o", fmt) == 1


def test_a_closed_pipe_keeps_plan_and_catalog_at_exit_0() -> None:
    assert _closed_pipe_exit("plan", "--model", "Qwen/Qwen2.5-7B-Instruct", "--gpu", "l4") == 0
    assert _closed_pipe_exit("catalog", "models") == 0


def test_piped_reports_keep_each_message_on_one_line() -> None:
    """Regression: at the fixed pipe width the reasons wrapped, splitting `135.43 GiB` from its context."""
    r = run_cli("size", "--model", "Qwen/Qwen2.5-72B-Instruct", "--gpu", "l4", "-o", "json")
    reasons = json.loads(r.stdout)["reasons"]
    assert any(len(x["message"]) > 110 for x in reasons)
    table = run_cli("size", "--model", "Qwen/Qwen2.5-72B-Instruct", "--gpu", "l4")
    lines = table.stdout.splitlines()
    for x in reasons:
        assert any(x["message"] in line for line in lines), x["message"]
