"""KServe v0.20.0 storage initializer: which Secret keys it reads, per storage scheme.

The initializer gets credentials from the Secrets listed in the pod's ServiceAccount
(pkg/credentials/service_account_credentials.go ``CreateSecretVolumeAndEnv``). Each
Secret is classified by the first recognised data key, in this order (if/else chain in
``mountSecretCredential``): S3 secret access key › GCS
``gcloud-application-credentials.json`` › Azure (``AZ_CLIENT_ID``, ``AZURE_CLIENT_ID``,
``AZURE_ACCESS_TOKEN``, ``AZURE_STORAGE_ACCESS_KEY``) › ``https-host`` › ``HDFS_NAMENODE``
› ``HF_TOKEN``; a Secret with none of them is skipped without an error. Per scheme:

* ``hf://``: only the key ``HF_TOKEN`` becomes ``HF_TOKEN`` (pkg/credentials/hf/hf_secret.go);
* ``s3://``: the keys named by the inferenceservice ConfigMap's ``credentials.s3``
  ``s3AccessKeyIDName``/``s3SecretAccessKeyName``, shipped as ``AWS_ACCESS_KEY_ID`` and
  ``AWS_SECRET_ACCESS_KEY`` (config/configmap/inferenceservice.yaml); the code's own
  defaults ``awsAccessKeyID``/``awsSecretAccessKey`` (s3/s3_secret.go) apply only when the
  ConfigMap leaves them out;
* ``gs://``: the Secret is mounted and ``GOOGLE_APPLICATION_CREDENTIALS`` points at
  ``gcloud-application-credentials.json`` (gcs/gcs_secret.go);
* Azure blob/file URLs: ``AZURE_CLIENT_ID``, ``AZURE_CLIENT_SECRET``, ``AZURE_TENANT_ID``
  (always referenced), ``AZURE_SUBSCRIPTION_ID``, ``AZURE_STORAGE_ACCESS_KEY``... by the
  same names (azure/azure_secret.go);
* ``https://``: ``https-host`` and ``headers`` (https/https_secret.go).

``hf://`` downloads the whole repository snapshot (python/storage ``_download_hf``:
``snapshot_download`` with ``STORAGE_ALLOW_PATTERNS``/``STORAGE_IGNORE_PATTERNS`` read
from the initializer's own environment).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..derive.storage import storage_scheme
from .model import StorageRead

__all__ = ["SECRET_KEYS", "service_accounts", "storage_read", "uri_scheme"]

# Secret data keys the initializer recognises, per scheme (first one = the classifying key).
SECRET_KEYS: dict[str, tuple[tuple[str, str], ...]] = {
    "hf": (("HF_TOKEN", "HF_TOKEN"),),
    "s3": (("AWS_SECRET_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY"), ("AWS_ACCESS_KEY_ID", "AWS_ACCESS_KEY_ID")),
    "gs": (("gcloud-application-credentials.json", "GOOGLE_APPLICATION_CREDENTIALS"),),
    "azure": (("AZURE_CLIENT_ID", "AZURE_CLIENT_ID"), ("AZURE_CLIENT_SECRET", "AZURE_CLIENT_SECRET"),
              ("AZURE_TENANT_ID", "AZURE_TENANT_ID"), ("AZURE_SUBSCRIPTION_ID", "AZURE_SUBSCRIPTION_ID"),
              ("AZURE_STORAGE_ACCESS_KEY", "AZURE_STORAGE_ACCESS_KEY")),
    "https": (("https-host", "<host>-headers"), ("headers", "<host>-headers")),
}


def uri_scheme(uri: str) -> str | None:
    """The credential family of a storage URI: ``derive.storage.storage_scheme`` with Azure
    blob/file URLs (``azureblob://`` or ``https://<account>.blob.core.windows.net``) as
    ``azure`` and other ``http(s)://`` URLs as ``https``."""
    low = uri.lower()
    if low.startswith(("https://", "http://")) and (".blob.core.windows.net" in low or ".file.core.windows.net" in low):
        return "azure"
    scheme = storage_scheme(uri)
    return {"http": "https", "azureblob": "azure"}.get(scheme or "", scheme)


def service_accounts(objects: Iterable[Mapping[str, Any]]) -> dict[tuple[Any, Any], Mapping[str, Any]]:
    """The rendered ServiceAccounts by (namespace, name): the ``account`` :func:`storage_read` reads a pod's from."""
    return {((o.get("metadata") or {}).get("namespace"), (o.get("metadata") or {}).get("name")): o
            for o in objects if o.get("kind") == "ServiceAccount"}


def storage_read(uri: str, service_account: str | None, account: Mapping[str, Any] | None) -> StorageRead:
    """What the storage initializer will read for ``uri`` through ``service_account``."""
    scheme = uri_scheme(uri)
    secrets = tuple(str(s.get("name")) for s in ((account or {}).get("secrets") or []) if isinstance(s, Mapping))
    keys = SECRET_KEYS.get(scheme or "", ())
    env = tuple((var, f"{secret}/{key}") for secret in secrets for key, var in keys)
    notes: list[str] = []
    if scheme == "hf":
        notes.append("downloads the whole repository snapshot unless STORAGE_ALLOW_PATTERNS / "
                     "STORAGE_IGNORE_PATTERNS are set on the storage-initializer container")
    if secrets and not keys:
        notes.append(f"the initializer reads no Secret key for {scheme or 'this'} URIs: the Secret is unused")
    if scheme in ("s3", "gs") and not secrets:
        notes.append("no Secret: credentials must come from the ServiceAccount's annotations or workload identity")
    if account is None:
        notes.append(f"ServiceAccount {service_account or 'default'} is not rendered here: the Secrets it lists "
                     "are the ones the initializer reads")
    return StorageRead(uri, scheme, service_account, secrets, tuple(k for k, _ in keys), env, tuple(notes),
                       account is not None)
