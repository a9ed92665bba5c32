"""sandbox.gitlab has no import cycle (#15): every import of a sibling module, including imports
inside functions and under TYPE_CHECKING, forms an acyclic graph."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[3] / "sandbox" / "gitlab"


def _module_name(path: Path) -> str:
    return "sandbox.gitlab" if path.name == "__init__.py" else f"sandbox.gitlab.{path.stem}"


def import_graph() -> dict[str, set[str]]:
    modules = {_module_name(path): path for path in PACKAGE.glob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                submodules = [f"{node.module}.{alias.name}" for alias in node.names]
                # `from sandbox.gitlab import pypi` imports the submodule; the package itself
                # is imported first by any submodule import anyway (not an edge of ours).
                targets = [t for t in submodules if t in modules] or [node.module]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            for target in targets:
                if target in modules and target != name:
                    graph[name].add(target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 visiting, 2 done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for child in sorted(graph[node]):
            if state.get(child) == 1:
                return [*stack[stack.index(child) :], child]
            if child not in state:
                found = visit(child)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_sandbox_gitlab_import_graph_is_acyclic() -> None:
    graph = import_graph()
    assert "sandbox.gitlab.routes" in graph and "sandbox.gitlab.app" in graph
    assert find_cycle(graph) is None
    # The principal type is a leaf; the app type imports no route module; routes are wired in
    # one place only.
    assert graph["sandbox.gitlab.principal"] == set()
    route_modules = {
        f"sandbox.gitlab.{name}"
        for name in ("pypi", "generic", "packages_api", "groups", "pipelines", "graphql_api")
    }
    assert not graph["sandbox.gitlab.app"] & route_modules
    importers = {name for name, targets in graph.items() if targets & route_modules}
    assert importers - route_modules == {"sandbox.gitlab.routes"}
