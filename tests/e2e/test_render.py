"""Rendering end to end: golden files, the facts that matter, strict CRD checks, injection safety."""

from __future__ import annotations

import difflib
import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import EXAMPLES, ROOT, run_cli
from typer.testing import CliRunner

from llmdeploy.cli import app

GOLDEN = ROOT / "tests" / "golden"
EXAMPLE_FILES = sorted(EXAMPLES.glob("*.yaml"))


def _render(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["render", *args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def _docs(text: str) -> list[dict]:
    return [d for d in yaml.safe_load_all(text) if d is not None]


@pytest.fixture(scope="module")
def rendered(shared_crds: Path) -> dict[str, str]:
    out = {}
    for f in EXAMPLE_FILES:
        code, stdout, stderr = _render(str(f), "--crds", str(shared_crds))
        assert code == 0, f"{f.name}: exit {code}\n{stderr}"
        out[f.name] = stdout
    return out


@pytest.mark.parametrize("example", EXAMPLE_FILES, ids=lambda p: p.name)
def test_golden(example: Path, rendered: dict[str, str], update_golden: bool) -> None:
    """Each example renders byte-for-byte as its golden file (pytest --update-golden rewrites them)."""
    got = rendered[example.name]
    golden = GOLDEN / (example.name.removesuffix(".llmdeploy.yaml") + ".yaml")
    if update_golden or not golden.exists():
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(got, encoding="utf-8")
        if not update_golden:
            pytest.fail(f"golden file {golden.name} was missing and has been written; review and commit it")
        return
    want = golden.read_text(encoding="utf-8")
    if got != want:
        diff = "".join(difflib.unified_diff(want.splitlines(True), got.splitlines(True),
                                            f"golden/{golden.name}", "rendered", n=2))
        pytest.fail(f"{example.name} differs from its golden file (run pytest --update-golden if intended):\n{diff[:8000]}")


@pytest.mark.parametrize("example", EXAMPLE_FILES, ids=lambda p: p.name)
def test_rendered_facts(example: Path, rendered: dict[str, str]) -> None:
    """GPU limits = TP × PP, args match the spec, deploymentMode always set, secrets only by reference."""
    spec = yaml.safe_load(example.read_text())
    docs = _docs(rendered[example.name])
    isvcs = [d for d in docs if d["kind"] in ("InferenceService", "LLMInferenceService", "LeaderWorkerSet")]
    # A DisaggregatedSet's roles are LeaderWorkerSet specs (the prefill role at the service's tensor size here).
    isvcs += [{"kind": "LeaderWorkerSet", "metadata": d["metadata"], "spec": r["spec"]}
              for d in docs if d["kind"] == "DisaggregatedSet" for r in d["spec"]["roles"]]
    assert isvcs, "no InferenceService rendered"
    par = spec.get("resources", {}).get("parallelism", {})
    # One pod per node: a multi-node replica's GPUs split evenly over its pods.
    gpus = par.get("tensor", 1) * par.get("pipeline", 1) * par.get("data", 1) // spec["resources"].get("nodes", 1)
    for isvc in isvcs:
        ann = isvc["metadata"]["annotations"]
        llm = isvc["kind"] == "LLMInferenceService"  # the engine container is spec.template's `main`
        lws = isvc["kind"] == "LeaderWorkerSet"  # the engine container is the leader template's
        assert llm or lws or ann["serving.kserve.io/deploymentMode"] in ("Standard", "Knative")
        assert isvc["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "llmdeploy"
        assert "llmdeploy.dev/spec-hash" not in isvc["metadata"]["labels"]  # it would reach the pods
        if lws:
            pred = isvc["spec"]["leaderWorkerTemplate"]["leaderTemplate"]["spec"]
            model = pred["containers"][0]
        else:
            pred = isvc["spec"]["template"] if llm else isvc["spec"]["predictor"]
            model = pred["containers"][0] if llm else pred["model"]
        limits = model["resources"]["limits"]
        gpu_keys = [k for k in limits if k.endswith("/gpu")]
        assert len(gpu_keys) == 1 and int(limits[gpu_keys[0]]) == gpus
        args = model["args"]
        if spec.get("runtime", {}).get("engine", "vllm") == "vllm":
            mml = spec.get("runtime", {}).get("maxModelLen", 8192)
            assert f"--max-model-len={mml}" in args
            assert f"--tensor-parallel-size={par.get('tensor', 1)}" in args
            seqs = [a for a in args if a.startswith("--max-num-seqs=")]
            assert len(seqs) == 1 and int(seqs[0].split("=")[1]) >= 1
        for env in model.get("env", []):
            if any(w in env["name"].upper() for w in ("TOKEN", "KEY", "SECRET", "PASSWORD")):
                assert "valueFrom" in env and "value" not in env, env
        vols = {v["name"]: v for v in pred["volumes"]}
        assert vols["dshm"]["emptyDir"]["medium"] == "Memory"
        assert model["startupProbe"]["httpGet"]["path"] == "/health"
        if not llm and not lws and ann["serving.kserve.io/deploymentMode"] == "Knative":
            # Knative's pod/container schema has neither field: queue-proxy drains instead.
            assert "terminationGracePeriodSeconds" not in pred and "lifecycle" not in model
        else:
            assert pred["terminationGracePeriodSeconds"] >= 120
            assert "preStop" in model["lifecycle"]
        sec = model["securityContext"]
        assert sec["allowPrivilegeEscalation"] is False and sec["capabilities"]["drop"] == ["ALL"]


def test_every_document_passes_strict_crd_check(rendered: dict[str, str], shared_crds: Path) -> None:
    """Every document of every example passes the strict check against the upstream CRDs (not just 'unchecked')."""
    from llmdeploy.check import Checker

    checker = Checker([shared_crds])
    for name, text in rendered.items():
        report = checker.check(_docs(text))
        assert not report.problems, f"{name}: {[str(p) for p in report.problems]}"
        assert not report.unchecked, f"{name}: kinds without a CRD: {report.unchecked}"


def test_render_is_deterministic(shared_crds: Path) -> None:
    """Same spec, same bytes — across processes too (no hash seeds, no dict-order accidents)."""
    ex = str(EXAMPLES / "llama-3.3-70b-h100-tp2.llmdeploy.yaml")
    a = run_cli("render", ex, "--crds", str(shared_crds), env={"PYTHONHASHSEED": "1"})
    b = run_cli("render", ex, "--crds", str(shared_crds), env={"PYTHONHASHSEED": "2"})
    assert a.returncode == 0, a.stderr
    assert a.stdout == b.stdout
    assert a.stdout.startswith("---\n")


def test_stdout_has_manifests_only_and_json_list(shared_crds: Path) -> None:
    ex = str(EXAMPLES / "llama-3.1-8b-l4.llmdeploy.yaml")
    y = run_cli("render", ex, "--crds", str(shared_crds))
    j = run_cli("render", ex, "--crds", str(shared_crds), "--format", "json")
    assert y.returncode == 0 and j.returncode == 0
    lst = json.loads(j.stdout)
    assert lst["apiVersion"] == "v1" and lst["kind"] == "List"
    assert lst["items"] == _docs(y.stdout)


def test_only_filters_kinds(shared_crds: Path) -> None:
    ex = str(EXAMPLES / "llama-3.1-8b-l4.llmdeploy.yaml")
    code, out, _ = _render(ex, "--crds", str(shared_crds), "--only", "InferenceService,runtime")
    assert code == 0
    assert sorted(d["kind"] for d in _docs(out)) == ["ClusterServingRuntime", "InferenceService"]
    code, _, err = _render(ex, "--only", "Nope")
    assert code == 2 and "matches nothing" in err


def test_invalid_spec_renders_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.llmdeploy.yaml"
    bad.write_text((EXAMPLES / "llama-3.1-8b-l4.llmdeploy.yaml").read_text().replace("maxModelLen: 8192", "maxModelLen: -1"))
    r = run_cli("render", str(bad))
    assert r.returncode == 1
    assert r.stdout == ""
    assert "LD104" in r.stderr


def test_output_dir_atomic_and_kustomize(tmp_path: Path, shared_crds: Path) -> None:
    out = tmp_path / "deploy"
    code, _, err = _render(str(EXAMPLES), "--output-dir", str(out), "--crds", str(shared_crds))
    assert code == 0, err
    assert (out / "kustomization.yaml").is_file()
    assert (out / "cluster" / "kustomization.yaml").is_file()
    # A file llmdeploy did not write is never touched; one it would overwrite is an error.
    foreign = out / "README.md"
    foreign.write_text("mine")
    code, _, err = _render(str(EXAMPLES / "llama-3.1-8b-l4.llmdeploy.yaml"), "--output-dir", str(out), "--crds", str(shared_crds))
    assert code == 0, err
    assert foreign.read_text() == "mine"
    # Files of services not rendered in this run are kept (the folder may be shared) ...
    assert any(p.name.startswith("inferenceservice-llama-3-3-70b") for p in out.rglob("*.yaml"))
    code, _, err = _render(str(EXAMPLES / "llama-3.1-8b-l4.llmdeploy.yaml"), "--output-dir", str(out), "--crds", str(shared_crds),
                           "--prune")
    assert code == 0, err
    assert foreign.read_text() == "mine"
    # ... and removed with --prune; the kept service is still complete.
    assert not any(p.name.startswith("inferenceservice-llama-3-3-70b") for p in out.rglob("*.yaml"))
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl not installed: cannot run `kubectl kustomize`")
    r = subprocess.run([kubectl, "kustomize", str(out)], capture_output=True, text=True, timeout=60,
                       env={"KUBECONFIG": "/nonexistent", "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
    kinds = {d["kind"] for d in _docs(r.stdout)}
    assert {"InferenceService", "ClusterServingRuntime"} <= kinds


def test_output_dir_refuses_foreign_file(tmp_path: Path) -> None:
    out = tmp_path / "deploy"
    (out / "cluster").mkdir(parents=True)
    (out / "kustomization.yaml").write_text("# someone else's\n")
    code, _, err = _render(str(EXAMPLES / "llama-3.1-8b-l4.llmdeploy.yaml"), "--output-dir", str(out))
    assert code == 2
    assert "was not written by llmdeploy" in err
    assert (out / "kustomization.yaml").read_text() == "# someone else's\n"
    assert sorted(p.name for p in out.rglob("*")) == ["cluster", "kustomization.yaml"]


NASTY = [
    "a\nb: injected",
    "x: y",
    "# comment",
    "{{ 7 * 7 }}",
    "---\nkind: Secret",
    "'single' \"double\"",
    "ünïcödé ☃ \u2028 line-sep",
    "- item",
    "*alias &anchor !!python/object",
]


@pytest.mark.parametrize("nasty", NASTY)
def test_injection_safety(tmp_path: Path, nasty: str) -> None:
    """User strings with newlines, ': ', '#', '{{ }}', '---', quotes and unicode add no keys or documents."""
    base = yaml.safe_load((EXAMPLES / "llama-3.1-8b-l4.llmdeploy.yaml").read_text())
    base["metadata"]["annotations"] = {"team.example.com/note": nasty}
    base["model"]["servedName"] = nasty
    base["runtime"]["env"] = [{"name": "NOTE", "value": nasty}]
    base["runtime"]["extraArgs"] = [f"--chat-template={nasty}"]
    base["monitoring"]["alerts"] = {"runbookBaseUrl": "https://runbooks.example.com/" + nasty.replace("\n", " ")}
    spec = tmp_path / "nasty.llmdeploy.yaml"
    spec.write_text(yaml.safe_dump(base, allow_unicode=True))
    clean = yaml.safe_load((EXAMPLES / "llama-3.1-8b-l4.llmdeploy.yaml").read_text())
    clean_file = tmp_path / "clean.llmdeploy.yaml"
    clean_file.write_text(yaml.safe_dump(clean))
    code, out, err = _render(str(spec))
    assert code == 0, err
    code2, out2, err2 = _render(str(clean_file))
    assert code2 == 0, err2
    docs, docs2 = _docs(out), _docs(out2)
    assert [(d["kind"], d["metadata"]["name"]) for d in docs] == [(d["kind"], d["metadata"]["name"]) for d in docs2]
    for d, d2 in zip(docs, docs2):
        assert set(d) == set(d2)
        assert set(d.get("spec", {})) == set(d2.get("spec", {}))
    isvc = next(d for d in docs if d["kind"] == "InferenceService")
    assert isvc["metadata"]["annotations"]["team.example.com/note"] == nasty
    model = isvc["spec"]["predictor"]["model"]
    assert f"--served-model-name={nasty}" in model["args"]
    assert {"name": "NOTE", "value": nasty} in model["env"]
    assert not any(d["kind"] == "Secret" for d in docs)


def test_keda_fallback_only_with_average_value_triggers(rendered: dict[str, str]) -> None:
    """KEDA's webhook (CheckFallbackValid) rejects `fallback` unless every trigger is AverageValue."""
    seen_value = False
    for name, text in rendered.items():
        for d in _docs(text):
            if d["kind"] != "ScaledObject":
                continue
            spec = d["spec"]
            types = {t.get("metricType") for t in spec["triggers"]}
            if "fallback" in spec:
                assert types == {"AverageValue"}, f"{name}: fallback with {types}"
            seen_value = seen_value or "Value" in types
            # CheckReplicaCountBoundsAreValid: idle < min <= max.
            if "idleReplicaCount" in spec:
                assert spec["idleReplicaCount"] < spec["minReplicaCount"], name
            assert spec["minReplicaCount"] <= spec["maxReplicaCount"], name
    assert seen_value, "no example exercises a Value trigger (ttftP95/itlP95/kvCacheUsage)"
