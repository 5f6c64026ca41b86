"""No import cycles among our modules (cli, engine, store, flow_api), counting every
import: at import time, inside functions and under ``if TYPE_CHECKING:``. A cycle makes
the modules in it one module in all but name: none can be read, tested or moved alone."""

from __future__ import annotations

from test_import_direction import OURS, imported_modules, module_name, modules

Graph = dict[str, dict[str, int]]


def module_graph() -> Graph:
    """module -> {module of ours it imports: line}. ``from a import b`` counts as an
    import of ``a.b`` when that is a module, else of ``a``."""
    paths = {module_name(p).removesuffix(".__init__"): p for package in OURS for p in modules(package)}
    graph: Graph = {}
    for name, path in paths.items():
        edges: dict[str, int] = {}
        for imported, line in imported_modules(path.read_text(encoding="utf-8"), module_name(path)).items():
            target = imported
            while target and target not in paths:
                target = target.rpartition(".")[0]
            if target and target != name and not name.startswith(target + "."):  # a package's own __init__ is loaded first anyway
                edges.setdefault(target, line)
        graph[name] = edges
    return graph


def find_cycle(graph: Graph) -> list[str] | None:
    """One cycle of ``graph`` as [a, b, ..., a], or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, {})):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)) is not None:
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)) is not None:
            return found
    return None


def describe(graph: Graph, cycle: list[str]) -> str:
    return " -> ".join(
        f"{a} (line {graph[a][b]})" for a, b in zip(cycle, cycle[1:])
    ) + f" -> {cycle[-1]}"


def test_no_import_cycles():
    graph = module_graph()
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + describe(graph, cycle)


def test_the_cycle_finder_names_the_cycle():
    graph: Graph = {"a": {"b": 3}, "b": {"c": 5}, "c": {"a": 7}, "d": {"a": 1}}
    cycle = find_cycle(graph)
    assert cycle == ["a", "b", "c", "a"]
    assert describe(graph, cycle) == "a (line 3) -> b (line 5) -> c (line 7) -> a"
    assert find_cycle({"a": {"b": 1}, "b": {}, "c": {"a": 2, "b": 3}}) is None


def test_from_imports_resolve_to_submodules():
    graph = module_graph()
    assert "engine.journal" in graph["engine.replay"]  # from engine.journal import Journal
    assert "store.events" in graph["engine.journal"]
