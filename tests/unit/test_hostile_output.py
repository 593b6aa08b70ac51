"""``render --output-dir DIR`` under hostile folders and faults (issue #19, items 1-2).

Every test that could delete files runs in a temporary tree with "victim" files beside
and inside the output folder; each asserts the victims survive. The documents are small
stand-ins for rendered ones (``emit`` only reads ``service``, ``manifest.kind/name`` and
``text``), so a subprocess that is killed mid-write starts in a fraction of a second.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import EXAMPLES, ROOT, run_cli

from llmdeploy import emit
from llmdeploy.emit import OWNED_FILE, TXN_DIR, recover_output_dir, write_output_dir
from llmdeploy.errors import OutputError, UsageError


def fake_docs(services: list[str], version: str = "1", runtime: str = "rt-a") -> list[SimpleNamespace]:
    """Three documents per service ("ns/name") plus one shared runtime."""
    docs = [SimpleNamespace(service="", text=f"kind: ClusterServingRuntime\nname: {runtime}\n",
                            manifest=SimpleNamespace(kind="ClusterServingRuntime", name=runtime, shared=True))]
    for s in services:
        name = s.split("/")[1]
        for kind in ("InferenceService", "ConfigMap", "PodMonitor"):
            docs.append(SimpleNamespace(service=s, text=f"kind: {kind}\nname: {name}\nversion: {version}\n",
                                        manifest=SimpleNamespace(kind=kind, name=name, shared=False)))
    return docs


def tree(root: Path) -> dict[str, str]:
    """Every file under ``root`` (relative path -> text), links shown as such."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            p = Path(dirpath) / name
            rel = p.relative_to(root).as_posix()
            out[rel] = f"-> {os.readlink(p)}" if p.is_symlink() else p.read_text()
    return out


@pytest.fixture
def site(tmp_path: Path) -> SimpleNamespace:
    """tmp/work/out (the output folder) with victims at tmp/victim.txt, tmp/work/victim.txt and out/a."""
    work = tmp_path / "work"
    out = work / "out"
    out.mkdir(parents=True)
    victims = {tmp_path / "victim.txt": "outside", work / "victim.txt": "beside", out / "a": "user file a",
               out / "README.md": "user readme"}
    for p, text in victims.items():
        p.write_text(text)
    return SimpleNamespace(root=tmp_path, out=out, victims=victims)


def assert_victims(site: SimpleNamespace) -> None:
    for p, text in site.victims.items():
        assert p.read_text() == text, p


# --------------------------------------------------------------------------- tampered ownership file


TAMPERED = {
    "relative escape": ({"generator": "llmdeploy", "files": ["../../victim.txt"]}, "files[0]"),
    "relative escape 1 up": ({"generator": "llmdeploy", "files": ["../victim.txt"]}, "files[0]"),
    "absolute": ({"generator": "llmdeploy", "files": ["{victim}"]}, "files[0]"),
    "string instead of list": ({"generator": "llmdeploy", "files": "abc"}, "files"),
    "dot segments": ({"files": ["ns--a/../../victim.txt"]}, "files[0]"),
    "hidden file": ({"files": ["ns--a/.git"]}, "files[0]"),
    "not a string": ({"files": [["a"]]}, "files[0]"),
    "v2 folder escape": ({"version": 2, "services": {"..": {"files": ["victim.txt"]}}}, "services[\"..\"]"),
    "v2 name escape": ({"version": 2, "services": {"ns--a": {"files": ["../../victim.txt"]}}},
                       "services.ns--a.files[0]"),
    "v2 files string": ({"version": 2, "services": {"ns--a": {"files": "abc"}}}, "services.ns--a.files"),
    "v2 cluster escape": ({"version": 2, "cluster": ["/etc/passwd"]}, "cluster[0]"),
    "unknown version": ({"version": 99}, "version"),
    "not an object": (["a"], "the top level"),
}


@pytest.mark.parametrize("case", sorted(TAMPERED))
def test_a_tampered_ownership_file_deletes_nothing(site: SimpleNamespace, case: str) -> None:
    """Regression: `../../x`, absolute entries and `{"files": "abc"}` made render delete files outside
    (or user files inside) the folder. Now: a located usage error, nothing written or removed."""
    payload, where = TAMPERED[case]
    text = json.dumps(payload).replace("{victim}", str(site.root / "victim.txt"))
    (site.out / OWNED_FILE).write_text(text)
    before = tree(site.root)
    with pytest.raises(UsageError) as info:
        write_output_dir(site.out, fake_docs(["ns/a"]))
    message = str(info.value)
    assert str(site.out / OWNED_FILE) in message and where in message, message
    assert "nothing was written or removed" in message
    assert tree(site.root) == before
    assert_victims(site)


def test_an_ownership_file_that_is_a_link_is_refused(site: SimpleNamespace) -> None:
    (site.root / "elsewhere.json").write_text(json.dumps({"files": ["kustomization.yaml"]}))
    (site.out / OWNED_FILE).symlink_to(site.root / "elsewhere.json")
    with pytest.raises(UsageError, match="not a regular file"):
        write_output_dir(site.out, fake_docs(["ns/a"]))
    assert_victims(site)


def test_the_cli_reports_a_tampered_file_as_a_usage_error(site: SimpleNamespace) -> None:
    (site.out / OWNED_FILE).write_text(json.dumps({"files": ["../../victim.txt"]}))
    r = run_cli("render", str(EXAMPLES / "llama-3.1-8b-l4.llmdeploy.yaml"), "--output-dir", str(site.out))
    assert r.returncode == 2, r.stderr
    assert "llmdeploy: error: " in r.stderr and "files[0]" in r.stderr and "Traceback" not in r.stderr
    assert_victims(site)
    assert sorted(p.name for p in site.out.iterdir()) == sorted([OWNED_FILE, "a", "README.md"])


# --------------------------------------------------------------------------- shared folders, --prune, summary


def test_rendering_one_service_keeps_the_files_of_the_others(site: SimpleNamespace) -> None:
    """Regression: rendering one spec into a folder shared by ten services deleted the other
    nine services' files and reported only what it wrote."""
    services = [f"ns/s{i}" for i in range(10)]
    first = write_output_dir(site.out, fake_docs(services))
    assert len(first.written) == 10 * 4 + 2 + 1 and not first.removed
    everything = tree(site.out)
    again = write_output_dir(site.out, fake_docs(["ns/s3"], version="2"))
    assert again.removed == ()
    assert set(again.replaced) == {f"ns--s3/{k}-s3.yaml" for k in ("inferenceservice", "configmap", "podmonitor")}
    assert len(again.kept) == 9 * 4
    now = tree(site.out)
    for rel, text in everything.items():
        if not rel.startswith("ns--s3/") and rel != OWNED_FILE:
            assert now[rel] == text, rel  # the other services and the shared files are untouched
    assert "kept 36 files" in again.describe("out") and "--prune" in again.describe("out")
    pruned = write_output_dir(site.out, fake_docs(["ns/s3"], version="2"), prune=True)
    assert len(pruned.removed) == 9 * 4
    assert sorted(p.name for p in site.out.iterdir()) == sorted(
        [OWNED_FILE, "a", "README.md", "cluster", "kustomization.yaml", "ns--s3"])
    assert_victims(site)


def test_a_shared_runtime_stays_while_a_kept_service_needs_it(site: SimpleNamespace) -> None:
    write_output_dir(site.out, fake_docs(["ns/a", "ns/b"], runtime="rt-old"))
    write_output_dir(site.out, fake_docs(["ns/a"], runtime="rt-new"))
    names = sorted(p.name for p in (site.out / "cluster").iterdir())
    assert names == ["clusterservingruntime-rt-new.yaml", "clusterservingruntime-rt-old.yaml", "kustomization.yaml"]
    kust = (site.out / "cluster" / "kustomization.yaml").read_text()
    assert "rt-old" in kust and "rt-new" in kust
    # Once b is rendered with the new runtime too, nothing kept needs the old one.
    summary = write_output_dir(site.out, fake_docs(["ns/b"], runtime="rt-new"))
    assert summary.removed == ("cluster/clusterservingruntime-rt-old.yaml",)


def test_a_file_it_did_not_write_is_never_overwritten(site: SimpleNamespace) -> None:
    (site.out / "ns--a").mkdir()
    (site.out / "ns--a" / "configmap-a.yaml").write_text("mine")
    with pytest.raises(UsageError, match="was not written by llmdeploy"):
        write_output_dir(site.out, fake_docs(["ns/a"]))
    assert (site.out / "ns--a" / "configmap-a.yaml").read_text() == "mine"
    assert sorted(p.name for p in site.out.iterdir()) == ["README.md", "a", "ns--a"]


def test_a_version_1_ownership_file_is_still_understood(site: SimpleNamespace) -> None:
    write_output_dir(site.out, fake_docs(["ns/a", "ns/b"]))
    owned = json.loads((site.out / OWNED_FILE).read_text())
    (site.out / OWNED_FILE).write_text(json.dumps({"generator": "llmdeploy", "files": owned["files"]}))
    summary = write_output_dir(site.out, fake_docs(["ns/a", "ns/b"], version="2"), prune=True)
    assert len(summary.replaced) == 6 and summary.removed == ()


# --------------------------------------------------------------------------- links


def test_a_symlinked_service_folder_is_refused(site: SimpleNamespace) -> None:
    """Regression: a service folder that is a link made render write outside DIR."""
    outside = site.root / "outside"
    outside.mkdir()
    (site.out / "ns--a").symlink_to(outside)
    with pytest.raises(UsageError, match="symbolic link"):
        write_output_dir(site.out, fake_docs(["ns/a"]))
    assert list(outside.iterdir()) == []
    assert not (site.out / OWNED_FILE).exists() and not (site.out / TXN_DIR).exists()


def test_an_owned_file_replaced_by_a_link_is_not_followed(site: SimpleNamespace) -> None:
    write_output_dir(site.out, fake_docs(["ns/a", "ns/b"]))
    target = site.out / "ns--b" / "configmap-b.yaml"
    target.unlink()
    target.symlink_to(site.root / "victim.txt")
    before = tree(site.root)
    with pytest.raises(UsageError, match="symbolic link"):
        write_output_dir(site.out, fake_docs(["ns/a"]), prune=True)  # would remove ns--b
    assert tree(site.root) == before
    assert_victims(site)


def test_the_output_folder_itself_may_be_a_link_the_user_made(site: SimpleNamespace) -> None:
    real = site.root / "real"
    real.mkdir()
    link = site.root / "link"
    link.symlink_to(real)
    write_output_dir(link, fake_docs(["ns/a"]))
    assert (real / "ns--a" / "configmap-a.yaml").is_file()


def test_an_empty_output_name_is_a_usage_error(tmp_path: Path) -> None:
    """Regression: `--output-dir ""` (then `-o ""`) wrote into the current directory."""
    spec = str(EXAMPLES / "llama-3.1-8b-l4.llmdeploy.yaml")
    for env in ({}, {"LLMDEPLOY_NO_FAST_PATH": "1"}):
        r = run_cli("render", spec, "--output-dir", "", cwd=tmp_path, env=env)
        assert r.returncode == 2, r.stderr
        assert "--output-dir needs a folder name" in r.stderr
        assert list(tmp_path.iterdir()) == []


def test_the_cli_prints_the_summary_and_prunes(tmp_path: Path) -> None:
    out = tmp_path / "out"
    a = run_cli("render", str(EXAMPLES / "llama-3.1-8b-l4.llmdeploy.yaml"),
                str(EXAMPLES / "mistral-7b-tgi.llmdeploy.yaml"), "--output-dir", str(out))
    assert a.returncode == 0, a.stderr
    assert f"{out}: " in a.stderr and " written, 0 replaced, 0 unchanged, 0 removed" in a.stderr
    b = run_cli("render", str(EXAMPLES / "llama-3.1-8b-l4.llmdeploy.yaml"), "--output-dir", str(out))
    assert b.returncode == 0 and "0 removed; kept " in b.stderr, b.stderr
    c = run_cli("render", str(EXAMPLES / "llama-3.1-8b-l4.llmdeploy.yaml"), "--output-dir", str(out), "--prune",
                env={"LLMDEPLOY_NO_FAST_PATH": "1"})
    assert c.returncode == 0, c.stderr
    assert "kept" not in c.stderr and " removed" in c.stderr
    assert not any("mistral" in p.name for p in out.rglob("*"))


# --------------------------------------------------------------------------- the lock and concurrent runs


def test_a_second_render_waits_then_fails_clearly(site: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    import fcntl

    monkeypatch.setenv(emit.LOCK_TIMEOUT_ENV, "0.2")
    fd = os.open(site.out, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with pytest.raises(UsageError, match="another llmdeploy render is writing into"):
            write_output_dir(site.out, fake_docs(["ns/a"]))
    finally:
        os.close(fd)
    assert not (site.out / OWNED_FILE).exists()
    write_output_dir(site.out, fake_docs(["ns/a"]))  # released: the next one goes through
    assert (site.out / OWNED_FILE).exists()


_CONCURRENT = textwrap.dedent("""
    import sys
    sys.path[:0] = [sys.argv[1], sys.argv[1] + "/.."]
    from test_hostile_output import fake_docs
    from llmdeploy.emit import write_output_dir
    for i in range(int(sys.argv[4])):
        write_output_dir(sys.argv[2], fake_docs(sys.argv[3].split(","), version=str(i)))
""")


def test_concurrent_renders_into_one_folder_orphan_nothing(site: SimpleNamespace) -> None:
    """Regression: two renders into one folder at once left files no ownership list named."""
    here = str(Path(__file__).parent)
    procs = [subprocess.Popen([sys.executable, "-c", _CONCURRENT, here, str(site.out), services, "8"],
                              cwd=ROOT, stderr=subprocess.PIPE, text=True)
             for services in ("ns/a,ns/b", "ns/c,ns/d", "ns/a,ns/e")]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    owned = json.loads((site.out / OWNED_FILE).read_text())
    on_disk = {rel for rel in tree(site.out) if rel not in (OWNED_FILE, "a", "README.md")}
    assert on_disk == set(owned["files"])
    assert {"ns--a", "ns--b", "ns--c", "ns--d", "ns--e"} == set(owned["services"])
    assert not (site.out / TXN_DIR).exists()


# --------------------------------------------------------------------------- kill at every point


_KILLER = textwrap.dedent("""
    import os, signal, sys
    sys.path[:0] = [sys.argv[1], sys.argv[1] + "/.."]
    from test_hostile_output import fake_docs
    from llmdeploy import emit
    budget = [int(sys.argv[3])]
    def dying(real):
        def call(*args, **kwargs):
            if budget[0] == 0:
                os.kill(os.getpid(), signal.SIGKILL)
            budget[0] -= 1
            return real(*args, **kwargs)
        return call
    emit.os.replace = dying(os.replace)
    emit.os.unlink = dying(os.unlink)
    emit.os.rmdir = dying(os.rmdir)
    emit._write_new = dying(emit._write_new)
    emit.write_output_dir(sys.argv[2], fake_docs(sys.argv[4].split(","), version=sys.argv[5]), prune=True)
""")


def test_a_kill_at_any_point_leaves_the_old_set_or_the_new_one(site: SimpleNamespace) -> None:
    """Regression: SIGKILL during a render left `.tmp` files and a mix of old and new files
    that every later render refused. Kill at every write, rename, unlink and rmdir in turn:
    after the next run's recovery the folder is exactly the old set or the new one."""
    here = str(Path(__file__).parent)
    write_output_dir(site.out, fake_docs(["ns/a", "ns/b", "ns/c"], version="1"))
    old = tree(site.out)
    new_services = "ns/a,ns/d"  # a replaced, b and c removed (--prune), d written
    outcomes = []
    for point in range(200):
        # Restore the old set exactly before each kill.
        recover_output_dir(site.out)
        write_output_dir(site.out, fake_docs(["ns/a", "ns/b", "ns/c"], version="1"), prune=True)
        assert tree(site.out) == old
        r = subprocess.run([sys.executable, "-c", _KILLER, here, str(site.out), str(point), new_services, "2"],
                           cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
        if r.returncode == 0:
            break
        assert r.returncode == -9, r.stderr
        outcome = recover_output_dir(site.out)
        got = tree(site.out)
        assert not any(".tmp" in rel or TXN_DIR in rel for rel in got), got
        if got == old:
            outcomes.append(("old", outcome))
        else:
            write_output_dir(site.out, fake_docs(["ns/a", "ns/d"], version="2"), prune=True)
            new = tree(site.out)
            assert got == new, f"kill point {point} left a mix"
            outcomes.append(("new", outcome))
    else:
        pytest.fail("the render never completed")
    assert point > 10  # every write, rename and removal was a kill point
    assert ("old", "rolled back") in outcomes and ("new", "completed") in outcomes
    # A later render after any of those never refuses the folder.
    write_output_dir(site.out, fake_docs(["ns/a"], version="3"), prune=True)
    assert_victims(site)


def test_a_fault_at_any_rename_is_finished_by_the_next_run(site: SimpleNamespace,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """os.replace failing (EIO) at each point in turn: the error is clear, and the next run completes it."""
    write_output_dir(site.out, fake_docs(["ns/a", "ns/b"], version="1"))
    real = os.replace
    for point in range(50):
        calls = [0]

        def failing(*args: object, _point: int = point, _calls: list[int] = calls) -> None:
            if _calls[0] == _point:
                raise OSError(errno.EIO, "Input/output error")
            _calls[0] += 1
            real(*args)  # type: ignore[arg-type]

        monkeypatch.setattr(emit.os, "replace", failing)
        try:
            write_output_dir(site.out, fake_docs(["ns/a", "ns/c"], version=str(point)), prune=True)
            break
        except OutputError as exc:
            assert "Input/output error" in str(exc)
        finally:
            monkeypatch.setattr(emit.os, "replace", real)
        write_output_dir(site.out, fake_docs(["ns/a", "ns/c"], version=str(point)), prune=True)
        assert not (site.out / TXN_DIR).exists()
        assert (site.out / "ns--a" / "configmap-a.yaml").read_text().endswith(f"version: {point}\n")
        write_output_dir(site.out, fake_docs(["ns/a", "ns/b"], version="1"), prune=True)
    else:
        pytest.fail("never completed")
    assert point > 3


def test_a_full_disk_changes_nothing(site: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    write_output_dir(site.out, fake_docs(["ns/a"], version="1"))
    before = tree(site.root)
    real = emit._write_new
    calls = [0]

    def full(path: Path, text: str, mode: int) -> None:
        calls[0] += 1
        if calls[0] == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, text, mode)

    monkeypatch.setattr(emit, "_write_new", full)
    with pytest.raises(OutputError, match="No space left on device") as info:
        write_output_dir(site.out, fake_docs(["ns/a", "ns/b"], version="2"))
    assert info.value.exit_code == 1 and "nothing was changed" in str(info.value)
    assert tree(site.root) == before


def test_a_crashed_render_litter_is_not_refused_later(site: SimpleNamespace) -> None:
    """A staging folder without a committed journal (killed while staging) is rolled back."""
    write_output_dir(site.out, fake_docs(["ns/a"]))
    txn = site.out / TXN_DIR
    txn.mkdir()
    (txn / "f0").write_text("half")
    (txn / "journal.json.new").write_text('{"gener')
    summary = write_output_dir(site.out, fake_docs(["ns/a"]))
    assert not txn.exists() and summary.written == () and summary.replaced == ()


def test_a_tampered_journal_is_refused(site: SimpleNamespace) -> None:
    txn = site.out / TXN_DIR
    txn.mkdir()
    (txn / "f0").write_text("x")
    (txn / "journal.json").write_text(json.dumps(
        {"generator": "llmdeploy", "renames": [["f0", "../victim.txt"]], "removes": ["../../victim.txt"],
         "folders": []}))
    with pytest.raises(UsageError, match=r"renames\[0\]\[1\]"):
        write_output_dir(site.out, fake_docs(["ns/a"]))
    assert_victims(site)


def test_threads_in_one_process_are_serialised_too(site: SimpleNamespace) -> None:
    errors: list[BaseException] = []

    def worker(services: list[str]) -> None:
        try:
            for i in range(5):
                write_output_dir(site.out, fake_docs(services, version=str(i)))
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(s,)) for s in (["ns/a"], ["ns/b"])]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    owned = json.loads((site.out / OWNED_FILE).read_text())
    assert set(owned["services"]) == {"ns--a", "ns--b"}
