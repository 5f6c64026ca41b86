"""The embedded store: one SQLite file in WAL mode, shared by threads and processes.

Reads use one connection per thread. Writes go through one connection and a group
commit, each batch in a single ``BEGIN IMMEDIATE`` transaction; each commit inside the
batch is wrapped in a savepoint so one refused commit (a lost lease) does not fail
its neighbours.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import msgspec

from store import values
from store.events import Event, ExecutionCancelled, ExecutionStarted, FORMAT_VERSION, decode_body, encode_body, kind_of
from store.group_commit import GroupCommit
from store.model import (
    ENDED_CANCELLED,
    ENDED_STATUSES,
    FAILED_STATUSES,
    UNSET,
    Commit,
    CommitResult,
    ExecutionRow,
    FlowVersion,
    NewExecution,
    SettingWrite,
    WaitSpec,
)
from store.queries import compile_filter
from store.schema import SchemaError, ensure_schema

log = logging.getLogger(__name__)

SYNCHRONOUS_LEVELS = ("FULL", "NORMAL")

_EXECUTION_COLUMNS = ", ".join(ExecutionRow.__struct_fields__)


class StoreError(Exception):
    """The database cannot be opened or written; the message says what to do."""


class LeaseLostError(Exception):
    """Another worker claimed this execution since this one did: its commit is refused."""


class SqliteStore:
    """Executions, events, flows, settings, waits and leases in one SQLite file."""

    def __init__(self, path: str | os.PathLike[str], synchronous: str = "FULL") -> None:
        synchronous = synchronous.upper()
        if synchronous not in SYNCHRONOUS_LEVELS:
            raise StoreError(f"synchronous must be one of {SYNCHRONOUS_LEVELS}, not {synchronous!r}")
        self.path = str(path)
        self.synchronous = synchronous
        self._local = threading.local()
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._writer = self._connect()
        try:
            ensure_schema(self._writer, self.path)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot use database {self.path}: {exc} (is it an engine database?)") from exc
        except SchemaError as exc:
            raise StoreError(str(exc)) from exc
        self._group = GroupCommit(self._apply_batch)

    # -- connections -------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
            conn.execute("PRAGMA busy_timeout=30000")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={self.synchronous}")
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"cannot open database {self.path}: {exc}; check the path, its permissions, "
                "and that it is an engine database"
            ) from exc
        return conn

    @property
    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        return conn

    def close(self) -> None:
        self._writer.close()
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def data_version(self) -> int:
        """Changes whenever another connection commits: a cheap 'anything new?' probe."""
        return int(self._reader.execute("PRAGMA data_version").fetchone()[0])

    # -- flows -------------------------------------------------------------------

    def put_flow(self, name: str, source: str, *, project: str = "default", path: str | None = None) -> str:
        """Register ``source`` as the current version of flow ``name``; returns the version hash."""
        version = hashlib.sha256(source.encode()).hexdigest()
        now = time.time()

        def write(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT OR IGNORE INTO flow_versions VALUES (?, ?, ?, ?, ?, ?)",
                (version, name, project, source, path, now),
            )
            conn.execute(
                "INSERT INTO flows VALUES (?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET "
                "project=excluded.project, version=excluded.version, updated_at=excluded.updated_at "
                "WHERE version != excluded.version OR project != excluded.project",
                (name, project, version, now),
            )

        self._write(write)
        return version

    def get_flow(self, name: str) -> FlowVersion | None:
        """The current version of flow ``name``, or None."""
        row = self._reader.execute(
            "SELECT f.name, f.version, v.source, v.path, f.project, v.created_at FROM flows f "
            "JOIN flow_versions v ON v.version = f.version WHERE f.name = ?",
            (name,),
        ).fetchone()
        return FlowVersion(*row) if row else None

    def get_flow_version(self, version: str) -> FlowVersion | None:
        row = self._reader.execute(
            "SELECT name, version, source, path, project, created_at FROM flow_versions WHERE version = ?",
            (version,),
        ).fetchone()
        return FlowVersion(*row) if row else None

    def list_flows(self) -> list[FlowVersion]:
        rows = self._reader.execute(
            "SELECT f.name, f.version, v.source, v.path, f.project, v.created_at FROM flows f "
            "JOIN flow_versions v ON v.version = f.version ORDER BY f.name"
        ).fetchall()
        return [FlowVersion(*row) for row in rows]

    def flow_versions(self, name: str) -> list[FlowVersion]:
        rows = self._reader.execute(
            "SELECT name, version, source, path, project, created_at FROM flow_versions "
            "WHERE name = ? ORDER BY created_at",
            (name,),
        ).fetchall()
        return [FlowVersion(*row) for row in rows]

    # -- executions and events: reads -------------------------------------------

    def get_execution(self, execution_id: str) -> ExecutionRow | None:
        row = self._reader.execute(
            f"SELECT {_EXECUTION_COLUMNS} FROM executions WHERE id = ?", (execution_id,)
        ).fetchone()
        return _execution(row) if row else None

    def find_executions(self, prefix: str) -> list[str]:
        """Ids starting with ``prefix`` (so users can type a short id)."""
        rows = self._reader.execute(
            "SELECT id FROM executions WHERE id >= ? AND id < ? LIMIT 2", (prefix, prefix + "\uffff")
        ).fetchall()
        return [r[0] for r in rows]

    def list_executions(
        self,
        *,
        status: str | None = None,
        flow: str | None = None,
        project: str | None = None,
        parent_id: str | None = None,
        since: float | None = None,
        limit: int | None = None,
    ) -> list[ExecutionRow]:
        """Executions matching every given filter, newest first."""
        clauses, params = [], []
        for column, value in (("status", status), ("flow", flow), ("project", project), ("parent_id", parent_id)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if since is not None:
            clauses.append("created_at >= ?")
            params.append(since)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = f"SELECT {_EXECUTION_COLUMNS} FROM executions {where} ORDER BY created_at DESC, id"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [_execution(row) for row in self._reader.execute(sql, params)]

    def query_execution_ids(self, filter_: Any) -> list[str]:
        """Ids of executions matching a flow_api filter expression, oldest first."""
        where, params = compile_filter(filter_)
        sql = f"SELECT id FROM executions WHERE {where} ORDER BY created_at, id"
        return [row[0] for row in self._reader.execute(sql, params)]

    def statuses(self, ids: Iterable[str]) -> dict[str, str]:
        ids = list(ids)
        marks = ",".join("?" * len(ids))
        rows = self._reader.execute(f"SELECT id, status FROM executions WHERE id IN ({marks})", ids)
        return dict(rows.fetchall())

    def children(self, execution_id: str) -> list[ExecutionRow]:
        return self.list_executions(parent_id=execution_id)[::-1]

    def dependencies(self, execution_id: str) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
        """(what ``execution_id`` waited for, what waited for it), each as (id, since)."""
        conn = self._reader
        waits_for = conn.execute(
            "SELECT target_id, since FROM dependencies WHERE waiter_id = ? ORDER BY since", (execution_id,)
        ).fetchall()
        waited_by = conn.execute(
            "SELECT waiter_id, since FROM dependencies WHERE target_id = ? ORDER BY since", (execution_id,)
        ).fetchall()
        return waits_for, waited_by

    def load_events(self, execution_id: str, after_seq: int = 0) -> list[Event]:
        """The execution's log in seq order (optionally only past ``after_seq``)."""
        rows = self._reader.execute(
            "SELECT seq, at, body, line FROM events WHERE execution_id = ? AND seq > ? ORDER BY seq",
            (execution_id, after_seq),
        ).fetchall()
        return [Event(seq, at, decode_body(body), line) for seq, at, body, line in rows]

    def next_wake_at(self) -> float | None:
        """The earliest timer or lease expiry, so an idle worker knows when to look again."""
        row = self._reader.execute(
            "SELECT min(t) FROM (SELECT min(wake_at) t FROM executions WHERE status = 'WAITING' "
            "UNION ALL SELECT min(lease_expires) FROM executions WHERE status = 'RUNNING')"
        ).fetchone()
        return row[0]

    def has_pending_work(self) -> bool:
        """Anything queued, running, or waiting on a timer or deadline."""
        row = self._reader.execute(
            "SELECT 1 FROM executions WHERE status IN ('QUEUED', 'RUNNING') "
            "OR (status = 'WAITING' AND wake_at IS NOT NULL) LIMIT 1"
        ).fetchone()
        return row is not None

    def count_by_status(self) -> dict[str, int]:
        return dict(self._reader.execute("SELECT status, count(*) FROM executions GROUP BY status").fetchall())

    # -- settings ----------------------------------------------------------------

    def get_setting(self, name: str) -> tuple[Any, str | None] | None:
        """(value, description) of a setting, or None if it does not exist."""
        row = self._reader.execute("SELECT value, description FROM settings WHERE name = ?", (name,)).fetchone()
        return (values.decode(row[0]), row[1]) if row else None

    def list_settings(self) -> list[tuple[str, Any, str | None]]:
        rows = self._reader.execute("SELECT name, value, description FROM settings ORDER BY name")
        return [(n, values.decode(v), d) for n, v, d in rows]

    # -- leases ------------------------------------------------------------------

    def claim(self, owner: str, limit: int, lease_seconds: float, now: float) -> list[tuple[str, int]]:
        """Lease up to ``limit`` runnable executions: queued, timer due, or lease expired.

        Returns (execution id, fence) pairs; the fence must accompany every commit.
        """

        def write(conn: sqlite3.Connection) -> list[tuple[str, int]]:
            rows = conn.execute(
                "UPDATE executions SET status = 'RUNNING', lease_owner = ?, lease_expires = ?, "
                "fence = fence + 1, started_at = coalesce(started_at, ?) WHERE id IN ("
                "SELECT id FROM executions WHERE status = 'QUEUED' "
                "UNION ALL SELECT id FROM executions WHERE status = 'WAITING' AND wake_at <= ? "
                "UNION ALL SELECT id FROM executions WHERE status = 'RUNNING' AND lease_expires < ? "
                "LIMIT ?) RETURNING id, fence",
                (owner, now + lease_seconds, now, now, now, limit),
            ).fetchall()
            return [(r[0], r[1]) for r in rows]

        return self._write(write)

    def renew_leases(self, leases: Sequence[tuple[str, int]], lease_seconds: float, now: float) -> list[str]:
        """Extend leases still held; returns the ids whose lease was lost."""

        def write(conn: sqlite3.Connection) -> list[str]:
            lost = []
            for execution_id, fence in leases:
                cur = conn.execute(
                    "UPDATE executions SET lease_expires = ? WHERE id = ? AND fence = ? AND status = 'RUNNING'",
                    (now + lease_seconds, execution_id, fence),
                )
                if cur.rowcount == 0:
                    lost.append(execution_id)
            return lost

        return self._write(write) if leases else []

    # -- writes ------------------------------------------------------------------

    def create_execution(self, new: NewExecution, at: float) -> None:
        """Create a top-level execution (children are created through ``commit``)."""
        self._write(lambda conn: _insert_execution(conn, new, at))

    def commit(self, commit: Commit) -> CommitResult:
        """Apply one execution's decision atomically; raises LeaseLostError if fenced out."""
        return self._group.submit(commit)

    def save_setting(self, write: SettingWrite) -> None:
        """Write a setting outside any execution (from the CLI)."""
        self._write(lambda conn: _write_setting(conn, write, time.time()))

    def _write(self, fn: Any) -> Any:
        """Run ``fn(conn)`` inside the next group-commit transaction."""
        return self._group.submit(fn)

    def _apply_batch(self, items: Sequence[Any]) -> list[Any]:
        conn = self._writer
        results: list[Any] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.DatabaseError as exc:
            raise _write_error(self.path, exc) from exc
        try:
            for item in items:
                conn.execute("SAVEPOINT unit")
                try:
                    result = _apply_commit(conn, item) if isinstance(item, Commit) else item(conn)
                except (LeaseLostError, msgspec.EncodeError, TypeError, ValueError, sqlite3.IntegrityError) as exc:
                    conn.execute("ROLLBACK TO unit")
                    result = exc
                conn.execute("RELEASE unit")
                results.append(result)
            conn.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise _write_error(self.path, exc) from exc
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return results


def _write_error(path: str, exc: sqlite3.DatabaseError) -> StoreError:
    hint = {
        "database or disk is full": "free disk space",
        "attempt to write a readonly database": "make the file and its folder writable",
        "database is locked": "another process holds the write lock for too long",
    }.get(str(exc), "check the database file")
    return StoreError(f"cannot write to database {path}: {exc}; {hint}. Nothing from this write was recorded.")


def _execution(row: Sequence[Any]) -> ExecutionRow:
    fields = list(row)
    fields[11] = values.decode(fields[11])
    fields[12] = values.decode(fields[12])
    return ExecutionRow(*fields)


def _insert_execution(conn: sqlite3.Connection, new: NewExecution, at: float) -> None:
    started = ExecutionStarted(FORMAT_VERSION, new.flow, new.flow_version, new.input_value, new.parent_id, new.name)
    conn.execute(
        f"INSERT INTO executions ({_EXECUTION_COLUMNS}) VALUES "
        "(?, ?, ?, ?, ?, ?, NULL, ?, ?, ?, ?, ?, NULL, ?, NULL, NULL, NULL, NULL, NULL, 0, 1)",
        (
            new.id, new.type, new.flow, new.flow_version, new.name, new.status, new.parent_id,
            new.root_id or new.id, new.depth, new.project, values.encode(new.input_value), at,
        ),
    )
    conn.execute(
        "INSERT INTO events VALUES (?, 1, 'started', ?, 0, ?)", (new.id, at, encode_body(started))
    )


def _write_setting(conn: sqlite3.Connection, write: SettingWrite, at: float) -> None:
    if write.delete:
        conn.execute("DELETE FROM settings WHERE name = ?", (write.name,))
    else:
        conn.execute(
            "INSERT INTO settings VALUES (?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET "
            "value = excluded.value, description = coalesce(excluded.description, description), "
            "updated_at = excluded.updated_at",
            (write.name, values.encode(write.value), write.description, at),
        )


def _append(conn: sqlite3.Connection, execution_id: str, events: Sequence[Event]) -> None:
    if not events:
        return
    first = events[0].seq
    cur = conn.execute(
        "UPDATE executions SET last_seq = ? WHERE id = ? AND last_seq = ?",
        (events[-1].seq, execution_id, first - 1),
    )
    if cur.rowcount == 0:
        raise LeaseLostError(f"execution {execution_id}: log moved on before seq {first}")
    conn.executemany(
        "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?)",
        [(execution_id, e.seq, kind_of(e.body), e.at, e.line, encode_body(e.body)) for e in events],
    )


def _apply_commit(conn: sqlite3.Connection, c: Commit) -> CommitResult:
    now = time.time()
    eid = c.execution_id
    if c.fence is not None:
        row = conn.execute("SELECT fence, status FROM executions WHERE id = ?", (eid,)).fetchone()
        if row is None or row[0] != c.fence or row[1] != "RUNNING":
            raise LeaseLostError(f"execution {eid} was claimed by another worker or cancelled")
    _append(conn, eid, c.events)
    result = CommitResult()
    for new in c.creates:
        _insert_execution(conn, new, now)
        if new.status == "QUEUED":
            result.runnable.append(new.id)
    for child in c.start:
        if conn.execute(
            "UPDATE executions SET status = 'QUEUED' WHERE id = ? AND status = 'PAUSED'", (child,)
        ).rowcount:
            result.runnable.append(child)
    for write in c.settings:
        _write_setting(conn, write, now)
    for target in c.cancel:
        _cancel_tree(conn, target, now, result)
    if c.output_value is not UNSET:
        conn.execute("UPDATE executions SET output_value = ? WHERE id = ?", (values.encode(c.output_value), eid))
    status = c.status
    if c.wait is not None:
        status = _register_wait(conn, eid, c.wait, now)
    if status is not None:
        _set_status(conn, eid, status, c.message, c.wake_at, now, result)
        result.status = status
    elif c.release_lease:
        conn.execute("UPDATE executions SET lease_owner = NULL, lease_expires = NULL WHERE id = ?", (eid,))
    return result


def _set_status(
    conn: sqlite3.Connection, eid: str, status: str, message: str | None, wake_at: float | None,
    now: float, result: CommitResult,
) -> None:
    ended = status in ENDED_STATUSES
    conn.execute(
        "UPDATE executions SET status = ?, message = coalesce(?, message), wake_at = ?, "
        "ended_at = CASE WHEN ? THEN ? ELSE ended_at END, lease_owner = NULL, lease_expires = NULL "
        "WHERE id = ?",
        (status, message, wake_at, ended, now, eid),
    )
    if status == "QUEUED":
        result.runnable.append(eid)
    if ended:
        conn.execute("DELETE FROM waits WHERE waiter_id = ?", (eid,))
        conn.execute("DELETE FROM wait_targets WHERE waiter_id = ?", (eid,))
        _wake_waiters(conn, eid, status in FAILED_STATUSES, result)


def _register_wait(conn: sqlite3.Connection, waiter: str, wait: WaitSpec, now: float) -> str:
    """Record the wait and the dependency edges; QUEUED if it is satisfied already."""
    conn.execute("DELETE FROM waits WHERE waiter_id = ?", (waiter,))
    conn.execute("DELETE FROM wait_targets WHERE waiter_id = ?", (waiter,))
    conn.executemany(
        "INSERT OR IGNORE INTO dependencies VALUES (?, ?, ?)", [(waiter, t, now) for t in wait.targets]
    )
    ended = failed = 0
    marks = ",".join("?" * len(wait.targets))
    for (status,) in conn.execute(f"SELECT status FROM executions WHERE id IN ({marks})", wait.targets):
        ended += status in ENDED_STATUSES
        failed += status in FAILED_STATUSES
    if ended >= wait.needed or (wait.wake_on_failure and failed):
        return "QUEUED"
    conn.execute(
        "INSERT INTO waits VALUES (?, ?, ?, ?, ?, ?)",
        (waiter, wait.needed, ended, failed, wait.wake_on_failure, wait.deadline),
    )
    conn.executemany("INSERT INTO wait_targets VALUES (?, ?)", [(t, waiter) for t in wait.targets])
    return "WAITING"


def _wake_waiters(conn: sqlite3.Connection, target: str, failed: bool, result: CommitResult) -> None:
    """``target`` ended: count it for every waiter and make runnable those now satisfied."""
    waiters = conn.execute("SELECT waiter_id FROM wait_targets WHERE target_id = ?", (target,)).fetchall()
    for (waiter,) in waiters:
        row = conn.execute(
            "UPDATE waits SET ended = ended + 1, failed = failed + ? WHERE waiter_id = ? "
            "RETURNING needed, ended, failed, wake_on_failure",
            (failed, waiter),
        ).fetchone()
        if row is None:
            continue
        needed, ended, n_failed, wake_on_failure = row
        if ended >= needed or (wake_on_failure and n_failed):
            conn.execute("DELETE FROM waits WHERE waiter_id = ?", (waiter,))
            conn.execute("DELETE FROM wait_targets WHERE waiter_id = ?", (waiter,))
            if conn.execute(
                "UPDATE executions SET status = 'QUEUED', wake_at = NULL WHERE id = ? AND status = 'WAITING'",
                (waiter,),
            ).rowcount:
                result.runnable.append(waiter)
    conn.execute("DELETE FROM wait_targets WHERE target_id = ?", (target,))


def _cancel_tree(conn: sqlite3.Connection, root: str, now: float, result: CommitResult) -> None:
    """Cancel ``root`` and its descendants that have not ended, recording it in each log."""
    pending = [root]
    while pending:
        eid = pending.pop()
        row = conn.execute("SELECT status, last_seq FROM executions WHERE id = ?", (eid,)).fetchone()
        if row is None or row[0] in ENDED_STATUSES:
            continue
        body = ExecutionCancelled("cancelled by its parent or by a user")
        conn.execute(
            "INSERT INTO events VALUES (?, ?, ?, ?, 0, ?)",
            (eid, row[1] + 1, kind_of(body), now, encode_body(body)),
        )
        conn.execute("UPDATE executions SET last_seq = last_seq + 1, fence = fence + 1 WHERE id = ?", (eid,))
        _set_status(conn, eid, ENDED_CANCELLED, "cancelled", None, now, result)
        pending.extend(r[0] for r in conn.execute("SELECT id FROM executions WHERE parent_id = ?", (eid,)))
