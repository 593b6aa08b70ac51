"""Shared fixtures: paths, the golden-file switch, the CLI runners."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
SHARED_CRDS = ROOT.parent / "shared" / "crds"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true", default=False,
                     help="Rewrite the golden files under tests/golden from the current output.")


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))


@pytest.fixture(scope="session")
def shared_crds() -> Path:
    if not SHARED_CRDS.is_dir():
        pytest.skip(f"upstream CRDs not found at {SHARED_CRDS} (the ../shared folder beside the checkout)")
    return SHARED_CRDS


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    # Never read a real kubeconfig, never use the user's CRD env or cache.
    monkeypatch.setenv("KUBECONFIG", "/nonexistent")
    monkeypatch.delenv("LLMDEPLOY_CRDS", raising=False)
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    monkeypatch.setenv("LLMDEPLOY_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "llmdeploy-cache"))


def run_cli(*args: str, stdin: str | None = None, env: dict[str, str] | None = None,
            cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in a subprocess (``python -m llmdeploy``)."""
    full_env = {**os.environ, "KUBECONFIG": "/nonexistent", **(env or {})}
    full_env.pop("GITHUB_ACTIONS", None) if env is None or "GITHUB_ACTIONS" not in env else None
    return subprocess.run([sys.executable, "-m", "llmdeploy", *args], input=stdin, capture_output=True,
                          text=True, env=full_env, cwd=cwd or ROOT, timeout=timeout)


def sized_context(text: str, adjust: Callable[[Any], Any] | None = None):  # type: ignore[no-untyped-def]
    """A PlanContext for one spec text: validated, resolved and sized (no rules run), with
    ``adjust`` applied to the sizing report (tests pin the numbers they plan from)."""
    from llmdeploy.plan import PlanContext, spec_hash
    from llmdeploy.resolve import resolve
    from llmdeploy.sizing import size_spec
    from llmdeploy.spec.loader import load_text
    from llmdeploy.spec.validate import validate_doc

    docs, diags = load_text(text, "spec.yaml", Path("."))
    assert docs and not diags, diags
    v = validate_doc(docs[0])
    assert v.spec is not None, [d.to_text() for d in v.diagnostics]
    r = resolve(v)
    assert r.gpu is not None and r.model is not None and r.engine is not None
    report = size_spec(v.spec, r.model, r.gpu, r.engine)
    if adjust is not None:
        report = adjust(report)
    return PlanContext(v.spec, r.gpu, r.model, r.engine, report, v.profile_name, spec_hash(v.spec))


def assert_manifests_pass_crds(manifests: list, crds: Path) -> None:  # type: ignore[type-arg]
    """Render planned manifests, parse them back and check them strictly against ``crds``."""
    from llmdeploy.check import Checker
    from llmdeploy.pipeline import parse_stream_docs
    from llmdeploy.render import render_manifest

    docs = parse_stream_docs([render_manifest(m) for m in manifests])
    report = Checker([crds]).check(docs)  # type: ignore[arg-type]
    assert not report.problems, [str(p) for p in report.problems]
    assert not report.unchecked
