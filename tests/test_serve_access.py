"""Who may call ``engine serve``: API tokens (none, wrong, revoked), the one-time login
link, session cookies and CSRF, webhook keys; no token or key ever reaches the server's
output or the database files; SIGTERM stops the server and its worker cleanly."""

from __future__ import annotations

import re
import signal
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import httpx
import pytest
from serve_support import Served, engine_command, serving, start_server, until_status

from engine.api import Engine
from engine.server import keys
from store.schema import SCHEMA_VERSION


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serving(tmp_path_factory.mktemp("serve-access")) as served:
        yield served


@pytest.fixture(scope="module")
def secrets_seen() -> list[str]:
    """Every token and key the tests handled, checked against the output and the files at the end."""
    return []


#: The key of the webhook ``bodies``, made once for the tests of the module that use it.
_BODIES_KEY: list[str] = []


def bodies_key(server: Served, seen: list[str]) -> str:
    if not _BODIES_KEY:
        _BODIES_KEY.append(new_webhook(server, "bodies", "echo", seen))
    return _BODIES_KEY[0]


def new_token(server: Served, name: str, seen: list[str]) -> str:
    done = engine_command(server.db, "tokens", "create", name)
    assert done.returncode == 0, done.stderr
    token = done.stdout.strip()
    seen.append(token)
    return token


def new_webhook(server: Served, name: str, flow: str, seen: list[str]) -> str:
    done = engine_command(server.db, "webhooks", "create", name, "--flow", flow, "--url", server.url)
    assert done.returncode == 0, done.stderr
    key = re.search(r"key: (\S+)", done.stdout)[1]  # type: ignore[index]
    assert f"url: {server.url}/webhooks/{name}" in done.stdout
    seen.append(key)
    return key


def error_of(answer: httpx.Response, status: int) -> str:
    assert answer.status_code == status, answer.text
    error: str = answer.json()["error"]
    assert "\n" not in error
    return error


def test_api_calls_need_a_valid_unrevoked_token(server: Served, secrets_seen: list[str]) -> None:
    token = new_token(server, "ci", secrets_seen)
    with server.client() as anonymous:
        assert "engine tokens create" in error_of(anonymous.get("/api/executions"), 401)
        assert "not valid" in error_of(anonymous.get("/api/flows", headers={"Authorization": "Bearer eng_wrong"}), 401)
        assert "Bearer TOKEN" in error_of(anonymous.get("/api/flows", headers={"Authorization": f"Basic {token}"}), 401)
        assert "nothing" not in error_of(anonymous.post("/api/executions", json={"flow": "echo"}), 401)
    with server.client(token) as client:
        assert client.get("/api/executions").status_code == 200
        assert engine_command(server.db, "tokens", "revoke", "ci").returncode == 0
        assert "'ci' was revoked" in error_of(client.get("/api/executions"), 401)
    listed = engine_command(server.db, "tokens", "ls", "--json").stdout
    assert '"ci"' in listed and '"revoked_at": null' not in listed
    twice = engine_command(server.db, "tokens", "revoke", "ci")
    assert twice.returncode == 1 and "no API token 'ci' in use" in twice.stderr
    again = new_token(server, "ci", secrets_seen)  # a revoked name can be used again, with a new token
    with server.client(again) as client:
        assert client.get("/api/flows").status_code == 200
    taken = engine_command(server.db, "tokens", "create", "ci")
    assert taken.returncode == 1 and "exists" in taken.stderr and taken.stdout == ""
    bad = engine_command(server.db, "tokens", "create", "../x")
    assert bad.returncode == 1 and "invalid token name" in bad.stderr and len(bad.stderr.splitlines()) == 1


def test_login_link_works_once_and_cookie_posts_need_the_csrf_token(server: Served) -> None:
    with server.client() as browser:
        first = browser.get(server.login_link.removeprefix(server.url))
        assert first.status_code == 200
        cookies = first.headers.get_list("set-cookie")
        session = next(c for c in cookies if c.startswith("engine_session_"))
        assert "HttpOnly" in session and "SameSite=strict" in session.replace("Strict", "strict")
        csrf_cookie = next(c for c in cookies if c.startswith("engine_csrf_"))
        assert "HttpOnly" not in csrf_cookie
        assert browser.get("/api/executions").status_code == 200  # the cookie is enough to read
        csrf = next(v for k, v in browser.cookies.items() if k.startswith("engine_csrf_"))
        refused = browser.post("/api/executions", json={"flow": "echo"})
        assert "X-CSRF-Token" in error_of(refused, 403)
        wrong = browser.post("/api/executions", json={"flow": "echo"}, headers={"X-CSRF-Token": "nope"})
        error_of(wrong, 403)
        with server.client(new_token(server, "reader", [])) as api:
            assert api.get("/api/executions", params={"flow": "echo"}).json() == []  # refused posts started nothing
        allowed = browser.post("/api/executions", json={"flow": "echo", "wait": 60}, headers={"X-CSRF-Token": csrf})
        assert allowed.status_code == 200 and allowed.json()["status"] == "ENDED_SUCCESS"
    with server.client() as other_browser:
        assert "used already" in error_of(other_browser.get(server.login_link.removeprefix(server.url)), 401)
        assert other_browser.get("/api/executions").status_code == 401
    with server.client(cookies={session.split(";")[0].split("=")[0]: "forged"}) as forger:
        error_of(forger.get("/api/executions"), 401)


def test_webhook_with_the_right_key_starts_the_flow_with_the_request(server: Served, secrets_seen: list[str]) -> None:
    key = new_webhook(server, "deploy", "echo", secrets_seen)
    with server.client() as caller:
        by_header = caller.post("/webhooks/deploy", params={"wait": 60, "ref": "main"}, json={"version": 7},
                                headers={"X-Engine-Webhook-Key": key, "X-Api-Token": "hidden-value-123"})
        assert by_header.status_code == 200, by_header.text
        result = by_header.json()
        assert result["status"] == "ENDED_SUCCESS"
        inputs = result["output"]["inputs"]
        assert inputs["version"] == 7
        hook = inputs["webhook"]
        assert hook["name"] == "deploy" and hook["method"] == "POST"
        assert hook["query"] == {"wait": "60", "ref": "main"}
        assert hook["headers"]["x-engine-webhook-key"] == "***" and hook["headers"]["x-api-token"] == "***"
        by_query = caller.post("/webhooks/deploy", params={"key": key, "wait": 60}, data={"a": "1", "b": "2"})
        assert by_query.json()["output"]["inputs"]["a"] == "1"
        assert "key" not in by_query.json()["output"]["inputs"]["webhook"]["query"]
        later = caller.post("/webhooks/deploy", params={"key": key}, json={"x": 1})
        assert later.status_code == 202
        with server.client(new_token(server, "webhook-reader", secrets_seen)) as api:
            assert until_status(api, later.json()["id"], "ENDED_SUCCESS")["name"] == "webhook deploy"


@pytest.mark.parametrize(("body", "kind", "inputs"), [
    (b"", None, {}),
    (b'{"a": 1}', "application/json", {"a": 1}),
    (b"[1, 2]", "application/json", {"body": [1, 2]}),
    (b'{"a": 1}', None, {"a": 1}),
    (b"a=1&a=2&b=", "application/x-www-form-urlencoded", {"a": ["1", "2"], "b": ""}),
    (b"plain words", "text/plain", {"body": "plain words"}),
])
def test_webhook_bodies_become_inputs(server: Served, secrets_seen: list[str], body: bytes, kind: str | None,
                                      inputs: dict[str, object]) -> None:
    key = bodies_key(server, secrets_seen)
    headers = {"X-Engine-Webhook-Key": key, **({"Content-Type": kind} if kind else {})}
    with server.client() as caller:
        answer = caller.post("/webhooks/bodies", params={"wait": 60}, content=body, headers=headers)
    assert answer.status_code == 200, answer.text
    got = answer.json()["output"]["inputs"]
    assert {k: v for k, v in got.items() if k != "webhook"} == inputs


@pytest.mark.parametrize(("body", "kind", "status", "words"), [
    (b"{nope", "application/json", 400, "not valid JSON"),
    (b"\xff\xfe", "text/plain", 415, "not UTF-8"),
    (b"--x\r\n", "multipart/form-data; boundary=x", 415, "multipart"),
    (b"x" * (1024 * 1024 + 1), "text/plain", 413, "larger than"),
])
def test_webhook_bodies_it_cannot_take_start_nothing(server: Served, secrets_seen: list[str], body: bytes, kind: str,
                                                     status: int, words: str) -> None:
    key = bodies_key(server, secrets_seen)
    with server.client() as caller, _engine(server.db) as engine:
        before = len(engine.store.list_executions(flow="echo", limit=None))
        answer = caller.post("/webhooks/bodies", content=body, headers={"X-Engine-Webhook-Key": key, "Content-Type": kind})
        assert words in error_of(answer, status)
        assert caller.get("/webhooks/bodies", params={"key": key}).status_code == 405  # a GET starts nothing
        assert len(engine.store.list_executions(flow="echo", limit=None)) == before


def test_webhook_with_a_wrong_or_missing_key_starts_nothing(server: Served, secrets_seen: list[str]) -> None:
    key = new_webhook(server, "guarded", "echo", secrets_seen)
    with _engine(server.db) as engine:
        before = len(engine.store.list_executions(flow="echo"))
    wrong = "whk_" + key[4:][::-1]
    secrets_seen.append(wrong)
    with server.client() as caller:
        assert "wrong key" in error_of(caller.post("/webhooks/guarded", params={"key": wrong}, json={}), 401)
        assert "wrong key" in error_of(caller.post("/webhooks/guarded", headers={"X-Engine-Webhook-Key": wrong}), 401)
        assert "needs its key" in error_of(caller.post("/webhooks/guarded", json={"a": 1}), 401)
        assert "no webhook 'other'" in error_of(caller.post("/webhooks/other", params={"key": key}), 404)
        assert engine_command(server.db, "webhooks", "rm", "guarded").returncode == 0
        assert "no webhook" in error_of(caller.post("/webhooks/guarded", params={"key": key}), 404)
    with _engine(server.db) as engine:
        assert len(engine.store.list_executions(flow="echo")) == before


def test_no_token_or_key_reaches_the_output_or_the_database(server: Served, secrets_seen: list[str]) -> None:
    assert len(secrets_seen) >= 5
    assert "/webhooks/deploy?key=***" in server.output()  # the access log shows the call, not the key
    files = {p.name: p.read_bytes() for p in server.db.parent.glob("engine.db*") if p.is_file()}
    assert files.keys() >= {"engine.db"}
    for secret in secrets_seen:
        assert secret not in server.output()
        for name, data in files.items():
            assert secret.encode() not in data, f"{secret[:8]}... is in {name}"


def test_sigterm_stops_the_server_after_its_worker_released_its_lease(tmp_path: Path) -> None:
    served = start_server(tmp_path)
    token = engine_command(served.db, "tokens", "create", "t").stdout.strip()
    gate = tmp_path / "gate"
    streaming, lines = threading.Event(), []

    def follow(execution_id: str) -> None:  # an open event stream must not hold the shutdown
        with served.client(token) as reader, reader.stream("GET", f"/api/executions/{execution_id}/events") as stream:
            for line in stream.iter_lines():
                lines.append(line)
                streaming.set()

    with served.client(token) as api:
        eid = api.post("/api/executions", json={"flow": "busy", "inputs": {"path": str(gate)}}).json()["id"]
        until_status(api, eid, "RUNNING")
        napping = api.post("/api/executions", json={"flow": "nap"}).json()["id"]
        until_status(api, napping, "WAITING")
    reader = threading.Thread(target=follow, args=(napping,))
    reader.start()
    assert streaming.wait(60)
    served.proc.send_signal(signal.SIGTERM)
    gate.write_text("go")  # the step in flight ends; the worker commits it before the process exits
    assert served.proc.wait(timeout=60) == 0, served.output()
    reader.join(60)
    assert "event: end" not in lines  # the stream was cut by the shutdown, not by an end
    assert "engine serve stopped" in served.output() and "Traceback" not in served.output()
    with _engine(served.db) as engine:
        row = engine.get(eid)
        assert row.lease_owner is None
        assert row.status == "ENDED_SUCCESS"


def _engine(db: Path) -> closing[Engine]:
    return closing(Engine(db))


def test_no_worker_serves_but_runs_nothing(tmp_path: Path) -> None:
    served = start_server(tmp_path, "--no-worker")
    try:
        assert "with a worker" not in served.output()
        token = engine_command(served.db, "tokens", "create", "t").stdout.strip()
        with served.client(token) as api:
            waited = api.post("/api/executions", json={"flow": "echo", "wait": 0.5})
            assert waited.status_code == 202 and waited.json()["status"] == "QUEUED"
            assert api.get(f"/api/executions/{waited.json()['id']}").json()["status"] == "QUEUED"
    finally:
        assert served.stop(signal.SIGINT) == 0, served.output()


def test_a_version_4_database_gets_the_token_and_webhook_tables(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    Engine(path).close()
    with closing(sqlite3.connect(path)) as conn, conn:  # make it look like a database of schema version 4
        conn.execute("DROP TABLE api_tokens")
        conn.execute("DROP TABLE webhooks")
        conn.execute("PRAGMA user_version = 4")
    with _engine(path) as engine:
        token = keys.create_token(engine, "after-upgrade")
        assert keys.token_name(engine, token) == "after-upgrade"
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION >= 5
        assert conn.execute("SELECT count(*) FROM webhooks").fetchone() == (0,)
