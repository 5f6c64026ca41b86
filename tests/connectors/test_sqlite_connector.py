"""SQLITE connector against real database files in tmp_path."""

from __future__ import annotations

import sqlite3
import time

import pytest

from engine.connectors import ConnectorError, get_connector


def sql(path, query, params=None, *, create=False, timeout=2.0):
    raw = {"path": str(path), "query": query, "create": create}
    if params is not None:
        raw["params"] = params
    return get_connector("SQLITE").run(raw, idempotency_key="e:1", timeout=timeout)


def test_create_write_and_read_back(tmp_path):
    db = tmp_path / "data.db"
    sql(db, "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, blob BLOB)", create=True)
    inserted = sql(
        db, "INSERT INTO t (name, blob) VALUES (?, ?), (?, ?)", ["a", b"\x00", "b", None]
    )
    assert inserted == {"rows": [], "rowcount": 2}
    selected = sql(db, "SELECT id, name, blob FROM t WHERE name >= :low ORDER BY id", {"low": "a"})
    assert selected == {
        "rows": [{"id": 1, "name": "a", "blob": b"\x00"}, {"id": 2, "name": "b", "blob": None}],
        "rowcount": 2,
    }


def test_writes_are_committed_and_visible_to_other_connections(tmp_path):
    db = tmp_path / "data.db"
    sql(db, "CREATE TABLE t (x)", create=True)
    returned = sql(db, "INSERT INTO t VALUES (42) RETURNING x")
    assert returned["rows"] == [{"x": 42}]
    with sqlite3.connect(db) as other:
        assert other.execute("SELECT x FROM t").fetchall() == [(42,)]


def test_missing_file_is_an_error_and_not_created(tmp_path):
    db = tmp_path / "typo.db"
    with pytest.raises(ConnectorError) as caught:
        sql(db, "SELECT 1")
    assert not caught.value.retryable
    assert "create=True" in caught.value.message
    assert not db.exists()


def test_sql_error_is_not_retryable(tmp_path):
    db = tmp_path / "data.db"
    sql(db, "CREATE TABLE t (x)", create=True)
    with pytest.raises(ConnectorError) as caught:
        sql(db, "SELEC x FROM t")
    assert not caught.value.retryable
    assert "OperationalError" in caught.value.message


def test_locked_database_is_retryable(tmp_path):
    db = tmp_path / "data.db"
    sql(db, "CREATE TABLE t (x)", create=True)
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    waited = {}
    try:
        for timeout in (0.1, 2.0):
            started = time.monotonic()
            with pytest.raises(ConnectorError) as caught:
                sql(db, "INSERT INTO t VALUES (1)", timeout=timeout)
            waited[timeout] = time.monotonic() - started
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert caught.value.retryable
    assert "locked" in caught.value.message
    # the timeout is honoured: measured against a 20 times longer one, in this run
    assert waited[0.1] < waited[2.0] / 4, waited


def test_params_must_be_list_or_dict(tmp_path):
    with pytest.raises(ConnectorError) as caught:
        sql(tmp_path / "x.db", "SELECT ?", "oops", create=True)
    assert "$.params" in caught.value.message
