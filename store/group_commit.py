"""Leader/follower group commit: many threads' writes share one transaction and one sync.

A thread that submits while no commit is under way becomes the leader and commits at
once (no hand-off cost when uncontended). Threads that submit meanwhile queue up; when
the leader is done it hands leadership to the first of them, who commits the whole
queue in one transaction. Under load, N concurrent executions pay one fsync, not N.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class _Ticket(Generic[T, R]):
    __slots__ = ("done", "error", "item", "lead", "result")

    def __init__(self, item: T) -> None:
        self.item = item
        self.result: R | None = None
        self.error: BaseException | None = None
        self.done = threading.Event()
        self.lead = False


class GroupCommit(Generic[T, R]):
    """Batches ``submit`` calls from many threads into calls of ``apply_batch``.

    ``apply_batch(items)`` returns one result per item, or an exception instance in
    place of a result for an item that failed on its own (the others still commit).
    An exception raised by ``apply_batch`` itself fails the whole batch.
    """

    def __init__(self, apply_batch: Callable[[Sequence[T]], list[R | BaseException]]) -> None:
        self._apply_batch = apply_batch
        self._lock = threading.Lock()
        self._queue: list[_Ticket[T, R]] = []
        self._busy = False

    def submit(self, item: T) -> R:
        ticket: _Ticket[T, R] = _Ticket(item)
        with self._lock:
            self._queue.append(ticket)
            lead = not self._busy
            self._busy = True
        if not lead:
            ticket.done.wait()
            if ticket.lead:
                self._lead()
        else:
            self._lead()
        if ticket.error is not None:
            raise ticket.error
        return ticket.result  # type: ignore[return-value]

    def _lead(self) -> None:
        with self._lock:
            batch, self._queue = self._queue, []
        try:
            results = self._apply_batch([t.item for t in batch])
        except BaseException as exc:  # the whole transaction failed
            results = [exc] * len(batch)
        for ticket, result in zip(batch, results):
            if isinstance(result, BaseException):
                ticket.error = result
            else:
                ticket.result = result
        with self._lock:
            if self._queue:
                successor = self._queue[0]
                successor.lead = True
                successor.done.set()
            else:
                self._busy = False
        for ticket in batch:
            ticket.done.set()
