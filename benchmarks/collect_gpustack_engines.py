"""Collect the SGLang and TensorRT-LLM runs of the GPUStack performance-lab pages.

The vLLM runs of the same pages are in tests/data/perf_runs/gpustack-*.yaml (their
``source.url`` pins the page to gpustack commit 47277d79). This script reads the same pages
from a local clone of that commit and writes, per page, the result blocks whose serving
script is ``python3 -m sglang.launch_server`` or ``trtllm-serve`` to
tests/data/perf_runs_engines/gpustack-<page>-<engine>.yaml, in the perf_runs format with
``engine: sglang`` / ``engine: tensorrt-llm``.

    python benchmarks/collect_gpustack_engines.py <gpustack git dir>

Every number is copied from the page's "Serving Benchmark Result" block; input/output
tokens are derived as totals / successful requests (as for the vLLM runs).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
VLLM_DIR = ROOT / "tests" / "data" / "perf_runs"
OUT_DIR = ROOT / "tests" / "data" / "perf_runs_engines"
COMMIT = "47277d79f4a5bae12a2d25e9ecbed2a2177a5f2d"
ENGINES = {"sglang.launch_server": "sglang", "trtllm-serve": "tensorrt-llm", "vllm serve": "vllm"}
VERSION_KEYS = {"sglang": "SGLang", "tensorrt-llm": "TensorRT-LLM"}
FIELDS = {
    "Successful requests": "successful_requests", "Benchmark duration (s)": "duration_s",
    "Total input tokens": "total_input_tokens", "Total generated tokens": "total_output_tokens",
    "Request throughput (req/s)": "requests_per_s", "Output token throughput (tok/s)": "output_tokens_per_s",
    "Total Token throughput (tok/s)": "total_tokens_per_s",
    "Mean TTFT (ms)": "ttft_ms_mean", "Median TTFT (ms)": "ttft_ms_median", "P99 TTFT (ms)": "ttft_ms_p99",
    "Mean TPOT (ms)": "tpot_ms_mean", "Median TPOT (ms)": "tpot_ms_median", "P99 TPOT (ms)": "tpot_ms_p99",
    "Mean ITL (ms)": "itl_ms_mean", "Median ITL (ms)": "itl_ms_median", "P99 ITL (ms)": "itl_ms_p99",
}
QUOTE = ("Successful requests", "Maximum request concurrency", "Output token throughput (tok/s)",
         "Total Token throughput (tok/s)", "Mean TTFT (ms)", "Mean TPOT (ms)")


def _engine_of(script: str) -> str | None:
    return next((e for k, e in ENGINES.items() if k in script), None)


def _tp(script: str) -> int | None:
    m = re.search(r"--(?:tp|tp-size|tp_size|tensor-parallel-size)[= ](\d+)", script)
    return int(m.group(1)) if m else None


def _model(script: str) -> str:
    m = re.search(r"(?:--model-path|--model)[= ](\S+)", script)
    if m:
        return m.group(1)
    words = script.split()
    i = words.index("trtllm-serve") if "trtllm-serve" in words else words.index("serve")
    return words[i + 1]


def blocks(text: str) -> list[dict]:  # type: ignore[type-arg]
    """Every benchmark result block with the serving script and section heading before it."""
    lines = text.splitlines()
    out, script, heading, in_script = [], "", "", False
    i = 0
    while i < len(lines):
        line = lines[i]
        s = line.strip()
        if s.startswith("#") and not line.startswith(" "):
            heading = s.lstrip("# ")
        if re.match(r'\?\?\?\+? info ".*[Ss]erving script"', s):
            in_script, script = True, ""
        elif in_script and s and not s.startswith("```"):
            script = (script + " " + s.rstrip("\\").strip()).strip()
        elif in_script and s.startswith("```") and script:
            in_script = False
        if s.startswith("============ Serving Benchmark Result"):
            label = lines[i - 1].strip() if lines[i - 1].strip().startswith("# ") else None
            start = i
            m: dict[str, float] = {}
            conc = None
            while i < len(lines) and not lines[i].strip().startswith("=====") or i == start:
                kv = lines[i].strip().split(":", 1)
                if len(kv) == 2 and kv[0] in FIELDS:
                    m[FIELDS[kv[0]]] = float(kv[1])
                if kv[0] == "Maximum request concurrency":
                    conc = int(float(kv[1]))
                i += 1
            body = [x.strip() for x in lines[start:i]]
            quote = "; ".join(re.sub(r"\s{2,}", " ", b).replace(" :", ":") for b in body
                              if b.split(":")[0] in QUOTE)
            out.append({"script": script, "heading": heading, "label": label, "measured": m,
                        "concurrency": conc, "line": start + 1, "quote": quote})
        i += 1
    return out


def main(git_dir: str) -> None:
    OUT_DIR.mkdir(exist_ok=True)
    total = 0
    for vpath in sorted(VLLM_DIR.glob("gpustack-*.yaml")):
        vdata = yaml.safe_load(vpath.read_text(encoding="utf-8"))
        url = vdata["source"]["url"]
        page = url.split(f"{COMMIT}/")[1]
        text = subprocess.run(["git", "-C", git_dir, "show", f"{COMMIT}:{page}"], check=True,
                              capture_output=True, text=True).stdout
        base = vdata["runs"][0]
        versions = dict(re.findall(r"^- (SGLang|TensorRT-LLM|vLLM): v?(\S+)", text, re.MULTILINE))
        hardware = re.search(r"### Hardware\s+(.+?)\n", text)
        per_engine: dict[str, list[dict]] = {}  # type: ignore[type-arg]
        for b in blocks(text):
            engine = _engine_of(b["script"])
            if engine in (None, "vllm"):
                continue
            m = b["measured"]
            n = int(m["successful_requests"])
            model = _model(b["script"])
            label = b["label"] or ""
            dataset = ("random-" + re.search(r"random (\S+) input", label).group(1).lower()
                       if "random" in label else "sharegpt")
            tp = _tp(b["script"])
            if tp is None and (base.get("gpu_count") or 1) == 1:
                tp = 1  # one GPU on the page: nothing else is possible
            run = {
                "id": "", "engine": engine, "engine_version": versions.get(VERSION_KEYS[engine]),
                "model": model, "gpu": base["gpu"], "gpu_count": base.get("gpu_count"),
                "tensor_parallel": tp, "pipeline_parallel": 1, "dtype": "bfloat16",
                "quantization": "fp8" if ("fp8" in model.lower() or "fp8" in b["script"].lower())
                else base.get("quantization"),
                "kv_cache_dtype": "auto",
                "input_tokens": round(m["total_input_tokens"] / n, 1),
                "output_tokens": round(m["total_output_tokens"] / n, 1),
                "concurrency": b["concurrency"], "request_rate": "inf", "num_prompts": n,
                "max_num_seqs": None,
                "measured": {k: (int(v) if k.startswith(("successful", "total_input", "total_output")) else v)
                             for k, v in m.items()},
                "quote": b["quote"], "dataset": dataset, "serve_command": b["script"],
                "case_label": b["label"], "section": b["heading"], "source_line": b["line"],
            }
            if "fp8" in model.lower() and "FP8" not in str(base.get("model")) and base.get("quantization") == "mxfp4":
                run["quantization"] = "mxfp4"
            other = [e for k, e in ENGINES.items() if e != engine
                     and VERSION_KEYS.get(e, "vLLM").lower() in b["heading"].lower()]
            if other and VERSION_KEYS[engine].lower() not in b["heading"].lower():
                run["caveat"] = (f"the section heading ({b['heading']!r}) names another engine than "
                                 "the serving script; which engine ran is unclear")
            if tp is None:
                run["caveat"] = "tensor parallel size not stated in the serving script"
            per_engine.setdefault(engine, []).append(run)
        stem = vpath.stem.removeprefix("gpustack-")
        for engine, rs in per_engine.items():
            for k, r in enumerate(rs, 1):
                r["id"] = f"gpustack-{stem}-{engine}-{k:02d}-{r['dataset']}"
            doc = {
                "source": {
                    "url": url, "title": vdata["source"]["title"], "accessed": "2026-12-06",
                    "notes": (f"Same page and client as ../perf_runs/{vpath.name} (vllm bench serve, "
                              "backend openai-chat, /v1/chat/completions, request rate inf). Hardware as stated: "
                              f"{hardware.group(1).strip() if hardware else 'see page'!r}. Only blocks whose "
                              f"serving script runs {engine} (collected by benchmarks/collect_gpustack_engines.py). "
                              "input_tokens/output_tokens are DERIVED = totals / successful requests. The engine "
                              "version is the page's \"Engine Version\" list. tensor_parallel is the script's "
                              "--tp/--tp-size/--tp_size, 1 on one-GPU pages, else null (caveat)."),
                },
                "runs": rs,
            }
            path = OUT_DIR / f"gpustack-{stem}-{engine}.yaml"
            path.write_text(yaml.safe_dump(doc, sort_keys=False, width=200, allow_unicode=True), encoding="utf-8")
            total += len(rs)
            print(f"{path.name}: {len(rs)} runs")
    print(f"{total} runs")


if __name__ == "__main__":
    main(sys.argv[1])
