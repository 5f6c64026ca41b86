"""The monitor's pages of what starts flows without a person: schedules (cron, time
zone, next and last slot, paused, the execution the last slot started) and webhooks
(flow and URL; a webhook's key is shown once by ``engine webhooks create``, never here)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from engine import schedules
from engine.api import Engine
from engine.server.api import call
from engine.server.keys import list_webhooks
from engine.server.pagekit import page, render


@page
async def schedules_page(request: Request) -> Response:
    engine: Engine = request.app.state.engine
    rows = await call(schedules.listing, engine.store)
    return render(request, "schedules.html", schedules=rows)


@page
async def webhooks_page(request: Request) -> Response:
    engine: Engine = request.app.state.engine
    rows = await call(list_webhooks, engine)
    base = str(request.base_url).rstrip("/")
    return render(request, "webhooks.html", webhooks=rows, base=base)
