"""The SQL of control by a user: start, pause, resume, cancel, retry and fork.

Each function runs inside ``store.transaction`` and checks the status it acts on in
that transaction, so a worker claiming or committing at the same moment is either
before it or after it. Every change is recorded in the execution's log: an
``ExecutionControlled`` marker (start, pause, resume, fork), ``ExecutionCancelled``,
or ``AttemptStarted`` (retry). Refusals raise ``WrongStatusError`` (a ``ValueError``,
so only this transaction's unit is undone); the engine words the message.
"""

from __future__ import annotations

from store.attempts import RESET_COUNTS
from store.dialect import Conn
from store.errors import UnknownExecutionError, WrongStatusError
from store.events import AttemptStarted, Event, ExecutionControlled, SleepStarted
from store.markers import append_marker
from store.model import ENDED_STATUSES, CommitResult, NewExecution, Status
from store.writes import _append, _cancel_tree, insert_execution

_MARKER_KINDS = (
    ExecutionControlled.__struct_config__.tag,
    AttemptStarted.__struct_config__.tag,
)
_SLEEP_KIND = SleepStarted.__struct_config__.tag


def _row(conn: Conn, eid: str) -> tuple[str, str | None, int, float | None]:
    row = conn.execute(
        "SELECT status, paused_from, pause_requested, wake_at FROM executions WHERE id = ?", (eid,)
    ).fetchone()
    if row is None:
        raise UnknownExecutionError(f"no execution {eid}")
    return row[0], row[1], row[2], row[3]


def _restore_status(conn: Conn, eid: str, paused_from: str | None, wake_at: float | None) -> str:
    """What a PAUSED execution goes back to: WAITING while its wait or timer is still
    pending, else QUEUED (a wait satisfied meanwhile is seen by the replay)."""
    if paused_from != Status.WAITING:
        return Status.QUEUED
    if conn.execute("SELECT 1 FROM waits WHERE waiter_id = ?", (eid,)).fetchone():
        return Status.WAITING
    marks = ",".join("?" * len(_MARKER_KINDS))
    last = conn.execute(
        f"SELECT kind FROM events WHERE execution_id = ? AND kind NOT IN ({marks}) ORDER BY seq DESC LIMIT 1",
        (eid, *_MARKER_KINDS),
    ).fetchone()
    return Status.WAITING if wake_at is not None and last is not None and last[0] == _SLEEP_KIND else Status.QUEUED


def _move(
    conn: Conn, eid: str, action: str, before: str, after: str, now: float,
    flow_version: str | None = None, detail: str = "",
) -> None:
    """Record ``action`` in the log and set the new status (and pinned version)."""
    append_marker(conn, eid, ExecutionControlled(action, before, after, flow_version, detail), now)
    conn.execute(
        "UPDATE executions SET status = ?, message = NULL, paused_from = NULL, pause_requested = 0, "
        "flow_version = coalesce(?, flow_version), wake_at = CASE WHEN ? = 'WAITING' THEN wake_at END, "
        f"{RESET_COUNTS} WHERE id = ?",
        (after, flow_version, after, eid),
    )


def start(conn: Conn, eid: str, now: float) -> str:
    """PAUSED -> QUEUED (or back to what ``pause`` interrupted). Returns the new status."""
    status, paused_from, _, wake_at = _row(conn, eid)
    if status != Status.PAUSED:
        raise WrongStatusError(eid, status)
    after = _restore_status(conn, eid, paused_from, wake_at)
    _move(conn, eid, "start", status, after, now)
    return after


def pause(conn: Conn, eid: str, now: float) -> tuple[str, str]:
    """QUEUED/WAITING -> PAUSED (waits and timer kept); RUNNING: request the pause for
    its next commit. Returns the status before and after."""
    status, _, _, _ = _row(conn, eid)
    if status in (Status.QUEUED, Status.WAITING):
        append_marker(conn, eid, ExecutionControlled("pause", status, Status.PAUSED), now)
        conn.execute("UPDATE executions SET status = 'PAUSED', paused_from = ? WHERE id = ?", (status, eid))
        return status, Status.PAUSED
    if status == Status.RUNNING:
        conn.execute("UPDATE executions SET pause_requested = 1 WHERE id = ?", (eid,))
        return status, status
    raise WrongStatusError(eid, status)


def resume(conn: Conn, eid: str, flow_version: str | None, now: float) -> tuple[str, str]:
    """PAUSED -> what it was; HALTED -> QUEUED on ``flow_version``; RUNNING with a pause
    requested -> the request is withdrawn. Returns the status before and after."""
    status, paused_from, pause_requested, wake_at = _row(conn, eid)
    if status == Status.RUNNING and pause_requested:
        conn.execute("UPDATE executions SET pause_requested = 0 WHERE id = ?", (eid,))
        return status, status
    if status == Status.PAUSED:
        after = _restore_status(conn, eid, paused_from, wake_at)
    elif status == Status.HALTED:
        after = Status.QUEUED
    else:
        raise WrongStatusError(eid, status)
    detail = f"re-pinned to flow version {flow_version[:12]}" if flow_version else ""
    _move(conn, eid, "resume", status, after, now, flow_version, detail)
    return status, after


def descendants(conn: Conn, eid: str) -> list[tuple[str, str]]:
    """(id, status) of ``eid`` and everything below it in the parent/child tree, top down."""
    found = [(eid, _row(conn, eid)[0])]
    level = [eid]
    while level:
        marks = ",".join("?" * len(level))
        rows = conn.execute(
            f"SELECT id, status FROM executions WHERE parent_id IN ({marks}) ORDER BY created_at, id", level
        ).fetchall()
        found.extend((r[0], r[1]) for r in rows)
        level = [r[0] for r in rows]
    return found


def cancel(conn: Conn, eid: str, now: float) -> tuple[list[str], list[str]]:
    """Cancel ``eid`` and its descendants that have not ended; returns (the cancelled,
    the waiters this made runnable)."""
    tree = descendants(conn, eid)
    alive = [i for i, status in tree if status not in ENDED_STATUSES]
    if not alive:
        raise WrongStatusError(eid, tree[0][1])
    result = CommitResult()
    for execution_id, _ in tree:  # also reaches the live children of an ended execution
        _cancel_tree(conn, execution_id, now, result)
    return alive, result.runnable


def retry(conn: Conn, eid: str, flow_version: str, now: float) -> int:
    """A new attempt of an ENDED_ERROR/ENDED_CANCELLED/HALTED execution from the top,
    on ``flow_version``; returns the attempt number (the first run is attempt 1)."""
    status, _, _, _ = _row(conn, eid)
    if status not in (Status.ENDED_ERROR, Status.ENDED_CANCELLED, Status.HALTED):
        raise WrongStatusError(eid, status)
    earlier = conn.execute(
        "SELECT count(*) FROM events WHERE execution_id = ? AND kind = ?", (eid, _MARKER_KINDS[1])
    ).fetchone()[0]
    attempt = int(earlier) + 2
    append_marker(conn, eid, AttemptStarted(attempt, flow_version, status), now)
    conn.execute("DELETE FROM waits WHERE waiter_id = ?", (eid,))
    conn.execute("DELETE FROM wait_targets WHERE waiter_id = ?", (eid,))
    conn.execute(
        "UPDATE executions SET status = 'QUEUED', message = NULL, output_value = NULL, ended_at = NULL, "
        "wake_at = NULL, flow_version = ?, paused_from = NULL, pause_requested = 0, lease_owner = NULL, "
        f"lease_expires = NULL, {RESET_COUNTS} WHERE id = ?",
        (flow_version, eid),
    )
    return attempt


def fork(conn: Conn, new: NewExecution, taken_over: list[Event], children: list[NewExecution],
         marker: ExecutionControlled, now: float) -> None:
    """Create ``new`` (its ``ExecutionStarted`` is seq 1), append ``taken_over`` (seqs 2..),
    create its ``children``, then record ``marker``."""
    insert_execution(conn, new, now)
    _append(conn, new.id, taken_over)
    for child in children:
        insert_execution(conn, child, now)
    append_marker(conn, new.id, marker, now)

