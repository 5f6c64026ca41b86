"""The PostgreSQL store's write transaction: a group-commit batch of commits and store
module writes (``store.postgres``) in one transaction on the writing connection, in
pipeline mode, each unit inside a savepoint when there are several, so that one
refused unit (a lost lease) does not fail its neighbours.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from store import pg_append, pg_batch, pg_sql
from store.dialect import PgConnection
from store.errors import LeaseLostError
from store.faults import fault_point
from store.model import Commit, CommitResult
from store.notices import wakes_others
from store.pg_listen import CHANNEL
from store.writes import apply_commit


class Unit:
    """A write of a store module, and whether it announces a change (NOTIFY)."""

    __slots__ = ("fn", "notify")

    def __init__(self, fn: Callable[[PgConnection], Any], notify: bool) -> None:
        self.fn, self.notify = fn, notify


def apply(conn: PgConnection, items: Sequence[Any]) -> list[Any]:
    """One transaction for ``items``. A batch of bare step commits goes in one round
    trip (``store.pg_append``), a batch of plain ones without a wait per commit
    (``store.pg_batch``); refused by the server as a whole (one commit's row refused,
    say), it runs again commit by commit, each error its own."""
    import psycopg

    if pg_append.bare(items):
        try:
            return _append(conn, items)
        except psycopg.OperationalError:
            raise
        except psycopg.Error:
            pass  # rolled back: run again below, each error its own
    fast = pg_batch.answerable(items)
    if fast and len(items) > 1:
        try:
            return _transaction(conn, items, fast)
        except psycopg.OperationalError:
            raise
        except psycopg.Error:
            fast = False
    return _transaction(conn, items, fast)


def _append(conn: PgConnection, items: Sequence[Any]) -> list[Any]:
    """Bare step commits in one transaction and one round trip; a commit that changed
    nothing (see ``store.pg_append``) runs again by itself on the ordinary path."""
    raw = conn.raw
    try:
        with raw.pipeline():
            raw.execute("BEGIN")
            sent = [pg_append.send(raw, c) for c in items]
            fault_point("commit.before")
            raw.execute("COMMIT")
        fault_point("commit.after")
    except BaseException:
        _rollback(raw)
        raise
    results: list[Any] = []
    for item, cursor in zip(items, sent):
        row = cursor.fetchone()
        if row is None:
            results += _transaction(conn, [item], pg_batch.answerable([item]))
        else:
            results.append(CommitResult(lease_expires=row[0]))
    return results


def _transaction(conn: PgConnection, items: Sequence[Any], fast: bool) -> list[Any]:
    """One transaction for ``items``, in pipeline mode: statements whose results are
    not read (inserts, updates, savepoints) travel with the next one that is, so a
    step's commit costs a few round trips, and a batch of many shares one COMMIT."""
    import psycopg

    raw = conn.raw
    several, notify, results = len(items) > 1, False, []
    refused = (LeaseLostError, msgspec.EncodeError, TypeError, ValueError, psycopg.IntegrityError)
    try:
        with raw.pipeline() as pipe:
            conn.pipeline = pipe
            raw.execute("BEGIN")
            clock = raw.execute(f"SELECT {pg_sql.DB_NOW}")
            if fast:  # read with the clock, in the same round trip
                conn.known = pg_batch.KnownRows(raw, [c.execution_id for c in items])
            conn.now = float(clock.fetchone()[0])
            skew = conn.now - time.time()
            for item in items:
                if several:
                    raw.execute("SAVEPOINT unit")
                try:
                    result, announce = _unit(conn, item, skew)
                    if several and not fast:
                        pipe.sync()  # an error of this unit is raised here, not in the next one
                except refused as exc:
                    if not several:
                        raise
                    raw.execute("ROLLBACK TO SAVEPOINT unit")
                    result, announce = exc, False
                if several:
                    raw.execute("RELEASE SAVEPOINT unit")
                results.append(result)
                notify = notify or announce
            fault_point("commit.before")
            if notify:
                raw.execute(f"NOTIFY {CHANNEL}")
            raw.execute("COMMIT")
        fault_point("commit.after")
    except refused as exc:
        _rollback(raw)
        if several:
            raise
        return [exc]
    except BaseException:
        _rollback(raw)
        raise
    finally:
        conn.pipeline = conn.known = None
    return results


def _unit(conn: PgConnection, item: Any, skew: float) -> tuple[Any, bool]:
    """Apply one commit or store-module write; returns its result and whether it
    announces a change: a commit when other workers have something to do (as SQLite's
    notices: ``store.notices.wakes_others``; a NOTIFY wakes every listening worker, whose
    claims would only compete with the work it announces). Commits, the hot path,
    pipeline their statements; store-module writes see each error at once."""
    if isinstance(item, Commit):
        result = apply_commit(conn, _on_db_clock(item, skew), conn.now)
        return result, wakes_others(item, result)
    conn.eager = True
    try:
        return item.fn(conn), item.notify
    finally:
        conn.eager = False


def _rollback(raw: Any) -> None:
    import psycopg

    if not raw.closed and raw.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        raw.execute("ROLLBACK")


def _on_db_clock(commit: Commit, skew: float) -> Commit:
    """``commit`` with its due times (computed on the worker's clock) on the database's."""
    if commit.wake_at is None and (commit.wait is None or commit.wait.deadline is None):
        return commit
    wait = commit.wait
    if wait is not None and wait.deadline is not None:
        wait = msgspec.structs.replace(wait, deadline=wait.deadline + skew)
    wake_at = None if commit.wake_at is None else commit.wake_at + skew
    return msgspec.structs.replace(commit, wake_at=wake_at, wait=wait)
