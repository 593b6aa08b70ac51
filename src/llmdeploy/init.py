"""``llmdeploy init``: a commented starter spec for a model on a GPU type."""

from __future__ import annotations

import re

from . import naming
from .errors import InvalidSpecError

TP_CHOICES = (1, 2, 4, 8)
MIN_CONCURRENCY = 4.0  # full-length requests one replica should hold at once


def derive_name(model_id: str) -> str:
    """A valid service name from a model id (``meta-llama/Llama-3.1-8B-Instruct`` → ``llama-3-1-8b-instruct``)."""
    base = model_id.rsplit("/", 1)[-1].lower()
    base = re.sub(r"[^a-z0-9]+", "-", base).strip("-")
    if not base or not base[0].isalpha():
        base = f"llm-{base}".rstrip("-")
    limit = naming.max_service_name_length("knative", "-canary")
    return base[:limit].rstrip("-")


def _choose_tp(model_id: str, gpu_key: str, max_model_len: int, utilization: float) -> tuple[int, object]:
    from .catalog import get_gpu, get_model
    from .engines import resolve_engine
    from .sizing import SizingInput, size

    model = get_model(model_id)
    gpu = get_gpu(gpu_key)
    engine = resolve_engine("vllm", None, None)
    fitting: list[tuple[int, object]] = []
    last = None
    for tp in TP_CHOICES:
        if tp > gpu.gpus_per_node:
            break
        report = size(SizingInput(model=model, gpu=gpu, engine=engine, tensor_parallel=tp,
                                  max_model_len=max_model_len, gpu_memory_utilization=utilization))
        last = report
        if report.fits:
            fitting.append((tp, report))
            # A replica that holds only one or two full-length requests queues everything
            # else: prefer the smallest TP that leaves room for a few at once.
            if report.max_concurrency >= MIN_CONCURRENCY:
                return tp, report
    if fitting:
        return fitting[-1]
    return TP_CHOICES[0], last


def starter_spec(*, model: str, gpu: str, name: str | None, namespace: str, profile: str,
                 max_model_len: int) -> str:
    """The text of a commented starter spec; raises when the model or GPU is unknown."""
    from .catalog import CatalogError, get_gpu, get_model
    from .engines import resolve_engine

    try:
        m = get_model(model)
        g = get_gpu(gpu)
    except CatalogError as exc:
        raise InvalidSpecError(exc.message, exc.hint) from None
    if profile not in ("dev", "staging", "production"):
        raise InvalidSpecError(f"unknown profile {profile!r}", "use dev, staging or production")
    service = name or derive_name(m.hf_id)
    problem = naming.dns1035_problem(service)
    if problem:
        raise InvalidSpecError(f"--name {service!r} {problem}")
    utilization = 0.80 if profile == "dev" else 0.90
    tp, report = _choose_tp(m.hf_id, g.key, max_model_len, utilization)
    engine = resolve_engine("vllm", None, None)
    fit_note = (
        f"fits: {report.kv_cache_tokens:,} KV-cache tokens, {report.max_concurrency:.1f} full-length requests at once"
        if report is not None and report.fits
        else "does NOT fit as written: run `llmdeploy size` on this file for suggestions"
    )
    scale = (
        "  minReplicas: 0\n  scaleToZero: true        # dev only: the first request waits for a model load\n"
        if profile == "dev" else "  minReplicas: 2\n"
    )
    return _align_comments(f"""# yaml-language-server: $schema=./llmdeploy.schema.json
# (editor completion: write the schema once with `llmdeploy schema -o llmdeploy.schema.json`)
# Starter spec written by `llmdeploy init`. Check it with `llmdeploy validate`,
# see the memory maths with `llmdeploy size`, and render it with `llmdeploy render`.
# Sizing at write time: {m.hf_id} on {tp} × {g.name}: {fit_note}.
apiVersion: llmdeploy.dev/v1alpha1
kind: LLMService
metadata:
  name: {service}
  namespace: {namespace}
profile: {profile}                  # dev | staging | production: defaults for replicas, alerts, policies
model:
  id: {m.hf_id}
  storageUri: hf://{m.hf_id}
  credentials:
    secretRef: hf-token             # a Secret with key HF_TOKEN (never write the token here)
runtime:
  engine: vllm
  image: {engine.default_image}      # pinned: flags, metrics and sizing follow this version
  maxModelLen: {max_model_len}               # longest prompt + output you serve, not the model maximum
  gpuMemoryUtilization: {utilization:.2f}
  maxNumSeqs: auto                  # vLLM's default batch cap (size explains)
resources:
  gpu:
    type: {g.key}
  parallelism:
    tensor: {tp}
scaling:
  autoscaler: keda                  # scale on queue depth, not CPU
{scale}  metric: queueDepth
monitoring:
  scrape: podMonitor
  labels:
    release: kube-prometheus-stack  # the label your Prometheus selects monitors by
""")


def _align_comments(text: str, column: int = 36) -> str:
    """Line up trailing ``# comments`` (whatever length the values have) for readability."""
    out = []
    for line in text.splitlines():
        code, sep, comment = line.partition("  # ")
        if sep and not line.lstrip().startswith("#"):
            code = code.rstrip()
            line = f"{code.ljust(max(column, len(code) + 2))}# {comment}"
        out.append(line)
    return "\n".join(out) + "\n"
