"""The outside world of the crash-anywhere test: an HTTP server on 127.0.0.1 that
answers REST connections and counts the requests it receives per Idempotency-Key."""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class CountingServer:
    """``/echo?x=N`` answers ``{"value": f(N)}``; ``/fail?x=N`` answers HTTP 422.

    Every request is counted per ``Idempotency-Key``. Headers are fixed (no clock in
    ``Date``), so a connection's recorded output is the same in every run.
    """

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urllib.parse.urlsplit(self.path)
                x = int(urllib.parse.parse_qs(parts.query).get("x", ["0"])[0])
                with server.lock:
                    server.requests[self.headers.get("Idempotency-Key", "")] += 1
                if parts.path == "/fail":
                    body, code = json.dumps({"refused": x}).encode(), 422
                else:
                    body, code = json.dumps({"value": (x * 13 + 1) % 997}).encode(), 200
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the worker that asked was killed while waiting for the answer

            def date_time_string(self, timestamp: float | None = None) -> str:
                return "Thu, 01 Jan 2026 00:00:00 GMT"

            def version_string(self) -> str:
                return "crash-test-server"

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def counts_for(self, ids: set[str]) -> dict[str, int]:
        """Requests per key whose execution id (before the ':') is in ``ids``."""
        with self.lock:
            return {k: n for k, n in self.requests.items() if k.partition(":")[0] in ids}

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
