"""The user cache is verified, bounded and never needed for a correct result (issue #19, item 6).

Regressions: an edited cache entry changed the manifests with exit 0; a FIFO entry hung;
a corrupt-but-valid entry gave a persistent exit 3 blaming the intact package file; a
missing HOME was created.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import EXAMPLES, ROOT

from llmdeploy import fsio

SPEC = str(EXAMPLES / "llama-3.1-8b-l4.llmdeploy.yaml")


def render(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "llmdeploy", "render", SPEC], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=120, check=False)


@pytest.fixture
def cached(tmp_path: Path) -> tuple[dict[str, str], Path, str]:
    """An environment with its own cache, filled by one render; and that render's output."""
    cache = tmp_path / "cache"
    env = {**os.environ, "LLMDEPLOY_CACHE_DIR": str(cache), "KUBECONFIG": "/nonexistent"}
    first = render(env)
    assert first.returncode == 0, first.stderr
    entries = [p for p in cache.rglob("*.json") if p.is_file()]
    assert {p.parent.name for p in entries} >= {"data", "docs"}
    return env, cache, first.stdout


def _entries(cache: Path) -> list[Path]:
    return sorted(p for p in cache.rglob("*.json") if p.is_file())


def test_an_edited_entry_is_ignored(cached: tuple[dict[str, str], Path, str]) -> None:
    """Edit every entry the way a person (or a pull request) would: valid JSON, different content."""
    env, cache, want = cached
    for entry in _entries(cache):
        text = entry.read_text()
        edited = (text.replace('"enabled":true', '"enabled":false').replace("nvidia.com/gpu", "evil.example/gpu")
                  .replace('"production"', '"dev"'))
        entry.write_text(edited if edited != text else text.replace("}", ' }', 1))
    again = render(env)
    assert again.returncode == 0, again.stderr
    assert again.stdout == want


def test_a_corrupt_but_valid_entry_is_rebuilt(cached: tuple[dict[str, str], Path, str]) -> None:
    env, cache, want = cached
    for entry in _entries(cache):
        header = entry.read_text().split("\n", 1)[0]
        entry.write_text(header + "\n{}")  # an old header, a valid but wrong body
    again = render(env)
    assert again.returncode == 0, again.stderr
    assert again.stdout == want


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_entry_does_not_hang(cached: tuple[dict[str, str], Path, str]) -> None:
    env, cache, want = cached
    for entry in _entries(cache):
        entry.unlink()
        os.mkfifo(entry)
    again = render(env)
    assert again.returncode == 0, again.stderr
    assert again.stdout == want


def test_a_missing_home_is_not_created(tmp_path: Path) -> None:
    home = tmp_path / "no-such-home"
    env = {k: v for k, v in os.environ.items() if k not in ("LLMDEPLOY_CACHE_DIR", "XDG_CACHE_HOME")}
    env.update(HOME=str(home), KUBECONFIG="/nonexistent")
    r = render(env)
    assert r.returncode == 0, r.stderr
    assert not home.exists()


def test_load_cache_checks_source_and_content(tmp_path: Path) -> None:
    entry = tmp_path / "e.json"
    fsio.store_cache(entry, '{"a": 1}', "source-1")
    assert fsio.load_cache(entry, "source-1") == '{"a": 1}'
    assert fsio.load_cache(entry, "source-2") is None  # built from something else
    entry.write_text(entry.read_text().replace('"a": 1', '"a": 2'))
    assert fsio.load_cache(entry, "source-1") is None  # edited since
    entry.write_text('{"a": 1}')
    assert fsio.load_cache(entry, "source-1") is None  # no envelope (an old entry)
    assert fsio.load_cache(tmp_path / "missing.json", "x") is None
