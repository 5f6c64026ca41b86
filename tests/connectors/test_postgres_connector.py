"""POSTGRES connector against a real server named by ENGINE_TEST_POSTGRES_DSN."""

from __future__ import annotations

import sys
import uuid

import msgspec
import pytest

from engine.connectors import ConnectorError, get_connector
from stores import reachable_dsn


def pg(dsn, query, params=None, timeout=5.0):
    raw = {"dsn": dsn, "query": query}
    if params is not None:
        raw["params"] = params
    return get_connector("POSTGRES").run(raw, idempotency_key="e:1", timeout=timeout)


@pytest.fixture
def dsn():
    """The test server's DSN; the test is skipped when it is unset or unreachable."""
    return reachable_dsn()


@pytest.fixture
def table(dsn):
    name = f"engine_test_{uuid.uuid4().hex[:12]}"
    pg(dsn, f"CREATE TABLE {name} (id serial PRIMARY KEY, name text, amount numeric)")
    yield name
    pg(dsn, f"DROP TABLE {name}")


def test_write_then_read_with_list_and_dict_params(dsn, table):
    written = pg(
        dsn,
        f"INSERT INTO {table} (name, amount) VALUES (%s, %s), (%s, %s)",
        ["a", "1.10", "b", "2"],
    )
    assert written == {"rows": [], "rowcount": 2}
    out = pg(dsn, f"SELECT name, amount FROM {table} WHERE name = %(n)s", {"n": "a"})
    assert out == {"rows": [{"name": "a", "amount": "1.10"}], "rowcount": 1}


def test_values_are_made_plain(dsn):
    out = pg(
        dsn,
        "SELECT '2024-05-01T10:00:00+00'::timestamptz AS at, interval '90 seconds' AS span, "
        "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid AS id, '{\"k\": [1]}'::jsonb AS doc, "
        "'\\x0001'::bytea AS raw, ARRAY[1, 2] AS nums",
    )
    row = out["rows"][0]
    assert row["at"].startswith("2024-05-01T10:00:00")
    assert row["span"] == 90.0
    assert row["id"] == "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
    assert row["doc"] == {"k": [1]}
    assert row["raw"] == b"\x00\x01"
    assert row["nums"] == [1, 2]
    msgspec.msgpack.encode(out)


def test_sql_error_is_not_retryable(dsn):
    with pytest.raises(ConnectorError) as caught:
        pg(dsn, "SELEC 1")
    assert not caught.value.retryable
    assert "42601" in caught.value.message


def test_statement_timeout_is_retryable(dsn):
    with pytest.raises(ConnectorError) as caught:
        pg(dsn, "SELECT pg_sleep(3)", timeout=0.3)
    assert caught.value.retryable
    assert caught.value.details["sqlstate"] == "57014"


def test_unknown_role_is_refused_and_not_retryable(dsn):
    from psycopg.conninfo import make_conninfo

    with pytest.raises(ConnectorError) as caught:
        pg(make_conninfo(dsn, user="engine_no_such_role"), "SELECT 1")
    assert not caught.value.retryable
    assert "check the user, password and database name" in caught.value.message


def test_connection_refused_is_retryable_and_hides_password(refused_port):
    pytest.importorskip("psycopg", reason="psycopg is not installed")
    with pytest.raises(ConnectorError) as caught:
        pg(f"postgresql://app:hunter2@127.0.0.1:{refused_port}/db", "SELECT 1")
    assert caught.value.retryable
    assert "hunter2" not in caught.value.message
    assert "check that the server is running" in caught.value.message


def test_missing_psycopg_tells_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "psycopg", None)  # makes `import psycopg` fail
    with pytest.raises(ConnectorError) as caught:
        pg("postgresql://127.0.0.1/db", "SELECT 1")
    assert not caught.value.retryable
    assert "pip install 'psycopg[binary]'" in caught.value.message
