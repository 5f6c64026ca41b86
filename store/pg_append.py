"""PostgreSQL step commits in one round trip, as many as a batch holds.

A step commit that only appends events under a lease (no status, wait, child, search
text or dependency: ``bare``) is one statement: a CTE that moves ``last_seq`` where the
lease and the log are as the writer left them and no pause is asked, and inserts the
events only if that row moved. The statements of the batch, ``BEGIN`` and ``COMMIT`` go
in one pipeline, waited for once, with the one WAL flush. A commit whose statement moved
no row changed nothing (the lease was lost, the log moved on, or `engine pause` asks to
pause at this commit): the store runs it again on the ordinary path, which says which,
or pauses the execution in the same transaction as its events.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from store.events import WaitStarted, encode_body, kind_of
from store.model import Commit
from store.pg_batch import plain
from store.search_index import WITH_TEXT

_MOVE = (
    "UPDATE executions SET last_seq = %s WHERE id = %s AND fence = %s AND status = 'RUNNING' "
    "AND last_seq = %s AND pause_requested = 0 RETURNING lease_expires"
)
_ROW = "(%s::text, %s::bigint, %s::text, %s::float8, %s::bigint, %s::bytea)"


def bare(items: Sequence[Any]) -> bool:
    """Whether every item is a plain step commit whose events add no other row."""
    return plain(items) and all(
        not c.release_lease and c.claim is None
        and all(type(e.body) is not WaitStarted and type(e.body) not in WITH_TEXT for e in c.events)
        for c in items
    )


@functools.lru_cache(maxsize=16)
def _statement(events: int) -> str:
    rows = ", ".join([_ROW] * events)
    return (f"WITH moved AS ({_MOVE}), added AS (INSERT INTO events SELECT v.* FROM moved, (VALUES {rows}) "
            "AS v (execution_id, seq, kind, at, line, body)) SELECT lease_expires FROM moved")


def send(raw: Any, commit: Commit) -> Any:
    """Send ``commit``'s statement (not waited for); its cursor gives one row, the lease's
    expiry, if it was applied, none if it changed nothing."""
    eid, events = commit.execution_id, commit.events
    params: list[Any] = [events[-1].seq, eid, commit.fence, events[0].seq - 1]
    for e in events:
        params += (eid, e.seq, kind_of(e.body), e.at, e.line, encode_body(e.body))
    return raw.execute(_statement(len(events)), params)
