#!/usr/bin/env python3
"""How long `llmdeploy size` and `llmdeploy plan` take with capacity points, as fresh processes.

Issue #13's target: ``size``/``plan`` with capacity points stay under 300 ms for one model.
Measures the median wall time of, each as a fresh process (interpreter start included):

* ``llmdeploy size -m MODEL --gpu l4 --concurrency 1,8,32,128``, as a table and with ``-o json``;
* the same for a spec file (``size SPEC --concurrency 1,8,32,128 -o json``: the spec is
  validated by the pydantic models first);
* ``llmdeploy plan -m MODEL --concurrency 1,8,32,128``, as a table and with ``-o json``
  (every GPU × tensor-parallel size that fits: about a hundred configurations);
* ``llmdeploy plan -m MODEL --request-rate 20 --tpot-ms 50 -o json`` (replicas and the SLO
  for every configuration, and each one disaggregated; reported, not targeted);
* ``llmdeploy validate SPEC``: what ``size SPEC`` pays before it sizes (reported, not targeted);
* ``python -c 'import pydantic.main'``: the floor of any pydantic program; this machine's
  speed drifts, and this row says how fast it was during the run.

The commands run interleaved, run by run, so a drift of the machine's speed hits all of
them alike. ``--compare SRC`` also times the llmdeploy package in ``SRC`` (the ``src``
folder of a whole checkout of another commit, e.g. ``git archive <commit> | tar -x -C
/tmp/before`` then ``--compare /tmp/before/src``: the package finds its data folders, such
as ``profiles/``, beside ``src``), interleaved with the installed one: a before/after on
the same machine minute. Every command is run once first and must succeed, so a broken
comparison tree cannot pass for a fast one. Prints a table and the sizing
work measured in-process (imports excluded), and exits 1 when a targeted median is above
the target (300 ms), unless --no-fail.

    python benchmarks/bench_size.py [--runs 20] [--target-ms 300] [--no-fail] [--compare SRC]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_validate import ROOT, Timing, bench_env, find_tool

MODEL = "meta-llama/Llama-3.1-8B-Instruct"
SPEC = "examples/llama-3.1-8b-l4.llmdeploy.yaml"
POINTS = ["--concurrency", "1,8,32,128"]
# name -> (arguments, whether the 300 ms target applies)
COMMANDS: dict[str, tuple[list[str], bool]] = {
    "size -m/--gpu, 4 points (table)": (["size", "-m", MODEL, "--gpu", "l4", *POINTS], True),
    "size -m/--gpu, 4 points (json)": (["size", "-m", MODEL, "--gpu", "l4", *POINTS, "-o", "json"], True),
    "size SPEC, 4 points (json)": (["size", SPEC, *POINTS, "-o", "json"], True),
    "plan -m, 4 points (table)": (["plan", "-m", MODEL, *POINTS], True),
    "plan -m, 4 points (json)": (["plan", "-m", MODEL, *POINTS, "-o", "json"], True),
    "plan -m, rate + SLO (json)": (["plan", "-m", MODEL, "--request-rate", "20", "--tpot-ms", "50", "-o", "json"],
                                   False),
    # `size SPEC` validates the spec first: this is its floor (bench_validate.py's command)
    "validate SPEC (reference)": (["validate", SPEC], False),
}


def in_process() -> dict[str, float]:
    """The sizing work alone (catalogs, memory model, concurrency policy, curve, SLO search), in ms."""
    sys.path.insert(0, str(ROOT / "src"))
    from llmdeploy.catalog import get_gpu, get_model
    from llmdeploy.engines import resolve_engine
    from llmdeploy.sizing import SizingInput, Slo, TargetLoad, plan_options, size
    from llmdeploy.sizing.roles import with_disaggregated

    engine = resolve_engine("vllm", None, None)
    out = {}
    t = time.perf_counter()
    size(SizingInput(model=get_model(MODEL), gpu=get_gpu("l4"), engine=engine, concurrencies=(1, 8, 32, 128),
                     target_load=TargetLoad(concurrency=128)))
    out["size, 4 points"] = (time.perf_counter() - t) * 1e3
    t = time.perf_counter()
    load = TargetLoad(concurrency=128)
    with_disaggregated(plan_options(get_model(MODEL), max_model_len=8192, engine=engine, target_load=load), load, None)
    out["plan, 4 points (every GPU x TP)"] = (time.perf_counter() - t) * 1e3
    t = time.perf_counter()
    load, slo = TargetLoad(20.0), Slo(tpot_ms=50.0)
    with_disaggregated(plan_options(get_model(MODEL), max_model_len=8192, engine=engine, target_load=load, slo=slo),
                       load, slo)
    out["plan, rate + SLO"] = (time.perf_counter() - t) * 1e3
    return out


def check_once(command: list[str], env: dict[str, str]) -> None:
    """Run ``command`` once; stop the benchmark when it fails (a timing of an error means nothing)."""
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=False, env=env)
    if result.returncode != 0:
        sys.stderr.write(f"bench: {' '.join(command)} exited {result.returncode}:\n{result.stdout}{result.stderr}")
        raise SystemExit(2)


def time_interleaved(named: list[tuple[str, list[str], dict[str, str]]], runs: int, warmup: int) -> list[Timing]:
    """Median wall time of each command; run i of every command before run i+1 of any."""
    samples: dict[str, list[float]] = {name: [] for name, _, _ in named}
    for i in range(warmup + runs):
        for name, command, env in named:
            start = time.perf_counter()
            subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT, check=False,
                           env=env)
            elapsed = (time.perf_counter() - start) * 1000
            if i >= warmup:
                samples[name].append(elapsed)
    return [Timing(name, command, statistics.median(samples[name]), min(samples[name]), max(samples[name]), runs)
            for name, command, _ in named]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="measured runs per command (default 20)")
    parser.add_argument("--warmup", type=int, default=3, help="unmeasured runs first (default 3)")
    parser.add_argument("--target-ms", type=float, default=300.0, help="budget for each targeted median (default 300)")
    parser.add_argument("--no-fail", action="store_true", help="report only; exit 0 even over the target")
    parser.add_argument("--compare", metavar="SRC", help="also time the llmdeploy package in SRC, interleaved")
    args = parser.parse_args(argv)

    llmdeploy = find_tool("llmdeploy")
    if llmdeploy is None:
        sys.stderr.write("bench: llmdeploy is not installed (pip install -e .)\n")
        return 2
    if args.compare and not (Path(args.compare) / "llmdeploy" / "entry.py").is_file():
        sys.stderr.write(f"bench: --compare {args.compare}: no llmdeploy package there (give a checkout's src)\n")
        return 2
    env = bench_env()
    named: list[tuple[str, list[str], dict[str, str]]] = []
    targeted = set()
    for name, (argv_, target) in COMMANDS.items():
        named.append((name, [llmdeploy, *argv_], env))
        if target:
            targeted.add(name)
        if args.compare:
            src = str(Path(args.compare).resolve())
            other = {**env, "PYTHONPATH": src + os.pathsep + env.get("PYTHONPATH", "")}
            named.append((f"  {name} [{args.compare}]", [llmdeploy, *argv_], other))
    named.append(("python -c 'import pydantic.main'", [sys.executable, "-c", "import pydantic.main"], env))
    for _, command, command_env in named:
        check_once(command, command_env)

    timings = time_interleaved(named, args.runs, args.warmup)
    inner = in_process()

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"model: {MODEL}   timer: subprocess, interleaved   python: {sys.version.split()[0]}   "
          f"cores: {os.cpu_count()}   load average at the end: {load:.2f}")
    width = max(len(t.name) for t in timings)
    print(f"{'command':<{width}}  {'median ms':>9}  {'min ms':>7}  {'max ms':>7}  runs")
    for t in timings:
        print(f"{t.name:<{width}}  {t.median_ms:>9.1f}  {t.min_ms:>7.1f}  {t.max_ms:>7.1f}  {t.runs:>4}")
    print("sizing work in-process (imports excluded): "
          + ", ".join(f"{name} {ms:.0f} ms" for name, ms in inner.items()))
    over = [t for t in timings if t.name in targeted and t.median_ms > args.target_ms]
    for t in timings:
        if t.name in targeted:
            verdict = "OVER" if t in over else "within"
            print(f"{t.name}: median {t.median_ms:.1f} ms, {verdict} the {args.target_ms:.0f} ms target")
    return 1 if over and not args.no_fail else 0


if __name__ == "__main__":
    sys.exit(main())
