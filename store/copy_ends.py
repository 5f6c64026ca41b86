"""The two ends of ``engine db copy``: a SQLite file or a PostgreSQL database, opened
for one long transaction that reads rows in batches or writes them in batches.

Each end is first opened as a store (``store.open.open_store``), which creates or
migrates its schema exactly as any command does; the copy then uses a connection of
its own. ``begin(lock=True)`` holds the database's write lock until ``commit`` or
``rollback``, so no worker commits meanwhile (a worker that starts waits for it):
on SQLite the write lock of every process (``store.write_lock``) and ``BEGIN
IMMEDIATE``, on PostgreSQL ``LOCK TABLE ... IN EXCLUSIVE MODE`` on every table of the
engine (reads go on). Both see one consistent moment of the database.
"""

from __future__ import annotations

import abc
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from store.dialect import translate
from store.errors import StoreError
from store.open import file_of, open_store
from store.pg_schema import ensure_schema
from store.pg_sql import DB_NOW
from store.pg_url import connection_error, masked, session_options, without_password
from store.schema import SchemaError
from store.write_lock import WriteLock

#: Rows read or written at a time: a log of any length is copied in bounded memory.
BATCH = 2000


class CopyEnd(abc.ABC):
    """One database of a copy; ``where`` names it for people (never with a password)."""

    where: str

    @abc.abstractmethod
    def begin(self, lock: bool, tables: Sequence[str]) -> None:
        """Start the transaction; with ``lock`` no other process commits until it ends."""
        raise NotImplementedError

    @abc.abstractmethod
    def rows(self, sql: str, params: Sequence[Any] = ()) -> Iterator[Sequence[Any]]:
        """The rows of ``sql`` (in the shared SQL of ``store.dialect``), read in batches."""
        raise NotImplementedError

    @abc.abstractmethod
    def one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """The first row of ``sql``, or None."""
        raise NotImplementedError

    @abc.abstractmethod
    def columns(self, table: str) -> list[str]:
        """The columns of ``table``, as this database has them."""
        raise NotImplementedError

    @abc.abstractmethod
    def insert(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        """Add ``rows`` to ``table`` inside the transaction."""
        raise NotImplementedError

    def clock_offset(self) -> float:
        """Seconds the clock that timers and leases are stored on runs ahead of this
        host's clock (0 for SQLite, whose workers use the host's clock)."""
        return 0.0

    @abc.abstractmethod
    def commit(self) -> None:
        """Make the transaction's writes durable and release the lock."""
        raise NotImplementedError

    @abc.abstractmethod
    def rollback(self) -> None:
        """Undo the transaction (if any) and release the lock."""
        raise NotImplementedError

    @abc.abstractmethod
    def close(self) -> None:
        """Undo what is not committed and close the connection."""
        raise NotImplementedError


class SqliteEnd(CopyEnd):
    """A SQLite file."""

    def __init__(self, path: str) -> None:
        self.where = path
        self._conn = sqlite3.connect(path, isolation_level=None, timeout=30)
        self._conn.execute("PRAGMA busy_timeout=30000")
        self._lock: WriteLock | None = None

    def begin(self, lock: bool, tables: Sequence[str]) -> None:
        if lock:
            self._lock = WriteLock(self.where + "-lock")
            self._lock.acquire()
        self._conn.execute("BEGIN IMMEDIATE" if lock else "BEGIN")

    def rows(self, sql: str, params: Sequence[Any] = ()) -> Iterator[Sequence[Any]]:
        cur = self._conn.execute(sql, params)
        while batch := cur.fetchmany(BATCH):
            yield from batch

    def one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._conn.execute(sql, params).fetchone()

    def columns(self, table: str) -> list[str]:
        return [d[0] for d in self._conn.execute(f"SELECT * FROM {table} LIMIT 0").description]

    def insert(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
        self._conn.executemany(sql, rows)

    def commit(self) -> None:
        self._conn.execute("COMMIT")
        self._unlock()

    def rollback(self) -> None:
        if self._conn.in_transaction:
            self._conn.execute("ROLLBACK")
        self._unlock()

    def _unlock(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock.close()
            self._lock = None

    def close(self) -> None:
        self.rollback()
        self._conn.close()


class PostgresEnd(CopyEnd):
    """A PostgreSQL database; reads stream through a server-side cursor, writes through ``COPY``."""

    def __init__(self, url: str) -> None:
        try:
            import psycopg
        except ImportError:
            raise StoreError(f"cannot open database {masked(url)}: psycopg is not installed; "
                             "pip install 'durable-engine[postgres]'") from None
        self.url, self.where = url, without_password(url)
        try:
            self._conn = psycopg.connect(url, autocommit=True, connect_timeout=10, options=session_options(url))
        except psycopg.Error as exc:
            raise connection_error(url, exc, "connect to") from exc
        try:
            ensure_schema(self._conn, self.where)
        except (SchemaError, psycopg.Error) as exc:
            self._conn.close()
            raise StoreError(f"cannot use database {self.where}: {' '.join(str(exc).split())}") from exc
        self._conn.autocommit = False
        self._conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        self._cursors = 0

    def begin(self, lock: bool, tables: Sequence[str]) -> None:
        self._conn.rollback()  # a transaction of its own, begun by the next statement
        if lock:
            self._conn.execute(f"LOCK TABLE {', '.join(tables)} IN EXCLUSIVE MODE")

    def rows(self, sql: str, params: Sequence[Any] = ()) -> Iterator[Sequence[Any]]:
        text, named = translate(sql)
        values = _values(named, params)
        self._cursors += 1
        with self._conn.cursor(name=f"copy_{self._cursors}") as cur:
            cur.itersize = BATCH
            cur.execute(text, values)
            yield from cur

    def one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        text, named = translate(sql)
        return self._conn.execute(text, _values(named, params)).fetchone()

    def columns(self, table: str) -> list[str]:
        found = self._conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
            "AND table_name = %s AND is_generated = 'NEVER' ORDER BY ordinal_position", (table,))
        return [r[0] for r in found]

    def insert(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        with self._conn.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    def clock_offset(self) -> float:
        before = time.time()
        now = float(self._conn.execute(f"SELECT {DB_NOW}").fetchone()[0])  # type: ignore[index]
        return now - (before + time.time()) / 2

    def commit(self) -> None:
        self._conn.commit()

    def rollback(self) -> None:
        if not self._conn.closed:
            self._conn.rollback()

    def close(self) -> None:
        self.rollback()
        self._conn.close()


def _values(named: bool, params: Sequence[Any]) -> Any:
    return {f"p{i}": v for i, v in enumerate(params, 1)} if named else list(params)


def same_database(a: str, b: str) -> bool:
    """Whether the ``--db`` values ``a`` and ``b`` name one database."""
    fa, fb = file_of(a), file_of(b)
    if fa is not None and fb is not None:
        return os.path.exists(fa) and os.path.exists(fb) and os.path.samefile(fa, fb)
    return without_password(a) == without_password(b)


def open_end(url: str, *, must_exist: bool) -> CopyEnd:
    """The database ``url`` names (a ``--db`` value), its schema created or migrated.

    Raises:
        StoreError: it cannot be opened, or ``must_exist`` and a SQLite file is not there.
    """
    path = file_of(url)
    if must_exist and path is not None and not os.path.exists(path):
        raise StoreError(f"database {path} does not exist; give the path of an existing database (the --db of its workers)")
    if path is None and url.partition("://")[0].lower() in ("postgresql", "postgres"):
        return PostgresEnd(url)
    store = open_store(url)  # a SQLite file; any other scheme is refused in one line, as for --db
    store.close()
    return SqliteEnd(store.path)
