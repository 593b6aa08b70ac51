"""Read what an SGLang start-up log says about its memory split (``llmdeploy calibrate``).

SGLang prints (the 0.4.x-0.5.x wheels; ``[... TP0]`` prefixes on the scheduler lines):

* ``server_args=ServerArgs(model_path='…', … dtype='auto', kv_cache_dtype='auto',
  quantization=None, context_length=None, … mem_fraction_static=0.85, …
  chunked_prefill_size=2048, … tp_size=4, …)`` (``pp_size`` from 0.4.7);
* ``Load weight begin. avail mem=75.11 GB`` (the free memory at start, newer releases);
* ``Load weight end. type=…, dtype=…, avail mem=6.09 GB, mem usage=15.54 GB.`` (``mem usage``
  from ~0.4.2; SGLang's ``GB`` are GiB: ``1 << 30``);
* ``KV Cache is allocated. #tokens: 46611, K size: 1.42 GB, V size: 1.42 GB``;
* ``max_total_num_tokens=46611, chunked_prefill_size=…, max_prefill_tokens=…,
  max_running_requests=…, context_len=131072``;
* and, when it did not start, ``Not enough memory. Please try to increase
  --mem-fraction-static`` or a CUDA out-of-memory error.

The log does not print SGLang's release unless ``python3 -m sglang.check_env`` output or a
``sglang==X`` line is part of it. Every field is optional; nothing here sizes anything.
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

from ..records import record

__all__ = ["SGLangStartupLog", "is_sglang_log", "parse_sglang_log"]


@record
class SGLangStartupLog:
    """What one SGLang start-up log says (``None``: the log does not say it).

    Attributes:
        path: the file read.
        version: the SGLang release when the log names it.
        model: ``model_path`` of the server args (an HF id or a local path).
        dtype, kv_cache_dtype, quantization: the server args (``None`` quantization: none).
        context_length: ``context_len`` SGLang settled on (or the ``--context-length`` given).
        tensor_parallel, pipeline_parallel: ``tp_size``, ``pp_size``.
        mem_fraction_static: the fraction SGLang applied.
        chunked_prefill_size: the chunk size SGLang applied.
        free_at_start_gib: ``Load weight begin. avail mem``.
        avail_after_weights_gib, weights_gib: ``Load weight end``'s ``avail mem``, ``mem usage``.
        kv_cache_tokens: ``KV Cache is allocated. #tokens`` (or ``max_total_num_tokens``).
        failure: ``not-enough-memory`` or ``out-of-memory`` when the server did not start.
    """

    path: str
    version: str | None = None
    model: str | None = None
    dtype: str | None = None
    kv_cache_dtype: str = "auto"
    quantization: str | None = None
    context_length: int | None = None
    tensor_parallel: int = 1
    pipeline_parallel: int = 1
    mem_fraction_static: float | None = None
    chunked_prefill_size: int | None = None
    free_at_start_gib: float | None = None
    avail_after_weights_gib: float | None = None
    weights_gib: float | None = None
    kv_cache_tokens: int | None = None
    failure: str | None = None


_SERVER_ARGS = re.compile(r"server_args=ServerArgs\((?P<body>.*)")
_ARG = re.compile(r"\b(?P<key>[a-z_]+)=(?P<value>'[^']*'|\"[^\"]*\"|[^,()\s]+)")
_LOAD_BEGIN = re.compile(r"Load weight begin\. avail mem=(?P<avail>[0-9.]+) GB")
_LOAD_END = re.compile(r"Load weight end\..*?avail mem=(?P<avail>[0-9.]+) GB(?:, mem usage=(?P<usage>[0-9.]+) GB)?")
_KV = re.compile(r"KV Cache is allocated\..*?#tokens: (?P<tokens>\d+)")
_MAX_TOTAL = re.compile(r"max_total_num_tokens=(?P<tokens>\d+)(?P<rest>.*)")
_CONTEXT = re.compile(r"context_len=(?P<n>\d+)")
_VERSION = re.compile(r"\bsglang(?:==|:\s*|\s+version[:\s]+v?)(?P<v>\d+\.\d+\.\d+(?:\.post\d+|rc\d+)?)", re.IGNORECASE)
_NOT_ENOUGH = re.compile(r"Not enough memory\. Please try to increase --mem-fraction-static")
_OOM = re.compile(r"(?:torch\.)?(?:cuda\.)?OutOfMemoryError|CUDA out of memory")
# SGLang's log banner and loader lines that no other engine prints.
_MARKERS = ("server_args=ServerArgs(", "KV Cache is allocated", "max_total_num_tokens=", "sglang.launch_server")


def is_sglang_log(text: str) -> bool:
    """True when ``text`` is an SGLang start-up log."""
    return any(m in text for m in _MARKERS)


def _unquote(value: str) -> str | None:
    if value in ("None", "null"):
        return None
    return value.strip("'\"")


def parse_sglang_log(text: str, path: str | Path = "<text>") -> SGLangStartupLog:
    """Everything :class:`SGLangStartupLog` holds that ``text`` says (the first TP rank's lines)."""
    fields: dict[str, object] = {"path": str(path)}
    m = _SERVER_ARGS.search(text)
    if m:
        args = {a.group("key"): _unquote(a.group("value")) for a in _ARG.finditer(m.group("body"))}
        fields["model"] = args.get("model_path")
        fields["dtype"] = args.get("dtype")
        fields["kv_cache_dtype"] = args.get("kv_cache_dtype") or "auto"
        fields["quantization"] = args.get("quantization")
        for key, out, conv in (("tp_size", "tensor_parallel", int), ("pp_size", "pipeline_parallel", int),
                               ("mem_fraction_static", "mem_fraction_static", float),
                               ("chunked_prefill_size", "chunked_prefill_size", int),
                               ("context_length", "context_length", int)):
            value = args.get(key)
            if value is not None:
                with contextlib.suppress(ValueError):  # a value the log garbled stays unknown
                    fields[out] = conv(value)
    if (m := _VERSION.search(text)) is not None:
        fields["version"] = m.group("v")
    if (m := _LOAD_BEGIN.search(text)) is not None:
        fields["free_at_start_gib"] = float(m.group("avail"))
    if (m := _LOAD_END.search(text)) is not None:
        fields["avail_after_weights_gib"] = float(m.group("avail"))
        if m.group("usage"):
            fields["weights_gib"] = float(m.group("usage"))
    if (m := _KV.search(text)) is not None:
        fields["kv_cache_tokens"] = int(m.group("tokens"))
    if (m := _MAX_TOTAL.search(text)) is not None:
        fields.setdefault("kv_cache_tokens", int(m.group("tokens")))
        if (c := _CONTEXT.search(m.group("rest"))) is not None:
            fields["context_length"] = int(c.group("n"))
    if _NOT_ENOUGH.search(text):
        fields["failure"] = "not-enough-memory"
    elif _OOM.search(text) and "max_total_num_tokens=" not in text:
        fields["failure"] = "out-of-memory"
    return SGLangStartupLog(**fields)  # type: ignore[arg-type]
