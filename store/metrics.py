"""Counts for the metrics page: read at scrape time, from the status indexes."""

from __future__ import annotations

from store.base import Store
from store.open import as_sql


def runnable_count(store: Store, now: float) -> int:
    """Executions a worker could claim at ``now`` but none has: queued, timer due, or lease expired."""
    found = as_sql(store, "metrics").read(lambda conn: conn.execute(
        "SELECT (SELECT count(*) FROM executions WHERE status = 'QUEUED') "
        "+ (SELECT count(*) FROM executions WHERE status = 'WAITING' AND wake_at <= ?) "
        "+ (SELECT count(*) FROM executions WHERE status = 'RUNNING' AND lease_expires < ?)", (now, now)).fetchone())
    return int(found[0])
