"""The SQLite schema and its version check."""

from __future__ import annotations

import sqlite3

from store import search_index

SCHEMA_VERSION = 8  # 2: pause columns; 3: wait_targets indexed by waiter; 4: activation attempts; 5: api_tokens, webhooks; 6: schedules, flow_origins; 7: search_text; 8: git-sync schedules and webhooks

_GIT_SYNC_COLUMNS = ("git_repo TEXT", "git_ref TEXT", "git_path TEXT", "last_sync BLOB")

#: The columns (table, definition) that bring a database of version ``v - 1`` to ``v``.
#: A column is added only to a table the database has, and only once: a table new since
#: its version comes from ``TABLES_DDL`` (all ``IF NOT EXISTS``), with every column, after the
#: migrations.
COLUMN_MIGRATIONS: dict[int, tuple[tuple[str, str], ...]] = {
    2: (("executions", "paused_from TEXT"), ("executions", "pause_requested INTEGER NOT NULL DEFAULT 0")),
    4: (("executions", "attempts INTEGER NOT NULL DEFAULT 0"), ("executions", "attempt_log TEXT")),
    8: tuple((table, column) for table in ("schedules", "webhooks") for column in _GIT_SYNC_COLUMNS),
}

TABLES_DDL = """
CREATE TABLE IF NOT EXISTS flows (
    name TEXT PRIMARY KEY,
    project TEXT NOT NULL,
    version TEXT NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS flow_versions (
    version TEXT PRIMARY KEY,          -- sha256 of the source: content-addressed
    name TEXT NOT NULL,
    project TEXT NOT NULL,
    source TEXT NOT NULL,
    path TEXT,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS executions (
    id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    flow TEXT NOT NULL,
    flow_version TEXT NOT NULL,
    name TEXT,
    status TEXT NOT NULL,
    message TEXT,
    parent_id TEXT,
    root_id TEXT NOT NULL,
    depth INTEGER NOT NULL,
    project TEXT NOT NULL,
    input_value BLOB,
    output_value BLOB,
    created_at REAL NOT NULL,
    started_at REAL,
    ended_at REAL,
    wake_at REAL,                      -- a timer or a wait deadline while WAITING, or while QUEUED when a running tree made it runnable (NULL: new top-level work)
    lease_owner TEXT,
    lease_expires REAL,
    fence INTEGER NOT NULL DEFAULT 0,  -- lease fencing counter, bumped by every claim
    last_seq INTEGER NOT NULL DEFAULT 0,
    paused_from TEXT,                  -- PAUSED by `engine pause`: the status `resume` restores
    pause_requested INTEGER NOT NULL DEFAULT 0, -- `engine pause` of a RUNNING one: pause at its next commit
    attempts INTEGER NOT NULL DEFAULT 0, -- activations claimed since the last decision (store/attempts.py)
    attempt_log TEXT                   -- what happened to each of them that did not decide, one per line
);
CREATE INDEX IF NOT EXISTS executions_by_status ON executions (status, wake_at);
CREATE INDEX IF NOT EXISTS executions_by_lease ON executions (status, lease_expires);
CREATE INDEX IF NOT EXISTS executions_by_parent ON executions (parent_id);
CREATE INDEX IF NOT EXISTS executions_by_root ON executions (root_id);
CREATE INDEX IF NOT EXISTS executions_by_created ON executions (created_at);
CREATE TABLE IF NOT EXISTS events (
    execution_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    at REAL NOT NULL,
    line INTEGER NOT NULL,
    body BLOB NOT NULL,
    PRIMARY KEY (execution_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS waits (
    waiter_id TEXT PRIMARY KEY,
    needed INTEGER NOT NULL,
    ended INTEGER NOT NULL,
    failed INTEGER NOT NULL,
    wake_on_failure INTEGER NOT NULL,
    deadline REAL
);
CREATE TABLE IF NOT EXISTS wait_targets (
    target_id TEXT NOT NULL,
    waiter_id TEXT NOT NULL,
    PRIMARY KEY (target_id, waiter_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS wait_targets_by_waiter ON wait_targets (waiter_id);
CREATE TABLE IF NOT EXISTS dependencies (
    waiter_id TEXT NOT NULL,
    target_id TEXT NOT NULL,
    since REAL NOT NULL,
    PRIMARY KEY (waiter_id, target_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS dependencies_by_target ON dependencies (target_id);
CREATE TABLE IF NOT EXISTS messages (
    id TEXT PRIMARY KEY,
    execution_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    subject TEXT NOT NULL,
    message TEXT NOT NULL,
    form BLOB,
    wait INTEGER NOT NULL,
    deadline REAL,
    status TEXT NOT NULL,              -- sent, waiting, answered
    response BLOB,
    created_at REAL NOT NULL,
    answered_at REAL
);
CREATE INDEX IF NOT EXISTS messages_by_status ON messages (status, created_at);
CREATE TABLE IF NOT EXISTS connectors (
    name TEXT PRIMARY KEY,
    connector_type TEXT NOT NULL,
    value BLOB NOT NULL,
    description TEXT,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS api_tokens (
    name TEXT PRIMARY KEY,
    digest TEXT NOT NULL,              -- sha256 of the token: the token itself is never stored
    created_at REAL NOT NULL,
    revoked_at REAL
);
CREATE TABLE IF NOT EXISTS webhooks (
    name TEXT PRIMARY KEY,
    flow TEXT NOT NULL,                -- '' when its action is a git sync
    digest TEXT NOT NULL,              -- sha256 of the key: the key itself is never stored
    created_at REAL NOT NULL,
    git_repo TEXT,                     -- set when its action is a git sync of git_ref (and the folder git_path)
    git_ref TEXT,
    git_path TEXT,
    last_sync BLOB                     -- how its last git sync ended (store/git_actions.py)
);
CREATE TABLE IF NOT EXISTS schedules (
    name TEXT PRIMARY KEY,
    uid TEXT NOT NULL,                 -- random per schedule: the ids of fired executions derive from (uid, slot)
    flow TEXT NOT NULL,                -- '' when its action is a git sync
    cron TEXT NOT NULL,
    timezone TEXT NOT NULL,
    input_value BLOB,
    catch_up TEXT NOT NULL,            -- latest, all or none: what fires for slots missed while no worker ran
    paused INTEGER NOT NULL DEFAULT 0,
    next_slot INTEGER NOT NULL,        -- epoch seconds of the next slot to fire (firing compares and sets it)
    last_slot INTEGER,
    last_execution TEXT,
    created_at REAL NOT NULL,
    git_repo TEXT,                     -- set when its action is a git sync of git_ref (and the folder git_path)
    git_ref TEXT,
    git_path TEXT,
    last_sync BLOB                     -- how its last git sync ended (store/git_actions.py)
);
CREATE TABLE IF NOT EXISTS flow_origins (
    version TEXT PRIMARY KEY,          -- a flow version registered by `flows sync --git`
    repo TEXT NOT NULL,
    git_commit TEXT NOT NULL,          -- the first commit it was synced from
    synced_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS schedules_by_next ON schedules (paused, next_slot);
CREATE TABLE IF NOT EXISTS settings (
    name TEXT PRIMARY KEY,
    value BLOB,
    description TEXT,
    updated_at REAL NOT NULL
);
"""


class SchemaError(Exception):
    """The database file cannot be used by this version of the engine."""


def ensure_schema(conn: sqlite3.Connection, path: str) -> None:
    """Create the tables on a new database, migrate an older one; refuse one written by
    a newer engine."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise SchemaError(
            f"database {path} has schema version {version}, newer than this engine's "
            f"{SCHEMA_VERSION}: upgrade the engine (pip install -U durable-engine) "
            "or point --db at another file"
        )
    if version == SCHEMA_VERSION:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]  # another process may have migrated it
        if version == SCHEMA_VERSION:
            conn.execute("COMMIT")
            return
        if version > 0:
            for step in range(version + 1, SCHEMA_VERSION + 1):
                for table, column in COLUMN_MIGRATIONS.get(step, ()):
                    if (have := _columns(conn, table)) and column.split()[0] not in have:
                        conn.execute(f"ALTER TABLE {table} ADD COLUMN {column}")
        for statement in [*TABLES_DDL.split(";"), search_index.DDL]:
            if statement.strip():
                conn.execute(statement)
        if 0 < version < 7:
            search_index.index_existing(conn)
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    """The columns of ``table`` (none: the database has no such table)."""
    return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
