"""Secrets stay secret: connection parameters named like password/secret/token/key/
authorization are recorded masked; ``${env:NAME}`` references are recorded as written and
resolved only by the worker that runs the connector. The proof: the real values reach a
server on 127.0.0.1 and appear nowhere in the database files, the CLI's output or the logs.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from engine.connection_runner import connection_spec
from engine.connectors import mask_secrets
from connection_support import engine_process, http_server, only_child, outside, run_process  # noqa: F401


def new_secret(label: str) -> str:
    return f"{label}-{secrets.token_hex(12)}"


def database_bytes(db_path: str) -> dict[str, bytes]:
    """The database file and its WAL and shared-memory files, as they are on disk."""
    return {p.name: p.read_bytes() for p in Path(db_path).parent.glob(Path(db_path).name + "*") if p.is_file()}


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
    assert mask_secrets(params) == {
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


#: The secret forms of secret_forms.py, each sent through the environment variable S_<FORM>.
FORMS = ("query_auth", "query_sig", "cookie", "x_auth", "listed", "arg_password", "arg_user", "arg_pair", "arg_token",
         "line_p", "line_user")


def cli_outputs(run_cli, execution_ids: list[str]) -> list[str]:
    """What every reading command prints about these executions, as text and as JSON."""
    outputs = []
    commands = [["ls"], ["ls", "--json"], ["connectors", "ls"], ["connectors", "show", "api"], ["flows", "ls"]]
    for eid in execution_ids:
        commands += [[*cmd, eid] + extra for cmd in (["show"], ["history"]) for extra in ([], ["--json"])]
        commands += [["export", eid], ["logs", eid], ["tree", eid], ["deps", eid]]
    for args in commands:
        result = run_cli(*args)
        assert result.exit_code == 0, (args, result.output)
        outputs.append(result.stdout + result.stderr)
    return outputs


def rows_holding(db_path: str, secret: str) -> set[str]:
    """The tables with a row that holds ``secret`` in any column, as text or inside a blob."""
    found = set()
    with closing(sqlite3.connect(db_path)) as conn:
        for (table,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'"):
            for row in conn.execute(f"SELECT * FROM {table}"):
                if any(secret.encode() in (v if isinstance(v, bytes) else str(v).encode()) for v in row):
                    found.add(table)
    return found


def test_every_secret_form_is_masked_in_the_database_and_every_output(outside, http_server, db_path, tmp_path, run_cli):
    values = {form: new_secret(form) for form in FORMS}
    stored = new_secret("stored-x-auth")
    set_stored = run_cli("connectors", "set", "api", "--type", "REST", "-v", f"url={http_server.url}/json",
                         "-v", "headers=" + json.dumps({"X-Auth": stored}))
    assert set_stored.exit_code == 0 and stored not in set_stored.stdout
    execution_id = outside.start("secret_forms", {"base": http_server.url})
    worker = run_process(engine_process(db_path, "worker", "--until-idle"), tmp_path,
                         **{f"S_{form.upper()}": value for form, value in values.items()})
    assert worker.returncode == 0, worker.stderr
    row = outside.get(execution_id)
    assert row.status == "ENDED_SUCCESS", row.message
    assert row.output_value["argc"] == ["8\n", "5\n"]  # the commands got every argument (and "-c")

    [login], [through_stored] = http_server.to("/login"), http_server.to("/json")  # the real values were sent
    assert login["query"] == {"auth": [values["query_auth"]], "sig": [values["query_sig"]], "page": ["1"]}
    assert (login["headers"]["Cookie"], login["headers"]["X-Auth"]) == (f"sid={values['cookie']}", values["x_auth"])
    assert login["headers"]["X-Tenant"] == values["listed"]
    assert through_stored["headers"]["X-Auth"] == stored
    secrets_sent = [*values.values(), *http_server.cookies]  # and the session cookie the server handed out

    children = [child.id for child in outside.store.children(execution_id)]
    shown = "\n".join([worker.stdout, worker.stderr, *cli_outputs(run_cli, [execution_id, *children])])
    assert shown.count("***") >= len(FORMS)
    files = database_bytes(db_path)
    assert set(files) == {"engine.db", "engine.db-wal", "engine.db-shm", "engine.db-lock"}
    for secret in [*secrets_sent, stored]:
        assert secret not in shown
    for secret in secrets_sent:
        for name, data in files.items():
            assert secret.encode() not in data, f"{secret} is in {name}"
    assert rows_holding(db_path, stored) == {"connectors"}  # a literal kept where the worker reads it, nowhere else
