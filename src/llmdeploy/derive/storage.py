"""Where the weights come from: the storage URI schemes KServe's storage initializer reads.

Read by the spec rules (LD112 checks the URI) and by the planner (credentials, download
time, cold start); written once here.
"""

from __future__ import annotations

import re

# hf://org/name[:revision]; s3://bucket/key; gs://bucket/key; azureblob://account/container/path;
# https://<account>.blob.core.windows.net/<container>/<path>; pvc://claim[/path];
# oci://registry/repo[:tag|@digest]; http(s)://host/...; models:/name/version (MLflow);
# model-registry://model/version (Kubeflow model registry). Sources: KServe storage
# initializer (python/storage/kserve_storage/kserve_storage.py) and docs.
STORAGE_PATTERNS: dict[str, re.Pattern[str]] = {
    "hf": re.compile(r"^hf://[A-Za-z0-9][\w.-]*/[\w.-]+(:[\w./-]+)?\Z"),
    "s3": re.compile(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/\S*)?\Z"),
    "gs": re.compile(r"^gs://[a-z0-9][a-z0-9._-]{1,220}[a-z0-9](/\S*)?\Z"),
    "azureblob": re.compile(r"^azureblob://[a-z0-9]{3,24}/[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9](/\S*)?\Z"),
    "pvc": re.compile(r"^pvc://[a-z0-9]([-a-z0-9]*[a-z0-9])?(/\S*)?\Z"),
    "oci": re.compile(r"^oci://[\w.-]+(:\d+)?(/[\w.-]+)+(:[\w][\w.-]{0,127}|@sha256:[a-f0-9]{64})?\Z"),
    "http": re.compile(r"^https?://[\w.-]+(:\d+)?(/\S*)?\Z"),
    "mlflow": re.compile(r"^models:/[^/\s]+/(\d+|[A-Za-z]+|@[\w-]+)\Z"),
    "model-registry": re.compile(r"^model-registry://[^/\s]+/[^/\s]+(/[^/\s]+)?\Z"),
}
STORAGE_HINTS = {
    "hf": "hf://<org>/<model>[:<revision>]",
    "s3": "s3://<bucket>/<prefix>",
    "gs": "gs://<bucket>/<prefix>",
    "azureblob": "azureblob://<account>/<container>/<path>",
    "pvc": "pvc://<claim-name>/<path>",
    "oci": "oci://<registry>/<repository>:<tag> (a modelcar image)",
    "http": "https://<host>/<path> (an archive: .zip, .tar.gz)",
    "mlflow": "models:/<registered-model>/<version> (MLflow, needs the MLflow storage container)",
    "model-registry": "model-registry://<model>/<version> (Kubeflow model registry storage initializer)",
}


def storage_scheme(uri: str) -> str | None:
    """The storage kind of ``uri`` (a key of ``STORAGE_PATTERNS``), or None."""
    if uri.startswith("models:/"):
        return "mlflow"
    scheme = uri.split("://", 1)[0] if "://" in uri else None
    if scheme in ("http", "https"):
        return "http"
    return scheme if scheme in STORAGE_PATTERNS else None
