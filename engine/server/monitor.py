"""The monitor's execution pages: the list (filters and a search box, refreshed live by
``static/monitor.js``) and one execution (status, timings, inputs and outputs, history
with source lines, log, tree, messages and its dependency graph as SVG)."""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from engine import details, graph
from engine.api import Engine
from engine.history_file import event_json
from engine.inspect import recorded
from engine.server.api import call
from engine.server.http import ApiError
from engine.server.pagekit import HEADERS, page, render
from store.events import LogRecorded
from store.model import STATUSES, ExecutionRow
from store.search import Search

#: Rows shown in the list.
LIST_LIMIT = 200


def _listing(engine: Engine, status: str, flow: str, query: str) -> list[ExecutionRow]:
    """The newest executions with this status and flow, and with every word of ``query``
    in their log, messages or errors (full-text search), or in their id, name or flow."""
    if query.strip():
        return Search(engine.store).executions(query, status or None, flow or None, LIST_LIMIT)
    return engine.store.list_executions(status=status or None, flow=flow or None, limit=LIST_LIMIT)


def _filters(request: Request) -> dict[str, str]:
    q = request.query_params
    status = q.get("status", "").upper()
    if status and status not in STATUSES:
        raise ApiError(422, f"status must be one of {', '.join(STATUSES)}, not {status!r}")
    return {"status": status, "flow": q.get("flow", "").strip(), "q": q.get("q", "").strip()}


@page
async def executions(request: Request) -> Response:
    filters: dict[str, Any] = _filters(request)
    engine: Engine = request.app.state.engine
    rows = await call(_listing, engine, filters["status"], filters["flow"], filters["q"])
    flows = await call(engine.store.list_flows)
    template = "execution_rows.html" if request.url.path.endswith("/rows") else "executions.html"
    return render(request, template, rows=rows, statuses=STATUSES, flows=[f.name for f in flows], **filters)


def _execution_context(engine: Engine, execution_id: str) -> dict[str, Any]:
    found = details.details(engine, execution_id)
    rec = recorded(engine, found.execution.id)
    lines = rec.source_lines()
    history = [{**event_json(e), "source": lines.get(e.seq, "")} for e in rec.events]
    logs = [e for e in rec.events if isinstance(e.body, LogRecorded)]
    deps = graph.dependency_graph(engine, found.execution.id)
    return {
        "d": found, "row": found.execution, "history": history, "logs": logs,
        "tree": graph.tree_lines(graph.execution_tree(engine, found.execution.id)),
        "deps_text": graph.deps_lines(deps), "can_draw": shutil.which("dot") is not None,
        "messages": engine.store.list_messages(status=None, execution_id=found.execution.id),
    }


@page
async def execution(request: Request) -> Response:
    context = await call(_execution_context, request.app.state.engine, request.path_params["id"])
    template = "execution_live.html" if request.url.path.endswith("/live") else "execution.html"
    return render(request, template, **context)


def draw_svg(source: str, what: str) -> bytes:
    """Graphviz DOT ``source`` drawn as SVG by ``dot -Tsvg`` (404 without Graphviz: pages show text then)."""
    dot = shutil.which("dot")
    if dot is None:
        raise ApiError(404, "Graphviz `dot` is not installed on the server; the page shows the graph as text")
    done = subprocess.run([dot, "-Tsvg"], input=source.encode(), capture_output=True, timeout=20, check=False)
    if done.returncode != 0:
        raise ApiError(500, f"Graphviz could not draw the graph of {what}: "
                            f"{done.stderr.decode(errors='replace').strip()}")
    return done.stdout


def _svg(engine: Engine, execution_id: str) -> bytes:
    return draw_svg(graph.to_dot(graph.dependency_graph(engine, execution_id)), execution_id)


@page
async def dependency_svg(request: Request) -> Response:
    """The dependency graph as SVG, for an ``<img>`` (an image cannot run scripts)."""
    engine: Engine = request.app.state.engine
    row = await call(engine.get, request.path_params["id"])
    svg = await call(_svg, engine, row.id)
    return Response(svg, media_type="image/svg+xml", headers=HEADERS)
