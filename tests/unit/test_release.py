"""The release process's invariants (docs/release.md): one version, a changelog entry for it,
and a README pre-commit `rev` naming the tag the release creates (#18)."""

from __future__ import annotations

import re
import subprocess
import sys

from conftest import ROOT

import llmdeploy


def test_the_version_is_written_once() -> None:
    """pyproject.toml reads it from __init__.py (tomllib is 3.11+: plain text checks)."""
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert not re.search(r"^version\s*=", text, flags=re.MULTILINE)
    assert re.search(r'^dynamic = \["version"\]$', text, flags=re.MULTILINE)
    assert re.search(r'^\[tool\.hatch\.version\]\npath = "src/llmdeploy/__init__.py"$', text, flags=re.MULTILINE)
    init = (ROOT / "src" / "llmdeploy" / "__init__.py").read_text(encoding="utf-8")
    assert len(re.findall(r"^__version__ = ", init, flags=re.MULTILINE)) == 1
    assert re.fullmatch(r"\d+\.\d+\.\d+", llmdeploy.__version__)


def test_dash_dash_version_prints_it() -> None:
    r = subprocess.run([sys.executable, "-m", "llmdeploy", "--version"], capture_output=True, text=True,
                       timeout=60, check=False)
    assert (r.returncode, r.stdout) == (0, f"llmdeploy {llmdeploy.__version__}\n")


def test_readme_pre_commit_rev_is_the_release_tag() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    revs = re.findall(r"^\s*rev:\s*(\S+)", readme, flags=re.MULTILINE)
    assert revs == [f"v{llmdeploy.__version__}"]


def test_changelog_has_an_entry_for_the_version() -> None:
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert "## [Unreleased]" in text
    entry = re.search(rf"^## \[{re.escape(llmdeploy.__version__)}\] - (\d{{4}}-\d{{2}}-\d{{2}})$", text,
                      flags=re.MULTILINE)
    assert entry, f"CHANGELOG.md has no '## [{llmdeploy.__version__}] - YYYY-MM-DD' entry"
    assert text.index("## [Unreleased]") < entry.start()
    assert re.search(rf"^\[{re.escape(llmdeploy.__version__)}\]: \S+/v{re.escape(llmdeploy.__version__)}$", text,
                     flags=re.MULTILINE)
