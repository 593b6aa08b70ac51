"""What the cluster will run: the records of the effective workload.

Plain data computed from the rendered objects (``effective.kserve``) and read by the
runtime-truth rules (``rules/runtime.py``) and ``render --explain``. Nothing here knows
the spec; every field is what a controller would put on a live object.
"""

from __future__ import annotations

from typing import Any

from ..records import record

__all__ = ["Container", "EnvVar", "Pod", "Port", "Probe", "StorageRead", "Workload"]


@record
class Port:
    """A declared container port."""

    name: str | None
    number: int
    protocol: str = "TCP"


@record
class Probe:
    """One probe after the platform's rewrites.

    ``port`` is what the kubelet (or Knative's queue-proxy) will resolve: an int, a port
    name, or None for an exec probe. ``run_by`` says who runs it.
    """

    kind: str  # startup | readiness | liveness
    handler: str  # httpGet | tcpSocket | grpc | exec
    port: int | str | None
    path: str | None
    run_by: str  # kubelet | queue-proxy


@record
class EnvVar:
    """An environment variable: a literal value, or a reference to a Secret key."""

    name: str
    value: str | None = None
    secret: str | None = None
    key: str | None = None


@record
class Container:
    """A container of the pod, after KServe's merge and the platform's rewrites."""

    name: str
    image: str
    command: tuple[str, ...]
    args: tuple[str, ...]
    env: tuple[EnvVar, ...]
    ports: tuple[Port, ...]
    probes: tuple[Probe, ...]
    run_as_user: int | None
    run_as_non_root: bool
    volume_mounts: tuple[str, ...]
    raw: Any  # the merged container mapping, as ``kubectl get pod -o yaml`` would show it

    def env_value(self, name: str) -> str | None:
        """The literal value of ``name`` (the last definition wins, as in the kubelet)."""
        found = None
        for e in self.env:
            if e.name == name:
                found = e.value
        return found

    def arg_value(self, flag: str) -> str | None:
        """The value of ``--flag=value`` or ``--flag value`` (the last one wins, as argparse does)."""
        found = None
        args = list(self.args)
        for i, a in enumerate(args):
            if a.startswith(flag + "="):
                found = a.split("=", 1)[1]
            elif a == flag and i + 1 < len(args):
                found = args[i + 1]
        return found


@record
class StorageRead:
    """What KServe's storage initializer reads for the model download.

    ``env`` maps each variable the initializer gets to the Secret key it comes from
    (``"<secret>/<key>"``); ``keys_read`` lists the Secret keys the initializer
    recognises for the scheme (pkg/credentials at the pinned KServe tag).
    """

    uri: str
    scheme: str | None
    service_account: str | None
    secrets: tuple[str, ...]
    keys_read: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    notes: tuple[str, ...]
    account_known: bool = True  # False: the ServiceAccount is not among the rendered objects


@record
class Pod:
    """The pod template a workload controller will stamp out."""

    labels: dict[str, str]
    annotations: dict[str, str]
    containers: tuple[Container, ...]
    service_account: str | None
    volumes: tuple[str, ...]
    raw: Any  # the pod spec mapping

    def container(self, name: str) -> Container | None:
        return next((c for c in self.containers if c.name == name), None)


@record
class Workload:
    """One InferenceService as the cluster will run it."""

    isvc: str
    namespace: str
    mode: str  # Standard | Knative
    workload_kind: str  # Deployment | Revision
    workload_name: str  # Deployment <isvc>-predictor, or Revision <isvc>-predictor-00001
    service_name: str  # the Service KServe/Knative creates for the predictor
    service_port: int
    pod: Pod
    engine_container: str  # kserve-container
    storage: StorageRead
    runtime_name: str | None
