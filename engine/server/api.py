"""The JSON API under ``/api``: executions (start, list, show, history, control),
messages and flows. Each route calls the ``engine`` function the CLI command of the
same name calls, in a worker thread, and answers what its ``--json`` prints."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import anyio.to_thread
import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from engine import control, details, views
from engine.api import Engine
from engine.errors import EngineError
from engine.history_file import event_json
from engine.server.auth import guarded
from engine.server.http import (
    ApiError,
    check_wait,
    engine_error,
    json_response,
    query_int,
    read_json,
)
from store.model import STATUSES, ExecutionRow, Status
from store.search import Search

T = TypeVar("T")


class StartRequest(msgspec.Struct, forbid_unknown_fields=True):
    """``POST /api/executions``: start ``flow``; with ``wait``, answer once it ends (up to that many seconds)."""

    flow: str
    inputs: dict[str, Any] = {}
    name: str | None = None
    wait: float | None = None


class Started(msgspec.Struct):
    """An execution that was started (or has not ended within ``wait``)."""

    id: str
    status: str


class ControlRequest(msgspec.Struct, forbid_unknown_fields=True):
    """``resume``/``retry``: the flow version to pin to (a hash or prefix, or ``current``)."""

    flow_version: str | None = None


class Answered(msgspec.Struct):
    """``POST /api/messages/{id}/respond``: the answer as checked against the message's form."""

    id: str
    answer: dict[str, Any]


async def call(fn: Callable[..., T], *args: Any, status: int = 400) -> T:
    """``fn(*args)`` in a worker thread; an ``EngineError`` becomes the API error (404, or ``status``)."""
    try:
        return await anyio.to_thread.run_sync(functools.partial(fn, *args))
    except EngineError as exc:
        raise engine_error(exc, status) from None


async def wait_for_end(request: Request, execution_id: str, seconds: float) -> ExecutionRow:
    """The execution once it has ended (or halted), or as it is after ``seconds`` or when the server stops."""
    engine: Engine = request.app.state.engine
    deadline = time.monotonic() + seconds
    pause = 0.01
    while True:
        row = await call(engine.get, execution_id)
        if row.ended or row.status == Status.HALTED or time.monotonic() >= deadline or request.app.state.stopping.is_set():
            return row
        await anyio.sleep(min(pause, max(deadline - time.monotonic(), 0)))
        pause = min(pause * 2, 0.2)


def ended_or_started(row: ExecutionRow) -> Response:
    """200 with the ended execution, else 202 with its id and status."""
    if row.ended or row.status == Status.HALTED:
        return json_response(views.execution_dict(row))
    return json_response(Started(row.id, row.status), 202)


# -- executions ----------------------------------------------------------------------


async def start_execution(request: Request) -> Response:
    body = await read_json(request, StartRequest)
    check_wait(body.wait)
    engine: Engine = request.app.state.engine
    execution_id = await call(lambda: engine.start(body.flow, body.inputs, name=body.name), status=422)
    if body.wait is None:
        return json_response(Started(execution_id, Status.QUEUED), 202)
    return ended_or_started(await wait_for_end(request, execution_id, body.wait))


async def list_executions(request: Request) -> Response:
    q = request.query_params
    status = q.get("status")
    if status is not None and status.upper() not in STATUSES:
        raise ApiError(422, f"?status= must be one of {', '.join(STATUSES)}, not {status!r}")
    try:
        since = views.parse_since(q["since"]) if "since" in q else None
    except ValueError as exc:
        raise ApiError(422, f"?since=: {exc}") from None
    limit = query_int(request, "limit", 50)
    engine: Engine = request.app.state.engine
    if q.get("q", "").strip():
        if any(k in q for k in ("project", "parent", "since")):
            raise ApiError(422, "?q= (full-text search) combines with ?status=, ?flow= and ?limit= only, not with "
                                "?project=, ?parent= or ?since=; search without them")
        found = await call(Search(engine.store).executions, q["q"], status.upper() if status else None,
                           q.get("flow"), limit or None)
        return json_response([views.execution_dict(r) for r in found])
    rows = await call(lambda: engine.store.list_executions(
        status=status.upper() if status else None, flow=q.get("flow"), project=q.get("project"),
        parent_id=q.get("parent"), since=since, limit=limit or None))
    return json_response([views.execution_dict(r) for r in rows])


async def show_execution(request: Request) -> Response:
    found = await call(details.details, request.app.state.engine, request.path_params["id"])
    return json_response(views.details_dict(found))


async def execution_history(request: Request) -> Response:
    events = await call(request.app.state.engine.history, request.path_params["id"])
    return json_response([event_json(e) for e in events])


def _control(action: str, operation: Callable[..., control.ControlResult], versioned: bool) -> Route:
    async def endpoint(request: Request) -> Response:
        args: list[Any] = [request.app.state.engine, request.path_params["id"]]
        if versioned:
            args.append((await read_json(request, ControlRequest, empty_ok=True)).flow_version)
        return json_response(await call(operation, *args, status=409))

    endpoint.__name__ = f"{action}_execution"
    return Route(f"/api/executions/{{id}}/{action}", guarded(endpoint), methods=["POST"])


# -- messages and flows ---------------------------------------------------------------


async def list_messages(request: Request) -> Response:
    q = request.query_params
    everything = q.get("all", "").lower() in ("1", "true", "yes")
    engine: Engine = request.app.state.engine
    rows = await call(lambda: engine.store.list_messages(status=None if everything else "waiting",
                                                         execution_id=q.get("execution")))
    return json_response(rows)


async def respond_message(request: Request) -> Response:
    answer = await read_json(request, dict[str, Any])
    engine: Engine = request.app.state.engine
    message_id = request.path_params["id"]
    found = await call(engine.store.get_message, message_id)
    if found is not None and found.status != "waiting":
        raise ApiError(409, f"message {found.id} ({found.subject!r}) is {found.status}, not waiting for an answer")
    checked = await call(engine.respond, message_id, answer, status=422)
    return json_response(Answered(found.id if found else message_id, checked))


async def list_flows(request: Request) -> Response:
    flows = await call(request.app.state.engine.store.list_flows)
    return json_response([{"name": f.name, "project": f.project, "version": f.version, "path": f.path} for f in flows])


async def show_flow(request: Request) -> Response:
    engine: Engine = request.app.state.engine
    name = request.path_params["name"]
    current = await call(engine.store.get_flow, name)
    if current is None:
        raise ApiError(404, f"flow {name!r} is not registered; GET /api/flows lists the flows")
    versions = await call(engine.store.flow_versions, name)
    return json_response({
        "name": current.name, "project": current.project, "version": current.version, "path": current.path,
        "source": current.source,
        "versions": [{"version": v.version, "path": v.path, "created_at": v.created_at,
                      "current": v.version == current.version} for v in versions],
    })


def routes() -> list[Route]:
    """The API's routes (the event stream is in ``engine.server.sse``)."""
    return [
        Route("/api/executions", guarded(start_execution), methods=["POST"]),
        Route("/api/executions", guarded(list_executions), methods=["GET"]),
        Route("/api/executions/{id}", guarded(show_execution), methods=["GET"]),
        Route("/api/executions/{id}/history", guarded(execution_history), methods=["GET"]),
        _control("cancel", control.cancel, versioned=False),
        _control("pause", control.pause, versioned=False),
        _control("resume", control.resume, versioned=True),
        _control("retry", control.retry, versioned=True),
        Route("/api/messages", guarded(list_messages), methods=["GET"]),
        Route("/api/messages/{id}/respond", guarded(respond_message), methods=["POST"]),
        Route("/api/flows", guarded(list_flows), methods=["GET"]),
        Route("/api/flows/{name}", guarded(show_flow), methods=["GET"]),
    ]
