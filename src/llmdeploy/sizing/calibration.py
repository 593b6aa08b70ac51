"""Per-cluster corrections of the memory model, recorded from your own start-up logs.

``llmdeploy calibrate LOG… --write FILE`` compares each log with the memory model
(:mod:`.calibrate`) and records, per GPU × engine version × tensor-parallel size (and per
model when the logs of one model allow it), what the logs measured beside the prediction:

* ``activationGiB``, ``nonTorchGiB``: mean (logged − predicted) of the profile's activation
  peak and non-torch memory (a vGPU, a driver or an NCCL build that reserves more shows here);
* ``weightsGiB``: the same for the weights, recorded only in a model's own entry;
* ``kvTokensRatio``: what is left — the mean logged / predicted KV tokens once the
  differences above are applied;
* ``residualKvError``: the largest |KV-token error| of those logs after the correction, the
  error band a calibrated verdict states.

``size``/``render``/``plan`` take the file (``--calibration FILE`` or the spec's
``resources.calibration``, relative to the spec file) and apply the most specific entry
that matches the configuration (the model's own entry, else the GPU × version × TP one);
nothing matches → nothing changes and the report says so.

The file (``kind: SizingCalibration``, ``apiVersion: llmdeploy.dev/v1alpha1``) is
documented in docs/sizing.md §8; :func:`read_calibration` refuses anything else with the
file, line and column of the problem.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import LlmdeployError
from ..records import record

if TYPE_CHECKING:  # pragma: no cover
    from .calibrate import Comparison

__all__ = ["API_VERSION", "KIND", "Calibration", "CalibrationError", "Correction", "read_calibration",
           "write_calibration"]

API_VERSION = "llmdeploy.dev/v1alpha1"
KIND = "SizingCalibration"


class CalibrationError(LlmdeployError):
    """A calibration file that cannot be read or does not follow the format (located)."""

    exit_code = 1


@record
class Correction:
    """One entry of a calibration file (GiB are per GPU)."""

    gpu: str
    engine: str
    engine_version: str
    tensor_parallel: int
    model: str | None
    logs: int
    weights_gib: float
    activation_gib: float
    non_torch_gib: float
    kv_tokens_ratio: float
    residual_kv_error: float
    source: str = ""

    def describe(self) -> str:
        """One line for ``size`` and ``--explain``."""
        what = f"{self.gpu}, {self.engine} {self.engine_version}, TP {self.tensor_parallel}" + \
            (f", {self.model}" if self.model else "")
        return (f"calibrated from {self.logs} log{'s' if self.logs != 1 else ''} ({what}; {self.source}): "
                f"activation {self.activation_gib:+.2f} GiB, non-torch {self.non_torch_gib:+.2f} GiB"
                + (f", weights {self.weights_gib:+.2f} GiB" if self.model else "")
                + f", KV tokens × {self.kv_tokens_ratio:.4f}; residual KV error ±{self.residual_kv_error:.1%}")

    def to_json(self) -> dict[str, Any]:
        """JSON form (``size --format json``: ``calibration``)."""
        return {"source": self.source, "gpu": self.gpu, "engine": self.engine, "engine_version": self.engine_version,
                "tensor_parallel": self.tensor_parallel, "model": self.model, "logs": self.logs,
                "weights_gib": self.weights_gib, "activation_gib": self.activation_gib,
                "non_torch_gib": self.non_torch_gib, "kv_tokens_ratio": self.kv_tokens_ratio,
                "residual_kv_error": self.residual_kv_error}


@record
class Calibration:
    """A calibration file: its entries, most specific first when matched."""

    path: str
    entries: tuple[Correction, ...]

    def match(self, gpu: str, engine: str, version: str, tensor_parallel: int, model: str) -> Correction | None:
        """The model's own entry for this GPU × version × TP, else the general one, else None."""
        same = [c for c in self.entries if c.gpu == gpu and c.engine == engine and c.engine_version == version
                and c.tensor_parallel == tensor_parallel]
        own = [c for c in same if c.model is not None and c.model.lower() == model.lower()]
        general = [c for c in same if c.model is None]
        return (own or general or [None])[0]


# --------------------------------------------------------------------------- reading

_FIELDS: dict[str, tuple[str, type, bool]] = {
    # YAML key: (attribute, type, required)
    "gpu": ("gpu", str, True),
    "engine": ("engine", str, True),
    "engineVersion": ("engine_version", str, True),
    "tensorParallel": ("tensor_parallel", int, True),
    "model": ("model", str, False),
    "logs": ("logs", int, True),
    "weightsGiB": ("weights_gib", float, False),
    "activationGiB": ("activation_gib", float, True),
    "nonTorchGiB": ("non_torch_gib", float, True),
    "kvTokensRatio": ("kv_tokens_ratio", float, True),
    "residualKvError": ("residual_kv_error", float, True),
}
# A correction beyond these is not a calibration but a different setup (or a broken log).
_MAX_ABS_GIB = 64.0
_RATIO_RANGE = (0.5, 2.0)


def _pos(node: Any, key: Any = None, *, at_key: bool = False) -> tuple[int, int]:
    lc = getattr(node, "lc", None)
    if lc is None:
        return 1, 1
    try:
        if key is None:
            return lc.line + 1, lc.col + 1
        if isinstance(key, int):
            line, col = lc.item(key)
        else:
            line, col = (lc.key(key) if at_key else lc.value(key)) if key in node else (lc.line, lc.col)
        return line + 1, col + 1
    except (KeyError, IndexError, TypeError):  # pragma: no cover - ruamel always records them
        return lc.line + 1, lc.col + 1


def read_calibration(path: str | Path) -> Calibration:
    """Read and validate a calibration file.

    Raises:
        CalibrationError: the file cannot be read, is not YAML, or breaks the format;
            the message starts with ``file:line:col``.
    """
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    p = Path(path)
    shown = str(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CalibrationError(f"cannot read calibration file {shown}: {getattr(exc, 'strerror', None) or exc}",
                               "check the path (relative paths in a spec are relative to the spec file)") from exc
    try:
        data = YAML(typ="rt", pure=True).load(text)
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{shown}:{mark.line + 1}:{mark.column + 1}" if mark is not None else shown
        raise CalibrationError(f"{where}: not valid YAML ({getattr(exc, 'problem', None) or exc})",
                               "write it with llmdeploy calibrate LOG… --write FILE") from exc

    def fail(node: Any, key: Any, what: str, hint: str, *, at_key: bool = False) -> CalibrationError:
        line, col = _pos(node, key, at_key=at_key)
        return CalibrationError(f"{shown}:{line}:{col}: {what}", hint)

    hint = f"a calibration file has apiVersion: {API_VERSION}, kind: {KIND} and a list of entries " \
        "(llmdeploy calibrate LOG… --write FILE writes one; docs/sizing.md §8)"
    if not isinstance(data, dict):
        raise fail(data, None, "a calibration file is a mapping", hint)
    if data.get("apiVersion") != API_VERSION:
        raise fail(data, "apiVersion", f"apiVersion must be {API_VERSION}", hint)
    if data.get("kind") != KIND:
        raise fail(data, "kind", f"kind must be {KIND}", hint)
    unknown = sorted(set(map(str, data)) - {"apiVersion", "kind", "entries"})
    if unknown:
        raise fail(data, unknown[0], f"unknown key {unknown[0]!r}", hint, at_key=True)
    entries = data.get("entries")
    if not isinstance(entries, list) or not entries:
        raise fail(data, "entries" if "entries" in data else None, "entries must be a non-empty list", hint)
    out = []
    for i, e in enumerate(entries):
        if not isinstance(e, dict):
            raise fail(entries, i, f"entries[{i}] must be a mapping", hint)
        extra = sorted(set(map(str, e)) - set(_FIELDS))
        if extra:
            raise fail(e, extra[0], f"entries[{i}]: unknown key {extra[0]!r}",
                       "keys: " + ", ".join(_FIELDS), at_key=True)
        values: dict[str, Any] = {"source": shown}
        for key, (attr, typ, required) in _FIELDS.items():
            if key not in e or e[key] is None:
                if required:
                    raise fail(e, None, f"entries[{i}]: {key} is missing", "keys: " + ", ".join(_FIELDS))
                values[attr] = None if typ is str else 0.0
                continue
            v = e[key]
            ok = (isinstance(v, str) and bool(v.strip())) if typ is str else \
                (isinstance(v, int) and not isinstance(v, bool)) if typ is int else \
                (isinstance(v, (int, float)) and not isinstance(v, bool))
            if not ok:
                kind = {str: "a non-empty string", int: "an integer", float: "a number"}[typ]
                raise fail(e, key, f"entries[{i}].{key} must be {kind}, not {v!r}", hint)
            values[attr] = typ(v) if typ is not str else str(v)
        if values["tensor_parallel"] < 1 or values["logs"] < 1:
            key = "tensorParallel" if values["tensor_parallel"] < 1 else "logs"
            raise fail(e, key, f"entries[{i}].{key} must be at least 1", hint)
        for key in ("weightsGiB", "activationGiB", "nonTorchGiB"):
            if abs(values[_FIELDS[key][0]]) > _MAX_ABS_GIB:
                raise fail(e, key, f"entries[{i}].{key} {values[_FIELDS[key][0]]:+g} GiB is beyond ±{_MAX_ABS_GIB:g} GiB",
                           "recalibrate from logs of this setup; such a difference is another GPU or a broken log")
        lo, hi = _RATIO_RANGE
        if not lo <= values["kv_tokens_ratio"] <= hi:
            raise fail(e, "kvTokensRatio", f"entries[{i}].kvTokensRatio must be within {lo}–{hi}", hint)
        if not 0 <= values["residual_kv_error"] < 1:
            raise fail(e, "residualKvError", f"entries[{i}].residualKvError must be within 0–1", hint)
        if values["model"] is None and values["weights_gib"]:
            raise fail(e, "weightsGiB", f"entries[{i}].weightsGiB needs a model (weights differ by model)", hint)
        out.append(Correction(**values))
    return Calibration(shown, tuple(out))


# --------------------------------------------------------------------------- writing


def _delta(comparisons: Sequence[Comparison], name: str) -> float:
    diffs = [c.logged - c.predicted for r in comparisons for c in r.checks if c.name == name]
    return round(statistics.fmean(diffs), 3) if diffs else 0.0


def corrections_from(comparisons: Sequence[Comparison], *, model: str | None) -> Correction:
    """The memory-term differences of ``comparisons`` (one setup), before the KV ratio."""
    first = comparisons[0]
    return Correction(
        gpu=first.gpu, engine="vllm", engine_version=first.version, tensor_parallel=first.tensor_parallel,
        model=model, logs=len(comparisons),
        weights_gib=_delta(comparisons, "weights_gib") if model else 0.0,
        activation_gib=_delta(comparisons, "activation_gib"), non_torch_gib=_delta(comparisons, "non_torch_gib"),
        kv_tokens_ratio=1.0, residual_kv_error=0.0)


def setups(comparisons: Sequence[Comparison]) -> dict[tuple[str, str, int, str | None], list[Comparison]]:
    """The logs grouped by GPU × version × TP (model None), and by model within those when a
    model has its own logs there."""
    groups: dict[tuple[str, str, int, str | None], list[Comparison]] = {}
    for c in comparisons:
        if not c.started or not any(k.name == "kv_cache_tokens" for k in c.checks):
            continue  # a failed start or a log without a token count calibrates nothing
        groups.setdefault((c.gpu, c.version, c.tensor_parallel, None), []).append(c)
        groups.setdefault((c.gpu, c.version, c.tensor_parallel, c.model), []).append(c)
    return dict(sorted(groups.items(), key=lambda kv: (kv[0][:3], kv[0][3] or "")))


def write_calibration(entries: Sequence[Correction]) -> str:
    """The YAML text of a calibration file (deterministic: same entries, same bytes)."""
    lines = [f"apiVersion: {API_VERSION}", f"kind: {KIND}",
             "# Written by `llmdeploy calibrate LOG… --write`; docs/sizing.md §8. GiB per GPU:",
             "# logged − predicted; kvTokensRatio: logged / predicted tokens after those.", "entries:"]
    for e in entries:
        lines += [f"  - gpu: {e.gpu}", f"    engine: {e.engine}", f'    engineVersion: "{e.engine_version}"',
                  f"    tensorParallel: {e.tensor_parallel}"]
        if e.model:
            lines.append(f'    model: "{e.model}"')
        lines.append(f"    logs: {e.logs}")
        if e.model:
            lines.append(f"    weightsGiB: {e.weights_gib:.3f}")
        lines += [f"    activationGiB: {e.activation_gib:.3f}", f"    nonTorchGiB: {e.non_torch_gib:.3f}",
                  f"    kvTokensRatio: {e.kv_tokens_ratio:.5f}", f"    residualKvError: {e.residual_kv_error:.4f}"]
    return "\n".join(lines) + "\n"
