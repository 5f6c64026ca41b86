"""The JSON API of ``engine serve``, over real HTTP against a real server process with
its embedded worker (one server for the module)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import closing
from typing import Any

import httpx
import pytest
from serve_support import Served, api_client, engine_command, serving, until_status

from engine.api import Engine
from engine.server import pages as monitor_pages
from engine.server.app import create_app
from engine.server.auth import Sessions


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serving(tmp_path_factory.mktemp("serve-api")) as served:
        yield served


@pytest.fixture(scope="module")
def api(server: Served) -> Iterator[httpx.Client]:
    with api_client(server, "tests") as client:
        yield client


def start(api: httpx.Client, flow: str, inputs: dict[str, Any] | None = None, **extra: Any) -> httpx.Response:
    return api.post("/api/executions", json={"flow": flow, "inputs": inputs or {}, **extra})


def test_start_with_wait_answers_the_ended_execution_and_show_has_the_cli_fields(api: httpx.Client, server: Served) -> None:
    done = start(api, "echo", {"n": 1, "text": "hi"}, name="first", wait=60)
    assert done.status_code == 200, done.text
    ended = done.json()
    assert ended["status"] == "ENDED_SUCCESS" and ended["output_value"] == {"inputs": {"n": 1, "text": "hi"}}
    assert ended["name"] == "first" and "lease_owner" not in ended
    shown = api.get(f"/api/executions/{ended['id']}").json()
    cli = json.loads(engine_command(server.db, "show", ended["id"], "--json").stdout)
    assert shown.keys() == cli.keys()
    assert {k: v for k, v in shown.items() if k != "timings"} == {k: v for k, v in cli.items() if k != "timings"}


def test_start_without_wait_answers_202_and_the_worker_runs_it(api: httpx.Client) -> None:
    started = start(api, "echo", {"n": 2})
    assert started.status_code == 202 and started.json()["status"] == "QUEUED"
    assert until_status(api, started.json()["id"], "ENDED_SUCCESS")["output_value"] == {"inputs": {"n": 2}}


def test_list_filters_as_engine_ls(api: httpx.Client) -> None:
    ids = [start(api, "echo", {"i": i}, wait=60).json()["id"] for i in range(3)]
    listed = api.get("/api/executions", params={"flow": "echo", "limit": 2}).json()
    assert [e["id"] for e in listed] == ids[::-1][:2]
    assert all(e["status"] == "ENDED_SUCCESS" for e in api.get("/api/executions", params={"status": "ended_success"}).json())
    assert api.get("/api/executions", params={"flow": "nap"}).json() == []
    assert len(api.get("/api/executions", params={"since": "1h", "project": "default", "limit": 0}).json()) >= 3
    assert api.get("/api/executions", params={"since": "2999-01-01"}).json() == []


def test_history_is_engine_history_json(api: httpx.Client, server: Served) -> None:
    eid = start(api, "echo", {"n": 3}, wait=60).json()["id"]
    history = api.get(f"/api/executions/{eid}/history").json()
    assert history == json.loads(engine_command(server.db, "history", eid, "--json").stdout)
    assert [e["kind"] for e in history][-1] == "ended" and [e["seq"] for e in history] == list(range(1, len(history) + 1))


def test_event_stream_sees_the_execution_end_live_and_resumes_after_last_event_id(api: httpx.Client) -> None:
    eid = start(api, "ask").json()["id"]
    until_status(api, eid, "WAITING")
    seqs: list[int] = []
    kinds: list[str] = []
    end: dict[str, Any] = {}
    with api.stream("GET", f"/api/executions/{eid}/events") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        event = ""
        for line in stream.iter_lines():
            if line.startswith("id: "):
                seqs.append(int(line[4:]))
            elif line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event == "end":
                end = json.loads(line[6:])
                break
            elif line.startswith("data: "):
                kinds.append(json.loads(line[6:])["kind"])
                if kinds[-1] == "message":  # the execution waits on it: answer it while the stream is open
                    message = api.get("/api/messages", params={"execution": eid}).json()[0]
                    assert api.post(f"/api/messages/{message['id']}/respond", json={"count": 7}).status_code == 200
    assert end["status"] == "ENDED_SUCCESS" and kinds[-1] == "ended"
    assert seqs == list(range(1, len(seqs) + 1)) and end["last_seq"] == seqs[-1]
    resumed = api.get(f"/api/executions/{eid}/events", headers={"Last-Event-ID": str(seqs[-2])}).text
    assert [line for line in resumed.splitlines() if line.startswith("id: ")] == [f"id: {seqs[-1]}"]
    assert "event: end" in resumed


def test_control_pause_resume_cancel_retry(api: httpx.Client) -> None:
    eid = start(api, "nap").json()["id"]
    until_status(api, eid, "WAITING")
    paused = api.post(f"/api/executions/{eid}/pause")
    assert paused.status_code == 200 and paused.json()["status"] == "PAUSED", paused.text
    again = api.post(f"/api/executions/{eid}/pause")
    assert again.status_code == 409 and "already PAUSED" in again.json()["error"]
    resumed = api.post(f"/api/executions/{eid}/resume")
    assert resumed.json()["before"] == "PAUSED" and resumed.json()["status"] == "WAITING"
    cancelled = api.post(f"/api/executions/{eid}/cancel").json()
    assert cancelled["status"] == "ENDED_CANCELLED" and eid in cancelled["cancelled"]
    retried = api.post(f"/api/executions/{eid}/retry", json={"flow_version": "current"}).json()
    assert retried["status"] == "QUEUED" and retried["attempt"] == 2
    until_status(api, eid, "WAITING")
    api.post(f"/api/executions/{eid}/cancel")
    failed = start(api, "fails", wait=60).json()
    assert failed["status"] == "ENDED_ERROR"
    assert api.post(f"/api/executions/{failed['id']}/retry").json()["attempt"] == 2
    assert until_status(api, failed["id"], "ENDED_ERROR")["message"] == "failed on purpose"


def test_messages_respond_checks_the_answer_as_the_cli_does(api: httpx.Client) -> None:
    eid = start(api, "ask").json()["id"]
    until_status(api, eid, "WAITING")
    waiting = api.get("/api/messages").json()
    message = next(m for m in waiting if m["execution_id"] == eid)
    wrong = api.post(f"/api/messages/{message['id']}/respond", json={"count": "many"})
    assert wrong.status_code == 422 and "the execution keeps waiting" in wrong.json()["error"]
    assert api.get(f"/api/executions/{eid}").json()["status"] == "WAITING"
    right = api.post(f"/api/messages/{message['id']}/respond", json={"count": "3"})
    assert right.status_code == 200 and right.json() == {"id": message["id"], "answer": {"count": 3}}
    assert until_status(api, eid, "ENDED_SUCCESS")["output_value"] == {"count": 3}
    twice = api.post(f"/api/messages/{message['id']}/respond", json={"count": 4})
    assert twice.status_code == 409 and "answered" in twice.json()["error"]
    assert message["id"] in [m["id"] for m in api.get("/api/messages", params={"all": "true"}).json()]


def test_flows_and_their_versions(api: httpx.Client) -> None:
    flows = {f["name"]: f for f in api.get("/api/flows").json()}
    assert {"echo", "nap", "ask", "fails", "busy"} <= flows.keys()
    echo = api.get("/api/flows/echo").json()
    assert echo["version"] == flows["echo"]["version"] and "def handler" in echo["source"]
    assert [v["current"] for v in echo["versions"]] == [True]


@pytest.mark.parametrize(("method", "path", "body", "status", "words"), [
    ("get", "/api/executions/nope", None, 404, "no execution 'nope'"),
    ("get", "/api/executions/nope/history", None, 404, "no execution"),
    ("get", "/api/executions/nope/events", None, 404, "no execution"),
    ("post", "/api/executions/nope/cancel", None, 404, "no execution"),
    ("post", "/api/messages/nope/respond", {}, 404, "no message"),
    ("get", "/api/flows/nope", None, 404, "not registered"),
    ("get", "/api/nothing", None, 404, "no route"),
    ("post", "/api/executions", {"flow": "nope"}, 404, "flow 'nope' does not exist"),
    ("post", "/api/executions", {"flow": 3}, 422, "Expected `str`"),
    ("post", "/api/executions", {"flow": "echo", "extra": 1}, 422, "unknown field"),
    ("post", "/api/executions", {"flow": "echo", "wait": -1}, 422, "wait must be"),
    ("post", "/api/executions", "{not json", 400, "not valid JSON"),
    ("post", "/api/executions", "[" * 100_000, 422, "Expected `object`"),
    ("post", "/api/executions", '{"flow": "echo", "inputs": {"a": ' + "[" * 5000 + "]" * 5000 + "}}", 422, "nest"),
    ("get", "/api/executions?status=DONE", None, 422, "must be one of"),
    ("get", "/api/executions?since=yesterday", None, 422, "neither a duration"),
    ("get", "/api/executions?limit=-1", None, 422, "whole number"),
    ("put", "/api/executions", None, 405, "not allowed"),
])
def test_bad_requests_get_one_line(api: httpx.Client, method: str, path: str, body: Any, status: int, words: str) -> None:
    content = body if isinstance(body, str) else None
    answer = api.request(method.upper(), path, json=None if isinstance(body, str) else body, content=content)
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert words in error and "\n" not in error and "Traceback" not in error


def test_openapi_describes_every_route(api: httpx.Client, db_url: str) -> None:
    doc = httpx.get(f"{api.base_url}/api/openapi.json").json()  # no token needed for the description
    assert doc["openapi"].startswith("3.")
    with closing(Engine(db_url)) as engine:
        app = create_app(engine, Sessions(0))
        pages = {route.path for route in monitor_pages.routes()}  # HTML for browsers, not the API
        routes = {(method.lower(), route.path) for route in app.routes if route.path not in pages
                  for method in route.methods - {"HEAD"}}
    described = {(method, path) for path, ops in doc["paths"].items() for method in ops}
    assert routes == described
    for ref in json.dumps(doc).split('"$ref": "#/components/schemas/')[1:]:
        assert ref.split('"')[0] in doc["components"]["schemas"]
