"""The SQL of reading executions, their logs and their dependencies."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from store.dialect import Conn
from store import values
from store.events import Event, decode_body
from store.model import ExecutionRow
from store.writes import EXECUTION_COLUMNS


def execution_row(row: Sequence[Any]) -> ExecutionRow:
    """An ``executions`` row (``EXECUTION_COLUMNS``) with its inputs and outputs decoded."""
    fields = list(row)
    fields[11] = values.decode(fields[11])
    fields[12] = values.decode(fields[12])
    return ExecutionRow(*fields)


def find_ids(conn: Conn, prefix: str) -> list[str]:
    """Up to two ids starting with ``prefix``."""
    rows = conn.execute(
        "SELECT id FROM executions WHERE id >= ? AND id < ? LIMIT 2", (prefix, prefix + "\uffff")
    ).fetchall()
    return [r[0] for r in rows]


def select_executions(
    conn: Conn, status: str | None, flow: str | None, project: str | None,
    parent_id: str | None, since: float | None, limit: int | None,
) -> list[Any]:
    """Raw rows of the executions matching every given filter, newest first."""
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
    return conn.execute(sql, params).fetchall()


def dependencies(conn: Conn, execution_id: str) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """(what ``execution_id`` waited for, what waited for it), each as (id, since)."""
    waits_for = conn.execute(
        "SELECT target_id, since FROM dependencies WHERE waiter_id = ? ORDER BY since", (execution_id,)
    ).fetchall()
    waited_by = conn.execute(
        "SELECT waiter_id, since FROM dependencies WHERE target_id = ? ORDER BY since", (execution_id,)
    ).fetchall()
    return waits_for, waited_by


def load_events(conn: Conn, execution_id: str, after_seq: int) -> list[Event]:
    """The execution's log in seq order, past ``after_seq``."""
    rows = conn.execute(
        "SELECT seq, at, body, line FROM events WHERE execution_id = ? AND seq > ? ORDER BY seq",
        (execution_id, after_seq),
    ).fetchall()
    return [Event(seq, at, decode_body(body), line) for seq, at, body, line in rows]


def next_wake_at(conn: Conn) -> float | None:
    """The earliest timer or lease expiry."""
    row = conn.execute(
        "SELECT min(t) FROM (SELECT min(wake_at) t FROM executions WHERE status = 'WAITING' "
        "UNION ALL SELECT min(lease_expires) FROM executions WHERE status = 'RUNNING')"
    ).fetchone()
    return None if row[0] is None else float(row[0])


def has_pending_work(conn: Conn) -> bool:
    """Anything queued, running, or waiting on a timer or deadline."""
    row = conn.execute(
        "SELECT 1 FROM executions WHERE status IN ('QUEUED', 'RUNNING') "
        "OR (status = 'WAITING' AND wake_at IS NOT NULL) LIMIT 1"
    ).fetchone()
    return row is not None
