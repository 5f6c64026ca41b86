"""The connection the statement modules write SQL to, whichever the backend.

The statement modules (``store/writes.py``, ``reads.py``, ``leases.py``, ``control.py``,
``messages.py``, ...) are written once, in the SQL that SQLite and PostgreSQL share,
with SQLite's ``?`` placeholders, and run on either: a ``sqlite3.Connection`` as it is,
or a ``PgConnection`` that rewrites each statement for psycopg once (``?`` and ``?N``
to psycopg placeholders, ``%`` escaped, ``INSERT OR IGNORE`` to ``ON CONFLICT DO
NOTHING``) and passes booleans as untyped ``'1'``/``'0'`` so they fit both an integer
column and a ``CASE WHEN``. What cannot be written in the shared subset (the DDL, the
claim with ``FOR UPDATE SKIP LOCKED``, full-text search) is per backend.
"""

from __future__ import annotations

import functools
import re
import sqlite3
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol


class Cursor(Protocol):
    """What the statement modules use of a cursor."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Conn(Protocol):
    """What the statement modules use of a connection (``sqlite3.Connection`` has it)."""

    def execute(self, sql: str, parameters: Any = ..., /) -> Cursor: ...

    def executemany(self, sql: str, seq_of_parameters: Iterable[Any], /) -> Cursor: ...


def integrity_errors() -> tuple[type[Exception], ...]:
    """A row refused for a duplicate key (or another constraint), on either backend: for
    ``except integrity_errors():``. psycopg's error counts once psycopg was imported (by a
    PostgreSQL store); a process that never opened one does not pay for importing it."""
    psycopg = sys.modules.get("psycopg")
    return (sqlite3.IntegrityError,) if psycopg is None else (sqlite3.IntegrityError, psycopg.IntegrityError)

_TOKEN = re.compile(r"'(?:[^']|'')*'|\?(\d*)|%")
_OR_IGNORE = re.compile(r"^\s*INSERT OR IGNORE INTO", re.IGNORECASE)


@functools.lru_cache(maxsize=512)
def translate(sql: str) -> tuple[str, bool]:
    """``sql`` for psycopg, and whether it takes named (``?N``) parameters."""
    named = False

    def token(found: re.Match[str]) -> str:
        nonlocal named
        text = found.group(0)
        if text == "%":
            return "%%"
        if text.startswith("'"):
            return text.replace("%", "%%")
        if found.group(1):
            named = True
            return f"%(p{found.group(1)})s"
        return "%s"

    out = _TOKEN.sub(token, sql)
    if _OR_IGNORE.match(out):
        out = _OR_IGNORE.sub("INSERT INTO", out) + " ON CONFLICT DO NOTHING"
    return out, named


def _param(value: Any) -> Any:
    return ("1" if value else "0") if isinstance(value, bool) else value


def _params(named: bool, values: Sequence[Any] | None) -> Any:
    values = values or ()
    if named:
        return {f"p{i}": _param(v) for i, v in enumerate(values, 1)}
    return [_param(v) for v in values]


def share_lock(conn: Conn) -> str:
    """`` FOR SHARE`` on PostgreSQL, nothing on SQLite: appended to a read whose rows a
    concurrent transaction may be changing. SQLite runs one writer at a time; PostgreSQL
    runs them together, each statement seeing only what was committed before it, so a
    wait that reads "not ended" while the target's end commit is under way would miss
    that end and wait forever. The lock makes the read wait for that commit, and makes
    a later end commit wait for the reader's, which then sees the wait it registered.
    """
    return " FOR SHARE" if isinstance(conn, PgConnection) else ""


class _PgCursor:
    """A psycopg cursor whose ``rowcount`` is right in pipeline mode too (reading it
    waits for the statement's result; the fetches wait by themselves)."""

    def __init__(self, cur: Any, pipeline: Any) -> None:
        self._cur, self._pipeline = cur, pipeline

    @property
    def rowcount(self) -> int:
        if self._pipeline is not None:
            self._pipeline.sync()
        return int(self._cur.rowcount)

    def fetchone(self) -> Any:
        return self._cur.fetchone()

    def fetchall(self) -> list[Any]:
        return list(self._cur.fetchall())

    def __iter__(self) -> Iterator[Any]:
        return iter(self._cur)


class PgConnection:
    """A psycopg connection that takes the statement modules' SQL (see the module doc).

    ``now`` is the database's clock (epoch seconds) read when the current transaction
    began; ``pipeline`` is the psycopg pipeline the transaction runs in, if any. With
    ``eager`` each statement's error is raised by its ``execute`` even in a pipeline
    (code that catches an integrity error around one statement needs that).
    """

    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self.now = 0.0
        self.pipeline: Any = None
        self.eager = False
        self.known: Any = None  # a ``store.pg_batch.KnownRows`` during a batch of plain step commits

    def execute(self, sql: str, parameters: Any = None, /) -> Any:
        if self.known is not None:
            answered = self.known.answer(sql, parameters)
            if answered is not None:
                return answered
        text, named = translate(sql)
        cur = self.raw.execute(text, _params(named, parameters))
        if self.eager and self.pipeline is not None:
            self.pipeline.sync()
        return _PgCursor(cur, self.pipeline)

    def executemany(self, sql: str, seq_of_parameters: Iterable[Any], /) -> _PgCursor:
        text, named = translate(sql)
        cur = self.raw.cursor()
        cur.executemany(text, [_params(named, p) for p in seq_of_parameters])  # pipelined by psycopg
        if self.eager and self.pipeline is not None:
            self.pipeline.sync()
        return _PgCursor(cur, self.pipeline)

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """A read-only transaction whose statements all see one moment of the database
        (``REPEATABLE READ``), while other connections go on writing; ended on exit."""
        with self.raw.transaction():
            self.raw.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield
