"""Multi-node topology (#16): the layout of a replica over its nodes and the LD8xx rules.

Each impossible topology the issue names is refused at its spec line with a hint: tensor
parallel that crosses nodes without saying so (LD803), pipeline stages that do not
divide the layers (LD804), GPUs that do not split over the nodes or do not fit a node
(LD802), a multi-node replica on a target that cannot render it (LD801).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import EXAMPLES

from llmdeploy.catalog import get_gpu, get_model
from llmdeploy.pipeline import analyze, load_specs
from llmdeploy.sizing.topology import cross_node_bytes_per_token, node_layout, partition_problem

EXAMPLE = EXAMPLES / "llama-3.1-405b-h100-2x8-lws.llmdeploy.yaml"
BASE = EXAMPLE.read_text(encoding="utf-8")


def _diags(tmp_path: Path, text: str) -> list:  # type: ignore[type-arg]
    p = tmp_path / "s.llmdeploy.yaml"
    p.write_text(text, encoding="utf-8")
    docs, problems = load_specs([str(p)])
    assert not problems
    return analyze(docs[0]).diagnostics


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def _only(diags: list, rule: str) -> list:  # type: ignore[type-arg]
    return [d for d in diags if d.rule == rule]


def test_the_example_is_clean(tmp_path: Path) -> None:
    diags = _diags(tmp_path, BASE)
    assert [d for d in diags if d.is_error] == []
    assert not [d for d in diags if d.rule.startswith("LD8")]


def test_the_example_would_exceed_one_node_without_nodes(tmp_path: Path) -> None:
    """Without resources.nodes the same replica is the one-node LD204 error: the sizing knows nodes."""
    text = BASE.replace("  nodes: 2\n", "").replace("  interconnect:\n    fabric: infiniband\n    rdmaResources:\n"
                                                    "      rdma/ib: 1\n", "")
    assert _only(_diags(tmp_path, text), "LD204")
    assert not _only(_diags(tmp_path, BASE), "LD204")


def test_tensor_parallel_across_nodes_is_refused_at_its_line(tmp_path: Path) -> None:
    text = BASE.replace("    tensor: 8\n    pipeline: 2\n", "    tensor: 16\n")
    [d] = _only(_diags(tmp_path, text), "LD803")
    assert d.is_error
    assert d.line == _line_of(text, "tensor: 16")
    assert "tensor: 8, pipeline: 2" in (d.hint or "")
    assert "tensorAcrossNodes" in (d.hint or "")


def test_tensor_parallel_across_nodes_with_opt_in_is_a_bandwidth_warning(tmp_path: Path) -> None:
    text = BASE.replace("    tensor: 8\n    pipeline: 2\n", "    tensor: 16\n    tensorAcrossNodes: true\n")
    [d] = _only(_diags(tmp_path, text), "LD803")
    assert not d.is_error
    assert d.line == _line_of(text, "tensorAcrossNodes")
    assert "MiB per token" in d.message and "infiniband" in d.message


def test_pipeline_that_does_not_divide_the_layers_is_refused(tmp_path: Path) -> None:
    # 405B has 126 layers: 4 stages would get 31 or 32.
    text = BASE.replace("    pipeline: 2\n", "    pipeline: 4\n").replace("  nodes: 2\n", "  nodes: 4\n")
    [d] = _only(_diags(tmp_path, text), "LD804")
    assert d.is_error and d.line == _line_of(text, "pipeline: 4")
    assert "126" in d.message and "VLLM_PP_LAYER_PARTITION" in (d.hint or "")


def test_an_explicit_layer_partition_is_accepted_and_checked(tmp_path: Path) -> None:
    text = BASE.replace("    pipeline: 2\n", "    pipeline: 4\n").replace("  nodes: 2\n", "  nodes: 4\n")
    good = text.replace("  gpuMemoryUtilization: 0.92\n",
                        "  gpuMemoryUtilization: 0.92\n  env:\n    - {name: VLLM_PP_LAYER_PARTITION, value: \"32,32,32,30\"}\n")
    assert not _only(_diags(tmp_path, good), "LD804")
    bad = good.replace("32,32,32,30", "32,32,32,32")
    [d] = _only(_diags(tmp_path, bad), "LD804")
    assert d.line == _line_of(bad, "VLLM_PP_LAYER_PARTITION") and "adds up to 128" in d.message


def test_gpus_that_do_not_fit_a_node(tmp_path: Path) -> None:
    text = BASE.replace("    pipeline: 2\n", "    pipeline: 3\n")  # 24 GPUs on 2 nodes of 8
    diags = _diags(tmp_path, text)
    [d] = _only(diags, "LD802")
    assert d.is_error and d.line == _line_of(text, "nodes: 2") and "nodes: 3" in (d.hint or "")
    assert not _only(diags, "LD803")  # the pod is larger than a node: one error, not two


def test_per_node_override_is_read(tmp_path: Path) -> None:
    """resources.gpu.perNode (#14) is the node size the layout uses."""
    text = BASE.replace("    pipeline: 2\n", "    pipeline: 3\n").replace("    type: h100-sxm\n",
                                                                           "    type: h100-sxm\n    perNode: 12\n")
    assert not _only(_diags(tmp_path, text), "LD802")


def test_gpus_that_do_not_split_over_the_nodes(tmp_path: Path) -> None:
    text = BASE.replace("  nodes: 2\n", "  nodes: 3\n")  # 16 GPUs on 3 nodes
    [d] = _only(_diags(tmp_path, text), "LD802")
    assert d.is_error and "do not split evenly" in d.message


def test_multi_node_needs_a_target_that_renders_it(tmp_path: Path) -> None:
    text = BASE.replace("  target: leaderWorkerSet\n", "  target: llmInferenceService\n")
    [d] = _only(_diags(tmp_path, text), "LD801")
    assert d.is_error and d.line == _line_of(text, "nodes: 2")
    # The classic InferenceService renders a workerSpec now (LD809/LD810 say what KServe refuses).
    text = BASE.replace("  target: leaderWorkerSet\n", "  target: inferenceService\n")
    assert not _only(_diags(tmp_path, text), "LD801")


def test_rdma_fabric_needs_its_devices(tmp_path: Path) -> None:
    text = BASE.replace("    rdmaResources:\n      rdma/ib: 1\n", "")
    [d] = _only(_diags(tmp_path, text), "LD806")
    assert d.is_error and d.line == _line_of(text, "fabric: infiniband")


def test_nccl_ib_disable_contradicts_the_fabric(tmp_path: Path) -> None:
    text = BASE.replace("  gpuMemoryUtilization: 0.92\n",
                        "  gpuMemoryUtilization: 0.92\n  env:\n    - {name: NCCL_IB_DISABLE, value: \"1\"}\n")
    [d] = _only(_diags(tmp_path, text), "LD805")
    assert d.is_error and d.line == _line_of(text, "NCCL_IB_DISABLE")


def test_small_shm_is_a_warning(tmp_path: Path) -> None:
    text = BASE.replace("  nodes: 2\n", "  nodes: 2\n  shmSize: 256Mi\n")
    [d] = _only(_diags(tmp_path, text), "LD805")
    assert not d.is_error and d.line == _line_of(text, "shmSize")


def test_target_limits(tmp_path: Path) -> None:
    text = BASE.replace("hf://meta-llama", "s3://models/meta-llama").replace("autoscaler: keda", "autoscaler: hpa")
    found = {(d.line, d.rule) for d in _only(_diags(tmp_path, text), "LD807")}
    assert found == {(_line_of(text, "storageUri"), "LD807"), (_line_of(text, "autoscaler: hpa"), "LD807")}


# ---------------------------------------------------------------- the layout itself


@pytest.mark.parametrize(("tp", "pp", "nodes", "crosses", "stages"), [
    (8, 2, 2, False, ((0,), (1,))),
    (4, 4, 2, False, ((0, 1), (2, 3))),
    (16, 1, 2, True, ()),
    (8, 3, 2, True, ()),  # 12 per pod: a tensor group of 8 straddles two nodes
])
def test_node_layout(tp: int, pp: int, nodes: int, crosses: bool, stages: tuple) -> None:  # type: ignore[type-arg]
    from llmdeploy.spec.models import LLMService

    data = {"apiVersion": "llmdeploy.dev/v1alpha1", "kind": "LLMService", "metadata": {"name": "x"},
            "model": {"id": "meta-llama/Llama-3.1-405B-Instruct", "storageUri": "hf://m/x"},
            "resources": {"gpu": {"type": "h100-sxm"}, "parallelism": {"tensor": tp, "pipeline": pp},
                          "nodes": nodes}}
    lay = node_layout(LLMService.model_validate(data), get_model("meta-llama/Llama-3.1-405B-Instruct"),
                      get_gpu("h100-sxm"))
    assert lay.tensor_crosses_nodes is crosses
    assert lay.stages_per_node == stages
    assert sum(lay.layers) == 126


def test_cross_node_traffic_pipeline_vs_tensor() -> None:
    """First-order bytes per token over the node boundary: PP sends one hidden state, TP two per layer."""
    from llmdeploy.spec.models import LLMService

    model = get_model("meta-llama/Llama-3.1-405B-Instruct")
    base = {"apiVersion": "llmdeploy.dev/v1alpha1", "kind": "LLMService", "metadata": {"name": "x"},
            "model": {"id": "x", "storageUri": "hf://m/x"}}
    pp = LLMService.model_validate({**base, "resources": {"gpu": {"type": "h100-sxm"}, "nodes": 2,
                                                          "parallelism": {"tensor": 8, "pipeline": 2}}})
    tp = LLMService.model_validate({**base, "resources": {"gpu": {"type": "h100-sxm"}, "nodes": 2,
                                                          "parallelism": {"tensor": 16}}})
    gpu = get_gpu("h100-sxm")
    pp_bytes = cross_node_bytes_per_token(model, node_layout(pp, model, gpu), 8)
    tp_bytes = cross_node_bytes_per_token(model, node_layout(tp, model, gpu), 16)
    assert pp_bytes == 2 * 16384 * 2  # hidden 16384, bf16, one boundary
    assert tp_bytes > 100 * pp_bytes


@pytest.mark.parametrize(("text", "problem"), [
    ("63,63", None), ("63,62", "adds up to 125"), ("126", "1 entries"), ("a,b", "not a comma"), ("126,0", "without"),
])
def test_partition_problem(text: str, problem: str | None) -> None:
    got = partition_problem(text, 126, 2)
    assert (got is None) if problem is None else (problem in (got or ""))


@pytest.mark.parametrize("flags", [(), ("--concurrency", "16"), ("--engine-version", "0.10.2")])
def test_size_command_knows_the_replica_spans_nodes(flags: tuple[str, ...]) -> None:
    """`llmdeploy size` on the multi-node example: no one-node LD204 on any of its code paths."""
    import json

    from typer.testing import CliRunner

    from llmdeploy.cli import app

    r = CliRunner().invoke(app, ["size", str(EXAMPLE), "--format", "json", *flags], catch_exceptions=False)
    assert r.exit_code == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["fits"] and not report["reasons"]
