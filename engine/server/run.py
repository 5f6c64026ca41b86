"""Running ``engine serve``: the app on uvicorn, an embedded worker on a thread, and a
clean stop on SIGINT or SIGTERM (requests end, the worker finishes its activations and
releases its leases, then the process exits 0)."""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from types import FrameType

import uvicorn

from engine.api import Engine
from engine.errors import EngineError
from engine.server.app import create_app
from engine.server.auth import Sessions
from engine.server.metrics import Metrics
from engine.worker import Worker
from store.errors import StoreError

log = logging.getLogger(__name__)

#: Seconds the server waits for open requests (event streams end at once) when stopping.
GRACEFUL_SECONDS = 10


class _Server(uvicorn.Server):
    """uvicorn's server, whose signal handlers also tell the app it is stopping and,
    unlike uvicorn's, do not raise the signal again once it has stopped (so the embedded
    worker can be stopped and the process exit 0)."""

    def __init__(self, config: uvicorn.Config, stopping: threading.Event) -> None:
        super().__init__(config)
        self.stopping = stopping

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self._stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _stop(self, sig: int, frame: FrameType | None) -> None:
        self.stopping.set()
        self.handle_exit(sig, frame)


def listen(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: a free one); a one-line error if it cannot be had."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(512)
    except OSError as exc:
        raise EngineError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; pick another --port or --host") from None
    return sock


def base_url(host: str, port: int) -> str:
    """The URL to print: a wildcard address is shown as the loopback one."""
    shown = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    return f"http://{f'[{shown}]' if ':' in shown else shown}:{port}"


def serve(
    engine: Engine, host: str, port: int, *, worker: Worker | None, on_ready: Callable[[str, str], None],
    metrics: Metrics | None = None,
) -> None:
    """Serve the API and webhooks on ``host:port`` until SIGINT or SIGTERM, running
    ``worker`` on a thread meanwhile; ``on_ready(base_url, login_link)`` is called once
    the socket listens; ``/metrics`` shows ``metrics`` (the worker's observer)."""
    sock = listen(host, port)
    url = base_url(host, sock.getsockname()[1])
    stopping = threading.Event()
    sessions = Sessions(sock.getsockname()[1])
    app = create_app(engine, sessions, stopping, metrics)
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off", http="h11", ws="none",
                            timeout_graceful_shutdown=GRACEFUL_SECONDS, server_header=False)
    server = _Server(config, stopping)
    thread = None
    if worker is not None:
        thread = threading.Thread(target=_work, args=(worker, server), name="embedded-worker", daemon=True)
        thread.start()
    on_ready(url, f"{url}/login?token={sessions.login_token()}")
    try:
        server.run(sockets=[sock])
    finally:
        stopping.set()
        if worker is not None and thread is not None:
            worker.stop()
            thread.join()
        sock.close()


def _work(worker: Worker, server: uvicorn.Server) -> None:
    """The embedded worker; if it stops for good (the database went away), so does the server."""
    try:
        worker.run()
    except StoreError as exc:
        log.error("the embedded worker stopped: %s; engine serve stops too", exc)
        server.should_exit = True
