"""The OpenAPI 3.1 document served at ``/api/openapi.json``: the schemas come from the
msgspec Structs the routes encode and decode, the paths from one table below, and a
test checks that the table names every route of the app."""

from __future__ import annotations

from typing import Any

import msgspec

from engine.control import ControlResult
from engine.details import Dependency, Timings, VersionInfo
from engine.schedules import ScheduleInfo
from engine.server.api import Answered, ControlRequest, Started, StartRequest
from engine.server.http import Error
from engine.server.webhooks import KEY_HEADER, METHODS, SyncResult, WebhookResult
from engine.views import INTERNAL_FIELDS
from store.events import ForkOrigin
from store.model import STATUSES, ExecutionRow, MessageRow

_STRUCTS = (StartRequest, Started, ControlRequest, Answered, Error, WebhookResult, SyncResult, ControlResult, MessageRow,
            ExecutionRow, VersionInfo, Timings, Dependency, ForkOrigin, ScheduleInfo)


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _array(name: str) -> dict[str, Any]:
    return {"type": "array", "items": _ref(name)}


def _schemas() -> dict[str, Any]:
    _, schemas = msgspec.json.schema_components(_STRUCTS, ref_template="#/components/schemas/{name}")
    row = schemas.pop("ExecutionRow")
    execution = {**row, "title": "Execution", "description": "An execution, as `engine show --json` / `ls --json` show it."}
    execution["properties"] = {k: v for k, v in row["properties"].items() if k not in INTERNAL_FIELDS}
    execution["properties"]["duration"] = {"anyOf": [{"type": "number"}, {"type": "null"}]}
    execution["required"] = [*(k for k in row["required"] if k not in INTERNAL_FIELDS), "duration"]
    schemas["Execution"] = execution
    schemas["ExecutionDetails"] = {"allOf": [_ref("Execution"), {"type": "object", "properties": {
        "version": _ref("VersionInfo"), "timings": _ref("Timings"),
        "children": {"type": "array", "items": {"type": "object"}},
        "dependencies": {"type": "object", "properties": {"waits_for": _array("Dependency"),
                                                          "waited_by": _array("Dependency")}},
        "fork": {"anyOf": [_ref("ForkOrigin"), {"type": "null"}]}}}]}
    schemas["Event"] = {"type": "object", "description": "One event of an execution's log (`engine history --json`).",
                        "properties": {"seq": {"type": "integer"}, "kind": {"type": "string"},
                                       "at": {"type": "number"}, "line": {"type": "integer"}, "data": {}}}
    schemas["Flow"] = {"type": "object", "properties": {k: {"type": "string"} for k in ("name", "project", "version")}
                       | {"path": {"anyOf": [{"type": "string"}, {"type": "null"}]}}}
    schemas["FlowDetails"] = {"allOf": [_ref("Flow"), {"type": "object", "properties": {
        "source": {"type": "string"}, "versions": {"type": "array", "items": {"type": "object"}}}}]}
    schemas["Answer"] = {"type": "object", "description": "The answer: one value per form field."}
    schemas["Inputs"] = {"type": "object", "description": "The flow's inputs (JSON or a url-encoded form)."}
    return schemas


def _param(name: str, where: str = "query", description: str = "", **schema: Any) -> dict[str, Any]:
    return {"name": name, "in": where, "required": where == "path", "description": description,
            "schema": schema or {"type": "string"}}


_ID = _param("id", "path", "An execution id (or a unique prefix).")
#: Answers that are text, not JSON: their schema names the media type.
_TEXT = {kind: {"type": "string", "contentMediaType": f"text/{kind}"} for kind in ("event-stream", "html")}
_JSON = "application/json"

#: (method, path, summary, parameters, request body schema, {status: response schema})
_ROUTES: list[tuple[str, str, str, list[dict[str, Any]], str | None, dict[int, Any]]] = [
    ("post", "/api/executions", "Start a flow; with `wait`, answer the ended execution", [], "StartRequest",
     {200: _ref("Execution"), 202: _ref("Started")}),
    ("get", "/api/executions", "List executions, newest first (the filters of `engine ls`)", [
        _param("status", enum=list(STATUSES)), _param("flow"), _param("project"), _param("parent"),
        _param("since", description="10m, 2h, 1d, or an ISO date"), _param("limit", type="integer", minimum=0),
        _param("q", description="Full-text search: every word starts a word of the log, messages or errors, "
                                "or is part of the id, name or flow (with status, flow and limit only)")],
     None, {200: _array("Execution")}),
    ("get", "/api/executions/{id}", "One execution (`engine show --json`)", [_ID], None, {200: _ref("ExecutionDetails")}),
    ("get", "/api/executions/{id}/history", "Its event log (`engine history --json`)", [_ID], None, {200: _array("Event")}),
    ("get", "/api/executions/{id}/events", "Its events as Server-Sent Events, live until it ends (`Last-Event-ID` resumes)",
     [_ID, _param("after", type="integer", description="Send events after this seq"),
      _param("Last-Event-ID", "header", "Send events after this seq")], None, {200: _TEXT["event-stream"]}),
    *((("post", f"/api/executions/{{id}}/{action}", f"{action.capitalize()} the execution (`engine {action}`)", [_ID],
        "ControlRequest" if action in ("resume", "retry") else None, {200: _ref("ControlResult")}))
      for action in ("cancel", "pause", "resume", "retry")),
    ("get", "/api/messages", "Messages waiting for an answer (`all=true`: every message)",
     [_param("all", type="boolean"), _param("execution")], None, {200: _array("MessageRow")}),
    ("post", "/api/messages/{id}/respond", "Answer a waiting message (`engine messages respond`)",
     [_param("id", "path", "A message id")], "Answer", {200: _ref("Answered")}),
    ("get", "/api/flows", "Registered flows and their current versions", [], None, {200: _array("Flow")}),
    ("get", "/api/flows/{name}", "One flow: its source and every version", [_param("name", "path")], None,
     {200: _ref("FlowDetails")}),
    ("get", "/api/schedules", "Schedules with their next and last slots (`engine schedules ls --json`)", [], None,
     {200: _array("ScheduleInfo")}),
    ("get", "/metrics", "Prometheus metrics: executions by status, queue depth, commits, steps, latencies", [], None,
     {200: {"type": "string", "contentMediaType": "text/plain"}}),
    ("get", "/api/openapi.json", "This document", [], None, {200: {"type": "object"}}),
    *((method, "/webhooks/{name}", "Start the webhook's flow with the body as inputs (or run its git sync)", [
        _param("name", "path"), _param("key", description=f"The webhook's key (better: the {KEY_HEADER} header)"),
        _param(KEY_HEADER, "header"), _param("wait", type="number", description="Seconds to wait for the output")],
       "Inputs", {200: {"oneOf": [_ref("WebhookResult"), _ref("SyncResult")]}, 202: _ref("Started")})
      for method in (m.lower() for m in METHODS)),
    ("get", "/login", "Use a one-time login link: sets the session cookie", [_param("token")], None,
     {200: _TEXT["html"]}),
]

_ERRORS = {400: "Bad input", 401: "No, a wrong or a revoked token or key", 403: "A cookie POST without its CSRF token",
           404: "Unknown id or name", 409: "The execution's state refuses the operation", 413: "Body too large",
           422: "Input that does not fit"}


def document() -> dict[str, Any]:
    """The OpenAPI document of every route."""
    paths: dict[str, dict[str, Any]] = {}
    for method, path, summary, params, body, answers in _ROUTES:
        op: dict[str, Any] = {"summary": summary, "parameters": params, "responses": {
            str(code): {"description": "OK" if code < 300 else "Accepted",
                        "content": {schema.get("contentMediaType", _JSON): {"schema": schema}}}
            for code, schema in answers.items()}}
        for code, why in _ERRORS.items():
            op["responses"][str(code)] = {"description": why, "content": {_JSON: {"schema": _ref("Error")}}}
        if body is not None:
            op["requestBody"] = {"required": body not in ("ControlRequest", "Inputs"),
                                 "content": {_JSON: {"schema": _ref(body)}}}
        if not path.startswith(("/webhooks", "/login", "/api/openapi")):
            op["security"] = [{"bearer": []}, {"session": []}]
        paths.setdefault(path, {})[method] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "engine serve", "version": "1",
                 "description": "The durable-execution engine's HTTP API. Authenticate with "
                                "`Authorization: Bearer TOKEN` (`engine tokens create NAME`)."},
        "paths": paths,
        "components": {"schemas": _schemas(), "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer"},
            "session": {"type": "apiKey", "in": "cookie", "name": "engine_session_PORT",
                        "description": "Set by the login link; POSTs also need the X-CSRF-Token header."}}},
    }
