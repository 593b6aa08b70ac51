"""The per-engine tables (src/llmdeploy/engines/*.yaml) and their API."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmdeploy.engines import (
    EngineVersionInfo,
    MetricUnavailableError,
    UnknownEngineError,
    Version,
    check_args,
    check_flag,
    iter_flag_names,
    known_engines,
    parse_args,
    parse_image_version,
    releases,
    resolve_engine,
    split_arg,
)


def vllm(version: str) -> EngineVersionInfo:
    return resolve_engine("vllm", None, version)


def tgi(version: str) -> EngineVersionInfo:
    return resolve_engine("tgi", None, version)


# --------------------------------------------------------------------------- Version


@pytest.mark.parametrize(
    ("lower", "higher"),
    [
        ("0.9.2", "0.10.1.1"),
        ("0.10.1", "0.10.1.1"),
        ("0.6.3", "0.6.3.post1"),
        ("0.6.3.post1", "0.6.4"),
        ("0.11.0rc1", "0.11.0"),
        ("0.11.0rc1", "0.11.0rc2"),
        ("0.11.0a1", "0.11.0b1"),
        ("0.10.1rc2.dev310", "0.10.1rc2"),
        ("1.0.dev1", "1.0a1"),
        ("0.8.5", "0.8.5.post1"),
        ("0.29.0", "0.30.0"),
        ("2.4.1", "3.0.0"),
    ],
)
def test_version_ordering(lower: str, higher: str) -> None:
    assert Version.parse(lower) < Version.parse(higher)
    assert Version.parse(higher) > Version.parse(lower)
    assert Version.parse(lower) != Version.parse(higher)


@pytest.mark.parametrize(
    ("text", "normal"),
    [
        ("0.6.3", "0.6.3"),
        ("v0.10.1.1", "0.10.1.1"),
        ("0.6.3.post1", "0.6.3.post1"),
        ("0.6.3-post1", "0.6.3.post1"),
        ("0.11.0rc1", "0.11.0rc1"),
        ("0.11.0-rc.1", "0.11.0rc1"),
        ("0.10.1rc2.dev310+g4f35be10a", "0.10.1rc2.dev310+g4f35be10a"),
    ],
)
def test_version_parse_normalizes(text: str, normal: str) -> None:
    assert str(Version.parse(text)) == normal


def test_version_trailing_zeros_and_local_label_do_not_matter() -> None:
    assert Version.parse("0.9") == Version.parse("0.9.0")
    assert hash(Version.parse("0.9")) == hash(Version.parse("0.9.0"))
    assert Version.parse("0.10.1+g123") == Version.parse("0.10.1")


@pytest.mark.parametrize("bad", ["latest", "", "v", "nightly-2026", "0.6.x", "sha-abc123"])
def test_version_rejects_non_versions(bad: str) -> None:
    with pytest.raises(ValueError):
        Version.parse(bad)


_release = st.lists(st.integers(0, 30), min_size=1, max_size=4)
_versions = st.builds(
    lambda r, pre, post, dev: ".".join(map(str, r)) + (pre or "") + (post or "") + (dev or ""),
    _release,
    st.none() | st.sampled_from(["rc1", "rc2", "a1", "b3"]),
    st.none() | st.sampled_from([".post1", ".post2"]),
    st.none() | st.sampled_from([".dev0", ".dev7"]),
)


@given(_versions, _versions, _versions)
def test_version_order_is_a_total_order(a: str, b: str, c: str) -> None:
    va, vb, vc = Version.parse(a), Version.parse(b), Version.parse(c)
    assert (va < vb) + (va == vb) + (va > vb) == 1
    if va <= vb and vb <= vc:
        assert va <= vc
    assert Version.parse(str(va)) == va


# --------------------------------------------------------------------------- image tags


@pytest.mark.parametrize(
    ("image", "version"),
    [
        ("vllm/vllm-openai:v0.6.3", "0.6.3"),
        ("vllm/vllm-openai:v0.10.1.1", "0.10.1.1"),
        ("vllm/vllm-openai:0.6.3.post1", "0.6.3.post1"),
        ("docker.io/vllm/vllm-openai:v0.9.2", "0.9.2"),
        ("registry.local:5000/mirror/vllm-openai:v0.8.5", "0.8.5"),
        ("vllm/vllm-openai:v0.9.2@sha256:" + "a" * 64, "0.9.2"),
        ("ghcr.io/huggingface/text-generation-inference:3.3.4", "3.3.4"),
        ("ghcr.io/huggingface/text-generation-inference:2.4.1-rocm", "2.4.1"),
        ("vllm/vllm-openai@sha256:" + "a" * 64, None),
        ("vllm/vllm-openai:latest", None),
        ("vllm/vllm-openai:nightly", None),
        ("vllm/vllm-openai", None),
        ("registry.local:5000/vllm-openai", None),
        ("ghcr.io/huggingface/text-generation-inference:sha-abc1234", None),
        ("ghcr.io/huggingface/text-generation-inference:latest-intel", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_image_version(image: str | None, version: str | None) -> None:
    assert parse_image_version(image) == version


# --------------------------------------------------------------------------- resolve_engine


def test_pinned_known_release_is_not_assumed() -> None:
    info = resolve_engine("vllm", "vllm/vllm-openai:v0.8.5", None)
    assert (info.engine, info.version, info.assumed, info.assumed_reason) == ("vllm", "0.8.5", False, None)
    assert info.image_repository == "vllm/vllm-openai"
    assert info.default_image == "vllm/vllm-openai:v0.8.5"


@pytest.mark.parametrize("image", [None, "vllm/vllm-openai:latest", "vllm/vllm-openai@sha256:" + "b" * 64])
def test_unpinned_image_assumes_the_newest_release(image: str | None) -> None:
    info = resolve_engine("vllm", image, None)
    assert info.assumed
    assert info.version == releases("vllm")[-1]
    assert info.requested_version is None
    assert info.assumed_reason and info.version in info.assumed_reason


def test_unknown_version_uses_the_nearest_lower_release() -> None:
    info = resolve_engine("vllm", "vllm/vllm-openai:v0.18.1", None)
    assert (info.version, info.requested_version, info.assumed) == ("0.18.0", "0.18.1", True)
    assert "0.18.0" in (info.assumed_reason or "")


def test_version_newer_than_the_table_uses_the_newest() -> None:
    info = resolve_engine("vllm", "vllm/vllm-openai:v9.0.0", None)
    assert info.assumed and info.version == releases("vllm")[-1]
    assert "newer" in (info.assumed_reason or "")


def test_version_older_than_the_table_uses_the_oldest() -> None:
    info = resolve_engine("vllm", "vllm/vllm-openai:v0.5.4", None)
    assert info.assumed and info.version == releases("vllm")[0] == "0.6.0"
    assert "older" in (info.assumed_reason or "")


def test_engine_version_wins_over_the_image_tag() -> None:
    info = resolve_engine("vllm", "myregistry/vllm:custom-build", "0.11.0")
    assert (info.version, info.assumed) == ("0.11.0", False)


def test_unparseable_engine_version_is_assumed() -> None:
    info = resolve_engine("vllm", None, "banana")
    assert info.assumed and "banana" in (info.assumed_reason or "")


def test_unknown_engine_is_a_spec_error() -> None:
    with pytest.raises(UnknownEngineError) as exc:
        resolve_engine("made-up-engine", None, None)
    assert "vllm" in (exc.value.hint or "")


def test_engine_name_is_case_insensitive() -> None:
    assert resolve_engine("vLLM", None, "0.9.2").engine == "vllm"


# --------------------------------------------------------------------------- metrics


def test_old_and_new_metric_names_differ_as_upstream_says() -> None:
    old, mid, new = vllm("0.6.3"), vllm("0.8.5"), vllm("0.30.0")
    assert old.metric("kv_cache_usage") == mid.metric("kv_cache_usage") == "vllm:gpu_cache_usage_perc"
    assert new.metric("kv_cache_usage") == "vllm:kv_cache_usage_perc"
    assert old.metric("inter_token_latency") == mid.metric("inter_token_latency") == "vllm:time_per_output_token_seconds"
    assert new.metric("inter_token_latency") == "vllm:inter_token_latency_seconds"
    assert mid.metric("prefix_cache_queries") == "vllm:gpu_prefix_cache_queries_total"
    assert new.metric("prefix_cache_queries") == "vllm:prefix_cache_queries_total"
    assert new.metric("prefix_cache_hits") == "vllm:prefix_cache_hits_total"


@pytest.mark.parametrize(
    ("version", "kv", "itl"),
    [
        ("0.9.1", "vllm:gpu_cache_usage_perc", "vllm:time_per_output_token_seconds"),
        # 0.9.2 exports both KV names; the new one is chosen as soon as it exists.
        ("0.9.2", "vllm:kv_cache_usage_perc", "vllm:time_per_output_token_seconds"),
        ("0.10.1.1", "vllm:kv_cache_usage_perc", "vllm:time_per_output_token_seconds"),
        ("0.10.2", "vllm:kv_cache_usage_perc", "vllm:inter_token_latency_seconds"),
        ("0.12.0", "vllm:kv_cache_usage_perc", "vllm:inter_token_latency_seconds"),
    ],
)
def test_rename_boundaries(version: str, kv: str, itl: str) -> None:
    info = vllm(version)
    assert info.metric("kv_cache_usage") == kv
    assert info.metric("inter_token_latency") == itl


def test_stable_vllm_metric_names() -> None:
    for version in ("0.6.4", "0.8.0", "0.30.0"):
        info = vllm(version)
        assert info.metric("num_requests_waiting") == "vllm:num_requests_waiting"
        assert info.metric("num_requests_running") == "vllm:num_requests_running"
        assert info.metric("time_to_first_token") == "vllm:time_to_first_token_seconds"
        assert info.metric("e2e_request_latency") == "vllm:e2e_request_latency_seconds"
        assert info.metric("request_queue_time") == "vllm:request_queue_time_seconds"
        assert info.metric("prompt_tokens") == "vllm:prompt_tokens_total"
        assert info.metric("generation_tokens") == "vllm:generation_tokens_total"
        assert info.metric("request_success") == "vllm:request_success_total"
        assert info.metric("num_preemptions") == "vllm:num_preemptions_total"
    assert vllm("0.30.0").metric_info("request_success").labels == ("finished_reason",)


def test_metric_missing_in_a_version_raises() -> None:
    old = vllm("0.6.3")
    assert not old.has_metric("prefix_cache_queries")
    with pytest.raises(MetricUnavailableError):
        old.metric("prefix_cache_queries")
    with pytest.raises(MetricUnavailableError):
        old.metric("request_queue_time")  # vllm#4464 landed in 0.6.4
    with pytest.raises(KeyError):
        old.metric("queue_depth")


def test_metric_labels_follow_the_engine_generation() -> None:
    assert vllm("0.7.3").metric_labels == ("model_name",)
    assert vllm("0.8.0").metric_labels == ("model_name", "engine")
    assert vllm("0.30.0").metrics_path == "/metrics"


# --------------------------------------------------------------------------- flags


def test_removed_flags_are_errors_naming_the_release() -> None:
    p = check_flag(vllm("0.20.0"), "--swap-space")
    assert p is not None and p.severity == "error" and p.kind == "removed"
    assert "--swap-space was removed in vLLM 0.18.0" in p.message
    assert p.hint and p.hint.startswith("drop it")

    p = check_flag(vllm("0.9.0"), "--speculative-model=some/draft")
    assert p is not None and p.severity == "error" and "0.8.3" in p.message
    assert p.hint and "--speculative-config" in p.hint

    p = check_flag(vllm("0.12.0"), "--use-v2-block-manager")
    assert p is not None and p.severity == "error" and p.kind == "removed"
    assert "0.11.0" in p.message


def test_removed_flag_is_fine_before_its_removal() -> None:
    assert check_flag(vllm("0.6.3"), "--swap-space") is None
    assert check_flag(vllm("0.6.3"), "--use-v2-block-manager") is None
    assert check_flag(vllm("0.8.2"), "--speculative-model") is not None  # deprecated in 0.8.0
    assert check_flag(vllm("0.7.3"), "--speculative-model") is None


def test_swap_space_is_a_no_op_warning_before_removal() -> None:
    p = check_flag(vllm("0.17.1"), "--swap-space=4")
    assert p is not None and p.severity == "warning" and p.kind == "no_op"


def test_never_existed_flag_is_an_error() -> None:
    for version in ("0.6.0", "0.30.0"):
        p = check_flag(vllm(version), "--enable-flash-attention")
        assert p is not None and p.severity == "error" and p.kind == "never_existed"
        assert "never existed" in p.message
        assert p.hint and "VLLM_ATTENTION_BACKEND" in p.hint


def test_flag_not_yet_added_is_an_error() -> None:
    p = check_flag(vllm("0.17.1"), "--shutdown-timeout=30")
    assert p is not None and p.severity == "error" and p.kind == "not_yet_added"
    assert "0.18.0" in p.message and "0.17.1" in p.message
    assert check_flag(vllm("0.18.0"), "--shutdown-timeout=30") is None


def test_deprecated_flag_is_a_warning() -> None:
    p = check_flag(vllm("0.11.0"), "--disable-log-requests")
    assert p is not None and p.severity == "warning" and p.kind == "deprecated"
    assert "--enable-log-requests" in p.message
    p = check_flag(vllm("0.6.5"), "--use-v2-block-manager")
    assert p is not None and p.severity == "warning"
    p = check_flag(tgi("3.3.5"), "--max-input-length=4095")
    assert p is not None and p.severity == "warning" and "--max-input-tokens" in (p.hint or "")


def test_removal_bracketed_between_releases_is_a_warning() -> None:
    p = check_flag(vllm("0.10.1"), "--use-v2-block-manager")
    assert p is not None and p.severity == "warning" and p.kind == "maybe_removed"


def test_unknown_flag_gets_a_did_you_mean() -> None:
    p = check_flag(vllm("0.30.0"), "--max-num-seq=64")
    assert p is not None and p.severity == "error" and p.kind == "unknown"
    assert p.hint == "did you mean --max-num-seqs?"
    p = check_flag(vllm("0.30.0"), "--gpu-mem-utilization")
    assert p is not None and "--gpu-memory-utilization" in (p.hint or "")
    p = check_flag(vllm("0.30.0"), "--completely-made-up")
    assert p is not None and p.kind == "unknown" and "vllm serve --help" in (p.hint or "")


def test_vllm_reads_underscores_tgi_does_not() -> None:
    assert check_flag(vllm("0.30.0"), "--max_num_seqs=8") is None
    p = check_flag(tgi("3.3.5"), "--max_input_tokens=4000")
    assert p is not None and p.kind == "unknown" and "--max-input-tokens" in (p.hint or "")


def test_aliases_negations_and_dotted_json_keys() -> None:
    info = vllm("0.30.0")
    for flag in ("-tp", "-tp=2", "-pp", "-dp", "-q", "-O3", "-O", "--compilation-config.cudagraph_mode=FULL"):
        assert check_flag(info, flag) is None, flag
    assert info.flag("-tp") is not None and info.flag("-tp").name == "--tensor-parallel-size"  # type: ignore[union-attr]
    assert check_flag(info, "--no-enable-prefix-caching") is None
    assert check_flag(info, "--no-enable-chunked-prefill") is None
    assert check_flag(info, "--no-async-scheduling") is None
    neg = info.flag("--no-enforce-eager")
    assert neg is not None and neg.negated
    p = check_flag(vllm("0.6.3"), "--no-enable-prefix-caching")
    assert p is not None and p.kind == "not_yet_added"
    assert check_flag(info, "--no-max-num-seqs") is not None  # only booleans negate


def test_values_and_malformed_items() -> None:
    info = vllm("0.30.0")
    assert check_flag(info, "8") is None
    assert check_flag(info, "-1") is None
    assert check_flag(info, "") is None
    p = check_flag(info, "--max-num-seqs 8")
    assert p is not None and p.kind == "malformed" and "--max-num-seqs=8" in (p.hint or "")


def test_flag_available_and_known_flags() -> None:
    assert vllm("0.30.0").flag_available("--shutdown-timeout")
    assert not vllm("0.17.0").flag_available("--shutdown-timeout")
    assert not vllm("0.30.0").flag_available("--swap-space")
    assert not vllm("0.30.0").flag_available("--enable-flash-attention")
    assert tgi("3.3.5").flag_available("--max-input-tokens")
    known = vllm("0.30.0").known_flags()
    assert "--swap-space" not in known and "--max-num-seqs" in known and "-tp" in known


@pytest.mark.parametrize("engine", ["vllm", "tgi"])
def test_every_flag_of_every_table_builds(engine: str) -> None:
    # Flags are built when first looked up; this keeps the whole shipped table checked.
    from llmdeploy.engines.table import _table

    table = _table(engine)
    built = {name: table.flags[name] for name in table.flags}
    assert len(built) == len(table.flags) > 10
    assert all(fi.name == name for name, fi in built.items())
    assert set(table.aliases.values()) <= set(built)
    assert all(alias in built[name].aliases for alias, name in table.aliases.items())


def test_a_malformed_flag_is_an_internal_error() -> None:
    from llmdeploy.engines.table import EngineTableError, _Flags

    flags = _Flags({"--ok": {"takes_value": True}, "bad": {"takes_value": True}, "--odd": {"takes_value": "yes"}})
    assert flags["--ok"].takes_value is True
    with pytest.raises(EngineTableError, match="flag bad is malformed"):
        flags["bad"]
    with pytest.raises(EngineTableError, match="--odd"):
        flags["--odd"]
    assert flags.get("--missing") is None


@pytest.mark.parametrize(
    ("arg", "expected"),
    [
        ("--max-num-seqs=8", ("--max-num-seqs", "8")),
        ("--max-num-seqs", ("--max-num-seqs", None)),
        ("--override-generation-config={\"temperature\": 0.5}", ("--override-generation-config", "{\"temperature\": 0.5}")),
        ("--x=a=b", ("--x", "a=b")),
        ("--x=", ("--x", "")),
        ("-tp=2", ("-tp", "2")),
        ("-tp", ("-tp", None)),
        ("-O3", ("-O", "3")),
        ("-O", ("-O", None)),
        ("8", ("", "8")),
        ("-1", ("", "-1")),
        ("-0.5", ("", "-0.5")),
    ],
)
def test_split_arg(arg: str, expected: tuple[str, str | None]) -> None:
    assert split_arg(arg) == expected


def test_parse_args_pairs_values_by_the_table() -> None:
    info = vllm("0.30.0")
    args = ["--max-num-seqs", "64", "--enforce-eager", "--seed", "-1", "--swap-space=4", "--made-up", "x", "stray"]
    parsed = [(p.flag, p.value, p.index, p.value_index) for p in parse_args(info, args)]
    assert parsed == [
        ("--max-num-seqs", "64", 0, 1),
        ("--enforce-eager", None, 2, None),
        ("--seed", "-1", 3, 4),
        ("--swap-space", "4", 5, None),
        ("--made-up", "x", 6, 7),
        ("", "stray", 8, None),
    ]
    kinds = [(pa.flag, pr.kind) for pa, pr in check_args(info, args)]
    assert kinds == [("--swap-space", "removed"), ("--made-up", "unknown")]
    assert [pr.kind for _, pr in check_args(info, ["--max-model-len"])] == ["malformed"]


# --------------------------------------------------------------------------- defaults and memory


def test_defaults_by_version() -> None:
    old, v1, new = vllm("0.6.3"), vllm("0.8.0"), vllm("0.30.0")
    assert (old.defaults.engine_generation, new.defaults.engine_generation) == ("V0", "V1")
    assert not old.defaults.enable_prefix_caching and v1.defaults.enable_prefix_caching
    assert v1.defaults.enable_chunked_prefill
    assert old.defaults.gpu_memory_utilization == pytest.approx(0.90)
    assert vllm("0.20.2").defaults.gpu_memory_utilization == pytest.approx(0.90)
    assert new.defaults.gpu_memory_utilization == pytest.approx(0.92)
    assert new.defaults.block_size == 16
    assert not vllm("0.17.1").defaults.shutdown_timeout_supported and vllm("0.18.0").defaults.shutdown_timeout_supported
    assert vllm("0.10.2").defaults.v0_fallback_possible and not vllm("0.11.0").defaults.v0_fallback_possible


def test_batch_defaults_follow_the_gpu_tier() -> None:
    info = vllm("0.11.0")
    h100 = info.batch_defaults(80, "NVIDIA H100 80GB HBM3")
    a100 = info.batch_defaults(80, "NVIDIA A100-SXM4-80GB")
    l4 = info.batch_defaults(24, "NVIDIA L4")
    assert h100 is not None and (h100.max_num_batched_tokens, h100.max_num_seqs) == (8192, 1024)
    assert a100 is not None and (a100.max_num_batched_tokens, a100.max_num_seqs) == (2048, 256)
    assert l4 is not None and (l4.max_num_batched_tokens, l4.max_num_seqs) == (2048, 256)
    llm = info.batch_defaults(80, "H100", usage="llm_class")
    assert llm is not None and llm.max_num_batched_tokens == 16384
    off = info.batch_defaults(80, "H100", chunked_prefill=False, max_model_len=32768)
    assert off is not None and off.max_num_batched_tokens == 32768
    b200 = vllm("0.28.0").batch_defaults(180, "NVIDIA B200")
    assert b200 is not None and b200.max_num_batched_tokens == 16384
    assert tgi("3.3.5").batch_defaults(80, "H100") is None


def test_memory_profile_counts_cuda_graphs_from_0_21() -> None:
    before, after = vllm("0.20.2").memory_profile, vllm("0.21.0").memory_profile
    assert before is not None and after is not None
    assert not before.cudagraph_memory_in_kv_budget and after.cudagraph_memory_in_kv_budget
    assert after.code_url and "gpu_worker.py" in after.code_url
    v0 = vllm("0.6.3").memory_profile
    assert v0 is not None and v0.function == "Worker.determine_num_available_blocks"


def test_images() -> None:
    info = vllm("0.30.0")
    assert info.health_path == "/health" and info.image_port == 8000
    assert info.recommended_command == ("python3", "-m", "vllm.entrypoints.openai.api_server")
    assert not info.runs_as_non_root
    t = tgi("3.3.4")
    assert t.default_image == "ghcr.io/huggingface/text-generation-inference:3.3.4"
    assert (t.image_port, t.health_path, t.metrics_path) == (80, "/health", "/metrics")


# --------------------------------------------------------------------------- TGI and features


def test_tgi_table_loads_with_its_own_metrics() -> None:
    info = resolve_engine("tgi", "ghcr.io/huggingface/text-generation-inference:3.3.4", None)
    assert (info.version, info.assumed, info.display_name) == ("3.3.4", False, "TGI")
    assert info.metric("num_requests_waiting") == "tgi_queue_size"
    assert info.metric("num_requests_running") == "tgi_batch_current_size"
    assert info.metric("e2e_request_latency") == "tgi_request_duration"
    assert info.metric("request_queue_time") == "tgi_request_queue_duration"
    assert info.metric("batch_inference_duration") == "tgi_batch_inference_duration"
    assert info.metric("request_generation_tokens") == "tgi_request_generated_tokens"
    assert info.metric("request_prompt_tokens") == "tgi_request_input_length"
    assert not info.has_metric("kv_cache_usage") and not info.has_metric("time_to_first_token")


def test_tgi_features_differ_from_vllm() -> None:
    v, t = vllm("0.30.0"), tgi("3.3.5")
    for feature in ("pipeline_parallel", "data_parallel", "expert_parallel", "max_num_seqs",
                    "ttft_histogram", "kv_cache_usage_metric"):
        assert v.supports(feature) and not t.supports(feature), feature
    assert t.supports("prefix_caching") and not tgi("2.4.1").supports("prefix_caching")
    assert t.supports("kv_cache_dtype_fp8") and not tgi("2.0.0").supports("kv_cache_dtype_fp8")
    assert v.features != t.features
    with pytest.raises(ValueError):
        v.supports("warp_drive")


def test_quantization_support() -> None:
    assert vllm("0.27.1").supports_quantization("bitsandbytes")
    assert not vllm("0.28.0").supports_quantization("bitsandbytes")
    assert vllm("0.30.0").quantization_flag_value("int8") is None
    assert tgi("3.3.5").quantization_flag_value("int8") == "eetq"
    assert not tgi("2.4.1").supports_quantization("compressed-tensors")
    assert "awq" in tgi("3.3.5").quantization_methods()


def test_tgi_rejects_vllm_spellings() -> None:
    for flag, replacement in (("--max-model-len", "--max-total-tokens"), ("--tensor-parallel-size", "--num-shard"),
                              ("--gpu-memory-utilization", "--cuda-memory-fraction")):
        p = check_flag(tgi("3.3.5"), flag)
        assert p is not None and p.kind == "never_existed" and replacement in (p.hint or "")


# --------------------------------------------------------------------------- table integrity


@pytest.mark.parametrize("engine", known_engines())
def test_table_is_consistent(engine: str) -> None:
    rel = releases(engine)
    versions = [Version.parse(r) for r in rel]
    assert versions == sorted(versions) and len(set(versions)) == len(versions)
    newest = resolve_engine(engine, None, None)
    for name in iter_flag_names(newest):
        fi = newest.flag(name)
        assert fi is not None and fi.name == name
        if fi.added and fi.removed:
            assert Version.parse(fi.added) < Version.parse(fi.removed), name
        if fi.deprecated and fi.removed:
            assert Version.parse(fi.deprecated) <= Version.parse(fi.removed), name
        if fi.present_in or fi.absent_by:
            assert fi.present_in and fi.absent_by, name
            assert Version.parse(fi.present_in) < Version.parse(fi.absent_by), name
        if fi.never_existed:
            assert fi.hint or fi.replacement, name
    # Every logical metric resolves for every release, with contiguous ranges.
    for logical in newest.logical_metrics:
        spec = newest._table.metrics[logical]
        ranges = spec.names
        assert ranges[0].start is None and ranges[-1].until is None, logical
        for a, b in zip(ranges, ranges[1:]):
            assert a.until is not None and a.until == b.start, logical
    for r in rel:
        info = resolve_engine(engine, None, r)
        assert not info.assumed
        for logical in info.logical_metrics:
            info.metric_info(logical)
        assert info.memory_profile is not None


def test_import_does_not_parse_tables() -> None:
    code = "import llmdeploy.engines, llmdeploy.engines.table as e; print(e._load_table.cache_info().currsize)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "0"
