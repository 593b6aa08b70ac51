"""The wheel: it carries the data folders, and a clean install finds them and works.

Slow (a wheel build and a fresh virtual environment): ``pytest -m slow``. The fresh venv
is a plain one (no system or parent site-packages). Its dependencies are installed
offline from wheels repacked out of the environment running the tests (so the test
needs no network and uses exactly the versions under test); when that fails it falls
back to the package registry.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import os
import re
import subprocess
import sys
import venv
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "llama-3.1-8b-l4.llmdeploy.yaml"
SKIP_DIST_INFO = {"INSTALLER", "REQUESTED", "direct_url.json", "RECORD"}


def run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "PIP_"))}
    env["KUBECONFIG"] = "/nonexistent"
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900, check=False, **kw)  # type: ignore[call-overload,no-any-return]


# --------------------------------------------------------------------------- building


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    result = run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out), str(ROOT)])
    assert result.returncode == 0, result.stdout + result.stderr
    (whl,) = out.glob("llmdeploy-*.whl")
    return whl


def test_wheel_carries_the_data_folders(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for folder in ("templates", "schemas", "profiles"):
        expected = {f"llmdeploy/{folder}/{p.relative_to(ROOT / folder).as_posix()}"
                    for p in (ROOT / folder).rglob("*") if p.is_file() and "__pycache__" not in p.parts}
        assert expected, f"{folder}/ is empty in the checkout"
        assert expected <= names, f"missing from the wheel: {sorted(expected - names)}"
    assert "llmdeploy/schemas/llmdeploy.schema.json" in names
    assert {f"llmdeploy/profiles/{p}.yaml" for p in ("dev", "staging", "production")} <= names
    assert {"llmdeploy/catalog/gpus.yaml", "llmdeploy/catalog/models.yaml"} <= names
    assert {"llmdeploy/engines/vllm.yaml", "llmdeploy/engines/tgi.yaml"} <= names
    assert not [n for n in names if n.startswith(("tests/", "examples/", "llmdeploy/tests/"))]
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "llmdeploy = llmdeploy.entry:console" in zipfile.ZipFile(wheel).read(entry_points).decode()


# --------------------------------------------------------------------------- a wheelhouse from this environment


def _dependencies(name: str, seen: set[str]) -> None:
    key = re.sub(r"[-_.]+", "-", name).lower()
    if key in seen:
        return
    seen.add(key)
    for raw in metadata.requires(name) or []:
        req = Requirement(raw)
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        _dependencies(req.name, seen)


def repack(dist: metadata.Distribution, outdir: Path) -> Path:
    """Rebuild a wheel from an installed distribution (its RECORD lists the files)."""
    info_dir = next(f for f in dist.files or [] if f.parts[0].endswith(".dist-info")).parts[0]
    wheel_meta = dist.read_text("WHEEL") or ""
    tags = [line.split(":", 1)[1].strip() for line in wheel_meta.splitlines() if line.startswith("Tag:")]
    # The file name carries the compressed tag set, e.g. py2.py3-none-any.
    parts = [t.split("-") for t in tags] or [["py3", "none", "any"]]
    tag = "-".join(".".join(dict.fromkeys(p[i] for p in parts)) for i in range(3))
    name = re.sub(r"[-_.]+", "_", dist.metadata["Name"])
    path = outdir / f"{name}-{dist.version}-{tag}.whl"
    record = io.StringIO()
    writer = csv.writer(record, lineterminator="\n")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for f in dist.files or []:
            rel = f.as_posix()
            if rel.startswith("..") or "__pycache__" in f.parts or rel.endswith(".pyc"):
                continue  # console scripts are regenerated from entry_points.txt; bytecode is rebuilt
            if f.parts[0] == info_dir and f.name in SKIP_DIST_INFO:
                continue
            data = Path(str(dist.locate_file(f))).read_bytes()
            zf.writestr(rel, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            writer.writerow([rel, f"sha256={digest}", len(data)])
        writer.writerow([f"{info_dir}/RECORD", "", ""])
        zf.writestr(f"{info_dir}/RECORD", record.getvalue())
    return path


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheelhouse")
    names: set[str] = set()
    _dependencies("llmdeploy", names)
    names.discard("llmdeploy")
    for name in sorted(names):
        repack(metadata.distribution(name), out)
    return out


# --------------------------------------------------------------------------- installing


@pytest.fixture(scope="module")
def installed(wheel: Path, wheelhouse: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    env_dir = tmp_path_factory.mktemp("venv")
    venv.EnvBuilder(with_pip=True, system_site_packages=False, clear=True).create(env_dir)
    py = env_dir / "bin" / "python"
    offline = run([str(py), "-m", "pip", "install", "-q", "--no-index", "--find-links", str(wheelhouse), str(wheel)])
    if offline.returncode != 0:
        online = run([str(py), "-m", "pip", "install", "-q", str(wheel)])
        assert online.returncode == 0, (
            "offline install failed:\n" + offline.stderr + "\nregistry install failed:\n" + online.stderr
        )
    return env_dir


def test_fresh_venv_is_isolated(installed: Path) -> None:
    py = installed / "bin" / "python"
    result = run([str(py), "-c", "import sys, llmdeploy; print(sys.flags.no_site, llmdeploy.__file__)"])
    assert result.returncode == 0, result.stderr
    assert str(installed) in result.stdout  # the wheel's copy, not the checkout's
    assert str(ROOT / "src") not in result.stdout
    cfg = (installed / "pyvenv.cfg").read_text()
    assert "include-system-site-packages = false" in cfg


def test_installed_llmdeploy_runs_from_the_wheel(installed: Path, tmp_path: Path) -> None:
    exe = installed / "bin" / "llmdeploy"
    spec = tmp_path / EXAMPLE.name
    spec.write_text(EXAMPLE.read_text(encoding="utf-8"), encoding="utf-8")  # away from the checkout

    version = run([str(exe), "--version"], cwd=tmp_path)
    assert version.returncode == 0, version.stderr
    assert version.stdout.startswith("llmdeploy ")

    check = run([str(exe), "validate", spec.name], cwd=tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.splitlines()[-1].startswith("✓ 1 spec valid")

    rendered = run([str(exe), "render", spec.name], cwd=tmp_path)
    assert rendered.returncode == 0, rendered.stderr
    assert "kind: InferenceService" in rendered.stdout
    assert "kind: ClusterServingRuntime" in rendered.stdout

    schema = run([str(exe), "schema"], cwd=tmp_path)
    assert schema.stdout == (ROOT / "schemas" / "llmdeploy.schema.json").read_text(encoding="utf-8")

    where = run([str(installed / "bin" / "python"), "-c",
                 "from llmdeploy import resources as r; print(r.templates_dir()); print(r.profiles_dir())"])
    for line in where.stdout.splitlines():
        assert line.startswith(str(installed)), line  # found inside site-packages
