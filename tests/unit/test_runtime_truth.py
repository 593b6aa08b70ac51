"""Runtime truth: what the cluster does with the rendered objects, beyond their schemas.

Each test here is a defect found by reading the controller or engine source at the pinned
release (KServe v0.20.0, Knative knative-v1.23.0, vLLM 0.10.2/0.11.0 with torch 2.8.0); the
docstrings cite the file. Each failed on the code before its fix.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from llmdeploy.cli import app

BASE = """\
apiVersion: llmdeploy.dev/v1alpha1
kind: LLMService
metadata: {{name: {name}, namespace: ml}}
model:
  id: meta-llama/Llama-3.1-8B-Instruct
  storageUri: hf://meta-llama/Llama-3.1-8B-Instruct
  credentials: {{secretRef: hf-token}}
runtime: {{image: "{image}", maxModelLen: 8192, port: {port}}}
resources: {{gpu: {{type: a100-80gb}}}}
deployment: {deployment}
scaling: {scaling}
monitoring: {monitoring}
"""


def _spec(name: str = "svc", image: str = "vllm/vllm-openai:v0.11.0", port: int = 8000, deployment: str = "{}",
          scaling: str = "{}", monitoring: str = "{}") -> str:
    return BASE.format(name=name, image=image, port=port, deployment=deployment, scaling=scaling,
                       monitoring=monitoring)


def _render(tmp_path: Path, *texts: str, expect: int = 0) -> list[dict]:  # type: ignore[type-arg]
    paths = []
    for i, text in enumerate(texts):
        p = tmp_path / f"s{i}.llmdeploy.yaml"
        p.write_text(text)
        paths.append(str(p))
    r = CliRunner().invoke(app, ["render", *paths], catch_exceptions=False)
    assert r.exit_code == expect, r.stderr
    return [d for d in yaml.safe_load_all(r.stdout) if d] if expect == 0 else [{"stderr": r.stderr}]


def _kind(docs: list[dict], kind: str) -> list[dict]:  # type: ignore[type-arg]
    return [d for d in docs if d["kind"] == kind]


def _container(isvc: dict) -> dict:  # type: ignore[type-arg]
    return isvc["spec"]["predictor"]["model"]


# ---------------------------------------------------------------- 1. a usable identity


def test_a_non_root_engine_has_a_user_name(tmp_path: Path) -> None:
    """torch 2.8.0 ``_inductor/codecache.py`` calls ``default_cache_dir()`` → ``getpass.getuser()``
    when vLLM imports the model class; the vLLM image (no ``USER`` in docker/Dockerfile at
    v0.10.2/v0.11.0) has no passwd entry for UID 1000, so ``getpwuid`` raises KeyError and the
    pod crash-loops. ``getpass.getuser()`` reads ``LOGNAME``/``USER`` first (CPython getpass.py),
    which is the only fix a manifest can make (``TORCHINDUCTOR_CACHE_DIR`` does not avoid the call).
    """
    isvc = _kind(_render(tmp_path, _spec()), "InferenceService")[0]
    model = _container(isvc)
    assert model["securityContext"]["runAsUser"] != 0
    env = {e["name"]: e.get("value") for e in model["env"]}
    assert env.get("USER") and env.get("LOGNAME") == env["USER"]
    assert env["HOME"].startswith("/tmp")


# ---------------------------------------------------------------- 2. Knative probes


def test_knative_probes_use_the_port_number(tmp_path: Path) -> None:
    """Knative (pkg/reconciler/revision/resources/deploy.go, knative-v1.23.0) renames the user
    port to ``user-port`` and rewrites only the liveness probe's named port; a startupProbe on
    ``port: http1`` no longer resolves and the revision never becomes ready."""
    text = _spec(deployment="{mode: knative}", scaling="{autoscaler: kpa, metric: concurrency}")
    isvc = _kind(_render(tmp_path, text), "InferenceService")[0]
    model = _container(isvc)
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert model[probe]["httpGet"]["port"] == 8000, probe


# ---------------------------------------------------------------- 4. label lengths


@pytest.mark.parametrize("length", [49, 53])
def test_names_whose_kserve_app_label_would_be_too_long_are_refused(tmp_path: Path, length: int) -> None:
    """KServe labels the raw Deployment and Service ``app: isvc.<name>-predictor``
    (pkg/constants/constants.go, raw deployment reconciler); a label value is at most 63
    characters, so a Standard-mode name is at most 48."""
    name = "a" * length
    out = _render(tmp_path, _spec(name=name), expect=1)
    assert "LD110" in out[0]["stderr"] and "48" in out[0]["stderr"]


def test_a_48_character_name_renders(tmp_path: Path) -> None:
    docs = _render(tmp_path, _spec(name="a" * 48))
    assert _kind(docs, "InferenceService")


# ---------------------------------------------------------------- 5. shared runtime identity


def test_runtimes_that_differ_have_different_names(tmp_path: Path) -> None:
    """A ClusterServingRuntime is cluster-scoped; KServe re-reconciles every InferenceService
    that uses it when it changes. Two services with another image or port must not overwrite
    each other's runtime: the name follows the content."""
    a = _spec(name="a")
    b = _spec(name="b", image="registry.example.com/mirror/vllm-openai:v0.11.0")
    c = _spec(name="c", port=8080)
    docs = _render(tmp_path, a, b, c)
    runtimes = _kind(docs, "ClusterServingRuntime")
    assert len({r["metadata"]["name"] for r in runtimes}) == 3
    for isvc in _kind(docs, "InferenceService"):
        used = _container(isvc)["runtime"]
        rt = next(r for r in runtimes if r["metadata"]["name"] == used)
        assert rt["spec"]["containers"][0]["ports"][0]["containerPort"] == (8080 if isvc["metadata"]["name"] == "c"
                                                                            else 8000)


def test_identical_runtimes_are_shared(tmp_path: Path) -> None:
    docs = _render(tmp_path, _spec(name="a"), _spec(name="b"))
    assert len(_kind(docs, "ClusterServingRuntime")) == 1


# ---------------------------------------------------------------- 6. pod template stability


def _pod_metadata(isvc: dict) -> dict:  # type: ignore[type-arg]
    """What KServe merges into the pod template (components/predictor.go buildObjectMeta):
    the InferenceService's labels and annotations, then the predictor's."""
    meta = isvc["metadata"]
    pred = isvc["spec"]["predictor"]
    return {"labels": {**meta.get("labels", {}), **pred.get("labels", {})},
            "annotations": {**meta.get("annotations", {}), **pred.get("annotations", {})},
            "predictor": pred}


def test_a_monitoring_only_edit_does_not_roll_the_gpu_pods(tmp_path: Path) -> None:
    before = _kind(_render(tmp_path, _spec()), "InferenceService")[0]
    after = _kind(_render(tmp_path, _spec(monitoring="{alerts: {ttftP95Seconds: 7, errorRate: 0.2}}")),
                  "InferenceService")[0]
    assert _pod_metadata(before) == _pod_metadata(after)


# ---------------------------------------------------------------- 10. explicit minReplicas


def test_profile_scale_to_zero_does_not_override_an_explicit_min_replicas(tmp_path: Path) -> None:
    """Under the dev profile (scaleToZero: true) a spec that says minReplicas: 1 must not get
    idleReplicaCount 0: its triggers read engine metrics that vanish with the last pod."""
    text = _spec(scaling="{autoscaler: keda, minReplicas: 1}").replace("kind: LLMService\n",
                                                                     "kind: LLMService\nprofile: dev\n")
    out = _render(tmp_path, text, expect=1)
    assert "LD317" in out[0]["stderr"]


# ---------------------------------------------------------------- 9. TargetDown on scale-up


def test_target_down_waits_for_download_and_load(tmp_path: Path) -> None:
    """prometheus-operator keeps Pending pods as targets (pkg/prometheus/promcfg.go, v0.93.0
    drops only Failed/Succeeded), so a scaling-up pod is ``up == 0`` while it downloads and
    loads the model; ``for:`` covers pod start + download + the startupProbe budget."""
    from llmdeploy.promql import parse_duration

    docs = _render(tmp_path, _spec(monitoring="{alerts: {forDuration: 5m}}"))
    isvc = _kind(docs, "InferenceService")[0]
    probe = _container(isvc)["startupProbe"]
    startup = probe["periodSeconds"] * probe["failureThreshold"]
    rules = [r for g in _kind(docs, "PrometheusRule")[0]["spec"]["groups"] for r in g["rules"] if "alert" in r]
    down = next(r for r in rules if r["alert"] == "LLMServiceTargetDown")
    # Llama-3.1-8B: ~15 GB from the Hub at 100 MB/s is ~150 s before the engine even starts.
    assert parse_duration(down["for"]) >= startup + 30 + 150


# ---------------------------------------------------------------- 8. Knative NetworkPolicy


def test_knative_network_policy_must_admit_the_gateway(tmp_path: Path) -> None:
    """Once the activator leaves the path (knative serving pkg/reconciler/autoscaling/kpa/kpa.go)
    the ingress gateway talks to the pods directly; a policy admitting only knative-serving drops it."""
    base = dict(scaling="{autoscaler: kpa, metric: concurrency}")
    out = _render(tmp_path, _spec(deployment="{mode: knative, networkPolicy: {enabled: true}}", **base), expect=1)
    assert "LD406" in out[0]["stderr"]
    docs = _render(tmp_path, _spec(
        deployment="{mode: knative, networkPolicy: {enabled: true, gatewayNamespace: kourier-system}}", **base))
    policy = _kind(docs, "NetworkPolicy")[0]
    admitted = {s.get("namespaceSelector", {}).get("matchLabels", {}).get("kubernetes.io/metadata.name")
                for rule in policy["spec"]["ingress"] for s in rule["from"]}
    assert {"kourier-system", "knative-serving"} <= admitted
