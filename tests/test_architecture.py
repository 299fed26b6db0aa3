"""The shape of the code, checked: which package may import which (stages from the bottom up), no import circles,
no private names imported across packages, no function over 60 lines.

Known exceptions are listed by name, and the lists must only shrink: a test fails when an exception is fixed but still
listed, as well as when a new one appears.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("pipeline", "finetune", "commands", "cli.py")
MAX_FUNCTION_LINES = 60

# package → the lookalike packages it may import (besides itself); pipeline packages from the bottom floor up
ALLOWED: dict[str, set[str]] = {
    "pipeline.core": set(),
    "pipeline.encoders": {"pipeline.core"},
    "pipeline.store": {"pipeline.core"},
    "pipeline.metrics": {"pipeline.core"},
    "pipeline.index": {"pipeline.core", "pipeline.encoders", "pipeline.store"},
    "pipeline.datasets": {"pipeline.core", "pipeline.index"},
    "pipeline.search": {"pipeline.core", "pipeline.encoders", "pipeline.store", "pipeline.index"},
}
LOWER = {"pipeline.core", "pipeline.encoders", "pipeline.store", "pipeline.metrics", "pipeline.index"}
ALLOWED["pipeline.evaluation"] = LOWER | {"pipeline.datasets", "pipeline.search"}
ALLOWED["pipeline.dedup"] = LOWER | {"pipeline.search"}
ALLOWED["pipeline.bench"] = ALLOWED["pipeline.evaluation"] | {"pipeline.evaluation"}
ALLOWED["finetune"] = LOWER | {"pipeline.datasets", "pipeline.search"}
ALLOWED["pipeline.maps"] = LOWER | {"pipeline.search"}
ALLOWED["pipeline.serve"] = LOWER | {"pipeline.search", "pipeline.dedup", "pipeline.maps"}
ALLOWED["commands"] = set(ALLOWED) | {"finetune"}
ALLOWED["cli"] = {"commands"}

KNOWN_LAYER_BREAKS: set[tuple[str, str]] = set()
KNOWN_CIRCLES: set[frozenset[str]] = set()
KNOWN_LONG_FUNCTIONS: set[str] = set()


def _modules() -> Iterator[tuple[str, Path]]:
    for source in SOURCES:
        path = ROOT / source
        files = [path] if path.is_file() else sorted(path.rglob("*.py"))
        for f in files:
            parts = f.relative_to(ROOT).with_suffix("").parts
            yield ".".join(parts[:-1] if parts[-1] == "__init__" else parts), f


MODULES = dict(_modules())


def _package(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "pipeline" and len(parts) > 1 else parts[0]


OWN = ("pipeline", "finetune", "commands", "cli")


def _imports(module: str, path: Path) -> Iterator[tuple[str, list[str]]]:
    """(imported lookalike module, names taken from it) for every import in the file, lazy ones included."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from ((alias.name, []) for alias in node.names if alias.name.split(".")[0] in OWN)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] in OWN:
            names = [alias.name for alias in node.names]
            submodules = [f"{node.module}.{n}" for n in names if f"{node.module}.{n}" in MODULES]
            yield from ((s, []) for s in submodules) if submodules else [(str(node.module), names)]


def _graph() -> dict[str, set[str]]:
    return {m: {t for t, _ in _imports(m, p) if t in MODULES and t != m} for m, p in MODULES.items()}


def test_packages_import_only_the_stages_below_them() -> None:
    breaks = set()
    for module, path in MODULES.items():
        package = _package(module)
        for target, _ in _imports(module, path):
            other = _package(target)
            if other != package and other != "pipeline" and other not in ALLOWED.get(package, set()):
                breaks.add((module, target))
    assert breaks - KNOWN_LAYER_BREAKS == set(), "new imports across the stage order"
    assert KNOWN_LAYER_BREAKS - breaks == set(), "fixed: take these off KNOWN_LAYER_BREAKS"


def _circles(graph: dict[str, set[str]]) -> set[frozenset[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: set[frozenset[str]] = set()

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.add(frozenset(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_no_import_circles() -> None:
    circles = _circles(_graph())
    assert circles - KNOWN_CIRCLES == set(), "new import circles"
    assert KNOWN_CIRCLES - circles == set(), "fixed: take these off KNOWN_CIRCLES"


def test_no_private_names_imported_across_packages() -> None:
    """Benchmark scripts included: they use public APIs only."""
    scripts = {f"benchmarks.{f.stem}": f for f in sorted((ROOT / "benchmarks").glob("*.py"))}
    private = {
        f"{module} <- {target}.{name}"
        for module, path in {**MODULES, **scripts}.items()
        for target, names in _imports(module, path)
        for name in names
        if name.startswith("_") and _package(target) != _package(module)
    }
    assert private == set()


def _long_functions() -> set[str]:
    found = set()
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                body_start = node.body[0].lineno if node.body else node.lineno
                first = node.body[1].lineno if isinstance(node.body[0], ast.Expr) and len(node.body) > 1 else body_start
                if (node.end_lineno or node.lineno) - first + 1 > MAX_FUNCTION_LINES:
                    found.add(f"{module}.{node.name}")
    return found


@pytest.mark.parametrize("check", ["new", "fixed"])
def test_no_function_over_60_lines(check: str) -> None:
    """Counted from the first statement after the docstring to the end: signatures and docstrings are free."""
    long = _long_functions()
    if check == "new":
        assert long - KNOWN_LONG_FUNCTIONS == set()
    else:
        assert KNOWN_LONG_FUNCTIONS - long == set(), "fixed: take these off KNOWN_LONG_FUNCTIONS"
