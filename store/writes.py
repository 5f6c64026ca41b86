"""The write side of the store: how one commit changes the tables, inside a transaction."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from store.dialect import Conn, PgConnection, share_lock
from store import values
from store.errors import LeaseLostError
from store.events import (
    FORMAT_VERSION,
    Event,
    ExecutionCancelled,
    ExecutionStarted,
    WaitStarted,
    encode_body,
    kind_of,
)
from store.attempts import CLAIM_COUNTS, RESET_COUNTS
from store.messages import insert_message, write_connector
from store.model import (
    ENDED_CANCELLED,
    ENDED_STATUSES,
    FAILED_STATUSES,
    UNSET,
    Claim,
    Commit,
    CommitResult,
    ExecutionRow,
    NewExecution,
    SettingWrite,
    WaitSpec,
)
from store.markers import pause_at_commit
from store.search_index import index_events

EXECUTION_COLUMNS = ", ".join(ExecutionRow.__struct_fields__)

#: A backend's claim of queued executions: (conn, owner, limit, lease expiry, now) -> (id, fence) pairs.
ClaimQueued = Callable[[Conn, str, int, float, float], list[tuple[str, int]]]
INSERT_EVENT = "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?)"

#: ``wake_at`` of a QUEUED execution orders the claims: the time it became runnable for an
#: execution of a tree that is already running (a child, a woken parent, an answered
#: message), NULL for a new top-level one. Claims take the former first, oldest first,
#: through the ``(status, wake_at)`` index, so a child never waits behind a backlog of new work.


def insert_execution(conn: Conn, new: NewExecution, at: float) -> None:
    at = new.created_at or at
    started = ExecutionStarted(FORMAT_VERSION, new.flow, new.flow_version, new.input_value, new.parent_id, new.name)
    conn.execute(
        f"INSERT INTO executions ({EXECUTION_COLUMNS}) VALUES "
        "(?, ?, ?, ?, ?, ?, NULL, ?, ?, ?, ?, ?, NULL, ?, NULL, NULL, ?, NULL, NULL, 0, 1, 0, NULL)",
        (
            new.id, new.type, new.flow, new.flow_version, new.name, new.status, new.parent_id,
            new.root_id or new.id, new.depth, new.project, values.encode(new.input_value), at,
            at if new.parent_id is not None and new.status == "QUEUED" else None,
        ),
    )
    conn.execute(
        "INSERT INTO events VALUES (?, 1, 'started', ?, 0, ?)", (new.id, at, encode_body(started))
    )


def write_setting(conn: Conn, write: SettingWrite, at: float) -> None:
    if write.delete:
        conn.execute("DELETE FROM settings WHERE name = ?", (write.name,))
    else:
        conn.execute(
            "INSERT INTO settings VALUES (?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET "
            "value = excluded.value, description = coalesce(excluded.description, settings.description), "
            "updated_at = excluded.updated_at",
            (write.name, values.encode(write.value), write.description, at),
        )


def _append(conn: Conn, execution_id: str, events: Sequence[Event]) -> None:
    if not events:
        return
    first = events[0].seq
    cur = conn.execute(
        "UPDATE executions SET last_seq = ? WHERE id = ? AND last_seq = ?",
        (events[-1].seq, execution_id, first - 1),
    )
    if cur.rowcount == 0:
        raise LeaseLostError(f"execution {execution_id}: log moved on before seq {first}")
    _insert_events(conn, execution_id, events)


def _insert_events(conn: Conn, execution_id: str, events: Sequence[Event]) -> None:
    """The rows of ``events``, their text in the search index and the dependency edges of their waits."""
    if len(events) == 1:  # the common case (one step): no executemany machinery
        e = events[0]
        conn.execute(INSERT_EVENT, (execution_id, e.seq, kind_of(e.body), e.at, e.line, encode_body(e.body)))
    else:
        conn.executemany(
            INSERT_EVENT, [(execution_id, e.seq, kind_of(e.body), e.at, e.line, encode_body(e.body)) for e in events]
        )
    index_events(conn, execution_id, events)
    for e in events:  # a wait is a dependency even when it is satisfied without suspending
        if type(e.body) is WaitStarted:
            conn.executemany(
                "INSERT OR IGNORE INTO dependencies VALUES (?, ?, ?)", [(execution_id, t, e.at) for t in e.body.targets]
            )


#: A commit's fence check and move of ``last_seq`` in one statement (a PostgreSQL batch of
#: plain step commits answers it from rows it read at once: ``store.pg_batch``).
FENCED_APPEND = (
    "UPDATE executions SET last_seq = ? WHERE id = ? AND fence = ? AND status = 'RUNNING' AND last_seq = ? "
    "RETURNING pause_requested, lease_expires"
)


def _fenced_append(conn: Conn, c: Commit, result: CommitResult) -> bool:
    """Check that ``c``'s writer still holds the lease (noting its expiry in ``result``)
    and append its events, in one statement when there are events; returns whether a
    pause was requested meanwhile (`engine pause` while it ran: it pauses at this commit)."""
    eid, events = c.execution_id, c.events
    if events:
        row = conn.execute(FENCED_APPEND, (events[-1].seq, eid, c.fence, events[0].seq - 1)).fetchone()
        if row is not None:
            _insert_events(conn, eid, events)
            result.lease_expires = row[1]
            return bool(row[0])
    pause_requested, result.lease_expires = _leased_row(conn, c)
    return pause_requested


def _leased_row(conn: Conn, c: Commit) -> tuple[bool, float | None]:
    """(pause requested, lease expiry) of ``c``'s execution when its writer holds the lease
    and ``c`` has no events; else the ``LeaseLostError`` that says why the fenced statement
    found no row."""
    eid = c.execution_id
    row = conn.execute(
        "SELECT fence, status, pause_requested, lease_expires FROM executions WHERE id = ?", (eid,)
    ).fetchone()
    if row is None or row[0] != c.fence or row[1] != "RUNNING":
        raise LeaseLostError(f"execution {eid} was claimed by another worker or cancelled")
    if c.events:  # the lease holds, so the log moved on under it
        raise LeaseLostError(f"execution {eid}: log moved on before seq {c.events[0].seq}")
    return bool(row[2]), row[3]


def apply_commit(conn: Conn, c: Commit, now: float, claim_queued: ClaimQueued | None = None) -> CommitResult:
    """Apply one execution's decision at ``now`` (the time its rows record); raises
    ``LeaseLostError`` when its lease was lost. ``claim_queued`` (the backend's claim of
    queued executions, if it offers one) lets a commit that releases the lease lease the
    committing worker's next work in the same transaction (``Claim``)."""
    eid = c.execution_id
    result = CommitResult()
    output = UNSET if c.output_value is UNSET else values.encode(c.output_value)
    status = c.status
    # A decision (end, timer) of an activation that appends events and touches no other
    # execution's status: its fence check, its append and its status are one statement.
    folded = (c.fence is not None and bool(c.events) and status is not None and c.wait is None
              and c.wait_message is None and not c.cancel)
    if folded and status is not None:
        pause_requested = _fenced_decision(conn, c, status, output, now)
    elif c.fence is not None:
        pause_requested = _fenced_append(conn, c, result)
    else:
        pause_requested = False
        _append(conn, eid, c.events)
    for new in c.creates:
        insert_execution(conn, new, now)
        if new.status == "QUEUED":
            result.runnable.append(new.id)
    for child in c.start:  # a user's `engine pause` (paused_from set) is not undone by a parent
        if conn.execute(
            "UPDATE executions SET status = 'QUEUED', wake_at = ? WHERE id = ? AND status = 'PAUSED' "
            "AND paused_from IS NULL",
            (now, child),
        ).rowcount:
            result.runnable.append(child)
    for write in c.settings:
        write_setting(conn, write, now)
    for message in c.messages:
        insert_message(conn, eid, message, now)
    for connector in c.connectors:
        write_connector(conn, connector, now)
    for target, project in c.relocate.items():
        conn.execute("UPDATE executions SET project = ? WHERE id = ?", (project, target))
    for target in c.cancel:
        _cancel_tree(conn, target, now, result)
    if c.wait is not None:
        status = _register_wait(conn, eid, c.wait, now)
    elif c.wait_message is not None and conn.execute(
        f"SELECT status FROM messages WHERE id = ?{share_lock(conn)}", (c.wait_message,)
    ).fetchone() == ("answered",):
        status = "QUEUED"  # answered while the handler was deciding to wait
    if folded and status is not None:
        _status_set(conn, eid, status, now, result)
        result.status = status
    elif status is not None:
        _set_status(conn, eid, status, c.message, c.wake_at, now, result, output)
        result.status = status
    else:
        if output is not UNSET:
            conn.execute("UPDATE executions SET output_value = ? WHERE id = ?", (output, eid))
        if c.release_lease:
            conn.execute("UPDATE executions SET lease_owner = NULL, lease_expires = NULL WHERE id = ?", (eid,))
    if pause_requested:
        pause_at_commit(conn, eid, now, result)
    if c.claim is not None:
        if result.runnable:
            _claim_runnable(conn, c.claim, now, result)
        free = c.claim.limit - len(result.claimed)
        if c.release_lease and free > 0 and claim_queued is not None:  # the activation is over: its slot is free
            result.claimed += claim_queued(conn, c.claim.owner, free, now + c.claim.lease_seconds, now)
    return result


def _claim_runnable(conn: Conn, claim: Claim, now: float, result: CommitResult) -> None:
    for eid in result.runnable[: claim.limit]:
        row = conn.execute(
            "UPDATE executions SET status = 'RUNNING', lease_owner = ?, lease_expires = ?, fence = fence + 1, "
            f"{CLAIM_COUNTS}, started_at = coalesce(started_at, ?) WHERE id = ? AND status = 'QUEUED' RETURNING fence",
            (claim.owner, now + claim.lease_seconds, now, eid),
        ).fetchone()
        if row is not None:
            result.claimed.append((eid, row[0]))


_SET_STATUS = (
    "UPDATE executions SET status = ?, message = coalesce(?, message), wake_at = ?, "
    "ended_at = CASE WHEN ? THEN ? ELSE ended_at END, lease_owner = NULL, lease_expires = NULL, "
    f"{RESET_COUNTS}{{}} WHERE id = ?"
)
_SET_STATUS_ONLY = _SET_STATUS.format("")
_SET_STATUS_AND_OUTPUT = _SET_STATUS.format(", output_value = ?")


#: ``_fenced_append`` and ``_set_status`` in one statement, for a decision that needs no other read.
_FENCED_DECISION = (
    "UPDATE executions SET last_seq = ?, status = ?, message = coalesce(?, message), wake_at = ?, "
    "ended_at = CASE WHEN ? THEN ? ELSE ended_at END, lease_owner = NULL, lease_expires = NULL, "
    f"{RESET_COUNTS}{{}} WHERE id = ? AND fence = ? AND status = 'RUNNING' AND last_seq = ? "
    "RETURNING pause_requested"
)
_FENCED_DECISION_ONLY = _FENCED_DECISION.format("")
_FENCED_DECISION_AND_OUTPUT = _FENCED_DECISION.format(", output_value = ?")


def _fenced_decision(conn: Conn, c: Commit, status: str, output: bytes, now: float) -> bool:
    """``_fenced_append`` that also sets the decision's status (and output); returns whether a
    pause was requested. Refused as ``_fenced_append`` refuses, with nothing changed."""
    events = c.events
    head = (events[-1].seq, status, c.message, now if status == "QUEUED" else c.wake_at,
            status in ENDED_STATUSES, now)
    where = (c.execution_id, c.fence, events[0].seq - 1)
    if output is UNSET:
        row = conn.execute(_FENCED_DECISION_ONLY, (*head, *where)).fetchone()
    else:
        row = conn.execute(_FENCED_DECISION_AND_OUTPUT, (*head, output, *where)).fetchone()
    if row is None:
        _leased_row(conn, c)  # raises: the lease was lost, or the log moved on
    _insert_events(conn, c.execution_id, events)
    return bool(row[0])


def _set_status(
    conn: Conn, eid: str, status: str, message: str | None, wake_at: float | None,
    now: float, result: CommitResult, output: bytes = UNSET,
) -> None:
    """Change the status (and, given ``output``, the encoded output value) in one statement."""
    head = (status, message, now if status == "QUEUED" else wake_at, status in ENDED_STATUSES, now)
    if output is UNSET:
        conn.execute(_SET_STATUS_ONLY, (*head, eid))
    else:
        conn.execute(_SET_STATUS_AND_OUTPUT, (*head, output, eid))
    _status_set(conn, eid, status, now, result)


def _status_set(conn: Conn, eid: str, status: str, now: float, result: CommitResult) -> None:
    """What follows a change of ``eid``'s status: runnable again, or its waits and waiters settled."""
    if status == "QUEUED":
        result.runnable.append(eid)
    if status in ENDED_STATUSES:  # neither count is read: on PostgreSQL a read would wait for the server's answer
        conn.execute("DELETE FROM waits WHERE waiter_id = ?", (eid,))
        conn.execute("DELETE FROM wait_targets WHERE waiter_id = ?", (eid,))
        _wake_waiters(conn, eid, status in FAILED_STATUSES, now, result)


def waiting_on(conn: Conn, waiter: str, targets: Sequence[str]) -> list[str]:
    """Those of ``targets`` that wait, directly or through others, for ``waiter``: waiting
    for them would never end (a deadlock)."""
    marks = ",".join("?" * len(targets))
    rows = conn.execute(
        "WITH RECURSIVE reach(start, id) AS ("
        f"  SELECT waiter_id, target_id FROM wait_targets WHERE waiter_id IN ({marks})"
        "  UNION SELECT r.start, w.target_id FROM wait_targets w JOIN reach r ON w.waiter_id = r.id"
        ") SELECT DISTINCT start FROM reach WHERE id = ?",
        (*targets, waiter),
    ).fetchall()
    return [r[0] for r in rows]


def _register_wait(conn: Conn, waiter: str, wait: WaitSpec, now: float) -> str:
    """Record the wait (its dependency edges came with its WaitStarted event); QUEUED if it
    is satisfied already, or would close a cycle of waits (the waiter then sees the
    deadlock when it looks again)."""
    if conn.execute("DELETE FROM waits WHERE waiter_id = ?", (waiter,)).rowcount:
        conn.execute("DELETE FROM wait_targets WHERE waiter_id = ?", (waiter,))
    ended = failed = 0
    marks = ",".join("?" * len(wait.targets))
    for (status,) in conn.execute(f"SELECT status FROM executions WHERE id IN ({marks}){share_lock(conn)}", wait.targets):
        ended += status in ENDED_STATUSES
        failed += status in FAILED_STATUSES
    if ended >= wait.needed or (wait.wake_on_failure and failed) or waiting_on(conn, waiter, wait.targets):
        return "QUEUED"
    conn.execute(
        "INSERT INTO waits VALUES (?, ?, ?, ?, ?, ?)",
        (waiter, wait.needed, ended, failed, wait.wake_on_failure, wait.deadline),
    )
    conn.executemany("INSERT INTO wait_targets VALUES (?, ?)", [(t, waiter) for t in wait.targets])
    return "WAITING"


def _wake_waiters(conn: Conn, target: str, failed: bool, now: float, result: CommitResult) -> None:
    """``target`` ended: count it for every waiter and make runnable those now satisfied
    (on PostgreSQL in one round trip, by the same statements in a function of the schema:
    ``store.pg_schema.WAKE_WAITERS``)."""
    if isinstance(conn, PgConnection):
        woken = conn.execute("SELECT engine_wake_waiters(?, ?, ?)", (target, int(failed), now)).fetchall()
        result.runnable += [r[0] for r in woken]
        return
    waiters = conn.execute("DELETE FROM wait_targets WHERE target_id = ? RETURNING waiter_id", (target,)).fetchall()
    for (waiter,) in waiters:
        row = conn.execute(
            "UPDATE waits SET ended = ended + 1, failed = failed + ? WHERE waiter_id = ? "
            "RETURNING needed, ended, failed, wake_on_failure",
            (failed, waiter),
        ).fetchone()
        if row is None:
            continue
        needed, ended, n_failed, wake_on_failure = row
        if ended >= needed or (wake_on_failure and n_failed):
            conn.execute("DELETE FROM waits WHERE waiter_id = ?", (waiter,))
            conn.execute("DELETE FROM wait_targets WHERE waiter_id = ?", (waiter,))
            if conn.execute(
                "UPDATE executions SET status = 'QUEUED', wake_at = ? WHERE id = ? AND status = 'WAITING'",
                (now, waiter),
            ).rowcount:
                result.runnable.append(waiter)


def _cancel_tree(conn: Conn, root: str, now: float, result: CommitResult) -> None:
    """Cancel ``root`` and its descendants that have not ended, recording it in each log."""
    pending = [root]
    while pending:
        eid = pending.pop()
        row = conn.execute("SELECT status, last_seq FROM executions WHERE id = ?", (eid,)).fetchone()
        if row is None or row[0] in ENDED_STATUSES:
            continue
        body = ExecutionCancelled("cancelled by its parent or by a user")
        conn.execute(
            "INSERT INTO events VALUES (?, ?, ?, ?, 0, ?)",
            (eid, row[1] + 1, kind_of(body), now, encode_body(body)),
        )
        conn.execute("UPDATE executions SET last_seq = last_seq + 1, fence = fence + 1 WHERE id = ?", (eid,))
        _set_status(conn, eid, ENDED_CANCELLED, "cancelled", None, now, result)
        pending.extend(r[0] for r in conn.execute("SELECT id FROM executions WHERE parent_id = ?", (eid,)))
