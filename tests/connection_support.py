"""Support for the tests of connections to other systems (tests/test_connections.py,
tests/test_messages.py, tests/test_secrets.py): an HTTP server on 127.0.0.1 that records
every request, the real ``engine`` console script, and small helpers.

Import fixtures with ``from connection_support import http_server``: ``tests/`` is on
``sys.path``, while ``tests/connectors/conftest.py`` is not visible from ``tests/``.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from engine.api import Engine
from store.model import ExecutionRow

#: The flows these tests run.
OUTSIDE = Path(__file__).parent / "flows" / "outside"



def _console_script() -> str:
    beside = Path(sys.executable).with_name("engine")
    return str(beside) if beside.exists() else shutil.which("engine") or "engine"


#: The installed ``engine`` console script, as users run it (beside this interpreter, else on PATH).
ENGINE = _console_script()


@dataclass
class HttpLog:
    """What the test HTTP server saw: one dict per request (method, path, query, headers, body)."""

    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    cookies: list[str] = field(default_factory=list)  #: session cookies handed out by ``/login``
    lock: threading.Lock = field(default_factory=threading.Lock)

    def to(self, path: str) -> list[dict[str, Any]]:
        """The requests to ``path`` in arrival order."""
        with self.lock:
            return [r for r in self.requests if r["path"] == path]


class _Handler(BaseHTTPRequestHandler):
    """Routes: ``/json`` (200, JSON saying how often it was hit), ``/status/<code>``,
    ``/login`` (like ``/json``, with a fresh random session cookie in ``Set-Cookie``).
    No answer repeats a request header or the query, so a secret sent to the server can
    reach the database only through the engine's own recording."""

    log: HttpLog

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        url = urllib.parse.urlsplit(self.path)
        with self.log.lock:
            self.log.requests.append({"method": self.command, "path": url.path, "body": body,
                                      "query": urllib.parse.parse_qs(url.query), "headers": dict(self.headers)})
            hits = sum(1 for r in self.log.requests if r["path"] == url.path)
        parts = url.path.strip("/").split("/")
        if parts[0] == "status":
            code, payload = int(parts[1]), {"error": f"status {parts[1]} on purpose"}
        elif parts[0] in ("json", "login"):
            code, payload = 200, {"hello": "world", "hits": hits}
        else:
            code, payload = 404, {"error": "no such route"}
        data = json.dumps(payload).encode()
        self.send_response(code)
        if parts[0] == "login":
            cookie = secrets.token_hex(12)
            with self.log.lock:
                self.log.cookies.append(cookie)
            self.send_header("Set-Cookie", f"session={cookie}; HttpOnly")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = _handle


@pytest.fixture
def http_server() -> Iterator[HttpLog]:
    """A ThreadingHTTPServer on 127.0.0.1 (port chosen by the OS) recording every request."""
    log = HttpLog()
    server = ThreadingHTTPServer(("127.0.0.1", 0), type("Handler", (_Handler,), {"log": log}))
    server.daemon_threads = True
    log.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield log
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def outside(engine: Engine) -> Engine:
    """The test's engine with the flows of ``tests/flows/outside`` registered."""
    engine.sync_flows(OUTSIDE)
    return engine


def run_flow(engine: Engine, flow: str, inputs: dict[str, Any] | None = None) -> ExecutionRow:
    """Start ``flow`` and run an embedded worker until it ends."""
    return engine.run_until_ended(engine.start(flow, inputs or {}))


def only_child(engine: Engine, parent_id: str) -> ExecutionRow:
    (child,) = engine.store.children(parent_id)
    return child


def kinds(engine: Engine, execution_id: str) -> list[str]:
    return [e.kind for e in engine.history(execution_id)]


def engine_process(db_url: str, *args: str) -> list[str]:
    """argv for the real ``engine`` command on ``db_url``."""
    return [ENGINE, "--db", db_url, *args]


def process_env(**extra: str) -> dict[str, str]:
    """This environment without the engine's own variables, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in ("ENGINE_FAULT", "ENGINE_DB")}
    return {**env, **extra}


def run_process(argv: list[str], cwd: Path, **extra_env: str) -> subprocess.CompletedProcess[str]:
    """Run a real ``engine`` process to its end (the timeout only stops a hung test)."""
    return subprocess.run(argv, cwd=cwd, env=process_env(**extra_env), capture_output=True, text=True, timeout=60)
