"""The PostgreSQL schema: SQLite's tables (``store/schema.py``, declared once there) in
PostgreSQL's types, the full-text index as a ``tsvector`` table, and the version check.

Creation and migration run under a transaction-scoped advisory lock, so that several
processes starting at once on a new database create it once: the others wait, then
see the version it wrote.
"""

from __future__ import annotations

import re
from typing import Any

from store.schema import COLUMN_MIGRATIONS, SCHEMA_VERSION, TABLES_DDL, SchemaError

#: Key of the advisory lock held while the schema is created or migrated.
_LOCK_KEY = 0x656E67696E65  # "engine"

_TYPES = ((r"\bBLOB\b", "BYTEA"), (r"\bTEXT\b", 'TEXT COLLATE "C"'), (r"\bREAL\b", "DOUBLE PRECISION"), (r"\bINTEGER\b", "BIGINT"),
          (r"\)\s*WITHOUT ROWID", ")"))

_SEARCH_DDL = (
    "CREATE TABLE IF NOT EXISTS search_text (execution_id TEXT NOT NULL, text TEXT NOT NULL, "
    "words tsvector GENERATED ALWAYS AS (to_tsvector('simple', text)) STORED)",
    "CREATE INDEX IF NOT EXISTS search_text_words ON search_text USING gin (words)",
    "CREATE INDEX IF NOT EXISTS search_text_by_execution ON search_text (execution_id)",
    "CREATE TABLE IF NOT EXISTS engine_schema (version INTEGER NOT NULL)",
)


def _pg_types(sql: str) -> str:
    for pattern, replacement in _TYPES:
        sql = re.sub(pattern, replacement, sql)
    return sql


def ddl() -> list[str]:
    """Every statement that creates the tables (all ``IF NOT EXISTS``)."""
    return [s for s in _pg_types(TABLES_DDL).split(";") if s.strip()] + list(_SEARCH_DDL)


def ensure_schema(conn: Any, where: str) -> None:
    """Create the tables on a new database; refuse one written by a newer engine.

    ``conn`` is a psycopg connection in autocommit mode. A database of an older
    version gets the columns ``store.schema.COLUMN_MIGRATIONS`` adds since then (each
    once: ``ADD COLUMN IF NOT EXISTS``); new tables come from the DDL after them.
    """
    found = _version(conn)
    if found == SCHEMA_VERSION:
        return
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        found = _version(conn)  # another process may have created it meanwhile
        if found == SCHEMA_VERSION:
            return
        if found is not None and found > SCHEMA_VERSION:
            raise SchemaError(
                f"database {where} has schema version {found}, newer than this engine's {SCHEMA_VERSION}: "
                "upgrade the engine (pip install -U durable-engine) or point --db at another database"
            )
        for step in range((found or SCHEMA_VERSION) + 1, SCHEMA_VERSION + 1):
            for table, column in COLUMN_MIGRATIONS.get(step, ()):
                conn.execute(f"ALTER TABLE IF EXISTS {table} ADD COLUMN IF NOT EXISTS {_pg_types(column)}")
        for statement in ddl():
            conn.execute(statement)
        conn.execute("DELETE FROM engine_schema")
        conn.execute("INSERT INTO engine_schema VALUES (%s)", (SCHEMA_VERSION,))


def _version(conn: Any) -> int | None:
    if conn.execute("SELECT to_regclass('engine_schema')").fetchone()[0] is None:
        return None
    row = conn.execute("SELECT max(version) FROM engine_schema").fetchone()
    return None if row[0] is None else int(row[0])
