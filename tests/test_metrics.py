"""``GET /metrics`` of a real ``engine serve``, scraped over HTTP after it ran executions
(one of them taken over from a worker killed with SIGKILL) and parsed as Prometheus text."""

from __future__ import annotations

import signal
import subprocess
from contextlib import closing
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families
from serve_support import ENGINE_ARGV, SERVE_FLOWS, engine_command, start_server, until_status
from waiting import wait_until

from engine.api import Engine


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Each sample of a scrape by (name, sorted labels)."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_metrics_count_what_the_server_ran_and_need_a_token(tmp_path: Path, db_url: str) -> None:
    db = db_url
    assert engine_command(db, "flows", "sync", str(SERVE_FLOWS)).returncode == 0
    started = engine_command(db, "run", "busy", "-i", f"path={tmp_path / 'go'}", "--detach")
    assert started.returncode == 0, started.stderr
    busy = started.stdout.strip()
    with (tmp_path / "worker.err").open("wb") as err:  # a worker that dies holding busy's lease
        worker = subprocess.Popen([*ENGINE_ARGV, "--db", db, "worker", "--lease", "1"], stderr=err)
    with closing(Engine(db)) as engine:
        wait_until(lambda: engine.get(busy).status == "RUNNING", "the worker claiming the execution", worker)
    worker.send_signal(signal.SIGKILL)
    worker.wait(timeout=60)

    served = start_server(tmp_path, db)
    try:
        assert httpx.get(f"{served.url}/metrics").status_code == 401
        token = engine_command(db, "tokens", "create", "prometheus").stdout.strip()
        with served.client(token) as api:
            (tmp_path / "go").touch()
            until_status(api, busy, "ENDED_SUCCESS")  # taken over once the killed worker's lease expired
            for n in range(3):
                ended = api.post("/api/executions", json={"flow": "echo", "inputs": {"n": n}, "wait": 60}).json()
                assert ended["status"] == "ENDED_SUCCESS"
            assert api.post("/api/executions", json={"flow": "fails", "wait": 60}).json()["status"] == "ENDED_ERROR"
            nap = api.post("/api/executions", json={"flow": "nap", "inputs": {"seconds": 0.2}, "wait": 60}).json()
            assert nap["status"] == "ENDED_SUCCESS"
            scraped = api.get("/metrics")
        assert scraped.status_code == 200 and scraped.headers["content-type"].startswith("text/plain")
        got = samples(scraped.text)
    finally:
        assert served.stop() == 0, served.output()
    assert got[("engine_executions", (("status", "ENDED_SUCCESS"),))] == 5
    assert got[("engine_executions", (("status", "ENDED_ERROR"),))] == 1
    assert got[("engine_executions", (("status", "RUNNING"),))] == 0
    assert got[("engine_queue_depth", ())] == 0
    assert got[("engine_decisions_total", (("decision", "end"),))] == 6
    assert got[("engine_decisions_total", (("decision", "suspend"),))] == 1  # the nap's timer
    assert got[("engine_commits_total", ())] >= 8  # the decisions and busy's step at least
    assert got[("engine_steps_total", ())] == 1  # busy's step, run by the server after the takeover
    assert got[("engine_lease_takeovers_total", ())] == 1
    assert got[("engine_activation_seconds_count", ())] == 7
    assert got[("engine_wake_latency_seconds_count", ())] == 1  # the nap woken by its timer
    assert got[("engine_activation_seconds_bucket", (("le", "+Inf"),))] == 7


def test_queue_depth_counts_work_no_worker_has_claimed(tmp_path: Path, db_url: str) -> None:
    served = start_server(tmp_path, db_url, "--no-worker")
    try:
        token = engine_command(served.db, "tokens", "create", "prometheus").stdout.strip()
        with served.client(token) as api:
            for _ in range(3):
                assert api.post("/api/executions", json={"flow": "echo"}).status_code == 202
            got = samples(api.get("/metrics").text)
    finally:
        assert served.stop() == 0, served.output()
    assert got[("engine_queue_depth", ())] == 3
    assert got[("engine_executions", (("status", "QUEUED"),))] == 3
    assert got[("engine_commits_total", ())] == 0  # no worker here
    assert not [key for key in got if key[0] == "engine_decisions_total"]
