"""The suite's own store switch (tests/stores.py): a fresh PostgreSQL database per test,
gone at teardown even when a worker left a connection open; a bad setting stops pytest
with one line. Runs against ENGINE_TEST_POSTGRES_DSN; skipped without a server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import stores


@pytest.fixture
def admin_dsn(monkeypatch: pytest.MonkeyPatch) -> str:
    """The server of ENGINE_TEST_POSTGRES_DSN, with the store switched to PostgreSQL."""
    dsn = stores.reachable_dsn()
    monkeypatch.setenv(stores.STORE_VARIABLE, "postgres")
    return dsn


def databases(dsn: str) -> set[str]:
    import psycopg

    with psycopg.connect(dsn) as conn:
        return {name for (name,) in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'engine_test_%'")}


def test_each_fresh_database_is_new_empty_and_dropped_with_its_connections(admin_dsn: str, tmp_path: Path) -> None:
    """Other test sessions may share the server: only this test's own databases are counted."""
    import psycopg

    with stores.fresh_database(tmp_path) as first, stores.fresh_database(tmp_path) as second:
        assert first != second and first.startswith("postgresql://")
        made = {url.rsplit("/", 1)[1] for url in (first, second)}
        assert made <= databases(admin_dsn)
        empty = stores.table_values(first)
        assert "executions" in empty and [t for t, v in empty.items() if v] == ["engine_schema"]  # tables, no rows
        stores.run_sql(first, "INSERT INTO engine_schema VALUES (0)")
        assert stores.run_sql(first, "SELECT count(*) FROM engine_schema") == [(2,)]
        assert stores.table_values(second) == empty  # the other one holds nothing of it
        left_open = psycopg.connect(first)  # as a killed worker's connection would be
    stores.DATABASES.settle()  # dropped in the background: wait for it
    assert not made & databases(admin_dsn)
    left_open.close()


def test_a_database_without_the_engines_tables_is_there_for_tests_of_their_creation(admin_dsn: str) -> None:
    with stores.fresh_postgres(empty=True) as url:
        assert stores.table_values(url) == {}


def test_a_store_the_suite_cannot_use_stops_pytest_in_one_line(tmp_path: Path) -> None:
    env = {**os.environ, stores.STORE_VARIABLE: "postgres", stores.DSN_VARIABLE: ""}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(Path(__file__).parent / "test_codec.py")],
                          env=env, capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path)
    assert done.returncode != 0
    assert f"{stores.STORE_VARIABLE}=postgres needs {stores.DSN_VARIABLE}=postgresql://" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
