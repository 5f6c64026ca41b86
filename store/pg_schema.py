"""The PostgreSQL schema: SQLite's tables (``store/schema.py``, declared once there) in
PostgreSQL's types, the full-text index as a ``tsvector`` table, and the version check.

Creation and migration run under a transaction-scoped advisory lock, so that several
processes starting at once on a new database create it once: the others wait, then
see the version it wrote. The functions (``FUNCTIONS``) are created the same way, also
in a database of the current version made before they existed.
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


#: ``store.writes._wake_waiters`` in one round trip: ``target`` ended (``failed`` 1 if it
#: failed) at ``woken_at``; counts it for every waiter, ends the waits now satisfied and makes
#: their waiters QUEUED, returning those. The same statements, in the same order.
WAKE_WAITERS = """\
CREATE OR REPLACE FUNCTION engine_wake_waiters(target TEXT, target_failed BIGINT, woken_at DOUBLE PRECISION)
RETURNS SETOF TEXT LANGUAGE plpgsql AS $fn$
DECLARE
    waiters TEXT[];
    waiter TEXT COLLATE "C";
    w RECORD;
BEGIN
    WITH gone AS (DELETE FROM wait_targets WHERE target_id = target COLLATE "C" RETURNING waiter_id)
    SELECT array_agg(waiter_id) INTO waiters FROM gone;
    FOREACH waiter IN ARRAY coalesce(waiters, '{}') LOOP
        UPDATE waits SET ended = ended + 1, failed = failed + target_failed WHERE waiter_id = waiter
            RETURNING needed, ended, failed, wake_on_failure INTO w;
        CONTINUE WHEN NOT FOUND;
        IF w.ended >= w.needed OR (w.wake_on_failure <> 0 AND w.failed <> 0) THEN
            DELETE FROM waits WHERE waiter_id = waiter;
            DELETE FROM wait_targets WHERE waiter_id = waiter;
            UPDATE executions SET status = 'QUEUED', wake_at = woken_at WHERE id = waiter AND status = 'WAITING';
            IF FOUND THEN
                RETURN NEXT waiter;
            END IF;
        END IF;
    END LOOP;
END
$fn$"""

#: The functions the store calls, each with the signature that tells whether it exists.
FUNCTIONS = (("engine_wake_waiters(text,bigint,double precision)", WAKE_WAITERS),)


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
    if found == SCHEMA_VERSION and _has_functions(conn):
        return
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        found = _version(conn)  # another process may have created it meanwhile
        if found == SCHEMA_VERSION:
            if not _has_functions(conn):
                _create_functions(conn)
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
        _create_functions(conn)
        conn.execute("DELETE FROM engine_schema")
        conn.execute("INSERT INTO engine_schema VALUES (%s)", (SCHEMA_VERSION,))


def _has_functions(conn: Any) -> bool:
    signatures = [signature for signature, _ in FUNCTIONS]
    row = conn.execute("SELECT bool_and(to_regprocedure(s) IS NOT NULL) FROM unnest(%s::text[]) s", (signatures,)).fetchone()
    return bool(row[0])


def _create_functions(conn: Any) -> None:
    for _, sql in FUNCTIONS:
        conn.execute(sql)


def _version(conn: Any) -> int | None:
    if conn.execute("SELECT to_regclass('engine_schema')").fetchone()[0] is None:
        return None
    row = conn.execute("SELECT max(version) FROM engine_schema").fetchone()
    return None if row[0] is None else int(row[0])
