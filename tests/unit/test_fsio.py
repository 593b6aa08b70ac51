"""The one cache folder and atomic writes (``llmdeploy.fsio``).

Regression: two ``cache_dir()`` functions once disagreed, so with
``LLMDEPLOY_CACHE_DIR='~/x'`` the data-table and profile caches landed in ``./~/x``
inside the user's repository while the CRD-schema cache went to ``$HOME/x``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from llmdeploy import fsio

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "llama-3.1-8b-l4.llmdeploy.yaml"


def test_tilde_is_expanded_like_a_shell_would() -> None:
    home = Path.home()
    assert fsio.cache_dir({"LLMDEPLOY_CACHE_DIR": "~/x"}) == home / "x"


def test_xdg_cache_home_must_be_absolute() -> None:
    """The XDG Base Directory spec: a relative path is invalid and is ignored."""
    assert fsio.cache_dir({"XDG_CACHE_HOME": "rel/cache"}) == Path.home() / ".cache" / "llmdeploy"
    assert fsio.cache_dir({"XDG_CACHE_HOME": "/abs/cache"}) == Path("/abs/cache/llmdeploy")


def test_every_cache_of_a_real_run_lands_in_the_one_folder(tmp_path: Path) -> None:
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("XDG_CACHE_HOME",)}
    env.update(HOME=str(home), LLMDEPLOY_CACHE_DIR="~/x")
    crds = ROOT.parent / "shared" / "crds" / "keda.sh"
    args = [sys.executable, "-m", "llmdeploy", "render", str(EXAMPLE)]
    if crds.is_dir():
        args += ["--crds", str(crds)]
    done = subprocess.run(args, cwd=work, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert list(work.iterdir()) == []  # nothing in the folder the command ran in (no ./~/x)
    cache = home / "x"
    kinds = {p.name for p in cache.iterdir()}
    assert {"data", "docs"} <= kinds
    if crds.is_dir():
        assert "crd-schemas" in kinds


def test_the_cache_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fsio, "CACHE_MAX_ENTRIES", 5)
    for i in range(12):
        entry = tmp_path / f"e{i:02d}.json"
        fsio.store_cache(entry, "{}")
        os.utime(entry, ns=(i * 10**9, i * 10**9))
    names = sorted(p.name for p in tmp_path.iterdir())
    assert len(names) == 5 and names[-1] == "e11.json"


def test_an_unwritable_cache_only_costs_speed(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    fsio.store_cache(blocker / "sub" / "entry.json", "{}")  # a file where a folder should be: ignored


def test_write_atomic_keeps_the_mode_of_the_file_it_replaces(tmp_path: Path) -> None:
    target = tmp_path / "out.yaml"
    target.write_text("old")
    target.chmod(0o640)
    fsio.write_atomic(target, "new")
    assert target.read_text() == "new" and (target.stat().st_mode & 0o777) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["out.yaml"]
