"""The SQL of leases: which runnable executions a worker claims, and keeping them."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from store.attempts import CLAIM_COUNTS


_EXPIRED_OR_DUE = (
    "SELECT id FROM executions WHERE status = 'RUNNING' AND lease_expires < :now "
    "UNION ALL SELECT id FROM executions WHERE status = 'WAITING' AND wake_at <= :now UNION ALL "
)
_QUEUED = (
    "SELECT * FROM (SELECT id FROM executions WHERE status = 'QUEUED' AND wake_at IS NOT NULL ORDER BY wake_at) "
    "UNION ALL SELECT id FROM executions WHERE status = 'QUEUED' AND wake_at IS NULL"
)
_CLAIM = (
    "UPDATE executions SET status = 'RUNNING', lease_owner = :owner, lease_expires = :expires, "
    f"fence = fence + 1, {CLAIM_COUNTS}, started_at = coalesce(started_at, :now) WHERE id IN ("
    "{} LIMIT :limit) RETURNING id, fence"
)
_CLAIM_ANY = _CLAIM.format(_EXPIRED_OR_DUE + _QUEUED)
_CLAIM_QUEUED = _CLAIM.format(_QUEUED)


def claim(
    conn: sqlite3.Connection, owner: str, limit: int, expires: float, now: float, *, queued_only: bool = False,
) -> list[tuple[str, int]]:
    """Lease up to ``limit`` runnable executions: lease expired, timer due, or queued
    (only queued ones with ``queued_only``: no clock decides which those are).

    Expired leases and due timers come first, so a crashed worker's executions and
    sleeps that are over do not wait behind a long queue; then executions of trees
    that already run (children, woken parents: ``wake_at`` set, oldest first); then new
    top-level ones in the order they were created. Every part reads the status indexes.
    Returns (execution id, fence) pairs.
    """
    rows = conn.execute(
        _CLAIM_QUEUED if queued_only else _CLAIM_ANY,
        {"owner": owner, "expires": expires, "now": now, "limit": limit},
    ).fetchall()
    return [(r[0], r[1]) for r in rows]


def renew(conn: sqlite3.Connection, held: Sequence[tuple[str, int]], expires: float) -> list[str]:
    """Move the expiry of leases still held to ``expires``; returns the ids whose lease was lost."""
    lost = []
    for execution_id, fence in held:
        cur = conn.execute(
            "UPDATE executions SET lease_expires = ? WHERE id = ? AND fence = ? AND status = 'RUNNING'",
            (expires, execution_id, fence),
        )
        if cur.rowcount == 0:
            lost.append(execution_id)
    return lost
