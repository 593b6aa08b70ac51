"""Kubernetes and KServe naming rules: the one place each rule lives.

Sources:
- DNS-1123/1035 labels and subdomains, label keys/values: k8s.io/apimachinery
  pkg/util/validation/validation.go.
- InferenceService names: KServe pkg/apis/serving/v1beta1/inference_service_validation.go,
  ``IsvcNameFmt = "[a-z]([-a-z0-9]*[a-z0-9])?"`` (a DNS-1035 label). KServe derives
  more names from it, and those must stay valid labels (<= 63): in Standard mode the
  predictor Deployment/Service ``<isvc>-predictor``; in Knative mode the Knative
  Service ``<isvc>-predictor`` whose revisions are ``<isvc>-predictor-00001``.
"""

from __future__ import annotations

import re

DNS1123_LABEL_RE = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS1035_LABEL_RE = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
DNS1123_SUBDOMAIN_RE = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
LABEL_VALUE_RE = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
LABEL_NAME_RE = r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$"

MAX_LABEL = 63
PREDICTOR_SUFFIX = "-predictor"
KNATIVE_REVISION_SUFFIX = "-00001"
# Suffixes llmdeploy itself appends to the service name for its own objects.
LLMDEPLOY_SUFFIXES = ("-canary", "-green", "-blue", "-dashboard", "-rules", "-metrics", "-keda-auth")



def python_pattern(pattern: str) -> re.Pattern[str]:
    """Compile a ``^...$`` pattern for Python's ``re`` with the end anchored at the very end.

    The ``*_RE`` strings above are also written into the JSON Schema and pydantic's
    (Rust) validator, where ``$`` means end of text. Python's ``$`` also matches before
    a trailing newline, so ``"search\\n"`` would pass as a label value; ``\\Z`` does not.
    """
    return re.compile(pattern[:-1] + r"\Z" if pattern.endswith("$") else pattern)


_dns1035 = python_pattern(DNS1035_LABEL_RE)
_dns1123 = python_pattern(DNS1123_LABEL_RE)
_subdomain = python_pattern(DNS1123_SUBDOMAIN_RE)
_label_value = python_pattern(LABEL_VALUE_RE)
_label_name = python_pattern(LABEL_NAME_RE)


def dns1035_problem(name: str) -> str | None:
    """Why ``name`` is not a DNS-1035 label, or None."""
    if len(name) > MAX_LABEL:
        return f"must be at most {MAX_LABEL} characters (has {len(name)})"
    if not _dns1035.match(name):
        return (
            "must consist of lowercase letters, digits and '-', start with a letter and end with "
            "a letter or digit (KServe InferenceService name rule)"
        )
    return None


# KServe labels the Standard-mode Deployment, Service and pods ``app: isvc.<name>-predictor``
# (pkg/constants/constants.go and the raw deployment/service reconcilers, v0.20.0).
RAW_APP_LABEL_PREFIX = "isvc."


def max_service_name_length(mode: str, suffix: str = "") -> int:
    """Longest service name whose derived KServe names and labels stay within 63 characters.

    Standard mode: the label value ``isvc.<name>-predictor`` (48 for the bare name).
    Knative mode: the revision ``<name>-predictor-00001`` (47).
    """
    if mode == "knative":
        derived = PREDICTOR_SUFFIX + KNATIVE_REVISION_SUFFIX
    else:
        derived = RAW_APP_LABEL_PREFIX + PREDICTOR_SUFFIX
    return MAX_LABEL - len(derived) - len(suffix)


def label_value_problem(value: str) -> str | None:
    """Why ``value`` is not a valid label value, or None."""
    if len(value) > MAX_LABEL:
        return f"label values are at most {MAX_LABEL} characters"
    if not _label_value.match(value):
        return "label values are alphanumerics, '-', '_' or '.', starting and ending alphanumeric"
    return None


def label_key_problem(key: str) -> str | None:
    """Why ``key`` is not a valid label key (``[prefix/]name``), or None."""
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not _subdomain.match(prefix)):
        return "the label key prefix must be a DNS subdomain"
    if not name or len(name) > MAX_LABEL or not _label_name.match(name):
        return "label names are at most 63 alphanumerics, '-', '_' or '.', starting and ending alphanumeric"
    return None


def is_dns1123_subdomain(name: str) -> bool:
    return len(name) <= 253 and bool(_subdomain.match(name))


def predictor_deployment(isvc: str, predictor_name: str | None = None) -> str:
    """Name of the predictor Deployment KServe creates in Standard mode (what KEDA targets)."""
    return f"{isvc}-{predictor_name}{PREDICTOR_SUFFIX}" if predictor_name else f"{isvc}{PREDICTOR_SUFFIX}"


def child(name: str, suffix: str) -> str:
    """Name of an object llmdeploy derives from the service name."""
    return f"{name}-{suffix}"


def label_safe(value: str) -> str:
    """Make ``value`` a valid label value (for versions such as ``v0.10.1``), deterministically."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]", "-", value)[:MAX_LABEL]
    cleaned = cleaned.strip("-_.")
    return cleaned or "unknown"
