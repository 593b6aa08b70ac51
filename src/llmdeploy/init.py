"""``llmdeploy init``: a commented starter spec for a model on a GPU type."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import TYPE_CHECKING

from . import naming
from .errors import InvalidSpecError

if TYPE_CHECKING:  # pragma: no cover
    from .diagnostics import Diagnostic

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


def _choose_tp(model: object, gpu: object, max_model_len: int, utilization: float) -> tuple[int, object]:
    from .engines import resolve_engine
    from .sizing import SizingInput, size

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


def starter_spec(*, model: str | None, gpu: str, name: str | None, namespace: str, profile: str,
                 max_model_len: int, model_config: Path | None = None, spec_dir: Path | None = None) -> str:
    """The text of a commented starter spec; raises when the model or GPU is unknown.

    ``model_config`` (a Hugging Face ``config.json``) starts the spec for a model the
    catalog lacks: the spec's ``model.config`` points at it relative to ``spec_dir`` (the
    folder the spec is written to), and ``model`` (the Hugging Face id, for ``hf://``) may
    be left out when the config names it (``_name_or_path``).
    """
    from .catalog import CatalogError, get_gpu, get_model, model_from_hf_config
    from .engines import resolve_engine

    try:
        m = model_from_hf_config(model_config) if model_config is not None else get_model(model or "")
        g = get_gpu(gpu)
    except CatalogError as exc:
        raise InvalidSpecError(exc.message, exc.hint) from None
    model_id = model or m.hf_id
    if model_config is not None and not re.fullmatch(r"[\w.-]+/[\w.-]+", model_id):
        raise InvalidSpecError(f"{model_config} does not name its model (got {model_id!r})",
                               "pass --model ORG/NAME, the Hugging Face id the weights are pulled from")
    config_line = ""
    if model_config is not None:
        import os

        rel = os.path.relpath(model_config.resolve(), (spec_dir or Path.cwd()).resolve())
        config_line = f"  config: {Path(rel).as_posix()}  # architecture for sizing, relative to this file\n"
    if profile not in ("dev", "staging", "production"):
        raise InvalidSpecError(f"unknown profile {profile!r}", "use dev, staging or production")
    service = name or derive_name(model_id)
    problem = naming.dns1035_problem(service)
    if problem:
        raise InvalidSpecError(f"--name {service!r} {problem}")
    utilization = 0.80 if profile == "dev" else 0.90
    tp, report = _choose_tp(m, g, max_model_len, utilization)
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
    text = _align_comments(f"""# yaml-language-server: $schema=./llmdeploy.schema.json
# (editor completion: write the schema once with `llmdeploy schema --output-file llmdeploy.schema.json`)
# Starter spec written by `llmdeploy init`. Check it with `llmdeploy validate`,
# see the memory maths with `llmdeploy size`, and render it with `llmdeploy render`.
# Sizing at write time: {model_id} on {tp} × {g.name}: {fit_note}.
apiVersion: llmdeploy.dev/v1alpha1
kind: LLMService
metadata:
  name: {service}
  namespace: {namespace}
profile: {profile}                  # dev | staging | production: defaults for replicas, alerts, policies
model:
  id: {model_id}
{config_line}  storageUri: hf://{model_id}
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
{{alerts}}  labels:
    release: kube-prometheus-stack  # the label your Prometheus selects monitors by
""")
    return _fit_alerts(text, spec_dir or Path.cwd())


ITL_PATH = "monitoring.alerts.itlP95Seconds"


def check_starter(text: str, spec_dir: Path) -> list[Diagnostic]:
    """What ``llmdeploy validate`` reports for a starter spec written to ``spec_dir`` (errors and warnings)."""
    from .pipeline import analyze_all
    from .spec.loader import load_text

    docs, diags = load_text(text, "<init>", spec_dir)
    return [d for d in [*diags, *(d for a in analyze_all(docs) for d in a.diagnostics)]
            if d.severity.value in ("error", "warning")]


def _decode_step(text: str, spec_dir: Path) -> tuple[float, int] | None:
    """(seconds per output token, sequences in the batch) the sizing expects for ``text``."""
    from .pipeline import analyze_all
    from .spec.loader import load_text

    docs, _ = load_text(text, "<init>", spec_dir)
    for a in analyze_all(docs):
        cap = getattr(a.resolved.sizing, "capacity", None) if a.resolved is not None else None
        rate = getattr(cap, "decode_tokens_per_s_per_sequence", None)
        if cap is not None and isinstance(rate, (int, float)) and rate > 0:
            return 1.0 / rate, cap.concurrency
    return None


def _fit_alerts(template: str, spec_dir: Path) -> str:
    """The starter spec, with an inter-token-latency alert threshold the GPU can meet.

    A profile's ``itlP95Seconds`` (production: 0.1 s) is below the decode step of a large
    model on a slow GPU (70B on L4s: ~0.16 s), so the alert would fire under normal load
    and ``validate --strict`` (the CI gate the quickstart recommends) would fail on the
    very spec ``init`` wrote. Then the spec sets the threshold 25 % above the estimated
    step, rounded up to 50 ms, and says why.
    """
    text = template.replace("{alerts}", "")
    if not any(d.path == ITL_PATH for d in check_starter(text, spec_dir)):
        return text
    found = _decode_step(text, spec_dir)
    if found is None:
        return text
    step, batch = found
    itl = math.ceil(step * 1.25 / 0.05 - 1e-9) * 0.05
    alerts = (f"  alerts:\n    itlP95Seconds: {itl:.2f}  # the profile's default is below the estimated decode step "
              f"({step * 1000:.0f} ms at {batch} sequences)\n")
    return _align_comments(template.replace("{alerts}", alerts))


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
