"""What one activation of a handler decided, and the signals that unwind it."""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from flow_api.exceptions import LifecycleSignal
from store.events import ErrorInfo, Event, ExecutionEnded
from store.model import NewExecution, Status, WaitSpec


class Suspended(LifecycleSignal):
    """The handler must wait (a timer, other executions). The engine records the wait
    and unwinds the handler; nothing is held while it waits. If your flow catches this
    with a bare ``except:``, re-raise ``flow_api.LifecycleSignal``."""

    def __init__(
        self, *, wake_at: float | None = None, wait: WaitSpec | None = None, message_id: str | None = None
    ) -> None:
        super().__init__(wake_at, wait, message_id)
        self.wake_at = wake_at if wait is None else wait.deadline
        self.wait = wait
        self.message_id = message_id


class ReplayExhausted(LifecycleSignal):
    """A replay without a live backend reached the end of the recorded history."""

    def __init__(self, pos: int) -> None:
        super().__init__(pos)
        self.pos = pos


class ActivationAborted(LifecycleSignal):
    """This worker lost the execution's lease (or it was cancelled): stop, commit nothing."""


#: What an activation can decide (``Decision.kind``).
DecisionKind = Literal["end", "suspend", "halt", "exhausted", "aborted", "interrupted"]


class Decision(msgspec.Struct):
    """The result of running a handler once.

    ``kind`` is ``end`` (status/message/output set), ``suspend`` (wake_at or wait set),
    ``halt`` (nondeterminism: error set, execution not ended), ``exhausted`` (replay
    without live backend ran out of history), ``aborted`` (lease lost), or
    ``interrupted`` (the worker stopped it: ``engine.interrupts``; events and output so far set).
    ``events`` are the new events not committed yet.
    """

    kind: DecisionKind
    events: list[Event] = []
    creates: list[NewExecution] = []
    status: str | None = None
    message: str | None = None
    output_value: Any = None
    error: ErrorInfo | None = None
    wake_at: float | None = None
    wait: WaitSpec | None = None
    message_id: str | None = None
    line: int = 0


def ended_in_error(
    seq: int, at: float, message: str, info: ErrorInfo, output: dict[str, Any], *, before: Decision | None = None
) -> Decision:
    """End the execution ENDED_ERROR with ``message`` at ``seq``, after what ``before``
    (an interrupted activation) recorded, if given."""
    ended = Event(seq, at, ExecutionEnded(Status.ENDED_ERROR, message, output, info), before.line if before else 0)
    events, creates = ([*before.events, ended], before.creates) if before else ([ended], [])
    return Decision("end", events, creates=creates, status=Status.ENDED_ERROR, message=message, output_value=output)
