"""The few statements PostgreSQL needs in its own words: the claim with ``FOR UPDATE
SKIP LOCKED`` and the reads that compare with the database's clock. Everything else is
the shared statement modules, through ``store.dialect.PgConnection``."""

from __future__ import annotations

from store.attempts import CLAIM_COUNTS

#: The database's clock, in epoch seconds (moves within a transaction, unlike now()).
DB_NOW = "extract(epoch from clock_timestamp())::float8"

#: Lease up to ?3 runnable executions for owner ?1 until ?2, at ?4: expired leases and due
#: timers first, then executions of trees that already run (oldest first), then new
#: top-level ones in the order they were created. Rows another worker is claiming are
#: skipped, not waited for, so claims of many workers do not queue behind each other.
CLAIM = (
    "WITH picked AS (SELECT id FROM executions WHERE (status = 'RUNNING' AND lease_expires < ?4) "
    "OR (status = 'WAITING' AND wake_at <= ?4) OR status = 'QUEUED' "
    "ORDER BY CASE WHEN status <> 'QUEUED' THEN 0 WHEN wake_at IS NOT NULL THEN 1 ELSE 2 END, wake_at, created_at, id "
    "LIMIT ?3 FOR UPDATE SKIP LOCKED) "
    "UPDATE executions SET status = 'RUNNING', lease_owner = ?1, lease_expires = ?2, fence = fence + 1, "
    f"{CLAIM_COUNTS}, started_at = coalesce(started_at, ?4) FROM picked WHERE executions.id = picked.id "
    "RETURNING executions.id, executions.fence"
)

#: The earliest timer or lease expiry, and the database's clock.
NEXT_WAKE = (
    "SELECT least((SELECT min(wake_at) FROM executions WHERE status = 'WAITING'), "
    f"(SELECT min(lease_expires) FROM executions WHERE status = 'RUNNING')), {DB_NOW}"
)

#: Whether lease ?2 on execution ?1 is current and not expired by the database's clock.
LEASE_HELD = (
    "SELECT 1 FROM executions WHERE id = ? AND fence = ? AND status = 'RUNNING' "
    f"AND lease_expires > {DB_NOW}"
)
