"""The command line: exit codes 0/1/2/3, streams, files; in-process and as a real process.

In-process tests use typer's CliRunner (stdout and stderr apart); the ``run_cli`` tests
start ``python -m llmdeploy`` like a user's shell or pre-commit does.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest
from conftest import ROOT, run_cli
from typer.testing import CliRunner

from llmdeploy import __version__, cli
from llmdeploy.cli import app

EXAMPLE = "examples/llama-3.1-8b-l4.llmdeploy.yaml"

GOOD = """\
apiVersion: llmdeploy.dev/v1alpha1
kind: LLMService
metadata:
  name: {name}
  namespace: inference
model:
  id: meta-llama/Llama-3.1-8B-Instruct
  storageUri: hf://meta-llama/Llama-3.1-8B-Instruct
  credentials:
    secretRef: hf-token
runtime:
  image: vllm/vllm-openai:v0.11.0
resources:
  gpu:
    type: a100-80gb
"""
# Valid, with one warning (LD404: an hf:// model without a token).
WARNS = GOOD.replace("  credentials:\n    secretRef: hf-token\n", "")
BAD = GOOD.replace("  image: vllm/vllm-openai:v0.11.0\n", "  maxModelLen: 0\n")  # line 12: LD104


def write_tree(root: Path, files: dict[str, str]) -> Path:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
    return root


def snapshot(root: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every file under ``root`` with its mode, mtime and content."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file():
            st = p.stat()
            out[p.relative_to(root).as_posix()] = (st.st_mode, st.st_mtime_ns, p.read_bytes())
    return out


def invoke(*args: str, input: str | None = None, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, list(args), input=input, env=env, catch_exceptions=False)


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    write_tree(tmp_path, {
        "good.yaml": GOOD.format(name="good"),
        "warns.yaml": WARNS.format(name="warns"),
        "bad.yaml": BAD.format(name="bad"),
        "specs/a.yaml": GOOD.format(name="a"),
        "specs/nested/b.yml": GOOD.format(name="b"),
        "specs/notes.txt": "not a spec\n",
    })
    monkeypatch.chdir(tmp_path)
    return tmp_path


# --------------------------------------------------------------------------- validate: exit 0 / 1


def test_valid_spec_exits_0_with_a_one_line_summary(tree: Path) -> None:
    result = invoke("validate", "good.yaml")
    assert result.exit_code == 0
    assert result.stdout == "✓ 1 spec valid\n"
    assert result.stderr == ""


def test_quiet_prints_nothing_on_success(tree: Path) -> None:
    result = invoke("validate", "--quiet", "good.yaml")
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", "")


def test_invalid_spec_exits_1_with_located_diagnostics_on_stdout(tree: Path) -> None:
    result = invoke("validate", "--format", "text", "bad.yaml")
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        (
            "bad.yaml:12:16: error LD104 maxModelLen must be a positive integer (got 0) "
            "(hint: maxModelLen: Longest request (prompt + output tokens) the engine accepts)"
        ),
        "✗ 1 spec: 1 error(s), 0 warning(s)",
    ]
    assert result.stderr == ""


def test_warnings_pass_unless_strict(tree: Path) -> None:
    result = invoke("validate", "--format", "text", "warns.yaml")
    assert result.exit_code == 0
    assert re.match(r"warns\.yaml:8:15: warning LD404 ", result.stdout)
    assert result.stdout.splitlines()[-1] == "✓ 1 spec valid (1 warning)"
    strict = invoke("validate", "--format", "text", "--strict", "warns.yaml")
    assert strict.exit_code == 1
    assert strict.stdout.splitlines()[-1] == "✗ 1 spec: 0 error(s), 1 warning(s)"


def test_several_files_and_a_folder_in_one_call(tree: Path) -> None:
    result = invoke("validate", "--format", "text", "good.yaml", "specs", "bad.yaml")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert [line.split(":")[0] for line in lines[:-1]] == ["bad.yaml"]
    assert lines[-1] == "✗ 4 specs: 1 error(s), 0 warning(s)"
    ok = invoke("validate", "good.yaml", "specs")
    assert (ok.exit_code, ok.stdout) == (0, "✓ 3 specs valid\n")


def test_stdin(tree: Path) -> None:
    result = invoke("validate", "--format", "text", "-", input=BAD.format(name="piped"))
    assert result.exit_code == 1
    assert result.stdout.startswith("<stdin>:12:16: error LD104 ")
    ok = invoke("validate", "-", input=GOOD.format(name="piped"))
    assert (ok.exit_code, ok.stdout) == (0, "✓ 1 spec valid\n")


def test_validate_never_writes_files(tree: Path) -> None:
    before = snapshot(tree)
    for args in (["good.yaml", "specs"], ["bad.yaml"], ["--show-resolved", "good.yaml"],
                 ["--format", "json", "warns.yaml"], ["missing.yaml"]):
        invoke("validate", *args)
    assert snapshot(tree) == before


# --------------------------------------------------------------------------- usage errors: exit 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["validate", "missing.yaml"], "missing.yaml: no such file or folder"),
        (["validate", "--format", "yaml", "good.yaml"], "-o/--output takes a format: auto, text, json, github"),
        (["validate"], "Missing argument"),
        (["validate", "--no-such-option", "good.yaml"], "No such option"),
        (["no-such-command"], "No such command"),
    ],
    ids=["missing-path", "bad-format", "no-paths", "bad-option", "bad-command"],
)
def test_usage_errors_exit_2(tree: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert result.stdout == ""


# --------------------------------------------------------------------------- internal errors: exit 3


def run_main(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["llmdeploy", *args])
    with pytest.raises(SystemExit) as exc:
        cli.main()
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


def test_unexpected_exception_exits_3_without_a_traceback(tree: Path, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    import llmdeploy.pipeline

    def boom(*_: object, **__: object) -> None:
        raise RuntimeError("kaboom")

    monkeypatch.setattr(llmdeploy.pipeline, "analyze_all", boom)
    code, out, err = run_main(monkeypatch, capsys, "validate", "good.yaml")
    assert code == 3
    assert out == ""
    assert err.startswith("llmdeploy: internal error: RuntimeError: kaboom\n")
    assert "Traceback" not in err


@pytest.mark.parametrize("via", ["main", "runner"])
def test_missing_resource_exits_3(tree: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest,
                                  capsys: pytest.CaptureFixture[str], via: str) -> None:
    from llmdeploy import resources

    # An installation without its data folders: resources.py finds no profiles/ anywhere.
    monkeypatch.setattr(resources, "__file__", str(tree / "site" / "llmdeploy" / "resources.py"))
    resources.data_dir.cache_clear()
    request.addfinalizer(resources.data_dir.cache_clear)
    write_tree(tree, {"prod.yaml": GOOD.format(name="prod").replace("metadata:", "profile: production\nmetadata:")})
    if via == "main":
        code, out, err = run_main(monkeypatch, capsys, "validate", "prod.yaml")
    else:  # the app maps llmdeploy's own errors itself, so in-process callers get the same code
        result = invoke("validate", "prod.yaml")
        code, out, err = result.exit_code, result.stdout, result.stderr
    assert code == 3
    assert out == ""
    assert err.startswith("llmdeploy: error: llmdeploy data folder 'profiles' not found next to ")
    assert "the installation is incomplete (hint: reinstall llmdeploy)" in err


def test_main_exit_codes_match_the_runner(tree: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert run_main(monkeypatch, capsys, "validate", "good.yaml")[0] == 0
    assert run_main(monkeypatch, capsys, "validate", "bad.yaml")[0] == 1
    assert run_main(monkeypatch, capsys, "validate", "nope.yaml")[0] == 2


# --------------------------------------------------------------------------- as a real process


def test_help_is_fast_and_imports_nothing_heavy() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    assert "validate" in result.stdout and "render" in result.stdout
    assert "docs" not in result.stdout.split("Commands:")[1]  # hidden
    timing = run_cli("--help", env={"PYTHONPROFILEIMPORTTIME": "1"})
    imported = {line.split("|")[-1].strip() for line in timing.stderr.splitlines() if "|" in line}
    heavy = {m for m in imported if m.split(".")[0] in {"pydantic", "jinja2", "ruamel", "jsonschema", "rich"}}
    assert heavy == set()


def test_version() -> None:
    result = run_cli("--version")
    assert (result.returncode, result.stdout, result.stderr) == (0, f"llmdeploy {__version__}\n", "")


def test_process_exit_codes(tmp_path: Path) -> None:
    write_tree(tmp_path, {"good.yaml": GOOD.format(name="good"), "bad.yaml": BAD.format(name="bad")})
    ok = run_cli("validate", "good.yaml", cwd=tmp_path)
    assert (ok.returncode, ok.stdout, ok.stderr) == (0, "✓ 1 spec valid\n", "")
    bad = run_cli("validate", "--format", "text", "good.yaml", "bad.yaml", cwd=tmp_path)
    assert bad.returncode == 1
    assert bad.stdout.startswith("bad.yaml:12:16: error LD104 ")
    missing = run_cli("validate", "nope.yaml", cwd=tmp_path)
    assert (missing.returncode, missing.stdout) == (2, "")
    assert missing.stderr == "llmdeploy: error: nope.yaml: no such file or folder\n"
    fmt = run_cli("validate", "--format", "xml", "good.yaml", cwd=tmp_path)
    assert fmt.returncode == 2
    assert "-o/--output takes a format" in fmt.stderr


def test_process_stdin(tmp_path: Path) -> None:
    result = run_cli("validate", "--format", "text", "-", stdin=BAD.format(name="piped"), cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout.startswith("<stdin>:12:16: error LD104 ")


def test_process_internal_error_exits_3(tmp_path: Path) -> None:
    write_tree(tmp_path, {"good.yaml": GOOD.format(name="good")})
    code = (
        "import sys, llmdeploy.pipeline as p\n"
        "def boom(*a, **k): raise ZeroDivisionError('boom')\n"
        "p.analyze_all = boom\n"
        "from llmdeploy.cli import main\n"
        "sys.argv = ['llmdeploy', 'validate', 'good.yaml']\n"
        "main()\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "LLMDEPLOY_DEBUG"}
    import subprocess

    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, env=env,
                            timeout=120, check=False)
    assert result.returncode == 3
    assert "llmdeploy: internal error: ZeroDivisionError: boom" in result.stderr
    assert "Traceback" not in result.stderr
    debug = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                           env={**env, "LLMDEPLOY_DEBUG": "1"}, timeout=120, check=False)
    assert debug.returncode == 1  # the exception propagates for the developer
    assert "Traceback" in debug.stderr


# --------------------------------------------------------------------------- init


def test_init_to_stdout_validates(tree: Path) -> None:
    result = invoke("init", "--model", "meta-llama/Llama-3.1-8B-Instruct", "--gpu", "a100-80gb")
    assert result.exit_code == 0
    assert result.stdout.startswith("# yaml-language-server: $schema=")
    assert "apiVersion: llmdeploy.dev/v1alpha1" in result.stdout
    (tree / "init.llmdeploy.yaml").write_text(result.stdout, encoding="utf-8")
    check = invoke("validate", "--format", "text", "--strict", "init.llmdeploy.yaml")
    assert check.exit_code == 0, check.stdout


def test_init_to_a_file_refuses_to_overwrite_without_force(tree: Path) -> None:
    args = ["init", "--model", "Qwen/Qwen2.5-7B-Instruct", "--gpu", "l4", "--profile", "dev",
            "--output-file", "qwen.llmdeploy.yaml"]
    first = invoke(*args)
    assert first.exit_code == 0
    assert first.stdout == ""
    # The dev profile scales to zero on purpose: init says which warnings `validate --strict` will raise.
    assert first.stderr.endswith("wrote qwen.llmdeploy.yaml\n")
    assert "does not pass `llmdeploy validate --strict` yet" in first.stderr
    written = (tree / "qwen.llmdeploy.yaml").read_text(encoding="utf-8")
    assert (tree / "qwen.llmdeploy.yaml").stat().st_mode & 0o044  # readable like any file, not 0600

    (tree / "qwen.llmdeploy.yaml").write_text("# mine\n", encoding="utf-8")
    again = invoke(*args)
    assert again.exit_code == 1
    assert "exists" in again.stderr and "--force" in again.stderr
    assert (tree / "qwen.llmdeploy.yaml").read_text(encoding="utf-8") == "# mine\n"

    forced = invoke(*args, "--force")
    assert forced.exit_code == 0
    assert (tree / "qwen.llmdeploy.yaml").read_text(encoding="utf-8") == written
    assert invoke("validate", "qwen.llmdeploy.yaml").exit_code == 0


def test_init_unknown_model_or_gpu_exits_1(tree: Path) -> None:
    result = invoke("init", "--model", "acme/NoSuchModel-7B", "--gpu", "a100-80gb")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("llmdeploy: error: unknown model 'acme/NoSuchModel-7B'")
    gpu = invoke("init", "--model", "meta-llama/Llama-3.1-8B-Instruct", "--gpu", "tpu-v5e")
    assert gpu.exit_code == 1
    assert "unknown GPU type 'tpu-v5e'" in gpu.stderr


# --------------------------------------------------------------------------- docs (hidden)


def test_docs_check_needs_exactly_one_mode() -> None:
    assert CliRunner().invoke(app, ["docs"]).exit_code == 2
    assert CliRunner().invoke(app, ["docs", "--check", "--write"]).exit_code == 2


def test_docs_check_passes_on_the_checkout() -> None:
    result = CliRunner().invoke(app, ["docs", "--check", "--root", str(ROOT)])
    assert result.exit_code == 0, result.stderr


def test_docs_write_then_check(tmp_path: Path) -> None:
    write_tree(tmp_path, {"pyproject.toml": "", "docs/rules.md": "old\n"})
    stale = CliRunner().invoke(app, ["docs", "--check", "--root", str(tmp_path)])
    assert stale.exit_code == 1
    assert "docs/rules.md is stale" in stale.stderr and "docs/spec.md is stale" in stale.stderr
    wrote = CliRunner().invoke(app, ["docs", "--write", "--root", str(tmp_path)])
    assert wrote.exit_code == 0
    assert wrote.stderr == "wrote docs/rules.md\nwrote docs/spec.md\n"
    assert CliRunner().invoke(app, ["docs", "--check", "--root", str(tmp_path)]).exit_code == 0
