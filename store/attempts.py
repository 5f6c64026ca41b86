"""The activation-attempt count of an execution, in SQL.

Every claim counts one attempt; a decision committed by the activation (end, wait,
halt, pause) or a control operation resets the count. An activation that never
decided (its worker died, it raised past the engine, its lease expired) leaves a note
in ``attempt_log``, one line per attempt, so that the engine can say what happened
each time when it gives up on the execution.
"""

from __future__ import annotations

#: Part of the SET clause of every claim: count the attempt and, when the claim takes
#: over an expired lease, note that the previous activation did not finish.
CLAIM_COUNTS = (
    "attempts = attempts + 1, attempt_log = CASE WHEN status = 'RUNNING' THEN "
    "coalesce(attempt_log || '\n', '') || 'activation ' || attempts || ' by worker ' || "
    "coalesce(lease_owner, '?') || ' did not finish: its lease expired (the worker was killed, "
    "stopped or stalled)' ELSE attempt_log END"
)

#: Part of the SET clause of every decision: a new count starts.
RESET_COUNTS = "attempts = 0, attempt_log = NULL"

#: Hand a lease back with a note (the attempt counts), or without (it does not: the
#: worker stopped before the activation could decide, through no fault of the flow).
#: ``wake_at`` is when it became runnable: its tree runs, so it is claimed before new work.
HAND_BACK = (
    "UPDATE executions SET status = 'QUEUED', wake_at = ?4, lease_owner = NULL, lease_expires = NULL, "
    "attempts = CASE WHEN CAST(?1 AS TEXT) IS NULL THEN CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END ELSE attempts END, "
    "attempt_log = CASE WHEN CAST(?1 AS TEXT) IS NULL THEN attempt_log ELSE coalesce(attempt_log || '\n', '') || ?1 END "
    "WHERE id = ?2 AND fence = ?3 AND status = 'RUNNING'"
)
