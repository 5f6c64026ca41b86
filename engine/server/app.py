"""The app factory: the routes of every part of ``engine serve``, JSON errors, and an
access log that never prints a key or a token."""

from __future__ import annotations

import logging
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from engine.api import Engine
from engine.connectors.masking import mask_secrets
from engine.server import api, pages, schedules, sse, webhooks
from engine.server.auth import Sessions, login
from engine.server.http import ApiError, error_response, json_response
from engine.server.metrics import Metrics
from engine.server.metrics import routes as metrics_routes
from engine.server.openapi import document

access_log = logging.getLogger("engine.server.access")
log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class AccessLog:
    """Logs one line per request, with secrets in the query (``?key=``, ``?token=``) masked."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 0

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            query = scope.get("query_string", b"").decode("latin-1")
            target = scope["path"] + (f"?{mask_secrets(query)}" if query else "")
            client = scope.get("client") or ("-", 0)
            access_log.info('%s:%s "%s %s" %s', client[0], client[1], scope["method"], target, status or "-")


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, str(exc))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return error_response(404, f"no route {request.url.path}; GET /api/openapi.json lists the routes")
    if exc.status_code == 405:
        return error_response(405, f"{request.method} is not allowed on {request.url.path}; GET /api/openapi.json "
                                   "lists the methods of each route")
    return error_response(exc.status_code, str(exc.detail))


async def _internal_error(request: Request, exc: Exception) -> Response:
    log.error("internal error on %s %s: %r", request.method, request.url.path, exc, exc_info=exc)
    return error_response(500, f"internal error in engine serve ({type(exc).__name__}); the server log has the "
                               "traceback: please report it")


async def _openapi(request: Request) -> Response:
    return json_response(request.app.state.openapi)


def create_app(
    engine: Engine, sessions: Sessions, stopping: threading.Event | None = None, metrics: Metrics | None = None,
) -> Starlette:
    """The ASGI app of ``engine serve`` on ``engine``'s database.

    Args:
        engine: the database the routes read and write.
        sessions: login links and browser sessions (in memory).
        stopping: set when the server shuts down: waits and event streams end early.
        metrics: what ``/metrics`` shows (the embedded worker's observer); default: the store's gauges only.
    """
    routes: list[BaseRoute] = [
        Route("/login", login, methods=["GET"]),
        Route("/api/openapi.json", _openapi, methods=["GET"]),
        *api.routes(),
        *sse.routes(),
        *webhooks.routes(),
        *pages.routes(),
        *schedules.routes(),
        *metrics_routes(),
    ]
    app = Starlette(routes=routes, middleware=[Middleware(AccessLog)], exception_handlers={
        ApiError: _api_error, HTTPException: _http_error, Exception: _internal_error,
    })
    app.state.engine = engine
    app.state.sessions = sessions
    app.state.stopping = stopping or threading.Event()
    app.state.openapi = document()
    app.state.metrics = metrics or Metrics(engine.store)
    return app
