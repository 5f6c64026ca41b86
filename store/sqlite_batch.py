"""One group-commit batch in one SQLite transaction (``BEGIN IMMEDIATE``).

Each unit of a batch of several runs in a savepoint, so one refused unit (a lost lease,
a value that cannot be stored) fails alone and its neighbours commit; a unit alone in its
transaction needs no savepoint. The crash points ``commit.before``/``commit.after`` let
the crash tests kill a worker on either side of the commit.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from typing import Any

import msgspec

from store import leases
from store.errors import LeaseLostError, StoreError
from store.faults import fault_point
from store.model import Commit
from store.writes import apply_commit

#: What fails one unit alone (the others of its batch commit).
REFUSED = (LeaseLostError, msgspec.EncodeError, TypeError, ValueError, sqlite3.IntegrityError)


def apply_batch(conn: sqlite3.Connection, items: Sequence[Any]) -> list[Any]:
    """Apply ``items`` (commits, or store-module functions of the connection) in one
    transaction; each result, or the ``REFUSED`` error of a unit. A ``sqlite3.DatabaseError``
    rolls the whole batch back and propagates."""
    results: list[Any] = []
    conn.execute("BEGIN IMMEDIATE")
    try:
        if len(items) == 1:  # alone in its transaction: a refused unit rolls back the whole of it
            try:
                results.append(_apply(conn, items[0]))
            except REFUSED as exc:
                conn.execute("ROLLBACK")
                return [exc]
        else:
            for item in items:
                conn.execute("SAVEPOINT unit")
                try:
                    result = _apply(conn, item)
                except REFUSED as exc:
                    conn.execute("ROLLBACK TO unit")
                    result = exc
                conn.execute("RELEASE unit")
                results.append(result)
        fault_point("commit.before")
        conn.execute("COMMIT")
        fault_point("commit.after")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return results


def _apply(conn: sqlite3.Connection, item: Any) -> Any:
    return apply_commit(conn, item, time.time(), leases.claim_queued) if isinstance(item, Commit) else item(conn)


def write_error(path: str, exc: sqlite3.DatabaseError) -> StoreError:
    """A failed write said in one line, with what to do."""
    hint = {
        "database or disk is full": "free disk space",
        "attempt to write a readonly database": "make the file and its folder writable",
        "database is locked": "another process holds the write lock for too long",
    }.get(str(exc), "check the database file")
    return StoreError(f"cannot write to database {path}: {exc}; {hint}. Nothing from this write was recorded.")
