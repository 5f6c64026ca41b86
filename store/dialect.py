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
from collections.abc import Iterable, Iterator, Sequence
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


def _integrity_errors() -> tuple[type[Exception], ...]:
    try:
        import psycopg
    except ImportError:  # the postgres extra is not installed: only SQLite can raise
        return (sqlite3.IntegrityError,)
    return (sqlite3.IntegrityError, psycopg.IntegrityError)


#: A row refused for a duplicate key (or another constraint), on either backend.
INTEGRITY_ERRORS = _integrity_errors()

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


class PgConnection:
    """A psycopg connection that takes the statement modules' SQL (see the module doc).

    ``now`` is the database's clock (epoch seconds) read when the current transaction began.
    """

    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self.now = 0.0

    def execute(self, sql: str, parameters: Any = None, /) -> Any:
        text, named = translate(sql)
        return self.raw.execute(text, _params(named, parameters))

    def executemany(self, sql: str, seq_of_parameters: Iterable[Any], /) -> Any:
        text, named = translate(sql)
        cur = self.raw.cursor()
        cur.executemany(text, [_params(named, p) for p in seq_of_parameters])  # pipelined by psycopg
        return cur
