"""Knative serving knative-v1.23.0: what a Revision does to the pod KServe hands it.

Encodes ``pkg/reconciler/revision/resources/deploy.go``, ``queue.go`` and ``meta.go`` at
the pinned tag (read from the release tree, cited per function):

* the serving container's ports become one port named ``user-port`` holding the first
  declared containerPort (``makeServingContainer``/``buildContainerPorts``; default 8080),
  and ``PORT`` is set to it;
* its readinessProbe (HTTP/TCP/gRPC) is removed and run by the queue-proxy against the
  user port (``makeContainer``); a livenessProbe whose port is a name (or any port while
  the ``allowCustomPort`` feature is off, the default) is rewritten to the numeric user
  port (``rewriteUserLivenessProbe``); a startupProbe is left as written;
* ``lifecycle`` is replaced by a preStop ``GET :8022/wait-for-drain`` on the queue-proxy
  (``userLifecycle``), and ``terminationGracePeriodSeconds`` becomes the revision's
  ``timeoutSeconds`` (``BuildPodSpec``);
* a ``queue-proxy`` container is added with ports 8012 ``queue-port`` (8013 for h2c),
  8112 ``https-port``, 9090 ``http-autometric``, 9091 ``http-usermetric``; the admin port
  8022 is used but not declared (queue.go, pkg/networking/constants.go);
* pod labels gain ``serving.knative.dev/revision`` and, unless the user set one,
  ``app: <revision>`` (meta.go ``makeLabels``); annotations under
  ``autoscaling.knative.dev/`` stay on the Revision, not the pod (meta.go
  ``podAnnotations``).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from .. import naming

__all__ = ["KNATIVE_VERSION", "QUEUE_PORTS", "QUEUE_PROXY", "USER_PORT_NAME", "knative_rewrite"]

KNATIVE_VERSION = "knative-v1.23.0"
USER_PORT_NAME = "user-port"
DEFAULT_USER_PORT = 8080
QUEUE_PROXY = "queue-proxy"
QUEUE_ADMIN_PORT = 8022
QUEUE_PORTS = (("queue-port", 8012), ("https-port", 8112), ("http-autometric", 9090), ("http-usermetric", 9091))
QUEUE_PORT_H2C = 8013
DEFAULT_REVISION_TIMEOUT = 300


def _user_port(container: Mapping[str, Any]) -> int:
    ports = container.get("ports") or []
    if ports and isinstance(ports[0], Mapping) and ports[0].get("containerPort"):
        return int(ports[0]["containerPort"])
    return DEFAULT_USER_PORT


def _is_h2c(container: Mapping[str, Any]) -> bool:
    ports = container.get("ports") or []
    return bool(ports) and str(ports[0].get("name", "")) == "h2c"


def knative_rewrite(pod: dict[str, Any], labels: dict[str, str], annotations: dict[str, str],
                    service: str) -> tuple[dict[str, Any], dict[str, str], dict[str, str]]:
    """The Revision's pod spec, labels and annotations for the Knative Service ``service``."""
    pod = copy.deepcopy(pod)
    containers = pod.get("containers") or []
    if not containers:
        return pod, labels, annotations
    revision = service + naming.KNATIVE_REVISION_SUFFIX
    user = dict(containers[0])
    port = _user_port(user)
    queue_port = QUEUE_PORT_H2C if _is_h2c(user) else 8012
    readiness = user.pop("readinessProbe", None)
    user["ports"] = [{"name": USER_PORT_NAME, "containerPort": port}]
    knative_env = [{"name": "PORT", "value": str(port)}, {"name": "K_REVISION", "value": revision},
                   {"name": "K_CONFIGURATION", "value": service}, {"name": "K_SERVICE", "value": service}]
    user["env"] = list(user.get("env") or []) + knative_env
    user["lifecycle"] = {"preStop": {"httpGet": {"port": QUEUE_ADMIN_PORT, "path": "/wait-for-drain"}}}
    live = user.get("livenessProbe")
    if isinstance(live, Mapping):
        live = copy.deepcopy(dict(live))
        for handler in ("httpGet", "tcpSocket"):
            if isinstance(live.get(handler), Mapping):
                live[handler] = {**live[handler], "port": port}
        user["livenessProbe"] = live
    queue: dict[str, Any] = {
        "name": QUEUE_PROXY,
        "image": "gcr.io/knative-releases/knative.dev/serving/cmd/queue",
        "ports": [{"name": n, "containerPort": queue_port if n == "queue-port" else p} for n, p in QUEUE_PORTS],
        "readinessProbe": {"httpGet": {"port": queue_port, "path": "/",
                                       "httpHeaders": [{"name": "K-Network-Probe", "value": "queue"}]}},
        "securityContext": {"runAsNonRoot": True, "readOnlyRootFilesystem": True,
                            "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
        "env": [{"name": "USER_PORT", "value": str(port)}],
    }
    if readiness is not None:
        queue["env"].append({"name": "SERVING_READINESS_PROBE", "value": "user probe on port " + str(port)})
    pod["containers"] = [user, *containers[1:], queue]
    pod["terminationGracePeriodSeconds"] = int(pod.pop("timeoutSeconds", DEFAULT_REVISION_TIMEOUT))
    labels = dict(labels)
    labels["serving.knative.dev/revision"] = revision
    labels["serving.knative.dev/configuration"] = service
    labels["serving.knative.dev/service"] = service
    labels.setdefault("app", revision)
    annotations = {k: v for k, v in annotations.items() if not k.startswith("autoscaling.knative.dev/")}
    annotations["kubectl.kubernetes.io/default-container"] = str(user.get("name", ""))
    return pod, labels, annotations
