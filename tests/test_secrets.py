"""Secrets stay secret: connection parameters named like password/secret/token/key/
authorization are recorded masked; ``${env:NAME}`` references are recorded as written and
resolved only by the worker that runs the connector. The proof: the real values reach a
server on 127.0.0.1 and appear nowhere in the database files, the CLI's output or the logs.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest

from engine.connections import connection_spec, mask_recorded
from outside_support import engine_process, http_server, only_child, outside, run_process  # noqa: F401


def new_secret(label: str) -> str:
    return f"{label}-{secrets.token_hex(12)}"


def database_bytes(db_path: str) -> dict[str, bytes]:
    """The database file and its WAL and shared-memory files, as they are on disk."""
    return {p.name: p.read_bytes() for p in Path(db_path).parent.glob(Path(db_path).name + "*")}


def only_child_named(engine, parent_id, name):
    (child,) = [c.id for c in engine.store.children(parent_id) if c.name == name]
    return child


def test_what_is_recorded_of_connection_parameters():
    params = {
        "url": "https://bob:hunter2@example.com/x?api_key=k123&page=2",
        "headers": {"Authorization": "Bearer ${env:API_TOKEN}", "X-Api-Key": "literal", "Accept": "json"},
        "password": "${env:DB_PASSWORD}",
        "secret_mixed": "prefix-${env:PART}",
        "dsn": "postgresql://app:${env:PW}@db/app",
        "credentials": {"user": "bob", "pass": 7},
        "token": None,
        "retries": 2,
    }
    assert mask_recorded(params) == {
        "url": "https://bob:***@example.com/x?api_key=***&page=2",
        "headers": {"Authorization": "Bearer ${env:API_TOKEN}", "X-Api-Key": "***", "Accept": "json"},
        "password": "${env:DB_PASSWORD}",  # a reference holds no secret
        "secret_mixed": "***",  # a literal part may be one
        "dsn": "postgresql://app:${env:PW}@db/app",
        "credentials": {"user": "***", "pass": "***"},
        "token": None,
        "retries": 2,
    }
    spec, unmasked = connection_spec("rest", None, {}, params, "p:2")
    assert (spec["connector_type"], spec["secrets"], spec["idempotency_key"]) == ("REST", "inline", "p:2")
    assert unmasked == params
    spec, _ = connection_spec("REST", "api", {"headers": {"X-Api-Key": "literal"}}, {"url": "http://h/"}, "p:3")
    assert spec["secrets"] == "connector"  # a worker can take them from the stored connector
    spec, _ = connection_spec("REST", "api", {"headers": {"Authorization": "${env:T}"}}, {"url": "http://h/"}, "p:4")
    assert "secrets" not in spec


def test_a_secret_from_the_environment_reaches_the_server_and_never_the_database(
    outside, http_server, db_path, tmp_path, run_cli
):
    token, inline_key, inline_token = new_secret("token"), new_secret("inline-key"), new_secret("inline-token")
    stored = run_cli("connectors", "set", "api", "--type", "REST", "-v", f"url={http_server.url}/json",
                     "-v", 'headers={"Authorization": "${env:API_TOKEN}"}')
    assert stored.exit_code == 0 and "warning" not in stored.stderr
    execution_id = outside.start("secret_call", {"connector": "api", "fail_url": f"{http_server.url}/status/503"})

    worker = run_process(engine_process(db_path, "-v", "worker", "--until-idle"), tmp_path,
                         API_TOKEN=token, INLINE_KEY=inline_key, INLINE_TOKEN=inline_token)
    assert worker.returncode == 0, worker.stderr
    row = outside.get(execution_id)
    assert (row.status, row.output_value) == ("ENDED_SUCCESS", {"status": 200, "failed": "ENDED_ERROR"})

    [request] = http_server.to("/json")  # the server received the real values
    assert request["headers"]["Authorization"] == token
    assert request["headers"]["X-Api-Key"] == inline_key
    assert request["query"]["token"] == [inline_token]
    assert len(http_server.to("/status/503")) == 2  # retried: the worker logged the failed attempt
    assert "attempt 1 failed" in worker.stderr

    conn = outside.get(only_child_named(outside, execution_id, "secret call"))
    assert conn.input_value["params"]["headers"] == {"Authorization": "${env:API_TOKEN}", "X-Api-Key": "***"}
    assert conn.input_value["params"]["params"] == {"token": "***"}
    assert conn.output_value["url"].endswith("?token=***")

    outputs = [worker.stdout, worker.stderr]
    for args in (["ls", "--json"], ["connectors", "ls"], ["connectors", "show", "api"], ["messages", "ls", "--all"],
                 ["logs", execution_id], ["export", execution_id]):
        result = run_cli(*args)
        assert result.exit_code == 0, result.output
        outputs.append(result.stdout)
    for child in outside.store.children(execution_id) + [row]:
        for args in (["show", child.id], ["show", child.id, "--json"], ["history", child.id],
                     ["history", child.id, "--json"]):
            result = run_cli(*args)
            assert result.exit_code == 0, result.stderr
            outputs.append(result.stdout)
    shown = "\n".join(outputs)
    assert "${env:API_TOKEN}" in shown and "***" in shown
    files = database_bytes(db_path)
    assert set(files) == {"engine.db", "engine.db-wal", "engine.db-shm", "engine.db-lock"}  # the lock file is empty
    for secret in (token, inline_key, inline_token):
        assert secret not in shown
        for name, data in files.items():
            assert secret.encode() not in data, f"{secret} is in {name}"


def test_connectors_ls_and_show_mask_literal_secrets(run_cli):
    result = run_cli("connectors", "set", "mail", "--type", "SMTP", "--json",
                     '{"host": "127.0.0.1", "login": "robot", "password": "hunter2"}')
    assert result.exit_code == 0
    assert "hunter2" not in result.stdout and "literal secrets" in result.stderr  # a warning, not a refusal
    shown = json.loads(run_cli("connectors", "show", "mail").stdout)
    assert shown["value"] == {"host": "127.0.0.1", "login": "robot", "password": "***"}
    listed = run_cli("connectors", "ls")
    assert "hunter2" not in listed.stdout and '"password": "***"' in listed.stdout


@pytest.fixture
def second_worker_runs(outside):
    """Run ``later_connect`` so that one in-process worker creates the PAUSED connection and
    stops; after the person answers, a fresh worker (empty memory) runs the connection."""

    def run(inputs):
        execution_id = outside.start("later_connect", inputs)
        outside.worker().run(until=lambda: outside.get(execution_id).status == "WAITING")
        (message,) = outside.store.list_messages(status="waiting", execution_id=execution_id)
        outside.respond(message.id, {"response": "go"})
        return outside.run_until_ended(execution_id)

    return run


def test_another_worker_takes_literal_secrets_from_the_stored_connector(outside, http_server, run_cli, second_worker_runs):
    secret = new_secret("stored")
    run_cli("connectors", "set", "legacy", "--type", "REST", "-v", f"url={http_server.url}/status/500",
            "-v", "headers=" + json.dumps({"X-Api-Key": secret}))
    assert outside.store.get_connector("legacy").value["headers"] == {"X-Api-Key": secret}
    row = second_worker_runs({"connector": "legacy", "params": {"url": f"{http_server.url}/json"}})
    assert row.status == "ENDED_SUCCESS", row.message
    [request] = http_server.to("/json")
    assert request["headers"]["X-Api-Key"] == secret
    conn = only_child(outside, row.id)
    assert conn.input_value["params"]["headers"] == {"X-Api-Key": "***"}


def test_an_inline_literal_secret_lost_with_its_worker_fails_clearly(
    outside, http_server, run_cli, second_worker_runs, monkeypatch
):
    monkeypatch.setenv("LATER_KEY", new_secret("inline"))
    run_cli("connectors", "set", "plain", "--type", "REST", "-v", f"url={http_server.url}/json")
    row = second_worker_runs({"connector": "plain", "inline_secret_env": "LATER_KEY"})
    assert (row.status, row.message) == ("ENDED_ERROR", "the connection failed")
    assert "a literal secret was given inline to this.connect and is not recorded" in row.output_value["failed"]
    assert "${env:NAME}" in row.output_value["failed"]
    assert http_server.requests == []  # nothing was sent with a masked value
