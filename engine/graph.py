"""The two relations between executions, as data and as pictures.

*Parent/child* is a tree (who created whom, ``executions.parent_id``): ``execution_tree``
gives the whole tree an execution belongs to. *Dependencies* are a directed graph
(who waited for whom, the ``dependencies`` table): ``dependency_graph`` gives what an
execution waits or waited for and what waits or waited for it, one level each way by
default (as the flow documentation's dependency view shows), ``depth`` levels if asked.
Both render as text; the graph also as Graphviz DOT and as a Mermaid ``graph TD``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TypeVar

import msgspec

from engine.api import Engine
from store.model import ExecutionRow, Status

N = TypeVar("N")


class TreeNode(msgspec.Struct):
    """One execution in a parent/child tree; ``selected`` marks the one asked about."""

    id: str
    flow: str
    name: str | None
    type: str
    status: str
    message: str | None
    created_at: float
    ended_at: float | None
    duration: float | None
    selected: bool
    children: list[TreeNode]


class DepNode(msgspec.Struct):
    id: str
    flow: str
    name: str | None
    status: str


class DepEdge(msgspec.Struct):
    """``waiter`` waits (or waited) for ``target`` since ``since``."""

    waiter: str
    target: str
    since: float


class DepGraph(msgspec.Struct):
    center: str
    depth: int
    nodes: dict[str, DepNode]
    edges: list[DepEdge]


# -- the tree ------------------------------------------------------------------------


def execution_tree(engine: Engine, execution_id: str) -> TreeNode:
    """The parent/child tree from the root of ``execution_id``'s tree, children in the
    order they were created."""
    selected = engine.get(execution_id)
    root = engine.store.get_execution(selected.root_id) or selected

    def node(row: ExecutionRow) -> TreeNode:
        kids = sorted(engine.store.children(row.id), key=lambda r: (r.created_at, r.id))
        duration = None if row.ended_at is None else round(row.ended_at - row.created_at, 6)
        return TreeNode(row.id, row.flow, row.name, row.type, row.status, row.message, row.created_at,
                        row.ended_at, duration, row.id == selected.id, [node(k) for k in kids])

    return node(root)


def tree_lines(root: TreeNode, now: float | None = None) -> list[str]:
    """``root`` drawn as an indented tree: id, flow (name), status, duration; ``◀`` marks
    the selected execution."""
    now = time.time() if now is None else now

    def label(n: TreeNode) -> str:
        name = f" ({n.name})" if n.name else ""
        took = format_duration(n.duration) if n.duration is not None else f"{format_duration(now - n.created_at)}…"
        mark = "  ◀" if n.selected else ""
        return f"{n.id}  {n.flow}{name}  {n.status}  {took}{mark}"

    return _draw(root, label, lambda n: n.children)


def format_duration(seconds: float) -> str:
    """``0.012s``, ``4.20s``, ``3m07s``, ``2h05m``."""
    seconds = max(seconds, 0.0)
    if seconds < 1:
        return f"{seconds:.3f}s"
    if seconds < 60:
        return f"{seconds:.2f}s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"
    return f"{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m"


def _draw(root: N, label: Callable[[N], str], children: Callable[[N], Sequence[N]]) -> list[str]:
    """``root`` and its descendants, one line each, with box-drawing branches."""
    lines = [label(root)]

    def walk(node: N, prefix: str) -> None:
        kids = children(node)
        for i, kid in enumerate(kids):
            last = i == len(kids) - 1
            lines.append(f"{prefix}{'└── ' if last else '├── '}{label(kid)}")
            walk(kid, prefix + ("    " if last else "│   "))

    walk(root, "")
    return lines


# -- the dependency graph -------------------------------------------------------------


def dependency_graph(engine: Engine, execution_id: str, depth: int = 1) -> DepGraph:
    """What ``execution_id`` waits/waited for and what waits/waited for it, following
    each direction ``depth`` levels."""
    center = engine.get(execution_id)
    edges: dict[tuple[str, str], DepEdge] = {}
    for downward in (True, False):
        seen, level = {center.id}, [center.id]
        for _ in range(depth):
            found = []
            for eid in level:
                waits_for, waited_by = engine.store.dependencies(eid)
                for other, since in waits_for if downward else waited_by:
                    waiter, target = (eid, other) if downward else (other, eid)
                    edges.setdefault((waiter, target), DepEdge(waiter, target, since))
                    if other not in seen:
                        seen.add(other)
                        found.append(other)
            level = found
    rows = {center.id: center}
    for eid in {i for e in edges.values() for i in (e.waiter, e.target)} - {center.id}:
        rows[eid] = engine.store.get_execution(eid)  # type: ignore[assignment]
    created = {eid: (row.created_at if row else 0.0, eid) for eid, row in rows.items()}
    nodes = {
        eid: DepNode(eid, row.flow, row.name, row.status) if row else DepNode(eid, "?", None, "UNKNOWN")
        for eid, row in sorted(rows.items(), key=lambda item: (item[0] != center.id, created[item[0]]))
    }
    ordered = sorted(edges.values(), key=lambda e: (e.since, created[e.waiter], created[e.target]))
    return DepGraph(center.id, depth, nodes, ordered)


def _node_text(n: DepNode) -> str:
    return f"{n.id}  {n.flow}{f' ({n.name})' if n.name else ''}  {n.status}"


_Item = tuple[str, tuple[str, ...]]  # an execution id and the path from the center to it


def deps_lines(graph: DepGraph) -> list[str]:
    """The graph as text: the execution, then what it waits for and what waits for it,
    each as a tree ``depth`` levels deep."""
    lines = [_node_text(graph.nodes[graph.center])]
    root: _Item = (graph.center, (graph.center,))
    for title, downward in (("waits for", True), ("waited for by", False)):
        def kids(item: _Item, downward: bool = downward) -> list[_Item]:
            eid, path = item
            if len(path) > graph.depth or eid in path[:-1]:
                return []  # beyond the depth asked for, or a cycle
            ends = [e.target if downward else e.waiter for e in graph.edges if (e.waiter if downward else e.target) == eid]
            return [(o, path + (o,)) for o in ends]

        def label(item: _Item, title: str = title) -> str:
            return f"{title}:" if item is root else _node_text(graph.nodes[item[0]])

        lines.extend(_draw(root, label, kids) if kids(root) else [f"{title}: nothing"])
    return lines


_FILL: dict[str, str] = {Status.ENDED_SUCCESS: "#d4edda", Status.ENDED_ERROR: "#f8d7da", Status.ENDED_CANCELLED: "#fff3cd", Status.HALTED: "#e2d4f0",
         Status.WAITING: "#d1ecf1", Status.RUNNING: "#cce5ff", Status.PAUSED: "#e2e3e5", Status.QUEUED: "#ffffff"}


def _dot_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot(graph: DepGraph) -> str:
    """Graphviz DOT (``dot -Tsvg``): boxes labelled flow, short id, status; edges
    "waits for" from waiter to target; the execution asked about drawn bold."""
    out = ["digraph dependencies {", "  rankdir=TB;",
           '  node [shape=box, style="rounded,filled", fontname="Helvetica", fillcolor="#ffffff"];',
           '  edge [fontname="Helvetica", fontsize=10];']
    for n in graph.nodes.values():
        label = _dot_string(f"{n.flow}\n{n.id[:8]}\n{n.status}").replace("\n", "\\n")
        bold = ", penwidth=3" if n.id == graph.center else ""
        out.append(f"  {_dot_string(n.id)} [label={label}, fillcolor=\"{_FILL.get(n.status, '#ffffff')}\"{bold}];")
    for e in graph.edges:
        out.append(f'  {_dot_string(e.waiter)} -> {_dot_string(e.target)} [label="waits for"];')
    out.append("}")
    return "\n".join(out) + "\n"


def _mermaid_text(text: str) -> str:
    return text.replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")


def to_mermaid(graph: DepGraph) -> str:
    """A Mermaid ``graph TD`` block with the same nodes and edges as ``to_dot``."""
    ids = {eid: f"x{i}" for i, eid in enumerate(graph.nodes)}
    out = ["graph TD"]
    for eid, n in graph.nodes.items():
        out.append(f'  {ids[eid]}["{_mermaid_text(n.flow)}<br/>{eid[:8]}<br/>{n.status}"]')
    for e in graph.edges:
        out.append(f"  {ids[e.waiter]} -->|waits for| {ids[e.target]}")
    for eid, n in graph.nodes.items():
        fill = _FILL.get(n.status, "#ffffff")
        width = ",stroke-width:3px" if eid == graph.center else ""
        out.append(f"  style {ids[eid]} fill:{fill}{width}")
    return "\n".join(out) + "\n"
