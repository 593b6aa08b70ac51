"""Cold start: how long a request waits when the service starts from zero replicas.

Read by the scale-to-zero rules (LD305 warns with it) and by the planner (the
activation and startup budgets); written once here.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from ..records import record
from .storage import storage_scheme

if TYPE_CHECKING:  # pragma: no cover
    from ..sizing import SizingReport
    from ..spec.models import LLMService

# Cold start: a pod's start (scheduling on a node that has the image, init containers)
# before the storage initializer runs. Pulling the engine image on a fresh node adds
# minutes on top (vllm/vllm-openai is ~10 GB); docs/scaling.md says so.
POD_START_SECONDS = 30
# Download rates of KServe's storage initializer, in MB/s (assumptions, conservative):
# Hugging Face Hub and plain HTTP over the internet ~100 MB/s; an object store in the
# cluster's region ~200 MB/s; an OCI modelcar is an image pull (~200 MB/s from a registry,
# cached on the node afterwards); a PVC is already local (the engine reads it while loading,
# which load_time_seconds covers).
DOWNLOAD_MB_PER_S = {
    "hf": 100.0, "http": 100.0, "mlflow": 100.0, "model-registry": 100.0,
    "s3": 200.0, "gs": 200.0, "azureblob": 200.0, "oci": 200.0, "pvc": 0.0,
}


@record
class ColdStart:
    """How long the first request waits when the service starts from zero replicas."""

    start_seconds: int
    download_seconds: int
    load_seconds: int
    weights_gib: float
    scheme: str

    @property
    def total(self) -> int:
        return self.start_seconds + self.download_seconds + self.load_seconds

    def describe(self) -> str:
        download = (f"download {self.weights_gib:.1f} GiB from {self.scheme} ≈ {self.download_seconds} s"
                    if self.download_seconds else f"no download ({self.scheme} is local)")
        return (f"about {self.total} s: pod start ≈ {self.start_seconds} s + {download} + "
                f"model load ≈ {self.load_seconds} s")


def cold_start(spec: LLMService, sizing: SizingReport | None) -> ColdStart | None:
    """Estimate the wait of a request that finds the service at zero replicas."""
    if sizing is None:
        return None
    scheme = storage_scheme(spec.model.storage_uri) or "http"
    weights = float(sizing.weights_bytes_total)
    rate = DOWNLOAD_MB_PER_S.get(scheme, 100.0)
    download = math.ceil(weights / (rate * 1e6)) if rate > 0 else 0
    load = math.ceil(sizing.load_time_seconds)
    return ColdStart(POD_START_SECONDS, download, load, weights / 2**30, scheme)
