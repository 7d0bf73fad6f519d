"""Imports of mammo_edge, train, export and benchmarks: one way, no circles, no private reach.

Read from the source (``ast``), every import counted, including those inside functions:
an import deferred for speed is still a dependency. Code under
``if TYPE_CHECKING:`` (names for type hints, never imported at run time) and under
``if __name__ == "__main__":`` is left out: it runs only when the file is the program
(then the module is ``__main__``, not itself), as a benchmark run by ``python -m
benchmarks.X`` does.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("mammo_edge", "train", "export", "benchmarks")
#: What each package may import of the others (data flows train -> export -> mammo_edge).
ALLOWED = {
    "mammo_edge": {"mammo_edge"},
    "train": {"train", "mammo_edge"},
    "export": {"export", "train", "mammo_edge"},
    "benchmarks": set(PACKAGES),
}


def _modules() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in sorted((REPO_ROOT / package).rglob("*.py")):
            name = ".".join(path.relative_to(REPO_ROOT).with_suffix("").parts)
            modules[name.removesuffix(".__init__")] = path
    return modules


def _is_main_block(node: ast.AST) -> bool:
    """``if __name__ == "__main__":`` or ``if TYPE_CHECKING:`` (names for type hints only)."""
    test = getattr(node, "test", None)
    if not isinstance(node, ast.If):
        return False
    if isinstance(test, ast.Name) and test.id == "TYPE_CHECKING":
        return True
    return (
        isinstance(test, ast.Compare)
        and isinstance(test.left, ast.Name)
        and test.left.id == "__name__"
    )


def _imports(name: str, path: Path) -> list[tuple[str, list[str]]]:
    """``(imported module, names taken from it)`` for every import outside a main block."""
    found = []
    package_parts = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]

    def visit(node: ast.AST) -> None:
        if _is_main_block(node):
            return
        if isinstance(node, ast.Import):
            found.extend((alias.name, []) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package_parts[: len(package_parts) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.append((module, [alias.name for alias in node.names]))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges = set()
        for module, names in _imports(name, path):
            for target in [module, *(f"{module}.{item}" for item in names)]:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    edges.add(target)
        graph[name] = edges
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles = []

    def strong(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                strong(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            strong(node)
    return cycles


def test_no_import_circle_anywhere():
    assert _cycles(_graph()) == []


def test_data_flows_one_way_train_export_runtime():
    upstream = [
        f"{module} -> {target}"
        for module, targets in _graph().items()
        for target in sorted(targets)
        if target.split(".")[0] not in ALLOWED[module.split(".")[0]]
    ]
    assert upstream == []


def test_no_module_takes_a_private_name_of_another():
    modules = _modules()
    reaching = []
    for name, path in modules.items():
        relative = path.relative_to(REPO_ROOT).as_posix()
        for module, names in _imports(name, path):
            private = [item for item in names if item.startswith("_") and item != "__version__"]
            if private and module != "__future__":
                reaching.append(f"{relative}: from {module} import {', '.join(private)}")
    assert reaching == []
