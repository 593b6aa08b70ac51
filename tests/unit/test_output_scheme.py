"""One output scheme in every command (#18 item 1, docs/cli.md#output).

``-o/--output FORMAT`` picks the format of what a command prints (kubectl/helm style);
``render --output-dir DIR`` writes a folder; ``schema``/``init --output-file FILE`` write a
file. Spellings from before the scheme that now mean something else (``render -o DIR``,
``render -o manifests.yaml``, ``schema -o x.json``) are usage errors (exit 2) whose hint
names the new flag, and nothing is created.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import EXAMPLES, ROOT, run_cli

L4 = str(EXAMPLES / "llama-3.1-8b-l4.llmdeploy.yaml")
FAST_OFF = {"LLMDEPLOY_NO_FAST_PATH": "1"}

# command line (before -o) → the formats -o takes
FORMATS = {
    ("render", L4): ("yaml", "json"),
    ("validate", L4): ("auto", "text", "json", "github"),
    ("size", L4): ("table", "json"),
    ("plan", "--model", "Qwen/Qwen2.5-7B-Instruct", "--gpu", "l4"): ("table", "json"),
    ("catalog", "gpus"): ("table", "json"),
    ("catalog", "models"): ("table", "json"),
    ("schema",): ("json",),
    ("init", "--model", "Qwen/Qwen2.5-7B-Instruct", "--gpu", "l4"): ("yaml",),
}


@pytest.mark.parametrize("argv", sorted(FORMATS), ids=lambda a: " ".join(a[:2]))
def test_every_command_documents_dash_o_as_the_output_format(argv: tuple[str, ...]) -> None:
    words = argv[:2] if argv[0] == "catalog" else argv[:1]
    r = run_cli(*words, "--help")
    assert r.returncode == 0, r.stderr
    assert re.search(r"-o, (-f, )?--output\b", r.stdout), r.stdout
    assert "Output format" in r.stdout or "output format" in r.stdout.lower()


@pytest.mark.parametrize("fmt", ["json"])
@pytest.mark.parametrize("argv", [a for a in sorted(FORMATS) if "json" in FORMATS[a]], ids=lambda a: " ".join(a[:2]))
def test_dash_o_json_prints_one_json_document(argv: tuple[str, ...], fmt: str) -> None:
    r = run_cli(*argv, "-o", fmt)
    assert r.returncode in (0, 1), r.stderr
    json.loads(r.stdout)


@pytest.mark.parametrize("env", [{}, FAST_OFF], ids=["fast-path", "typer"])
@pytest.mark.parametrize(("value", "hint"), [("deploy", "--output-dir deploy"), ("deploy/", "--output-dir deploy/"),
                                             ("manifests.yaml", "> manifests.yaml"), ("", "--output-dir")])
def test_render_dash_o_with_a_path_is_a_usage_error_and_creates_nothing(
        tmp_path: Path, env: dict[str, str], value: str, hint: str) -> None:
    """Regression: `render -o manifests.yaml` silently created a folder called manifests.yaml."""
    r = run_cli("render", L4, "-o", value, cwd=tmp_path, env=env)
    assert r.returncode == 2, r.stderr
    assert r.stdout == ""
    assert "-o/--output takes a format: yaml, json" in r.stderr
    assert hint in r.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("argv", "value"), [(("schema",), "llmdeploy.schema.json"),
                                             (("init", "--model", "Qwen/Qwen2.5-7B-Instruct", "--gpu", "l4"),
                                              "qwen.llmdeploy.yaml")])
def test_single_file_writers_point_dash_o_paths_at_output_file(tmp_path: Path, argv: tuple[str, ...],
                                                              value: str) -> None:
    r = run_cli(*argv, "-o", value, cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert f"--output-file {value}" in r.stderr
    assert list(tmp_path.iterdir()) == []
    ok = run_cli(*argv, "--output-file", value, cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / value).read_text(encoding="utf-8").strip()


def test_render_output_dir_writes_the_folder(tmp_path: Path) -> None:
    r = run_cli("render", L4, "--output-dir", str(tmp_path / "deploy"))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "deploy" / "kustomization.yaml").is_file()


def test_prune_without_output_dir_is_a_usage_error() -> None:
    r = run_cli("render", L4, "--prune")
    assert r.returncode == 2
    assert "--prune works with --output-dir" in r.stderr


@pytest.mark.parametrize("argv", [("size", L4), ("catalog", "gpus"), ("validate", L4)])
def test_dash_o_with_a_path_is_a_usage_error_for_the_printing_commands(tmp_path: Path, argv: tuple[str, ...]) -> None:
    r = run_cli(*argv, "-o", "report.json", cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert "-o/--output takes a format" in r.stderr
    assert list(tmp_path.iterdir()) == []


def test_format_stays_an_alias_of_dash_o() -> None:
    a = run_cli("size", L4, "-o", "json")
    b = run_cli("size", L4, "--format", "json")
    assert a.returncode == b.returncode
    assert a.stdout == b.stdout


def test_no_doc_or_hook_uses_the_old_spellings() -> None:
    """The README, docs, the pre-commit hook and CI examples show the scheme, not `render -o DIR`."""
    import re

    pages = [ROOT / "README.md", ROOT / ".pre-commit-hooks.yaml", *sorted((ROOT / "docs").glob("*.md"))]
    old = re.compile(r"llmdeploy (?:render[^|`\n]* -o (?!yaml\b|json\b)\S|(?:schema|init)[^|`\n]* -o (?!yaml\b|json\b)\S"
                     r"|\S.*--format\b)")
    found = [f"{p.name}:{i}: {line}" for p in pages if p.exists()
             for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if old.search(line)]
    assert not found, "\n".join(found)
