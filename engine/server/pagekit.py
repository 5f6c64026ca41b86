"""What every monitor page shares: the Jinja2 environment (autoescape on: flow outputs,
logs and messages are untrusted), the browser-session check with its one-line hint,
the CSRF check of form posts, and the security headers of every page."""

from __future__ import annotations

import datetime as dt
import json
import secrets
from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any
from urllib.parse import parse_qsl

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from engine.graph import format_duration
from engine.server.auth import Sessions
from engine.server.http import ApiError, read_body

Page = Callable[[Request], Awaitable[Response]]

#: Pages load scripts, styles and images from this server only; nothing inline runs.
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
                               "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
NOT_LOGGED_IN = ("not logged in: open the login link `engine serve` printed when it started (each link works once; "
                 "restart it for a new one)")


def _when(ts: float | None) -> str:
    return "" if ts is None else dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def _clock(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts).strftime("%H:%M:%S.%f")[:-3]


def _seconds(value: float | None) -> str:
    return "" if value is None else format_duration(value)


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, default=repr, ensure_ascii=False)


def _compact(value: Any) -> str:
    return json.dumps(value, default=repr, ensure_ascii=False)


env = Environment(loader=PackageLoader("engine.server", "templates"), autoescape=select_autoescape(default=True),
                  trim_blocks=True, lstrip_blocks=True)
env.filters.update(when=_when, clock=_clock, seconds=_seconds, pretty=_pretty, compact=_compact)


def render(request: Request, template: str, code: int = 200, /, **context: Any) -> Response:
    """``template`` rendered with ``context``, the session's CSRF token and the page headers."""
    html = env.get_template(template).render(csrf=request.state.csrf, path=request.url.path, **context)
    return HTMLResponse(html, code, headers=HEADERS)


def _session_csrf(request: Request) -> str | None:
    sessions: Sessions = request.app.state.sessions
    cookie = request.cookies.get(sessions.session_cookie)
    return sessions.csrf_token(cookie) if cookie else None


def page(endpoint: Page) -> Page:
    """``endpoint`` for logged-in browsers; others get 401 with the hint to use the login link."""

    @wraps(endpoint)
    async def checked(request: Request) -> Response:
        csrf = _session_csrf(request)
        if csrf is None:
            return HTMLResponse(f'<!doctype html><meta charset="utf-8"><title>engine: log in</title><p>{NOT_LOGGED_IN}</p>',
                                401, headers=HEADERS)
        request.state.csrf = csrf
        try:
            return await endpoint(request)
        except ApiError as exc:
            return render(request, "error.html", exc.status, error=str(exc))

    return checked


async def posted_form(request: Request) -> dict[str, str]:
    """The fields of a url-encoded form post whose ``csrf`` field matches the session's
    token (403 otherwise: a page on another site cannot read it)."""
    body = (await read_body(request)).decode("utf-8", errors="replace")
    fields = dict(parse_qsl(body, keep_blank_values=True))
    sent = fields.pop("csrf", "")
    if not secrets.compare_digest(sent.encode(), str(request.state.csrf).encode()):
        raise ApiError(403, "this form was not sent from a page of this server (its CSRF token is missing or wrong); "
                            "nothing was done: reload the page and send it again")
    return fields
