#!/usr/bin/env python3
"""How long `llmdeploy validate` takes as a whole process (what a pre-commit hook pays).

Measures the median wall time of, each as a fresh process:

* ``llmdeploy validate <spec>``: the full check (load, models, profile, catalogs, sizing, rules);
* ``check-jsonschema --schemafile schemas/llmdeploy.schema.json <spec>``: a schema-only
  check of the same file, for comparison (only when check-jsonschema is installed);
* ``llmdeploy --help``: the floor (interpreter + CLI start-up).
* ``python -c 'import pydantic.main'``: the floor of any pydantic program; this machine's
  speed drifts, and this row says how fast it was during the run.

Uses hyperfine when it is on PATH, else times subprocesses itself. Prints a table and
exits 1 when the median of ``validate`` is above the target (150 ms), unless --no-fail.

    python benchmarks/bench_validate.py [--runs 20] [--target-ms 150] [--no-fail] [SPEC]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SPEC = ROOT / "examples" / "llama-3.1-8b-l4.llmdeploy.yaml"
SCHEMA = ROOT / "schemas" / "llmdeploy.schema.json"


@dataclass
class Timing:
    name: str
    command: list[str]
    median_ms: float
    min_ms: float
    max_ms: float
    runs: int


def bench_env() -> dict[str, str]:
    """The environment of the timed commands: bytecode is written (as by a pip install)."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def find_tool(name: str) -> str | None:
    """The tool next to this Python first (the venv's), then on PATH."""
    local = Path(sys.executable).parent / name
    if local.exists():
        return str(local)
    return shutil.which(name)


def check_once(command: list[str], ok_codes: tuple[int, ...]) -> None:
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=False, env=bench_env())
    if result.returncode not in ok_codes:
        sys.stderr.write(f"bench: {' '.join(command)} exited {result.returncode}:\n{result.stdout}{result.stderr}")
        raise SystemExit(2)


def time_with_subprocess(name: str, command: list[str], runs: int, warmup: int) -> Timing:
    samples = []
    for i in range(warmup + runs):
        start = time.perf_counter()
        subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT, check=False,
                       env=bench_env())
        elapsed = (time.perf_counter() - start) * 1000
        if i >= warmup:
            samples.append(elapsed)
    return Timing(name, command, statistics.median(samples), min(samples), max(samples), runs)


def time_with_hyperfine(hyperfine: str, named: list[tuple[str, list[str]]], runs: int, warmup: int) -> list[Timing]:
    import shlex

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "hyperfine.json"
        cmd = [hyperfine, "--shell=none", "--warmup", str(warmup), "--runs", str(runs), "--ignore-failure",
               "--style", "none", "--export-json", str(out)]
        for name, command in named:
            cmd += ["--command-name", name, shlex.join(command)]
        subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL, env=bench_env())
        results = json.loads(out.read_text())["results"]
    return [Timing(name, command, r["median"] * 1000, r["min"] * 1000, r["max"] * 1000, len(r["times"]))
            for (name, command), r in zip(named, results, strict=True)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("spec", nargs="?", default=str(DEFAULT_SPEC), help="spec file to validate")
    parser.add_argument("--runs", type=int, default=20, help="measured runs per command (default 20)")
    parser.add_argument("--warmup", type=int, default=3, help="unmeasured runs first (default 3)")
    parser.add_argument("--target-ms", type=float, default=150.0, help="budget for validate's median (default 150)")
    parser.add_argument("--no-fail", action="store_true", help="report only; exit 0 even over the target")
    parser.add_argument("--no-hyperfine", action="store_true", help="time subprocesses even if hyperfine exists")
    args = parser.parse_args(argv)

    llmdeploy = find_tool("llmdeploy")
    if llmdeploy is None:
        sys.stderr.write("bench: llmdeploy is not installed (pip install -e .)\n")
        return 2
    spec = os.path.relpath(Path(args.spec).resolve(), ROOT)
    named: list[tuple[str, list[str]]] = [("llmdeploy validate", [llmdeploy, "validate", spec])]
    check_once(named[0][1], (0, 1))
    cj = find_tool("check-jsonschema")
    if cj is not None:
        named.append(("check-jsonschema", [cj, "--schemafile", os.path.relpath(SCHEMA, ROOT), spec]))
        check_once(named[-1][1], (0, 1))
    named.append(("llmdeploy --help", [llmdeploy, "--help"]))
    # The floor no llmdeploy change moves: the interpreter plus `import pydantic`. This VM's
    # speed drifts by 10-20 % over an hour; this row shows what the run was up against.
    named.append(("python -c 'import pydantic.main'", [sys.executable, "-c", "import pydantic.main"]))

    hyperfine = None if args.no_hyperfine else shutil.which("hyperfine")
    if hyperfine:
        timings = time_with_hyperfine(hyperfine, named, args.runs, args.warmup)
    else:
        timings = [time_with_subprocess(n, c, args.runs, args.warmup) for n, c in named]

    print(f"spec: {spec}   timer: {'hyperfine' if hyperfine else 'subprocess'}   python: {sys.version.split()[0]}")
    if cj is None:
        print("(check-jsonschema not installed: pip install check-jsonschema to compare)")
    width = max(len(t.name) for t in timings)
    print(f"{'command':<{width}}  {'median ms':>9}  {'min ms':>7}  {'max ms':>7}  runs")
    for t in timings:
        print(f"{t.name:<{width}}  {t.median_ms:>9.1f}  {t.min_ms:>7.1f}  {t.max_ms:>7.1f}  {t.runs:>4}")
    validate = timings[0]
    verdict = "within" if validate.median_ms <= args.target_ms else "OVER"
    print(f"validate median {validate.median_ms:.1f} ms: {verdict} the {args.target_ms:.0f} ms target")
    if validate.median_ms > args.target_ms and not args.no_fail:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
