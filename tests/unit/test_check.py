"""Tests for the offline ``check`` stage (llmdeploy.check).

The real upstream CRDs live outside the project, in ``../shared/crds`` relative to the repo
root (see its PROVENANCE.md); tests that need them are skipped when that folder is absent.
"""

from __future__ import annotations

import copy
import json
import os
import re
import time
from pathlib import Path
from typing import Any

import pytest

from llmdeploy.check import (
    Checker,
    CheckProblem,
    CheckReport,
    CRDLoadError,
    convert_crd_schema,
    crd_paths_from_env,
    default_cache_dir,
    supported_kubernetes_versions,
)
from llmdeploy.check import cel as cel_mod
from llmdeploy.check import core as core_mod
from llmdeploy.check import crd_files as crd_files_mod
from llmdeploy.check import crd_schema as crd_schema_mod

CRDS_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "crds"

needs_crds = pytest.mark.skipif(
    not CRDS_DIR.is_dir(),
    reason=f"upstream CRDs not found at {CRDS_DIR} (shared/crds next to the repository)",
)


def crd_files() -> list[Path]:
    if not CRDS_DIR.is_dir():
        return []
    return sorted(p for p in CRDS_DIR.rglob("*") if p.suffix in (".yaml", ".yml", ".json"))


@pytest.fixture(scope="module")
def cache_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("llmdeploy-cache")


@pytest.fixture(scope="module")
def checker(cache_base: Path) -> Checker:
    if not CRDS_DIR.is_dir():
        pytest.skip(f"upstream CRDs not found at {CRDS_DIR}")
    return Checker([CRDS_DIR], kubernetes_version="1.33", cache_dir=cache_base)


@pytest.fixture
def no_cel(monkeypatch: pytest.MonkeyPatch) -> None:
    """Behave as if cel-python were not installed."""
    monkeypatch.setattr(cel_mod, "_CEL_STATE", {"celpy": None, "programs": {}})


def paths_and_messages(report: CheckReport) -> list[tuple[str, str]]:
    return [(p.path, p.message) for p in report.problems]


# ------------------------------------------------------------------------------------------
# Good documents
# ------------------------------------------------------------------------------------------

NS = "llm"
LABELS = {
    "app.kubernetes.io/name": "llama-3-8b",
    "app.kubernetes.io/managed-by": "llmdeploy",
    "llmdeploy.io/model": "meta-llama.Llama-3.1-8B-Instruct",
}


def meta(name: str = "llama-3-8b", **extra: Any) -> dict[str, Any]:
    return {"name": name, "namespace": NS, "labels": dict(LABELS), **extra}


INFERENCE_SERVICE: dict[str, Any] = {
    "apiVersion": "serving.kserve.io/v1beta1",
    "kind": "InferenceService",
    "metadata": meta(
        annotations={
            "serving.kserve.io/deploymentMode": "RawDeployment",
            "serving.kserve.io/autoscalerClass": "external",
            "prometheus.io/scrape": "true",
        }
    ),
    "spec": {
        "predictor": {
            "minReplicas": 1,
            "maxReplicas": 4,
            "serviceAccountName": "llama-3-8b",
            "nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-L4"},
            "tolerations": [
                {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
            ],
            "model": {
                "modelFormat": {"name": "huggingface"},
                "runtime": "llmdeploy-vllm",
                "storageUri": "hf://meta-llama/Llama-3.1-8B-Instruct",
                "args": ["--max-model-len=8192", "--gpu-memory-utilization=0.9"],
                "env": [
                    {
                        "name": "HF_TOKEN",
                        "valueFrom": {"secretKeyRef": {"name": "hf-token", "key": "token"}},
                    },
                    {"name": "VLLM_LOGGING_LEVEL", "value": "INFO"},
                ],
                "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
                "resources": {
                    "requests": {"cpu": "4", "memory": "24Gi", "nvidia.com/gpu": 1},
                    "limits": {"cpu": "8", "memory": "32Gi", "nvidia.com/gpu": "1"},
                },
                "readinessProbe": {
                    "httpGet": {"path": "/health", "port": 8080},
                    "periodSeconds": 10,
                    "failureThreshold": 3,
                },
            },
        }
    },
}

CLUSTER_SERVING_RUNTIME: dict[str, Any] = {
    "apiVersion": "serving.kserve.io/v1alpha1",
    "kind": "ClusterServingRuntime",
    "metadata": {"name": "llmdeploy-vllm", "labels": dict(LABELS)},
    "spec": {
        "supportedModelFormats": [{"name": "huggingface", "version": "1", "autoSelect": True}],
        "protocolVersions": ["v2", "v1"],
        "annotations": {"prometheus.io/port": "8080", "prometheus.io/path": "/metrics"},
        "containers": [
            {
                "name": "kserve-container",
                "image": "vllm/vllm-openai:v0.10.1",
                "command": ["python3", "-m", "vllm.entrypoints.openai.api_server"],
                "args": ["--port=8080", "--model=/mnt/models", "--served-model-name={{.Name}}"],
                "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
                "resources": {
                    "requests": {"cpu": "1", "memory": "2Gi"},
                    "limits": {"cpu": "1", "memory": "2Gi"},
                },
                "volumeMounts": [{"name": "dshm", "mountPath": "/dev/shm"}],
                "livenessProbe": {
                    "httpGet": {"path": "/health", "port": 8080},
                    "initialDelaySeconds": 60,
                    "periodSeconds": 15,
                },
                "readinessProbe": {"httpGet": {"path": "/health", "port": "http"}},
                "startupProbe": {
                    "httpGet": {"path": "/health", "port": 8080},
                    "failureThreshold": 120,
                    "periodSeconds": 10,
                },
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "runAsNonRoot": True,
                    "capabilities": {"drop": ["ALL"]},
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
            }
        ],
        "volumes": [{"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "8Gi"}}],
    },
}

SCALED_OBJECT: dict[str, Any] = {
    "apiVersion": "keda.sh/v1alpha1",
    "kind": "ScaledObject",
    "metadata": meta(),
    "spec": {
        "scaleTargetRef": {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": "llama-3-8b-predictor",
        },
        "minReplicaCount": 1,
        "maxReplicaCount": 4,
        "pollingInterval": 15,
        "cooldownPeriod": 300,
        "advanced": {
            "horizontalPodAutoscalerConfig": {
                "behavior": {
                    "scaleUp": {
                        "stabilizationWindowSeconds": 0,
                        "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}],
                    },
                    "scaleDown": {
                        "stabilizationWindowSeconds": 600,
                        "selectPolicy": "Max",
                        "policies": [{"type": "Percent", "value": 50, "periodSeconds": 120}],
                    },
                }
            }
        },
        "triggers": [
            {
                "type": "prometheus",
                "name": "vllm-queue",
                "metadata": {
                    "serverAddress": "http://prometheus-operated.monitoring.svc:9090",
                    "query": 'sum(vllm:num_requests_waiting{namespace="llm",model_name="llama"})',
                    "threshold": "5",
                    "activationThreshold": "1",
                },
                "authenticationRef": {
                    "name": "llama-3-8b-prometheus",
                    "kind": "TriggerAuthentication",
                },
            }
        ],
    },
}

TRIGGER_AUTHENTICATION: dict[str, Any] = {
    "apiVersion": "keda.sh/v1alpha1",
    "kind": "TriggerAuthentication",
    "metadata": meta("llama-3-8b-prometheus"),
    "spec": {
        "secretTargetRef": [
            {"parameter": "bearerToken", "name": "prometheus-token", "key": "token"},
            {"parameter": "ca", "name": "prometheus-token", "key": "ca.crt"},
        ]
    },
}

POD_MONITOR: dict[str, Any] = {
    "apiVersion": "monitoring.coreos.com/v1",
    "kind": "PodMonitor",
    "metadata": meta(),
    "spec": {
        "selector": {"matchLabels": {"serving.kserve.io/inferenceservice": "llama-3-8b"}},
        "namespaceSelector": {"matchNames": [NS]},
        "podMetricsEndpoints": [
            {
                "port": "http",
                "path": "/metrics",
                "interval": "15s",
                "scrapeTimeout": "10s",
                "relabelings": [
                    {
                        "sourceLabels": ["__meta_kubernetes_pod_name"],
                        "targetLabel": "pod",
                        "action": "replace",
                    }
                ],
            }
        ],
    },
}

SERVICE_MONITOR: dict[str, Any] = {
    "apiVersion": "monitoring.coreos.com/v1",
    "kind": "ServiceMonitor",
    "metadata": meta(),
    "spec": {
        "selector": {"matchLabels": {"app.kubernetes.io/name": "llama-3-8b"}},
        "endpoints": [{"port": "http", "path": "/metrics", "interval": "30s", "scheme": "http"}],
        "jobLabel": "app.kubernetes.io/name",
    },
}

PROMETHEUS_RULE: dict[str, Any] = {
    "apiVersion": "monitoring.coreos.com/v1",
    "kind": "PrometheusRule",
    "metadata": meta(),
    "spec": {
        "groups": [
            {
                "name": "llmdeploy.llama-3-8b.recording",
                "interval": "30s",
                "rules": [
                    {
                        "record": "llmdeploy:vllm_queue:sum",
                        "expr": "sum by (namespace, model_name) "
                        '(vllm:num_requests_waiting{namespace="llm"})',
                        "labels": {"team": "ml"},
                    }
                ],
            },
            {
                "name": "llmdeploy.llama-3-8b.alerts",
                "partial_response_strategy": "warn",
                "rules": [
                    {
                        "alert": "VLLMQueueHigh",
                        "expr": "llmdeploy:vllm_queue:sum > 10",
                        "for": "5m",
                        "labels": {"severity": "warning"},
                        "annotations": {
                            "summary": "vLLM queue is high for {{ $labels.model_name }}",
                            "runbook_url": "https://example.com/runbooks/vllm-queue",
                        },
                    }
                ],
            },
        ]
    },
}

HTTP_ROUTE: dict[str, Any] = {
    "apiVersion": "gateway.networking.k8s.io/v1",
    "kind": "HTTPRoute",
    "metadata": meta(),
    "spec": {
        "parentRefs": [{"name": "inference-gateway", "namespace": "gateway-system"}],
        "hostnames": ["llm.example.com"],
        "rules": [
            {
                "matches": [
                    {
                        "path": {"type": "PathPrefix", "value": "/v1"},
                        "headers": [{"type": "Exact", "name": "x-model", "value": "llama-3-8b"}],
                    }
                ],
                "backendRefs": [
                    {"name": "llama-3-8b-predictor", "port": 80, "weight": 90},
                    {"name": "llama-3-8b-canary-predictor", "port": 80, "weight": 10},
                ],
                "timeouts": {"request": "300s"},
            }
        ],
    },
}

PDB: dict[str, Any] = {
    "apiVersion": "policy/v1",
    "kind": "PodDisruptionBudget",
    "metadata": meta(),
    "spec": {
        "maxUnavailable": 1,
        "selector": {"matchLabels": {"serving.kserve.io/inferenceservice": "llama-3-8b"}},
    },
}

NETWORK_POLICY: dict[str, Any] = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "NetworkPolicy",
    "metadata": meta(),
    "spec": {
        "podSelector": {"matchLabels": {"serving.kserve.io/inferenceservice": "llama-3-8b"}},
        "policyTypes": ["Ingress"],
        "ingress": [
            {
                "from": [
                    {
                        "namespaceSelector": {
                            "matchLabels": {"kubernetes.io/metadata.name": "gateway-system"}
                        }
                    },
                    {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}},
                ],
                "ports": [{"protocol": "TCP", "port": 8080}, {"protocol": "TCP", "port": "http"}],
            }
        ],
    },
}

CONFIG_MAP: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": meta("llama-3-8b-chat-template"),
    "data": {"template.jinja": "{% for m in messages %}{{ m.content }}{% endfor %}"},
}

SERVICE: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": meta(),
    "spec": {
        "selector": {"serving.kserve.io/inferenceservice": "llama-3-8b"},
        "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}],
        "type": "ClusterIP",
    },
}

SERVICE_ACCOUNT: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "ServiceAccount",
    "metadata": meta(),
    "automountServiceAccountToken": False,
}

SECRET: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Secret",
    "metadata": meta("hf-token"),
    "type": "Opaque",
    "stringData": {"token": "hf_xxx"},
}

GOOD_CUSTOM = {
    "InferenceService": INFERENCE_SERVICE,
    "ClusterServingRuntime": CLUSTER_SERVING_RUNTIME,
    "ScaledObject": SCALED_OBJECT,
    "TriggerAuthentication": TRIGGER_AUTHENTICATION,
    "PodMonitor": POD_MONITOR,
    "ServiceMonitor": SERVICE_MONITOR,
    "PrometheusRule": PROMETHEUS_RULE,
    "HTTPRoute": HTTP_ROUTE,
}
GOOD_CORE = {
    "PodDisruptionBudget": PDB,
    "NetworkPolicy": NETWORK_POLICY,
    "ConfigMap": CONFIG_MAP,
    "Service": SERVICE,
    "ServiceAccount": SERVICE_ACCOUNT,
    "Secret": SECRET,
}


@pytest.mark.parametrize("kind", sorted(GOOD_CUSTOM))
def test_good_custom_resource_passes(checker: Checker, kind: str) -> None:
    report = checker.check([GOOD_CUSTOM[kind]])
    assert report.problems == ()
    assert report.unchecked == ()
    assert report.ok


@pytest.mark.parametrize("kind", sorted(GOOD_CORE))
def test_good_core_kind_passes(kind: str, tmp_path: Path) -> None:
    report = Checker(cache_dir=tmp_path).check([GOOD_CORE[kind]])
    assert report.problems == ()
    assert report.unchecked == ()


def test_good_stream_passes(checker: Checker) -> None:
    docs = [*GOOD_CORE.values(), *GOOD_CUSTOM.values(), None]
    report = checker.check(docs)
    assert [str(p) for p in report.problems] == []
    assert report.unchecked == ()


@pytest.mark.parametrize("version", ["1.25", "1.29", "1.37", "v1.33", "1.33.4"])
def test_core_kinds_other_versions(version: str, tmp_path: Path) -> None:
    checker = Checker(kubernetes_version=version, cache_dir=tmp_path)
    assert checker.check(list(GOOD_CORE.values())).problems == ()


# ------------------------------------------------------------------------------------------
# Bad documents
# ------------------------------------------------------------------------------------------


def mutate(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """Deep-copy ``doc`` and set ``path`` (as printed by CheckProblem) to ``value``."""
    out = copy.deepcopy(doc)
    parts: list[str | int] = []
    for token in re.findall(r"[^.\[\]]+|\[[^\]]+\]", path):
        if token.startswith("["):
            inner = token[1:-1]
            parts.append(int(inner) if inner.isdigit() else inner)
        else:
            parts.append(token)
    node: Any = out
    for part in parts[:-1]:
        node = node[part]
    node[parts[-1]] = value
    return out


HPA_BEHAVIOR = "spec.advanced.horizontalPodAutoscalerConfig.behavior"

BAD_CASES = [
    pytest.param(
        mutate(INFERENCE_SERVICE, "spec.predictor.model.storageURI", "hf://x"),
        "spec.predictor.model.storageURI",
        'unknown field "storageURI" (did you mean "storageUri"?)',
        id="isvc-unknown-field",
    ),
    pytest.param(
        mutate(INFERENCE_SERVICE, "spec.predictor.minReplicas", "1"),
        "spec.predictor.minReplicas",
        "'1' is not of type 'integer'",
        id="isvc-minReplicas-string",
    ),
    pytest.param(
        mutate(INFERENCE_SERVICE, "spec.predictor.model.resources.limits[nvidia.com/gpu]", "1.5x"),
        "spec.predictor.model.resources.limits[nvidia.com/gpu]",
        "'1.5x' does not match",
        id="isvc-bad-quantity",
    ),
    pytest.param(
        mutate(
            INFERENCE_SERVICE,
            "spec.predictor.model.ports",
            [
                {"containerPort": 8080},
                {"name": "metrics", "containerPort": 8080, "protocol": "TCP"},
            ],
        ),
        "spec.predictor.model.ports[1]",
        'Duplicate value: {"containerPort": 8080, "protocol": "TCP"}',
        id="isvc-duplicate-port-after-defaulting",
    ),
    pytest.param(
        mutate(INFERENCE_SERVICE, "metadata.name", "Bad_Name"),
        "metadata.name",
        "'Bad_Name' is not a valid name: a lowercase RFC 1123 subdomain",
        id="isvc-bad-name",
    ),
    pytest.param(
        mutate(INFERENCE_SERVICE, "metadata.labels", {"team": "ML Platform"}),
        "metadata.labels.team",
        "'ML Platform' is not a valid label value",
        id="isvc-bad-label-value",
    ),
    pytest.param(
        mutate(INFERENCE_SERVICE, "metadata.labels", {"bad key!": "x"}),
        "metadata.labels[bad key!]",
        "'bad key!' is not a valid key",
        id="isvc-bad-label-key",
    ),
    pytest.param(
        mutate(INFERENCE_SERVICE, "metadata.uid", "123"),
        "metadata.uid",
        'unknown field "uid"',
        id="isvc-strict-objectmeta",
    ),
    pytest.param(
        mutate(INFERENCE_SERVICE, "status", {"url": "http://x"}),
        "status",
        'unknown field "status"',
        id="isvc-status-dropped",
    ),
    pytest.param(
        mutate(SCALED_OBJECT, "spec.triggers[0].metadata.threshold", 5),
        "spec.triggers[0].metadata.threshold",
        "5 is not of type 'string'",
        id="keda-threshold-int",
    ),
    pytest.param(
        mutate(SCALED_OBJECT, f"{HPA_BEHAVIOR}.scaleDown.stabilizationWindowSeconds", 7200),
        f"{HPA_BEHAVIOR}.scaleDown.stabilizationWindowSeconds",
        "7200 is greater than the maximum of 3600",
        id="keda-stabilization-window",
    ),
    pytest.param(
        mutate(SCALED_OBJECT, "spec.pollingIntervall", 30),
        "spec.pollingIntervall",
        'unknown field "pollingIntervall" (did you mean "pollingInterval"?)',
        id="keda-typo",
    ),
    pytest.param(
        mutate(PROMETHEUS_RULE, "spec.groups[1].partial_response_strategy", "sometimes"),
        "spec.groups[1].partial_response_strategy",
        "'sometimes' does not match '^(?i)(abort|warn)?$'",
        id="promrule-bad-strategy",
    ),
    pytest.param(
        mutate(HTTP_ROUTE, "spec.rules[0].backendRefs[0].weight", -1),
        "spec.rules[0].backendRefs[0].weight",
        "-1 is less than the minimum of 0",
        id="httproute-negative-weight",
    ),
    pytest.param(
        mutate(CLUSTER_SERVING_RUNTIME, "spec.containers[0].readinessProbe.httpGet.port", True),
        "spec.containers[0].readinessProbe.httpGet.port",
        "True is not of type 'integer', 'string'",
        id="csr-int-or-string",
    ),
    pytest.param(
        mutate(CLUSTER_SERVING_RUNTIME, "apiVersion", "serving.kserve.io/v1alpha1"),
        None,
        None,
        id="csr-control-no-problem",
    ),
]


@pytest.mark.parametrize(("doc", "path", "message"), BAD_CASES)
def test_bad_custom_resource(
    checker: Checker, doc: dict[str, Any], path: str | None, message: str | None
) -> None:
    report = checker.check([doc])
    if path is None:
        assert report.problems == ()
        return
    assert report.problems, "expected a problem"
    matching = [
        p for p in report.problems if p.path == path and p.message.startswith(message or "")
    ]
    assert matching, paths_and_messages(report)
    problem = matching[0]
    assert problem.kind == doc["kind"]
    assert problem.api_version == doc["apiVersion"]
    assert problem.name == doc["metadata"]["name"]
    assert problem.doc_index == 0


def test_problem_str(checker: Checker) -> None:
    doc = mutate(INFERENCE_SERVICE, "spec.predictor.minReplicas", "1")
    doc["metadata"]["name"] = "llama"
    report = checker.check([CONFIG_MAP, SERVICE, doc])
    expected = (
        "InferenceService/llama (document 2) at spec.predictor.minReplicas: "
        "'1' is not of type 'integer'"
    )
    assert [str(p) for p in report.problems] == [expected]
    bare = CheckProblem(0, "", "", "", "", "document is a list, not a mapping")
    assert str(bare) == "document 0: document is a list, not a mapping"


def test_prometheus_rule_re2_pattern_rewrite(checker: Checker) -> None:
    for value in ("warn", "abort", "WARN", "Abort", ""):
        doc = mutate(PROMETHEUS_RULE, "spec.groups[1].partial_response_strategy", value)
        assert checker.check([doc]).problems == (), value
    # RE2's $ does not match before a trailing newline, so neither must ours.
    doc = mutate(PROMETHEUS_RULE, "spec.groups[1].partial_response_strategy", "warn\n")
    assert checker.check([doc]).problems


def test_all_errors_are_reported_sorted_and_unique(checker: Checker) -> None:
    bad = mutate(INFERENCE_SERVICE, "spec.predictor.minReplicas", "1")
    bad = mutate(bad, "spec.predictor.maxReplicas", "4")
    bad = mutate(bad, "spec.predictor.model.storageURI", "x")
    bad = mutate(bad, "spec.predictor.model.extra", "x")
    keda = mutate(SCALED_OBJECT, "spec.triggers[0].metadata.threshold", 5)
    report = checker.check([keda, GOOD_CORE["Service"], bad, bad])
    got = [(p.doc_index, p.path) for p in report.problems]
    assert got == [
        (0, "spec.triggers[0].metadata.threshold"),
        (2, "spec.predictor.maxReplicas"),
        (2, "spec.predictor.minReplicas"),
        (2, "spec.predictor.model.extra"),
        (2, "spec.predictor.model.storageURI"),
        (3, "spec.predictor.maxReplicas"),
        (3, "spec.predictor.minReplicas"),
        (3, "spec.predictor.model.extra"),
        (3, "spec.predictor.model.storageURI"),
    ]
    assert len(set(report.problems)) == len(report.problems)


def test_list_index_sorting_is_numeric(checker: Checker) -> None:
    doc = copy.deepcopy(PROMETHEUS_RULE)
    rules = doc["spec"]["groups"][0]["rules"]
    doc["spec"]["groups"][0]["rules"] = [dict(rules[0], bogus=i) for i in range(12)]
    paths = [p.path for p in checker.check([doc]).problems]
    assert paths == [f"spec.groups[0].rules[{i}].bogus" for i in range(12)]


# ------------------------------------------------------------------------------------------
# Core kinds
# ------------------------------------------------------------------------------------------


def core_problems(*docs: Any, version: str = "1.33") -> list[tuple[int, str, str]]:
    report = Checker(kubernetes_version=version, cache_dir=None).check(list(docs))
    return [(p.doc_index, p.path, p.message) for p in report.problems]


def test_core_pdb_unknown_field() -> None:
    doc = mutate(PDB, "spec.maxUnavailabe", 1)
    assert core_problems(doc) == [
        (0, "spec.maxUnavailabe", 'unknown field "maxUnavailabe" (did you mean "maxUnavailable"?)')
    ]


def test_core_network_policy_wrong_type() -> None:
    doc = mutate(NETWORK_POLICY, "spec.policyTypes", "Ingress")
    doc = mutate(doc, "spec.ingress[0].ports[0].port", [8080])
    problems = core_problems(doc)
    assert (0, "spec.policyTypes", "'Ingress' is not of type 'array', 'null'") in problems
    assert any(p[1] == "spec.ingress[0].ports[0].port" for p in problems), problems
    assert len(problems) == 2


def test_core_bad_names_and_labels() -> None:
    cm = mutate(CONFIG_MAP, "metadata.name", "Bad_Name")
    svc = mutate(SERVICE, "metadata.name", "1llama")  # Services need a DNS-1035 label
    lbl = mutate(CONFIG_MAP, "metadata.labels", {"a": "x" * 64, "b": "-x"})
    nameless = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}}
    problems = core_problems(cm, svc, lbl, nameless)
    assert [(i, path) for i, path, _ in problems] == [
        (0, "metadata.name"),
        (1, "metadata.name"),
        (2, "metadata.labels.a"),  # too long: one problem, not one per failed keyword
        (2, "metadata.labels.b"),
        (3, "metadata"),
    ]
    assert "RFC 1123 subdomain" in problems[0][2]
    assert "DNS-1035 label" in problems[1][2]
    assert problems[2][2] == (
        f"{'x' * 64!r} is not a valid label value: it must be at most 63 characters, empty or "
        "consist of alphanumeric characters, '-', '_' or '.', starting and ending with an "
        "alphanumeric character"
    )
    assert problems[4][2] == "'name' is a required property"


def test_core_null_int_or_string_is_absent() -> None:
    doc = mutate(PDB, "spec.minAvailable", None)
    assert core_problems(doc) == []


def test_core_duplicate_list_map_key() -> None:
    doc = mutate(
        SERVICE,
        "spec.ports",
        [
            {"name": "http", "port": 80, "protocol": "TCP"},
            {"name": "http2", "port": 80, "protocol": "TCP"},
        ],
    )
    assert core_problems(doc) == [
        (
            0,
            "spec.ports[1]",
            'Duplicate value: {"port": 80, "protocol": "TCP"} (same key as item 0)',
        )
    ]


def test_unknown_core_kind_is_a_problem() -> None:
    docs = [
        {"apiVersion": "apps/v1", "kind": "Deploymnet", "metadata": {"name": "x"}},
        {"apiVersion": "policy/v1beta1", "kind": "PodDisruptionBudget", "metadata": {"name": "x"}},
        {"apiVersion": "networking.k8s.io/v1", "kind": "Gateway", "metadata": {"name": "x"}},
    ]
    problems = core_problems(*docs)
    assert [(i, path) for i, path, _ in problems] == [(0, "kind"), (1, "kind"), (2, "kind")]
    assert problems[0][2] == "unknown kind 'Deploymnet' for apiVersion 'apps/v1' in Kubernetes 1.33"


def test_malformed_documents() -> None:
    docs: list[Any] = [["not", "a", "mapping"], {"kind": "ConfigMap"}, {"apiVersion": "v1"}, None]
    report = Checker(cache_dir=None).check(docs)
    assert [str(p) for p in report.problems] == [
        "document 0: document is a list, not a mapping",
        (
            "ConfigMap/<unnamed> (document 1): "
            "'apiVersion' is a required property (a non-empty string)"
        ),
        "document 2: 'kind' is a required property (a non-empty string)",
    ]


def test_kubernetes_version_validation() -> None:
    versions = supported_kubernetes_versions()
    assert "1.33" in versions and "1.25" in versions
    for bad in ("1.24", "2.0", "latest", "1"):
        with pytest.raises(ValueError):
            Checker(kubernetes_version=bad, cache_dir=None)


def test_builtin_groups_cover_kubernetes_validate() -> None:
    """Every group kube-apiserver serves (per the shipped definitions) counts as core."""
    schemas = core_mod._schema_root()
    for version in versions_dirs(schemas):
        defs = json.loads(schemas.joinpath(version, "_definitions.json").read_bytes())
        groups = {
            gvk["group"]
            for d in defs["$defs"].values()
            for gvk in d.get("x-kubernetes-group-version-kind", [])
        }
        assert groups <= core_mod._BUILTIN_GROUPS | {g for g in groups if "." not in g}, version


def versions_dirs(schemas: Any) -> list[str]:
    return sorted(e.name for e in schemas.iterdir() if e.name.endswith("-local-strict"))


# ------------------------------------------------------------------------------------------
# Custom resources without CRD, CRD loading
# ------------------------------------------------------------------------------------------


def test_custom_resource_without_crd_is_unchecked(tmp_path: Path) -> None:
    checker = Checker(cache_dir=tmp_path)
    report = checker.check([SCALED_OBJECT, INFERENCE_SERVICE, SCALED_OBJECT, CONFIG_MAP])
    assert report.problems == ()
    assert report.unchecked == (
        "InferenceService serving.kserve.io/v1beta1",
        "ScaledObject keda.sh/v1alpha1",
    )
    assert report.ok


@needs_crds
def test_unknown_version_of_known_crd_is_unchecked(checker: Checker) -> None:
    doc = dict(INFERENCE_SERVICE, apiVersion="serving.kserve.io/v1alpha9")
    report = checker.check([doc])
    assert report.problems == ()
    assert report.unchecked == ("InferenceService serving.kserve.io/v1alpha9",)


def _served_versions_on_disk() -> set[tuple[str, str, str]]:
    """Every (group, version, kind) the CRD files under ../shared/crds serve, read independently
    of the checker (shared/ grows as new upstream CRDs are added; the count is not fixed)."""
    import yaml

    found: set[tuple[str, str, str]] = set()
    for path in crd_files():
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
                for version in doc["spec"]["versions"]:
                    if version.get("served", True):
                        found.add((doc["spec"]["group"], version["name"], doc["spec"]["names"]["kind"]))
    return found


@needs_crds
def test_every_crd_loads_and_converts(tmp_path: Path) -> None:
    checker = Checker([CRDS_DIR], cache_dir=tmp_path)
    kinds = checker.known_kinds()
    expected = _served_versions_on_disk()
    assert len(kinds) == len(expected) and set(kinds) == expected
    assert ("serving.kserve.io", "v1beta1", "InferenceService") in kinds
    docs = [{"apiVersion": f"{g}/{v}", "kind": k, "metadata": {"name": "x"}} for g, v, k in kinds]
    report = checker.check(docs)
    assert report.unchecked == ()
    # Minimal objects only lack required fields; nothing may crash or be unknown.
    for problem in report.problems:
        assert problem.message.endswith("is a required property"), str(problem)
    assert checker.stats.converted == len(expected)


@needs_crds
@pytest.mark.slow
@pytest.mark.parametrize("crd_file", crd_files(), ids=lambda p: str(p.relative_to(CRDS_DIR)))
def test_converted_schemas_are_valid_json_schema(crd_file: Path) -> None:
    """check_schema on all 41 converted versions takes ~12 s in total, hence ``slow``."""
    from jsonschema import Draft202012Validator

    docs = crd_files_mod._load_crd_documents(crd_file.read_bytes(), crd_file)
    crds = [d for d in docs if isinstance(d, dict) and d.get("kind") == "CustomResourceDefinition"]
    assert crds
    for crd in crds:
        for version in crd["spec"]["versions"]:
            schema = convert_crd_schema(
                version["schema"]["openAPIV3Schema"],
                crd["spec"]["group"],
                version["name"],
                crd["spec"]["names"]["kind"],
            )
            Draft202012Validator.check_schema(schema)
            json.dumps(schema)  # cacheable


@needs_crds
def test_event_index_matches_full_load() -> None:
    for path in crd_files():
        data = path.read_bytes()
        fast = crd_files_mod._scan_yaml_index(data, path)
        full = crd_files_mod._index_records_from_objects(crd_files_mod._load_crd_documents(data, path))
        assert fast == full, path


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


SMALL_CRD = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  names: {kind: Widget, plural: widgets}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [size]
            properties:
              size: {type: integer, minimum: 1, exclusiveMinimum: true}
              ratio: {type: number, maximum: 1, exclusiveMaximum: false}
              note: {type: string, nullable: true}
              mode: {type: string, enum: [a, b], nullable: true}
              port: {x-kubernetes-int-or-string: true}
              tags: {type: array, items: {type: string}, x-kubernetes-list-type: set}
              code: {type: string, pattern: '^[a-z]+\\z'}
              free:
                type: object
                x-kubernetes-preserve-unknown-fields: true
                properties:
                  known:
                    type: object
                    properties:
                      x: {type: string}
                  list:
                    type: array
                    items:
                      type: object
                      properties:
                        y: {type: string}
              loose:
                type: array
                x-kubernetes-preserve-unknown-fields: true
                items:
                  type: object
                  properties:
                    y: {type: string}
              choice:
                type: object
                oneOf:
                - properties: {a: {type: string}}
                  required: [a]
                - properties: {b: {type: string}}
                  required: [b]
                properties:
                  a: {type: string}
                  b: {type: string}
  - name: v0
    served: false
    storage: false
    schema:
      openAPIV3Schema: {type: object}
"""


def widget(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w"},
        "spec": {"size": 2, **spec},
    }


def test_conversion_adaptations(tmp_path: Path, no_cel: None) -> None:
    checker = Checker([write(tmp_path / "crds" / "widget.yaml", SMALL_CRD)], cache_dir=tmp_path)

    def problems(doc: dict[str, Any]) -> list[tuple[str, str]]:
        return paths_and_messages(checker.check([doc]))

    ok = widget(
        ratio=1.0,
        note=None,
        mode=None,
        port="http",
        tags=["a", "b"],
        code="abc",
        free={"anything": {"goes": 1}, "known": {"x": "1"}, "list": [{"y": "1"}]},
        loose=[{"y": "1", "z": 2}],
        choice={"a": "x"},
    )
    assert problems(ok) == []
    assert problems(widget(size=1)) == [
        ("spec.size", "1 is less than or equal to the minimum of 1")
    ]
    assert problems(widget(port=8080)) == []
    assert problems(widget(port=1.5)) == [("spec.port", "1.5 is not of type 'integer', 'string'")]
    assert problems(widget(mode="c")) == [("spec.mode", "'c' is not one of ['a', 'b', None]")]
    assert problems(widget(tags=["a", "a"])) == [
        ("spec.tags", "['a', 'a'] has non-unique elements")
    ]
    assert problems(widget(code="abc\n")) == [
        ("spec.code", "'abc\\n' does not match '^[a-z]+\\\\z'")
    ]
    # Below a preserve-unknown-fields node, nodes declaring properties are pruned again.
    assert problems(widget(free={"known": {"x": "1", "y": 2}, "list": [{"z": 1}]})) == [
        ("spec.free.known.y", 'unknown field "y"'),
        ("spec.free.list[0].z", 'unknown field "z"'),
    ]
    # ... but the items of a preserve-unknown-fields array keep unknown fields (skipPrune).
    assert problems(widget(loose=[{"z": 1}, {"y": 3}])) == [
        ("spec.loose[1].y", "3 is not of type 'string'")
    ]
    # Value-validation branches (oneOf) are never closed.
    assert problems(widget(choice={"b": "x"})) == []
    assert problems(widget(choice={"c": "x"}))[0][0] == "spec.choice"
    assert problems(dict(widget(), apiVersion="example.com/v0")) == [
        (
            "apiVersion",
            "version v0 of Widget.example.com is not served (served: false in widget.yaml)",
        )
    ]
    missing = widget()
    del missing["spec"]["size"]
    assert problems(missing) == [("spec", "'size' is a required property")]


def test_rewrite_pattern() -> None:
    rewrite = crd_schema_mod._rewrite_pattern
    assert rewrite("^(?i)(abort|warn)?$") == "(?i)^(abort|warn)?\\Z"
    assert rewrite("^[$a]+\\$x$") == "^[$a]+\\$x\\Z"
    assert rewrite("^a\\z") == "^a\\Z"
    assert rewrite("(?m)^a$") == "(?m)^a$"
    assert rewrite("^[]$]$") == "^[]$]\\Z"
    assert rewrite("(?U)a+") is None
    assert rewrite("\\p{Greek}+") is None


def test_multi_document_list_and_json_crd_files(tmp_path: Path) -> None:
    other = SMALL_CRD.replace("Widget", "Gadget").replace("widgets", "gadgets")
    multi = write(
        tmp_path / "multi.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n---\n" + SMALL_CRD + "---\n",
    )
    import yaml

    as_list = {"apiVersion": "v1", "kind": "List", "items": [yaml.safe_load(other)]}
    listed = write(tmp_path / "sub" / "list.json", json.dumps(as_list))
    write(tmp_path / "sub" / "notes.txt", "ignored: not a CRD suffix")
    write(tmp_path / "sub" / ".hidden" / "junk.yaml", "{{{ not yaml")
    write(tmp_path / "sub" / "kustomization.yaml", "resources: [list.json]\n")
    checker = Checker([multi, listed.parent], cache_dir=tmp_path / "cache")
    assert checker.known_kinds() == [
        ("example.com", "v0", "Gadget"),
        ("example.com", "v0", "Widget"),
        ("example.com", "v1", "Gadget"),
        ("example.com", "v1", "Widget"),
    ]
    gadget = dict(widget(), kind="Gadget")
    report = checker.check([widget(), gadget, dict(gadget, spec={"size": "2"})])
    assert paths_and_messages(report) == [("spec.size", "'2' is not of type 'integer'")]
    assert report.problems[0].doc_index == 2


def test_crd_load_errors_name_the_file(tmp_path: Path) -> None:
    garbage = write(tmp_path / "garbage.yaml", "apiVersion: [unclosed\n  kind: : :\n")
    with pytest.raises(CRDLoadError, match=re.escape(str(garbage))):
        Checker([garbage], cache_dir=tmp_path / "cache")
    with pytest.raises(CRDLoadError, match="garbage.yaml: not valid YAML"):
        Checker([tmp_path], cache_dir=tmp_path / "cache")  # also when found in a folder

    bad_json = write(tmp_path / "j" / "crd.json", "{not json")
    with pytest.raises(CRDLoadError, match="crd.json: not valid JSON"):
        Checker([bad_json], cache_dir=tmp_path / "cache")

    not_crd = write(tmp_path / "k" / "configmap.yaml", "apiVersion: v1\nkind: ConfigMap\n")
    with pytest.raises(CRDLoadError, match="configmap.yaml: no CustomResourceDefinition"):
        Checker([not_crd], cache_dir=tmp_path / "cache")
    Checker([not_crd.parent], cache_dir=tmp_path / "cache")  # inside a folder it is just ignored

    missing = tmp_path / "nope.yaml"
    with pytest.raises(CRDLoadError, match="nope.yaml: no such file or folder"):
        Checker([missing], cache_dir=tmp_path / "cache")

    old_text = SMALL_CRD.replace("apiextensions.k8s.io/v1", "apiextensions.k8s.io/v1beta1")
    v1beta1 = write(tmp_path / "b" / "old.yaml", old_text)
    with pytest.raises(CRDLoadError, match="old.yaml: .*only apiextensions.k8s.io/v1"):
        Checker([v1beta1], cache_dir=tmp_path / "cache")

    no_schema_text = SMALL_CRD.replace("openAPIV3Schema", "openAPIV3Schemaa", 1)
    no_schema = write(tmp_path / "s" / "noschema.yaml", no_schema_text)
    checker = Checker([no_schema], cache_dir=tmp_path / "cache")
    with pytest.raises(CRDLoadError, match="noschema.yaml: .*Widget.example.com version v1"):
        checker.check([widget()])


# ------------------------------------------------------------------------------------------
# Cache
# ------------------------------------------------------------------------------------------


def cache_files(base: Path) -> list[Path]:
    return sorted((base / "crd-schemas").glob("*.json"))


def test_cache_is_used_on_second_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    crd = write(tmp_path / "widget.yaml", SMALL_CRD)
    base = tmp_path / "cache"
    first = Checker([crd], cache_dir=base)
    assert first.check([widget(size="x")]).problems
    assert first.stats.converted == 1
    schema_files = [p for p in cache_files(base) if not p.name.startswith("index-")]
    assert len(schema_files) == 1
    assert "-example.com-v1-Widget-c" in schema_files[0].name

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("must not reconvert or reparse")

    monkeypatch.setattr(core_mod, "convert_crd_schema", boom)
    monkeypatch.setattr(core_mod, "_load_crd_documents", boom)
    monkeypatch.setattr(core_mod, "_scan_yaml_index", boom)
    second = Checker([crd], cache_dir=base)
    report = second.check([widget(size="x")])
    assert paths_and_messages(report) == [("spec.size", "'x' is not of type 'integer'")]
    assert second.stats.cache_hits == 1
    assert second.stats.converted == 0


def test_corrupt_cache_is_rebuilt(tmp_path: Path) -> None:
    crd = write(tmp_path / "widget.yaml", SMALL_CRD)
    base = tmp_path / "cache"
    Checker([crd], cache_dir=base).check([widget()])
    files = cache_files(base)
    assert len(files) == 2  # the file index and the Widget v1 schema
    for f in files:
        f.write_text('{"truncated": ', encoding="utf-8")
    again = Checker([crd], cache_dir=base)
    assert again.stats.index_scans == 1
    report = again.check([widget(size="x")])
    assert paths_and_messages(report) == [("spec.size", "'x' is not of type 'integer'")]
    assert again.stats.converted == 1
    for f in cache_files(base):
        header, body = f.read_text(encoding="utf-8").split("\n", 1)  # fsio.store_cache's envelope
        assert header.startswith("llmdeploy-cache ")
        json.loads(body)  # rewritten, valid


def test_cache_key_follows_file_content(tmp_path: Path) -> None:
    crd = write(tmp_path / "widget.yaml", SMALL_CRD)
    base = tmp_path / "cache"
    Checker([crd], cache_dir=base).check([widget()])
    write(crd, SMALL_CRD.replace("minimum: 1,", "minimum: 5,"))
    checker = Checker([crd], cache_dir=base)
    assert paths_and_messages(checker.check([widget(size=3)])) == [
        ("spec.size", "3 is less than or equal to the minimum of 5")
    ]
    assert checker.stats.converted == 1


def test_unwritable_cache_dir_just_disables_caching(tmp_path: Path) -> None:
    crd = write(tmp_path / "widget.yaml", SMALL_CRD)
    blocker = write(tmp_path / "not-a-dir", "a file where the cache folder should be")
    for _ in range(2):
        checker = Checker([crd], cache_dir=blocker)
        assert paths_and_messages(checker.check([widget(size="x")])) == [
            ("spec.size", "'x' is not of type 'integer'")
        ]
        assert checker.stats.converted == 1


@needs_crds
def test_inference_service_cached_check_is_fast(tmp_path: Path) -> None:
    isvc = CRDS_DIR / "serving.kserve.io" / "inferenceservice.yaml"
    t0 = time.perf_counter()
    first = Checker([isvc], cache_dir=tmp_path).check([INFERENCE_SERVICE])
    cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    checker = Checker([isvc], cache_dir=tmp_path)
    second = checker.check([INFERENCE_SERVICE])
    warm = time.perf_counter() - t0
    assert first.problems == second.problems == ()
    assert checker.stats.cache_hits == 1 and checker.stats.full_loads == 0
    assert warm < cold
    assert warm < 1.0, f"cached check took {warm:.3f}s (cold {cold:.3f}s)"


# ------------------------------------------------------------------------------------------
# Environment
# ------------------------------------------------------------------------------------------


def test_crd_paths_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("LLMDEPLOY_CRDS", raising=False)
    assert crd_paths_from_env() == []
    value = os.pathsep.join([str(tmp_path / "a"), "", "~/crds", str(tmp_path / "b.yaml")])
    monkeypatch.setenv("LLMDEPLOY_CRDS", value)
    assert crd_paths_from_env() == [
        tmp_path / "a",
        Path("~/crds").expanduser(),
        tmp_path / "b.yaml",
    ]
    assert crd_paths_from_env({"LLMDEPLOY_CRDS": "x"}) == [Path("x")]


def test_default_cache_dir() -> None:
    assert default_cache_dir({"LLMDEPLOY_CACHE_DIR": "/c", "XDG_CACHE_HOME": "/x"}) == Path("/c")
    assert default_cache_dir({"XDG_CACHE_HOME": "/x"}) == Path("/x/llmdeploy")
    assert default_cache_dir({}) == Path.home() / ".cache" / "llmdeploy"


# ------------------------------------------------------------------------------------------
# CEL
# ------------------------------------------------------------------------------------------

KEDA_MIN_GT_MAX = mutate(
    mutate(SCALED_OBJECT, "spec.minReplicaCount", 5), "spec.maxReplicaCount", 2
)


@needs_crds
def test_cel_rules_are_skipped_without_celpy(tmp_path: Path, no_cel: None) -> None:
    keda = CRDS_DIR / "keda.sh" / "scaledobject.yaml"
    assert Checker([keda], cache_dir=tmp_path).check([KEDA_MIN_GT_MAX]).problems == ()


@needs_crds
def test_cel_rules_with_celpy(tmp_path: Path) -> None:
    pytest.importorskip("celpy", reason="cel-python is optional")
    checker = Checker(
        [CRDS_DIR / "keda.sh", CRDS_DIR / "gateway.networking.k8s.io"], cache_dir=tmp_path
    )
    assert paths_and_messages(checker.check([KEDA_MIN_GT_MAX])) == [
        ("spec", "minReplicaCount must be less than or equal to maxReplicaCount")
    ]
    assert checker.check([SCALED_OBJECT, HTTP_ROUTE]).problems == ()
    # Gateway API: a RequestRedirect filter may not be combined with backendRefs.
    redirect = mutate(
        HTTP_ROUTE,
        "spec.rules[0].filters",
        [{"type": "RequestRedirect", "requestRedirect": {"scheme": "https", "statusCode": 301}}],
    )
    report = checker.check([redirect])
    assert [p.path for p in report.problems] == ["spec.rules[0]"], paths_and_messages(report)
    message = report.problems[0].message
    assert "RequestRedirect filter must not be used together with backendRefs" in message
