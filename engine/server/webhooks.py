"""``/webhooks/{name}``: start a flow from another system's HTTP call, as Cloudomation does.

The caller sends the webhook's key as the ``X-Engine-Webhook-Key`` header (or ``?key=``).
The flow gets the JSON object (or form) body as its inputs (another JSON value or a
text body as the input ``body``) and the input ``webhook``: the webhook's name, the
request's method, its headers (secrets masked, the key too) and its query (the key
removed). ``?wait=SECONDS`` answers with the execution's output when it ends in time;
otherwise (and without ``wait``) the answer is 202 with the execution's id.

A webhook whose action is a git sync (``engine webhooks create NAME --git-sync REPO``,
called by a git server's post-receive hook, say) ignores the body: it registers the
flows of its ref's newest commit and answers 200 with the commit and the flows, or 422
with the one line that says why nothing was registered (``engine.git_actions``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from engine import git_actions
from engine.api import Engine
from engine.connectors.masking import mask_secrets
from engine.server.api import Started, call, wait_for_end
from engine.server.http import ApiError, json_response, read_body, wait_seconds
from engine.server.keys import webhook_for_key
from store.git_actions import GitSource, SyncedFlowInfo
from store.model import Status

KEY_HEADER = "X-Engine-Webhook-Key"
KEY_PARAM = "key"
METHODS = ("POST", "PUT", "PATCH")


class WebhookResult(msgspec.Struct):
    """The answer of a webhook call that waited for its execution to end."""

    id: str
    status: str
    message: str | None
    output: Any


class SyncResult(msgspec.Struct):
    """The answer of a git-sync webhook: the commit whose flows it registered."""

    webhook: str
    git: GitSource
    commit: str
    flows: list[SyncedFlowInfo]


async def call_webhook(request: Request) -> Response:
    engine: Engine = request.app.state.engine
    name = request.path_params["name"]
    key = request.headers.get(KEY_HEADER) or request.query_params.get(KEY_PARAM)
    hook = await call(webhook_for_key, engine, name, key)
    if hook.git is not None:
        outcome = await call(git_actions.sync_webhook, engine.store, hook)
        if outcome.error is not None or outcome.commit is None:
            raise ApiError(422, f"webhook {name}: git sync failed: {outcome.error}")
        return json_response(SyncResult(name, hook.git, outcome.commit, outcome.flows))
    wait = wait_seconds(request.query_params.get("wait"))
    inputs = {**await _body_inputs(request), "webhook": _request_input(request, name)}
    execution_id = await call(lambda: engine.start(hook.flow, inputs, name=f"webhook {name}"), status=422)
    if wait is None:
        return json_response(Started(execution_id, Status.QUEUED), 202)
    row = await wait_for_end(request, execution_id, wait)
    if row.ended or row.status == Status.HALTED:
        return json_response(WebhookResult(row.id, row.status, row.message, row.output_value))
    return json_response(Started(row.id, row.status), 202)


def _request_input(request: Request, name: str) -> dict[str, Any]:
    """The ``webhook`` input: name, method, headers (masked) and query (without the key)."""
    query = {k: v for k, v in request.query_params.items() if k != KEY_PARAM}
    return {"name": name, "method": request.method, "headers": mask_secrets(dict(request.headers)),
            "query": mask_secrets(query)}


async def _body_inputs(request: Request) -> dict[str, Any]:
    body = await read_body(request)
    if not body.strip():
        return {}
    kind = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if kind.startswith("multipart/"):
        raise ApiError(415, "multipart bodies are not accepted; send JSON or a url-encoded form; nothing was started")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(415, "the body is not UTF-8 text; send JSON or a url-encoded form; nothing was started") from None
    if kind == "application/x-www-form-urlencoded":
        form: dict[str, Any] = {}
        for field, value in parse_qsl(text, keep_blank_values=True):
            form[field] = [*form[field], value] if isinstance(form.get(field), list) else (
                [form[field], value] if field in form else value)
        return form
    if kind in ("", "application/json") or kind.endswith("+json"):
        try:
            value = msgspec.json.decode(body)
        except (msgspec.DecodeError, RecursionError) as exc:
            raise ApiError(400, f"the body is not valid JSON ({exc}); nothing was started") from None
        return value if isinstance(value, dict) else {"body": value}
    return {"body": text}


def routes() -> list[Route]:
    """POST (PUT, PATCH) only: a GET that link previews and crawlers send must start nothing."""
    return [Route("/webhooks/{name}", call_webhook, methods=list(METHODS))]
