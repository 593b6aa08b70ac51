"""The pre-commit hook declared in .pre-commit-hooks.yaml, run the way pre-commit runs it."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[2]
HOOKS = YAML(typ="safe").load((ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))

GOOD = (ROOT / "examples" / "llama-3.1-8b-l4.llmdeploy.yaml").read_text(encoding="utf-8")
BAD = GOOD.replace("  maxModelLen: 8192", "  maxModelLen: 0")
assert BAD != GOOD


def hook() -> dict[str, Any]:
    (h,) = [h for h in HOOKS if h["id"] == "llmdeploy-validate"]
    return h


def test_hook_declaration() -> None:
    h = hook()
    assert h["language"] == "python"
    assert h["entry"].split()[:2] == ["llmdeploy", "validate"]
    assert "yaml" in h["types"]
    assert h.get("pass_filenames", True) is True  # pre-commit passes the staged file names
    # One process sees every staged spec: LD109 (a service defined twice) must not depend on
    # how pre-commit would have split the files over parallel processes (#18).
    assert h["require_serial"] is True


@pytest.mark.parametrize("path", [
    "llmdeploy.yaml",
    "llmdeploy.yml",
    "svc.llmdeploy.yaml",
    "deploy/llama-3.1-8b.llmdeploy.yaml",
    "a/b/c/chat.llmdeploy.yml",
    "llmdeploy.prod.yaml",
    "specs/llmdeploy.eu-west.yaml",
])
def test_files_regex_matches_specs(path: str) -> None:
    assert re.search(hook()["files"], path)


@pytest.mark.parametrize("path", [
    "values.yaml",
    "deploy/kustomization.yaml",
    "llmdeploy.json",
    "llmdeploy.yaml.bak",
    "notllmdeploy.yaml",
    "profiles/production.yaml",
    "llmdeploy/config.yaml",
    ".github/workflows/llmdeploy.yml.txt",
])
def test_files_regex_skips_other_yaml(path: str) -> None:
    assert not re.search(hook()["files"], path)


def entry_command() -> list[str]:
    """The hook's entry with its executable resolved in the environment running the tests."""
    args = shlex.split(hook()["entry"])
    exe = Path(sys.executable).parent / args[0]
    assert exe.exists(), f"{exe}: llmdeploy is not installed next to {sys.executable}"
    return [str(exe), *args[1:], *hook().get("args", [])]


def run_hook(cwd: Path, files: list[str]) -> subprocess.CompletedProcess[str]:
    # pre-commit runs `entry [args] file1 file2 ...` from the repository root, in one call per batch.
    env = {**os.environ, "KUBECONFIG": "/nonexistent"}
    env.pop("GITHUB_ACTIONS", None)
    return subprocess.run([*entry_command(), *files], cwd=cwd, capture_output=True, text=True, env=env,
                          timeout=120, check=False)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    files = {
        "services/chat.llmdeploy.yaml": GOOD,
        "services/embed.llmdeploy.yaml": GOOD.replace("name: llama-3-1-8b", "name: embed"),
        "services/eu/llmdeploy.yaml": GOOD.replace("namespace: inference", "namespace: inference-eu"),
        "services/broken.llmdeploy.yaml": BAD.replace("name: llama-3-1-8b", "name: broken"),
    }
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text, encoding="utf-8")
    return tmp_path


GOOD_FILES = ["services/chat.llmdeploy.yaml", "services/embed.llmdeploy.yaml", "services/eu/llmdeploy.yaml"]


def test_hook_passes_when_every_file_is_valid(repo: Path) -> None:
    assert all(re.search(hook()["files"], f) for f in GOOD_FILES)
    result = run_hook(repo, GOOD_FILES)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == "✓ 3 specs valid\n"


def test_hook_fails_when_one_file_is_bad(repo: Path) -> None:
    before = {p: p.read_bytes() for p in repo.rglob("*") if p.is_file()}
    result = run_hook(repo, [*GOOD_FILES, "services/broken.llmdeploy.yaml"])
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    line = BAD.splitlines().index("  maxModelLen: 0") + 1
    assert lines[0].startswith(f"services/broken.llmdeploy.yaml:{line}:16: error LD104 maxModelLen must be")
    assert lines[-1] == "✗ 4 specs: 1 error(s), 0 warning(s)"
    # a hook must never modify files (pre-commit would report them as changed)
    assert {p: p.read_bytes() for p in repo.rglob("*") if p.is_file()} == before
