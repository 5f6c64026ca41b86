"""SMTP connector against a real aiosmtpd server on 127.0.0.1."""

from __future__ import annotations

import email
import email.policy

import pytest

from engine.connectors import ConnectorError, get_connector


def send(server, timeout: float = 5.0, **params: object) -> dict[str, object]:
    params = {"host": server.host, "port": server.port, **params}
    return get_connector("SMTP").run(params, idempotency_key="exec-9:3", timeout=timeout)


def test_message_arrives_with_subject_body_and_message_id(smtp_server):
    out = send(
        smtp_server,
        **{"from": "Robot <robot@example.com>"},
        to=["ann@example.com", "Bob <bob@example.com>"],
        cc="cat@example.com",
        bcc=["dan@example.com"],
        subject="Weekly report",
        body="All green.\n",
        html="<p>All <b>green</b>.</p>",
    )
    assert out == {
        "accepted": ["ann@example.com", "bob@example.com", "cat@example.com", "dan@example.com"],
        "refused": {},
        "message_id": "<engine.exec-9.3@example.com>",
    }
    [envelope] = smtp_server.envelopes
    assert envelope.mail_from == "robot@example.com"
    assert envelope.rcpt_tos == out["accepted"]
    message = email.message_from_bytes(envelope.content, policy=email.policy.default)
    assert message["Subject"] == "Weekly report"
    assert message["Message-ID"] == "<engine.exec-9.3@example.com>"
    assert message["X-Idempotency-Key"] == "exec-9:3"
    assert message["Cc"] == "cat@example.com"
    assert "Bcc" not in message
    assert message.get_body(("plain",)).get_content().rstrip() == "All green."
    assert "<b>green</b>" in message.get_body(("html",)).get_content()


def test_from_underscore_alias_and_login(smtp_server):
    out = send(
        smtp_server,
        from_="robot@example.com",
        to="ann@example.com",
        subject="hi",
        body="text",
        login="robot",
        password="s3cret",
    )
    assert out["accepted"] == ["ann@example.com"]
    assert len(smtp_server.envelopes) == 1


def test_wrong_password_is_not_retryable(smtp_server):
    with pytest.raises(ConnectorError) as caught:
        send(smtp_server, from_="r@example.com", to="a@example.com", login="r", password="bad")
    assert not caught.value.retryable
    assert "bad" not in caught.value.message
    assert smtp_server.envelopes == []


def test_partly_refused_recipients_are_reported(smtp_server):
    out = send(smtp_server, from_="r@example.com", to=["a@example.com", "nobody@example.com"])
    assert out["accepted"] == ["a@example.com"]
    assert out["refused"] == {"nobody@example.com": 550}


@pytest.mark.parametrize(("address", "retryable"), [("nobody@x.org", False), ("busy@x.org", True)])
def test_all_recipients_refused(smtp_server, address, retryable):
    with pytest.raises(ConnectorError) as caught:
        send(smtp_server, from_="r@example.com", to=address)
    assert caught.value.retryable is retryable


def test_starttls_against_a_server_without_it_is_not_retryable(smtp_server):
    with pytest.raises(ConnectorError) as caught:
        send(smtp_server, from_="r@example.com", to="a@example.com", starttls=True)
    assert not caught.value.retryable
    assert "STARTTLS" in caught.value.message


def test_connection_refused_is_retryable(refused_port):
    with pytest.raises(ConnectorError) as caught:
        get_connector("SMTP").run(
            {"host": "127.0.0.1", "port": refused_port, "from": "r@x.org", "to": "a@x.org"},
            idempotency_key="e:1",
            timeout=2.0,
        )
    assert caught.value.retryable
    assert "connection refused" in caught.value.message


def test_silent_server_times_out_and_is_retryable(silent_port):
    with pytest.raises(ConnectorError) as caught:
        get_connector("SMTP").run(
            {"host": "127.0.0.1", "port": silent_port, "from": "r@x.org", "to": "a@x.org"},
            idempotency_key="e:1",
            timeout=0.3,
        )
    assert caught.value.retryable


@pytest.mark.parametrize(
    ("params", "problem"),
    [
        ({"to": "a@x.org"}, "`from`"),
        ({"from": "r@x.org", "to": []}, "no recipient"),
        ({"from": "r@x.org", "to": "a@x.org", "subject": "x\nBcc: b@x.org"}, "linefeed"),
    ],
)
def test_bad_params_are_named(params, problem):
    with pytest.raises(ConnectorError) as caught:
        get_connector("SMTP").run(params, idempotency_key="e:1", timeout=1.0)
    assert not caught.value.retryable
    assert problem in caught.value.message
