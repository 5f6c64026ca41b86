"""Who is calling: an API token (``Authorization: Bearer TOKEN``) or a browser session.

A browser logs in once through the link ``engine serve`` prints (a single-use random
token held in memory, as Jupyter does). That sets an HttpOnly, SameSite=Strict session
cookie, and a readable CSRF cookie whose value a page must send back as the
``X-CSRF-Token`` header on every POST (the value is also kept per session here, so a
cookie planted by another site does not pass). Sessions live in this process's memory:
restarting ``engine serve`` logs every browser out. Bearer requests need no CSRF token:
a browser never adds that header by itself.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Awaitable, Callable
from functools import wraps

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from engine.errors import EngineError
from engine.server.http import ApiError, engine_error, error_response
from engine.server.keys import digest, token_name

CSRF_HEADER = "X-CSRF-Token"
Endpoint = Callable[[Request], Awaitable[Response]]

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_LOGIN_PAGE = ('<!doctype html><meta charset="utf-8"><meta http-equiv="refresh" content="0;url=/">'
               '<title>engine</title><p>Logged in. <a href="/">Continue</a>.</p>')


class Sessions:
    """Login links and browser sessions of one server process, in memory.

    Args:
        port: the server's port; cookie names carry it, so servers on other ports of
            the same host keep their own sessions.
    """

    def __init__(self, port: int) -> None:
        self.session_cookie = f"engine_session_{port}"
        self.csrf_cookie = f"engine_csrf_{port}"
        self._lock = threading.Lock()
        self._links: set[str] = set()
        self._sessions: dict[str, str] = {}  # digest of the session cookie -> its CSRF token

    def login_token(self) -> str:
        """A new single-use login token for ``/login?token=``."""
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._links.add(digest(token))
        return token

    def log_in(self, token: str) -> tuple[str, str] | None:
        """Use up the login token: a new (session cookie, CSRF token), or None if it was not valid."""
        with self._lock:
            try:
                self._links.remove(digest(token))
            except KeyError:
                return None
            session, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
            self._sessions[digest(session)] = csrf
        return session, csrf

    def csrf_token(self, session: str) -> str | None:
        """The CSRF token of the session with this cookie, or None if there is no such session."""
        with self._lock:
            return self._sessions.get(digest(session))


async def login(request: Request) -> Response:
    """``GET /login?token=...``: use up a login link and set the session cookies."""
    sessions: Sessions = request.app.state.sessions
    found = sessions.log_in(request.query_params.get("token", ""))
    if found is None:
        return error_response(401, "this login link is not valid or was used already; use the link `engine serve` "
                                   "printed when it started (each works once), or restart it for a new one")
    session, csrf = found
    response = HTMLResponse(_LOGIN_PAGE, headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})
    response.set_cookie(sessions.session_cookie, session, httponly=True, samesite="strict", path="/")
    response.set_cookie(sessions.csrf_cookie, csrf, httponly=False, samesite="strict", path="/")
    return response


async def authenticate(request: Request) -> str:
    """Who sent ``request``: ``token NAME`` or ``session``; ``ApiError`` 401 or 403 otherwise."""
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(401, "the Authorization header must be `Bearer TOKEN`, with a token from "
                                "`engine tokens create NAME`")
        try:
            name = await anyio.to_thread.run_sync(token_name, request.app.state.engine, token.strip())
        except EngineError as exc:
            raise engine_error(exc) from None
        return f"token {name}"
    sessions: Sessions = request.app.state.sessions
    cookie = request.cookies.get(sessions.session_cookie)
    csrf = sessions.csrf_token(cookie) if cookie else None
    if csrf is None:
        raise ApiError(401, "not logged in: send `Authorization: Bearer TOKEN` (create one with `engine tokens create "
                            "NAME`) or log in with the link `engine serve` printed")
    if request.method not in _SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        if not secrets.compare_digest(sent.encode(), csrf.encode()):
            raise ApiError(403, f"a {request.method} with a session cookie must carry the {CSRF_HEADER} header with the "
                                f"value of the {sessions.csrf_cookie} cookie; nothing was done")
    return "session"


def guarded(endpoint: Endpoint) -> Endpoint:
    """``endpoint`` for authenticated callers only."""

    @wraps(endpoint)
    async def checked(request: Request) -> Response:
        await authenticate(request)
        return await endpoint(request)

    return checked
