"""``llmdeploy plan`` proposes multi-node layouts (#16) next to quantize-to-fit, cheapest first.

When no one-node layout of a GPU type holds the model, ``plan_options`` adds the fewest
whole nodes that do (tensor parallel over a node, one pipeline stage per node, a node
count that divides the layers) and says why.
"""

from __future__ import annotations

import json

from typer.testing import CliRunner

from llmdeploy.catalog import get_gpu, get_model
from llmdeploy.cli import app
from llmdeploy.engines import resolve_engine
from llmdeploy.sizing import plan_options

ENGINE = resolve_engine("vllm", None, "0.11.0")
L405 = get_model("meta-llama/Llama-3.1-405B-Instruct")


def test_multi_node_bf16_next_to_one_node_fp8_cheapest_first() -> None:
    opts = plan_options(L405, max_model_len=16384, engine=ENGINE, gpus=[get_gpu("h100-sxm")],
                        quantizations=("none", "fp8"))
    layouts = [(o.quantization.split(" ")[0], o.tensor_parallel, o.pipeline_parallel, o.nodes) for o in opts]
    assert layouts == [("fp8", 8, 1, 1), ("none", 8, 2, 2)]
    fp8, bf16 = opts
    assert fp8.cost_per_hour is not None and bf16.cost_per_hour is not None
    assert fp8.cost_per_hour < bf16.cost_per_hour  # quantize to fit is cheaper: listed first
    assert bf16.gpu_count == 16 and bf16.report.fits
    assert bf16.why and "cannot hold" in bf16.why and "63 layers per stage" in bf16.why
    assert fp8.why is None
    # Two nodes give the bf16 model more KV cache than the FP8 one on one node.
    assert bf16.kv_cache_tokens > fp8.kv_cache_tokens


def test_no_multi_node_option_when_a_node_holds_the_model() -> None:
    opts = plan_options(get_model("meta-llama/Llama-3.1-70B-Instruct"), max_model_len=8192, engine=ENGINE,
                        gpus=[get_gpu("h100-sxm")])
    assert opts and all(o.nodes == 1 and o.pipeline_parallel == 1 for o in opts)


def test_the_fewest_nodes_whose_count_divides_the_layers() -> None:
    """Qwen3-235B (94 layers) in bf16 on A100 40GB: 8 × 40 GB per node is too little; 2 nodes (47 + 47)."""
    [o] = plan_options(get_model("Qwen/Qwen3-235B-A22B"), max_model_len=8192, engine=ENGINE,
                       gpus=[get_gpu("a100-40gb")])
    assert (o.tensor_parallel, o.pipeline_parallel, o.nodes) == (8, 2, 2)
    assert o.why and "47 layers per stage" in o.why


def test_small_pcie_nodes_are_not_joined() -> None:
    """Nodes of PCIe GPUs (L40S) get no multi-node proposal: tensor parallel would have no NVLink."""
    assert plan_options(get_model("Qwen/Qwen3-235B-A22B"), max_model_len=8192, engine=ENGINE,
                        gpus=[get_gpu("l40s")]) == []


def test_cli_marks_and_explains_the_multi_node_option() -> None:
    args = ["plan", "-m", "meta-llama/Llama-3.1-405B-Instruct", "--gpu", "h100-sxm", "--quantization", "none,fp8",
            "--max-model-len", "16384", "--engine-version", "0.11.0"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.stderr
    assert "8×2pp" in r.stdout and "spans 2 nodes" in r.stdout and "docs/topologies.md" in r.stdout
    r = CliRunner().invoke(app, [*args, "-f", "json"])
    opts = json.loads(r.stdout)["options"]
    assert [(o["tensor_parallel"], o["pipeline_parallel"], o["nodes"]) for o in opts] == [(8, 1, 1), (8, 2, 2)]
    assert opts[1]["why"].startswith("one h100-sxm node (8 GPUs) cannot hold")
