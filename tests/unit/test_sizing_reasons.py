"""The max_num_seqs reason and the fp8 KV-cache suggestion say what they mean (#18 doc re-capture).

Regressions: the reason repeated the number every printer already puts in front of it
("max_num_seqs 559: 559: …"), quoted the typical requests the cache holds at the engine's
default batch next to the count at the chosen one (52 vs 42 in one line), and the fp8
suggestion said "doubles the KV cache to 16,416 tokens" for a cache of 16,400 because it
let `auto` re-derive a larger batch whose sampler profile ate the gain.
"""

from __future__ import annotations

import re
from pathlib import Path

from conftest import ROOT

from llmdeploy.pipeline import analyze
from llmdeploy.sizing import input_from_spec, size
from llmdeploy.spec.loader import load_text


def _report(example: str, *edits: tuple[str, str]):  # type: ignore[no-untyped-def]
    path = ROOT / "examples" / example
    text = path.read_text(encoding="utf-8")
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new)
    docs, _ = load_text(text, str(path), Path(path).parent)
    a = analyze(docs[0])
    r = a.resolved
    return size(input_from_spec(a.spec, r.model, r.gpu, r.engine))


def test_the_reason_does_not_start_with_the_number() -> None:
    for example in ("llama-3.3-70b-h100-tp2.llmdeploy.yaml", "llama-3.1-8b-l4.llmdeploy.yaml",
                    "llama-3.1-8b-awq-a10g.llmdeploy.yaml"):
        rep = _report(example)
        assert rep.max_num_seqs_reason and not re.match(r"\d", rep.max_num_seqs_reason), rep.max_num_seqs_reason


def test_the_slo_reason_does_not_quote_the_default_batch_cache() -> None:
    rep = _report("llama-3.1-8b-l4.llmdeploy.yaml")
    assert "the largest batch meeting the TPOT SLO" in rep.max_num_seqs_reason
    assert "the KV cache holds at that batch" in rep.max_num_seqs_reason


def test_fp8_kv_suggestion_grows_the_cache_it_names() -> None:
    # A cache tight enough for the suggestion: 0.19 (PyTorch's sorting sampler, 2 GiB of NCCL
    # buffers) at 24K tokens holds about one request of maxModelLen.
    rep = _report("llama-3.3-70b-h100-tp2.llmdeploy.yaml", ("vllm-openai:v0.11.0", "vllm-openai:v0.19.0"),
                  ("maxModelLen: 16384", "maxModelLen: 24576"))
    hits = [s for s in rep.suggestions if s.startswith("kvCacheDtype fp8")]
    assert len(hits) == 1, rep.suggestions
    tokens = int(re.search(r": ([\d,]+) tokens", hits[0]).group(1).replace(",", ""))
    assert tokens > 1.8 * rep.kv_cache_tokens, (tokens, rep.kv_cache_tokens)
    assert f"at max_num_seqs {rep.max_num_seqs:,}" in hits[0]


LD507_SPEC = """apiVersion: llmdeploy.dev/v1alpha1
kind: LLMService
metadata:
  name: q
  namespace: ml
model:
  id: meta-llama/Llama-3.1-8B-Instruct
  storageUri: s3://models/llama
runtime:
  image: vllm/vllm-openai:v0.11.0
  maxNumSeqs: 256
resources:
  gpu:
    type: l4
monitoring:
  alerts:
    itlP95Seconds: 0.1
"""


def test_ld507_looks_at_the_full_batch_and_the_p95() -> None:
    """Regression: LD507 read the SLO-capped operating point and the mean step, so a batch that
    fills to 37 sequences (about 95 ms mean, 114 ms p95 on an L4) under a 100 ms p95 alert passed.
    (With 0.11's FlashInfer sampler the cache holds 47 typical requests: the batch fills to 47.)"""
    docs, _ = load_text(LD507_SPEC, "spec.yaml", Path("."))
    hits = [d for d in analyze(docs[0]).diagnostics if d.rule == "LD507"]
    assert len(hits) == 1 and "p95 decode step" in hits[0].message and "47 sequences" in hits[0].message
    relaxed = LD507_SPEC.replace("itlP95Seconds: 0.1", "itlP95Seconds: 0.2")
    docs, _ = load_text(relaxed, "spec.yaml", Path("."))
    assert not [d for d in analyze(docs[0]).diagnostics if d.rule == "LD507"]
