"""The entry point: the fast path for plain validate/render lines, and the quick exit.

The fast path must be invisible: its option tables match the typer commands, and every
command line gives the same exit code, stdout, stderr and files whichever way it runs.
"""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import EXAMPLES, ROOT, SHARED_CRDS, run_cli

from llmdeploy import cli_render, cli_validate
from llmdeploy.entry import FAST_COMMANDS, parse_fast

EXAMPLE = str(EXAMPLES / "llama-3.1-8b-l4.llmdeploy.yaml")


# --------------------------------------------------------------------------- the parser


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["validate", "a.yaml"], {"paths": ["a.yaml"]}),
        (["validate", "-q", "a.yaml", "--strict", "b.yaml"], {"paths": ["a.yaml", "b.yaml"], "quiet": True,
                                                             "strict": True}),
        (["validate", "--format", "json", "-"], {"paths": ["-"], "fmt": "json"}),
        (["validate", "--format=github", "-f", "text", "a.yaml"], {"paths": ["a.yaml"], "fmt": "text"}),
        (["validate", "--", "--strict"], {"paths": ["--strict"]}),
        (["render", "a.yaml", "--crds", "x", "--crds=y", "--output-dir", "out", "--only", "isvc", "-o", "json"],
         {"paths": ["a.yaml"], "crds": ["x", "y"], "output_dir": "out", "only": "isvc", "out_format": "json"}),
        (["render", "--kubernetes-version", "1.31", "--diagnostics-format", "json", "--explain", "a.yaml"],
         {"paths": ["a.yaml"], "kubernetes_version": "1.31", "diag_format": "json", "explain": True}),
    ],
)
def test_plain_lines_take_the_fast_path(argv: list[str], expected: dict[str, object]) -> None:
    parsed = parse_fast(argv)
    assert parsed is not None
    assert parsed[1] == expected


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["size", "a.yaml"],                      # not a fast command
        ["validate"],                            # no path: typer reports the missing argument
        ["validate", "--help", "a.yaml"],
        ["validate", "-h"],
        ["validate", "--no-such-option", "a.yaml"],
        ["validate", "-qf", "json", "a.yaml"],   # bundled short options
        ["validate", "-f=json", "a.yaml"],       # click reads "=json" as the value
        ["validate", "a.yaml", "--format"],      # a missing value
        ["validate", "--strict=yes", "a.yaml"],  # a value on a flag
        ["render", "a.yaml", "--output-dir"],
        ["--version"],
    ],
)
def test_anything_else_goes_to_typer(argv: list[str]) -> None:
    assert parse_fast(argv) is None


# --------------------------------------------------------------------------- the tables match typer


def _click_command(name: str):  # type: ignore[no-untyped-def]
    import typer

    from llmdeploy.cli import app

    group = typer.main.get_command(app)
    return group.commands[name]  # type: ignore[attr-defined]


@pytest.mark.parametrize("command", sorted(FAST_COMMANDS))
def test_option_tables_match_the_typer_commands(command: str) -> None:
    module, table = FAST_COMMANDS[command]
    click_cmd = _click_command(command)
    seen: dict[str, tuple[str, str]] = {}
    arguments = []
    for param in click_cmd.params:
        if param.param_type_name == "argument":
            arguments.append(param.name)
            continue
        kind = "flag" if param.is_flag else ("multi" if param.multiple else "value")
        for opt in param.opts:
            seen[opt] = (param.name, kind)
    assert arguments == ["paths"]
    assert seen == table, "entry.py's option table drifted from the typer command"
    # run() takes every option with typer's default.
    run = {"llmdeploy.cli_validate": cli_validate.run, "llmdeploy.cli_render": cli_render.run}[module]
    sig = inspect.signature(run)
    for param in click_cmd.params:
        if param.param_type_name == "argument":
            continue
        default = param.default if param.default not in ((), []) else None
        assert sig.parameters[param.name].default == default, param.name


# --------------------------------------------------------------------------- both ways give the same result


GOOD = (EXAMPLES / "llama-3.1-8b-l4.llmdeploy.yaml").read_text(encoding="utf-8")


def _run_both(args: list[str], cwd: Path, stdin: str | None = None) -> tuple[subprocess.CompletedProcess[str], ...]:
    fast = run_cli(*args, cwd=cwd, stdin=stdin)
    slow = run_cli(*args, cwd=cwd, stdin=stdin, env={"LLMDEPLOY_NO_FAST_PATH": "1"})
    return fast, slow


@pytest.mark.parametrize(
    "args",
    [
        ["validate", "spec.yaml"],
        ["validate", "-q", "spec.yaml"],
        ["validate", "--format", "json", "spec.yaml", "bad.yaml"],
        ["validate", "--format=github", "bad.yaml"],
        ["validate", "-f", "text", "--strict", "spec.yaml"],
        ["validate", "--show-resolved", "spec.yaml"],
        ["validate", "missing.yaml"],
        ["validate", "--format", "xml", "spec.yaml"],
        ["render", "spec.yaml"],
        ["render", "--format", "json", "--only", "isvc,pdb", "--explain", "spec.yaml"],
        ["render", "bad.yaml"],
        ["render", "--only", "nothing-matches", "spec.yaml"],
        ["render", "--kubernetes-version", "0.1", "spec.yaml"],
        ["render", "--crds", "no-such-dir", "spec.yaml"],
    ],
    ids=lambda a: " ".join(a),
)
def test_fast_and_typer_paths_agree(tmp_path: Path, args: list[str]) -> None:
    (tmp_path / "spec.yaml").write_text(GOOD, encoding="utf-8")
    (tmp_path / "bad.yaml").write_text(GOOD.replace("apiVersion: llmdeploy.dev/v1alpha1",
                                                    "apiVersion: llmdeploy.dev/v1alpha1\nbogusKey: 1"),
                                       encoding="utf-8")
    fast, slow = _run_both(args, tmp_path)
    assert (fast.returncode, fast.stdout, fast.stderr) == (slow.returncode, slow.stdout, slow.stderr)


def test_fast_and_typer_paths_agree_on_stdin_and_output_dirs(tmp_path: Path) -> None:
    fast, slow = _run_both(["validate", "-"], tmp_path, stdin=GOOD)
    assert (fast.returncode, fast.stdout, fast.stderr) == (slow.returncode, slow.stdout, slow.stderr) == \
        (0, "✓ 1 spec valid\n", "")
    (tmp_path / "spec.yaml").write_text(GOOD, encoding="utf-8")
    a = run_cli("render", "spec.yaml", "--output-dir", "fast", cwd=tmp_path)
    b = run_cli("render", "spec.yaml", "--output-dir", "slow", cwd=tmp_path, env={"LLMDEPLOY_NO_FAST_PATH": "1"})
    assert a.returncode == b.returncode == 0
    files = {p.relative_to(tmp_path / "fast").as_posix(): p.read_bytes()
             for p in sorted((tmp_path / "fast").rglob("*")) if p.is_file()}
    assert files
    assert files == {p.relative_to(tmp_path / "slow").as_posix(): p.read_bytes()
                     for p in sorted((tmp_path / "slow").rglob("*")) if p.is_file()}


@pytest.mark.skipif(not SHARED_CRDS.is_dir(), reason=f"upstream CRDs not found at {SHARED_CRDS}")
def test_fast_path_with_crds_matches(tmp_path: Path) -> None:
    args = ["render", "--crds", str(SHARED_CRDS), EXAMPLE]
    fast, slow = _run_both(args, tmp_path)
    assert fast.returncode == 0, fast.stderr
    assert (fast.returncode, fast.stdout, fast.stderr) == (slow.returncode, slow.stdout, slow.stderr)


# --------------------------------------------------------------------------- what the fast path skips


def _imported(args: list[str], env: dict[str, str] | None = None) -> set[str]:
    result = run_cli(*args, env={"PYTHONPROFILEIMPORTTIME": "1", **(env or {})})
    assert result.returncode == 0, result.stderr
    return {line.split("|")[-1].strip() for line in result.stderr.splitlines() if "|" in line}


def test_fast_path_does_not_import_typer() -> None:
    assert not {m for m in _imported(["validate", EXAMPLE]) if m.split(".")[0] in {"typer", "click", "rich"}}
    assert "typer" in _imported(["validate", EXAMPLE], env={"LLMDEPLOY_NO_FAST_PATH": "1"})


# --------------------------------------------------------------------------- the quick exit


def _many_specs(root: Path, n: int = 5) -> Path:
    many = root / "many"
    many.mkdir()
    for i in range(n):
        (many / f"s{i}.yaml").write_text(GOOD.replace("name: llama-3-1-8b", f"name: llama-{i}"), encoding="utf-8")
    return many


def test_a_closed_pipe_is_not_an_error(tmp_path: Path) -> None:
    # `llmdeploy render … | head -1`: the reader leaves early (here with more output than a
    # pipe buffer holds still unwritten); no traceback, no noise, exit 0.
    many = _many_specs(tmp_path)
    with subprocess.Popen([sys.executable, "-m", "llmdeploy", "render", str(many)], cwd=ROOT,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          env={**os.environ, "KUBECONFIG": "/nonexistent"}) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.read(10)
        proc.stdout.close()
        err = proc.stderr.read().decode()
        assert proc.wait(timeout=120) == 0
    assert "Traceback" not in err and "Exception ignored" not in err


def test_output_is_complete_after_the_quick_exit(tmp_path: Path) -> None:
    # Output larger than any pipe buffer must arrive whole although the process skips teardown.
    many = _many_specs(tmp_path)
    fast = run_cli("render", str(many))
    slow = run_cli("render", str(many), env={"LLMDEPLOY_NO_FAST_PATH": "1", "LLMDEPLOY_DEBUG": "1"})
    assert fast.returncode == 0, fast.stderr
    assert len(fast.stdout) > 65536
    assert fast.stdout == slow.stdout
