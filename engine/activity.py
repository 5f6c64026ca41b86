"""What a worker knows about each activation it runs, and the rules that stop one:
the time limit, a lost lease (cancel), the worker stopping.

The limit of an activation is the flow's ``TIMEOUT`` (seconds, a module-level
constant of the flow script) when it sets one, else the worker's
``activation_timeout``. Time spent waiting (a sleep, a child, a message) does not
count: a waiting execution has no activation.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from engine.clock import Clock
from engine.decision import Decision, ended_after, ended_in_error
from engine.interrupts import (
    ActivationInterrupted,
    ActivationStopped,
    Interrupts,
    TimeLimitReached,
)
from store.base import Store
from store.errors import LeaseLostError
from store.events import ErrorInfo
from store.model import Status

DEFAULT_ACTIVATION_TIMEOUT = 3600.0

#: Seconds between two interrupts of a handler that swallows them (a bare ``except:``).
REINTERRUPT_EVERY = 0.05

#: Why the worker stops an activation.
TIMEOUT, CANCELLED, ABANDONED = "timeout", "cancelled", "abandoned"


class Activation:
    """One activation in flight: its lease, when it started, its limit, and whether
    (and why) the worker has asked it to stop."""

    __slots__ = ("execution_id", "fence", "interrupted_at", "limit", "limit_source", "started", "stop")

    def __init__(self, execution_id: str, fence: int, started: float, limit: float) -> None:
        self.execution_id = execution_id
        self.fence = fence
        self.started = started
        self.limit = limit
        self.limit_source = "the worker's --activation-timeout"
        self.stop: str | None = None
        self.interrupted_at = -math.inf

    def limit_from_flow(self, module_globals: dict[str, Any], flow: str) -> None:
        """Apply the flow's ``TIMEOUT``; ValueError (worded for the user) if it is not
        a positive number of seconds."""
        value = module_globals.get("TIMEOUT")
        if value is None:
            return
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
            raise ValueError(
                f"flow {flow!r} sets TIMEOUT = {value!r}: it must be a positive number of seconds; "
                "fix the flow and start a new execution"
            )
        self.limit, self.limit_source = float(value), f"TIMEOUT in flow {flow!r}"

    def time_limit_message(self, line: int) -> str:
        where = f" at line {line}" if line else ""
        return (
            f"execution {self.execution_id}: stopped{where} after running longer than its time limit of "
            f"{self.limit:g} s ({self.limit_source}); if it needs longer, set TIMEOUT = SECONDS at the top "
            "of the flow or start the worker with --activation-timeout SECONDS"
        )

    def watch(self, interrupts: Interrupts, now: float) -> None:
        """Interrupt the handler if it has run past its limit or was asked to stop
        (again every ``REINTERRUPT_EVERY`` s while it swallows the interrupt)."""
        if self.stop is None and now - self.started > self.limit:
            self.stop = TIMEOUT
        if self.stop is not None and now - self.interrupted_at >= REINTERRUPT_EVERY:
            self.interrupted_at = now
            kind: type[ActivationInterrupted] = TimeLimitReached if self.stop == TIMEOUT else ActivationStopped
            interrupts.interrupt(self.execution_id, kind)


def end_past_limit(
    act: Activation, decision: Decision, store: Store, clock: Clock, commit: Callable[[Decision], None]
) -> None:
    """Commit the end of ``act``, stopped past its time limit: ENDED_ERROR, with what it
    recorded before (``decision``), or alone if it was stopped inside the engine's bookkeeping."""
    message = act.time_limit_message(decision.line)
    info = ErrorInfo("EngineException", message)
    row = store.get_execution(act.execution_id)
    if row is None:
        return
    seq = decision.events[-1].seq + 1 if decision.events else row.last_seq + 1
    try:
        commit(ended_in_error(seq, clock(), message, info, decision.output_value or {}, before=decision))
    except LeaseLostError:  # interrupted inside the engine's bookkeeping: record the end alone
        row = store.get_execution(act.execution_id)
        if row is not None and row.fence == act.fence and row.status == Status.RUNNING:
            commit(ended_after(row, clock(), message, info))
