"""The attempt rule: an execution whose activations keep dying is ended, not retried for ever.

Every claim counts an attempt and every decision an activation commits (end, wait,
halt, pause) starts a new count (``store/attempts.py``). An activation that dies
without deciding (its worker process was killed or exited, something escaped the
engine's error handling, its lease expired) leaves a note saying so. A worker that
claims an execution whose last ``max_attempts`` activations all died ends it
``ENDED_ERROR`` with those notes instead of running it a further time; a supervisor
that sees its worker process die ends the executions it held that reached the limit.
"""

from __future__ import annotations

import logging
import signal

from engine.errors import text_of
from store.base import Store
from store.errors import StoreError
from store.events import ErrorInfo, Event, ExecutionEnded
from store.model import Commit, ExecutionRow, Status

log = logging.getLogger(__name__)

DEFAULT_MAX_ATTEMPTS = 3


def check_max_attempts(value: int) -> int:
    if value < 1:
        raise ValueError(f"max attempts must be at least 1, not {value}")
    return value


def how_it_died(returncode: int) -> str:
    """``process exited with code 3`` / ``process was killed by signal SIGKILL``."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = str(-returncode)
        return f"process was killed by signal {name}"
    return f"process exited with code {returncode}"


def note(row: ExecutionRow, owner: str, what: str) -> str:
    """The line recorded for an activation of ``row`` that did not decide."""
    return f"activation {row.attempts} by worker {owner} {what}"


def gave_up_message(row: ExecutionRow, max_attempts: int, last: str | None = None) -> str:
    """Why the engine stopped trying: every failed activation, on one line."""
    notes = (row.attempt_log or "").splitlines() + ([last] if last else [])
    tried = len(notes) or max_attempts
    return (
        f"execution {row.id} (flow {row.flow!r}) ended after {tried} activation(s) in a row died without a "
        f"decision: {'; '.join(notes) or 'no details were recorded'}. The flow may end its own process "
        "(os._exit, a signal) or crash the interpreter: fix it, then `engine retry "
        f"{row.id}` (workers give an execution {max_attempts} attempt(s); `engine worker --max-attempts N`)"
    )


def give_up(row: ExecutionRow, message: str, now: float) -> Commit:
    """The commit that ends ``row`` (still leased at ``row.fence``) with ``message``."""
    output = row.output_value if isinstance(row.output_value, dict) else {}
    ended = ExecutionEnded(Status.ENDED_ERROR, message, output, ErrorInfo("EngineException", message))
    return Commit(
        row.id, row.fence, events=[Event(row.last_seq + 1, now, ended)], status=Status.ENDED_ERROR, message=message,
        release_lease=True,
    )


def hand_back_failed(store: Store, owner: str, execution_id: str, fence: int, exc: BaseException) -> None:
    """Something escaped the engine's error handling in an activation (an engine bug, or
    something that got past the handler's): hand the execution back with a note, so
    that the attempt counts towards ``max_attempts``."""
    what = f"failed: {type(exc).__name__}: {text_of(exc)} escaped the engine's error handling"
    log.error("execution %s: %s", execution_id, what, exc_info=not isinstance(exc, (SystemExit, KeyboardInterrupt)))
    try:
        row = store.get_execution(execution_id)
        if row is not None and row.fence == fence and row.status == Status.RUNNING:
            store.release_leases([(execution_id, fence)], note=note(row, owner, what))
    except StoreError as failure:  # its lease expires instead; the next claim counts the attempt
        log.error("execution %s: %s", execution_id, failure)
