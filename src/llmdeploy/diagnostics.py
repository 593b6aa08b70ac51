"""One diagnostic model for every stage, and the reporters that print it.

A :class:`Diagnostic` carries where (file, line, column, JSON path), what (rule id,
severity, message) and how to fix it (hint). Reporters turn a list of them into
text (``file:line:col: error LD104 message (hint: ...)``), JSON or GitHub Actions
workflow commands. Every reporter passes the message and the hint through
:func:`llmdeploy.secrets.redact`: whatever a rule quotes, a secret-shaped value never
reaches a CI log.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, field
from enum import Enum

from .records import record
from .secrets import redact


class Severity(str, Enum):
    """How bad a finding is. Errors fail ``validate``; warnings only with ``--strict``."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


_SEVERITY_ORDER = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}


@record
class Diagnostic:
    """A located finding about a spec.

    Attributes:
        severity: error, warning or info.
        rule: rule id such as ``LD104``.
        message: what is wrong, one sentence.
        hint: how to fix it, or None.
        file: path as the user gave it ("<stdin>" for standard input).
        line: 1-based line, 0 when unknown.
        col: 1-based column, 0 when unknown.
        path: JSON path into the spec such as ``runtime.maxModelLen``.
    """

    severity: Severity
    rule: str
    message: str
    hint: str | None = None
    file: str = ""
    line: int = 0
    col: int = 0
    path: str = ""
    extra: dict[str, object] = field(default_factory=dict, compare=False, hash=False)

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def sort_key(self) -> tuple[str, int, int, int, str]:
        return (self.file, self.line, self.col, _SEVERITY_ORDER[self.severity], self.rule)

    def location(self) -> str:
        if self.line:
            return f"{self.file}:{self.line}:{self.col}"
        return self.file or "<input>"

    def to_text(self) -> str:
        text = f"{self.location()}: {self.severity.value} {self.rule} {redact(self.message)}"
        if self.hint:
            text += f" (hint: {redact(self.hint)})"
        return text

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["severity"] = self.severity.value
        data["message"] = redact(self.message)
        data["hint"] = redact(self.hint) if self.hint else self.hint
        data.pop("extra")
        return data


def sort_diagnostics(diags: Iterable[Diagnostic]) -> list[Diagnostic]:
    """Sort by file, line, column, severity; drop exact duplicates."""
    seen: set[Diagnostic] = set()
    out = []
    for d in sorted(diags, key=Diagnostic.sort_key):
        if d not in seen:
            seen.add(d)
            out.append(d)
    return out


def _github_escape(value: str, *, prop: bool = False) -> str:
    # https://github.com/actions/toolkit/blob/main/packages/core/src/command.ts
    value = value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if prop:
        value = value.replace(":", "%3A").replace(",", "%2C")
    return value


def format_text(diags: Sequence[Diagnostic]) -> str:
    return "".join(d.to_text() + "\n" for d in diags)


def format_json(diags: Sequence[Diagnostic], summary: dict[str, object] | None = None,
                top: dict[str, object] | None = None) -> str:
    """One JSON document: ``diagnostics``, the optional ``summary``, and ``top``-level keys."""
    payload: dict[str, object] = {"diagnostics": [d.to_json() for d in diags]}
    if summary is not None:
        payload["summary"] = summary
    payload.update(top or {})
    return json.dumps(payload, indent=2, sort_keys=True) + "\n"


def format_github(diags: Sequence[Diagnostic]) -> str:
    lines = []
    for d in diags:
        level = {"error": "error", "warning": "warning", "info": "notice"}[d.severity.value]
        props = [f"file={_github_escape(d.file, prop=True)}"]
        if d.line:
            props += [f"line={d.line}", f"col={d.col}"]
        props.append(f"title={_github_escape(d.rule, prop=True)}")
        msg = redact(d.message) + (f" (hint: {redact(d.hint)})" if d.hint else "")
        lines.append(f"::{level} {','.join(props)}::{_github_escape(msg)}\n")
    return "".join(lines)


FORMATS = ("auto", "text", "json", "github")


def resolve_format(fmt: str) -> str:
    """``auto`` becomes ``github`` under GitHub Actions and ``text`` elsewhere."""
    if fmt == "auto":
        return "github" if os.environ.get("GITHUB_ACTIONS") == "true" else "text"
    return fmt


#: How similar (difflib ratio) a word must be to a candidate to be suggested.
DID_YOU_MEAN_CUTOFF = 0.6


def close_matches(word: str, candidates: Iterable[str], *, n: int = 1, normalize: bool = False,
                  spread: float | None = None) -> list[str]:
    """The one "did you mean" of llmdeploy: up to ``n`` candidates close to ``word``, best first.

    Ties go to the larger string, as :func:`difflib.get_close_matches` breaks them. ``spread`` keeps only the close runners-up (within that
    much of the best ratio), where a long list of weak guesses would be noise. ``normalize``
    compares case-insensitively and returns the candidates as written.
    """
    import difflib  # lazy: only when a hint is needed

    key = word.strip().lower() if normalize else word
    scored = []
    for candidate in dict.fromkeys(candidates):
        probe = candidate.lower() if normalize else candidate
        ratio = difflib.SequenceMatcher(None, key, probe).ratio()
        if ratio >= DID_YOU_MEAN_CUTOFF:
            scored.append((ratio, probe, candidate))
    if not scored:
        return []
    scored.sort(reverse=True)
    best = scored[0][0]
    return [c for r, _, c in scored[:n] if spread is None or r >= best - spread]

