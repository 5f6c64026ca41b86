"""The embedded store: one SQLite file in WAL mode, shared by threads and processes.

Reads use one connection per thread. Writes go through one connection and a group
commit, each batch in a single ``BEGIN IMMEDIATE`` transaction; each commit inside the
batch is wrapped in a savepoint so one refused commit (a lost lease) does not fail
its neighbours.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import closing
from typing import Any, TypeVar

import msgspec

from store import maintenance, values
from store.attempts import CLAIM_COUNTS, HAND_BACK
from store.dbfiles import FileWatch, create_private
from store.events import Event, decode_body
from store.faults import fault_point
from store.group_commit import GroupCommit
from store.messages import (
    answer_message,
    select_connectors,
    select_messages,
    write_connector,
)
from store.model import (
    Commit,
    CommitResult,
    ConnectorWrite,
    ExecutionRow,
    FlowVersion,
    MessageRow,
    NewExecution,
    SettingWrite,
    source_version,
)
from store.queries import compile_filter
from store.schema import SchemaError, ensure_schema
from store.write_lock import WriteLock
from store.writes import (
    EXECUTION_COLUMNS,
    LeaseLostError,
    apply_commit,
    insert_execution,
    waiting_on,
    write_setting,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

SYNCHRONOUS_LEVELS = ("FULL", "NORMAL")



class StoreError(Exception):
    """The database cannot be opened or written; the message says what to do."""


class DatabaseReplacedError(StoreError):
    """The database file or its -wal was replaced or deleted under this process: retrying
    cannot help, so a worker stops."""


class SqliteStore:
    """Executions, events, flows, settings, waits and leases in one SQLite file."""

    def __init__(self, path: str | os.PathLike[str], synchronous: str = "FULL") -> None:
        synchronous = synchronous.upper()
        if synchronous not in SYNCHRONOUS_LEVELS:
            raise StoreError(f"synchronous must be one of {SYNCHRONOUS_LEVELS}, not {synchronous!r}")
        self.path = str(path)
        self.synchronous = synchronous
        self._local = threading.local()
        create_private(self.path)
        self._writer = self._connect()
        try:
            ensure_schema(self._writer, self.path)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot use database {self.path}: {exc} (is it an engine database?)") from exc
        except SchemaError as exc:
            raise StoreError(str(exc)) from exc
        self._watch = FileWatch(self.path)
        self._write_lock = WriteLock(self.path + "-lock")
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
        self._write_lock.close()
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def data_version(self) -> int:
        """Changes whenever another connection commits: a cheap 'anything new?' probe.
        Raises ``DatabaseReplacedError`` when the files were replaced under this process."""
        self._check_files()
        return int(self._reader.execute("PRAGMA data_version").fetchone()[0])

    def _check_files(self) -> None:
        what = self._watch.changed()
        if what is not None:
            raise DatabaseReplacedError(
                f"{what} while this process had it open: its writes would go to a file nobody reads, so it "
                "stopped without writing more; start it again to use the files now there (to copy a live "
                "database use `engine db backup`, to check one `engine db check`)"
            )

    # -- looking after the file ---------------------------------------------------

    def backup(self, target: str) -> None:
        """Copy the database to the new file ``target`` (mode 0600), safe while workers run.

        Raises:
            StoreError: ``target`` exists or cannot be written.
        """
        with closing(self._connect()) as source:
            try:
                maintenance.backup(source, target)
            except maintenance.BackupError as exc:
                raise StoreError(str(exc)) from None

    def check(self) -> list[str]:
        """One line per problem found by ``store.maintenance.check``; empty when sound."""
        with closing(self._connect()) as conn:
            return maintenance.check(conn)

    # -- flows -------------------------------------------------------------------

    def put_flow(self, name: str, source: str, *, project: str = "default", path: str | None = None) -> str:
        """Register ``source`` as the current version of flow ``name``; returns the version hash."""
        version = source_version(source)
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

        self.transaction(write)
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
            f"SELECT {EXECUTION_COLUMNS} FROM executions WHERE id = ?", (execution_id,)
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
        clauses: list[str] = []
        params: list[Any] = []
        for column, value in (("status", status), ("flow", flow), ("project", project), ("parent_id", parent_id)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if since is not None:
            clauses.append("created_at >= ?")
            params.append(since)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = f"SELECT {EXECUTION_COLUMNS} FROM executions {where} ORDER BY created_at DESC, id"
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
        return None if row[0] is None else float(row[0])

    def has_pending_work(self) -> bool:
        """Anything queued, running, or waiting on a timer or deadline."""
        row = self._reader.execute(
            "SELECT 1 FROM executions WHERE status IN ('QUEUED', 'RUNNING') "
            "OR (status = 'WAITING' AND wake_at IS NOT NULL) LIMIT 1"
        ).fetchone()
        return row is not None

    def count_by_status(self) -> dict[str, int]:
        return dict(self._reader.execute("SELECT status, count(*) FROM executions GROUP BY status").fetchall())

    def count_tree(self, root_id: str) -> int:
        """How many executions the tree of top-level execution ``root_id`` holds."""
        return int(self._reader.execute("SELECT count(*) FROM executions WHERE root_id = ?", (root_id,)).fetchone()[0])

    def waiting_on(self, waiter: str, targets: Sequence[str]) -> list[str]:
        """Those of ``targets`` that wait, directly or through others, for ``waiter``."""
        return waiting_on(self._reader, waiter, targets)

    # -- settings ----------------------------------------------------------------

    def get_setting(self, name: str) -> tuple[Any, str | None] | None:
        """(value, description) of a setting, or None if it does not exist."""
        row = self._reader.execute("SELECT value, description FROM settings WHERE name = ?", (name,)).fetchone()
        return (values.decode(row[0]), row[1]) if row else None

    def list_settings(self) -> list[tuple[str, Any, str | None]]:
        rows = self._reader.execute("SELECT name, value, description FROM settings ORDER BY name")
        return [(n, values.decode(v), d) for n, v, d in rows]

    # -- messages and connectors -------------------------------------------------

    def get_message(self, message_id: str) -> MessageRow | None:
        found = select_messages(self._reader, "id = ?", (message_id,))
        return found[0] if found else None

    def list_messages(self, *, status: str | None = None, execution_id: str | None = None) -> list[MessageRow]:
        clauses, params = ["1"], []
        for column, value in (("status", status), ("execution_id", execution_id)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        return select_messages(self._reader, " AND ".join(clauses), tuple(params))

    def answer_message(self, message_id: str, response: Any) -> list[str]:
        """Record a person's answer; returns the execution it made runnable, if any."""
        return self.transaction(lambda conn: answer_message(conn, message_id, response, time.time()))

    def get_connector(self, name: str) -> ConnectorWrite | None:
        found = select_connectors(self._reader, name)
        return found[0] if found else None

    def list_connectors(self) -> list[ConnectorWrite]:
        return select_connectors(self._reader)

    def save_connector(self, write: ConnectorWrite) -> None:
        self.transaction(lambda conn: write_connector(conn, write, time.time()))

    # -- leases ------------------------------------------------------------------

    def claim(self, owner: str, limit: int, lease_seconds: float, now: float) -> list[tuple[str, int]]:
        """Lease up to ``limit`` runnable executions: lease expired, timer due, or queued.

        Expired leases and due timers come first, so a crashed worker's executions and
        sleeps that are over do not wait behind a long queue; then executions of trees
        that already run (children, woken parents: ``wake_at`` set, oldest first); then new
        top-level ones in the order they were created. Every part reads the status indexes.
        Returns (execution id, fence) pairs; the fence must accompany every commit.
        """

        def write(conn: sqlite3.Connection) -> list[tuple[str, int]]:
            rows = conn.execute(
                "UPDATE executions SET status = 'RUNNING', lease_owner = ?, lease_expires = ?, "
                f"fence = fence + 1, {CLAIM_COUNTS}, started_at = coalesce(started_at, ?) WHERE id IN ("
                "SELECT id FROM executions WHERE status = 'RUNNING' AND lease_expires < ? "
                "UNION ALL SELECT id FROM executions WHERE status = 'WAITING' AND wake_at <= ? "
                "UNION ALL SELECT * FROM (SELECT id FROM executions WHERE status = 'QUEUED' AND wake_at IS NOT NULL "
                "ORDER BY wake_at) "
                "UNION ALL SELECT id FROM executions WHERE status = 'QUEUED' AND wake_at IS NULL "
                "LIMIT ?) RETURNING id, fence",
                (owner, now + lease_seconds, now, now, now, limit),
            ).fetchall()
            return [(r[0], r[1]) for r in rows]

        return self.transaction(write)

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

        return self.transaction(write) if leases else []

    def lease_held(self, execution_id: str, fence: int, now: float) -> bool:
        """Whether lease ``fence`` on the execution is still current and not expired at ``now``."""
        row = self._reader.execute(
            "SELECT 1 FROM executions WHERE id = ? AND fence = ? AND status = 'RUNNING' AND lease_expires > ?",
            (execution_id, fence, now),
        ).fetchone()
        return row is not None

    def release_leases(self, leases: Sequence[tuple[str, int]], note: str | None = None) -> None:
        """Hand leased executions back (QUEUED) so any worker can claim them now.

        With ``note`` (what went wrong) the activation counts as a failed attempt and the
        note is kept for the message the engine gives when it stops trying; without, it
        does not count (the worker stopped before the activation could decide).
        """

        def write(conn: sqlite3.Connection) -> None:
            now = time.time()  # its tree runs: claimed before new top-level executions
            conn.executemany(HAND_BACK, [(note, eid, fence, now) for eid, fence in leases])

        self.transaction(write)

    # -- writes ------------------------------------------------------------------

    def create_execution(self, new: NewExecution, at: float) -> None:
        """Create a top-level execution (children are created through ``commit``)."""
        self.transaction(lambda conn: insert_execution(conn, new, at))

    def commit(self, commit: Commit) -> CommitResult:
        """Apply one execution's decision atomically; raises LeaseLostError if fenced out."""
        result: CommitResult = self._group.submit(commit)
        return result

    def save_setting(self, write: SettingWrite) -> None:
        """Write a setting outside any execution (from the CLI)."""
        self.transaction(lambda conn: write_setting(conn, write, time.time()))

    def transaction(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(conn)`` inside the next group-commit transaction (``BEGIN IMMEDIATE``).

        For store modules only: ``fn`` writes SQL. A ``LeaseLostError``, ``ValueError``
        or ``sqlite3.IntegrityError`` raised by ``fn`` undoes only ``fn``'s changes.
        """
        return self._group.submit(fn)  # type: ignore[no-any-return]

    def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(conn)`` on this thread's reading connection (for store modules only)."""
        return fn(self._reader)

    def _write_failed(self, exc: sqlite3.DatabaseError) -> StoreError:
        """The error to raise for a failed write. A connection that SQLite opened read-only
        (the file was not writable then) stays read-only: open a new one, so that the next
        write succeeds once the file is writable again."""
        if "readonly" in str(exc):
            try:
                fresh = self._connect()
            except StoreError:
                pass
            else:
                self._writer.close()
                self._writer = fresh
        return _write_error(self.path, exc)

    def _apply_batch(self, items: Sequence[Any]) -> list[Any]:
        try:
            self._write_lock.acquire()  # writers of all processes queue here, in order
        except OSError as exc:
            raise StoreError(
                f"cannot write to database {self.path}: cannot open its lock file {self._write_lock.path} "
                f"({exc.strerror}); make the folder writable. Nothing from this write was recorded."
            ) from exc
        try:
            self._check_files()  # under the lock: a file replaced while this waited is seen
            return self._apply_locked(items)
        finally:
            self._write_lock.release()

    def _apply_locked(self, items: Sequence[Any]) -> list[Any]:
        conn = self._writer
        results: list[Any] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.DatabaseError as exc:
            raise self._write_failed(exc) from exc
        try:
            for item in items:
                conn.execute("SAVEPOINT unit")
                try:
                    result = apply_commit(conn, item) if isinstance(item, Commit) else item(conn)
                except (LeaseLostError, msgspec.EncodeError, TypeError, ValueError, sqlite3.IntegrityError) as exc:
                    conn.execute("ROLLBACK TO unit")
                    result = exc
                conn.execute("RELEASE unit")
                results.append(result)
            fault_point("commit.before")
            conn.execute("COMMIT")
            fault_point("commit.after")
        except sqlite3.DatabaseError as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise self._write_failed(exc) from exc
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


