"""Looking after a SQLite database: an online backup, and a check of SQLite's integrity
and the engine's own invariants (``store.invariants``, which PostgreSQL's check shares).

``backup`` uses SQLite's online backup API in one step: it reads one consistent snapshot
(in WAL mode a reader blocks no writer), so workers go on while it runs. ``check`` reports
one line per problem; an empty list means the database is sound.
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing

from store import invariants
from store.dbfiles import create_private


class BackupError(Exception):
    """The backup could not be written; the message says why and what to do."""


def backup(source: sqlite3.Connection, target: str) -> None:
    """Copy the database of ``source`` to the new file ``target`` (mode 0600).

    Raises:
        BackupError: ``target`` exists, or cannot be written (nothing is left behind).
    """
    if os.path.lexists(target):
        raise BackupError(f"backup target {target} exists; remove it or choose another path")
    try:
        create_private(target)
        with closing(sqlite3.connect(target)) as copy:
            source.backup(copy)
    except (OSError, sqlite3.Error) as exc:
        for leftover in (target, target + "-journal"):
            if os.path.exists(leftover):
                os.unlink(leftover)
        raise BackupError(f"cannot write backup {target}: {exc}; check the folder, its permissions and free space") from exc


def check(conn: sqlite3.Connection) -> list[str]:
    """SQLite's ``integrity_check``, then the engine's invariants (``store.invariants``),
    all in one snapshot."""
    conn.execute("BEGIN")  # one snapshot for every query, while workers go on writing
    try:
        integrity = [row[0] for row in conn.execute("PRAGMA integrity_check")]
        if integrity != ["ok"]:
            return [f"SQLite integrity: {line}" for line in integrity]
        return invariants.problems(conn)
    finally:
        conn.execute("ROLLBACK")
