"""Rollout rules (LD311-LD315): canary, blue/green and A/B releases that can work.

The strategies and why each is rendered as it is: docs/scaling.md, "Rollouts".
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from ..diagnostics import Severity
from .registry import Finding, RuleContext, rule

if TYPE_CHECKING:  # pragma: no cover
    from ..engines import EngineVersionInfo


@rule("LD311")
def standard_rollout_needs_candidate_and_gateway(ctx: RuleContext) -> Iterator[Finding]:
    """A Standard-mode canary, A/B test or blue/green lacks its candidate or its gateway.

    KServe ignores ``canaryTrafficPercent`` in Standard mode (kserve#5335), so
    llmdeploy runs the new version as a second InferenceService
    (``rollout.candidate``: what differs) and splits the traffic with a Gateway API
    HTTPRoute on ``rollout.gateway``.

    Fails::

        rollout:
          strategy: canary
          trafficPercent: 10

    Passes::

        rollout:
          strategy: canary
          trafficPercent: 10
          candidate:
            image: vllm/vllm-openai:v0.11.0
          gateway:
            name: inference-gateway
            namespace: gateway-system
    """
    r = ctx.spec.rollout
    if ctx.spec.deployment.mode != "standard" or r.strategy == "rolling":
        return
    where = ("rollout", "strategy")
    why = " (KServe ignores canaryTrafficPercent in Standard mode, kserve#5335)" if r.strategy == "canary" else ""
    if r.candidate is None:
        yield Finding(where, f"{r.strategy} in Standard mode needs rollout.candidate: the new version runs as a "
                             f"second InferenceService{why}",
                      "add rollout.candidate with what changes (image, storageUri, revision, extraArgs), or use "
                      "deployment.mode: knative, where KServe splits traffic between revisions")
    if r.gateway is None and ctx.spec.deployment.target != "llmInferenceService":  # there: KServe's route group
        yield Finding(where, f"{r.strategy} in Standard mode needs rollout.gateway: a Gateway API HTTPRoute splits "
                             f"the traffic between the two InferenceServices{why}",
                      "add rollout.gateway.name (and namespace) of the Gateway your clients call")


@rule("LD312")
def knative_rollout(ctx: RuleContext) -> Iterator[Finding]:
    """A rollout setting that Knative mode cannot honour.

    In Knative mode the new version is the spec itself: KServe gives the new revision
    ``trafficPercent`` and keeps the last fully rolled-out revision for the rest. A
    separate ``candidate`` and a Gateway API ``gateway`` are Standard-mode tools, and
    KServe's Knative routing cannot match headers (no ``abTest``).

    Fails::

        deployment:
          mode: knative
        rollout:
          strategy: abTest

    Passes::

        deployment:
          mode: knative
        scaling:
          autoscaler: kpa
          metric: concurrency
        rollout:
          strategy: canary
          trafficPercent: 20
    """
    r = ctx.spec.rollout
    if ctx.spec.deployment.mode != "knative":
        return
    if r.strategy == "abTest":
        yield Finding(("rollout", "strategy"), "KServe's Knative mode cannot route by request header",
                      "use deployment.mode: standard with rollout.gateway (an HTTPRoute header match)")
    if r.candidate is not None:
        yield Finding(("rollout", "candidate"),
                      "in Knative mode the new version is the spec itself; KServe keeps the last rolled-out "
                      "revision for the remaining traffic",
                      "write the candidate's image/storageUri/extraArgs into runtime and model, and remove "
                      "rollout.candidate", key=True)
    if r.gateway is not None:
        yield Finding(("rollout", "gateway"), "the HTTPRoute is a Standard-mode tool; Knative routes its revisions",
                      "remove rollout.gateway", key=True)


@rule("LD313")
def traffic_percent_fits_strategy(ctx: RuleContext) -> Iterator[Finding]:
    """``trafficPercent`` does not fit the strategy.

    Blue/green moves all traffic at once: 0 (blue, the stable version) or 100 (green,
    the candidate). ``rolling`` and ``abTest`` do not use it (a warning).

    Fails::

        rollout:
          strategy: blueGreen
          trafficPercent: 50

    Passes::

        rollout:
          strategy: blueGreen
          trafficPercent: 100
    """
    r = ctx.spec.rollout
    if r.strategy == "blueGreen" and r.traffic_percent not in (0, 100):
        yield Finding(("rollout", "trafficPercent"),
                      f"blueGreen flips all traffic at once: trafficPercent must be 0 or 100, not {r.traffic_percent}",
                      "use 0 (blue) or 100 (green), or strategy: canary for a partial share")
    elif r.strategy in ("rolling", "abTest") and ctx.user_set(("rollout", "trafficPercent")):
        yield Finding(("rollout", "trafficPercent"), f"trafficPercent is not used by strategy {r.strategy}",
                      "remove it" + (" (the header decides)" if r.strategy == "abTest" else ""),
                      severity=Severity.WARNING)


@rule("LD314")
def no_flagger(ctx: RuleContext) -> Iterator[Finding]:
    """A Flagger Canary was asked for; llmdeploy does not render one.

    Flagger clones its target Deployment into ``<name>-primary``, scales the original
    to zero and creates its own Services; KServe owns ``<isvc>-predictor``, its Service
    and its selector, so the two controllers fight and KServe's URL ends up routing to
    zero pods. docs/scaling.md has the promotion recipe llmdeploy supports instead: the
    analysis PromQL (candidate vs stable) is in the plan's notes.

    Fails::

        rollout:
          flagger: true
    """
    if ctx.spec.rollout.flagger:
        yield Finding(("rollout", "flagger"),
                      "llmdeploy renders no Flagger Canary: Flagger would clone and scale KServe's predictor "
                      "Deployment, which KServe owns",
                      "remove rollout.flagger and promote with the recipe in docs/scaling.md (the candidate-vs-"
                      "stable PromQL is in the plan's notes)")


def _candidate_flags(ctx: RuleContext, info: EngineVersionInfo) -> Iterator[Finding]:
    """The candidate's engine flags against the candidate's engine version (LD120's check).

    Its own ``extraArgs``, or the stable's when it inherits them on another version.
    """
    from ..engines import check_args

    c = ctx.spec.rollout.candidate
    assert c is not None
    own = c.extra_args is not None
    args = c.extra_args if c.extra_args is not None else ctx.spec.runtime.extra_args
    for pa, problem in check_args(info, args):
        sev = Severity.WARNING if problem.severity == "warning" else Severity.ERROR
        if own:
            yield Finding(("rollout", "candidate", "extraArgs", pa.index), problem.message, problem.hint, severity=sev)
        else:
            yield Finding(("rollout", "candidate", "image"),
                          f"runtime.extraArgs[{pa.index}] on the candidate's {info.display_name} {info.version}: "
                          f"{problem.message}", "give the candidate its own extraArgs", severity=sev)


def _gateway_admitted(ctx: RuleContext) -> Iterator[Finding]:
    """Warn when the service's NetworkPolicy would drop the gateway's requests."""
    from ..derive.policy import policy_enabled

    np = ctx.spec.deployment.network_policy
    enabled = policy_enabled(ctx.profile, np.enabled, production_only=False)
    g = ctx.spec.rollout.gateway
    assert g is not None
    ns = ctx.spec.metadata.namespace
    gw_ns = g.namespace or ns
    if enabled and gw_ns != ns and gw_ns not in {*np.allow_from_namespaces, np.gateway_namespace}:
        yield Finding(("rollout", "gateway"),
                      f"the NetworkPolicy admits no traffic from namespace {gw_ns}, where the gateway runs",
                      f"set deployment.networkPolicy.gatewayNamespace to the namespace of the gateway's proxy pods "
                      f"(often {gw_ns})", severity=Severity.WARNING, key=True)


# RFC 7230 token, the pattern Gateway API's HTTPHeaderName uses.
HEADER_NAME_RE = re.compile(r"^[A-Za-z0-9!#$%&'*+\-.^_`|~]+\Z")
# Gateway API Hostname: a DNS name, optionally with a leading wildcard label.
HOSTNAME_RE = re.compile(r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\Z")


@rule("LD315")
def candidate_and_route(ctx: RuleContext) -> Iterator[Finding]:
    """The candidate or its route is not usable.

    * A candidate that changes nothing tests nothing (a warning), and one given with
      ``strategy: rolling`` is not rendered (a warning).
    * The candidate's engine flags (its ``extraArgs``, or the stable's it inherits on
      another engine version) are checked against its own engine version, as LD120 does.
    * llmdeploy renders one ClusterServingRuntime per engine version: a candidate image
      that pins the same version as the stable one but is another image cannot have its
      own runtime (an error); an image that pins no version gets a warning.
    * The A/B header must be an HTTP header name, and gateway hostnames DNS names.
    * With a NetworkPolicy (on in the staging and production profiles), the gateway's
      namespace must be admitted (``deployment.networkPolicy.gatewayNamespace``), or
      the route's requests are dropped (a warning).

    Fails::

        rollout:
          strategy: abTest
          header: "X Experiment"     # spaces are not allowed in header names
    """
    from ..engines import resolve_engine

    r = ctx.spec.rollout
    c = r.candidate
    if c is not None and r.strategy == "rolling":
        yield Finding(("rollout", "candidate"), "rollout.candidate is not used by strategy rolling",
                      "set strategy canary, abTest or blueGreen, or remove the candidate",
                      severity=Severity.WARNING, key=True)
    elif c is not None and ctx.spec.deployment.mode == "standard":
        if c.image is None and c.storage_uri is None and c.revision is None and c.extra_args is None:
            yield Finding(("rollout", "candidate"), "the candidate changes nothing: it runs the same image, "
                                                    "weights and flags as the stable version",
                          "set what the new version changes: image, storageUri, revision or extraArgs",
                          severity=Severity.WARNING, key=True)
        stable = ctx.resolved.engine
        cand = stable
        if c.image is not None and stable is not None:
            cand = resolve_engine(ctx.spec.runtime.engine, c.image, None)
            stable_image = ctx.spec.runtime.image or stable.default_image
            if cand.assumed:
                yield Finding(("rollout", "candidate", "image"),
                              cand.assumed_reason or f"the candidate image pins no version; assuming {cand.version}",
                              f"pin the candidate's version tag (e.g. :v{cand.version})", severity=Severity.WARNING)
            elif cand.version == stable.version and c.image != stable_image:
                yield Finding(("rollout", "candidate", "image"),
                              f"the candidate image is another image of the same {cand.display_name} version "
                              f"{cand.version}, and llmdeploy renders one ClusterServingRuntime per version",
                              "use an image of another version, or the stable image with other extraArgs")
        if cand is not None and stable is not None and (c.extra_args is not None or cand.version != stable.version):
            yield from _candidate_flags(ctx, cand)
    if r.strategy == "abTest" and not HEADER_NAME_RE.match(r.header):
        yield Finding(("rollout", "header"), f"{r.header!r} is not an HTTP header name",
                      "letters, digits and !#$%&'*+-.^_`|~, e.g. X-Experiment-Group")
    if r.gateway is not None and ctx.spec.deployment.mode == "standard":
        yield from _gateway_admitted(ctx)
    if r.gateway is not None:
        for i, host in enumerate(r.gateway.hostnames):
            if not HOSTNAME_RE.match(host) or len(host) > 253:
                yield Finding(("rollout", "gateway", "hostnames", i), f"{host!r} is not a DNS hostname",
                              "a lowercase DNS name such as llm.example.com, optionally *.example.com")
