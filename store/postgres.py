"""The store for many hosts: one PostgreSQL database (psycopg 3), shared by every worker.

Reads use one autocommit connection per thread. Writes go through one connection and
the same group commit as SQLite (``store.group_commit``): the writes of all threads
waiting meanwhile share one transaction and one commit, each inside a savepoint when
there are several, so one refused commit (a lost lease) does not fail its neighbours.
The SQL is the shared statement modules', through ``store.dialect.PgConnection``;
only the schema, the claim and the clock reads are PostgreSQL's own (``store.pg_sql``).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar, cast

from store import control, flows, invariants, leases, pg_sql, pg_transaction, reads, values
from store.attempts import HAND_BACK
from store.dialect import PgConnection
from store.errors import StoreClosedError, StoreError
from store.events import Event, ExecutionControlled
from store.group_commit import GroupCommit
from store.messages import answer_message, select_connectors, select_messages, write_connector
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
from store.pg_held import HeldLeases
from store.pg_listen import ChangeListener, sweep_seconds
from store.pg_schema import ensure_schema
from store.pg_url import connection_error, session_options, without_password
from store.queries import compile_filter
from store.schema import SchemaError
from store.writes import EXECUTION_COLUMNS, insert_execution, waiting_on, write_setting

T = TypeVar("T")

__all__ = ["PostgresStore"]


class PostgresStore:
    """Executions, events, flows, settings, waits and leases in one PostgreSQL database.

    Time: every time that decides who may run what (a lease's expiry, a timer or wait
    deadline falling due, the order of claims) is read from the database's clock
    (``clock_timestamp()``), never from the caller's ``now``, so hosts whose clocks
    disagree still agree on when a lease expired or a timer is due. A due time a worker
    computed on its own clock (``Commit.wake_at``, a wait's deadline) is moved onto the
    database's clock by the difference measured in the committing transaction;
    ``next_wake_at`` is given back on the caller's clock the same way.

    Wake-ups: ``wait_for_change`` waits on ``LISTEN`` (``store.pg_listen``); writes that
    make work runnable send ``NOTIFY`` in their own transaction.
    """

    dialect = "postgresql"

    def __init__(self, url: str) -> None:
        self.url = url
        self.path = without_password(url)
        password = _password(url)
        if password and "PGPASSWORD" not in os.environ:
            os.environ["PGPASSWORD"] = password  # processes this one starts reach the server with ``path``
        self._options = session_options(url)
        self._idle: list[PgConnection] = []  # reading connections not in use (a pool without a cap)
        self._pool_lock = threading.Lock()
        self._lock = threading.Lock()
        self._closed = self._closing = False
        import psycopg

        raw = self._connect()
        try:
            ensure_schema(raw, self.path)
        except SchemaError as exc:
            raw.close()
            raise StoreError(str(exc)) from exc
        except psycopg.Error as exc:
            raw.close()
            reason = " ".join(str(exc).split())
            raise StoreError(
                f"cannot create the engine's tables in database {self.path}: {reason}; "
                "let the user of --db create tables in it (GRANT CREATE), or create them once as its owner"
            ) from exc
        self._idle.append(PgConnection(raw))  # the first reader; the writer is opened by the first write
        self._writer: PgConnection | None = None
        self._listener = ChangeListener(self._connect, sweep_seconds())
        self._wake_cache: tuple[int, float, float | None] | None = None  # (listener count, when, value)
        self._group = GroupCommit(self._apply_batch)
        self._held = HeldLeases()

    # -- connections -------------------------------------------------------------

    def _connect(self) -> Any:
        import psycopg

        try:
            return psycopg.connect(self.url, autocommit=True, connect_timeout=10, options=self._options)
        except psycopg.Error as exc:
            raise connection_error(self.url, exc, "connect to") from exc

    def close(self) -> None:
        self._listener.close()
        with self._lock:  # first: waits for a write in flight, refuses later ones
            self._closed = True
            if self._writer is not None:
                self._writer.raw.close()
        with self._pool_lock:
            self._closing = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.raw.close()

    def wait_for_change(self, timeout: float) -> bool:
        """Whether a change was announced (``NOTIFY``) since this thread last asked,
        waiting up to ``timeout`` s on the listening connection (no query). The first
        call of a thread, and one every safety-net sweep, say True."""
        return self._listener.wait_for_change(timeout)

    # -- looking after the data ---------------------------------------------------

    def backup(self, target: str) -> None:
        raise StoreError(
            f"cannot back up {self.path} to a file: `engine db backup` copies SQLite databases; "
            "back up PostgreSQL with pg_dump"
        )

    def check(self) -> list[str]:
        """One line per broken invariant of the engine (``store.invariants``), read in one
        snapshot while workers go on; the storage itself is the server's to check (amcheck)."""

        def checked(conn: PgConnection) -> list[str]:
            with conn.snapshot():
                return invariants.problems(conn)

        return self.read(checked)

    # -- flows -------------------------------------------------------------------

    def put_flow(self, name: str, source: str, *, project: str = "default", path: str | None = None) -> str:
        version = source_version(source)
        self.transaction(lambda conn: flows.put(conn, version, name, project, source, path, conn.now))
        return version

    def get_flow(self, name: str) -> FlowVersion | None:
        found = self.read(lambda conn: flows.select(conn, "f.name = ?", (name,)))
        return found[0] if found else None

    def get_flow_version(self, version: str) -> FlowVersion | None:
        found = self.read(lambda conn: flows.select_versions(conn, "version = ?", (version,)))
        return found[0] if found else None

    def list_flows(self) -> list[FlowVersion]:
        return self.read(flows.select)

    def flow_versions(self, name: str) -> list[FlowVersion]:
        return self.read(lambda conn: flows.select_versions(conn, "name = ?", (name,)))

    # -- executions and events: reads -------------------------------------------

    def get_execution(self, execution_id: str) -> ExecutionRow | None:
        row = self._one(f"SELECT {EXECUTION_COLUMNS} FROM executions WHERE id = ?", (execution_id,))
        return reads.execution_row(row) if row else None

    def find_executions(self, prefix: str) -> list[str]:
        return self.read(lambda conn: reads.find_ids(conn, prefix))

    def list_executions(
        self, *, status: str | None = None, flow: str | None = None, project: str | None = None,
        parent_id: str | None = None, since: float | None = None, limit: int | None = None,
    ) -> list[ExecutionRow]:
        rows = self.read(lambda conn: reads.select_executions(conn, status, flow, project, parent_id, since, limit))
        return [reads.execution_row(row) for row in rows]

    def query_execution_ids(self, filter_: Any) -> list[str]:
        where, params = compile_filter(filter_)
        return [r[0] for r in self._all(f"SELECT id FROM executions WHERE {where} ORDER BY created_at, id", params)]

    def statuses(self, ids: Iterable[str]) -> dict[str, str]:
        ids = list(ids)
        if not ids:
            return {}
        return dict(self._all(f"SELECT id, status FROM executions WHERE id IN ({','.join('?' * len(ids))})", ids))

    def children(self, execution_id: str) -> list[ExecutionRow]:
        return self.list_executions(parent_id=execution_id)[::-1]

    def dependencies(self, execution_id: str) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
        return self.read(lambda conn: reads.dependencies(conn, execution_id))

    def load_events(self, execution_id: str, after_seq: int = 0) -> list[Event]:
        return self.read(lambda conn: reads.load_events(conn, execution_id, after_seq))

    def next_wake_at(self) -> float | None:
        """The earliest timer or lease expiry, on the caller's clock. Asked again only
        after a change was announced, once the answer is due, or at each sweep (an idle
        worker asks every tick: this keeps it from querying the server every tick)."""
        count, now = self._listener.count, time.time()
        cached = self._wake_cache
        if cached is not None and cached[0] == count and now - cached[1] < self._listener.sweep and (
            cached[2] is None or cached[2] > now
        ):
            return cached[2]
        row = self._one(pg_sql.NEXT_WAKE)
        value = None if row[0] is None else float(row[0]) - float(row[1]) + time.time()
        self._wake_cache = (count, now, value)
        return value

    def has_pending_work(self) -> bool:
        return self.read(reads.has_pending_work)

    def count_by_status(self) -> dict[str, int]:
        return dict(self._all("SELECT status, count(*) FROM executions GROUP BY status"))

    def count_tree(self, root_id: str) -> int:
        return int(self._one("SELECT count(*) FROM executions WHERE root_id = ?", (root_id,))[0])

    def waiting_on(self, waiter: str, targets: Sequence[str]) -> list[str]:
        return self.read(lambda conn: waiting_on(conn, waiter, targets)) if targets else []

    # -- settings, messages, connectors -------------------------------------------

    def get_setting(self, name: str) -> tuple[Any, str | None] | None:
        row = self._one("SELECT value, description FROM settings WHERE name = ?", (name,))
        return (values.decode(row[0]), row[1]) if row else None

    def list_settings(self) -> list[tuple[str, Any, str | None]]:
        return [(n, values.decode(v), d) for n, v, d in self._all("SELECT name, value, description FROM settings ORDER BY name")]

    def save_setting(self, write: SettingWrite) -> None:
        self.transaction(lambda conn: write_setting(conn, write, conn.now))

    def get_message(self, message_id: str) -> MessageRow | None:
        found = self.read(lambda conn: select_messages(conn, "id = ?", (message_id,)))
        return found[0] if found else None

    def list_messages(self, *, status: str | None = None, execution_id: str | None = None) -> list[MessageRow]:
        clauses, params = ["1 = 1"], []
        for column, value in (("status", status), ("execution_id", execution_id)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        return self.read(lambda conn: select_messages(conn, " AND ".join(clauses), tuple(params)))

    def answer_message(self, message_id: str, response: Any) -> list[str]:
        # message deadlines are on the clock of the host that sent them, as messages.py reads them
        return self.transaction(lambda conn: answer_message(conn, message_id, response, time.time()))

    def get_connector(self, name: str) -> ConnectorWrite | None:
        found = self.read(lambda conn: select_connectors(conn, name))
        return found[0] if found else None

    def list_connectors(self) -> list[ConnectorWrite]:
        return self.read(select_connectors)

    def save_connector(self, write: ConnectorWrite) -> None:
        self.transaction(lambda conn: write_connector(conn, write, conn.now))

    # -- leases (on the database's clock; the callers' ``now`` is not used) ---------

    def claim(self, owner: str, limit: int, lease_seconds: float, now: float) -> list[tuple[str, int]]:
        """Lease up to ``limit`` runnable executions (``store.pg_sql.CLAIM``)."""
        self._wake_cache = None
        rows, db_now = self.transaction(
            lambda conn: (conn.execute(pg_sql.CLAIM, (owner, conn.now + lease_seconds, limit, conn.now)).fetchall(),
                          conn.now),
            notify=False,
        )
        claimed = [(r[0], r[1]) for r in rows]
        self._held.took(claimed, db_now + lease_seconds, db_now)
        return claimed

    def renew_leases(self, held: Sequence[tuple[str, int]], lease_seconds: float, now: float) -> list[str]:
        if not held:
            return []
        self._wake_cache = None
        lost, db_now = self.transaction(lambda conn: (leases.renew(conn, held, conn.now + lease_seconds), conn.now),
                                        notify=False)
        self._held.forget(lost)
        self._held.took([h for h in held if h[0] not in lost], db_now + lease_seconds, db_now)
        return lost

    def lease_held(self, execution_id: str, fence: int, now: float) -> bool:
        """Answered from the leases this store wrote while they run long enough
        (``store.pg_held``), else by the database."""
        if self._held.holds(execution_id, fence):
            return True
        return self._one(pg_sql.LEASE_HELD, (execution_id, fence)) is not None

    def release_leases(self, leases: Sequence[tuple[str, int]], note: str | None = None) -> None:
        self._held.forget(eid for eid, _ in leases)
        self.transaction(lambda conn: conn.executemany(HAND_BACK, [(note, eid, fence, conn.now) for eid, fence in leases]))

    # -- writes --------------------------------------------------------------------

    def create_execution(self, new: NewExecution, at: float) -> None:
        self.transaction(lambda conn: insert_execution(conn, new, at))

    def commit(self, commit: Commit) -> CommitResult:
        result: CommitResult = self._group.submit(commit)
        if commit.release_lease or result.status is not None:
            self._held.forget([commit.execution_id])
        elif commit.fence is not None and result.lease_expires is not None:
            self._held.found(commit.execution_id, commit.fence, result.lease_expires)
        return result

    def start_execution(self, execution_id: str, now: float) -> str:
        return self.transaction(lambda conn: control.start(conn, execution_id, conn.now))

    def pause_execution(self, execution_id: str, now: float) -> tuple[str, str]:
        return self.transaction(lambda conn: control.pause(conn, execution_id, conn.now))

    def resume_execution(self, execution_id: str, flow_version: str | None, now: float) -> tuple[str, str]:
        return self.transaction(lambda conn: control.resume(conn, execution_id, flow_version, conn.now))

    def cancel_execution(self, execution_id: str, now: float) -> tuple[list[str], list[str]]:
        return self.transaction(lambda conn: control.cancel(conn, execution_id, conn.now))

    def retry_execution(self, execution_id: str, flow_version: str, now: float) -> int:
        return self.transaction(lambda conn: control.retry(conn, execution_id, flow_version, conn.now))

    def fork_execution(
        self, new: NewExecution, taken_over: list[Event], children: list[NewExecution],
        marker: ExecutionControlled, now: float,
    ) -> None:
        self.transaction(lambda conn: control.fork(conn, new, taken_over, children, marker, conn.now))

    # -- transactions for store modules ----------------------------------------------

    def transaction(self, fn: Callable[[PgConnection], T], notify: bool = True) -> T:
        """Run ``fn(conn)`` inside the next group-commit transaction; with ``notify`` the
        transaction announces a change to every listening worker. ``conn.now`` is the
        database's clock. A ``LeaseLostError``, ``ValueError`` or integrity error raised
        by ``fn`` undoes only ``fn``'s changes."""
        return cast(T, self._group.submit(pg_transaction.Unit(fn, notify)))

    def read(self, fn: Callable[[PgConnection], T]) -> T:
        """Run ``fn(conn)`` on an idle reading connection (for store modules only). As
        many are opened as reads run at once, not one per thread. A lost connection
        becomes a one-line ``StoreError`` and is not used again."""
        import psycopg

        with self._pool_lock:
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            conn = PgConnection(self._connect())
        try:
            result = fn(conn)
        except psycopg.OperationalError as exc:
            conn.raw.close()
            raise connection_error(self.url, exc, "read from") from exc
        except BaseException:
            if conn.raw.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                conn.raw.close()
                raise
            self._give_back(conn)
            raise
        self._give_back(conn)
        return result

    def _give_back(self, conn: PgConnection) -> None:
        with self._pool_lock:
            if not self._closing:
                self._idle.append(conn)
                return
        conn.raw.close()

    def _one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.read(lambda conn: conn.execute(sql, params).fetchone())

    def _all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return self.read(lambda conn: conn.execute(sql, params).fetchall())

    def _apply_batch(self, items: Sequence[Any]) -> list[Any]:
        import psycopg

        with self._lock:
            if self._closed:
                raise StoreClosedError(f"the database was closed before this write ({self.path}): this process is stopping")
            try:
                if self._writer is None or self._writer.raw.closed:
                    self._writer = PgConnection(self._connect())
                return pg_transaction.apply(self._writer, items)
            except psycopg.OperationalError as exc:
                if self._writer is not None:
                    self._writer.raw.close()  # opened anew by the next write
                raise connection_error(self.url, exc, "write to", "Nothing from this write was recorded.") from exc
            except psycopg.Error as exc:  # refused by the server (a full disk, a read-only replica...)
                reason = " ".join(str(exc).split())
                raise StoreError(f"cannot write to database {self.path}: {reason}. Nothing from this write was "
                                 "recorded; see the server's log") from exc


def _password(url: str) -> str | None:
    from urllib.parse import unquote, urlsplit

    found = urlsplit(url).password
    return unquote(found) if found else None

