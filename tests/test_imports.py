"""Imports point down: no module of the app imports, even inside a function, one that imports it back."""

import ast
from pathlib import Path

from tests.support import ROOT

APP = ROOT / "queues"


def app_modules() -> dict[str, Path]:
    files = [p for p in APP.rglob("*.py") if "tests" not in p.parts and "migrations" not in p.parts]
    return {".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p for p in files}


def imported_by(module: str, path: Path, known: set[str]) -> set[str]:
    """Every app module this one imports, at the top or inside a function."""
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
            names = [f"{base}.{alias.name}" for alias in node.names] + [base]
            found |= {name for name in names if name in known}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name in known}
    return found - {module}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    found, state, stack = [], {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                found.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return found


def test_it_has_no_circle_of_imports_in_the_app():
    modules = app_modules()
    graph = {name: imported_by(name, path, set(modules)) for name, path in modules.items()}
    assert graph["queues.services"] and "queues.handovers" not in graph["queues.services"]
    assert cycles(graph) == []


def test_it_finds_a_circle_when_there_is_one():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c", "a"]]
