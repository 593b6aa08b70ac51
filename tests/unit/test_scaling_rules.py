"""LD3xx rules: every combination that cannot work, with its exact id and position."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from llmdeploy.pipeline import analyze
from llmdeploy.rules import RULES, load_all
from llmdeploy.spec.loader import load_paths, load_text

ROOT = Path(__file__).resolve().parents[2]

HEAD = """\
apiVersion: llmdeploy.dev/v1alpha1
kind: LLMService
metadata:
  name: svc
  namespace: ml
model:
  id: meta-llama/Llama-3.1-8B-Instruct
  storageUri: s3://models/llama-3.1-8b
runtime:
  image: vllm/vllm-openai:v0.11.0
resources:
  gpu:
    type: a100-80gb
"""

Hit = tuple[str, str, int, int]  # rule, severity, line, column


def lint(body: str, head: str = HEAD) -> tuple[str, list[Hit]]:
    """The spec text and its LD3xx diagnostics."""
    text = head + textwrap.dedent(body)
    docs, diags = load_text(text, "spec.yaml", Path("."))
    assert docs and not diags, diags
    a = analyze(docs[0])
    assert a.spec is not None, [d.to_text() for d in a.diagnostics]
    return text, [(d.rule, d.severity.value, d.line, d.col) for d in a.diagnostics if d.rule.startswith("LD3")]


def at(text: str, needle: str, *, key: bool = False) -> tuple[int, int]:
    """(line, column) of the value after ``needle`` (``key: value``), or of the key itself."""
    for n, line in enumerate(text.splitlines(), start=1):
        i = line.find(needle)
        if i >= 0:
            if key:
                return n, i + 1
            return n, i + len(needle.split(":", 1)[0]) + 3
    raise AssertionError(f"{needle!r} not in the spec")


def hit(rule: str, text: str, needle: str, severity: str = "error", *, key: bool = False) -> Hit:
    return (rule, severity, *at(text, needle, key=key))


def test_every_ld3_rule_is_documented_with_an_example() -> None:
    load_all()
    ids = sorted(r for r in RULES if r.startswith("LD3"))
    assert ids == [f"LD3{n:02d}" for n in range(18)]
    for rid in ids:
        doc = RULES[rid].doc
        assert "Fails::" in doc, rid


def test_valid_combinations_have_no_findings() -> None:
    _, hits = lint("""\
        scaling:
          autoscaler: keda
          metric: itlP95
          target: 0.05
          minReplicas: 1
          maxReplicas: 4
        """)
    assert hits == []


# --------------------------------------------------------------------------- LD300 / LD301


def test_keda_in_knative_mode() -> None:
    text, hits = lint("""\
        deployment:
          mode: knative
        scaling:
          autoscaler: keda
        """)
    assert hit("LD300", text, "autoscaler: keda") in hits


def test_default_autoscaler_in_knative_mode_points_at_the_mode() -> None:
    text, hits = lint("deployment:\n  mode: knative\n")
    assert hits == [hit("LD300", text, "mode: knative")]


def test_kpa_in_standard_mode() -> None:
    text, hits = lint("scaling:\n  autoscaler: kpa\n  metric: concurrency\n")
    assert hits == [hit("LD300", text, "autoscaler: kpa")]


@pytest.mark.parametrize(("body", "needle"), [
    ("scaling:\n  autoscaler: keda\n  metric: cpu\n", "metric: cpu"),
    ("scaling:\n  autoscaler: keda\n  metric: rps\n", "metric: rps"),
    ("scaling:\n  autoscaler: hpa\n  metric: queueDepth\n", "metric: queueDepth"),
    ("scaling:\n  autoscaler: hpa\n", "autoscaler: hpa"),   # the default metric is queueDepth
])
def test_metric_does_not_fit_the_autoscaler(body: str, needle: str) -> None:
    text, hits = lint(body)
    assert hit("LD301", text, needle) in hits


def test_kpa_with_the_default_metric() -> None:
    text, hits = lint("deployment:\n  mode: knative\nscaling:\n  autoscaler: kpa\n")
    assert hits == [hit("LD301", text, "autoscaler: kpa")]


# --------------------------------------------------------------------------- LD302 / LD303 / LD304


def test_max_below_min() -> None:
    text, hits = lint("scaling:\n  minReplicas: 3\n  maxReplicas: 2\n")
    assert hits == [hit("LD302", text, "maxReplicas: 2")]


def test_auto_max_without_target_load() -> None:
    text, hits = lint("scaling:\n  maxReplicas: auto\n")
    assert hits == [hit("LD302", text, "maxReplicas: auto")]


def test_min_zero_without_scale_to_zero() -> None:
    text, hits = lint("scaling:\n  minReplicas: 0\n")
    assert hits == [hit("LD302", text, "minReplicas: 0")]


def test_hpa_cannot_scale_to_zero() -> None:
    text, hits = lint("scaling:\n  autoscaler: hpa\n  metric: cpu\n  target: 80\n  scaleToZero: true\n"
                      "  minReplicas: 0\n")
    assert hit("LD303", text, "scaleToZero: true") in hits


def test_none_cannot_scale_to_zero() -> None:
    text, hits = lint("scaling:\n  autoscaler: none\n  scaleToZero: true\n  minReplicas: 0\n")
    assert hits == [hit("LD303", text, "scaleToZero: true")]


def test_knative_scale_to_zero_with_min_replicas() -> None:
    text, hits = lint("""\
        deployment:
          mode: knative
          requestTimeoutSeconds: 900
        scaling:
          autoscaler: kpa
          metric: concurrency
          target: 64
          scaleToZero: true
          minReplicas: 1
        """)
    assert hits == [hit("LD303", text, "minReplicas: 1")]


def test_keda_scale_to_zero_with_min_replicas_is_fine() -> None:
    # idleReplicaCount: 0 with minReplicaCount 2 (only the cold-start and wake-up warnings).
    _, hits = lint("scaling:\n  scaleToZero: true\n  minReplicas: 2\n")
    assert {h[0] for h in hits} == {"LD305", "LD306"}
    assert all(h[1] == "warning" for h in hits)


def _write(tmp_path: Path, spec: str, profile: str) -> Path:
    (tmp_path / "production.yaml").write_text(profile, encoding="utf-8")
    path = tmp_path / "spec.yaml"
    path.write_text(spec, encoding="utf-8")
    return path


def test_production_refuses_scale_to_zero_it_did_not_ask_for(tmp_path: Path) -> None:
    profile = textwrap.dedent("""\
        apiVersion: llmdeploy.dev/v1alpha1
        kind: LLMServiceProfile
        scaling:
          minReplicas: 0
          scaleToZero: true
          activationQuery: sum(rate(gw_requests_total[1m]))
        """)
    path = _write(tmp_path, HEAD + "profile: ./production.yaml\n", profile)
    docs, _ = load_paths([str(path)])
    a = analyze(docs[0])
    ld304 = [d for d in a.diagnostics if d.rule == "LD304"]
    assert len(ld304) == 1 and ld304[0].is_error
    assert ld304[0].file.endswith("production.yaml") and ld304[0].line == 5
    # Said in the spec itself: accepted (with the cold-start warning).
    path = _write(tmp_path, HEAD + "profile: ./production.yaml\nscaling:\n  scaleToZero: true\n", profile)
    docs, _ = load_paths([str(path)])
    rules = {d.rule for d in analyze(docs[0]).diagnostics if d.rule.startswith("LD3")}
    assert "LD304" not in rules and "LD305" in rules


# --------------------------------------------------------------------------- LD305 - LD308


def test_cold_start_warning_in_standard_mode() -> None:
    text, hits = lint("scaling:\n  scaleToZero: true\n  minReplicas: 0\n  activationQuery: sum(rate(x_total[1m]))\n")
    assert hits == [hit("LD305", text, "scaleToZero: true", "warning")]


def test_cold_start_longer_than_the_knative_timeout() -> None:
    text, _ = lint("")
    body = """\
        deployment:
          mode: knative
          requestTimeoutSeconds: 10
        scaling:
          autoscaler: kpa
          metric: concurrency
          target: 64
          scaleToZero: true
          minReplicas: 0
        """
    text = HEAD + textwrap.dedent(body)
    docs, _ = load_text(text, "spec.yaml", Path("."))
    diags = [d for d in analyze(docs[0]).diagnostics if d.rule == "LD305"]
    assert len(diags) == 1 and diags[0].severity.value == "warning"
    assert "longer than the request timeout of 10 s" in diags[0].message
    assert (diags[0].line, diags[0].col) == at(text, "scaleToZero: true")


def test_keda_scale_to_zero_without_a_wake_up_query() -> None:
    text, hits = lint("scaling:\n  scaleToZero: true\n  minReplicas: 0\n")
    assert hit("LD306", text, "scaleToZero: true", "warning") in hits


def test_activation_query_without_scale_to_zero() -> None:
    text, hits = lint("scaling:\n  activationQuery: sum(rate(x_total[1m]))\n")
    assert hits == [hit("LD306", text, "activationQuery:", "warning", key=True)]


def test_cpu_with_hpa_warns() -> None:
    text, hits = lint("scaling:\n  autoscaler: hpa\n  metric: memory\n  target: 80\n")
    assert hits == [hit("LD307", text, "metric: memory", "warning")]


def test_metric_the_engine_does_not_export() -> None:
    head = HEAD.replace("  image: vllm/vllm-openai:v0.11.0\n",
                        "  engine: tgi\n  image: ghcr.io/huggingface/text-generation-inference:3.3.4\n")
    text, hits = lint("scaling:\n  metric: kvCacheUsage\n  target: 0.8\n", head=head)
    assert hit("LD308", text, "metric: kvCacheUsage") in hits


# --------------------------------------------------------------------------- LD309 / LD310


@pytest.mark.parametrize(("body", "needle", "severity"), [
    ("scaling:\n  metric: kvCacheUsage\n  target: 80\n", "target: 80", "error"),
    ("scaling:\n  metric: queueDepth\n  target: -1\n", "target: -1", "error"),
    ("scaling:\n  autoscaler: hpa\n  metric: cpu\n  target: 150\n", "target: 150", "error"),
    ("deployment:\n  mode: knative\nscaling:\n  autoscaler: kpa\n  metric: concurrency\n  target: 2.5\n",
     "target: 2.5", "error"),
    ("scaling:\n  metric: ttftP95\n  target: 500\n", "target: 500", "warning"),
])
def test_target_does_not_fit_the_metric(body: str, needle: str, severity: str) -> None:
    text, hits = lint(body)
    assert hit("LD309", text, needle, severity) in hits


def test_activation_target_not_below_target() -> None:
    text, hits = lint("scaling:\n  scaleToZero: true\n  minReplicas: 0\n  target: 3\n  activationTarget: 3\n"
                      "  activationQuery: sum(rate(x_total[1m]))\n")
    assert hit("LD309", text, "activationTarget: 3", "warning") in hits


def test_profile_target_for_another_metric() -> None:
    text = HEAD + "profile: production\nscaling:\n  metric: ttftP95\n"
    docs, _ = load_text(text, "spec.yaml", Path("."))
    diags = [d for d in analyze(docs[0]).diagnostics if d.rule == "LD309"]
    assert len(diags) == 1 and diags[0].is_error
    assert "meant for metric queueDepth, not ttftP95" in diags[0].message
    # The value came from the profile: the finding points at the spec's `profile:` line and says so (#18).
    assert diags[0].file == "spec.yaml" and diags[0].line == text.splitlines().index("profile: production") + 1
    assert "comes from profile production" in diags[0].message
    # target: auto (or a number) in the spec settles it.
    docs, _ = load_text(text + "  target: auto\n", "spec.yaml", Path("."))
    assert not [d for d in analyze(docs[0]).diagnostics if d.rule == "LD309"]


def test_max_replicas_below_the_target_load() -> None:
    text, hits = lint("scaling:\n  maxReplicas: 2\n  targetLoad:\n    requestsPerSecond: 5000\n")
    assert hits == [hit("LD310", text, "maxReplicas: 2", "warning")]


# --------------------------------------------------------------------------- rollouts


GATEWAY = "  gateway:\n    name: gw\n    namespace: gateway-system\n"


def test_standard_canary_without_candidate_or_gateway() -> None:
    text, hits = lint("rollout:\n  strategy: canary\n  trafficPercent: 10\n")
    assert hits == [hit("LD311", text, "strategy: canary")] * 2


def test_standard_ab_test_without_gateway() -> None:
    text, hits = lint("rollout:\n  strategy: abTest\n  candidate:\n    storageUri: s3://models/ft\n")
    assert hits == [hit("LD311", text, "strategy: abTest")]


KN = "deployment:\n  mode: knative\nscaling:\n  autoscaler: kpa\n  metric: concurrency\n  target: 64\n"


def test_knative_ab_test() -> None:
    text, hits = lint(KN + "rollout:\n  strategy: abTest\n")
    assert hits == [hit("LD312", text, "strategy: abTest")]


def test_knative_candidate_and_gateway() -> None:
    text, hits = lint(KN + "rollout:\n  strategy: canary\n  candidate:\n    image: vllm/vllm-openai:v0.11.0\n"
                      + GATEWAY)
    assert hits == [hit("LD312", text, "candidate:", key=True), hit("LD312", text, "gateway:", key=True)]


def test_blue_green_is_all_or_nothing() -> None:
    text, hits = lint("rollout:\n  strategy: blueGreen\n  trafficPercent: 50\n  candidate:\n"
                      "    image: vllm/vllm-openai:v0.10.2\n" + GATEWAY)
    assert hits == [hit("LD313", text, "trafficPercent: 50")]


def test_traffic_percent_unused_by_rolling() -> None:
    text, hits = lint("rollout:\n  trafficPercent: 20\n")
    assert hits == [hit("LD313", text, "trafficPercent: 20", "warning")]


def test_flagger_is_refused() -> None:
    text, hits = lint("rollout:\n  flagger: true\n")
    assert hits == [hit("LD314", text, "flagger: true")]


def test_candidate_that_changes_nothing() -> None:
    text, hits = lint("rollout:\n  strategy: canary\n  candidate:\n    nameSuffix: next\n" + GATEWAY)
    assert hits == [hit("LD315", text, "candidate:", "warning", key=True)]


def test_candidate_image_of_the_same_version() -> None:
    text, hits = lint("rollout:\n  strategy: canary\n  candidate:\n    image: registry.local/vllm:v0.11.0\n"
                      + GATEWAY)
    assert hits == [hit("LD315", text, "image: registry.local/vllm:v0.11.0")]


def test_candidate_image_without_a_version() -> None:
    text, hits = lint("rollout:\n  strategy: canary\n  candidate:\n    image: vllm/vllm-openai:latest\n" + GATEWAY)
    assert hits == [hit("LD315", text, "image: vllm/vllm-openai:latest", "warning")]


def test_candidate_with_rolling() -> None:
    text, hits = lint("rollout:\n  candidate:\n    image: vllm/vllm-openai:v0.10.2\n")
    assert hits == [hit("LD315", text, "candidate:", "warning", key=True)]


def test_bad_header_and_hostname() -> None:
    body = ("rollout:\n  strategy: abTest\n  header: X Group\n  candidate:\n    storageUri: s3://models/ft\n"
            + GATEWAY + "    hostnames: [Bad_Host]\n")
    text, hits = lint(body)
    line, _ = at(text, "hostnames: [Bad_Host]")
    assert hits == [hit("LD315", text, "header: X Group"), ("LD315", "error", line, 17)]


# --------------------------------------------------------------------------- LD316


def test_initial_scale_with_min_zero() -> None:
    text, hits = lint("""\
        deployment:
          mode: knative
        scaling:
          autoscaler: kpa
          metric: concurrency
          target: 64
          scaleToZero: true
          minReplicas: 0
          knative:
            initialScale: 1
        """)
    assert hit("LD316", text, "initialScale: 1", "warning") in hits


def test_knative_knobs_in_standard_mode() -> None:
    text, hits = lint("scaling:\n  knative:\n    scaleDownDelay: 5m\n")
    assert hits == [hit("LD316", text, "scaleDownDelay:", "warning", key=True)]


# --------------------------------------------------------------------------- examples


EXPECTED_EXAMPLE_FINDINGS = {
    "phi-3-mini-hpa-cpu.llmdeploy.yaml": {"LD307"},
    "qwen2.5-7b-knative.llmdeploy.yaml": {"LD305"},
    "tinyllama-dev-scale-to-zero.llmdeploy.yaml": {"LD305"},
}


@pytest.mark.parametrize("example", sorted(p.name for p in (ROOT / "examples").glob("*.llmdeploy.yaml")))
def test_examples_have_only_the_intended_ld3_warnings(example: str) -> None:
    docs, _ = load_paths([str(ROOT / "examples" / example)])
    diags = [d for d in analyze(docs[0]).diagnostics if d.rule.startswith("LD3")]
    assert not [d.to_text() for d in diags if d.is_error]
    assert {d.rule for d in diags} == EXPECTED_EXAMPLE_FINDINGS.get(example, set())


def test_candidate_flags_are_checked_against_the_candidate_version() -> None:
    text, hits = lint("rollout:\n  strategy: canary\n  candidate:\n    extraArgs: [\"--enable-flash-attention\"]\n"
                      + GATEWAY)
    line, col = at(text, 'extraArgs: ["--enable-flash-attention"]')
    assert hits == [("LD315", "error", line, col + 1)]


def test_inherited_flags_on_a_newer_candidate_version() -> None:
    # --swap-space is fine on the stable 0.11.0 and gone in the candidate's 0.18.0.
    head = HEAD.replace("  image: vllm/vllm-openai:v0.11.0\n",
                        "  image: vllm/vllm-openai:v0.11.0\n  extraArgs: [\"--swap-space=4\"]\n")
    text, hits = lint("rollout:\n  strategy: canary\n  candidate:\n    image: vllm/vllm-openai:v0.18.0\n" + GATEWAY,
                      head=head)
    assert hits == [hit("LD315", text, "image: vllm/vllm-openai:v0.18.0")]


# --------------------------------------------------------------------------- the documentation's examples


def _doc_example(doc: str, label: str) -> dict[str, object] | None:
    """The YAML block after ``Fails::`` / ``Passes::`` in a rule docstring."""
    import re

    from ruamel.yaml import YAML

    m = re.search(rf"^{label}::\n\n((?:    .*\n|\n)+)", doc + "\n", re.MULTILINE)
    if m is None:
        return None
    data = YAML(typ="safe").load(textwrap.dedent(m.group(1)))
    assert isinstance(data, dict), data
    return data


# Examples that need more than a fragment merged onto a spec (a team profile file).
NOT_STANDALONE = {("LD304", "Fails")}


@pytest.mark.parametrize("rule_id", [f"LD3{n:02d}" for n in range(17)])
def test_documented_examples_fail_and_pass(rule_id: str) -> None:
    import io

    from ruamel.yaml import YAML

    from llmdeploy.spec.validate import deep_merge

    load_all()
    base = YAML(typ="safe").load(HEAD)
    for label, fires in (("Fails", True), ("Passes", False)):
        example = _doc_example(RULES[rule_id].doc, label)
        if example is None or (rule_id, label) in NOT_STANDALONE:
            continue
        buf = io.StringIO()
        YAML(typ="safe").dump(deep_merge(base, example), buf)
        docs, diags = load_text(buf.getvalue(), "spec.yaml", Path("."))
        assert docs and not diags, diags
        a = analyze(docs[0])
        assert a.spec is not None, [d.to_text() for d in a.diagnostics]
        got = {d.rule for d in a.diagnostics}
        assert (rule_id in got) is fires, (label, [d.to_text() for d in a.diagnostics])


def test_network_policy_must_admit_the_gateway() -> None:
    body = ("profile: production\nrollout:\n  strategy: canary\n  candidate:\n    image: vllm/vllm-openai:v0.10.2\n"
            + GATEWAY)
    text, hits = lint(body)
    assert hits == [hit("LD315", text, "gateway:", "warning", key=True)]
    text, hits = lint("deployment:\n  networkPolicy:\n    gatewayNamespace: gateway-system\n" + body)
    assert hits == []
