"""The semantic rule registry.

Each rule is a small function registered with :func:`rule`; its docstring is its user
documentation (``docs/rules.md`` is generated from it). Ids: ``LD1xx`` spec,
``LD2xx`` sizing, ``LD3xx`` scaling and rollout, ``LD4xx`` security, ``LD5xx``
monitoring, ``LD6xx`` runtime truth (what the cluster makes of the rendered objects). Some ids are emitted by the loader and the schema stage rather than by a
check function; they are registered here too so that every id is documented.
"""

from __future__ import annotations

from .registry import RULES, EffectiveContext, Finding, Rule, RuleContext, rule, run_rules

__all__ = ["RULES", "EffectiveContext", "Finding", "Rule", "RuleContext", "rule", "run_rules", "load_all"]


def load_all() -> None:
    """Import every rule module so that its rules register."""
    from . import llmisvc, monitoring, rollout, runtime, scaling, security, sizing, spec, topology  # noqa: F401
