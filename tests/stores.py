"""Which store the tests run on: SQLite files (the default) or PostgreSQL databases.

``ENGINE_TEST_STORE=postgres`` with ``ENGINE_TEST_POSTGRES_DSN=postgresql://user@host:port/db``
(a server where the tests may create databases) gives every test that touches storage a fresh
database on that server, ``engine_test_<random>``, holding the engine's empty tables (a copy of
the session's template, made ahead: see ``Databases``), dropped after teardown. Tests reach this module
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
import threading
import urllib.parse
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
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


def reachable_dsn() -> str:
    """``ENGINE_TEST_POSTGRES_DSN``, for a test that needs that server whatever the store;
    the calling test is skipped when psycopg is missing, the variable unset or the server
    unreachable."""
    import pytest

    psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed")
    dsn = os.environ.get(DSN_VARIABLE, "")
    if not dsn:
        pytest.skip(f"{DSN_VARIABLE} is not set; point it at a PostgreSQL server to run this test")
    try:
        psycopg.connect(dsn, connect_timeout=10).close()
    except psycopg.Error as exc:
        pytest.skip(f"PostgreSQL at {DSN_VARIABLE} is unreachable: {_one_line(exc)}")
    return dsn


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
def fresh_postgres(*, empty: bool = False) -> Iterator[str]:
    """A new database ``engine_test_<random>`` on the server ``ENGINE_TEST_POSTGRES_DSN``
    names, as a URL, whatever store the suite runs on (skipped, saying so, without a
    server); dropped after exit ``WITH (FORCE)``, so workers a test left connected cannot
    keep it alive. It holds the engine's tables, empty (copied from the session's template,
    see ``Databases``); ``empty=True`` gives one without them, for tests of their creation.
    """
    dsn = os.environ.get(DSN_VARIABLE)
    if not dsn:
        import pytest

        pytest.skip(NO_SERVER)
    database = DATABASES.take(dsn, empty)
    try:
        yield database_url(dsn, database)
    finally:
        DATABASES.drop(dsn, database)


class Databases:
    """The session's PostgreSQL databases, made quickly.

    ``CREATE DATABASE`` copies a whole template (7 MB of catalogs) and the engine's schema
    takes dozens of statements more: about half a second a test, most of it the server's
    work, and ``DROP DATABASE`` waits for a checkpoint of the whole server. So the schema
    is made once, in a template database of this session (``engine_test_template_<random>``,
    which nobody else connects to, as ``CREATE DATABASE ... TEMPLATE`` requires); a
    background thread keeps ``AHEAD`` copies of it ready while tests run, and another
    drops the databases of the tests that ended. ``finish`` waits for both and drops the
    template (at the end of the session: conftest's ``pytest_sessionfinish``).
    """

    #: Databases made ahead of the tests that will take them.
    AHEAD = 2

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._making = ThreadPoolExecutor(max_workers=1, thread_name_prefix="test-databases-make")
        self._dropping = ThreadPoolExecutor(max_workers=1, thread_name_prefix="test-databases-drop")
        self._dsn: str | None = None
        self._template: str | None = None
        self._ahead: list[Future[str]] = []
        self._pending: list[Future[None]] = []

    def take(self, dsn: str, empty: bool) -> str:
        """The name of a new database on ``dsn``'s server (with the engine's tables unless ``empty``)."""
        if empty:
            return _create(dsn, None)
        with self._lock:
            if dsn != self._dsn:
                self._finish()
                self._dsn, self._template = dsn, _template(dsn)
            assert self._template is not None
            while len(self._ahead) < self.AHEAD + 1:
                self._ahead.append(self._making.submit(_create, dsn, self._template))
            return self._ahead.pop(0).result()  # one that failed is not handed out twice

    def drop(self, dsn: str, database: str) -> None:
        """Drop ``database`` in the background (``settle`` waits for it)."""
        with self._lock:
            self._pending = [f for f in self._pending if not f.done() or f.exception() is not None]
            self._pending.append(self._dropping.submit(_drop, dsn, database))

    def settle(self) -> None:
        """Wait until every database dropped so far is gone; raise the first drop's error."""
        with self._lock:
            pending, self._pending = self._pending, []
        for future in pending:
            future.result()

    def finish(self) -> None:
        """Drop what this session made ahead, and its template; wait for every drop."""
        with self._lock:
            self._finish()
        self.settle()

    def _finish(self) -> None:
        dsn, template, ahead = self._dsn, self._template, self._ahead
        self._dsn, self._template, self._ahead = None, None, []
        if dsn is None or template is None:
            return
        for made in ahead:
            if made.exception() is None:
                _drop(dsn, made.result())
        _drop(dsn, template)


#: The one ``Databases`` of this test process.
DATABASES = Databases()


def _admin(dsn: str) -> Any:
    import psycopg

    return psycopg.connect(dsn, autocommit=True)


def _create(dsn: str, template: str | None, prefix: str = "engine_test_") -> str:
    """A new database, ``PREFIX<random>``, copied from ``template`` (or the server's default)."""
    from psycopg import sql

    database = f"{prefix}{secrets.token_hex(6)}"
    statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database))
    if template is not None:
        statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
    with _admin(dsn) as admin:
        admin.execute(statement)
    return database


def _template(dsn: str) -> str:
    """A new database holding the engine's tables, for ``CREATE DATABASE ... TEMPLATE``
    (closed: a template may have no connections while it is copied)."""
    from store.pg_schema import ensure_schema

    template = _create(dsn, None, "engine_test_template_")
    with _admin(database_url(dsn, template)) as conn:
        ensure_schema(conn, template)
    return template


def _drop(dsn: str, database: str) -> None:
    from psycopg import sql

    with _admin(dsn) as admin:
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
