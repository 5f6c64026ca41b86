"""The script visualisation: what a flow's handler calls, read from its source with
``ast`` (never run). Each call of the flow API a reader cares about becomes a node, in
the order the handler makes them: child flows (``this.flow``, ``system.flow``),
connectors (``this.connect``), waits (``wait_for``, ``dependency``, ``sleep``),
messages to people (``this.message``) and steps (``this.step``). Helper functions of
the same file that the handler calls are read as if inlined, each once per call path.
Rendered as text, Graphviz DOT or Mermaid."""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

from engine.errors import EngineError

#: method -> the kind of node it draws (``this.*``; ``system.flow`` is a child too).
_KINDS = {"flow": "flow", "connect": "connector", "wait_for": "wait", "dependency": "wait", "sleep": "wait",
          "message": "message", "step": "step"}
_SHAPES = {"flow": "box", "connector": "cylinder", "wait": "hexagon", "message": "note", "step": "component"}


@dataclass(frozen=True)
class CallNode:
    """One call of the handler: its kind, what it names (flow, connector, subject...),
    details (``wait=False``), and its line in the flow's source."""

    kind: str
    label: str
    line: int
    detail: str = ""


@dataclass
class ScriptGraph:
    """A flow and its calls in call order (the edges run from each call to the next)."""

    flow: str
    calls: list[CallNode] = field(default_factory=list)


def _text(node: ast.expr | None) -> str:
    """A short readable form of an argument: a string constant as it is, else its source."""
    if node is None:
        return ""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return ast.unparse(node)


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _is_false(node: ast.expr | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is False


def _describe(method: str, call: ast.Call, receiver: str) -> CallNode | None:
    """The node of ``receiver.method(...)``, or None for calls that are not drawn."""
    kind = _KINDS.get(method)
    first = call.args[0] if call.args else None
    if kind is None or (receiver == "system" and method != "flow"):
        return None
    if method == "flow":
        label = _text(first or _keyword(call, "flow"))
        flags = [f"{k}=False" for k in ("run", "wait") if _is_false(_keyword(call, k))]
        detail = "handle" if receiver == "system" else ", ".join(flags)
    elif method == "connect":
        named = first or _keyword(call, "connector")
        label = _text(named) if named is not None else f"connector_type={_text(_keyword(call, 'connector_type'))}"
        detail = ", ".join(f"{k}=False" for k in ("run", "wait") if _is_false(_keyword(call, k)))
    elif method == "message":
        label = _text(first or _keyword(call, "subject"))
        detail = "asks" if call.args[2:] or _keyword(call, "body") or _keyword(call, "request") else ""
    elif method == "step":
        label = _text(first or _keyword(call, "fn"))
        detail = ""
    else:
        label = method
        detail = ", ".join(_text(a) for a in call.args)
    return CallNode(kind, label, call.lineno, detail)


class _Reader(ast.NodeVisitor):
    """Walks a function body in evaluation order, collecting calls on its receivers."""

    def __init__(self, helpers: dict[str, ast.FunctionDef], calls: list[CallNode]) -> None:
        self.helpers = helpers
        self.calls = calls
        self.receivers: dict[str, str] = {}
        self.path: tuple[str, ...] = ()

    def read(self, fn: ast.FunctionDef, receivers: dict[str, str], path: tuple[str, ...]) -> None:
        saved = self.receivers, self.path
        self.receivers, self.path = receivers, (*path, fn.name)
        for statement in fn.body:
            self.visit(statement)
        self.receivers, self.path = saved

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        """Nested definitions are read where they are called, not where they are defined."""

    def visit_Call(self, node: ast.Call) -> None:
        self.generic_visit(node)  # arguments are evaluated before the call
        fn = node.func
        if isinstance(fn, ast.Attribute) and isinstance(fn.value, ast.Name) and fn.value.id in self.receivers:
            found = _describe(fn.attr, node, self.receivers[fn.value.id])
            if found is not None:
                self.calls.append(found)
        elif isinstance(fn, ast.Name) and fn.id in self.helpers and fn.id not in self.path:
            helper = self.helpers[fn.id]
            params = [a.arg for a in helper.args.args]
            passed = {params[i]: self.receivers[a.id] for i, a in enumerate(node.args[:len(params)])
                      if isinstance(a, ast.Name) and a.id in self.receivers}
            passed.update({k.arg: self.receivers[k.value.id] for k in node.keywords
                           if k.arg and isinstance(k.value, ast.Name) and k.value.id in self.receivers})
            self.read(helper, passed, self.path)


def script_graph(flow: str, source: str) -> ScriptGraph:
    """The calls ``flow``'s handler makes, read from ``source``.

    Raises:
        EngineError: the source does not parse, or has no ``handler`` function.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise EngineError(f"flow {flow!r} cannot be drawn: line {exc.lineno}: {exc.msg}; "
                                "fix its source and sync it again") from None
    helpers = {n.name: n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
    handler = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "handler"), None)
    if handler is None:
        raise EngineError(f"flow {flow!r} cannot be drawn: its source defines no `def handler(system, this, inputs)`")
    params = [a.arg for a in handler.args.args]
    receivers = {"system": "system", "this": "this"}
    receivers.update(dict(zip(params[:2], ("system", "this"))))
    graph = ScriptGraph(flow)
    _Reader(helpers, graph.calls).read(handler, receivers, ())
    return graph


def _caption(c: CallNode) -> str:
    return f"{c.kind} {c.label}" + (f" ({c.detail})" if c.detail else "")


def to_text(graph: ScriptGraph) -> list[str]:
    """One line per call: ``line N: kind label (details)``, under the flow's name."""
    lines = [f"flow {graph.flow}"]
    lines += [f"  line {c.line}: {_caption(c)}" for c in graph.calls] or ["  (no flow, connector, wait, message or step calls)"]
    return lines


def _dot(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(graph: ScriptGraph) -> str:
    """Graphviz DOT: the flow, then each call (shape by kind, labelled with its line), joined in call order."""
    out = ["digraph script {", "  rankdir=TB;", '  node [fontname="Helvetica", style=filled, fillcolor="#ffffff"];',
           f'  n0 [label={_dot(graph.flow)}, shape=box, style="rounded,filled,bold", fillcolor="#cce5ff"];']
    for i, c in enumerate(graph.calls, 1):
        out.append(f"  n{i} [label={_dot(_caption(c) + chr(10) + f'line {c.line}')}, shape={_SHAPES[c.kind]}];")
    out += [f"  n{i} -> n{i + 1};" for i in range(len(graph.calls))]
    return "\n".join([*out, "}"]) + "\n"


def _mermaid(text: str) -> str:
    return text.replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")


def to_mermaid(graph: ScriptGraph) -> str:
    """A Mermaid ``graph TD`` block with the same nodes and edges as ``to_dot``."""
    out = ["graph TD", f'  n0(["{_mermaid(graph.flow)}"])']
    out += [f'  n{i}["{_mermaid(_caption(c))}<br/>line {c.line}"]' for i, c in enumerate(graph.calls, 1)]
    out += [f"  n{i} --> n{i + 1}" for i in range(len(graph.calls))]
    return "\n".join(out) + "\n"
