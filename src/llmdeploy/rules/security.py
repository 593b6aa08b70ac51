"""LD4xx: security rules. Credentials are only ever referenced, never written in a spec."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..diagnostics import Severity
from ..secrets import describe, find_secrets, secret_name
from ..spec.models import camel_path
from .registry import Finding, RuleContext, rule
from .spec import extra_args_lists

# The token shapes, URL userinfo, signed-URL parameters, credential flags and the entropy
# test live in ``llmdeploy.secrets`` (base layer), shared with the manifest scan and the
# redaction of diagnostics; docs/security.md lists them.

# Keys whose value is a reference to a Secret, not the secret itself.
REFERENCE_KEYS = {"secretRef", "tokenKey", "authSecretRef", "secretKeyRef", "name", "key", "authModes",
                  "path", "reason"}
# Values a credential-named key may hold without being a credential.
_NOT_A_VALUE = {"", "true", "false", "none", "null"}
# An env entry named like a credential ({name: DB_PASSWORD, value: …}) is LD402's.

# Engine flags whose value is a credential (compared after `_` → `-`: vLLM's argparse accepts both).
SECRET_FLAGS = {"--api-key", "--hf-token", "--ssl-keyfile-password", "--token", "--password"}


def normalize_flag(flag: str) -> str:
    """``--api_key`` → ``--api-key``: vLLM (FlexibleArgumentParser) treats them as one flag."""
    return "--" + flag[2:].replace("_", "-") if flag.startswith("--") else flag


def _walk(node: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[tuple[str | int, ...], Any]]:
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _walk(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk(v, (*path, i))
    else:
        yield path, node


def allowed_paths(data: Any) -> set[str]:
    """The camel-case JSON paths the spec's ``security.allowSecretLike`` exempts."""
    security = data.get("security") if isinstance(data, dict) else None
    entries = security.get("allowSecretLike") if isinstance(security, dict) else None
    if not isinstance(entries, list):  # absent or mistyped (validation reports the latter)
        return set()
    return {e["path"] for e in entries if isinstance(e, dict) and isinstance(e.get("path"), str)}


def allowed_values(data: Any) -> list[str]:
    """The string values at the exempt paths (the manifest scan lets them through too)."""
    paths = allowed_paths(data)
    return [v for p, v in _walk(data) if isinstance(v, str) and camel_path(p) in paths]


_HINT = ("store it in a Secret and reference it (model.credentials.secretRef, runtime.env[].secretKeyRef); "
         "then revoke it, it is in your history")


def _allow_hint(path: tuple[str | int, ...]) -> str:
    return (f"{_HINT}. If it is not a credential, add {{path: {camel_path(path)}, reason: ...}} to "
            "security.allowSecretLike")


def scan_literal_secrets(data: Any) -> Iterator[Finding]:
    """Findings for credential-looking literals anywhere in raw spec data (values never quoted)."""
    allowed = allowed_paths(data)
    for path, value in _walk(data):
        if not isinstance(value, str) or not value or path[:1] == ("security",):
            continue
        if camel_path(path) in allowed:
            continue
        spans = find_secrets(value)
        if "extraArgs" in path:  # LD403 reports credential flags in engine args, with their own hint
            spans = [sp for sp in spans if sp.what != "a credential flag"]
        if spans:
            yield Finding(path, f"{describe(spans)} is written in the spec", _allow_hint(path))
            continue
        key = next((p for p in reversed(path) if isinstance(p, str)), "")
        if key in REFERENCE_KEYS or not secret_name(key):
            continue
        if len(value) >= 8 and value.strip().lower() not in _NOT_A_VALUE:
            yield Finding(path, f"{key!r} holds a literal credential", _allow_hint(path))


#: Emitted by the pipeline's scan of the raw spec, before validation (see pipeline.py).
LITERAL_SECRET = "LD401"


@rule(LITERAL_SECRET, stage="scan")
def literal_credential(ctx: RuleContext) -> Iterator[Finding]:
    """A credential is written in the spec.

    Every string of the spec (and of its profile) goes through the secret scan of
    ``llmdeploy.secrets`` (patterns listed in docs/security.md): known token formats
    (Hugging Face ``hf_…``, AWS ``AKIA…`` key ids and 40-character secret keys, GitHub
    ``ghp_…``/``github_pat_…``, Slack ``xox…``, Google ``AIza…``, JSON Web Tokens, bearer
    credentials, private keys), ``user:password@`` in URLs and image references,
    signed-URL parameters (``token=``, ``sig=``, ``X-Amz-Signature=``,
    ``X-Goog-Signature=``), credential flags (``--api-key=…``) and long high-entropy
    strings. Values of keys named like ``token``, ``password``, ``secret`` or ``apiKey``
    are errors too (an env entry whose ``name`` says so is LD402; a credential flag in
    ``extraArgs`` is LD403). The message
    never quotes the value. Specs live in git; credentials belong in a Secret that the
    spec references. A value that only looks like a credential is exempted by its path
    in ``security.allowSecretLike`` (with a reason), never by a comment.

    Fails::

        model:
          credentials: {token: hf_abcdefghijklmnopqrstuvwxyz123456}
          storageUri: s3://weights/llama?X-Amz-Signature=0123abcd

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
    allowed = allowed_paths(ctx.validated.merged or ctx.validated.doc.data)
    for i, env in enumerate(ctx.spec.runtime.env):
        if env.value and secret_name(env.name) and f"runtime.env[{i}].value" not in allowed:
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
    ``VLLM_API_KEY``). The underscore spelling (``--api_key``) is the same flag: vLLM's
    ``FlexibleArgumentParser`` turns ``_`` into ``-`` in option names
    (vllm ``vllm/utils/__init__.py``, v0.11.0). A rollout candidate's ``extraArgs`` are
    checked too.

    Fails::

        runtime:
          extraArgs: ["--api_key=abc123"]
    """
    for where, args in extra_args_lists(ctx):
        for i, arg in enumerate(args):
            flag = normalize_flag(arg.split("=", 1)[0])
            if flag in SECRET_FLAGS:
                yield Finding((*where, i), f"{flag} puts a credential in the pod spec",
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

