"""``GET /api/executions/{id}/events``: an execution's events as Server-Sent Events.

Each event is sent as ``id: SEQ`` and ``data: {seq, kind, at, line, data}`` (the shape of
``engine history --json``), from the first event, or after the seq of the
``Last-Event-ID`` header (or ``?after=SEQ``) when a client resumes. New events follow as
they are committed; when the execution has ended (or halted) an ``end`` event carries its
status and the stream closes.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import anyio
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from engine.api import Engine
from engine.history_file import event_json
from engine.server.api import call
from engine.server.auth import guarded
from engine.server.http import ApiError, encode
from store.model import Status

#: Seconds between looks for new events, and between keep-alive comments.
POLL = 0.1
KEEPALIVE = 15.0


async def stream_events(request: Request) -> Response:
    engine: Engine = request.app.state.engine
    row = await call(engine.get, request.path_params["id"])
    resume = request.headers.get("last-event-id") or request.query_params.get("after") or "0"
    if not resume.strip().isdigit():
        raise ApiError(422, f"Last-Event-ID (or ?after=) must be an event seq, not {resume!r}")
    return StreamingResponse(_events(request, row.id, int(resume)), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


async def _events(request: Request, execution_id: str, after: int) -> AsyncIterator[bytes]:
    engine: Engine = request.app.state.engine
    quiet_since = time.monotonic()
    while True:
        row = await call(engine.get, execution_id)  # before the events: none committed before the end is missed
        events = await call(engine.store.load_events, execution_id, after)
        for event in events:
            yield b"id: %d\ndata: %s\n\n" % (event.seq, encode(event_json(event)))
            after = event.seq
        if row.ended or row.status == Status.HALTED:
            end = {"id": row.id, "status": row.status, "message": row.message, "last_seq": after}
            yield b"event: end\ndata: %s\n\n" % encode(end)
            return
        if request.app.state.stopping.is_set():
            return
        if events:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since > KEEPALIVE:
            yield b": keep-alive\n\n"
            quiet_since = time.monotonic()
        await anyio.sleep(POLL)


def routes() -> list[Route]:
    return [Route("/api/executions/{id}/events", guarded(stream_events), methods=["GET"])]
