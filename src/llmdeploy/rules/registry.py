"""Rule registration and execution."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..diagnostics import Diagnostic, Severity
from ..records import record

if TYPE_CHECKING:  # pragma: no cover
    from ..effective import Workload
    from ..resolve import Resolved
    from ..spec.models import LLMService
    from ..spec.validate import Validated


@record
class Finding:
    """What a rule reports: a JSON path into the spec, a message and a hint."""

    path: Sequence[str | int]
    message: str
    hint: str | None = None
    severity: Severity | None = None  # None: the rule's default
    key: bool = False  # point at the key rather than the value


@dataclass
class RuleContext:
    """What a rule may look at: the validated spec, where things are, and the resolved facts."""

    validated: Validated
    resolved: Resolved

    @property
    def spec(self) -> LLMService:
        assert self.validated.spec is not None
        return self.validated.spec

    @property
    def profile(self) -> str | None:
        return self.validated.profile_name

    def user_set(self, path: Sequence[str | int]) -> bool:
        return self.validated.user_set(path)


@dataclass
class EffectiveContext(RuleContext):
    """What a runtime-truth rule (stage ``effective``) looks at, besides the spec.

    ``workload`` is the service's InferenceService as the cluster will run it
    (``effective.workloads``); ``objects`` are the documents rendered for the service
    (the shared ClusterServingRuntime included).
    """

    workload: Workload | None = None
    objects: Sequence[Mapping[str, Any]] = ()
    workloads: Sequence[Workload] = ()  # every InferenceService of the service (stable, candidate)

    @property
    def first(self) -> bool:
        """True for the service's first workload (rules about the whole service run once)."""
        return not self.workloads or self.workloads[0] is self.workload

    def of_kind(self, kind: str) -> list[Mapping[str, Any]]:
        return [o for o in self.objects if o.get("kind") == kind]


CheckFn = Callable[[Any], Iterable[Finding]]


@record
class Rule:
    """A registered rule."""

    id: str
    severity: Severity
    title: str
    doc: str
    check: CheckFn | None = field(default=None, compare=False)
    stage: str = "semantic"  # "effective": run on the rendered objects; "load"/"schema": emitted elsewhere


RULES: dict[str, Rule] = {}


def rule(rule_id: str, severity: Severity = Severity.ERROR, *, stage: str = "semantic") -> Callable[[CheckFn], CheckFn]:
    """Register ``fn`` as rule ``rule_id``; the docstring's first line is its title."""

    def deco(fn: CheckFn) -> CheckFn:
        if rule_id in RULES:
            raise RuntimeError(f"rule {rule_id} registered twice")
        doc = inspect.cleandoc(fn.__doc__ or "")
        if not doc:
            raise RuntimeError(f"rule {rule_id} needs a docstring (it is the rule's documentation)")
        title = doc.splitlines()[0].rstrip(".")
        checks = fn if stage in ("semantic", "effective") else None
        RULES[rule_id] = Rule(rule_id, severity, title, doc, checks, stage)
        return fn

    return deco


def documented(rule_id: str, severity: Severity, doc: str, stage: str) -> None:
    """Register a rule that another stage (loader, schema) emits, for its documentation."""
    doc = inspect.cleandoc(doc)
    RULES[rule_id] = Rule(rule_id, severity, doc.splitlines()[0].rstrip("."), doc, None, stage)


def run_rules(ctx: RuleContext, rules: Iterable[Rule] | None = None, *, stage: str = "semantic") -> list[Diagnostic]:
    """Run every rule of ``stage`` (``semantic`` on the spec, ``effective`` on the rendered
    objects, with an :class:`EffectiveContext`) and locate its findings in the spec."""
    # Imported here: `size --model` reads the rule ids without the pydantic spec models.
    from ..spec.models import camel_path

    out: list[Diagnostic] = []
    for r in rules if rules is not None else sorted(RULES.values(), key=lambda r: r.id):
        if r.check is None or r.stage != stage:
            continue
        for f in r.check(ctx):
            file, line, col = ctx.validated.locate(f.path, key=f.key)
            out.append(Diagnostic(f.severity or r.severity, r.id, ctx.validated.explain_origin(f.path, f.message),
                                  f.hint, file, line, col,
                                  camel_path(tuple(f.path))))
    return out


