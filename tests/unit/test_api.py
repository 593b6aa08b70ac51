"""The Python API (llmdeploy.api): the same answers as the CLI, as values, from paths or text."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import EXAMPLES, ROOT

from llmdeploy import api

L4 = EXAMPLES / "llama-3.1-8b-l4.llmdeploy.yaml"


def test_validate_a_path_and_the_same_text() -> None:
    by_path = api.validate(L4)
    by_text = api.validate(text=L4.read_text(encoding="utf-8"), name="l4.yaml", base_dir=EXAMPLES)
    assert by_path.valid and by_text.valid
    assert [s.metadata.name for s in by_path.specs] == [s.metadata.name for s in by_text.specs] == ["llama-3-1-8b"]
    assert [d.rule for d in by_path.diagnostics] == [d.rule for d in by_text.diagnostics]


def test_errors_are_results_with_positions() -> None:
    text = L4.read_text(encoding="utf-8").replace("maxModelLen: 8192", "maxModelLen: 0")
    checked = api.validate(text=text, name="broken.yaml")
    assert not checked.valid
    (err,) = [d for d in checked.errors if d.path == "runtime.maxModelLen"]
    assert err.file == "broken.yaml" and err.line > 0 and err.rule.startswith("LD")


def test_render_returns_checked_objects_and_the_printed_stream() -> None:
    rendered = api.render(L4)
    assert rendered.ok
    kinds = [o["kind"] for o in rendered.objects]
    assert kinds[0] == "ClusterServingRuntime" and "InferenceService" in kinds
    cli = subprocess.run([sys.executable, "-m", "llmdeploy", "render", str(L4)], check=False, capture_output=True,
                         text=True, timeout=120, cwd=ROOT)
    assert cli.returncode == 0 and cli.stdout == rendered.yaml  # the same bytes as the CLI
    assert rendered.workloads and rendered.workloads[0][1].workload_name == "llama-3-1-8b-predictor"


def test_render_of_an_invalid_spec_returns_no_objects(tmp_path: Path) -> None:
    rendered = api.render(text="apiVersion: llmdeploy.dev/v1alpha1\nkind: LLMService\n", name="x.yaml")
    assert not rendered.ok and rendered.objects == [] and rendered.yaml == ""
    assert any(d.is_error for d in rendered.diagnostics)


def test_size_reports_per_spec() -> None:
    sized = api.size(L4)
    (report,) = sized.reports
    assert report is not None and report.fits and report.kv_cache_tokens > 0
    assert sized.checked.valid


def test_source_or_text_not_both() -> None:
    with pytest.raises(TypeError):
        api.validate(L4, text="x: 1")
    with pytest.raises(TypeError):
        api.validate()


def test_every_python_block_of_the_api_page_runs() -> None:
    """docs/api.md is a tested page: each ```python block runs as written, from the checkout."""
    import os
    import re

    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, re.DOTALL)
    assert len(blocks) >= 3
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        for block in blocks:
            exec(compile(block, "docs/api.md", "exec"), {})  # noqa: S102 - our own documentation
    finally:
        os.chdir(cwd)
