"""The vector selectors inside a PromQL expression: which metric, which label matchers.

A small scanner over the PromQL grammar (prometheus/promql/parser): string literals and
durations are skipped, identifiers followed by ``(`` are functions or aggregations,
``by (...)``/``without (...)``/``on (...)``/``ignoring (...)``/``group_left (...)`` lists hold
label names, keywords and numbers are not metrics, and ``name{...}`` or a bare ``name``
is a vector selector. Enough to check every selector llmdeploy writes (KEDA triggers,
recording rules, alerts, dashboard panels) against the series a scrape produces.
"""

from __future__ import annotations

import re

from ..records import record

__all__ = ["Matcher", "Selector", "selectors"]

_AGGREGATIONS = frozenset({"sum", "avg", "min", "max", "count", "stddev", "stdvar", "topk", "bottomk", "quantile",
                           "count_values", "group", "limitk", "limit_ratio"})
_KEYWORDS = _AGGREGATIONS | frozenset({"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
                       "unless", "offset", "atan2", "inf", "nan", "start", "end"})
_LABEL_LISTS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
_IDENT = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_MATCHER = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*,?')


@record
class Matcher:
    label: str
    op: str  # = != =~ !~
    value: str


@record
class Selector:
    metric: str | None
    matchers: tuple[Matcher, ...]

    def value(self, label: str) -> str | None:
        """The value of an equality matcher on ``label``."""
        return next((m.value for m in self.matchers if m.label == label and m.op == "="), None)


def _skip_string(expr: str, i: int) -> int:
    quote = expr[i]
    i += 1
    while i < len(expr) and expr[i] != quote:
        i += 2 if expr[i] == "\\" else 1
    return i + 1


def _close_brace(expr: str, i: int) -> int:
    """Index of the ``}`` closing the ``{`` at ``i`` (braces inside strings do not count)."""
    i += 1
    while i < len(expr):
        if expr[i] in "\"'`":
            i = _skip_string(expr, i)
            continue
        if expr[i] == "}":
            return i
        i += 1
    raise ValueError("unclosed label matcher list")


_ESCAPES = {"\\": "\\", '"': '"', "'": "'", "n": "\n", "t": "\t", "r": "\r"}


def _unescape(text: str) -> str:
    """A PromQL double-quoted string's value (Go escapes; other characters, non-ASCII too, as they are)."""
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), "\\" + m.group(1)), text)


def _matchers(body: str) -> tuple[Matcher, ...]:
    out, pos = [], 0
    while pos < len(body):
        m = _MATCHER.match(body, pos)
        if m is None:
            break
        value = _unescape(m.group(3))
        out.append(Matcher(m.group(1), m.group(2), value))
        pos = m.end()
    return tuple(out)


def selectors(expr: str) -> list[Selector]:
    """Every vector selector of ``expr``, in order."""
    out: list[Selector] = []
    i, n = 0, len(expr)
    while i < n:
        ch = expr[i]
        if ch in "\"'`":
            i = _skip_string(expr, i)
            continue
        if ch == "[":  # range or subquery duration
            i = expr.index("]", i) + 1
            continue
        if ch == "{":  # a selector without a metric name
            end = _close_brace(expr, i)
            out.append(Selector(None, _matchers(expr[i + 1:end])))
            i = end + 1
            continue
        if ch.isdigit() or (ch == "." and i + 1 < n and expr[i + 1].isdigit()):
            m = re.compile(r"[0-9.eE+xXa-fA-F]+[smhdwy]*").match(expr, i)
            i = m.end() if m else i + 1
            continue
        m = _IDENT.match(expr, i)
        if m is None:
            i += 1
            continue
        word, j = m.group(0), m.end()
        k = j
        while k < n and expr[k].isspace():
            k += 1
        if word in _LABEL_LISTS and k < n and expr[k] == "(":
            i = expr.index(")", k) + 1
            continue
        if word.lower() in _KEYWORDS or (k < n and expr[k] == "("):
            i = j
            continue
        if k < n and expr[k] == "{":
            end = _close_brace(expr, k)
            out.append(Selector(word, _matchers(expr[k + 1:end])))
            i = end + 1
            continue
        out.append(Selector(word, ()))
        i = j
    return out
