"""Fit the performance model's constants (src/llmdeploy/sizing/perf_vllm.yaml) to the public runs.

Run on demand, not in the test suite (a few minutes on two cores)::

    python benchmarks/fit_perf.py             # fit on the fitted runs, print the error tables
    python benchmarks/fit_perf.py --write     # ... and write the constants into perf_vllm.yaml
    python benchmarks/fit_perf.py --report    # only print the tables for the committed constants
    python benchmarks/fit_perf.py --engine sglang [--write|--report]   # SGLang's / TensorRT-LLM's file

Another engine's file (perf_sglang.yaml, perf_tensorrt-llm.yaml) states only what its runs
(tests/data/perf_runs_engines) pin: its GPU rows, its era and its chat-template costs; the
fit moves only those, the rest is inherited from vLLM's file.

The runs and the fitted / held-out split are those of tests/perf_runs_support.py (held
out: the first byte of SHA-256 of the run id divisible by 3). Only fitted runs enter the
objective: the sum over runs and measures of ``min(|ln(predicted / measured)| /
ln(1 + tolerance), 3)`` (single-stream measures weigh 3×) — an error at the tolerance costs 1, a gross outlier at most 3,
so one broken source cannot drag every constant. Coordinate descent: each constant in
turn is multiplied by a few factors, a change is kept when the objective falls; only the
runs a constant touches are replayed. Constants no fitted run touches keep their value.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
import time
from collections import defaultdict
from itertools import pairwise
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "src"))

import perf_runs_support as S

from llmdeploy.catalog import get_gpu
from llmdeploy.sizing import perf

FACTORS = (0.6, 0.8, 0.9, 0.95, 1.05, 1.1, 1.25, 1.6)
# Physical ranges: a fit may not buy a better score with an impossible constant.
LIMITS = {"bandwidth_efficiency": (0.55, 0.95), "compute_efficiency": (0.15, 0.8),
          "weight_only_compute_factor": (1.0, 4.0),
          # PCIe Gen5 x16 moves at most 64 GB/s a direction; host-memory staging less.
          "pcie:bus_bandwidth_gbs": (1.0, 64.0), "pcie-no-p2p:bus_bandwidth_gbs": (0.5, 32.0)}


def _monotone(params: dict[str, float]) -> bool:
    """All-reduce latency per layer may not fall as TP grows (more ranks, more hops)."""
    by_link: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for k, v in params.items():
        if ":allreduce_us_tp" in k:
            link, tp = k.split(":allreduce_us_tp")
            by_link[link].append((int(tp), v))
    return all(all(a[1] <= b[1] for a, b in pairwise(sorted(t))) for t in by_link.values())


def _current(engine: str = "vllm") -> dict[str, float]:
    """The committed constants as override keys (``gpu:name``, ``era:name``, ``link:name``).

    For an engine whose file inherits vLLM's: only the constants its own file states.
    """
    data = perf.load_constants(engine)
    if engine != "vllm":
        import yaml

        own = yaml.safe_load((perf.DATA_FILE.parent / perf.ENGINE_FILES[engine]).read_text(encoding="utf-8"))
        out = {f"{gpu}:{k}": float(row[k]) for gpu, row in own["gpus"].items()
               for k in ("bandwidth_efficiency", "compute_efficiency")}
        for era in own["eras"]:
            for k in ("step_overhead_ms", "step_overhead_per_layer_us", "step_overhead_per_seq_us",
                      "ttft_overhead_ms", "request_overhead_ms"):
                out[f"{era['name']}:{k}"] = float(era[k])
        out.update({f"chat:{f}": float(v) for f, v in own["frontend"]["chat_template_ms"].items()})
        return out
    out: dict[str, float] = {k: float(data["defaults"][k])
                             for k in ("weight_only_compute_factor", "moe_overhead_us_per_layer")}
    for gpu, row in data["gpus"].items():
        for k in ("bandwidth_efficiency", "compute_efficiency"):
            out[f"{gpu}:{k}"] = float(row[k])
    for era in data["eras"]:
        for k in ("step_overhead_ms", "step_overhead_per_layer_us", "step_overhead_per_seq_us", "ttft_overhead_ms",
                  "request_overhead_ms"):
            out[f"{era['name']}:{k}"] = float(era[k])
    for link, row in data["interconnects"].items():
        for tp, v in row["allreduce_us_per_layer"].items():
            out[f"{link}:allreduce_us_tp{tp}"] = float(v)
        out[f"{link}:bus_bandwidth_gbs"] = float(row["bus_bandwidth_gbs"])
    for family, v in data["frontend"]["chat_template_ms"].items():
        out[f"chat:{family}"] = float(v)
    return out


def _touches(run: dict[str, Any]) -> set[str]:
    """The constants that can change a run's prediction."""
    gpu = get_gpu(run["gpu"])
    engine = str(run.get("engine") or "vllm")
    era = perf.hardware(gpu, run.get("engine_version"), engine=engine).era
    dep = S.deployment(run)
    keys = {f"{gpu.key}:bandwidth_efficiency", f"{gpu.key}:compute_efficiency"}
    keys |= {f"{era}:{k}" for k in ("step_overhead_ms", "step_overhead_per_layer_us", "step_overhead_per_seq_us",
                                    "ttft_overhead_ms", "request_overhead_ms")}
    tp = dep.tensor_parallel
    if tp > 1:
        link = perf.link_name(gpu, engine)
        table = perf.load_constants(engine)["interconnects"][link]["allreduce_us_per_layer"]
        near = sorted(int(k) for k in table)
        keys |= {f"{link}:allreduce_us_tp{k}" for k in near if k == tp} or {f"{link}:allreduce_us_tp{near[-1]}"}
        keys.add(f"{link}:bus_bandwidth_gbs")
    if dep.arch.kernel == "weight_only":
        keys.add("weight_only_compute_factor")
    if dep.arch.num_experts:
        keys.add("moe_overhead_us_per_layer")
    if run.get("endpoint") == "chat":
        table = perf.load_constants(engine)["frontend"]["chat_template_ms"]
        family = S.model_for(run["model"]).family  # type: ignore[union-attr]
        keys.add(f"chat:{family if family in table else 'default'}")
    return keys


# Single-stream runs are few but pin the physics (bandwidth, step overhead): they weigh more.
WEIGHT = {"single_stream": 3.0, "throughput": 1.0, "ttft": 1.0}


def _cost(rows: list[dict[str, Any]]) -> float:
    return sum(WEIGHT[r["measure"]] * min(abs(math.log(max(r["predicted"], 1e-9) / r["measured"]))
                                          / math.log(1 + S.TOLERANCE[r["measure"]]), 3.0) for r in rows)


def fit(rounds: int, engine: str = "vllm") -> dict[str, float]:
    rs, _ = S.scored_runs(engine)
    fitted = [r for r in rs if not S.is_held_out(r["id"]) and S.measured(r)]
    params = _current(engine)
    by_key: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in fitted:
        for k in _touches(r):
            by_key[k].append(r)
    rows = {r["id"]: S.errors([r], params) for r in fitted}
    total = sum(_cost(v) for v in rows.values())
    print(f"start: objective {total:.1f} over {len(fitted)} fitted runs", flush=True)
    for rnd in range(rounds):
        t0 = time.time()
        for key in sorted(params):
            runs_k = by_key.get(key) if key in params else None
            if not runs_k:
                continue
            base = sum(_cost(rows[r["id"]]) for r in runs_k)
            best = (base, params[key], None)
            for f in FACTORS:
                value = params[key] * f
                name = key.split(":", 1)[-1]
                lo, hi = LIMITS.get(key, LIMITS.get(name, (0.0, math.inf)))
                value = min(max(value, lo), hi)
                if value == params[key]:
                    continue
                trial = {**params, key: value}
                if not _monotone(trial):
                    continue
                new_rows = {r["id"]: S.errors([r], trial) for r in runs_k}
                c = sum(_cost(v) for v in new_rows.values())
                if c < best[0] - 1e-6:
                    best = (c, value, new_rows)
            if best[2] is not None:
                params[key] = best[1]
                rows.update(best[2])
                total += best[0] - base
                print(f"  {key} = {best[1]:.4g}   objective {total:.1f}", flush=True)
        print(f"round {rnd + 1}: objective {total:.1f} ({time.time() - t0:.0f} s)", flush=True)
    return params


def report(params: dict[str, float] | None, engine: str = "vllm") -> None:
    print(f"engine: {engine} (constants: {perf.ENGINE_FILES[perf.constants_engine(engine)[0]]})")
    rs, skipped = S.scored_runs(engine)
    rows = S.errors(rs, params)
    print(f"\n{len(rs)} runs replayed, {len(skipped)} excluded:")
    why: dict[str, int] = defaultdict(int)
    for _, w in skipped:
        why[w] += 1
    for w, n in sorted(why.items()):
        print(f"  {n:3d}  {w}")
    ttft_out = S.ttft_exclusions() if engine == "vllm" else []
    print(f"\n{len(ttft_out)} TTFTs not scored (throughput and TPOT still are):")
    for run_id, w in ttft_out:
        print(f"  {run_id}: {w}")
    print("\nwithin tolerance (fitted | held out):")
    sh = S.shares(rows)
    for m in ("single_stream", "throughput", "ttft"):
        cells = []
        for held in (False, True):
            ok, n = sh.get((m, held), (0, 0))
            cells.append(f"{ok}/{n} = {ok / n:.0%}" if n else "-")
        print(f"  {m:14s} ±{S.TOLERANCE[m]:.0%}   {cells[0]:>14s} | {cells[1]:>14s}")
    for dim, keyf in (("GPU", lambda r: r["gpu"]), ("TP", lambda r: r["tp"]),
                      ("concurrency", lambda r: _load_bucket(r))):
        print(f"\nmedian |error| and share within tolerance by {dim} (fitted | held out):")
        groups: dict[tuple[Any, str, bool], list[dict[str, Any]]] = defaultdict(list)
        for r in rows:
            groups[(keyf(r), r["measure"], r["held_out"])].append(r)
        for key in sorted({(k[0], k[1]) for k in groups}, key=lambda x: (str(x[0]), x[1])):
            cells = []
            for held in (False, True):
                g = groups.get((key[0], key[1], held), [])
                if g:
                    errs = sorted(abs(x["error"]) for x in g)
                    cells.append(f"{errs[len(errs) // 2]:5.0%} {sum(x['ok'] for x in g)}/{len(g)}")
                else:
                    cells.append("-")
            print(f"  {key[0]!s:12s} {key[1]:14s} {cells[0]:>14s} | {cells[1]:>14s}")


def _load_bucket(row: dict[str, Any]) -> str:
    if row["concurrency"]:
        c = int(row["concurrency"])
        return "c=1" if c == 1 else ("c=2-16" if c <= 16 else "c>16")
    if row["rate"] == "inf":
        return "burst (rate inf)"
    return "rate-driven"


def write(params: dict[str, float], engine: str = "vllm") -> None:
    """Write fitted values into the engine's constants file in place (comments and layout kept)."""
    path = perf.DATA_FILE.parent / perf.ENGINE_FILES[engine]
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    section, entry = "", ""
    out = []
    for raw in lines:
        line = raw.rstrip("\n")
        m = re.match(r"^(\w[\w-]*):", line)
        if m:
            section, entry = m.group(1), ""
        m2 = re.match(r"^  ([\w.-]+):\s*$", line)
        if m2:
            entry = m2.group(1)
        m3 = re.match(r"^  - name: ([\w.-]+)", line)
        if m3:
            entry = m3.group(1)
        m4 = re.match(r"^(\s+)(\w+): ([0-9.eE+-]+)(\s*(#.*)?)$", line)
        if m4 and section in ("gpus", "eras", "interconnects", "defaults"):
            key = m4.group(2) if section == "defaults" else f"{entry}:{m4.group(2)}"
            if key in params:
                line = f"{m4.group(1)}{m4.group(2)}: {_fmt(params[key])}{m4.group(4) or ''}"
        m6 = re.match(r"^(\s+)chat_template_ms: \{(.*)\}(.*)$", line)
        if m6 and section == "frontend":
            items = []
            for part in m6.group(2).split(","):
                fam, v = (x.strip() for x in part.split(":"))
                items.append(f"{fam}: {_fmt(params.get(f'chat:{fam}', float(v)))}")
            line = f"{m6.group(1)}chat_template_ms: {{{', '.join(items)}}}{m6.group(3)}"
        m5 = re.match(r"^(\s+)allreduce_us_per_layer: \{(.*)\}(.*)$", line)
        if m5 and section == "interconnects":
            items = []
            for part in m5.group(2).split(","):
                tp, v = (x.strip() for x in part.split(":"))
                items.append(f"{tp}: {_fmt(params.get(f'{entry}:allreduce_us_tp{tp}', float(v)))}")
            line = f"{m5.group(1)}allreduce_us_per_layer: {{{', '.join(items)}}}{m5.group(3)}"
        out.append(line + "\n")
    path.write_text("".join(out), encoding="utf-8")
    print(f"wrote {path}")


def _fmt(v: float) -> str:
    return f"{v:.3g}" if v < 10 else f"{v:.0f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--write", action="store_true", help="write the fitted constants into perf_vllm.yaml")
    ap.add_argument("--report", action="store_true", help="only score the committed constants")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--engine", default="vllm", choices=sorted(perf.ENGINE_FILES))
    args = ap.parse_args()
    if args.report:
        report(None, args.engine)
        return
    params = fit(args.rounds, args.engine)
    report(params, args.engine)
    if args.write:
        write(params, args.engine)


if __name__ == "__main__":
    main()
