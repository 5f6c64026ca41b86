"""The monitor's pages that act: messages answered in their forms, and flows (versions,
source) started from a form. Each post carries the session's CSRF token in a hidden
field, and goes through the same ``engine`` function the JSON API calls."""

from __future__ import annotations

import json
import shutil
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from engine import script_graph
from engine.api import Engine
from engine.errors import EngineError, NotFoundError
from engine.server.api import call
from engine.server.http import ApiError
from engine.server.monitor import draw_svg
from engine.server.pagekit import HEADERS, page, posted_form, render
from store.flow_origins import FlowOrigins


@page
async def messages(request: Request) -> Response:
    engine: Engine = request.app.state.engine
    rows = await call(engine.store.list_messages)
    waiting = [m for m in rows if m.status == "waiting"]
    answered = [m for m in rows if m.status != "waiting"][-50:]
    return render(request, "messages.html", waiting=waiting, answered=answered)


@page
async def answer_message(request: Request) -> Response:
    """Answer a message with its form's fields (blank fields count as not given)."""
    fields = await posted_form(request)
    engine: Engine = request.app.state.engine
    message_id = request.path_params["id"]
    found = await call(engine.store.get_message, message_id)
    if found is None:
        raise ApiError(404, f"no message {message_id!r}; the messages page lists the open ones")
    answer = {k: v for k, v in fields.items() if v.strip() != ""}
    try:
        await call(engine.respond, found.id, answer, status=422)
    except ApiError as exc:
        return render(request, "messages.html", exc.status, waiting=[found] if found.status == "waiting" else [],
                      answered=[], error=str(exc))
    return RedirectResponse(f"/executions/{found.execution_id}", 303)


def _flow(engine: Engine, name: str) -> dict[str, Any]:
    current = engine.store.get_flow(name)
    if current is None:
        raise NotFoundError(f"flow {name!r} is not registered; the flows page lists them (`engine flows sync DIR` adds more)")
    versions = engine.store.flow_versions(name)
    try:
        calls = script_graph.to_text(script_graph.script_graph(current.name, current.source))
    except EngineError as exc:
        calls = [str(exc)]
    return {"flow": current, "versions": versions, "commits": FlowOrigins(engine.store).commits(),
            "recent": engine.store.list_executions(flow=name, limit=20),
            "calls": calls, "can_draw": shutil.which("dot") is not None}


@page
async def flows(request: Request) -> Response:
    rows = await call(request.app.state.engine.store.list_flows)
    return render(request, "flows.html", flows=rows)


@page
async def flow(request: Request) -> Response:
    context = await call(_flow, request.app.state.engine, request.path_params["name"])
    return render(request, "flow.html", inputs="{}", name="", **context)


def _flow_svg(engine: Engine, name: str) -> bytes:
    current = engine.store.get_flow(name)
    if current is None:
        raise NotFoundError(f"flow {name!r} is not registered; the flows page lists them")
    return draw_svg(script_graph.to_dot(script_graph.script_graph(current.name, current.source)), f"flow {name}")


@page
async def flow_svg(request: Request) -> Response:
    """The script visualisation of a flow's current version as SVG, for an ``<img>``."""
    svg = await call(_flow_svg, request.app.state.engine, request.path_params["name"], status=422)
    return Response(svg, media_type="image/svg+xml", headers=HEADERS)


@page
async def start_flow(request: Request) -> Response:
    """Start the flow with the form's inputs (a JSON object) and go to its execution."""
    fields = await posted_form(request)
    engine: Engine = request.app.state.engine
    name = request.path_params["name"]
    context = await call(_flow, engine, name)
    text, label = fields.get("inputs", "").strip() or "{}", fields.get("name", "").strip()
    try:
        inputs = json.loads(text)
    except ValueError as exc:
        return render(request, "flow.html", 422, inputs=text, name=label, error=f"flow {name} was not started: the "
                      f"inputs are not valid JSON ({exc}); give an object like {{\"key\": \"value\"}}", **context)
    if not isinstance(inputs, dict):
        return render(request, "flow.html", 422, inputs=text, name=label, error=f"flow {name} was not started: the "
                      f"inputs must be a JSON object like {{\"key\": \"value\"}}, not {type(inputs).__name__}", **context)
    try:
        execution_id = await call(lambda: engine.start(name, inputs, name=label or None), status=422)
    except ApiError as exc:
        return render(request, "flow.html", exc.status, inputs=text, name=label,
                      error=f"flow {name} was not started: {exc}", **context)
    return RedirectResponse(f"/executions/{execution_id}", 303)
