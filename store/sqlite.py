"""The embedded store: one SQLite file in WAL mode, shared by threads and processes.

Reads use one connection per thread. Writes go through one connection and a group
commit, each batch in a single ``BEGIN IMMEDIATE`` transaction; each commit inside the
batch is wrapped in a savepoint so one refused commit (a lost lease) does not fail
its neighbours.
"""

from __future__ import annotations

import functools
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import closing
from typing import Any, TypeVar, cast


from store import control, flows, leases, maintenance, reads, values
from store.attempts import HAND_BACK
from store.dbfiles import FileWatch, create_private
from store.errors import DatabaseReplacedError, StoreError
from store.events import Event, ExecutionControlled
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
from store.notices import Notices, wakes_others
from store.queries import compile_filter
from store.schema import SchemaError, ensure_schema
from store.sqlite_batch import apply_batch, write_error
from store.write_lock import WriteLock
from store.writes import (
    EXECUTION_COLUMNS,
    insert_execution,
    waiting_on,
    write_setting,
)

log = logging.getLogger(__name__)

T = TypeVar("T")
M = TypeVar("M", bound=Callable[..., Any])

SYNCHRONOUS_LEVELS = ("FULL", "NORMAL")

__all__ = ["SYNCHRONOUS_LEVELS", "DatabaseReplacedError", "SqliteStore", "StoreError"]


def _reads(method: M) -> M:
    """Turn SQLite's error on a read of a damaged file into a ``StoreError`` that says so
    (writes say it already, in ``store.sqlite_batch.write_error``)."""

    @functools.wraps(method)
    def read(self: SqliteStore, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"cannot read database {self.path}: {exc}; the file is damaged or not an engine database: "
                "restore it from a backup"
            ) from exc

    return cast(M, read)


class SqliteStore:
    """Executions, events, flows, settings, waits and leases in one SQLite file."""

    dialect = "sqlite"

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
        self._notices = Notices(self.path)

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
        self._notices.close()  # wakes this store's waiters: their wait_for_change raises StoreClosedError
        self._write_lock.close()  # first: waits for a write in flight, refuses later ones
        self._writer.close()
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def wait_for_change(self, timeout: float) -> bool:
        """Whether work may have become runnable since this thread last asked, waiting up
        to ``timeout`` seconds (0: just look). A commit that makes work runnable sends a
        notice (``store.notices``) that ends the wait at once; any other commit of another
        connection (SQLite's ``PRAGMA data_version``) is seen when the wait begins or ends.
        The first call of a thread says True. Raises ``DatabaseReplacedError`` when the
        files were replaced under this process, ``StoreClosedError`` once it is closed."""
        return self._notices.wait(timeout, self._seen_commit)

    def _seen_commit(self) -> bool:
        """Whether another connection committed since this thread last looked (True at the
        first look). Asked of the writing connection, between writes: this store's own
        commits do not count, so a worker's loop is not sent to claim after each of them."""
        self._watch.check()
        with self._write_lock.between_writes():
            version = int(self._writer.execute("PRAGMA data_version").fetchone()[0])
        changed = version != getattr(self._local, "version", None)
        self._local.version = version
        return changed

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
        self.transaction(lambda conn: flows.put(conn, version, name, project, source, path, time.time()))
        return version

    @_reads
    def get_flow(self, name: str) -> FlowVersion | None:
        """The current version of flow ``name``, or None."""
        found = flows.select(self._reader, "f.name = ?", (name,))
        return found[0] if found else None

    @_reads
    def get_flow_version(self, version: str) -> FlowVersion | None:
        found = flows.select_versions(self._reader, "version = ?", (version,))
        return found[0] if found else None

    @_reads
    def list_flows(self) -> list[FlowVersion]:
        return flows.select(self._reader)

    @_reads
    def flow_versions(self, name: str) -> list[FlowVersion]:
        return flows.select_versions(self._reader, "name = ?", (name,))

    # -- executions and events: reads -------------------------------------------

    @_reads
    def get_execution(self, execution_id: str) -> ExecutionRow | None:
        row = self._reader.execute(
            f"SELECT {EXECUTION_COLUMNS} FROM executions WHERE id = ?", (execution_id,)
        ).fetchone()
        return reads.execution_row(row) if row else None

    @_reads
    def find_executions(self, prefix: str) -> list[str]:
        """Ids starting with ``prefix`` (so users can type a short id)."""
        return reads.find_ids(self._reader, prefix)

    @_reads
    def list_executions(
        self, *, status: str | None = None, flow: str | None = None, project: str | None = None,
        parent_id: str | None = None, since: float | None = None, limit: int | None = None,
    ) -> list[ExecutionRow]:
        """Executions matching every given filter, newest first."""
        rows = reads.select_executions(self._reader, status, flow, project, parent_id, since, limit)
        return [reads.execution_row(row) for row in rows]

    @_reads
    def query_execution_ids(self, filter_: Any) -> list[str]:
        """Ids of executions matching a flow_api filter expression, oldest first."""
        where, params = compile_filter(filter_)
        sql = f"SELECT id FROM executions WHERE {where} ORDER BY created_at, id"
        return [row[0] for row in self._reader.execute(sql, params)]

    @_reads
    def statuses(self, ids: Iterable[str]) -> dict[str, str]:
        ids = list(ids)
        marks = ",".join("?" * len(ids))
        rows = self._reader.execute(f"SELECT id, status FROM executions WHERE id IN ({marks})", ids)
        return dict(rows.fetchall())

    def children(self, execution_id: str) -> list[ExecutionRow]:
        return self.list_executions(parent_id=execution_id)[::-1]

    @_reads
    def dependencies(self, execution_id: str) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
        """(what ``execution_id`` waited for, what waited for it), each as (id, since)."""
        return reads.dependencies(self._reader, execution_id)

    @_reads
    def load_events(self, execution_id: str, after_seq: int = 0) -> list[Event]:
        """The execution's log in seq order (optionally only past ``after_seq``)."""
        return reads.load_events(self._reader, execution_id, after_seq)

    @_reads
    def next_wake_at(self) -> float | None:
        """The earliest timer or lease expiry, so an idle worker knows when to look again."""
        return reads.next_wake_at(self._reader)

    @_reads
    def has_pending_work(self) -> bool:
        """Anything queued, running, or waiting on a timer or deadline."""
        return reads.has_pending_work(self._reader)

    @_reads
    def count_by_status(self) -> dict[str, int]:
        return dict(self._reader.execute("SELECT status, count(*) FROM executions GROUP BY status").fetchall())

    @_reads
    def count_tree(self, root_id: str) -> int:
        """How many executions the tree of top-level execution ``root_id`` holds."""
        return int(self._reader.execute("SELECT count(*) FROM executions WHERE root_id = ?", (root_id,)).fetchone()[0])

    @_reads
    def waiting_on(self, waiter: str, targets: Sequence[str]) -> list[str]:
        """Those of ``targets`` that wait, directly or through others, for ``waiter``."""
        return waiting_on(self._reader, waiter, targets)

    # -- settings ----------------------------------------------------------------

    @_reads
    def get_setting(self, name: str) -> tuple[Any, str | None] | None:
        """(value, description) of a setting, or None if it does not exist."""
        row = self._reader.execute("SELECT value, description FROM settings WHERE name = ?", (name,)).fetchone()
        return (values.decode(row[0]), row[1]) if row else None

    @_reads
    def list_settings(self) -> list[tuple[str, Any, str | None]]:
        rows = self._reader.execute("SELECT name, value, description FROM settings ORDER BY name")
        return [(n, values.decode(v), d) for n, v, d in rows]

    # -- messages and connectors -------------------------------------------------

    @_reads
    def get_message(self, message_id: str) -> MessageRow | None:
        found = select_messages(self._reader, "id = ?", (message_id,))
        return found[0] if found else None

    @_reads
    def list_messages(self, *, status: str | None = None, execution_id: str | None = None) -> list[MessageRow]:
        clauses, params = ["1 = 1"], []
        for column, value in (("status", status), ("execution_id", execution_id)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        return select_messages(self._reader, " AND ".join(clauses), tuple(params))

    def answer_message(self, message_id: str, response: Any) -> list[str]:
        """Record a person's answer; returns the execution it made runnable, if any."""
        woken: list[str] = self.transaction(lambda conn: answer_message(conn, message_id, response, time.time()))
        if woken:
            self._notices.send()
        return woken

    @_reads
    def get_connector(self, name: str) -> ConnectorWrite | None:
        found = select_connectors(self._reader, name)
        return found[0] if found else None

    @_reads
    def list_connectors(self) -> list[ConnectorWrite]:
        return select_connectors(self._reader)

    def save_connector(self, write: ConnectorWrite) -> None:
        self.transaction(lambda conn: write_connector(conn, write, time.time()))

    # -- leases ------------------------------------------------------------------

    def claim(self, owner: str, limit: int, lease_seconds: float, now: float) -> list[tuple[str, int]]:
        """Lease up to ``limit`` runnable executions (in the order ``store.leases.claim``
        gives); returns (execution id, fence) pairs: the fence accompanies every commit."""
        return self.transaction(leases.Claiming(owner, limit, now + lease_seconds, now))

    def renew_leases(self, held: Sequence[tuple[str, int]], lease_seconds: float, now: float) -> list[str]:
        """Extend leases still held; returns the ids whose lease was lost."""
        return self.transaction(lambda conn: leases.renew(conn, held, now + lease_seconds)) if held else []

    @_reads
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
        self._notices.send()

    # -- writes ------------------------------------------------------------------

    def create_execution(self, new: NewExecution, at: float) -> None:
        """Create a top-level execution (children are created through ``commit``)."""
        self.transaction(lambda conn: insert_execution(conn, new, at))
        if new.status == "QUEUED":
            self._notices.send()

    def commit(self, commit: Commit) -> CommitResult:
        """Apply one execution's decision atomically; raises LeaseLostError if fenced out."""
        result: CommitResult = self._group.submit(commit)
        if wakes_others(commit, result):
            self._notices.send()
        return result

    def save_setting(self, write: SettingWrite) -> None:
        """Write a setting outside any execution (from the CLI)."""
        self.transaction(lambda conn: write_setting(conn, write, time.time()))

    # -- control by a user (the SQL is in store.control) -------------------------

    def start_execution(self, execution_id: str, now: float) -> str:
        return self._tell(self.transaction(lambda conn: control.start(conn, execution_id, now)))

    def pause_execution(self, execution_id: str, now: float) -> tuple[str, str]:
        return self._tell(self.transaction(lambda conn: control.pause(conn, execution_id, now)))

    def resume_execution(self, execution_id: str, flow_version: str | None, now: float) -> tuple[str, str]:
        return self._tell(self.transaction(lambda conn: control.resume(conn, execution_id, flow_version, now)))

    def cancel_execution(self, execution_id: str, now: float) -> tuple[list[str], list[str]]:
        return self._tell(self.transaction(lambda conn: control.cancel(conn, execution_id, now)))

    def retry_execution(self, execution_id: str, flow_version: str, now: float) -> int:
        return self._tell(self.transaction(lambda conn: control.retry(conn, execution_id, flow_version, now)))

    def fork_execution(
        self, new: NewExecution, taken_over: list[Event], children: list[NewExecution],
        marker: ExecutionControlled, now: float,
    ) -> None:
        self.transaction(lambda conn: control.fork(conn, new, taken_over, children, marker, now))
        self._notices.send()

    def _tell(self, result: T) -> T:
        """Notify the waiting workers after a control operation; ``result`` passes through."""
        self._notices.send()
        return result

    # -- transactions for store modules ----------------------------------------------

    def transaction(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(conn)`` inside the next group-commit transaction (``BEGIN IMMEDIATE``).

        For store modules only: ``fn`` writes SQL. A ``LeaseLostError``, ``ValueError``
        or ``sqlite3.IntegrityError`` raised by ``fn`` undoes only ``fn``'s changes.
        """
        return cast(T, self._group.submit(fn))

    @_reads
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
        return write_error(self.path, exc)

    def _apply_batch(self, items: Sequence[Any]) -> list[Any]:
        try:
            self._write_lock.acquire()  # writers of all processes queue here, in order
        except OSError as exc:
            raise StoreError(
                f"cannot write to database {self.path}: cannot open its lock file {self._write_lock.path} "
                f"({exc.strerror}); make the folder writable. Nothing from this write was recorded."
            ) from exc
        relaxed = self.synchronous == "FULL" and all(isinstance(item, leases.Claiming) for item in items)
        writer = self._writer
        try:
            self._watch.check()  # under the lock: a file replaced while this waited is seen
            if relaxed:  # claims alone: see store.leases.Claiming
                writer.execute("PRAGMA synchronous=NORMAL")
            return self._apply_locked(items)
        finally:
            if relaxed and writer is self._writer:  # not replaced by _write_failed (opened FULL)
                writer.execute("PRAGMA synchronous=FULL")
            self._write_lock.release()

    def _apply_locked(self, items: Sequence[Any]) -> list[Any]:
        try:
            return apply_batch(self._writer, items)
        except sqlite3.DatabaseError as exc:
            raise self._write_failed(exc) from exc
