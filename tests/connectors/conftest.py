"""Real local counterparts for the connector tests: HTTP and SMTP servers, git repositories."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest


def closed_port() -> int:
    """Return a 127.0.0.1 port that nothing listens on (bound once, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def refused_port() -> int:
    """A port on 127.0.0.1 where connections are refused."""
    return closed_port()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port on 127.0.0.1 that accepts connections but never answers (to provoke timeouts)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield int(sock.getsockname()[1])


@dataclass
class HttpState:
    """What the test HTTP server has seen."""

    base_url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    hits: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: /slow answers once this is set (at the latest when the test ends) and then records it
    release_slow: threading.Event = field(default_factory=threading.Event)
    slow_answered: int = 0


class _Handler(BaseHTTPRequestHandler):
    """Routes: /json, /echo, /text, /binary, /status/<code>, /flaky/<failures>, /slow."""

    state: HttpState

    def log_message(self, format: str, *args: Any) -> None:  # keep pytest output quiet
        pass

    def _send(self, code: int, body: bytes, content_type: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        url = urllib.parse.urlsplit(self.path)
        with self.state.lock:
            self.state.requests.append(
                {"method": self.command, "path": url.path, "headers": dict(self.headers)}
            )
            hits = self.state.hits[url.path] = self.state.hits.get(url.path, 0) + 1
        parts = url.path.strip("/").split("/")
        if parts[0] == "json":
            query = urllib.parse.parse_qs(url.query)
            payload = {"hello": "world", "query": query}
            self._send(200, json.dumps(payload).encode(), "application/json")
        elif parts[0] == "echo":
            payload = {
                "method": self.command,
                "body": body.decode(),
                "content_type": self.headers.get("Content-Type"),
            }
            self._send(200, json.dumps(payload).encode(), "application/json; charset=utf-8")
        elif parts[0] == "text":
            self._send(200, "plain text é".encode(), "text/plain; charset=utf-8")
        elif parts[0] == "binary":
            self._send(200, bytes(range(256)), "application/octet-stream")
        elif parts[0] == "status":
            self._send(int(parts[1]), f"nope: {parts[1]}".encode(), "text/plain")
        elif parts[0] == "flaky":
            if hits <= int(parts[1]):
                self._send(503, b"try later", "text/plain")
            else:
                self._send(200, json.dumps({"hits": hits}).encode(), "application/json")
        elif parts[0] == "slow":
            self.state.release_slow.wait(60)  # the 60 s only stop a hung test
            with self.state.lock:
                self.state.slow_answered += 1
            with contextlib.suppress(OSError):  # the client gave up long ago
                self._send(200, b"late", "text/plain")
        else:
            self._send(404, b"no such route", "text/plain")

    do_GET = do_POST = do_PUT = do_DELETE = _handle


@pytest.fixture
def http_server() -> Iterator[HttpState]:
    """A ThreadingHTTPServer on 127.0.0.1, port chosen by the OS, in a background thread."""
    state = HttpState()
    handler = type("Handler", (_Handler,), {"state": state})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield state
    state.release_slow.set()
    server.shutdown()
    server.server_close()
    thread.join()


@dataclass
class SmtpServer:
    """An aiosmtpd server on 127.0.0.1 and the messages it received."""

    host: str
    port: int
    envelopes: list[Any]


class _SmtpHandler:
    def __init__(self, envelopes: list[Any]):
        self.envelopes = envelopes

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if address.startswith("busy@"):
            return "450 mailbox busy"
        if address.startswith("nobody@"):
            return "550 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"


def _authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> Any:
    from aiosmtpd.smtp import AuthResult, LoginPassword

    ok = isinstance(auth_data, LoginPassword) and auth_data.password == b"s3cret"
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A real SMTP server (aiosmtpd) accepting any login with password 's3cret'."""
    controller_module = pytest.importorskip("aiosmtpd.controller")
    envelopes: list[Any] = []
    port = closed_port()
    controller = controller_module.Controller(
        _SmtpHandler(envelopes),
        hostname="127.0.0.1",
        port=port,
        authenticator=_authenticator,
        auth_require_tls=False,
    )
    controller.start()
    yield SmtpServer("127.0.0.1", port, envelopes)
    controller.stop()


def git(*args: str, cwd: Path) -> str:
    """Run git with a fixed identity and return its stdout."""
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Ada Tester",
        "GIT_AUTHOR_EMAIL": "ada@example.com",
        "GIT_COMMITTER_NAME": "Ada Tester",
        "GIT_COMMITTER_EMAIL": "ada@example.com",
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


@pytest.fixture
def git_cli() -> Callable[..., str]:
    """The ``git(*args, cwd=...)`` helper, for tests that inspect a repository themselves."""
    return git


@dataclass
class GitRepo:
    """A repository made by the fixture: main (2 commits), tag v1 on the first, branch feature."""

    path: Path
    first: str
    head: str
    feature: str


@pytest.fixture
def git_repo(tmp_path: Path) -> GitRepo:
    """A real repository in tmp_path, built with git init and commits."""
    repo = tmp_path / "origin"
    repo.mkdir()
    git("init", "-q", "-b", "main", cwd=repo)
    (repo / "README.md").write_text("version one\n")
    (repo / "src").mkdir()
    (repo / "src" / "app.py").write_text("print('hi')\n")
    (repo / "src" / "logo.bin").write_bytes(b"\xff\xfe\x00binary")
    git("add", ".", cwd=repo)
    git("commit", "-q", "-m", "First commit", cwd=repo)
    first = git("rev-parse", "HEAD", cwd=repo)
    git("tag", "-a", "v1", "-m", "release one", cwd=repo)
    (repo / "README.md").write_text("version two\n")
    git("commit", "-q", "-am", "Second commit\n\nWith a body.", cwd=repo)
    head = git("rev-parse", "HEAD", cwd=repo)
    git("checkout", "-q", "-b", "feature", cwd=repo)
    (repo / "feature.txt").write_text("new feature\n")
    git("add", ".", cwd=repo)
    git("commit", "-q", "-m", "Feature commit", cwd=repo)
    feature = git("rev-parse", "HEAD", cwd=repo)
    git("checkout", "-q", "main", cwd=repo)
    return GitRepo(repo, first, head, feature)
