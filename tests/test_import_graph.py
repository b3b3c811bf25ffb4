"""The modules of harnessc and ophsd import one another without circles: each can be read (and changed)
knowing only the modules below it.

Every `import` and `from ... import` statement counts, wherever it is: at the top, inside a function (a
lazy import is still a dependency) and under `if TYPE_CHECKING:` (a type from a module is a dependency on
it). `importlib.import_module` is not an import statement: the built-in registry loading its library
(harnessc/builtins/registry.py), a circle by design, is not counted.
"""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO

PACKAGES = ("harnessc", "ophsd")


def project_modules() -> dict[str, Path]:
    """Module name → file, for every module of the packages (a package is its `__init__.py`)."""
    modules = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def imported_names(module: str, path: Path) -> list[str]:
    """The dotted names `module` imports: for `from X import a`, both `X.a` (a submodule, maybe) and `X`."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: `from . import x`, `from ..y import z`
                parent = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*parent, *([node.module] if node.module else [])])
            names += [f"{base}.{alias.name}" for alias in node.names] + [base]
    return names


def import_graph() -> dict[str, set[str]]:
    """Module → the project modules it imports (the longest project module each imported name starts with)."""
    modules = project_modules()
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        targets = set()
        for name in imported_names(module, path):
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name != module:
                targets.add(name)
        graph[module] = targets
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        while work:
            node, edges = work[-1]
            for target in edges:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    work.append((target, iter(sorted(graph[target]))))
                    break
                if target in stack:
                    low[node] = min(low[node], index[target])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = stack[stack.index(node) :]
                    del stack[stack.index(node) :]
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def test_the_graph_is_read_from_the_sources() -> None:
    graph = import_graph()
    assert "harnessc.lowering" in graph["harnessc.compiler"]
    assert "harnessc.ir" in graph["harnessc.lowering.stages"]  # `from harnessc import ast, ir`
    assert "harnessc.runtime.executor" in graph["ophsd.trainer"]
    assert {"harnessc.cli", "ophsd.cli"} <= set(graph)
    cycle = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert circles(cycle) == [["a", "b", "c"]]


def test_no_module_imports_itself_through_others() -> None:
    graph = import_graph()
    found = circles(graph)
    assert not found, "import circles (module → imports within the circle):\n" + "\n".join(
        "  " + ", ".join(f"{module} → {sorted(graph[module] & set(circle))}" for module in circle) for circle in found
    )
