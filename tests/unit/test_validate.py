"""Validation: profile merge, pydantic errors mapped to (file, line, col, code), --show-resolved."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML
from typer.testing import CliRunner

from llmdeploy.cli import app
from llmdeploy.pipeline import analyze
from llmdeploy.spec.loader import load_paths, load_text
from llmdeploy.spec.models import LLMService
from llmdeploy.spec.validate import Validated, deep_merge, validate_doc


def write_tree(root: Path, files: dict[str, str]) -> Path:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
    return root


HEAD = """\
apiVersion: llmdeploy.dev/v1alpha1
kind: LLMService
metadata:
  name: chat
  namespace: inference
"""
BODY = """\
model:
  id: meta-llama/Llama-3.1-8B-Instruct
  storageUri: hf://meta-llama/Llama-3.1-8B-Instruct
  credentials:
    secretRef: hf-token
runtime:
  image: vllm/vllm-openai:v0.11.0
resources:
  gpu:
    type: a100-80gb
"""


def validate_text(text: str, file: str = "spec.yaml", base: Path | None = None) -> Validated:
    docs, diags = load_text(text, file, base)
    assert diags == []
    return validate_doc(docs[0])


def validate_file(path: Path, display: str) -> Validated:
    docs, diags = load_paths([display])
    assert diags == [], [d.to_text() for d in diags]
    return validate_doc(docs[0])


def where(v: Validated) -> list[tuple[str, int, int, str]]:
    return [(d.file, d.line, d.col, d.rule) for d in v.diagnostics]


# --------------------------------------------------------------------------- the merge rule


def test_deep_merge_spec_wins_maps_merge_lists_replace() -> None:
    profile = {"a": 1, "m": {"x": 1, "y": {"z": 1, "k": [1, 2]}}, "l": [1, 2, 3], "only_profile": True}
    spec = {"a": 2, "m": {"y": {"z": 2}, "new": "n"}, "l": [9]}
    before = copy.deepcopy(profile), copy.deepcopy(spec)
    assert deep_merge(profile, spec) == {
        "a": 2,                                                   # the spec wins
        "m": {"x": 1, "y": {"z": 2, "k": [1, 2]}, "new": "n"},   # maps merge, at every depth
        "l": [9],                                                 # lists replace
        "only_profile": True,
    }
    assert (profile, spec) == before  # neither input is changed


def test_a_scalar_replaces_a_map_and_back() -> None:
    assert deep_merge({"a": {"b": 1}}, {"a": None}) == {"a": None}
    assert deep_merge({"a": 1}, {"a": {"b": 1}}) == {"a": {"b": 1}}


def test_builtin_profile_fills_what_the_spec_leaves_out() -> None:
    v = validate_text(HEAD + "profile: production\n" + BODY + "scaling:\n  maxReplicas: 4\n")
    assert v.diagnostics == []
    assert v.profile_name == "production"
    assert v.spec is not None
    assert v.spec.scaling.min_replicas == 2        # from the profile
    assert v.spec.scaling.max_replicas == 4        # the spec wins over the profile's 10
    assert v.spec.deployment.network_policy.enabled is True
    assert v.user_set(("scaling", "maxReplicas"))
    assert not v.user_set(("scaling", "minReplicas"))


TEAM_PROFILE = """\
# team defaults
apiVersion: llmdeploy.dev/v1alpha1
kind: LLMServiceProfile
description: the search team
runtime:
  gpuMemoryUtilization: 0.85
  extraArgs: ["--enable-lora", "--max-loras=4"]
deployment:
  tolerations:
    - {key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}
    - {key: pool, operator: Equal, value: search, effect: NoSchedule}
scaling:
  minReplicas: 2
  maxReplicas: 3
monitoring:
  labels:
    release: prometheus-search
    team: search
"""


def team_spec(tmp_path: Path, extra: str = "", profile: str = TEAM_PROFILE) -> Validated:
    write_tree(tmp_path, {
        "specs/team/search.yaml": profile,
        "specs/chat.yaml": HEAD + "profile: team/search.yaml\n" + BODY + extra,
    })
    return validate_file(tmp_path / "specs/chat.yaml", str(tmp_path / "specs/chat.yaml"))


def test_team_profile_merge(tmp_path: Path) -> None:
    v = team_spec(tmp_path, (
        "  extraArgs: [--enable-prefix-caching]\n"   # continues `runtime:` in BODY? no: see below
    ) if False else (
        "deployment:\n"
        "  tolerations:\n"
        "    - {key: dedicated, operator: Exists}\n"
        "scaling:\n"
        "  maxReplicas: 6\n"
        "monitoring:\n"
        "  labels:\n"
        "    release: kube-prometheus-stack\n"
    ))
    assert v.diagnostics == []
    s = v.spec
    assert s is not None
    assert v.profile_name == "search"
    assert s.runtime.gpu_memory_utilization == 0.85                       # only in the profile
    assert s.runtime.extra_args == ["--enable-lora", "--max-loras=4"]    # a profile list, untouched
    assert [t.key for t in s.deployment.tolerations or []] == ["dedicated"]  # lists replace
    assert (s.scaling.min_replicas, s.scaling.max_replicas) == (2, 6)     # the spec wins
    assert s.monitoring.labels == {"release": "kube-prometheus-stack", "team": "search"}  # maps merge
    assert s.runtime.image == "vllm/vllm-openai:v0.11.0"


def test_locate_points_at_the_file_that_set_the_value(tmp_path: Path) -> None:
    v = team_spec(tmp_path, "scaling:\n  maxReplicas: 6\n")
    spec_file = str(tmp_path / "specs/chat.yaml")
    profile_file = str(tmp_path / "specs/team/search.yaml")
    assert v.locate(("scaling", "maxReplicas")) == (spec_file, 18, 16)
    assert v.locate(("scaling", "minReplicas")) == (profile_file, 13, 16)
    assert v.locate(("runtime", "extraArgs", 1)) == (profile_file, 7, 32)
    # set by neither: the spec (nearest parent it wrote)
    assert v.locate(("rollout", "strategy")) == (spec_file, 1, 1)


# --------------------------------------------------------------------------- errors inside a profile


def test_profile_type_error_and_unknown_key_point_into_the_profile(tmp_path: Path) -> None:
    v = team_spec(tmp_path, profile=TEAM_PROFILE.replace("minReplicas: 2", "minReplica: 2").replace(
        "gpuMemoryUtilization: 0.85", "gpuMemoryUtilization: high"))
    pf = str(tmp_path / "specs/team/search.yaml")
    assert where(v) == [(pf, 6, 25, "LD104"), (pf, 13, 3, "LD105")]
    assert v.diagnostics[1].hint == "did you mean 'minReplicas'?"


def test_a_spec_value_overriding_a_bad_profile_value_fixes_it(tmp_path: Path) -> None:
    v = team_spec(tmp_path, "scaling:\n  minReplicas: 1\n",
                  profile=TEAM_PROFILE.replace("minReplicas: 2", "minReplicas: two"))
    assert v.diagnostics == []


def test_profile_file_names_are_relative_like_the_spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_tree(tmp_path, {
        "specs/team/search.yaml": TEAM_PROFILE.replace("maxReplicas: 3", "maxReplicas: lots"),
        "specs/chat.yaml": HEAD + "profile: ./team/search.yaml\n" + BODY,
    })
    monkeypatch.chdir(tmp_path)
    v = validate_file(tmp_path / "specs/chat.yaml", "specs/chat.yaml")
    assert where(v) == [("specs/team/search.yaml", 14, 16, "LD104")]
    assert (tmp_path / v.diagnostics[0].file).is_file()


@pytest.mark.parametrize(
    ("profile", "expected"),
    [
        (None, [("spec.yaml", 6, 10, "LD108")]),                       # the file does not exist
        ("scaling: [\n", [("team.yaml", 2, 1, "LD100")]),             # YAML error: in the profile
        ("a: 1\n---\nb: 2\n", [("spec.yaml", 6, 10, "LD108")]),       # two documents
        ("kind: LLMService\n", [("team.yaml", 1, 7, "LD108")]),       # not a profile
        ("- a list\n", [("team.yaml", 1, 1, "LD103")]),
    ],
    ids=["missing", "syntax", "two-documents", "wrong-kind", "list"],
)
def test_broken_team_profiles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, profile: str | None,
                              expected: list[tuple[str, int, int, str]]) -> None:
    files = {"spec.yaml": HEAD + "profile: team.yaml\n" + BODY}
    if profile is not None:
        files["team.yaml"] = profile
    write_tree(tmp_path, files)
    monkeypatch.chdir(tmp_path)
    v = validate_file(tmp_path / "spec.yaml", "spec.yaml")
    assert where(v) == expected
    assert v.spec is None


def test_unknown_builtin_profile_suggests_the_closest() -> None:
    v = validate_text(HEAD + "profile: stagin\n" + BODY)
    assert where(v) == [("spec.yaml", 6, 10, "LD108")]
    assert v.diagnostics[0].message == "unknown profile 'stagin'"
    assert v.diagnostics[0].hint and v.diagnostics[0].hint.startswith("did you mean 'staging'?")


def test_rule_findings_on_profile_values_point_into_the_profile(tmp_path: Path) -> None:
    write_tree(tmp_path, {
        "team.yaml": "kind: LLMServiceProfile\nruntime:\n  extraArgs:\n    - --enable-lora\n    - --api-key=abc123\n",
        "spec.yaml": HEAD + "profile: team.yaml\n" + BODY,
    })
    docs, _ = load_paths([str(tmp_path / "spec.yaml")])
    a = analyze(docs[0], with_sizing=False)
    found = [(Path(d.file).name, d.line, d.col, d.rule) for d in a.diagnostics if d.rule == "LD403"]
    assert found == [("team.yaml", 5, 7, "LD403")]


def test_flag_rules_read_the_rollout_candidates_extra_args_too() -> None:
    text = HEAD + BODY.replace("runtime:\n", "runtime:\n  extraArgs: [--max-model-len=4096]\n") + """\
rollout:
  strategy: canary
  trafficPercent: 10
  candidate:
    image: vllm/vllm-openai:v0.11.0
    extraArgs: [--enable-lora, --api_key=abc123, --max-model-len=2048]
  gateway:
    name: gw
    namespace: gateway-system
"""
    docs, diags = load_text(text, "spec.yaml", None)
    assert diags == []
    a = analyze(docs[0], with_sizing=False)
    found = sorted((d.line, d.col, d.rule) for d in a.diagnostics if d.rule in ("LD121", "LD403"))
    assert found == [(12, 15, "LD121"), (22, 32, "LD403"), (22, 50, "LD121")]


# --------------------------------------------------------------------------- pydantic errors → positions


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("kind: LLMService\nmetadata: {name: a}\n", [(1, 1, "LD106", "apiVersion missing")]),
        ("apiVersion: v1\nkind: Pod\n", [(1, 13, "LD106", "apiVersion 'v1' is not supported"),
                                         (2, 7, "LD106", "kind 'Pod' is not an llmdeploy spec")]),
        (HEAD + BODY.replace("  id: meta", "  idd: meta"), [(7, 3, "LD105", "unknown key 'idd'")]),
        (HEAD + BODY + "runtime2: {}\n", [(16, 1, "LD105", "unknown key 'runtime2'")]),
        (HEAD + BODY.replace("    type: a100-80gb\n", ""), [(14, 3, "LD104", "gpu must be a mapping (got null)")]),
        (HEAD + BODY.replace("    type: a100-80gb\n", "    count: 1\n"), [(14, 3, "LD107", "type is required")]),
        (HEAD + BODY.replace("image: vllm/vllm-openai:v0.11.0", "maxNumSeqs: many"),
         [(12, 15, "LD104", "maxNumSeqs must be an integer or 'auto' (got 'many')")]),
        (HEAD + BODY + "scaling: {maxReplicas: 2.5}\n",
         [(16, 24, "LD104", "maxReplicas must be an integer or 'auto' (got 2.5)")]),
        (HEAD + BODY + "deployment:\n  tolerations:\n    - key: a\n      effect: Sometimes\n",
         [(19, 15, "LD104", "effect must be one of 'NoSchedule', 'PreferNoSchedule' or 'NoExecute' (got 'Sometimes')")]),
        (HEAD + BODY.replace("secretRef: hf-token", "secretRef: HF_Token"),
         [(10, 16, "LD104", "secretRef must be a DNS-1123 label (got 'HF_Token')")]),
        (HEAD + BODY + "monitoring: {scrapeInterval: 1h}\n",
         [(16, 30, "LD104", "scrapeInterval must be a duration (got '1h')")]),
    ],
    ids=["missing-api", "wrong-api-and-kind", "nested-unknown", "top-unknown", "empty-mapping", "missing-nested", "union",
         "float-for-int", "list-item-enum", "dns-label", "duration"],
)
def test_errors_are_located(text: str, expected: list[tuple[int, int, str, str]]) -> None:
    v = validate_text(text)
    assert [(d.line, d.col, d.rule, d.message) for d in v.diagnostics] == expected
    assert all(d.file == "spec.yaml" for d in v.diagnostics)


def test_unknown_key_without_a_close_match_lists_the_valid_keys() -> None:
    v = validate_text(HEAD + BODY.replace("    type: a100-80gb\n", "    type: a100-80gb\n    vendor: nvidia\n"))
    (d,) = v.diagnostics
    assert (d.line, d.col, d.rule) == (16, 5, "LD105")
    assert d.hint == "valid keys here: count, perNode, type"
    assert d.path == "resources.gpu.vendor"


def test_label_errors_point_at_each_label() -> None:
    v = validate_text(HEAD + "  labels:\n    ok: fine\n    bad key: x\n    v: -bad-\n" + BODY)
    assert [(d.line, d.col, d.message.split(" is ")[0]) for d in v.diagnostics] == [
        (8, 5, "key 'bad key'"), (9, 8, "labels['v']"),
    ]


def test_hints_quote_the_first_sentence_of_the_field_description() -> None:
    v = validate_text(HEAD + BODY + "scaling: {maxReplicas: many}\n")
    (d,) = v.diagnostics
    assert d.hint == "maxReplicas: Most replicas, or `auto` (from targetLoad and the capacity estimate)"
    v = validate_text(HEAD + BODY.replace("image: vllm/vllm-openai:v0.11.0", "extraArgs: --x"))
    (d,) = v.diagnostics
    assert d.hint == ("extraArgs: More engine flags, checked against the pinned version's flag table "
                      '(e.g. `["--enable-lora", "--max-loras=4"]`)')


# --------------------------------------------------------------------------- --show-resolved


def leaves(data: Any, path: tuple[Any, ...] = ()) -> dict[tuple[Any, ...], Any]:
    """Every scalar in ``data`` by its path (list items by index)."""
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else None
    if items is None:
        return {path: data}
    out: dict[tuple[Any, ...], Any] = {}
    for k, v in items:
        out.update(leaves(v, (*path, k)))
    return out


def test_show_resolved_prints_the_merged_spec_as_yaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_tree(tmp_path, {
        "team.yaml": TEAM_PROFILE,
        "spec.yaml": HEAD + "profile: team.yaml\n" + BODY + "scaling:\n  maxReplicas: 6\n",
    })
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["validate", "--show-resolved", "spec.yaml"], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    assert result.stderr.splitlines()[-1].startswith("✓ 1 spec valid")
    resolved = YAML(typ="safe").load(result.stdout)   # stdout is YAML and nothing else

    v = validate_file(tmp_path / "spec.yaml", "spec.yaml")
    assert v.spec is not None
    # The spec as merged, with what `auto` and the unset engine fields resolved to.
    dumped = v.spec.model_dump(mode="json", by_alias=True)
    dumped["runtime"].update(engineVersion="0.11.0", maxNumSeqs=resolved["runtime"]["maxNumSeqs"])
    for key in ("cpu", "memory", "shmSize"):
        assert dumped["resources"][key] == "auto" and resolved["resources"][key] != "auto"
        dumped["resources"][key] = resolved["resources"][key]
    grace = resolved["deployment"]["terminationGracePeriodSeconds"]
    assert dumped["deployment"]["terminationGracePeriodSeconds"] == "auto" and isinstance(grace, int)
    dumped["deployment"]["terminationGracePeriodSeconds"] = grace
    assert isinstance(resolved["runtime"]["maxNumSeqs"], int)
    assert resolved == dumped
    assert LLMService.model_validate(resolved).runtime.max_num_seqs == resolved["runtime"]["maxNumSeqs"]
    flat = leaves(resolved)
    merged = leaves(v.merged)
    assert merged
    for path, value in merged.items():  # every value of the merged spec is there, as merged
        assert path in flat, path
        assert flat[path] == value, path
    # each profile value says where it came from
    assert "gpuMemoryUtilization: 0.85  # from profile team" in result.stdout
    assert resolved["scaling"]["maxReplicas"] == 6
    assert resolved["scaling"]["minReplicas"] == 2
    assert resolved["monitoring"]["labels"] == {"release": "prometheus-search", "team": "search"}


def test_show_resolved_shows_what_aliases_and_auto_resolved_to(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """An alias is replaced by the catalog entry it names (with its memory), not echoed."""
    body = (BODY.replace("type: a100-80gb", "type: NVIDIA A100-SXM4-80GB")
            .replace("id: meta-llama/Llama-3.1-8B-Instruct", "id: llama-3.1-8b-instruct")
            .replace("image: vllm/vllm-openai:v0.11.0", "engineVersion: 0.19.0"))
    write_tree(tmp_path, {"spec.yaml": HEAD + body})
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["validate", "--show-resolved", "spec.yaml"], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    resolved = YAML(typ="safe").load(result.stdout)
    assert resolved["resources"]["gpu"]["type"] == "a100-80gb"
    assert resolved["model"]["id"] == "meta-llama/Llama-3.1-8B-Instruct"
    assert resolved["runtime"]["image"] == "vllm/vllm-openai:v0.19.0"
    assert resolved["runtime"]["engineVersion"] == "0.19.0"
    assert isinstance(resolved["runtime"]["maxNumSeqs"], int)
    lines = {line.split(":")[0].strip(): line for line in result.stdout.splitlines()}
    assert "'NVIDIA A100-SXM4-80GB' → NVIDIA A100-SXM4-80GB, 81920 MiB (80.00 GiB)" in lines["type"]
    assert "'llama-3.1-8b-instruct' → catalog model" in lines["id"]
    assert "# auto → " in lines["maxNumSeqs"]
    # the output is itself a valid spec that resolves to the same thing
    (tmp_path / "resolved.yaml").write_text(result.stdout)
    again = CliRunner().invoke(app, ["validate", "--show-resolved", "resolved.yaml"], catch_exceptions=False)
    assert again.exit_code == 0 and YAML(typ="safe").load(again.stdout) == resolved


def test_show_resolved_prints_nothing_for_an_invalid_spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_tree(tmp_path, {"spec.yaml": HEAD + BODY + "scaling: {maxReplicas: many}\n"})
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["validate", "--show-resolved", "spec.yaml"], catch_exceptions=False)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "spec.yaml:16:24: error LD104" in result.stderr
