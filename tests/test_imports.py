"""The import graph of auditor/ and probes/: no cycle anywhere, and the audit core without rich or typer.

The graph is read from the source with `ast`, not by importing: every `import` and `from ... import`,
at the top of a module AND inside functions (a local import that hides a cycle is still a cycle: it only
moves the failure to the first call), relative imports resolved. Imports under `if TYPE_CHECKING:` count
too: they do not run, but two modules that need each other's types are one design split in two (and one
change away from a cycle that does run).

An edge goes to the module named: `from auditor.report import csvformat` is an edge to
auditor.report.csvformat, `from auditor.report import render_html` one to the package auditor.report. The
parent packages that Python imports on the way (auditor, auditor.report) get no edge of their own: a
package's __init__ importing its submodules would otherwise make every package a cycle.

The cycle test is one case per package area (auditor's top-level modules, each subpackage, probes), so a
cycle names the area it is in and the other areas still pass.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("auditor", "probes")

# What an audit imports: none of these may load rich or typer (only the CLI and the terminal formats use
# them). Adjust the list as the core's modules move.
AUDIT_CORE = ["auditor.engine", "auditor.audit", "auditor.report.csvformat"]
TERMINAL_ONLY = ("rich", "typer")


def module_name(path: Path, root: Path = REPO) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_modules() -> dict[str, Path]:
    """Every module of the packages, by dotted name."""
    return {module_name(p): p for pkg in PACKAGES for p in sorted((REPO / pkg).rglob("*.py"))}


def _imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement in the tree, at any depth."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node


def _package_of(module: str, path: Path) -> str:
    """The package a relative import in `module` starts from."""
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def imported_modules(module: str, path: Path, known: set[str]) -> set[str]:
    """The modules of `known` that `module` imports (itself left out)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in _imports(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in known)
            continue
        if node.level:
            base = _package_of(module, path)
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            target = f"{base}.{node.module}" if node.module else base
        else:
            target = node.module or ""
        for alias in node.names:
            if f"{target}.{alias.name}" in known:  # `from package import submodule`
                found.add(f"{target}.{alias.name}")
            elif target in known:
                found.add(target)
    found.discard(module)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = source_modules()
    known = set(modules)
    return {name: imported_modules(name, path, known) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (as a path a -> ... -> a) for every strongly connected component of more than one module
    (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
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
                components.append(component)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return [_cycle_in(graph, component) for component in components]


def _cycle_in(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """A shortest cycle through the component's first module, staying inside the component."""
    start = min(component)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for v in frontier:
            for w in sorted(graph[v] & component):
                if w == start:
                    return paths[v] + [start]
                if w not in paths:
                    paths[w] = paths[v] + [w]
                    following.append(w)
        frontier = following
    raise AssertionError(f"no cycle through {start} in {sorted(component)}")  # a component always has one


def area(module: str) -> str:
    """auditor's top-level modules are one area, each of its subpackages another, probes another."""
    parts = module.split(".")
    if parts[0] == "auditor" and len(parts) > 1 and (REPO / "auditor" / parts[1]).is_dir():
        return f"auditor.{parts[1]}"
    return parts[0]


AREAS = sorted({area(m) for m in source_modules()})


def test_the_graph_sees_every_kind_of_import(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    files = {
        "__init__.py": "",
        "a.py": "import pkg.b\n",
        "b.py": "def f():\n    from . import c\n",
        "c.py": "from .sub import d\n",
        "sub/__init__.py": "",
        "sub/d.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..a import x\n",
    }
    for name, text in files.items():
        (pkg / name).write_text(text, encoding="utf-8")
    paths = {module_name(pkg / n, tmp_path): pkg / n for n in files}
    known = set(paths)
    graph = {m: imported_modules(m, p, known) for m, p in paths.items()}
    assert graph["pkg.a"] == {"pkg.b"}
    assert graph["pkg.b"] == {"pkg.c"}  # function-level, relative, `from . import module`
    assert graph["pkg.c"] == {"pkg.sub.d"}
    assert graph["pkg.sub.d"] == {"pkg.a"}  # two levels up, for types only
    assert cycles(graph) == [["pkg.a", "pkg.b", "pkg.c", "pkg.sub.d", "pkg.a"]]


def test_the_real_graph_is_read() -> None:
    """The cycle test below passes on an empty graph: the packages' own graph has its known edges."""
    graph = import_graph()
    assert {"auditor", "auditor.report", "auditor.store", "probes"} <= set(AREAS)
    assert "auditor.errors" in graph["auditor.cli"] and "probes.base" in graph["probes.dialers"]
    assert len(graph) > 50 and sum(len(edges) for edges in graph.values()) > 150


@pytest.mark.parametrize("where", AREAS)
def test_no_import_cycle(where: str) -> None:
    found = [c for c in cycles(import_graph()) if any(area(m) == where for m in c)]
    assert not found, "import cycle: " + "; ".join(" -> ".join(c) for c in found)


@pytest.mark.parametrize("module", AUDIT_CORE)
def test_the_audit_core_loads_neither_rich_nor_typer(module: str) -> None:
    loaded = "{m.split('.')[0] for m in sys.modules}"
    probe = f"import sys, {module}; print(*sorted({loaded} & {set(TERMINAL_ONLY)!r}))"
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True)
    assert done.stdout.split() == [], f"importing {module} loads {done.stdout.strip()}"
