"""`llmdeploy validate` over the case folders and the examples.

Layout (STYLE.md §10):

    tests/cases/invalid/<name>/spec.yaml      the spec (plus any file it refers to)
    tests/cases/invalid/<name>/expected.txt   the exact diagnostic lines, file names relative
    tests/cases/valid/<name>/spec.yaml        must exit 0; expected.txt (optional) lists its warnings
    tests/cases/*/<name>/_config.yaml         optional: {args: [extra CLI args], files: [paths]}

Each case runs in-process (typer's CliRunner) with the case folder as the working
directory, so the diagnostics name ``spec.yaml`` as a user would see it.
``pytest --update-golden`` rewrites the expected files from the current output.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from ruamel.yaml import YAML
from typer.testing import CliRunner

from llmdeploy.cli import app

ROOT = Path(__file__).resolve().parents[2]
CASES = ROOT / "tests" / "cases"
EXAMPLES = ROOT / "examples"

DIAGNOSTIC_LINE = re.compile(r"^[^:\s][^:]*:\d+:\d+: (error|warning|info) LD[1-5]\d\d \S.*$")


def case_dirs(kind: str) -> list[Path]:
    return sorted(p for p in (CASES / kind).iterdir() if p.is_dir())


def case_config(case: Path) -> dict[str, list[str]]:
    path = case / "_config.yaml"
    config = YAML(typ="safe").load(path.read_text(encoding="utf-8")) if path.exists() else {}
    config = config or {}
    unknown = set(config) - {"args", "files"}
    assert not unknown, f"{path}: unknown keys {sorted(unknown)}"
    return {"args": list(config.get("args", [])), "files": list(config.get("files", ["spec.yaml"]))}


def run_case(case: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[int, list[str], str]:
    """(exit code, diagnostic lines on stdout, stderr) of `llmdeploy validate` in ``case``."""
    config = case_config(case)
    monkeypatch.chdir(case)
    result = CliRunner().invoke(
        app, ["validate", "--format", "text", "--quiet", *config["args"], *config["files"]],
        catch_exceptions=False,
    )
    return result.exit_code, result.stdout.splitlines(), result.stderr


def compare_expected(case: Path, lines: list[str], update_golden: bool) -> None:
    expected_path = case / "expected.txt"
    if update_golden:
        if lines:
            expected_path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        elif expected_path.exists():
            expected_path.unlink()
    expected = expected_path.read_text(encoding="utf-8").splitlines() if expected_path.exists() else []
    assert lines == expected


INVALID = case_dirs("invalid")
VALID = case_dirs("valid")


@pytest.mark.parametrize("case", INVALID, ids=[c.name for c in INVALID])
def test_invalid_case(case: Path, monkeypatch: pytest.MonkeyPatch, update_golden: bool) -> None:
    code, lines, stderr = run_case(case, monkeypatch)
    compare_expected(case, lines, update_golden)
    assert code == 1
    assert stderr == ""


@pytest.mark.parametrize("case", VALID, ids=[c.name for c in VALID])
def test_valid_case(case: Path, monkeypatch: pytest.MonkeyPatch, update_golden: bool) -> None:
    code, lines, stderr = run_case(case, monkeypatch)
    compare_expected(case, lines, update_golden)
    assert not [line for line in lines if ": error " in line]
    assert code == 0
    assert stderr == ""


EXAMPLE_FILES = sorted(EXAMPLES.glob("*.yaml"))


@pytest.mark.parametrize("example", EXAMPLE_FILES, ids=[p.name for p in EXAMPLE_FILES])
def test_example_is_valid(example: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(app, ["validate", "--format", "text", f"examples/{example.name}"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.stdout
    assert ": error " not in result.stdout
    assert result.stdout.splitlines()[-1].startswith("✓ 1 spec valid")


def test_the_examples_folder_is_valid_in_one_call(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(app, ["validate", "--format", "text", "examples"], catch_exceptions=False)
    assert result.exit_code == 0, result.stdout
    assert result.stdout.splitlines()[-1].startswith(f"✓ {len(EXAMPLE_FILES)} specs valid")


# --------------------------------------------------------------------------- the case inventory


def test_there_are_enough_examples_and_cases() -> None:
    assert len(EXAMPLE_FILES) >= 3
    assert len(INVALID) >= 25
    assert len(VALID) >= 4


@pytest.mark.parametrize("case", INVALID + VALID, ids=[f"{c.parent.name}/{c.name}" for c in INVALID + VALID])
def test_case_folder_is_well_formed(case: Path) -> None:
    config = case_config(case)
    for name in config["files"]:
        assert (case / name).is_file(), f"{case}: {name} is missing"
    expected = case / "expected.txt"
    if case.parent.name == "invalid":
        assert expected.is_file(), f"{case}: an invalid case needs expected.txt"
    if expected.exists():
        lines = expected.read_text(encoding="utf-8").splitlines()
        assert lines, f"{expected} is empty; delete it instead"
        for line in lines:
            assert DIAGNOSTIC_LINE.match(line), f"{expected}: not a diagnostic line: {line!r}"
            assert not line.startswith("/"), f"{expected}: file names must be relative: {line!r}"


def test_cases_cover_every_spec_and_security_rule() -> None:
    seen = set()
    for case in INVALID:
        for line in (case / "expected.txt").read_text(encoding="utf-8").splitlines():
            seen.add(line.split(" ")[2])
    must = {f"LD{n}" for n in range(100, 116)} | {"LD120", "LD121", "LD401", "LD402", "LD403"}
    assert must - seen == set()
