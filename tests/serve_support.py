"""A real ``engine serve`` process on 127.0.0.1 for the HTTP tests (tests/test_serve_*.py).

Import with ``from serve_support import Served, start_server``: ``tests/`` is on ``sys.path``.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from stores import fresh_database

#: The flows these tests run.
SERVE_FLOWS = Path(__file__).parent / "flows" / "serve"
ENGINE_ARGV = [sys.executable, "-c", "from cli.main import main; main()"]


@dataclass
class Served:
    """A running ``engine serve``: its URL, login link, output files and process."""

    proc: subprocess.Popen[bytes]
    url: str
    login_link: str
    db: str
    out: Path
    err: Path

    def output(self) -> str:
        return self.out.read_text(errors="replace") + self.err.read_text(errors="replace")

    def client(self, token: str | None = None, **options: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60, **options)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Send ``sig`` and wait for the process to exit; its exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=60)


def engine_command(db: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``engine --db DB ARGS`` in a child process."""
    return subprocess.run([*ENGINE_ARGV, "--db", db, *args], capture_output=True, text=True, timeout=60, check=False)


def start_server(folder: Path, db: str, *args: str, engine_args: tuple[str, ...] = (), logs: str = "serve") -> Served:
    """``engine ENGINE_ARGS serve --port 0 ARGS`` on database ``db`` with the serve flows
    registered, once it listens (the deadline only stops a hung test); its output goes to
    ``folder/LOGS.out`` and ``.err`` (give servers on one folder their own)."""
    synced = engine_command(db, "flows", "sync", str(SERVE_FLOWS))
    assert synced.returncode == 0, synced.stderr
    out, err = folder / f"{logs}.out", folder / f"{logs}.err"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen([*ENGINE_ARGV, "--db", db, *engine_args, "serve", "--port", "0", *args],
                                stdout=stdout, stderr=stderr)
    stop = time.monotonic() + 60
    while True:
        found = re.search(r"(http://127\.0\.0\.1:\d+)/login\?token=\S+", out.read_text())
        if found:
            return Served(proc, found[1], found[0], db, out, err)
        if proc.poll() is not None or time.monotonic() > stop:
            proc.kill()
            pytest.fail(f"engine serve did not start (exit {proc.poll()}): {err.read_text()}")
        time.sleep(0.02)


@contextmanager
def serving(folder: Path, flows: Path | None = None) -> Iterator[Served]:
    """A server for a test module on a fresh database of its own (``flows`` registered too),
    stopped cleanly at the end."""
    with fresh_database(folder) as db:
        served = start_server(folder, db)
        if flows is not None:
            synced = engine_command(served.db, "flows", "sync", str(flows))
            assert synced.returncode == 0, synced.stderr
        try:
            yield served
        finally:
            assert served.stop() == 0, served.output()


@contextmanager
def api_client(served: Served, token_name: str) -> Iterator[httpx.Client]:
    """An API client with a new token named ``token_name``."""
    done = engine_command(served.db, "tokens", "create", token_name)
    assert done.returncode == 0, done.stderr
    with served.client(done.stdout.strip()) as client:
        yield client


def until_status(client: httpx.Client, execution_id: str, *statuses: str) -> dict[str, Any]:
    """Poll ``GET /api/executions/ID`` until its status is one of ``statuses`` (the deadline
    only stops a hung test)."""
    stop = time.monotonic() + 60
    while True:
        found = client.get(f"/api/executions/{execution_id}")
        assert found.status_code == 200, found.text
        data: dict[str, Any] = found.json()
        if data["status"] in statuses:
            return data
        if time.monotonic() > stop:
            pytest.fail(f"execution {execution_id} still {data['status']}, expected {statuses}")
        time.sleep(0.02)
