"""``GET /api/schedules``: the schedules, as ``engine schedules ls --json`` lists them."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from engine import schedules
from engine.api import Engine
from engine.server.api import call
from engine.server.auth import guarded
from engine.server.http import json_response


async def list_schedules(request: Request) -> Response:
    engine: Engine = request.app.state.engine
    return json_response(await call(schedules.listing, engine.store))


def routes() -> list[Route]:
    return [Route("/api/schedules", guarded(list_schedules), methods=["GET"])]
