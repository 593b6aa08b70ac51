"""LD4xx: security rules. Credentials are only ever referenced, never written in a spec."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from ..diagnostics import Severity
from .registry import Finding, RuleContext, rule

# Token shapes with a recognisable prefix. Sources: Hugging Face user access tokens
# start with "hf_"; AWS access key ids with AKIA (long-term) or ASIA (temporary)
# (docs.aws.amazon.com/IAM/latest/UserGuide/reference_identifiers.html#identifiers-unique-ids);
# GitHub tokens with ghp_/gho_/ghu_/ghs_/ghr_ (github.blog 2021-04-05 token format).
TOKEN_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("a Hugging Face token", re.compile(r"\bhf_[A-Za-z0-9]{20,}\b")),
    ("an AWS access key id", re.compile(r"\b(AKIA|ASIA)[A-Z0-9]{16}\b")),
    ("a GitHub token", re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}\b")),
    ("a private key", re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")),
    ("an OpenAI-style API key", re.compile(r"\bsk-[A-Za-z0-9_-]{20,}\b")),
)
# A 40-character AWS secret access key, only where the key name says so (too generic otherwise).
AWS_SECRET = re.compile(r"^[A-Za-z0-9/+=]{40}\Z")

SECRET_KEY_NAMES = re.compile(
    r"(token|password|passwd|secret|api[-_]?key|access[-_]?key|private[-_]?key|credential)", re.I
)
# Keys whose value is a reference to a Secret, not the secret itself.
REFERENCE_KEYS = {"secretRef", "tokenKey", "authSecretRef", "secretKeyRef", "name", "key", "authModes"}

# Engine flags whose value is a credential.
SECRET_FLAGS = {"--api-key", "--hf-token", "--ssl-keyfile-password"}


def _walk(node: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[tuple[str | int, ...], Any]]:
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _walk(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk(v, (*path, i))
    else:
        yield path, node


def scan_literal_secrets(data: Any) -> Iterator[Finding]:
    """Findings for credential-looking literals anywhere in raw spec data."""
    for path, value in _walk(data):
        if not isinstance(value, str) or not value:
            continue
        for what, pattern in TOKEN_PATTERNS:
            if pattern.search(value):
                yield Finding(path, f"{what} is written in the spec",
                              "store it in a Secret and reference it (model.credentials.secretRef, "
                              "runtime.env[].secretKeyRef); then revoke this one, it is in your history")
                break
        else:
            key = next((p for p in reversed(path) if isinstance(p, str)), "")
            if key in REFERENCE_KEYS or not SECRET_KEY_NAMES.search(key):
                continue
            if AWS_SECRET.match(value) or len(value) >= 8:
                yield Finding(path, f"{key!r} holds a literal credential",
                              "reference a Secret instead of writing the value")


#: Emitted by the pipeline's scan of the raw spec, before validation (see pipeline.py).
LITERAL_SECRET = "LD401"


@rule(LITERAL_SECRET, stage="scan")
def literal_credential(ctx: RuleContext) -> Iterator[Finding]:
    """A credential is written in the spec.

    Tokens (Hugging Face ``hf_…``, AWS ``AKIA…``/``ASIA…`` key ids, GitHub ``ghp_…``,
    private keys) and values of keys named like ``token``, ``password``, ``secret`` or
    ``apiKey`` are errors wherever they appear. Specs live in git; credentials belong
    in a Secret that the spec references.

    Fails::

        model:
          credentials: {token: hf_abcdefghijklmnopqrstuvwxyz123456}

    Passes::

        model:
          credentials: {secretRef: hf-token}
    """
    yield from scan_literal_secrets(ctx.validated.doc.data)


@rule("LD402")
def literal_env_secret(ctx: RuleContext) -> Iterator[Finding]:
    """An environment variable that names a credential has a literal value.

    ``HF_TOKEN``, ``AWS_SECRET_ACCESS_KEY``, ``VLLM_API_KEY`` and the like must come
    from ``secretKeyRef``.

    Fails::

        runtime:
          env: [{name: VLLM_API_KEY, value: not-so-secret}]

    Passes::

        runtime:
          env: [{name: VLLM_API_KEY, secretKeyRef: {name: vllm-api, key: key}}]
    """
    for i, env in enumerate(ctx.spec.runtime.env):
        if env.value and SECRET_KEY_NAMES.search(env.name):
            yield Finding(("runtime", "env", i, "value"), f"environment variable {env.name} has a literal value",
                          "use `secretKeyRef: {name: <secret>, key: <key>}` instead of `value`")
        if env.value is not None and env.secret_key_ref is not None:
            yield Finding(("runtime", "env", i), f"environment variable {env.name} sets both value and secretKeyRef",
                          "keep one of them", severity=Severity.ERROR)
        if env.value is None and env.secret_key_ref is None:
            yield Finding(("runtime", "env", i), f"environment variable {env.name} has neither value nor secretKeyRef",
                          "set `value` or `secretKeyRef`", severity=Severity.ERROR)


@rule("LD403")
def secret_in_flag(ctx: RuleContext) -> Iterator[Finding]:
    """An engine flag carries a credential on the command line.

    ``--api-key`` and similar flags end up in the pod spec, visible to anyone who can
    read it. Pass the value through an environment variable from a Secret (vLLM reads
    ``VLLM_API_KEY``).

    Fails::

        runtime:
          extraArgs: ["--api-key=abc123"]
    """
    args = ctx.spec.runtime.extra_args
    for i, arg in enumerate(args):
        flag = arg.split("=", 1)[0]
        if flag in SECRET_FLAGS:
            yield Finding(("runtime", "extraArgs", i), f"{flag} puts a credential in the pod spec",
                          "drop the flag and set the engine's env var from a Secret "
                          "(vLLM: runtime.env [{name: VLLM_API_KEY, secretKeyRef: …}])")


@rule("LD404", Severity.WARNING)
def hf_without_token(ctx: RuleContext) -> Iterator[Finding]:
    """An ``hf://`` model is pulled without a token.

    Gated models (Llama, Gemma, Mistral…) need a Hugging Face token; anonymous pulls
    are also rate-limited. Reference a Secret that holds ``HF_TOKEN``.

    Passes::

        model:
          storageUri: hf://meta-llama/Llama-3.1-8B-Instruct
          credentials: {secretRef: hf-token}
    """
    m = ctx.spec.model
    if m.storage_uri.startswith("hf://") and m.credentials.secret_ref is None:
        yield Finding(("model", "storageUri"), "hf:// weights are pulled without a Hugging Face token",
                      "set model.credentials.secretRef to a Secret with key HF_TOKEN (needed for gated models)")


@rule("LD405", Severity.WARNING)
def remote_code(ctx: RuleContext) -> Iterator[Finding]:
    """``trustRemoteCode`` runs Python from the model repository inside the pod.

    Only enable it for repositories you trust and pin ``model.revision`` so the code
    cannot change under you.
    """
    m = ctx.spec.model
    if m.trust_remote_code and not m.revision:
        yield Finding(("model", "trustRemoteCode"), "trustRemoteCode without a pinned model.revision",
                      "pin model.revision to a commit so the remote code cannot change")


@rule("LD406")
def knative_network_policy_admits_the_gateway(ctx: RuleContext) -> Iterator[Finding]:
    """A Knative-mode NetworkPolicy does not name the ingress gateway's namespace.

    Knative puts its activator in the request path only while a revision lacks spare
    capacity; once the excess burst capacity is not negative the activator leaves the path
    and the ingress gateway (Kourier in ``kourier-system``, Istio in ``istio-system``)
    sends requests to the pods directly (knative serving
    ``pkg/reconciler/autoscaling/kpa/kpa.go``, knative-v1.23.0). A policy that admits only
    ``knative-serving`` then drops traffic exactly when the service is busiest.

    Fails::

        deployment:
          mode: knative
          networkPolicy: {enabled: true}

    Passes::

        deployment:
          mode: knative
          networkPolicy: {enabled: true, gatewayNamespace: kourier-system}
    """
    from ..derive.policy import policy_enabled

    d = ctx.spec.deployment
    np = d.network_policy
    if d.mode == "knative" and policy_enabled(ctx.profile, np.enabled, production_only=False) \
            and not np.gateway_namespace:
        yield Finding(("deployment", "networkPolicy"),
                      "in Knative mode the ingress gateway reaches the pods directly once the activator leaves "
                      "the path; the NetworkPolicy admits only knative-serving and would drop that traffic",
                      "set deployment.networkPolicy.gatewayNamespace to your Knative ingress's namespace "
                      "(kourier-system for Kourier, istio-system for Istio)", key=True)

