"""The routes of the web monitor: server-rendered pages (templates/) and their static
assets (static/, shipped in the wheel; no build step)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from engine.server import console, monitor, triggers


async def _home(request: Request) -> Response:
    return RedirectResponse("/executions", 303)


def routes() -> list[BaseRoute]:
    """The monitor's pages, forms and assets."""
    return [
        Route("/", _home, methods=["GET"]),
        Route("/executions", monitor.executions, methods=["GET"]),
        Route("/executions/rows", monitor.executions, methods=["GET"]),
        Route("/executions/{id}", monitor.execution, methods=["GET"]),
        Route("/executions/{id}/live", monitor.execution, methods=["GET"]),
        Route("/executions/{id}/graph.svg", monitor.dependency_svg, methods=["GET"]),
        Route("/messages", console.messages, methods=["GET"]),
        Route("/messages/{id}/answer", console.answer_message, methods=["POST"]),
        Route("/flows", console.flows, methods=["GET"]),
        Route("/flows/{name}", console.flow, methods=["GET"]),
        Route("/flows/{name}/graph.svg", console.flow_svg, methods=["GET"]),
        Route("/flows/{name}/start", console.start_flow, methods=["POST"]),
        Route("/schedules", triggers.schedules_page, methods=["GET"]),
        Route("/webhooks", triggers.webhooks_page, methods=["GET"]),
        Mount("/static", StaticFiles(packages=[("engine.server", "static")]), name="static"),
    ]
