"""Control markers in the log: appending one (which also fences out the worker holding
the lease), and the pause a RUNNING execution takes at its next commit point.

``engine pause`` cannot stop a handler mid-flight, so for a RUNNING execution it only
sets ``executions.pause_requested``; the commit that next writes for that execution
(a step's result, a child created, a suspension) applies the pause in the same
transaction (``store/writes.py``), and the control operations (``store/control.py``)
append their markers here.
"""

from __future__ import annotations

from store.dialect import Conn
from store.events import Body, ExecutionControlled, encode_body, kind_of
from store.model import ENDED_STATUSES, CommitResult, Status


def append_marker(conn: Conn, execution_id: str, body: Body, now: float) -> int:
    """Append ``body`` after the last event of ``execution_id``; returns its seq.

    Also bumps the fence: a worker holding the old lease can no longer commit.
    """
    seq = conn.execute(
        "UPDATE executions SET last_seq = last_seq + 1, fence = fence + 1 WHERE id = ? RETURNING last_seq",
        (execution_id,),
    ).fetchone()[0]
    conn.execute(
        "INSERT INTO events VALUES (?, ?, ?, ?, 0, ?)",
        (execution_id, seq, kind_of(body), now, encode_body(body)),
    )
    return int(seq)


def pause_at_commit(conn: Conn, execution_id: str, now: float, result: CommitResult) -> None:
    """A pause was requested while ``execution_id`` ran: apply it after this commit.

    A suspension (WAITING) keeps its waits and timer for ``resume``; an activation
    that was still running becomes PAUSED to be replayed (QUEUED) on ``resume``. An
    execution this commit ended or halted just drops the request.
    """
    status = result.status or Status.RUNNING
    if status in ENDED_STATUSES or status == Status.HALTED:
        conn.execute("UPDATE executions SET pause_requested = 0 WHERE id = ?", (execution_id,))
        return
    restore = Status.WAITING if status == Status.WAITING else Status.QUEUED
    append_marker(conn, execution_id, ExecutionControlled(
        "pause", Status.RUNNING, Status.PAUSED, detail=f"paused at a commit point; resume makes it {restore}"
    ), now)
    conn.execute(
        "UPDATE executions SET status = 'PAUSED', paused_from = ?, pause_requested = 0, "
        "lease_owner = NULL, lease_expires = NULL WHERE id = ?",
        (restore, execution_id),
    )
    if execution_id in result.runnable:
        result.runnable.remove(execution_id)
    result.status = Status.PAUSED
