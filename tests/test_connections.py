"""Connections through flows: ``this.connect`` creates a CONNECTION child that a worker
runs against real counterparts on 127.0.0.1; the parent reads its result, waits for it
like for a child flow, and a replay never sends anything again.

Servers and the HTTP request log are in tests/connection_support.py; the flows in
tests/flows/outside/.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys

import pytest

from connection_support import (  # noqa: F401  (http_server and outside are fixtures)
    engine_process,
    http_server,
    kinds,
    only_child,
    outside,
    run_flow,
    run_process,
)
from store.events import ChildCreated, ConnectionAttempt, ExecutionEnded


@pytest.fixture
def unused_port():
    """A port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _git(*args, cwd):
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.com", "GIT_CONFIG_NOSYSTEM": "1"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout.strip()


def child_seq(engine, parent_id: str) -> int:
    (seq,) = [e.seq for e in engine.history(parent_id) if isinstance(e.body, ChildCreated)]
    return seq


# -- REST through a flow ----------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["wait", "nowait", "paused"])
def test_rest_result_reaches_the_parent(outside, http_server, mode):
    row = run_flow(outside, "connect_any", {"type": "REST", "mode": mode, "params": {"url": http_server.url + "/json"}})
    assert (row.status, row.message) == ("ENDED_SUCCESS", "connected")
    conn = only_child(outside, row.id)
    assert (conn.type, conn.flow, conn.status, conn.parent_id) == ("CONNECTION", "REST", "ENDED_SUCCESS", row.id)
    assert conn.output_value["status_code"] == 200
    assert conn.output_value["json"] == {"hello": "world", "hits": 1}
    assert row.output_value["result"] == conn.output_value  # through .get('output_value')
    assert row.output_value["connection"] == conn.id
    if mode == "nowait":  # wait=False: the handler went on before the connection ended
        assert row.output_value["status_before_wait"] in ("QUEUED", "RUNNING", "ENDED_SUCCESS")
    if mode == "paused":  # run=False: nothing ran before .run()
        assert row.output_value["status_before_run"] == "PAUSED"
    [request] = http_server.to("/json")
    assert request["headers"]["Idempotency-Key"] == f"{row.id}:{child_seq(outside, row.id)}"
    assert kinds(outside, conn.id) == ["started", "attempt", "ended"]


def test_a_connection_shows_in_ls_show_and_the_parents_history(outside, http_server, run_cli):
    row = run_flow(outside, "connect_any", {"type": "REST", "params": {"url": http_server.url + "/json"}})
    conn = only_child(outside, row.id)

    listed = {r["id"]: r for r in json.loads(run_cli("ls", "--json").stdout)}
    assert listed[conn.id]["type"] == "CONNECTION" and listed[conn.id]["parent_id"] == row.id
    assert conn.id in run_cli("ls").stdout

    shown = json.loads(run_cli("show", conn.id, "--json").stdout)
    assert (shown["type"], shown["flow"], shown["status"]) == ("CONNECTION", "REST", "ENDED_SUCCESS")
    assert shown["output_value"]["status_code"] == 200
    assert shown["input_value"]["params"] == {"url": http_server.url + "/json"}
    text = run_cli("show", conn.id).stdout
    assert "CONNECTION" in text

    parent_history = json.loads(run_cli("history", row.id, "--json").stdout)
    [created] = [e for e in parent_history if e["kind"] == "child"]
    assert (created["data"]["child_id"], created["data"]["child_type"]) == (conn.id, "CONNECTION")
    own = json.loads(run_cli("history", conn.id, "--json").stdout)
    assert [e["kind"] for e in own] == ["started", "attempt", "ended"]
    assert own[1]["data"]["ok"] is True


@pytest.mark.parametrize(
    ("url", "attempts", "says"),
    [
        ("{server}/status/404", 1, "HTTP 404"),  # refused: not retried
        ("http://127.0.0.1:{closed}/", 2, "connection refused"),  # retryable: retries=1 gives 2 attempts
    ],
)
def test_a_failed_connection_raises_in_a_waiting_parent(outside, http_server, url, attempts, says, unused_port):
    url = url.format(server=http_server.url, closed=unused_port)
    params = {"url": url, "retries": 1, "retry_backoff": 0.01}
    row = run_flow(outside, "connect_any", {"type": "REST", "params": params})
    conn = only_child(outside, row.id)
    assert (row.status, row.message) == ("ENDED_ERROR", "the connection failed")
    assert row.output_value["failed_id"] == conn.id
    assert row.output_value["failed_status"] == "ENDED_ERROR"
    assert says in row.output_value["failed"]  # DependencyFailedError says why
    history = outside.history(conn.id)
    tries = [e.body for e in history if isinstance(e.body, ConnectionAttempt)]
    assert [(t.attempt, t.ok) for t in tries] == [(n, False) for n in range(1, attempts + 1)]
    assert all(says in t.error.message for t in tries)
    ended = [e.body for e in history if isinstance(e.body, ExecutionEnded)]
    assert [e.status for e in ended] == ["ENDED_ERROR"]
    assert conn.output_value["error"]["retryable"] is (attempts > 1)


def test_all_ended_hands_a_failed_connection_back_without_raising(outside, http_server):
    inputs = {"type": "REST", "return_when": "ALL_ENDED", "params": {"url": http_server.url + "/status/404"}}
    row = run_flow(outside, "connect_any", inputs)
    assert (row.status, row.message) == ("ENDED_SUCCESS", "connected")
    assert row.output_value["status"] == "ENDED_ERROR"
    assert row.output_value["result"]["error"]["details"]["status_code"] == 404


def test_a_replay_returns_the_recorded_result_and_sends_nothing(outside, http_server, pure_replay):
    inputs = {"type": "REST", "ask": True, "params": {"url": http_server.url + "/json"}}
    execution_id = outside.start("connect_any", inputs)
    outside.worker().run(until_idle=True)
    assert outside.get(execution_id).status == "WAITING"  # on the person, after the connection
    (message,) = outside.store.list_messages(status="waiting", execution_id=execution_id)
    outside.respond(message.id, {"response": "go on"})
    row = outside.run_until_ended(execution_id)  # a second activation replays this.connect
    assert row.status == "ENDED_SUCCESS"
    assert len(http_server.to("/json")) == 1
    assert len(outside.store.children(execution_id)) == 1

    replayed = pure_replay(execution_id)  # no live backend: nothing can be sent
    assert (replayed.decision.kind, replayed.decision.status) == ("end", "ENDED_SUCCESS")
    assert replayed.decision.output_value == row.output_value
    assert len(http_server.to("/json")) == 1


def test_refused_calls_are_recorded_so_a_handler_that_catches_them_replays(outside, pure_replay):
    row = run_flow(outside, "refused_calls")
    assert (row.status, row.message) == ("ENDED_SUCCESS", "refusals caught")
    refused = row.output_value["refused"]
    assert len(refused) == 5
    assert "unknown connector type 'NO_SUCH_TYPE'" in refused[0]
    assert refused[1].startswith("ResourceNotFoundError") and "engine connectors set no-such-connector" in refused[1]
    assert "unknown type 'date'" in refused[2]
    assert "timeout must be a number" in refused[3]
    assert "NO_SUCH_TYPE" in refused[4]
    assert outside.store.children(row.id) == [] and outside.store.list_messages() == []
    assert outside.store.get_connector("broken") is None
    replayed = pure_replay(row.id)
    assert (replayed.decision.kind, replayed.decision.status) == ("end", "ENDED_SUCCESS")
    assert replayed.decision.output_value == row.output_value


# -- stored connectors ------------------------------------------------------------------------


def test_a_flow_saves_a_connector_and_inline_parameters_win(outside, http_server, run_cli):
    inputs = {
        "name": "team-api",
        "save": {"url": http_server.url + "/status/500", "headers": {"X-Team": "blue", "X-Keep": "kept"}},
        "overrides": {"url": http_server.url + "/json", "headers": {"X-Team": "red"}},
    }
    row = run_flow(outside, "stored_connector", inputs)
    assert row.status == "ENDED_SUCCESS", row.message
    assert (row.output_value["stored_type"], row.output_value["stored"]) == ("REST", inputs["save"])
    assert row.output_value["result"]["json"]["hello"] == "world"
    assert http_server.to("/status/500") == []
    [request] = http_server.to("/json")
    assert (request["headers"]["X-Team"], request["headers"]["X-Keep"]) == ("red", "kept")
    conn = outside.get(row.output_value["connection"])
    assert (conn.flow, conn.input_value["connector"]) == ("team-api", "team-api")
    assert "connector_save" in kinds(outside, row.id)

    listed = json.loads(run_cli("connectors", "ls", "--json").stdout)
    assert [(c["name"], c["connector_type"]) for c in listed] == [("team-api", "REST")]


def test_a_connector_set_on_the_command_line_is_used_by_name(outside, http_server, run_cli):
    result = run_cli("connectors", "set", "api", "--type", "rest", "-v", f"url={http_server.url}/status/503",
                     "-v", 'headers={"X-Team": "blue"}', "-v", "retries=0")
    assert result.exit_code == 0, result.stderr
    shown = json.loads(run_cli("connectors", "show", "api").stdout)
    assert shown["value"] == {"url": f"{http_server.url}/status/503", "headers": {"X-Team": "blue"}, "retries": 0}
    inputs = {"connector": "api", "params": {"url": http_server.url + "/json"}}
    row = run_flow(outside, "connect_any", inputs)
    assert row.status == "ENDED_SUCCESS", row.message
    [request] = http_server.to("/json")
    assert request["headers"]["X-Team"] == "blue"


def test_unknown_connectors_and_types_are_clear_errors(outside, run_cli):
    row = run_flow(outside, "connect_any", {"connector": "missing"})
    assert row.status == "ENDED_ERROR"
    assert "connector 'missing' does not exist" in row.message
    result = run_cli("connectors", "set", "x", "--type", "FTP", "-v", "host=example.com")
    assert result.exit_code != 0 and "unknown connector type 'FTP'" in result.stderr
    shown = run_cli("connectors", "show", "nope")
    assert shown.exit_code != 0 and "no connector 'nope'" in shown.stderr


# -- every connector type through the engine ----------------------------------------------------


def test_sqlite_connection(outside, tmp_path):
    path = tmp_path / "shop.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)")
        db.execute("INSERT INTO items (name) VALUES ('apple'), ('pear')")
    params = {"path": str(path), "query": "INSERT INTO items (name) VALUES (?) RETURNING id, name", "params": ["fig"]}
    row = run_flow(outside, "connect_any", {"type": "SQLITE", "params": params})
    assert row.status == "ENDED_SUCCESS", row.message
    assert row.output_value["result"]["rows"] == [{"id": 3, "name": "fig"}]
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT name FROM items ORDER BY id").fetchall() == [("apple",), ("pear",), ("fig",)]


def test_git_connection(outside, tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    _git("init", "-q", "-b", "main", cwd=repo)
    (repo / "README.md").write_text("hello from git\n")
    _git("add", ".", cwd=repo)
    _git("commit", "-q", "-m", "first", cwd=repo)
    params = {"command": "get", "repository_url": str(repo), "path": "README.md"}
    row = run_flow(outside, "connect_any", {"type": "GIT", "params": params})
    assert row.status == "ENDED_SUCCESS", row.message
    assert row.output_value["result"] == {"commit": _git("rev-parse", "HEAD", cwd=repo),
                                          "files": {"README.md": "hello from git\n"}}


def test_smtp_connection(outside, unused_port):
    controller_module = pytest.importorskip("aiosmtpd.controller")
    received = []

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            received.append(envelope)
            return "250 OK"

    controller = controller_module.Controller(Handler(), hostname="127.0.0.1", port=unused_port)
    controller.start()
    try:
        params = {"host": "127.0.0.1", "port": unused_port, "from": "robot@example.com", "to": "ann@example.com",
                  "subject": "Report", "body": "All green."}
        row = run_flow(outside, "connect_any", {"type": "SMTP", "params": params})
    finally:
        controller.stop()
    assert row.status == "ENDED_SUCCESS", row.message
    assert row.output_value["result"]["accepted"] == ["ann@example.com"]
    [envelope] = received
    assert envelope.rcpt_tos == ["ann@example.com"] and b"All green." in envelope.content
    assert f"X-Idempotency-Key: {row.id}:".encode() in envelope.content


def test_command_connection(outside, tmp_path):
    marker = tmp_path / "ran"
    script = "import pathlib, sys; pathlib.Path(sys.argv[1]).write_text('yes'); print('hello', sys.argv[2])"
    params = {"args": [sys.executable, "-c", script, str(marker), "engine"]}
    row = run_flow(outside, "connect_any", {"type": "COMMAND", "params": params})
    assert row.status == "ENDED_SUCCESS", row.message
    assert row.output_value["result"] == {"returncode": 0, "stdout": "hello engine\n", "stderr": ""}
    assert marker.read_text() == "yes"


def test_postgres_connection(outside):
    dsn = os.environ.get("ENGINE_TEST_POSTGRES_DSN")
    if not dsn:
        pytest.skip("ENGINE_TEST_POSTGRES_DSN is unset: no PostgreSQL to connect to (.ci/run starts one)")
    row = run_flow(outside, "connect_any", {"type": "POSTGRES", "params": {"dsn": dsn, "query": "SELECT 41 + 1 AS answer"}})
    assert row.status == "ENDED_SUCCESS", row.message
    assert row.output_value["result"]["rows"] == [{"answer": 42}]


# -- a worker killed after sending -----------------------------------------------------------------


def test_a_worker_killed_after_sending_is_recovered_with_the_same_idempotency_key(
    outside, http_server, db_url, tmp_path, pure_replay, run_cli
):
    execution_id = outside.start("connect_any", {"type": "REST", "params": {"url": http_server.url + "/json"}})
    killed = run_process(engine_process(db_url, "worker", "--lease", "1"), tmp_path, ENGINE_FAULT="connection.sent:1")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    conn = only_child(outside, execution_id)
    assert len(http_server.to("/json")) == 1  # sent...
    assert kinds(outside, conn.id) == ["started"]  # ...but not recorded

    recovered = run_process(engine_process(db_url, "worker", "--until-idle", "--lease", "1"), tmp_path)
    assert recovered.returncode == 0, recovered.stderr
    row = outside.get(execution_id)
    assert (row.status, row.message) == ("ENDED_SUCCESS", "connected")
    keys = [r["headers"]["Idempotency-Key"] for r in http_server.to("/json")]
    assert keys == [f"{execution_id}:{child_seq(outside, execution_id)}"] * 2
    assert kinds(outside, conn.id) == ["started", "attempt", "ended"]  # the result, once
    assert kinds(outside, execution_id).count("child") == 1
    assert row.output_value["result"]["json"] == {"hello": "world", "hits": 2}

    replayed = pure_replay(execution_id)
    assert (replayed.decision.kind, replayed.decision.status) == ("end", "ENDED_SUCCESS")
    replay_cli = run_cli("replay", execution_id)
    assert replay_cli.exit_code == 0 and "consistent" in replay_cli.stdout, replay_cli.output
    assert len(http_server.to("/json")) == 2
