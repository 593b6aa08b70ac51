"""#18 items 3-4: built-in profile diagnostics point into the user's spec, a fresh `init`
passes `validate --strict`, LD115 proposes only related models, and a model outside the
catalog starts from its config.json (`init --model-config`, `size --model config.json`)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from conftest import ROOT, run_cli

HF_CONFIGS = ROOT / "tests" / "data" / "hf_configs"
SEVENTY_B_ON_L4 = ("init", "--model", "meta-llama/Llama-3.1-70B-Instruct", "--gpu", "l4")


def _profile_line(text: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if line.startswith("profile:"))


def _without_alerts(text: str) -> str:
    """A starter spec with init's ITL threshold taken out, so production's 0.1 s applies."""
    lines = text.splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.startswith("  alerts:"))
    return "".join(lines[:start] + lines[start + 2:])


def test_a_fresh_init_of_70b_on_l4_passes_validate_strict(tmp_path: Path) -> None:
    """Regression: the production profile's itlP95Seconds (0.1 s) is below the 70B decode step on
    L4s, so the spec init wrote failed `validate --strict` (LD507)."""
    made = run_cli(*SEVENTY_B_ON_L4, "--output-file", "llama70.llmdeploy.yaml", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert "does not pass" not in made.stderr
    text = (tmp_path / "llama70.llmdeploy.yaml").read_text(encoding="utf-8")
    assert "itlP95Seconds:" in text
    check = run_cli("validate", "--strict", "llama70.llmdeploy.yaml", cwd=tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr


def test_built_in_profile_findings_point_at_the_specs_profile_line(tmp_path: Path) -> None:
    """Regression: they pointed at profiles/production.yaml (inside the installed package),
    did not name the spec, and two specs' findings read as one."""
    text = _without_alerts(run_cli(*SEVENTY_B_ON_L4, cwd=tmp_path).stdout)
    (tmp_path / "a.llmdeploy.yaml").write_text(text, encoding="utf-8")
    (tmp_path / "b.llmdeploy.yaml").write_text(text.replace("name: llama-3-1-70b-instruct", "name: other"),
                                              encoding="utf-8")
    line = _profile_line(text)
    r = run_cli("validate", "-o", "json", "a.llmdeploy.yaml", "b.llmdeploy.yaml", cwd=tmp_path)
    found = [d for d in json.loads(r.stdout)["diagnostics"] if d["path"] == "monitoring.alerts.itlP95Seconds"]
    assert sorted(d["file"] for d in found) == ["a.llmdeploy.yaml", "b.llmdeploy.yaml"]
    for d in found:
        assert d["line"] == line
        assert "monitoring.alerts.itlP95Seconds: 0.1 comes from profile production" in d["message"]
    github = run_cli("validate", "-o", "github", "a.llmdeploy.yaml", cwd=tmp_path)
    assert f"file=a.llmdeploy.yaml,line={line}," in github.stdout
    assert "profiles/" not in github.stdout + r.stdout


def test_a_value_the_spec_sets_still_points_at_the_spec(tmp_path: Path) -> None:
    text = _without_alerts(run_cli(*SEVENTY_B_ON_L4, cwd=tmp_path).stdout)
    text = text.replace("  scrape: podMonitor\n", "  scrape: podMonitor\n  alerts:\n    itlP95Seconds: 0.1\n")
    (tmp_path / "a.llmdeploy.yaml").write_text(text, encoding="utf-8")
    r = run_cli("validate", "-o", "json", "a.llmdeploy.yaml", cwd=tmp_path)
    [d] = [d for d in json.loads(r.stdout)["diagnostics"] if d["path"] == "monitoring.alerts.itlP95Seconds"]
    assert d["line"] == text.splitlines().index("    itlP95Seconds: 0.1") + 1
    assert "comes from profile" not in d["message"]


def _ld115_hint(tmp_path: Path, model_id: str) -> str:
    text = run_cli("init", "--model", "meta-llama/Llama-3.1-8B-Instruct", "--gpu", "l4", cwd=tmp_path).stdout
    (tmp_path / "m.llmdeploy.yaml").write_text(text.replace("id: meta-llama/Llama-3.1-8B-Instruct",
                                                            f"id: {model_id}"), encoding="utf-8")
    r = run_cli("validate", "-o", "json", "m.llmdeploy.yaml", cwd=tmp_path)
    [d] = [d for d in json.loads(r.stdout)["diagnostics"] if d["rule"] == "LD115"]
    return str(d["hint"])


def test_ld115_proposes_the_same_publishers_model_of_the_same_size(tmp_path: Path) -> None:
    """Regression: granite-3.1-8b was offered meta-llama/Llama-3.1-8B-Instruct, and a typo of
    Llama-3.1-8B the 70B and 405B models."""
    hint = _ld115_hint(tmp_path, "ibm-granite/granite-3.1-8b-instruct")
    assert "did you mean 'ibm-granite/granite-3.3-8b-instruct'?" in hint
    assert "Llama" not in hint
    typo = _ld115_hint(tmp_path, "meta-llama/Llama-3.1-8B-Instrct")
    assert "did you mean 'meta-llama/Llama-3.1-8B-Instruct'?" in typo
    assert "70B" not in typo and "405B" not in typo


def test_ld115_proposes_nothing_unrelated_and_names_the_way_out(tmp_path: Path) -> None:
    hint = _ld115_hint(tmp_path, "meta-llama/Llama-2-7b-hf")
    assert "did you mean" not in hint
    assert "model.config" in hint
    assert "llmdeploy init --model-config" in hint
    assert "llmdeploy size --model path/to/config.json" in hint


def test_init_from_a_config_json_validates_and_sizes(tmp_path: Path) -> None:
    shutil.copy(HF_CONFIGS / "llama-3.1-8b-instruct.json", tmp_path / "config.json")
    (tmp_path / "specs").mkdir()
    made = run_cli("init", "--model-config", "config.json", "--model", "acme/house-llama-8b", "--gpu", "l4",
                   "--output-file", "specs/house.llmdeploy.yaml", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    text = (tmp_path / "specs" / "house.llmdeploy.yaml").read_text(encoding="utf-8")
    assert "  id: acme/house-llama-8b\n" in text
    assert "  config: ../config.json" in text
    assert "storageUri: hf://acme/house-llama-8b" in text
    check = run_cli("validate", "--strict", "specs/house.llmdeploy.yaml", cwd=tmp_path)
    assert check.returncode == 0, check.stdout
    sized = run_cli("size", "specs/house.llmdeploy.yaml", "-o", "json", cwd=tmp_path)
    assert sized.returncode == 0, sized.stderr
    assert json.loads(sized.stdout)["fits"] is True


def test_init_needs_a_model_id_or_config(tmp_path: Path) -> None:
    r = run_cli("init", "--gpu", "l4", cwd=tmp_path)
    assert r.returncode == 2
    assert "--model-config" in r.stderr
    shutil.copy(HF_CONFIGS / "llama-3.1-8b-instruct.json", tmp_path / "config.json")
    unnamed = run_cli("init", "--model-config", "config.json", "--gpu", "l4", cwd=tmp_path)
    assert unnamed.returncode == 1
    assert "pass --model ORG/NAME" in unnamed.stderr


def test_size_help_says_model_takes_a_config_json() -> None:
    intro = run_cli("size", "--help").stdout.split("Options:")[0]
    assert "config.json" in intro.split("Arguments:")[0]
