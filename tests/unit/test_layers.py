"""The house is one-way: a module imports only from its own layer or below, and nothing forms a circle.

The layers (docs/architecture.md draws them):

1. base: errors, records, diagnostics, naming, fsio, datafiles, resources, secrets
2. facts: spec/, catalog/, engines/
3. analysis: resolve, sizing/, promql
4. derive/: decisions both the rules and the planner read; effective/: what the cluster makes
   of the rendered objects (read by the runtime-truth rules)
5. rules/ and plan/, side by side, never importing each other
6. output: render, emit, check/ (which needs only the base layer)
7. application: pipeline, init, docgen, schema
8. command line: cli, cli_*, entry, __main__, the package itself

Every import counts for the layers, including lazy ones inside functions and those under
``if TYPE_CHECKING`` (a type that points upward is an upward dependency all the same).
For circles only imports that run count: a ``TYPE_CHECKING`` import never executes.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "llmdeploy"

LAYERS: dict[str, int] = {
    "errors": 1, "records": 1, "diagnostics": 1, "naming": 1, "fsio": 1, "datafiles": 1, "resources": 1,
    "secrets": 1,
    "spec": 2, "catalog": 2, "engines": 2,
    "resolve": 3, "sizing": 3, "promql": 3,
    "derive": 4, "effective": 4,
    "rules": 5, "plan": 5,
    "render": 6, "emit": 6, "check": 6,
    "pipeline": 7, "init": 7, "docgen": 7, "schema": 7, "api": 7,
    "cli": 8, "entry": 8, "__main__": 8, "": 8,
}

# Side by side in one layer, never importing each other (in either direction).
SIBLINGS_APART = [("rules", "plan")]

# The check stage is reusable on its own: it may import only the base layer.
ONLY_BASE = ["check"]

# Circles that are allowed, each with the reason it is not a problem.
ALLOWED_CIRCLES: dict[frozenset[str], str] = {
    frozenset({"llmdeploy.cli", "llmdeploy.entry"}): (
        "entry.main() builds the typer app when the fast path does not apply, and cli.main() "
        "(kept for callers of llmdeploy.cli:main) delegates back to entry.main(); both imports "
        "are inside the functions, so neither module needs the other to load."
    ),
    frozenset({"llmdeploy.sizing", "llmdeploy.sizing.advise"}): (
        "a real mutual recursion, kept lazy: sizing asks the verdict module for the reasons of a "
        "configuration, and the verdict re-sizes alternatives (a larger TP, a shorter context) to "
        "phrase its hints. Both imports are inside functions."
    ),
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(SRC.rglob("*.py"))}


def _type_checking_lines(tree: ast.Module) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            test = node.test
            name = test.id if isinstance(test, ast.Name) else getattr(test, "attr", None)
            if name == "TYPE_CHECKING":
                for child in node.body:
                    for sub in ast.walk(child):
                        if hasattr(sub, "lineno"):
                            lines.add(sub.lineno)
    return lines


def _imports(name: str, path: Path, modules: dict[str, Path]) -> Iterator[tuple[str, bool]]:
    """(imported llmdeploy module, runs at run time) for every import in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = _type_checking_lines(tree)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        runtime = node.__dict__.get("lineno") not in typing_only
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("llmdeploy"):
                continue
            for alias in node.names:
                full = f"{target}.{alias.name}"
                yield (full if full in modules else target), runtime
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("llmdeploy"):
                    yield alias.name, runtime


@cache
def _graph() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """(every import, imports that run) per module; read once per test session (nothing mutates it)."""
    modules = _modules()
    every: dict[str, set[str]] = {m: set() for m in modules}
    runtime: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        for target, runs in _imports(name, path, modules):
            if target == name:
                continue
            assert target in modules, f"{name} imports {target}, which does not exist"
            every[name].add(target)
            if runs:
                runtime[name].add(target)
    return every, runtime


def _top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _layer(module: str) -> int:
    top = _top(module)
    if top.startswith("cli_"):
        return LAYERS["cli"]
    assert top in LAYERS, f"{module} has no layer: add it to LAYERS here and to docs/architecture.md"
    return LAYERS[top]


def test_every_module_has_a_layer() -> None:
    for module in _modules():
        _layer(module)


def test_no_module_imports_from_a_layer_above() -> None:
    every, _ = _graph()
    upward = sorted(f"{m} (layer {_layer(m)}) imports {t} (layer {_layer(t)})"
                    for m, targets in every.items() for t in targets if _layer(t) > _layer(m))
    assert upward == []


@pytest.mark.parametrize(("a", "b"), SIBLINGS_APART)
def test_siblings_never_import_each_other(a: str, b: str) -> None:
    every, _ = _graph()
    crossing = sorted(f"{m} imports {t}" for m, targets in every.items() for t in targets
                      if {_top(m), _top(t)} == {a, b})
    assert crossing == []


@pytest.mark.parametrize("package", ONLY_BASE)
def test_reusable_packages_need_only_the_base_layer(package: str) -> None:
    every, _ = _graph()
    above = sorted(f"{m} imports {t}" for m, targets in every.items() if _top(m) == package
                   for t in targets if _top(t) != package and _layer(t) > 1)
    assert above == []


def _strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[set[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(component)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_circles() -> None:
    _, runtime = _graph()
    circles = [sorted(c) for c in _strongly_connected(runtime) if frozenset(c) not in ALLOWED_CIRCLES]
    assert circles == []


def test_the_allowed_circles_still_exist() -> None:
    """An allowed circle that went away is removed from the list (it must not hide a new one)."""
    _, runtime = _graph()
    present = {frozenset(c) for c in _strongly_connected(runtime)}
    assert set(ALLOWED_CIRCLES) <= present


def test_the_cycle_detector_finds_a_circle() -> None:
    assert _strongly_connected({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]


# Where a rule id may be written as a literal: by its rule in rules/, or, for the
# load and schema stages that run before any rule can, once in spec/problems.py.
RULE_ID_HOMES = ("rules/", "spec/problems.py")


def test_rule_ids_are_declared_once_in_the_rule_layer() -> None:
    import re

    outside = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        if rel.startswith(RULE_ID_HOMES):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and \
                    re.fullmatch(r"LD\d{3}", node.value):
                outside.append(f"{rel}:{node.lineno}: {node.value}")
    assert outside == []
