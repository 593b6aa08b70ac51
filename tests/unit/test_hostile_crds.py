"""Hostile ``--crds`` input is a located usage error, bounded in time and memory (issue #19, item 7).

Regressions: a ``^(.+)+X$`` pattern hung render (CRD patterns ran on Python's backtracking
``re``; the API server runs RE2); a 2 KB alias-bomb CRD grew to 9.8 GB; recursive
``$ref``, ``enum: 5``, ``type: 17`` and huge integers ended in exit 3 "internal error".
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest
from conftest import EXAMPLES, run_cli

from llmdeploy.check import Checker, CRDLoadError
from llmdeploy.check import crd_schema as crd_schema_mod

SPEC = str(EXAMPLES / "llama-3.1-8b-l4.llmdeploy.yaml")


def widget_crd(schema_yaml: str) -> str:
    """A CRD for Widget.example.com/v1 whose ``spec`` schema is ``schema_yaml`` (indented 14)."""
    return f"""apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {{name: widgets.example.com}}
spec:
  group: example.com
  names: {{kind: Widget, plural: widgets, singular: widget, listKind: WidgetList}}
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
{schema_yaml}
"""


def widget(spec: object) -> dict:
    return {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "namespace": "x"},
            "spec": spec}


def check(tmp_path: Path, schema_yaml: str, spec: object) -> list[str]:
    crd = tmp_path / "crd.yaml"
    crd.write_text(widget_crd(schema_yaml))
    report = Checker([crd], cache_dir=tmp_path / "cache").check([widget(spec)])
    return [f"{p.path}: {p.message}" for p in report.problems]


EVIL = """              type: object
              properties:
                name: {type: string, pattern: '^(.+)+X$'}
"""


def test_a_catastrophic_pattern_runs_in_linear_time(tmp_path: Path) -> None:
    """Regression: `^(.+)+X$` on a long value backtracked for hours; RE2 answers at once."""
    start = time.monotonic()
    problems = check(tmp_path, EVIL, {"name": "a" * 5000 + "!"})
    assert time.monotonic() - start < 10
    assert len(problems) == 1 and "does not match '^(.+)+X$'" in problems[0]
    assert check(tmp_path, EVIL, {"name": "aaX"}) == []


def test_without_re2_a_catastrophic_pattern_is_not_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "re2", None)  # import re2 -> ImportError
    monkeypatch.setattr(crd_schema_mod, "_COMPILED", {})
    start = time.monotonic()
    assert check(tmp_path, EVIL, {"name": "a" * 40 + "!"}) == []
    assert time.monotonic() - start < 10
    # A safe pattern is still checked through Python's re.
    safe = "              type: object\n              properties:\n                n: {type: string, pattern: '^[a-z]+$'}\n"
    assert len(check(tmp_path, safe, {"n": "abc\n"})) == 1  # RE2's $: no match before a final newline


@pytest.mark.parametrize(("pattern", "safe"), [
    (r"^(.+)+X$", False), (r"(a*)*", False), (r"(\w+\s?)+$", False), (r"^(a|a)*$", False), (r"^(a?a)*$", False), (r"^(\.a*a*)*$", False), (r"(a)\1", False),
    (r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\Z", True), (r"^\d+(s|m|h)\Z", True),
    (r"^([a-z0-9-]+\.)*[a-z]+\Z", True), (r"^(?:[-A-Za-z0-9/._~]|%[0-9a-fA-F]{2})+\Z", True),
])
def test_the_fallback_analyser(pattern: str, safe: bool) -> None:
    assert crd_schema_mod.pattern_is_safe(pattern) is safe


BAD_SCHEMAS = {
    "enum not a list": ("              type: object\n              properties:\n                x: {type: string, enum: 5}\n",
                        "properties.spec.properties.x.enum"),
    "type a number": ("              type: 17\n", "properties.spec.type"),
    "ref": ("              $ref: '#/definitions/x'\n", "properties.spec.$ref"),
    "huge integer": (("              type: object\n              properties:\n"
                     "                x: {type: integer, maximum: 100000000000000000000000000000}\n"),
                     "properties.spec.properties.x.maximum"),
    "multipleOf zero": ("              type: object\n              properties:\n                x: {type: number, multipleOf: 0}\n",
                        "properties.spec.properties.x.multipleOf"),
    "negative maxLength": ("              type: object\n              properties:\n                x: {type: string, maxLength: -1}\n",
                           "properties.spec.properties.x.maxLength"),
    "patternProperties": ("              type: object\n              patternProperties: {'^(.+)+$': {type: string}}\n",
                          "properties.spec.patternProperties"),
    "infinite bound": ("              type: object\n              properties:\n                x: {type: number, minimum: .inf}\n",
                       "properties.spec.properties.x.minimum"),
}


@pytest.mark.parametrize("case", sorted(BAD_SCHEMAS))
def test_a_malformed_schema_is_a_located_error(tmp_path: Path, case: str) -> None:
    schema, where = BAD_SCHEMAS[case]
    with pytest.raises(CRDLoadError) as info:
        check(tmp_path, schema, {"x": 1})
    message = str(info.value)
    assert "crd.yaml" in message and "Widget.example.com version v1" in message and where in message, message


def test_a_recursive_alias_is_bounded(tmp_path: Path) -> None:
    schema = "              &loop\n              type: object\n              properties:\n                again: *loop\n"
    with pytest.raises(CRDLoadError, match="nests deeper than"):
        check(tmp_path, schema, {})


def test_an_alias_bomb_is_bounded(tmp_path: Path) -> None:
    """Regression: a 2 KB CRD whose schema expanded to billions of nodes (9.8 GB)."""
    levels = ["              x0: &a0 {type: string, enum: [a, b, c, d, e, f, g, h, i, j]}"]
    for i in range(1, 12):
        refs = ", ".join(f"*a{i - 1}" for _ in range(10))
        levels.append(f"              x{i}: &a{i} {{type: object, allOf: [{refs}]}}")
    schema = "              type: object\n              properties:\n" + "\n".join(
        "  " + line for line in levels) + "\n"
    crd = widget_crd(schema)
    assert len(crd) < 4096
    start = time.monotonic()
    with pytest.raises(CRDLoadError, match="more than 2,000,000 values"):
        check(tmp_path, schema, {})
    assert time.monotonic() - start < 30


def test_the_cli_reports_a_bad_crd_as_a_usage_error(tmp_path: Path) -> None:
    crd = tmp_path / "scaledobject.yaml"
    crd.write_text("""apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: scaledobjects.keda.sh}
spec:
  group: keda.sh
  names: {kind: ScaledObject, plural: scaledobjects}
  scope: Namespaced
  versions:
    - name: v1alpha1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec: {type: object, properties: {pollingInterval: {type: integer, enum: 5}}}
""")
    r = run_cli("render", SPEC, "--crds", str(crd))
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("llmdeploy: error: --crds: ") and "pollingInterval.enum" in r.stderr
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr and r.stdout == ""


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_or_a_device_as_crds_does_not_hang(tmp_path: Path) -> None:
    fifo = tmp_path / "crds.yaml"
    os.mkfifo(fifo)
    for path in (str(fifo), "/dev/zero"):
        r = run_cli("render", SPEC, "--crds", path, timeout=60)
        assert r.returncode == 2, r.stderr
        assert "not a regular file" in r.stderr and "Traceback" not in r.stderr


def test_a_huge_crd_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from llmdeploy import fsio
    from llmdeploy.check import core

    monkeypatch.setattr(core, "MAX_CRD_BYTES", 1000)
    crd = tmp_path / "crd.yaml"
    crd.write_text(widget_crd(EVIL) + "#" * 2000 + "\n")
    with pytest.raises(CRDLoadError, match="larger than the limit of 1,000 bytes"):
        Checker([crd], cache_dir=tmp_path / "cache")
    assert fsio.MAX_CRD_BYTES == 32 * 1024 * 1024
