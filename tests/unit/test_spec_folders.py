"""Folders of specs (#18 item 5): other tools' YAML beside the specs, and empty folders."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from conftest import EXAMPLES, ROOT

L4 = EXAMPLES / "llama-3.1-8b-l4.llmdeploy.yaml"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "llmdeploy", *args], check=False, capture_output=True, text=True,
                          timeout=120, cwd=ROOT)


def test_foreign_yaml_in_a_folder_is_not_taken_as_a_spec(tmp_path: Path) -> None:
    shutil.copy(L4, tmp_path / "llama.llmdeploy.yaml")
    (tmp_path / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [deploy.yaml]\n")
    (tmp_path / "deploy.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n---\n"
                                          "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: y}\n")
    proc = cli("validate", str(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 spec valid" in proc.stdout


def test_a_file_named_on_the_command_line_must_be_a_spec(tmp_path: Path) -> None:
    other = tmp_path / "deploy.yaml"
    other.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    proc = cli("validate", str(other))
    assert proc.returncode == 1 and "LD10" in proc.stdout + proc.stderr


def test_a_broken_spec_in_a_folder_is_still_reported(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(L4.read_text().replace("kind: LLMService", "kind: LLMServce"))
    proc = cli("validate", str(tmp_path))
    assert proc.returncode == 1, proc.stdout + proc.stderr


def test_an_empty_folder_fails_validate_like_render(tmp_path: Path) -> None:
    proc = cli("validate", str(tmp_path))
    assert proc.returncode == 1 and "no spec found" in proc.stderr
    assert cli("render", str(tmp_path)).returncode == 1
