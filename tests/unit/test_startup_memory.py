"""LD213: the free memory vLLM V1 sees when a worker starts (StartupModel, engines/vllm.yaml).

The v0.19.0 sweep logs the free memory of every worker's init snapshot ("Free memory on
device (X/79.19 GiB) on startup"); the prediction is the device total minus the CUDA context
and, from 0.11.0, the NCCL communicators created before the snapshot.
"""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import pytest

from llmdeploy.catalog import get_gpu, get_model
from llmdeploy.engines import resolve_engine
from llmdeploy.sizing import CUDA_CONTEXT_GIB, SizingInput, _core, size
from llmdeploy.sizing.memory import GIB, held_before_snapshot_gib

SWEEP = Path(__file__).resolve().parents[1] / "data" / "vllm_logs" / "sweeps" / "llm_d_planner_v0190.csv"


def _input(model: str, version: str, util: float, tp: int = 1, pp: int = 1) -> SizingInput:
    return SizingInput(model=get_model(model), gpu=get_gpu("h100-sxm"), engine=resolve_engine("vllm", None, version),
                       tensor_parallel=tp, pipeline_parallel=pp, gpu_memory_utilization=util, max_model_len=8192)


def _codes(inp: SizingInput) -> list[str]:
    return [r.problem.value for r in size(inp).reasons]


def _rows() -> list[dict[str, str]]:
    """Catalog rows whose GPUs were free at start (three failed starts found another process
    holding ~18 GiB: vLLM's check refused them, as it should; sweeps/README.md)."""
    with SWEEP.open(encoding="utf-8", newline="") as f:
        return [r for r in csv.DictReader(f) if r["catalog_model"] and "another process" not in r["failure"]]


def test_the_foreign_memory_failures_are_the_check_vllm_makes() -> None:
    """The runs refused at start with ~18 GiB held by another process: free memory below
    0.95 × total, exactly the comparison LD213 models."""
    with SWEEP.open(encoding="utf-8", newline="") as f:
        foreign = [r for r in csv.DictReader(f) if "another process" in r["failure"]]
    assert len(foreign) == 3
    assert all(float(r["init_free_memory_gib"]) < 0.95 * 79.19 for r in foreign)


def test_predicted_free_memory_at_start_matches_every_logged_snapshot() -> None:
    """Every catalog row of the v0.19.0 sweep: predicted free memory within 0.11 GiB of the log
    (TP1 78.68, one TP/PP group 77.64-77.76, MoE at TP2 77.18, Llama-4-Scout at TP4 77.12 GiB)."""
    errors = []
    for r in _rows():
        inp = _input(r["catalog_model"], "0.19.0", float(r["gpu_memory_utilization"]), int(r["tp"]), int(r["pp"]))
        c = _core(inp)
        held = held_before_snapshot_gib(c.mm, inp.model, inp.tensor_parallel, inp.pipeline_parallel, 1,
                                        CUDA_CONTEXT_GIB).gib
        predicted = c.total / GIB - held
        errors.append((abs(predicted - float(r["init_free_memory_gib"])), r["log_file"]))
    assert len(errors) >= 45
    worst = max(errors)
    assert worst[0] < 0.11, worst
    # The rows span all four cases the model separates.
    tps = {(int(r["tp"]) > 1, int(r["pp"]) > 1, get_model(r["catalog_model"]).is_moe) for r in _rows()}
    assert {(False, False, False), (True, False, False), (False, True, False), (True, False, True)} <= tps


def test_no_logged_start_is_refused() -> None:
    """All sweep starts passed vLLM's check at 0.95 (and the gpt-oss TP2 retry at 0.90)."""
    for r in _rows():
        if r["status"] != "ok":
            continue
        inp = _input(r["catalog_model"], "0.19.0", float(r["gpu_memory_utilization"]), int(r["tp"]), int(r["pp"]))
        assert "startup-free-memory" not in _codes(inp), r["log_file"]


@pytest.mark.parametrize(("model", "version", "util", "tp", "pp", "refused"), [
    # v0.19: one GPU starts up to ~0.99, a dense model with TP up to ~0.98, a MoE model with TP up to ~0.975.
    ("meta-llama/Llama-3.1-8B-Instruct", "0.19.0", 0.99, 1, 1, False),
    ("meta-llama/Llama-3.1-8B-Instruct", "0.19.0", 0.995, 1, 1, True),
    ("meta-llama/Llama-3.1-8B-Instruct", "0.19.0", 0.98, 2, 1, False),
    ("meta-llama/Llama-3.1-8B-Instruct", "0.19.0", 0.985, 4, 1, True),
    ("meta-llama/Llama-3.1-8B-Instruct", "0.19.0", 0.985, 1, 2, True),
    ("mistralai/Mixtral-8x7B-Instruct-v0.1", "0.19.0", 0.97, 2, 1, False),
    ("mistralai/Mixtral-8x7B-Instruct-v0.1", "0.19.0", 0.98, 2, 1, True),
    # 0.11-0.13 build the expert-parallel group for every model (parallel_state.py).
    ("meta-llama/Llama-3.1-8B-Instruct", "0.12.0", 0.98, 2, 1, True),
    # 0.9.2-0.10.x: the snapshot comes before NCCL, only the CUDA context is held.
    ("meta-llama/Llama-3.1-8B-Instruct", "0.10.2", 0.99, 4, 1, False),
    ("meta-llama/Llama-3.1-8B-Instruct", "0.10.2", 0.995, 4, 1, True),
    # 0.8.x V1 has no such check.
    ("meta-llama/Llama-3.1-8B-Instruct", "0.8.5", 0.995, 4, 1, False),
])
def test_refused_exactly_where_vllm_refuses(model: str, version: str, util: float, tp: int, pp: int,
                                            refused: bool) -> None:
    assert ("startup-free-memory" in _codes(_input(model, version, util, tp, pp))) is refused


def test_v0_engine_has_no_startup_check() -> None:
    inp = dataclasses.replace(_input("meta-llama/Llama-3.1-8B-Instruct", "0.10.2", 0.999, 2), engine_generation="V0")
    assert "startup-free-memory" not in _codes(inp)


def test_the_hint_starts() -> None:
    """The utilization the hint names passes the check it failed."""
    r = next(x for x in size(_input("mistralai/Mixtral-8x7B-Instruct-v0.1", "0.19.0", 0.99, 2)).reasons
             if x.problem.value == "startup-free-memory")
    best = float(r.hint.split("to ")[1].split(" ")[0])
    assert 0.97 <= best < 0.98
    assert "startup-free-memory" not in _codes(_input("mistralai/Mixtral-8x7B-Instruct-v0.1", "0.19.0", best, 2))
    assert "expert parallel" in r.message and "1.48 GiB" in r.message
