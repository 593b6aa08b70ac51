"""Shell completion: `llmdeploy completion SHELL` and the completion protocol, in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import ROOT

EXE = [sys.executable, "-m", "llmdeploy"]


def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*EXE, *args], check=False, capture_output=True, text=True, timeout=60, cwd=ROOT,
                          env={**os.environ, **env})


@pytest.mark.parametrize(("shell", "marker"), [("bash", "complete -o default -F _llmdeploy_completion llmdeploy"),
                                               ("zsh", "#compdef llmdeploy"), ("fish", "complete --command llmdeploy")])
def test_completion_prints_the_script(shell: str, marker: str) -> None:
    proc = run("completion", shell)
    assert proc.returncode == 0, proc.stderr
    assert marker in proc.stdout and "_LLMDEPLOY_COMPLETE" in proc.stdout


def test_unknown_shell_is_a_usage_error() -> None:
    proc = run("completion", "tcsh")
    assert proc.returncode == 2 and "bash, zsh, fish" in proc.stderr and not proc.stdout


def _complete(shell: str, words: str) -> list[str]:
    # What the scripts above send back: `python -m llmdeploy` reads the same variables.
    if shell == "bash":
        n = len(words.split()) - (0 if words.endswith(" ") else 1)
        proc = run(_LLMDEPLOY_COMPLETE="complete_bash", COMP_WORDS=words, COMP_CWORD=str(n))
    else:
        extra = {"_TYPER_COMPLETE_FISH_ACTION": "get-args"} if shell == "fish" else {}
        proc = run(_LLMDEPLOY_COMPLETE=f"complete_{shell}", _TYPER_COMPLETE_ARGS=words, **extra)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split("\n")


def test_commands_complete_from_the_real_command_tree() -> None:
    assert "render" in _complete("bash", "llmdeploy ren")
    fish = "\n".join(_complete("fish", "llmdeploy s"))
    assert "schema" in fish and "size" in fish
    zsh = "\n".join(_complete("zsh", "llmdeploy render --for"))
    assert "--format" in zsh
