"""The SQL of leases: which runnable executions a worker claims, and keeping them."""

from __future__ import annotations

from collections.abc import Sequence

from store.dialect import Conn
from store.attempts import CLAIM_COUNTS


def claim(conn: Conn, owner: str, limit: int, expires: float, now: float) -> list[tuple[str, int]]:
    """Lease up to ``limit`` runnable executions: lease expired, timer due, or queued.

    Expired leases and due timers come first, so a crashed worker's executions and
    sleeps that are over do not wait behind a long queue; then executions of trees
    that already run (children, woken parents: ``wake_at`` set, oldest first); then new
    top-level ones in the order they were created. Every part reads the status indexes.
    Returns (execution id, fence) pairs.
    """
    rows = conn.execute(
        "UPDATE executions SET status = 'RUNNING', lease_owner = ?, lease_expires = ?, "
        f"fence = fence + 1, {CLAIM_COUNTS}, started_at = coalesce(started_at, ?) WHERE id IN ("
        "SELECT id FROM executions WHERE status = 'RUNNING' AND lease_expires < ? "
        "UNION ALL SELECT id FROM executions WHERE status = 'WAITING' AND wake_at <= ? "
        "UNION ALL SELECT * FROM (SELECT id FROM executions WHERE status = 'QUEUED' AND wake_at IS NOT NULL "
        "ORDER BY wake_at) "
        "UNION ALL SELECT id FROM executions WHERE status = 'QUEUED' AND wake_at IS NULL "
        "LIMIT ?) RETURNING id, fence",
        (owner, expires, now, now, now, limit),
    ).fetchall()
    return [(r[0], r[1]) for r in rows]


def renew(conn: Conn, held: Sequence[tuple[str, int]], expires: float) -> list[str]:
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
