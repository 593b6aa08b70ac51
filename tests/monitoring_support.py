"""Helpers shared by the monitoring tests: plan one spec's monitoring, find promtool, rule files."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import EXAMPLES, ROOT

MONITORING_DATA = ROOT / "tests" / "data" / "monitoring"
EXAMPLE_FILES = sorted(EXAMPLES.glob("*.llmdeploy.yaml"))
DATA_FILES = sorted(MONITORING_DATA.glob("*.llmdeploy.yaml"))
ALL_SPECS = EXAMPLE_FILES + DATA_FILES

# Group fields the CRD allows but promtool 2.42 rejects (`field … not found in type
# rulefmt.RuleGroup`): Thanos' partial_response_strategy, query_offset (2.53+) and group
# labels (3.x). validation.md §3.
PROMTOOL_242_UNSUPPORTED_GROUP_FIELDS = ("partial_response_strategy", "query_offset", "labels")


@dataclass
class Planned:
    """One spec's planning context and monitoring."""

    path: Path
    ctx: Any
    engine: Any
    monitoring: Any  # MonitoringPlan
    section: Any  # Section

    def manifest(self, kind: str) -> Any:
        found = [m for m in self.section.manifests if m.kind == kind]
        assert len(found) == 1, f"{self.path.name}: {len(found)} {kind} manifests"
        return found[0]

    def rule_groups(self) -> dict[str, Any]:
        return rule_file(self.manifest("PrometheusRule").values["spec"])


def plan_spec(path: Path) -> Planned:
    """Plan one spec's monitoring the way ``build_plan`` does: real analysis (validation,
    resolution, sizing, rules), real engine plan, then the monitoring section."""
    from llmdeploy.pipeline import analyze
    from llmdeploy.plan import kserve, plan_context
    from llmdeploy.plan import monitoring as mon
    from llmdeploy.spec.loader import load_paths

    docs, diags = load_paths([str(path)])
    assert docs and not diags, diags
    a = analyze(docs[0])
    assert a.spec is not None and a.resolved is not None and a.resolved.sizing is not None, a.diagnostics
    errors = [d for d in a.diagnostics if d.is_error]
    assert not errors, errors
    ctx = plan_context(a)
    engine = kserve.plan_engine(ctx)
    return Planned(path, ctx, engine, mon.build_monitoring(ctx), mon.plan_monitoring(ctx, engine))


def rule_file(spec: dict[str, Any]) -> dict[str, Any]:
    """A PrometheusRule's ``spec`` as a plain rule file promtool 2.42 accepts."""
    groups = []
    for g in spec["groups"]:
        groups.append({k: v for k, v in g.items() if k not in PROMTOOL_242_UNSUPPORTED_GROUP_FIELDS})
    return {"groups": groups}


def write_yaml(path: Path, data: Any) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False, width=4096), encoding="utf-8")
    return path


def promtool() -> str:
    """The promtool binary, or skip with the reason."""
    exe = shutil.which("promtool")
    if exe is None:
        pytest.skip("promtool not found: install Debian's `prometheus` package (bash tests/install-tools.sh)")
    return exe


def prometheus() -> str:
    """The prometheus binary, or skip with the reason."""
    exe = shutil.which("prometheus")
    if exe is None:
        pytest.skip("prometheus not found: install Debian's `prometheus` package (bash tests/install-tools.sh)")
    return exe


def run_promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool(), *args], check=False, capture_output=True, text=True, timeout=60, cwd=cwd)
