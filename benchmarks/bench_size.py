"""How long ``llmdeploy size`` and ``plan`` take with capacity points (issue #13: < 300 ms for one model).

Two figures per command: the in-process time of the sizing call (catalog lookups, the memory
model, the concurrency policy and the performance model's curve and SLO search; imports
excluded) and the wall time of a fresh ``llmdeploy`` process (interpreter start included),
median of ``--runs``::

    python benchmarks/bench_size.py [--runs 7]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

COMMANDS = {
    "size (4 points)": ["size", "--model", "Qwen/Qwen3-8B", "--gpu", "h100-sxm", "--concurrency", "1,16,64,256",
                        "--format", "json"],
    "size (SLO)": ["size", "--model", "meta-llama/Llama-3.1-70B-Instruct", "--gpu", "h100-sxm", "--tp", "4",
                   "--request-rate", "10", "--tpot-ms", "40", "--format", "json"],
    "plan (every GPU x TP, SLO)": ["plan", "--model", "meta-llama/Llama-3.1-8B-Instruct", "--request-rate", "20",
                                   "--tpot-ms", "50", "--format", "json"],
}


def in_process() -> dict[str, float]:
    from llmdeploy.catalog import get_gpu, get_model
    from llmdeploy.engines import resolve_engine
    from llmdeploy.sizing import SizingInput, Slo, TargetLoad, plan_options, size

    engine = resolve_engine("vllm", None, None)
    out = {}
    t = time.perf_counter()
    size(SizingInput(model=get_model("Qwen/Qwen3-8B"), gpu=get_gpu("h100-sxm"), engine=engine,
                     concurrencies=(1, 16, 64, 256)))
    out["size (4 points)"] = time.perf_counter() - t
    t = time.perf_counter()
    size(SizingInput(model=get_model("meta-llama/Llama-3.1-70B-Instruct"), gpu=get_gpu("h100-sxm"), engine=engine,
                     tensor_parallel=4, target_load=TargetLoad(10.0), slo=Slo(tpot_ms=40.0)))
    out["size (SLO)"] = time.perf_counter() - t
    t = time.perf_counter()
    plan_options(get_model("meta-llama/Llama-3.1-8B-Instruct"), max_model_len=8192, engine=engine,
                 target_load=TargetLoad(20.0), slo=Slo(tpot_ms=50.0))
    out["plan (every GPU x TP, SLO)"] = time.perf_counter() - t
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    exe = str(Path(sys.executable).with_name("llmdeploy"))
    inner = in_process()
    print(f"{'command':30s} {'in-process ms':>14s} {'process ms (median)':>20s}")
    for name, argv in COMMANDS.items():
        times = []
        for _ in range(args.runs):
            t = time.perf_counter()
            subprocess.run([exe, *argv], capture_output=True, check=False)
            times.append(time.perf_counter() - t)
        print(f"{name:30s} {inner[name] * 1e3:14.0f} {statistics.median(times) * 1e3:20.0f}")


if __name__ == "__main__":
    main()
