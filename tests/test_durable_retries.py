"""Retries of a connection survive a crash: a worker SIGKILLed during the backoff
between two attempts leaves a CONNECTION execution WAITING on a durable timer, and the
next worker continues its numbering and its budget from the recorded attempts.

Real worker processes, a real HTTP server on 127.0.0.1 (tests/connection_support.py).
"""

from __future__ import annotations

import signal
import subprocess

import pytest

from connection_support import (  # noqa: F401  (http_server and outside are fixtures)
    engine_process,
    http_server,
    only_child,
    outside,
    process_env,
    run_process,
)
from store.events import ConnectionAttempt, ExecutionEnded
from waiting import wait_until

#: retries=2: three attempts at most. The first backoff is short; the second (about 1-2 s)
#: is the one the worker is killed in.
PARAMS = {"retries": 2, "retry_backoff": {"initial": 0.02, "multiplier": 100}}


def attempts(engine, execution_id):
    return [e for e in engine.history(execution_id) if isinstance(e.body, ConnectionAttempt)]


def test_a_worker_killed_in_the_backoff_leaves_a_durable_timer_and_the_budget_holds(
    outside, http_server, db_url, tmp_path, run_cli
):
    url = http_server.url + "/status/503"
    parent = outside.start("connect_any", {"type": "REST", "params": {"url": url, **PARAMS}})
    worker = subprocess.Popen(engine_process(db_url, "worker", "--lease", "1"), cwd=tmp_path, env=process_env(),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: len(outside.store.children(parent)) == 1, "the connection was created", worker)
        conn = only_child(outside, parent).id
        wait_until(lambda: len(attempts(outside, conn)) == 2, "two attempts were recorded", worker)
        row = outside.get(conn)
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    # in the backoff nothing runs: the connection waits on a timer, holding no worker
    assert (row.status, row.lease_owner) == ("WAITING", None)
    second = attempts(outside, conn)[1].body
    # (PostgreSQL keeps timers on the database's clock: the same moment, moved by the clocks' offset)
    assert second.retry_at is not None and row.wake_at == pytest.approx(second.retry_at, abs=0.05)
    assert len(http_server.to("/status/503")) == 2

    recovered = run_process(engine_process(db_url, "worker", "--until-idle", "--lease", "1"), tmp_path)
    assert recovered.returncode == 0, recovered.stderr

    assert len(http_server.to("/status/503")) == 3  # the budget counts the attempts made before the crash
    assert len({r["headers"]["Idempotency-Key"] for r in http_server.to("/status/503")}) == 1
    tries = attempts(outside, conn)
    assert [(e.body.attempt, e.body.ok) for e in tries] == [(1, False), (2, False), (3, False)]
    assert tries[2].at >= tries[1].body.retry_at  # the third attempt waited out the recorded backoff
    assert [e.body.retry_at is None for e in tries] == [False, False, True]  # the last one has no backoff
    ended = outside.get(conn)
    assert ended.status == "ENDED_ERROR"
    assert "gave up after 3 attempts" in ended.message and "retries=2" in ended.message
    assert "will be retried" not in ended.message
    [end] = [e.body for e in outside.history(conn) if isinstance(e.body, ExecutionEnded)]
    assert end.error is not None and "gave up after 3 attempts" in end.error.message
    row = outside.get(parent)
    assert (row.status, row.message) == ("ENDED_ERROR", "the connection failed")
    assert "gave up after 3 attempts" in row.output_value["failed"]
    shown = run_cli("history", conn)
    assert shown.exit_code == 0
    assert "attempt 2" in shown.stdout and "retry at" in shown.stdout


@pytest.mark.parametrize(
    ("path", "params", "requests", "says"),
    [
        ("/status/404", {"retries": 2}, 1, "gave up after 1 attempt: this failure is not retryable"),
        ("/status/503", {"retries": 0}, 1, "gave up after 1 attempt: no retries were allowed (retries=0)"),
        ("/status/503", {"retries": 1, "retry_backoff": 0.01}, 2,
         "gave up after 2 attempts: the retry budget (retries=1) is spent"),
    ],
)
def test_the_final_error_says_how_many_attempts_were_made_and_why_no_more(outside, http_server, path, params,
                                                                          requests, says):
    parent = outside.start("connect_any", {"type": "REST", "params": {"url": http_server.url + path, **params}})
    row = outside.run_until_ended(parent)
    conn = only_child(outside, parent)
    assert len(http_server.to(path)) == requests
    assert says in conn.message and says in row.output_value["failed"]
    assert conn.output_value["error"]["details"]["attempts"] == requests
    assert [e.body.attempt for e in attempts(outside, conn.id)] == list(range(1, requests + 1))


def test_a_connection_resumed_during_its_backoff_waits_out_the_recorded_delay(outside, http_server, run_cli):
    url = http_server.url + "/status/503"
    parent = outside.start("connect_any", {"type": "REST", "params": {"url": url, "retries": 1,
                                                                     "retry_backoff": 3600}})
    outside.worker().run(until=lambda: any(c.status == "WAITING" for c in outside.store.children(parent)))
    conn = only_child(outside, parent)
    [first] = attempts(outside, conn.id)
    assert first.body.retry_at == first.at + first.body.delay  # the delay chosen (capped, jittered)
    assert conn.wake_at == pytest.approx(first.body.retry_at, abs=0.05)  # on the database's clock (PostgreSQL)
    assert run_cli("pause", conn.id).exit_code == 0
    assert "QUEUED" in run_cli("resume", conn.id).stdout  # runnable at once, before its backoff is over
    outside.worker().run(until=lambda: outside.get(conn.id).status == "WAITING")
    assert outside.get(conn.id).wake_at == pytest.approx(first.body.retry_at, abs=0.05)  # the same timer, not a new delay
    assert len(attempts(outside, conn.id)) == 1 and len(http_server.to("/status/503")) == 1
    assert run_cli("cancel", parent).exit_code == 0
