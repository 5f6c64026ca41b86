"""The SQL of leases: which runnable executions a worker claims, and keeping them."""

from __future__ import annotations

from collections.abc import Sequence

from store.attempts import CLAIM_COUNTS
from store.dialect import Conn


_EXPIRED_OR_DUE = (
    "SELECT id FROM executions WHERE status = 'RUNNING' AND lease_expires < ?3 "
    "UNION ALL SELECT id FROM executions WHERE status = 'WAITING' AND wake_at <= ?3 UNION ALL "
)
_QUEUED = (
    "SELECT * FROM (SELECT id FROM executions WHERE status = 'QUEUED' AND wake_at IS NOT NULL ORDER BY wake_at) "
    "UNION ALL SELECT id FROM executions WHERE status = 'QUEUED' AND wake_at IS NULL"
)
_CLAIM = (
    "UPDATE executions SET status = 'RUNNING', lease_owner = ?1, lease_expires = ?2, "
    f"fence = fence + 1, {CLAIM_COUNTS}, started_at = coalesce(started_at, ?3) WHERE id IN ("
    "{} LIMIT ?4) RETURNING id, fence"
)
_CLAIM_ANY = _CLAIM.format(_EXPIRED_OR_DUE + _QUEUED)
_CLAIM_QUEUED = _CLAIM.format(_QUEUED)


def claim(
    conn: Conn, owner: str, limit: int, expires: float, now: float, *, queued_only: bool = False,
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
        (owner, expires, now, limit),
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


class Claiming:
    """A claim (``claim``) records no work, so a batch of claims alone commits
    without waiting for the disk (``synchronous=NORMAL`` in WAL mode): the next synced commit
    of any process makes it durable, and the worker's first record is one. Lost in a power
    cut, the lease was simply not taken and any worker claims the execution again. This
    takes one fsync off every wake-up that crosses processes."""

    __slots__ = ("expires", "limit", "now", "owner")

    def __init__(self, owner: str, limit: int, expires: float, now: float) -> None:
        self.owner, self.limit, self.expires, self.now = owner, limit, expires, now

    def __call__(self, conn: Conn) -> list[tuple[str, int]]:
        return claim(conn, self.owner, self.limit, self.expires, self.now)


def claim_queued(conn: Conn, owner: str, limit: int, expires: float, now: float) -> list[tuple[str, int]]:
    """``claim`` of queued executions only: what a commit that ends an activation leases."""
    return claim(conn, owner, limit, expires, now, queued_only=True)
