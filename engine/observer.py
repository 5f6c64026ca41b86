"""What a worker tells an observer (metrics) about its activations; a worker without
one tells nothing. Calls come from activation threads and must return quickly."""

from __future__ import annotations

from typing import Protocol

from engine.decision import Decision
from store.events import Event
from store.model import ExecutionRow


class WorkerObserver(Protocol):
    """Receives a worker's activations as they begin, as they commit, and as their decisions commit."""

    def claimed(self, row: ExecutionRow, now: float) -> None:
        """An activation of ``row`` (as claimed: RUNNING, ``attempts`` counting this one) begins at ``now``."""

    def committed(self, events: list[Event]) -> None:
        """An activation committed ``events`` (a command's, as it ran, or its decision's)."""

    def decided(self, decision: Decision, seconds: float) -> None:
        """An activation's ``decision`` was committed, ``seconds`` after it began."""
