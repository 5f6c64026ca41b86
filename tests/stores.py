"""Which store the tests run on: SQLite files (the default) or PostgreSQL databases.

``ENGINE_TEST_STORE=postgres`` with ``ENGINE_TEST_POSTGRES_DSN=postgresql://user@host:port/db``
(a server where the tests may create databases) gives every test that touches storage a fresh
database on that server, ``engine_test_<random>``, dropped at teardown. Tests reach this module
only through conftest's ``db_url`` / ``make_db`` fixtures (and ``fresh_database`` for module-wide
servers), so nothing else in ``tests/`` knows which store it runs on. Import with
``from stores import ...``: ``tests/`` is on ``sys.path``.
"""

from __future__ import annotations

import fcntl
import os
import re
import secrets
import sqlite3
import urllib.parse
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

#: The variable that picks the store, and its values.
STORE_VARIABLE = "ENGINE_TEST_STORE"
STORES = ("sqlite", "postgres")
#: The PostgreSQL server the tests create their databases on (shared with the connector tests).
DSN_VARIABLE = "ENGINE_TEST_POSTGRES_DSN"


def chosen_store() -> str:
    """``sqlite`` or ``postgres``, from ``ENGINE_TEST_STORE`` (default ``sqlite``)."""
    return os.environ.get(STORE_VARIABLE, "sqlite").strip().lower() or "sqlite"


def configuration_error() -> str | None:
    """Why the store settings cannot work (one line), or None when they can."""
    store = chosen_store()
    if store not in STORES:
        return f"{STORE_VARIABLE}={store!r} names no store; use one of {', '.join(STORES)}"
    if store == "postgres":
        dsn = os.environ.get(DSN_VARIABLE, "")
        if not re.match(r"^postgres(ql)?://", dsn):
            return (f"{STORE_VARIABLE}=postgres needs {DSN_VARIABLE}=postgresql://user@host:port/db, a server "
                    "where the tests may create and drop databases")
        try:
            import psycopg
        except ImportError:
            return f"{STORE_VARIABLE}=postgres needs psycopg: pip install -e '.[test]'"
        try:
            psycopg.connect(dsn, autocommit=True, connect_timeout=10).close()
        except psycopg.Error as exc:
            return f"{STORE_VARIABLE}=postgres: cannot connect to {DSN_VARIABLE} ({_one_line(exc)}); start the server or fix the DSN"
    return None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def database_url(dsn: str, name: str) -> str:
    """``dsn`` (a ``postgresql://`` URL) naming database ``name`` instead of its own."""
    parts = urllib.parse.urlsplit(dsn)
    return urllib.parse.urlunsplit(parts._replace(path="/" + name))


#: Why a test that needs PostgreSQL skips where no server is given.
NO_SERVER = f"{DSN_VARIABLE} is unset: no PostgreSQL server to test on (.ci/run starts one)"


@contextmanager
def fresh_database(folder: Path, name: str = "engine") -> Iterator[str]:
    """A new, empty database for the chosen store, as the ``--db`` value that names it.

    SQLite: the file ``folder/NAME.db`` (created on first use; ``folder`` is the test's own).
    PostgreSQL: a database from ``fresh_postgres``.
    """
    if chosen_store() == "sqlite":
        yield str(folder / f"{name}.db")
        return
    with fresh_postgres() as url:
        yield url


@contextmanager
def fresh_postgres() -> Iterator[str]:
    """``CREATE DATABASE engine_test_<random>`` on the server ``ENGINE_TEST_POSTGRES_DSN``
    names, as a URL, whatever store the suite runs on (skipped, saying so, without a server);
    dropped on exit ``WITH (FORCE)``, so workers a test left connected cannot keep it alive."""
    dsn = os.environ.get(DSN_VARIABLE)
    if not dsn:
        import pytest

        pytest.skip(NO_SERVER)
    import psycopg
    from psycopg import sql

    database = f"engine_test_{secrets.token_hex(6)}"
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    try:
        yield database_url(dsn, database)
    finally:
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))


class RawConnection:
    """A connection to the test database ``db`` behind the store's back, to damage or inspect
    rows as another program would. Statements mark parameters with ``?`` and must name only
    tables and columns both stores share (``executions``, ``events``, ...)."""

    def __init__(self, db: str) -> None:
        self.postgres = chosen_store() != "sqlite"
        if self.postgres:
            import psycopg

            self._conn: Any = psycopg.connect(db, autocommit=True)
        else:
            self._conn = sqlite3.connect(db, isolation_level=None, timeout=30)

    def rows(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement (committed at once) and return its rows."""
        if not self.postgres:
            return self._conn.execute(statement, tuple(params)).fetchall()  # type: ignore[no-any-return]
        if params:
            statement = statement.replace("%", "%%").replace("?", "%s")
        cur = self._conn.execute(statement, tuple(params) if params else None)
        return cur.fetchall() if cur.description else []

    def close(self) -> None:
        self._conn.close()


def run_sql(db: str, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """One statement on a fresh ``RawConnection`` to ``db``; its rows."""
    with closing(RawConnection(db)) as conn:
        return conn.rows(statement, params)


def stored_bytes(db: str) -> dict[str, bytes]:
    """Everything the database holds, as bytes, to look for what must never be stored.

    SQLite: each of its files (the database, WAL, shared memory, lock) as it is on disk
    (folders beside it, such as the wake-up sockets' ``DB-wake/``, hold no data).
    PostgreSQL: each table's values, bytes as stored and everything else as text.
    """
    if chosen_store() == "sqlite":
        path = Path(db)
        return {p.name: p.read_bytes() for p in path.parent.glob(path.name + "*") if p.is_file()}
    return {table: b"\n".join(values) for table, values in table_values(db).items()}


def table_values(db: str) -> dict[str, list[bytes]]:
    """Every table of the database and every value in it (bytes as stored, others as text)."""
    if chosen_store() == "sqlite":
        with closing(sqlite3.connect(db)) as conn:
            tables = [name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            return {table: [_as_bytes(v) for row in conn.execute(f'SELECT * FROM "{table}"') for v in row]
                    for table in tables}
    import psycopg
    from psycopg import sql

    with psycopg.connect(db, autocommit=True) as conn:
        tables = [name for (name,) in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()")]
        return {table: [_as_bytes(v) for row in conn.execute(sql.SQL("SELECT * FROM {}").format(sql.Identifier(table)))
                        for v in row] for table in tables}


def _as_bytes(value: Any) -> bytes:
    return bytes(value) if isinstance(value, (bytes, memoryview)) else str(value).encode()


def no_write_in_progress(db: str) -> bool:
    """Whether no connection to ``db`` is inside a write now (so a process frozen at this
    moment holds nothing that blocks the test's own writes).

    SQLite: nobody holds the store's write lock (``DB-lock``, an flock). PostgreSQL: no
    other session of the database is in a transaction or running a statement.
    """
    if chosen_store() == "sqlite":
        fd = os.open(db + "-lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False
        finally:
            os.close(fd)  # closing drops the probe's own lock
    busy = run_sql(db, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                       "AND pid <> pg_backend_pid() AND state NOT IN ('idle')")
    return int(busy[0][0]) == 0
