"""REST connector against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import random

import msgspec
import pytest

from engine.connectors import ConnectorError, RetryPolicy, get_connector, run_with_retries

KEY = "exec-1:7"


def rest(params: dict[str, object], timeout: float | None = 5.0) -> dict[str, object]:
    return get_connector("REST").run(params, idempotency_key=KEY, timeout=timeout)


def test_get_json_with_query_params(http_server):
    out = rest({"url": f"{http_server.base_url}/json", "params": {"q": "x y", "n": [1, 2]}})
    assert out["status_code"] == 200
    assert out["json"] == {"hello": "world", "query": {"q": ["x y"], "n": ["1", "2"]}}
    assert out["headers"]["Content-Type"] == "application/json"
    msgspec.msgpack.encode(out)


def test_post_json_sends_body_and_idempotency_key(http_server):
    out = rest(
        {
            "url": f"{http_server.base_url}/echo",
            "method": "post",
            "json": {"a": [1, 2]},
            "headers": {"X-Trace": "t1"},
        }
    )
    assert out["json"] == {
        "method": "POST",
        "body": '{"a": [1, 2]}',
        "content_type": "application/json",
    }
    received = http_server.requests[-1]["headers"]
    assert received["Idempotency-Key"] == KEY
    assert received["X-Trace"] == "t1"


def test_form_data_and_text_and_binary_responses(http_server):
    form = rest({"url": f"{http_server.base_url}/echo", "method": "PUT", "data": {"a": "1 2"}})
    assert form["json"]["body"] == "a=1+2"
    assert rest({"url": f"{http_server.base_url}/text"})["text"] == "plain text é"
    assert rest({"url": f"{http_server.base_url}/binary"})["content"] == bytes(range(256))


def test_4xx_is_not_retryable_and_has_status_and_body(http_server):
    with pytest.raises(ConnectorError) as caught:
        rest({"url": f"{http_server.base_url}/status/404"})
    error = caught.value
    assert not error.retryable
    assert error.details["status_code"] == 404
    assert error.details["body"] == "nope: 404"
    assert "HTTP 404" in error.message and "/status/404" in error.message


@pytest.mark.parametrize("code", [429, 500, 503])
def test_5xx_and_429_are_retryable(http_server, code):
    with pytest.raises(ConnectorError) as caught:
        rest({"url": f"{http_server.base_url}/status/{code}"})
    assert caught.value.retryable
    assert caught.value.details["status_code"] == code


def test_503_then_200_succeeds_with_retries_and_reports_each_attempt(http_server):
    attempts: list[tuple[int, object, object, float]] = []
    sleeps: list[float] = []
    out = run_with_retries(
        get_connector("REST"),
        {"url": f"{http_server.base_url}/flaky/2"},
        idempotency_key=KEY,
        policy=RetryPolicy(retries=3, backoff_initial=0.01),
        timeout=5.0,
        on_attempt=lambda n, result, error, seconds: attempts.append((n, result, error, seconds)),
        sleep=sleeps.append,
        rng=random.Random(1),
    )
    assert out["json"] == {"hits": 3}
    assert [(n, result is None, error is None) for n, result, error, _ in attempts] == [
        (1, True, False),
        (2, True, False),
        (3, False, True),
    ]
    assert all(
        isinstance(error, ConnectorError) and error.retryable for _, _, error, _ in attempts[:2]
    )
    assert len(sleeps) == 2 and all(0 < s <= 0.02 for s in sleeps)
    keys = {r["headers"]["Idempotency-Key"] for r in http_server.requests}
    assert keys == {KEY}


def test_timeout_is_retryable(http_server):
    with pytest.raises(ConnectorError) as caught:
        rest({"url": f"{http_server.base_url}/slow"}, timeout=0.2)
    assert http_server.slow_answered == 0  # it gave up while the server still held the answer
    assert caught.value.retryable
    assert "timed out after 0.2s" in caught.value.message


def test_connection_refused_is_retryable(refused_port):
    with pytest.raises(ConnectorError) as caught:
        rest({"url": f"http://127.0.0.1:{refused_port}/x"})
    assert caught.value.retryable
    assert caught.value.message == (
        f"REST GET http://127.0.0.1:{refused_port}/x failed: connection refused (retryable); "
        "check that the server is running"
    )


def test_error_messages_hide_secrets(http_server):
    url = http_server.base_url.replace("http://", "http://user:hunter2@")
    with pytest.raises(ConnectorError) as caught:
        rest(
            {
                "url": f"{url}/status/401",
                "params": {"api_key": "k-123456"},
                "headers": {"Authorization": "Bearer tok-abcdef"},
            }
        )
    text = repr(caught.value.to_dict())
    for secret in ("hunter2", "k-123456", "tok-abcdef"):
        assert secret not in text


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({}, "url"),
        ({"url": "http://127.0.0.1/", "heders": {}}, "heders"),
        ({"url": "http://127.0.0.1/", "verify": "no"}, "verify"),
        ({"url": "http://127.0.0.1/", "json": {}, "data": "x"}, "json or data"),
        ({"url": "ftp://127.0.0.1/"}, "http://"),
        ({"url": "http:///path"}, "name a host"),
        ({"url": "http://127.0.0.1:1/", "headers": {"X-A": "secret\r\nInjected: 1"}}, "header"),
    ],
)
def test_bad_params_are_not_retryable_and_named(params, named):
    with pytest.raises(ConnectorError) as caught:
        rest(params)
    assert not caught.value.retryable
    assert named in caught.value.message
